/* maint: table maintenance: optimize (bin-packing compaction), vacuum
 * (deleting files no live version references) and inspection.
 * Owns the policies (which files, which order, what is safe to delete);
 * the log mechanics stay in table.c. Never prints: inspection renders into a
 * buffer the CLI prints. Called by cli/cmd_optimize.c, cmd_vacuum.c,
 * cmd_inspect.c and the agent's maintenance. Rules: delta-parquet.md §E.3
 * (compaction commit), §A.6 (tombstones and VACUUM). */
#ifndef ED_DELTA_MAINT_H
#define ED_DELTA_MAINT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "delta/table.h"

typedef struct dl_optimize_opts {
  int64_t target_size; /* bytes; 0: delta.targetFileSize or 128 MiB */
  bool dry_run;        /* plan only */
  /* 0: every partition, every small file (the CLI's optimize). Else leave a
   * partition alone unless it holds more small files than this, and rewrite
   * only its smallest files of a like size (size-tiered: a big file waits
   * until the small ones add up to it), bounding how often a byte is
   * rewritten by a compaction that runs again and again. */
  size_t min_files;
} dl_optimize_opts_t;

typedef struct dl_optimize_result {
  size_t partitions; /* partitions that had something to compact */
  size_t files_removed, files_added;
  int64_t bytes_removed, bytes_added;
  int64_t rows;
  int64_t version; /* commit version, -1 when nothing was done */
  int attempts;    /* of the commit: 1 + the concurrent commits it was retried on top of */
} dl_optimize_result_t;

/* Rewrites, per partition, files smaller than the target into files of
 * about the target size, then commits removes + adds with dataChange=false
 * (streaming readers skip them; legal on append-only tables). A concurrent
 * commit removing one of the same files aborts it (ED_E_CONFLICT) and the
 * new files are deleted. */
ed_code_t dl_optimize(dl_table_t *t, const dl_optimize_opts_t *o, dl_optimize_result_t *res,
                      ed_err_t *err);

typedef struct dl_vacuum_opts {
  int64_t retain_us; /* keep unreferenced files younger than this */
  bool dry_run;
  bool force;     /* allow retain below delta.deletedFileRetentionDuration */
  int64_t now_ms; /* 0: now */
} dl_vacuum_opts_t;

typedef struct dl_vacuum_result {
  size_t files; /* deleted (or that would be, with dry_run) */
  int64_t bytes;
  char **paths; /* their keys, NULL-terminated; free with dl_vacuum_result_fini */
} dl_vacuum_result_t;

/* Deletes data files that no live add references, that are not tombstones
 * younger than the retention, and whose modification time is older than
 * retain. Never touches _delta_log/ or other '_' / '.' directories. */
ed_code_t dl_vacuum(dl_table_t *t, const dl_vacuum_opts_t *o, dl_vacuum_result_t *res,
                    ed_err_t *err);
void dl_vacuum_result_fini(dl_vacuum_result_t *r);

/* Renders version, protocol, files, rows, bytes, partitions, schema, txn per
 * appId and checkpoint as text lines (or one JSON object) into out. */
ed_code_t dl_inspect(const dl_table_t *t, bool json, ed_buf_t *out, ed_err_t *err);

#endif
