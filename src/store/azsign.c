/* azsign: Azure URL forms, the Shared Key signer, HTTP dates, Retry-After,
 * the List Blobs XML page reader and token answers. Pure functions, unit
 * tested against the worked examples of reference §2.8. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/b64.h"
#include "common/hmac.h"
#include "common/pct.h"
#include "common/time.h"
#include "store/azure.h"
#include "store/store_int.h"

static const char *const azure_schemes[] = {"abfss://", "abfs://",  "az://",   "adl://",
                                            "azure://", "wasbs://", "wasb://", "https://",
                                            "http://",  NULL};

bool st_url_is_azure(const char *url) {
  for (int i = 0; azure_schemes[i]; i++)
    if (!strncasecmp(url, azure_schemes[i], strlen(azure_schemes[i])))
      return true;
  return false;
}

void st_az_url_fini(st_az_url_t *u) {
  if (!u)
    return;
  free(u->endpoint);
  free(u->account);
  free(u->container);
  free(u->prefix);
  memset(u, 0, sizeof *u);
}

static char *trim_slashes(const char *p, size_t n) {
  while (n && *p == '/')
    p++, n--;
  while (n && p[n - 1] == '/')
    n--;
  return strndup(p, n);
}

/* host "acct.dfs.core.windows.net" -> account "acct", blob endpoint. */
static ed_code_t host_to_endpoint(const char *url, const char *host, size_t hl, st_az_url_t *u,
                                  ed_err_t *err) {
  const char *dot = memchr(host, '.', hl);
  if (!dot)
    return ed_err_set(err, ED_E_INVALID,
                      "Azure URL '%s': host '%.*s' is not ACCOUNT.blob|dfs.SUFFIX", url, (int)hl,
                      host);
  const char *svc = dot + 1;
  size_t rest = hl - (size_t)(svc - host);
  if (!(rest > 4 && (!strncasecmp(svc, "dfs.", 4) || !strncasecmp(svc, "blob.", 5))))
    return ed_err_set(err, ED_E_INVALID,
                      "Azure URL '%s': host '%.*s': expected ACCOUNT.dfs.core.windows.net or "
                      "ACCOUNT.blob.core.windows.net",
                      url, (int)hl, host);
  const char *suffix = strchr(svc, '.') + 1;
  size_t sl = hl - (size_t)(suffix - host);
  u->account = strndup(host, (size_t)(dot - host));
  /* Always the Blob endpoint: Blob APIs work on HNS accounts and are what
   * Azurite serves (reference §0, §1.3). */
  ed_buf_t b = ED_BUF_INIT;
  ed_buf_printf(&b, "https://%s.blob.%.*s", u->account, (int)sl, suffix);
  u->endpoint = ed_buf_steal(&b);
  return u->account && u->endpoint ? ED_OK : ED_E_NOMEM;
}

ed_code_t st_az_parse_url(const char *url, const char *default_account, st_az_url_t *out,
                          ed_err_t *err) {
  memset(out, 0, sizeof *out);
  const char *sep = strstr(url, "://");
  if (!sep)
    return ed_err_set(err, ED_E_INVALID, "Azure URL '%s': no scheme", url);
  size_t sl = (size_t)(sep - url);
  const char *rest = sep + 3;
  const char *slash = strchr(rest, '/');
  size_t authlen = slash ? (size_t)(slash - rest) : strlen(rest);
  const char *path = slash ? slash : "";
  ed_code_t rc = ED_OK;
  bool http =
      (sl == 4 && !strncasecmp(url, "http", 4)) || (sl == 5 && !strncasecmp(url, "https", 5));
  if (http) {
    const char *at = memchr(rest, '@', authlen);
    if (at)
      return ed_err_set(err, ED_E_INVALID, "Azure URL: credentials in the URL are not accepted");
    /* ACCOUNT.blob.SUFFIX or ACCOUNT.dfs.SUFFIX: container is the first segment. */
    bool named = false;
    const char *d = memchr(rest, '.', authlen);
    if (d && (size_t)(d - rest) < authlen) {
      size_t r = authlen - (size_t)(d - rest) - 1;
      named = (r > 4 && (!strncasecmp(d + 1, "blob.", 5) || !strncasecmp(d + 1, "dfs.", 4)));
    }
    const char *p = path;
    while (*p == '/')
      p++;
    if (named) {
      if ((rc = host_to_endpoint(url, rest, authlen, out, err)))
        goto fail;
      if (sl == 4) { /* keep plain http when asked (custom endpoints) */
        free(out->endpoint);
        ed_buf_t b = ED_BUF_INIT;
        ed_buf_printf(&b, "http://%.*s", (int)authlen, rest);
        out->endpoint = ed_buf_steal(&b);
      }
    } else {
      /* Path style (Azurite, IP endpoints): /ACCOUNT/CONTAINER/PATH. */
      const char *e = strchr(p, '/');
      if (!*p || !e || e == p) {
        rc = ed_err_set(err, ED_E_INVALID,
                        "Azure URL '%s': expected http://HOST:PORT/ACCOUNT/CONTAINER[/PATH]", url);
        goto fail;
      }
      out->account = strndup(p, (size_t)(e - p));
      out->path_style = 1;
      ed_buf_t b = ED_BUF_INIT;
      ed_buf_printf(&b, "%.*s://%.*s/%s", (int)sl, url, (int)authlen, rest, out->account);
      out->endpoint = ed_buf_steal(&b);
      p = e + 1;
    }
    const char *e = strchr(p, '/');
    size_t cl = e ? (size_t)(e - p) : strlen(p);
    if (!cl) {
      rc = ed_err_set(err, ED_E_INVALID, "Azure URL '%s': no container", url);
      goto fail;
    }
    out->container = strndup(p, cl);
    out->prefix = trim_slashes(e ? e : "", e ? strlen(e) : 0);
  } else {
    /* abfss://CONTAINER@ACCOUNT.dfs.core.windows.net/PATH, az://CONTAINER/PATH, ... */
    const char *at = memchr(rest, '@', authlen);
    if (at) {
      out->container = strndup(rest, (size_t)(at - rest));
      if ((rc = host_to_endpoint(url, at + 1, authlen - (size_t)(at - rest) - 1, out, err)))
        goto fail;
    } else {
      if (memchr(rest, '.', authlen)) {
        rc = ed_err_set(err, ED_E_INVALID,
                        "Azure URL '%s': expected SCHEME://CONTAINER@ACCOUNT.dfs.core.windows.net/"
                        "PATH or SCHEME://CONTAINER/PATH",
                        url);
        goto fail;
      }
      if (!default_account || !*default_account) {
        rc = ed_err_set(err, ED_E_CONFIG,
                        "Azure URL '%s' names no account: set AZURE_STORAGE_ACCOUNT_NAME or use "
                        "abfss://CONTAINER@ACCOUNT.dfs.core.windows.net/PATH",
                        url);
        goto fail;
      }
      out->container = strndup(rest, authlen);
      out->account = strdup(default_account);
      ed_buf_t b = ED_BUF_INIT;
      ed_buf_printf(&b, "https://%s.blob.core.windows.net", default_account);
      out->endpoint = ed_buf_steal(&b);
    }
    out->prefix = trim_slashes(path, strlen(path));
  }
  if (!out->container || !out->prefix || !out->account || !out->endpoint) {
    rc = ed_err_set(err, ED_E_NOMEM, "out of memory");
    goto fail;
  }
  if (!*out->container) {
    rc = ed_err_set(err, ED_E_INVALID, "Azure URL '%s': empty container name", url);
    goto fail;
  }
  for (const char *c = out->container; *c; c++)
    if (!(islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '-' || *c == '$')) {
      rc = ed_err_set(err, ED_E_INVALID,
                      "Azure URL '%s': container '%s': expected lowercase letters, digits and '-'",
                      url, out->container);
      goto fail;
    }
  return ED_OK;
fail:
  st_az_url_fini(out);
  return rc;
}

static const char *hval(const st_hdr_t *h, size_t nh, const char *name) {
  for (size_t i = 0; i < nh; i++)
    if (!strcasecmp(h[i].name, name))
      return h[i].value;
  return "";
}

typedef struct {
  char *name, *value;
} kv_t;

static int cmp_kv(const void *a, const void *b) {
  const kv_t *x = a, *y = b;
  int c = strcmp(x->name, y->name);
  return c ? c : strcmp(x->value, y->value);
}

static void kv_free(kv_t *v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(v[i].name);
    free(v[i].value);
  }
  free(v);
}

ed_code_t st_az_string_to_sign(const char *verb, const st_hdr_t *hdrs, size_t nh,
                               const char *account, const char *path, const char *query,
                               ed_buf_t *out, ed_err_t *err) {
  static const char *const std[] = {"Content-Encoding",
                                    "Content-Language",
                                    "Content-Length",
                                    "Content-MD5",
                                    "Content-Type",
                                    "Date",
                                    "If-Modified-Since",
                                    "If-Match",
                                    "If-None-Match",
                                    "If-Unmodified-Since",
                                    "Range"};
  ed_code_t rc = ed_buf_printf(out, "%s\n", verb);
  for (size_t i = 0; !rc && i < sizeof std / sizeof *std; i++) {
    const char *v = hval(hdrs, nh, std[i]);
    /* From 2015-02-21 a zero Content-Length is signed as empty (§2.2 item 4). */
    if (i == 2 && !strcmp(v, "0"))
      v = "";
    rc = ed_buf_printf(out, "%s\n", v);
  }
  /* CanonicalizedHeaders: x-ms-*, lowercased, sorted. */
  kv_t *xs = calloc(nh + 1, sizeof *xs);
  size_t nx = 0;
  if (!xs)
    return ED_E_NOMEM;
  for (size_t i = 0; i < nh; i++) {
    if (strncasecmp(hdrs[i].name, "x-ms-", 5))
      continue;
    char *n = strdup(hdrs[i].name);
    const char *v = hdrs[i].value;
    while (*v == ' ' || *v == '\t')
      v++;
    for (char *c = n; c && *c; c++)
      *c = (char)tolower((unsigned char)*c);
    xs[nx].name = n;
    xs[nx++].value = strdup(v);
  }
  qsort(xs, nx, sizeof *xs, cmp_kv);
  for (size_t i = 0; !rc && i < nx; i++)
    rc = ed_buf_printf(out, "%s:%s\n", xs[i].name, xs[i].value);
  kv_free(xs, nx);
  /* CanonicalizedResource: /account + path, then decoded query params. */
  if (!rc)
    rc = ed_buf_printf(out, "/%s%s", account, path);
  if (!rc && query && *query) {
    size_t cap = 1;
    for (const char *q = query; *q; q++)
      cap += *q == '&';
    kv_t *qs = calloc(cap, sizeof *qs);
    size_t nq = 0;
    if (!qs)
      return ED_E_NOMEM;
    for (const char *q = query; *q && !rc;) {
      const char *amp = strchr(q, '&');
      size_t n = amp ? (size_t)(amp - q) : strlen(q);
      const char *eq = memchr(q, '=', n);
      size_t kl = eq ? (size_t)(eq - q) : n;
      ed_buf_t k = ED_BUF_INIT, v = ED_BUF_INIT;
      rc = ed_pct_decode(&k, q, kl, false, err);
      if (!rc)
        rc = ed_pct_decode(&v, eq ? eq + 1 : "", eq ? n - kl - 1 : 0, false, err);
      if (!rc)
        rc = ed_buf_puts(&v, ""); /* ensure allocated */
      if (!rc)
        rc = ed_buf_puts(&k, "");
      for (size_t i = 0; k.data && i < k.len; i++)
        k.data[i] = (char)tolower((unsigned char)k.data[i]);
      qs[nq].name = ed_buf_steal(&k);
      qs[nq++].value = ed_buf_steal(&v);
      q += n + (amp ? 1 : 0);
    }
    qsort(qs, nq, sizeof *qs, cmp_kv);
    for (size_t i = 0; !rc && i < nq; i++) {
      if (i && !strcmp(qs[i].name, qs[i - 1].name))
        rc = ed_buf_printf(out, ",%s", qs[i].value);
      else
        rc = ed_buf_printf(out, "\n%s:%s", qs[i].name, qs[i].value);
    }
    kv_free(qs, nq);
  }
  return rc;
}

ed_code_t st_az_sign(const uint8_t *key, size_t keylen, const char *sts, size_t n, char *out) {
  uint8_t mac[ED_HMAC_SHA256_LEN];
  ed_code_t rc = ed_hmac_sha256(key, keylen, sts, n, mac);
  if (rc)
    return rc;
  ed_b64_encode(mac, sizeof mac, out);
  return ED_OK;
}

static const char *const wdays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void st_az_http_date(int64_t us, char out[30]) {
  int64_t secs = ed_floordiv(us, ED_US_PER_SEC);
  int64_t days = ed_floordiv(secs, 86400), sod = secs - days * 86400;
  int64_t y;
  unsigned m, d;
  ed_time_civil_from_days(days, &y, &m, &d);
  int wd = (int)((days % 7 + 11) % 7); /* 1970-01-01 was a Thursday */
  snprintf(out, 30, "%s, %02u %s %04lld %02d:%02d:%02d GMT", wdays[wd], d, months[m - 1],
           (long long)y, (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60));
}

ed_code_t st_az_parse_http_date(const char *s, int64_t *ms) {
  char wd[4], mon[4];
  unsigned d, hh, mm, ss;
  int y;
  if (sscanf(s, "%3s, %u %3s %d %u:%u:%u", wd, &d, mon, &y, &hh, &mm, &ss) != 7)
    return ED_E_PARSE;
  for (unsigned m = 0; m < 12; m++)
    if (!strcmp(mon, months[m])) {
      int64_t days = ed_time_days_from_civil(y, m + 1, d);
      *ms = ((days * 86400) + hh * 3600 + mm * 60 + ss) * 1000;
      return ED_OK;
    }
  return ED_E_PARSE;
}

int64_t st_az_retry_after_us(const char *v, int64_t now_us) {
  if (!v || !*v)
    return -1;
  char *end;
  long long secs = strtoll(v, &end, 10);
  while (*end == ' ' || *end == '\r' || *end == '\n')
    end++;
  if (end != v && !*end && secs >= 0)
    return secs * ED_US_PER_SEC;
  int64_t ms;
  if (st_az_parse_http_date(v, &ms) == ED_OK) {
    int64_t d = ms * 1000 - now_us;
    return d > 0 ? d : 0;
  }
  return -1;
}

/* Finds <tag>...</tag> inside [p, end); returns the content span. */
static const char *xml_find(const char *p, const char *end, const char *tag, const char **cend) {
  char open[64], close[64];
  snprintf(open, sizeof open, "<%s>", tag);
  snprintf(close, sizeof close, "</%s>", tag);
  size_t ol = strlen(open), cl = strlen(close);
  for (const char *q = p; q + ol <= end; q++) {
    if (memcmp(q, open, ol))
      continue;
    const char *c = q + ol;
    for (const char *r = c; r + cl <= end; r++)
      if (!memcmp(r, close, cl)) {
        *cend = r;
        return c;
      }
    return NULL;
  }
  return NULL;
}

static ed_code_t xml_unescape(ed_buf_t *out, const char *s, size_t n) {
  ed_code_t rc = ED_OK;
  for (size_t i = 0; i < n && !rc; i++) {
    if (s[i] != '&') {
      rc = ed_buf_putc(out, s[i]);
      continue;
    }
    static const struct {
      const char *ent;
      char c;
    } ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    bool done = false;
    for (size_t k = 0; k < 5 && !done; k++) {
      size_t el = strlen(ents[k].ent);
      if (i + el <= n && !memcmp(s + i, ents[k].ent, el)) {
        rc = ed_buf_putc(out, ents[k].c);
        i += el - 1;
        done = true;
      }
    }
    if (!done && i + 2 < n && s[i + 1] == '#') {
      const char *semi = memchr(s + i, ';', n - i);
      if (semi) {
        unsigned long cp =
            s[i + 2] == 'x' ? strtoul(s + i + 3, NULL, 16) : strtoul(s + i + 2, NULL, 10);
        char u[4];
        size_t ul;
        if (cp < 0x80) {
          u[0] = (char)cp;
          ul = 1;
        } else if (cp < 0x800) {
          u[0] = (char)(0xC0 | cp >> 6);
          u[1] = (char)(0x80 | (cp & 63));
          ul = 2;
        } else if (cp < 0x10000) {
          u[0] = (char)(0xE0 | cp >> 12);
          u[1] = (char)(0x80 | ((cp >> 6) & 63));
          u[2] = (char)(0x80 | (cp & 63));
          ul = 3;
        } else {
          u[0] = (char)(0xF0 | cp >> 18);
          u[1] = (char)(0x80 | ((cp >> 12) & 63));
          u[2] = (char)(0x80 | ((cp >> 6) & 63));
          u[3] = (char)(0x80 | (cp & 63));
          ul = 4;
        }
        rc = ed_buf_append(out, u, ul);
        i = (size_t)(semi - s);
        done = true;
      }
    }
    if (!done)
      rc = ed_buf_putc(out, '&');
  }
  if (!rc)
    rc = ed_buf_puts(out, "");
  return rc;
}

/* <Metadata><ownerid>abc</ownerid>...</Metadata> in [m, me) into b's pairs:
 * names are XML element names (C identifiers by the service's rules), values
 * are escaped text. val: scratch, borrowed. */
static ed_code_t parse_meta(st_blob_t *b, const char *m, const char *me, ed_buf_t *val) {
  ed_code_t rc = ED_OK;
  for (const char *q = m; !rc && q && q < me;) {
    const char *lt = memchr(q, '<', (size_t)(me - q));
    if (!lt)
      break;
    const char *gt = memchr(lt, '>', (size_t)(me - lt));
    if (!gt || lt[1] == '/')
      break;
    size_t nl = (size_t)(gt - lt - 1);
    bool empty = nl && lt[nl] == '/'; /* <name/> */
    if (empty) {
      rc = st_blob_meta_push(b, lt + 1, nl - 1, "", 0);
      q = gt + 1;
      continue;
    }
    char tag[128];
    snprintf(tag, sizeof tag, "%.*s", (int)nl, lt + 1);
    const char *vend, *vs = xml_find(lt, me, tag, &vend);
    if (!vs)
      break;
    ed_buf_reset(val);
    if (!(rc = xml_unescape(val, vs, (size_t)(vend - vs))))
      rc = st_blob_meta_push(b, lt + 1, nl, val->data ? val->data : "", val->len);
    q = vend + nl + 3;
  }
  return rc;
}

/* One listed blob, its key made relative, for the walker's caller: out is
 * the caller's collection; [blob, bend) the <Blob> element; val scratch. */
typedef ed_code_t (*blob_fn)(void *out, const char *key, size_t keylen, int64_t size,
                             int64_t mtime_ms, const char *blob, const char *bend, ed_buf_t *val);

static ed_code_t push_plain(void *out, const char *key, size_t keylen, int64_t size,
                            int64_t mtime_ms, const char *blob, const char *bend, ed_buf_t *val) {
  (void)blob, (void)bend, (void)val;
  return st_list_push(out, key, keylen, size, mtime_ms);
}

/* include=metadata: the ETag and the <Metadata> pairs too */
static ed_code_t push_meta(void *out, const char *key, size_t keylen, int64_t size,
                           int64_t mtime_ms, const char *blob, const char *bend, ed_buf_t *val) {
  st_blob_t *b;
  ed_code_t rc = st_blobs_push(out, key, keylen, &b);
  if (rc)
    return rc;
  b->size = size;
  b->mtime_ms = mtime_ms;
  const char *ce, *v = xml_find(blob, bend, "Etag", &ce);
  if (v)
    snprintf(b->etag, sizeof b->etag, "%.*s", (int)(ce - v), v);
  const char *me = NULL, *m = xml_find(blob, bend, "Metadata", &me);
  return parse_meta(b, m, me, val);
}

/* One List Blobs page: every blob (directories skipped, keys made relative)
 * handed to fn with out, then the NextMarker. Both public parsers are this
 * walker; only what they keep of a blob differs. */
static ed_code_t parse_page(const char *xml, size_t n, size_t strip_len, blob_fn fn, void *out,
                            ed_buf_t *marker, ed_err_t *err) {
  const char *end = xml + n, *p = xml, *ce;
  if (!strstr(xml, "<EnumerationResults"))
    return ed_err_set(err, ED_E_PROTOCOL,
                      "List Blobs: expected <EnumerationResults> in the answer");
  ed_buf_t name = ED_BUF_INIT, val = ED_BUF_INIT;
  ed_code_t rc = ED_OK;
  const char *blob;
  while (!rc && (blob = xml_find(p, end, "Blob", &ce))) {
    const char *bend = ce, *ne, *v;
    p = ce + 7;
    const char *nm = xml_find(blob, bend, "Name", &ne);
    if (!nm)
      continue;
    if ((v = xml_find(blob, bend, "ResourceType", &ce)) && !strncmp(v, "directory", 9))
      continue;
    ed_buf_reset(&name);
    if ((rc = xml_unescape(&name, nm, (size_t)(ne - nm))))
      break;
    if (name.len < strip_len)
      continue;
    int64_t size = 0, ms = 0;
    if ((v = xml_find(blob, bend, "Content-Length", &ce)))
      size = strtoll(v, NULL, 10);
    if ((v = xml_find(blob, bend, "Last-Modified", &ce))) {
      char tmp[64];
      snprintf(tmp, sizeof tmp, "%.*s", (int)(ce - v), v);
      st_az_parse_http_date(tmp, &ms);
    }
    rc = fn(out, name.data + strip_len, name.len - strip_len, size, ms, blob, bend, &val);
  }
  ed_buf_fini(&name);
  ed_buf_fini(&val);
  ed_buf_reset(marker);
  const char *m = xml_find(xml, end, "NextMarker", &ce);
  if (!rc && m)
    rc = xml_unescape(marker, m, (size_t)(ce - m));
  return rc;
}

ed_code_t st_az_parse_list(const char *xml, size_t n, size_t strip_len, st_list_t *out,
                           ed_buf_t *marker, ed_err_t *err) {
  return parse_page(xml, n, strip_len, push_plain, out, marker, err);
}

ed_code_t st_az_parse_list_meta(const char *xml, size_t n, size_t strip_len, st_blobs_t *out,
                                ed_buf_t *marker, ed_err_t *err) {
  return parse_page(xml, n, strip_len, push_meta, out, marker, err);
}
