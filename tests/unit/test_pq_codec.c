/* Thrift compact protocol and RLE/bit-packed hybrid: the worked bytes of
 * delta-parquet.md D.2 and D.6, round trips, and malformed input. */
#include <stdlib.h>
#include <string.h>

#include "parquet/rle.h"
#include "parquet/thrift.h"
#include "proto/parquet.h"
#include "tests/unit/cu.h"

static bool bytes_eq(const ed_buf_t *b, const char *hex) {
  size_t n = strlen(hex) / 2;
  if (b->len != n)
    return false;
  for (size_t i = 0; i < n; i++) {
    unsigned v;
    sscanf(hex + 2 * i, "%2x", &v);
    if ((unsigned char)b->data[i] != v)
      return false;
  }
  return true;
}

static void test_thrift_encodes_reference_bytes(void) {
  static const struct {
    int kind;
    const char *hex;
  } cases[] = {
      {0, "150a05220e"},               /* i32 field 1 = 5, then field 17 = 7 (long form) */
      {1, "1122"},                     /* bool fields 1 = true, 3 = false */
      {2, "392803616464047061746800"}, /* list<string> field 3 ["add","path"] */
      {3, "1c0000"},                   /* ColumnOrder{TYPE_ORDER{}} as a list element */
      {4, "16be930600"},               /* i64 field 1 = 50399 -> zigzag 100798 */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ed_buf_t b = ED_BUF_INIT;
    pq_tw_t t;
    pq_tw_init(&t, &b);
    pq_tw_begin(&t);
    switch (cases[i].kind) {
    case 0:
      pq_tw_i32(&t, 1, 5);
      pq_tw_i32(&t, 17, 7);
      break;
    case 1:
      pq_tw_bool(&t, 1, true);
      pq_tw_bool(&t, 3, false);
      break;
    case 2:
      pq_tw_list(&t, 3, PQ_TT_BINARY, 2);
      pq_tw_elem_bin(&t, "add", 3);
      pq_tw_elem_bin(&t, "path", 4);
      pq_tw_end(&t);
      break;
    case 3:
      pq_tw_elem_struct(&t);
      pq_tw_struct(&t, PQF_CO_TYPE_ORDER);
      pq_tw_end(&t);
      pq_tw_end(&t);
      break;
    case 4:
      pq_tw_i64(&t, 1, 50399);
      pq_tw_end(&t);
      break;
    }
    CU_ASSERT_TRUE(bytes_eq(&b, cases[i].hex));
    CU_ASSERT_FALSE(t.oom);
    ed_buf_fini(&b);
  }
}

static void test_thrift_reads_back_and_skips_unknown_fields(void) {
  ed_buf_t b = ED_BUF_INIT;
  pq_tw_t t;
  pq_tw_init(&t, &b);
  pq_tw_begin(&t);
  pq_tw_i32(&t, 1, -7);
  pq_tw_struct(&t, 2);
  pq_tw_str(&t, 1, "nested");
  pq_tw_list(&t, 2, PQ_TT_I32, 20);
  for (int i = 0; i < 20; i++)
    pq_tw_elem_i32(&t, i);
  pq_tw_end(&t);
  pq_tw_i64(&t, 300, INT64_MIN);
  pq_tw_end(&t);
  pq_tr_t r;
  pq_tr_init(&r, b.data, b.len);
  int16_t last = 0, id;
  int ty;
  int64_t v;
  CU_ASSERT_TRUE(pq_tr_field(&r, &last, &ty, &id) && id == 1 && ty == PQ_TT_I32);
  CU_ASSERT_TRUE(pq_tr_int(&r, ty, &v) && v == -7);
  CU_ASSERT_TRUE(pq_tr_field(&r, &last, &ty, &id) && id == 2 && ty == PQ_TT_STRUCT);
  CU_ASSERT_TRUE(pq_tr_skip(&r, ty, 0));
  CU_ASSERT_TRUE(pq_tr_field(&r, &last, &ty, &id) && id == 300 && ty == PQ_TT_I64);
  CU_ASSERT_TRUE(pq_tr_int(&r, ty, &v) && v == INT64_MIN);
  CU_ASSERT_TRUE(pq_tr_field(&r, &last, &ty, &id) && ty == PQ_TT_STOP);
  CU_ASSERT_PTR_EQUAL(r.p, r.end);
  ed_buf_fini(&b);
}

static void test_thrift_rejects_malformed_input(void) {
  static const struct {
    const char *bytes;
    size_t n;
    const char *err;
  } cases[] = {
      {"\x1e", 1, "unknown thrift field type"},
      {"\x18\x05"
       "ab",
       4, "binary length past the end"},
      {"\x19\xf5\xff\xff\xff\x0f", 6, "list size past the end"},
      {"\x15\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12, "varint longer than 10 bytes"},
      {"\x15", 1, "truncated varint"},
      {"\x1c\x1c\x1c", 3, "truncated struct (no stop byte)"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    pq_tr_t r;
    pq_tr_init(&r, cases[i].bytes, cases[i].n);
    CU_ASSERT_FALSE(pq_tr_skip(&r, PQ_TT_STRUCT, 0));
    CU_ASSERT_STR(r.err, cases[i].err);
  }
  /* Nesting deeper than the limit stops instead of recursing on. */
  char deep[200];
  memset(deep, 0x1c, sizeof deep);
  pq_tr_t r;
  pq_tr_init(&r, deep, sizeof deep);
  CU_ASSERT_FALSE(pq_tr_skip(&r, PQ_TT_STRUCT, 0));
  CU_ASSERT_STR(r.err, "thrift nesting too deep");
}

static void test_rle_decodes_reference_runs(void) {
  /* D.6: definition levels 1 1 1 0 1 1 at bit width 1. */
  const uint8_t in[] = {0x06, 0x01, 0x02, 0x00, 0x04, 0x01};
  int16_t out[6];
  size_t used;
  CU_ASSERT_EQUAL(pq_rle_decode16(in, sizeof in, 1, out, 6, &used), 0);
  CU_ASSERT_EQUAL(used, sizeof in);
  const int16_t want[] = {1, 1, 1, 0, 1, 1};
  CU_ASSERT_EQUAL(memcmp(out, want, sizeof want), 0);
  CU_ASSERT_EQUAL(pq_rle_decode16(in, 3, 1, out, 6, &used), -1); /* truncated */
}

static void test_rle_round_trips_every_width(void) {
  srand(42);
  for (int bw = 1; bw <= 32; bw++) {
    for (int shape = 0; shape < 4; shape++) {
      size_t n = (size_t)(shape == 3 ? 1 : 1000 + bw);
      uint32_t *v = malloc(n * sizeof *v), *o = malloc(n * sizeof *o);
      uint64_t mask = bw == 32 ? 0xffffffffu : ((1u << bw) - 1);
      for (size_t i = 0; i < n; i++) {
        uint32_t x = (uint32_t)rand() ^ ((uint32_t)rand() << 16);
        if (shape == 1)
          x = (uint32_t)(i / 37); /* long runs */
        if (shape == 2)
          x = (uint32_t)(i % 3 == 0 ? i : 5);
        v[i] = (uint32_t)(x & mask);
      }
      ed_buf_t b = ED_BUF_INIT;
      CU_ASSERT_EQUAL(pq_rle_encode32(&b, v, n, bw), ED_OK);
      size_t used;
      CU_ASSERT_EQUAL(pq_rle_decode32((const uint8_t *)b.data, b.len, bw, o, n, &used), 0);
      CU_ASSERT_EQUAL(memcmp(v, o, n * sizeof *v), 0);
      CU_ASSERT_EQUAL(used, b.len);
      ed_buf_fini(&b);
      free(v);
      free(o);
    }
  }
}

static void test_rle_uses_runs_for_repeats(void) {
  uint16_t v[10000];
  for (size_t i = 0; i < 10000; i++)
    v[i] = 1;
  ed_buf_t b = ED_BUF_INIT;
  CU_ASSERT_EQUAL(pq_rle_encode16(&b, v, 10000, 1), ED_OK);
  CU_ASSERT_TRUE(b.len <= 4); /* one run: varint(20000) + one value byte */
  ed_buf_fini(&b);
}

static const cu_case_t cases[] = {
    CU_CASE(test_thrift_encodes_reference_bytes),
    CU_CASE(test_thrift_reads_back_and_skips_unknown_fields),
    CU_CASE(test_thrift_rejects_malformed_input),
    CU_CASE(test_rle_decodes_reference_runs),
    CU_CASE(test_rle_round_trips_every_width),
    CU_CASE(test_rle_uses_runs_for_repeats),
    CU_END,
};
ED_SUITE(pq_codec, cases)
