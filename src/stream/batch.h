/* batch: typed column batches, the currency of the pipeline.
 * Owns: the schema tree (sm_type_t, sm_field_t) and column vectors laid out as
 * Arrow lays them out (validity per row; offsets for strings, arrays and maps;
 * child columns for structs, arrays and maps), so the Parquet sink can derive
 * definition and repetition levels and the windows can read values directly.
 * Batches are arenas: sm_batch_reset keeps capacity, so the hot path does not
 * allocate per event. Decoding (decode.c) fills them; windows (window.c) and
 * the sinks read them. Not thread-safe: one batch has one owner at a time.
 *
 * CONTRACT between the decode and window modules: extend, never break. */
#ifndef ED_STREAM_BATCH_H
#define ED_STREAM_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  SM_STRING,
  SM_BINARY,
  SM_BOOLEAN,
  SM_INT,    /* 32-bit */
  SM_BIGINT, /* 64-bit (LONG) */
  SM_FLOAT,
  SM_DOUBLE,
  SM_DATE,      /* int32 days since 1970-01-01 */
  SM_TIMESTAMP, /* int64 microseconds since the epoch, UTC */
  SM_STRUCT,
  SM_ARRAY,
  SM_MAP, /* keys are STRING */
} sm_kind_t;

typedef struct sm_type sm_type_t;

typedef struct sm_field {
  char *name;
  sm_type_t *type;
  bool nullable;
} sm_field_t;

struct sm_type {
  sm_kind_t kind;
  size_t nfields;     /* STRUCT */
  sm_field_t *fields; /* STRUCT: owned */
  sm_type_t *elem;    /* ARRAY element, MAP value: owned */
  bool elem_nullable; /* ARRAY containsNull, MAP valueContainsNull */
};

/* A column vector. Row i of a flat column is valid[i] ? value : NULL. */
typedef struct sm_col {
  const sm_type_t *type; /* borrowed from the schema */
  size_t len, cap;       /* rows (or elements, for a child column) */
  uint8_t *valid;        /* 1 = present, 0 = null; one byte per row */
  union {
    int32_t *i32; /* INT, DATE */
    int64_t *i64; /* BIGINT, TIMESTAMP */
    float *f32;
    double *f64;
    uint8_t *b8; /* BOOLEAN: 0 or 1 */
  } v;
  /* STRING, BINARY: row i is data[off[i] .. off[i+1]); ARRAY, MAP: row i's
   * elements are child rows off[i] .. off[i+1]. off has len+1 entries. */
  uint32_t *off;
  char *data;
  size_t data_len, data_cap;
  /* STRUCT: one child per field; ARRAY: children[0] = elements; MAP:
   * children[0] = keys (STRING, never null), children[1] = values. */
  size_t nchildren;
  struct sm_col *children;
} sm_col_t;

typedef struct sm_batch {
  const sm_type_t *schema; /* a STRUCT; borrowed */
  size_t nrows;
  sm_col_t *cols; /* one per top-level field */
} sm_batch_t;

const char *sm_kind_name(sm_kind_t k); /* "STRING", "BIGINT", ... */

/* ---- building schema trees (schema.c parses DDL/JSON into the same trees) ---- */

/* A scalar type (STRING .. TIMESTAMP), or an empty STRUCT to add fields to.
 * NULL on out of memory. Caller frees with sm_type_free. */
sm_type_t *sm_type_new(sm_kind_t k);
/* ARRAY<elem> / MAP<STRING, value>: takes ownership of elem/value (freed here
 * on failure too). NULL on out of memory. */
sm_type_t *sm_type_new_array(sm_type_t *elem, bool contains_null);
sm_type_t *sm_type_new_map(sm_type_t *value, bool value_contains_null);
/* Appends a field to a STRUCT: copies name, takes ownership of type (freed on
 * failure too). ED_E_INVALID for a duplicate name (case-insensitive, as
 * Spark's analyzer resolves names), ED_E_NOMEM. */
ed_code_t sm_type_add_field(sm_type_t *st, const char *name, sm_type_t *type, bool nullable,
                            ed_err_t *err);
/* Deep copy; NULL on out of memory. Caller frees with sm_type_free. */
sm_type_t *sm_type_clone(const sm_type_t *t);
void sm_type_free(sm_type_t *t); /* NULL is a no-op */
bool sm_type_equal(const sm_type_t *a, const sm_type_t *b);
/* Index of the field named name in a STRUCT (exact match first, then
 * case-insensitive, as Spark resolves columns), or -1. */
int sm_type_field_index(const sm_type_t *st, const char *name);
/* The STRING type MAP keys use (a static; never freed). */
extern const sm_type_t sm_type_map_key;

/* ---- columns ---- */

/* Initialises an empty column of type t (borrowed; valid until sm_col_fini),
 * children included. Allocates nothing until the first append. */
void sm_col_init(sm_col_t *c, const sm_type_t *t);
void sm_col_fini(sm_col_t *c);
/* len = 0 (children too); capacity kept. */
void sm_col_reset(sm_col_t *c);
/* Drops rows past `rows` (children are cut to match): how a half-decoded
 * event is taken back. rows must be <= len. */
void sm_col_truncate(sm_col_t *c, size_t rows);
/* Room for `extra` more rows (values, validity, offsets). ED_E_NOMEM. */
ed_code_t sm_col_grow(sm_col_t *c, size_t extra);
/* Bytes per value in v of a fixed-width kind; 0 for STRING, BINARY and nested. */
size_t sm_kind_value_size(sm_kind_t k);

/* One row each. A null STRUCT row also appends a null to every child (struct
 * children stay row-aligned); a null ARRAY/MAP row has no elements. */
ed_code_t sm_col_append_null(sm_col_t *c);
ed_code_t sm_col_append_i32(sm_col_t *c, int32_t v); /* INT, DATE */
ed_code_t sm_col_append_i64(sm_col_t *c, int64_t v); /* BIGINT, TIMESTAMP */
ed_code_t sm_col_append_f32(sm_col_t *c, float v);
ed_code_t sm_col_append_f64(sm_col_t *c, double v);
ed_code_t sm_col_append_bool(sm_col_t *c, bool v);
ed_code_t sm_col_append_str(sm_col_t *c, const char *p, size_t n); /* STRING, BINARY */
/* STRUCT: a present row; the caller appends exactly one row to each child. */
ed_code_t sm_col_append_struct(sm_col_t *c);
/* ARRAY/MAP: a present row whose elements are the child rows appended since
 * the previous row ended (children[0], and children[1] for MAP values). */
ed_code_t sm_col_append_list_end(sm_col_t *c);
/* Copies row `row` of src (same type) onto the end of dst, nested values
 * included: how filters compact a batch and windows keep values. */
ed_code_t sm_col_append_from(sm_col_t *dst, const sm_col_t *src, size_t row);

/* Makes view a read-only view of rows [from, src->len) of src, sharing its
 * storage: row i of view is row from + i of src. STRING/BINARY offsets stay
 * absolute into src's data (off[0] need not be 0); ARRAY/MAP children are
 * src's own. Valid until src is appended to, reset or freed. view must be
 * zeroed before its first use; it keeps (and reuses) the child views a STRUCT
 * needs, which the caller frees with sm_col_view_fini. Never append to or
 * sm_col_fini a view. ED_E_NOMEM (view is then zeroed). */
ed_code_t sm_col_view_tail(sm_col_t *view, const sm_col_t *src, size_t from);
void sm_col_view_fini(sm_col_t *view);

static inline bool sm_col_is_null(const sm_col_t *c, size_t row) { return !c->valid[row]; }
/* STRING/BINARY value of a row (not NUL-terminated). */
static inline const char *sm_col_str(const sm_col_t *c, size_t row, size_t *n) {
  *n = c->off[row + 1] - c->off[row];
  return c->data + c->off[row];
}

/* ---- batches ---- */

/* A batch of schema (a STRUCT; borrowed; valid until sm_batch_free). NULL on
 * out of memory or if schema is not a STRUCT. Caller frees with sm_batch_free. */
sm_batch_t *sm_batch_new(const sm_type_t *schema);
void sm_batch_free(sm_batch_t *b); /* NULL is a no-op */
/* nrows = 0, every column reset; capacity kept (the per-batch arena). */
void sm_batch_reset(sm_batch_t *b);
/* Cuts every column back to nrows: undoes a partly appended row. */
void sm_batch_rollback_row(sm_batch_t *b);
/* Appends the rows of src (same schema) whose sel[i] is non-zero to dst
 * (sel NULL: every row). */
ed_code_t sm_batch_append_selected(sm_batch_t *dst, const sm_batch_t *src, const uint8_t *sel);

#ifdef __cplusplus
}
#endif

#endif
