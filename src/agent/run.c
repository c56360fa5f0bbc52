/* run: the agent's run loop. Three threads, as DESIGN.md draws them:
 *  - network: the Event Hubs client's own thread. A partition receiver's
 *    callback copies the events it is offered into one block and pushes it on
 *    the ring. A full ring takes nothing: the receiver keeps the events and
 *    grants no more credit until the pipeline has room again (back-pressure
 *    reaches the hub; memory stays bounded; nothing is dropped).
 *  - pipeline (the caller's thread): pops blocks, decodes each event once
 *    into a chunk of rows, adds the derived columns, applies the filter and
 *    fans the chunk out to every sink (raw rows appended, windows updated, bad
 *    events to the dead-letter batch). When a sink's trigger fires (interval,
 *    size bound, end of the available data, stop) its batch is closed: rows,
 *    the positions they cover and the operator state become one job.
 *  - flush: takes jobs in order, commits each (sink.h: checkpoint, files,
 *    txn commit; transient storage faults retried), prints console tables and
 *    writes one progress line per batch.
 * Every sink keeps its own positions. One receiver per partition serves all
 * of them, starting after the least advanced delta sink; a sink skips what it
 * already has. The dead-letter table commits before any sink whose batch
 * covers its events, so a bad event is never behind a committed position
 * without being committed itself.
 * Thread notes (librdkafka's): `@locality` names the thread a function runs
 * on (eh-net, the pipeline = the caller's, ag-flush, ag-monitor), `@locks`
 * the lock it takes or expects held; run.mu guards the job queue, closing,
 * flush_rc and the sinks' outstanding counts, and nothing else. */
#include "agent/run.h"

#include <inttypes.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/compact.h"
#include "agent/console.h"
#include "agent/sink.h"
#include "common/backoff.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/notify.h"
#include "common/time.h"
#include "eventhubs/client.h"
#include "eventhubs/connstr.h"
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
  bool done;    /* available-now: nothing more to take */
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
  int64_t next_batch;         /* console sinks count their own */
  int64_t max_events, max_bytes, trigger_us;
  bool continuous;   /* trigger = continuous: trigger_us is the least time between two closes */
  int64_t next_fire; /* monotonic deadline of the interval trigger */
  int64_t closed;    /* monotonic time the last batch was closed */
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
} run_t;

/* ---- small helpers ---- */

static ed_code_t nomem(ed_err_t *err, const char *what) {
  return ed_err_set(err, ED_E_NOMEM, "run: out of memory (%s)", what);
}

/* Splits a comma-separated list at commas outside parentheses and quotes. */
static ed_code_t split_list(const char *text, char ***out, size_t *n, ed_err_t *err) {
  *out = NULL;
  *n = 0;
  char *copy = strdup(text ? text : "");
  if (!copy)
    return nomem(err, "list");
  int depth = 0;
  char quote = 0;
  char *startp = copy;
  ed_code_t rc = ED_OK;
  for (char *p = copy;; p++) {
    if (quote) {
      if (*p == quote)
        quote = 0;
      else if (!*p)
        break;
      continue;
    }
    if (*p == '\'' || *p == '"' || *p == '`')
      quote = *p;
    else if (*p == '(')
      depth++;
    else if (*p == ')')
      depth--;
    if ((*p == ',' && depth == 0) || !*p) {
      bool end = !*p;
      *p = 0;
      char *t = ag_trim(startp);
      if (*t) {
        char **nv = realloc(*out, (*n + 1) * sizeof *nv);
        if (!nv || !(nv[*n] = strdup(t))) {
          if (nv)
            *out = nv;
          rc = nomem(err, "list");
          break;
        }
        *out = nv;
        (*n)++;
      }
      if (end)
        break;
      startp = p + 1;
    }
  }
  free(copy);
  return rc;
}

static void free_list(char **v, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

/* ---- network thread: receiver callbacks ---- */

/* @locality network thread (eh-net)  @locks none: only atomics and the ring (rb_push locks itself)
 */
static size_t on_events(void *ctx, eh_receiver_t *rx, const eh_event_t *evs, size_t n) {
  part_t *pt = ctx;
  run_t *r = pt->run;
  (void)rx;
  int share = atomic_load(&r->share);
  if (rb_free_slots(r->ring) == 0 || atomic_load(&pt->held) ||
      (share && atomic_load(&pt->queued) >= share))
    goto full;
  size_t bytes = 0;
  for (size_t i = 0; i < n; i++) {
    bytes += evs[i].body_len + evs[i].partition_key_len + evs[i].publisher_len;
    if (r->want_props)
      for (size_t k = 0; k < evs[i].nprops; k++)
        bytes += 8 + evs[i].props[k].key_len + evs[i].props[k].text_len;
  }
  blk_t *b = malloc(sizeof *b + n * sizeof(evm_t) + bytes + 1);
  if (!b)
    goto full;
  b->part = pt->idx;
  b->n = (uint32_t)n;
  b->ev = (evm_t *)(b + 1);
  b->data = (char *)(b->ev + n);
  size_t at = 0, body_bytes = 0;
  for (size_t i = 0; i < n; i++) {
    const eh_event_t *e = &evs[i];
    evm_t *m = &b->ev[i];
    m->seq = e->sequence_number;
    m->off = e->offset;
    m->enq = e->enqueued_time_us;
    m->body = (uint32_t)at;
    m->blen = (uint32_t)e->body_len;
    m->body_what = eh_body_what(e->body_kind, e->body, e->body_len);
    if (e->body_len)
      memcpy(b->data + at, e->body, e->body_len);
    at += e->body_len;
    body_bytes += e->body_len;
    m->pk_set = e->partition_key != NULL;
    m->pk = (uint32_t)at;
    m->pklen = (uint32_t)e->partition_key_len;
    if (e->partition_key_len)
      memcpy(b->data + at, e->partition_key, e->partition_key_len);
    at += e->partition_key_len;
    m->pub_set = e->publisher != NULL;
    m->pub = (uint32_t)at;
    m->publen = (uint32_t)e->publisher_len;
    if (e->publisher_len)
      memcpy(b->data + at, e->publisher, e->publisher_len);
    at += e->publisher_len;
    m->props = (uint32_t)at;
    m->nprops = r->want_props ? (uint32_t)e->nprops : 0;
    for (size_t k = 0; k < m->nprops; k++) {
      const eh_prop_t *p = &e->props[k];
      uint32_t kl = (uint32_t)p->key_len,
               vl = p->kind == EH_VAL_NULL ? UINT32_MAX : (uint32_t)p->text_len;
      memcpy(b->data + at, &kl, 4);
      memcpy(b->data + at + 4, p->key, kl);
      at += 4 + kl;
      memcpy(b->data + at, &vl, 4);
      at += 4;
      if (vl != UINT32_MAX) {
        memcpy(b->data + at, p->text, vl);
        at += vl;
      }
    }
  }
  b->bytes = body_bytes;
  atomic_fetch_add(&pt->queued, 1);
  if (rb_push(r->ring, b) == ED_OK) {
    /* only this thread writes it */
    int64_t top = atomic_load(&pt->received);
    for (size_t i = 0; i < n; i++)
      top = evs[i].sequence_number > top ? evs[i].sequence_number : top;
    atomic_store(&pt->received, top);
    return n;
  }
  atomic_fetch_sub(&pt->queued, 1);
  free(b);
full:
  atomic_store(&pt->paused, 1);
  atomic_store(&r->any_paused, 1);
  return 0;
}

/* @locality network thread (eh-net)  @locks none: fail_err is written before failed is set */
static void on_rx_state(void *ctx, eh_receiver_t *rx, eh_state_t st, const ed_err_t *err) {
  part_t *pt = ctx;
  (void)rx;
  ag_metrics_set_state(pt->run->o->metrics, pt->id, eh_state_name(st));
  if (st == EH_STATE_RETRYING && err)
    ED_LOG_WARN("partition_retry", "partition=%s %s", pt->id, err->msg);
  if ((st == EH_STATE_STOLEN || st == EH_STATE_FAILED) && !atomic_load(&pt->failed)) {
    if (err)
      pt->fail_err = *err;
    else
      ed_err_set(&pt->fail_err, ED_E_CONNECTION, "receiver %s", eh_state_name(st));
    atomic_store(&pt->failed, (int)st);
  }
}

/* ---- progress lines ---- */

static void put_time(ed_buf_t *b, const char *key, int64_t us, bool comma) {
  char t[ED_TIME_ISO_MAX];
  if (us == INT64_MIN) {
    ed_buf_printf(b, "%s\"%s\":null", comma ? "," : "", key);
    return;
  }
  ed_time_format_iso(us, 3, t);
  ed_buf_printf(b, "%s\"%s\":\"%s\"", comma ? "," : "", key, t);
}

/* @locality flush thread (ag-flush)  @locks none */
static void put_offsets(ed_buf_t *b, const run_t *r, const char *key, const int64_t *seq) {
  ed_buf_printf(b, ",\"%s\":{", key);
  ed_buf_json_str(b, r->hp.name ? r->hp.name : "", r->hp.name ? strlen(r->hp.name) : 0);
  ed_buf_puts(b, ":{");
  bool first = true;
  for (size_t p = 0; p < r->nparts; p++) {
    if (seq[p] < 0)
      continue;
    ed_buf_printf(b, "%s\"%s\":%" PRId64, first ? "" : ",", r->parts[p].id, seq[p]);
    first = false;
  }
  ed_buf_puts(b, "}}");
}

static double rate(uint64_t n, int64_t us) { return us > 0 ? (double)n * 1e6 / (double)us : 0.0; }

/* One StreamingQueryProgress-shaped object (Spark's field names).
 * @locality flush thread (ag-flush)  @locks none: the partitions' end and last_enq are read
 * (atomics) */
static void progress_line(run_t *r, const job_t *j, const ag_dsink_timing_t *tm, int64_t version,
                          bool already, int64_t queue_us, int64_t total_us, ed_buf_t *b) {
  const sink_t *s = j->s;
  ed_buf_puts(b, "{\"id\":");
  ed_buf_json_str(b, s->query_id, strlen(s->query_id));
  ed_buf_printf(b, ",\"runId\":\"%s\",\"name\":", r->runid);
  ed_buf_json_str(b, s->name, strlen(s->name));
  put_time(b, "timestamp", j->trigger_wall, true);
  ed_buf_printf(b,
                ",\"batchId\":%" PRId64 ",\"numInputRows\":%" PRIu64
                ",\"inputRowsPerSecond\":%.1f,\"processedRowsPerSecond\":%.1f",
                j->ck.batch_id, j->num_input, rate(j->num_input, j->interval_us),
                rate(j->num_input, total_us));
  ed_buf_printf(b,
                ",\"durationMs\":{\"getBatch\":%" PRId64 ",\"queueWait\":%" PRId64
                ",\"walCommit\":%" PRId64 ",\"addBatch\":%" PRId64 ",\"commitOffsets\":%" PRId64
                ",\"triggerExecution\":%" PRId64 "}",
                j->proc_us / 1000, queue_us / 1000, tm->checkpoint_us / 1000, tm->files_us / 1000,
                tm->commit_us / 1000, total_us / 1000);
  if (j->has_ws) {
    const win_stats_t *w = &j->ws;
    ed_buf_puts(b, ",\"eventTime\":{");
    put_time(b, "min", w->event_time_min, false);
    put_time(b, "max", w->event_time_max, true);
    put_time(b, "avg", w->event_time_avg, true);
    put_time(b, "watermark", w->watermark_us, true);
    ed_buf_printf(
        b,
        "},\"stateOperators\":[{\"operatorName\":\"stateStoreSave\",\"numRowsTotal\":%" PRIu64
        ",\"numRowsUpdated\":%" PRIu64 ",\"numRowsRemoved\":%" PRIu64
        ",\"memoryUsedBytes\":%" PRIu64 ",\"numRowsDroppedByWatermark\":%" PRIu64 "}]",
        w->num_rows_total, w->num_rows_updated, w->num_rows_removed, w->memory_used_bytes,
        w->num_rows_dropped_by_watermark);
    if (j->drops) {
      /* per partition: this batch's rows dropped as late, and since the start */
      ed_buf_puts(b, ",\"droppedByWatermark\":{");
      for (size_t p = 0; p < r->nparts; p++) {
        ed_buf_printf(b, "%s", p ? "," : "");
        ed_buf_json_str(b, r->parts[p].id, r->parts[p].idlen);
        ed_buf_printf(b, ":{\"batch\":%" PRIu64 ",\"total\":%" PRIu64 "}", j->drops[2 * p],
                      j->drops[2 * p + 1]);
      }
      ed_buf_puts(b, "}");
    }
  } else {
    ed_buf_puts(b, ",\"stateOperators\":[]");
  }
  ed_buf_puts(b, ",\"sources\":[{\"description\":");
  ed_buf_json_str(b, r->source_desc, strlen(r->source_desc));
  put_offsets(b, r, "startOffset", j->start);
  put_offsets(b, r, "endOffset", j->end);
  {
    int64_t *latest = calloc(r->nparts + 1, sizeof *latest);
    if (latest) {
      for (size_t p = 0; p < r->nparts; p++)
        latest[p] = r->available_now ? r->parts[p].end : atomic_load(&r->parts[p].last_enq);
      put_offsets(b, r, "latestOffset", latest);
      free(latest);
    }
  }
  ed_buf_printf(b,
                ",\"numInputRows\":%" PRIu64 ",\"inputRowsPerSecond\":%.1f,"
                "\"processedRowsPerSecond\":%.1f}]",
                j->num_input, rate(j->num_input, j->interval_us), rate(j->num_input, total_us));
  size_t out_rows = j->rows ? j->rows->nrows : 0;
  if (s->delta) {
    ed_buf_puts(b, ",\"sink\":{\"description\":");
    char d[600];
    snprintf(d, sizeof d, "DeltaSink[%s]", s->path);
    ed_buf_json_str(b, d, strlen(d));
    ed_buf_printf(b,
                  ",\"numOutputRows\":%zu,\"tableVersion\":%" PRId64 ",\"files\":%zu,"
                  "\"bytes\":%" PRId64 ",\"alreadyCommitted\":%s}}",
                  already ? (size_t)0 : out_rows, version, tm->files, tm->bytes,
                  already ? "true" : "false");
  } else {
    ed_buf_printf(b, ",\"sink\":{\"description\":\"ConsoleSink\",\"numOutputRows\":%zu}}",
                  out_rows);
  }
}

/* ---- flush thread ---- */

static void update_lag(run_t *r);

/* @locality any (pipeline when a push fails, ag-flush after a commit)  @locks none: the job is the
 * caller's */
static void job_free(job_t *j) {
  if (!j)
    return;
  sm_batch_free(j->rows);
  ag_ckpt_fini(&j->ck);
  free(j->start);
  free(j->end);
  free(j->drops);
  free(j);
}

/* Commits with retries: a commit is idempotent per batch id (the txn makes a
 * landed one a no-op), so a transient storage fault is simply tried again.
 * @locality flush thread (ag-flush)  @locks none */
static ed_code_t commit_job(run_t *r, job_t *j, int64_t *version, bool *already, ed_err_t *err) {
  for (int attempt = 0;; attempt++) {
    ed_code_t rc = ag_dsink_commit(j->s->ds, j->rows, &j->ck, version, already, err);
    if (!rc || !ed_code_is_retriable(rc) || attempt >= 8)
      return rc;
    ED_LOG_WARN("commit_retry", "sink=%s batch=%" PRId64 " attempt=%d %s", j->s->name,
                j->ck.batch_id, attempt + 1, err->msg);
    ag_metrics_add(r->o->metrics, AG_M_RETRIES, NULL, 1);
    int64_t wait = ed_backoff_delay(&r->commit_backoff, attempt);
    struct timespec ts = {(time_t)(wait / ED_US_PER_SEC), (long)(wait % ED_US_PER_SEC) * 1000};
    nanosleep(&ts, NULL);
  }
}

/* @locality flush thread (ag-flush)  @locks takes run.mu to record the first failure */
static void flush_one(run_t *r, job_t *j) {
  ed_err_t err = {0};
  int64_t t0 = ed_time_mono_us();
  int64_t queue_us = t0 - j->closed_mono;
  ag_dsink_timing_t tm = {0};
  int64_t version = -1;
  bool already = false;
  ed_code_t rc = ED_OK;
  if (j->s->delta) {
    rc = commit_job(r, j, &version, &already, &err);
    if (rc) {
      ed_err_prefix(&err, "sink '%s' batch %" PRId64, j->s->name, j->ck.batch_id);
      pthread_mutex_lock(&r->mu);
      if (!r->flush_rc) {
        r->flush_rc = rc;
        r->flush_err = err;
      }
      pthread_mutex_unlock(&r->mu);
      return;
    }
    ag_dsink_last_timing(j->s->ds, &tm);
    for (size_t p = 0; p < r->nparts; p++)
      if (j->end[p] >= 0)
        atomic_store(&j->s->committed[p], j->end[p]);
    update_lag(r);
    ag_metrics_observe_commit(r->o->metrics, j->s->name, (double)(ed_time_mono_us() - t0) / 1e6);
  } else if (r->o->console) {
    ag_console_print(r->o->console, j->s->name, j->ck.batch_id, j->rows,
                     (size_t)j->s->conf->num_rows);
  }
  int64_t total_us = j->proc_us + (ed_time_mono_us() - j->closed_mono);
  size_t out_rows = j->rows ? j->rows->nrows : 0;
  j->s->batches++;
  j->s->rows_out += already ? 0 : out_rows;
  ed_buf_t b = {0};
  progress_line(r, j, &tm, version, already, queue_us, total_us, &b);
  if (b.data) {
    if (r->o->progress) {
      fprintf(r->o->progress, "%s\n", b.data); /* one call: ag-compact writes lines too */
      fflush(r->o->progress);
    }
    ag_metrics_set_progress(r->o->metrics, j->s->name, b.data);
  }
  ed_buf_fini(&b);
  ag_metrics_add(r->o->metrics, AG_M_BATCHES, j->s->name, 1);
  ag_metrics_add(r->o->metrics, AG_M_ROWS_WRITTEN, j->s->name, already ? 0 : (double)out_rows);
  ag_metrics_set(r->o->metrics, AG_M_INPUT_RATE, j->s->name, rate(j->num_input, j->interval_us));
  ag_metrics_set(r->o->metrics, AG_M_PROCESS_RATE, j->s->name, rate(j->num_input, total_us));
  if (j->has_ws) {
    ag_metrics_set(r->o->metrics, AG_M_STATE_ROWS, j->s->name, (double)j->ws.num_rows_total);
    if (j->ws.watermark_us != INT64_MIN)
      ag_metrics_set(r->o->metrics, AG_M_WATERMARK, j->s->name, (double)j->ws.watermark_us / 1e6);
  }
  ED_LOG_INFO("batch",
              "sink=%s batch=%" PRId64 " input=%" PRIu64 " output=%zu version=%" PRId64
              " ms=%" PRId64,
              j->s->name, j->ck.batch_id, j->num_input, out_rows, version, total_us / 1000);
}

/* @locality flush thread (ag-flush): its body  @locks takes run.mu around the queue, never across a
 * commit */
static void *flush_main(void *arg) {
  run_t *r = arg;
  for (;;) {
    pthread_mutex_lock(&r->mu);
    while (!r->head && !r->closing)
      pthread_cond_wait(&r->cv, &r->mu);
    job_t *j = r->head;
    if (!j) {
      pthread_mutex_unlock(&r->mu);
      return NULL;
    }
    r->head = j->next;
    if (!r->head)
      r->tail = NULL;
    bool failed = r->flush_rc != ED_OK;
    pthread_mutex_unlock(&r->mu);
    /* After a failure nothing more is committed: what follows is read again
     * on the next start. */
    if (!failed)
      flush_one(r, j);
    sink_t *s_done = j->s;
    job_free(j);
    pthread_mutex_lock(&r->mu);
    r->queued--;
    s_done->outstanding--;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
  }
}

/* Queues j (takes ownership); waits while the queue is full.
 * @locality pipeline thread  @locks takes run.mu; waits on run.cv */
static ed_code_t push_job(run_t *r, job_t *j, ed_err_t *err) {
  pthread_mutex_lock(&r->mu);
  /* One job per sink at a time: the pipeline fills the next batch while the
   * previous one is committed, and waits (withholding credit) rather than
   * holding a third batch in memory. */
  while ((r->queued >= r->queue_cap || j->s->outstanding >= 1) && !r->flush_rc)
    pthread_cond_wait(&r->cv, &r->mu);
  ed_code_t rc = r->flush_rc;
  if (rc) {
    *err = r->flush_err;
    pthread_mutex_unlock(&r->mu);
    job_free(j);
    return rc;
  }
  j->next = NULL;
  if (r->tail)
    r->tail->next = j;
  else
    r->head = j;
  r->tail = j;
  r->queued++;
  j->s->outstanding++;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
  return ED_OK;
}

/* ---- event time per partition (pipeline thread) ---- */

/* Caught up with the last sequence number the hub reported, and nothing
 * enqueued on it for idle_timeout (by the hub's enqueued times, so an
 * available-now run judges the same way as a continuous one): such a
 * partition no longer holds the watermark back (ehdelta.conf(5),
 * source.idle_timeout). A partition behind the hub is never idle, however
 * slowly it delivers, nor one that an --until bound stops short of the hub's
 * end: the next run reads on from it, and its events must not be late then.
 * @locality pipeline thread  @locks none */
static bool part_idle(const run_t *r, const part_t *pt, int64_t now_wall) {
  if (pt->seen < atomic_load(&pt->last_enq))
    return false;
  int64_t last = atomic_load(&pt->hub_enq);
  if (pt->taken_enq > last)
    last = pt->taken_enq;
  return last == INT64_MIN || now_wall - last >= r->conf->source.idle_timeout_us;
}

/* @locality pipeline thread  @locks none */
static void mark_idle(run_t *r, win_t *w, int64_t now_wall) {
  for (size_t p = 0; p < r->nparts; p++)
    win_set_idle(w, p, part_idle(r, &r->parts[p], now_wall));
}

/* @locality pipeline thread  @locks none */
static bool has_backlog(const run_t *r, const part_t *pt) {
  return r->available_now ? !pt->done : pt->seen < atomic_load(&pt->last_enq);
}

/* Aligned reading (Flink's watermark alignment): among the partitions with a
 * backlog, one whose event time is more than max_drift ahead of the slowest
 * gets no credit until that one catches up; and while the fairness sink's
 * batch is open, one that has taken its share of it (the size bound over the
 * partitions with a backlog) waits for the others. The receiver callback
 * sees `held` and takes nothing, the same pause a full ring makes; the slowest
 * partition is never held, so reading always goes on. A partition without an
 * event time (nothing decoded yet) neither holds others back nor is held.
 * @locality pipeline thread  @locks none */
static void align(run_t *r) {
  if (r->drift < 0 || (!r->align && !r->fair))
    return;
  int64_t slow = INT64_MAX;
  size_t nback = 0, under = 0;
  int64_t share = INT64_MAX;
  for (size_t p = 0; p < r->nparts; p++) {
    const part_t *pt = &r->parts[p];
    if (!has_backlog(r, pt))
      continue;
    nback++;
    int64_t t = r->align ? win_part_time(r->align->win, p) : INT64_MIN;
    if (t != INT64_MIN && t < slow)
      slow = t;
  }
  /* The pipeline sees a partition's event time only as it decodes; what the
   * ring already holds of it is read regardless of a hold. With several
   * partitions behind, each may keep only its share of the ring, so a hold
   * takes effect within that share rather than a whole ring later. */
  atomic_store(&r->share, nback > 1 ? (int)(RING_BLOCKS / nback > 4 ? RING_BLOCKS / nback : 4) : 0);
  if (r->fair && nback > 1) {
    share = (r->fair->max_events + (int64_t)nback - 1) / (int64_t)nback;
    for (size_t p = 0; p < r->nparts; p++)
      under += has_backlog(r, &r->parts[p]) && r->parts[p].in_fair < share;
  }
  for (size_t p = 0; p < r->nparts; p++) {
    part_t *pt = &r->parts[p];
    bool hold = false;
    if (has_backlog(r, pt)) {
      int64_t t = r->align ? win_part_time(r->align->win, p) : INT64_MIN;
      hold = slow != INT64_MAX && t != INT64_MIN && t - slow > r->drift;
      /* its share taken while others still have theirs to take */
      hold = hold || (under && pt->in_fair >= share && t != slow);
    }
    if (atomic_exchange(&pt->held, hold) != hold) {
      ag_metrics_set(r->o->metrics, AG_M_PART_HELD, pt->id, hold);
      if (!hold)
        atomic_store(&r->any_paused, 1); /* resume_paused looks at it again */
    }
  }
}

/* ---- closing a batch (pipeline thread) ---- */

static ed_code_t close_batch(run_t *r, sink_t *s, ed_err_t *err);

/* @locality pipeline thread  @locks takes run.mu (push_job) */
static ed_code_t close_batch_one(run_t *r, sink_t *s, ed_err_t *err) {
  job_t *j = calloc(1, sizeof *j);
  if (!j)
    return nomem(err, "batch");
  j->s = s;
  j->start = malloc((r->nparts + 1) * sizeof *j->start);
  j->end = malloc((r->nparts + 1) * sizeof *j->end);
  if (!j->start || !j->end) {
    job_free(j);
    return nomem(err, "batch");
  }
  memcpy(j->start, s->start, r->nparts * sizeof *j->start);
  memcpy(j->end, s->pos, r->nparts * sizeof *j->end);
  j->ck.batch_id = s->next_batch++;
  j->ck.watermark_us = INT64_MIN;
  ed_code_t rc = ED_OK;
  for (size_t p = 0; !rc && p < r->nparts; p++)
    if (s->pos[p] >= 0)
      rc = ag_ckpt_set(&j->ck, r->parts[p].id, s->pos[p], err);
  int64_t now_wall = ed_time_now_us(), now = ed_time_mono_us();
  j->num_input = s->in_events;
  j->interval_us = now - s->opened_mono;
  j->proc_us = s->proc_us;
  j->closed_mono = now;
  s->closed = now;
  j->trigger_wall = s->opened_wall;
  if (!rc && s->win) {
    win_set_now(s->win, now_wall);
    mark_idle(r, s->win, now_wall);
    win_end_batch(s->win);
    if (!(j->drops = calloc(2 * r->nparts + 1, sizeof *j->drops)))
      rc = nomem(err, "batch");
    for (size_t p = 0; !rc && p < r->nparts; p++) {
      win_part_dropped(s->win, p, &j->drops[2 * p], &j->drops[2 * p + 1]);
      if (j->drops[2 * p])
        ag_metrics_add(r->o->metrics, AG_M_LATE_EVENTS, r->parts[p].id, (double)j->drops[2 * p]);
      int64_t t = win_part_time(s->win, p);
      if (s == r->align && t != INT64_MIN)
        ag_metrics_set(r->o->metrics, AG_M_PART_EVENT_TIME, r->parts[p].id, (double)t / 1e6);
    }
    j->rows = sm_batch_new(win_output_schema(s->win));
    if (!j->rows)
      rc = nomem(err, "window output");
    rc = rc ? rc : win_emit(s->win, j->rows, err);
    win_get_stats(s->win, &j->ws);
    j->has_ws = true;
    j->ck.watermark_us = win_watermark(s->win);
    if (!rc && s->delta)
      rc = win_state_save(s->win, &j->ck.state, err);
  } else if (!rc) {
    j->rows = s->rows;
    s->rows = sm_batch_new(s->out);
    if (!s->rows)
      rc = nomem(err, "batch");
  }
  if (rc) {
    job_free(j);
    return ed_err_prefix(err, "sink '%s'", s->name);
  }
  memcpy(s->start, s->pos, r->nparts * sizeof *s->start);
  if (s == r->fair)
    for (size_t p = 0; p < r->nparts; p++)
      r->parts[p].in_fair = 0;
  s->in_events = s->in_bytes = 0;
  s->proc_us = 0;
  s->opened_mono = now;
  s->opened_wall = now_wall;
  s->dirty = false;
  return push_job(r, j, err);
}

/* @locality pipeline thread  @locks takes run.mu (push_job) */
static ed_code_t close_batch(run_t *r, sink_t *s, ed_err_t *err) {
  /* Bad events before this batch's positions must land first. */
  if (s->delta && s != r->dl && r->dl && r->dl->rows->nrows) {
    ed_code_t rc = close_batch_one(r, r->dl, err);
    if (rc)
      return rc;
  }
  return close_batch_one(r, s, err);
}

/* ---- the pipeline: one block ---- */

/* @locality pipeline thread  @locks none */
static ed_code_t grow_scratch(run_t *r, size_t n, ed_err_t *err) {
  if (n <= r->mask_cap)
    return ED_OK;
  size_t cap = n * 2;
  uint8_t *m = realloc(r->mask, cap);
  if (m)
    r->mask = m;
  uint8_t *sm = m ? realloc(r->smask, cap) : NULL;
  if (sm)
    r->smask = sm;
  uint8_t *vm = sm ? realloc(r->vmask, cap) : NULL;
  if (vm)
    r->vmask = vm;
  uint8_t *vb = vm ? realloc(r->vbad, cap) : NULL;
  if (vb)
    r->vbad = vb;
  uint32_t *re = vb ? realloc(r->row_ev, cap * sizeof *re) : NULL;
  if (!re)
    return nomem(err, "chunk");
  r->row_ev = re;
  r->mask_cap = cap;
  return ED_OK;
}

/* @locality pipeline thread  @locks none */
static ed_code_t event_props(run_t *r, const blk_t *b, const evm_t *e, sm_event_meta_t *m,
                             ed_err_t *err) {
  if (e->nprops > r->props_cap) {
    size_t cap = e->nprops * 2;
    sm_str_t *k = realloc(r->pkeys, cap * sizeof *k);
    if (k)
      r->pkeys = k;
    sm_str_t *v = k ? realloc(r->pvals, cap * sizeof *v) : NULL;
    if (!v)
      return nomem(err, "properties");
    r->pvals = v;
    r->props_cap = cap;
  }
  const char *p = b->data + e->props;
  for (uint32_t i = 0; i < e->nprops; i++) {
    uint32_t kl, vl;
    memcpy(&kl, p, 4);
    r->pkeys[i].p = p + 4;
    r->pkeys[i].n = kl;
    p += 4 + kl;
    memcpy(&vl, p, 4);
    p += 4;
    if (vl == UINT32_MAX) {
      r->pvals[i].p = NULL;
      r->pvals[i].n = 0;
    } else {
      r->pvals[i].p = p;
      r->pvals[i].n = vl;
      p += vl;
    }
  }
  m->nprops = e->nprops;
  m->prop_keys = r->pkeys;
  m->prop_values = r->pvals;
  return ED_OK;
}

/* constraint_violation = dead-letter: the rows of chunk that *mask selects
 * and that break one of s's table rules go to the dead-letter table, the
 * rule named in their reason, and *mask becomes the rows s still takes. */
static ed_code_t screen_rows(run_t *r, sink_t *s, const blk_t *b, const sm_batch_t *chunk,
                             int64_t now, const uint8_t **mask, ed_err_t *err) {
  size_t nbad = 0;
  ed_code_t rc = ag_dsink_screen(s->ds, chunk, *mask, now, r->vbad, &nbad, err);
  if (rc || !nbad)
    return rc ? ed_err_prefix(err, "sink '%s'", s->name) : ED_OK;
  part_t *pt = &r->parts[b->part];
  for (size_t row = 0; row < chunk->nrows; row++) {
    r->vmask[row] = *mask ? (*mask)[row] : 1;
    if (!r->vbad[row])
      continue;
    r->vmask[row] = 0;
    const evm_t *e = &b->ev[r->row_ev[row]];
    char why[512];
    ag_dsink_rule_text(s->ds, r->vbad[row] - 1, why, sizeof why);
    r->dead++;
    ag_metrics_add(r->o->metrics, AG_M_DEAD_LETTERS, NULL, 1);
    if (r->dl && e->seq > r->dl->resume[b->part]) {
      sm_event_meta_t m = {.sequence_number = e->seq,
                           .offset = e->off,
                           .enqueued_us = e->enq,
                           .partition = {pt->id, pt->idlen},
                           .partition_key = {e->pk_set ? b->data + e->pk : NULL, e->pklen},
                           .publisher = {e->pub_set ? b->data + e->pub : NULL, e->publen}};
      if ((rc = sm_dec_dl_append(r->dl->rows, b->data + e->body, e->blen, &m, SM_REASON_CONSTRAINT,
                                 why)))
        return ed_err_set(err, rc, "dead letter: out of memory");
      r->dl->in_events++;
      r->dl->in_bytes += e->blen;
    }
  }
  *mask = r->vmask;
  return ED_OK;
}

/* One slice of a block goes through three steps, each reading what the one
 * before left in the slice_t: decode_slice (events to rows), enrich (derived
 * columns, then the filter's mask) and fan_out (every sink takes the selected
 * rows it does not have yet). All three run on the pipeline thread and take
 * no lock: the run's scratch, the sinks' open batches and the partitions'
 * pipeline fields are that thread's alone. */
typedef struct slice {
  blk_t *b;
  part_t *pt;
  uint32_t lo, hi; /* events lo..hi-1 of b */
  /* decode_slice: where the rows went */
  sink_t *direct;  /* the raw sink decoded into (NULL: into r->db) */
  sm_batch_t view; /* direct: its batch's columns, from base on */
  sm_batch_t *into;
  size_t base; /* direct: its batch's rows before this slice */
  size_t nrows;
  int64_t first; /* first sequence number taken (-1: none) */
  uint64_t taken, taken_bytes;
  /* enrich: the chunk every sink reads, and which rows the filter kept */
  const sm_batch_t *chunk;
  bool all;    /* every row selected: the sinks skip the mask */
  int64_t now; /* current_timestamp() of the slice's expressions and rules */
} slice_t;

/* Decoding straight into the raw sink's open batch saves copying every row
 * into it. Safe when that sink takes every row of the block: no filter, and
 * every event taken is past its restart position (they all follow pt->seen).
 * The other sinks then read the same rows as a view of that batch's tail.
 * @locality pipeline thread  @locks none */
static void slice_begin(run_t *r, slice_t *sl) {
  sink_t *direct = r->filter ? NULL : r->direct;
  if (direct && direct->resume[sl->b->part] > sl->pt->seen)
    direct = NULL;
  sl->direct = direct;
  sl->first = -1;
  if (direct) {
    sl->base = direct->rows->nrows;
    sl->view = (sm_batch_t){.schema = r->db->schema, .nrows = sl->base, .cols = direct->rows->cols};
    sl->into = &sl->view;
  } else {
    sm_batch_reset(r->db);
    sl->into = r->db;
  }
}

/* Decodes event i of the slice into sl->into, or into the dead-letter batch
 * when the decoder refuses it. @locality pipeline thread  @locks none */
static ed_code_t decode_event(run_t *r, slice_t *sl, uint32_t i, ed_err_t *err) {
  const blk_t *b = sl->b;
  const part_t *pt = sl->pt;
  const evm_t *e = &b->ev[i];
  sm_event_meta_t m = {.sequence_number = e->seq,
                       .offset = e->off,
                       .enqueued_us = e->enq,
                       .partition = {pt->id, pt->idlen},
                       .partition_key = {e->pk_set ? b->data + e->pk : NULL, e->pklen},
                       .publisher = {e->pub_set ? b->data + e->pub : NULL, e->publen}};
  char refused[160];
  if (e->body_what) {
    snprintf(refused, sizeof refused, "body is %s, expected a data section with JSON",
             e->body_what);
    m.body_refused = refused;
  }
  ed_code_t rc;
  if (e->nprops && (rc = event_props(r, b, e, &m, err)))
    return rc;
  sm_dec_status_t st;
  sm_reason_t why = SM_REASON_NONE;
  ed_err_t derr = {0};
  size_t before = sl->into->nrows;
  rc = sm_dec_decode(r->dec, sl->into, b->data + e->body, e->blen, &m, &st, &why, &derr);
  if (rc) {
    if (sl->direct)
      sm_batch_rollback_row(sl->direct->rows);
    *err = derr;
    return ed_err_prefix(err, "partition %s sequence number %" PRId64, pt->id, e->seq);
  }
  if (st == SM_DEC_DEAD) {
    r->dead++;
    ag_metrics_add(r->o->metrics, AG_M_DEAD_LETTERS, NULL, 1);
    if (r->dl && e->seq > r->dl->resume[b->part]) {
      if ((rc = sm_dec_dl_append(r->dl->rows, b->data + e->body, e->blen, &m, why, derr.msg)))
        return ed_err_set(err, rc, "dead letter: out of memory");
      r->dl->in_events++;
      r->dl->in_bytes += e->blen;
    } else if (!r->dl) {
      ED_LOG_WARN("dead_letter", "partition=%s seq=%" PRId64 " dropped (no [dead_letter] path): %s",
                  pt->id, e->seq, derr.msg);
    }
  } else if (sl->into->nrows > before) {
    r->row_ev[sl->into->nrows - 1 - sl->base] = i;
  }
  return ED_OK;
}

/* Step 1: the slice's new events decoded once each; repeats and events past
 * the available-now bound skipped. @locality pipeline thread  @locks none */
static ed_code_t decode_slice(run_t *r, slice_t *sl, ed_err_t *err) {
  const blk_t *b = sl->b;
  part_t *pt = sl->pt;
  for (uint32_t i = sl->lo; i < sl->hi; i++) {
    const evm_t *e = &b->ev[i];
    if (pt->done || e->seq <= pt->seen)
      continue; /* past the available-now bound, or a repeat */
    if (r->available_now && (e->seq > pt->end || e->enq > r->until_us)) {
      pt->done = true; /* --until TIME: the first event enqueued after it ends the partition */
      continue;
    }
    ed_code_t rc = decode_event(r, sl, i, err);
    if (rc)
      return rc;
    if (sl->first < 0)
      sl->first = e->seq;
    pt->seen = e->seq;
    sl->taken++;
    sl->taken_bytes += e->blen;
    if (r->available_now && e->seq >= pt->end)
      pt->done = true;
  }
  r->events += sl->taken;
  r->bytes += sl->taken_bytes;
  if (sl->taken) {
    pt->taken_enq = b->ev[b->n - 1].enq;
    pt->in_fair += (int64_t)sl->taken;
  }
  ag_metrics_add(r->o->metrics, AG_M_EVENTS_RECEIVED, pt->id, (double)sl->taken);
  ag_metrics_add(r->o->metrics, AG_M_BYTES_RECEIVED, pt->id, (double)sl->taken_bytes);
  sl->nrows = sl->into->nrows - sl->base;
  return ED_OK;
}

/* The derived columns appended to the direct sink's batch after the decoded
 * ones; the chunk is r->tb, a view of that batch's new rows.
 * @locality pipeline thread  @locks none */
static ed_code_t derive_direct(run_t *r, slice_t *sl, int64_t now, ed_err_t *err) {
  size_t ndec = r->db->schema->nfields;
  sm_col_t *dc = sl->direct->rows->cols;
  ed_code_t rc = ED_OK;
  for (size_t i = 0; !rc && i < ndec; i++)
    if ((rc = sm_col_view_tail(&r->tb.cols[i], &dc[i], sl->base)))
      nomem(err, "chunk");
  for (size_t k = 0; !rc && k < r->nderive; k++) {
    sm_batch_t view = {.schema = r->schemas[k], .nrows = sl->nrows, .cols = r->tb.cols};
    rc = sm_expr_eval_append(r->derive[k], &view, now, &dc[ndec + k], err);
    if (!rc && (rc = sm_col_view_tail(&r->tb.cols[ndec + k], &dc[ndec + k], sl->base)))
      nomem(err, "chunk");
  }
  if (rc) {
    sm_batch_rollback_row(sl->direct->rows); /* back to base: the run stops here */
    return rc;
  }
  sl->direct->rows->nrows = sl->into->nrows;
  r->tb.nrows = sl->nrows;
  sl->chunk = &r->tb;
  return ED_OK;
}

/* The derived columns computed beside the decoded chunk r->db; the chunk is
 * r->eb (db's columns borrowed, the derived ones owned).
 * @locality pipeline thread  @locks none */
static ed_code_t derive_chunk(run_t *r, slice_t *sl, int64_t now, ed_err_t *err) {
  size_t ndec = r->db->schema->nfields;
  r->eb.nrows = sl->nrows;
  memcpy(r->eb.cols, r->db->cols, ndec * sizeof *r->eb.cols);
  for (size_t k = 0; k < r->nderive; k++) {
    sm_batch_t view = {.schema = r->schemas[k], .nrows = sl->nrows, .cols = r->eb.cols};
    ed_code_t rc = sm_expr_eval(r->derive[k], &view, now, &r->eb.cols[ndec + k], err);
    if (rc)
      return rc;
  }
  sl->chunk = &r->eb;
  return ED_OK;
}

/* Step 2: the enriched chunk (decoded columns, then each derived one in
 * order, evaluated at one `now`) and the filter's mask over it in r->mask.
 * @locality pipeline thread  @locks none */
static ed_code_t enrich(run_t *r, slice_t *sl, ed_err_t *err) {
  int64_t now = sl->now = ed_time_now_us();
  ed_code_t rc = sl->direct ? derive_direct(r, sl, now, err) : derive_chunk(r, sl, now, err);
  if (rc)
    return rc;
  sl->all = !r->filter;
  if (r->filter)
    return sm_expr_filter(r->filter, sl->chunk, now, r->mask, NULL, err);
  memset(r->mask, 1, sl->nrows ? sl->nrows : 1);
  return ED_OK;
}

/* How many of the slice's taken events sink s has not had: all of them but
 * after a restart, when the block straddles its resume position `skip`.
 * @locality pipeline thread  @locks none */
static void count_new(const slice_t *sl, int64_t skip, uint64_t *n, uint64_t *nb) {
  *n = sl->taken;
  *nb = sl->taken_bytes;
  if (sl->first > skip)
    return;
  *n = *nb = 0;
  const blk_t *b = sl->b;
  for (uint32_t e = sl->lo; e < sl->hi; e++)
    if (b->ev[e].seq > skip && b->ev[e].seq >= sl->first && b->ev[e].seq <= sl->pt->seen)
      (*n)++, *nb += b->ev[e].blen;
}

/* Step 3: every sink takes the chunk's selected rows it does not have yet
 * (raw rows appended, windows updated; the dead-letter sink got its rows in
 * decode_slice) and moves its position. @locality pipeline thread  @locks none */
static ed_code_t fan_out(run_t *r, slice_t *sl, ed_err_t *err) {
  const blk_t *b = sl->b;
  const part_t *pt = sl->pt;
  for (size_t i = 0; i < r->nsinks; i++) {
    sink_t *s = &r->sinks[i];
    int64_t skip = s->resume[b->part];
    if (pt->seen <= skip)
      continue; /* this sink already has the whole block */
    const uint8_t *mask = sl->all ? NULL : r->mask;
    if (sl->first <= skip) {
      for (size_t row = 0; row < sl->nrows; row++)
        r->smask[row] = r->mask[row] && b->ev[r->row_ev[row]].seq > skip;
      mask = r->smask;
    }
    if (s->screen) {
      ed_code_t rc = screen_rows(r, s, b, sl->chunk, sl->now, &mask, err);
      if (rc)
        return rc;
    }
    if (s->kind != K_DEAD) {
      ed_code_t rc = ED_OK;
      if (s == sl->direct)
        rc = ED_OK; /* decoded into its batch */
      else if (s->win)
        rc = win_update_part(s->win, sl->chunk, mask, b->part, err);
      else
        rc = sm_batch_append_selected(s->rows, sl->chunk, mask);
      if (rc)
        return ed_err_prefix(err, "sink '%s'", s->name);
      uint64_t n, nb;
      count_new(sl, skip, &n, &nb);
      s->in_events += n;
      s->in_bytes += nb;
    }
    s->pos[b->part] = pt->seen;
    s->dirty = true;
  }
  return ED_OK;
}

/* Events lo..hi-1 of b (the slice that fits every sink's open batch):
 * decode, enrich, fan out. @locality pipeline thread  @locks none */
static ed_code_t process_slice(run_t *r, blk_t *b, uint32_t lo, uint32_t hi, ed_err_t *err) {
  int64_t t0 = ed_time_mono_us();
  slice_t sl = {.b = b, .pt = &r->parts[b->part], .lo = lo, .hi = hi};
  ed_code_t rc = grow_scratch(r, b->n + 1, err);
  if (rc)
    return rc;
  slice_begin(r, &sl);
  if ((rc = decode_slice(r, &sl, err)) || !sl.taken)
    return rc;
  if ((rc = enrich(r, &sl, err)) || (rc = fan_out(r, &sl, err)))
    return rc;
  int64_t spent = ed_time_mono_us() - t0;
  for (size_t i = 0; i < r->nsinks; i++)
    r->sinks[i].proc_us += spent;
  return ED_OK;
}

/* ---- building the pipeline ---- */

/* @locality caller's thread, at start-up before the other threads  @locks none */
static ed_code_t build_schema(run_t *r, ed_err_t *err) {
  const ag_schema_t *sc = &r->conf->schema;
  sm_dec_opts_t dopts = {0};
  ed_code_t rc = sm_schema_parse_ddl(sc->columns, &r->body, err);
  if (rc)
    return ed_err_prefix(err, "[schema] columns");
  if ((rc = sm_meta_parse(sc->metadata, &r->meta, &r->nmeta, err)))
    return ed_err_prefix(err, "[schema] metadata");
  for (size_t i = 0; i < r->nmeta; i++)
    if (r->meta[i].kind == SM_META_PROPERTIES)
      r->want_props = true;
  dopts.mode = (sm_bad_mode_t)sc->bad_event_mode;
  dopts.max_body = dopts.max_string = (size_t)sc->max_event_size;
  if ((rc = sm_dec_new(r->body, r->meta, r->nmeta, &dopts, &r->dec, err)))
    return ed_err_prefix(err, "[schema]");
  if (!(r->db = sm_batch_new(sm_dec_schema(r->dec))))
    return nomem(err, "batch");
  size_t nd = 0;
  while (sc->derive && sc->derive[nd])
    nd++;
  r->schemas = calloc(nd + 1, sizeof *r->schemas);
  r->derive = calloc(nd + 1, sizeof *r->derive);
  if (!r->schemas || !r->derive || !(r->schemas[0] = sm_type_clone(sm_dec_schema(r->dec))))
    return nomem(err, "schema");
  for (size_t k = 0; k < nd; k++) {
    const char *eq = strchr(sc->derive[k], '=');
    if (!eq)
      return ed_err_set(err, ED_E_CONFIG, "[schema] derive '%s': expected NAME = EXPRESSION",
                        sc->derive[k]);
    char name[256];
    size_t nl = (size_t)(eq - sc->derive[k]);
    snprintf(name, sizeof name, "%.*s", (int)(nl < 255 ? nl : 255), sc->derive[k]);
    char *nm = ag_trim(name);
    if ((rc = sm_expr_compile(eq + 1, r->schemas[k], &r->derive[k], err)))
      return ed_err_prefix(err, "[schema] derive %s", nm);
    r->nderive = k + 1;
    sm_type_t *t = sm_type_clone(sm_expr_type(r->derive[k]));
    if (!(r->schemas[k + 1] = sm_type_clone(r->schemas[k])) || !t) {
      sm_type_free(t);
      return nomem(err, "schema");
    }
    if ((rc = sm_type_add_field(r->schemas[k + 1], nm, t, true, err)))
      return ed_err_prefix(err, "[schema] derive %s", nm);
  }
  const sm_type_t *full = r->schemas[nd];
  r->eb.schema = full;
  if (!(r->eb.cols = calloc(full->nfields + 1, sizeof *r->eb.cols)))
    return nomem(err, "batch");
  size_t ndec = sm_dec_schema(r->dec)->nfields;
  for (size_t k = 0; k < nd; k++)
    sm_col_init(&r->eb.cols[ndec + k], full->fields[ndec + k].type);
  r->tb.schema = full;
  if (!(r->tb.cols = calloc(full->nfields + 1, sizeof *r->tb.cols)))
    return nomem(err, "batch");
  if (sc->filter && (rc = sm_expr_compile(sc->filter, full, &r->filter, err)))
    return ed_err_prefix(err, "[schema] filter");
  if (r->filter && sm_expr_type(r->filter)->kind != SM_BOOLEAN)
    return ed_err_set(err, ED_E_CONFIG, "[schema] filter '%s': expected a BOOLEAN expression",
                      sc->filter);
  return ED_OK;
}

/* @locality caller's thread, at start-up before the other threads  @locks none */
static ed_code_t build_window(run_t *r, sink_t *s, ed_err_t *err) {
  const ag_sink_t *k = s->conf;
  ed_code_t rc = split_list(k->group_by, &s->keys, &s->nkeys, err);
  char **aggs = NULL;
  size_t naggs = 0;
  rc = rc ? rc : split_list(k->aggregate, &aggs, &naggs, err);
  if (!rc && !(s->aggs = calloc(naggs + 1, sizeof *s->aggs)))
    rc = nomem(err, "aggregates");
  for (size_t i = 0; !rc && i < naggs; i++) {
    if ((rc = agg_spec_parse(aggs[i], &s->aggs[i], err)))
      ed_err_prefix(err, "[sink %s] aggregate '%s'", k->name, aggs[i]);
    else
      s->naggs++;
  }
  free_list(aggs, naggs);
  if (rc)
    return rc;
  if (k->watermark && k->watermark_column && k->window_column &&
      strcmp(k->watermark_column, k->window_column))
    return ed_err_set(err, ED_E_CONFIG,
                      "[sink %s] the watermark is on '%s' but the window on '%s': expected one "
                      "event-time column",
                      k->name, k->watermark_column, k->window_column);
  win_spec_t sp = {.time_col = k->window_column,
                   .time_index = -1,
                   .size_us = k->window_us,
                   .slide_us = k->slide_us == k->window_us ? 0 : k->slide_us,
                   .watermark = k->watermark != NULL,
                   .delay_us = k->watermark_us,
                   .keys = (const char *const *)s->keys,
                   .nkeys = s->nkeys,
                   .aggs = s->aggs,
                   .naggs = s->naggs,
                   .mode = k->mode == AG_OUT_APPEND   ? WIN_APPEND
                           : k->mode == AG_OUT_UPDATE ? WIN_UPDATE
                                                      : WIN_COMPLETE};
  if ((rc = win_new(&sp, r->eb.schema, &s->win, err)))
    return ed_err_prefix(err, "[sink %s]", k->name);
  s->out = win_output_schema(s->win);
  return ED_OK;
}

/* @locality caller's thread, at start-up before the other threads  @locks none */
static ed_code_t open_delta(run_t *r, sink_t *s, const char *checkpoint, ed_err_t *err) {
  char **pb = NULL;
  size_t npb = 0;
  ed_code_t rc = s->conf ? split_list(s->conf->partition_by, &pb, &npb, err) : ED_OK;
  char **pbn = rc ? NULL : calloc(npb + 1, sizeof *pbn);
  if (!rc && !pbn)
    rc = nomem(err, "partition columns");
  for (size_t i = 0; !rc && i < npb; i++)
    pbn[i] = pb[i];
  ag_ckpt_t ck;
  if (!rc) {
    ag_dsink_opts_t o = {.url = s->path,
                         .checkpoint_url = checkpoint,
                         .query_id = s->query_id,
                         .schema = s->out,
                         .partition_by = npb ? (const char *const *)pbn : NULL,
                         .store = r->o->store,
                         .merge_schema = s->conf && s->conf->merge_schema,
                         .zstd_level = s->conf ? (int)s->conf->zstd_level : 0,
                         /* Spark's query wrote rows, not window state */
                         .takeover = s->kind == K_RAW && r->spark.url ? &r->spark : NULL,
                         .takeover_store = r->o->store,
                         .takeover_force = r->conf->source.from_spark_force};
    rc = ag_dsink_open(&o, &s->ds, &ck, err);
    if (rc)
      ed_err_prefix(err, "sink '%s'", s->name);
  }
  free(pbn);
  free_list(pb, npb);
  if (rc)
    return rc;
  s->next_batch = ag_dsink_next_batch(s->ds);
  for (size_t p = 0; p < r->nparts; p++) {
    int64_t seq;
    if (ag_ckpt_get(&ck, r->parts[p].id, &seq)) {
      s->resume[p] = s->pos[p] = s->start[p] = seq;
      atomic_store(&s->committed[p], seq);
    }
  }
  if (s->win && ck.state.len && (rc = win_state_load(s->win, ck.state.data, ck.state.len, err)))
    ed_err_prefix(err, "sink '%s': the state of batch %" PRId64, s->name, ck.batch_id);
  if (!rc && ck.batch_id >= 0)
    ED_LOG_INFO("resume", "sink=%s batch=%" PRId64 " partitions=%zu", s->name, ck.batch_id, ck.n);
  ag_ckpt_fini(&ck);
  return rc;
}

/* [source] from_spark_checkpoint: the stopped Spark query's positions, read
 * and matched against the hub before any sink opens (agent/spark.h). */
static ed_code_t read_spark(run_t *r, ag_spark_pos_t *sp, ed_err_t *err) {
  const char *url = r->conf->source.from_spark_checkpoint;
  char **ids = calloc(r->nparts + 1, sizeof *ids);
  if (!ids)
    return nomem(err, "partitions");
  for (size_t p = 0; p < r->nparts; p++)
    ids[p] = (char *)r->parts[p].id;
  ed_code_t rc = ag_spark_read(url, r->o->store, -1, sp, err);
  rc = rc ? rc : ag_spark_match(sp, r->hp.name, ids, r->nparts, err);
  free(ids);
  return rc ? ed_err_prefix(err, "[source] from_spark_checkpoint") : ED_OK;
}

/* A partition column must be one the sink writes: a new table could not be
 * created otherwise, and an existing one would be refused only after the
 * first connection.
 * @locality caller's thread, at start-up before the other threads  @locks none */
static ed_code_t check_partition_by(const sink_t *s, ed_err_t *err) {
  char **pb = NULL;
  size_t npb = 0;
  ed_code_t rc = split_list(s->conf->partition_by, &pb, &npb, err);
  for (size_t i = 0; !rc && i < npb; i++) {
    size_t f = 0;
    while (f < s->out->nfields && strcmp(s->out->fields[f].name, pb[i]))
      f++;
    if (f == s->out->nfields)
      rc = ed_err_set(err, ED_E_CONFIG,
                      "[sink %s] partition_by '%s': no such column in what the sink writes",
                      s->name, pb[i]);
  }
  free_list(pb, npb);
  return rc;
}

/* The sinks' part of the plan: kinds, windows and aggregates, each sink's
 * output schema. Touches neither the hub nor storage (run --check stops
 * here); open_sinks does the rest once the partitions are known.
 * @locality caller's thread, at start-up before the other threads  @locks none */
static ed_code_t build_sinks(run_t *r, ed_err_t *err) {
  const ag_conf_t *c = r->conf;
  r->nsinks = c->nsinks + (c->dead_letter.path ? 1 : 0);
  r->sinks = calloc(r->nsinks + 1, sizeof *r->sinks);
  if (!r->sinks)
    return nomem(err, "sinks");
  size_t n_avail = 0;
  for (size_t i = 0; i < r->nsinks; i++) {
    sink_t *s = &r->sinks[i];
    ed_code_t rc;
    if (i == c->nsinks) { /* the dead-letter table */
      r->dl = s;
      s->name = "dead_letter";
      s->query_id = "ehdelta-dead-letter";
      s->path = c->dead_letter.path;
      s->kind = K_DEAD;
      s->delta = true;
      s->out = sm_dec_dl_schema();
      s->max_events = 100000;
      s->max_bytes = 64 << 20;
      if (!(s->rows = sm_batch_new(s->out)))
        return nomem(err, "batch");
      continue;
    }
    const ag_sink_t *k = &c->sinks[i];
    s->conf = k;
    s->name = k->name;
    s->query_id = k->query_id;
    s->path = k->path;
    s->delta = k->kind == AG_SINK_DELTA;
    s->kind = k->window ? K_WINDOW : s->delta ? K_RAW : K_CONSOLE;
    s->max_events = k->max_batch_events;
    s->max_bytes = k->max_batch_bytes;
    s->trigger_us = k->trigger_us;
    s->continuous = k->continuous;
    n_avail += k->available_now;
    if (k->window) {
      if ((rc = build_window(r, s, err)))
        return rc;
    } else {
      s->out = r->eb.schema;
      if (!(s->rows = sm_batch_new(s->out)))
        return nomem(err, "batch");
      if (!r->direct)
        r->direct = s;
    }
    if (s->delta && (rc = check_partition_by(s, err)))
      return rc;
  }
  if (!r->o->available_now && !r->o->until && n_avail && n_avail != c->nsinks)
    return ed_err_set(err, ED_E_CONFIG,
                      "trigger = available-now is given to %zu of %zu sinks: expected all or none "
                      "(one receiver per partition serves every sink)",
                      n_avail, c->nsinks);
  r->available_now = r->o->available_now || r->o->until || (c->nsinks && n_avail == c->nsinks);
  r->drift = c->source.max_drift_us;
  for (size_t i = 0; i < c->nsinks; i++) {
    sink_t *s = &r->sinks[i];
    if (!r->align && s->win && s->conf->watermark)
      r->align = s;
    if (!r->fair || s->max_events < r->fair->max_events)
      r->fair = s;
  }
  return ED_OK;
}

/* --until: an ISO-8601 enqueued time, or ID:SEQ pairs separated by commas
 * (the last sequence number to take from each partition named; the others
 * read up to the available-now end).
 * @locality caller's thread, at start-up before the other threads  @locks none */
static ed_code_t parse_until(run_t *r, ed_err_t *err) {
  r->until_us = INT64_MAX;
  const char *u = r->o->until;
  if (!u)
    return ED_OK;
  int64_t us;
  if (ed_time_parse_iso(u, strlen(u), &us, NULL) == ED_OK) {
    r->until_us = us;
    return ED_OK;
  }
  for (const char *q = u; *q;) {
    const char *colon = strchr(q, ':'), *comma = strchr(q, ',');
    if (!comma)
      comma = q + strlen(q);
    char *endp = NULL;
    long long seq = colon && colon < comma ? strtoll(colon + 1, &endp, 10) : 0;
    if (!colon || colon > comma || colon == q || endp != comma || seq < 0)
      return ed_err_set(err, ED_E_CONFIG,
                        "--until '%s': expected an ISO-8601 enqueued time "
                        "(2026-01-01T00:00:00Z) or PARTITION:SEQUENCE pairs (0:1200,1:980)",
                        u);
    size_t p = 0;
    while (p < r->nparts && (r->parts[p].idlen != (size_t)(colon - q) ||
                             memcmp(r->parts[p].id, q, r->parts[p].idlen)))
      p++;
    if (p == r->nparts)
      return ed_err_set(err, ED_E_CONFIG,
                        "--until '%s': partition '%.*s' is not read (expected one of the hub's "
                        "partitions in [source] partitions)",
                        u, (int)(colon - q), q);
    r->parts[p].until = seq;
    q = *comma ? comma + 1 : comma;
  }
  return ED_OK;
}

/* Positions per partition, and the Delta tables opened (created when new,
 * resumed from their last landed batch). After open_source. */
/* The window's event time is kept per partition of the hub, which is known
 * only once the source is open; before its state is loaded from a checkpoint.
 * @locality caller's thread, at start-up before the other threads  @locks none */
static ed_code_t name_win_partitions(run_t *r, sink_t *s, ed_err_t *err) {
  const char **ids = calloc(r->nparts + 1, sizeof *ids);
  if (!ids)
    return nomem(err, "partitions");
  for (size_t p = 0; p < r->nparts; p++)
    ids[p] = r->parts[p].id;
  ed_code_t rc = win_set_partitions(s->win, ids, r->nparts, err);
  free(ids);
  return rc ? ed_err_prefix(err, "[sink %s]", s->name) : ED_OK;
}

/* @locality caller's thread, at start-up before the other threads  @locks none */
static ed_code_t open_sinks(run_t *r, ed_err_t *err) {
  if (r->conf->source.from_spark_checkpoint) {
    ed_code_t rc = read_spark(r, &r->spark, err);
    if (rc)
      return rc;
  }
  for (size_t i = 0; i < r->nsinks; i++) {
    sink_t *s = &r->sinks[i];
    s->resume = malloc((r->nparts + 1) * sizeof *s->resume);
    s->pos = malloc((r->nparts + 1) * sizeof *s->pos);
    s->start = malloc((r->nparts + 1) * sizeof *s->start);
    s->committed = malloc((r->nparts + 1) * sizeof *s->committed);
    if (!s->resume || !s->pos || !s->start || !s->committed)
      return nomem(err, "sinks");
    for (size_t p = 0; p < r->nparts; p++) {
      s->resume[p] = s->pos[p] = s->start[p] = -1;
      atomic_init(&s->committed[p], -1);
    }
    const char *ckpt =
        s == r->dl ? r->conf->dead_letter.checkpoint_location : s->conf->checkpoint_location;
    ed_code_t rc;
    if (s->win && (rc = name_win_partitions(r, s, err)))
      return rc;
    if (s->delta && (rc = open_delta(r, s, ckpt, err)))
      return rc;
    /* the table's row rules are known once it is open */
    s->screen = s->delta && s->conf && s->conf->violation_dead_letter && ag_dsink_num_rules(s->ds);
    if (s->screen && r->direct == s)
      r->direct = NULL; /* its rows are screened before they are taken */
  }
  return ED_OK;
}

/* ---- the source ---- */

/* @locality caller's thread, at start-up before the other threads  @locks none */
static bool wanted_partition(const char *list, const char *id) {
  if (!list || !strcmp(list, "all"))
    return true;
  size_t n = strlen(id);
  for (const char *p = list; *p;) {
    while (*p == ' ' || *p == ',')
      p++;
    const char *e = p;
    while (*e && *e != ',' && *e != ' ')
      e++;
    if ((size_t)(e - p) == n && !strncmp(p, id, n))
      return true;
    p = e;
  }
  return false;
}

/* @locality caller's thread, at start-up before the other threads  @locks none */
static const char *position_of(const ag_source_t *src, const char *id) {
  for (size_t i = 0; src->partition_position && src->partition_position[i]; i++) {
    const char *s = src->partition_position[i], *eq = strchr(s, '=');
    if (!eq)
      continue;
    const char *a = s, *b = eq;
    while (*a == ' ')
      a++;
    while (b > a && b[-1] == ' ')
      b--;
    if ((size_t)(b - a) == strlen(id) && !strncmp(a, id, strlen(id))) {
      const char *v = eq + 1;
      while (*v == ' ')
        v++;
      return v;
    }
  }
  return src->starting_position;
}

/* @locality caller's thread, at start-up before the other threads  @locks none */
static ed_code_t open_source(run_t *r, ed_err_t *err) {
  const ag_source_t *src = &r->conf->source;
  eh_connstr_t cs;
  ed_code_t rc = eh_connstr_parse(r->o->connection_string, &cs, err);
  if (rc)
    return ed_err_prefix(err, "[source] connection string");
  const char *hub = NULL;
  rc = eh_connstr_hub(&cs, src->hub, &hub, err);
  eh_client_opts_t co;
  eh_client_opts_init(&co);
  co.ca_file = r->o->ca_file;
  if (r->o->op_timeout_us > 0)
    co.op_timeout_us = r->o->op_timeout_us;
  rc = rc ? rc : eh_client_new(&cs, hub, &co, &r->client, err);
  if (!rc)
    snprintf(r->source_desc, sizeof r->source_desc, "EventHubs[%s/%s]", eh_client_host(r->client),
             eh_client_hub(r->client));
  eh_connstr_fini(&cs);
  if (rc)
    return rc;
  if ((rc = eh_client_hub_props(r->client, 0, &r->hp, err)))
    return rc;
  r->parts = calloc((size_t)r->hp.partition_count + 1, sizeof *r->parts);
  if (!r->parts)
    return nomem(err, "partitions");
  for (int i = 0; i < r->hp.partition_count; i++) {
    if (!wanted_partition(src->partitions, r->hp.partition_ids[i]))
      continue;
    part_t *pt = &r->parts[r->nparts];
    pt->run = r;
    pt->idx = (uint32_t)r->nparts;
    pt->id = r->hp.partition_ids[i];
    pt->idlen = strlen(pt->id);
    pt->seen = -1;
    pt->end = -1;
    pt->until = INT64_MAX;
    pt->taken_enq = INT64_MIN;
    atomic_init(&pt->hub_enq, INT64_MIN);
    atomic_init(&pt->last_enq, -1);
    atomic_init(&pt->received, -1);
    r->nparts++;
  }
  if (!r->nparts)
    return ed_err_set(err, ED_E_NOT_FOUND,
                      "[source] partitions '%s': none of the hub's %d partitions is listed",
                      src->partitions, r->hp.partition_count);
  return ED_OK;
}

/* @locality caller's thread, before the pipeline starts; on_events runs on eh-net from here  @locks
 * none */
static ed_code_t start_receivers(run_t *r, ed_err_t *err) {
  const ag_source_t *src = &r->conf->source;
  int64_t epoch = ed_time_now_us() / 1000;
  for (size_t p = 0; p < r->nparts; p++) {
    part_t *pt = &r->parts[p];
    /* After the least advanced delta sink; a sink without a position makes
     * the partition start at the configured position. */
    int64_t from = INT64_MAX;
    bool any = false;
    for (size_t i = 0; i < r->nsinks; i++) {
      sink_t *s = &r->sinks[i];
      if (!s->delta || s == r->dl)
        continue;
      any = true;
      if (s->resume[p] < from)
        from = s->resume[p];
    }
    if (!any)
      from = -1;
    eh_partition_props_t pp = {0};
    ed_code_t rc = eh_client_partition_props(r->client, pt->id, 0, &pp, err);
    if (rc)
      return ed_err_prefix(err, "partition %s", pt->id);
    pt->end = pp.is_empty ? -1 : pp.last_seq;
    atomic_store(&pt->last_enq, pt->end);
    atomic_store(&pt->hub_enq, pp.is_empty ? INT64_MIN : pp.last_enqueued_us);
    if (pt->until < pt->end)
      pt->end = pt->until; /* --until ID:SEQ */
    ag_metrics_set(r->o->metrics, AG_M_LAST_ENQUEUED, pt->id, (double)pt->end);
    if (from >= 0 && !pp.is_empty && from < pp.begin_seq - 1) {
      ag_metrics_add(r->o->metrics, AG_M_RETENTION_GAPS, pt->id, 1);
      if (src->retention_gap_policy == AG_GAP_FAIL) {
        rc = ed_err_set(err, ED_E_NOT_FOUND,
                        "partition %s: the checkpoint resumes after sequence number %" PRId64
                        " but the hub keeps only %" PRId64 " onwards: events %" PRId64 "..%" PRId64
                        " expired (retention gap; retention_gap_policy = skip-to-earliest "
                        "skips them)",
                        pt->id, from, pp.begin_seq, from + 1, pp.begin_seq - 1);
        eh_partition_props_fini(&pp);
        return rc;
      }
      ED_LOG_ERR("retention_gap",
                 "partition=%s events %" PRId64 "..%" PRId64
                 " expired before they were read; skipping to the earliest (%" PRId64 ")",
                 pt->id, from + 1, pp.begin_seq - 1, pp.begin_seq);
      ag_metrics_add(r->o->metrics, AG_M_EVENTS_LOST, pt->id, (double)(pp.begin_seq - 1 - from));
    }
    eh_partition_props_fini(&pp);
    pt->seen = from;
    if (r->available_now && (pt->end < 0 || pt->end <= from)) {
      pt->done = true;
      continue;
    }
    eh_receiver_opts_t ro;
    eh_receiver_opts_init(&ro);
    ro.consumer_group = src->consumer_group;
    ro.partition = pt->id;
    if (from >= 0) {
      ro.start.kind = EH_POS_SEQUENCE;
      ro.start.inclusive = false;
      ro.start.value = from;
    } else if ((rc = eh_position_parse(position_of(src, pt->id), &ro.start, err))) {
      return ed_err_prefix(err, "[source] partition %s position", pt->id);
    }
    /* One owner per partition: a second agent started by mistake takes the
     * partition over (and the first one stops) instead of both writing. */
    ro.has_epoch = true;
    ro.epoch = epoch;
    ro.prefetch = (uint32_t)src->prefetch;
    /* aligned: smaller blocks, so a partition's ring share (align()) holds
     * less event time of it ahead of a hold */
    if (r->drift >= 0 && r->nparts > 1 && ro.prefetch > ALIGN_BLOCK_EVENTS)
      ro.max_batch = ALIGN_BLOCK_EVENTS;
    ro.on_events = on_events;
    ro.on_state = on_rx_state;
    ro.ctx = pt;
    if ((rc = eh_receiver_open(r->client, &ro, &pt->rx, err)))
      return ed_err_prefix(err, "partition %s", pt->id);
  }
  return ED_OK;
}

/* ---- the monitor: the hub's last sequence numbers, for lag ---- */

/* The lag of each partition is the hub's last sequence number minus the
 * least advanced delta sink's committed one; an idle partition still reports
 * it (polled, since an idle link tells nothing). The poll is seconds old
 * while commits land meanwhile: the hub holds at least what was received, so
 * the last sequence number is the larger of the two, and a commit never
 * gets ahead of it (a soak showed -9,500 for minutes without this).
 * @locality any: ag-flush, ag-monitor, the caller's at start and end  @locks none: positions are
 * atomics; seen (the pipeline's) only without a delta sink */
static void update_lag(run_t *r) {
  for (size_t p = 0; p < r->nparts; p++) {
    int64_t last = atomic_load(&r->parts[p].last_enq), low = INT64_MAX;
    int64_t got = atomic_load(&r->parts[p].received);
    last = got > last ? got : last;
    for (size_t i = 0; i < r->nsinks; i++)
      if (r->sinks[i].delta && &r->sinks[i] != r->dl) {
        int64_t c = atomic_load(&r->sinks[i].committed[p]);
        low = c < low ? c : low;
      }
    if (low == INT64_MAX)
      low = r->parts[p].seen;
    ag_metrics_set(r->o->metrics, AG_M_LAST_ENQUEUED, r->parts[p].id, (double)last);
    ag_metrics_set(r->o->metrics, AG_M_COMMITTED_SEQ, r->parts[p].id, (double)low);
    ag_metrics_set(r->o->metrics, AG_M_LAG, r->parts[p].id,
                   (double)(last < 0 ? 0 : last - (low < 0 ? -1 : low)));
  }
}

#define MONITOR_US 5000000

/* @locality monitor thread (ag-monitor): its body  @locks takes run.mu only to wait */
static void *monitor_main(void *arg) {
  run_t *r = arg;
  int64_t every = r->o->lag_poll_us > 0 ? r->o->lag_poll_us : MONITOR_US;
  for (;;) {
    pthread_mutex_lock(&r->mu);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += every / 1000000;
    ts.tv_nsec += (every % 1000000) * 1000;
    if (ts.tv_nsec >= 1000000000)
      ts.tv_sec++, ts.tv_nsec -= 1000000000;
    while (!r->closing && pthread_cond_timedwait(&r->cv, &r->mu, &ts) == 0)
      ;
    bool closing = r->closing;
    pthread_mutex_unlock(&r->mu);
    if (closing)
      return NULL;
    for (size_t p = 0; p < r->nparts; p++) {
      eh_partition_props_t pp = {0};
      ed_err_t err = {0};
      if (eh_client_partition_props(r->client, r->parts[p].id, 10000000, &pp, &err) == ED_OK) {
        atomic_store(&r->parts[p].last_enq, pp.is_empty ? -1 : pp.last_seq);
        atomic_store(&r->parts[p].hub_enq, pp.is_empty ? INT64_MIN : pp.last_enqueued_us);
        eh_partition_props_fini(&pp);
      } else {
        ED_LOG_DEBUG("lag_poll", "partition=%s %s", r->parts[p].id, err.msg);
      }
    }
    update_lag(r);
  }
}

/* ---- the loop ---- */

/* A partition paused by a full ring resumes at half capacity; one paused by
 * its ring share, once half of its share is free; a held one stays paused
 * (any_paused stays set, so the next pass looks again).
 * @locality pipeline thread  @locks none */
static void resume_paused(run_t *r) {
  if (!atomic_load(&r->any_paused))
    return;
  size_t free_slots = rb_free_slots(r->ring);
  int share = atomic_load(&r->share);
  atomic_store(&r->any_paused, 0);
  for (size_t p = 0; p < r->nparts; p++) {
    part_t *pt = &r->parts[p];
    if (!atomic_load(&pt->paused))
      continue;
    bool room = free_slots >= RING_BLOCKS / 2 && (!share || atomic_load(&pt->queued) <= share / 2);
    if (atomic_load(&pt->held) || !room) {
      atomic_store(&r->any_paused, 1);
      continue;
    }
    if (atomic_exchange(&pt->paused, 0) && pt->rx)
      eh_receiver_resume(pt->rx);
  }
}

/* @locality pipeline thread  @locks none */
static bool all_done(const run_t *r) {
  for (size_t p = 0; p < r->nparts; p++)
    if (!r->parts[p].done)
      return false;
  return true;
}

/* @locality pipeline thread  @locks none */
static bool size_due(const sink_t *s) {
  return (int64_t)s->in_events >= s->max_events || (int64_t)s->in_bytes >= s->max_bytes;
}

/* How many events of b from `at` on fit every sink's open batch: a block is
 * as large as the credit a receiver grants (prefetch), so pushed whole it
 * went past max_batch_events by up to that (2,198 rows for a bound of 2,000).
 * At least one event, so that a body larger than max_batch_bytes still goes.
 * @locality pipeline thread  @locks none */
static uint32_t slice_len(const run_t *r, const blk_t *b, uint32_t at) {
  int64_t room = b->n - at, room_bytes = INT64_MAX;
  for (size_t i = 0; i < r->nsinks; i++) {
    const sink_t *s = &r->sinks[i];
    int64_t e = s->max_events - (int64_t)s->in_events, y = s->max_bytes - (int64_t)s->in_bytes;
    room = e < room ? e : room;
    room_bytes = y < room_bytes ? y : room_bytes;
  }
  uint32_t n = 0;
  for (int64_t bytes = 0; n < room && at + n < b->n; n++) {
    bytes += b->ev[at + n].blen;
    if (bytes > room_bytes)
      break;
  }
  return n ? n : 1;
}

/* One block, in slices that each fit every sink's open batch; a sink whose
 * batch is full is closed before the next slice.
 * @locality pipeline thread  @locks none */
static ed_code_t process_block(run_t *r, blk_t *b, ed_err_t *err) {
  ed_code_t rc = ED_OK;
  for (uint32_t at = 0; !rc && at < b->n;) {
    uint32_t n = slice_len(r, b, at);
    rc = process_slice(r, b, at, at + n, err);
    at += n;
    for (size_t i = 0; !rc && at < b->n && i < r->nsinks; i++)
      if (&r->sinks[i] != r->dl && r->sinks[i].dirty && size_due(&r->sinks[i]))
        rc = close_batch(r, &r->sinks[i], err);
    if (!rc && at < b->n && r->dl && r->dl->dirty && size_due(r->dl))
      rc = close_batch_one(r, r->dl, err);
  }
  return rc;
}

/* How long the pipeline may sleep before s's trigger could fire.
 * @locality pipeline thread  @locks none */
static int64_t next_due(const sink_t *s, int64_t now) {
  if (!s->conf || (s->continuous && !s->dirty))
    return INT64_MAX;
  if (!s->continuous)
    return s->next_fire - now;
  int64_t left = s->closed + s->trigger_us - now;
  return left > CONTINUOUS_POLL_US ? left : CONTINUOUS_POLL_US;
}

/* trigger = continuous: the sink's previous batch has landed (nothing of it
 * queued or being committed), it has data, and the least interval since the
 * last close has passed. Closing then never waits in push_job, so commits
 * follow each other back to back while the pipeline fills the next batch.
 * @locality pipeline thread  @locks takes run.mu to read outstanding */
static bool continuous_due(run_t *r, sink_t *s, int64_t now) {
  if (!s->dirty || now - s->closed < s->trigger_us)
    return false;
  pthread_mutex_lock(&r->mu);
  bool idle = s->outstanding == 0;
  pthread_mutex_unlock(&r->mu);
  return idle;
}

/* @locality pipeline thread (the caller's)  @locks takes run.mu to read flush_rc */
static ed_code_t pipeline(run_t *r, ed_err_t *err) {
  int64_t now = ed_time_mono_us();
  for (size_t i = 0; i < r->nsinks; i++) {
    r->sinks[i].opened_mono = now;
    r->sinks[i].opened_wall = ed_time_now_us();
    r->sinks[i].next_fire = now + r->sinks[i].trigger_us;
    r->sinks[i].closed = now;
  }
  ed_code_t rc = ED_OK;
  while (!rc) {
    if (r->available_now && all_done(r))
      break;
    if (r->o->stop && *r->o->stop)
      break;
    ed_notify_watchdog_tick(); /* the pipeline turns at least every POLL_US while healthy */
    now = ed_time_mono_us();
    int64_t wait = POLL_US;
    if (!r->available_now)
      for (size_t i = 0; i < r->nsinks; i++) {
        int64_t due = next_due(&r->sinks[i], now);
        if (due < wait)
          wait = due;
      }
    void *item = NULL;
    ed_code_t prc = rb_pop_wait(r->ring, &item, wait < 0 ? 0 : wait);
    if (prc == ED_OK) {
      atomic_fetch_sub(&r->parts[((blk_t *)item)->part].queued, 1);
      rc = process_block(r, item, err);
      free(item);
      ag_metrics_set(r->o->metrics, AG_M_RING_USED, NULL, (double)rb_count(r->ring));
    }
    align(r);
    resume_paused(r);
    for (size_t p = 0; !rc && p < r->nparts; p++) {
      int st = atomic_load(&r->parts[p].failed);
      if (st) {
        *err = r->parts[p].fail_err;
        rc = ed_err_prefix(err, "partition %s", r->parts[p].id);
      }
    }
    pthread_mutex_lock(&r->mu);
    if (!rc && r->flush_rc) {
      rc = r->flush_rc;
      *err = r->flush_err;
    }
    pthread_mutex_unlock(&r->mu);
    now = ed_time_mono_us();
    for (size_t i = 0; !rc && i < r->nsinks; i++) {
      sink_t *s = &r->sinks[i];
      bool fire = size_due(s);
      if (!r->available_now && s->conf && s->continuous) {
        fire = fire || continuous_due(r, s, now);
      } else if (!r->available_now && s->conf && now >= s->next_fire) {
        fire = fire || s->dirty;
        while (s->next_fire <= now)
          s->next_fire += s->trigger_us;
      }
      if (fire && s->dirty)
        rc = close_batch(r, s, err);
    }
  }
  if (rc)
    return rc;
  /* the end: every sink's open batch (the dead letters first) */
  if (r->dl && r->dl->dirty && r->dl->rows->nrows && (rc = close_batch_one(r, r->dl, err)))
    return rc;
  for (size_t i = 0; i < r->nsinks; i++)
    if (&r->sinks[i] != r->dl && r->sinks[i].dirty && (rc = close_batch(r, &r->sinks[i], err)))
      return rc;
  if (r->dl && r->dl->dirty && r->dl->rows->nrows)
    rc = close_batch_one(r, r->dl, err);
  return rc;
}

/* @locality caller's thread  @locks takes run.mu to stop ag-flush, then joins it and ag-monitor */
static void run_free(run_t *r) {
  ag_compact_stop(r->compact);
  r->compact = NULL;
  if (r->flusher_up) {
    pthread_mutex_lock(&r->mu);
    r->closing = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->flusher, NULL);
  }
  if (r->monitor_up)
    pthread_join(r->monitor, NULL);
  for (size_t p = 0; p < r->nparts; p++)
    eh_receiver_close(r->parts[p].rx);
  eh_client_free(r->client);
  void *item;
  while (r->ring && rb_pop(r->ring, &item) == ED_OK)
    free(item);
  rb_free(r->ring);
  for (size_t i = 0; i < r->nsinks; i++) {
    sink_t *s = &r->sinks[i];
    ag_dsink_free(s->ds);
    sm_batch_free(s->rows);
    win_free(s->win);
    for (size_t a = 0; a < s->naggs; a++)
      agg_spec_fini(&s->aggs[a]);
    free(s->aggs);
    free_list(s->keys, s->nkeys);
    free(s->resume), free(s->pos), free(s->start), free((void *)s->committed);
  }
  free(r->sinks);
  free(r->parts);
  ag_spark_pos_fini(&r->spark);
  eh_hub_props_fini(&r->hp);
  size_t ndec = r->dec ? sm_dec_schema(r->dec)->nfields : 0;
  for (size_t k = 0; r->eb.cols && k < r->nderive; k++)
    sm_col_fini(&r->eb.cols[ndec + k]);
  free(r->eb.cols);
  for (size_t i = 0; r->tb.cols && i < r->tb.schema->nfields; i++)
    sm_col_view_fini(&r->tb.cols[i]);
  free(r->tb.cols);
  for (size_t k = 0; r->derive && k < r->nderive; k++)
    sm_expr_free(r->derive[k]);
  free(r->derive);
  for (size_t k = 0; r->schemas && k <= r->nderive; k++)
    sm_type_free(r->schemas[k]);
  free(r->schemas);
  sm_expr_free(r->filter);
  sm_batch_free(r->db);
  sm_dec_free(r->dec);
  sm_meta_cols_free(r->meta, r->nmeta);
  sm_type_free(r->body);
  free(r->vmask), free(r->vbad);
  free(r->mask), free(r->smask), free(r->row_ev), free(r->pkeys), free(r->pvals);
  pthread_mutex_destroy(&r->mu);
  pthread_cond_destroy(&r->cv);
}

/* sink.compaction, in a continuous run (an available-now one ends before the
 * first round would start).
 * @locality caller's thread, at start-up  @locks none */
static ed_code_t start_compaction(run_t *r, ed_err_t *err) {
  if (r->available_now)
    return ED_OK;
  ag_compact_spec_t *specs = calloc(r->nsinks + 1, sizeof *specs);
  if (!specs)
    return nomem(err, "compaction");
  size_t n = 0;
  for (size_t i = 0; i < r->nsinks; i++) {
    const ag_sink_t *k = r->sinks[i].conf;
    if (k && r->sinks[i].delta && k->compaction)
      specs[n++] = (ag_compact_spec_t){r->sinks[i].name, r->sinks[i].path, k->compaction_files,
                                       k->compaction_target_size, k->compaction_interval_us};
  }
  ed_code_t rc =
      n ? ag_compact_start(specs, n, r->o->store, r->o->metrics, r->o->progress, &r->compact, err)
        : ED_OK;
  free(specs);
  return rc;
}

/* Every batch, decoded chunk and Parquet buffer is a few MiB that glibc would
 * map fresh (and the kernel zero, page by page) each time: past its default
 * 128 KiB mmap threshold, which only creeps up as such blocks are freed, and
 * with free memory handed back at 128 KiB. Kept in the heap instead, a
 * batch's memory is the next one's without faulting; the peak (what is live
 * at once) is unchanged, and more than 64 MiB free at the top still goes back.
 * Unless the operator tuned malloc himself (GLIBC_TUNABLES).
 * @locality caller's thread, before any other starts  @locks none */
static void tune_malloc(void) {
#if defined(__GLIBC__)
  const char *t = getenv("GLIBC_TUNABLES");
  if (t && strstr(t, "glibc.malloc."))
    return;
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif
}

/* The whole plan, from the configuration alone: what `run` builds before it
 * connects, and all that `run --check` builds.
 * @locality caller's thread, at start-up before the other threads  @locks none */
static ed_code_t build_plan(run_t *r, ed_err_t *err) {
  ed_code_t rc = build_schema(r, err);
  return rc ? rc : build_sinks(r, err);
}

ed_code_t ag_run_check(const ag_conf_t *conf, bool available_now, ed_err_t *err) {
  ag_run_opts_t o = {.available_now = available_now};
  run_t r = {.conf = conf, .o = &o};
  pthread_mutex_init(&r.mu, NULL);
  pthread_cond_init(&r.cv, NULL);
  ed_code_t rc = build_plan(&r, err);
  run_free(&r);
  return rc;
}

ed_code_t ag_run(const ag_conf_t *conf, const ag_run_opts_t *o, ed_err_t *err) {
  tune_malloc();
  run_t r = {.conf = conf, .o = o, .until_us = INT64_MAX};
  pthread_mutex_init(&r.mu, NULL);
  pthread_cond_init(&r.cv, NULL);
  snprintf(r.runid, sizeof r.runid, "%016" PRIx64 "-%d", (uint64_t)ed_time_now_us(), (int)getpid());
  ed_backoff_init(&r.commit_backoff, COMMIT_BACKOFF_BASE_US, COMMIT_BACKOFF_CAP_US, 0);
  ed_code_t rc = build_plan(&r, err);
  rc = rc ? rc : open_source(&r, err);
  rc = rc ? rc : parse_until(&r, err);
  rc = rc ? rc : open_sinks(&r, err);
  rc = rc ? rc : rb_new(RING_BLOCKS, 0, NULL, NULL, &r.ring, err);
  if (!rc) {
    r.queue_cap = r.nsinks + 1;
    if (pthread_create(&r.flusher, NULL, flush_main, &r))
      rc = ed_err_set(err, ED_E_INTERNAL, "run: cannot start the flush thread");
    else
      r.flusher_up = true, pthread_setname_np(r.flusher, "ag-flush");
  }
  rc = rc ? rc : start_compaction(&r, err);
  rc = rc ? rc : start_receivers(&r, err);
  if (!rc)
    update_lag(&r);
  if (!rc && !r.available_now && !pthread_create(&r.monitor, NULL, monitor_main, &r))
    r.monitor_up = true, pthread_setname_np(r.monitor, "ag-monitor");
  ag_metrics_set(o->metrics, AG_M_UP, NULL, 1);
  if (!rc) {
    ED_LOG_INFO("run", "source=%s partitions=%zu sinks=%zu mode=%s", r.source_desc, r.nparts,
                r.nsinks, r.available_now ? "available-now" : "continuous");
    /* Type=notify: ready once the hub answered and every receiver is attached,
     * so `systemctl start` returns only for an agent that got that far. */
    ed_notify("READY=1\nSTATUS=receiving", NULL);
    rc = pipeline(&r, err);
  }
  /* Let the flush thread finish what is queued; its first failure wins. */
  if (r.flusher_up) {
    pthread_mutex_lock(&r.mu);
    r.closing = true;
    pthread_cond_broadcast(&r.cv);
    pthread_mutex_unlock(&r.mu);
    pthread_join(r.flusher, NULL);
    r.flusher_up = false;
    if (r.monitor_up)
      pthread_join(r.monitor, NULL);
    r.monitor_up = false;
    update_lag(&r);
    if (!rc && r.flush_rc) {
      rc = r.flush_rc;
      *err = r.flush_err;
    }
  }
  ED_LOG_INFO("run_end", "events=%" PRIu64 " bytes=%" PRIu64 " dead=%" PRIu64 " status=%s",
              r.events, r.bytes, r.dead, ed_code_name(rc));
  ag_metrics_set(o->metrics, AG_M_UP, NULL, 0);
  run_free(&r);
  return rc;
}
