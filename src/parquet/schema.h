/* schema: the logical tree of a Parquet file, shared by the writer and reader.
 * Owns: nodes (name, type, repetition), their Parquet expansion (LIST and MAP
 * become the 3-level groups of LogicalTypes.md) and per-leaf facts (physical
 * type, max definition/repetition level, path_in_schema). Never does I/O.
 * Called by the writer and reader here, by delta/ (checkpoints, data files)
 * and by inspect. Column data crosses the API as pq_col_t, laid out like
 * src/stream/batch.h (Arrow-like), so a batch maps onto it without copying. */
#ifndef ED_PARQUET_SCHEMA_H
#define ED_PARQUET_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Logical types. Leaves map to physical types as the Delta spec asks
 * (delta-parquet.md D.4): STRING = BYTE_ARRAY+UTF8, DATE = INT32 days,
 * TIMESTAMP = INT64 microseconds, isAdjustedToUTC=true. */
typedef enum pq_type {
  PQ_T_BOOLEAN,
  PQ_T_INT32,
  PQ_T_INT64,
  PQ_T_FLOAT,
  PQ_T_DOUBLE,
  PQ_T_STRING,
  PQ_T_BINARY,
  PQ_T_DATE,
  PQ_T_TIMESTAMP,
  PQ_T_STRUCT, /* group without annotation; children = fields */
  PQ_T_LIST,   /* one child: the element (written list/element) */
  PQ_T_MAP,    /* two children: key (REQUIRED), value (written key_value/key/value) */
} pq_type_t;

typedef enum pq_repetition {
  PQ_REQUIRED = 0,
  PQ_OPTIONAL = 1,
  /* A bare repeated field (no LIST annotation). In pq_col_t it is laid out
   * like a non-null LIST: off[] per row and children[0] = the elements. */
  PQ_REPEATED = 2,
} pq_repetition_t;

/* Parquet physical types (parquet.thrift Type). */
typedef enum pq_phys {
  PQ_P_BOOLEAN = 0,
  PQ_P_INT32 = 1,
  PQ_P_INT64 = 2,
  PQ_P_INT96 = 3,
  PQ_P_FLOAT = 4,
  PQ_P_DOUBLE = 5,
  PQ_P_BYTE_ARRAY = 6,
  PQ_P_FIXED_LEN_BYTE_ARRAY = 7,
  PQ_P_NONE = -1, /* groups */
} pq_phys_t;

/* Node 0 is the root (a STRUCT); PQ_ROOT names it as a parent. */
#define PQ_ROOT 0

typedef struct pq_node {
  const char *name;
  pq_type_t type;
  pq_repetition_t rep;
  int parent;       /* -1 for the root */
  size_t nchildren; /* logical children (LIST: 1, MAP: 2) */
  const int *children;
  int leaf; /* leaf index (column order) for leaves, else -1 */
  /* Leaves only: */
  pq_phys_t phys;
  int max_def, max_rep;
  const char *path; /* dotted path_in_schema, e.g. "tags.list.element" */
} pq_node_t;

typedef struct pq_schema pq_schema_t;

/* A new schema holding only the root. Caller frees with pq_schema_free. */
ed_code_t pq_schema_new(pq_schema_t **out, ed_err_t *err);
void pq_schema_free(pq_schema_t *s);
/* Adds a child under parent (PQ_ROOT, a STRUCT, a LIST or a MAP) and stores
 * its node id in *id (may be NULL). Copies name. A LIST takes exactly one
 * child, a MAP two (the key must be REQUIRED); their names are ignored and
 * written as element / key / value. Leaves may not have children. */
ed_code_t pq_schema_add(pq_schema_t *s, int parent, const char *name, pq_type_t type,
                        pq_repetition_t rep, int *id, ed_err_t *err);
/* Node by id (0 .. the number of nodes - 1); borrows; valid until the schema
 * changes or is freed. Leaf facts are filled once the schema is complete
 * (after pq_schema_finish, which the writer calls). */
const pq_node_t *pq_schema_node(const pq_schema_t *s, int id);
/* Child of node named name, or -1. */
int pq_schema_find(const pq_schema_t *s, int node, const char *name);
size_t pq_schema_num_leaves(const pq_schema_t *s);
/* Node id of leaf i (column order), or -1. */
int pq_schema_leaf_node(const pq_schema_t *s, size_t leaf);
/* Checks the tree (LIST/MAP child counts, non-empty groups) and computes leaf
 * facts. Idempotent. */
ed_code_t pq_schema_finish(pq_schema_t *s, ed_err_t *err);
/* Deep copy. Caller frees with pq_schema_free. */
ed_code_t pq_schema_clone(const pq_schema_t *s, pq_schema_t **out, ed_err_t *err);

/* A column vector, in the layout of src/stream/batch.h (sm_col_t). Row i is
 * null when valid && !valid[i] (valid == NULL: no nulls). Values are indexed
 * by row (null rows hold any value). STRING/BINARY: row i is
 * data[off[i] .. off[i+1]). LIST, MAP, REPEATED: row i's elements are rows
 * off[i] .. off[i+1] of the child column(s). STRUCT: children[k] = field k;
 * LIST/REPEATED: children[0] = elements; MAP: children[0] = keys,
 * children[1] = values. A REPEATED leaf uses children[0] for its elements
 * (the child column has the leaf's type and no children). Everything is
 * borrowed by the writer for the duration of a call. */
typedef struct pq_col {
  size_t len;
  const uint8_t *valid;
  union {
    const int32_t *i32; /* INT32, DATE */
    const int64_t *i64; /* INT64, TIMESTAMP */
    const float *f32;
    const double *f64;
    const uint8_t *b8; /* BOOLEAN: 0 or 1 */
  } v;
  const uint32_t *off;
  const char *data;
  size_t nchildren;
  const struct pq_col *children;
} pq_col_t;

/* A scalar for statistics. bytes/len for STRING/BINARY (not NUL-terminated). */
typedef struct pq_value {
  union {
    bool b;
    int32_t i32;
    int64_t i64;
    float f32;
    double f64;
  } u;
  const uint8_t *bytes;
  size_t len;
} pq_value_t;

/* Statistics of one leaf over a column chunk (reader) or over the whole file
 * (writer). num_values counts level entries (values + nulls + empty-container
 * markers); null_count counts entries with def < max_def, as Parquet does.
 * has_min_max is false when there is no non-null, non-NaN value. */
typedef struct pq_stats {
  int64_t num_values;
  int64_t null_count;
  bool has_null_count;
  bool has_min_max;
  pq_value_t min, max;
} pq_stats_t;

#endif
