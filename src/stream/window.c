/* window: see window.h. Each state row is a (window start, group key) pair
 * in an agg_keys_t table; its aggregates live column-wise in one agg_t per
 * aggregate, indexed by the same group id. An update first maps every
 * accepted (row, window) to a group id, then runs each aggregate's loop over
 * the whole batch.
 *
 * Spark semantics followed here, with their sources:
 * - Window assignment (TimeWindowing in Analyzer / ResolveTimeWindows, Spark
 *   3.x): lastStart = ts - ((ts - startTime) mod slide) (the remainder made
 *   non-negative), windows lastStart - i*slide for i < ceil(size/slide), each
 *   [start, start + size), kept when start <= ts < end. With size a multiple
 *   of slide every one of them contains ts. Null event times yield no window.
 * - Lateness and eviction (WatermarkSupport.watermarkExpression): a state row
 *   is too old iff window.end <= watermark (LessThanOrEqual on field 1 of the
 *   window struct); rows are dropped against the same predicate
 *   (applyRemovingRowsOlderThanWatermark), so a sliding-window row still
 *   counts in those of its windows that are open.
 * - The watermark (WatermarkTracker.updateWatermark): at the end of a batch,
 *   max event time (in milliseconds) - delay (per partition here, below),
 *   only ever moving forward; the
 *   batch that follows uses it. Here the batch's own emit uses it, which is
 *   what Spark's no-data batch (spark.sql.streaming.noDataMicroBatches.enabled,
 *   on by default) produces right after.
 * - Output modes (StateStoreSaveExec): append emits and removes rows whose
 *   end <= watermark; update emits rows updated in the batch, then removes the
 *   expired ones; complete emits everything and never removes (Spark's guide:
 *   "Complete mode requires all aggregate data to be preserved, and hence
 *   cannot use watermarking to drop intermediate state"); it drops no row.
 * Event time per partition (Flink's per-split watermarks, and where this
 * departs from Spark, whose watermark is the global max event time - delay):
 * - Each partition keeps its largest event time; its watermark is that,
 *   floored to ms, - delay. The watermark of the window is the minimum over
 *   partitions not idle of theirs (a partition without an event time yet holds
 *   it), advanced at the end of a batch, never moved back. Spark's global
 *   maximum lets a partition read ahead (a backlog, a restart, a big batch)
 *   close windows the others still feed: the result then depends on delivery.
 * - A row is late when its window's end <= the larger of (a) its partition's
 *   watermark just before the row, row by row, and (b) the watermark in
 *   effect. (a) depends only on the partition's own order, so the rows kept
 *   are the same for any batch size, interleaving or restart; Spark would keep
 *   a row that is late against its own partition if it arrived in the same
 *   micro-batch. (b) only exceeds (a) for a partition that was idle and came
 *   back behind the others: its rows for windows already emitted are dropped.
 *   Dropped rows are counted per partition.
 * - A window emitted in append mode is complete: any later row of it is late
 *   by (a), since every partition's watermark is >= the minimum that closed it.
 * Where this departs from Spark besides: before the first watermark Spark uses
 *   0 (the epoch); here there is none until a batch with event times has ended.
 *   numRowsDroppedByWatermark counts input rows that fell in no open window
 *   (Spark counts the partially aggregated rows that reach its state store). */
#include "stream/window.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/time.h"
#include "stream/evtime.h"

#define WIN_MAGIC "EDWS"
/* 2 added the per-partition event times and drop counts; 1 is still read
 * (its partitions start without an event time, the watermark as saved). */
#define WIN_VERSION 2u

struct win {
  int64_t size, slide, start, delay, max_future;
  bool has_wm, wstruct;
  win_mode_t mode;
  int nwin; /* windows per row: size / slide */
  const sm_type_t *in;
  int tcol;
  size_t nkeys;
  int *kcol;
  size_t naggs;
  int *acol; /* -1 for count(*) */
  agg_t **aggs;
  agg_keys_t *keys;
  sm_type_t *out_schema;
  uint64_t fingerprint;
  /* per-group flags */
  uint8_t *touched;
  size_t tcap;
  size_t ntouched;
  /* scratch for one update */
  uint32_t *rows, *gids;
  size_t scap;
  /* watermark and batch statistics */
  int64_t watermark;
  int64_t now;
  bool now_set, batch_open;
  int64_t bmin, bmax;
  double bsum;
  uint64_t bcount;
  win_stats_t st;
  et_parts_t parts; /* win_set_partitions; one unnamed partition by default */
};

int64_t win_last_start(int64_t ts, int64_t slide, int64_t start) {
  int64_t rem = (ts - start) % slide;
  if (rem < 0)
    rem += slide;
  return ts - rem;
}

const char *win_mode_name(win_mode_t m) {
  return m == WIN_APPEND     ? "append"
         : m == WIN_UPDATE   ? "update"
         : m == WIN_COMPLETE ? "complete"
                             : "?";
}

static uint64_t fp_add(uint64_t h, const void *p, size_t n) { return agg_hash64(p, n, h); }

static ed_code_t add_field(sm_type_t *st, const char *name, sm_type_t *t, ed_err_t *err) {
  if (!t)
    return ed_err_set(err, ED_E_NOMEM, "window: out of memory");
  ed_code_t rc = sm_type_add_field(st, name, t, true, err);
  if (rc == ED_E_INVALID)
    return ed_err_set(err, ED_E_CONFIG,
                      "window: output column '%s' appears twice (give the aggregate an alias)",
                      name);
  return rc;
}

ed_code_t win_new(const win_spec_t *sp, const sm_type_t *in, win_t **out, ed_err_t *err) {
  *out = NULL;
  if (!in || in->kind != SM_STRUCT)
    return ed_err_set(err, ED_E_CONFIG, "window: the input schema must be a STRUCT");
  int64_t slide = sp->slide_us ? sp->slide_us : sp->size_us;
  if (sp->size_us <= 0)
    return ed_err_set(err, ED_E_CONFIG, "window: size %lld us: expected a duration > 0",
                      (long long)sp->size_us);
  if (slide <= 0)
    return ed_err_set(err, ED_E_CONFIG, "window: slide %lld us: expected a duration > 0",
                      (long long)sp->slide_us);
  if (slide > sp->size_us || sp->size_us % slide != 0) {
    char a[64], b[64];
    ed_time_format_duration(sp->size_us, a, sizeof a);
    ed_time_format_duration(slide, b, sizeof b);
    return ed_err_set(
        err, ED_E_CONFIG,
        "window: size %s is not a multiple of the slide %s (expected size = n x slide)", a, b);
  }
  if (sp->size_us / slide > 1024)
    return ed_err_set(err, ED_E_CONFIG,
                      "window: %lld windows per row (size / slide): expected at most 1024",
                      (long long)(sp->size_us / slide));
  /* Spark (TimeWindow): "The absolute value of start time ... must be less
   * than the slide duration". */
  if (sp->start_us <= -slide || sp->start_us >= slide)
    return ed_err_set(err, ED_E_CONFIG,
                      "window: start offset %lld us: expected |start| < slide (%lld us)",
                      (long long)sp->start_us, (long long)slide);
  if (sp->watermark && sp->delay_us < 0)
    return ed_err_set(err, ED_E_CONFIG, "window: watermark delay %lld us: expected >= 0",
                      (long long)sp->delay_us);
  if (sp->max_future_us < 0)
    return ed_err_set(err, ED_E_CONFIG, "window: max future skew: expected >= 0 (0: no bound)");
  if (sp->mode == WIN_APPEND && !sp->watermark)
    return ed_err_set(err, ED_E_CONFIG,
                      "window: append output mode needs a watermark (Spark refuses it too: "
                      "append emits a window only when the watermark passes its end)");
  if ((unsigned)sp->mode > WIN_COMPLETE)
    return ed_err_set(err, ED_E_CONFIG, "window: unknown output mode %d", (int)sp->mode);
  if (sp->naggs == 0)
    return ed_err_set(err, ED_E_CONFIG, "window: at least one aggregate is needed");

  win_t *w = calloc(1, sizeof *w);
  if (!w)
    return ed_err_set(err, ED_E_NOMEM, "window: out of memory");
  w->size = sp->size_us;
  w->slide = slide;
  w->start = sp->start_us;
  w->delay = sp->delay_us;
  w->has_wm = sp->watermark;
  w->max_future = sp->max_future_us;
  w->mode = sp->mode;
  w->wstruct = sp->window_struct;
  w->nwin = (int)(sp->size_us / slide);
  w->in = in;
  w->watermark = INT64_MIN;
  w->nkeys = sp->nkeys;
  w->naggs = sp->naggs;
  w->kcol = calloc(sp->nkeys ? sp->nkeys : 1, sizeof *w->kcol);
  w->acol = calloc(sp->naggs, sizeof *w->acol);
  w->aggs = calloc(sp->naggs, sizeof *w->aggs);
  const sm_type_t **ktypes = calloc(sp->nkeys ? sp->nkeys : 1, sizeof *ktypes);
  const char **knames = calloc(sp->nkeys ? sp->nkeys : 1, sizeof *knames);
  w->out_schema = sm_type_new(SM_STRUCT);
  ed_code_t rc = ED_OK;
  if (!w->kcol || !w->acol || !w->aggs || !ktypes || !knames || !w->out_schema) {
    rc = ed_err_set(err, ED_E_NOMEM, "window: out of memory");
    goto fail;
  }
  rc = agg_resolve_col(in, "window", "event-time", sp->time_col, sp->time_index, &w->tcol, err);
  if (rc)
    goto fail;
  if (in->fields[w->tcol].type->kind != SM_TIMESTAMP) {
    rc = ed_err_set(err, ED_E_CONFIG, "window: event-time column '%s': expected TIMESTAMP, got %s",
                    in->fields[w->tcol].name, sm_kind_name(in->fields[w->tcol].type->kind));
    goto fail;
  }
  uint64_t fp = fp_add(0, &w->size, 8);
  fp = fp_add(fp, &w->slide, 8);
  fp = fp_add(fp, &w->start, 8);
  int mode = (int)w->mode;
  fp = fp_add(fp, &mode, sizeof mode);
  if (w->wstruct) {
    sm_type_t *ws = sm_type_new(SM_STRUCT);
    if (!ws || (rc = add_field(ws, "start", sm_type_new(SM_TIMESTAMP), err)) ||
        (rc = add_field(ws, "end", sm_type_new(SM_TIMESTAMP), err))) {
      sm_type_free(ws);
      rc = rc ? rc : ed_err_set(err, ED_E_NOMEM, "window: out of memory");
      goto fail;
    }
    if ((rc = add_field(w->out_schema, "window", ws, err)))
      goto fail;
  } else if ((rc = add_field(w->out_schema, "window_start", sm_type_new(SM_TIMESTAMP), err)) ||
             (rc = add_field(w->out_schema, "window_end", sm_type_new(SM_TIMESTAMP), err))) {
    goto fail;
  }
  for (size_t i = 0; i < sp->nkeys; i++) {
    rc = agg_resolve_col(in, "window", "group key", sp->keys ? sp->keys[i] : NULL,
                         sp->key_index ? sp->key_index[i] : -1, &w->kcol[i], err);
    if (rc)
      goto fail;
    const sm_field_t *f = &in->fields[w->kcol[i]];
    ktypes[i] = f->type;
    knames[i] = f->name;
    fp = fp_add(fp, f->name, strlen(f->name) + 1);
    fp = fp_add(fp, &f->type->kind, sizeof f->type->kind);
  }
  if ((rc = agg_keys_new(ktypes, knames, sp->nkeys, &w->keys, err)))
    goto fail;
  for (size_t i = 0; i < sp->nkeys; i++)
    if ((rc = add_field(w->out_schema, knames[i], sm_type_clone(ktypes[i]), err)))
      goto fail;
  for (size_t i = 0; i < sp->naggs; i++) {
    const agg_spec_t *as = &sp->aggs[i];
    w->acol[i] = -1;
    const sm_type_t *t = NULL;
    if (as->kind != AGG_COUNT_STAR) {
      rc = agg_resolve_col(in, "window", "aggregate", as->column, as->col_index, &w->acol[i], err);
      if (rc)
        goto fail;
      t = in->fields[w->acol[i]].type;
    }
    if ((rc = agg_new(as, t, &w->aggs[i], err)))
      goto fail;
    const char *nm = agg_name(w->aggs[i]);
    fp = fp_add(fp, nm, strlen(nm) + 1);
    fp = fp_add(fp, &as->kind, sizeof as->kind);
    if (t)
      fp = fp_add(fp, &t->kind, sizeof t->kind);
    fp = fp_add(fp, &as->rsd, sizeof as->rsd);
    if ((rc = add_field(w->out_schema, nm, sm_type_clone(agg_result_type(w->aggs[i])), err)))
      goto fail;
  }
  w->fingerprint = fp;
  static const char *const one[] = {""};
  if ((rc = win_set_partitions(w, one, 1, err)))
    goto fail;
  free(ktypes);
  free(knames);
  *out = w;
  return ED_OK;
fail:
  free(ktypes);
  free(knames);
  win_free(w);
  return rc;
}

ed_code_t win_set_partitions(win_t *w, const char *const *ids, size_t n, ed_err_t *err) {
  return et_parts_set(&w->parts, ids, n, "window", err);
}

size_t win_partitions(const win_t *w) { return w->parts.n; }

void win_set_idle(win_t *w, size_t part, bool idle) {
  if (part < w->parts.n)
    w->parts.idle[part] = idle;
}

int64_t win_part_time(const win_t *w, size_t part) {
  return part < w->parts.n ? w->parts.max[part] : INT64_MIN;
}

void win_part_dropped(const win_t *w, size_t part, uint64_t *batch, uint64_t *total) {
  *batch = part < w->parts.n ? w->parts.drop_b[part] : 0;
  *total = part < w->parts.n ? w->parts.drop_t[part] : 0;
}

void win_free(win_t *w) {
  if (!w)
    return;
  for (size_t i = 0; w->aggs && i < w->naggs; i++)
    agg_free(w->aggs[i]);
  free(w->aggs);
  agg_keys_free(w->keys);
  sm_type_free(w->out_schema);
  free(w->kcol);
  free(w->acol);
  free(w->touched);
  free(w->rows);
  free(w->gids);
  et_parts_fini(&w->parts);
  free(w);
}

const sm_type_t *win_output_schema(const win_t *w) { return w->out_schema; }

void win_set_now(win_t *w, int64_t now_us) {
  w->now = now_us;
  w->now_set = true;
}

int64_t win_watermark(const win_t *w) { return w->watermark; }

static void batch_begin(win_t *w) {
  if (w->batch_open)
    return;
  w->batch_open = true;
  w->bmin = INT64_MAX;
  w->bmax = INT64_MIN;
  w->bsum = 0;
  w->bcount = 0;
  w->st.input_rows = w->st.num_rows_dropped_by_watermark = 0;
  w->st.null_event_time = w->st.future_event_time = 0;
  w->st.num_rows_updated = w->st.num_rows_removed = 0;
  et_parts_begin(&w->parts);
}

static ed_code_t grow_u32(uint32_t **p, size_t n) {
  uint32_t *q = realloc(*p, n * sizeof *q);
  if (!q)
    return ED_E_NOMEM;
  *p = q;
  return ED_OK;
}

static ed_code_t ensure_groups(win_t *w, size_t n) {
  if (n > w->tcap) {
    size_t nc = w->tcap ? w->tcap : 64;
    while (nc < n)
      nc *= 2;
    uint8_t *t = realloc(w->touched, nc);
    if (!t)
      return ED_E_NOMEM;
    memset(t + w->tcap, 0, nc - w->tcap);
    w->touched = t;
    w->tcap = nc;
  }
  for (size_t i = 0; i < w->naggs; i++)
    if (agg_reserve(w->aggs[i], n))
      return ED_E_NOMEM;
  return ED_OK;
}

/* sel picks the rows to look at (NULL: all of b); of those, mask (NULL: all)
 * picks the ones aggregated. Every row looked at advances the partition's
 * event time, so rows a filter removes still move time forward (as a source's
 * watermark does in Flink), and rows seen again after a restart change
 * nothing (a maximum is idempotent). */
static ed_code_t update(win_t *w, const sm_batch_t *b, const uint32_t *sel, size_t nsel,
                        const uint8_t *mask, size_t part, ed_err_t *err) {
  batch_begin(w);
  if (part >= w->parts.n)
    return ed_err_set(err, ED_E_INVALID, "window: partition index %zu: expected < %zu", part,
                      w->parts.n);
  ed_code_t rc = agg_check_batch(b, w->in, sel, nsel, "window", err);
  if (rc)
    return rc;
  size_t n = sel ? nsel : b->nrows;
  size_t need = n * (size_t)w->nwin;
  if (need > w->scap) {
    if (grow_u32(&w->rows, need) || grow_u32(&w->gids, need))
      return ed_err_set(err, ED_E_NOMEM, "window: out of memory for %zu rows", n);
    w->scap = need;
  }
  const sm_col_t *tc = &b->cols[w->tcol];
  const sm_col_t *kc[64], **kcols = kc;
  if (w->nkeys > 64) {
    kcols = malloc(w->nkeys * sizeof *kcols);
    if (!kcols)
      return ed_err_set(err, ED_E_NOMEM, "window: out of memory");
  }
  for (size_t i = 0; i < w->nkeys; i++)
    kcols[i] = &b->cols[w->kcol[i]];
  int64_t limit = INT64_MAX;
  if (w->max_future) {
    int64_t now = w->now_set ? w->now : ed_time_now_us();
    limit = now > INT64_MAX - w->max_future ? INT64_MAX : now + w->max_future;
  }
  /* Late-row and eviction predicate: end <= watermark; none in complete mode.
   * A row is late against the larger of the watermark in effect and its own
   * partition's watermark just before it (window.h): the second depends only
   * on the partition's own order, not on how partitions interleave. */
  bool drop = w->has_wm && w->mode != WIN_COMPLETE;
  int64_t wm = w->watermark, pm = w->parts.max[part];
  size_t m = 0;
  int64_t cache_start = INT64_MAX;
  int64_t bmin = w->bmin, bmax = w->bmax;
  double bsum = w->bsum;
  uint64_t bcount = w->bcount, nnull = 0, nfuture = 0, ndropped = 0, ntaken = 0;
  for (size_t i = 0; i < n; i++) {
    size_t r = sel ? sel[i] : i;
    bool take = !mask || mask[r];
    ntaken += take;
    if (!tc->valid[r]) {
      nnull += take;
      continue;
    }
    int64_t ts = tc->v.i64[r];
    /* windows near the int64 edges would overflow: refuse them as future/past */
    if (ts > limit || ts < INT64_MIN / 2 || ts > INT64_MAX / 2) {
      nfuture += take;
      continue;
    }
    int64_t own = et_wm_of(pm, w->delay);
    pm = ts > pm ? ts : pm;
    if (!take)
      continue;
    int64_t thr = own > wm ? own : wm;
    /* statistics in locals: stores through w would alias every column read */
    bmin = ts < bmin ? ts : bmin;
    bmax = ts > bmax ? ts : bmax;
    bsum += (double)ts;
    bcount++;
    /* rows arrive nearly in order: reuse the last alignment when it fits */
    int64_t last;
    if (ts >= cache_start && ts - cache_start < w->slide) {
      last = cache_start;
    } else {
      last = win_last_start(ts, w->slide, w->start);
      cache_start = last;
    }
    bool encoded = false, any = false;
    for (int k = 0; k < w->nwin; k++) {
      int64_t ws = last - (int64_t)k * w->slide;
      if (drop && ws + w->size <= thr)
        break; /* older windows end earlier still */
      if (!encoded) {
        if ((rc = agg_keys_row(w->keys, kcols, r)))
          goto out;
        encoded = true;
      }
      uint32_t g;
      bool added;
      /* room first: a state row must never exist without its flags */
      size_t nk = agg_keys_count(w->keys);
      if (nk >= w->tcap && (rc = ensure_groups(w, nk + 1)))
        goto out;
      if ((rc = agg_keys_upsert(w->keys, ws, &g, &added)))
        goto out;
      if (!w->touched[g]) {
        w->touched[g] = 1;
        w->ntouched++;
      }
      w->rows[m] = (uint32_t)r;
      w->gids[m] = g;
      m++;
      any = true;
    }
    if (!any)
      ndropped++;
  }
  w->bmin = bmin;
  w->bmax = bmax;
  w->bsum = bsum;
  w->bcount = bcount;
  w->st.null_event_time += nnull;
  w->st.future_event_time += nfuture;
  w->st.num_rows_dropped_by_watermark += ndropped;
  w->parts.drop_b[part] += ndropped;
  w->parts.max[part] = pm;
  if ((rc = ensure_groups(w, agg_keys_count(w->keys))))
    goto out;
  for (size_t a = 0; a < w->naggs; a++) {
    const sm_col_t *vc = w->acol[a] >= 0 ? &b->cols[w->acol[a]] : NULL;
    if ((rc = agg_update(w->aggs[a], vc, w->rows, w->gids, m, err)))
      break;
  }
  w->st.input_rows += ntaken;
  w->st.total_input_rows += ntaken;
out:
  if (kcols != kc)
    free(kcols);
  if (rc && err && err->code == rc)
    return rc; /* the callee's message */
  if (rc)
    return ed_err_set(err, rc, "window: %s growing the state past %zu rows",
                      rc == ED_E_NOMEM ? "out of memory" : ed_code_desc(rc),
                      agg_keys_count(w->keys));
  return ED_OK;
}

ed_code_t win_update(win_t *w, const sm_batch_t *b, const uint32_t *sel, size_t nsel,
                     ed_err_t *err) {
  return update(w, b, sel, nsel, NULL, 0, err);
}

ed_code_t win_update_mask(win_t *w, const sm_batch_t *b, const uint8_t *mask, ed_err_t *err) {
  return update(w, b, NULL, 0, mask, 0, err);
}

ed_code_t win_update_part(win_t *w, const sm_batch_t *b, const uint8_t *mask, size_t part,
                          ed_err_t *err) {
  return update(w, b, NULL, 0, mask, part, err);
}

void win_end_batch(win_t *w) {
  batch_begin(w);
  if (w->has_wm) {
    /* per partition (evtime.h); one without an event time holds it */
    int64_t cand = et_parts_watermark(&w->parts, w->delay);
    if (cand != INT64_MIN && (w->watermark == INT64_MIN || cand > w->watermark))
      w->watermark = cand;
  }
  et_parts_end(&w->parts);
  w->st.event_time_min = w->bcount ? w->bmin : INT64_MIN;
  w->st.event_time_max = w->bcount ? w->bmax : INT64_MIN;
  w->st.event_time_avg = w->bcount ? (int64_t)(w->bsum / (double)w->bcount) : INT64_MIN;
  w->st.watermark_us = w->watermark;
  w->st.total_dropped_by_watermark += w->st.num_rows_dropped_by_watermark;
  w->batch_open = false;
}

typedef struct {
  int64_t start;
  uint32_t gid;
} ord_t;

static int ord_cmp(const void *a, const void *b) {
  const ord_t *x = a, *y = b;
  if (x->start != y->start)
    return x->start < y->start ? -1 : 1;
  return x->gid < y->gid ? -1 : (x->gid > y->gid);
}

static bool expired(const win_t *w, uint32_t g) {
  return w->has_wm && w->watermark != INT64_MIN &&
         agg_keys_prefix(w->keys, g) + w->size <= w->watermark;
}

/* Removes the expired state rows; their states are freed. */
static ed_code_t evict(win_t *w, ed_err_t *err) {
  size_t n = agg_keys_count(w->keys);
  uint8_t *keep = malloc(n ? n : 1);
  uint32_t *remap = malloc((n ? n : 1) * sizeof *remap);
  if (!keep || !remap) {
    free(keep);
    free(remap);
    return ed_err_set(err, ED_E_NOMEM, "window: out of memory evicting");
  }
  size_t removed = 0;
  for (size_t g = 0; g < n; g++) {
    keep[g] = !expired(w, (uint32_t)g);
    if (!keep[g]) {
      removed++;
      for (size_t a = 0; a < w->naggs; a++)
        agg_clear(w->aggs[a], (uint32_t)g);
    }
  }
  ed_code_t rc = ED_OK;
  if (removed) {
    rc = agg_keys_compact(w->keys, keep, remap);
    for (size_t g = 0; g < n; g++)
      if (remap[g] != UINT32_MAX)
        for (size_t a = 0; a < w->naggs; a++)
          agg_move(w->aggs[a], remap[g], (uint32_t)g);
  }
  w->st.num_rows_removed = removed;
  free(keep);
  free(remap);
  if (rc)
    return ed_err_set(err, rc, "window: out of memory rebuilding the state index");
  return ED_OK;
}

ed_code_t win_emit(win_t *w, sm_batch_t *out, ed_err_t *err) {
  if (out->schema != w->out_schema)
    return ed_err_set(err, ED_E_INVALID, "window: emit into a batch not made from its schema");
  sm_batch_reset(out);
  size_t n = agg_keys_count(w->keys);
  ord_t *ord = malloc((n ? n : 1) * sizeof *ord);
  uint32_t *gids = malloc((n ? n : 1) * sizeof *gids);
  if (!ord || !gids) {
    free(ord);
    free(gids);
    return ed_err_set(err, ED_E_NOMEM, "window: out of memory emitting %zu rows", n);
  }
  size_t m = 0;
  for (size_t g = 0; g < n; g++) {
    bool take = w->mode == WIN_COMPLETE ||
                (w->mode == WIN_UPDATE && g < w->tcap && w->touched[g]) ||
                (w->mode == WIN_APPEND && expired(w, (uint32_t)g));
    if (take)
      ord[m++] = (ord_t){agg_keys_prefix(w->keys, (uint32_t)g), (uint32_t)g};
  }
  qsort(ord, m, sizeof *ord, ord_cmp);
  for (size_t i = 0; i < m; i++)
    gids[i] = ord[i].gid;
  ed_code_t rc = ED_OK;
  size_t c = 0;
  if (w->wstruct) {
    sm_col_t *sc = &out->cols[c++];
    for (size_t i = 0; i < m && !rc; i++) {
      int64_t s = ord[i].start;
      rc = sm_col_append_struct(sc);
      if (!rc)
        rc = sm_col_append_i64(&sc->children[0], s);
      if (!rc)
        rc = sm_col_append_i64(&sc->children[1], s + w->size);
    }
  } else {
    sm_col_t *s0 = &out->cols[c++], *s1 = &out->cols[c++];
    for (size_t i = 0; i < m && !rc; i++) {
      rc = sm_col_append_i64(s0, ord[i].start);
      if (!rc)
        rc = sm_col_append_i64(s1, ord[i].start + w->size);
    }
  }
  if (rc) {
    rc = ed_err_set(err, rc, "window: out of memory emitting %zu rows", m);
    goto done;
  }
  sm_col_t *kc[64], **kcols = kc;
  if (w->nkeys > 64 && !(kcols = malloc(w->nkeys * sizeof *kcols))) {
    rc = ed_err_set(err, ED_E_NOMEM, "window: out of memory");
    goto done;
  }
  for (size_t i = 0; i < w->nkeys; i++)
    kcols[i] = &out->cols[c + i];
  rc = agg_keys_emit(w->keys, gids, m, kcols, err);
  if (kcols != kc)
    free(kcols);
  c += w->nkeys;
  for (size_t a = 0; a < w->naggs && !rc; a++)
    rc = agg_emit(w->aggs[a], gids, m, &out->cols[c + a], err);
  if (rc)
    goto done;
  out->nrows = m;
  w->st.total_emitted += m;
  w->st.num_rows_updated = w->ntouched;
  if (w->touched)
    memset(w->touched, 0, w->tcap);
  w->ntouched = 0;
  if (w->mode != WIN_COMPLETE)
    rc = evict(w, err);
done:
  free(ord);
  free(gids);
  return rc;
}

void win_get_stats(const win_t *w, win_stats_t *out) {
  *out = w->st;
  out->num_rows_total = agg_keys_count(w->keys);
  size_t mem = sizeof *w + agg_keys_mem_bytes(w->keys) + w->tcap + w->scap * 8;
  for (size_t a = 0; a < w->naggs; a++)
    mem += agg_mem_bytes(w->aggs[a]);
  out->memory_used_bytes = mem;
  out->watermark_us = w->watermark;
}

/* ---------------------------------------------------------------- state */

/* Layout (little-endian): "EDWS", u32 version, u64 query fingerprint,
 * i64 watermark, u64 total input rows, u64 total dropped, u64 total emitted,
 * u64 state rows, u64 partitions (version 2), then per partition (version 2):
 * u64 id length, id bytes, i64 largest event time, u64 rows dropped as late;
 * then per row: i64 window start, u64 key length, key bytes, each aggregate's
 * state (agg_save); last, u64 hash of everything before. */
ed_code_t win_state_save(const win_t *w, ed_buf_t *out, ed_err_t *err) {
  size_t base = out->len;
  size_t n = agg_keys_count(w->keys);
  uint64_t hdr[] = {w->fingerprint,         (uint64_t)w->watermark,
                    w->st.total_input_rows, w->st.total_dropped_by_watermark,
                    w->st.total_emitted,    n};
  ed_code_t rc = agg_state_head(out, WIN_MAGIC, WIN_VERSION, hdr, sizeof hdr / sizeof hdr[0]);
  rc = rc ? rc : et_parts_save(&w->parts, out);
  for (size_t g = 0; g < n && !rc; g++) {
    rc = agg_state_put_key(out, (uint64_t)agg_keys_prefix(w->keys, (uint32_t)g), w->keys,
                           (uint32_t)g);
    for (size_t a = 0; a < w->naggs && !rc; a++)
      rc = agg_save(w->aggs[a], (uint32_t)g, out);
  }
  if (!rc)
    rc = agg_state_seal(out, base);
  if (rc)
    return ed_err_set(err, rc, "window: out of memory saving %zu state rows", n);
  return ED_OK;
}

ed_code_t win_state_load(win_t *w, const void *bytes, size_t len, ed_err_t *err) {
  const uint8_t *p, *end;
  uint64_t hdr[6] = {0};
  /* version 1 has no partition section: read it as version 2 with none */
  const uint8_t *vb = bytes;
  uint32_t ver = len >= 8
                     ? vb[4] | (uint32_t)vb[5] << 8 | (uint32_t)vb[6] << 16 | (uint32_t)vb[7] << 24
                     : WIN_VERSION;
  if (ver != 1u)
    ver = WIN_VERSION;
  ed_code_t rc = agg_state_open(bytes, len, "window", WIN_MAGIC, ver, hdr, 6, &p, &end, err);
  if (rc)
    return rc;
  uint64_t fp = hdr[0], wm = hdr[1], tin = hdr[2], tdrop = hdr[3], temit = hdr[4], n = hdr[5];
  if (fp != w->fingerprint)
    return ed_err_set(err, ED_E_CONFIG,
                      "window state: saved by a different query (window, keys or aggregates "
                      "changed)");
  if (n > len)
    return ed_err_set(err, ED_E_CORRUPT, "window state: %llu rows in %zu bytes",
                      (unsigned long long)n, len);
  /* Build the new state beside the old one, so a failure leaves w as it was. */
  agg_keys_t *keys = NULL;
  agg_t **aggs = calloc(w->naggs, sizeof *aggs);
  const sm_type_t **kt = calloc(w->nkeys ? w->nkeys : 1, sizeof *kt);
  int64_t *pmax = malloc(w->parts.n * sizeof *pmax);
  uint64_t *pdrop = calloc(w->parts.n, sizeof *pdrop);
  if (!aggs || !kt || !pmax || !pdrop) {
    rc = ed_err_set(err, ED_E_NOMEM, "window state: out of memory");
    goto fail;
  }
  for (size_t k = 0; k < w->parts.n; k++)
    pmax[k] = INT64_MIN;
  if (ver != 1u && (rc = et_parts_load(&w->parts, &p, end, "window", pmax, pdrop, err)))
    goto fail;
  for (size_t i = 0; i < w->nkeys; i++)
    kt[i] = w->in->fields[w->kcol[i]].type;
  if ((rc = agg_keys_new(kt, NULL, w->nkeys, &keys, err)))
    goto fail;
  for (size_t a = 0; a < w->naggs; a++) {
    if (!(aggs[a] = agg_new_like(w->aggs[a])) || agg_reserve(aggs[a], n))
      goto nomem;
  }
  for (uint64_t i = 0; i < n; i++) {
    uint64_t prefix, klen;
    const uint8_t *key;
    if (!agg_state_get_key(&p, end, &prefix, &key, &klen)) {
      rc = ed_err_set(err, ED_E_CORRUPT, "window state: row %llu truncated", (unsigned long long)i);
      goto fail;
    }
    uint32_t g;
    if ((rc = agg_keys_add_raw(keys, (int64_t)prefix, key, klen, &g, err)))
      goto fail;
    for (size_t a = 0; a < w->naggs; a++)
      if ((rc = agg_load(aggs[a], g, &p, end, err)))
        goto fail;
  }
  if (p != end) {
    rc = ed_err_set(err, ED_E_CORRUPT, "window state: %zu bytes left over", (size_t)(end - p));
    goto fail;
  }
  if ((rc = ensure_groups(w, n)))
    goto nomem;
  for (size_t a = 0; a < w->naggs; a++) {
    agg_t *old = w->aggs[a];
    w->aggs[a] = aggs[a];
    aggs[a] = old;
  }
  agg_keys_free(w->keys);
  w->keys = keys;
  keys = NULL;
  if (w->touched)
    memset(w->touched, 0, w->tcap);
  w->ntouched = 0;
  w->watermark = (int64_t)wm;
  w->st.total_input_rows = tin;
  w->st.total_dropped_by_watermark = tdrop;
  w->st.total_emitted = temit;
  w->st.watermark_us = w->watermark;
  w->batch_open = false;
  memcpy(w->parts.max, pmax, w->parts.n * sizeof *pmax);
  memcpy(w->parts.drop_t, pdrop, w->parts.n * sizeof *pdrop);
  for (size_t a = 0; a < w->naggs; a++)
    agg_free(aggs[a]);
  free(aggs);
  free(kt);
  free(pmax);
  free(pdrop);
  return ED_OK;
nomem:
  rc = ed_err_set(err, ED_E_NOMEM, "window state: out of memory");
fail:
  agg_keys_free(keys);
  for (size_t a = 0; aggs && a < w->naggs; a++)
    agg_free(aggs[a]);
  free(aggs);
  free(kt);
  free(pmax);
  free(pdrop);
  return rc;
}
