/* store: dispatch from store.h to the backend chosen by the URL's form. */
#include <stdlib.h>
#include <string.h>

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
