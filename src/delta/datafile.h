/* datafile: writes one Parquet data file of a table through its store and
 * returns the add action that commits it (path as Spark lays it out:
 * `<col>=<value>/part-00000-<uuid>.c000.zstd.parquet`, exact size, stats).
 * Buffers the file in memory (bounded by the caller's file-size target) and
 * uploads it in one atomic put. Called by the sink (agent/), optimize and
 * test tools; commit the returned adds with dl_table_commit, together with
 * the txn, so files and exactly-once state land atomically. */
#ifndef ED_DELTA_DATAFILE_H
#define ED_DELTA_DATAFILE_H

#include "delta/actions.h"
#include "delta/table.h"
#include "parquet/writer.h"

typedef struct dl_file_writer dl_file_writer_t;

/* schema: the data columns only (partition columns are not stored in data
 * files; Spark omits them); copied. pv: one value per partition column of
 * the table, in its order (copied; value NULL = null). opts NULL = ZSTD
 * defaults. Caller frees with dl_file_writer_free. */
ed_code_t dl_file_writer_new(dl_table_t *t, const pq_schema_t *schema, const dl_kv_t *pv,
                             size_t npv, const pq_writer_opts_t *opts, dl_file_writer_t **out,
                             ed_err_t *err);
/* Appends rows (cols as pq_writer_write takes them; borrowed for the call). */
ed_code_t dl_file_writer_write(dl_file_writer_t *w, const pq_col_t *cols, size_t nrows,
                               ed_err_t *err);
int64_t dl_file_writer_rows(const dl_file_writer_t *w);
uint64_t dl_file_writer_bytes(const dl_file_writer_t *w);
/* Closes the file, uploads it and fills add (caller frees with dl_add_fini).
 * data_change: true for new data, false for compaction. */
ed_code_t dl_file_writer_finish(dl_file_writer_t *w, bool data_change, dl_add_t *add,
                                ed_err_t *err);
/* Frees; an unfinished file is abandoned (nothing was uploaded). */
void dl_file_writer_free(dl_file_writer_t *w);

#endif
