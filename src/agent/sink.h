/* sink: a Delta sink's exactly-once core. A batch of rows (sm_batch_t)
 * becomes one Parquet file per partition value; the batch's checkpoint
 * (per-partition last sequence numbers, watermark, operator state) is
 * written first, under CHECKPOINTS/<batchId>.json, then the files are
 * committed with txn(appId = query id, version = batch id). On open, the
 * table's txn version for the query id names the last batch that landed and
 * its checkpoint says where each partition resumes. A checkpoint whose
 * commit never landed is simply rewritten when its batch is produced again.
 * Every commit also carries one txn per partition whose position moved
 * (appId "<query id>/<partition>", version = its last sequence number), based
 * on what this sink last committed for it: a partition another writer moved
 * meanwhile fails the commit with ED_E_FENCED (delta/table.h, dl_ptxn_t).
 * Owns its store handles, table snapshot and schemas. */
#ifndef ED_AGENT_SINK_H
#define ED_AGENT_SINK_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "agent/spark.h"
#include "common/err.h"
#include "parquet/schema.h"
#include "store/store.h"
#include "stream/batch.h"

/* Where a batch ends: the last sequence number taken from each partition. */
typedef struct ag_ckpt {
  int64_t batch_id;
  size_t n;
  char **partition;     /* ids as the hub names them */
  int64_t *seq;         /* last sequence number included */
  int64_t watermark_us; /* INT64_MIN: none */
  ed_buf_t state;       /* operator state (window_save bytes), may be empty */
} ag_ckpt_t;

/* Sets partition's last sequence number (adds the partition if new). */
ed_code_t ag_ckpt_set(ag_ckpt_t *c, const char *partition, int64_t seq, ed_err_t *err);
/* The last sequence number of partition; false when it has none. */
bool ag_ckpt_get(const ag_ckpt_t *c, const char *partition, int64_t *seq);
ed_code_t ag_ckpt_to_json(const ag_ckpt_t *c, const char *query_id, ed_buf_t *out, ed_err_t *err);
/* name: for messages. Fills c (caller frees with ag_ckpt_fini). */
ed_code_t ag_ckpt_from_json(const char *name, const char *json, size_t n, ag_ckpt_t *c,
                            ed_err_t *err);
void ag_ckpt_fini(ag_ckpt_t *c);

typedef struct ag_dsink ag_dsink_t;

typedef struct ag_dsink_opts {
  const char *url;                 /* the table */
  const char *checkpoint_url;      /* NULL: <url>/_ehdelta/checkpoints */
  const char *query_id;            /* txn appId */
  const sm_type_t *schema;         /* the rows' STRUCT; copied */
  const char *const *partition_by; /* NULL-terminated or NULL; used when creating */
  const st_opts_t *store;          /* credentials of both stores; NULL: defaults */
  bool merge_schema;               /* add the rows' new nullable columns to an existing table */
  int zstd_level;                  /* of the Parquet pages; 0: the writer's default */
  /* Take over from a stopped Spark query (ehdelta-run(1), TAKING OVER FROM
   * SPARK): its positions become this query's first batch. NULL: none. */
  const ag_spark_pos_t *takeover;
  const st_opts_t *takeover_store; /* of the Spark folder */
  bool takeover_force;             /* replace positions ehdelta already has; skip the txn check */
  /* Balanced reading by several agents (issue 18): no batch txn and no
   * checkpoint file; positions live only in the per-partition txns
   * (appId "<query_id>/<partition>") every commit carries, and open resumes
   * from them alone. Never for stateful sinks (windows, dedup): their state
   * lives in the checkpoint file. Not with takeover. */
  bool shared;
} ag_dsink_opts_t;

/* Opens (or creates) the table and reads where the query left off. An
 * existing table must have the rows' columns, by name, with the same types
 * (a NOT NULL row column fits a nullable table column, not the reverse)
 * (ED_E_SCHEMA names the first difference); with merge_schema, columns the
 * rows add are appended to the table's schema in one commit when nullable, as
 * Delta's mergeSchema does. *resume
 * gets the last landed batch's checkpoint (resume->batch_id = -1 and no
 * partitions when the query never committed), each partition's position
 * raised to its per-partition txn when that is further; shared: positions
 * from the per-partition txns only, batch_id a local counter. Caller frees with
 * ag_dsink_free and ag_ckpt_fini. */
ed_code_t ag_dsink_open(const ag_dsink_opts_t *o, ag_dsink_t **out, ag_ckpt_t *resume,
                        ed_err_t *err);
/* With o->takeover, ag_dsink_open also: refuses (ED_E_CONFIG) when the table
 * has no commit of the Spark query (its txn appId) or when ehdelta's own
 * positions are behind Spark's (both unless takeover_force); takes the
 * offsets of a batch whose Delta commit landed though Spark never wrote its
 * commits/ entry; and commits Spark's positions (next - 1 per partition) as
 * an empty batch with this query's txn and checkpoint before any data. When
 * ehdelta's positions are at or past Spark's, the takeover already happened
 * and nothing is done. */
/* The number of the table's row rules (CHECK constraints, invariants,
 * generated columns) the sink enforces. */
size_t ag_dsink_num_rules(const ag_dsink_t *s);
/* Screens the rows of chunk (rows of the sink's type; borrowed) whose sel is
 * set (sel NULL: all) against the rules, for constraint_violation =
 * dead-letter: bad[i] (chunk->nrows entries, the caller's) gets 0 when row i
 * keeps every rule or is not selected, else 1 + the index of the first rule
 * it breaks (at most 255). *nbad gets the number of broken rows. Uses its
 * own compiled rules: may run on the pipeline thread while a commit runs on
 * another, never on two threads at once. */
ed_code_t ag_dsink_screen(ag_dsink_t *s, const sm_batch_t *chunk, const uint8_t *sel,
                          int64_t now_us, uint8_t *bad, size_t *nbad, ed_err_t *err);
/* "CHECK constraint amount_positive (amount > 0) of table URL" for rule k
 * (0-based) into buf. */
void ag_dsink_rule_text(const ag_dsink_t *s, size_t k, char *buf, size_t n);
/* The batch id the next ag_dsink_commit must carry. */
int64_t ag_dsink_next_batch(const ag_dsink_t *s);
/* Writes b (borrowed) as batch ck->batch_id: checkpoint first, then the data
 * files, then the commit with its txn and the txns of the partitions whose
 * position moved since this sink last committed them. An empty b still
 * commits (the positions move); shared: no checkpoint file and no batch txn,
 * and a batch that moves no position and adds no row commits nothing.
 * *version gets the table version (may be NULL);
 * *already is set when the txn was found in the log (nothing written twice).
 * ED_E_FENCED when another writer moved one of ck's partitions since this
 * sink last committed it: nothing is committed, the batch is void. */
ed_code_t ag_dsink_commit(ag_dsink_t *s, const sm_batch_t *b, const ag_ckpt_t *ck, int64_t *version,
                          bool *already, ed_err_t *err);
/* Where the last ag_dsink_commit spent its time, in microseconds: the
 * checkpoint (Spark's walCommit), the data files (addBatch) and the Delta
 * commit (commitOffsets). */
typedef struct ag_dsink_timing {
  int64_t checkpoint_us, files_us, commit_us;
  size_t files;
  int64_t bytes;
} ag_dsink_timing_t;
void ag_dsink_last_timing(const ag_dsink_t *s, ag_dsink_timing_t *out);
void ag_dsink_free(ag_dsink_t *s);

#endif
