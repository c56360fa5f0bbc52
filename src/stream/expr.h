/* expr: derived columns and filters, a small SQL expression language
 * evaluated a whole batch at a time.
 * Owns: the parsed tree, its types and the scratch columns each node evaluates
 * into (kept between batches, so evaluation allocates only while batches grow,
 * never per row). Borrows the schema it was bound to and the batch it reads.
 * Never fails at evaluation on data: as Spark with ANSI mode off, division by
 * zero, a failed CAST or an invalid date give NULL, and integer overflow
 * wraps. One expression per thread (not thread-safe).
 *
 * Grammar (keywords and function names case-insensitive):
 *   expr    := or ; or := and (OR and)* ; and := not (AND not)*
 *   not     := NOT not | cmp
 *   cmp     := add [(= | == | != | <> | < | <= | > | >=) add | IS [NOT] NULL
 *                   | [NOT] IN ( expr, ... )]
 *   add     := mul ((+ | -) mul)* ; mul := unary ((* | / | %) unary)*
 *   unary   := - unary | primary
 *   primary := literal | column | ( expr ) | CAST(expr AS type)
 *            | CASE [expr] WHEN expr THEN expr ... [ELSE expr] END
 *            | function ( args )
 *   literal := 123 (INT, BIGINT when larger, 123L) | 1.5 | 1e3 (DOUBLE)
 *            | 'text' | "text" (STRING; '' or \' inside) | TRUE | FALSE | NULL
 *            | DATE 'yyyy-mm-dd' | TIMESTAMP 'iso-8601'
 *   column  := name | `any name` | column . field (STRUCT fields)
 *   functions: to_date(x), current_timestamp() (also without parentheses; one
 *     value per batch), current_date(), date_format(ts, 'yyyy-MM-dd HH:mm'),
 *     coalesce(x, ...), lower(s), upper(s) (ASCII letters).
 * Types follow Spark: INT < BIGINT < FLOAT < DOUBLE widen; / always gives
 * DOUBLE; a STRING compared with a number, DATE or TIMESTAMP is cast to it.
 * Parse errors point at the character (1-based): "expr: at 14: expected ')'". */
#ifndef ED_STREAM_EXPR_H
#define ED_STREAM_EXPR_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "stream/batch.h"

typedef struct sm_expr sm_expr_t;

/* Parses text (syntax only). Caller frees *out with sm_expr_free. */
ed_code_t sm_expr_parse(const char *text, sm_expr_t **out, ed_err_t *err);
void sm_expr_free(sm_expr_t *e); /* NULL is a no-op */
/* Resolves column names against schema (a STRUCT; borrowed; valid until
 * sm_expr_free or the next bind) and type-checks: ED_E_SCHEMA "expr: at 5:
 * no column 'amout'", "expr: at 9: cannot add STRING and INT". May be called
 * again to bind to another schema. */
ed_code_t sm_expr_bind(sm_expr_t *e, const sm_type_t *schema, ed_err_t *err);
/* parse + bind. */
ed_code_t sm_expr_compile(const char *text, const sm_type_t *schema, sm_expr_t **out,
                          ed_err_t *err);
/* The result type after bind (borrowed; valid until sm_expr_free). */
const sm_type_t *sm_expr_type(const sm_expr_t *e);

/* Evaluates over every row of b (whose schema is the bound one) into out:
 * out must have been sm_col_init'ed with sm_expr_type(e) (or a type equal to
 * it); it is reset and receives b->nrows rows. now_us is the value of
 * current_timestamp() for the whole batch. Errors only ED_E_NOMEM (and
 * ED_E_INVALID if e is not bound). */
ed_code_t sm_expr_eval(sm_expr_t *e, const sm_batch_t *b, int64_t now_us, sm_col_t *out,
                       ed_err_t *err);
/* As sm_expr_eval, but out is not reset: b->nrows rows are appended after
 * the ones it has (how a derived column is built straight in a sink's batch). */
ed_code_t sm_expr_eval_append(sm_expr_t *e, const sm_batch_t *b, int64_t now_us, sm_col_t *out,
                              ed_err_t *err);
/* A filter (a BOOLEAN expression): sel[i] = 1 where it is TRUE, 0 where FALSE
 * or NULL (SQL's WHERE); sel has b->nrows entries (caller's). *nsel (may be
 * NULL) gets the number selected. ED_E_SCHEMA if the type is not BOOLEAN. */
ed_code_t sm_expr_filter(sm_expr_t *e, const sm_batch_t *b, int64_t now_us, uint8_t *sel,
                         size_t *nsel, ed_err_t *err);

#endif
