/* The Parquet reader: levels of D.7's example, nested round trips through
 * the writer, and files that lie (clear errors, no crash). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "config.h"
#include "parquet/inspect.h"
#include "parquet/reader.h"
#include "parquet/writer.h"
#include "tests/unit/cu.h"

static ed_code_t buf_sink(void *ctx, const void *p, size_t n, ed_err_t *err) {
  (void)err;
  return ed_buf_append(ctx, p, n);
}

/* tags array<string> with rows: null, [], ["t1", null, "t3"], ["x"]. */
static void write_tags(ed_buf_t *out, pq_codec_t codec, bool dict) {
  pq_schema_t *s;
  int l;
  CU_ASSERT_EQUAL_FATAL(pq_schema_new(&s, NULL), ED_OK);
  pq_schema_add(s, PQ_ROOT, "tags", PQ_T_LIST, PQ_OPTIONAL, &l, NULL);
  pq_schema_add(s, l, "element", PQ_T_STRING, PQ_OPTIONAL, NULL, NULL);
  pq_schema_add(s, PQ_ROOT, "n", PQ_T_INT32, PQ_REQUIRED, NULL, NULL);
  pq_writer_opts_t o;
  pq_writer_opts_init(&o);
  o.codec = codec;
  o.dictionary = dict;
  pq_writer_t *w;
  ed_err_t e = {0};
  CU_ASSERT_EQUAL_FATAL(pq_writer_new(s, &o, buf_sink, out, &w, &e), ED_OK);
  const uint32_t eoff[] = {0, 2, 2, 4, 5};
  const uint8_t evalid[] = {1, 0, 1, 1};
  pq_col_t elems = {.len = 4, .valid = evalid, .off = eoff, .data = "t1t3x"};
  const uint32_t loff[] = {0, 0, 0, 3, 4};
  const uint8_t lvalid[] = {0, 1, 1, 1};
  const int32_t n[] = {10, 20, 30, 40};
  pq_col_t cols[2] = {{.len = 4, .valid = lvalid, .off = loff, .nchildren = 1, .children = &elems},
                      {.len = 4, .v.i32 = n}};
  CU_ASSERT_EQUAL(pq_writer_write(w, cols, 4, &e), ED_OK);
  CU_ASSERT_EQUAL(pq_writer_close(w, &e), ED_OK);
  pq_writer_free(w);
  pq_schema_free(s);
}

static void test_list_levels_match_the_reference(void) {
  static const pq_codec_t codecs[] = {PQ_CODEC_UNCOMPRESSED, PQ_CODEC_ZSTD, PQ_CODEC_SNAPPY};
  for (size_t ci = 0; ci < 3; ci++)
    for (int dict = 0; dict < 2; dict++) {
      ed_buf_t f = ED_BUF_INIT;
      write_tags(&f, codecs[ci], dict);
      pq_reader_t *r;
      ed_err_t e = {0};
      CU_ASSERT_EQUAL_FATAL(pq_reader_open(f.data, f.len, &r, &e), ED_OK);
      CU_ASSERT_EQUAL(pq_reader_num_rows(r), 4);
      pq_leaf_data_t d;
      CU_ASSERT_EQUAL_FATAL(pq_reader_read_leaf(r, 0, 0, &d, &e), ED_OK);
      const int16_t want_def[] = {0, 1, 3, 2, 3, 3}, want_rep[] = {0, 0, 0, 1, 1, 0};
      CU_ASSERT_EQUAL(d.n, 6);
      CU_ASSERT_EQUAL(memcmp(d.def, want_def, sizeof want_def), 0);
      CU_ASSERT_EQUAL(memcmp(d.rep, want_rep, sizeof want_rep), 0);
      CU_ASSERT_EQUAL(d.nvalues, 3);
      CU_ASSERT_EQUAL(d.off[3], 5);
      CU_ASSERT_EQUAL(memcmp(d.data, "t1t3x", 5), 0);
      pq_leaf_data_fini(&d);
      pq_batch_t *b;
      CU_ASSERT_EQUAL_FATAL(pq_reader_read_row_group(r, 0, &b, &e), ED_OK);
      CU_ASSERT_EQUAL(b->nrows, 4);
      const pq_col_t *tags = &b->cols[0];
      CU_ASSERT_TRUE(!tags->valid[0] && tags->valid[1] && tags->valid[2]);
      CU_ASSERT_TRUE(tags->off[1] == tags->off[2] && tags->off[3] - tags->off[2] == 3);
      const pq_col_t *el = &tags->children[0];
      CU_ASSERT_EQUAL(el->len, 4);
      CU_ASSERT_TRUE(el->valid[0] && !el->valid[1] && el->valid[2] && el->valid[3]);
      CU_ASSERT_EQUAL(memcmp(el->data + el->off[2], "t3", 2), 0);
      CU_ASSERT_EQUAL(b->cols[1].v.i32[3], 40);
      pq_batch_free(b);
      pq_chunk_info_t ci2;
      CU_ASSERT_EQUAL(pq_reader_chunk_info(r, 0, 0, &ci2, &e), ED_OK);
      CU_ASSERT_EQUAL(ci2.stats.null_count, 3);
      CU_ASSERT_TRUE(ci2.stats.has_min_max && ci2.stats.min.len == 2 &&
                     memcmp(ci2.stats.max.bytes, "x", 1) == 0);
      CU_ASSERT_EQUAL(ci2.codec, (int)codecs[ci]);
      pq_reader_free(r);
      ed_buf_fini(&f);
    }
}

static void test_bad_files_are_corrupt_not_crashes(void) {
  ed_buf_t f = ED_BUF_INIT;
  write_tags(&f, PQ_CODEC_ZSTD, true);
  uint32_t flen;
  memcpy(&flen, f.data + f.len - 8, 4);
  static const struct {
    const char *what;
    const char *msg;
  } cases[] = {
      {"tiny", "too short"},      {"bad magic", "bad magic"},    {"footer past", "footer length"},
      {"truncated", "bad magic"}, {"page lies", "parquet page"}, {"footer cut", "parquet footer"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *b = malloc(f.len);
    memcpy(b, f.data, f.len);
    size_t n = f.len;
    switch (i) {
    case 0:
      n = 11;
      break;
    case 1:
      b[0] = 'X';
      break;
    case 2: {
      uint32_t big = (uint32_t)f.len;
      memcpy(b + n - 8, &big, 4);
      break;
    }
    case 3:
      n = f.len / 2;
      break;
    case 4:
      /* First page header: its compressed size (third field) claims more. */
      b[4 + 3] = 0x7e;
      break;
    case 5: {
      uint32_t small = 10;
      memcpy(b + n - 8, &small, 4);
      break;
    }
    }
    pq_reader_t *r = NULL;
    ed_err_t e = {0};
    ed_code_t rc = pq_reader_open(b, n, &r, &e);
    if (rc == ED_OK) {
      pq_batch_t *bt = NULL;
      rc = pq_reader_read_row_group(r, 0, &bt, &e);
      pq_batch_free(bt);
      pq_reader_free(r);
    }
    CU_ASSERT_EQUAL(rc, ED_E_CORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, cases[i].msg));
    free(b);
  }
  ed_buf_fini(&f);
}

static void test_reader_rejects_bad_indexes(void) {
  ed_buf_t f = ED_BUF_INIT;
  write_tags(&f, PQ_CODEC_ZSTD, false);
  pq_reader_t *r;
  ed_err_t e = {0};
  CU_ASSERT_EQUAL_FATAL(pq_reader_open(f.data, f.len, &r, &e), ED_OK);
  pq_leaf_data_t d;
  pq_batch_t *b;
  CU_ASSERT_EQUAL(pq_reader_read_leaf(r, 1, 0, &d, &e), ED_E_INVALID);
  CU_ASSERT_EQUAL(pq_reader_read_leaf(r, 0, 9, &d, &e), ED_E_INVALID);
  CU_ASSERT_EQUAL(pq_reader_read_row_group(r, 3, &b, &e), ED_E_INVALID);
  CU_ASSERT_STR(pq_reader_created_by(r), "ehdelta version " PACKAGE_VERSION " (build ehdelta)");
  pq_reader_free(r);
  pq_reader_free(NULL);
  ed_buf_fini(&f);
}

static void test_inspect_describes_the_footer(void) {
  ed_buf_t f = ED_BUF_INIT;
  write_tags(&f, PQ_CODEC_ZSTD, true);
  ed_buf_t o = ED_BUF_INIT;
  ed_err_t e = {0};
  CU_ASSERT_EQUAL(pq_inspect(f.data, f.len, true, &o, &e), ED_OK);
  static const char *want_json[] = {"\"num_rows\":4",
                                    "\"path\":\"tags.list.element\"",
                                    "\"max_def\":3,\"max_rep\":1",
                                    "\"codec\":\"ZSTD\"",
                                    "\"encodings\":[\"PLAIN\",\"RLE\",\"RLE_DICTIONARY\"]",
                                    "\"null_count\":3,\"min\":\"t1\",\"max\":\"x\"",
                                    "\"repetition\":\"REQUIRED\""};
  for (size_t i = 0; i < sizeof want_json / sizeof want_json[0]; i++)
    CU_ASSERT_PTR_NOT_NULL(strstr(o.data, want_json[i]));
  ed_buf_reset(&o);
  CU_ASSERT_EQUAL(pq_inspect(f.data, f.len, false, &o, &e), ED_OK);
  CU_ASSERT_PTR_NOT_NULL(strstr(o.data, "OPTIONAL LIST tags"));
  CU_ASSERT_PTR_NOT_NULL(strstr(o.data, "row group 0: 4 rows"));
  ed_buf_reset(&o);
  CU_ASSERT_EQUAL(pq_inspect(f.data, 8, true, &o, &e), ED_E_CORRUPT);
  ed_buf_fini(&o);
  ed_buf_fini(&f);
}

static void test_dictionary_fallback_and_row_groups_round_trip(void) {
  pq_schema_t *s;
  CU_ASSERT_EQUAL_FATAL(pq_schema_new(&s, NULL), ED_OK);
  pq_schema_add(s, PQ_ROOT, "k", PQ_T_STRING, PQ_OPTIONAL, NULL, NULL);
  pq_writer_opts_t o;
  pq_writer_opts_init(&o);
  o.dict_max_bytes = 4096;
  o.row_group_bytes = 16 << 10;
  o.page_bytes = 8 << 10;
  enum { N = 60000 };
  uint32_t *off = malloc((N + 1) * sizeof *off);
  char *data = malloc(N * 8);
  uint8_t *valid = malloc(N);
  off[0] = 0;
  for (uint32_t i = 0; i < N; i++) {
    int n = snprintf(data + off[i], 9, "%07u", i % 7 == 0 ? 0 : i);
    off[i + 1] = off[i] + (uint32_t)n;
    valid[i] = i % 11 != 0;
  }
  ed_buf_t f = ED_BUF_INIT;
  pq_writer_t *w;
  ed_err_t e = {0};
  CU_ASSERT_EQUAL_FATAL(pq_writer_new(s, &o, buf_sink, &f, &w, &e), ED_OK);
  pq_col_t c = {.len = N, .valid = valid, .off = off, .data = data};
  CU_ASSERT_EQUAL(pq_writer_write(w, &c, N, &e), ED_OK);
  CU_ASSERT_EQUAL(pq_writer_close(w, &e), ED_OK);
  CU_ASSERT_TRUE(pq_writer_num_row_groups(w) > 3);
  pq_reader_t *r;
  CU_ASSERT_EQUAL_FATAL(pq_reader_open(f.data, f.len, &r, &e), ED_OK);
  size_t row = 0, bad = 0;
  bool mixed = false;
  for (size_t g = 0; g < pq_reader_num_row_groups(r); g++) {
    pq_chunk_info_t ci;
    pq_reader_chunk_info(r, g, 0, &ci, &e);
    mixed |= (ci.encodings >> 8 & 1) && (ci.encodings & 1) && ci.dictionary_page_offset > 0;
    pq_batch_t *b;
    CU_ASSERT_EQUAL_FATAL(pq_reader_read_row_group(r, g, &b, &e), ED_OK);
    const pq_col_t *k = &b->cols[0];
    for (size_t i = 0; i < b->nrows; i++, row++) {
      bool v = k->valid[i];
      if (v != (valid[row] != 0))
        bad++;
      else if (v && (k->off[i + 1] - k->off[i] != off[row + 1] - off[row] ||
                     memcmp(k->data + k->off[i], data + off[row], off[row + 1] - off[row])))
        bad++;
    }
    pq_batch_free(b);
  }
  CU_ASSERT_EQUAL(row, N);
  CU_ASSERT_EQUAL(bad, 0);
  CU_ASSERT_TRUE(mixed); /* some chunk has dictionary pages, then PLAIN ones */
  pq_reader_free(r);
  pq_writer_free(w);
  pq_schema_free(s);
  ed_buf_fini(&f);
  free(off);
  free(data);
  free(valid);
}

static const cu_case_t cases[] = {
    CU_CASE(test_inspect_describes_the_footer),
    CU_CASE(test_dictionary_fallback_and_row_groups_round_trip),
    CU_CASE(test_list_levels_match_the_reference),
    CU_CASE(test_bad_files_are_corrupt_not_crashes),
    CU_CASE(test_reader_rejects_bad_indexes),
    CU_END,
};
ED_SUITE(pq_reader, cases)
