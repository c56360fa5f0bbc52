/* expr_parse: the lexer and the recursive-descent parser from expression text
 * to an unbound tree (sm_expr_parse; grammar in expr.h). Owns tokenising,
 * literals, and the nesting and height bounds that keep the binder's and
 * evaluator's recursion within the C stack; never looks at a schema. */
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

#define perr(l, pos, ...) sm_expr_pos_err((l)->err, ED_E_PARSE, (pos), __VA_ARGS__)

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

static ed_code_t add_kid(lex_t *l, node_t *n, node_t *k) {
  node_t **p = realloc(n->kids, (n->nkids + 1) * sizeof *p);
  if (!p) {
    sm_expr_node_free(k);
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
        sm_expr_node_free(a);
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
  node_t *n = sm_expr_node_new(N_LIT, pos);
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
      sm_expr_node_free(n);
      return perr(l, pos, "integer literal out of range");
    }
    n->li = v;
    n->lit_kind = is_long || v > INT32_MAX ? SM_BIGINT : SM_INT;
  } else {
    if (is_long) {
      sm_expr_node_free(n);
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
  node_t *n = sm_expr_node_new(N_LIT, pos);
  if (!n || !(n->ls = tok_text(l, &n->lsn))) {
    sm_expr_node_free(n);
    return ed_err_set(l->err, ED_E_NOMEM, "expr: out of memory");
  }
  n->lit_kind = SM_STRING;
  *out = n;
  return lex_next(l);
}

/* TRUE, FALSE or NULL. */
static ed_code_t p_bool_null(lex_t *l, size_t pos, node_t **out) {
  node_t *n = sm_expr_node_new(N_LIT, pos);
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
    node_t *n = sm_expr_node_new(N_LIT, pos);
    if (!n || !(n->ls = tok_text(l, &n->lsn))) {
      sm_expr_node_free(n);
      return ed_err_set(l->err, ED_E_NOMEM, "expr: out of memory");
    }
    int64_t us;
    if (ed_time_parse_iso(n->ls, n->lsn, &us, NULL)) {
      sm_expr_node_free(n);
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
  node_t *n = sm_expr_node_new(N_CAST, pos);
  if (!n)
    return ed_err_set(l->err, ED_E_NOMEM, "expr: out of memory");
  node_t *a = NULL;
  if ((rc = lex_next(l)) || (rc = expect_op(l, "(")) || (rc = p_expr(l, &a))) {
    sm_expr_node_free(a);
    sm_expr_node_free(n);
    return rc;
  }
  if ((rc = add_kid(l, n, a))) {
    sm_expr_node_free(n);
    return rc;
  }
  if (!is_kw(l, "AS")) {
    sm_expr_node_free(n);
    return perr(l, l->tpos, "expected AS");
  }
  if ((rc = lex_next(l))) {
    sm_expr_node_free(n);
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
    sm_expr_node_free(n);
    return perr(l, tstart, "expected a type after AS");
  }
  l->i = j;
  if ((rc = lex_next(l)) || (rc = expect_op(l, ")"))) {
    sm_expr_node_free(n);
    return rc;
  }
  *out = n;
  return ED_OK;
}

/* CASE [subject] WHEN .. THEN .. [ELSE ..] END. */
static ed_code_t p_case(lex_t *l, size_t pos, node_t **out) {
  ed_code_t rc;
  node_t *n = sm_expr_node_new(N_CASE, pos), *subject = NULL;
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
      sm_expr_node_free(w);
      goto case_fail;
    }
    if (subject) { /* CASE x WHEN v: x = v */
      node_t *eq = sm_expr_node_new(N_CMP, wpos), *sc = NULL;
      if (!eq) {
        sm_expr_node_free(w);
        rc = ed_err_set(l->err, ED_E_NOMEM, "expr: out of memory");
        goto case_fail;
      }
      eq->sub = C_EQ;
      /* re-parse the subject text for each WHEN: nodes are not shared */
      lex_t sl = *l;
      sl.i = subject->pos;
      if ((rc = lex_next(&sl)) || (rc = p_expr(&sl, &sc))) {
        sm_expr_node_free(sc);
        sm_expr_node_free(w);
        sm_expr_node_free(eq);
        goto case_fail;
      }
      if ((rc = add_kid(l, eq, sc))) {
        sm_expr_node_free(w);
        sm_expr_node_free(eq);
        goto case_fail;
      }
      if ((rc = add_kid(l, eq, w))) {
        sm_expr_node_free(eq);
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
      sm_expr_node_free(t);
      goto case_fail;
    }
    if ((rc = add_kid(l, n, t)))
      goto case_fail;
  }
  if (is_kw(l, "ELSE")) {
    node_t *e = NULL;
    if ((rc = lex_next(l)) || (rc = p_expr(l, &e))) {
      sm_expr_node_free(e);
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
  sm_expr_node_free(subject);
  *out = n;
  return lex_next(l);
case_fail:
  sm_expr_node_free(subject);
  sm_expr_node_free(n);
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
          *out = sm_expr_node_new(fns[f].op, pos);
          return *out ? ED_OK : ed_err_set(l->err, ED_E_NOMEM, "expr: out of memory");
        }
        *l = save; /* a column with a function's name */
        return ED_OK;
      }
      node_t *n = sm_expr_node_new(fns[f].op, pos);
      if (!n)
        return ed_err_set(l->err, ED_E_NOMEM, "expr: out of memory");
      if ((rc = p_args(l, n, fns[f].min, fns[f].max, fns[f].name))) {
        sm_expr_node_free(n);
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
  node_t *n = sm_expr_node_new(N_COL, pos);
  if (!n)
    return ed_err_set(l->err, ED_E_NOMEM, "expr: out of memory");
  n->name = l->k == K_QID ? tok_text(l, NULL) : strndup(l->s + l->tpos, l->tlen);
  if (!n->name) {
    sm_expr_node_free(n);
    return ed_err_set(l->err, ED_E_NOMEM, "expr: out of memory");
  }
  if ((rc = lex_next(l))) {
    sm_expr_node_free(n);
    return rc;
  }
  while (is_op(l, ".")) {
    if ((rc = lex_next(l))) {
      sm_expr_node_free(n);
      return rc;
    }
    if (l->k != K_ID && l->k != K_QID) {
      sm_expr_node_free(n);
      return perr(l, l->tpos, "expected a field name after '.'");
    }
    node_t *f = sm_expr_node_new(N_FIELD, l->tpos);
    if (!f || (rc = add_kid(l, f, n))) {
      if (!f)
        sm_expr_node_free(n);
      sm_expr_node_free(f);
      return ed_err_set(l->err, ED_E_NOMEM, "expr: out of memory");
    }
    f->name = l->k == K_QID ? tok_text(l, NULL) : strndup(l->s + l->tpos, l->tlen);
    n = f;
    if (!n->name || (rc = lex_next(l))) {
      sm_expr_node_free(n);
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
    sm_expr_node_free(a);
    return rc;
  }
  node_t *n = sm_expr_node_new(op, pos);
  if (!n) {
    sm_expr_node_free(a);
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
  node_t *n = sm_expr_node_new(op, pos);
  if (!n) {
    sm_expr_node_free(rhs);
    return ed_err_set(l->err, ED_E_NOMEM, "expr: out of memory");
  }
  n->sub = sub;
  ed_code_t rc = add_kid(l, n, *lhs);
  *lhs = n;
  if (rc) {
    sm_expr_node_free(rhs);
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
    sm_expr_node_free(r);
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
  node_t *c = sm_expr_node_new(n->op, n->pos);
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
    sm_expr_node_free(c);
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
      sm_expr_node_free(item);
      break;
    }
    node_t *x = node_clone(lhs);
    if (!x) {
      sm_expr_node_free(item);
      rc = ed_err_set(l->err, ED_E_NOMEM, "expr: out of memory");
      break;
    }
    if ((rc = binary(l, &x, N_CMP, C_EQ, pos, item))) {
      sm_expr_node_free(x);
      break;
    }
    if (!acc)
      acc = x;
    else if ((rc = binary(l, &acc, N_OR, 0, pos, x)))
      break;
  } while (is_op(l, ","));
  sm_expr_node_free(lhs);
  if (!rc)
    rc = expect_op(l, ")");
  if (!rc && neg) {
    node_t *n = sm_expr_node_new(N_NOT, pos);
    if (!n || (rc = add_kid(l, n, acc))) {
      acc = NULL;
      sm_expr_node_free(n);
      rc = rc ? rc : ed_err_set(l->err, ED_E_NOMEM, "expr: out of memory");
    } else {
      acc = n;
    }
  }
  if (rc) {
    sm_expr_node_free(acc);
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
    node_t *n = sm_expr_node_new(neg ? N_ISNOTNULL : N_ISNULL, pos);
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
