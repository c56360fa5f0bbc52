#include "common/b64.h"
#include "tests/unit/cu.h"

/* RFC 4648 section 10 test vectors. */
static const struct {
  const char *plain, *enc;
} vectors[] = {{"", ""},
               {"f", "Zg=="},
               {"fo", "Zm8="},
               {"foo", "Zm9v"},
               {"foob", "Zm9vYg=="},
               {"fooba", "Zm9vYmE="},
               {"foobar", "Zm9vYmFy"}};

static void test_encode_rfc4648_vectors(void) {
  for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
    char out[32];
    ed_b64_encode((const uint8_t *)vectors[i].plain, strlen(vectors[i].plain), out);
    CU_ASSERT_STR(out, vectors[i].enc);
  }
}

static void test_decode_rfc4648_vectors(void) {
  for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
    uint8_t out[32];
    size_t n = 99;
    CU_ASSERT_EQUAL(ed_b64_decode(vectors[i].enc, strlen(vectors[i].enc), out, &n, NULL), ED_OK);
    CU_ASSERT_EQUAL(n, strlen(vectors[i].plain));
    CU_ASSERT_EQUAL(memcmp(out, vectors[i].plain, n), 0);
  }
}

static void test_decode_rejects_bad_input(void) {
  static const char *bad[] = {"Zg=", "Z===", "Zm9v!A==", "=Zm9", "Zg==Zg==", "Zm 9v", "Zm9v\n"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    uint8_t out[32];
    size_t n;
    ed_err_t e = {0};
    CU_ASSERT_EQUAL(ed_b64_decode(bad[i], strlen(bad[i]), out, &n, &e), ED_E_PARSE);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "base64"));
  }
}

static void test_round_trip_all_bytes(void) {
  uint8_t in[256], back[256];
  char enc[ED_B64_ENCODED_LEN(256) + 1];
  for (int i = 0; i < 256; i++)
    in[i] = (uint8_t)i;
  for (size_t len = 0; len <= 256; len += 17) {
    size_t el = ed_b64_encode(in, len, enc), n;
    CU_ASSERT_EQUAL(el, ED_B64_ENCODED_LEN(len));
    CU_ASSERT_EQUAL(ed_b64_decode(enc, el, back, &n, NULL), ED_OK);
    CU_ASSERT_EQUAL(n, len);
    CU_ASSERT_EQUAL(memcmp(in, back, len), 0);
  }
}

static const cu_case_t cases[] = {
    CU_CASE(test_encode_rfc4648_vectors), CU_CASE(test_decode_rfc4648_vectors),
    CU_CASE(test_decode_rejects_bad_input), CU_CASE(test_round_trip_all_bytes), CU_END};
ED_SUITE(b64, cases)
