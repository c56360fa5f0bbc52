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

#endif
