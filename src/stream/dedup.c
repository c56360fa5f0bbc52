/* dedup: see dedup.h. Keys live in an agg_keys_t (prefix unused); beside
 * each, the instant at which it expires. Spark (statefulOperators.scala,
 * StreamingDeduplicateWithinWatermarkExec): rows with event time <=
 * watermark are dropped first (applyRemovingRowsOlderThanWatermark), a new
 * key is stored with expiresAt = event time + delay, a seen key drops the
 * row, and after the batch every key with watermark >= expiresAt is removed.
 * StreamingDeduplicateExec (dropDuplicates) evicts by the event-time key
 * itself (event time <= watermark), i.e. expiresAt = event time.
 * Event time is per partition, as in window.c (whose opening comment gives
 * the rule and where it departs from Spark): the watermark is the minimum
 * over the partitions not idle, and a row is late when its event time <= the
 * larger of that and its own partition's watermark just before it. */
#include "stream/dedup.h"

#include <stdlib.h>
#include <string.h>

#include "common/time.h"
#include "stream/agg.h"
#include "stream/evtime.h"

#define DD_MAGIC "EDDD"
/* 2 added the per-partition event times and drop counts; 1 is still read. */
#define DD_VERSION 2u

struct dd {
  const sm_type_t *in;
  int tcol;
  size_t nkeys;
  int *kcol;
  int64_t delay, max_future;
  dd_mode_t mode;
  agg_keys_t *keys;
  int64_t *expires;
  size_t ecap;
  int64_t watermark;
  et_parts_t parts; /* dd_set_partitions; one unnamed partition by default */
  int64_t now;
  bool now_set;
  uint64_t fingerprint;
  dd_stats_t st;
  bool batch_open;
};

ed_code_t dd_new(const dd_spec_t *sp, const sm_type_t *in, dd_t **out, ed_err_t *err) {
  *out = NULL;
  if (!in || in->kind != SM_STRUCT)
    return ed_err_set(err, ED_E_CONFIG, "dedup: the input schema must be a STRUCT");
  if (sp->nkeys == 0)
    return ed_err_set(err, ED_E_CONFIG, "dedup: at least one key column is needed");
  if (sp->delay_us < 0)
    return ed_err_set(err, ED_E_CONFIG, "dedup: watermark delay %lld us: expected >= 0",
                      (long long)sp->delay_us);
  if (sp->max_future_us < 0)
    return ed_err_set(err, ED_E_CONFIG, "dedup: max future skew: expected >= 0 (0: no bound)");
  if ((unsigned)sp->mode > DD_KEYS)
    return ed_err_set(err, ED_E_CONFIG, "dedup: unknown mode %d", (int)sp->mode);
  dd_t *d = calloc(1, sizeof *d);
  if (!d)
    return ed_err_set(err, ED_E_NOMEM, "dedup: out of memory");
  d->in = in;
  d->nkeys = sp->nkeys;
  d->delay = sp->delay_us;
  d->max_future = sp->max_future_us;
  d->mode = sp->mode;
  d->watermark = INT64_MIN;
  d->kcol = calloc(sp->nkeys, sizeof *d->kcol);
  const sm_type_t **kt = calloc(sp->nkeys, sizeof *kt);
  const char **kn = calloc(sp->nkeys, sizeof *kn);
  ed_code_t rc = ED_OK;
  if (!d->kcol || !kt || !kn) {
    rc = ed_err_set(err, ED_E_NOMEM, "dedup: out of memory");
    goto fail;
  }
  if ((rc =
           agg_resolve_col(in, "dedup", "event-time", sp->time_col, sp->time_index, &d->tcol, err)))
    goto fail;
  if (in->fields[d->tcol].type->kind != SM_TIMESTAMP) {
    rc = ed_err_set(err, ED_E_CONFIG, "dedup: event-time column '%s': expected TIMESTAMP, got %s",
                    in->fields[d->tcol].name, sm_kind_name(in->fields[d->tcol].type->kind));
    goto fail;
  }
  bool time_in_keys = false;
  uint64_t fp = agg_hash64(&d->mode, sizeof d->mode, 0);
  for (size_t i = 0; i < sp->nkeys; i++) {
    if ((rc = agg_resolve_col(in, "dedup", "key", sp->keys ? sp->keys[i] : NULL,
                              sp->key_index ? sp->key_index[i] : -1, &d->kcol[i], err)))
      goto fail;
    time_in_keys |= d->kcol[i] == d->tcol;
    kt[i] = in->fields[d->kcol[i]].type;
    kn[i] = in->fields[d->kcol[i]].name;
    fp = agg_hash64(kn[i], strlen(kn[i]) + 1, fp);
    fp = agg_hash64(&kt[i]->kind, sizeof kt[i]->kind, fp);
  }
  if (sp->mode == DD_KEYS && !time_in_keys) {
    rc = ed_err_set(err, ED_E_CONFIG,
                    "dedup: dropDuplicates keys must include the event-time column '%s' (or use "
                    "the within-watermark mode), else its state grows without bound",
                    in->fields[d->tcol].name);
    goto fail;
  }
  if ((rc = agg_keys_new(kt, kn, sp->nkeys, &d->keys, err)))
    goto fail;
  d->fingerprint = fp;
  static const char *const one[] = {""};
  if ((rc = et_parts_set(&d->parts, one, 1, "dedup", err)))
    goto fail;
  free(kt);
  free(kn);
  *out = d;
  return ED_OK;
fail:
  free(kt);
  free(kn);
  dd_free(d);
  return rc;
}

void dd_free(dd_t *d) {
  if (!d)
    return;
  agg_keys_free(d->keys);
  free(d->kcol);
  free(d->expires);
  et_parts_fini(&d->parts);
  free(d);
}

ed_code_t dd_set_partitions(dd_t *d, const char *const *ids, size_t n, ed_err_t *err) {
  return et_parts_set(&d->parts, ids, n, "dedup", err);
}

void dd_part_dropped(const dd_t *d, size_t part, uint64_t *batch, uint64_t *total) {
  *batch = part < d->parts.n ? d->parts.drop_b[part] : 0;
  *total = part < d->parts.n ? d->parts.drop_t[part] : 0;
}

static void batch_begin(dd_t *d) {
  if (d->batch_open)
    return;
  d->batch_open = true;
  et_parts_begin(&d->parts);
  d->st.input_rows = d->st.kept = d->st.duplicates = 0;
  d->st.num_rows_dropped_by_watermark = d->st.null_event_time = d->st.future_event_time = 0;
  d->st.num_rows_removed = 0;
}

static ed_code_t ensure(dd_t *d, size_t n) {
  if (n <= d->ecap)
    return ED_OK;
  size_t nc = d->ecap ? d->ecap * 2 : 64;
  while (nc < n)
    nc *= 2;
  int64_t *e = realloc(d->expires, nc * sizeof *e);
  if (!e)
    return ED_E_NOMEM;
  d->expires = e;
  d->ecap = nc;
  return ED_OK;
}

/* sel picks the rows looked at (NULL: all of b); of those, take (NULL: all)
 * the ones deduplicated. Every row looked at advances its partition's event
 * time (window.c's update does the same, for the same reasons). */
static ed_code_t update(dd_t *d, const sm_batch_t *b, const uint32_t *sel, size_t nsel,
                        const uint8_t *take_mask, size_t part, uint32_t *keep, size_t *nkeep,
                        ed_err_t *err) {
  batch_begin(d);
  *nkeep = 0;
  if (part >= d->parts.n)
    return ed_err_set(err, ED_E_INVALID, "dedup: partition index %zu: expected < %zu", part,
                      d->parts.n);
  ed_code_t rc = agg_check_batch(b, d->in, sel, nsel, "dedup", err);
  if (rc)
    return rc;
  size_t n = sel ? nsel : b->nrows;
  const sm_col_t *tc = &b->cols[d->tcol];
  const sm_col_t *kc[64], **kcols = kc;
  if (d->nkeys > 64 && !(kcols = malloc(d->nkeys * sizeof *kcols)))
    return ed_err_set(err, ED_E_NOMEM, "dedup: out of memory");
  for (size_t i = 0; i < d->nkeys; i++)
    kcols[i] = &b->cols[d->kcol[i]];
  int64_t limit = INT64_MAX;
  if (d->max_future) {
    int64_t now = d->now_set ? d->now : ed_time_now_us();
    limit = now > INT64_MAX - d->max_future ? INT64_MAX : now + d->max_future;
  }
  int64_t add = d->mode == DD_WITHIN_WATERMARK ? d->delay : 0;
  int64_t pm = d->parts.max[part];
  size_t k = 0, ntaken = 0;
  uint64_t ndropped = 0;
  for (size_t i = 0; i < n; i++) {
    size_t r = sel ? sel[i] : i;
    bool take = !take_mask || take_mask[r];
    ntaken += take;
    if (!tc->valid[r]) {
      d->st.null_event_time += take;
      continue;
    }
    int64_t ts = tc->v.i64[r];
    if (ts > limit) {
      d->st.future_event_time += take;
      continue;
    }
    int64_t own = et_wm_of(pm, d->delay);
    pm = ts > pm ? ts : pm;
    if (!take)
      continue;
    int64_t thr = own > d->watermark ? own : d->watermark;
    if (thr != INT64_MIN && ts <= thr) {
      ndropped++;
      continue;
    }
    uint32_t g;
    bool added;
    /* room first: a key must never exist without its expiry */
    if ((rc = ensure(d, agg_keys_count(d->keys) + 1)) || (rc = agg_keys_row(d->keys, kcols, r)) ||
        (rc = agg_keys_upsert(d->keys, 0, &g, &added)))
      break;
    if (!added) {
      d->st.duplicates++;
      continue;
    }
    d->expires[g] = ts > INT64_MAX - add ? INT64_MAX : ts + add;
    keep[k++] = (uint32_t)r;
  }
  if (kcols != kc)
    free(kcols);
  d->parts.max[part] = pm;
  d->parts.drop_b[part] += ndropped;
  d->st.num_rows_dropped_by_watermark += ndropped;
  d->st.input_rows += ntaken;
  d->st.kept += k;
  *nkeep = k;
  if (rc)
    return ed_err_set(err, rc, "dedup: out of memory for %zu keys", agg_keys_count(d->keys));
  return ED_OK;
}

ed_code_t dd_update(dd_t *d, const sm_batch_t *b, const uint32_t *sel, size_t nsel, uint32_t *keep,
                    size_t *nkeep, ed_err_t *err) {
  return update(d, b, sel, nsel, NULL, 0, keep, nkeep, err);
}

ed_code_t dd_update_part(dd_t *d, const sm_batch_t *b, const uint8_t *in_mask, size_t part,
                         uint8_t *keep_mask, size_t *nkeep, ed_err_t *err) {
  uint32_t *keep = malloc((b->nrows ? b->nrows : 1) * sizeof *keep);
  if (!keep)
    return ed_err_set(err, ED_E_NOMEM, "dedup: out of memory for %zu rows", b->nrows);
  ed_code_t rc = update(d, b, NULL, 0, in_mask, part, keep, nkeep, err);
  if (b->nrows)
    memset(keep_mask, 0, b->nrows);
  for (size_t i = 0; rc == ED_OK && i < *nkeep; i++)
    keep_mask[keep[i]] = 1;
  free(keep);
  return rc;
}

ed_code_t dd_update_mask(dd_t *d, const sm_batch_t *b, const uint8_t *in_mask, uint8_t *keep_mask,
                         size_t *nkeep, ed_err_t *err) {
  return dd_update_part(d, b, in_mask, 0, keep_mask, nkeep, err);
}

void dd_end_batch(dd_t *d) {
  batch_begin(d);
  /* Spark's watermark (max event time in ms - delay, never moving back),
   * per partition: the minimum over the partitions not idle (evtime.h) */
  int64_t cand = et_parts_watermark(&d->parts, d->delay);
  if (cand != INT64_MIN && (d->watermark == INT64_MIN || cand > d->watermark))
    d->watermark = cand;
  et_parts_end(&d->parts);
  size_t n = agg_keys_count(d->keys);
  if (d->watermark != INT64_MIN && n) {
    uint8_t *keep = malloc(n);
    uint32_t *remap = malloc(n * sizeof *remap);
    if (keep && remap) {
      size_t removed = 0;
      for (size_t g = 0; g < n; g++) {
        keep[g] = d->watermark < d->expires[g];
        removed += !keep[g];
      }
      if (removed && agg_keys_compact(d->keys, keep, remap) == ED_OK) {
        for (size_t g = 0; g < n; g++)
          if (remap[g] != UINT32_MAX)
            d->expires[remap[g]] = d->expires[g];
        d->st.num_rows_removed = removed;
      }
    } /* out of memory: eviction waits for the next batch; nothing is lost */
    free(keep);
    free(remap);
  }
  d->st.watermark_us = d->watermark;
  d->batch_open = false;
}

void dd_get_stats(const dd_t *d, dd_stats_t *out) {
  *out = d->st;
  out->num_rows_total = agg_keys_count(d->keys);
  out->memory_used_bytes = sizeof *d + agg_keys_mem_bytes(d->keys) + d->ecap * 8;
  out->watermark_us = d->watermark;
}

/* "EDDD", u32 version, u64 fingerprint, i64 watermark, u64 keys, (version 2)
 * the partitions (et_parts_save), then per key i64 expiresAt, u64 length,
 * bytes; last a u64 hash of everything before. */
ed_code_t dd_state_save(const dd_t *d, ed_buf_t *out, ed_err_t *err) {
  size_t base = out->len, n = agg_keys_count(d->keys);
  uint64_t hdr[] = {d->fingerprint, (uint64_t)d->watermark, n};
  ed_code_t rc = agg_state_head(out, DD_MAGIC, DD_VERSION, hdr, sizeof hdr / sizeof hdr[0]);
  rc = rc ? rc : et_parts_save(&d->parts, out);
  for (size_t g = 0; g < n && !rc; g++)
    rc = agg_state_put_key(out, (uint64_t)d->expires[g], d->keys, (uint32_t)g);
  if (!rc)
    rc = agg_state_seal(out, base);
  return rc ? ed_err_set(err, rc, "dedup: out of memory saving %zu keys", n) : ED_OK;
}

ed_code_t dd_state_load(dd_t *d, const void *bytes, size_t len, ed_err_t *err) {
  const uint8_t *p, *end;
  uint64_t hdr[3];
  /* version 1 has no partition section: its partitions start without a time */
  const uint8_t *vb = bytes;
  uint32_t ver = len >= 8 && vb[4] == 1 && !vb[5] && !vb[6] && !vb[7] ? 1u : DD_VERSION;
  ed_code_t rc = agg_state_open(bytes, len, "dedup", DD_MAGIC, ver, hdr, 3, &p, &end, err);
  if (rc)
    return rc;
  uint64_t fp = hdr[0], wm = hdr[1], n = hdr[2];
  if (fp != d->fingerprint)
    return ed_err_set(err, ED_E_CONFIG, "dedup state: saved by a different query (keys changed)");
  if (n > len)
    return ed_err_set(err, ED_E_CORRUPT, "dedup state: %llu keys in %zu bytes",
                      (unsigned long long)n, len);
  const sm_type_t **kt = calloc(d->nkeys, sizeof *kt);
  agg_keys_t *keys = NULL;
  int64_t *exp = malloc((n ? n : 1) * sizeof *exp);
  int64_t *pmax = malloc(d->parts.n * sizeof *pmax);
  uint64_t *pdrop = calloc(d->parts.n, sizeof *pdrop);
  if (!kt || !exp || !pmax || !pdrop) {
    rc = ed_err_set(err, ED_E_NOMEM, "dedup state: out of memory");
    goto fail;
  }
  for (size_t i = 0; i < d->parts.n; i++)
    pmax[i] = INT64_MIN;
  if (ver != 1u && (rc = et_parts_load(&d->parts, &p, end, "dedup", pmax, pdrop, err)))
    goto fail;
  for (size_t i = 0; i < d->nkeys; i++)
    kt[i] = d->in->fields[d->kcol[i]].type;
  if ((rc = agg_keys_new(kt, NULL, d->nkeys, &keys, err)))
    goto fail;
  for (uint64_t i = 0; i < n; i++) {
    uint64_t e, klen;
    const uint8_t *key;
    uint32_t g;
    if (!agg_state_get_key(&p, end, &e, &key, &klen)) {
      rc = ed_err_set(err, ED_E_CORRUPT, "dedup state: key %llu truncated", (unsigned long long)i);
      goto fail;
    }
    if ((rc = agg_keys_add_raw(keys, 0, key, klen, &g, err)))
      goto fail;
    exp[g] = (int64_t)e;
  }
  if (p != end) {
    rc = ed_err_set(err, ED_E_CORRUPT, "dedup state: %zu bytes left over", (size_t)(end - p));
    goto fail;
  }
  agg_keys_free(d->keys);
  d->keys = keys;
  free(d->expires);
  d->expires = exp;
  d->ecap = n ? n : 1;
  d->watermark = (int64_t)wm;
  d->st.watermark_us = d->watermark;
  d->batch_open = false;
  memcpy(d->parts.max, pmax, d->parts.n * sizeof *pmax);
  memcpy(d->parts.drop_t, pdrop, d->parts.n * sizeof *pdrop);
  free(pmax);
  free(pdrop);
  free(kt);
  return ED_OK;
fail:
  agg_keys_free(keys);
  free(exp);
  free(kt);
  free(pmax);
  free(pdrop);
  return rc;
}
