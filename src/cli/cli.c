/* cli: helpers shared by the subcommands. */
#include "cli/cli.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

int cli_exit_status(ed_code_t code) {
  switch (code) {
  case ED_OK:
    return CLI_EXIT_OK;
  case ED_E_UNAUTHORIZED:
  case ED_E_TOKEN_EXPIRED:
    return CLI_EXIT_AUTH;
  case ED_E_NOT_FOUND:
    return CLI_EXIT_NOT_FOUND;
  case ED_E_STOPPED:
    return CLI_EXIT_INTERRUPTED;
  case ED_E_UNSUPPORTED:
    /* a table feature or version ehdelta does not implement: the operator
     * chose the wrong tool or table, as with a bad configuration */
    return CLI_EXIT_USAGE;
  default:
    break;
  }
  if (ed_code_is_input(code))
    return CLI_EXIT_USAGE;
  if (ed_code_is_retriable(code))
    return CLI_EXIT_UNAVAILABLE;
  return CLI_EXIT_FAILURE;
}

int cli_fail(const char *cmd, const ed_err_t *err) {
  /* The line that says why a service stopped: under the journal, an error (<3>). */
  fprintf(stderr, "%sehdelta %s: %s\n", ed_log_fd_is_journal(STDERR_FILENO) ? "<3>" : "", cmd,
          err->msg[0] ? err->msg : ed_code_desc(err->code));
  return cli_exit_status(err->code);
}

int cli_parse(const char *cmd, const char *synopsis, const char *summary, const ed_opt_t *table,
              void *cfg, int argc, char **argv, int *noperands) {
  ed_err_t err = {0};
  bool help = false;
  if (ed_opt_parse(table, cfg, argc, argv, noperands, &help, &err)) {
    fprintf(stderr, "ehdelta %s: %s\n", cmd, err.msg);
    return CLI_EXIT_USAGE;
  }
  if (help) {
    ed_opt_usage(stdout, synopsis, summary, table);
    return CLI_EXIT_OK;
  }
  return -1;
}

ed_code_t cli_read_secret(const char *path, const char *env, const char *what, char **out,
                          ed_err_t *err) {
  *out = NULL;
  if (path) {
    FILE *f = fopen(path, "r");
    if (!f)
      return ed_err_set(err, ED_E_NOT_FOUND, "%s file '%s': cannot open: %m", what, path);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, f);
    fclose(f);
    if (n <= 0) {
      free(line);
      return ed_err_set(err, ED_E_INVALID,
                        "%s file '%s' is empty, expected the %s on its first line", what, path,
                        what);
    }
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
      line[--n] = '\0';
    if (!n) {
      free(line);
      return ed_err_set(err, ED_E_INVALID, "%s file '%s' has an empty first line", what, path);
    }
    *out = line;
    return ED_OK;
  }
  const char *v = env ? getenv(env) : NULL;
  if (!v || !*v)
    return ed_err_set(err, ED_E_INVALID, "no %s: give a file with --%s-file or set %s", what, what,
                      env ? env : "the environment variable");
  *out = strdup(v);
  return *out ? ED_OK : ED_E_NOMEM;
}

void cli_secret_free(char *s) {
  if (s) {
    explicit_bzero(s, strlen(s));
    free(s);
  }
}

void cli_on_stop_signals(void (*handler)(int)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
}
