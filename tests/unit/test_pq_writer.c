/* The Parquet writer: the complete file of delta-parquet.md D.11 byte by
 * byte, schema rules, statistics, dictionary fallback, sinks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "config.h"
#include "parquet/reader.h"
#include "parquet/writer.h"
#include "tests/unit/cu.h"

static ed_code_t buf_sink(void *ctx, const void *p, size_t n, ed_err_t *err) {
  (void)err;
  return ed_buf_append(ctx, p, n);
}
static ed_code_t failing_sink(void *ctx, const void *p, size_t n, ed_err_t *err) {
  (void)ctx, (void)p, (void)n;
  return ed_err_set(err, ED_E_NOSPACE, "disk full");
}

static size_t hex(const char *h, uint8_t *out) {
  size_t n = 0;
  for (; h[0] && h[1]; h++) {
    if (*h == ' ')
      continue;
    unsigned v;
    sscanf(h, "%2x", &v);
    out[n++] = (uint8_t)v;
    h++;
  }
  return n;
}

static pq_schema_t *one_col(pq_type_t t, pq_repetition_t rep) {
  pq_schema_t *s;
  CU_ASSERT_EQUAL_FATAL(pq_schema_new(&s, NULL), ED_OK);
  CU_ASSERT_EQUAL(pq_schema_add(s, PQ_ROOT, "x", t, rep, NULL, NULL), ED_OK);
  return s;
}

static void test_file_matches_reference_bytes(void) {
  /* D.11 (x = 1, NULL, 3), with our level encoding (one bit-packed group
   * instead of three RLE runs) and the is_{max,min}_value_exact flags. */
  const char *want_hex = "50415231"
                         "1500152c152c2c15061500150615060000" /* page header, 22-byte body */
                         "020000000305"                       /* def levels: 1 group: 1,0,1 */
                         "01000000000000000300000000000000"   /* values 1, 3 */
                         "1502192c4806736368656d6115020015042502180178001606191c191c2608"
                         "1c15041925000619180178150016061"
                         "64e164e26083c3602280803000000000000001808"
                         "01000000000000001111000000"
                         "164e1606260816"
                         "4e14"
                         "0000"
                         "2819"
                         "772076657273696f6e20312e302e3020286275696c64203029"
                         "191c1c0000"
                         "00"
                         "7c000000"
                         "50415231";
  uint8_t want[512];
  size_t wn = hex(want_hex, want);
  pq_schema_t *s = one_col(PQ_T_INT64, PQ_OPTIONAL);
  pq_writer_opts_t o;
  pq_writer_opts_init(&o);
  o.codec = PQ_CODEC_UNCOMPRESSED;
  o.dictionary = false;
  o.created_by = "w version 1.0.0 (build 0)";
  ed_buf_t out = ED_BUF_INIT;
  pq_writer_t *w;
  ed_err_t e = {0};
  CU_ASSERT_EQUAL_FATAL(pq_writer_new(s, &o, buf_sink, &out, &w, &e), ED_OK);
  const int64_t v[] = {1, 0, 3};
  const uint8_t valid[] = {1, 0, 1};
  pq_col_t c = {.len = 3, .valid = valid, .v.i64 = v};
  CU_ASSERT_EQUAL(pq_writer_write(w, &c, 3, &e), ED_OK);
  CU_ASSERT_EQUAL(pq_writer_close(w, &e), ED_OK);
  CU_ASSERT_EQUAL(out.len, wn);
  CU_ASSERT_EQUAL(memcmp(out.data, want, wn < out.len ? wn : out.len), 0);
  CU_ASSERT_EQUAL(pq_writer_bytes(w), out.len);
  pq_stats_t st;
  CU_ASSERT_EQUAL(pq_writer_stats(w, 0, &st, &e), ED_OK);
  CU_ASSERT_EQUAL(st.null_count, 1);
  CU_ASSERT_EQUAL(st.num_values, 3);
  CU_ASSERT_TRUE(st.has_min_max && st.min.u.i64 == 1 && st.max.u.i64 == 3);
  pq_writer_free(w);
  pq_schema_free(s);
  ed_buf_fini(&out);
}

static void test_schema_rejects_bad_trees(void) {
  pq_schema_t *s;
  ed_err_t e = {0};
  int l, m, leaf;
  CU_ASSERT_EQUAL_FATAL(pq_schema_new(&s, &e), ED_OK);
  CU_ASSERT_EQUAL(pq_schema_finish(s, &e), ED_E_INVALID); /* no columns */
  CU_ASSERT_EQUAL(pq_schema_add(s, PQ_ROOT, "l", PQ_T_LIST, PQ_OPTIONAL, &l, &e), ED_OK);
  CU_ASSERT_EQUAL(pq_schema_finish(s, &e), ED_E_INVALID); /* LIST without element */
  CU_ASSERT_EQUAL(pq_schema_add(s, l, "e", PQ_T_INT32, PQ_OPTIONAL, NULL, &e), ED_OK);
  CU_ASSERT_EQUAL(pq_schema_add(s, l, "e2", PQ_T_INT32, PQ_OPTIONAL, NULL, &e), ED_E_INVALID);
  CU_ASSERT_EQUAL(pq_schema_add(s, PQ_ROOT, "m", PQ_T_MAP, PQ_OPTIONAL, &m, &e), ED_OK);
  CU_ASSERT_EQUAL(pq_schema_add(s, m, "k", PQ_T_STRING, PQ_OPTIONAL, NULL, &e), ED_E_INVALID);
  CU_ASSERT_EQUAL(pq_schema_add(s, m, "k", PQ_T_STRING, PQ_REQUIRED, NULL, &e), ED_OK);
  CU_ASSERT_EQUAL(pq_schema_add(s, m, "v", PQ_T_STRING, PQ_OPTIONAL, NULL, &e), ED_OK);
  CU_ASSERT_EQUAL(pq_schema_add(s, PQ_ROOT, "i", PQ_T_INT64, PQ_OPTIONAL, &leaf, &e), ED_OK);
  CU_ASSERT_EQUAL(pq_schema_add(s, leaf, "c", PQ_T_INT64, PQ_OPTIONAL, NULL, &e), ED_E_INVALID);
  CU_ASSERT_EQUAL(pq_schema_add(s, PQ_ROOT, "r", PQ_T_LIST, PQ_REPEATED, NULL, &e), ED_E_INVALID);
  CU_ASSERT_EQUAL(pq_schema_finish(s, &e), ED_OK);
  CU_ASSERT_EQUAL(pq_schema_num_leaves(s), 4);
  static const struct {
    const char *path;
    int def, rep;
  } want[] = {{"l.list.element", 3, 1},
              {"m.key_value.key", 2, 1},
              {"m.key_value.value", 3, 1},
              {"i", 1, 0}};
  for (size_t i = 0; i < 4; i++) {
    const pq_node_t *n = pq_schema_node(s, pq_schema_leaf_node(s, i));
    CU_ASSERT_STR(n->path, want[i].path);
    CU_ASSERT_EQUAL(n->max_def, want[i].def);
    CU_ASSERT_EQUAL(n->max_rep, want[i].rep);
  }
  CU_ASSERT_EQUAL(pq_schema_find(s, PQ_ROOT, "m"), m);
  CU_ASSERT_EQUAL(pq_schema_find(s, PQ_ROOT, "nope"), -1);
  pq_schema_free(s);
  pq_schema_free(NULL);
}

static void test_null_in_required_field_is_a_schema_error(void) {
  pq_schema_t *s = one_col(PQ_T_INT32, PQ_REQUIRED);
  ed_buf_t out = ED_BUF_INIT;
  pq_writer_t *w;
  ed_err_t e = {0};
  CU_ASSERT_EQUAL_FATAL(pq_writer_new(s, NULL, buf_sink, &out, &w, &e), ED_OK);
  const int32_t v[] = {1, 2};
  const uint8_t valid[] = {1, 0};
  pq_col_t c = {.len = 2, .valid = valid, .v.i32 = v};
  CU_ASSERT_EQUAL(pq_writer_write(w, &c, 2, &e), ED_E_SCHEMA);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "null in row 1"));
  pq_writer_free(w);
  pq_schema_free(s);
  ed_buf_fini(&out);
}

static void test_short_column_is_a_schema_error(void) {
  pq_schema_t *s = one_col(PQ_T_STRING, PQ_OPTIONAL);
  ed_buf_t out = ED_BUF_INIT;
  pq_writer_t *w;
  ed_err_t e = {0};
  CU_ASSERT_EQUAL_FATAL(pq_writer_new(s, NULL, buf_sink, &out, &w, &e), ED_OK);
  const uint32_t off[] = {0, 1};
  pq_col_t c = {.len = 1, .off = off, .data = "a"};
  CU_ASSERT_EQUAL(pq_writer_write(w, &c, 2, &e), ED_E_SCHEMA);
  pq_col_t nooff = {.len = 2};
  CU_ASSERT_EQUAL(pq_writer_write(w, &nooff, 2, &e), ED_E_SCHEMA);
  pq_writer_free(w);
  pq_schema_free(s);
  ed_buf_fini(&out);
}

static void test_sink_error_is_returned_with_context(void) {
  pq_schema_t *s = one_col(PQ_T_INT32, PQ_REQUIRED);
  pq_writer_t *w = NULL;
  ed_err_t e = {0};
  CU_ASSERT_EQUAL(pq_writer_new(s, NULL, failing_sink, NULL, &w, &e), ED_E_NOSPACE);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "disk full"));
  CU_ASSERT_PTR_NULL(w);
  pq_schema_free(s);
}

static void test_string_stats_use_unsigned_byte_order(void) {
  pq_schema_t *s = one_col(PQ_T_STRING, PQ_OPTIONAL);
  ed_buf_t out = ED_BUF_INIT;
  pq_writer_t *w;
  ed_err_t e = {0};
  CU_ASSERT_EQUAL_FATAL(pq_writer_new(s, NULL, buf_sink, &out, &w, &e), ED_OK);
  /* "\xc3\xa9" (é) sorts after "z" unsigned; "" is the minimum. */
  const char data[] = "zab\xc3\xa9";
  const uint32_t off[] = {0, 1, 3, 3, 5};
  const uint8_t valid[] = {1, 1, 1, 1};
  pq_col_t c = {.len = 4, .valid = valid, .off = off, .data = data};
  CU_ASSERT_EQUAL(pq_writer_write(w, &c, 4, &e), ED_OK);
  CU_ASSERT_EQUAL(pq_writer_close(w, &e), ED_OK);
  pq_stats_t st;
  CU_ASSERT_EQUAL(pq_writer_stats(w, 0, &st, &e), ED_OK);
  CU_ASSERT_EQUAL(st.min.len, 0);
  CU_ASSERT_TRUE(st.max.len == 2 && memcmp(st.max.bytes, "\xc3\xa9", 2) == 0);
  CU_ASSERT_EQUAL(pq_writer_stats(w, 1, &st, &e), ED_E_INVALID);
  pq_writer_free(w);
  pq_schema_free(s);
  ed_buf_fini(&out);
}

static void test_fd_output_equals_sink_output(void) {
  pq_schema_t *s = one_col(PQ_T_DOUBLE, PQ_OPTIONAL);
  char path[] = "/tmp/pq_unit_XXXXXX";
  int fd = mkstemp(path);
  CU_ASSERT_FATAL(fd >= 0);
  double v[1000];
  for (int i = 0; i < 1000; i++)
    v[i] = i * 0.5;
  pq_col_t c = {.len = 1000, .v.f64 = v};
  ed_err_t e = {0};
  pq_writer_t *w1, *w2;
  ed_buf_t out = ED_BUF_INIT;
  CU_ASSERT_EQUAL_FATAL(pq_writer_new_fd(s, NULL, fd, &w1, &e), ED_OK);
  CU_ASSERT_EQUAL_FATAL(pq_writer_new(s, NULL, buf_sink, &out, &w2, &e), ED_OK);
  CU_ASSERT_EQUAL(pq_writer_write(w1, &c, 1000, &e), ED_OK);
  CU_ASSERT_EQUAL(pq_writer_write(w2, &c, 1000, &e), ED_OK);
  CU_ASSERT_EQUAL(pq_writer_close(w1, &e), ED_OK);
  CU_ASSERT_EQUAL(pq_writer_close(w2, &e), ED_OK);
  off_t sz = lseek(fd, 0, SEEK_END);
  CU_ASSERT_EQUAL((size_t)sz, out.len);
  char *back = malloc(out.len);
  CU_ASSERT_EQUAL(pread(fd, back, out.len, 0), (ssize_t)out.len);
  CU_ASSERT_EQUAL(memcmp(back, out.data, out.len), 0);
  free(back);
  close(fd);
  unlink(path);
  pq_writer_free(w1);
  pq_writer_free(w2);
  pq_writer_free(NULL);
  pq_schema_free(s);
  ed_buf_fini(&out);
}

static const cu_case_t cases[] = {
    CU_CASE(test_file_matches_reference_bytes),
    CU_CASE(test_schema_rejects_bad_trees),
    CU_CASE(test_null_in_required_field_is_a_schema_error),
    CU_CASE(test_short_column_is_a_schema_error),
    CU_CASE(test_sink_error_is_returned_with_context),
    CU_CASE(test_string_stats_use_unsigned_byte_order),
    CU_CASE(test_fd_output_equals_sink_output),
    CU_END,
};
ED_SUITE(pq_writer, cases)
