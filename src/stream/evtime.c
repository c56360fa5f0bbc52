/* evtime: see evtime.h. The rule and its sources are in window.c's opening
 * comment and ehdelta.conf(5), EVENT TIME. */
#include "stream/evtime.h"

#include <stdlib.h>
#include <string.h>

#include "common/time.h"

void et_parts_fini(et_parts_t *e) {
  for (size_t p = 0; e->id && p < e->n; p++)
    free(e->id[p]);
  free(e->id);
  free(e->max);
  free(e->idle);
  free(e->drop_b);
  free(e->drop_t);
  *e = (et_parts_t){0};
}

ed_code_t et_parts_set(et_parts_t *e, const char *const *ids, size_t n, const char *what,
                       ed_err_t *err) {
  if (n == 0 || n > ET_PARTS_MAX)
    return ed_err_set(err, ED_E_INVALID, "%s: %zu partitions: expected 1 to %u", what, n,
                      ET_PARTS_MAX);
  et_parts_t t = {.n = n};
  t.id = calloc(n, sizeof *t.id);
  t.max = malloc(n * sizeof *t.max);
  t.idle = calloc(n, 1);
  t.drop_b = calloc(n, sizeof *t.drop_b);
  t.drop_t = calloc(n, sizeof *t.drop_t);
  bool ok = t.id && t.max && t.idle && t.drop_b && t.drop_t;
  for (size_t p = 0; ok && p < n; p++) {
    ok = (t.id[p] = strdup(ids[p] ? ids[p] : "")) != NULL;
    t.max[p] = INT64_MIN;
  }
  if (!ok) {
    et_parts_fini(&t);
    return ed_err_set(err, ED_E_NOMEM, "%s: out of memory for %zu partitions", what, n);
  }
  et_parts_fini(e);
  *e = t;
  return ED_OK;
}

int64_t et_wm_of(int64_t max_ts, int64_t delay) {
  if (max_ts == INT64_MIN)
    return INT64_MIN;
  int64_t x = ed_floordiv(max_ts, 1000) * 1000;
  return x < INT64_MIN + delay ? INT64_MIN : x - delay;
}

int64_t et_parts_watermark(const et_parts_t *e, int64_t delay) {
  bool all_idle = true;
  for (size_t p = 0; p < e->n; p++)
    all_idle = all_idle && e->idle[p];
  int64_t wm = INT64_MAX;
  bool any = false;
  for (size_t p = 0; p < e->n; p++) {
    if (e->idle[p] && !all_idle)
      continue;
    if (e->max[p] == INT64_MIN) {
      if (!all_idle)
        return INT64_MIN; /* it may still bring anything: hold */
      continue;
    }
    int64_t pw = et_wm_of(e->max[p], delay);
    if (pw == INT64_MIN)
      return INT64_MIN;
    wm = pw < wm ? pw : wm;
    any = true;
  }
  return any ? wm : INT64_MIN;
}

void et_parts_begin(et_parts_t *e) { memset(e->drop_b, 0, e->n * sizeof *e->drop_b); }

void et_parts_end(et_parts_t *e) {
  for (size_t p = 0; p < e->n; p++)
    e->drop_t[p] += e->drop_b[p];
}

ed_code_t et_parts_save(const et_parts_t *e, ed_buf_t *out) {
  ed_code_t rc = ed_buf_put_u64le(out, e->n);
  for (size_t p = 0; p < e->n && !rc; p++) {
    size_t l = strlen(e->id[p]);
    rc = ed_buf_put_u64le(out, l);
    rc = rc ? rc : ed_buf_append(out, e->id[p], l);
    rc = rc ? rc : ed_buf_put_u64le(out, (uint64_t)e->max[p]);
    rc = rc ? rc : ed_buf_put_u64le(out, e->drop_t[p]);
  }
  return rc;
}

ed_code_t et_parts_load(const et_parts_t *e, const uint8_t **p, const uint8_t *end,
                        const char *what, int64_t *max, uint64_t *drop, ed_err_t *err) {
  uint64_t np;
  if (!ed_get_u64le(p, end, &np))
    return ed_err_set(err, ED_E_CORRUPT, "%s state: the partition count is truncated", what);
  if (np > ET_PARTS_MAX)
    return ed_err_set(err, ED_E_CORRUPT, "%s state: %llu partitions: expected at most %u", what,
                      (unsigned long long)np, ET_PARTS_MAX);
  for (uint64_t i = 0; i < np; i++) {
    uint64_t l, t, d;
    if (!ed_get_u64le(p, end, &l) || (uint64_t)(end - *p) < l)
      return ed_err_set(err, ED_E_CORRUPT, "%s state: partition %llu truncated", what,
                        (unsigned long long)i);
    const char *id = (const char *)*p;
    *p += l;
    if (!ed_get_u64le(p, end, &t) || !ed_get_u64le(p, end, &d))
      return ed_err_set(err, ED_E_CORRUPT, "%s state: partition %llu truncated", what,
                        (unsigned long long)i);
    for (size_t k = 0; k < e->n; k++)
      if (strlen(e->id[k]) == l && memcmp(e->id[k], id, l) == 0) {
        max[k] = (int64_t)t;
        drop[k] = d;
      }
  }
  return ED_OK;
}
