/* cli: the ehdelta command-line front end. Only this layer prints to stdout
 * and chooses exit codes. Each subcommand is `int cmd_<name>(int argc, char
 * **argv)` with argv[0] the subcommand name; it returns an exit status. */
#ifndef ED_CLI_CLI_H
#define ED_CLI_CLI_H

#include <stdbool.h>

#include "common/err.h"
#include "common/opt.h"

/* Exit statuses, documented in ehdelta(1). */
enum {
  CLI_EXIT_OK = 0,
  CLI_EXIT_FAILURE = 1,     /* a permanent failure not listed below */
  CLI_EXIT_USAGE = 2,       /* bad flags, configuration or input */
  CLI_EXIT_AUTH = 3,        /* credentials refused or expired */
  CLI_EXIT_NOT_FOUND = 4,   /* hub, partition, consumer group, table or file missing */
  CLI_EXIT_UNAVAILABLE = 5, /* unreachable or still failing after retries */
  CLI_EXIT_INTERRUPTED = 130,
};

/* Each command also exports its option table as <fn>_options. */
#define ED_CMD(name, fn, summary)                                                                  \
  int fn(int argc, char **argv);                                                                   \
  extern const ed_opt_t fn##_options[];
#include "cli/commands.def"
#undef ED_CMD

/* Maps an error code to the exit status above. */
int cli_exit_status(ed_code_t code);
/* Prints "ehdelta <cmd>: <message>" on stderr and returns cli_exit_status. */
int cli_fail(const char *cmd, const ed_err_t *err);
/* Parses argv with table into cfg. Returns -1 to go on, or an exit status
 * (0 after --help, CLI_EXIT_USAGE after a bad flag, already reported). */
int cli_parse(const char *cmd, const char *synopsis, const char *summary, const ed_opt_t *table,
              void *cfg, int argc, char **argv, int *noperands);
/* Routes SIGINT and SIGTERM to handler (no SA_RESTART, so a blocking read
 * returns) and ignores SIGPIPE (a closed pipe is an error return instead). */
void cli_on_stop_signals(void (*handler)(int));
/* Reads a secret: the file's first line if path is set, else the environment
 * variable env. Caller frees with cli_secret_free. Never echoes the value. */
ed_code_t cli_read_secret(const char *path, const char *env, const char *what, char **out,
                          ed_err_t *err);
void cli_secret_free(char *s);
/* Looks up the option table of a subcommand for the man-page check. */
const ed_opt_t *cli_options_of(const char *cmd);

#endif
