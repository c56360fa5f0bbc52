/* expr: parser, binder and batch evaluator for derived columns and filters
 * (see expr.h). Binding inserts the implicit casts Spark would, so every
 * operator evaluates children of one type; each node evaluates a whole batch
 * into its own scratch column (or is a one-row scalar: literals,
 * current_timestamp), reset and reused between batches. */
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
#include "stream/schema.h"

typedef enum {
  N_COL,
  N_FIELD,
  N_LIT,
  N_NOW,
  N_TODAY,
  N_NEG,
  N_ARITH,
  N_CMP,
  N_AND,
  N_OR,
  N_NOT,
  N_ISNULL,
  N_ISNOTNULL,
  N_CAST,
  N_TODATE,
  N_DFMT,
  N_COALESCE,
  N_LOWER,
  N_UPPER,
  N_CASE,
} nop_t;

typedef struct node node_t;
struct node {
  nop_t op;
  int sub;    /* ARITH: + - * / % ; CMP: EQ NE LT LE GT GE */
  size_t pos; /* 0-based offset in the text */
  node_t **kids;
  size_t nkids;
  unsigned height;    /* levels below: 0 for a leaf */
  char *name;         /* COL, FIELD */
  bool has_else;      /* CASE: kids = when, then, ..., [else] */
  sm_type_t *cast_to; /* CAST target (owned) */
  bool null_lit;      /* the NULL literal: takes the type its context needs */
  sm_kind_t lit_kind;
  int64_t li;
  double ld;
  char *ls;
  size_t lsn;
  /* bound */
  const sm_type_t *type;
  int idx; /* COL/FIELD: field index */
  sm_col_t out;
  bool out_ready;
  const sm_col_t *res;
  bool scalar;
};

struct sm_expr {
  char *text;
  node_t *root;
  const sm_type_t *schema;
};

enum { A_ADD, A_SUB, A_MUL, A_DIV, A_MOD };
enum { C_EQ, C_NE, C_LT, C_LE, C_GT, C_GE };

static const sm_type_t scalar_types[] = {
    {SM_STRING, 0, NULL, NULL, false},    {SM_BINARY, 0, NULL, NULL, false},
    {SM_BOOLEAN, 0, NULL, NULL, false},   {SM_INT, 0, NULL, NULL, false},
    {SM_BIGINT, 0, NULL, NULL, false},    {SM_FLOAT, 0, NULL, NULL, false},
    {SM_DOUBLE, 0, NULL, NULL, false},    {SM_DATE, 0, NULL, NULL, false},
    {SM_TIMESTAMP, 0, NULL, NULL, false},
};
static const sm_type_t *T(sm_kind_t k) { return &scalar_types[k]; }

static void node_free(node_t *n) {
  if (!n)
    return;
  for (size_t i = 0; i < n->nkids; i++)
    node_free(n->kids[i]);
  free(n->kids);
  free(n->name);
  free(n->ls);
  sm_type_free(n->cast_to);
  if (n->out_ready)
    sm_col_fini(&n->out);
  free(n);
}

/* ---- lexer and parser ---- */

typedef enum { K_END, K_NUM, K_STR, K_ID, K_QID, K_OP } tkind_t;

/* Nesting is what recursion in the parser costs: parentheses, function and
 * CAST/CASE arguments (each a p_expr) and prefix operators (- and NOT) count;
 * operands side by side (a + b + c) do not, they are a loop. */
#define MAX_DEPTH 200
/* Binding and evaluating walk the tree recursively, a chain (a + b + c ...)
 * one level per operator: bounded so the C stack is (measured: 100,000 levels
 * fit in 8 MiB, 300,000 do not, without sanitizers). */
#define MAX_HEIGHT 10000

typedef struct {
  const char *s;
  size_t n, i;
  tkind_t k;
  size_t tpos, tlen;
  ed_err_t *err;
  unsigned depth; /* p_expr and prefix calls open on the C stack */
} lex_t;

/* Parse and bind errors name the 1-based offset in the expression text. */
static ed_code_t pos_err(ed_err_t *err, ed_code_t code, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static ed_code_t pos_err(ed_err_t *err, ed_code_t code, size_t pos, const char *fmt, ...) {
  char m[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(m, sizeof m, fmt, ap);
  va_end(ap);
  return ed_err_set(err, code, "expr: at %zu: %s", pos + 1, m);
}
#define perr(l, pos, ...) pos_err((l)->err, ED_E_PARSE, (pos), __VA_ARGS__)

static ed_code_t lex_next(lex_t *l) {
  while (l->i < l->n && isspace((unsigned char)l->s[l->i]))
    l->i++;
  l->tpos = l->i;
  if (l->i >= l->n) {
    l->k = K_END;
    l->tlen = 0;
    return ED_OK;
  }
  const char *s = l->s;
  char c = s[l->i];
  size_t j = l->i;
  if (isdigit((unsigned char)c) || (c == '.' && j + 1 < l->n && isdigit((unsigned char)s[j + 1]))) {
    while (j < l->n && isdigit((unsigned char)s[j]))
      j++;
    if (j < l->n && s[j] == '.') {
      j++;
      while (j < l->n && isdigit((unsigned char)s[j]))
        j++;
    }
    if (j < l->n && (s[j] == 'e' || s[j] == 'E')) {
      size_t e = j + 1;
      if (e < l->n && (s[e] == '+' || s[e] == '-'))
        e++;
      if (e < l->n && isdigit((unsigned char)s[e])) {
        j = e;
        while (j < l->n && isdigit((unsigned char)s[j]))
          j++;
      }
    }
    if (j < l->n && (s[j] == 'L' || s[j] == 'l' || s[j] == 'D' || s[j] == 'd'))
      j++;
    l->k = K_NUM;
  } else if (isalpha((unsigned char)c) || c == '_') {
    while (j < l->n && (isalnum((unsigned char)s[j]) || s[j] == '_'))
      j++;
    l->k = K_ID;
  } else if (c == '\'' || c == '"' || c == '`') {
    j++;
    for (;;) {
      if (j >= l->n)
        return perr(l, l->i, c == '`' ? "unterminated `name`" : "unterminated string");
      if (s[j] == '\\' && c != '`' && j + 1 < l->n) {
        j += 2;
        continue;
      }
      if (s[j] == c) {
        if (j + 1 < l->n && s[j + 1] == c) {
          j += 2;
          continue;
        }
        j++;
        break;
      }
      j++;
    }
    l->k = c == '`' ? K_QID : K_STR;
  } else {
    static const char *const ops[] = {"<=", ">=", "<>", "!=", "==", "(", ")", ",", ".",
                                      "+",  "-",  "*",  "/",  "%",  "=", "<", ">"};
    size_t len = 0;
    for (size_t k = 0; k < sizeof ops / sizeof ops[0] && !len; k++) {
      size_t ol = strlen(ops[k]);
      if (l->i + ol <= l->n && strncmp(s + l->i, ops[k], ol) == 0)
        len = ol;
    }
    if (!len)
      return perr(l, l->i, "unexpected character '%c'", c);
    j = l->i + len;
    l->k = K_OP;
  }
  l->tlen = j - l->i;
  l->i = j;
  return ED_OK;
}

static bool is_op(lex_t *l, const char *op) {
  return l->k == K_OP && l->tlen == strlen(op) && strncmp(l->s + l->tpos, op, l->tlen) == 0;
}
static bool is_kw(lex_t *l, const char *kw) {
  return l->k == K_ID && l->tlen == strlen(kw) && strncasecmp(l->s + l->tpos, kw, l->tlen) == 0;
}
static ed_code_t expect_op(lex_t *l, const char *op) {
  if (!is_op(l, op))
    return perr(l, l->tpos, "expected '%s'", op);
  return lex_next(l);
}

static node_t *mk(nop_t op, size_t pos) {
  node_t *n = calloc(1, sizeof *n);
  if (n) {
    n->op = op;
    n->pos = pos;
    n->idx = -1;
  }
  return n;
}

static ed_code_t add_kid(lex_t *l, node_t *n, node_t *k) {
  node_t **p = realloc(n->kids, (n->nkids + 1) * sizeof *p);
  if (!p) {
    node_free(k);
    return ed_err_set(l->err, ED_E_NOMEM, "expr: out of memory");
  }
  n->kids = p;
  n->kids[n->nkids++] = k;
  if (k->height + 1 > n->height)
    n->height = k->height + 1;
  if (n->height > MAX_HEIGHT)
    return perr(l, n->pos,
                "more than %d operations chained in one expression: expected fewer "
                "(split it into several derived columns)",
                MAX_HEIGHT);
  return ED_OK;
}

static ed_code_t p_expr(lex_t *l, node_t **out);

/* unquoted text of a string or `name` token (doubled quotes and \x undone) */
static char *tok_text(lex_t *l, size_t *len) {
  const char *s = l->s + l->tpos + 1;
  size_t n = l->tlen - 2;
  char q = s[-1];
  char *o = malloc(n + 1);
  if (!o)
    return NULL;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '\\' && q != '`' && i + 1 < n) {
      char c = s[++i];
      o[k++] = c == 'n' ? '\n' : c == 't' ? '\t' : c;
    } else if (s[i] == q && i + 1 < n && s[i + 1] == q) {
      o[k++] = q;
      i++;
    } else {
      o[k++] = s[i];
    }
  }
  o[k] = '\0';
  if (len)
    *len = k;
  return o;
}

static ed_code_t p_args(lex_t *l, node_t *n, size_t min, size_t max, const char *fname) {
  size_t at = l->tpos;
  ed_code_t rc = expect_op(l, "(");
  if (rc)
    return rc;
  if (!is_op(l, ")"))
    for (;;) {
      node_t *a = NULL;
      if ((rc = p_expr(l, &a))) {
        node_free(a);
        return rc;
      }
      if ((rc = add_kid(l, n, a)))
        return rc;
      if (!is_op(l, ","))
        break;
      if ((rc = lex_next(l)))
        return rc;
    }
  if ((rc = expect_op(l, ")")))
    return rc;
  if (n->nkids < min || n->nkids > max)
    return perr(l, at, "%s takes %zu%s argument%s", fname, min,
                max == min        ? ""
                : max == SIZE_MAX ? " or more"
                                  : " or 1",
                min == 1 && max == 1 ? "" : "s");
  return ED_OK;
}

/* A number: INT, BIGINT (past INT's range, or an L suffix) or DOUBLE (a
 * fraction, an exponent or a D suffix). */
static ed_code_t p_number(lex_t *l, size_t pos, node_t **out) {
  node_t *n = mk(N_LIT, pos);
  if (!n)
    return ed_err_set(l->err, ED_E_NOMEM, "expr: out of memory");
  char buf[64];
  size_t len = l->tlen < sizeof buf ? l->tlen : sizeof buf - 1;
  memcpy(buf, l->s + l->tpos, len);
  buf[len] = '\0';
  char last = buf[len - 1];
  bool is_long = last == 'L' || last == 'l', is_dbl = last == 'D' || last == 'd';
  if (is_long || is_dbl)
    buf[--len] = '\0';
  if (!is_dbl && !strpbrk(buf, ".eE")) {
    errno = 0;
    char *end;
    long long v = strtoll(buf, &end, 10);
    if (errno || *end) {
      node_free(n);
      return perr(l, pos, "integer literal out of range");
    }
    n->li = v;
    n->lit_kind = is_long || v > INT32_MAX ? SM_BIGINT : SM_INT;
  } else {
    if (is_long) {
      node_free(n);
      return perr(l, pos, "expected an integer before L");
    }
    n->ld = strtod(buf, NULL);
    n->lit_kind = SM_DOUBLE;
  }
  *out = n;
  return lex_next(l);
}

/* A string literal. */
static ed_code_t p_string(lex_t *l, size_t pos, node_t **out) {
  node_t *n = mk(N_LIT, pos);
  if (!n || !(n->ls = tok_text(l, &n->lsn))) {
    node_free(n);
    return ed_err_set(l->err, ED_E_NOMEM, "expr: out of memory");
  }
  n->lit_kind = SM_STRING;
  *out = n;
  return lex_next(l);
}

/* TRUE, FALSE or NULL. */
static ed_code_t p_bool_null(lex_t *l, size_t pos, node_t **out) {
  node_t *n = mk(N_LIT, pos);
  if (!n)
    return ed_err_set(l->err, ED_E_NOMEM, "expr: out of memory");
  n->lit_kind = SM_BOOLEAN;
  n->li = is_kw(l, "TRUE");
  n->null_lit = is_kw(l, "NULL");
  *out = n;
  return lex_next(l);
}

/* DATE 'yyyy-mm-dd' or TIMESTAMP '...'; leaves *out NULL (and l where it was)
 * when no string follows: then it is a column named date. */
static ed_code_t p_date_time(lex_t *l, size_t pos, node_t **out) {
  ed_code_t rc;
  bool ts = is_kw(l, "TIMESTAMP");
  lex_t save = *l;
  if ((rc = lex_next(l)))
    return rc;
  if (l->k == K_STR) {
    node_t *n = mk(N_LIT, pos);
    if (!n || !(n->ls = tok_text(l, &n->lsn))) {
      node_free(n);
      return ed_err_set(l->err, ED_E_NOMEM, "expr: out of memory");
    }
    int64_t us;
    if (ed_time_parse_iso(n->ls, n->lsn, &us, NULL)) {
      node_free(n);
      return perr(l, l->tpos, "invalid %s literal", ts ? "TIMESTAMP" : "DATE");
    }
    free(n->ls);
    n->ls = NULL;
    n->lit_kind = ts ? SM_TIMESTAMP : SM_DATE;
    n->li = ts ? us : ed_floordiv(us, ED_US_PER_DAY);
    *out = n;
    return lex_next(l);
  }
  *l = save; /* a column named date */
  return ED_OK;
}

/* CAST(expr AS type). */
static ed_code_t p_cast(lex_t *l, size_t pos, node_t **out) {
  ed_code_t rc;
  node_t *n = mk(N_CAST, pos);
  if (!n)
    return ed_err_set(l->err, ED_E_NOMEM, "expr: out of memory");
  node_t *a = NULL;
  if ((rc = lex_next(l)) || (rc = expect_op(l, "(")) || (rc = p_expr(l, &a))) {
    node_free(a);
    node_free(n);
    return rc;
  }
  if ((rc = add_kid(l, n, a))) {
    node_free(n);
    return rc;
  }
  if (!is_kw(l, "AS")) {
    node_free(n);
    return perr(l, l->tpos, "expected AS");
  }
  if ((rc = lex_next(l))) {
    node_free(n);
    return rc;
  }
  /* the type runs to the matching ')' */
  size_t tstart = l->tpos;
  size_t j = tstart;
  int angle = 0;
  while (j < l->n && (angle > 0 || l->s[j] != ')')) {
    angle += l->s[j] == '<' ? 1 : l->s[j] == '>' ? -1 : 0;
    j++;
  }
  ed_err_t te = {0};
  if (sm_schema_parse_type(l->s + tstart, j - tstart, &n->cast_to, &te)) {
    node_free(n);
    return perr(l, tstart, "expected a type after AS");
  }
  l->i = j;
  if ((rc = lex_next(l)) || (rc = expect_op(l, ")"))) {
    node_free(n);
    return rc;
  }
  *out = n;
  return ED_OK;
}

/* CASE [subject] WHEN .. THEN .. [ELSE ..] END. */
static ed_code_t p_case(lex_t *l, size_t pos, node_t **out) {
  ed_code_t rc;
  node_t *n = mk(N_CASE, pos), *subject = NULL;
  if (!n)
    return ed_err_set(l->err, ED_E_NOMEM, "expr: out of memory");
  if ((rc = lex_next(l)))
    goto case_fail;
  if (!is_kw(l, "WHEN") && (rc = p_expr(l, &subject)))
    goto case_fail;
  if (!is_kw(l, "WHEN")) {
    rc = perr(l, l->tpos, "expected WHEN");
    goto case_fail;
  }
  while (is_kw(l, "WHEN")) {
    node_t *w = NULL, *t = NULL;
    size_t wpos = l->tpos;
    if ((rc = lex_next(l)) || (rc = p_expr(l, &w))) {
      node_free(w);
      goto case_fail;
    }
    if (subject) { /* CASE x WHEN v: x = v */
      node_t *eq = mk(N_CMP, wpos), *sc = NULL;
      if (!eq) {
        node_free(w);
        rc = ed_err_set(l->err, ED_E_NOMEM, "expr: out of memory");
        goto case_fail;
      }
      eq->sub = C_EQ;
      /* re-parse the subject text for each WHEN: nodes are not shared */
      lex_t sl = *l;
      sl.i = subject->pos;
      if ((rc = lex_next(&sl)) || (rc = p_expr(&sl, &sc))) {
        node_free(sc);
        node_free(w);
        node_free(eq);
        goto case_fail;
      }
      if ((rc = add_kid(l, eq, sc))) {
        node_free(w);
        node_free(eq);
        goto case_fail;
      }
      if ((rc = add_kid(l, eq, w))) {
        node_free(eq);
        goto case_fail;
      }
      w = eq;
    }
    if ((rc = add_kid(l, n, w)))
      goto case_fail;
    if (!is_kw(l, "THEN")) {
      rc = perr(l, l->tpos, "expected THEN");
      goto case_fail;
    }
    if ((rc = lex_next(l)) || (rc = p_expr(l, &t))) {
      node_free(t);
      goto case_fail;
    }
    if ((rc = add_kid(l, n, t)))
      goto case_fail;
  }
  if (is_kw(l, "ELSE")) {
    node_t *e = NULL;
    if ((rc = lex_next(l)) || (rc = p_expr(l, &e))) {
      node_free(e);
      goto case_fail;
    }
    if ((rc = add_kid(l, n, e)))
      goto case_fail;
    n->has_else = true;
  }
  if (!is_kw(l, "END")) {
    rc = perr(l, l->tpos, "expected END");
    goto case_fail;
  }
  node_free(subject);
  *out = n;
  return lex_next(l);
case_fail:
  node_free(subject);
  node_free(n);
  return rc;
}

/* A call of a known function (current_timestamp also without parentheses);
 * leaves *out NULL (and l where it was) for a function's name used as a
 * column. */
static ed_code_t p_call(lex_t *l, size_t pos, node_t **out) {
  ed_code_t rc;
  static const struct {
    const char *name;
    nop_t op;
    size_t min, max;
  } fns[] = {
      {"current_timestamp", N_NOW, 0, 0}, {"now", N_NOW, 0, 0},
      {"current_date", N_TODAY, 0, 0},    {"to_date", N_TODATE, 1, 1},
      {"date_format", N_DFMT, 2, 2},      {"coalesce", N_COALESCE, 1, SIZE_MAX},
      {"lower", N_LOWER, 1, 1},           {"lcase", N_LOWER, 1, 1},
      {"upper", N_UPPER, 1, 1},           {"ucase", N_UPPER, 1, 1},
  };
  for (size_t f = 0; f < sizeof fns / sizeof fns[0]; f++)
    if (is_kw(l, fns[f].name)) {
      lex_t save = *l;
      if ((rc = lex_next(l)))
        return rc;
      if (!is_op(l, "(")) {
        if (fns[f].op == N_NOW || fns[f].op == N_TODAY) { /* current_timestamp */
          *out = mk(fns[f].op, pos);
          return *out ? ED_OK : ed_err_set(l->err, ED_E_NOMEM, "expr: out of memory");
        }
        *l = save; /* a column with a function's name */
        return ED_OK;
      }
      node_t *n = mk(fns[f].op, pos);
      if (!n)
        return ed_err_set(l->err, ED_E_NOMEM, "expr: out of memory");
      if ((rc = p_args(l, n, fns[f].min, fns[f].max, fns[f].name))) {
        node_free(n);
        return rc;
      }
      *out = n;
      return ED_OK;
    }
  return ED_OK;
}

/* A column, then any .field accesses. */
static ed_code_t p_column(lex_t *l, size_t pos, node_t **out) {
  ed_code_t rc;
  node_t *n = mk(N_COL, pos);
  if (!n)
    return ed_err_set(l->err, ED_E_NOMEM, "expr: out of memory");
  n->name = l->k == K_QID ? tok_text(l, NULL) : strndup(l->s + l->tpos, l->tlen);
  if (!n->name) {
    node_free(n);
    return ed_err_set(l->err, ED_E_NOMEM, "expr: out of memory");
  }
  if ((rc = lex_next(l))) {
    node_free(n);
    return rc;
  }
  while (is_op(l, ".")) {
    if ((rc = lex_next(l))) {
      node_free(n);
      return rc;
    }
    if (l->k != K_ID && l->k != K_QID) {
      node_free(n);
      return perr(l, l->tpos, "expected a field name after '.'");
    }
    node_t *f = mk(N_FIELD, l->tpos);
    if (!f || (rc = add_kid(l, f, n))) {
      if (!f)
        node_free(n);
      node_free(f);
      return ed_err_set(l->err, ED_E_NOMEM, "expr: out of memory");
    }
    f->name = l->k == K_QID ? tok_text(l, NULL) : strndup(l->s + l->tpos, l->tlen);
    n = f;
    if (!n->name || (rc = lex_next(l))) {
      node_free(n);
      return rc ? rc : ed_err_set(l->err, ED_E_NOMEM, "expr: out of memory");
    }
  }
  *out = n;
  return ED_OK;
}

/* A name: a keyword literal, CAST, CASE, a function call or a column. */
static ed_code_t p_name(lex_t *l, size_t pos, node_t **out) {
  ed_code_t rc;
  if (l->k == K_ID) {
    if (is_kw(l, "TRUE") || is_kw(l, "FALSE") || is_kw(l, "NULL"))
      return p_bool_null(l, pos, out);
    if ((is_kw(l, "DATE") || is_kw(l, "TIMESTAMP")) && ((rc = p_date_time(l, pos, out)) || *out))
      return rc;
    if (is_kw(l, "CAST"))
      return p_cast(l, pos, out);
    if (is_kw(l, "CASE"))
      return p_case(l, pos, out);
    if ((rc = p_call(l, pos, out)) || *out)
      return rc;
    /* an unknown name followed by '(' is an unknown function */
    lex_t peek = *l;
    if (lex_next(&peek) == ED_OK && is_op(&peek, "("))
      return perr(l, pos, "unknown function '%.*s'", (int)l->tlen, l->s + l->tpos);
    static const char *const reserved[] = {"AND",  "OR",   "NOT",  "IS",  "AS",
                                           "WHEN", "THEN", "ELSE", "END", "IN"};
    for (size_t r = 0; r < sizeof reserved / sizeof reserved[0]; r++)
      if (is_kw(l, reserved[r]))
        return perr(l, pos, "expected a value, got '%s'", reserved[r]);
  }
  return p_column(l, pos, out);
}

static ed_code_t p_primary(lex_t *l, node_t **out) {
  size_t pos = l->tpos;
  *out = NULL;
  if (l->k == K_NUM)
    return p_number(l, pos, out);
  if (l->k == K_STR)
    return p_string(l, pos, out);
  if (is_op(l, "(")) {
    ed_code_t rc;
    if ((rc = lex_next(l)) || (rc = p_expr(l, out)))
      return rc;
    return expect_op(l, ")");
  }
  if (l->k == K_QID || l->k == K_ID)
    return p_name(l, pos, out);
  if (l->k == K_END)
    return perr(l, pos, "expected a value, got the end");
  return perr(l, pos, "expected a value, got '%.*s'", (int)l->tlen, l->s + l->tpos);
}

typedef ed_code_t (*pfn_t)(lex_t *, node_t **);

/* At a prefix operator (the current token): its operand by operand(), under
 * a new op node in *out. */
static ed_code_t prefix(lex_t *l, nop_t op, pfn_t operand, node_t **out) {
  size_t pos = l->tpos;
  node_t *a = NULL;
  if (++l->depth > MAX_DEPTH)
    return perr(l, pos, "nested deeper than %d", MAX_DEPTH);
  ed_code_t rc = lex_next(l);
  if (!rc)
    rc = operand(l, &a);
  l->depth--;
  if (rc) {
    node_free(a);
    return rc;
  }
  node_t *n = mk(op, pos);
  if (!n) {
    node_free(a);
    return ed_err_set(l->err, ED_E_NOMEM, "expr: out of memory");
  }
  *out = n;
  return add_kid(l, n, a);
}

static ed_code_t p_unary(lex_t *l, node_t **out) {
  if (is_op(l, "-"))
    return prefix(l, N_NEG, p_unary, out);
  if (is_op(l, "+")) {
    ed_code_t rc = lex_next(l);
    return rc ? rc : p_unary(l, out);
  }
  return p_primary(l, out);
}

static ed_code_t binary(lex_t *l, node_t **lhs, nop_t op, int sub, size_t pos, node_t *rhs) {
  node_t *n = mk(op, pos);
  if (!n) {
    node_free(rhs);
    return ed_err_set(l->err, ED_E_NOMEM, "expr: out of memory");
  }
  n->sub = sub;
  ed_code_t rc = add_kid(l, n, *lhs);
  *lhs = n;
  if (rc) {
    node_free(rhs);
    return rc;
  }
  return add_kid(l, n, rhs);
}

/* At an infix operator (the current token): its right operand by operand(),
 * and *lhs becomes the op node over both. */
static ed_code_t infix(lex_t *l, node_t **lhs, nop_t op, int sub, pfn_t operand) {
  size_t pos = l->tpos;
  node_t *r = NULL;
  ed_code_t rc;
  if ((rc = lex_next(l)) || (rc = operand(l, &r))) {
    node_free(r);
    return rc;
  }
  return binary(l, lhs, op, sub, pos, r);
}

static ed_code_t p_mul(lex_t *l, node_t **out) {
  ed_code_t rc = p_unary(l, out);
  while (!rc && (is_op(l, "*") || is_op(l, "/") || is_op(l, "%"))) {
    int sub = is_op(l, "*") ? A_MUL : is_op(l, "/") ? A_DIV : A_MOD;
    rc = infix(l, out, N_ARITH, sub, p_unary);
  }
  return rc;
}

static ed_code_t p_add(lex_t *l, node_t **out) {
  ed_code_t rc = p_mul(l, out);
  while (!rc && (is_op(l, "+") || is_op(l, "-"))) {
    int sub = is_op(l, "+") ? A_ADD : A_SUB;
    rc = infix(l, out, N_ARITH, sub, p_mul);
  }
  return rc;
}

/* A parsed, unbound copy of n (IN repeats its left operand); NULL on out of
 * memory. */
static node_t *node_clone(const node_t *n) {
  node_t *c = mk(n->op, n->pos);
  if (!c)
    return NULL;
  c->sub = n->sub, c->has_else = n->has_else, c->null_lit = n->null_lit;
  c->lit_kind = n->lit_kind, c->li = n->li, c->ld = n->ld, c->lsn = n->lsn;
  bool ok = (!n->name || (c->name = strdup(n->name))) && (!n->ls || (c->ls = malloc(n->lsn + 1))) &&
            (!n->cast_to || (c->cast_to = sm_type_clone(n->cast_to)));
  if (ok && n->ls) {
    memcpy(c->ls, n->ls, n->lsn);
    c->ls[n->lsn] = '\0';
  }
  if (ok && n->nkids && !(c->kids = calloc(n->nkids, sizeof *c->kids)))
    ok = false;
  for (size_t i = 0; ok && i < n->nkids; i++) {
    c->kids[i] = node_clone(n->kids[i]);
    c->nkids = i + 1;
    ok = c->kids[i] != NULL;
  }
  if (!ok) {
    node_free(c);
    return NULL;
  }
  return c;
}

/* At IN or NOT IN after the left operand *out: x IN (a, b) is parsed as
 * (x = a) OR (x = b), which gives SQL's NULLs (x IN (a, NULL) is NULL when x
 * is not a), and NOT IN as NOT of that. */
static ed_code_t p_in(lex_t *l, node_t **out, bool neg) {
  size_t pos = l->tpos;
  ed_code_t rc = lex_next(l);
  if (!rc && neg)
    rc = lex_next(l);
  if (!rc && !is_op(l, "("))
    return perr(l, l->tpos, "expected '(' after IN");
  node_t *lhs = *out, *acc = NULL;
  *out = NULL;
  do {
    node_t *item = NULL;
    if (rc || (rc = lex_next(l)) || (rc = p_expr(l, &item))) {
      node_free(item);
      break;
    }
    node_t *x = node_clone(lhs);
    if (!x) {
      node_free(item);
      rc = ed_err_set(l->err, ED_E_NOMEM, "expr: out of memory");
      break;
    }
    if ((rc = binary(l, &x, N_CMP, C_EQ, pos, item))) {
      node_free(x);
      break;
    }
    if (!acc)
      acc = x;
    else if ((rc = binary(l, &acc, N_OR, 0, pos, x)))
      break;
  } while (is_op(l, ","));
  node_free(lhs);
  if (!rc)
    rc = expect_op(l, ")");
  if (!rc && neg) {
    node_t *n = mk(N_NOT, pos);
    if (!n || (rc = add_kid(l, n, acc))) {
      acc = NULL;
      node_free(n);
      rc = rc ? rc : ed_err_set(l->err, ED_E_NOMEM, "expr: out of memory");
    } else {
      acc = n;
    }
  }
  if (rc) {
    node_free(acc);
    return rc;
  }
  *out = acc;
  return ED_OK;
}

static ed_code_t p_cmp(lex_t *l, node_t **out) {
  ed_code_t rc = p_add(l, out);
  if (rc)
    return rc;
  static const struct {
    const char *op;
    int sub;
  } cmps[] = {{"=", C_EQ}, {"==", C_EQ}, {"!=", C_NE}, {"<>", C_NE},
              {"<", C_LT}, {"<=", C_LE}, {">", C_GT},  {">=", C_GE}};
  for (size_t i = 0; i < sizeof cmps / sizeof cmps[0]; i++)
    if (is_op(l, cmps[i].op)) {
      return infix(l, out, N_CMP, cmps[i].sub, p_add);
    }
  lex_t peek = *l;
  bool not_in = is_kw(l, "NOT") && lex_next(&peek) == ED_OK && is_kw(&peek, "IN");
  if (not_in || is_kw(l, "IN"))
    return p_in(l, out, not_in);
  if (is_kw(l, "IS")) {
    size_t pos = l->tpos;
    if ((rc = lex_next(l)))
      return rc;
    bool neg = is_kw(l, "NOT");
    if (neg && (rc = lex_next(l)))
      return rc;
    if (!is_kw(l, "NULL"))
      return perr(l, l->tpos, "expected NULL after IS%s", neg ? " NOT" : "");
    node_t *n = mk(neg ? N_ISNOTNULL : N_ISNULL, pos);
    if (!n)
      return ed_err_set(l->err, ED_E_NOMEM, "expr: out of memory");
    rc = add_kid(l, n, *out);
    *out = n;
    return rc ? rc : lex_next(l);
  }
  return ED_OK;
}

static ed_code_t p_not(lex_t *l, node_t **out) {
  if (is_kw(l, "NOT") || is_op(l, "!"))
    return prefix(l, N_NOT, p_not, out);
  return p_cmp(l, out);
}

static ed_code_t p_and(lex_t *l, node_t **out) {
  ed_code_t rc = p_not(l, out);
  while (!rc && is_kw(l, "AND")) {
    rc = infix(l, out, N_AND, 0, p_not);
  }
  return rc;
}

static ed_code_t p_expr(lex_t *l, node_t **out) {
  *out = NULL;
  if (++l->depth > MAX_DEPTH)
    return perr(l, l->tpos, "nested deeper than %d", MAX_DEPTH);
  ed_code_t rc = p_and(l, out);
  while (!rc && is_kw(l, "OR")) {
    rc = infix(l, out, N_OR, 0, p_and);
  }
  l->depth--;
  return rc;
}

ed_code_t sm_expr_parse(const char *text, sm_expr_t **out, ed_err_t *err) {
  *out = NULL;
  sm_expr_t *e = calloc(1, sizeof *e);
  if (!e || !(e->text = strdup(text))) {
    free(e);
    return ed_err_set(err, ED_E_NOMEM, "expr: out of memory");
  }
  lex_t l = {e->text, strlen(e->text), 0, K_END, 0, 0, err, 0};
  ed_code_t rc = lex_next(&l);
  if (!rc)
    rc = p_expr(&l, &e->root);
  if (!rc && l.k != K_END)
    rc = perr(&l, l.tpos, "expected an operator or the end, got '%.*s'", (int)l.tlen, l.s + l.tpos);
  if (rc) {
    sm_expr_free(e);
    return rc;
  }
  *out = e;
  return ED_OK;
}

void sm_expr_free(sm_expr_t *e) {
  if (!e)
    return;
  node_free(e->root);
  free(e->text);
  free(e);
}

const sm_type_t *sm_expr_type(const sm_expr_t *e) { return e->root ? e->root->type : NULL; }

/* ---- binding ---- */

typedef struct {
  const sm_type_t *schema;
  const char *text;
  ed_err_t *err;
} bind_t;

#define berr(b, pos, ...) pos_err((b)->err, ED_E_SCHEMA, (pos), __VA_ARGS__)

static int num_rank(sm_kind_t k) {
  return k == SM_INT ? 1 : k == SM_BIGINT ? 2 : k == SM_FLOAT ? 3 : k == SM_DOUBLE ? 4 : 0;
}
static bool is_scalar_kind(sm_kind_t k) { return k <= SM_TIMESTAMP; }

static bool castable(sm_kind_t from, sm_kind_t to) {
  if (from == to || to == SM_STRING)
    return is_scalar_kind(from);
  if (from == SM_STRING)
    return is_scalar_kind(to);
  if (from == SM_BINARY || to == SM_BINARY)
    return false;
  bool fn = num_rank(from) || from == SM_BOOLEAN, tn = num_rank(to) || to == SM_BOOLEAN;
  if (fn && tn)
    return true;
  if (from == SM_DATE)
    return to == SM_TIMESTAMP;
  if (from == SM_TIMESTAMP)
    return to == SM_DATE || num_rank(to);
  if (to == SM_TIMESTAMP)
    return num_rank(from) > 0;
  return false;
}

/* Wraps *slot in a CAST to kind k (or retypes a NULL literal). */
static ed_code_t coerce(bind_t *b, node_t **slot, sm_kind_t k) {
  node_t *n = *slot;
  if (n->type->kind == k)
    return ED_OK;
  if (!is_scalar_kind(k)) /* no implicit casts to or between nested types */
    return berr(b, n->pos, "%s where a %s is expected", sm_kind_name(n->type->kind),
                sm_kind_name(k));
  if (n->op == N_LIT && n->null_lit) {
    n->lit_kind = k;
    n->type = T(k);
    return ED_OK;
  }
  node_t *c = mk(N_CAST, n->pos);
  if (!c || !(c->cast_to = sm_type_new(k)) || !(c->kids = malloc(sizeof *c->kids))) {
    node_free(c);
    return ed_err_set(b->err, ED_E_NOMEM, "expr: out of memory");
  }
  c->kids[0] = n;
  c->nkids = 1;
  c->type = T(k);
  *slot = c;
  return ED_OK;
}

/* The type two operands meet at (-1: they do not), for comparisons, CASE
 * branches and coalesce. */
static int common_kind(const node_t *a, const node_t *b, bool cmp) {
  sm_kind_t x = a->type->kind, y = b->type->kind;
  if (a->op == N_LIT && a->null_lit)
    return (int)y;
  if (b->op == N_LIT && b->null_lit)
    return (int)x;
  if (x == y)
    return is_scalar_kind(x) ? (int)x : -1;
  if (num_rank(x) && num_rank(y))
    return (int)(num_rank(x) > num_rank(y) ? x : y);
  if ((x == SM_DATE && y == SM_TIMESTAMP) || (x == SM_TIMESTAMP && y == SM_DATE))
    return SM_TIMESTAMP;
  if (cmp && x == SM_STRING && is_scalar_kind(y) && y != SM_BINARY)
    return (int)y;
  if (cmp && y == SM_STRING && is_scalar_kind(x) && x != SM_BINARY)
    return (int)x;
  if (!cmp && (x == SM_STRING || y == SM_STRING) && is_scalar_kind(x) && is_scalar_kind(y))
    return SM_STRING;
  return -1;
}

static ed_code_t bind_node(bind_t *b, node_t **slot);

static ed_code_t need_kind(bind_t *b, node_t **slot, sm_kind_t k, const char *what) {
  node_t *n = *slot;
  if (n->type->kind == k)
    return ED_OK;
  if (n->op == N_LIT && n->null_lit)
    return coerce(b, slot, k);
  if (n->type->kind == SM_STRING && k != SM_BOOLEAN)
    return coerce(b, slot, k);
  if (k == SM_TIMESTAMP && n->type->kind == SM_DATE)
    return coerce(b, slot, k);
  if (k == SM_STRING && is_scalar_kind(n->type->kind))
    return coerce(b, slot, k);
  return berr(b, n->pos, "%s expects %s, got %s", what, sm_kind_name(k),
              sm_kind_name(n->type->kind));
}

static const char *arith_name(int sub) {
  return sub == A_ADD ? "+" : sub == A_SUB ? "-" : sub == A_MUL ? "*" : sub == A_DIV ? "/" : "%";
}

/* date_format patterns: the letters we implement (Java DateTimeFormatter's). */
static ed_code_t check_pattern(bind_t *b, const node_t *lit) {
  const char *s = lit->ls;
  for (size_t i = 0; i < lit->lsn; i++) {
    char c = s[i];
    if (c == '\'') {
      const char *q = memchr(s + i + 1, '\'', lit->lsn - i - 1);
      if (!q)
        return berr(b, lit->pos, "date_format: unterminated quote in the pattern");
      i = (size_t)(q - s);
    } else if (isalpha((unsigned char)c) && !strchr("yMdHhmsSaEDu", c)) {
      return berr(b, lit->pos, "date_format: unsupported pattern letter '%c'", c);
    }
  }
  return ED_OK;
}

static ed_code_t bind_here(bind_t *b, node_t **slot);

/* The recursion alone, so that a frame on the C stack per level of the tree
 * is a few words: a chain of MAX_HEIGHT operators is that many levels deep,
 * and bind_here's frame is large. */
static ed_code_t bind_node(bind_t *b, node_t **slot) {
  node_t *n = *slot;
  ed_code_t rc;
  for (size_t i = 0; i < n->nkids; i++)
    if ((rc = bind_node(b, &n->kids[i])) != ED_OK)
      return rc;
  return bind_here(b, slot);
}

/* Binds n, its children bound. */
__attribute__((noinline)) static ed_code_t bind_here(bind_t *b, node_t **slot) {
  node_t *n = *slot;
  ed_code_t rc;
  if (n->out_ready) {
    sm_col_fini(&n->out);
    n->out_ready = false;
  }
  node_t **k = n->kids;
  switch (n->op) {
  case N_COL:
    n->idx = sm_type_field_index(b->schema, n->name);
    if (n->idx < 0)
      return berr(b, n->pos, "no column '%s'", n->name);
    n->type = b->schema->fields[n->idx].type;
    break;
  case N_FIELD:
    if (k[0]->type->kind != SM_STRUCT)
      return berr(b, n->pos, "'%s' is a field of a STRUCT, not of %s", n->name,
                  sm_kind_name(k[0]->type->kind));
    n->idx = sm_type_field_index(k[0]->type, n->name);
    if (n->idx < 0)
      return berr(b, n->pos, "no field '%s'", n->name);
    n->type = k[0]->type->fields[n->idx].type;
    break;
  case N_LIT:
    n->type = T(n->lit_kind);
    break;
  case N_NOW:
    n->type = T(SM_TIMESTAMP);
    break;
  case N_TODAY:
    n->type = T(SM_DATE);
    break;
  case N_NEG:
    if (k[0]->type->kind == SM_STRING && (rc = coerce(b, &k[0], SM_DOUBLE)))
      return rc;
    if (!num_rank(k[0]->type->kind))
      return berr(b, n->pos, "cannot negate %s", sm_kind_name(k[0]->type->kind));
    n->type = k[0]->type;
    break;
  case N_ARITH: {
    for (int i = 0; i < 2; i++)
      if ((k[i]->type->kind == SM_STRING || (k[i]->op == N_LIT && k[i]->null_lit)) &&
          (rc = coerce(b, &k[i], SM_DOUBLE)))
        return rc;
    int r0 = num_rank(k[0]->type->kind), r1 = num_rank(k[1]->type->kind);
    if (!r0 || !r1)
      return berr(b, n->pos, "cannot apply '%s' to %s and %s", arith_name(n->sub),
                  sm_kind_name(k[0]->type->kind), sm_kind_name(k[1]->type->kind));
    sm_kind_t ck = r0 >= r1 ? k[0]->type->kind : k[1]->type->kind;
    if (n->sub == A_DIV)
      ck = SM_DOUBLE; /* Spark: / on integers gives DOUBLE */
    if ((rc = coerce(b, &k[0], ck)) || (rc = coerce(b, &k[1], ck)))
      return rc;
    n->type = T(ck);
    break;
  }
  case N_CMP: {
    int ck = common_kind(k[0], k[1], true);
    if (ck < 0 || ck == SM_BINARY || !is_scalar_kind((sm_kind_t)ck))
      return berr(b, n->pos, "cannot compare %s with %s", sm_kind_name(k[0]->type->kind),
                  sm_kind_name(k[1]->type->kind));
    if ((rc = coerce(b, &k[0], (sm_kind_t)ck)) || (rc = coerce(b, &k[1], (sm_kind_t)ck)))
      return rc;
    n->type = T(SM_BOOLEAN);
    break;
  }
  case N_AND:
  case N_OR:
  case N_NOT:
    for (size_t i = 0; i < n->nkids; i++)
      if ((rc = need_kind(b, &k[i], SM_BOOLEAN,
                          n->op == N_AND  ? "AND"
                          : n->op == N_OR ? "OR"
                                          : "NOT")))
        return rc;
    n->type = T(SM_BOOLEAN);
    break;
  case N_ISNULL:
  case N_ISNOTNULL:
    n->type = T(SM_BOOLEAN);
    break;
  case N_CAST:
    if (k[0]->op == N_LIT && k[0]->null_lit && is_scalar_kind(n->cast_to->kind)) {
      k[0]->lit_kind = n->cast_to->kind;
      k[0]->type = T(n->cast_to->kind);
    }
    if (!sm_type_equal(k[0]->type, n->cast_to) &&
        (!is_scalar_kind(n->cast_to->kind) || !castable(k[0]->type->kind, n->cast_to->kind)))
      return berr(b, n->pos, "cannot cast %s to %s", sm_kind_name(k[0]->type->kind),
                  sm_kind_name(n->cast_to->kind));
    n->type = n->cast_to;
    break;
  case N_TODATE:
    if (k[0]->type->kind != SM_DATE && (rc = need_kind(b, &k[0], SM_TIMESTAMP, "to_date")))
      return rc;
    n->type = T(SM_DATE);
    break;
  case N_DFMT:
    if ((rc = need_kind(b, &k[0], SM_TIMESTAMP, "date_format")))
      return rc;
    if (k[1]->op != N_LIT || k[1]->lit_kind != SM_STRING || k[1]->null_lit)
      return berr(b, k[1]->pos, "date_format expects a literal pattern like 'yyyy-MM-dd'");
    if ((rc = check_pattern(b, k[1])))
      return rc;
    n->type = T(SM_STRING);
    break;
  case N_LOWER:
  case N_UPPER:
    if ((rc = need_kind(b, &k[0], SM_STRING, n->op == N_LOWER ? "lower" : "upper")))
      return rc;
    n->type = T(SM_STRING);
    break;
  case N_COALESCE:
  case N_CASE: {
    /* value operands: every coalesce argument; CASE's THENs and its ELSE */
    size_t idx[256], nv = 0;
    if (n->nkids > 255)
      return berr(b, n->pos, "too many branches");
    if (n->op == N_COALESCE) {
      for (size_t i = 0; i < n->nkids; i++)
        idx[nv++] = i;
    } else {
      size_t pairs = n->has_else ? (n->nkids - 1) / 2 : n->nkids / 2;
      for (size_t j = 0; j < pairs; j++) {
        if ((rc = need_kind(b, &k[2 * j], SM_BOOLEAN, "WHEN")))
          return rc;
        idx[nv++] = 2 * j + 1;
      }
      if (n->has_else)
        idx[nv++] = n->nkids - 1;
    }
    const node_t *acc = NULL; /* the first operand that is not the NULL literal */
    int ck = -1;
    for (size_t j = 0; j < nv; j++) {
      const node_t *x = k[idx[j]];
      if (x->op == N_LIT && x->null_lit)
        continue;
      if (!acc) {
        acc = x;
        ck = (int)x->type->kind;
        continue;
      }
      if (!is_scalar_kind(acc->type->kind) || !is_scalar_kind(x->type->kind)) {
        if (!sm_type_equal(acc->type, x->type))
          return berr(b, x->pos, "%s: branches of different types",
                      n->op == N_CASE ? "CASE" : "coalesce");
        continue;
      }
      node_t tmp = *acc;
      tmp.type = T((sm_kind_t)ck);
      int c2 = common_kind(&tmp, x, false);
      if (c2 < 0)
        return berr(b, x->pos, "%s: cannot mix %s and %s", n->op == N_CASE ? "CASE" : "coalesce",
                    sm_kind_name((sm_kind_t)ck), sm_kind_name(x->type->kind));
      ck = c2;
    }
    if (acc && !is_scalar_kind(acc->type->kind)) {
      for (size_t j = 0; j < nv; j++)
        if (k[idx[j]]->op == N_LIT && k[idx[j]]->null_lit)
          return berr(b, k[idx[j]]->pos, "NULL where a %s is expected: use CAST",
                      sm_kind_name(acc->type->kind));
      n->type = acc->type;
      break;
    }
    if (ck < 0)
      ck = SM_STRING; /* only NULLs */
    for (size_t j = 0; j < nv; j++)
      if ((rc = coerce(b, &k[idx[j]], (sm_kind_t)ck)))
        return rc;
    n->type = T((sm_kind_t)ck);
    break;
  }
  }
  return ED_OK;
}

ed_code_t sm_expr_bind(sm_expr_t *e, const sm_type_t *schema, ed_err_t *err) {
  if (!schema || schema->kind != SM_STRUCT)
    return ed_err_set(err, ED_E_INVALID, "expr: the schema must be a STRUCT");
  bind_t b = {schema, e->text, err};
  e->schema = NULL;
  ed_code_t rc = bind_node(&b, &e->root);
  if (!rc)
    e->schema = schema;
  return rc;
}

ed_code_t sm_expr_compile(const char *text, const sm_type_t *schema, sm_expr_t **out,
                          ed_err_t *err) {
  ed_code_t rc = sm_expr_parse(text, out, err);
  if (rc)
    return rc;
  if ((rc = sm_expr_bind(*out, schema, err))) {
    sm_expr_free(*out);
    *out = NULL;
  }
  return rc;
}

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
