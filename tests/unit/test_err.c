#include "common/err.h"
#include "tests/unit/cu.h"

static void test_set_fills_code_and_message(void) {
  ed_err_t e = {0};
  CU_ASSERT_EQUAL(ed_err_set(&e, ED_E_PARSE, "column '%s': expected %s", "amount", "DOUBLE"),
                  ED_E_PARSE);
  CU_ASSERT_EQUAL(e.code, ED_E_PARSE);
  CU_ASSERT_STR(e.msg, "column 'amount': expected DOUBLE");
}

static void test_prefix_adds_context(void) {
  ed_err_t e = {0};
  ed_err_set(&e, ED_E_IO, "disk full");
  ed_err_prefix(&e, "commit %d", 7);
  CU_ASSERT_STR(e.msg, "commit 7: disk full");
  CU_ASSERT_EQUAL(e.code, ED_E_IO);
}

/* The helper owns the separator: a caller's trailing ": " (the old habit)
 * must not produce an empty field, and an empty message adds none. */
static void test_prefix_never_leaves_an_empty_field(void) {
  static const struct {
    const char *msg, *prefix, *want;
  } cases[] = {
      {"write 'x': Permission denied", "batch 8", "batch 8: write 'x': Permission denied"},
      {"write 'x': Permission denied", "batch 8: ", "batch 8: write 'x': Permission denied"},
      {"expr: unknown column",
       "[schema] derive amount_usd:", "[schema] derive amount_usd: expr: unknown column"},
      {"bad", "[schema]: ", "[schema]: bad"},
      {"", "sink 'raw'", "sink 'raw'"},
      {"", "sink 'raw': ", "sink 'raw'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ed_err_t e = {0};
    ed_err_set(&e, ED_E_IO, "%s", cases[i].msg);
    ed_err_prefix(&e, "%s", cases[i].prefix);
    CU_ASSERT_STR(e.msg, cases[i].want);
  }
}

static void test_set_tolerates_null(void) {
  CU_ASSERT_EQUAL(ed_err_set(NULL, ED_E_TIMEOUT, "x"), ED_E_TIMEOUT);
}

static void test_classifiers(void) {
  static const struct {
    ed_code_t c;
    bool retry, fatal, input;
  } cases[] = {
      {ED_E_TIMEOUT, true, false, false},       {ED_E_CONNECTION, true, false, false},
      {ED_E_SERVER_BUSY, true, false, false},   {ED_E_CONFLICT, true, false, false},
      {ED_E_TOKEN_EXPIRED, true, false, false}, {ED_E_UNAUTHORIZED, false, true, false},
      {ED_E_CORRUPT, false, true, false},       {ED_E_PARSE, false, false, true},
      {ED_E_CONFIG, false, false, true},        {ED_OK, false, false, false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    CU_ASSERT_EQUAL(ed_code_is_retriable(cases[i].c), cases[i].retry);
    CU_ASSERT_EQUAL(ed_code_is_fatal(cases[i].c), cases[i].fatal);
    CU_ASSERT_EQUAL(ed_code_is_input(cases[i].c), cases[i].input);
  }
  CU_ASSERT_STR(ed_code_name(ED_E_CONFLICT), "CONFLICT");
  CU_ASSERT_STR(ed_code_name((ed_code_t)9999), "UNKNOWN");
  CU_ASSERT_TRUE(ed_code_is_fatal((ed_code_t)9999));
}

static const cu_case_t cases[] = {CU_CASE(test_set_fills_code_and_message),
                                  CU_CASE(test_prefix_adds_context),
                                  CU_CASE(test_prefix_never_leaves_an_empty_field),
                                  CU_CASE(test_set_tolerates_null),
                                  CU_CASE(test_classifiers),
                                  CU_END};
ED_SUITE(err, cases)
