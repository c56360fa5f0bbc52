/* test_sm_decode: the decoder's documented semantics as a table (body,
 * schema, expected row or reason), run against every back end built in, and
 * the bad-event modes, metadata columns, counts and dead-letter rows. */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/buf.h"
#include "stream/decode.h"
#include "stream/schema.h"
#include "tests/sm_text.h"
#include "tests/unit/cu.h"

/* Row r of column c as text: null, numbers, "strings", [a,b], {a,b}, {k:v}. */
static void render(ed_buf_t *o, const sm_col_t *c, size_t r) {
  if (sm_text_scalar(o, c, r))
    return;
  size_t n;
  const char *p;
  switch (c->type->kind) {
  case SM_STRING:
  case SM_BINARY:
    p = sm_col_str(c, r, &n);
    ed_buf_putc(o, '"');
    ed_buf_append(o, p, n > 40 ? 40 : n);
    ed_buf_putc(o, '"');
    break;
  case SM_STRUCT:
    ed_buf_putc(o, '{');
    for (size_t i = 0; i < c->nchildren; i++) {
      if (i)
        ed_buf_putc(o, ',');
      render(o, &c->children[i], r);
    }
    ed_buf_putc(o, '}');
    break;
  case SM_ARRAY:
  case SM_MAP:
    ed_buf_putc(o, c->type->kind == SM_ARRAY ? '[' : '{');
    for (uint32_t e = c->off[r]; e < c->off[r + 1]; e++) {
      if (e > c->off[r])
        ed_buf_putc(o, ',');
      render(o, &c->children[0], e);
      if (c->type->kind == SM_MAP) {
        ed_buf_putc(o, ':');
        render(o, &c->children[1], e);
      }
    }
    ed_buf_putc(o, c->type->kind == SM_ARRAY ? ']' : '}');
    break;
  default: /* the scalars sm_text_scalar wrote */
    break;
  }
}

static void render_row(ed_buf_t *o, const sm_batch_t *b, size_t r) {
  for (size_t i = 0; i < b->schema->nfields; i++) {
    if (i)
      ed_buf_putc(o, '|');
    render(o, &b->cols[i], r);
  }
}

static const sm_dec_backend_t backends[] = {
    SM_DEC_JSONC,
#ifdef HAVE_SIMDJSON
    SM_DEC_SIMDJSON,
#endif
};
#define NBACKENDS (sizeof backends / sizeof backends[0])

/* rows of the table leave `only` out when a case holds for every back end */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
typedef struct {
  const char *why; /* the documented rule */
  const char *schema;
  const char *body; /* NULL: use the big-body generator */
  const char *row;  /* expected row, or NULL when `reason` */
  sm_reason_t reason;
  sm_dec_backend_t only; /* 0: every back end */
} dcase_t;

#define TS "2024-02-29T12:34:56.789012"
static const dcase_t cases[] = {
    {"the tutorial's event", "id STRING, amount DOUBLE, ts TIMESTAMP",
     "{\"id\": \"T000001\", \"amount\": 12.5, \"ts\": \"" TS "\"}",
     "\"T000001\"|12.5|1709210096789012", SM_REASON_NONE},
    {"missing field -> null", "a STRING, b BIGINT", "{\"a\": \"x\"}", "\"x\"|null", 0},
    {"JSON null -> null", "a STRING", "{\"a\": null}", "null", 0},
    {"unknown fields ignored", "a INT", "{\"zz\": [1, {\"q\": 2}], \"a\": 7, \"y\": \"s\"}", "7",
     0},
    {"duplicate keys: the last wins", "a INT", "{\"a\": 1, \"a\": 2}", "2", 0},
    {"names match case-insensitively after exact", "Amount DOUBLE", "{\"amount\": 3}", "3", 0},
    {"integer into DOUBLE", "a DOUBLE", "{\"a\": 42}", "42", 0},
    {"exponent into DOUBLE", "a DOUBLE", "{\"a\": -1.5e3}", "-1500", 0},
    {"FLOAT", "a FLOAT", "{\"a\": 0.25}", "0.25", 0},
    {"BIGINT extremes", "a BIGINT", "{\"a\": -9223372036854775808}", "-9223372036854775808", 0},
    {"INT overflow is an error", "a INT", "{\"a\": 2147483648}", NULL, SM_REASON_OVERFLOW},
    {"BIGINT overflow is an error", "a BIGINT", "{\"a\": 9223372036854775808}", NULL,
     SM_REASON_OVERFLOW},
    {"400 digits into DOUBLE: out of range", "a DOUBLE",
     "{\"a\": "
     "1000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
     "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
     "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
     "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
     "000000000000000000000000000000000000}",
     NULL, SM_REASON_OVERFLOW},
    {"1.5 into INT is a type error", "a INT", "{\"a\": 1.5}", NULL, SM_REASON_TYPE},
    {"string into DOUBLE is a type error", "a DOUBLE", "{\"a\": \"12,5\"}", NULL, SM_REASON_TYPE},
    {"number into STRING is a type error", "a STRING", "{\"a\": 12}", NULL, SM_REASON_TYPE},
    {"BOOLEAN", "a BOOLEAN, b BOOLEAN", "{\"a\": true, \"b\": false}", "true|false", 0},
    {"number into BOOLEAN is a type error", "a BOOLEAN", "{\"a\": 1}", NULL, SM_REASON_TYPE},
    {"timestamp with Z", "t TIMESTAMP", "{\"t\": \"" TS "Z\"}", "1709210096789012", 0},
    {"timestamp with an offset", "t TIMESTAMP", "{\"t\": \"2024-02-29T13:34:56.789012+01:00\"}",
     "1709210096789012", 0},
    {"timestamp without zone = UTC", "t TIMESTAMP", "{\"t\": \"" TS "\"}", "1709210096789012", 0},
    {"integral seconds into TIMESTAMP", "t TIMESTAMP", "{\"t\": 1700000000}", "1700000000000000",
     0},
    {"unparsable timestamp is an error", "t TIMESTAMP", "{\"t\": \"yesterday\"}", NULL,
     SM_REASON_TIMESTAMP},
    {"DATE", "d DATE", "{\"d\": \"2024-02-29\"}", "19782", 0},
    {"BINARY is base64", "b BINARY", "{\"b\": \"aGk=\"}", "\"hi\"", 0},
    {"escapes are decoded", "s STRING", "{\"s\": \"a\\\"b\\u00e9\\n\"}", "\"a\"b\xc3\xa9\n\"", 0},
    {"nested STRUCT, ARRAY, MAP",
     "g STRUCT<lat: DOUBLE, lon: DOUBLE>, t ARRAY<STRING>, m MAP<STRING, INT>",
     "{\"g\": {\"lon\": 2, \"lat\": 1}, \"t\": [\"x\", null], \"m\": {\"k\": 1, \"j\": 2}}",
     "{1,2}|[\"x\",null]|{\"k\":1,\"j\":2}", 0},
    {"missing STRUCT field -> null", "g STRUCT<lat: DOUBLE, lon: DOUBLE>", "{\"g\": {\"lat\": 1}}",
     "{1,null}", 0},
    {"a duplicate key inside a MAP is an error", "m MAP<STRING, INT>",
     "{\"m\": {\"k\": 1, \"k\": 2}}", NULL, SM_REASON_DUPLICATE_KEY, SM_DEC_SIMDJSON},
    {"json-c keeps the last of duplicate MAP keys (it merges them before we see them)",
     "m MAP<STRING, INT>", "{\"m\": {\"k\": 1, \"k\": 2}}", "{\"k\":2}", 0, SM_DEC_JSONC},
    {"array where a STRUCT is declared: type error", "g STRUCT<a: INT>", "{\"g\": [1]}", NULL,
     SM_REASON_TYPE},
    {"missing NOT NULL field is an error", "a INT NOT NULL, b INT", "{\"b\": 1}", NULL,
     SM_REASON_NULL_REQUIRED},
    {"not JSON", "a INT", "hello", NULL, SM_REASON_NOT_JSON},
    {"truncated JSON", "a INT", "{\"a\": 1", NULL, SM_REASON_NOT_JSON},
    {"empty body", "a INT", "", NULL, SM_REASON_NOT_JSON},
    {"text after the object", "a INT", "{\"a\": 1} x", NULL, SM_REASON_NOT_JSON},
    {"JSON but not an object", "a INT", "[1, 2]", NULL, SM_REASON_NOT_OBJECT},
    {"invalid UTF-8", "s STRING", "{\"s\": \"\xff\xfe\"}", NULL, SM_REASON_INVALID_UTF8},
    {"overlong UTF-8", "s STRING", "{\"s\": \"\xc0\xaf\"}", NULL, SM_REASON_INVALID_UTF8},
    {"nesting beyond the bound", "a INT",
     "{\"x\": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
     "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
     NULL, SM_REASON_TOO_DEEP},
    {"a 1 MiB string is too large", "s STRING", NULL, NULL, SM_REASON_TOO_LARGE},
};

static char *big_body(void) {
  size_t n = 1024 * 1024;
  char *b = malloc(n + 16);
  memcpy(b, "{\"s\": \"", 7);
  memset(b + 7, 'x', n);
  memcpy(b + 7 + n, "\"}", 3);
  return b;
}

static void test_decode_table_every_backend(void) {
  for (size_t be = 0; be < NBACKENDS; be++)
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      const dcase_t *tc = &cases[i];
      if (tc->only && tc->only != backends[be])
        continue;
      sm_type_t *st = NULL;
      ed_err_t e = {0};
      CU_ASSERT_EQUAL_FATAL(sm_schema_parse_ddl(tc->schema, &st, &e), ED_OK);
      sm_dec_opts_t o = {.backend = backends[be]};
      sm_dec_t *d;
      CU_ASSERT_EQUAL_FATAL(sm_dec_new(st, NULL, 0, &o, &d, &e), ED_OK);
      sm_batch_t *b = sm_batch_new(sm_dec_schema(d));
      char *big = tc->body ? NULL : big_body();
      const char *body = tc->body ? tc->body : big;
      sm_dec_status_t s;
      sm_reason_t r;
      ed_err_t de = {0};
      ed_code_t rc = sm_dec_decode(d, b, body, strlen(body), NULL, &s, &r, &de);
      ed_buf_t got = ED_BUF_INIT;
      if (s != SM_DEC_DEAD)
        render_row(&got, b, 0);
      bool ok = rc == ED_OK &&
                (tc->row ? s == SM_DEC_ROW && r == SM_REASON_NONE && got.data &&
                               strcmp(got.data, tc->row) == 0
                         : s == SM_DEC_DEAD && r == tc->reason && b->nrows == 0 && de.msg[0]);
      if (!ok)
        fprintf(stderr, "\n  [%s] %s: rc=%d status=%d reason=%s row=%s msg=%s\n",
                sm_dec_backend_name(d), tc->why, rc, s, sm_reason_name(r),
                got.data ? got.data : "-", de.msg);
      CU_ASSERT_TRUE(ok);
      /* the batch's columns stay aligned either way */
      for (size_t c = 0; c < b->schema->nfields; c++)
        CU_ASSERT_EQUAL(b->cols[c].len, b->nrows);
      CU_ASSERT_EQUAL(sm_dec_counts(d)->events, 1);
      CU_ASSERT_EQUAL(sm_dec_counts(d)->reasons[tc->reason], tc->row ? 0 : 1);
      ed_buf_fini(&got);
      free(big);
      sm_batch_free(b);
      sm_dec_free(d);
      sm_type_free(st);
    }
}

static void test_error_message_names_field_value_and_offset(void) {
  sm_type_t *st;
  sm_schema_parse_ddl("id STRING, amount DOUBLE", &st, NULL);
  for (size_t be = 0; be < NBACKENDS; be++) {
    sm_dec_opts_t o = {.backend = backends[be]};
    sm_dec_t *d;
    sm_dec_new(st, NULL, 0, &o, &d, NULL);
    sm_batch_t *b = sm_batch_new(sm_dec_schema(d));
    const char *body = "{\"id\": \"T1\", \"amount\": \"12,5\"}";
    ed_err_t e = {0};
    sm_dec_status_t s;
    CU_ASSERT_EQUAL(sm_dec_decode(d, b, body, strlen(body), NULL, &s, NULL, &e), ED_OK);
    CU_ASSERT_EQUAL(s, SM_DEC_DEAD);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "field 'amount': expected DOUBLE, got string \"12,5\""));
    if (backends[be] == SM_DEC_SIMDJSON)
      CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "at byte 23"));
    sm_batch_free(b);
    sm_dec_free(d);
  }
  sm_type_free(st);
}

/* A dead letter's reason says what was wrong: the byte after a complete JSON
 * value and its offset, or (from the caller) what the body is instead of a
 * data section, not what a parser happened to hit first. */
static void test_dead_letter_reasons_name_what_was_wrong(void) {
  sm_type_t *st;
  sm_schema_parse_ddl("a INT", &st, NULL);
  static const struct {
    const char *body, *refused, *want;
  } reasons[] = {
      {"{\"a\": 1} x", NULL, "unexpected 'x' after the JSON value at byte 9"},
      {"{\"a\": 1}}", NULL, "unexpected '}' after the JSON value at byte 8"},
      {"{\"a\": 1}\n{\"a\": 2}", NULL, "unexpected '{' after the JSON value at byte 9"},
      {"\x00\x53\x77\xc1\x03\x02\x40\x40", "body is an AMQP map, expected a data section with JSON",
       "body is an AMQP map, expected a data section with JSON"},
  };
  for (size_t be = 0; be < NBACKENDS; be++) {
    sm_dec_opts_t o = {.backend = backends[be]};
    sm_dec_t *d;
    sm_dec_new(st, NULL, 0, &o, &d, NULL);
    sm_batch_t *b = sm_batch_new(sm_dec_schema(d));
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++) {
      sm_event_meta_t m = {.body_refused = reasons[i].refused};
      size_t len = reasons[i].refused ? 8 : strlen(reasons[i].body);
      ed_err_t e = {0};
      sm_dec_status_t s;
      sm_reason_t r;
      CU_ASSERT_EQUAL(sm_dec_decode(d, b, reasons[i].body, len, &m, &s, &r, &e), ED_OK);
      CU_ASSERT_EQUAL(s, SM_DEC_DEAD);
      CU_ASSERT_EQUAL(r, SM_REASON_NOT_JSON);
      if (!strstr(e.msg, reasons[i].want))
        fprintf(stderr, "\n  %s: got '%s', want '%s'\n", sm_dec_backend_name(d), e.msg,
                reasons[i].want);
      CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, reasons[i].want));
    }
    CU_ASSERT_EQUAL(b->nrows, 0);
    sm_batch_free(b);
    sm_dec_free(d);
  }
  sm_type_free(st);
}

static void test_modes_permissive_and_fail_fast(void) {
  sm_type_t *st;
  sm_schema_parse_ddl("a INT, b STRING, n INT NOT NULL", &st, NULL);
  for (size_t be = 0; be < NBACKENDS; be++) {
    sm_dec_opts_t o = {.backend = backends[be], .mode = SM_BAD_PERMISSIVE};
    sm_dec_t *d;
    sm_dec_new(st, NULL, 0, &o, &d, NULL);
    sm_batch_t *b = sm_batch_new(sm_dec_schema(d));
    sm_dec_status_t s;
    sm_reason_t r;
    const char *bad_a = "{\"a\": \"x\", \"b\": \"kept\", \"n\": 1}";
    CU_ASSERT_EQUAL(sm_dec_decode(d, b, bad_a, strlen(bad_a), NULL, &s, &r, NULL), ED_OK);
    CU_ASSERT_EQUAL(s, SM_DEC_PARTIAL);
    CU_ASSERT_EQUAL(r, SM_REASON_TYPE);
    ed_buf_t got = ED_BUF_INIT;
    render_row(&got, b, 0);
    CU_ASSERT_STR(got.data, "null|\"kept\"|1");
    /* a NOT NULL field cannot be null: still a dead letter */
    const char *no_n = "{\"a\": 1}";
    CU_ASSERT_EQUAL(sm_dec_decode(d, b, no_n, strlen(no_n), NULL, &s, &r, NULL), ED_OK);
    CU_ASSERT_EQUAL(s, SM_DEC_DEAD);
    CU_ASSERT_EQUAL(r, SM_REASON_NULL_REQUIRED);
    CU_ASSERT_EQUAL(b->nrows, 1);
    CU_ASSERT_EQUAL(sm_dec_counts(d)->partial, 1);
    CU_ASSERT_EQUAL(sm_dec_counts(d)->dead, 1);
    ed_buf_fini(&got);
    sm_batch_free(b);
    sm_dec_free(d);

    o.mode = SM_BAD_FAIL_FAST;
    sm_dec_new(st, NULL, 0, &o, &d, NULL);
    b = sm_batch_new(sm_dec_schema(d));
    ed_err_t e = {0};
    CU_ASSERT_EQUAL(sm_dec_decode(d, b, "nope", 4, NULL, &s, &r, &e), ED_E_PARSE);
    CU_ASSERT_EQUAL(b->nrows, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "not JSON"));
    sm_batch_free(b);
    sm_dec_free(d);
  }
  /* permissive: a body that is not JSON is a row of nulls */
  sm_type_t *st2;
  sm_schema_parse_ddl("a INT, b STRING", &st2, NULL);
  sm_dec_opts_t o = {.mode = SM_BAD_PERMISSIVE};
  sm_dec_t *d;
  sm_dec_new(st2, NULL, 0, &o, &d, NULL);
  sm_batch_t *b = sm_batch_new(sm_dec_schema(d));
  sm_dec_status_t s;
  CU_ASSERT_EQUAL(sm_dec_decode(d, b, "{{", 2, NULL, &s, NULL, NULL), ED_OK);
  CU_ASSERT_EQUAL(s, SM_DEC_PARTIAL);
  CU_ASSERT_EQUAL(b->nrows, 1);
  CU_ASSERT_TRUE(sm_col_is_null(&b->cols[0], 0) && sm_col_is_null(&b->cols[1], 0));
  sm_batch_free(b);
  sm_dec_free(d);
  sm_type_free(st2);
  sm_type_free(st);
  sm_bad_mode_t m;
  CU_ASSERT_EQUAL(sm_bad_mode_parse("FAILFAST", &m, NULL), ED_OK);
  CU_ASSERT_EQUAL(m, SM_BAD_FAIL_FAST);
  CU_ASSERT_EQUAL(sm_bad_mode_parse("lenient", &m, NULL), ED_E_INVALID);
}

static void test_metadata_columns_and_dead_letter_rows(void) {
  sm_meta_col_t *mc;
  size_t nm;
  ed_err_t e = {0};
  CU_ASSERT_EQUAL(sm_meta_parse("enqueuedTime AS ingestion_time, offset, sequenceNumber, "
                                "partition, partition_key AS pk, publisher, properties",
                                &mc, &nm, &e),
                  ED_OK);
  CU_ASSERT_EQUAL(nm, 7);
  sm_meta_col_t *bad;
  size_t nb;
  CU_ASSERT_EQUAL(sm_meta_parse("offset, bogus", &bad, &nb, &e), ED_E_CONFIG);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "at 9"));
  sm_type_t *st;
  sm_schema_parse_ddl("a INT", &st, NULL);
  sm_dec_t *d;
  CU_ASSERT_EQUAL_FATAL(sm_dec_new(st, mc, nm, NULL, &d, &e), ED_OK);
  ed_buf_t ddl = ED_BUF_INIT;
  sm_schema_to_ddl(sm_dec_schema(d), &ddl);
  CU_ASSERT_STR(ddl.data, "a INT, ingestion_time TIMESTAMP NOT NULL, offset BIGINT NOT NULL, "
                          "sequenceNumber BIGINT NOT NULL, partition STRING, pk STRING, "
                          "publisher STRING, properties MAP<STRING, STRING>");
  sm_batch_t *b = sm_batch_new(sm_dec_schema(d));
  sm_str_t keys[] = {{"k1", 2}, {"k2", 2}}, vals[] = {{"v1", 2}, {NULL, 0}};
  sm_event_meta_t m = {.sequence_number = 7,
                       .offset = 4096,
                       .enqueued_us = 1700000000000000,
                       .partition = {"3", 1},
                       .partition_key = {NULL, 0},
                       .publisher = {"pub", 3},
                       .nprops = 2,
                       .prop_keys = keys,
                       .prop_values = vals};
  sm_dec_status_t s;
  CU_ASSERT_EQUAL(sm_dec_decode(d, b, "{\"a\": 5}", 8, &m, &s, NULL, NULL), ED_OK);
  ed_buf_t got = ED_BUF_INIT;
  render_row(&got, b, 0);
  CU_ASSERT_STR(got.data,
                "5|1700000000000000|4096|7|\"3\"|null|\"pub\"|{\"k1\":\"v1\",\"k2\":null}");
  /* a name taken by the body needs AS */
  sm_meta_col_t clash = {SM_META_OFFSET, "a"};
  sm_dec_t *d2;
  CU_ASSERT_EQUAL(sm_dec_new(st, &clash, 1, NULL, &d2, &e), ED_E_SCHEMA);
  /* dead letters carry the raw body and where it came from */
  sm_batch_t *dl = sm_batch_new(sm_dec_dl_schema());
  ed_err_t de = {0};
  CU_ASSERT_EQUAL(sm_dec_decode(d, b, "{\"a\": \"x\"}", 10, &m, &s, NULL, &de), ED_OK);
  CU_ASSERT_EQUAL(s, SM_DEC_DEAD);
  CU_ASSERT_EQUAL(sm_dec_dl_append(dl, "{\"a\": \"x\"}", 10, &m, SM_REASON_TYPE, de.msg), ED_OK);
  ed_buf_reset(&got);
  render_row(&got, dl, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(got.data, "\"{\"a\": \"x\"}\"|\"3\"|7|4096|1700000000000000|"));
  CU_ASSERT_PTR_NOT_NULL(strstr(got.data, "|\"type\""));
  ed_buf_fini(&got);
  ed_buf_fini(&ddl);
  sm_batch_free(dl);
  sm_batch_free(b);
  sm_dec_free(d);
  sm_type_free(st);
  sm_meta_cols_free(mc, nm);
}

static const cu_case_t dcases[] = {
    CU_CASE(test_decode_table_every_backend),
    CU_CASE(test_dead_letter_reasons_name_what_was_wrong),
    CU_CASE(test_error_message_names_field_value_and_offset),
    CU_CASE(test_modes_permissive_and_fail_fast),
    CU_CASE(test_metadata_columns_and_dead_letter_rows),
    CU_END,
};
ED_SUITE(sm_decode, dcases)
