/* cli_eh: connection options and connecting, shared by send, tail, status. */
#include "cli/cli_eh.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/log.h"
#include "common/time.h"
#include "eventhubs/connstr.h"

static volatile sig_atomic_t interrupted;

static void on_signal(int sig) { interrupted = sig; }

void cli_eh_signals(void) { cli_on_stop_signals(on_signal); }

int cli_eh_interrupted(void) { return interrupted; }

ed_code_t cli_eh_connect(const cli_eh_cfg_t *cfg, eh_client_t **out, ed_err_t *err) {
  *out = NULL;
  ed_log_setup((ed_log_level_t)cfg->log_level, false, NULL);
  char *s = NULL;
  if (!cfg->cs_file && !getenv("EVENTHUB_CONNECTION_STRING"))
    return ed_err_set(err, ED_E_INVALID,
                      "no connection string: give --connection-string-file FILE or set "
                      "EVENTHUB_CONNECTION_STRING");
  ed_code_t rc =
      cli_read_secret(cfg->cs_file, "EVENTHUB_CONNECTION_STRING", "connection string", &s, err);
  if (rc)
    return rc;
  eh_connstr_t cs;
  rc = eh_connstr_parse(s, &cs, err);
  cli_secret_free(s);
  if (rc)
    return ed_err_prefix(err, "connection string");
  eh_client_opts_t o;
  eh_client_opts_init(&o);
  o.ca_file = cfg->ca_file;
  o.op_timeout_us = cfg->timeout;
  o.token_lifetime_s = cfg->token_lifetime / ED_US_PER_SEC;
  if (o.token_lifetime_s < 1)
    o.token_lifetime_s = 1;
  o.max_retries = (int)cfg->retries;
  rc = eh_client_new(&cs, cfg->hub, &o, out, err);
  eh_connstr_fini(&cs);
  return rc;
}
