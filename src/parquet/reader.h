/* reader: decodes Parquet files held in memory.
 * Owns: footer parsing (Thrift compact, bounds-checked), page decoding (v1
 * and v2; PLAIN, RLE_DICTIONARY/PLAIN_DICTIONARY, RLE/bit-packed levels,
 * RLE booleans; zstd, snappy, uncompressed) and record assembly into pq_col_t
 * trees. Every length read from the file is checked against the buffer and
 * against the page's declared sizes before anything is allocated: a bad file
 * is ED_E_CORRUPT (or ED_E_UNSUPPORTED) with a message, never a crash. Never
 * does I/O. Called by delta/ (checkpoints), inspect and tests. */
#ifndef ED_PARQUET_READER_H
#define ED_PARQUET_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "parquet/schema.h"

typedef struct pq_reader pq_reader_t;

/* Parses the footer of the file in data[0..len). Borrows data; valid until
 * pq_reader_free. Caller frees with pq_reader_free. */
ed_code_t pq_reader_open(const void *data, size_t len, pq_reader_t **out, ed_err_t *err);
void pq_reader_free(pq_reader_t *r);

/* The file's logical schema: LIST/MAP groups (3-level, and the legacy
 * 2-level forms) are folded back into PQ_T_LIST / PQ_T_MAP nodes; leaves keep
 * phys/max_def/max_rep/path. Leaves whose physical type has no logical type
 * here (INT96, FIXED_LEN_BYTE_ARRAY) appear as PQ_T_BINARY. Borrows; valid
 * until free. */
const pq_schema_t *pq_reader_schema(const pq_reader_t *r);
int64_t pq_reader_num_rows(const pq_reader_t *r);
size_t pq_reader_num_row_groups(const pq_reader_t *r);
int64_t pq_reader_row_group_rows(const pq_reader_t *r, size_t rg);
const char *pq_reader_created_by(const pq_reader_t *r); /* "" when absent */
size_t pq_reader_num_kv(const pq_reader_t *r);
/* Borrows; valid until free. value is NULL when unset. */
void pq_reader_kv(const pq_reader_t *r, size_t i, const char **key, const char **value);

/* Footer facts of one column chunk (inspect, tests, Delta stats checks). */
typedef struct pq_chunk_info {
  pq_phys_t phys;
  int codec;          /* pq_codec_t value */
  uint32_t encodings; /* bit (1 << encoding id) per parquet.thrift Encoding */
  int64_t num_values;
  int64_t total_uncompressed_size;
  int64_t total_compressed_size;
  int64_t data_page_offset;
  int64_t dictionary_page_offset; /* -1 when absent */
  bool has_stats;
  pq_stats_t stats;    /* min/max from min_value/max_value (or legacy min/max) */
  bool min_max_legacy; /* taken from the deprecated min/max fields */
} pq_chunk_info_t;

/* Borrows; valid until free. */
ed_code_t pq_reader_chunk_info(const pq_reader_t *r, size_t rg, size_t leaf, pq_chunk_info_t *out,
                               ed_err_t *err);

/* One leaf of one row group, decoded: n level entries; def/rep NULL when the
 * max level is 0; nvalues non-null values (def == max_def) packed densely.
 * BYTE_ARRAY: value i is data[off[i] .. off[i+1]) (off has nvalues+1
 * entries); FIXED_LEN_BYTE_ARRAY and INT96 likewise. */
typedef struct pq_leaf_data {
  pq_phys_t phys;
  size_t n;
  int16_t *def, *rep;
  size_t nvalues;
  union {
    int32_t *i32;
    int64_t *i64;
    float *f32;
    double *f64;
    uint8_t *b8;
  } v;
  uint32_t *off;
  char *data;
} pq_leaf_data_t;

/* Decodes leaf (column order) of row group rg into *out (overwritten).
 * Caller frees with pq_leaf_data_fini. */
ed_code_t pq_reader_read_leaf(pq_reader_t *r, size_t rg, size_t leaf, pq_leaf_data_t *out,
                              ed_err_t *err);
void pq_leaf_data_fini(pq_leaf_data_t *d);

/* One row group assembled into columns: cols[i] is top-level field i of
 * pq_reader_schema, in the pq_col_t layout the writer takes (so a file
 * round-trips). valid is always set. All memory belongs to the batch. */
typedef struct pq_batch {
  size_t nrows;
  size_t ncols;
  pq_col_t *cols;
  void *arena_; /* private */
} pq_batch_t;

/* Reads and assembles row group rg. Caller frees with pq_batch_free. */
ed_code_t pq_reader_read_row_group(pq_reader_t *r, size_t rg, pq_batch_t **out, ed_err_t *err);
void pq_batch_free(pq_batch_t *b);

#endif
