/* expr_eval: the batch evaluator (sm_expr_eval, sm_expr_eval_append,
 * sm_expr_filter). Each bound node evaluates a whole batch into its own
 * scratch column (or is a one-row scalar: literals, current_timestamp), reset
 * and reused between batches; owns CAST, formatting and date_format. */
#include "stream/expr.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/time.h"
#include "stream/expr_int.h"
#include "stream/schema.h"

/* ---- evaluation ---- */

/* Java's Double.toString: shortest digits that read back, plain notation in
 * [1e-3, 1e7), else d.dddE[-]x. */
static size_t fmt_double(double d, bool is_float, char *o, size_t cap) {
  if (isnan(d))
    return (size_t)snprintf(o, cap, "NaN");
  if (isinf(d))
    return (size_t)snprintf(o, cap, d > 0 ? "Infinity" : "-Infinity");
  if (d == 0)
    return (size_t)snprintf(o, cap, signbit(d) ? "-0.0" : "0.0");
  char e[40];
  int p;
  for (p = 1; p <= 17; p++) {
    snprintf(e, sizeof e, "%.*e", p - 1, d);
    if (is_float ? (float)strtod(e, NULL) == (float)d : strtod(e, NULL) == d)
      break;
  }
  /* e = [-]D.DDDDe[+-]XX */
  char digits[24] = {0};
  size_t nd = 0;
  const char *s = e;
  bool neg = *s == '-';
  if (neg)
    s++;
  for (; *s && *s != 'e'; s++)
    if (isdigit((unsigned char)*s))
      digits[nd++] = *s;
  int exp = atoi(s + 1);
  while (nd > 1 && digits[nd - 1] == '0')
    nd--;
  size_t k = 0;
#define PUT(c)                                                                                     \
  do {                                                                                             \
    if (k + 1 < cap)                                                                               \
      o[k++] = (c);                                                                                \
  } while (0)
  if (neg)
    PUT('-');
  double a = fabs(d);
  if (a >= 1e-3 && a < 1e7) {
    if (exp >= 0) {
      for (int i = 0; i <= exp; i++)
        PUT((size_t)i < nd ? digits[i] : '0');
      PUT('.');
      if ((size_t)exp + 1 >= nd)
        PUT('0');
      for (size_t i = (size_t)exp + 1; i < nd; i++)
        PUT(digits[i]);
    } else {
      PUT('0');
      PUT('.');
      for (int i = 0; i < -exp - 1; i++)
        PUT('0');
      for (size_t i = 0; i < nd; i++)
        PUT(digits[i]);
    }
  } else {
    PUT(digits[0]);
    PUT('.');
    if (nd == 1)
      PUT('0');
    for (size_t i = 1; i < nd; i++)
      PUT(digits[i]);
    k += (size_t)snprintf(o + k, cap > k ? cap - k : 0, "E%d", exp);
  }
#undef PUT
  o[k < cap ? k : cap - 1] = '\0';
  return k;
}

/* Spark's CAST(timestamp AS STRING): yyyy-MM-dd HH:mm:ss[.fraction without
 * trailing zeros], in UTC. */
static size_t fmt_ts(int64_t us, char *o) {
  size_t n = ed_time_format_iso(us, 6, o); /* ...T..:..:..ffffffZ */
  o[10] = ' ';
  n--; /* Z */
  while (o[n - 1] == '0')
    n--;
  if (o[n - 1] == '.')
    n--;
  o[n] = '\0';
  return n;
}

static bool trim_span(const char **p, size_t *n) {
  while (*n && isspace((unsigned char)**p))
    (*p)++, (*n)--;
  while (*n && isspace((unsigned char)(*p)[*n - 1]))
    (*n)--;
  return *n > 0;
}

/* string -> number, Spark (non-ANSI): NULL when it does not parse */
static bool str_to_i64(const char *p, size_t n, int64_t *v, bool *fits32) {
  if (!trim_span(&p, &n) || n > 60)
    return false;
  char b[64];
  memcpy(b, p, n);
  b[n] = '\0';
  char *end;
  errno = 0;
  long long x = strtoll(b, &end, 10);
  if (*end == '.') { /* '12.5' -> 12 */
    const char *f = end + 1;
    while (isdigit((unsigned char)*f))
      f++;
    if (*f || (end == b) || (end == b + 1 && (b[0] == '-' || b[0] == '+')))
      return false;
  } else if (*end || end == b) {
    return false;
  }
  if (errno)
    return false;
  *v = x;
  *fits32 = x >= INT32_MIN && x <= INT32_MAX;
  return true;
}

static bool str_to_f64(const char *p, size_t n, double *v) {
  if (!trim_span(&p, &n) || n > 400)
    return false;
  char b[404];
  memcpy(b, p, n);
  b[n] = '\0';
  char *end;
  *v = strtod(b, &end);
  if (*end == 'd' || *end == 'D' || *end == 'f' || *end == 'F')
    end++;
  return !*end && end != b;
}

static int64_t sat_i64(double d) {
  if (isnan(d))
    return 0;
  if (d >= 9223372036854775807.0)
    return INT64_MAX;
  if (d <= -9223372036854775808.0)
    return INT64_MIN;
  return (int64_t)d;
}
static int32_t sat_i32(double d) {
  int64_t v = sat_i64(d); /* truncation toward zero commutes with the clamp */
  return v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
}

static double num_at(const sm_col_t *c, size_t i) {
  switch (c->type->kind) {
  case SM_INT:
    return c->v.i32[i];
  case SM_BIGINT:
    return (double)c->v.i64[i];
  case SM_FLOAT:
    return c->v.f32[i];
  case SM_DOUBLE:
    return c->v.f64[i];
  case SM_BOOLEAN:
    return c->v.b8[i];
  default:
    return 0;
  }
}
static int64_t int_at(const sm_col_t *c, size_t i) {
  switch (c->type->kind) {
  case SM_INT:
    return c->v.i32[i];
  case SM_BIGINT:
    return c->v.i64[i];
  case SM_BOOLEAN:
    return c->v.b8[i];
  default:
    return sat_i64(num_at(c, i));
  }
}

/* Appends row i of src cast to out's kind. */
static ed_code_t cast_row(const sm_col_t *src, size_t i, sm_col_t *out) {
  if (!src->valid[i])
    return sm_col_append_null(out);
  sm_kind_t f = src->type->kind, t = out->type->kind;
  char buf[64];
  if (t == SM_STRING) {
    size_t n = 0;
    const char *p = buf;
    switch (f) {
    case SM_STRING:
    case SM_BINARY:
      p = sm_col_str(src, i, &n);
      break;
    case SM_BOOLEAN:
      p = src->v.b8[i] ? "true" : "false";
      n = strlen(p);
      break;
    case SM_INT:
    case SM_BIGINT:
      n = (size_t)snprintf(buf, sizeof buf, "%" PRId64, int_at(src, i));
      break;
    case SM_FLOAT:
    case SM_DOUBLE:
      n = fmt_double(num_at(src, i), f == SM_FLOAT, buf, sizeof buf);
      break;
    case SM_DATE:
      n = ed_time_format_date((int64_t)src->v.i32[i] * ED_US_PER_DAY, buf);
      break;
    case SM_TIMESTAMP:
      n = fmt_ts(src->v.i64[i], buf);
      break;
    default:
      return sm_col_append_null(out);
    }
    return sm_col_append_str(out, p, n);
  }
  if (f == SM_STRING) {
    size_t n;
    const char *p = sm_col_str(src, i, &n);
    int64_t v;
    double d;
    bool f32;
    switch (t) {
    case SM_BINARY:
      return sm_col_append_str(out, p, n);
    case SM_BOOLEAN: {
      static const char *const yes[] = {"t", "true", "y", "yes", "1"};
      static const char *const no[] = {"f", "false", "n", "no", "0"};
      trim_span(&p, &n);
      for (size_t k = 0; k < 5; k++) {
        if (strlen(yes[k]) == n && strncasecmp(p, yes[k], n) == 0)
          return sm_col_append_bool(out, true);
        if (strlen(no[k]) == n && strncasecmp(p, no[k], n) == 0)
          return sm_col_append_bool(out, false);
      }
      return sm_col_append_null(out);
    }
    case SM_INT:
      return str_to_i64(p, n, &v, &f32) && f32 ? sm_col_append_i32(out, (int32_t)v)
                                               : sm_col_append_null(out);
    case SM_BIGINT:
      return str_to_i64(p, n, &v, &f32) ? sm_col_append_i64(out, v) : sm_col_append_null(out);
    case SM_FLOAT:
      return str_to_f64(p, n, &d) ? sm_col_append_f32(out, (float)d) : sm_col_append_null(out);
    case SM_DOUBLE:
      return str_to_f64(p, n, &d) ? sm_col_append_f64(out, d) : sm_col_append_null(out);
    case SM_DATE:
    case SM_TIMESTAMP:
      trim_span(&p, &n);
      if (ed_time_parse_iso(p, n, &v, NULL))
        return sm_col_append_null(out);
      return t == SM_DATE ? sm_col_append_i32(out, (int32_t)ed_floordiv(v, ED_US_PER_DAY))
                          : sm_col_append_i64(out, v);
    default:
      return sm_col_append_null(out);
    }
  }
  switch (t) {
  case SM_BOOLEAN:
    return sm_col_append_bool(out, f == SM_TIMESTAMP ? src->v.i64[i] != 0 : num_at(src, i) != 0);
  case SM_INT:
    if (f == SM_TIMESTAMP)
      return sm_col_append_i32(out, (int32_t)(uint32_t)ed_floordiv(src->v.i64[i], ED_US_PER_SEC));
    if (f == SM_FLOAT || f == SM_DOUBLE)
      return sm_col_append_i32(out, sat_i32(num_at(src, i)));
    return sm_col_append_i32(out, (int32_t)(uint32_t)(uint64_t)int_at(src, i)); /* wraps */
  case SM_BIGINT:
    if (f == SM_TIMESTAMP)
      return sm_col_append_i64(out, ed_floordiv(src->v.i64[i], ED_US_PER_SEC));
    return sm_col_append_i64(out, int_at(src, i));
  case SM_FLOAT:
    return sm_col_append_f32(out, f == SM_TIMESTAMP ? (float)((double)src->v.i64[i] / 1e6)
                                                    : (float)num_at(src, i));
  case SM_DOUBLE:
    return sm_col_append_f64(out, f == SM_TIMESTAMP ? (double)src->v.i64[i] / 1e6 : num_at(src, i));
  case SM_DATE:
    if (f == SM_TIMESTAMP)
      return sm_col_append_i32(out, (int32_t)ed_floordiv(src->v.i64[i], ED_US_PER_DAY));
    return sm_col_append_i32(out, src->v.i32[i]);
  case SM_TIMESTAMP:
    if (f == SM_DATE)
      return sm_col_append_i64(out, (int64_t)src->v.i32[i] * ED_US_PER_DAY);
    if (f == SM_TIMESTAMP)
      return sm_col_append_i64(out, src->v.i64[i]);
    {
      double us = num_at(src, i) * 1e6;
      if (!isfinite(us) || fabs(us) > 9.2e18)
        return sm_col_append_null(out);
      return sm_col_append_i64(out, (int64_t)us);
    }
  default:
    return sm_col_append_null(out);
  }
}

static size_t two_digits(char *o, int v) {
  o[0] = (char)('0' + v / 10 % 10);
  o[1] = (char)('0' + v % 10);
  return 2;
}

/* One timestamp through a date_format pattern into o (cap >= 256). */
static size_t fmt_pattern(int64_t us, const char *pat, size_t pn, char *o, size_t cap) {
  static const char *const days[] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
  int64_t day = ed_floordiv(us, ED_US_PER_DAY), rem = us - day * ED_US_PER_DAY;
  int64_t y;
  unsigned m, d;
  ed_time_civil_from_days(day, &y, &m, &d);
  int H = (int)(rem / ED_US_PER_HOUR), M = (int)(rem / ED_US_PER_MIN % 60);
  int S = (int)(rem / ED_US_PER_SEC % 60), frac = (int)(rem % ED_US_PER_SEC);
  size_t k = 0;
  for (size_t i = 0; i < pn && k + 32 < cap;) {
    char c = pat[i];
    size_t r = 1;
    while (i + r < pn && pat[i + r] == c)
      r++;
    size_t w = r > 16 ? 16 : r; /* field widths: every write below fits the 32 bytes left */
    if (c == '\'') {
      if (r == 2) { /* '' is a quote */
        o[k++] = '\'';
        i += 2;
        continue;
      }
      size_t j = i + 1;
      while (j < pn && pat[j] != '\'' && k + 1 < cap)
        o[k++] = pat[j++];
      i = j + 1;
      continue;
    }
    char tmp[32];
    int v = -1;
    switch (c) {
    case 'y':
    case 'u':
      if (r == 2)
        k += two_digits(o + k, (int)((y % 100 + 100) % 100));
      else
        k += (size_t)snprintf(o + k, cap - k, "%0*" PRId64, (int)w, y);
      break;
    case 'M':
      if (r >= 3) {
        static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
        k += (size_t)snprintf(o + k, cap - k, "%s", mon[m - 1]);
      } else {
        v = (int)m;
      }
      break;
    case 'd':
      v = (int)d;
      break;
    case 'D':
      k += (size_t)snprintf(o + k, cap - k, "%0*d", (int)w,
                            (int)(day - ed_time_days_from_civil(y, 1, 1) + 1));
      break;
    case 'H':
      v = H;
      break;
    case 'h':
      v = H % 12 ? H % 12 : 12;
      break;
    case 'm':
      v = M;
      break;
    case 's':
      v = S;
      break;
    case 'S':
      snprintf(tmp, sizeof tmp, "%06d", frac);
      for (size_t j = 0; j < w; j++)
        o[k++] = j < 6 ? tmp[j] : '0';
      break;
    case 'a':
      k += (size_t)snprintf(o + k, cap - k, "%s", H < 12 ? "AM" : "PM");
      break;
    case 'E':
      k += (size_t)snprintf(o + k, cap - k, "%s", days[((day % 7) + 7) % 7]);
      break;
    default:
      for (size_t j = 0; j < r && k + 1 < cap; j++)
        o[k++] = c;
    }
    if (v >= 0)
      k += (size_t)snprintf(o + k, cap - k, "%0*d", (int)(r > 2 ? 2 : r), v);
    i += r;
  }
  return k;
}

static ed_code_t eval_node(node_t *n, const sm_batch_t *b, int64_t now);

/* Gets n's scratch column ready for rows rows of its type. */
static ed_code_t out_begin(node_t *n, size_t rows) {
  if (!n->out_ready) {
    sm_col_init(&n->out, n->type);
    n->out_ready = true;
  }
  sm_col_reset(&n->out);
  n->res = &n->out;
  return rows ? sm_col_grow(&n->out, rows) : ED_OK;
}

#define IX(kid, i) ((kid)->scalar ? 0 : (i))

/* One row of INT or BIGINT arithmetic on field f (signed S, unsigned U): it
 * wraps on overflow like Spark's non-ANSI mode, computed unsigned so that C
 * has no UB; x % 0 is NULL and x % -1 is 0 (INT_MIN % -1 traps in C). */
#define WRAP_ARITH(f, S, U)                                                                        \
  do {                                                                                             \
    U x = (U)a->v.f[ia], y = (U)c->v.f[ic], r = 0;                                                 \
    if (op == A_ADD)                                                                               \
      r = x + y;                                                                                   \
    else if (op == A_SUB)                                                                          \
      r = x - y;                                                                                   \
    else if (op == A_MUL)                                                                          \
      r = x * y;                                                                                   \
    else if (y == 0)                                                                               \
      ok = 0;                                                                                      \
    else                                                                                           \
      r = (S)y == -1 ? 0 : (U)((S)x % (S)y);                                                       \
    o->v.f[i] = (S)r;                                                                              \
  } while (0)

static ed_code_t eval_arith(node_t *n, size_t rows) {
  const sm_col_t *a = n->kids[0]->res, *c = n->kids[1]->res;
  node_t *ka = n->kids[0], *kc = n->kids[1];
  sm_col_t *o = &n->out;
  int op = n->sub;
  for (size_t i = 0; i < rows; i++) {
    size_t ia = IX(ka, i), ic = IX(kc, i);
    uint8_t ok = a->valid[ia] & c->valid[ic];
    switch (n->type->kind) {
    case SM_INT:
      WRAP_ARITH(i32, int32_t, uint32_t);
      break;
    case SM_BIGINT:
      WRAP_ARITH(i64, int64_t, uint64_t);
      break;
    case SM_FLOAT: {
      float x = a->v.f32[ia], y = c->v.f32[ic];
      float r = op == A_ADD ? x + y : op == A_SUB ? x - y : op == A_MUL ? x * y : 0;
      if (op == A_MOD) {
        if (y == 0)
          ok = 0;
        else
          r = fmodf(x, y);
      }
      o->v.f32[i] = r;
      break;
    }
    default: {
      double x = a->v.f64[ia], y = c->v.f64[ic], r = 0;
      switch (op) {
      case A_ADD:
        r = x + y;
        break;
      case A_SUB:
        r = x - y;
        break;
      case A_MUL:
        r = x * y;
        break;
      default: /* Spark: x / 0 and x % 0 are NULL */
        if (y == 0)
          ok = 0;
        else
          r = op == A_DIV ? x / y : fmod(x, y);
      }
      o->v.f64[i] = r;
    }
    }
    o->valid[i] = ok;
  }
  o->len = rows;
  return ED_OK;
}
#undef WRAP_ARITH

static int cmp_row(const sm_col_t *a, size_t ia, const sm_col_t *c, size_t ic) {
  switch (a->type->kind) {
  case SM_STRING:
  case SM_BINARY: {
    size_t na, nc;
    const char *pa = sm_col_str(a, ia, &na), *pc = sm_col_str(c, ic, &nc);
    int r = memcmp(pa, pc, na < nc ? na : nc);
    return r ? r : (na > nc) - (na < nc);
  }
  case SM_BOOLEAN:
    return (a->v.b8[ia] > c->v.b8[ic]) - (a->v.b8[ia] < c->v.b8[ic]);
  case SM_INT:
  case SM_DATE:
    return (a->v.i32[ia] > c->v.i32[ic]) - (a->v.i32[ia] < c->v.i32[ic]);
  case SM_BIGINT:
  case SM_TIMESTAMP:
    return (a->v.i64[ia] > c->v.i64[ic]) - (a->v.i64[ia] < c->v.i64[ic]);
  default: {
    double x = num_at(a, ia), y = num_at(c, ic);
    /* Spark orders NaN above everything and equal to itself */
    if (isnan(x) || isnan(y))
      return isnan(x) && isnan(y) ? 0 : isnan(x) ? 1 : -1;
    return (x > y) - (x < y);
  }
  }
}

static ed_code_t eval_here(node_t *n, const sm_batch_t *b, int64_t now);

/* The recursion alone, as bind_node. */
static ed_code_t eval_node(node_t *n, const sm_batch_t *b, int64_t now) {
  ed_code_t rc;
  for (size_t i = 0; i < n->nkids; i++)
    if (n->op != N_FIELD && (rc = eval_node(n->kids[i], b, now)))
      return rc;
  return eval_here(n, b, now);
}

/* Evaluates n, its children (but a FIELD's struct) evaluated. */
__attribute__((noinline)) static ed_code_t eval_here(node_t *n, const sm_batch_t *b, int64_t now) {
  ed_code_t rc;
  size_t rows = b->nrows;
  n->scalar = false;
  node_t **k = n->kids;
  switch (n->op) {
  case N_COL:
    n->res = &b->cols[n->idx];
    return ED_OK;
  case N_FIELD:
    if ((rc = eval_node(k[0], b, now)))
      return rc;
    n->res = &k[0]->res->children[n->idx]; /* struct children are row-aligned */
    n->scalar = k[0]->scalar;
    return ED_OK;
  case N_LIT:
    n->scalar = true;
    if (n->out_ready && n->out.len == 1) {
      n->res = &n->out;
      return ED_OK;
    }
    if ((rc = out_begin(n, 1)))
      return rc;
    if (n->null_lit)
      return sm_col_append_null(&n->out);
    switch (n->lit_kind) {
    case SM_STRING:
      return sm_col_append_str(&n->out, n->ls, n->lsn);
    case SM_BOOLEAN:
      return sm_col_append_bool(&n->out, n->li != 0);
    case SM_INT:
    case SM_DATE:
      return sm_col_append_i32(&n->out, (int32_t)n->li);
    case SM_DOUBLE:
      return sm_col_append_f64(&n->out, n->ld);
    default:
      return sm_col_append_i64(&n->out, n->li);
    }
  case N_NOW:
  case N_TODAY:
    n->scalar = true;
    if ((rc = out_begin(n, 1)))
      return rc;
    return n->op == N_NOW ? sm_col_append_i64(&n->out, now)
                          : sm_col_append_i32(&n->out, (int32_t)ed_floordiv(now, ED_US_PER_DAY));
  default:
    break;
  }
  /* an operator over scalars only is a scalar: one row */
  bool all_scalar = n->nkids > 0;
  for (size_t i = 0; i < n->nkids; i++)
    all_scalar = all_scalar && k[i]->scalar;
  size_t m = all_scalar ? 1 : rows;
  n->scalar = all_scalar;
  if ((rc = out_begin(n, m)))
    return rc;
  sm_col_t *o = &n->out;
  switch (n->op) {
  case N_NEG:
    for (size_t i = 0; i < m; i++) {
      const sm_col_t *a = k[0]->res;
      size_t ia = IX(k[0], i);
      switch (n->type->kind) {
      case SM_INT:
        o->v.i32[i] = (int32_t)(0u - (uint32_t)a->v.i32[ia]);
        break;
      case SM_BIGINT:
        o->v.i64[i] = (int64_t)(0u - (uint64_t)a->v.i64[ia]);
        break;
      case SM_FLOAT:
        o->v.f32[i] = -a->v.f32[ia];
        break;
      default:
        o->v.f64[i] = -a->v.f64[ia];
      }
      o->valid[i] = a->valid[ia];
    }
    o->len = m;
    return ED_OK;
  case N_ARITH:
    return eval_arith(n, m);
  case N_CMP: {
    const sm_col_t *a = k[0]->res, *c = k[1]->res;
    for (size_t i = 0; i < m; i++) {
      size_t ia = IX(k[0], i), ic = IX(k[1], i);
      uint8_t ok = a->valid[ia] & c->valid[ic];
      int r = ok ? cmp_row(a, ia, c, ic) : 0;
      bool v = n->sub == C_EQ   ? r == 0
               : n->sub == C_NE ? r != 0
               : n->sub == C_LT ? r < 0
               : n->sub == C_LE ? r <= 0
               : n->sub == C_GT ? r > 0
                                : r >= 0;
      o->v.b8[i] = ok && v;
      o->valid[i] = ok;
    }
    o->len = m;
    return ED_OK;
  }
  case N_AND:
  case N_OR: {
    /* three-valued: FALSE AND NULL = FALSE, TRUE OR NULL = TRUE */
    const sm_col_t *a = k[0]->res, *c = k[1]->res;
    bool is_and = n->op == N_AND;
    for (size_t i = 0; i < m; i++) {
      size_t ia = IX(k[0], i), ic = IX(k[1], i);
      int x = a->valid[ia] ? a->v.b8[ia] : -1, y = c->valid[ic] ? c->v.b8[ic] : -1;
      int r;
      if (is_and)
        r = (x == 0 || y == 0) ? 0 : (x < 0 || y < 0) ? -1 : 1;
      else
        r = (x == 1 || y == 1) ? 1 : (x < 0 || y < 0) ? -1 : 0;
      o->valid[i] = r >= 0;
      o->v.b8[i] = r == 1;
    }
    o->len = m;
    return ED_OK;
  }
  case N_NOT: {
    const sm_col_t *a = k[0]->res;
    for (size_t i = 0; i < m; i++) {
      size_t ia = IX(k[0], i);
      o->valid[i] = a->valid[ia];
      o->v.b8[i] = a->valid[ia] && !a->v.b8[ia];
    }
    o->len = m;
    return ED_OK;
  }
  case N_ISNULL:
  case N_ISNOTNULL: {
    const sm_col_t *a = k[0]->res;
    for (size_t i = 0; i < m; i++) {
      o->valid[i] = 1;
      o->v.b8[i] = (a->valid[IX(k[0], i)] == 0) == (n->op == N_ISNULL);
    }
    o->len = m;
    return ED_OK;
  }
  case N_CAST:
  case N_TODATE:
    if (sm_type_equal(k[0]->type, n->type)) {
      n->res = k[0]->res; /* nothing to do: pass the column through */
      return ED_OK;
    }
    for (size_t i = 0; i < m; i++)
      if ((rc = cast_row(k[0]->res, IX(k[0], i), o)))
        return rc;
    return ED_OK;
  case N_DFMT: {
    const sm_col_t *a = k[0]->res;
    char buf[512];
    for (size_t i = 0; i < m; i++) {
      size_t ia = IX(k[0], i);
      if (!a->valid[ia]) {
        if ((rc = sm_col_append_null(o)))
          return rc;
        continue;
      }
      size_t len = fmt_pattern(a->v.i64[ia], k[1]->ls, k[1]->lsn, buf, sizeof buf);
      if ((rc = sm_col_append_str(o, buf, len)))
        return rc;
    }
    return ED_OK;
  }
  case N_LOWER:
  case N_UPPER: {
    const sm_col_t *a = k[0]->res;
    bool up = n->op == N_UPPER;
    for (size_t i = 0; i < m; i++) {
      size_t ia = IX(k[0], i);
      if (!a->valid[ia]) {
        if ((rc = sm_col_append_null(o)))
          return rc;
        continue;
      }
      size_t len;
      const char *p = sm_col_str(a, ia, &len);
      size_t at = o->data_len;
      if ((rc = sm_col_append_str(o, p, len)))
        return rc;
      for (size_t j = 0; j < len; j++) {
        char c = o->data[at + j];
        o->data[at + j] = (char)(up ? toupper((unsigned char)c) : tolower((unsigned char)c));
      }
    }
    return ED_OK;
  }
  case N_COALESCE:
  case N_CASE: {
    size_t nk = n->nkids;
    for (size_t i = 0; i < m; i++) {
      const node_t *pick = NULL;
      if (n->op == N_COALESCE) {
        for (size_t j = 0; j < nk && !pick; j++)
          if (k[j]->res->valid[IX(k[j], i)])
            pick = k[j];
      } else {
        size_t pairs = n->has_else ? (nk - 1) / 2 : nk / 2;
        for (size_t j = 0; j < pairs && !pick; j++) {
          const sm_col_t *w = k[2 * j]->res;
          size_t iw = IX(k[2 * j], i);
          if (w->valid[iw] && w->v.b8[iw])
            pick = k[2 * j + 1];
        }
        if (!pick && n->has_else)
          pick = k[nk - 1];
      }
      rc = pick ? sm_col_append_from(o, pick->res, IX(pick, i)) : sm_col_append_null(o);
      if (rc)
        return rc;
    }
    return ED_OK;
  }
  default:
    return ED_E_INTERNAL;
  }
}

ed_code_t sm_expr_eval(sm_expr_t *e, const sm_batch_t *b, int64_t now_us, sm_col_t *out,
                       ed_err_t *err) {
  sm_col_reset(out);
  return sm_expr_eval_append(e, b, now_us, out, err);
}

ed_code_t sm_expr_eval_append(sm_expr_t *e, const sm_batch_t *b, int64_t now_us, sm_col_t *out,
                              ed_err_t *err) {
  if (!e->schema || b->schema->nfields != e->schema->nfields)
    return ed_err_set(err, ED_E_INVALID, "expr: '%s' is not bound to this batch's schema", e->text);
  ed_code_t rc = eval_node(e->root, b, now_us);
  if (rc)
    return ed_err_set(err, rc, "expr: out of memory");
  const node_t *r = e->root;
  size_t n = b->nrows, vs = sm_kind_value_size(out->type->kind);
  if (vs && r->res->type->kind == out->type->kind) {
    /* fixed-width values: copied (or, for a scalar, repeated) in bulk; a
     * null row's value is 0, as sm_col_append_null leaves it */
    if ((rc = sm_col_grow(out, n)))
      return ed_err_set(err, rc, "expr: out of memory");
    const char *src = (const char *)r->res->v.i64;
    char *dst = (char *)out->v.i64 + out->len * vs;
    uint8_t *valid = out->valid + out->len;
    if (r->scalar) {
      bool ok = r->res->valid[0];
      memset(valid, ok, n);
      for (size_t i = 0; i < n; i++)
        memcpy(dst + i * vs, src, vs);
      if (!ok)
        memset(dst, 0, n * vs);
    } else {
      memcpy(valid, r->res->valid, n);
      memcpy(dst, src, n * vs);
      for (size_t i = 0; i < n; i++)
        if (!valid[i])
          memset(dst + i * vs, 0, vs);
    }
    out->len += n;
    return ED_OK;
  }
  for (size_t i = 0; i < n; i++)
    if ((rc = sm_col_append_from(out, r->res, r->scalar ? 0 : i)))
      return ed_err_set(err, rc, "expr: out of memory");
  return ED_OK;
}

ed_code_t sm_expr_filter(sm_expr_t *e, const sm_batch_t *b, int64_t now_us, uint8_t *sel,
                         size_t *nsel, ed_err_t *err) {
  if (!e->schema || !e->root->type || e->root->type->kind != SM_BOOLEAN)
    return ed_err_set(err, ED_E_SCHEMA, "expr: a filter must be BOOLEAN, '%s' is %s", e->text,
                      e->root->type ? sm_kind_name(e->root->type->kind) : "not bound");
  ed_code_t rc = eval_node(e->root, b, now_us);
  if (rc)
    return ed_err_set(err, rc, "expr: out of memory");
  const node_t *r = e->root;
  size_t cnt = 0;
  for (size_t i = 0; i < b->nrows; i++) {
    size_t j = r->scalar ? 0 : i;
    sel[i] = r->res->valid[j] && r->res->v.b8[j];
    cnt += sel[i];
  }
  if (nsel)
    *nsel = cnt;
  return ED_OK;
}
