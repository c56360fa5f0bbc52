#include "common/b64.h"
#include "common/hmac.h"
#include "tests/unit/cu.h"

#include <stdio.h>

/* RFC 4231 test cases 1, 2 and 6 (key larger than the block size). */
static void test_rfc4231_vectors(void) {
  static const struct {
    const char *key;
    size_t keylen;
    const char *msg;
    const char *hex;
  } cases[] = {
      {"\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b", 20,
       "Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
      {"Jefe", 4, "what do ya want for nothing?",
       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    uint8_t mac[32];
    char hex[65];
    CU_ASSERT_EQUAL(
        ed_hmac_sha256(cases[i].key, cases[i].keylen, cases[i].msg, strlen(cases[i].msg), mac),
        ED_OK);
    for (int k = 0; k < 32; k++)
      snprintf(hex + 2 * k, 3, "%02x", mac[k]);
    CU_ASSERT_STR(hex, cases[i].hex);
  }
  uint8_t key[131], mac[32];
  memset(key, 0xaa, sizeof key);
  const char *msg = "Test Using Larger Than Block-Size Key - Hash Key First";
  ed_hmac_sha256(key, sizeof key, msg, strlen(msg), mac);
  char hex[65];
  for (int k = 0; k < 32; k++)
    snprintf(hex + 2 * k, 3, "%02x", mac[k]);
  CU_ASSERT_STR(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

static void test_equal_is_exact(void) {
  CU_ASSERT_TRUE(ed_hmac_equal("abcd", "abcd", 4));
  CU_ASSERT_FALSE(ed_hmac_equal("abcd", "abce", 4));
  CU_ASSERT_TRUE(ed_hmac_equal("", "", 0));
}

static void test_sha256_empty(void) {
  uint8_t d[32];
  char b64[45];
  CU_ASSERT_EQUAL(ed_sha256("", 0, d), ED_OK);
  ed_b64_encode(d, 32, b64);
  CU_ASSERT_STR(b64, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
}

static const cu_case_t cases[] = {CU_CASE(test_rfc4231_vectors), CU_CASE(test_equal_is_exact),
                                  CU_CASE(test_sha256_empty), CU_END};
ED_SUITE(hmac, cases)
