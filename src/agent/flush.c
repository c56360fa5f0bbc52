/* flush: a sink's open batch closed into a job on the pipeline thread, and
 * the flush thread that takes the jobs in order, commits each (retried with
 * backoff on a transient storage fault), prints console tables and writes
 * one progress line per batch. run.mu guards the job queue between the two. */
#include "agent/run_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/console.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/time.h"

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

/* @locality any (pipeline when a push fails, ag-flush after a commit)  @locks none: the job is the
 * caller's */
static void job_free(job_t *j) {
  if (!j)
    return;
  sm_batch_free(j->rows);
  ag_ckpt_fini(&j->ck);
  free(j->start);
  free(j->end);
  free(j->end_off);
  free(j->drops);
  free(j);
}

/* The partition a FENCED message names: its appId is "<query_id>/<partition>"
 * (delta/table.h); "?" when the message does not say.
 * @locality flush thread (ag-flush)  @locks none */
static const char *fenced_partition(const sink_t *s, ed_err_t *err) {
  static _Thread_local char id[32];
  size_t ql = strlen(s->query_id);
  for (const char *m = strstr(err->msg, s->query_id); m; m = strstr(m + 1, s->query_id))
    if (m[ql] == '/') {
      size_t n = strcspn(m + ql + 1, " ,:;'\")");
      snprintf(id, sizeof id, "%.*s", (int)(n < sizeof id ? n : sizeof id - 1), m + ql + 1);
      return id;
    }
  return "?";
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
    if (rc == ED_E_FENCED && r->shr)
      /* another agent moved one of the batch's partitions: the batch is void
       * and this generation ends (shared.c); expected when partitions move */
      ED_LOG_INFO("fenced", "sink=%s partition=%s batch=%" PRId64 " detail=\"%s\"", j->s->name,
                  fenced_partition(j->s, &err), j->ck.batch_id, err.msg);
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
      if (j->end[p] >= 0) {
        atomic_store(&j->s->committed[p], j->end[p]);
        j->s->committed_off[p] = j->end_off[p];
      }
    ag_run_update_lag(r);
    if (r->shr && j->s != r->dl)
      ag_shr_checkpoint(r, j);
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
void *ag_run_flush_main(void *arg) {
  run_t *r = arg;
  for (;;) {
    pthread_mutex_lock(&r->mu);
    while (!r->head && !r->closing) {
      if (!r->shr) {
        pthread_cond_wait(&r->cv, &r->mu);
        continue;
      }
      /* sharing: an idle wait ends every renewal interval for the SDK
       * checkpoints the interval held back after the last commit */
      struct timespec ts;
      int64_t every = r->conf->source.ownership_renew_us;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_sec += every / ED_US_PER_SEC;
      ts.tv_nsec += (every % ED_US_PER_SEC) * 1000;
      if (ts.tv_nsec >= 1000000000)
        ts.tv_sec++, ts.tv_nsec -= 1000000000;
      if (pthread_cond_timedwait(&r->cv, &r->mu, &ts) == ETIMEDOUT && !r->head && !r->closing &&
          !r->flush_rc) {
        pthread_mutex_unlock(&r->mu);
        ag_shr_checkpoint(r, NULL);
        pthread_mutex_lock(&r->mu);
      }
    }
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
    if (!failed) {
      int64_t c0 = ed_time_thread_cpu_us();
      flush_one(r, j);
      atomic_store(&j->s->commit_cpu_us, ed_time_thread_cpu_us() - c0);
    }
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

/* ---- closing a batch (pipeline thread) ---- */

/* @locality pipeline thread  @locks takes run.mu (push_job) */
ed_code_t ag_run_close_batch_one(run_t *r, sink_t *s, ed_err_t *err) {
  job_t *j = calloc(1, sizeof *j);
  if (!j)
    return ag_run_nomem(err, "batch");
  j->s = s;
  j->start = malloc((r->nparts + 1) * sizeof *j->start);
  j->end = malloc((r->nparts + 1) * sizeof *j->end);
  j->end_off = malloc((r->nparts + 1) * sizeof *j->end_off);
  if (!j->start || !j->end || !j->end_off) {
    job_free(j);
    return ag_run_nomem(err, "batch");
  }
  memcpy(j->start, s->start, r->nparts * sizeof *j->start);
  memcpy(j->end, s->pos, r->nparts * sizeof *j->end);
  memcpy(j->end_off, s->pos_off, r->nparts * sizeof *j->end_off);
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
  if (s->continuous)
    s->cpu_closed = ed_time_process_cpu_us();
  j->trigger_wall = s->opened_wall;
  if (!rc && s->win) {
    win_set_now(s->win, now_wall);
    ag_run_mark_idle(r, s->win, now_wall);
    win_end_batch(s->win);
    if (!(j->drops = calloc(2 * r->nparts + 1, sizeof *j->drops)))
      rc = ag_run_nomem(err, "batch");
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
      rc = ag_run_nomem(err, "window output");
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
      rc = ag_run_nomem(err, "batch");
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
ed_code_t ag_run_close_batch(run_t *r, sink_t *s, ed_err_t *err) {
  /* Bad events before this batch's positions must land first. */
  if (s->delta && s != r->dl && r->dl && r->dl->rows->nrows) {
    ed_code_t rc = ag_run_close_batch_one(r, r->dl, err);
    if (rc)
      return rc;
  }
  return ag_run_close_batch_one(r, s, err);
}
