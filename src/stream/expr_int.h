/* expr_int: the expression tree shared by the parser (expr_parse.c), the
 * binder (expr.c) and the evaluator (expr_eval.c); private to those three.
 * Owns nothing itself: a node owns its kids, name, literal text, CAST target
 * and scratch column, freed together by sm_expr_node_free. */
#ifndef ED_STREAM_EXPR_INT_H
#define ED_STREAM_EXPR_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "stream/batch.h"
#include "stream/expr.h"
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

/* One shared type per scalar kind: bound nodes borrow these. */
extern const sm_type_t sm_expr_scalar_types[];
static inline const sm_type_t *T(sm_kind_t k) { return &sm_expr_scalar_types[k]; }

/* A zeroed node (idx -1), or NULL when out of memory; caller frees with
 * sm_expr_node_free. */
node_t *sm_expr_node_new(nop_t op, size_t pos);
/* Frees n and everything it owns; NULL is a no-op. */
void sm_expr_node_free(node_t *n);

/* Parse and bind errors name the 1-based offset in the expression text. */
ed_code_t sm_expr_pos_err(ed_err_t *err, ed_code_t code, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
