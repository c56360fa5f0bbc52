/* hmac: HMAC-SHA256 (OpenSSL) for SAS tokens and Shared Key signing, and a
 * constant-time comparison for checking signatures. */
#ifndef ED_COMMON_HMAC_H
#define ED_COMMON_HMAC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define ED_HMAC_SHA256_LEN 32

ed_code_t ed_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen,
                         uint8_t out[ED_HMAC_SHA256_LEN]);
/* Compares n bytes in time independent of where they differ. */
bool ed_hmac_equal(const void *a, const void *b, size_t n);
/* SHA-256 of data (used for hashing SAS keys in logs-free fingerprints, tests). */
ed_code_t ed_sha256(const void *data, size_t n, uint8_t out[32]);

#endif
