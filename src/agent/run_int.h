/* run_int: what the five files of the agent's run (run.c, plan.c, source.c,
 * slice.c, flush.c) share, and nothing outside src/agent/ includes: the run,
 * its partitions, sinks, jobs and event blocks, and the functions one of them
 * calls in another (ag_run_*, each defined in the file named above it).
 * run.c's opening comment draws the threads; @locality/@locks notes are at
 * the definitions. */
#ifndef ED_AGENT_RUN_INT_H
#define ED_AGENT_RUN_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/compact.h"
#include "agent/metrics.h"
#include "agent/run.h"
#include "agent/sink.h"
#include "agent/spark.h"
#include "common/backoff.h"
#include "common/err.h"
#include "eventhubs/client.h"
#include "stream/agg.h"
#include "stream/decode.h"
#include "stream/expr.h"
#include "stream/ring.h"
#include "stream/schema.h"
#include "stream/window.h"

#define RING_BLOCKS            128
#define ALIGN_BLOCK_EVENTS     64 /* most events per ring block while reading is aligned */
#define COMMIT_BACKOFF_BASE_US INT64_C(200000) /* 200 ms, doubling */
#define COMMIT_BACKOFF_CAP_US  (30 * ED_US_PER_SEC)
#define POLL_US                100000 /* the longest the pipeline sleeps without looking at stop and faults */
/* trigger = continuous: how often the pipeline looks whether a sink's commit
 * has landed while its next batch waits (the flush thread cannot wake it
 * through the ring, which has one producer: the network thread). */
#define CONTINUOUS_POLL_US 2000
/* trigger = continuous: a batch closes once the agent has spent this many
 * times the CPU of the sink's last commit since the previous close (so a
 * commit is at most a tenth of the agent's CPU: with what else each close
 * costs, within the 25% over a 1 s trigger), or once it has been
 * open CONTINUOUS_WAIT_US, whichever is first; DESIGN-NOTES has the figures. */
#define CONTINUOUS_AMORTISE 10
#define CONTINUOUS_WAIT_US  100000

/* ---- event blocks: what the network thread hands the pipeline ---- */

typedef struct evm {
  int64_t seq, off, enq;
  uint32_t body, blen, pk, pklen, pub, publen, props, nprops;
  uint8_t pk_set, pub_set;
  const char *body_what; /* static: eh_body_what's, NULL for a body of bytes */
} evm_t;

typedef struct blk {
  uint32_t part;
  uint32_t n;
  size_t bytes; /* body bytes */
  evm_t *ev;
  char *data;
} blk_t;

typedef enum { K_RAW, K_WINDOW, K_CONSOLE, K_DEAD } sink_kind_t;

struct run;

typedef struct part {
  struct run *run;
  uint32_t idx;
  const char *id; /* borrowed from the hub properties */
  size_t idlen;
  eh_receiver_t *rx;
  int64_t end;  /* available-now: the last sequence number at start (-1: empty) */
  int64_t seen; /* last sequence number the pipeline processed (-1: none) */
  /* seen, published once per block for the threads that report lag without
   * a delta sink's committed position (ag-flush, ag-monitor) */
  _Atomic int64_t seen_pub;
  bool done; /* available-now: nothing more to take */
  atomic_int paused;
  atomic_int held;          /* aligned reading: take nothing, grant no credit (pipeline sets) */
  atomic_int queued;        /* its blocks in the ring */
  int64_t until;            /* --until: the last sequence number to take (INT64_MAX: none) */
  int64_t taken_enq;        /* enqueued time of the last event the pipeline took (INT64_MIN) */
  _Atomic int64_t hub_enq;  /* the hub's last enqueued time, as last polled (INT64_MIN: empty) */
  int64_t in_fair;          /* events taken into the open batch of the fairness sink */
  atomic_int failed;        /* a terminal receiver state (STOLEN, FAILED) */
  _Atomic int64_t last_enq; /* the hub's last sequence number, as last polled (-1) */
  _Atomic int64_t received; /* the highest sequence number taken from the receiver (-1) */
  ed_err_t fail_err;        /* written once, before failed is set */
  int64_t seen_off;         /* the offset of the event at seen (-1: none) */
  /* with a checkpoint store (shared.c): read in this generation, and its
   * receiver closed early (lost, stolen): its blocks still in the ring are
   * dropped. Both written by the pipeline between generations or on its turn. */
  bool gen_owned;
  bool closed;
  /* shared.c's guard (ag-guard): this generation's proof of ownership ran
   * out or was lost. Set whatever the pipeline is doing (blocked on a full
   * flush queue, say): the network thread takes nothing and grants no credit
   * (as for held), the pipeline drops its queued blocks and closes it on its
   * next turn. */
  atomic_int unproven;
  /* reading_stopped logged for this generation: by the guard at the stop or
   * by the pipeline at the close, whichever came first, never twice */
  atomic_int stop_logged;
} part_t;

typedef struct sink {
  const ag_sink_t *conf; /* NULL for the dead-letter sink */
  const char *name, *query_id, *path;
  sink_kind_t kind;
  bool delta;
  bool screen; /* constraint_violation = dead-letter on a table with row rules */
  ag_dsink_t *ds;
  win_t *win;
  agg_spec_t *aggs;
  size_t naggs;
  char **keys;
  size_t nkeys;
  sm_batch_t *rows;           /* K_RAW, K_DEAD, raw console: the open batch */
  const sm_type_t *out;       /* the schema of what the sink writes */
  int64_t *resume;            /* per partition: skip sequence numbers <= this (-1: none) */
  int64_t *pos;               /* per partition: last sequence number covered (-1: none) */
  int64_t *start;             /* per partition: pos when the open batch began */
  _Atomic int64_t *committed; /* per partition: pos of the last landed batch (flush thread) */
  int64_t *pos_off;           /* per partition: the offset of the event at pos (-1: none) */
  int64_t *committed_off;     /* per partition: of committed, once known (flush thread) */
  int64_t next_batch;         /* console sinks count their own */
  int64_t max_events, max_bytes, trigger_us;
  bool continuous;    /* trigger = continuous: trigger_us is the least time between two closes */
  int64_t next_fire;  /* monotonic deadline of the interval trigger */
  int64_t closed;     /* monotonic time the last batch was closed */
  int64_t cpu_closed; /* the process's CPU time (us) when the last batch was closed */
  _Atomic int64_t commit_cpu_us; /* flush thread CPU of the sink's last job (ag-flush writes) */
  uint64_t in_events, in_bytes;
  int64_t opened_mono, opened_wall, proc_us;
  bool dirty;      /* positions moved since the last batch was closed */
  int outstanding; /* jobs queued or being committed (under run.mu) */
  uint64_t batches, rows_out;
} sink_t;

typedef struct job {
  struct job *next;
  sink_t *s;
  sm_batch_t *rows; /* owned; NULL: nothing to write */
  ag_ckpt_t ck;     /* owned */
  int64_t *start, *end;
  int64_t *end_off; /* the offsets of the events at end (-1: unknown) */
  uint64_t num_input;
  int64_t interval_us, proc_us, closed_mono, trigger_wall;
  bool has_ws;
  win_stats_t ws;
  uint64_t *drops; /* window sinks: per partition, dropped as late (batch, total) */
} job_t;

typedef struct run {
  const ag_conf_t *conf;
  const ag_run_opts_t *o;
  char runid[40];
  char source_desc[300];
  eh_client_t *client;
  eh_hub_props_t hp;
  ag_spark_pos_t spark; /* from_spark_checkpoint's positions (n = 0: none) */
  part_t *parts;
  size_t nparts;
  sink_t *sinks;
  size_t nsinks;
  sink_t *dl; /* the dead-letter sink or NULL */
  bool available_now;
  int64_t until_us; /* --until TIME (INT64_MAX: none) */
  /* event-time alignment: the first window sink with a watermark gives each
   * partition's event time; fair: the smallest size-bounded sink's batch is
   * filled evenly over the partitions with a backlog */
  sink_t *align, *fair;
  int64_t drift;    /* max_drift (-1: off) */
  atomic_int share; /* aligned: most ring blocks one partition may have queued (0: no bound) */
  rb_t *ring;
  atomic_int any_paused;
  bool want_props;
  /* decoding and derived columns */
  sm_type_t *body;
  sm_meta_col_t *meta;
  size_t nmeta;
  sm_dec_t *dec;
  sm_batch_t *db;      /* decoded chunk */
  sm_type_t **schemas; /* schemas[k]: decoded + the first k derived columns */
  sm_expr_t **derive;  /* nderive, each bound to schemas[k] */
  size_t nderive;
  sm_batch_t eb;  /* the enriched chunk: db's columns (borrowed) + derived (owned) */
  sink_t *direct; /* the first raw (delta or console) sink: decoded into when it takes every row */
  sm_batch_t tb;  /* the chunk as a view of the tail of direct's batch (cols: views, owned) */
  sm_expr_t *filter;
  uint8_t *mask, *smask, *vmask, *vbad;
  size_t mask_cap;
  uint32_t *row_ev; /* chunk row -> event index in the block */
  size_t row_ev_cap;
  sm_str_t *pkeys, *pvals;
  size_t props_cap;
  uint64_t events, dead, bytes;
  /* flush thread */
  pthread_t flusher;
  bool flusher_up;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  job_t *head, *tail;
  size_t queued, queue_cap;
  bool closing;
  pthread_t monitor;
  bool monitor_up;
  ag_compact_t *compact; /* sink.compaction's thread, NULL when no sink asks for it */
  ed_code_t flush_rc;
  ed_err_t flush_err;
  ed_backoff_t commit_backoff; /* commit_job's delays (flush thread only) */
  /* several agents (shared.c; NULL without [source] checkpoint_store) */
  struct ag_shr *shr;
  bool balanced; /* stateless with a checkpoint store: the sinks open shared (sink.h) */
  bool gen_end;  /* the pipeline ends this generation (owned set changed, fenced) */
  char ns[300];  /* the namespace as the SDKs name their records: the endpoint's authority */
} run_t;

/* run.c */
/* The one out-of-memory error of the run, naming what could not be had. */
ed_code_t ag_run_nomem(ed_err_t *err, const char *what);
/* A sink's open batch has reached its event or byte bound. */
bool ag_run_size_due(const sink_t *s);
/* trigger = continuous: whether the CPU the agent spent since a sink's last
 * close (cpu_spent_us) pays for a commit that cost commit_cpu_us, so that
 * the batch may close before CONTINUOUS_WAIT_US. */
bool ag_run_commit_paid(int64_t cpu_spent_us, int64_t commit_cpu_us);

/* plan.c */
/* Frees a list from split_list: the strings and the array. */
void ag_run_free_list(char **v, size_t n);
ed_code_t ag_run_build_plan(run_t *r, ed_err_t *err);
ed_code_t ag_run_parse_until(run_t *r, ed_err_t *err);
ed_code_t ag_run_open_sinks(run_t *r, ed_err_t *err);

/* source.c */
ed_code_t ag_run_open_source(run_t *r, ed_err_t *err);
ed_code_t ag_run_start_receivers(run_t *r, ed_err_t *err);
void ag_run_mark_idle(run_t *r, win_t *w, int64_t now_wall);
void ag_run_align(run_t *r);
void ag_run_resume_paused(run_t *r);
void ag_run_update_lag(run_t *r);
void *ag_run_monitor_main(void *arg);

/* slice.c */
ed_code_t ag_run_process_block(run_t *r, blk_t *b, ed_err_t *err);

/* shared.c: several agents on one hub through a checkpoint store */
/* Refuses what a checkpoint store cannot serve (run --check). */
ed_code_t ag_shr_check(const run_t *r, ed_err_t *err);
/* Runs the whole agent in generations (after the source is open): owner
 * thread, then per generation sinks, flush thread, receivers for the owned
 * partitions, the pipeline until the owned set changes or stop; on stop the
 * claims are released. */
ed_code_t ag_shr_run(run_t *r, ed_err_t *err);
/* The pipeline's look at ownership on each turn: lost partitions' receivers
 * closed at once, r->gen_end set on any change. */
void ag_shr_turn(run_t *r);
/* A partition's receiver was stolen (a higher epoch): closes it, ends the
 * generation. */
void ag_shr_stolen(run_t *r, size_t p);
/* Partition p's receiver was refused at attach because a higher epoch reads
 * it (a claim race lost between our round and the hub): no reading began,
 * the generation ends, and p is not taken back before a round has listed the
 * records again. @locality pipeline thread (start of a generation) */
void ag_shr_refused(run_t *r, size_t p);
/* After a landed commit of j (flush thread): the SDK checkpoints of the
 * partitions whose least committed position moved, at most one a partition
 * per ownership_renew (the rest when the generation ends). j NULL: every
 * partition (the flush thread, idle for a renewal interval). */
void ag_shr_checkpoint(run_t *r, const job_t *j);
/* This agent's owner id (borrowed, valid for the run). */
const char *ag_shr_owner_id(const run_t *r);
/* The pipeline loop and the end of a generation, shared with run.c. */
ed_code_t ag_run_pipeline(run_t *r, ed_err_t *err);
ed_code_t ag_run_start_flush(run_t *r, ed_err_t *err);
void ag_run_stop_flush(run_t *r);
/* Frees every sink and what hangs on them (the plan's sinks are rebuilt by
 * ag_run_rebuild_sinks). */
void ag_run_free_sinks(run_t *r);
/* plan.c: the sinks built again from the configuration (a new generation). */
ed_code_t ag_run_rebuild_sinks(run_t *r, ed_err_t *err);

/* flush.c */
ed_code_t ag_run_close_batch(run_t *r, sink_t *s, ed_err_t *err);
ed_code_t ag_run_close_batch_one(run_t *r, sink_t *s, ed_err_t *err);
void *ag_run_flush_main(void *arg);

#endif
