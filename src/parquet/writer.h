/* writer: streams one Parquet file out of column batches.
 * Owns: shredding pq_col_t trees into definition/repetition levels, PLAIN and
 * RLE_DICTIONARY encodings (dictionary falls back to PLAIN when too large),
 * data pages v1, zstd/snappy/none, statistics, the Thrift footer. Never opens
 * paths or publishes files (the caller writes to a temp name and renames or
 * uploads). Memory is bounded by one row group's encoded pages; pages go to
 * the sink as soon as a row group closes. Called by delta/ (data files and
 * checkpoints), the bench and the test tools. Not thread-safe. */
#ifndef ED_PARQUET_WRITER_H
#define ED_PARQUET_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "parquet/schema.h"

/* parquet.thrift CompressionCodec values. */
typedef enum pq_codec {
  PQ_CODEC_UNCOMPRESSED = 0,
  PQ_CODEC_SNAPPY = 1,
  PQ_CODEC_ZSTD = 6,
} pq_codec_t;

typedef struct pq_writer_opts {
  pq_codec_t codec;       /* default ZSTD */
  int zstd_level;         /* default 1 */
  size_t row_group_bytes; /* close a row group past this many encoded bytes; default 128 MiB */
  size_t page_bytes;      /* target uncompressed page size; default 1 MiB */
  bool dictionary;        /* try RLE_DICTIONARY first; default true */
  size_t dict_max_bytes;  /* fall back to PLAIN past this dictionary size; default 1 MiB */
  size_t dict_trial;      /* after this many values of a flat column's chunk, fall back to
                           * PLAIN if the dictionary saves nothing; default 4096, 0 = never */
  const char *created_by; /* default "ehdelta version <VERSION> (build ehdelta)"; copied */
} pq_writer_opts_t;

/* Fills the defaults above. */
void pq_writer_opts_init(pq_writer_opts_t *o);

/* Receives the file's bytes in order. Return ED_OK or an error (which the
 * writer returns from the call that produced the bytes, prefixed). */
typedef ed_code_t (*pq_sink_fn)(void *ctx, const void *data, size_t len, ed_err_t *err);
/* A ready sink that appends to an ed_buf_t (ctx), for files that go to a
 * store in one PUT. */
ed_code_t pq_sink_buf(void *ctx, const void *data, size_t len, ed_err_t *err);

typedef struct pq_writer pq_writer_t;

/* Starts a file: writes the magic through sink. Copies schema (finishing it)
 * and opts (NULL = defaults). Caller frees with pq_writer_free. */
ed_code_t pq_writer_new(const pq_schema_t *schema, const pq_writer_opts_t *opts, pq_sink_fn sink,
                        void *ctx, pq_writer_t **out, ed_err_t *err);
/* Same, writing to fd (write(2), retried on EINTR/short writes; not closed). */
ed_code_t pq_writer_new_fd(const pq_schema_t *schema, const pq_writer_opts_t *opts, int fd,
                           pq_writer_t **out, ed_err_t *err);
/* Adds a key-value pair to the footer (copied). Any time before close. */
ed_code_t pq_writer_add_kv(pq_writer_t *w, const char *key, const char *value, ed_err_t *err);
/* Appends rows 0..nrows-1 of cols, one pq_col_t per top-level field in
 * schema order (borrowed for the call). Each column must hold >= nrows rows;
 * nulls in REQUIRED fields are ED_E_SCHEMA. May emit a row group. cols may
 * be NULL when nrows is 0. */
ed_code_t pq_writer_write(pq_writer_t *w, const pq_col_t *cols, size_t nrows, ed_err_t *err);
/* Closes the current row group now (no-op when empty). */
ed_code_t pq_writer_flush(pq_writer_t *w, ed_err_t *err);
/* Flushes, writes the footer and the trailing magic. After close only the
 * accessors below may be called. */
ed_code_t pq_writer_close(pq_writer_t *w, ed_err_t *err);
void pq_writer_free(pq_writer_t *w);

/* The writer's finished schema (leaf facts filled); borrows; valid until free. */
const pq_schema_t *pq_writer_schema(const pq_writer_t *w);
int64_t pq_writer_num_rows(const pq_writer_t *w);
/* Bytes given to the sink so far (after close: the file size). */
uint64_t pq_writer_bytes(const pq_writer_t *w);
size_t pq_writer_num_row_groups(const pq_writer_t *w);
/* Whole-file statistics of leaf (column order), for Delta's add.stats
 * (minValues/maxValues/nullCount); min/max bytes borrowed; valid until free. */
ed_code_t pq_writer_stats(const pq_writer_t *w, size_t leaf, pq_stats_t *out, ed_err_t *err);
/* The statistics written for one column chunk (row group rg, leaf), as in
 * the footer; borrowed; valid until free. Row groups count from 0 in the
 * order written (pq_writer_num_row_groups). */
ed_code_t pq_writer_chunk_stats(const pq_writer_t *w, size_t rg, size_t leaf, pq_stats_t *out,
                                ed_err_t *err);

#endif
