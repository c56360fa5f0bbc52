/* ehdelta sas: mint a SAS token for an Event Hubs resource. The key comes from
 * --key-file or EHDELTA_SAS_KEY, never from argv (argv is visible to every
 * user of the machine through /proc). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "common/buf.h"
#include "common/time.h"
#include "eventhubs/sas.h"

struct sas_cfg {
  char *resource;
  char *key_name;
  char *key_file;
  int64_t expiry;
  int64_t expires_at;
};

const ed_opt_t cmd_sas_options[] = {
    {"resource", 'r', ED_OPT_STRING, "URI", NULL, offsetof(struct sas_cfg, resource),
     "resource the token grants, e.g. sb://NS.servicebus.windows.net/HUB", ED_OPT_REQUIRED, 0, 0,
     NULL},
    {"key-name", 'n', ED_OPT_STRING, "NAME", NULL, offsetof(struct sas_cfg, key_name),
     "shared access policy (rule) name", ED_OPT_REQUIRED, 0, 0, NULL},
    {"key-file", 'k', ED_OPT_STRING, "FILE", NULL, offsetof(struct sas_cfg, key_file),
     "file whose first line is the key (else $EHDELTA_SAS_KEY)", 0, 0, 0, NULL},
    {"expiry", 'e', ED_OPT_INT, "SECONDS", "3600", offsetof(struct sas_cfg, expiry),
     "lifetime of the token in seconds from now", 0, 1, INT64_C(315360000), NULL},
    {"expires-at", 0, ED_OPT_INT, "UNIX", NULL, offsetof(struct sas_cfg, expires_at),
     "absolute expiry as Unix seconds (overrides --expiry)", 0, 1, INT64_C(253402300799), NULL},
    ED_OPT_END,
};

int cmd_sas(int argc, char **argv) {
  struct sas_cfg cfg = {0};
  int nop = 0, rc;
  if ((rc = cli_parse("sas",
                      "ehdelta sas --resource URI --key-name NAME [--key-file FILE] "
                      "[--expiry SECONDS | --expires-at UNIX]",
                      "Print a shared access signature token for an Event Hubs resource.",
                      cmd_sas_options, &cfg, argc, argv, &nop)) >= 0)
    goto out;
  ed_err_t err = {0};
  if (nop > 0) {
    /* not echoed: a stray operand here is most likely a key typed by mistake */
    fprintf(stderr, "ehdelta sas: unexpected argument (the key is never taken from the command "
                    "line: use --key-file or EHDELTA_SAS_KEY)\n");
    rc = CLI_EXIT_USAGE;
    goto out;
  }
  char *key = NULL;
  if (cli_read_secret(cfg.key_file, "EHDELTA_SAS_KEY", "key", &key, &err)) {
    rc = cli_fail("sas", &err);
    goto out;
  }
  int64_t se = cfg.expires_at ? cfg.expires_at : ed_time_now_us() / ED_US_PER_SEC + cfg.expiry;
  ed_buf_t tok = ED_BUF_INIT;
  if (eh_sas_token(cfg.resource, cfg.key_name, key, se, &tok, &err)) {
    rc = cli_fail("sas", &err);
  } else {
    printf("%s\n", tok.data);
    rc = CLI_EXIT_OK;
  }
  cli_secret_free(key);
  ed_buf_fini(&tok);
out:
  ed_opt_free(cmd_sas_options, &cfg);
  return rc;
}
