/* table: one Delta table: its snapshot (protocol, metaData, live files,
 * tombstones, latest txn per appId) and the commit loop.
 * Owns: log replay (_last_checkpoint, the checkpoint, then JSON commits),
 * creating tables (version 0), optimistic commits with put-if-absent and
 * bounded retry, post-commit checkpoints and log cleanup. Never prints.
 * Called by the sink (agent/), maint.c (optimize, vacuum, inspect), tests and
 * the bench. Not thread-safe: one table object per thread.
 * Rules: delta-parquet.md §B.4 (conflicts), §A.7 (txn), Part C. */
#ifndef ED_DELTA_TABLE_H
#define ED_DELTA_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "delta/actions.h"
#include "store/store.h"

typedef struct dl_table dl_table_t;

/* What a writer is about to do to a table: each has its own obligations
 * under the protocol's features (features.h). */
typedef enum dl_op { DL_OP_APPEND = 0, DL_OP_OPTIMIZE, DL_OP_VACUUM } dl_op_t;

typedef struct dl_create_opts {
  const char *schema_string;         /* Spark StructType JSON (dl_schema_* builds one) */
  const char *const *partition_cols; /* NULL-terminated, or NULL */
  const dl_kv_t *config;             /* table properties, e.g. delta.checkpointInterval */
  size_t nconfig;
  const char *name; /* optional */
} dl_create_opts_t;

/* Loads the latest snapshot of the table rooted at store (borrows store;
 * valid until dl_table_free). ED_E_NOT_FOUND when there is no table;
 * ED_E_CORRUPT for a malformed or truncated commit; ED_E_UNSUPPORTED for a
 * protocol or reader feature this reader does not implement. Caller frees
 * with dl_table_free. */
ed_code_t dl_table_open(st_store_t *store, dl_table_t **out, ed_err_t *err);
/* Creates the table (version 0: protocol 1/2, metaData) or, when it already
 * exists, opens it and checks that schema and partition columns match
 * (ED_E_SCHEMA otherwise). Caller frees with dl_table_free. */
ed_code_t dl_table_create(st_store_t *store, const dl_create_opts_t *o, dl_table_t **out,
                          ed_err_t *err);
void dl_table_free(dl_table_t *t);
/* Brings the snapshot up to the newest version by reading the commits after
 * it (a long-lived reader's refresh, far cheaper than a new open). A failure
 * leaves a snapshot that may hold part of a commit: free it and open anew. */
ed_code_t dl_table_update(dl_table_t *t, ed_err_t *err);

st_store_t *dl_table_store(const dl_table_t *t);
int64_t dl_table_version(const dl_table_t *t);
/* Borrow; valid until the next refresh/commit/free. */
const dl_protocol_t *dl_table_protocol(const dl_table_t *t);
const dl_metadata_t *dl_table_metadata(const dl_table_t *t);
/* Latest txn version of app_id; false when the app never committed. */
bool dl_table_txn_version(const dl_table_t *t, const char *app_id, int64_t *version);
size_t dl_table_num_txns(const dl_table_t *t);
const dl_txn_t *dl_table_txn_at(const dl_table_t *t, size_t i);
/* Live files (any order). Borrow; valid until the next refresh/commit/free. */
size_t dl_table_num_files(const dl_table_t *t);
const dl_add_t *dl_table_file(const dl_table_t *t, size_t i);
size_t dl_table_num_tombstones(const dl_table_t *t);
const dl_remove_t *dl_table_tombstone(const dl_table_t *t, size_t i);
/* Version of the checkpoint the snapshot started from, or -1. */
int64_t dl_table_checkpoint_version(const dl_table_t *t);
/* Table property (metaData.configuration) or def. */
const char *dl_table_config(const dl_table_t *t, const char *key, const char *def);

/* One partition's position, committed as a txn action (appId
 * "<query id>/<partition id>", version = the last sequence number the commit
 * covers) by writers that share a table's partitions (issue 18). base is the
 * version the writer believes the table holds for app_id (-1: none): the
 * commit is refused (ED_E_FENCED) when the table holds anything else, since
 * then another writer moved that partition and this batch repeats or skips
 * events. Borrowed for the call. */
typedef struct dl_ptxn {
  const char *app_id;
  int64_t base, version;
} dl_ptxn_t;

/* What one commit carries. adds/removes/ptxns are borrowed for the call. A
 * txn is written when app_id is set, and one per ptxns entry (distinct appIds,
 * none equal to app_id). operation defaults to "WRITE" ("STREAMING UPDATE"
 * for txn commits). */
typedef struct dl_commit {
  const dl_add_t *adds;
  size_t nadds;
  const dl_remove_t *removes;
  size_t nremoves;
  const char *app_id;
  int64_t txn_version;
  const char *operation;
  const char *params_json;       /* operationParameters object, or NULL */
  const char *metrics_json;      /* operationMetrics object, or NULL (computed) */
  int max_attempts;              /* 0: 100 */
  bool no_checkpoint;            /* skip the post-commit checkpoint (tests, benches) */
  const dl_metadata_t *metadata; /* a new metaData action (schema evolution), or NULL */
  dl_op_t op;                    /* whose obligations apply (dl_feat_check); 0: append */
  const dl_ptxn_t *ptxns;        /* per-partition positions with their bases, or NULL */
  size_t nptxns;
} dl_commit_t;

typedef struct dl_commit_result {
  int64_t version;        /* the version that holds the commit */
  int attempts;           /* put-if-absent attempts */
  bool already_committed; /* the txn (app_id, txn_version) and every ptxn were already in the log */
  bool checkpointed;      /* a checkpoint was written after it */
} dl_commit_result_t;

/* Commits c at the next version, after dl_feat_check(c->op) (ED_E_UNSUPPORTED:
 * nothing written). Before the first attempt every ptxn's base must equal the
 * snapshot's txn version for its app_id (-1 when absent), else ED_E_FENCED
 * (nothing written). On a lost race it reads the winning
 * commits and retries at the next version unless a winner changed the
 * protocol or metadata, removed a file c removes, or carries a txn for c's
 * app_id or a ptxn's app_id: versions >= c's for the app_id and for every
 * ptxn mean c is already in the table (result.already_committed, ED_OK);
 * otherwise a winner's txn for a ptxn's app_id means another writer moved
 * that partition (ED_E_FENCED, naming the appId, our base and the winner's
 * version), and one for app_id alone means another writer owns the app_id
 * (ED_E_CONFLICT). Bounded by max_attempts (ED_E_CONFLICT). After
 * success the snapshot is at result.version (its txn map holds every txn
 * written) and, every delta.checkpointInterval versions, a checkpoint and log
 * cleanup follow. */
ed_code_t dl_table_commit(dl_table_t *t, const dl_commit_t *c, dl_commit_result_t *res,
                          ed_err_t *err);

/* Writes a checkpoint of the current snapshot and _last_checkpoint. */
ed_code_t dl_table_checkpoint(dl_table_t *t, ed_err_t *err);
/* Deletes commits and checkpoints older than delta.logRetentionDuration
 * that are strictly before the newest checkpoint at or before the cut-off
 * (delta-parquet.md §C.6). *deleted may be NULL. */
ed_code_t dl_table_cleanup_log(dl_table_t *t, int64_t now_ms, size_t *deleted, ed_err_t *err);

/* "_delta_log/00000000000000000042.json" (out: 48 bytes). */
void dl_log_name(int64_t version, const char *suffix, char out[64]);

#endif
