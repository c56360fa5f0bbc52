/* source: the Event Hubs side of the run. The receivers' callbacks on the
 * network thread (events copied into ring blocks, back-pressure by refusing
 * them), the hub and its partitions opened at start-up, the pipeline's view
 * of each partition (idleness, event-time alignment and its credit holds,
 * resuming paused receivers) and the monitor thread that polls the hub for
 * lag. */
#include "agent/run_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/time.h"
#include "eventhubs/connstr.h"

/* ---- network thread: receiver callbacks ---- */

/* @locality network thread (eh-net)  @locks none: only atomics and the ring (rb_push locks itself)
 */
static size_t on_events(void *ctx, eh_receiver_t *rx, const eh_event_t *evs, size_t n) {
  part_t *pt = ctx;
  run_t *r = pt->run;
  (void)rx;
  int share = atomic_load(&r->share);
  if (rb_free_slots(r->ring) == 0 || atomic_load(&pt->held) || atomic_load(&pt->unproven) ||
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
void ag_run_mark_idle(run_t *r, win_t *w, int64_t now_wall) {
  for (size_t p = 0; p < r->nparts; p++)
    win_set_idle(w, p, part_idle(r, &r->parts[p], now_wall));
}

/* @locality pipeline thread  @locks none */
static bool has_backlog(const run_t *r, const part_t *pt) {
  if (r->shr && (!pt->gen_owned || pt->closed || atomic_load(&pt->unproven)))
    return false; /* not read here now: holds nothing back */
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
void ag_run_align(run_t *r) {
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
        atomic_store(&r->any_paused, 1); /* ag_run_resume_paused looks at it again */
    }
  }
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
ed_code_t ag_run_open_source(run_t *r, ed_err_t *err) {
  const ag_source_t *src = &r->conf->source;
  eh_connstr_t cs;
  ed_code_t rc = r->o->entra ? eh_connstr_parse_keyless(r->o->connection_string, &cs, err)
                             : eh_connstr_parse(r->o->connection_string, &cs, err);
  if (rc)
    return ed_err_prefix(err, "[source] connection string");
  const char *hub = NULL;
  rc = eh_connstr_hub(&cs, src->hub, &hub, err);
  /* The SDKs name their ownership records after the endpoint's authority:
   * the host, and the port when the endpoint gives one (as `ehdelta status
   * --checkpoint-store` does). */
  const char *a = cs.endpoint ? strstr(cs.endpoint, "://") : NULL;
  a = a ? a + 3 : cs.endpoint ? cs.endpoint : "";
  snprintf(r->ns, sizeof r->ns, "%.*s", (int)strcspn(a, "/"), a);
  eh_client_opts_t co;
  eh_client_opts_init(&co);
  co.ca_file = r->o->ca_file;
  co.entra = r->o->entra;
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
    return ag_run_nomem(err, "partitions");
  for (int i = 0; i < r->hp.partition_count; i++) {
    if (!wanted_partition(src->partitions, r->hp.partition_ids[i]))
      continue;
    part_t *pt = &r->parts[r->nparts];
    pt->run = r;
    pt->idx = (uint32_t)r->nparts;
    pt->id = r->hp.partition_ids[i];
    pt->idlen = strlen(pt->id);
    pt->seen = -1;
    atomic_init(&pt->seen_pub, -1);
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
ed_code_t ag_run_start_receivers(run_t *r, ed_err_t *err) {
  const ag_source_t *src = &r->conf->source;
  int64_t epoch = ed_time_now_us() / 1000;
  for (size_t p = 0; p < r->nparts; p++) {
    part_t *pt = &r->parts[p];
    if (r->shr && !pt->gen_owned)
      continue; /* another agent's in this generation */
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
    pt->seen_off = -1;
    atomic_store(&pt->seen_pub, from);
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
    /* aligned: smaller blocks, so a partition's ring share (ag_run_align()) holds
     * less event time of it ahead of a hold */
    if (r->drift >= 0 && r->nparts > 1 && ro.prefetch > ALIGN_BLOCK_EVENTS)
      ro.max_batch = ALIGN_BLOCK_EVENTS;
    ro.on_events = on_events;
    ro.on_state = on_rx_state;
    ro.ctx = pt;
    rc = eh_receiver_open(r->client, &ro, &pt->rx, err);
    if (rc == ED_E_LINK_STOLEN && r->shr) {
      /* the owner that won a claim race attached first: its partition, and
       * this generation ends rather than the agent */
      ED_LOG_INFO("reading_refused", "partition=%s owner=%s error=\"%s\"", pt->id,
                  ag_shr_owner_id(r), err->msg);
      pt->rx = NULL;
      ag_shr_refused(r, p);
      continue;
    }
    if (rc)
      return ed_err_prefix(err, "partition %s", pt->id);
    if (r->shr)
      ED_LOG_INFO("reading_started", "partition=%s owner=%s from=%" PRId64, pt->id,
                  ag_shr_owner_id(r), from);
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
void ag_run_update_lag(run_t *r) {
  for (size_t p = 0; p < r->nparts; p++) {
    if (r->shr && !r->parts[p].gen_owned)
      continue; /* its lag is its owner's to report */
    int64_t last = atomic_load(&r->parts[p].last_enq), low = INT64_MAX;
    int64_t got = atomic_load(&r->parts[p].received);
    last = got > last ? got : last;
    for (size_t i = 0; i < r->nsinks; i++)
      if (r->sinks[i].delta && &r->sinks[i] != r->dl) {
        int64_t c = atomic_load(&r->sinks[i].committed[p]);
        low = c < low ? c : low;
      }
    if (low == INT64_MAX) /* no delta sink: what the pipeline has processed */
      low = atomic_load_explicit(&r->parts[p].seen_pub, memory_order_relaxed);
    ag_metrics_set(r->o->metrics, AG_M_LAST_ENQUEUED, r->parts[p].id, (double)last);
    ag_metrics_set(r->o->metrics, AG_M_COMMITTED_SEQ, r->parts[p].id, (double)low);
    ag_metrics_set(r->o->metrics, AG_M_LAG, r->parts[p].id,
                   (double)(last < 0 ? 0 : last - (low < 0 ? -1 : low)));
  }
}

#define MONITOR_US 5000000

/* @locality monitor thread (ag-monitor): its body  @locks takes run.mu only to wait */
void *ag_run_monitor_main(void *arg) {
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
    ag_run_update_lag(r);
  }
}

/* ---- the loop ---- */

/* A partition paused by a full ring resumes at half capacity; one paused by
 * its ring share, once half of its share is free; a held one stays paused
 * (any_paused stays set, so the next pass looks again).
 * @locality pipeline thread  @locks none */
void ag_run_resume_paused(run_t *r) {
  if (!atomic_load(&r->any_paused))
    return;
  size_t free_slots = rb_free_slots(r->ring);
  int share = atomic_load(&r->share);
  atomic_store(&r->any_paused, 0);
  for (size_t p = 0; p < r->nparts; p++) {
    part_t *pt = &r->parts[p];
    if (!atomic_load(&pt->paused) || atomic_load(&pt->unproven))
      continue; /* an unproven one stays paused until the pipeline closes it */
    bool room = free_slots >= RING_BLOCKS / 2 && (!share || atomic_load(&pt->queued) <= share / 2);
    if (atomic_load(&pt->held) || !room) {
      atomic_store(&r->any_paused, 1);
      continue;
    }
    if (atomic_exchange(&pt->paused, 0) && pt->rx)
      eh_receiver_resume(pt->rx);
  }
}
