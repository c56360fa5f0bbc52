#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "tests/unit/cu.h"

static void test_text_line_has_level_event_fields(void) {
  ed_buf_t b = ED_BUF_INIT;
  ed_log_render(&b, false, ED_LOG_INFO, "commit", "table=raw version=42");
  CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "Z info commit table=raw version=42\n"));
  ed_buf_fini(&b);
}

static void test_json_line_parses_with_typed_fields(void) {
  ed_buf_t b = ED_BUF_INIT;
  ed_log_render(&b, true, ED_LOG_WARN, "retry",
                "op=put attempt=3 delay_ms=250.5 reason=\"server \\\"busy\\\"\" ok=false neg=-7 "
                "zip=007");
  json_object *o = json_tokener_parse(b.data);
  CU_ASSERT_PTR_NOT_NULL_FATAL(o);
  json_object *v;
  CU_ASSERT_TRUE(json_object_object_get_ex(o, "level", &v));
  CU_ASSERT_STR(json_object_get_string(v), "warn");
  CU_ASSERT_TRUE(json_object_object_get_ex(o, "event", &v));
  CU_ASSERT_STR(json_object_get_string(v), "retry");
  CU_ASSERT_TRUE(json_object_object_get_ex(o, "attempt", &v));
  CU_ASSERT_TRUE(json_object_is_type(v, json_type_int));
  CU_ASSERT_EQUAL(json_object_get_int(v), 3);
  CU_ASSERT_TRUE(json_object_object_get_ex(o, "delay_ms", &v));
  CU_ASSERT_TRUE(json_object_is_type(v, json_type_double));
  CU_ASSERT_TRUE(json_object_object_get_ex(o, "reason", &v));
  CU_ASSERT_STR(json_object_get_string(v), "server \"busy\"");
  CU_ASSERT_TRUE(json_object_object_get_ex(o, "ok", &v));
  CU_ASSERT_TRUE(json_object_is_type(v, json_type_boolean));
  CU_ASSERT_TRUE(json_object_object_get_ex(o, "neg", &v));
  CU_ASSERT_EQUAL(json_object_get_int(v), -7);
  CU_ASSERT_TRUE(json_object_object_get_ex(o, "zip", &v)); /* leading zero: a string */
  CU_ASSERT_TRUE(json_object_is_type(v, json_type_string));
  json_object_put(o);
  ed_buf_fini(&b);
}

static void test_level_filter_and_parse(void) {
  ed_log_level_t l;
  CU_ASSERT_EQUAL(ed_log_parse_level("DEBUG", &l, NULL), ED_OK);
  CU_ASSERT_EQUAL(l, ED_LOG_DEBUG);
  ed_err_t e = {0};
  CU_ASSERT_EQUAL(ed_log_parse_level("verbose", &l, &e), ED_E_INVALID);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "expected error, warn, info or debug"));
  char *mem = NULL;
  size_t memlen = 0;
  FILE *f = open_memstream(&mem, &memlen);
  ed_log_setup(ED_LOG_WARN, false, f);
  ed_log(ED_LOG_INFO, "hidden", "x=1");
  ed_log(ED_LOG_ERROR, "shown", "x=2");
  fflush(f);
  CU_ASSERT_PTR_NULL(strstr(mem, "hidden"));
  CU_ASSERT_PTR_NOT_NULL(strstr(mem, "error shown x=2"));
  ed_log_setup(ED_LOG_INFO, false, NULL);
  fclose(f);
  free(mem);
}

/* Lines carry <N> syslog priorities only when JOURNAL_STREAM names the very
 * stream they go to: a file stands in for the journal's socket. */
static void test_journal_stream_gets_priority_prefixes(void) {
  char path[] = "/tmp/test_log_journal.XXXXXX";
  int fd = mkstemp(path);
  CU_ASSERT_FATAL(fd >= 0);
  FILE *f = fdopen(fd, "w+");
  struct stat st;
  CU_ASSERT_FATAL(fstat(fd, &st) == 0);
  char js[64];
  snprintf(js, sizeof js, "%llu:%llu", (unsigned long long)st.st_dev,
           (unsigned long long)st.st_ino);
  setenv("JOURNAL_STREAM", js, 1);
  ed_log_setup(ED_LOG_DEBUG, false, f);
  ed_log(ED_LOG_ERROR, "e", "x=1");
  ed_log(ED_LOG_WARN, "w", "x=2");
  ed_log(ED_LOG_INFO, "i", "x=3");
  ed_log(ED_LOG_DEBUG, "d", "x=4");
  /* Another file under the same variable: no prefix. */
  snprintf(js, sizeof js, "%llu:%llu", (unsigned long long)st.st_dev,
           (unsigned long long)st.st_ino + 1);
  setenv("JOURNAL_STREAM", js, 1);
  ed_log_setup(ED_LOG_DEBUG, false, f);
  ed_log(ED_LOG_ERROR, "plain", "x=5");
  setenv("JOURNAL_STREAM", "garbage", 1);
  CU_ASSERT_FALSE(ed_log_fd_is_journal(fd));
  unsetenv("JOURNAL_STREAM");
  ed_log_setup(ED_LOG_INFO, false, NULL);
  rewind(f);
  char line[256];
  const char *want[] = {"<3>", "<4>", "<6>", "<7>"};
  for (int i = 0; i < 4; i++) {
    CU_ASSERT_PTR_NOT_NULL_FATAL(fgets(line, sizeof line, f));
    CU_ASSERT_EQUAL(strncmp(line, want[i], 3), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(line, "x="));
  }
  CU_ASSERT_PTR_NOT_NULL_FATAL(fgets(line, sizeof line, f));
  CU_ASSERT_NOT_EQUAL(line[0], '<');
  CU_ASSERT_PTR_NOT_NULL(strstr(line, "error plain x=5"));
  fclose(f);
  unlink(path);
}

static const cu_case_t cases[] = {CU_CASE(test_text_line_has_level_event_fields),
                                  CU_CASE(test_json_line_parses_with_typed_fields),
                                  CU_CASE(test_level_filter_and_parse),
                                  CU_CASE(test_journal_stream_gets_priority_prefixes), CU_END};
ED_SUITE(log, cases)
