/* b64: base64 (RFC 4648, standard alphabet, padded) for SAS signatures, storage
 * keys and AMQP binary dumps. Pure functions on caller buffers; no allocation. */
#ifndef ED_COMMON_B64_H
#define ED_COMMON_B64_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define ED_B64_ENCODED_LEN(n) ((((n) + 2) / 3) * 4)

/* Writes ED_B64_ENCODED_LEN(n) chars plus a NUL to out; returns the length. */
size_t ed_b64_encode(const uint8_t *in, size_t n, char *out);
/* Decodes text (padding required, no whitespace) into out, which must hold
 * n/4*3 bytes. *outlen gets the decoded size. ED_E_PARSE names the offset. */
ed_code_t ed_b64_decode(const char *in, size_t n, uint8_t *out, size_t *outlen, ed_err_t *err);

#endif
