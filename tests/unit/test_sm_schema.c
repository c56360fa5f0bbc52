/* test_sm_schema: Spark DDL and StructType JSON, both ways. */
#include <stdio.h>
#include <stdlib.h>

#include "common/buf.h"
#include "stream/schema.h"
#include "tests/unit/cu.h"

static void test_ddl_round_trips_through_json(void) {
  static const struct {
    const char *ddl, *back;
  } cases[] = {
      {"transaction_id STRING, amount DOUBLE, timestamp TIMESTAMP, tags ARRAY<STRING>, "
       "geo STRUCT<lat: DOUBLE, lon: DOUBLE>",
       "transaction_id STRING, amount DOUBLE, timestamp TIMESTAMP, tags ARRAY<STRING>, "
       "geo STRUCT<lat: DOUBLE, lon: DOUBLE>"},
      {"id bigint not null, n Int, f real, b bool, d date, bin binary, m map<string, long>",
       "id BIGINT NOT NULL, n INT, f FLOAT, b BOOLEAN, d DATE, bin BINARY, m MAP<STRING, BIGINT>"},
      {"`odd name` VARCHAR(10) COMMENT 'x', s STRUCT<a INT NOT NULL>",
       "`odd name` STRING, s STRUCT<a: INT NOT NULL>"},
      {"STRUCT<a: INT>", "a INT"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    sm_type_t *st = NULL, *st2 = NULL;
    ed_err_t e = {0};
    CU_ASSERT_EQUAL_FATAL(sm_schema_parse_ddl(cases[i].ddl, &st, &e), ED_OK);
    ed_buf_t ddl = ED_BUF_INIT, json = ED_BUF_INIT;
    CU_ASSERT_EQUAL(sm_schema_to_ddl(st, &ddl), ED_OK);
    CU_ASSERT_STR(ddl.data, cases[i].back);
    CU_ASSERT_EQUAL(sm_schema_to_json(st, &json), ED_OK);
    CU_ASSERT_EQUAL(sm_schema_parse(json.data, &st2, &e), ED_OK);
    CU_ASSERT_TRUE(sm_type_equal(st, st2));
    ed_buf_fini(&ddl);
    ed_buf_fini(&json);
    sm_type_free(st);
    sm_type_free(st2);
  }
}

/* What Delta (Spark) writes as schemaString for the tutorial's table. */
static void test_json_is_deltas_schema_string(void) {
  sm_type_t *st;
  sm_schema_parse_ddl("id STRING NOT NULL, tags ARRAY<STRING>, m MAP<STRING, INT>", &st, NULL);
  ed_buf_t j = ED_BUF_INIT;
  sm_schema_to_json(st, &j);
  CU_ASSERT_STR(
      j.data, "{\"type\":\"struct\",\"fields\":[{\"name\":\"id\",\"type\":\"string\",\"nullable\":"
              "false,\"metadata\":{}},{\"name\":\"tags\",\"type\":{\"type\":\"array\","
              "\"elementType\":\"string\",\"containsNull\":true},\"nullable\":true,\"metadata\":{}"
              "},{\"name\":\"m\",\"type\":{\"type\":\"map\",\"keyType\":\"string\",\"valueType\":"
              "\"integer\",\"valueContainsNull\":true},\"nullable\":true,\"metadata\":{}}]}");
  ed_buf_fini(&j);
  sm_type_free(st);
}

static void test_errors_point_at_the_character(void) {
  static const struct {
    const char *in, *msg;
  } cases[] = {
      {"a INT, b DECIMALX", "at 10: expected a type"},
      {"a INT b STRING", "at 7: expected ',' or the end"},
      {"a MAP<INT, STRING>", "MAP keys must be STRING"},
      {"a INT, A STRING", "duplicate field 'A'"},
      {"", "empty schema"},
      {"a ARRAY<STRING", "expected '>'"},
      {"{\"type\":\"struct\",\"fields\":[{\"name\":\"a\",\"type\":\"decimal(10,2)\"}]}",
       "unsupported type \"decimal(10,2)\""},
      {"{\"type\":\"struct\",", "StructType JSON: at"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    sm_type_t *st = NULL;
    ed_err_t e = {0};
    CU_ASSERT_NOT_EQUAL(sm_schema_parse(cases[i].in, &st, &e), ED_OK);
    CU_ASSERT_PTR_NULL(st);
    if (!strstr(e.msg, cases[i].msg))
      fprintf(stderr, "\n  %s: got '%s', want '%s'\n", cases[i].in, e.msg, cases[i].msg);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, cases[i].msg));
  }
}

static const cu_case_t scases[] = {
    CU_CASE(test_ddl_round_trips_through_json),
    CU_CASE(test_json_is_deltas_schema_string),
    CU_CASE(test_errors_point_at_the_character),
    CU_END,
};
ED_SUITE(sm_schema, scases)
