/* jwt: RS256 access tokens checked the way Event Hubs checks Entra ID tokens
 * (RFC 7519 §7.2 validation; RFC 7515 §5.2 signatures; RFC 7517 keys). The
 * descriptions follow the service's "Code: text." style of its SAS refusals
 * (reference eventhubs-amqp.md §3.3, §9); their exact wording for JWTs is
 * not documented. */
#include "emu/jwt.h"

#include <json-c/json.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/b64.h"
#include "common/buf.h"

#define MAX_KEYS  16
#define MAX_ROLES 64

struct emu_jwt {
  struct {
    char *kid;
    EVP_PKEY *pk;
  } keys[MAX_KEYS];
  int nkeys;
  char *issuer, *audience;
  struct {
    char *principal;
    unsigned rights;
  } roles[MAX_ROLES];
  int nroles;
};

void emu_jwt_free(emu_jwt_t *j) {
  if (!j)
    return;
  for (int i = 0; i < j->nkeys; i++) {
    free(j->keys[i].kid);
    EVP_PKEY_free(j->keys[i].pk);
  }
  for (int i = 0; i < j->nroles; i++)
    free(j->roles[i].principal);
  free(j->issuer);
  free(j->audience);
  free(j);
}

/* base64url without padding (RFC 7515 §2) into out; caller frees. */
static uint8_t *b64url_decode(const char *s, size_t n, size_t *outlen) {
  ed_buf_t b = ED_BUF_INIT;
  for (size_t i = 0; i < n; i++) {
    char c = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
    if (c == '=' || c == '+' || c == '/' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
        (c >= '0' && c <= '9'))
      ed_buf_append(&b, &c, 1);
    else {
      ed_buf_fini(&b);
      return NULL;
    }
  }
  while (b.len % 4)
    ed_buf_append(&b, "=", 1);
  uint8_t *out = malloc(b.len / 4 * 3 + 3);
  if (!out || ed_b64_decode(b.data ? b.data : "", b.len, out, outlen, NULL)) {
    free(out);
    out = NULL;
  }
  ed_buf_fini(&b);
  return out;
}

static EVP_PKEY *rsa_key(const char *n64, const char *e64) {
  size_t nl = 0, el = 0;
  uint8_t *n = b64url_decode(n64, strlen(n64), &nl), *e = b64url_decode(e64, strlen(e64), &el);
  BIGNUM *bn = n ? BN_bin2bn(n, (int)nl, NULL) : NULL, *be = e ? BN_bin2bn(e, (int)el, NULL) : NULL;
  OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
  OSSL_PARAM *p = NULL;
  EVP_PKEY_CTX *ctx = NULL;
  EVP_PKEY *k = NULL;
  if (bn && be && b && OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_N, bn) &&
      OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_E, be) && (p = OSSL_PARAM_BLD_to_param(b)) &&
      (ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) && EVP_PKEY_fromdata_init(ctx) == 1 &&
      EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, p) != 1)
    k = NULL;
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(p);
  OSSL_PARAM_BLD_free(b);
  BN_free(bn);
  BN_free(be);
  free(n);
  free(e);
  return k;
}

static const char *jstr(json_object *o, const char *k) {
  json_object *v;
  return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string)
             ? json_object_get_string(v)
             : NULL;
}

static ed_code_t load_jwks(emu_jwt_t *j, const char *path, ed_err_t *err) {
  json_object *root = json_object_from_file(path), *keys;
  if (!root)
    return ed_err_set(err, ED_E_CONFIG, "--jwks '%s': cannot read it as JSON", path);
  ed_code_t rc = ED_OK;
  if (!json_object_object_get_ex(root, "keys", &keys) ||
      !json_object_is_type(keys, json_type_array)) {
    rc = ed_err_set(err, ED_E_CONFIG, "--jwks '%s': expected a JWKS, {\"keys\": [...]}", path);
  } else {
    for (size_t i = 0; i < json_object_array_length(keys) && !rc; i++) {
      json_object *k = json_object_array_get_idx(keys, i);
      const char *kty = jstr(k, "kty"), *n = jstr(k, "n"), *e = jstr(k, "e"), *kid = jstr(k, "kid");
      if (!kty || strcmp(kty, "RSA"))
        continue; /* RS256 needs RSA keys; others are skipped as a verifier would */
      if (!n || !e || j->nkeys == MAX_KEYS) {
        rc = ed_err_set(err, ED_E_CONFIG,
                        "--jwks '%s': key %zu: expected an RSA key with 'n' and 'e' (at most %d)",
                        path, i, MAX_KEYS);
        break;
      }
      EVP_PKEY *pk = rsa_key(n, e);
      if (!pk) {
        rc = ed_err_set(err, ED_E_CONFIG, "--jwks '%s': key %zu: 'n' or 'e' is not base64url", path,
                        i);
        break;
      }
      j->keys[j->nkeys].pk = pk;
      j->keys[j->nkeys++].kid = kid ? strdup(kid) : NULL;
    }
    if (!rc && j->nkeys == 0)
      rc = ed_err_set(err, ED_E_CONFIG, "--jwks '%s': no RSA key in it", path);
  }
  json_object_put(root);
  return rc;
}

static ed_code_t parse_role(emu_jwt_t *j, const char *spec, ed_err_t *err) {
  static const struct {
    const char *name;
    unsigned rights;
  } names[] = {{"receiver", EMU_RIGHT_LISTEN}, {"Azure Event Hubs Data Receiver", EMU_RIGHT_LISTEN},
               {"sender", EMU_RIGHT_SEND},     {"Azure Event Hubs Data Sender", EMU_RIGHT_SEND},
               {"owner", EMU_RIGHT_ALL},       {"Azure Event Hubs Data Owner", EMU_RIGHT_ALL}};
  const char *eq = strchr(spec, '=');
  unsigned rights = 0;
  for (size_t i = 0; eq && i < sizeof names / sizeof *names; i++)
    if (!strcasecmp(eq + 1, names[i].name))
      rights = names[i].rights;
  if (!eq || eq == spec || !rights)
    return ed_err_set(err, ED_E_CONFIG,
                      "--role '%s': expected PRINCIPAL=ROLE, ROLE one of receiver, sender, owner",
                      spec);
  if (j->nroles == MAX_ROLES)
    return ed_err_set(err, ED_E_CONFIG, "--role: at most %d", MAX_ROLES);
  j->roles[j->nroles].principal = strndup(spec, (size_t)(eq - spec));
  j->roles[j->nroles++].rights = rights;
  return ED_OK;
}

ed_code_t emu_jwt_new(const char *jwks_file, const char *issuer, const char *audience,
                      char *const *roles, emu_jwt_t **out, ed_err_t *err) {
  *out = NULL;
  emu_jwt_t *j = calloc(1, sizeof *j);
  if (!j)
    return ed_err_set(err, ED_E_NOMEM, "jwt: out of memory");
  j->issuer = issuer ? strdup(issuer) : NULL;
  j->audience = strdup(audience ? audience : "https://eventhubs.azure.net");
  ed_code_t rc = load_jwks(j, jwks_file, err);
  for (size_t i = 0; !rc && roles && roles[i]; i++)
    rc = parse_role(j, roles[i], err);
  if (rc) {
    emu_jwt_free(j);
    return rc;
  }
  *out = j;
  return ED_OK;
}

/* "https://eventhubs.azure.net" and "https://eventhubs.azure.net/" are one
 * audience (the v1 and v2 token forms). */
static bool same_audience(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  while (la && a[la - 1] == '/')
    la--;
  while (lb && b[lb - 1] == '/')
    lb--;
  return la == lb && !strncasecmp(a, b, la);
}

static bool aud_ok(json_object *claims, const char *want) {
  json_object *v;
  if (!json_object_object_get_ex(claims, "aud", &v))
    return false;
  if (json_object_is_type(v, json_type_string))
    return same_audience(json_object_get_string(v), want);
  if (json_object_is_type(v, json_type_array))
    for (size_t i = 0; i < json_object_array_length(v); i++) {
      json_object *a = json_object_array_get_idx(v, i);
      if (json_object_is_type(a, json_type_string) &&
          same_audience(json_object_get_string(a), want))
        return true;
    }
  return false;
}

static int64_t num_claim(json_object *o, const char *k) {
  json_object *v;
  if (!json_object_object_get_ex(o, k, &v) ||
      !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
    return -1;
  return json_object_get_int64(v);
}

static json_object *json_part(const char *s, size_t n) {
  size_t len = 0;
  uint8_t *raw = b64url_decode(s, n, &len);
  if (!raw)
    return NULL;
  json_tokener *t = json_tokener_new();
  json_object *o = t ? json_tokener_parse_ex(t, (const char *)raw, (int)len) : NULL;
  json_tokener_free(t);
  free(raw);
  if (o && !json_object_is_type(o, json_type_object)) {
    json_object_put(o);
    o = NULL;
  }
  return o;
}

int emu_jwt_check(const emu_jwt_t *j, const char *token, int64_t now_s, unsigned *rights,
                  int64_t *exp_us, const char **why) {
  *rights = 0;
  *exp_us = 0;
  const char *d1 = strchr(token, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
  if (!d1 || !d2 || strchr(d2 + 1, '.')) {
    *why = "InvalidToken: The token is not a well-formed JWT.";
    return 401;
  }
  json_object *hdr = json_part(token, (size_t)(d1 - token));
  json_object *claims = json_part(d1 + 1, (size_t)(d2 - d1 - 1));
  size_t siglen = 0;
  uint8_t *sig = b64url_decode(d2 + 1, strlen(d2 + 1), &siglen);
  int code = 401;
  *why = "InvalidToken: The token is not a well-formed JWT.";
  if (!hdr || !claims || !sig)
    goto done;
  const char *alg = jstr(hdr, "alg"), *kid = jstr(hdr, "kid");
  *why = "InvalidSignature: The token has an invalid signature.";
  if (!alg || strcmp(alg, "RS256"))
    goto done;
  bool verified = false;
  for (int i = 0; i < j->nkeys && !verified; i++) {
    if (kid && j->keys[i].kid && strcmp(kid, j->keys[i].kid))
      continue;
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    verified =
        m && EVP_DigestVerifyInit(m, NULL, EVP_sha256(), NULL, j->keys[i].pk) == 1 &&
        EVP_DigestVerify(m, sig, siglen, (const unsigned char *)token, (size_t)(d2 - token)) == 1;
    EVP_MD_CTX_free(m);
  }
  if (!verified)
    goto done;
  const char *iss = jstr(claims, "iss");
  if (j->issuer && (!iss || strcmp(iss, j->issuer))) {
    *why = "InvalidIssuer: Token issuer is invalid.";
    goto done;
  }
  if (!aud_ok(claims, j->audience)) {
    *why = "InvalidAudience: The token audience is not valid for Event Hubs.";
    goto done;
  }
  int64_t exp = num_claim(claims, "exp"), nbf = num_claim(claims, "nbf");
  if (exp < 0 || exp <= now_s) {
    *why = "ExpiredToken: The token is expired.";
    goto done;
  }
  if (nbf > now_s) {
    *why = "InvalidToken: The token is not valid yet (nbf).";
    goto done;
  }
  const char *oid = jstr(claims, "oid"), *appid = jstr(claims, "appid");
  if (!appid)
    appid = jstr(claims, "azp"); /* v2.0 tokens */
  for (int i = 0; i < j->nroles; i++)
    if ((oid && !strcmp(oid, j->roles[i].principal)) ||
        (appid && !strcmp(appid, j->roles[i].principal)))
      *rights |= j->roles[i].rights;
  *exp_us = exp * INT64_C(1000000);
  *why = "Accepted";
  code = 0;
done:
  json_object_put(hdr);
  json_object_put(claims);
  free(sig);
  return code;
}
