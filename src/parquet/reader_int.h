/* reader_int: the parsed footer shared by the reader's footer, schema and
 * record assembly (reader.c) and its page decoding (reader_page.c); private
 * to those two. Every pointer into the file borrows pq_reader.data. */
#ifndef ED_PARQUET_READER_INT_H
#define ED_PARQUET_READER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "parquet/reader.h"

/* Caps that keep a lying file from allocating without bound. */
#define MAX_PAGE_BYTES    (256u << 20)
#define MAX_CHUNK_ENTRIES (1u << 26)
#define MAX_SCHEMA_DEPTH  64

typedef struct rstats {
  bool has;
  bool has_nulls;
  int64_t nulls;
  const uint8_t *min_value, *max_value, *min, *max;
  size_t min_value_len, max_value_len, min_len, max_len;
} rstats_t;

typedef struct rchunk {
  int phys;
  uint32_t enc;
  int codec;
  int64_t num_values, unc, comp, data_off, dict_off;
  rstats_t st;
  bool has_meta;
} rchunk_t;

typedef struct rrg {
  int64_t nrows;
  size_t ncols;
  rchunk_t *cols;
} rrg_t;

typedef struct relem {
  int type, type_length, rep, conv, nchildren;
  bool has_type, has_rep, has_conv;
  int logical; /* LogicalType union field id, 0 = none */
  int ts_unit; /* TimeUnit field id */
  const uint8_t *name;
  size_t name_len;
} relem_t;

struct pq_reader {
  const uint8_t *data;
  size_t len;
  int64_t num_rows;
  relem_t *el;
  uint32_t nel;
  rrg_t *rgs;
  uint32_t nrgs;
  char *created_by;
  char **kv;
  uint32_t nkv;
  pq_schema_t *schema;
  ed_buf_t page; /* decompressed page scratch */
};

static inline ed_code_t corrupt(ed_err_t *err, const char *fmt, const char *what) {
  return ed_err_set(err, ED_E_CORRUPT, fmt, what);
}
#define TR_FAIL(r, err)                                                                            \
  ((r)->err && !strcmp((r)->err, "out of memory")                                                  \
       ? ed_err_set(err, ED_E_NOMEM, "parquet reader: out of memory")                              \
       : corrupt(err, "parquet footer: %s", (r)->err ? (r)->err : "malformed"))

static inline ed_code_t oom(ed_err_t *err) {
  return ed_err_set(err, ED_E_NOMEM, "parquet reader: out of memory");
}

/* Bytes per PLAIN value of a fixed-width physical type; 0 for BYTE_ARRAY. */
static inline size_t phys_width(int ph, int type_length) {
  switch (ph) {
  case PQ_P_INT32:
  case PQ_P_FLOAT:
    return 4;
  case PQ_P_INT64:
  case PQ_P_DOUBLE:
    return 8;
  case PQ_P_INT96:
    return 12;
  case PQ_P_FIXED_LEN_BYTE_ARRAY:
    return (size_t)type_length;
  default:
    return 0;
  }
}

#endif
