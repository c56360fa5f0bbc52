#include "common/pct.h"
#include "tests/unit/cu.h"

static void test_encode_modes(void) {
  static const struct {
    const char *in;
    ed_pct_mode_t mode;
    const char *want;
  } cases[] = {
      {"sb://ns.servicebus.windows.net/hub", ED_PCT_COMPONENT,
       "sb%3A%2F%2Fns.servicebus.windows.net%2Fhub"},
      {"a b+c", ED_PCT_FORM, "a+b%2Bc"},
      {"a b", ED_PCT_COMPONENT, "a%20b"},
      {"dir/file name.parquet", ED_PCT_PATH, "dir/file%20name.parquet"},
      {"-._~AZaz09", ED_PCT_COMPONENT, "-._~AZaz09"},
      {"\xc3\xa9=", ED_PCT_COMPONENT, "%C3%A9%3D"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ed_buf_t b = ED_BUF_INIT;
    CU_ASSERT_EQUAL(ed_pct_encode(&b, cases[i].in, strlen(cases[i].in), cases[i].mode), ED_OK);
    CU_ASSERT_STR(b.data, cases[i].want);
    ed_buf_fini(&b);
  }
}

static void test_decode(void) {
  ed_buf_t b = ED_BUF_INIT;
  CU_ASSERT_EQUAL(ed_pct_decode(&b, "a%2fb%2F+c", 10, false, NULL), ED_OK);
  CU_ASSERT_STR(b.data, "a/b/+c");
  ed_buf_reset(&b);
  CU_ASSERT_EQUAL(ed_pct_decode(&b, "a+b", 3, true, NULL), ED_OK);
  CU_ASSERT_STR(b.data, "a b");
  ed_buf_fini(&b);
}

static void test_decode_rejects_bad_escapes(void) {
  static const char *bad[] = {"%", "%2", "%zz", "ab%4", "%G0"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ed_buf_t b = ED_BUF_INIT;
    ed_err_t e = {0};
    CU_ASSERT_EQUAL(ed_pct_decode(&b, bad[i], strlen(bad[i]), false, &e), ED_E_PARSE);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "expected %XX"));
    ed_buf_fini(&b);
  }
}

static const cu_case_t cases[] = {CU_CASE(test_encode_modes), CU_CASE(test_decode),
                                  CU_CASE(test_decode_rejects_bad_escapes), CU_END};
ED_SUITE(pct, cases)
