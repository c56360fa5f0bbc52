/* path: data-file paths as Spark writes them: Hive-style partition
 * directories (`col=escaped value/`, Spark's escapePathName) and the log's
 * relative-URI form of a path (percent-encoded). delta-parquet.md §A.5.
 * Pure functions; called by datafile.c, maint.c and tests. */
#ifndef ED_DELTA_PATH_H
#define ED_DELTA_PATH_H

#include <stddef.h>

#include "common/buf.h"
#include "delta/actions.h"
#include "parquet/schema.h"

#define DL_HIVE_NULL "__HIVE_DEFAULT_PARTITION__"

/* Appends "c1=v1/c2=v2/" for the partition values (in pv order); a null or
 * empty value becomes __HIVE_DEFAULT_PARTITION__. */
ed_code_t dl_path_partition_dir(ed_buf_t *out, const dl_kv_t *pv, size_t npv);
/* Appends s as a relative URI: every byte outside A-Z a-z 0-9 - _ . ~ = + /
 * becomes %XX (uppercase). */
ed_code_t dl_path_to_uri(ed_buf_t *out, const char *s, size_t n);
/* Appends the decoded (physical, storage-key) form of a log path. */
ed_code_t dl_path_from_uri(ed_buf_t *out, const char *uri, ed_err_t *err);

/* Appends row `row` of a partition column as Delta serialises partition
 * values (PROTOCOL "Partition Value Serialization"): integers in decimal,
 * booleans true/false, dates YYYY-MM-DD, timestamps ISO-8601 UTC with
 * microseconds ("2024-11-24T10:00:00.000000Z"), strings as is. *is_null is
 * set for a null (and for an empty string, which Delta reads as null).
 * ED_E_UNSUPPORTED for types that cannot partition (float, binary, nested). */
ed_code_t dl_pv_format(pq_type_t type, const pq_col_t *col, size_t row, ed_buf_t *out,
                       bool *is_null, ed_err_t *err);

#endif
