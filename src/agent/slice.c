/* slice: one ring block through the pipeline thread, in slices that fit
 * every sink's open batch, each decoded into rows, enriched with the derived
 * columns and the filter's mask, and fanned out to the sinks (raw rows
 * appended, windows updated, bad events and screened rows to the dead-letter
 * batch). Runs on the pipeline thread only and takes no lock. */
#include "agent/run_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/time.h"

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
    return ag_run_nomem(err, "chunk");
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
      return ag_run_nomem(err, "properties");
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
    pt->seen_off = e->off;
    sl->taken++;
    sl->taken_bytes += e->blen;
    if (r->available_now && e->seq >= pt->end)
      pt->done = true;
  }
  r->events += sl->taken;
  r->bytes += sl->taken_bytes;
  atomic_store_explicit(&pt->seen_pub, pt->seen, memory_order_relaxed);
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
      ag_run_nomem(err, "chunk");
  for (size_t k = 0; !rc && k < r->nderive; k++) {
    sm_batch_t view = {.schema = r->schemas[k], .nrows = sl->nrows, .cols = r->tb.cols};
    rc = sm_expr_eval_append(r->derive[k], &view, now, &dc[ndec + k], err);
    if (!rc && (rc = sm_col_view_tail(&r->tb.cols[ndec + k], &dc[ndec + k], sl->base)))
      ag_run_nomem(err, "chunk");
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
    s->pos_off[b->part] = pt->seen_off;
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
ed_code_t ag_run_process_block(run_t *r, blk_t *b, ed_err_t *err) {
  ed_code_t rc = ED_OK;
  for (uint32_t at = 0; !rc && at < b->n;) {
    uint32_t n = slice_len(r, b, at);
    rc = process_slice(r, b, at, at + n, err);
    at += n;
    for (size_t i = 0; !rc && at < b->n && i < r->nsinks; i++)
      if (&r->sinks[i] != r->dl && r->sinks[i].dirty && ag_run_size_due(&r->sinks[i]))
        rc = ag_run_close_batch(r, &r->sinks[i], err);
    if (!rc && at < b->n && r->dl && r->dl->dirty && ag_run_size_due(r->dl))
      rc = ag_run_close_batch_one(r, r->dl, err);
  }
  return rc;
}
