/* sas: Event Hubs shared access signatures (reference eventhubs-amqp.md §3).
 * Builds tokens byte-for-byte as the official Python SDK does, and parses and
 * verifies them (for the emulator). The key is used as raw UTF-8 bytes, never
 * base64-decoded. Never logs. */
#ifndef ED_EVENTHUBS_SAS_H
#define ED_EVENTHUBS_SAS_H

#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

/* Appends "SharedAccessSignature sr=…&sig=…&se=…&skn=…" to out. */
ed_code_t eh_sas_token(const char *resource, const char *key_name, const char *key,
                       int64_t expiry_unix, ed_buf_t *out, ed_err_t *err);

typedef struct eh_sas_fields {
  char *sr_raw;   /* sr exactly as on the wire (still encoded): the signed text */
  char *resource; /* sr decoded */
  char *sig;      /* signature, base64, decoded from the URL form */
  char *skn;      /* key name, decoded once */
  int64_t se;     /* expiry, Unix seconds */
} eh_sas_fields_t;

/* Parses a token in any field order; caller frees with eh_sas_fields_fini. */
ed_code_t eh_sas_parse(const char *token, eh_sas_fields_t *f, ed_err_t *err);
void eh_sas_fields_fini(eh_sas_fields_t *f);
/* Checks the signature against key (constant time) and expiry against now.
 * ED_E_UNAUTHORIZED for a bad signature, ED_E_TOKEN_EXPIRED when se <= now. */
ed_code_t eh_sas_verify(const eh_sas_fields_t *f, const char *key, int64_t now_unix, ed_err_t *err);
/* True when token audience `granted` covers `wanted` (scheme ignored, host
 * case-insensitive, trailing '/' ignored, case-insensitive path prefix on a
 * segment boundary). */
bool eh_sas_audience_covers(const char *granted, const char *wanted);

#endif
