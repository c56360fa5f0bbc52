/* amqp/value and amqp/write: what the writer writes the reader reads back,
 * value for value, and the reader refuses every cut of it. */
#include <string.h>

#include "amqp/value.h"
#include "amqp/write.h"
#include "cu.h"

/* a list of every type the writer has, as the emulator and client use them */
static void write_sample(ed_buf_t *b) {
  amqp_w_t w;
  amqp_w_init(&w, b);
  amqp_put_described(&w, AMQP_D_TRANSFER);
  size_t at = amqp_open(&w, AMQP_T_LIST32);
  amqp_put_null(&w);
  amqp_put_ubyte(&w, 7);
  amqp_put_ushort(&w, 0xfffe);
  amqp_put_uint(&w, 0x80013700);
  amqp_put_long(&w, -5);
  amqp_put_timestamp(&w, 1700000000123);
  amqp_put_str(&w, "abc", 3);
  amqp_put_sym(&w, "x-opt-offset", 12);
  amqp_put_str32(&w, "42", 2);
  char big[300];
  memset(big, 'q', sizeof big);
  amqp_put_bin(&w, big, sizeof big);
  size_t m = amqp_open(&w, AMQP_T_MAP32);
  amqp_put_sym(&w, "k", 1);
  amqp_put_str(&w, "v", 1);
  amqp_close(&w, m, 2);
  amqp_close(&w, at, 11);
  CU_ASSERT_EQUAL(amqp_w_end(&w), ED_OK);
}

static void test_written_values_read_back(void) {
  ed_buf_t b = ED_BUF_INIT;
  write_sample(&b);
  amqp_val_t v, it[16];
  CU_ASSERT_FATAL(amqp_read_exact((const uint8_t *)b.data, b.len, &v));
  CU_ASSERT(v.described && v.desc == AMQP_D_TRANSFER && v.code == AMQP_T_LIST32);
  uint32_t count = 0;
  CU_ASSERT_EQUAL_FATAL(amqp_items(&v, it, 16, &count), 11);
  CU_ASSERT_EQUAL(count, 11);
  int64_t x;
  CU_ASSERT(amqp_val_is_null(&it[0]));
  CU_ASSERT(amqp_val_int(&it[1], &x) && x == 7);
  CU_ASSERT(amqp_val_int(&it[2], &x) && x == 0xfffe);
  CU_ASSERT(amqp_val_int(&it[3], &x) && x == 0x80013700);
  CU_ASSERT(amqp_val_int(&it[4], &x) && x == -5);
  CU_ASSERT(it[5].code == AMQP_T_TIMESTAMP && amqp_val_int(&it[5], &x) && x == 1700000000123);
  CU_ASSERT(it[6].code == AMQP_T_STR8 && amqp_val_str_eq(&it[6], "abc"));
  CU_ASSERT(amqp_val_is_sym(&it[7]) && amqp_val_str_eq(&it[7], "x-opt-offset"));
  CU_ASSERT(it[8].code == AMQP_T_STR32 && amqp_val_str_eq(&it[8], "42"));
  CU_ASSERT(it[9].code == AMQP_T_VBIN32 && it[9].n == 300 && amqp_val_is_bin(&it[9]));
  amqp_val_t kv[2];
  CU_ASSERT_EQUAL_FATAL(amqp_items(&it[10], kv, 2, &count), 2);
  const amqp_val_t *got = amqp_map_get(kv, 2, "k");
  CU_ASSERT(got && amqp_val_str_eq(got, "v"));
  CU_ASSERT_PTR_NULL(amqp_map_get(kv, 2, "v"));
  /* every cut of it is malformed, never a read past the end */
  for (size_t n = 0; n < b.len; n++)
    CU_ASSERT(!amqp_read_exact((const uint8_t *)b.data, n, &v));
  ed_buf_fini(&b);
}

static void test_items_beyond_max_are_still_checked(void) {
  /* list8 of 3 items whose last is cut: declared size covers only 2 */
  const uint8_t cut[] = {AMQP_T_LIST8, 5, 3, AMQP_T_NULL, AMQP_T_UBYTE, 1, AMQP_T_STR8};
  amqp_val_t v, it[1];
  uint32_t count;
  CU_ASSERT_FATAL(amqp_read_exact(cut, sizeof cut, &v));
  CU_ASSERT_EQUAL(amqp_items(&v, it, 1, &count), -1);
  const uint8_t ok[] = {AMQP_T_LIST8, 5, 3, AMQP_T_NULL, AMQP_T_UBYTE, 1, AMQP_T_TRUE};
  CU_ASSERT_FATAL(amqp_read_exact(ok, sizeof ok, &v));
  CU_ASSERT_EQUAL(amqp_items(&v, it, 1, &count), 1);
  CU_ASSERT_EQUAL(count, 3);
  const uint8_t l0[] = {AMQP_T_LIST0};
  CU_ASSERT_FATAL(amqp_read_exact(l0, sizeof l0, &v));
  CU_ASSERT_EQUAL(amqp_items(&v, it, 1, &count), 0);
  const uint8_t s[] = {AMQP_T_STR8, 0};
  CU_ASSERT_FATAL(amqp_read_exact(s, sizeof s, &v));
  CU_ASSERT_EQUAL(amqp_items(&v, it, 1, &count), -1);
}

static void test_descriptor_forms(void) {
  /* ulong descriptor, symbolic descriptor, a described descriptor's value */
  const uint8_t ul[] = {0, AMQP_T_ULONG, 0, 0, 0, 0, 0, 0, 0, AMQP_D_SASL_INIT, AMQP_T_LIST0};
  const uint8_t sym[] = {0, AMQP_T_SYM8, 1, 'x', AMQP_T_NULL};
  const uint8_t twice[] = {0, AMQP_T_SMALLULONG, 0x10, 0, AMQP_T_SMALLULONG, 0x10, AMQP_T_NULL};
  amqp_val_t v;
  CU_ASSERT(amqp_read_exact(ul, sizeof ul, &v) && v.desc == AMQP_D_SASL_INIT);
  CU_ASSERT(amqp_read_exact(sym, sizeof sym, &v) && v.desc == UINT64_MAX);
  CU_ASSERT(!amqp_read_exact(twice, sizeof twice, &v));
  ed_buf_t b = ED_BUF_INIT;
  amqp_w_t w;
  amqp_w_init(&w, &b);
  amqp_put_described(&w, UINT64_C(0x0000468C00000004));
  amqp_put_null(&w);
  CU_ASSERT_EQUAL(amqp_w_end(&w), ED_OK);
  CU_ASSERT(amqp_read_exact((const uint8_t *)b.data, b.len, &v) &&
            v.desc == UINT64_C(0x0000468C00000004));
  ed_buf_fini(&b);
}

static void test_frame_size_patched(void) {
  ed_buf_t b = ED_BUF_INIT;
  ed_buf_append(&b, "xy", 2);
  amqp_w_t w;
  amqp_w_init(&w, &b);
  size_t f = amqp_frame_open(&w, AMQP_FRAME_TYPE_SASL, 0);
  amqp_put_described(&w, AMQP_D_SASL_OUTCOME);
  amqp_put_null(&w);
  amqp_frame_close(&w, f);
  CU_ASSERT_EQUAL(amqp_w_end(&w), ED_OK);
  CU_ASSERT_EQUAL(b.len, 2 + 8 + 4);
  CU_ASSERT_EQUAL(amqp_be32((const uint8_t *)b.data + 2), 12);
  CU_ASSERT_EQUAL(b.data[2 + 5], AMQP_FRAME_TYPE_SASL);
  ed_buf_fini(&b);
}

static const cu_case_t cases[] = {
    CU_CASE(test_written_values_read_back),
    CU_CASE(test_items_beyond_max_are_still_checked),
    CU_CASE(test_descriptor_forms),
    CU_CASE(test_frame_size_patched),
    CU_END,
};
ED_SUITE(amqp_value, cases);
