/* store: dispatch from store.h to the backend chosen by the URL's form. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store/store_int.h"

static void st_list_sort(st_list_t *l);

ed_code_t st_open(const char *url, const st_opts_t *opts, st_store_t **out, ed_err_t *err) {
  static const st_opts_t none = {0};
  *out = NULL;
  if (!url || !*url)
    return ed_err_set(err, ED_E_INVALID, "store: empty URL, expected a path or an Azure URL");
  if (!opts)
    opts = &none;
  if (st_url_is_azure(url))
    return st_azure_open(url, opts, out, err);
  if (!strncmp(url, "file://", 7)) {
    const char *p = url + 7;
    if (!strncmp(p, "localhost/", 10))
      p += 9;
    if (*p != '/')
      return ed_err_set(err, ED_E_INVALID, "store URL '%s': expected file:///absolute/path", url);
    return st_file_open(p, url, out, err);
  }
  if (strstr(url, "://"))
    return ed_err_set(err, ED_E_UNSUPPORTED,
                      "store URL '%s': unknown scheme, expected a path, file://, abfss://, "
                      "abfs://, az:// or https://ACCOUNT.blob.core.windows.net/",
                      url);
  return st_file_open(url, url, out, err);
}

void st_free(st_store_t *s) {
  if (!s)
    return;
  s->ops->free(s);
  free(s->url);
  free(s);
}

ed_code_t st_open_sub(st_store_t *s, const char *key, st_store_t **out, ed_err_t *err) {
  return s->ops->sub(s, key, out, err);
}

const char *st_url(const st_store_t *s) { return s->url; }

static ed_code_t check_key(const char *key, ed_err_t *err) {
  /* Keys never climb out of the root nor carry dot segments (libcurl would
   * normalise them and break a Shared Key signature). */
  if (!key || !*key || key[0] == '/' || strstr(key, "//"))
    return ed_err_set(err, ED_E_INVALID, "store key '%s': expected a relative path",
                      key ? key : "(null)");
  for (const char *p = key; *p;) {
    const char *e = strchr(p, '/');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
      return ed_err_set(err, ED_E_INVALID, "store key '%s': '.' and '..' segments are not allowed",
                        key);
    p += n + (e ? 1 : 0);
  }
  return ED_OK;
}

ed_code_t st_get(st_store_t *s, const char *key, int64_t off, int64_t len, ed_buf_t *out,
                 ed_err_t *err) {
  ed_code_t rc = check_key(key, err);
  if (rc)
    return rc;
  size_t before = out->len;
  s->counters.requests++;
  rc = s->ops->get(s, key, off, len, out, err);
  if (!rc)
    s->counters.bytes_down += out->len - before;
  return rc;
}

ed_code_t st_put(st_store_t *s, const char *key, const void *data, size_t n, ed_err_t *err) {
  ed_code_t rc = check_key(key, err);
  if (rc)
    return rc;
  s->counters.requests++;
  s->counters.bytes_up += n;
  return s->ops->put(s, key, data, n, false, err);
}

ed_code_t st_put_if_absent(st_store_t *s, const char *key, const void *data, size_t n,
                           ed_err_t *err) {
  ed_code_t rc = check_key(key, err);
  if (rc)
    return rc;
  s->counters.requests++;
  s->counters.bytes_up += n;
  return s->ops->put(s, key, data, n, true, err);
}

ed_code_t st_list(st_store_t *s, const char *prefix, st_list_t *out, ed_err_t *err) {
  s->counters.requests++;
  ed_code_t rc = s->ops->list(s, prefix ? prefix : "", out, err);
  if (!rc)
    st_list_sort(out);
  return rc;
}

ed_code_t st_list_names(st_store_t *s, const char *prefix, st_list_t *out, ed_err_t *err) {
  s->names_only = true;
  ed_code_t rc = st_list(s, prefix, out, err);
  s->names_only = false;
  return rc;
}

ed_code_t st_delete(st_store_t *s, const char *key, ed_err_t *err) {
  ed_code_t rc = check_key(key, err);
  if (rc)
    return rc;
  s->counters.requests++;
  return s->ops->del(s, key, err);
}

ed_code_t st_stat(st_store_t *s, const char *key, st_stat_t *out, ed_err_t *err) {
  ed_code_t rc = check_key(key, err);
  if (rc)
    return rc;
  s->counters.requests++;
  return s->ops->stat(s, key, out, err);
}

void st_counters(const st_store_t *s, st_counters_t *out) { *out = s->counters; }

ed_code_t st_list_push(st_list_t *l, const char *key, size_t keylen, int64_t size,
                       int64_t mtime_ms) {
  if (l->n == l->cap) {
    size_t nc = l->cap ? l->cap * 2 : 64;
    st_entry_t *ni = realloc(l->items, nc * sizeof *ni);
    if (!ni)
      return ED_E_NOMEM;
    l->items = ni;
    l->cap = nc;
  }
  char *k = strndup(key, keylen);
  if (!k)
    return ED_E_NOMEM;
  l->items[l->n++] = (st_entry_t){k, size, mtime_ms};
  return ED_OK;
}

static int cmp_entry(const void *a, const void *b) {
  return strcmp(((const st_entry_t *)a)->key, ((const st_entry_t *)b)->key);
}

static void st_list_sort(st_list_t *l) {
  if (l->n > 1)
    qsort(l->items, l->n, sizeof *l->items, cmp_entry);
}

void st_list_fini(st_list_t *l) {
  if (!l)
    return;
  for (size_t i = 0; i < l->n; i++)
    free(l->items[i].key);
  free(l->items);
  l->items = NULL;
  l->n = l->cap = 0;
}

ed_code_t st_blobs_push(st_blobs_t *b, const char *key, size_t keylen, st_blob_t **out) {
  if (b->n == b->cap) {
    size_t nc = b->cap ? b->cap * 2 : 32;
    st_blob_t *ni = realloc(b->items, nc * sizeof *ni);
    if (!ni)
      return ED_E_NOMEM;
    b->items = ni;
    b->cap = nc;
  }
  st_blob_t *x = &b->items[b->n];
  memset(x, 0, sizeof *x);
  if (!(x->key = strndup(key, keylen)))
    return ED_E_NOMEM;
  b->n++;
  *out = x;
  return ED_OK;
}

ed_code_t st_blob_meta_push(st_blob_t *b, const char *name, size_t nl, const char *value,
                            size_t vl) {
  st_kv_t *nm = realloc(b->meta, (b->nmeta + 1) * sizeof *nm);
  if (!nm)
    return ED_E_NOMEM;
  b->meta = nm;
  st_kv_t *kv = &nm[b->nmeta];
  kv->name = strndup(name, nl);
  kv->value = strndup(value, vl);
  if (!kv->name || !kv->value) {
    free(kv->name);
    free(kv->value);
    return ED_E_NOMEM;
  }
  b->nmeta++;
  return ED_OK;
}

const char *st_blob_meta(const st_blob_t *b, const char *name) {
  for (size_t i = 0; i < b->nmeta; i++)
    if (!strcasecmp(b->meta[i].name, name))
      return b->meta[i].value;
  return NULL;
}

static int cmp_blob(const void *a, const void *b) {
  return strcmp(((const st_blob_t *)a)->key, ((const st_blob_t *)b)->key);
}

void st_blobs_fini(st_blobs_t *b) {
  if (!b)
    return;
  for (size_t i = 0; i < b->n; i++) {
    for (size_t k = 0; k < b->items[i].nmeta; k++) {
      free(b->items[i].meta[k].name);
      free(b->items[i].meta[k].value);
    }
    free(b->items[i].meta);
    free(b->items[i].key);
  }
  free(b->items);
  memset(b, 0, sizeof *b);
}

static ed_code_t no_meta(const st_store_t *s, ed_err_t *err) {
  return ed_err_set(err, ED_E_UNSUPPORTED,
                    "store '%s': blob metadata and ETags need an Azure Blob container, "
                    "expected https://ACCOUNT.blob.core.windows.net/CONTAINER or Azurite's "
                    "http://127.0.0.1:PORT/devstoreaccount1/CONTAINER",
                    s->url);
}

ed_code_t st_list_meta(st_store_t *s, const char *prefix, st_blobs_t *out, ed_err_t *err) {
  if (!s->ops->list_meta)
    return no_meta(s, err);
  size_t from = out->n;
  ed_code_t rc = s->ops->list_meta(s, prefix ? prefix : "", out, err);
  if (!rc && out->n - from > 1)
    qsort(out->items + from, out->n - from, sizeof *out->items, cmp_blob);
  s->counters.requests++;
  return rc;
}

ed_code_t st_put_meta(st_store_t *s, const char *key, const st_kv_t *meta, size_t nmeta,
                      const char *if_match, bool if_absent, char *etag, int64_t *mtime_ms,
                      ed_err_t *err) {
  if (!s->ops->put_meta)
    return no_meta(s, err);
  ed_code_t rc = check_key(key, err);
  if (rc)
    return rc;
  s->counters.requests++;
  return s->ops->put_meta(s, key, meta, nmeta, if_match, if_absent, etag, mtime_ms, err);
}
