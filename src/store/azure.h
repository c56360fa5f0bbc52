/* azure: the pieces of the Azure Blob backend that are pure functions, exposed
 * for unit tests: URL forms (reference §1.1), the Shared Key string-to-sign and
 * signature (§2.2-2.5), the List Blobs XML reader (§4.6), HTTP dates and
 * Retry-After. Only src/store/ and tests/unit/ include this header. */
#ifndef ED_STORE_AZURE_H
#define ED_STORE_AZURE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "store/store.h"

typedef struct st_az_url {
  char *endpoint;  /* "https://acct.blob.core.windows.net" or
                      "http://127.0.0.1:10000/devstoreaccount1" */
  char *account;   /* "acct" */
  char *container; /* "tables" */
  char *prefix;    /* blob-name prefix of the root, no leading or trailing '/', maybe "" */
  int path_style;  /* 1 when the account is the first path segment (Azurite) */
} st_az_url_t;

/* default_account serves URLs without one (az://container/path). */
ed_code_t st_az_parse_url(const char *url, const char *default_account, st_az_url_t *out,
                          ed_err_t *err);
void st_az_url_fini(st_az_url_t *u);

typedef struct st_hdr {
  const char *name; /* as sent, e.g. "Content-Length", "x-ms-date" */
  const char *value;
} st_hdr_t;

/* The Shared Key string-to-sign. path: the encoded URL path as sent (for
 * Azurite it starts with /devstoreaccount1/); query: the encoded query without
 * '?', or NULL. */
ed_code_t st_az_string_to_sign(const char *verb, const st_hdr_t *hdrs, size_t nh,
                               const char *account, const char *path, const char *query,
                               ed_buf_t *out, ed_err_t *err);
/* base64(HMAC-SHA256(key, sts)) into out (at least 45 bytes). */
ed_code_t st_az_sign(const uint8_t *key, size_t keylen, const char *sts, size_t n, char *out);
/* "Tue, 24 Nov 2026 01:02:03 GMT" (out: 30 bytes) and back (ms). */
void st_az_http_date(int64_t us, char out[30]);
ed_code_t st_az_parse_http_date(const char *s, int64_t *ms);
/* Retry-After: seconds or an HTTP date; -1 when absent or unreadable. */
int64_t st_az_retry_after_us(const char *v, int64_t now_us);

/* Appends the blobs of one List Blobs page to out (keys made relative by
 * dropping strip_len leading bytes) and the decoded NextMarker to marker
 * (empty when done). Directory entries of HNS accounts are skipped. */
ed_code_t st_az_parse_list(const char *xml, size_t n, size_t strip_len, st_list_t *out,
                           ed_buf_t *marker, ed_err_t *err);

/* As st_az_parse_list for a listing with include=metadata: each blob with
 * its ETag, Last-Modified, size and <Metadata> pairs. */
ed_code_t st_az_parse_list_meta(const char *xml, size_t n, size_t strip_len, st_blobs_t *out,
                                ed_buf_t *marker, ed_err_t *err);

/* A bearer token as sent; Entra ID tokens come from auth/cred.h. */
typedef struct st_token {
  char *value;
  int64_t expires_us; /* wall clock */
} st_token_t;

#endif
