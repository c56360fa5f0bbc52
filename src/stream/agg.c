/* agg: see agg.h. States are struct-of-arrays indexed by group id so the
 * update loops stay branch-light and cache-friendly; per-group heap state
 * exists only for count(DISTINCT) (a hash set) and approx_count_distinct
 * (HyperLogLog registers), allocated on a group's first value. This file:
 * the hash, spec parsing and the aggregate functions; the group-key tables
 * and state frames are agg_keys.c. */
#include "stream/agg.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "stream/agg_int.h"

/* ---------------------------------------------------------------- hash */

uint64_t agg_hash64(const void *p, size_t n, uint64_t seed) {
  const uint8_t *s = p;
  uint64_t a = 0, b = 0;
  /* Keys are mostly short (a tag, a length and a category name): up to 16
   * bytes take two overlapping loads and two mixes (measured: the hash was a
   * third of an update's time with the general loop). */
  if (n <= 16) {
    if (n >= 8) {
      memcpy(&a, s, 8);
      memcpy(&b, s + n - 8, 8);
    } else if (n >= 4) {
      uint32_t lo, hi;
      memcpy(&lo, s, 4);
      memcpy(&hi, s + n - 4, 4);
      a = lo;
      b = hi;
    } else if (n) {
      a = (uint64_t)s[0] | (uint64_t)s[n / 2] << 8 | (uint64_t)s[n - 1] << 16;
    }
    return mix64(a ^ mix64(b ^ seed ^ ((uint64_t)n << 56)));
  }
  uint64_t h = seed ^ ((uint64_t)n * UINT64_C(0x9e3779b97f4a7c15));
  while (n > 8) {
    memcpy(&a, s, 8);
    h = (h ^ mix64(a)) * UINT64_C(0x9e3779b97f4a7c15);
    h = (h << 31) | (h >> 33);
    s += 8;
    n -= 8;
  }
  memcpy(&b, s + n - 8, 8); /* the last 8 bytes, overlapping: n >= 1 here and total > 16 */
  return mix64(h ^ mix64(b ^ ((uint64_t)n << 56)));
}

/* ---------------------------------------------------------------- values */

/* Fixed-width value as 8 bytes, or a pointer into the column for bytes. */
static inline const void *value_bytes(const sm_col_t *c, size_t r, uint64_t *tmp, size_t *n) {
  sm_kind_t k = c->type->kind;
  if (kind_bytes(k))
    return sm_col_str(c, r, n);
  if (kind_float(k)) {
    double d = norm_f64(get_f64(c, r));
    memcpy(tmp, &d, 8);
  } else {
    *tmp = (uint64_t)get_i64(c, r);
  }
  *n = 8;
  return tmp;
}

/* Total order Spark uses for min/max of doubles: NaN above everything. */
static inline int cmp_f64(double a, double b) {
  bool an = a != a, bn = b != b;
  if (an || bn)
    return an == bn ? 0 : (an ? 1 : -1);
  return a < b ? -1 : (a > b ? 1 : 0);
}
static inline int cmp_bytes(const char *a, size_t an, const char *b, size_t bn) {
  int c = memcmp(a, b, an < bn ? an : bn);
  if (c)
    return c;
  return an < bn ? -1 : (an > bn ? 1 : 0);
}

/* ---------------------------------------------------------------- spec parsing */

static const char *agg_kind_name(agg_kind_t k) {
  static const char *names[] = {"count", "count", "sum",   "avg",
                                "min",   "max",   "count", "approx_count_distinct",
                                "first", "last"};
  return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

typedef struct {
  const char *s;
  size_t i;
} lex_t;

static void lex_ws(lex_t *l) {
  while (l->s[l->i] && isspace((unsigned char)l->s[l->i]))
    l->i++;
}

/* An identifier or `quoted name` into out (NUL-terminated); 0 if none. */
static size_t lex_name(lex_t *l, char *out, size_t cap) {
  lex_ws(l);
  size_t n = 0;
  if (l->s[l->i] == '`') {
    size_t j = l->i + 1;
    while (l->s[j] && l->s[j] != '`') {
      if (n + 1 < cap)
        out[n++] = l->s[j];
      j++;
    }
    if (l->s[j] != '`' || n == 0)
      return 0;
    l->i = j + 1;
  } else {
    while (isalnum((unsigned char)l->s[l->i]) || l->s[l->i] == '_' || l->s[l->i] == '.') {
      if (n + 1 < cap)
        out[n++] = l->s[l->i];
      l->i++;
    }
  }
  out[n] = 0;
  return n;
}

static bool lex_char(lex_t *l, char c) {
  lex_ws(l);
  if (l->s[l->i] != c)
    return false;
  l->i++;
  return true;
}

void agg_spec_fini(agg_spec_t *spec) {
  if (!spec)
    return;
  free(spec->owned_);
  spec->owned_ = NULL;
  spec->column = spec->alias = NULL;
}

ed_code_t agg_spec_parse(const char *text, agg_spec_t *out, ed_err_t *err) {
  *out = (agg_spec_t){.col_index = -1};
  size_t tl = strlen(text);
  /* column and alias live in one allocation: "column\0alias\0" */
  char *store = malloc(2 * tl + 4);
  if (!store)
    return ed_err_set(err, ED_E_NOMEM, "aggregate: out of memory");
  char fn[64], col[256] = "", alias[256] = "", word[64];
  lex_t l = {text, 0};
  if (!lex_name(&l, fn, sizeof fn) || !lex_char(&l, '(')) {
    free(store);
    return ed_err_set(err, ED_E_PARSE,
                      "aggregate '%s': expected a function call such as sum(amount) at offset %zu",
                      text, l.i);
  }
  bool distinct = false;
  if (lex_char(&l, '*')) {
    if (strcasecmp(fn, "count") != 0) {
      free(store);
      return ed_err_set(err, ED_E_PARSE, "aggregate '%s': only count accepts *", text);
    }
    out->kind = AGG_COUNT_STAR;
  } else {
    size_t save = l.i;
    if (lex_name(&l, word, sizeof word) && strcasecmp(word, "distinct") == 0)
      distinct = true;
    else
      l.i = save;
    if (!lex_name(&l, col, sizeof col)) {
      free(store);
      return ed_err_set(err, ED_E_PARSE, "aggregate '%s': expected a column name at offset %zu",
                        text, l.i);
    }
    if (strcasecmp(fn, "count") == 0)
      out->kind = distinct ? AGG_COUNT_DISTINCT : AGG_COUNT;
    else if (strcasecmp(fn, "sum") == 0)
      out->kind = AGG_SUM;
    else if (strcasecmp(fn, "avg") == 0 || strcasecmp(fn, "mean") == 0)
      out->kind = AGG_AVG;
    else if (strcasecmp(fn, "min") == 0)
      out->kind = AGG_MIN;
    else if (strcasecmp(fn, "max") == 0)
      out->kind = AGG_MAX;
    else if (strcasecmp(fn, "approx_count_distinct") == 0)
      out->kind = AGG_APPROX_DISTINCT;
    else if (strcasecmp(fn, "first") == 0 || strcasecmp(fn, "first_value") == 0)
      out->kind = AGG_FIRST;
    else if (strcasecmp(fn, "last") == 0 || strcasecmp(fn, "last_value") == 0)
      out->kind = AGG_LAST;
    else {
      free(store);
      return ed_err_set(err, ED_E_PARSE,
                        "aggregate '%s': unknown function '%s' (expected count, sum, avg, min, "
                        "max, approx_count_distinct, first, last)",
                        text, fn);
    }
    if (distinct && out->kind != AGG_COUNT_DISTINCT) {
      free(store);
      return ed_err_set(err, ED_E_PARSE, "aggregate '%s': DISTINCT is supported in count only",
                        text);
    }
    if (lex_char(&l, ',')) {
      lex_ws(&l);
      if (out->kind == AGG_APPROX_DISTINCT) {
        char *end;
        out->rsd = strtod(text + l.i, &end);
        if (end == text + l.i) {
          free(store);
          return ed_err_set(err, ED_E_PARSE,
                            "aggregate '%s': expected a number (rsd) at offset %zu", text, l.i);
        }
        l.i = (size_t)(end - text);
      } else if (out->kind == AGG_FIRST || out->kind == AGG_LAST) {
        if (!lex_name(&l, word, sizeof word) ||
            (strcasecmp(word, "true") != 0 && strcasecmp(word, "false") != 0)) {
          free(store);
          return ed_err_set(err, ED_E_PARSE,
                            "aggregate '%s': expected true or false (ignoreNulls) at offset %zu",
                            text, l.i);
        }
        out->ignore_nulls = strcasecmp(word, "true") == 0;
      } else {
        free(store);
        return ed_err_set(err, ED_E_PARSE, "aggregate '%s': %s takes one argument", text, fn);
      }
    }
  }
  if (!lex_char(&l, ')')) {
    free(store);
    return ed_err_set(err, ED_E_PARSE, "aggregate '%s': expected ')' at offset %zu", text, l.i);
  }
  size_t save = l.i;
  if (lex_name(&l, word, sizeof word) && strcasecmp(word, "as") == 0) {
    if (!lex_name(&l, alias, sizeof alias)) {
      free(store);
      return ed_err_set(err, ED_E_PARSE, "aggregate '%s': expected an alias after AS at offset %zu",
                        text, l.i);
    }
  } else {
    l.i = save;
  }
  lex_ws(&l);
  if (text[l.i]) {
    free(store);
    return ed_err_set(err, ED_E_PARSE, "aggregate '%s': unexpected text at offset %zu", text, l.i);
  }
  size_t cl = strlen(col);
  memcpy(store, col, cl + 1);
  memcpy(store + cl + 1, alias, strlen(alias) + 1);
  out->owned_ = store;
  out->column = cl ? store : NULL;
  out->alias = alias[0] ? store + cl + 1 : NULL;
  return ED_OK;
}

/* ---------------------------------------------------------------- distinct sets */

/* Appends n bytes to an arena that grows geometrically from first bytes;
 * *off is where they start. Offsets are 32-bit, so an arena stops at 4 GiB. */
ed_code_t agg_arena_put(char **arena, size_t *alen, size_t *acap, size_t first, const void *p,
                        size_t n, uint32_t *off) {
  if (*alen + n > UINT32_MAX)
    return ED_E_TOO_LARGE;
  if (*alen + n > *acap) {
    size_t nc = *acap ? *acap * 2 : first;
    while (nc < *alen + n)
      nc *= 2;
    char *a = realloc(*arena, nc);
    if (!a)
      return ED_E_NOMEM;
    *arena = a;
    *acap = nc;
  }
  if (n)
    memcpy(*arena + *alen, p, n);
  *off = (uint32_t)*alen;
  *alen += n;
  return ED_OK;
}

/* An open-addressing set of byte strings; values live in an arena. */
typedef struct dset {
  uint64_t *hash; /* 0 = empty slot (hashes are forced non-zero) */
  uint32_t *off, *len;
  size_t cap, n;
  char *arena;
  size_t alen, acap;
} dset_t;

static void dset_free(dset_t *s) {
  if (!s)
    return;
  free(s->hash);
  free(s->off);
  free(s->len);
  free(s->arena);
  free(s);
}

static size_t dset_bytes(const dset_t *s) { return sizeof *s + s->cap * (8 + 4 + 4) + s->acap; }

static ed_code_t dset_rehash(dset_t *s, size_t ncap) {
  uint64_t *h = calloc(ncap, 8);
  uint32_t *o = malloc(ncap * 4), *l = malloc(ncap * 4);
  if (!h || !o || !l) {
    free(h);
    free(o);
    free(l);
    return ED_E_NOMEM;
  }
  for (size_t i = 0; i < s->cap; i++) {
    if (!s->hash[i])
      continue;
    size_t j = s->hash[i] & (ncap - 1);
    while (h[j])
      j = (j + 1) & (ncap - 1);
    h[j] = s->hash[i];
    o[j] = s->off[i];
    l[j] = s->len[i];
  }
  free(s->hash);
  free(s->off);
  free(s->len);
  s->hash = h;
  s->off = o;
  s->len = l;
  s->cap = ncap;
  return ED_OK;
}

/* Adds (p, n) if absent. */
static ed_code_t dset_add(dset_t *s, const void *p, size_t n, uint64_t h) {
  if (!h)
    h = 1;
  if ((s->n + 1) * 2 > s->cap) {
    ed_code_t rc = dset_rehash(s, s->cap ? s->cap * 2 : 8);
    if (rc)
      return rc;
  }
  size_t j = h & (s->cap - 1);
  while (s->hash[j]) {
    if (s->hash[j] == h && s->len[j] == n && memcmp(s->arena + s->off[j], p, n) == 0)
      return ED_OK;
    j = (j + 1) & (s->cap - 1);
  }
  ed_code_t rc = agg_arena_put(&s->arena, &s->alen, &s->acap, 64, p, n, &s->off[j]);
  if (rc)
    return rc;
  s->hash[j] = h;
  s->len[j] = (uint32_t)n;
  s->n++;
  return ED_OK;
}

/* ---------------------------------------------------------------- aggregates */

#define HLL_SEED UINT64_C(42) /* Spark's HyperLogLogPlusPlus hashes with XxHash64 seed 42 */

struct agg {
  agg_kind_t kind;
  const sm_type_t *in;  /* NULL for count(*) */
  const sm_type_t *out; /* result type */
  char *name;
  bool ignore_nulls;
  int hll_p; /* approx: registers = 1 << hll_p */
  size_t cap;
  /* states (which arrays exist depends on kind) */
  int64_t *cnt;   /* counts; sum/avg: non-null values seen */
  int64_t *iv;    /* integer sum, or min/max/first/last of integer-like kinds */
  double *dv;     /* double sum, or min/max/first/last of floats */
  uint8_t *has;   /* min/max/first/last: a value is held */
  uint8_t *isnul; /* first/last: the held value is null */
  char **sv;      /* bytes of min/max/first/last for STRING/BINARY */
  uint32_t *sl;
  dset_t **set;  /* count(DISTINCT) */
  uint8_t **hll; /* approx_count_distinct */
  size_t heap;   /* bytes held outside the arrays (strings, sets, registers) */
};

static const sm_type_t t_bigint = {.kind = SM_BIGINT};
static const sm_type_t t_double = {.kind = SM_DOUBLE};

ed_code_t agg_new(const agg_spec_t *spec, const sm_type_t *input, agg_t **out, ed_err_t *err) {
  *out = NULL;
  const char *col = spec->column ? spec->column : "?";
  const char *fname = agg_kind_name(spec->kind);
  if ((unsigned)spec->kind > AGG_LAST)
    return ed_err_set(err, ED_E_CONFIG, "aggregate: unknown kind %d", (int)spec->kind);
  if (spec->kind != AGG_COUNT_STAR && !input)
    return ed_err_set(err, ED_E_CONFIG, "aggregate %s: needs an input column", fname);
  sm_kind_t k = input ? input->kind : SM_BIGINT;
  const sm_type_t *rt = &t_bigint;
  switch (spec->kind) {
  case AGG_COUNT_STAR:
  case AGG_COUNT:
    if (input && !kind_flat(k) && spec->kind == AGG_COUNT)
      break; /* count of nested values counts non-null rows: fine */
    break;
  case AGG_SUM:
  case AGG_AVG:
    if (!kind_numeric(k))
      return ed_err_set(err, ED_E_CONFIG,
                        "aggregate %s(%s): expected a numeric column (INT, BIGINT, FLOAT, DOUBLE), "
                        "got %s",
                        fname, col, sm_kind_name(k));
    rt = (spec->kind == AGG_AVG || kind_float(k)) ? &t_double : &t_bigint;
    break;
  case AGG_MIN:
  case AGG_MAX:
  case AGG_FIRST:
  case AGG_LAST:
    if (!kind_flat(k))
      return ed_err_set(err, ED_E_CONFIG, "aggregate %s(%s): expected a flat column, got %s", fname,
                        col, sm_kind_name(k));
    rt = input;
    break;
  case AGG_COUNT_DISTINCT:
  case AGG_APPROX_DISTINCT:
    if (!kind_flat(k))
      return ed_err_set(err, ED_E_CONFIG, "aggregate %s(%s): expected a flat column, got %s", fname,
                        col, sm_kind_name(k));
    break;
  }
  int p = 0;
  if (spec->kind == AGG_APPROX_DISTINCT) {
    double rsd = spec->rsd > 0 ? spec->rsd : 0.05;
    /* Spark (HyperLogLogPlusPlus): p = ceil(2 * log2(1.106 / rsd)), p >= 4. */
    p = (int)ceil(2.0 * log2(1.106 / rsd));
    if (p < 4)
      return ed_err_set(err, ED_E_CONFIG,
                        "aggregate approx_count_distinct(%s): rsd %g too large (expected <= 0.39)",
                        col, rsd);
    if (p > 16)
      return ed_err_set(
          err, ED_E_CONFIG,
          "aggregate approx_count_distinct(%s): rsd %g too small (expected >= 0.0043)", col, rsd);
  }
  agg_t *a = calloc(1, sizeof *a);
  if (!a)
    return ed_err_set(err, ED_E_NOMEM, "aggregate: out of memory");
  a->kind = spec->kind;
  a->in = input;
  a->out = rt;
  a->ignore_nulls = spec->ignore_nulls;
  a->hll_p = p;
  char def[300];
  /* Spark's default output names: count(1), count(DISTINCT x), sum(x), ... */
  if (spec->alias)
    snprintf(def, sizeof def, "%s", spec->alias);
  else if (spec->kind == AGG_COUNT_STAR)
    snprintf(def, sizeof def, "count(1)");
  else if (spec->kind == AGG_COUNT_DISTINCT)
    snprintf(def, sizeof def, "count(DISTINCT %s)", col);
  else
    snprintf(def, sizeof def, "%s(%s)", fname, col);
  a->name = strdup(def);
  if (!a->name) {
    free(a);
    return ed_err_set(err, ED_E_NOMEM, "aggregate: out of memory");
  }
  *out = a;
  return ED_OK;
}

static bool is_bytes_val(const agg_t *a) { return a->in && kind_bytes(a->in->kind); }
static bool is_float_val(const agg_t *a) { return a->in && kind_float(a->in->kind); }

void agg_free(agg_t *a) {
  if (!a)
    return;
  for (size_t g = 0; g < a->cap; g++)
    agg_clear(a, (uint32_t)g);
  free(a->cnt);
  free(a->iv);
  free(a->dv);
  free(a->has);
  free(a->isnul);
  free(a->sv);
  free(a->sl);
  free(a->set);
  free(a->hll);
  free(a->name);
  free(a);
}

agg_t *agg_new_like(const agg_t *a) {
  agg_t *b = calloc(1, sizeof *b);
  if (!b)
    return NULL;
  b->kind = a->kind;
  b->in = a->in;
  b->out = a->out;
  b->ignore_nulls = a->ignore_nulls;
  b->hll_p = a->hll_p;
  b->name = strdup(a->name);
  if (!b->name) {
    free(b);
    return NULL;
  }
  return b;
}

const char *agg_name(const agg_t *a) { return a->name; }
const sm_type_t *agg_result_type(const agg_t *a) { return a->out; }

ed_code_t agg_grow_arr(void **p, size_t elem, size_t oldn, size_t newn) {
  void *q = realloc(*p, elem * newn);
  if (!q)
    return ED_E_NOMEM;
  memset((char *)q + elem * oldn, 0, elem * (newn - oldn));
  *p = q;
  return ED_OK;
}

ed_code_t agg_reserve(agg_t *a, size_t ngroups) {
  if (ngroups <= a->cap)
    return ED_OK;
  size_t nc = a->cap ? a->cap : 16;
  while (nc < ngroups)
    nc *= 2;
  size_t o = a->cap;
  bool ok = true;
  switch (a->kind) {
  case AGG_COUNT_STAR:
  case AGG_COUNT:
    ok = !agg_grow_arr((void **)&a->cnt, 8, o, nc);
    break;
  case AGG_SUM:
  case AGG_AVG:
    ok = !agg_grow_arr((void **)&a->cnt, 8, o, nc);
    if (a->kind == AGG_AVG || is_float_val(a))
      ok = ok && !agg_grow_arr((void **)&a->dv, 8, o, nc);
    else
      ok = ok && !agg_grow_arr((void **)&a->iv, 8, o, nc);
    break;
  case AGG_MIN:
  case AGG_MAX:
  case AGG_FIRST:
  case AGG_LAST:
    ok = !agg_grow_arr((void **)&a->has, 1, o, nc);
    if (a->kind == AGG_FIRST || a->kind == AGG_LAST)
      ok = ok && !agg_grow_arr((void **)&a->isnul, 1, o, nc);
    if (is_bytes_val(a))
      ok = ok && !agg_grow_arr((void **)&a->sv, sizeof(char *), o, nc) &&
           !agg_grow_arr((void **)&a->sl, 4, o, nc);
    else if (is_float_val(a))
      ok = ok && !agg_grow_arr((void **)&a->dv, 8, o, nc);
    else
      ok = ok && !agg_grow_arr((void **)&a->iv, 8, o, nc);
    break;
  case AGG_COUNT_DISTINCT:
    ok = !agg_grow_arr((void **)&a->set, sizeof(dset_t *), o, nc);
    break;
  case AGG_APPROX_DISTINCT:
    ok = !agg_grow_arr((void **)&a->hll, sizeof(uint8_t *), o, nc);
    break;
  }
  if (!ok)
    return ED_E_NOMEM; /* arrays already grown keep their larger size: harmless */
  a->cap = nc;
  return ED_OK;
}

void agg_clear(agg_t *a, uint32_t g) {
  if (g >= a->cap)
    return;
  if (a->cnt)
    a->cnt[g] = 0;
  if (a->iv)
    a->iv[g] = 0;
  if (a->dv)
    a->dv[g] = 0;
  if (a->has)
    a->has[g] = 0;
  if (a->isnul)
    a->isnul[g] = 0;
  if (a->sv && a->sv[g]) {
    a->heap -= a->sl[g];
    free(a->sv[g]);
    a->sv[g] = NULL;
    a->sl[g] = 0;
  }
  if (a->set && a->set[g]) {
    a->heap -= dset_bytes(a->set[g]);
    dset_free(a->set[g]);
    a->set[g] = NULL;
  }
  if (a->hll && a->hll[g]) {
    a->heap -= (size_t)1 << a->hll_p;
    free(a->hll[g]);
    a->hll[g] = NULL;
  }
}

void agg_move(agg_t *a, uint32_t dst, uint32_t src) {
  if (dst == src || src >= a->cap)
    return; /* src never allocated: dst stays empty */
#define MV(arr)                                                                                    \
  if (a->arr) {                                                                                    \
    a->arr[dst] = a->arr[src];                                                                     \
    memset(&a->arr[src], 0, sizeof a->arr[src]);                                                   \
  }
  MV(cnt)
  MV(iv) MV(dv) MV(has) MV(isnul) MV(sv) MV(sl) MV(set) MV(hll)
#undef MV
}

static ed_code_t set_bytes(agg_t *a, uint32_t g, const char *p, size_t n) {
  char *s = realloc(a->sv[g], n ? n : 1);
  if (!s)
    return ED_E_NOMEM;
  if (n)
    memcpy(s, p, n);
  a->heap = a->heap - a->sl[g] + n;
  a->sv[g] = s;
  a->sl[g] = (uint32_t)n;
  return ED_OK;
}

/* HyperLogLog (Flajolet et al. 2007): the register is the top p bits of
 * the hash; its value the position of the first 1 in the rest. */
static inline void hll_add(uint8_t *reg, int p, uint64_t h) {
  uint32_t idx = (uint32_t)(h >> (64 - p));
  uint64_t w = (h << p) | ((uint64_t)1 << (p - 1)); /* guard bit bounds the count */
  uint8_t rho = (uint8_t)(__builtin_clzll(w) + 1);
  if (rho > reg[idx])
    reg[idx] = rho;
}

static int64_t hll_estimate(const uint8_t *reg, int p) {
  size_t m = (size_t)1 << p;
  double sum = 0;
  size_t zeros = 0;
  for (size_t i = 0; i < m; i++) {
    sum += ldexp(1.0, -reg[i]);
    zeros += reg[i] == 0;
  }
  double alpha = m == 16 ? 0.673 : m == 32 ? 0.697 : m == 64 ? 0.709 : 0.7213 / (1 + 1.079 / m);
  double e = alpha * m * m / sum;
  if (e <= 2.5 * m && zeros)
    e = m * log((double)m / zeros); /* linear counting for small cardinalities */
  return (int64_t)llround(e);
}

static ed_code_t upd_value(agg_t *a, const sm_col_t *c, size_t r, uint32_t g) {
  switch (a->kind) {
  case AGG_MIN:
  case AGG_MAX: {
    if (!c->valid[r])
      return ED_OK;
    int sign = a->kind == AGG_MIN ? -1 : 1;
    if (is_bytes_val(a)) {
      size_t n;
      const char *p = sm_col_str(c, r, &n);
      if (!a->has[g] || cmp_bytes(p, n, a->sv[g], a->sl[g]) * sign > 0) {
        if (set_bytes(a, g, p, n))
          return ED_E_NOMEM;
        a->has[g] = 1;
      }
    } else if (is_float_val(a)) {
      double d = get_f64(c, r);
      if (!a->has[g] || cmp_f64(d, a->dv[g]) * sign > 0) {
        a->dv[g] = d;
        a->has[g] = 1;
      }
    } else {
      int64_t v = get_i64(c, r);
      if (!a->has[g] || (sign < 0 ? v < a->iv[g] : v > a->iv[g])) {
        a->iv[g] = v;
        a->has[g] = 1;
      }
    }
    return ED_OK;
  }
  case AGG_FIRST:
  case AGG_LAST: {
    bool null = !c->valid[r];
    if (null && a->ignore_nulls)
      return ED_OK;
    if (a->kind == AGG_FIRST && a->has[g])
      return ED_OK;
    a->has[g] = 1;
    a->isnul[g] = null;
    if (null)
      return ED_OK;
    if (is_bytes_val(a)) {
      size_t n;
      const char *p = sm_col_str(c, r, &n);
      return set_bytes(a, g, p, n);
    }
    if (is_float_val(a))
      a->dv[g] = get_f64(c, r);
    else
      a->iv[g] = get_i64(c, r);
    return ED_OK;
  }
  case AGG_COUNT_DISTINCT: {
    if (!c->valid[r])
      return ED_OK;
    uint64_t tmp;
    size_t n;
    const void *p = value_bytes(c, r, &tmp, &n);
    if (!a->set[g]) {
      a->set[g] = calloc(1, sizeof(dset_t));
      if (!a->set[g])
        return ED_E_NOMEM;
      a->heap += sizeof(dset_t);
    }
    size_t before = dset_bytes(a->set[g]);
    ed_code_t rc = dset_add(a->set[g], p, n, agg_hash64(p, n, 0));
    a->heap += dset_bytes(a->set[g]) - before;
    return rc;
  }
  case AGG_APPROX_DISTINCT: {
    if (!c->valid[r])
      return ED_OK;
    if (!a->hll[g]) {
      a->hll[g] = calloc((size_t)1 << a->hll_p, 1);
      if (!a->hll[g])
        return ED_E_NOMEM;
      a->heap += (size_t)1 << a->hll_p;
    }
    uint64_t tmp;
    size_t n;
    const void *p = value_bytes(c, r, &tmp, &n);
    hll_add(a->hll[g], a->hll_p, agg_hash64(p, n, HLL_SEED));
    return ED_OK;
  }
  default:
    return ED_OK;
  }
}

ed_code_t agg_update(agg_t *a, const sm_col_t *col, const uint32_t *rows, const uint32_t *gids,
                     size_t n, ed_err_t *err) {
  /* The common kinds get their own loops: this is the hot path. */
  switch (a->kind) {
  case AGG_COUNT_STAR:
    for (size_t i = 0; i < n; i++)
      a->cnt[gids[i]]++;
    return ED_OK;
  case AGG_COUNT: {
    const uint8_t *v = col->valid;
    for (size_t i = 0; i < n; i++)
      a->cnt[gids[i]] += v[rows ? rows[i] : i];
    return ED_OK;
  }
  case AGG_SUM:
  case AGG_AVG: {
    const uint8_t *v = col->valid;
    if (a->dv) {
      if (col->type->kind == SM_DOUBLE) {
        const double *x = col->v.f64;
        for (size_t i = 0; i < n; i++) {
          size_t r = rows ? rows[i] : i;
          uint32_t g = gids[i];
          a->cnt[g] += v[r];
          a->dv[g] += v[r] ? x[r] : 0.0;
        }
      } else {
        for (size_t i = 0; i < n; i++) {
          size_t r = rows ? rows[i] : i;
          if (!v[r])
            continue;
          a->cnt[gids[i]]++;
          a->dv[gids[i]] += get_f64(col, r);
        }
      }
    } else {
      for (size_t i = 0; i < n; i++) {
        size_t r = rows ? rows[i] : i;
        if (!v[r])
          continue;
        a->cnt[gids[i]]++;
        /* wraps on overflow like Spark's non-ANSI long sum, without UB */
        a->iv[gids[i]] = (int64_t)((uint64_t)a->iv[gids[i]] + (uint64_t)get_i64(col, r));
      }
    }
    return ED_OK;
  }
  case AGG_MAX:
  case AGG_MIN:
    if (col->type->kind == SM_DOUBLE) {
      const uint8_t *v = col->valid;
      const double *x = col->v.f64;
      bool mx = a->kind == AGG_MAX;
      for (size_t i = 0; i < n; i++) {
        size_t r = rows ? rows[i] : i;
        uint32_t g = gids[i];
        if (!v[r])
          continue;
        double d = x[r];
        if (!a->has[g] || (mx ? cmp_f64(d, a->dv[g]) > 0 : cmp_f64(d, a->dv[g]) < 0)) {
          a->dv[g] = d;
          a->has[g] = 1;
        }
      }
      return ED_OK;
    }
    break;
  default:
    break;
  }
  for (size_t i = 0; i < n; i++) {
    ed_code_t rc = upd_value(a, col, rows ? rows[i] : i, gids[i]);
    if (rc)
      return ed_err_set(err, rc, "aggregate %s: out of memory", a->name);
  }
  return ED_OK;
}

ed_code_t agg_merge(agg_t *d, uint32_t gd, const agg_t *s, uint32_t gs, ed_err_t *err) {
  if (d->kind != s->kind || (d->in && s->in && d->in->kind != s->in->kind))
    return ed_err_set(err, ED_E_INVALID, "aggregate %s: merge of a different aggregate", d->name);
  if (gs >= s->cap)
    return ED_OK; /* an empty group */
  if (gd >= d->cap && agg_reserve(d, (size_t)gd + 1))
    return ed_err_set(err, ED_E_NOMEM, "aggregate %s: out of memory", d->name);
  switch (d->kind) {
  case AGG_COUNT_STAR:
  case AGG_COUNT:
    d->cnt[gd] += s->cnt[gs];
    return ED_OK;
  case AGG_SUM:
  case AGG_AVG:
    d->cnt[gd] += s->cnt[gs];
    if (d->dv)
      d->dv[gd] += s->dv[gs];
    else
      d->iv[gd] = (int64_t)((uint64_t)d->iv[gd] + (uint64_t)s->iv[gs]);
    return ED_OK;
  case AGG_MIN:
  case AGG_MAX:
  case AGG_FIRST:
  case AGG_LAST: {
    if (!s->has[gs])
      return ED_OK;
    bool take;
    int sign = d->kind == AGG_MIN ? -1 : 1;
    if (d->kind == AGG_FIRST)
      take = !d->has[gd];
    else if (d->kind == AGG_LAST)
      take = true;
    else if (!d->has[gd])
      take = true;
    else if (is_bytes_val(d))
      take = cmp_bytes(s->sv[gs], s->sl[gs], d->sv[gd], d->sl[gd]) * sign > 0;
    else if (is_float_val(d))
      take = cmp_f64(s->dv[gs], d->dv[gd]) * sign > 0;
    else
      take = sign < 0 ? s->iv[gs] < d->iv[gd] : s->iv[gs] > d->iv[gd];
    if (!take)
      return ED_OK;
    d->has[gd] = 1;
    if (d->isnul)
      d->isnul[gd] = s->isnul[gs];
    if (is_bytes_val(d)) {
      if (set_bytes(d, gd, s->sv[gs], s->sl[gs]))
        return ed_err_set(err, ED_E_NOMEM, "aggregate %s: out of memory", d->name);
    } else if (d->dv) {
      d->dv[gd] = s->dv[gs];
    } else {
      d->iv[gd] = s->iv[gs];
    }
    return ED_OK;
  }
  case AGG_COUNT_DISTINCT: {
    const dset_t *ss = s->set[gs];
    if (!ss)
      return ED_OK;
    if (!d->set[gd]) {
      d->set[gd] = calloc(1, sizeof(dset_t));
      if (!d->set[gd])
        return ed_err_set(err, ED_E_NOMEM, "aggregate %s: out of memory", d->name);
      d->heap += sizeof(dset_t);
    }
    size_t before = dset_bytes(d->set[gd]);
    for (size_t i = 0; i < ss->cap; i++) {
      if (ss->hash[i] &&
          dset_add(d->set[gd], ss->arena + ss->off[i], ss->len[i], ss->hash[i]) != ED_OK) {
        d->heap += dset_bytes(d->set[gd]) - before;
        return ed_err_set(err, ED_E_NOMEM, "aggregate %s: out of memory", d->name);
      }
    }
    d->heap += dset_bytes(d->set[gd]) - before;
    return ED_OK;
  }
  case AGG_APPROX_DISTINCT: {
    if (!s->hll[gs])
      return ED_OK;
    if (d->hll_p != s->hll_p)
      return ed_err_set(err, ED_E_INVALID, "aggregate %s: merge of a different precision", d->name);
    size_t m = (size_t)1 << d->hll_p;
    if (!d->hll[gd]) {
      d->hll[gd] = calloc(m, 1);
      if (!d->hll[gd])
        return ed_err_set(err, ED_E_NOMEM, "aggregate %s: out of memory", d->name);
      d->heap += m;
    }
    for (size_t i = 0; i < m; i++)
      if (s->hll[gs][i] > d->hll[gd][i])
        d->hll[gd][i] = s->hll[gs][i];
    return ED_OK;
  }
  }
  return ED_OK;
}

static ed_code_t put_held(const agg_t *a, uint32_t g, sm_col_t *out) {
  if (is_bytes_val(a))
    return sm_col_append_str(out, a->sv[g] ? a->sv[g] : "", a->sl[g]);
  switch (a->in->kind) {
  case SM_FLOAT:
    return sm_col_append_f32(out, (float)a->dv[g]);
  case SM_DOUBLE:
    return sm_col_append_f64(out, a->dv[g]);
  case SM_INT:
  case SM_DATE:
    return sm_col_append_i32(out, (int32_t)a->iv[g]);
  case SM_BOOLEAN:
    return sm_col_append_bool(out, a->iv[g] != 0);
  default:
    return sm_col_append_i64(out, a->iv[g]);
  }
}

ed_code_t agg_emit(const agg_t *a, const uint32_t *gids, size_t n, sm_col_t *out, ed_err_t *err) {
  ed_code_t rc = sm_col_grow(out, n);
  for (size_t i = 0; i < n && rc == ED_OK; i++) {
    uint32_t g = gids[i];
    if (g >= a->cap) {
      /* a group whose states could not be allocated holds no value yet */
      bool counts = a->kind == AGG_COUNT_STAR || a->kind == AGG_COUNT ||
                    a->kind == AGG_COUNT_DISTINCT || a->kind == AGG_APPROX_DISTINCT;
      rc = counts ? sm_col_append_i64(out, 0) : sm_col_append_null(out);
      continue;
    }
    switch (a->kind) {
    case AGG_COUNT_STAR:
    case AGG_COUNT:
      rc = sm_col_append_i64(out, a->cnt[g]);
      break;
    case AGG_SUM:
      if (!a->cnt[g])
        rc = sm_col_append_null(out); /* Spark: sum of no non-null values is NULL */
      else if (a->dv)
        rc = sm_col_append_f64(out, a->dv[g]);
      else
        rc = sm_col_append_i64(out, a->iv[g]);
      break;
    case AGG_AVG:
      rc = a->cnt[g] ? sm_col_append_f64(out, a->dv[g] / (double)a->cnt[g])
                     : sm_col_append_null(out);
      break;
    case AGG_MIN:
    case AGG_MAX:
    case AGG_FIRST:
    case AGG_LAST:
      if (!a->has[g] || (a->isnul && a->isnul[g]))
        rc = sm_col_append_null(out);
      else
        rc = put_held(a, g, out);
      break;
    case AGG_COUNT_DISTINCT:
      rc = sm_col_append_i64(out, a->set[g] ? (int64_t)a->set[g]->n : 0);
      break;
    case AGG_APPROX_DISTINCT:
      rc = sm_col_append_i64(out, a->hll[g] ? hll_estimate(a->hll[g], a->hll_p) : 0);
      break;
    }
  }
  if (rc)
    return ed_err_set(err, rc, "aggregate %s: out of memory for %zu results", a->name, n);
  return ED_OK;
}

/* ---------------------------------------------------------------- serialisation */

static ed_code_t put_u32(ed_buf_t *b, uint32_t v) {
  uint8_t x[4];
  for (int i = 0; i < 4; i++)
    x[i] = (uint8_t)(v >> (8 * i));
  return ed_buf_append(b, x, 4);
}
static bool get_u32(const uint8_t **p, const uint8_t *end, uint32_t *v) {
  if (end - *p < 4)
    return false;
  *v = 0;
  for (int i = 0; i < 4; i++)
    *v |= (uint32_t)(*p)[i] << (8 * i);
  *p += 4;
  return true;
}

ed_code_t agg_save(const agg_t *a, uint32_t g, ed_buf_t *out) {
  ed_code_t rc = ED_OK;
  uint64_t bits;
  if (g >= a->cap) { /* never allocated: the empty state's encoding */
    static const uint8_t zero[16];
    switch (a->kind) {
    case AGG_COUNT_STAR:
    case AGG_COUNT:
      return ed_buf_append(out, zero, 8);
    case AGG_SUM:
    case AGG_AVG:
      return ed_buf_append(out, zero, 16);
    case AGG_COUNT_DISTINCT:
      return ed_buf_append(out, zero, 4);
    default:
      return ed_buf_append(out, zero, 1);
    }
  }
  switch (a->kind) {
  case AGG_COUNT_STAR:
  case AGG_COUNT:
    return ed_buf_put_u64le(out, (uint64_t)a->cnt[g]);
  case AGG_SUM:
  case AGG_AVG:
    rc = ed_buf_put_u64le(out, (uint64_t)a->cnt[g]);
    if (a->dv)
      memcpy(&bits, &a->dv[g], 8);
    else
      bits = (uint64_t)a->iv[g];
    return rc ? rc : ed_buf_put_u64le(out, bits);
  case AGG_MIN:
  case AGG_MAX:
  case AGG_FIRST:
  case AGG_LAST: {
    uint8_t flags = (uint8_t)(a->has[g] | ((a->isnul && a->isnul[g]) << 1));
    rc = ed_buf_append(out, &flags, 1);
    if (rc || !a->has[g])
      return rc;
    if (is_bytes_val(a)) {
      rc = put_u32(out, a->sl[g]);
      return rc ? rc : ed_buf_append(out, a->sv[g] ? a->sv[g] : "", a->sl[g]);
    }
    if (a->dv)
      memcpy(&bits, &a->dv[g], 8);
    else
      bits = (uint64_t)a->iv[g];
    return ed_buf_put_u64le(out, bits);
  }
  case AGG_COUNT_DISTINCT: {
    const dset_t *s = a->set[g];
    rc = put_u32(out, s ? (uint32_t)s->n : 0);
    for (size_t i = 0; s && i < s->cap && rc == ED_OK; i++) {
      if (!s->hash[i])
        continue;
      rc = put_u32(out, s->len[i]);
      if (!rc)
        rc = ed_buf_append(out, s->arena + s->off[i], s->len[i]);
    }
    return rc;
  }
  case AGG_APPROX_DISTINCT: {
    uint8_t present = a->hll[g] != NULL;
    rc = ed_buf_append(out, &present, 1);
    if (rc || !present)
      return rc;
    return ed_buf_append(out, a->hll[g], (size_t)1 << a->hll_p);
  }
  }
  return rc;
}

ed_code_t agg_load(agg_t *a, uint32_t g, const uint8_t **p, const uint8_t *end, ed_err_t *err) {
  uint64_t u, bits;
  agg_clear(a, g);
#define NEED(cond)                                                                                 \
  if (!(cond))                                                                                     \
  return ed_err_set(err, ED_E_CORRUPT, "aggregate %s: state truncated or invalid", a->name)
  switch (a->kind) {
  case AGG_COUNT_STAR:
  case AGG_COUNT:
    NEED(ed_get_u64le(p, end, &u));
    a->cnt[g] = (int64_t)u;
    return ED_OK;
  case AGG_SUM:
  case AGG_AVG:
    NEED(ed_get_u64le(p, end, &u) && ed_get_u64le(p, end, &bits));
    a->cnt[g] = (int64_t)u;
    if (a->dv)
      memcpy(&a->dv[g], &bits, 8);
    else
      a->iv[g] = (int64_t)bits;
    return ED_OK;
  case AGG_MIN:
  case AGG_MAX:
  case AGG_FIRST:
  case AGG_LAST: {
    NEED(end - *p >= 1 && **p <= 3);
    uint8_t flags = *(*p)++;
    a->has[g] = flags & 1;
    if (a->isnul)
      a->isnul[g] = (flags >> 1) & 1;
    if (!a->has[g])
      return ED_OK;
    if (is_bytes_val(a)) {
      uint32_t n;
      NEED(get_u32(p, end, &n) && (size_t)(end - *p) >= n);
      if (set_bytes(a, g, (const char *)*p, n))
        return ed_err_set(err, ED_E_NOMEM, "aggregate %s: out of memory", a->name);
      *p += n;
      return ED_OK;
    }
    NEED(ed_get_u64le(p, end, &bits));
    if (a->dv)
      memcpy(&a->dv[g], &bits, 8);
    else
      a->iv[g] = (int64_t)bits;
    return ED_OK;
  }
  case AGG_COUNT_DISTINCT: {
    uint32_t n;
    NEED(get_u32(p, end, &n));
    if (!n)
      return ED_OK;
    a->set[g] = calloc(1, sizeof(dset_t));
    if (!a->set[g])
      return ed_err_set(err, ED_E_NOMEM, "aggregate %s: out of memory", a->name);
    for (uint32_t i = 0; i < n; i++) {
      uint32_t len;
      NEED(get_u32(p, end, &len) && (size_t)(end - *p) >= len);
      if (dset_add(a->set[g], *p, len, agg_hash64(*p, len, 0)))
        return ed_err_set(err, ED_E_NOMEM, "aggregate %s: out of memory", a->name);
      *p += len;
    }
    a->heap += dset_bytes(a->set[g]);
    return ED_OK;
  }
  case AGG_APPROX_DISTINCT: {
    NEED(end - *p >= 1 && **p <= 1);
    if (!*(*p)++)
      return ED_OK;
    size_t m = (size_t)1 << a->hll_p;
    NEED((size_t)(end - *p) >= m);
    a->hll[g] = malloc(m);
    if (!a->hll[g])
      return ed_err_set(err, ED_E_NOMEM, "aggregate %s: out of memory", a->name);
    memcpy(a->hll[g], *p, m);
    for (size_t i = 0; i < m; i++)
      NEED(a->hll[g][i] <= 64 - a->hll_p + 1);
    *p += m;
    a->heap += m;
    return ED_OK;
  }
  }
#undef NEED
  return ED_OK;
}

size_t agg_mem_bytes(const agg_t *a) {
  size_t per = 0;
  per += a->cnt ? 8 : 0;
  per += a->iv ? 8 : 0;
  per += a->dv ? 8 : 0;
  per += a->has ? 1 : 0;
  per += a->isnul ? 1 : 0;
  per += a->sv ? sizeof(char *) + 4 : 0;
  per += a->set ? sizeof(void *) : 0;
  per += a->hll ? sizeof(void *) : 0;
  return sizeof *a + per * a->cap + a->heap;
}

/* ---------------------------------------------------------------- specs and batches in */

ed_code_t agg_resolve_col(const sm_type_t *in, const char *who, const char *what, const char *name,
                          int index, int *out, ed_err_t *err) {
  if (index >= 0) {
    if ((size_t)index >= in->nfields)
      return ed_err_set(err, ED_E_CONFIG, "%s: %s column #%d: the input has %zu columns", who, what,
                        index, in->nfields);
    *out = index;
    return ED_OK;
  }
  if (!name)
    return ed_err_set(err, ED_E_CONFIG, "%s: %s column: no name given", who, what);
  *out = sm_type_field_index(in, name);
  if (*out < 0)
    return ed_err_set(err, ED_E_CONFIG, "%s: %s column '%s': not in the input schema", who, what,
                      name);
  return ED_OK;
}

ed_code_t agg_check_batch(const sm_batch_t *b, const sm_type_t *in, const uint32_t *sel,
                          size_t nsel, const char *what, ed_err_t *err) {
  if (!b->schema || (b->schema != in && !sm_type_equal(b->schema, in)))
    return ed_err_set(err, ED_E_SCHEMA,
                      "%s: the batch's schema is not the query's input schema (%zu columns, "
                      "expected %zu)",
                      what, b->schema ? b->schema->nfields : 0, in->nfields);
  for (size_t i = 0; sel && i < nsel; i++)
    if (sel[i] >= b->nrows)
      return ed_err_set(err, ED_E_INVALID, "%s: selected row %u of a batch of %zu rows", what,
                        (unsigned)sel[i], b->nrows);
  return ED_OK;
}
