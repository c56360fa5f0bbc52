/* cli_eh: connection options and connecting, shared by send, tail, status. */
#include "cli/cli_eh.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/time.h"
#include "eventhubs/connstr.h"

static volatile sig_atomic_t interrupted;

static void on_signal(int sig) { interrupted = sig; }

void cli_eh_signals(void) { cli_on_stop_signals(on_signal); }

int cli_eh_interrupted(void) { return interrupted; }

/* The connection string, or one naming only the endpoint for Entra ID. */
static ed_code_t endpoint_of(const cli_eh_cfg_t *cfg, eh_connstr_t *cs, ed_err_t *err) {
  bool entra = cfg->auth != EH_AUTH_SAS;
  if (cfg->namespace_) {
    if (!entra)
      return ed_err_set(err, ED_E_INVALID,
                        "--namespace needs --auth with an Entra ID credential (a key comes in a "
                        "connection string)");
    ed_buf_t b = ED_BUF_INIT;
    const char *h = cfg->namespace_;
    if (!strncasecmp(h, "sb://", 5))
      h += 5;
    ed_buf_printf(&b, "Endpoint=sb://%s", h);
    ed_code_t rc = b.data ? eh_connstr_parse_keyless(b.data, cs, err) : ED_E_NOMEM;
    ed_buf_fini(&b);
    return rc ? ed_err_prefix(err, "--namespace") : ED_OK;
  }
  if (!cfg->cs_file && !getenv("EVENTHUB_CONNECTION_STRING"))
    return ed_err_set(err, ED_E_INVALID,
                      entra ? "no namespace: give --namespace HOST, --connection-string-file FILE "
                              "or set EVENTHUB_CONNECTION_STRING"
                            : "no connection string: give --connection-string-file FILE or set "
                              "EVENTHUB_CONNECTION_STRING");
  char *s = NULL;
  ed_code_t rc =
      cli_read_secret(cfg->cs_file, "EVENTHUB_CONNECTION_STRING", "connection string", &s, err);
  if (rc)
    return rc;
  rc = entra ? eh_connstr_parse_keyless(s, cs, err) : eh_connstr_parse(s, cs, err);
  cli_secret_free(s);
  return rc ? ed_err_prefix(err, "connection string") : ED_OK;
}

ed_code_t cli_eh_connect(const cli_eh_cfg_t *cfg, eh_client_t **out, ed_err_t *err) {
  *out = NULL;
  ed_log_setup((ed_log_level_t)cfg->log_level, false, NULL);
  eh_connstr_t cs;
  ed_code_t rc = endpoint_of(cfg, &cs, err);
  if (rc)
    return rc;
  char *secret = NULL;
  if (cfg->auth != EH_AUTH_SAS && cfg->client_secret_file)
    rc = cli_read_secret(cfg->client_secret_file, NULL, "client secret", &secret, err);
  au_cred_opts_t co = {.kind = (au_kind_t)(cfg->auth - 1),
                       .scope = AU_SCOPE_EVENTHUBS,
                       .tenant = cfg->tenant_id,
                       .client_id = cfg->client_id,
                       .client_secret = secret,
                       .federated_token_file = cfg->federated_token_file,
                       .ca_file = cfg->ca_file};
  eh_client_opts_t o;
  eh_client_opts_init(&o);
  o.ca_file = cfg->ca_file;
  o.op_timeout_us = cfg->timeout;
  o.token_lifetime_s = cfg->token_lifetime / ED_US_PER_SEC;
  if (o.token_lifetime_s < 1)
    o.token_lifetime_s = 1;
  o.max_retries = (int)cfg->retries;
  o.entra = cfg->auth != EH_AUTH_SAS ? &co : NULL;
  rc = rc ? rc : eh_client_new(&cs, cfg->hub, &o, out, err);
  cli_secret_free(secret);
  eh_connstr_fini(&cs);
  return rc;
}
