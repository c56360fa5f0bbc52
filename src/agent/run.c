/* run: available-now ingestion into delta sinks (see run.h). */
#include "agent/run.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/sink.h"
#include "common/buf.h"
#include "eventhubs/client.h"
#include "eventhubs/connstr.h"
#include "stream/decode.h"
#include "stream/schema.h"

#define QCAP 20000 /* events held between the network and the pipeline */

typedef struct qev {
  char part[16];
  int64_t seq, off, enq;
  size_t len;
  char *body;
} qev_t;

typedef struct queue {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  qev_t *ev;
  size_t n;
  eh_receiver_t **paused;
  size_t npaused, nrx;
} queue_t;

static size_t on_events(void *ctx, eh_receiver_t *rx, const eh_event_t *evs, size_t n) {
  queue_t *q = ctx;
  pthread_mutex_lock(&q->mu);
  size_t took = 0;
  for (; took < n && q->n < QCAP; took++) {
    qev_t *e = &q->ev[q->n];
    e->body = calloc(1, evs[took].body_len + 64); /* simdjson reads up to 64 bytes past the end */
    if (!e->body)
      break;
    memcpy(e->body, evs[took].body, evs[took].body_len);
    e->len = evs[took].body_len;
    snprintf(e->part, sizeof e->part, "%s", evs[took].partition);
    e->seq = evs[took].sequence_number;
    e->off = evs[took].offset;
    e->enq = evs[took].enqueued_time_us;
    q->n++;
  }
  if (took < n)
    q->paused[q->npaused++] = rx; /* at most once per receiver: it waits for resume */
  pthread_cond_signal(&q->cv);
  pthread_mutex_unlock(&q->mu);
  return took;
}

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

typedef struct sinkrun {
  const ag_sink_t *conf;
  ag_dsink_t *ds;
  ag_ckpt_t ck;
  sm_batch_t *b;
} sinkrun_t;

static ed_code_t flush(sinkrun_t *s, const char *runid, FILE *progress, int64_t t0, ed_err_t *err) {
  s->ck.batch_id = ag_dsink_next_batch(s->ds);
  int64_t v = -1;
  bool already = false;
  size_t rows = s->b->nrows;
  ed_code_t rc = ag_dsink_commit(s->ds, s->b, &s->ck, &v, &already, err);
  if (rc)
    return ed_err_prefix(err, "sink '%s': ", s->conf->name);
  int64_t dur = now_us() - t0;
  if (progress) {
    fprintf(progress,
            "{\"id\":\"%s\",\"runId\":\"%s\",\"name\":\"%s\",\"batchId\":%" PRId64
            ",\"numInputRows\":%zu,\"durationMs\":{\"triggerExecution\":%" PRId64
            "},\"sink\":{\"description\":\"DeltaSink[%s]\",\"numOutputRows\":%zu,\"tableVersion\":"
            "%" PRId64 "},\"sources\":[{\"endOffset\":{",
            s->conf->query_id, runid, s->conf->name, s->ck.batch_id, rows, dur / 1000,
            s->conf->path, already ? (size_t)0 : rows, v);
    for (size_t i = 0; i < s->ck.n; i++)
      fprintf(progress, "%s\"%s\":%" PRId64, i ? "," : "", s->ck.partition[i], s->ck.seq[i]);
    fprintf(progress, "}}]}\n");
    fflush(progress);
  }
  sm_batch_reset(s->b);
  return ED_OK;
}

ed_code_t ag_run(const ag_conf_t *conf, const char *conn, volatile sig_atomic_t *stop,
                 FILE *progress, ed_err_t *err) {
  for (size_t i = 0; i < conf->nsinks; i++) {
    const ag_sink_t *k = &conf->sinks[i];
    if (k->kind != AG_SINK_DELTA || k->window || !k->available_now)
      return ed_err_set(err, ED_E_UNSUPPORTED,
                        "sink '%s': only delta sinks without windows and with trigger = "
                        "available-now run in this build",
                        k->name);
  }
  ed_code_t rc;
  eh_connstr_t cs;
  if ((rc = eh_connstr_parse(conn, &cs, err)))
    return rc;
  const char *hub = NULL;
  if ((rc = eh_connstr_hub(&cs, conf->source.hub, &hub, err))) {
    eh_connstr_fini(&cs);
    return rc;
  }
  sm_type_t *body = NULL;
  sm_meta_col_t *meta = NULL;
  size_t nmeta = 0;
  sm_dec_t *dec = NULL;
  sm_dec_opts_t dopts = {0};
  rc = sm_schema_parse_ddl(conf->schema.columns, &body, err);
  rc = rc ? rc : sm_meta_parse(conf->schema.metadata, &meta, &nmeta, err);
  rc = rc ? rc : sm_bad_mode_parse(conf->schema.bad_event_mode, &dopts.mode, err);
  rc = rc ? rc : sm_dec_new(body, meta, nmeta, &dopts, &dec, err);
  eh_client_t *cl = NULL;
  eh_client_opts_t co;
  eh_client_opts_init(&co);
  rc = rc ? rc : eh_client_new(&cs, hub, &co, &cl, err);
  eh_hub_props_t hp = {0};
  rc = rc ? rc : eh_client_hub_props(cl, 0, &hp, err);
  size_t ns = conf->nsinks, np = rc ? 0 : (size_t)hp.partition_count;
  sinkrun_t *sr = calloc(ns + 1, sizeof *sr);
  int64_t *start = calloc(np + 1, sizeof *start), *end = calloc(np + 1, sizeof *end);
  eh_receiver_t **rx = calloc(np + 1, sizeof *rx);
  queue_t q = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
  q.ev = calloc(QCAP, sizeof *q.ev);
  q.paused = calloc(np + 1, sizeof *q.paused);
  if (!rc && (!sr || !start || !end || !rx || !q.ev || !q.paused))
    rc = ed_err_set(err, ED_E_NOMEM, "out of memory starting %zu partitions", np);
  for (size_t i = 0; !rc && i < ns; i++) {
    const char *part[2] = {conf->sinks[i].partition_by, NULL};
    ag_dsink_opts_t o = {conf->sinks[i].path, conf->sinks[i].checkpoint_location,
                         conf->sinks[i].query_id, sm_dec_schema(dec),
                         conf->sinks[i].partition_by ? part : NULL};
    sr[i].conf = &conf->sinks[i];
    rc = ag_dsink_open(&o, &sr[i].ds, &sr[i].ck, err);
    if (!rc && !(sr[i].b = sm_batch_new(sm_dec_schema(dec))))
      rc = ed_err_set(err, ED_E_NOMEM, "out of memory");
  }
  /* Where each partition starts: after the least advanced sink; where it
   * ends: the last sequence number at start. */
  size_t open_parts = 0;
  for (size_t p = 0; !rc && p < np; p++) {
    const char *id = hp.partition_ids[p];
    int64_t from = INT64_MAX;
    for (size_t i = 0; i < ns; i++) {
      int64_t s;
      from = ag_ckpt_get(&sr[i].ck, id, &s) ? (s < from ? s : from) : -1;
      if (from < 0)
        break;
    }
    eh_partition_props_t pp = {0};
    rc = eh_client_partition_props(cl, id, 0, &pp, err);
    if (rc)
      break;
    end[p] = pp.last_seq;
    start[p] = from;
    if (from >= 0 && from < pp.begin_seq - 1) {
      if (!strcmp(conf->source.retention_gap_policy, "fail"))
        rc = ed_err_set(err, ED_E_NOT_FOUND,
                        "partition %s: resuming after sequence number %" PRId64
                        " but the hub keeps only %" PRId64 " onwards (retention gap; "
                        "retention_gap_policy = skip-to-earliest skips it)",
                        id, from, pp.begin_seq);
      else
        fprintf(stderr,
                "ehdelta run: partition %s: retention gap, events %" PRId64 "..%" PRId64
                " are lost; skipping to the earliest\n",
                id, from + 1, pp.begin_seq - 1);
    }
    eh_partition_props_fini(&pp);
    if (rc || pp.is_empty || end[p] <= from)
      continue;
    eh_receiver_opts_t ro;
    eh_receiver_opts_init(&ro);
    ro.consumer_group = conf->source.consumer_group;
    ro.partition = id;
    if (from >= 0) {
      ro.start.kind = EH_POS_SEQUENCE;
      ro.start.inclusive = false;
      ro.start.value = from;
    } else if ((rc = eh_position_parse(conf->source.starting_position, &ro.start, err))) {
      break;
    }
    /* An epoch receiver: one agent owns a partition; a second one started by
     * mistake takes it over instead of both writing. */
    ro.has_epoch = true;
    ro.epoch = now_us() / 1000;
    ro.prefetch = (uint32_t)conf->source.prefetch;
    ro.on_events = on_events;
    ro.ctx = &q;
    rc = eh_receiver_open(cl, &ro, &rx[p], err);
    open_parts += !rc;
  }
  char runid[40];
  snprintf(runid, sizeof runid, "%016" PRIx64, (uint64_t)now_us());
  int64_t t0 = now_us();
  qev_t *local = rc ? NULL : calloc(QCAP, sizeof *local);
  size_t total = 0;
  while (!rc && open_parts && !(stop && *stop)) {
    pthread_mutex_lock(&q.mu);
    while (q.n == 0 && !(stop && *stop)) {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_nsec += 200000000;
      if (ts.tv_nsec >= 1000000000)
        ts.tv_sec++, ts.tv_nsec -= 1000000000;
      pthread_cond_timedwait(&q.cv, &q.mu, &ts);
    }
    size_t n = q.n;
    memcpy(local, q.ev, n * sizeof *local);
    q.n = 0;
    eh_receiver_t *resume[64];
    size_t nr = q.npaused < 64 ? q.npaused : 64;
    memcpy(resume, q.paused, nr * sizeof *resume);
    q.npaused = 0;
    pthread_mutex_unlock(&q.mu);
    for (size_t j = 0; !rc && j < n; j++) {
      qev_t *e = &local[j];
      size_t p;
      for (p = 0; p < np && strcmp(hp.partition_ids[p], e->part); p++)
        ;
      if (p < np && e->seq <= end[p]) {
        sm_event_meta_t m = {.sequence_number = e->seq,
                             .offset = e->off,
                             .enqueued_us = e->enq,
                             .partition = {e->part, strlen(e->part)}};
        for (size_t i = 0; !rc && i < ns; i++) {
          int64_t done;
          if (ag_ckpt_get(&sr[i].ck, e->part, &done) && e->seq <= done)
            continue;
          sm_dec_status_t st;
          rc = sm_dec_decode(dec, sr[i].b, e->body, e->len, &m, &st, NULL, err);
          rc = rc ? rc : ag_ckpt_set(&sr[i].ck, e->part, e->seq, err);
        }
        total++;
        if (e->seq == end[p])
          open_parts--;
      }
      free(e->body);
    }
    for (size_t i = 0; i < nr; i++)
      eh_receiver_resume(resume[i]);
    for (size_t i = 0; !rc && i < ns; i++)
      if ((int64_t)sr[i].b->nrows >= sr[i].conf->max_batch_events)
        rc = flush(&sr[i], runid, progress, t0, err);
  }
  for (size_t i = 0; !rc && i < ns; i++)
    if (sr[i].b->nrows || total)
      rc = flush(&sr[i], runid, progress, t0, err);
  if (dec) {
    const sm_dec_counts_t *dc = sm_dec_counts(dec);
    fprintf(stderr,
            "ehdelta run: events=%zu decoded=%" PRIu64 " rows=%" PRIu64 " dead=%" PRIu64 "\n",
            total, dc->events, dc->rows, dc->dead);
  }
  for (size_t p = 0; p < np; p++)
    eh_receiver_close(rx[p]);
  for (size_t j = 0; j < q.n; j++)
    free(q.ev[j].body);
  eh_client_free(cl);
  for (size_t i = 0; sr && i < ns; i++) {
    ag_dsink_free(sr[i].ds);
    ag_ckpt_fini(&sr[i].ck);
    sm_batch_free(sr[i].b);
  }
  free(local), free(sr), free(start), free(end), free(rx), free(q.ev), free(q.paused);
  eh_hub_props_fini(&hp);
  sm_dec_free(dec);
  sm_meta_cols_free(meta, nmeta);
  sm_type_free(body);
  eh_connstr_fini(&cs);
  return rc;
}
