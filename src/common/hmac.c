/* hmac: HMAC-SHA256 via OpenSSL's one-shot API. */
#include "common/hmac.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <limits.h>

#define INT_MAX_KEY INT_MAX

ed_code_t ed_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen,
                         uint8_t out[ED_HMAC_SHA256_LEN]) {
  unsigned int len = 0;
  if (keylen > (size_t)INT_MAX_KEY)
    return ED_E_TOO_LARGE;
  if (!HMAC(EVP_sha256(), key, (int)keylen, msg, msglen, out, &len) || len != ED_HMAC_SHA256_LEN)
    return ED_E_INTERNAL;
  return ED_OK;
}

bool ed_hmac_equal(const void *a, const void *b, size_t n) { return CRYPTO_memcmp(a, b, n) == 0; }

ed_code_t ed_sha256(const void *data, size_t n, uint8_t out[32]) {
  unsigned int len = 0;
  return EVP_Digest(data, n, out, &len, EVP_sha256(), NULL) && len == 32 ? ED_OK : ED_E_INTERNAL;
}
