/* azure: the Azure Blob / ADLS Gen2 backend over libcurl (Blob endpoint only,
 * reference §0). One easy handle per store keeps the connection alive between
 * requests. Authentication: Shared Key (§2), SAS (§3.1), bearer tokens from
 * Entra ID with caching and refresh (§3.4-3.8). Transient failures (408, 429,
 * 500, 502, 503, 504, connection errors, and a request that moves no byte for
 * the configured timeout) are retried with capped exponential backoff and
 * equal jitter (common/backoff.h), honouring Retry-After (§4.12); each retry is logged with its
 * cause (never the SAS query) and reported to the opener's on_retry. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth/cred.h"
#include "common/b64.h"
#include "common/backoff.h"
#include "common/log.h"
#include "common/pct.h"
#include "common/time.h"
#include "store/azure.h"
#include "store/store_int.h"

#define AZ_VERSION         "2023-11-03"
#define AZ_BACKOFF_BASE_US INT64_C(100000) /* the first retry step: 100 ms */

typedef struct az {
  st_az_url_t u;
  CURL *curl;
  st_auth_t auth;
  uint8_t key[128];
  size_t keylen;
  char *sas;
  char *ca_file;
  /* bearer tokens */
  st_token_t tok;  /* the value last sent (fixed for ST_AUTH_TOKEN) */
  au_cred_t *cred; /* Entra ID token source; NULL for the other methods */
  size_t block_size;
  int max_retries;
  int64_t max_backoff_us;
  int64_t timeout_us, connect_timeout_us;
  void (*on_retry)(void *ctx, const char *reason);
  void *on_retry_ctx;
  ed_backoff_t backoff; /* retry delays: 100 ms doubling up to max_backoff_us */
} az_t;

typedef struct {
  long status;
  ed_buf_t body;
  char err_code[96];
  char retry_after[64];
  char last_modified[64];
  char content_range[96];
  char etag[96];
  int64_t content_length;
} az_resp_t;

static int curl_ready;

static void resp_reset(az_resp_t *r) {
  ed_buf_reset(&r->body);
  r->status = 0;
  r->err_code[0] = r->retry_after[0] = r->last_modified[0] = r->content_range[0] = r->etag[0] = 0;
  r->content_length = -1;
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud) {
  az_resp_t *r = ud;
  return ed_buf_append(&r->body, p, sz * n) ? 0 : sz * n;
}

static void hcopy(char *dst, size_t cap, const char *v, size_t n) {
  while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
    n--;
  while (n && *v == ' ')
    v++, n--;
  snprintf(dst, cap, "%.*s", (int)n, v);
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud) {
  az_resp_t *r = ud;
  size_t len = sz * n;
  const char *c = memchr(p, ':', len);
  if (!c)
    return len;
  size_t nl = (size_t)(c - p), vl = len - nl - 1;
  const char *v = c + 1;
#define IS(h) (nl == sizeof(h) - 1 && !strncasecmp(p, h, nl))
  if (IS("x-ms-error-code"))
    hcopy(r->err_code, sizeof r->err_code, v, vl);
  else if (IS("Retry-After"))
    hcopy(r->retry_after, sizeof r->retry_after, v, vl);
  else if (IS("Last-Modified"))
    hcopy(r->last_modified, sizeof r->last_modified, v, vl);
  else if (IS("ETag"))
    hcopy(r->etag, sizeof r->etag, v, vl);
  else if (IS("Content-Range"))
    hcopy(r->content_range, sizeof r->content_range, v, vl);
  else if (IS("Content-Length")) {
    char t[32];
    hcopy(t, sizeof t, v, vl);
    r->content_length = strtoll(t, NULL, 10);
  }
#undef IS
  return len;
}

static ed_code_t blob_name(const az_t *a, const char *key, ed_buf_t *out) {
  ed_buf_reset(out);
  if (*a->u.prefix) {
    ed_code_t rc = ed_buf_printf(out, "%s/", a->u.prefix);
    if (rc)
      return rc;
  }
  return key ? ed_buf_puts(out, key) : ed_buf_puts(out, "");
}

/* ---- bearer tokens ---- */

/* A bearer token for the request: the fixed one, or the credential's
 * (auth/cred.c keeps it fresh and retries its endpoint). */
static ed_code_t token_get(az_t *a, bool force, ed_err_t *err) {
  if (a->auth == ST_AUTH_TOKEN)
    return ED_OK;
  const char *t = NULL;
  ed_code_t rc = au_cred_token(a->cred, force, &t, NULL, err);
  if (rc)
    return rc;
  if (!a->tok.value || strcmp(a->tok.value, t)) {
    free(a->tok.value);
    if (!(a->tok.value = strdup(t)))
      return ed_err_set(err, ED_E_NOMEM, "token: out of memory");
  }
  return ED_OK;
}

/* ---- one request ---- */

typedef struct {
  const char *verb;
  const char *blob;  /* unencoded blob name, or NULL for a container request */
  const char *query; /* encoded, without '?', or NULL */
  const st_hdr_t *hdrs;
  size_t nh;
  const void *body;
  size_t blen;
  bool head;
} az_req_t;

static ed_code_t az_once(st_store_t *s, const az_req_t *q, az_resp_t *r, CURLcode *cc,
                         ed_err_t *err) {
  az_t *a = s->impl;
  ed_buf_t path = ED_BUF_INIT, url = ED_BUF_INIT, sts = ED_BUF_INIT, line = ED_BUF_INIT;
  ed_code_t rc = ED_OK;
  struct curl_slist *hl = NULL;
  /* the URL path as sent, which Shared Key signs */
  const char *ep = a->u.endpoint, *pp = strstr(ep, "://");
  pp = pp ? strchr(pp + 3, '/') : NULL;
  if (pp)
    ed_buf_puts(&path, pp);
  ed_buf_putc(&path, '/');
  ed_pct_encode(&path, a->u.container, strlen(a->u.container), ED_PCT_PATH);
  if (q->blob) {
    ed_buf_putc(&path, '/');
    ed_pct_encode(&path, q->blob, strlen(q->blob), ED_PCT_PATH);
  }
  size_t hostlen = pp ? (size_t)(pp - ep) : strlen(ep);
  ed_buf_printf(&url, "%.*s%s", (int)hostlen, ep, path.data);
  bool hasq = q->query && *q->query;
  if (hasq)
    ed_buf_printf(&url, "?%s", q->query);
  if (a->auth == ST_AUTH_SAS && a->sas)
    ed_buf_printf(&url, "%c%s", hasq ? '&' : '?', a->sas);

  char date[30], clen[32];
  st_az_http_date(ed_time_now_us(), date);
  snprintf(clen, sizeof clen, "%zu", q->blen);
  st_hdr_t all[24];
  size_t n = 0;
  for (size_t i = 0; i < q->nh && n < 20; i++)
    all[n++] = q->hdrs[i];
  all[n++] = (st_hdr_t){"x-ms-date", date};
  all[n++] = (st_hdr_t){"x-ms-version", AZ_VERSION};
  bool sends_body = !strcmp(q->verb, "PUT") || !strcmp(q->verb, "POST");
  if (sends_body)
    all[n++] = (st_hdr_t){"Content-Length", clen};
  for (size_t i = 0; i < n; i++) {
    ed_buf_reset(&line);
    /* libcurl drops "Name:" with nothing after it; "Name;" sends it empty
     * (a released ownership record: ownerid = "") */
    if (*all[i].value)
      ed_buf_printf(&line, "%s: %s", all[i].name, all[i].value);
    else
      ed_buf_printf(&line, "%s;", all[i].name);
    hl = curl_slist_append(hl, line.data);
  }
  /* libcurl would add a Content-Type to a body (signed) and Expect. */
  bool has_ct = false;
  for (size_t i = 0; i < q->nh; i++)
    has_ct |= !strcasecmp(q->hdrs[i].name, "Content-Type");
  if (!has_ct)
    hl = curl_slist_append(hl, "Content-Type:");
  hl = curl_slist_append(hl, "Expect:");
  if (a->auth == ST_AUTH_SHARED_KEY) {
    if ((rc = st_az_string_to_sign(q->verb, all, n, a->u.account, path.data, q->query, &sts, err)))
      goto out;
    char sig[64];
    st_az_sign(a->key, a->keylen, sts.data, sts.len, sig);
    ed_buf_reset(&line);
    ed_buf_printf(&line, "Authorization: SharedKey %s:%s", a->u.account, sig);
    hl = curl_slist_append(hl, line.data);
  } else if (a->auth != ST_AUTH_SAS && a->auth != ST_AUTH_NONE) {
    ed_buf_reset(&line);
    ed_buf_printf(&line, "Authorization: Bearer %s", a->tok.value ? a->tok.value : "");
    hl = curl_slist_append(hl, line.data);
  }
  CURL *c = a->curl;
  curl_easy_reset(c);
  curl_easy_setopt(c, CURLOPT_URL, url.data);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(a->connect_timeout_us / 1000));
  /* A stall, not a total: a 64 MiB block on a slow link may take minutes
   * while it moves, but a peer that accepted and went quiet fails after the
   * timeout (and is retried) instead of holding the flush thread. */
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME,
                   (long)((a->timeout_us + ED_US_PER_SEC - 1) / ED_US_PER_SEC));
  curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
  /* Azurite closes idle sockets after 5 s (§5.3). */
  curl_easy_setopt(c, CURLOPT_MAXAGE_CONN, 4L);
  if (a->ca_file)
    curl_easy_setopt(c, CURLOPT_CAINFO, a->ca_file);
  if (q->head) {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, q->verb);
    if (sends_body) {
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, q->body ? q->body : "");
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->blen);
    }
  }
  resp_reset(r);
  *cc = curl_easy_perform(c);
  if (*cc == CURLE_OK)
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
out:
  curl_slist_free_all(hl);
  ed_buf_fini(&path);
  ed_buf_fini(&url);
  ed_buf_fini(&sts);
  ed_buf_fini(&line);
  return rc;
}

static bool transient_status(long st) {
  return st == 408 || st == 429 || st == 500 || st == 502 || st == 503 || st == 504;
}

static bool transient_curl(CURLcode cc) {
  return cc == CURLE_COULDNT_CONNECT || cc == CURLE_OPERATION_TIMEDOUT || cc == CURLE_SEND_ERROR ||
         cc == CURLE_RECV_ERROR || cc == CURLE_GOT_NOTHING || cc == CURLE_PARTIAL_FILE;
}

/* Runs q with retries. *retried tells a put-if-absent caller that an earlier
 * attempt may have landed (§4.12: a conditional create is not idempotent). */
static ed_code_t az_call(st_store_t *s, const az_req_t *q, az_resp_t *r, bool *retried,
                         ed_err_t *err) {
  az_t *a = s->impl;
  bool refreshed = false;
  if (retried)
    *retried = false;
  for (int attempt = 0;; attempt++) {
    if (a->cred) {
      ed_code_t rc = token_get(a, false, err);
      if (rc)
        return rc;
    }
    CURLcode cc;
    ed_code_t rc = az_once(s, q, r, &cc, err);
    if (rc)
      return rc;
    if (cc == CURLE_COULDNT_RESOLVE_HOST)
      return ed_err_set(err, ED_E_NOT_FOUND,
                        "storage account '%s': host of %s does not resolve (no such account?)",
                        a->u.account, a->u.endpoint);
    bool transient = cc != CURLE_OK ? transient_curl(cc) : transient_status(r->status);
    /* An expired or revoked token: refresh once, then give up (§3.9 item 5). */
    if (cc == CURLE_OK && (r->status == 401 || r->status == 403) && !refreshed && a->cred) {
      refreshed = true;
      if (token_get(a, true, NULL) == ED_OK)
        continue;
    }
    if (!transient || attempt >= a->max_retries) {
      if (cc != CURLE_OK)
        return ed_err_set(err, transient ? ED_E_UNAVAILABLE : ED_E_CONNECTION,
                          "%s %s/%s%s%s: %s (%d attempt%s)", q->verb, a->u.endpoint, a->u.container,
                          q->blob ? "/" : "", q->blob ? q->blob : "", curl_easy_strerror(cc),
                          attempt + 1, attempt ? "s" : "");
      return ED_OK; /* caller maps the status */
    }
    s->counters.retries++;
    if (retried)
      *retried = true;
    int64_t sleep_us = ed_backoff_delay(&a->backoff, attempt);
    int64_t ra = st_az_retry_after_us(r->retry_after, ed_time_now_us());
    if (ra > sleep_us)
      sleep_us = ra < 60 * ED_US_PER_SEC ? ra : 60 * ED_US_PER_SEC;
    char reason[32], cause[160];
    if (cc != CURLE_OK) {
      snprintf(reason, sizeof reason, "%s",
               cc == CURLE_OPERATION_TIMEDOUT ? "timeout" : "connection");
      snprintf(cause, sizeof cause, "%s", curl_easy_strerror(cc));
    } else {
      snprintf(reason, sizeof reason, "http_%ld", r->status);
      snprintf(cause, sizeof cause, "HTTP %ld%s%s", r->status, r->err_code[0] ? " " : "",
               r->err_code);
    }
    /* container, blob and our own query only: the URL would carry the SAS */
    ED_LOG_WARN("storage_retry",
                "method=%s path=%s%s%s%s%s cause=\"%s\" attempt=%d/%d delay_ms=%lld", q->verb,
                a->u.container, q->blob ? "/" : "", q->blob ? q->blob : "", q->query ? "?" : "",
                q->query ? q->query : "", cause, attempt + 1, a->max_retries + 1,
                (long long)(sleep_us / 1000));
    if (a->on_retry)
      a->on_retry(a->on_retry_ctx, reason);
    struct timespec ts = {sleep_us / 1000000, (sleep_us % 1000000) * 1000};
    nanosleep(&ts, NULL);
  }
}

static const char *auth_name(const az_t *a) {
  switch (a->auth) {
  case ST_AUTH_SHARED_KEY:
    return "account key";
  case ST_AUTH_SAS:
    return "SAS";
  case ST_AUTH_NONE:
    return "anonymous access";
  default:
    return "bearer token";
  }
}

static ed_code_t status_error(az_t *a, const char *verb, const char *blob, az_resp_t *r,
                              ed_err_t *err) {
  const char *code = r->err_code[0] ? r->err_code : "";
  char where[1024];
  snprintf(where, sizeof where, "%s %s/%s%s%s", verb, a->u.endpoint, a->u.container,
           blob ? "/" : "", blob ? blob : "");
  if (r->status == 404 && !strcmp(code, "ContainerNotFound"))
    return ed_err_set(err, ED_E_NOT_FOUND, "container '%s' does not exist in storage account '%s'",
                      a->u.container, a->u.account);
  if (r->status == 404)
    return ed_err_set(err, ED_E_NOT_FOUND, "%s: not found (%s)", where, *code ? code : "404");
  if (r->status == 401 || r->status == 403) {
    return ed_err_set(err, ED_E_UNAUTHORIZED,
                      "%s: %s refused by storage account '%s' (HTTP %ld %s)", where, auth_name(a),
                      a->u.account, r->status, code);
  }
  if (r->status == 409 || r->status == 412)
    return ed_err_set(err, ED_E_EXISTS, "%s: already exists (HTTP %ld %s)", where, r->status, code);
  if (transient_status(r->status))
    return ed_err_set(err, ED_E_UNAVAILABLE, "%s: HTTP %ld %s after %d retries", where, r->status,
                      code, a->max_retries);
  return ed_err_set(err, ED_E_PROTOCOL, "%s: unexpected HTTP %ld %s", where, r->status, code);
}

/* ---- operations ---- */

static ed_code_t aget(st_store_t *s, const char *key, int64_t off, int64_t len, ed_buf_t *out,
                      ed_err_t *err) {
  az_t *a = s->impl;
  ed_buf_t blob = ED_BUF_INIT;
  az_resp_t r = {0};
  char range[80];
  st_hdr_t h[1];
  size_t nh = 0;
  if (off > 0 || len >= 0) {
    if (len == 0)
      return ED_OK;
    if (len < 0)
      snprintf(range, sizeof range, "bytes=%lld-", (long long)off);
    else
      snprintf(range, sizeof range, "bytes=%lld-%lld", (long long)off, (long long)(off + len - 1));
    h[nh++] = (st_hdr_t){"x-ms-range", range};
  }
  ed_code_t rc = blob_name(a, key, &blob);
  az_req_t q = {"GET", blob.data, NULL, h, nh, NULL, 0, false};
  if (!rc)
    rc = az_call(s, &q, &r, NULL, err);
  if (!rc) {
    if (r.status == 200 || r.status == 206)
      rc = ed_buf_append(out, r.body.data ? r.body.data : "", r.body.len);
    else if (r.status == 416)
      rc = ED_OK; /* empty range at the end */
    else
      rc = status_error(a, "GET", blob.data, &r, err);
  }
  ed_buf_fini(&blob);
  ed_buf_fini(&r.body);
  return rc;
}

typedef size_t (*chunk_fn)(void *ctx, char *buf, size_t bs);
static ed_code_t put_blocks(st_store_t *s, const char *blob, chunk_fn read, void *ctx,
                            bool if_absent, ed_err_t *err);
typedef struct {
  const char *p;
  size_t left;
} mem_src_t;
static size_t mem_chunk(void *ctx, char *buf, size_t bs);

static ed_code_t put_blob(st_store_t *s, const char *blob, const void *data, size_t n,
                          bool if_absent, bool *retried, az_resp_t *r, ed_err_t *err) {
  st_hdr_t h[2] = {{"x-ms-blob-type", "BlockBlob"}, {"If-None-Match", "*"}};
  az_req_t q = {"PUT", blob, NULL, h, if_absent ? 2 : 1, data, n, false};
  return az_call(s, &q, r, retried, err);
}

static ed_code_t aput(st_store_t *s, const char *key, const void *data, size_t n, bool if_absent,
                      ed_err_t *err) {
  az_t *a = s->impl;
  ed_buf_t blob = ED_BUF_INIT;
  az_resp_t r = {0};
  bool retried = false;
  ed_code_t rc = blob_name(a, key, &blob);
  if (!rc && n > a->block_size) {
    mem_src_t m = {data, n};
    rc = put_blocks(s, blob.data, mem_chunk, &m, if_absent, err);
    ed_buf_fini(&blob);
    return rc;
  }
  if (!rc)
    rc = put_blob(s, blob.data, data, n, if_absent, &retried, &r, err);
  if (!rc && r.status != 201) {
    if (if_absent && (r.status == 409 || r.status == 412) && retried) {
      /* Our earlier attempt may have landed: same bytes means it did. */
      ed_buf_t got = ED_BUF_INIT;
      if (aget(s, key, 0, -1, &got, NULL) == ED_OK && got.len == n && !memcmp(got.data, data, n))
        rc = ED_OK;
      else
        rc = ed_err_set(err, ED_E_EXISTS, "'%s' already exists", key);
      ed_buf_fini(&got);
    } else if (if_absent && (r.status == 409 || r.status == 412)) {
      rc = ed_err_set(err, ED_E_EXISTS, "'%s' already exists", key);
    } else {
      rc = status_error(a, "PUT", blob.data, &r, err);
    }
  }
  ed_buf_fini(&blob);
  ed_buf_fini(&r.body);
  return rc;
}

/* Put Block + Put Block List (§4.3) for objects above block_size: each block
 * is retried on its own; the final list commits atomically (with
 * If-None-Match: * for a put-if-absent). read fills up to bs bytes. */
static ed_code_t put_blocks(st_store_t *s, const char *blob, chunk_fn read, void *ctx,
                            bool if_absent, ed_err_t *err) {
  az_t *a = s->impl;
  size_t bs = a->block_size;
  char *chunk = malloc(bs ? bs : 1);
  ed_buf_t list = ED_BUF_INIT, qs = ED_BUF_INIT;
  az_resp_t r = {0};
  ed_code_t rc = chunk ? ED_OK : ED_E_NOMEM;
  ed_buf_puts(&list, "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
  unsigned tag = (unsigned)ed_time_mono_us() ^ (unsigned)getpid();
  for (unsigned i = 0; !rc; i++) {
    size_t n = read(ctx, chunk, bs);
    if (n == 0)
      break;
    char raw[48], id[72];
    /* same length for every id of the blob (§4.3) */
    snprintf(raw, sizeof raw, "%08x-%08u", tag, i);
    ed_b64_encode((const uint8_t *)raw, strlen(raw), id);
    ed_buf_reset(&qs);
    ed_buf_puts(&qs, "comp=block&blockid=");
    ed_pct_encode(&qs, id, strlen(id), ED_PCT_COMPONENT);
    az_req_t q = {"PUT", blob, qs.data, NULL, 0, chunk, n, false};
    if ((rc = az_call(s, &q, &r, NULL, err)))
      break;
    if (r.status != 201) {
      rc = status_error(a, "PUT block", blob, &r, err);
      break;
    }
    ed_buf_printf(&list, "<Latest>%s</Latest>", id);
  }
  if (!rc) {
    ed_buf_puts(&list, "</BlockList>");
    st_hdr_t h[1] = {{"If-None-Match", "*"}};
    az_req_t q = {"PUT", blob, "comp=blocklist", h, if_absent ? 1 : 0, list.data, list.len, false};
    if (!(rc = az_call(s, &q, &r, NULL, err)) && r.status != 201) {
      if (if_absent && (r.status == 409 || r.status == 412))
        rc = ed_err_set(err, ED_E_EXISTS, "'%s' already exists", blob);
      else
        rc = status_error(a, "PUT block list", blob, &r, err);
    }
  }
  free(chunk);
  ed_buf_fini(&list);
  ed_buf_fini(&qs);
  ed_buf_fini(&r.body);
  return rc;
}

static size_t mem_chunk(void *ctx, char *buf, size_t bs) {
  mem_src_t *m = ctx;
  size_t n = m->left < bs ? m->left : bs;
  memcpy(buf, m->p, n);
  m->p += n;
  m->left -= n;
  return n;
}

static size_t file_chunk(void *ctx, char *buf, size_t bs) { return fread(buf, 1, bs, ctx); }

static ed_code_t aput_file(st_store_t *s, const char *key, const char *path, ed_err_t *err) {
  az_t *a = s->impl;
  FILE *f = fopen(path, "rb");
  if (!f)
    return ed_err_set(err, ED_E_NOT_FOUND, "upload: cannot open '%s'", path);
  struct stat st;
  fstat(fileno(f), &st);
  ed_buf_t blob = ED_BUF_INIT;
  ed_code_t rc = blob_name(a, key, &blob);
  if (!rc && (size_t)st.st_size <= a->block_size) {
    char *data = malloc((size_t)st.st_size + 1);
    if (!data || fread(data, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
      rc = ed_err_set(err, ED_E_IO, "upload: cannot read '%s'", path);
    else
      rc = aput(s, key, data, (size_t)st.st_size, false, err);
    free(data);
  } else if (!rc) {
    rc = put_blocks(s, blob.data, file_chunk, f, false, err);
  }
  s->counters.bytes_up += (uint64_t)st.st_size;
  fclose(f);
  ed_buf_fini(&blob);
  return rc;
}

/* One parser of a List Blobs page: appends its blobs to out and leaves the
 * page's NextMarker (empty on the last page) in marker. */
typedef ed_code_t (*list_page_fn)(const char *xml, size_t n, size_t strip, void *out,
                                  ed_buf_t *marker, ed_err_t *err);

static ed_code_t page_names(const char *xml, size_t n, size_t strip, void *out, ed_buf_t *marker,
                            ed_err_t *err) {
  return st_az_parse_list(xml, n, strip, out, marker, err);
}

static ed_code_t page_meta(const char *xml, size_t n, size_t strip, void *out, ed_buf_t *marker,
                           ed_err_t *err) {
  return st_az_parse_list_meta(xml, n, strip, out, marker, err);
}

/* List Blobs under prefix, page after page; include: "" or "&include=metadata". */
static ed_code_t list_pages(st_store_t *s, const char *prefix, const char *include,
                            list_page_fn parse, void *out, ed_err_t *err) {
  az_t *a = s->impl;
  ed_buf_t full = ED_BUF_INIT, qs = ED_BUF_INIT, marker = ED_BUF_INIT;
  az_resp_t r = {0};
  ed_code_t rc = blob_name(a, prefix, &full);
  size_t strip = *a->u.prefix ? strlen(a->u.prefix) + 1 : 0;
  while (!rc) {
    ed_buf_reset(&qs);
    ed_buf_printf(&qs, "restype=container&comp=list%s&prefix=", include);
    ed_pct_encode(&qs, full.data, full.len, ED_PCT_COMPONENT);
    if (marker.len) {
      ed_buf_puts(&qs, "&marker=");
      ed_pct_encode(&qs, marker.data, marker.len, ED_PCT_COMPONENT);
    }
    az_req_t q = {"GET", NULL, qs.data, NULL, 0, NULL, 0, false};
    if ((rc = az_call(s, &q, &r, NULL, err)))
      break;
    if (r.status != 200) {
      rc = status_error(a, "LIST", full.data, &r, err);
      break;
    }
    if ((rc = parse(r.body.data ? r.body.data : "", r.body.len, strip, out, &marker, err)))
      break;
    if (!marker.len)
      break;
  }
  ed_buf_fini(&full);
  ed_buf_fini(&qs);
  ed_buf_fini(&marker);
  ed_buf_fini(&r.body);
  return rc;
}

static ed_code_t alist(st_store_t *s, const char *prefix, st_list_t *out, ed_err_t *err) {
  return list_pages(s, prefix, "", page_names, out, err);
}

static ed_code_t alist_meta(st_store_t *s, const char *prefix, st_blobs_t *out, ed_err_t *err) {
  return list_pages(s, prefix, "&include=metadata", page_meta, out, err);
}

/* Put Blob of an empty block blob with x-ms-meta-* headers: one request that
 * creates or replaces, conditional on the ETag (If-Match) or on absence
 * (If-None-Match: *), the way the SDKs' checkpoint stores claim (§4.2). */
static ed_code_t aput_meta(st_store_t *s, const char *key, const st_kv_t *meta, size_t nmeta,
                           const char *if_match, bool if_absent, char *etag, int64_t *mtime_ms,
                           ed_err_t *err) {
  az_t *a = s->impl;
  if (nmeta > 8)
    return ed_err_set(err, ED_E_INVALID, "PUT %s: %zu metadata pairs, expected at most 8", key,
                      nmeta);
  ed_buf_t blob = ED_BUF_INIT, names = ED_BUF_INIT;
  az_resp_t r = {0};
  st_hdr_t h[10];
  size_t nh = 0, off[8];
  h[nh++] = (st_hdr_t){"x-ms-blob-type", "BlockBlob"};
  if (if_match)
    h[nh++] = (st_hdr_t){"If-Match", if_match};
  else if (if_absent)
    h[nh++] = (st_hdr_t){"If-None-Match", "*"};
  ed_code_t rc = ED_OK;
  for (size_t i = 0; i < nmeta && !rc; i++) {
    off[i] = names.len;
    rc = ed_buf_printf(&names, "x-ms-meta-%s", meta[i].name);
    if (!rc)
      rc = ed_buf_putc(&names, 0);
  }
  for (size_t i = 0; i < nmeta && !rc; i++)
    h[nh++] = (st_hdr_t){names.data + off[i], meta[i].value};
  bool retried = false;
  if (!rc)
    rc = blob_name(a, key, &blob);
  az_req_t q = {"PUT", blob.data, NULL, h, nh, NULL, 0, false};
  if (!rc)
    rc = az_call(s, &q, &r, &retried, err);
  if (!rc) {
    if (r.status == 201) {
      if (etag)
        snprintf(etag, 96, "%s", r.etag);
      if (mtime_ms) {
        *mtime_ms = 0;
        st_az_parse_http_date(r.last_modified, mtime_ms);
      }
    } else if ((r.status == 412 || r.status == 409) && (if_match || if_absent)) {
      /* After a retry our own first attempt may be what changed the ETag:
       * the outcome is unknown, not lost (the caller re-lists). */
      rc = ed_err_set(err, retried ? ED_E_UNAVAILABLE : ED_E_CONFLICT,
                      "PUT %s/%s: %s (HTTP %ld %s)", a->u.container, blob.data,
                      retried ? "outcome unknown after a retry"
                              : (if_match ? "ETag changed since it was read" : "already exists"),
                      r.status, r.err_code);
    } else {
      rc = status_error(a, "PUT", blob.data, &r, err);
    }
  }
  ed_buf_fini(&blob);
  ed_buf_fini(&names);
  ed_buf_fini(&r.body);
  return rc;
}

static ed_code_t adel(st_store_t *s, const char *key, ed_err_t *err) {
  az_t *a = s->impl;
  ed_buf_t blob = ED_BUF_INIT;
  az_resp_t r = {0};
  ed_code_t rc = blob_name(a, key, &blob);
  az_req_t q = {"DELETE", blob.data, NULL, NULL, 0, NULL, 0, false};
  if (!rc && !(rc = az_call(s, &q, &r, NULL, err)) && r.status != 202 && r.status != 200 &&
      !(r.status == 404 && strcmp(r.err_code, "ContainerNotFound")))
    rc = status_error(a, "DELETE", blob.data, &r, err);
  ed_buf_fini(&blob);
  ed_buf_fini(&r.body);
  return rc;
}

static ed_code_t astat(st_store_t *s, const char *key, st_stat_t *out, ed_err_t *err) {
  az_t *a = s->impl;
  ed_buf_t blob = ED_BUF_INIT;
  az_resp_t r = {0};
  ed_code_t rc = blob_name(a, key, &blob);
  az_req_t q = {"HEAD", blob.data, NULL, NULL, 0, NULL, 0, true};
  if (!rc && !(rc = az_call(s, &q, &r, NULL, err))) {
    if (r.status == 200) {
      out->size = r.content_length;
      out->mtime_ms = 0;
      st_az_parse_http_date(r.last_modified, &out->mtime_ms);
    } else {
      rc = status_error(a, "HEAD", blob.data, &r, err);
    }
  }
  ed_buf_fini(&blob);
  ed_buf_fini(&r.body);
  return rc;
}

static void afree(st_store_t *s) {
  az_t *a = s->impl;
  if (!a)
    return;
  st_az_url_fini(&a->u);
  if (a->curl)
    curl_easy_cleanup(a->curl);
  memset(a->key, 0, sizeof a->key);
  free(a->sas);
  free(a->ca_file);
  free(a->tok.value);
  au_cred_free(a->cred);
  free(a);
}

static ed_code_t asub(st_store_t *s, const char *key, st_store_t **out, ed_err_t *err);

static const st_ops_t azure_ops = {aget,  aput, aput_file, alist,      adel,
                                   astat, asub, afree,     alist_meta, aput_meta};

static ed_code_t read_key_file(const char *path, char **out, ed_err_t *err) {
  FILE *f = fopen(path, "r");
  if (!f)
    return ed_err_set(err, ED_E_CONFIG, "account key file '%s': cannot open", path);
  char line[512];
  char *l = fgets(line, sizeof line, f);
  fclose(f);
  if (!l)
    return ed_err_set(err, ED_E_CONFIG, "account key file '%s': empty", path);
  line[strcspn(line, "\r\n")] = 0;
  *out = strdup(line);
  memset(line, 0, sizeof line);
  return *out ? ED_OK : ED_E_NOMEM;
}

static ed_code_t setup_auth(az_t *a, const st_opts_t *o, ed_err_t *err) {
  char *key = NULL;
  ed_code_t rc = ED_OK;
  const char *kf = getenv("AZURE_STORAGE_KEY_FILE");
  if (o->account_key)
    key = strdup(o->account_key);
  else if (getenv("AZURE_STORAGE_ACCOUNT_KEY") && *getenv("AZURE_STORAGE_ACCOUNT_KEY"))
    key = strdup(getenv("AZURE_STORAGE_ACCOUNT_KEY"));
  else if (getenv("AZURE_STORAGE_ACCESS_KEY") && *getenv("AZURE_STORAGE_ACCESS_KEY"))
    key = strdup(getenv("AZURE_STORAGE_ACCESS_KEY"));
  else if (kf && *kf && (rc = read_key_file(kf, &key, err)))
    return rc;
  const char *sas = o->sas ? o->sas : getenv("AZURE_STORAGE_SAS_TOKEN");
  const char *tenant = o->tenant ? o->tenant : getenv("AZURE_TENANT_ID");
  const char *cid = o->client_id ? o->client_id : getenv("AZURE_CLIENT_ID");
  const char *csec = o->client_secret ? o->client_secret : getenv("AZURE_CLIENT_SECRET");
  const char *fed =
      o->federated_token_file ? o->federated_token_file : getenv("AZURE_FEDERATED_TOKEN_FILE");
#define SET(v) ((v) && *(v))
  st_auth_t m = o->auth;
  const char *want = getenv("EHDELTA_STORAGE_AUTH");
  if (m == ST_AUTH_AUTO && want && *want) {
    static const struct {
      const char *name;
      st_auth_t a;
    } modes[] = {{"shared-key", ST_AUTH_SHARED_KEY},
                 {"sas", ST_AUTH_SAS},
                 {"token", ST_AUTH_TOKEN},
                 {"client-secret", ST_AUTH_CLIENT_SECRET},
                 {"workload-identity", ST_AUTH_WORKLOAD_ID},
                 {"managed-identity", ST_AUTH_MANAGED_ID},
                 {"azure-cli", ST_AUTH_AZURE_CLI},
                 {"default", ST_AUTH_DEFAULT},
                 {"anonymous", ST_AUTH_NONE}};
    for (size_t i = 0; i < sizeof modes / sizeof *modes; i++)
      if (!strcmp(want, modes[i].name))
        m = modes[i].a;
    if (m == ST_AUTH_AUTO) {
      free(key);
      return ed_err_set(
          err, ED_E_CONFIG,
          "EHDELTA_STORAGE_AUTH '%s': expected shared-key, sas, token, client-secret, "
          "workload-identity, managed-identity, azure-cli, default or anonymous",
          want);
    }
  }
  if (m == ST_AUTH_AUTO) {
    if (key)
      m = ST_AUTH_SHARED_KEY;
    else if (sas && *sas)
      m = ST_AUTH_SAS;
    else if (getenv("AZURE_STORAGE_TOKEN") && *getenv("AZURE_STORAGE_TOKEN"))
      m = ST_AUTH_TOKEN;
    else if (SET(tenant) && SET(cid) && SET(csec))
      m = ST_AUTH_CLIENT_SECRET;
    else if (SET(tenant) && SET(cid) && SET(fed))
      m = ST_AUTH_WORKLOAD_ID;
    else {
      free(key);
      return ed_err_set(err, ED_E_CONFIG,
                        "storage account '%s': no credentials: set AZURE_STORAGE_ACCOUNT_KEY or "
                        "AZURE_STORAGE_KEY_FILE, AZURE_STORAGE_SAS_TOKEN, AZURE_STORAGE_TOKEN, "
                        "AZURE_CLIENT_ID+AZURE_CLIENT_SECRET+AZURE_TENANT_ID, or choose managed "
                        "identity / Azure CLI",
                        a->u.account);
    }
  }
  a->auth = m;
  switch (m) {
  case ST_AUTH_SHARED_KEY: {
    if (!key) {
      rc = ed_err_set(err, ED_E_CONFIG, "Shared Key: no account key (AZURE_STORAGE_ACCOUNT_KEY)");
      break;
    }
    size_t kl = strlen(key);
    uint8_t *tmp = malloc(kl / 4 * 3 + 3);
    ed_err_t e2 = {0};
    if (!tmp || ed_b64_decode(key, kl, tmp, &a->keylen, &e2) || a->keylen > sizeof a->key)
      rc = ed_err_set(err, ED_E_CONFIG, "account key for '%s': expected base64 text", a->u.account);
    else
      memcpy(a->key, tmp, a->keylen);
    if (tmp)
      memset(tmp, 0, kl / 4 * 3 + 3);
    free(tmp);
    break;
  }
  case ST_AUTH_SAS:
    if (!sas || !*sas)
      rc = ed_err_set(err, ED_E_CONFIG, "SAS: none given (AZURE_STORAGE_SAS_TOKEN)");
    else
      a->sas = strdup(sas[0] == '?' ? sas + 1 : sas);
    break;
  case ST_AUTH_TOKEN: {
    const char *t = getenv("AZURE_STORAGE_TOKEN");
    if (!t || !*t)
      rc = ed_err_set(err, ED_E_CONFIG, "bearer token: AZURE_STORAGE_TOKEN is not set");
    else {
      a->tok.value = strdup(t);
      a->tok.expires_us = INT64_MAX;
    }
    break;
  }
  case ST_AUTH_CLIENT_SECRET:
  case ST_AUTH_WORKLOAD_ID:
  case ST_AUTH_MANAGED_ID:
  case ST_AUTH_AZURE_CLI:
  case ST_AUTH_DEFAULT: {
    au_cred_opts_t co = {.scope = AU_SCOPE_STORAGE,
                         .tenant = tenant,
                         .client_id = cid,
                         .client_secret = csec,
                         .federated_token_file = fed,
                         .ca_file = o->ca_file ? o->ca_file : getenv("EHDELTA_CA_FILE")};
    co.kind = m == ST_AUTH_CLIENT_SECRET ? AU_CRED_CLIENT_SECRET
              : m == ST_AUTH_WORKLOAD_ID ? AU_CRED_WORKLOAD_ID
              : m == ST_AUTH_MANAGED_ID  ? AU_CRED_MANAGED_ID
              : m == ST_AUTH_AZURE_CLI   ? AU_CRED_AZURE_CLI
                                         : AU_CRED_DEFAULT;
    rc = au_cred_new(&co, &a->cred, err);
    break;
  }
  default:
    break;
  }
#undef SET
  if (key) {
    memset(key, 0, strlen(key));
    free(key);
  }
  return rc;
}

/* Least privilege first (§4.1): a container SAS (sr=c) may list the
 * container's blobs but never create a container, so existence is probed
 * with List Blobs (maxresults=1) and the container is created only when the
 * probe says it is missing. A credential that may not even list (403
 * AuthorizationPermissionMismatch) cannot tell: the first real request
 * reports what is wrong. */
static ed_code_t ensure_container(st_store_t *s, ed_err_t *err) {
  az_t *a = s->impl;
  az_resp_t r = {0};
  az_req_t probe = {"GET", NULL, "restype=container&comp=list&maxresults=1", NULL, 0, NULL,
                    0,     false};
  ed_code_t rc = az_call(s, &probe, &r, NULL, err);
  if (!rc && r.status == 404 && !strcmp(r.err_code, "ContainerNotFound")) {
    az_req_t q = {"PUT", NULL, "restype=container", NULL, 0, "", 0, false};
    if (!(rc = az_call(s, &q, &r, NULL, err))) {
      if (r.status == 401 || r.status == 403)
        rc = ed_err_set(err, ED_E_NOT_FOUND,
                        "container '%s' does not exist in storage account '%s', and the %s may "
                        "not create it (HTTP %ld %s): create the container, or use a credential "
                        "with the create permission on the account (an account SAS with "
                        "srt=c and sp=c, or the account key)",
                        a->u.container, a->u.account, auth_name(a), r.status, r.err_code);
      else if (r.status != 201 && r.status != 409)
        rc = status_error(a, "create container", NULL, &r, err);
    }
  } else if (!rc && r.status == 403 && !strcmp(r.err_code, "AuthorizationPermissionMismatch")) {
    ED_LOG_DEBUG("storage_probe", "container=%s: the %s may not list it; not created",
                 a->u.container, auth_name(a));
  } else if (!rc && r.status != 200) {
    rc = status_error(a, "LIST", NULL, &r, err);
  }
  ed_buf_fini(&r.body);
  return rc;
}

/* Each store draws its own delays (seeded apart), so stores retrying at once
 * spread out. A cap below the first step makes every step the cap. */
static void az_backoff_init(az_t *a) {
  int64_t base = AZ_BACKOFF_BASE_US < a->max_backoff_us ? AZ_BACKOFF_BASE_US : a->max_backoff_us;
  ed_backoff_init(&a->backoff, base, a->max_backoff_us, 0);
}

static ed_code_t az_new(const char *url, az_t **out, ed_err_t *err) {
  if (!curl_ready) {
    /* Not thread-safe by libcurl's rules; first store open happens before threads. */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    curl_ready = 1;
  }
  az_t *a = calloc(1, sizeof *a);
  if (!a)
    return ed_err_set(err, ED_E_NOMEM, "store: out of memory");
  if (!(a->curl = curl_easy_init())) {
    free(a);
    return ed_err_set(err, ED_E_NOMEM, "store: cannot create an HTTP handle");
  }
  (void)url;
  *out = a;
  return ED_OK;
}

ed_code_t st_azure_open(const char *url, const st_opts_t *o, st_store_t **out, ed_err_t *err) {
  st_store_t *s = calloc(1, sizeof *s);
  az_t *a = NULL;
  ed_code_t rc = s ? az_new(url, &a, err) : ED_E_NOMEM;
  if (rc) {
    free(s);
    return rc;
  }
  s->ops = &azure_ops;
  s->impl = a;
  s->url = strdup(url);
  const char *acct = o->account ? o->account : getenv("AZURE_STORAGE_ACCOUNT_NAME");
  if ((rc = st_az_parse_url(url, acct, &a->u, err)))
    goto fail;
  if ((rc = setup_auth(a, o, err)))
    goto fail;
  const char *ca = o->ca_file ? o->ca_file : getenv("EHDELTA_CA_FILE");
  a->ca_file = ca && *ca ? strdup(ca) : NULL;
  const char *bse = getenv("EHDELTA_BLOCK_SIZE"); /* tests force the block path */
  a->block_size = o->block_size                    ? o->block_size
                  : bse && strtoull(bse, NULL, 10) ? (size_t)strtoull(bse, NULL, 10)
                                                   : (size_t)64 << 20;
  a->max_retries = o->max_retries > 0 ? o->max_retries : o->max_retries < 0 ? 0 : 8;
  a->max_backoff_us = o->max_backoff_us > 0 ? o->max_backoff_us : 15 * ED_US_PER_SEC;
  az_backoff_init(a);
  a->timeout_us = o->timeout_us > 0 ? o->timeout_us : 30 * ED_US_PER_SEC;
  a->connect_timeout_us = o->connect_timeout_us > 0 ? o->connect_timeout_us : 5 * ED_US_PER_SEC;
  a->on_retry = o->on_retry;
  a->on_retry_ctx = o->on_retry_ctx;
  if (o->create_container && (rc = ensure_container(s, err)))
    goto fail;
  *out = s;
  return ED_OK;
fail:
  st_free(s);
  *out = NULL;
  return rc;
}

static ed_code_t asub(st_store_t *s, const char *key, st_store_t **out, ed_err_t *err) {
  az_t *a = s->impl, *b = NULL;
  st_store_t *t = calloc(1, sizeof *t);
  ed_code_t rc = t ? az_new(NULL, &b, err) : ED_E_NOMEM;
  if (rc) {
    free(t);
    return rc;
  }
  t->ops = &azure_ops;
  t->impl = b;
  ed_buf_t url = ED_BUF_INIT, pre = ED_BUF_INIT;
  ed_buf_printf(&url, "%s/%s", s->url, key);
  t->url = ed_buf_steal(&url);
  blob_name(a, key, &pre);
  b->u.endpoint = strdup(a->u.endpoint);
  b->u.account = strdup(a->u.account);
  b->u.container = strdup(a->u.container);
  b->u.prefix = ed_buf_steal(&pre);
  b->u.path_style = a->u.path_style;
  b->auth = a->auth;
  memcpy(b->key, a->key, a->keylen);
  b->keylen = a->keylen;
#define DUP(f) b->f = a->f ? strdup(a->f) : NULL
  DUP(sas);
  DUP(ca_file);
#undef DUP
  if (a->cred && !(b->cred = au_cred_dup(a->cred))) {
    st_free(t);
    return ed_err_set(err, ED_E_NOMEM, "store: out of memory");
  }
  if (a->tok.value) {
    b->tok.value = strdup(a->tok.value);
    b->tok.expires_us = a->tok.expires_us;
  }
  b->block_size = a->block_size;
  b->max_retries = a->max_retries;
  b->max_backoff_us = a->max_backoff_us;
  az_backoff_init(b);
  b->timeout_us = a->timeout_us;
  b->connect_timeout_us = a->connect_timeout_us;
  b->on_retry = a->on_retry;
  b->on_retry_ctx = a->on_retry_ctx;
  *out = t;
  return ED_OK;
}
