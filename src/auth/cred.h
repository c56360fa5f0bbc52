/* cred: Microsoft Entra ID access tokens for one scope, from a client secret,
 * a workload identity (federated token file), a managed identity (IMDS or the
 * App Service / Arc identity endpoint), the Azure CLI, or `default` (those in
 * the Azure SDKs' DefaultAzureCredential order). Owns the token cache, its
 * refresh rules and retries with backoff. Never logs or returns a secret in a
 * message; never prints. Called by store/ (Blob) and eventhubs/ (CBS jwt). */
#ifndef ED_AUTH_CRED_H
#define ED_AUTH_CRED_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

typedef enum {
  AU_CRED_CLIENT_SECRET, /* AZURE_TENANT_ID + AZURE_CLIENT_ID + AZURE_CLIENT_SECRET */
  AU_CRED_WORKLOAD_ID,   /* AZURE_TENANT_ID + AZURE_CLIENT_ID + AZURE_FEDERATED_TOKEN_FILE */
  AU_CRED_MANAGED_ID,    /* IDENTITY_ENDPOINT + IDENTITY_HEADER, MSI_ENDPOINT, or IMDS */
  AU_CRED_AZURE_CLI,     /* az account get-access-token */
  AU_CRED_DEFAULT,       /* the four above in that order; the first that answers sticks */
} au_kind_t;

/* Scopes the project asks for. */
#define AU_SCOPE_STORAGE   "https://storage.azure.com/.default"
#define AU_SCOPE_EVENTHUBS "https://eventhubs.azure.net/.default"

/* A zeroed struct means: values from the environment (the variables above and
 * AZURE_AUTHORITY_HOST), 3 retries, backoff capped at 10 s. Strings are
 * borrowed for au_cred_new only (copied). */
typedef struct au_cred_opts {
  au_kind_t kind;
  const char *scope; /* required, e.g. AU_SCOPE_EVENTHUBS */
  const char *tenant, *client_id, *client_secret, *federated_token_file, *authority;
  const char *ca_file;    /* extra CA bundle for the token endpoint, or NULL */
  int max_retries;        /* transient failures (0: default 3; -1: none) */
  int64_t max_backoff_us; /* cap of one backoff sleep (0: default 10 s) */
} au_cred_opts_t;

typedef struct au_cred au_cred_t;

/* Checks that the chosen kind has what it needs (a clear message naming the
 * missing variable otherwise); fetches nothing yet. Caller frees with
 * au_cred_free. */
ed_code_t au_cred_new(const au_cred_opts_t *o, au_cred_t **out, ed_err_t *err);
/* A copy with the same settings and cached token; caller frees. NULL: no memory. */
au_cred_t *au_cred_dup(const au_cred_t *c);
void au_cred_free(au_cred_t *c);

/* A token valid for a while: refreshed when fewer than 300 s remain (or
 * half its life, for a token living under 10 minutes); after a failed
 * refresh, retried at most every 30 s while the old one still serves, which
 * is kept meanwhile; at once when force (the service refused the old one;
 * a failure is then returned). *token is borrowed; valid until the next
 * call or au_cred_free. Failures name the endpoint and the HTTP status,
 * never the token or a secret. */
ed_code_t au_cred_token(au_cred_t *c, bool force, const char **token, int64_t *expires_us,
                        ed_err_t *err);
/* Bounds later token requests: retries of transient failures (-1: none) and
 * the whole of one request. For a caller that may not block long (the Event
 * Hubs network thread refreshing on a live connection); a failed refresh
 * keeps the old token while it is valid. */
void au_cred_set_limits(au_cred_t *c, int max_retries, int64_t request_timeout_us);
/* "client secret", "workload identity", ...: for messages. For DEFAULT, the
 * one that answered, or "default credential". Borrowed; static. */
const char *au_cred_name(const au_cred_t *c);
/* How many token requests were sent (for tests and status). */
int64_t au_cred_requests(const au_cred_t *c);

typedef struct au_token {
  char *value;
  int64_t expires_us; /* wall clock */
} au_token_t;
/* Parses a token endpoint's JSON answer ("expires_in" or "expires_on",
 * number or string; az CLI "accessToken"/"expires_on"). now_us: when the
 * request was sent. out->value: caller frees. */
ed_code_t au_parse_token(const char *json, int64_t now_us, au_token_t *out, ed_err_t *err);

#endif
