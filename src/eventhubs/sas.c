/* sas: token building, parsing and verification. */
#include "eventhubs/sas.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/b64.h"
#include "common/hmac.h"
#include "common/pct.h"

ed_code_t eh_sas_token(const char *resource, const char *key_name, const char *key,
                       int64_t expiry_unix, ed_buf_t *out, ed_err_t *err) {
  if (!resource || !*resource)
    return ed_err_set(err, ED_E_INVALID,
                      "sas: empty resource URI, expected like sb://ns.servicebus.windows.net/hub");
  if (!key_name || !*key_name)
    return ed_err_set(err, ED_E_INVALID, "sas: empty key name");
  if (!key || !*key)
    return ed_err_set(err, ED_E_INVALID, "sas: empty key");
  if (expiry_unix <= 0)
    return ed_err_set(err, ED_E_INVALID, "sas: expiry %" PRId64 " must be a positive Unix time",
                      expiry_unix);
  ed_buf_t sr = ED_BUF_INIT, tosign = ED_BUF_INIT, skn1 = ED_BUF_INIT;
  ed_code_t rc = ed_pct_encode(&sr, resource, strlen(resource), ED_PCT_FORM);
  if (!rc)
    rc = ed_buf_printf(&tosign, "%s\n%" PRId64, sr.data, expiry_unix);
  uint8_t mac[ED_HMAC_SHA256_LEN];
  char sig[ED_B64_ENCODED_LEN(ED_HMAC_SHA256_LEN) + 1];
  if (!rc)
    rc = ed_hmac_sha256(key, strlen(key), tosign.data, tosign.len, mac);
  if (!rc) {
    ed_b64_encode(mac, sizeof mac, sig);
    rc = ed_buf_printf(out, "SharedAccessSignature sr=%s&sig=", sr.data);
  }
  if (!rc)
    rc = ed_pct_encode(out, sig, strlen(sig), ED_PCT_FORM);
  if (!rc)
    rc = ed_buf_printf(out, "&se=%" PRId64 "&skn=", expiry_unix);
  /* The Python SDK quote_plus'es the key name and then urlencode()s it again,
   * so a name with reserved characters is encoded twice on the wire. We match
   * it byte for byte; names of letters, digits and -._~ are unaffected. */
  if (!rc)
    rc = ed_pct_encode(&skn1, key_name, strlen(key_name), ED_PCT_FORM);
  if (!rc)
    rc = ed_pct_encode(out, skn1.data, skn1.len, ED_PCT_FORM);
  explicit_bzero(mac, sizeof mac);
  ed_buf_fini(&sr);
  ed_buf_fini(&tosign);
  ed_buf_fini(&skn1);
  return rc;
}

void eh_sas_fields_fini(eh_sas_fields_t *f) {
  if (!f)
    return;
  free(f->sr_raw);
  free(f->resource);
  free(f->sig);
  free(f->skn);
  memset(f, 0, sizeof *f);
}

static ed_code_t decode_dup(const char *s, size_t n, char **out, ed_err_t *err) {
  ed_buf_t b = ED_BUF_INIT;
  ed_code_t rc = ed_pct_decode(&b, s, n, true, err);
  if (rc) {
    ed_buf_fini(&b);
    return rc;
  }
  *out = ed_buf_steal(&b);
  return *out ? ED_OK : ED_E_NOMEM;
}

ed_code_t eh_sas_parse(const char *token, eh_sas_fields_t *f, ed_err_t *err) {
  memset(f, 0, sizeof *f);
  static const char prefix[] = "SharedAccessSignature ";
  if (strncmp(token, prefix, sizeof prefix - 1) != 0)
    return ed_err_set(err, ED_E_UNAUTHORIZED,
                      "sas: token does not start with 'SharedAccessSignature '");
  const char *p = token + sizeof prefix - 1;
  bool have_se = false;
  ed_code_t rc = ED_OK;
  while (*p && !rc) {
    const char *amp = strchr(p, '&');
    size_t len = amp ? (size_t)(amp - p) : strlen(p);
    const char *eq = memchr(p, '=', len);
    if (!eq) {
      rc = ed_err_set(err, ED_E_UNAUTHORIZED, "sas: field without '=' in token");
      break;
    }
    size_t kl = (size_t)(eq - p);
    const char *v = eq + 1;
    size_t vl = len - kl - 1;
    if (kl == 2 && !memcmp(p, "sr", 2) && !f->sr_raw) {
      f->sr_raw = strndup(v, vl);
      rc = f->sr_raw ? decode_dup(v, vl, &f->resource, err) : ED_E_NOMEM;
    } else if (kl == 3 && !memcmp(p, "sig", 3) && !f->sig) {
      rc = decode_dup(v, vl, &f->sig, err);
    } else if (kl == 3 && !memcmp(p, "skn", 3) && !f->skn) {
      rc = decode_dup(v, vl, &f->skn, err);
    } else if (kl == 2 && !memcmp(p, "se", 2) && !have_se) {
      char buf[24];
      if (vl == 0 || vl >= sizeof buf) {
        rc = ed_err_set(err, ED_E_UNAUTHORIZED, "sas: se must be a Unix time in seconds");
        break;
      }
      memcpy(buf, v, vl);
      buf[vl] = '\0';
      char *end;
      long long se = strtoll(buf, &end, 10);
      if (*end || se <= 0) {
        rc = ed_err_set(err, ED_E_UNAUTHORIZED, "sas: se must be a Unix time in seconds");
        break;
      }
      f->se = se;
      have_se = true;
    } else {
      rc = ed_err_set(err, ED_E_UNAUTHORIZED,
                      "sas: unexpected or repeated field '%.*s', expected sr, sig, se and skn once",
                      (int)(kl > 16 ? 16 : kl), p);
    }
    p = amp ? amp + 1 : p + len;
  }
  if (!rc && (!f->sr_raw || !f->sig || !f->skn || !have_se))
    rc = ed_err_set(err, ED_E_UNAUTHORIZED, "sas: token lacks one of sr, sig, se, skn");
  if (rc)
    eh_sas_fields_fini(f);
  return rc;
}

ed_code_t eh_sas_verify(const eh_sas_fields_t *f, const char *key, int64_t now_unix,
                        ed_err_t *err) {
  ed_buf_t tosign = ED_BUF_INIT;
  uint8_t mac[ED_HMAC_SHA256_LEN];
  char want[ED_B64_ENCODED_LEN(ED_HMAC_SHA256_LEN) + 1];
  ed_code_t rc = ed_buf_printf(&tosign, "%s\n%" PRId64, f->sr_raw, f->se);
  if (!rc)
    rc = ed_hmac_sha256(key, strlen(key), tosign.data, tosign.len, mac);
  ed_buf_fini(&tosign);
  if (rc)
    return rc;
  size_t wl = ed_b64_encode(mac, sizeof mac, want);
  if (strlen(f->sig) != wl || !ed_hmac_equal(want, f->sig, wl))
    return ed_err_set(err, ED_E_UNAUTHORIZED, "sas: signature does not match key '%s'", f->skn);
  if (f->se <= now_unix)
    return ed_err_set(err, ED_E_TOKEN_EXPIRED, "sas: token expired at %" PRId64, f->se);
  return ED_OK;
}

/* Splits "scheme://host/path" into host and path, dropping the scheme. */
static void split_uri(const char *u, const char **host, size_t *hl, const char **path, size_t *pl) {
  const char *s = strstr(u, "://");
  s = s ? s + 3 : u;
  const char *slash = strchr(s, '/');
  *host = s;
  *hl = slash ? (size_t)(slash - s) : strlen(s);
  *path = slash ? slash : s + *hl;
  *pl = strlen(*path);
  while (*pl && (*path)[*pl - 1] == '/')
    (*pl)--;
}

bool eh_sas_audience_covers(const char *granted, const char *wanted) {
  const char *gh, *gp, *wh, *wp;
  size_t ghl, gpl, whl, wpl;
  split_uri(granted, &gh, &ghl, &gp, &gpl);
  split_uri(wanted, &wh, &whl, &wp, &wpl);
  if (ghl != whl || strncasecmp(gh, wh, ghl) != 0)
    return false;
  if (gpl > wpl || strncasecmp(gp, wp, gpl) != 0)
    return false;
  return gpl == wpl || wp[gpl] == '/';
}
