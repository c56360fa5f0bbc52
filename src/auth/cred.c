/* cred: Entra ID tokens shared by store/ (Blob bearer tokens) and eventhubs/
 * (CBS put-token of type jwt). It is a layer of its own below both rather than
 * a module of common/ because it needs libcurl and json-c, which common/ (used
 * by ehemu and every unit runner) must not pull in; store/ and eventhubs/ may
 * each use it, and it uses only common/. Request and answer shapes follow the
 * Azure SDKs (azure-identity): the v2.0 token endpoint for client credentials
 * and federated assertions, the managed identity endpoints (IMDS 2018-02-01,
 * App Service 2019-08-01 and 2017-09-01, Cloud Shell), and `az account
 * get-access-token`. DefaultAzureCredential's order, from azure-identity's
 * sources (Python _credentials/default.py, Go default_azure_credential.go):
 * environment, workload identity, managed identity, Azure CLI. */
#include "auth/cred.h"

#include <curl/curl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/backoff.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/pct.h"
#include "common/time.h"

/* azure-identity refreshes 5 minutes before expiry and retries a failed
 * refresh at most every 30 s while the old token still serves. */
#define AU_REFRESH_US      (300 * ED_US_PER_SEC)
#define AU_RETRY_US        (30 * ED_US_PER_SEC)
#define AU_JWT_MAX         16384
#define AU_BACKOFF_BASE_US (ED_US_PER_SEC / 2)

struct au_cred {
  au_kind_t kind;
  au_kind_t chosen; /* DEFAULT: the member that answered; else == kind */
  bool have_chosen;
  char *scope, *tenant, *client_id, *client_secret, *fed_file, *authority, *ca_file;
  int max_retries;
  int64_t max_backoff_us;
  long timeout_s; /* of one request */
  au_token_t tok;
  int64_t tok_at_us;    /* when tok was fetched (its life is tok.expires_us - tok_at_us) */
  int64_t last_fail_us; /* wall clock of the last failed refresh, 0 after a success */
  int64_t requests;
  ed_backoff_t backoff; /* token request retries: 0.5 s doubling up to max_backoff_us */
};

static const char *kind_name(au_kind_t k) {
  switch (k) {
  case AU_CRED_CLIENT_SECRET:
    return "client secret";
  case AU_CRED_WORKLOAD_ID:
    return "workload identity";
  case AU_CRED_MANAGED_ID:
    return "managed identity";
  case AU_CRED_AZURE_CLI:
    return "Azure CLI";
  default:
    return "default credential";
  }
}

const char *au_cred_name(const au_cred_t *c) {
  return kind_name(c->have_chosen ? c->chosen : c->kind);
}

int64_t au_cred_requests(const au_cred_t *c) { return c->requests; }

void au_cred_set_limits(au_cred_t *c, int max_retries, int64_t request_timeout_us) {
  c->max_retries = max_retries < 0 ? 0 : max_retries;
  c->timeout_s =
      request_timeout_us >= ED_US_PER_SEC ? (long)(request_timeout_us / ED_US_PER_SEC) : 1;
}

static char *pick(const char *given, const char *env) {
  const char *v = given && *given ? given : getenv(env);
  return v && *v ? strdup(v) : NULL;
}

static void wipe_free(char *s) {
  if (s)
    memset(s, 0, strlen(s));
  free(s);
}

void au_cred_free(au_cred_t *c) {
  if (!c)
    return;
  free(c->scope);
  free(c->tenant);
  free(c->client_id);
  wipe_free(c->client_secret);
  free(c->fed_file);
  free(c->authority);
  free(c->ca_file);
  wipe_free(c->tok.value);
  free(c);
}

static bool has_secret(const au_cred_t *c) { return c->tenant && c->client_id && c->client_secret; }
static bool has_fed(const au_cred_t *c) { return c->tenant && c->client_id && c->fed_file; }

ed_code_t au_cred_new(const au_cred_opts_t *o, au_cred_t **out, ed_err_t *err) {
  static int curl_ready;
  *out = NULL;
  if (!o->scope || !*o->scope)
    return ed_err_set(err, ED_E_INVALID, "credential: no scope given");
  if (!curl_ready) {
    /* Not thread-safe by libcurl's rules; credentials are made before threads. */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    curl_ready = 1;
  }
  au_cred_t *c = calloc(1, sizeof *c);
  if (!c)
    return ed_err_set(err, ED_E_NOMEM, "credential: out of memory");
  c->kind = c->chosen = o->kind;
  c->have_chosen = o->kind != AU_CRED_DEFAULT;
  c->scope = strdup(o->scope);
  c->tenant = pick(o->tenant, "AZURE_TENANT_ID");
  c->client_id = pick(o->client_id, "AZURE_CLIENT_ID");
  c->client_secret = pick(o->client_secret, "AZURE_CLIENT_SECRET");
  c->fed_file = pick(o->federated_token_file, "AZURE_FEDERATED_TOKEN_FILE");
  c->authority = pick(o->authority, "AZURE_AUTHORITY_HOST");
  if (!c->authority)
    c->authority = strdup("https://login.microsoftonline.com");
  if (c->authority) {
    size_t n = strlen(c->authority);
    while (n && c->authority[n - 1] == '/')
      c->authority[--n] = 0;
  }
  c->ca_file = o->ca_file && *o->ca_file ? strdup(o->ca_file) : NULL;
  c->max_retries = o->max_retries > 0 ? o->max_retries : o->max_retries < 0 ? 0 : 3;
  c->max_backoff_us = o->max_backoff_us > 0 ? o->max_backoff_us : 10 * ED_US_PER_SEC;
  c->timeout_s = 30;
  ed_backoff_init(&c->backoff,
                  c->max_backoff_us < AU_BACKOFF_BASE_US ? c->max_backoff_us : AU_BACKOFF_BASE_US,
                  c->max_backoff_us, 0);
  if (!c->scope || !c->authority) {
    au_cred_free(c);
    return ed_err_set(err, ED_E_NOMEM, "credential: out of memory");
  }
  ed_code_t rc = ED_OK;
  if (o->kind == AU_CRED_CLIENT_SECRET && !has_secret(c))
    rc = ed_err_set(err, ED_E_CONFIG,
                    "client secret: set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET "
                    "(or tenant-id, client-id, client-secret)");
  else if (o->kind == AU_CRED_WORKLOAD_ID && !has_fed(c))
    rc = ed_err_set(err, ED_E_CONFIG,
                    "workload identity: set AZURE_TENANT_ID, AZURE_CLIENT_ID and "
                    "AZURE_FEDERATED_TOKEN_FILE (or tenant-id, client-id, federated-token-file)");
  if (rc) {
    au_cred_free(c);
    return rc;
  }
  *out = c;
  return ED_OK;
}

au_cred_t *au_cred_dup(const au_cred_t *c) {
  au_cred_t *d = calloc(1, sizeof *d);
  if (!d)
    return NULL;
  *d = *c;
#define DUP(f) d->f = c->f ? strdup(c->f) : NULL
  DUP(scope);
  DUP(tenant);
  DUP(client_id);
  DUP(client_secret);
  DUP(fed_file);
  DUP(authority);
  DUP(ca_file);
  DUP(tok.value);
#undef DUP
  d->requests = 0;
  return d;
}

/* ---- answers ---- */

static int64_t json_num(json_object *o) {
  if (!o)
    return -1;
  if (json_object_is_type(o, json_type_string)) {
    const char *s = json_object_get_string(o);
    /* App Service 2017-09-01 answers "06/20/2019 02:57:58 +00:00". */
    int mo, d, y, h, mi, se;
    if (strchr(s, '/') && sscanf(s, "%d/%d/%d %d:%d:%d", &mo, &d, &y, &h, &mi, &se) == 6) {
      struct tm t = {.tm_year = y - 1900,
                     .tm_mon = mo - 1,
                     .tm_mday = d,
                     .tm_hour = h,
                     .tm_min = mi,
                     .tm_sec = se};
      return (int64_t)timegm(&t);
    }
    return strtoll(s, NULL, 10);
  }
  return json_object_get_int64(o);
}

ed_code_t au_parse_token(const char *json, int64_t now_us, au_token_t *out, ed_err_t *err) {
  json_object *j = json_tokener_parse(json), *v;
  if (!j || !json_object_is_type(j, json_type_object)) {
    json_object_put(j);
    return ed_err_set(err, ED_E_PROTOCOL, "token endpoint: expected a JSON object");
  }
  const char *tok = NULL;
  if (json_object_object_get_ex(j, "access_token", &v) ||
      json_object_object_get_ex(j, "accessToken", &v))
    tok = json_object_get_string(v);
  if (!tok || !*tok) {
    const char *e = NULL;
    if (json_object_object_get_ex(j, "error", &v))
      e = json_object_get_string(v);
    ed_err_set(err, ED_E_UNAUTHORIZED, "token endpoint: no access_token in the answer%s%s",
               e ? ": " : "", e ? e : "");
    json_object_put(j); /* e points into j */
    return ED_E_UNAUTHORIZED;
  }
  int64_t exp = -1;
  if (json_object_object_get_ex(j, "expires_on", &v) && json_num(v) > 0)
    exp = json_num(v) * ED_US_PER_SEC;
  else if (json_object_object_get_ex(j, "expires_in", &v) && json_num(v) > 0)
    exp = now_us + json_num(v) * ED_US_PER_SEC;
  else
    exp = now_us + 3600 * ED_US_PER_SEC;
  out->value = strdup(tok);
  out->expires_us = exp;
  json_object_put(j);
  return out->value ? ED_OK : ED_E_NOMEM;
}

/* "error: first line of error_description" from an Entra error answer, for
 * the message; descriptions carry AADSTS codes, never the credential. */
static void error_summary(const char *body, char *out, size_t cap) {
  out[0] = 0;
  json_object *j = body ? json_tokener_parse(body) : NULL, *v;
  if (j && json_object_is_type(j, json_type_object)) {
    const char *e = NULL, *d = NULL;
    if (json_object_object_get_ex(j, "error", &v)) {
      if (json_object_is_type(v, json_type_object)) { /* IMDS/App Service: {"error":{"code"..}} */
        json_object *w;
        if (json_object_object_get_ex(v, "code", &w))
          e = json_object_get_string(w);
        if (json_object_object_get_ex(v, "message", &w))
          d = json_object_get_string(w);
      } else {
        e = json_object_get_string(v);
      }
    }
    if (!d && json_object_object_get_ex(j, "error_description", &v))
      d = json_object_get_string(v);
    if (e || d)
      snprintf(out, cap, " (%s%s%.*s)", e ? e : "", e && d ? ": " : "",
               d ? (int)strcspn(d, "\r\n") : 0, d ? d : "");
  }
  json_object_put(j);
}

/* ---- one HTTP exchange ---- */

typedef struct {
  const char *url, *form, *hdr;
  long connect_timeout_s;
} au_req_t;

static size_t on_body(char *p, size_t sz, size_t n, void *ud) {
  return ed_buf_append(ud, p, sz * n) ? 0 : sz * n;
}

/* The URL up to its query, for messages: managed identity queries carry
 * nothing secret, but the endpoint is what an operator needs. */
static int ep_len(const char *url) { return (int)strcspn(url, "?"); }

static bool transient_status(long st) { return st == 408 || st == 429 || st >= 500; }

/* One request, retried on connection failures, 408, 429 and 5xx with the
 * project's backoff (common/backoff.h: base 0.5 s, doubling, cap
 * max_backoff_us, equal jitter; azure-identity retries these statuses too). */
static ed_code_t http_token(au_cred_t *c, const au_req_t *q, int retries, au_token_t *out,
                            ed_err_t *err) {
  ed_buf_t body = ED_BUF_INIT;
  ed_code_t rc = ED_OK;
  for (int attempt = 0;; attempt++) {
    CURL *h = curl_easy_init();
    if (!h) {
      rc = ed_err_set(err, ED_E_NOMEM, "token: cannot create an HTTP handle");
      break;
    }
    ed_buf_reset(&body);
    struct curl_slist *hl = curl_slist_append(NULL, "Accept: application/json");
    if (q->hdr)
      hl = curl_slist_append(hl, q->hdr);
    curl_easy_setopt(h, CURLOPT_URL, q->url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, c->timeout_s);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT,
                     q->connect_timeout_s < c->timeout_s ? q->connect_timeout_s : c->timeout_s);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "169.254.169.254,127.0.0.1,localhost");
    if (c->ca_file)
      curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
    if (q->form)
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, q->form);
    int64_t sent = ed_time_now_us(), t0 = ed_time_mono_us();
    c->requests++;
    CURLcode cc = curl_easy_perform(h);
    long st = 0;
    if (cc == CURLE_OK)
      curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
    ED_LOG_DEBUG("token_request", "credential=\"%s\" endpoint=%.*s status=%ld ms=%lld",
                 au_cred_name(c), ep_len(q->url), q->url, st,
                 (long long)((ed_time_mono_us() - t0) / 1000));
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    bool again = cc != CURLE_OK || transient_status(st);
    if (again && attempt < retries) {
      int64_t sleep_us = ed_backoff_delay(&c->backoff, attempt);
      char cause[64];
      if (cc != CURLE_OK)
        snprintf(cause, sizeof cause, "\"%s\"", curl_easy_strerror(cc));
      else
        snprintf(cause, sizeof cause, "http_%ld", st);
      ED_LOG_WARN("token_retry",
                  "credential=\"%s\" endpoint=%.*s cause=%s attempt=%d sleep_ms=%lld",
                  au_cred_name(c), ep_len(q->url), q->url, cause, attempt + 1,
                  (long long)(sleep_us / 1000));
      struct timespec ts = {sleep_us / ED_US_PER_SEC, (sleep_us % ED_US_PER_SEC) * 1000};
      nanosleep(&ts, NULL);
      continue;
    }
    char tries[48] = "";
    if (attempt)
      snprintf(tries, sizeof tries, " after %d attempts", attempt + 1);
    if (cc != CURLE_OK) {
      rc = ed_err_set(err, ED_E_CONNECTION, "%s: token endpoint %.*s unreachable%s: %s",
                      au_cred_name(c), ep_len(q->url), q->url, tries, curl_easy_strerror(cc));
    } else if (st != 200) {
      char why[256];
      error_summary(body.data, why, sizeof why);
      rc = ed_err_set(err, transient_status(st) ? ED_E_UNAVAILABLE : ED_E_UNAUTHORIZED,
                      "%s: token endpoint %.*s answered HTTP %ld%s%s", au_cred_name(c),
                      ep_len(q->url), q->url, st, why, tries);
    } else {
      ed_err_t e2 = {0};
      rc = au_parse_token(body.data ? body.data : "", sent, out, &e2);
      if (rc)
        ed_err_set(err, rc, "%s: token endpoint %.*s: %s", au_cred_name(c), ep_len(q->url), q->url,
                   e2.msg);
    }
    break;
  }
  if (body.data)
    memset(body.data, 0, body.len);
  ed_buf_fini(&body);
  return rc;
}

/* ---- each source ---- */

/* Reads the federated token on every request: the kubelet rotates the file
 * (azure-identity's WorkloadIdentityCredential reads it per request too). */
static ed_code_t read_assertion(const au_cred_t *c, ed_buf_t *out, ed_err_t *err) {
  FILE *f = fopen(c->fed_file, "r");
  if (!f)
    return ed_err_set(err, ED_E_CONFIG, "workload identity: cannot read federated token file '%s'",
                      c->fed_file);
  char *jwt = malloc(AU_JWT_MAX + 1);
  size_t n = jwt ? fread(jwt, 1, AU_JWT_MAX + 1, f) : 0;
  fclose(f);
  if (!jwt)
    return ed_err_set(err, ED_E_NOMEM, "workload identity: out of memory");
  while (n && (jwt[n - 1] == '\n' || jwt[n - 1] == '\r' || jwt[n - 1] == ' '))
    n--;
  /* A JWT is three base64url parts joined by two dots. */
  size_t dots = 0;
  bool ok = n > 4 && n <= AU_JWT_MAX;
  for (size_t i = 0; ok && i < n; i++) {
    char ch = jwt[i];
    if (ch == '.')
      dots++;
    else if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
               ch == '-' || ch == '_' || ch == '='))
      ok = false;
  }
  ed_code_t rc = ED_OK;
  if (!ok || dots != 2 || jwt[0] == '.' || jwt[n - 1] == '.')
    rc = ed_err_set(err, ED_E_CONFIG,
                    "workload identity: federated token file '%s': expected a JWT (three "
                    "base64url parts joined by '.'), got %zu bytes that are not one",
                    c->fed_file, n);
  else
    rc = ed_pct_encode(out, jwt, n, ED_PCT_COMPONENT);
  memset(jwt, 0, AU_JWT_MAX + 1);
  free(jwt);
  return rc;
}

static ed_code_t fetch_entra(au_cred_t *c, au_kind_t k, au_token_t *out, ed_err_t *err) {
  ed_buf_t url = ED_BUF_INIT, form = ED_BUF_INIT;
  ed_code_t rc = ED_OK;
  ed_buf_printf(&url, "%s/%s/oauth2/v2.0/token", c->authority, c->tenant);
  ed_buf_puts(&form, "client_id=");
  ed_pct_encode(&form, c->client_id, strlen(c->client_id), ED_PCT_COMPONENT);
  if (k == AU_CRED_CLIENT_SECRET) {
    ed_buf_puts(&form, "&client_secret=");
    ed_pct_encode(&form, c->client_secret, strlen(c->client_secret), ED_PCT_COMPONENT);
  } else {
    ed_buf_puts(&form, "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-"
                       "type%3Ajwt-bearer&client_assertion=");
    rc = read_assertion(c, &form, err);
  }
  if (!rc) {
    ed_buf_puts(&form, "&scope=");
    ed_pct_encode(&form, c->scope, strlen(c->scope), ED_PCT_COMPONENT);
    rc = ed_buf_puts(&form, "&grant_type=client_credentials");
  }
  if (!rc) {
    au_req_t q = {url.data, form.data, NULL, 10};
    rc = http_token(c, &q, c->max_retries, out, err);
  }
  if (form.data)
    memset(form.data, 0, form.len);
  ed_buf_fini(&form);
  ed_buf_fini(&url);
  return rc;
}

/* The resource a v1 endpoint wants: the scope without "/.default". */
static void scope_resource(const char *scope, ed_buf_t *out) {
  size_t n = strlen(scope);
  if (n > 9 && !strcmp(scope + n - 9, "/.default"))
    n -= 9;
  ed_pct_encode(out, scope, n, ED_PCT_COMPONENT);
}

static ed_code_t fetch_managed(au_cred_t *c, bool probe, au_token_t *out, ed_err_t *err) {
  ed_buf_t url = ED_BUF_INIT, form = ED_BUF_INIT;
  char hdr[512];
  const char *ie = getenv("IDENTITY_ENDPOINT"), *ih = getenv("IDENTITY_HEADER");
  const char *me = getenv("MSI_ENDPOINT"), *ms = getenv("MSI_SECRET");
  bool imds = false;
  if (ie && *ie && ih && *ih) { /* App Service, Functions, Container Apps: 2019-08-01 */
    ed_buf_printf(&url, "%s?api-version=2019-08-01&resource=", ie);
    scope_resource(c->scope, &url);
    if (c->client_id)
      ed_buf_printf(&url, "&client_id=%s", c->client_id);
    snprintf(hdr, sizeof hdr, "X-IDENTITY-HEADER: %s", ih);
  } else if (me && *me && ms && *ms) { /* App Service 2017-09-01 */
    ed_buf_printf(&url, "%s?api-version=2017-09-01&resource=", me);
    scope_resource(c->scope, &url);
    if (c->client_id)
      ed_buf_printf(&url, "&clientid=%s", c->client_id);
    snprintf(hdr, sizeof hdr, "secret: %s", ms);
  } else if (me && *me) { /* Cloud Shell: a form POST */
    ed_buf_puts(&url, me);
    ed_buf_puts(&form, "resource=");
    scope_resource(c->scope, &form);
    if (c->client_id)
      ed_buf_printf(&form, "&client_id=%s", c->client_id);
    snprintf(hdr, sizeof hdr, "Metadata: true");
  } else {
    const char *host = getenv("AZURE_POD_IDENTITY_AUTHORITY_HOST");
    ed_buf_printf(&url, "%s/metadata/identity/oauth2/token?api-version=2018-02-01&resource=",
                  host && *host ? host : "http://169.254.169.254");
    scope_resource(c->scope, &url);
    if (c->client_id)
      ed_buf_printf(&url, "&client_id=%s", c->client_id);
    snprintf(hdr, sizeof hdr, "Metadata: true");
    imds = true;
  }
  /* In the default chain IMDS is a probe: off Azure nothing answers at
   * 169.254.169.254, and azure-identity gives it one short try there. */
  au_req_t q = {url.data, form.data, hdr, probe && imds ? 1 : 10};
  ed_code_t rc = http_token(c, &q, probe && imds ? 0 : c->max_retries, out, err);
  memset(hdr, 0, sizeof hdr);
  ed_buf_fini(&url);
  ed_buf_fini(&form);
  return rc;
}

static ed_code_t fetch_cli(au_cred_t *c, au_token_t *out, ed_err_t *err) {
  /* The scope reaches a shell: allow only URL characters without quotes. */
  for (const char *p = c->scope; *p; p++)
    if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:/._-", *p))
      return ed_err_set(err, ED_E_INVALID, "Azure CLI: scope '%s' has a character not allowed",
                        c->scope);
  char cmd[512];
  snprintf(cmd, sizeof cmd,
           "AZURE_CORE_NO_COLOR=true timeout 10 az account get-access-token --output json "
           "--scope '%s' 2>/dev/null",
           c->scope);
  c->requests++;
  FILE *p = popen(cmd, "r");
  if (!p)
    return ed_err_set(err, ED_E_CONFIG, "Azure CLI: cannot run 'az'");
  ed_buf_t o = ED_BUF_INIT;
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
    ed_buf_append(&o, chunk, n);
  int st = pclose(p);
  ed_code_t rc;
  if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) == 127)
    rc = ed_err_set(err, ED_E_CONFIG, "Azure CLI: 'az' not found on PATH");
  else if (WEXITSTATUS(st) != 0)
    rc = ed_err_set(err, ED_E_UNAUTHORIZED,
                    "Azure CLI: 'az account get-access-token' exited with status %d (run 'az "
                    "login')",
                    WEXITSTATUS(st));
  else
    rc = au_parse_token(o.data ? o.data : "", ed_time_now_us(), out, err);
  if (o.data)
    memset(o.data, 0, o.len);
  ed_buf_fini(&o);
  return rc;
}

static ed_code_t fetch_one(au_cred_t *c, au_kind_t k, bool probe, au_token_t *out, ed_err_t *err) {
  switch (k) {
  case AU_CRED_CLIENT_SECRET:
  case AU_CRED_WORKLOAD_ID:
    return fetch_entra(c, k, out, err);
  case AU_CRED_MANAGED_ID:
    return fetch_managed(c, probe, out, err);
  case AU_CRED_AZURE_CLI:
    return fetch_cli(c, out, err);
  default:
    return ed_err_set(err, ED_E_INTERNAL, "credential: no token source");
  }
}

/* DefaultAzureCredential: each member in order, skipping the ones not
 * configured; the first that yields a token is used from then on (as
 * azure-identity's ChainedTokenCredential remembers it). */
static ed_code_t fetch_default(au_cred_t *c, au_token_t *out, ed_err_t *err) {
  static const au_kind_t order[] = {AU_CRED_CLIENT_SECRET, AU_CRED_WORKLOAD_ID, AU_CRED_MANAGED_ID,
                                    AU_CRED_AZURE_CLI};
  ed_buf_t why = ED_BUF_INIT;
  for (size_t i = 0; i < sizeof order / sizeof *order; i++) {
    au_kind_t k = order[i];
    ed_err_t e2 = {0};
    if (k == AU_CRED_CLIENT_SECRET && !has_secret(c)) {
      ed_buf_puts(&why, "environment: AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET not "
                        "all set; ");
      continue;
    }
    if (k == AU_CRED_WORKLOAD_ID && !has_fed(c)) {
      ed_buf_puts(&why, "workload identity: AZURE_TENANT_ID, AZURE_CLIENT_ID, "
                        "AZURE_FEDERATED_TOKEN_FILE not all set; ");
      continue;
    }
    c->chosen = k;
    c->have_chosen = true;
    if (fetch_one(c, k, true, out, &e2) == ED_OK) {
      ED_LOG_INFO("credential_chosen", "credential=%s scope=%s", kind_name(k), c->scope);
      ed_buf_fini(&why);
      return ED_OK;
    }
    c->have_chosen = false;
    ed_buf_printf(&why, "%s; ", e2.msg);
  }
  if (why.len >= 2)
    why.data[why.len - 2] = 0;
  ed_err_set(err, ED_E_UNAUTHORIZED, "default credential: no source gave a token: %s",
             why.data ? why.data : "");
  ed_buf_fini(&why);
  return ED_E_UNAUTHORIZED;
}

ed_code_t au_cred_token(au_cred_t *c, bool force, const char **token, int64_t *expires_us,
                        ed_err_t *err) {
  int64_t now = ed_time_now_us();
  bool valid = c->tok.value && c->tok.expires_us > now;
  /* 300 s before expiry, or half way through a token that lives shorter */
  int64_t margin = (c->tok.expires_us - c->tok_at_us) / 2;
  if (margin > AU_REFRESH_US)
    margin = AU_REFRESH_US;
  bool fresh = valid && !force && c->tok.expires_us - now > margin;
  if (!fresh && (force || !(valid && now - c->last_fail_us < AU_RETRY_US))) {
    au_token_t t = {0};
    ed_err_t e2 = {0};
    ed_code_t rc = c->kind == AU_CRED_DEFAULT && !c->have_chosen
                       ? fetch_default(c, &t, &e2)
                       : fetch_one(c, c->have_chosen ? c->chosen : c->kind, false, &t, &e2);
    if (rc && !(valid && !force)) {
      if (err)
        *err = e2;
      return rc;
    }
    c->last_fail_us = rc ? now : 0;
    if (rc)
      ED_LOG_WARN("token_refresh_failed", "credential=%s keeping=current reason=\"%s\"",
                  au_cred_name(c), e2.msg);
    else {
      wipe_free(c->tok.value);
      c->tok = t;
      c->tok_at_us = now;
    }
  }
  if (token)
    *token = c->tok.value;
  if (expires_us)
    *expires_us = c->tok.expires_us;
  return ED_OK;
}
