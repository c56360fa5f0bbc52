/* compact: the agent's background compaction. */
#include "agent/compact.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/time.h"
#include "delta/maint.h"
#include "delta/table.h"

/* After a conflict with another remover (a second optimize), look again soon
 * rather than an interval later, but not in a tight loop. */
#define CONFLICT_RETRY_US (ED_US_PER_SEC)

typedef struct ctable {
  ag_compact_spec_t spec; /* name and url owned */
  st_store_t *store;      /* NULL until the first round, and after a failure */
  dl_table_t *table;
  int64_t due; /* monotonic time of the next round */
  bool off;    /* the table refuses optimize (a writer feature ehdelta lacks) */
} ctable_t;

struct ag_compact {
  ctable_t *t;
  size_t n;
  const st_opts_t *store;
  ag_metrics_t *metrics;
  FILE *progress;
  pthread_t thread;
  pthread_mutex_t mu; /* guards stop */
  pthread_cond_t cv;
  bool stop;
};

/* @locality ag-compact  @locks none */
static void drop(ctable_t *t) {
  dl_table_free(t->table);
  st_free(t->store);
  t->table = NULL;
  t->store = NULL;
}

/* The snapshot as of now: opened on the first round, then brought forward
 * by reading only the commits since.
 * @locality ag-compact  @locks none */
static ed_code_t refresh(ag_compact_t *c, ctable_t *t, ed_err_t *err) {
  ed_code_t rc;
  if (t->table && (rc = dl_table_update(t->table, err)) == ED_OK)
    return ED_OK;
  drop(t);
  if ((rc = st_open(t->spec.url, c->store, &t->store, err)) ||
      (rc = dl_table_open(t->store, &t->table, err)))
    drop(t);
  return rc;
}

/* @locality ag-compact  @locks none (stdio's own lock keeps the line whole) */
static void report(ag_compact_t *c, const ctable_t *t, const dl_optimize_result_t *res,
                   int conflicts, int64_t us) {
  const char *name = t->spec.name;
  ag_metrics_add(c->metrics, AG_M_COMPACTIONS, name, 1);
  ag_metrics_add(c->metrics, AG_M_COMPACT_FILES_REMOVED, name, (double)res->files_removed);
  ag_metrics_add(c->metrics, AG_M_COMPACT_FILES_ADDED, name, (double)res->files_added);
  ag_metrics_add(c->metrics, AG_M_COMPACT_BYTES, name, (double)res->bytes_removed);
  ag_metrics_add(c->metrics, AG_M_COMPACT_SECONDS, name, (double)us / 1e6);
  ED_LOG_INFO("compaction",
              "sink=%s version=%" PRId64 " partitions=%zu files_removed=%zu files_added=%zu"
              " bytes_removed=%" PRId64 " bytes_added=%" PRId64 " rows=%" PRId64
              " conflicts=%d ms=%" PRId64,
              name, res->version, res->partitions, res->files_removed, res->files_added,
              res->bytes_removed, res->bytes_added, res->rows, conflicts, us / 1000);
  if (!c->progress)
    return;
  ed_buf_t b = ED_BUF_INIT;
  ed_buf_puts(&b, "{\"name\":");
  ed_buf_json_str(&b, name, strlen(name));
  ed_buf_printf(&b,
                ",\"compaction\":{\"version\":%" PRId64 ",\"partitions\":%zu,\"filesRemoved\":%zu"
                ",\"filesAdded\":%zu,\"bytesRemoved\":%" PRId64 ",\"bytesAdded\":%" PRId64
                ",\"rows\":%" PRId64 ",\"conflicts\":%d,\"durationMs\":%" PRId64 "}}",
                res->version, res->partitions, res->files_removed, res->files_added,
                res->bytes_removed, res->bytes_added, res->rows, conflicts, us / 1000);
  if (ed_buf_status(&b) == ED_OK) {
    fprintf(c->progress, "%s\n", b.data);
    fflush(c->progress);
  }
  ed_buf_fini(&b);
}

/* One look at one table. Lost races with ingestion commits are retried
 * inside dl_table_commit (they only add files); a conflict proper (another
 * writer removed a file this one rewrote) drops the snapshot and looks again
 * after CONFLICT_RETRY_US.
 * @locality ag-compact  @locks none */
static void round_one(ag_compact_t *c, ctable_t *t) {
  int64_t t0 = ed_time_mono_us();
  t->due = t0 + t->spec.interval_us;
  ed_err_t err = {0};
  ed_code_t rc = refresh(c, t, &err);
  dl_optimize_result_t res = {0};
  if (!rc) {
    dl_optimize_opts_t o = {.target_size = t->spec.target_size,
                            .min_files = (size_t)t->spec.min_files};
    rc = dl_optimize(t->table, &o, &res, &err);
  }
  int conflicts = res.attempts > 1 ? res.attempts - 1 : 0;
  if (rc == ED_E_CONFLICT)
    conflicts++;
  if (conflicts)
    ag_metrics_add(c->metrics, AG_M_COMPACT_CONFLICTS, t->spec.name, conflicts);
  if (!rc && res.version >= 0)
    report(c, t, &res, conflicts, ed_time_mono_us() - t0);
  if (!rc)
    return;
  if (rc == ED_E_UNSUPPORTED) {
    t->off = true;
    ED_LOG_WARN("compaction_off", "sink=%s error=\"%s\"", t->spec.name, err.msg);
  } else {
    ED_LOG_WARN("compaction_failed", "sink=%s code=%s error=\"%s\"", t->spec.name, ed_code_name(rc),
                err.msg);
  }
  if (rc == ED_E_CONFLICT)
    t->due = ed_time_mono_us() + CONFLICT_RETRY_US;
  drop(t);
}

/* @locality ag-compact: its body  @locks takes c->mu to wait, never across a round */
static void *compact_main(void *arg) {
  ag_compact_t *c = arg;
  for (;;) {
    int64_t now = ed_time_mono_us(), next = INT64_MAX;
    for (size_t i = 0; i < c->n; i++)
      if (!c->t[i].off && c->t[i].due < next)
        next = c->t[i].due;
    pthread_mutex_lock(&c->mu);
    if (!c->stop && next > now) {
      /* the condition variable runs on CLOCK_MONOTONIC (ag_compact_start) */
      struct timespec ts;
      clock_gettime(CLOCK_MONOTONIC, &ts);
      int64_t wait = next == INT64_MAX ? 3600 * ED_US_PER_SEC : next - now;
      ts.tv_sec += (time_t)(wait / ED_US_PER_SEC);
      ts.tv_nsec += (long)(wait % ED_US_PER_SEC) * 1000;
      if (ts.tv_nsec >= 1000000000L)
        ts.tv_sec++, ts.tv_nsec -= 1000000000L;
      pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    }
    bool stop = c->stop;
    pthread_mutex_unlock(&c->mu);
    if (stop)
      return NULL;
    now = ed_time_mono_us();
    for (size_t i = 0; i < c->n; i++)
      if (!c->t[i].off && c->t[i].due <= now)
        round_one(c, &c->t[i]);
  }
}

static void compact_free(ag_compact_t *c) {
  for (size_t i = 0; i < c->n; i++) {
    drop(&c->t[i]);
    free((char *)c->t[i].spec.name);
    free((char *)c->t[i].spec.url);
  }
  free(c->t);
  pthread_mutex_destroy(&c->mu);
  pthread_cond_destroy(&c->cv);
  free(c);
}

ed_code_t ag_compact_start(const ag_compact_spec_t *specs, size_t n, const st_opts_t *store,
                           ag_metrics_t *metrics, FILE *progress, ag_compact_t **out,
                           ed_err_t *err) {
  *out = NULL;
  ag_compact_t *c = calloc(1, sizeof *c);
  if (!c)
    return ed_err_set(err, ED_E_NOMEM, "compaction: out of memory");
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&c->cv, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_init(&c->mu, NULL);
  c->store = store;
  c->metrics = metrics;
  c->progress = progress;
  c->t = calloc(n + 1, sizeof *c->t);
  bool ok = c->t != NULL;
  int64_t now = ed_time_mono_us();
  for (size_t i = 0; ok && i < n; i++) {
    ctable_t *t = &c->t[c->n++];
    t->spec = specs[i];
    t->spec.name = strdup(specs[i].name);
    t->spec.url = strdup(specs[i].url);
    t->due = now + specs[i].interval_us;
    ok = t->spec.name && t->spec.url;
  }
  if (!ok) {
    compact_free(c);
    return ed_err_set(err, ED_E_NOMEM, "compaction: out of memory");
  }
  if (pthread_create(&c->thread, NULL, compact_main, c)) {
    compact_free(c);
    return ed_err_set(err, ED_E_INTERNAL, "compaction: cannot start its thread");
  }
  pthread_setname_np(c->thread, "ag-compact");
  *out = c;
  return ED_OK;
}

void ag_compact_stop(ag_compact_t *c) {
  if (!c)
    return;
  pthread_mutex_lock(&c->mu);
  c->stop = true;
  pthread_cond_signal(&c->cv);
  pthread_mutex_unlock(&c->mu);
  pthread_join(c->thread, NULL);
  compact_free(c);
}
