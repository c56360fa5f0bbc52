/* cli_eh: what ehdelta send, tail and status share: the connection options
 * (one macro of ed_opt_t rows, so every table spells them the same way), the
 * connection string read from a file or EVENTHUB_CONNECTION_STRING (never
 * argv), and connecting a client. Prints nothing itself. */
#ifndef ED_CLI_CLI_EH_H
#define ED_CLI_CLI_EH_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/log.h"
#include "common/opt.h"
#include "eventhubs/client.h"

typedef struct cli_eh_cfg {
  char *cs_file;
  char *hub;
  char *ca_file;
  int64_t timeout;
  int64_t token_lifetime;
  int64_t retries;
  int log_level;    /* ed_log_level_t */
  int auth;         /* eh_auth_names index: sas, or a Microsoft Entra ID credential */
  char *namespace_; /* HOST[:PORT] of the namespace, instead of a connection string */
  char *tenant_id, *client_id, *client_secret_file, *federated_token_file;
} cli_eh_cfg_t;

/* The rows every Event Hubs command has; T is the command's config struct,
 * which has a cli_eh_cfg_t member named eh. */
#define CLI_EH_OPTIONS(T)                                                                          \
  {"connection-string-file",                                                                       \
   0,                                                                                              \
   ED_OPT_STRING,                                                                                  \
   "FILE",                                                                                         \
   NULL,                                                                                           \
   offsetof(T, eh.cs_file),                                                                        \
   "file whose first line is the connection string (else $EVENTHUB_CONNECTION_STRING)",            \
   0,                                                                                              \
   0,                                                                                              \
   0,                                                                                              \
   NULL},                                                                                          \
      {"hub",                                                                                      \
       0,                                                                                          \
       ED_OPT_STRING,                                                                              \
       "NAME",                                                                                     \
       NULL,                                                                                       \
       offsetof(T, eh.hub),                                                                        \
       "event hub name (else the connection string's EntityPath)",                                 \
       0,                                                                                          \
       0,                                                                                          \
       0,                                                                                          \
       NULL},                                                                                      \
      {"ca-file",                                                                                  \
       0,                                                                                          \
       ED_OPT_STRING,                                                                              \
       "FILE",                                                                                     \
       NULL,                                                                                       \
       offsetof(T, eh.ca_file),                                                                    \
       "PEM file of extra CA certificates to trust for TLS",                                       \
       0,                                                                                          \
       0,                                                                                          \
       0,                                                                                          \
       NULL},                                                                                      \
      {"timeout",                                                                                  \
       0,                                                                                          \
       ED_OPT_DURATION,                                                                            \
       "DURATION",                                                                                 \
       "30s",                                                                                      \
       offsetof(T, eh.timeout),                                                                    \
       "bound on connecting, attaching and each management call",                                  \
       0,                                                                                          \
       1,                                                                                          \
       INT64_MAX,                                                                                  \
       NULL},                                                                                      \
      {"token-lifetime",                                                                           \
       0,                                                                                          \
       ED_OPT_DURATION,                                                                            \
       "DURATION",                                                                                 \
       "1h",                                                                                       \
       offsetof(T, eh.token_lifetime),                                                             \
       "lifetime of the SAS tokens minted from the key (refreshed at 80%)",                        \
       0,                                                                                          \
       1000000,                                                                                    \
       INT64_MAX,                                                                                  \
       NULL},                                                                                      \
      {"retries",                                                                                  \
       0,                                                                                          \
       ED_OPT_INT,                                                                                 \
       "N",                                                                                        \
       "8",                                                                                        \
       offsetof(T, eh.retries),                                                                    \
       "consecutive transient failures retried before giving up (-1: forever)",                    \
       0,                                                                                          \
       -1,                                                                                         \
       1000000,                                                                                    \
       NULL},                                                                                      \
      {"auth",                                                                                     \
       0,                                                                                          \
       ED_OPT_ENUM,                                                                                \
       "METHOD",                                                                                   \
       "sas",                                                                                      \
       offsetof(T, eh.auth),                                                                       \
       "how to authenticate to Event Hubs: the key (sas) or a Microsoft Entra ID credential",      \
       0,                                                                                          \
       0,                                                                                          \
       0,                                                                                          \
       eh_auth_names},                                                                             \
      {"namespace",                                                                                \
       0,                                                                                          \
       ED_OPT_STRING,                                                                              \
       "HOST",                                                                                     \
       NULL,                                                                                       \
       offsetof(T, eh.namespace_),                                                                 \
       "the namespace host (NS.servicebus.windows.net[:PORT]) when no connection string is given", \
       0,                                                                                          \
       0,                                                                                          \
       0,                                                                                          \
       NULL},                                                                                      \
      {"tenant-id",                                                                                \
       0,                                                                                          \
       ED_OPT_STRING,                                                                              \
       "ID",                                                                                       \
       NULL,                                                                                       \
       offsetof(T, eh.tenant_id),                                                                  \
       "Entra tenant (client-secret, workload-identity; else $AZURE_TENANT_ID)",                   \
       0,                                                                                          \
       0,                                                                                          \
       0,                                                                                          \
       NULL},                                                                                      \
      {"client-id",                                                                                \
       0,                                                                                          \
       ED_OPT_STRING,                                                                              \
       "ID",                                                                                       \
       NULL,                                                                                       \
       offsetof(T, eh.client_id),                                                                  \
       "application or user-assigned identity id (else $AZURE_CLIENT_ID)",                         \
       0,                                                                                          \
       0,                                                                                          \
       0,                                                                                          \
       NULL},                                                                                      \
      {"client-secret-file",                                                                       \
       0,                                                                                          \
       ED_OPT_STRING,                                                                              \
       "FILE",                                                                                     \
       NULL,                                                                                       \
       offsetof(T, eh.client_secret_file),                                                         \
       "file whose first line is the client secret (else $AZURE_CLIENT_SECRET)",                   \
       0,                                                                                          \
       0,                                                                                          \
       0,                                                                                          \
       NULL},                                                                                      \
      {"federated-token-file",                                                                     \
       0,                                                                                          \
       ED_OPT_STRING,                                                                              \
       "FILE",                                                                                     \
       NULL,                                                                                       \
       offsetof(T, eh.federated_token_file),                                                       \
       "workload identity's token file (else $AZURE_FEDERATED_TOKEN_FILE)",                        \
       0,                                                                                          \
       0,                                                                                          \
       0,                                                                                          \
       NULL},                                                                                      \
  {                                                                                                \
    "log-level", 0, ED_OPT_ENUM, "LEVEL", "warn", offsetof(T, eh.log_level),                       \
        "what is logged, to stderr", 0, 0, 0, ed_log_level_names                                   \
  }

/* Sets up logging, reads and parses the connection string, connects. On
 * success *out is the client (caller frees with eh_client_free). */
ed_code_t cli_eh_connect(const cli_eh_cfg_t *cfg, eh_client_t **out, ed_err_t *err);

/* Installs SIGINT/SIGTERM handlers that set the flag cli_eh_interrupted reads. */
void cli_eh_signals(void);
int cli_eh_interrupted(void);

#endif
