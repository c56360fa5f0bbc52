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
 * flush_rc and the sinks' outstanding counts, and nothing else.
 * The run is five files, one module each, sharing run_int.h: this one (ag_run
 * and ag_run_check, start-up, the pipeline loop, shutdown), plan.c (the plan
 * from the configuration, the sinks opened on it), source.c (receivers,
 * partitions, alignment, lag), slice.c (one block: decode, enrich, fan out)
 * and flush.c (closing batches, the flush thread, progress lines). */
#include "agent/run_int.h"

#include <inttypes.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/notify.h"
#include "common/time.h"

ed_code_t ag_run_nomem(ed_err_t *err, const char *what) {
  return ed_err_set(err, ED_E_NOMEM, "run: out of memory (%s)", what);
}

/* @locality pipeline thread  @locks none */
static bool all_done(const run_t *r) {
  for (size_t p = 0; p < r->nparts; p++)
    if (!r->parts[p].done)
      return false;
  return true;
}

/* @locality pipeline thread  @locks none */
bool ag_run_size_due(const sink_t *s) {
  return (int64_t)s->in_events >= s->max_events || (int64_t)s->in_bytes >= s->max_bytes;
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
 * queued or being committed), it has data, the least interval since the
 * last close has passed, and either the batch pays for its commit (the agent
 * has spent CONTINUOUS_AMORTISE times the last commit's CPU since the last
 * close) or it has been open CONTINUOUS_WAIT_US. Closing never waits in
 * push_job; under load the CPU test passes as soon as the previous commit
 * lands, so commits follow each other back to back, and at a rate where each
 * would hold a few events the batch grows until a commit is a small share of
 * the work.
 * @locality pipeline thread  @locks takes run.mu to read outstanding */
static bool continuous_due(run_t *r, sink_t *s, int64_t now) {
  if (!s->dirty || now - s->closed < s->trigger_us)
    return false;
  pthread_mutex_lock(&r->mu);
  bool idle = s->outstanding == 0;
  pthread_mutex_unlock(&r->mu);
  if (!idle)
    return false;
  if (now - s->closed >= CONTINUOUS_WAIT_US)
    return true;
  return ag_run_commit_paid(ed_time_process_cpu_us() - s->cpu_closed,
                            atomic_load(&s->commit_cpu_us));
}

/* @locality any  @locks none */
bool ag_run_commit_paid(int64_t cpu_spent_us, int64_t commit_cpu_us) {
  return cpu_spent_us >= CONTINUOUS_AMORTISE * commit_cpu_us;
}

static ed_code_t close_open(run_t *r, ed_err_t *err);

/* With a checkpoint store a FENCED commit ends the generation (its batch is
 * void, the next generation reads from the table again); alone it is fatal.
 * @locality pipeline thread  @locks none */
static ed_code_t fenced_ends_generation(run_t *r, ed_code_t rc) {
  if (r->shr && rc == ED_E_FENCED) {
    r->gen_end = true;
    return ED_OK;
  }
  return rc;
}

/* @locality pipeline thread (the caller's)  @locks takes run.mu to read flush_rc */
ed_code_t ag_run_pipeline(run_t *r, ed_err_t *err) {
  int64_t now = ed_time_mono_us();
  for (size_t i = 0; i < r->nsinks; i++) {
    r->sinks[i].opened_mono = now;
    r->sinks[i].opened_wall = ed_time_now_us();
    r->sinks[i].next_fire = now + r->sinks[i].trigger_us;
    r->sinks[i].closed = now;
    r->sinks[i].cpu_closed = ed_time_process_cpu_us();
  }
  ed_code_t rc = ED_OK;
  while (!rc) {
    if (r->available_now && all_done(r))
      break;
    if ((r->o->stop && *r->o->stop) || r->gen_end)
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
      part_t *from = &r->parts[((blk_t *)item)->part];
      atomic_fetch_sub(&from->queued, 1);
      /* a partition closed early (lost, stolen) or whose proof ran out: what
       * it had queued is not ours to take */
      rc =
          from->closed || atomic_load(&from->unproven) ? ED_OK : ag_run_process_block(r, item, err);
      free(item);
      ag_metrics_set(r->o->metrics, AG_M_RING_USED, NULL, (double)rb_count(r->ring));
    }
    ag_run_align(r);
    ag_run_resume_paused(r);
    for (size_t p = 0; !rc && p < r->nparts; p++) {
      int st = atomic_load(&r->parts[p].failed);
      if (st == EH_STATE_STOLEN && r->shr) {
        ag_shr_stolen(r, p);
      } else if (st) {
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
    rc = fenced_ends_generation(r, rc);
    if (!rc && r->shr)
      ag_shr_turn(r);
    now = ed_time_mono_us();
    for (size_t i = 0; !rc && i < r->nsinks; i++) {
      sink_t *s = &r->sinks[i];
      bool fire = ag_run_size_due(s);
      if (!r->available_now && s->conf && s->continuous) {
        fire = fire || continuous_due(r, s, now);
      } else if (!r->available_now && s->conf && now >= s->next_fire) {
        fire = fire || s->dirty;
        while (s->next_fire <= now)
          s->next_fire += s->trigger_us;
      }
      if (fire && s->dirty)
        rc = fenced_ends_generation(r, ag_run_close_batch(r, s, err));
    }
  }
  if (rc)
    return rc;
  if (r->shr) {
    ag_shr_turn(r); /* a partition lost meanwhile stops reading before the commits */
    rc = fenced_ends_generation(r, close_open(r, err));
    return rc;
  }
  return close_open(r, err);
}

/* The end: every sink's open batch (the dead letters first).
 * @locality pipeline thread  @locks takes run.mu (push_job) */
static ed_code_t close_open(run_t *r, ed_err_t *err) {
  ed_code_t rc = ED_OK;
  if (r->dl && r->dl->dirty && r->dl->rows->nrows && (rc = ag_run_close_batch_one(r, r->dl, err)))
    return rc;
  for (size_t i = 0; i < r->nsinks; i++)
    if (&r->sinks[i] != r->dl && r->sinks[i].dirty &&
        (rc = ag_run_close_batch(r, &r->sinks[i], err)))
      return rc;
  if (r->dl && r->dl->dirty && r->dl->rows->nrows)
    rc = ag_run_close_batch_one(r, r->dl, err);
  return rc;
}

/* @locality caller's thread, no other running  @locks none */
void ag_run_free_sinks(run_t *r) {
  for (size_t i = 0; i < r->nsinks; i++) {
    sink_t *s = &r->sinks[i];
    ag_dsink_free(s->ds);
    sm_batch_free(s->rows);
    win_free(s->win);
    for (size_t a = 0; a < s->naggs; a++)
      agg_spec_fini(&s->aggs[a]);
    free(s->aggs);
    ag_run_free_list(s->keys, s->nkeys);
    free(s->resume), free(s->pos), free(s->start), free((void *)s->committed);
    free(s->pos_off), free(s->committed_off);
  }
  free(r->sinks);
  r->sinks = NULL;
  r->nsinks = 0;
  r->dl = r->direct = r->align = r->fair = NULL;
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
  ag_run_free_sinks(r);
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
    return ag_run_nomem(err, "compaction");
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

ed_code_t ag_run_check(const ag_conf_t *conf, bool available_now, ed_err_t *err) {
  ag_run_opts_t o = {.available_now = available_now};
  run_t r = {.conf = conf, .o = &o};
  pthread_mutex_init(&r.mu, NULL);
  pthread_cond_init(&r.cv, NULL);
  ed_code_t rc = ag_run_build_plan(&r, err);
  if (!rc && conf->source.checkpoint_store)
    rc = ag_shr_check(&r, err);
  run_free(&r);
  return rc;
}

/* @locality caller's thread  @locks none */
ed_code_t ag_run_start_flush(run_t *r, ed_err_t *err) {
  r->queue_cap = r->nsinks + 1;
  r->closing = false;
  if (pthread_create(&r->flusher, NULL, ag_run_flush_main, r))
    return ed_err_set(err, ED_E_INTERNAL, "run: cannot start the flush thread");
  r->flusher_up = true, pthread_setname_np(r->flusher, "ag-flush");
  return ED_OK;
}

/* Lets the flush thread finish what is queued, then joins it and the monitor.
 * @locality caller's thread  @locks takes run.mu */
void ag_run_stop_flush(run_t *r) {
  if (!r->flusher_up)
    return;
  pthread_mutex_lock(&r->mu);
  r->closing = true;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
  pthread_join(r->flusher, NULL);
  r->flusher_up = false;
  if (r->monitor_up)
    pthread_join(r->monitor, NULL);
  r->monitor_up = false;
}

/* One agent reading every partition: the run as it was before checkpoint
 * stores (rc: how start-up went so far).
 * @locality caller's thread  @locks takes run.mu (ag_run_stop_flush) */
static ed_code_t run_alone(run_t *r, ed_code_t rc, ed_err_t *err) {
  rc = rc ? rc : ag_run_open_sinks(r, err);
  rc = rc ? rc : rb_new(RING_BLOCKS, 0, NULL, NULL, &r->ring, err);
  rc = rc ? rc : ag_run_start_flush(r, err);
  rc = rc ? rc : start_compaction(r, err);
  rc = rc ? rc : ag_run_start_receivers(r, err);
  if (!rc)
    ag_run_update_lag(r);
  if (!rc && !r->available_now && !pthread_create(&r->monitor, NULL, ag_run_monitor_main, r))
    r->monitor_up = true, pthread_setname_np(r->monitor, "ag-monitor");
  ag_metrics_set(r->o->metrics, AG_M_UP, NULL, 1);
  if (!rc) {
    ED_LOG_INFO("run", "source=%s partitions=%zu sinks=%zu mode=%s", r->source_desc, r->nparts,
                r->nsinks, r->available_now ? "available-now" : "continuous");
    /* Type=notify: ready once the hub answered and every receiver is attached,
     * so `systemctl start` returns only for an agent that got that far. */
    ed_notify("READY=1\nSTATUS=receiving", NULL);
    rc = ag_run_pipeline(r, err);
  }
  /* Let the flush thread finish what is queued; its first failure wins. */
  if (r->flusher_up) {
    ag_run_stop_flush(r);
    ag_run_update_lag(r);
    if (!rc && r->flush_rc) {
      rc = r->flush_rc;
      *err = r->flush_err;
    }
  }
  return rc;
}

ed_code_t ag_run(const ag_conf_t *conf, const ag_run_opts_t *o, ed_err_t *err) {
  tune_malloc();
  run_t r = {.conf = conf, .o = o, .until_us = INT64_MAX};
  pthread_mutex_init(&r.mu, NULL);
  pthread_cond_init(&r.cv, NULL);
  snprintf(r.runid, sizeof r.runid, "%016" PRIx64 "-%d", (uint64_t)ed_time_now_us(), (int)getpid());
  ed_backoff_init(&r.commit_backoff, COMMIT_BACKOFF_BASE_US, COMMIT_BACKOFF_CAP_US, 0);
  ed_code_t rc = ag_run_build_plan(&r, err);
  if (!rc && conf->source.checkpoint_store)
    rc = ag_shr_check(&r, err);
  rc = rc ? rc : ag_run_open_source(&r, err);
  rc = rc ? rc : ag_run_parse_until(&r, err);
  if (!conf->source.checkpoint_store) {
    rc = run_alone(&r, rc, err);
  } else {
    ag_metrics_set(o->metrics, AG_M_UP, NULL, 1);
    rc = rc ? rc : rb_new(RING_BLOCKS, 0, NULL, NULL, &r.ring, err);
    rc = rc ? rc : ag_shr_run(&r, err);
  }
  ED_LOG_INFO("run_end", "events=%" PRIu64 " bytes=%" PRIu64 " dead=%" PRIu64 " status=%s",
              r.events, r.bytes, r.dead, ed_code_name(rc));
  ag_metrics_set(o->metrics, AG_M_UP, NULL, 0);
  run_free(&r);
  return rc;
}
