/* store_int: the backend table behind store.h. Private to src/store/ (and its
 * unit tests); callers use store.h only. */
#ifndef ED_STORE_STORE_INT_H
#define ED_STORE_STORE_INT_H

#include "store/store.h"

typedef struct st_ops {
  ed_code_t (*get)(st_store_t *s, const char *key, int64_t off, int64_t len, ed_buf_t *out,
                   ed_err_t *err);
  ed_code_t (*put)(st_store_t *s, const char *key, const void *data, size_t n, bool if_absent,
                   ed_err_t *err);
  ed_code_t (*put_file)(st_store_t *s, const char *key, const char *path, ed_err_t *err);
  ed_code_t (*list)(st_store_t *s, const char *prefix, st_list_t *out, ed_err_t *err);
  ed_code_t (*del)(st_store_t *s, const char *key, ed_err_t *err);
  ed_code_t (*stat)(st_store_t *s, const char *key, st_stat_t *out, ed_err_t *err);
  ed_code_t (*sub)(st_store_t *s, const char *key, st_store_t **out, ed_err_t *err);
  void (*free)(st_store_t *s);
  /* NULL in backends without metadata (local files) */
  ed_code_t (*list_meta)(st_store_t *s, const char *prefix, st_blobs_t *out, ed_err_t *err);
  ed_code_t (*put_meta)(st_store_t *s, const char *key, const st_kv_t *meta, size_t nmeta,
                        const char *if_match, bool if_absent, char *etag, int64_t *mtime_ms,
                        ed_err_t *err);
} st_ops_t;

struct st_store {
  const st_ops_t *ops;
  char *url;
  bool local;
  bool names_only; /* set around ops->list by st_list_names */
  st_counters_t counters;
  void *impl;
};

ed_code_t st_file_open(const char *path, const char *url, st_store_t **out, ed_err_t *err);
ed_code_t st_azure_open(const char *url, const st_opts_t *opts, st_store_t **out, ed_err_t *err);
bool st_url_is_azure(const char *url);
ed_code_t st_list_push(st_list_t *l, const char *key, size_t keylen, int64_t size,
                       int64_t mtime_ms);
/* Appends one blob (copies key) and returns it for the caller to fill. */
ed_code_t st_blobs_push(st_blobs_t *b, const char *key, size_t keylen, st_blob_t **out);
ed_code_t st_blob_meta_push(st_blob_t *b, const char *name, size_t nl, const char *value,
                            size_t vl);

#endif
