/* ehdelta run: the agent. Reads an ehdelta.conf(5), reports every problem in
 * it at once, and (with --check) prints the configuration as resolved. */
#include <stdio.h>
#include <stdlib.h>

#include "agent/conf.h"
#include "cli/cli.h"

struct run_cfg {
  char *config;
  bool check;
  bool list_keys;
};

const ed_opt_t cmd_run_options[] = {
    {"config", 'c', ED_OPT_STRING, "FILE", NULL, offsetof(struct run_cfg, config),
     "the configuration file, see ehdelta.conf(5)", 0, 0, 0},
    {"check", 0, ED_OPT_FLAG, NULL, NULL, offsetof(struct run_cfg, check),
     "validate the configuration, print it with defaults filled in, and exit", 0, 0, 0},
    {"list-conf-keys", 0, ED_OPT_FLAG, NULL, NULL, offsetof(struct run_cfg, list_keys),
     "print every configuration key as section.key (for the man-page check)", ED_OPT_HIDDEN, 0, 0},
    ED_OPT_END,
};

int cmd_run(int argc, char **argv) {
  struct run_cfg cfg = {0};
  int nop = 0, rc;
  if ((rc = cli_parse("run", "ehdelta run --config FILE [--check]",
                      "Run the agent: event hub to Delta tables, exactly once.", cmd_run_options,
                      &cfg, argc, argv, &nop)) >= 0)
    return rc;
  if (cfg.list_keys) {
    ag_conf_list_keys(stdout);
    ed_opt_free(cmd_run_options, &cfg);
    return CLI_EXIT_OK;
  }
  if (nop != 0 || !cfg.config) {
    fprintf(stderr, "ehdelta run: expected --config FILE and no operands\n");
    ed_opt_free(cmd_run_options, &cfg);
    return CLI_EXIT_USAGE;
  }
  ag_conf_t conf;
  char *problems = NULL;
  ed_err_t err = {0};
  ed_code_t code = ag_conf_load(cfg.config, &conf, &problems, &err);
  if (problems)
    fputs(problems, stderr);
  if (code) {
    rc = cli_fail("run", &err);
  } else if (cfg.check) {
    ag_conf_print(stdout, &conf);
    rc = CLI_EXIT_OK;
  } else {
    /* The pipeline (network, decode, windows, flush) is not in this build
     * yet: say so rather than pretend to run. */
    ed_err_set(&err, ED_E_UNSUPPORTED,
               "configuration '%s' is valid, but this build runs only --check: the pipeline is "
               "not built yet",
               cfg.config);
    rc = cli_fail("run", &err);
  }
  free(problems);
  ag_conf_free(&conf);
  ed_opt_free(cmd_run_options, &cfg);
  return rc;
}
