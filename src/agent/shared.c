/* shared: several agents on one hub, through the Event Hubs SDKs' checkpoint
 * store ([source] checkpoint_store; owner.h has the protocol). The run goes
 * in generations, like Kafka's eager rebalance: a generation reads exactly the
 * partitions this agent provably owned when it began; any change of that set
 * (a gain, a loss, a proof that ran out, a link stolen by a higher epoch, a
 * FENCED commit) ends it: receivers of lost partitions close at once (before
 * anyone else may claim them), open batches are committed (FENCED there is
 * expected: another owner moved the partition first, the batch is void), the
 * flush queue drains, the sinks close, and the next generation opens sinks
 * (positions read from the tables) and receivers for what is owned then.
 * Exactly once holds because every commit carries per-partition positions
 * whose bases Delta checks (delta/table.h): a stale owner's commit is fenced.
 * Stateless queries (raw and dead-letter sinks) balance partitions as the
 * SDKs do, their sinks opened shared. Stateful ones (any window) have one
 * active agent through a lease record in the same store (folder
 * "ehdelta-lease", which the SDKs never list): the holder claims every
 * partition it can without stealing and reads once it holds them all; the
 * others wait on standby.
 * Threads: ag-owner runs the ownership rounds with its own store handles (the
 * lease's, the partitions'); the flush thread writes the SDK checkpoints
 * through a third; the pipeline (the caller's) asks for the proof each turn.
 * The pipeline may be blocked for long (a full flush queue while commits, or
 * the SDK checkpoints, wait on an unreachable store), and so may ag-owner
 * (each request may take the safety margin's bound): ag-guard, one per
 * generation, waits on neither. It looks at the proof every POLL_US / 2 and
 * holds each partition whose proof is gone or about to go (the receiver
 * takes nothing and grants no credit) and logs reading_stopped at once; the
 * pipeline closes the receiver when it next turns.
 * Prefix ag_shr_. */
#include "agent/run_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/owner.h"
#include "common/log.h"
#include "common/notify.h"
#include "common/time.h"

#define LEASE_FOLDER "ehdelta-lease"

typedef struct ag_shr {
  run_t *r;
  ag_own_t *own;   /* the partitions' records: ag-owner's until it is joined */
  ag_own_t *lease; /* stateful: the lease record (ag-owner's), else NULL */
  ag_own_t *ck;    /* the SDK checkpoints: the flush thread's */
  const char **pids;
  bool stateful;
  char lease_id[200];
  const char *lease_pids[1];
  pthread_t th;
  bool th_up;
  pthread_mutex_t
      mu; /* guards quit and rounds; cv wakes ag-owner (quit) and the waiting pipeline */
  pthread_cond_t cv;
  bool quit;
  uint64_t rounds;          /* ownership rounds done (under mu) */
  atomic_int round_failed;  /* the last round could not reach the store */
  _Atomic int64_t ok_start; /* monotonic start of the last round that reached the store */
  atomic_int holder;        /* stateful: this agent holds the lease */
  uint64_t *stolen_round;   /* per partition: rounds when its link was stolen (pipeline) */
  size_t *scratch;          /* nparts + 1 indexes (pipeline) */
  int64_t *ck_seq;          /* per partition: the last SDK checkpoint written (flush thread) */
  int64_t *ck_at;           /* per partition: monotonic time it was written (flush thread) */
  ag_own_stats_t last;      /* ag-owner: the stats at the last round, for metric deltas */
  size_t last_owned;        /* ag-owner */
  char standby_of[128];     /* ag-owner: the holder last logged */
  uint64_t gen;             /* pipeline */
  /* ag-guard: one per generation, stopped before the partitions are reset */
  pthread_t guard;
  bool guard_up;
  pthread_mutex_t gmu; /* guards gquit */
  pthread_cond_t gcv;
  bool gquit;
} shr_t;

static void write_checkpoints(run_t *r, const job_t *j, bool all);

const char *ag_shr_owner_id(const run_t *r) { return ag_own_id(r->shr->own); }

/* @locality caller's thread  @locks none */
static bool stateful_plan(const run_t *r) {
  for (size_t i = 0; i < r->nsinks; i++)
    if (r->sinks[i].win)
      return true;
  return false;
}

ed_code_t ag_shr_check(const run_t *r, ed_err_t *err) {
  const ag_source_t *src = &r->conf->source;
  if (r->available_now)
    return ed_err_set(err, ED_E_CONFIG,
                      "[source] checkpoint_store: agents sharing a hub run continuously; expected "
                      "no trigger = available-now, --available-now or --until");
  if (src->from_spark_checkpoint)
    return ed_err_set(err, ED_E_CONFIG,
                      "[source] checkpoint_store with from_spark_checkpoint: take over from Spark "
                      "with one agent first, then start several");
  return ED_OK;
}

/* An owner instance on its own store handle: each one is used by one thread.
 * id: NULL for the configured (or a fresh) owner id.
 * @locality caller's thread  @locks none */
static ed_code_t open_owner(run_t *r, const char *id, bool lease, ag_own_t **out, ed_err_t *err) {
  const ag_source_t *src = &r->conf->source;
  /* A round must not outlive the proofs whatever the store does: no retry
   * inside it (the next round is the retry) and no request waiting longer
   * than the safety margin (a quarter of the expiry, at least 2 s). Else a
   * store gone dark holds the owner thread, and SIGTERM's release, for
   * minutes of backoff. */
  st_opts_t so = r->o->store ? *r->o->store : (st_opts_t){0};
  so.max_retries = -1;
  int64_t bound = src->ownership_expiry_us / 4;
  if (bound < 2 * ED_US_PER_SEC)
    bound = 2 * ED_US_PER_SEC;
  if (!so.timeout_us || so.timeout_us > bound)
    so.timeout_us = bound;
  if (!so.connect_timeout_us || so.connect_timeout_us > bound)
    so.connect_timeout_us = bound;
  st_store_t *st = NULL;
  ed_code_t rc = st_open(src->checkpoint_store, &so, &st, err);
  if (rc)
    return ed_err_prefix(err, "[source] checkpoint_store");
  ag_own_opts_t oo = {.ns = r->ns,
                      .hub = eh_client_hub(r->client),
                      .group = src->consumer_group,
                      .owner_id = id ? id : src->owner_id,
                      .expiry_us = src->ownership_expiry_us,
                      .renew_us = src->ownership_renew_us,
                      .folder = lease ? LEASE_FOLDER : NULL,
                      .mode = r->shr->stateful && !lease ? AG_OWN_CLAIM_ALL
                                                         : (ag_own_mode_t)src->load_balancing};
  rc = ag_own_new(st, &oo, out, err); /* takes st */
  return rc ? ed_err_prefix(err, "[source] checkpoint_store") : ED_OK;
}

/* The lease names the set of queries that must read as one: the sinks' query
 * ids (FNV-1a over them, so that two configurations of other sinks never
 * share a lease), after the first one for people reading the container.
 * @locality caller's thread  @locks none */
static void lease_name(const run_t *r, char *out, size_t cap) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < r->nsinks; i++)
    for (const char *c = r->sinks[i].query_id; c; c = *c ? c + 1 : NULL) {
      h ^= (unsigned char)*c;
      h *= 1099511628211ULL;
      if (!*c)
        break;
    }
  /* the first query id, cut to leave room for the hash within a record name */
  snprintf(out, cap, "%.80s-%016" PRIx64, r->nsinks ? r->sinks[0].query_id : "ehdelta", h);
}

/* ---- ag-owner: the rounds ---- */

/* Metrics and one log line per change of what the rounds hold.
 * @locality ag-owner  @locks none */
static void publish(shr_t *h) {
  ag_own_stats_t st;
  ag_own_stats(h->own, &st);
  ag_metrics_t *m = h->r->o->metrics;
  ag_metrics_set(m, AG_M_OWNED_PARTS, NULL, (double)st.owned);
  ag_metrics_add(m, AG_M_OWN_CLAIMS, NULL, (double)(st.claims - h->last.claims));
  ag_metrics_add(m, AG_M_OWN_STEALS, NULL, (double)(st.steals - h->last.steals));
  ag_metrics_add(m, AG_M_OWN_LOSSES, NULL, (double)(st.losses - h->last.losses));
  if (st.owned != h->last_owned || st.claims != h->last.claims || st.losses != h->last.losses)
    ED_LOG_INFO("ownership_changed",
                "owner=%s owned=%zu claims=%" PRIu64 " steals=%" PRIu64 " losses=%" PRIu64,
                ag_own_id(h->own), st.owned, st.claims, st.steals, st.losses);
  h->last = st;
  h->last_owned = st.owned;
}

/* Stateful, not holding the lease: nothing of the partitions is kept (a
 * holder that lost its lease gives them up for the next one), and the holder
 * is named once per change.
 * @locality ag-owner  @locks none */
static void standby(shr_t *h) {
  ed_err_t e = {0};
  ag_own_stats_t st;
  ag_own_stats(h->own, &st);
  if (st.owned && ag_own_release_all(h->own, &e))
    ED_LOG_WARN("ownership_release_failed", "owner=%s error=\"%s\"", ag_own_id(h->own), e.msg);
  ag_own_rec_t *recs = NULL;
  size_t n = 0;
  const char *holder = "none";
  if (ag_own_list(h->lease, &recs, &n, &e) == ED_OK)
    for (size_t i = 0; i < n; i++)
      if (!strcmp(recs[i].pid, h->lease_id) && recs[i].owner[0])
        holder = recs[i].owner;
  if (strcmp(holder, h->standby_of)) {
    snprintf(h->standby_of, sizeof h->standby_of, "%s", holder);
    ED_LOG_INFO("standby", "owner=%s holder=%s lease=%s", ag_own_id(h->own), holder, h->lease_id);
  }
  free(recs);
}

/* One round: the lease first (stateful), then the partitions.
 * @locality ag-owner  @locks takes shr.mu to count the round */
static void one_round(shr_t *h) {
  ed_err_t e = {0};
  ed_code_t rc = ED_OK;
  int64_t start = ed_time_mono_us();
  if (h->lease) {
    rc = ag_own_tick(h->lease, h->lease_pids, 1, &e);
    bool hold = ag_own_owns(h->lease, 0);
    atomic_store(&h->holder, hold);
    if (!rc && hold) {
      h->standby_of[0] = 0;
      rc = ag_own_tick(h->own, h->pids, h->r->nparts, &e);
    } else if (!rc) {
      standby(h);
    }
  } else {
    rc = ag_own_tick(h->own, h->pids, h->r->nparts, &e);
  }
  atomic_store(&h->round_failed, rc != ED_OK);
  if (!rc)
    atomic_store(&h->ok_start, start);
  if (rc)
    ED_LOG_WARN("ownership_round_failed", "owner=%s error=\"%s\"", ag_own_id(h->own), e.msg);
  publish(h);
  pthread_mutex_lock(&h->mu);
  h->rounds++;
  pthread_cond_broadcast(&h->cv);
  pthread_mutex_unlock(&h->mu);
}

/* @locality ag-owner: its body  @locks takes shr.mu to wait */
static void *owner_main(void *arg) {
  shr_t *h = arg;
  int64_t every = ag_own_renew_us(h->own);
  for (;;) {
    one_round(h);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += every / ED_US_PER_SEC;
    ts.tv_nsec += (every % ED_US_PER_SEC) * 1000;
    if (ts.tv_nsec >= 1000000000)
      ts.tv_sec++, ts.tv_nsec -= 1000000000;
    pthread_mutex_lock(&h->mu);
    while (!h->quit && pthread_cond_timedwait(&h->cv, &h->mu, &ts) == 0)
      ;
    bool quit = h->quit;
    pthread_mutex_unlock(&h->mu);
    if (quit)
      return NULL;
  }
}

/* ---- the pipeline's side ---- */

/* When partition p's proof ends (monotonic): its claim's, or the lease's if
 * that ends first; INT64_MIN when p is not claimed.
 * @locality any  @locks takes the owners' locks */
static int64_t proof_end(const run_t *r, size_t p) {
  shr_t *h = r->shr;
  int64_t end = ag_own_proof_end(h->own, p);
  if (h->lease && end != INT64_MIN && ag_own_proof_end(h->lease, 0) < end)
    end = ag_own_proof_end(h->lease, 0);
  return end;
}

/* reading_stopped, with how much of the proof was left (ms; "none" once it
 * was dropped: lost, or taken back by ag_own_expired).
 * @locality pipeline thread, ag-guard  @locks takes the owners' locks */
static void log_stopped(run_t *r, size_t p, const char *why) {
  int64_t end = proof_end(r, p);
  char left[24] = "none";
  if (end != INT64_MIN)
    snprintf(left, sizeof left, "%lld", (long long)((end - ed_time_mono_us()) / 1000));
  ED_LOG_INFO("reading_stopped", "partition=%s owner=%s reason=%s proof_left_ms=%s", r->parts[p].id,
              ag_shr_owner_id(r), why, left);
}

/* @locality pipeline thread  @locks none */
static void close_part(run_t *r, size_t p, const char *why) {
  part_t *pt = &r->parts[p];
  if (!pt->gen_owned || pt->closed)
    return;
  eh_receiver_close(pt->rx); /* returns once the link is detached */
  pt->rx = NULL;
  pt->closed = true;
  ag_metrics_set(r->o->metrics, AG_M_PART_OWNED, pt->id, 0);
  if (!atomic_exchange(&pt->stop_logged, 1)) /* else ag-guard stopped it first and said so */
    log_stopped(r, p, why);
}

/* @locality pipeline thread  @locks takes shr.mu */
static uint64_t rounds_now(shr_t *h) {
  pthread_mutex_lock(&h->mu);
  uint64_t n = h->rounds;
  pthread_mutex_unlock(&h->mu);
  return n;
}

/* Partition p's link was stolen and no round begun since has listed the
 * records. @locality pipeline thread  @locks takes shr.mu */
static bool held_back(shr_t *h, size_t p) {
  return h->stolen_round[p] != UINT64_MAX && rounds_now(h) < h->stolen_round[p] + 2;
}

void ag_shr_stolen(run_t *r, size_t p) {
  shr_t *h = r->shr;
  atomic_store(&r->parts[p].failed, 0);
  /* Our proof still says ours until a round sees the thief's record: not
   * taken back before then (the thief's epoch would only be stolen again).
   * The round under way may have listed before the thief's claim: only the
   * one after it counts (stolen_round + 2, see held_back). */
  h->stolen_round[p] = rounds_now(h);
  close_part(r, p, "stolen");
  r->gen_end = true;
}

void ag_shr_refused(run_t *r, size_t p) {
  shr_t *h = r->shr;
  h->stolen_round[p] = rounds_now(h);
  r->parts[p].closed = true;                 /* never started: nothing to close or log as stopped */
  atomic_store(&r->parts[p].stop_logged, 1); /* ag-guard's too */
  r->gen_end = true;
}

/* How long a proof lasts after the claim that made it: the expiry less
 * owner.c's default safety margin (a quarter of it). */
static int64_t proof_us(const run_t *r) {
  return r->conf->source.ownership_expiry_us - r->conf->source.ownership_expiry_us / 4;
}

/* Why proofs ran out: no round reached the store for as long as a proof
 * lasts, or a round that did saw another owner's record.
 * @locality pipeline thread, ag-guard  @locks none */
static const char *loss_reason(const run_t *r) {
  shr_t *h = r->shr;
  int64_t quiet = ed_time_mono_us() - atomic_load(&h->ok_start);
  return atomic_load(&h->round_failed) || quiet >= proof_us(r) ? "expired" : "lost";
}

/* Within POLL_US of its proof's end a claim counts as gone: ag-guard looks
 * every POLL_US / 2, so it stops reading before the proof ends, not up to a
 * look later. Healthy rounds renew long before (renew + margin < expiry).
 * @locality any  @locks takes o's lock */
static bool lasts(const ag_own_t *o, size_t i, int64_t now) {
  int64_t end = ag_own_proof_end(o, i);
  return end != INT64_MIN && now < end - POLL_US;
}

/* Partition p may be read: provably ours (and, stateful, the lease too) for
 * a while yet.
 * @locality any  @locks takes the owners' locks */
static bool proven(const run_t *r, size_t p) {
  shr_t *h = r->shr;
  int64_t now = ed_time_mono_us();
  if (h->lease && !lasts(h->lease, 0, now))
    return false;
  return lasts(h->own, p, now);
}

void ag_shr_turn(run_t *r) {
  shr_t *h = r->shr;
  for (size_t p = 0; p < r->nparts; p++)
    if (r->parts[p].gen_owned && atomic_load(&r->parts[p].unproven)) {
      close_part(r, p, "expired"); /* ag-guard has logged why */
      r->gen_end = true;
    }
  size_t n = ag_own_expired(h->own, h->scratch);
  const char *why = n ? loss_reason(r) : "lost";
  for (size_t k = 0; k < n; k++) {
    size_t p = h->scratch[k];
    if (p < r->nparts && r->parts[p].gen_owned) {
      close_part(r, p, why);
      r->gen_end = true;
    }
  }
  if (h->lease) {
    size_t nl = ag_own_expired(h->lease, h->scratch);
    if (nl || !ag_own_owns(h->lease, 0)) {
      for (size_t p = 0; p < r->nparts; p++)
        close_part(r, p, nl ? loss_reason(r) : "lost");
      r->gen_end = true;
    }
    return; /* the holder's generation already reads every partition */
  }
  for (size_t p = 0; p < r->nparts && !r->gen_end; p++)
    if (!r->parts[p].gen_owned && proven(r, p) && !held_back(h, p))
      r->gen_end = true; /* gained: read it from the next generation on */
}

/* ---- ag-guard: the stop that waits on nothing ---- */

/* One look: every partition of this generation whose proof is gone or ending
 * is held (see part_t.unproven) and reading_stopped logged for it, then one
 * warning names those whose proof ran out and for how long no round reached
 * the store.
 * @locality ag-guard  @locks takes the owners' locks (proven) */
static void guard_look(run_t *r) {
  shr_t *h = r->shr;
  ed_buf_t ids = ED_BUF_INIT;
  int64_t sent = INT64_MAX; /* the earliest last successful claim of those stopped as expired */
  /* While rounds fail, the claims renewed together end within one round of
   * each other: when the first proof ends, every partition of the
   * generation stops in this look, with one warning, rather than one by one
   * while the pipeline ends the generation around them. */
  bool sweep = false;
  if (atomic_load(&h->round_failed))
    for (size_t p = 0; p < r->nparts && !sweep; p++) {
      part_t *pt = &r->parts[p];
      sweep = pt->gen_owned && !atomic_load(&pt->unproven) && !atomic_load(&pt->stop_logged) &&
              !proven(r, p);
    }
  for (size_t p = 0; p < r->nparts; p++) {
    part_t *pt = &r->parts[p];
    if (!pt->gen_owned || atomic_load(&pt->unproven) || atomic_load(&pt->stop_logged) ||
        (!sweep && proven(r, p)))
      continue;
    int64_t end = proof_end(r, p);
    atomic_store(&pt->unproven, 1);
    if (atomic_exchange(&pt->stop_logged, 1))
      continue; /* the pipeline closed it meanwhile and said why */
    const char *why = loss_reason(r);
    ag_metrics_set(r->o->metrics, AG_M_PART_OWNED, pt->id, 0);
    log_stopped(r, p, why);
    if (!strcmp(why, "expired")) {
      ed_buf_printf(&ids, "%s%s", ids.len ? "," : "", pt->id);
      if (end != INT64_MIN && end - proof_us(r) < sent)
        sent = end - proof_us(r);
    }
  }
  if (ids.len) {
    /* sent unknown: the pipeline took the flags meanwhile; the last round
     * that reached the store began no later than the claims it renewed */
    int64_t now = ed_time_mono_us(),
            quiet = now - (sent == INT64_MAX ? atomic_load(&h->ok_start) : sent);
    char last[ED_TIME_ISO_MAX];
    ed_time_format_iso(ed_time_now_us() - quiet, 3, last);
    ED_LOG_WARN("ownership_expired",
                "owner=%s partitions=%s quiet_ms=%lld proof_ms=%lld last_renewal=%s reason=\"no "
                "renewal succeeded for %.1f s: stopped reading them before another owner may "
                "claim them\"",
                ag_own_id(h->own), ids.data, (long long)(quiet / 1000),
                (long long)(proof_us(r) / 1000), last, (double)quiet / 1e6);
  }
  ed_buf_fini(&ids);
}

/* @locality ag-guard: its body  @locks takes shr.gmu to wait */
static void *guard_main(void *arg) {
  run_t *r = arg;
  shr_t *h = r->shr;
  for (;;) {
    guard_look(r);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += POLL_US / 2 * 1000L;
    if (ts.tv_nsec >= 1000000000)
      ts.tv_sec++, ts.tv_nsec -= 1000000000;
    pthread_mutex_lock(&h->gmu);
    while (!h->gquit && pthread_cond_timedwait(&h->gcv, &h->gmu, &ts) == 0)
      ;
    bool quit = h->gquit;
    pthread_mutex_unlock(&h->gmu);
    if (quit)
      return NULL;
  }
}

/* @locality pipeline thread  @locks takes shr.gmu */
static void stop_guard(shr_t *h) {
  if (!h->guard_up)
    return;
  pthread_mutex_lock(&h->gmu);
  h->gquit = true;
  pthread_cond_broadcast(&h->gcv);
  pthread_mutex_unlock(&h->gmu);
  pthread_join(h->guard, NULL);
  h->guard_up = false;
}

/* What the next generation reads: stateless, every partition provably ours
 * (one stolen from us only after a round has seen it); stateful, all of them
 * while this agent holds the lease and every partition, else none.
 * @locality pipeline thread  @locks takes shr.mu */
static size_t choose(run_t *r) {
  shr_t *h = r->shr;
  size_t n = 0;
  bool all = h->lease != NULL;
  for (size_t p = 0; all && p < r->nparts; p++)
    all = proven(r, p);
  for (size_t p = 0; p < r->nparts; p++) {
    part_t *pt = &r->parts[p];
    pt->gen_owned = h->lease ? all : proven(r, p) && !held_back(h, p);
    n += pt->gen_owned;
  }
  return n;
}

/* Between generations: waits until there is something to read (false: stop).
 * Proofs that ran out meanwhile concern no open receiver: their flags are
 * dropped.
 * @locality pipeline thread  @locks takes shr.mu to wait */
static bool wait_owned(run_t *r) {
  shr_t *h = r->shr;
  for (;;) {
    if (r->o->stop && *r->o->stop)
      return false;
    ag_own_expired(h->own, h->scratch);
    if (h->lease)
      ag_own_expired(h->lease, h->scratch);
    if (choose(r))
      return true;
    ed_notify_watchdog_tick();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += POLL_US * 1000L;
    if (ts.tv_nsec >= 1000000000)
      ts.tv_sec++, ts.tv_nsec -= 1000000000;
    pthread_mutex_lock(&h->mu);
    uint64_t seen = h->rounds;
    while (h->rounds == seen && pthread_cond_timedwait(&h->cv, &h->mu, &ts) == 0)
      ;
    pthread_mutex_unlock(&h->mu);
  }
}

/* After a generation: every receiver closed, the ring emptied (what it held
 * is read again from the tables' positions), the partitions as at start.
 * @locality pipeline thread, no flush or monitor thread running  @locks none */
static void reset_parts(run_t *r, const char *why) {
  for (size_t p = 0; p < r->nparts; p++)
    close_part(r, p, why);
  void *item;
  while (rb_pop(r->ring, &item) == ED_OK)
    free(item);
  for (size_t p = 0; p < r->nparts; p++) {
    part_t *pt = &r->parts[p];
    pt->gen_owned = pt->closed = false;
    pt->seen = pt->seen_off = -1;
    atomic_store(&pt->seen_pub, -1);
    pt->done = false;
    atomic_store(&pt->paused, 0);
    atomic_store(&pt->held, 0);
    atomic_store(&pt->queued, 0);
    atomic_store(&pt->failed, 0);
    atomic_store(&pt->unproven, 0);
    atomic_store(&pt->stop_logged, 0);
    atomic_store(&pt->received, -1);
    pt->in_fair = 0;
    pt->taken_enq = INT64_MIN;
  }
  atomic_store(&r->any_paused, 0);
  atomic_store(&r->share, 0);
}

/* One generation, from the sinks' opening to the drained flush queue.
 * @locality caller's thread (the pipeline)  @locks takes run.mu (flush) */
static ed_code_t generation(run_t *r, ed_err_t *err) {
  shr_t *h = r->shr;
  ed_buf_t ids = ED_BUF_INIT;
  for (size_t p = 0; p < r->nparts; p++) {
    if (r->parts[p].gen_owned)
      ed_buf_printf(&ids, "%s%s", ids.len ? "," : "", r->parts[p].id);
    ag_metrics_set(r->o->metrics, AG_M_PART_OWNED, r->parts[p].id, r->parts[p].gen_owned);
  }
  h->gen++;
  ag_metrics_set(r->o->metrics, AG_M_GENERATION, NULL, (double)h->gen);
  ED_LOG_INFO("generation", "owner=%s gen=%" PRIu64 " partitions=%s", ag_own_id(h->own), h->gen,
              ids.data ? ids.data : "");
  ed_buf_fini(&ids);
  for (size_t p = 0; p < r->nparts; p++)
    h->ck_seq[p] = -1;
  r->gen_end = false;
  ed_code_t rc = h->gen > 1 ? ag_run_rebuild_sinks(r, err) : ED_OK;
  rc = rc ? rc : ag_run_open_sinks(r, err);
  rc = rc ? rc : ag_run_start_flush(r, err);
  rc = rc ? rc : ag_run_start_receivers(r, err);
  h->gquit = false;
  if (!rc && !pthread_create(&h->guard, NULL, guard_main, r))
    h->guard_up = true, pthread_setname_np(h->guard, "ag-guard");
  if (!rc)
    ag_run_update_lag(r);
  if (!rc && !pthread_create(&r->monitor, NULL, ag_run_monitor_main, r))
    r->monitor_up = true, pthread_setname_np(r->monitor, "ag-monitor");
  if (!rc) {
    ed_notify("STATUS=receiving", NULL);
    rc = ag_run_pipeline(r, err);
  }
  bool stop = r->o->stop && *r->o->stop;
  for (size_t p = 0; p < r->nparts; p++)
    close_part(r, p, stop ? "released" : "generation"); /* released: given up below, on stop */
  stop_guard(h); /* nothing left to hold; joined before the partitions are reset */
  if (!stop)
    ed_notify("STATUS=waiting for partitions", NULL);
  ag_run_stop_flush(r);
  write_checkpoints(r, NULL, true); /* what the interval held back */
  if (!rc && r->flush_rc && r->flush_rc != ED_E_FENCED) {
    rc = r->flush_rc;
    *err = r->flush_err;
  }
  r->flush_rc = ED_OK;
  reset_parts(r, "generation");
  return rc;
}

/* @locality caller's thread  @locks takes shr.mu to stop ag-owner */
static void stop_owner(shr_t *h) {
  if (!h->th_up)
    return;
  pthread_mutex_lock(&h->mu);
  h->quit = true;
  pthread_cond_broadcast(&h->cv);
  pthread_mutex_unlock(&h->mu);
  pthread_join(h->th, NULL);
  h->th_up = false;
}

/* @locality caller's thread  @locks none */
static void shr_free(shr_t *h) {
  if (!h)
    return;
  stop_owner(h);
  stop_guard(h);
  ag_own_free(h->own);
  ag_own_free(h->lease);
  ag_own_free(h->ck);
  free(h->pids);
  free(h->stolen_round);
  free(h->scratch);
  free(h->ck_seq);
  free(h->ck_at);
  pthread_mutex_destroy(&h->mu);
  pthread_cond_destroy(&h->cv);
  pthread_mutex_destroy(&h->gmu);
  pthread_cond_destroy(&h->gcv);
  free(h);
}

/* @locality caller's thread, before ag-owner starts  @locks none */
static ed_code_t shr_open(run_t *r, ed_err_t *err) {
  shr_t *h = calloc(1, sizeof *h);
  if (!h)
    return ag_run_nomem(err, "checkpoint store");
  pthread_mutex_init(&h->mu, NULL);
  pthread_cond_init(&h->cv, NULL);
  pthread_mutex_init(&h->gmu, NULL);
  pthread_cond_init(&h->gcv, NULL);
  h->r = r;
  r->shr = h;
  atomic_init(&h->ok_start, ed_time_mono_us());
  h->stateful = stateful_plan(r);
  r->balanced = !h->stateful;
  h->pids = calloc(r->nparts + 1, sizeof *h->pids);
  h->stolen_round = calloc(r->nparts + 1, sizeof *h->stolen_round);
  h->scratch = calloc(r->nparts + 1, sizeof *h->scratch);
  h->ck_seq = calloc(r->nparts + 1, sizeof *h->ck_seq);
  h->ck_at = calloc(r->nparts + 1, sizeof *h->ck_at);
  if (!h->pids || !h->stolen_round || !h->scratch || !h->ck_seq || !h->ck_at)
    return ag_run_nomem(err, "checkpoint store");
  for (size_t p = 0; p < r->nparts; p++) {
    h->pids[p] = r->parts[p].id;
    h->stolen_round[p] = UINT64_MAX;
  }
  ed_code_t rc = open_owner(r, NULL, false, &h->own, err);
  rc = rc ? rc : open_owner(r, ag_own_id(h->own), false, &h->ck, err);
  if (!rc && h->stateful) {
    lease_name(r, h->lease_id, sizeof h->lease_id);
    h->lease_pids[0] = h->lease_id;
    rc = open_owner(r, ag_own_id(h->own), true, &h->lease, err);
  }
  if (rc)
    return rc;
  ag_metrics_set_owner(r->o->metrics, ag_own_id(h->own));
  ED_LOG_INFO("run", "source=%s partitions=%zu sinks=%zu mode=continuous owner=%s sharing=%s%s%s",
              r->source_desc, r->nparts, r->nsinks, ag_own_id(h->own),
              h->stateful ? "lease" : "balanced", h->stateful ? " lease=" : "",
              h->stateful ? h->lease_id : "");
  if (pthread_create(&h->th, NULL, owner_main, h))
    return ed_err_set(err, ED_E_INTERNAL, "run: cannot start the ownership thread");
  h->th_up = true;
  pthread_setname_np(h->th, "ag-owner");
  /* Type=notify: ready once the hub answered and the store is open; a
   * standby, or an agent beyond the partition count, may own nothing for
   * long, and is running as meant meanwhile. */
  ed_notify("READY=1\nSTATUS=waiting for partitions", NULL);
  return ED_OK;
}

ed_code_t ag_shr_run(run_t *r, ed_err_t *err) {
  ed_code_t rc = shr_open(r, err);
  while (!rc && wait_owned(r))
    rc = generation(r, err);
  shr_t *h = r->shr;
  if (!h)
    return rc; /* not even allocated */
  /* Given up only after the last commits landed: the next owner reads on
   * from them, and on its next round rather than after the expiry. */
  stop_owner(h);
  ed_err_t e = {0};
  if (h->own && ag_own_release_all(h->own, &e))
    ED_LOG_WARN("ownership_release_failed", "owner=%s error=\"%s\"", ag_own_id(h->own), e.msg);
  if (h->lease && ag_own_release_all(h->lease, &e))
    ED_LOG_WARN("ownership_release_failed", "owner=%s error=\"%s\"", ag_own_id(h->own), e.msg);
  if (h->own)
    ag_metrics_set(r->o->metrics, AG_M_OWNED_PARTS, NULL, 0);
  shr_free(h);
  r->shr = NULL;
  return rc;
}

/* The least committed position over the delta sinks that take rows (the dead
 * letters follow them), with its offset when known.
 * @locality flush thread (ag-flush)  @locks none */
static int64_t least_committed(const run_t *r, size_t p, int64_t *off) {
  int64_t low = INT64_MAX;
  *off = -1;
  for (size_t i = 0; i < r->nsinks; i++) {
    const sink_t *s = &r->sinks[i];
    if (!s->delta || s == r->dl)
      continue;
    int64_t c = atomic_load(&s->committed[p]);
    if (c < low)
      low = c, *off = s->committed_off[p];
  }
  return low == INT64_MAX ? -1 : low;
}

/* The SDK checkpoints of the partitions whose least committed position moved
 * past the last one written, at most one a partition per renewal interval
 * unless all (a generation's end): one blob write per partition and commit
 * would put 32 storage round trips behind every commit of a continuous
 * trigger, where the SDKs' own processors checkpoint when the application
 * asks. The table, not this record, is the exactly-once position.
 * @locality flush thread, or the pipeline once it is stopped  @locks none */
static void write_checkpoints(run_t *r, const job_t *j, bool all) {
  shr_t *h = r->shr;
  int64_t now = ed_time_mono_us(), every = r->conf->source.ownership_renew_us;
  for (size_t p = 0; p < r->nparts; p++) {
    if (j && j->end[p] < 0)
      continue;
    int64_t off, seq = least_committed(r, p, &off);
    /* an offset unknown: a sink resumed from its table and not yet committed here */
    if (seq <= h->ck_seq[p] || off < 0 || !proven(r, p))
      continue;
    if (!all && h->ck_seq[p] >= 0 && now - h->ck_at[p] < every)
      continue;
    ed_err_t e = {0};
    if (ag_own_checkpoint(h->ck, r->parts[p].id, off, seq, &e)) {
      ED_LOG_WARN("sdk_checkpoint_failed", "partition=%s owner=%s error=\"%s\"", r->parts[p].id,
                  ag_own_id(h->own), e.msg);
      continue;
    }
    h->ck_seq[p] = seq;
    h->ck_at[p] = now;
  }
}

void ag_shr_checkpoint(run_t *r, const job_t *j) { write_checkpoints(r, j, false); }
