/* expr: the expression tree's shared helpers and the binder (see expr.h).
 * Binding inserts the implicit casts Spark would, so every operator evaluates
 * children of one type. The lexer and parser are expr_parse.c, the batch
 * evaluator expr_eval.c; the tree they share is expr_int.h. */
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

const sm_type_t sm_expr_scalar_types[] = {
    {SM_STRING, 0, NULL, NULL, false},    {SM_BINARY, 0, NULL, NULL, false},
    {SM_BOOLEAN, 0, NULL, NULL, false},   {SM_INT, 0, NULL, NULL, false},
    {SM_BIGINT, 0, NULL, NULL, false},    {SM_FLOAT, 0, NULL, NULL, false},
    {SM_DOUBLE, 0, NULL, NULL, false},    {SM_DATE, 0, NULL, NULL, false},
    {SM_TIMESTAMP, 0, NULL, NULL, false},
};

node_t *sm_expr_node_new(nop_t op, size_t pos) {
  node_t *n = calloc(1, sizeof *n);
  if (n) {
    n->op = op;
    n->pos = pos;
    n->idx = -1;
  }
  return n;
}

void sm_expr_node_free(node_t *n) {
  if (!n)
    return;
  for (size_t i = 0; i < n->nkids; i++)
    sm_expr_node_free(n->kids[i]);
  free(n->kids);
  free(n->name);
  free(n->ls);
  sm_type_free(n->cast_to);
  if (n->out_ready)
    sm_col_fini(&n->out);
  free(n);
}

ed_code_t sm_expr_pos_err(ed_err_t *err, ed_code_t code, size_t pos, const char *fmt, ...) {
  char m[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(m, sizeof m, fmt, ap);
  va_end(ap);
  return ed_err_set(err, code, "expr: at %zu: %s", pos + 1, m);
}

void sm_expr_free(sm_expr_t *e) {
  if (!e)
    return;
  sm_expr_node_free(e->root);
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

#define berr(b, pos, ...) sm_expr_pos_err((b)->err, ED_E_SCHEMA, (pos), __VA_ARGS__)

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
  node_t *c = sm_expr_node_new(N_CAST, n->pos);
  if (!c || !(c->cast_to = sm_type_new(k)) || !(c->kids = malloc(sizeof *c->kids))) {
    sm_expr_node_free(c);
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
