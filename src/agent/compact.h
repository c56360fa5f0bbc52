/* compact: the agent's background compaction (sink.compaction). One thread
 * (ag-compact) looks at each table at most once per interval; a partition
 * holding more small files than the bound is bin-packed into files of the
 * target size with optimize's code (delta/maint.h) and committed with
 * dataChange = false. It has its own store and table handles, so it never
 * takes a lock the flush thread waits for: ingestion commits only add files,
 * and the Delta log's optimistic concurrency puts a compaction commit on top
 * of any that landed meanwhile (dl_table_commit reads the winners). Failures
 * are logged and counted, never fatal: ingestion goes on, the next round
 * tries again. Owns: its thread, a copy of the specs, its handles. */
#ifndef ED_AGENT_COMPACT_H
#define ED_AGENT_COMPACT_H

#include <stdint.h>
#include <stdio.h>

#include "agent/metrics.h"
#include "common/err.h"
#include "store/store.h"

typedef struct ag_compact ag_compact_t;

typedef struct ag_compact_spec {
  const char *name;    /* the sink: metrics label and log lines */
  const char *url;     /* the table */
  int64_t min_files;   /* compact a partition with more small files than this */
  int64_t target_size; /* bytes; 0: the table's delta.targetFileSize, else 128 MiB */
  int64_t interval_us; /* the least time between two rounds on the table */
} ag_compact_spec_t;

/* Starts the thread over specs[0..n) (copied). store: credentials (borrowed
 * until ag_compact_stop, may be NULL); metrics and progress may be NULL
 * (progress gets one JSON line per compaction commit). The first round on
 * each table waits one interval. Caller stops it with ag_compact_stop. */
ed_code_t ag_compact_start(const ag_compact_spec_t *specs, size_t n, const st_opts_t *store,
                           ag_metrics_t *metrics, FILE *progress, ag_compact_t **out,
                           ed_err_t *err);
/* Asks the thread to stop, waits for the round it is in (a rewrite is not cut
 * short: its files would be left for vacuum), joins it and frees everything.
 * NULL is a no-op. */
void ag_compact_stop(ag_compact_t *c);

#endif
