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
  int log_level; /* ed_log_level_t */
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
