/* test_sm_expr: the expression language over a decoded batch, as a table
 * (expression, expected value of each row, Spark's semantics), and its errors. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/buf.h"
#include "common/time.h"
#include "stream/decode.h"
#include "stream/expr.h"
#include "stream/schema.h"
#include "tests/unit/cu.h"

static sm_type_t *g_st;
static sm_dec_t *g_dec;
static sm_batch_t *g_b;
#define NOW INT64_C(1709210096789012) /* 2024-02-29T12:34:56.789012Z */

static int setup(void) {
  if (sm_schema_parse_ddl("amount DOUBLE, qty INT, name STRING, ts TIMESTAMP, big BIGINT, "
                          "g STRUCT<lat: DOUBLE>",
                          &g_st, NULL) ||
      sm_dec_new(g_st, NULL, 0, NULL, &g_dec, NULL))
    return 1;
  g_b = sm_batch_new(sm_dec_schema(g_dec));
  static const char *rows[] = {
      "{\"amount\": 12.5, \"qty\": 3, \"name\": \"Books\", \"ts\": \"2024-01-02T03:04:05.5\", "
      "\"big\": 9223372036854775807, \"g\": {\"lat\": 1.5}}",
      "{\"amount\": 7, \"qty\": 0, \"name\": \"Home\", \"ts\": \"2023-12-31T23:59:59Z\"}",
      "{}",
  };
  for (size_t i = 0; i < 3; i++) {
    sm_dec_status_t s;
    if (sm_dec_decode(g_dec, g_b, rows[i], strlen(rows[i]), NULL, &s, NULL, NULL) ||
        s != SM_DEC_ROW)
      return 1;
  }
  return 0;
}

static int teardown(void) {
  sm_batch_free(g_b);
  sm_dec_free(g_dec);
  sm_type_free(g_st);
  return 0;
}

static void render(ed_buf_t *o, const sm_col_t *c, size_t r) {
  if (!c->valid[r]) {
    ed_buf_puts(o, "NULL");
    return;
  }
  size_t n;
  const char *p;
  switch (c->type->kind) {
  case SM_STRING:
    p = sm_col_str(c, r, &n);
    ed_buf_append(o, p, n);
    break;
  case SM_BOOLEAN:
    ed_buf_puts(o, c->v.b8[r] ? "true" : "false");
    break;
  case SM_INT:
    ed_buf_printf(o, "%d", c->v.i32[r]);
    break;
  case SM_DATE: {
    char d[11];
    ed_time_format_date((int64_t)c->v.i32[r] * ED_US_PER_DAY, d);
    ed_buf_printf(o, "d%s", d);
    break;
  }
  case SM_BIGINT:
    ed_buf_printf(o, "%" PRId64, c->v.i64[r]);
    break;
  case SM_TIMESTAMP:
    ed_buf_printf(o, "t%" PRId64, c->v.i64[r]);
    break;
  case SM_FLOAT:
    ed_buf_printf(o, "%g", c->v.f32[r]);
    break;
  case SM_DOUBLE:
    ed_buf_printf(o, "%g", c->v.f64[r]);
    break;
  default:
    ed_buf_puts(o, "?");
  }
}

static void test_eval_table(void) {
  static const struct {
    const char *expr, *type, *rows; /* rows joined by ';' */
  } cases[] = {
      {"amount", "DOUBLE", "12.5;7;NULL"},
      {"amount * qty + 1", "DOUBLE", "38.5;1;NULL"},
      {"qty + 1", "INT", "4;1;NULL"},
      {"qty / 2", "DOUBLE", "1.5;0;NULL"},             /* / gives DOUBLE */
      {"amount / qty", "DOUBLE", "4.16667;NULL;NULL"}, /* x / 0 is NULL */
      {"qty % 2", "INT", "1;0;NULL"},
      {"-qty", "INT", "-3;0;NULL"},
      {"big + 1", "BIGINT", "-9223372036854775808;NULL;NULL"}, /* wraps, as Spark non-ANSI */
      {"amount > 10", "BOOLEAN", "true;false;NULL"},
      {"name = 'Books' OR amount > 100", "BOOLEAN", "true;false;NULL"},
      {"amount > 100 AND name = 'x'", "BOOLEAN", "false;false;NULL"},
      {"qty > 5 AND name IS NULL", "BOOLEAN", "false;false;NULL"},
      {"amount > 100 AND name IS NULL", "BOOLEAN", "false;false;NULL"},
      {"qty = 0 AND amount > 100", "BOOLEAN", "false;false;NULL"},
      {"name = 'Home' AND amount IS NULL", "BOOLEAN", "false;false;NULL"},
      {"amount IS NOT NULL AND amount > 100", "BOOLEAN", "false;false;false"}, /* FALSE AND NULL */
      {"NOT (qty = 0)", "BOOLEAN", "true;false;NULL"},
      {"name IS NULL", "BOOLEAN", "false;false;true"},
      {"name IS NOT NULL", "BOOLEAN", "true;true;false"},
      {"qty IN (3, 4)", "BOOLEAN", "true;false;NULL"},
      {"qty NOT IN (3, 4)", "BOOLEAN", "false;true;NULL"},
      {"name IN ('Books', NULL)", "BOOLEAN", "true;NULL;NULL"}, /* SQL: not found + NULL */
      {"amount > 1 AND qty in (0)", "BOOLEAN", "false;true;NULL"},
      {"CAST(amount AS INT)", "INT", "12;7;NULL"},
      {"CAST(amount AS STRING)", "STRING", "12.5;7.0;NULL"},
      {"CAST(1e10 AS STRING)", "STRING", "1.0E10;1.0E10;1.0E10"},
      {"CAST(ts AS STRING)", "STRING", "2024-01-02 03:04:05.5;2023-12-31 23:59:59;NULL"},
      {"CAST('12.7' AS INT)", "INT", "12;12;12"},
      {"CAST('abc' AS INT)", "INT", "NULL;NULL;NULL"},
      {"CAST('yes' AS BOOLEAN)", "BOOLEAN", "true;true;true"},
      {"CAST(ts AS BIGINT)", "BIGINT", "1704164645;1704067199;NULL"},
      {"to_date(ts)", "DATE", "d2024-01-02;d2023-12-31;NULL"},
      {"to_date('2024-02-29T10:00:00')", "DATE", "d2024-02-29;d2024-02-29;d2024-02-29"},
      {"current_timestamp()", "TIMESTAMP", "t1709210096789012;t1709210096789012;t1709210096789012"},
      {"current_timestamp", "TIMESTAMP", "t1709210096789012;t1709210096789012;t1709210096789012"},
      {"current_date()", "DATE", "d2024-02-29;d2024-02-29;d2024-02-29"},
      {"date_format(ts, 'yyyy-MM-dd HH:mm')", "STRING", "2024-01-02 03:04;2023-12-31 23:59;NULL"},
      {"date_format(ts, \"EEE, d MMM yy h:mm:ss.SSS a 'at' D\")", "STRING",
       "Tue, 2 Jan 24 3:04:05.500 AM at 2;Sun, 31 Dec 23 11:59:59.000 PM at 365;NULL"},
      {"coalesce(name, 'none')", "STRING", "Books;Home;none"},
      {"coalesce(qty, amount, 0)", "DOUBLE", "3;0;0"},
      {"lower(name)", "STRING", "books;home;NULL"},
      {"upper(name)", "STRING", "BOOKS;HOME;NULL"},
      {"CASE WHEN amount > 10 THEN 'big' WHEN amount > 5 THEN 'mid' ELSE 'small' END", "STRING",
       "big;mid;small"},
      {"CASE WHEN amount > 10 THEN 1 END", "INT", "1;NULL;NULL"},
      {"CASE name WHEN 'Home' THEN 1 ELSE 2.5 END", "DOUBLE", "2.5;1;2.5"},
      {"g.lat * 2", "DOUBLE", "3;NULL;NULL"},
      {"ts > '2024-01-01'", "BOOLEAN", "true;false;NULL"}, /* string cast to TIMESTAMP */
      {"ts >= DATE '2024-01-02'", "BOOLEAN", "true;false;NULL"},
      {"`amount` + 0.5", "DOUBLE", "13;7.5;NULL"},
      {"NULL + 1", "DOUBLE", "NULL;NULL;NULL"},
      {"2147483647 + 1", "INT", "-2147483648;-2147483648;-2147483648"},
      {"3000000000", "BIGINT", "3000000000;3000000000;3000000000"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    sm_expr_t *e = NULL;
    ed_err_t err = {0};
    ed_code_t rc = sm_expr_compile(cases[i].expr, sm_dec_schema(g_dec), &e, &err);
    if (rc) {
      fprintf(stderr, "\n  %s: %s\n", cases[i].expr, err.msg);
      CU_FAIL("compile");
      continue;
    }
    CU_ASSERT_STR(sm_kind_name(sm_expr_type(e)->kind), cases[i].type);
    sm_col_t out;
    sm_col_init(&out, sm_expr_type(e));
    ed_buf_t got = ED_BUF_INIT;
    for (int round = 0; round < 2; round++) { /* the second reuses every scratch column */
      CU_ASSERT_EQUAL(sm_expr_eval(e, g_b, NOW, &out, &err), ED_OK);
      CU_ASSERT_EQUAL(out.len, g_b->nrows);
      ed_buf_reset(&got);
      for (size_t r = 0; r < out.len; r++) {
        if (r)
          ed_buf_putc(&got, ';');
        render(&got, &out, r);
      }
    }
    if (strcmp(got.data, cases[i].rows) != 0)
      fprintf(stderr, "\n  %s: got '%s', want '%s'\n", cases[i].expr, got.data, cases[i].rows);
    CU_ASSERT_STR(got.data, cases[i].rows);
    /* appended: the same rows again, after the ones out has */
    CU_ASSERT_EQUAL(sm_expr_eval_append(e, g_b, NOW, &out, &err), ED_OK);
    CU_ASSERT_EQUAL(out.len, 2 * g_b->nrows);
    ed_buf_reset(&got);
    for (size_t r = g_b->nrows; r < out.len; r++) {
      if (r > g_b->nrows)
        ed_buf_putc(&got, ';');
      render(&got, &out, r);
    }
    CU_ASSERT_STR(got.data, cases[i].rows);
    ed_buf_fini(&got);
    sm_col_fini(&out);
    sm_expr_free(e);
  }
}

static void test_filter_selects_true_rows_only(void) {
  sm_expr_t *e;
  CU_ASSERT_EQUAL_FATAL(
      sm_expr_compile("amount > 5 AND name <> 'Home'", sm_dec_schema(g_dec), &e, NULL), ED_OK);
  uint8_t sel[3];
  size_t n = 99;
  CU_ASSERT_EQUAL(sm_expr_filter(e, g_b, NOW, sel, &n, NULL), ED_OK);
  CU_ASSERT_EQUAL(n, 1);
  CU_ASSERT_TRUE(sel[0] == 1 && sel[1] == 0 && sel[2] == 0); /* NULL is not selected */
  sm_expr_free(e);
  CU_ASSERT_EQUAL(sm_expr_compile("amount + 1", sm_dec_schema(g_dec), &e, NULL), ED_OK);
  ed_err_t err = {0};
  CU_ASSERT_EQUAL(sm_expr_filter(e, g_b, NOW, sel, &n, &err), ED_E_SCHEMA);
  sm_expr_free(e);
}

static void test_errors_point_at_the_character(void) {
  static const struct {
    const char *expr, *msg;
  } cases[] = {
      {"coalesce(amount, 1", "expr: at 19: expected ')'"},
      {"amount +", "expr: at 9: expected a value, got the end"},
      {"qty IN 3", "expr: at 8: expected '(' after IN"},
      {"qty IN (1, 2", "expr: at 13: expected ')'"},
      {"amout * 2", "expr: at 1: no column 'amout'"},
      {"name + qty * 'x' AND", "expr: at 21: expected a value"},
      {"name AND qty", "expr: at 1: AND expects BOOLEAN, got STRING"},
      {"frobnicate(qty)", "expr: at 1: unknown function 'frobnicate'"},
      {"CAST(qty AS DECIMAL)", "expr: at 13: expected a type"},
      {"date_format(ts, name)", "expr: at 17: date_format expects a literal pattern"},
      {"date_format(ts, 'yyyy Q')", "unsupported pattern letter 'Q'"},
      {"qty > 'x' 'y'", "expr: at 11: expected an operator or the end"},
      {"'open", "expr: at 1: unterminated string"},
      {"g.nope", "no field 'nope'"},
      {"CASE WHEN qty THEN 1 END", "WHEN expects BOOLEAN, got INT"},
      {"lower()", "lower takes 1 argument"},
      {"99999999999999999999", "integer literal out of range"},
      {"qty # 2", "expr: at 5: unexpected character '#'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    sm_expr_t *e = NULL;
    ed_err_t err = {0};
    CU_ASSERT_NOT_EQUAL(sm_expr_compile(cases[i].expr, sm_dec_schema(g_dec), &e, &err), ED_OK);
    CU_ASSERT_PTR_NULL(e);
    if (!strstr(err.msg, cases[i].msg))
      fprintf(stderr, "\n  %s: got '%s', want '%s'\n", cases[i].expr, err.msg, cases[i].msg);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, cases[i].msg));
  }
}

/* Evaluates text over the three rows and renders "v1;v2;v3" into *got. */
static ed_code_t eval_rows(const char *text, ed_buf_t *got, ed_err_t *err) {
  sm_expr_t *e = NULL;
  ed_code_t rc = sm_expr_compile(text, sm_dec_schema(g_dec), &e, err);
  if (!rc) {
    sm_col_t out;
    sm_col_init(&out, sm_expr_type(e));
    if (!(rc = sm_expr_eval(e, g_b, NOW, &out, err)))
      for (size_t r = 0; r < out.len; r++) {
        if (r)
          ed_buf_putc(got, ';');
        render(got, &out, r);
      }
    sm_col_fini(&out);
  }
  sm_expr_free(e);
  return rc;
}

/* A long chain of operators is not nesting: only parentheses, function
 * arguments and prefix operators count towards the bound of 200. */
static void test_flat_sum_of_1000_terms_parses_and_evaluates(void) {
  ed_buf_t text = ED_BUF_INIT, got = ED_BUF_INIT;
  ed_buf_puts(&text, "qty");
  for (int i = 1; i < 1000; i++)
    ed_buf_printf(&text, " + %d", i);
  ed_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(eval_rows(text.data, &got, &err), ED_OK);
  /* 3 + (1 + ... + 999) = 499503; 0 + 499500; NULL + ... is NULL */
  CU_ASSERT_STRING_EQUAL(got.data, "499503;499500;NULL");
  ed_buf_fini(&text);
  ed_buf_fini(&got);
  /* the same with AND and * chains, and a chain inside parentheses */
  ed_buf_t t2 = ED_BUF_INIT, g2 = ED_BUF_INIT;
  ed_buf_puts(&t2, "(qty > 0");
  for (int i = 1; i < 1000; i++)
    ed_buf_puts(&t2, " AND qty * 1 * 1 > -1");
  ed_buf_puts(&t2, ")");
  CU_ASSERT_EQUAL_FATAL(eval_rows(t2.data, &g2, &err), ED_OK);
  CU_ASSERT_STRING_EQUAL(g2.data, "true;false;NULL");
  ed_buf_fini(&t2);
  ed_buf_fini(&g2);
}

/* What bounds the C stack for a chain is its length: 10,000 operators pass,
 * one more is refused with a message saying what to do. */
static void test_chain_beyond_10000_operations_is_refused(void) {
  for (int n = 10000; n <= 10001; n++) {
    ed_buf_t text = ED_BUF_INIT, got = ED_BUF_INIT;
    ed_buf_puts(&text, "qty");
    for (int i = 0; i < n; i++)
      ed_buf_puts(&text, " + 1");
    ed_err_t err = {0};
    ed_code_t rc = eval_rows(text.data, &got, &err);
    if (n == 10000) {
      CU_ASSERT_EQUAL(rc, ED_OK);
      CU_ASSERT_STRING_EQUAL(got.data, "10003;10000;NULL");
    } else {
      CU_ASSERT_EQUAL(rc, ED_E_PARSE);
      CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "more than 10000 operations chained"));
    }
    ed_buf_fini(&text);
    ed_buf_fini(&got);
  }
}

static void test_nesting_beyond_200_is_refused(void) {
  static const struct {
    const char *open, *close;
  } kinds[] = {{"(", ")"}, {"coalesce(", ", 1)"}, {"-", ""}, {"NOT ", ""}};
  for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
    for (int depth = 199; depth <= 201; depth += 2) {
      ed_buf_t text = ED_BUF_INIT, got = ED_BUF_INIT;
      for (int i = 0; i < depth; i++)
        ed_buf_puts(&text, kinds[k].open);
      ed_buf_puts(&text, k == 3 ? "qty > 0" : "qty");
      for (int i = 0; i < depth; i++)
        ed_buf_puts(&text, kinds[k].close);
      ed_err_t err = {0};
      ed_code_t rc = eval_rows(text.data, &got, &err);
      if (depth < 200) {
        CU_ASSERT_EQUAL(rc, ED_OK);
      } else {
        CU_ASSERT_NOT_EQUAL(rc, ED_OK);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "nested deeper than 200"));
      }
      ed_buf_fini(&text);
      ed_buf_fini(&got);
    }
  }
}

static const cu_case_t ecases[] = {
    CU_CASE(test_eval_table),
    CU_CASE(test_filter_selects_true_rows_only),
    CU_CASE(test_errors_point_at_the_character),
    CU_CASE(test_flat_sum_of_1000_terms_parses_and_evaluates),
    CU_CASE(test_nesting_beyond_200_is_refused),
    CU_CASE(test_chain_beyond_10000_operations_is_refused),
    CU_END,
};
ED_SUITE_FULL(sm_expr, ecases, setup, teardown)
