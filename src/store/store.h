/* store: one object-storage interface for Delta tables and checkpoints.
 * Owns: the backends (local files: file:// and plain paths; Azure Blob / ADLS
 * Gen2 over libcurl) behind one set of verbs: get (ranged), put, put_if_absent,
 * list by prefix, delete, stat. Keys are '/'-separated paths relative to the
 * store's root URL. Never interprets Delta content; never prints.
 * Called by delta/ (log, snapshot, checkpoints, data files) and agent/.
 * A store is not thread-safe (Azure reuses one libcurl handle): one per thread. */
#ifndef ED_STORE_STORE_H
#define ED_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

typedef struct st_store st_store_t;

/* How an Azure store authenticates. AUTO picks, in order: an account key
 * (opts or $AZURE_STORAGE_ACCOUNT_KEY / $AZURE_STORAGE_KEY_FILE), a SAS
 * ($AZURE_STORAGE_SAS_TOKEN), a fixed bearer token ($AZURE_STORAGE_TOKEN),
 * client secret ($AZURE_CLIENT_ID + $AZURE_CLIENT_SECRET + $AZURE_TENANT_ID),
 * workload identity ($AZURE_FEDERATED_TOKEN_FILE + client/tenant ids).
 * Managed identity and the Azure CLI are used only when asked for (opts.auth
 * or $EHDELTA_STORAGE_AUTH = shared-key, sas, token, client-secret,
 * workload-identity, managed-identity, azure-cli, default, anonymous): they reach
 * services (IMDS, the az program) that AUTO must not probe. */
typedef enum {
  ST_AUTH_AUTO = 0,
  ST_AUTH_SHARED_KEY,
  ST_AUTH_SAS,
  ST_AUTH_TOKEN,         /* a bearer token given as is (tests, external refreshers) */
  ST_AUTH_CLIENT_SECRET, /* Entra ID client credentials */
  ST_AUTH_WORKLOAD_ID,   /* federated token file (AKS) */
  ST_AUTH_MANAGED_ID,    /* IMDS or App Service identity endpoint */
  ST_AUTH_AZURE_CLI,     /* az account get-access-token */
  ST_AUTH_NONE,          /* anonymous (public containers) */
  ST_AUTH_DEFAULT,       /* DefaultAzureCredential's order (auth/cred.h) */
} st_auth_t;

/* Options for st_open; a zeroed struct means defaults. Strings are borrowed
 * for the duration of st_open only (copied). Secrets are never logged. */
typedef struct st_opts {
  st_auth_t auth;
  const char *account;     /* Azure account when the URL has none (az://container/...) */
  const char *account_key; /* base64 key text; else environment (see above) */
  const char *sas;         /* SAS query string, with or without '?' */
  /* Entra ID: each NULL means its environment variable (AZURE_TENANT_ID,
   * AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_FEDERATED_TOKEN_FILE) */
  const char *tenant, *client_id, *client_secret, *federated_token_file;
  const char *ca_file; /* extra CA bundle (Azurite over HTTPS); else $EHDELTA_CA_FILE */
  size_t
      block_size;  /* Azure: larger uploads use Put Block (default $EHDELTA_BLOCK_SIZE or 64 MiB) */
  int max_retries; /* Azure: transient-failure retries (0: default 8; -1: none) */
  int64_t max_backoff_us; /* cap of one backoff sleep (default 15 s) */
  /* Azure: a request that moves no byte for this long fails as a timeout and
   * is retried (default 30 s; whole seconds, libcurl's low-speed check) */
  int64_t timeout_us;
  int64_t connect_timeout_us; /* Azure: bound of one connect (default 5 s) */
  /* Azure: create the container on open when a probe (List Blobs, which a
   * container SAS with 'l' allows) finds it missing */
  bool create_container;
  /* Called before each retry sleep with its cause ("timeout", "connection",
   * "http_503", ...), from the thread using the store; or NULL. Kept by the
   * store (and its sub-stores): ctx must outlive them. */
  void (*on_retry)(void *ctx, const char *reason);
  void *on_retry_ctx;
} st_opts_t;

typedef struct st_stat {
  int64_t size;
  int64_t mtime_ms; /* last modification, ms since the epoch */
} st_stat_t;

typedef struct st_entry {
  char *key; /* relative to the store root; owned by the list */
  int64_t size;
  int64_t mtime_ms;
} st_entry_t;

typedef struct st_list {
  st_entry_t *items; /* sorted by key (byte order) */
  size_t n, cap;
} st_list_t;

/* Opens a store rooted at url: a plain path, file:///abs/path,
 * abfss://container@account.dfs.core.windows.net/path, abfs://..., az://...,
 * https://account.blob.core.windows.net/container/path or Azurite's
 * http://127.0.0.1:PORT/devstoreaccount1/container/path. opts may be NULL.
 * Caller frees with st_free. A local root directory is created if missing. */
ed_code_t st_open(const char *url, const st_opts_t *opts, st_store_t **out, ed_err_t *err);
void st_free(st_store_t *s);
/* Opens a store rooted at key below s's root, with s's credentials (one table
 * inside a container, a sub-directory). Caller frees with st_free. */
ed_code_t st_open_sub(st_store_t *s, const char *key, st_store_t **out, ed_err_t *err);
/* The root URL as given (borrows; valid until st_free). Never contains secrets. */
const char *st_url(const st_store_t *s);

/* Reads len bytes at off (len < 0: to the end) into out (appended).
 * ED_E_NOT_FOUND when the key is missing. */
ed_code_t st_get(st_store_t *s, const char *key, int64_t off, int64_t len, ed_buf_t *out,
                 ed_err_t *err);
/* Writes (replaces) key atomically: readers see the old or the new object. */
ed_code_t st_put(st_store_t *s, const char *key, const void *data, size_t n, ed_err_t *err);
/* Creates key only if it does not exist; ED_E_EXISTS when it does. Atomic
 * against concurrent creators: exactly one succeeds. An ambiguous Azure retry
 * that finds the object is resolved by comparing its bytes with data. */
ed_code_t st_put_if_absent(st_store_t *s, const char *key, const void *data, size_t n,
                           ed_err_t *err);
/* Every object whose key starts with prefix, sorted, continuation handled.
 * Appends to out; free with st_list_fini. */
ed_code_t st_list(st_store_t *s, const char *prefix, st_list_t *out, ed_err_t *err);
void st_list_fini(st_list_t *l);
/* As st_list, but sizes and times may be left at -1 when the backend can
 * skip fetching them (local: no stat per file). For log replay. */
ed_code_t st_list_names(st_store_t *s, const char *prefix, st_list_t *out, ed_err_t *err);
/* Deletes key; a missing key is not an error (cleanup is idempotent). */
ed_code_t st_delete(st_store_t *s, const char *key, ed_err_t *err);
/* ED_E_NOT_FOUND when missing. */
ed_code_t st_stat(st_store_t *s, const char *key, st_stat_t *out, ed_err_t *err);

/* Blobs with user metadata and an ETag, for the partition-ownership and
 * checkpoint records of the Event Hubs SDKs (empty blobs whose state is in
 * x-ms-meta-* and whose ETag makes claims conditional). Azure only: the
 * local backend answers ED_E_UNSUPPORTED. */
typedef struct st_kv {
  char *name; /* as stored: Azure returns metadata names as written (lower case here) */
  char *value;
} st_kv_t;

typedef struct st_blob {
  char *key;        /* relative to the store root */
  char etag[96];    /* as the service sent it, quotes included when it sent them */
  int64_t mtime_ms; /* Last-Modified: the service's clock, not ours */
  int64_t size;
  st_kv_t *meta;
  size_t nmeta;
} st_blob_t;

typedef struct st_blobs {
  st_blob_t *items; /* sorted by key */
  size_t n, cap;
} st_blobs_t;

/* The metadata value of name in b, or NULL (borrows; valid while b is). */
const char *st_blob_meta(const st_blob_t *b, const char *name);
/* List Blobs with include=metadata under prefix. Appends to out; free with
 * st_blobs_fini. */
ed_code_t st_list_meta(st_store_t *s, const char *prefix, st_blobs_t *out, ed_err_t *err);
void st_blobs_fini(st_blobs_t *b);
/* Writes key as an empty blob carrying meta (replacing its metadata). The
 * write is conditional: if_match = an ETag from st_list_meta or an earlier
 * st_put_meta (the blob must still have it), if_match = NULL and if_absent
 * (the blob must not exist), or neither (unconditional). A failed condition
 * is ED_E_CONFLICT. On success the new ETag and Last-Modified go to etag
 * (96 bytes) and mtime_ms when not NULL. Never retried after a request that
 * may have landed: a conditional write's retry would fail its own condition,
 * so an ambiguous outcome is reported as ED_E_UNAVAILABLE. */
ed_code_t st_put_meta(st_store_t *s, const char *key, const st_kv_t *meta, size_t nmeta,
                      const char *if_match, bool if_absent, char *etag, int64_t *mtime_ms,
                      ed_err_t *err);

/* Counters since st_open (requests, retries), for logs and benches. */
typedef struct st_counters {
  uint64_t requests, retries, bytes_up, bytes_down;
} st_counters_t;
void st_counters(const st_store_t *s, st_counters_t *out);

#endif
