/* stats: Delta per-file statistics (add.stats) and the Spark schemaString of
 * a Parquet schema. Owns Spark's value formats and truncation rules
 * (delta-parquet.md §A.5 "stats"): exact numRecords, nullCount for covered
 * leaves, min/max for numeric, date, timestamp (ms, UTC) and string (32
 * characters; max gets a tie-breaker) leaves, none for boolean/binary/
 * arrays/maps, none when NaN or all null. Called by datafile.c, maint.c
 * and tests. */
#ifndef ED_DELTA_STATS_H
#define ED_DELTA_STATS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "common/err.h"
#include "parquet/writer.h"

#define DL_STATS_STRING_PREFIX 32
#define DL_STATS_INDEXED_COLS  32

/* add.stats for the file a closed writer produced (first max_leaves leaf
 * columns in schema order; <= 0 means 32). nan: per leaf, true when a NaN
 * was written (Parquet statistics skip NaN, Spark orders it above every
 * number, so such a column gets no min/max); NULL = none. Appends JSON. */
ed_code_t dl_stats_from_writer(const pq_writer_t *w, int max_leaves, const bool *nan, ed_buf_t *out,
                               ed_err_t *err);
/* Marks in nan[leaf] the FLOAT/DOUBLE leaves (outside lists and maps) of
 * rows 0..nrows-1 of cols that hold a NaN. s must be finished. */
void dl_stats_scan_nan(const pq_schema_t *s, const pq_col_t *cols, size_t nrows, bool *nan);
/* The Spark truncation of a string min (first 32 code points) and max
 * (prefix plus tie-breaker). Append to out; max returns false when no valid
 * bound exists (then the max is omitted). */
void dl_stats_trunc_min(const char *s, size_t n, ed_buf_t *out);
bool dl_stats_trunc_max(const char *s, size_t n, ed_buf_t *out);
/* Spark StructType JSON for a Parquet schema (root's children as fields). */
ed_code_t dl_schema_from_pq(const pq_schema_t *s, ed_buf_t *out, ed_err_t *err);

/* A copy of full without the top-level fields named in drop (NULL-terminated):
 * the schema of a partitioned table's data files, which never store the
 * partition columns. Caller frees with pq_schema_free. */
ed_code_t dl_schema_without(const pq_schema_t *full, const char *const *drop, pq_schema_t **out,
                            ed_err_t *err);

#endif
