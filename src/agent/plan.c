/* plan: the run's network-free plan, from the configuration alone (the body
 * schema, the derived columns and filter, every sink with its window and
 * partition columns, --until), which is all that `run --check` builds; and,
 * once the source is open, the sinks' positions and their Delta tables.
 * Everything here runs on the caller's thread at start-up, before the other
 * threads exist. */
#include "agent/run_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/time.h"

/* Splits a comma-separated list at commas outside parentheses and quotes. */
static ed_code_t split_list(const char *text, char ***out, size_t *n, ed_err_t *err) {
  *out = NULL;
  *n = 0;
  char *copy = strdup(text ? text : "");
  if (!copy)
    return ag_run_nomem(err, "list");
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
          rc = ag_run_nomem(err, "list");
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

void ag_run_free_list(char **v, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
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
    return ag_run_nomem(err, "batch");
  size_t nd = 0;
  while (sc->derive && sc->derive[nd])
    nd++;
  r->schemas = calloc(nd + 1, sizeof *r->schemas);
  r->derive = calloc(nd + 1, sizeof *r->derive);
  if (!r->schemas || !r->derive || !(r->schemas[0] = sm_type_clone(sm_dec_schema(r->dec))))
    return ag_run_nomem(err, "schema");
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
      return ag_run_nomem(err, "schema");
    }
    if ((rc = sm_type_add_field(r->schemas[k + 1], nm, t, true, err)))
      return ed_err_prefix(err, "[schema] derive %s", nm);
  }
  const sm_type_t *full = r->schemas[nd];
  r->eb.schema = full;
  if (!(r->eb.cols = calloc(full->nfields + 1, sizeof *r->eb.cols)))
    return ag_run_nomem(err, "batch");
  size_t ndec = sm_dec_schema(r->dec)->nfields;
  for (size_t k = 0; k < nd; k++)
    sm_col_init(&r->eb.cols[ndec + k], full->fields[ndec + k].type);
  r->tb.schema = full;
  if (!(r->tb.cols = calloc(full->nfields + 1, sizeof *r->tb.cols)))
    return ag_run_nomem(err, "batch");
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
    rc = ag_run_nomem(err, "aggregates");
  for (size_t i = 0; !rc && i < naggs; i++) {
    if ((rc = agg_spec_parse(aggs[i], &s->aggs[i], err)))
      ed_err_prefix(err, "[sink %s] aggregate '%s'", k->name, aggs[i]);
    else
      s->naggs++;
  }
  ag_run_free_list(aggs, naggs);
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
    rc = ag_run_nomem(err, "partition columns");
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
                         .takeover_force = r->conf->source.from_spark_force,
                         .shared = r->balanced};
    rc = ag_dsink_open(&o, &s->ds, &ck, err);
    if (rc)
      ed_err_prefix(err, "sink '%s'", s->name);
  }
  free(pbn);
  ag_run_free_list(pb, npb);
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
    return ag_run_nomem(err, "partitions");
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
  ag_run_free_list(pb, npb);
  return rc;
}

/* The sinks' part of the plan: kinds, windows and aggregates, each sink's
 * output schema. Touches neither the hub nor storage (run --check stops
 * here); ag_run_open_sinks does the rest once the partitions are known.
 * @locality caller's thread, at start-up before the other threads  @locks none */
static ed_code_t build_sinks(run_t *r, ed_err_t *err) {
  const ag_conf_t *c = r->conf;
  r->nsinks = c->nsinks + (c->dead_letter.path ? 1 : 0);
  r->sinks = calloc(r->nsinks + 1, sizeof *r->sinks);
  if (!r->sinks)
    return ag_run_nomem(err, "sinks");
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
        return ag_run_nomem(err, "batch");
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
        return ag_run_nomem(err, "batch");
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
ed_code_t ag_run_parse_until(run_t *r, ed_err_t *err) {
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
 * resumed from their last landed batch). After ag_run_open_source. */
/* The window's event time is kept per partition of the hub, which is known
 * only once the source is open; before its state is loaded from a checkpoint.
 * @locality caller's thread, at start-up before the other threads  @locks none */
static ed_code_t name_win_partitions(run_t *r, sink_t *s, ed_err_t *err) {
  const char **ids = calloc(r->nparts + 1, sizeof *ids);
  if (!ids)
    return ag_run_nomem(err, "partitions");
  for (size_t p = 0; p < r->nparts; p++)
    ids[p] = r->parts[p].id;
  ed_code_t rc = win_set_partitions(s->win, ids, r->nparts, err);
  free(ids);
  return rc ? ed_err_prefix(err, "[sink %s]", s->name) : ED_OK;
}

/* @locality caller's thread, at start-up before the other threads  @locks none */
ed_code_t ag_run_open_sinks(run_t *r, ed_err_t *err) {
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
    s->pos_off = malloc((r->nparts + 1) * sizeof *s->pos_off);
    s->committed_off = malloc((r->nparts + 1) * sizeof *s->committed_off);
    if (!s->resume || !s->pos || !s->start || !s->committed || !s->pos_off || !s->committed_off)
      return ag_run_nomem(err, "sinks");
    for (size_t p = 0; p < r->nparts; p++) {
      s->resume[p] = s->pos[p] = s->start[p] = -1;
      s->pos_off[p] = s->committed_off[p] = -1;
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

/* A new generation's sinks: the plan's built again, nothing of the last
 * generation's batches, windows or positions kept (the tables have them).
 * @locality caller's thread, no other running  @locks none */
ed_code_t ag_run_rebuild_sinks(run_t *r, ed_err_t *err) {
  ag_run_free_sinks(r);
  return build_sinks(r, err);
}

/* The whole plan, from the configuration alone: what `run` builds before it
 * connects, and all that `run --check` builds.
 * @locality caller's thread, at start-up before the other threads  @locks none */
ed_code_t ag_run_build_plan(run_t *r, ed_err_t *err) {
  ed_code_t rc = build_schema(r, err);
  return rc ? rc : build_sinks(r, err);
}
