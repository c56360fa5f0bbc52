#include <stdlib.h>

#include "common/buf.h"
#include "tests/unit/cu.h"

static void test_append_grows_and_terminates(void) {
  ed_buf_t b = ED_BUF_INIT;
  for (int i = 0; i < 1000; i++)
    CU_ASSERT_EQUAL(ed_buf_puts(&b, "ab"), ED_OK);
  CU_ASSERT_EQUAL(b.len, 2000);
  CU_ASSERT_EQUAL(b.data[2000], '\0');
  ed_buf_reset(&b);
  CU_ASSERT_EQUAL(b.len, 0);
  CU_ASSERT_TRUE(b.cap >= 2001);
  ed_buf_printf(&b, "%d-%s", 42, "x");
  CU_ASSERT_STR(b.data, "42-x");
  ed_buf_fini(&b);
  ed_buf_fini(&b);
}

static void test_json_str_escapes(void) {
  static const struct {
    const char *in;
    size_t n;
    const char *want;
  } cases[] = {
      {"plain", 5, "\"plain\""},
      {"q\"b\\", 4, "\"q\\\"b\\\\\""},
      {"a\nb\tc\r", 6, "\"a\\nb\\tc\\r\""},
      {"\x01", 1, "\"\\u0001\""},
      {"caf\xc3\xa9", 5, "\"caf\xc3\xa9\""},
      {"\xff", 1, "\"\xEF\xBF\xBD\""},                                 /* invalid byte */
      {"\xc0\xaf", 2, "\"\xEF\xBF\xBD\xEF\xBF\xBD\""},                 /* overlong */
      {"\xed\xa0\x80", 3, "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\""}, /* surrogate */
      {"\xf0\x9f\x98\x80", 4, "\"\xf0\x9f\x98\x80\""},
      {"", 0, "\"\""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ed_buf_t b = ED_BUF_INIT;
    ed_buf_json_str(&b, cases[i].in, cases[i].n);
    CU_ASSERT_STR(b.data, cases[i].want);
    ed_buf_fini(&b);
  }
}

static void test_steal_gives_ownership(void) {
  ed_buf_t b = ED_BUF_INIT;
  char *s = ed_buf_steal(&b);
  CU_ASSERT_STR(s, "");
  free(s);
  ed_buf_puts(&b, "x");
  s = ed_buf_steal(&b);
  CU_ASSERT_STR(s, "x");
  CU_ASSERT_PTR_NULL(b.data);
  free(s);
}

/* curl's dynbuf rule: one failed append fails the buffer for good (until
 * reset), later appends change nothing, and the end of the writer sees it. */
static void test_a_failed_append_is_sticky(void) {
  ed_buf_t b = ED_BUF_INIT;
  CU_ASSERT_EQUAL(ed_buf_puts(&b, "{\"a\":"), ED_OK);
  CU_ASSERT_EQUAL(ed_buf_status(&b), ED_OK);
  CU_ASSERT_EQUAL(ed_buf_reserve(&b, SIZE_MAX - 2), ED_E_NOMEM); /* cannot be had */
  CU_ASSERT_EQUAL(ed_buf_status(&b), ED_E_NOMEM);
  CU_ASSERT_EQUAL(ed_buf_puts(&b, "1}"), ED_E_NOMEM);
  CU_ASSERT_EQUAL(ed_buf_putc(&b, '\n'), ED_E_NOMEM);
  CU_ASSERT_EQUAL(ed_buf_printf(&b, "%d", 7), ED_E_NOMEM);
  CU_ASSERT_EQUAL(ed_buf_json_str(&b, "x", 1), ED_E_NOMEM);
  CU_ASSERT_EQUAL(ed_buf_put_u64le(&b, 1), ED_E_NOMEM);
  CU_ASSERT_STR(b.data, "{\"a\":"); /* nothing after the failure landed */
  CU_ASSERT_EQUAL(ed_buf_status(&b), ED_E_NOMEM);
  CU_ASSERT_PTR_NULL(ed_buf_steal(&b)); /* the bytes of a failed buffer are never handed out */
  CU_ASSERT_EQUAL(ed_buf_status(&b), ED_OK);
  CU_ASSERT_EQUAL(ed_buf_reserve(&b, SIZE_MAX), ED_E_NOMEM);
  ed_buf_reset(&b);
  CU_ASSERT_EQUAL(ed_buf_status(&b), ED_OK);
  CU_ASSERT_EQUAL(ed_buf_puts(&b, "ok"), ED_OK);
  CU_ASSERT_STR(b.data, "ok");
  ed_buf_fini(&b);
}

static const cu_case_t cases[] = {
    CU_CASE(test_append_grows_and_terminates), CU_CASE(test_json_str_escapes),
    CU_CASE(test_steal_gives_ownership), CU_CASE(test_a_failed_append_is_sticky), CU_END};
ED_SUITE(buf, cases)
