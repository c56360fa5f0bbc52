/* ehdelta: main() and subcommand dispatch from commands.def. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "config.h"

static const struct {
  const char *name;
  int (*fn)(int, char **);
  const ed_opt_t *options;
  const char *summary;
} commands[] = {
#define ED_CMD(name, fn, summary) {#name, fn, fn##_options, summary},
#include "cli/commands.def"
#undef ED_CMD
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

const ed_opt_t *cli_options_of(const char *cmd) {
  for (size_t i = 0; i < NCOMMANDS; i++)
    if (strcmp(commands[i].name, cmd) == 0)
      return commands[i].options;
  return NULL;
}

static void usage(FILE *out) {
  fprintf(out, "usage: ehdelta COMMAND [OPTIONS]\n\n"
               "Event Hubs to Delta Lake in one native process.\n\ncommands:\n");
  for (size_t i = 0; i < NCOMMANDS; i++)
    fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fprintf(out, "\n'ehdelta help COMMAND' (or 'ehdelta COMMAND --help') lists a command's "
               "options; man ehdelta-COMMAND describes them.\n");
}

/* Runs the command named cmd; -1 when there is none. */
static int run_command(const char *cmd, int argc, char **argv) {
  for (size_t i = 0; i < NCOMMANDS; i++)
    if (!strcmp(commands[i].name, cmd))
      return commands[i].fn(argc, argv);
  return -1;
}

static int unknown_command(const char *cmd) {
  const char *names[NCOMMANDS + 1];
  for (size_t i = 0; i < NCOMMANDS; i++)
    names[i] = commands[i].name;
  names[NCOMMANDS] = "help";
  const char *guess = ed_opt_suggest(cmd, names, NCOMMANDS + 1);
  if (guess) {
    fprintf(stderr, "ehdelta: unknown command '%s': did you mean '%s'? (see ehdelta --help)\n", cmd,
            guess);
    return CLI_EXIT_USAGE;
  }
  fprintf(stderr, "ehdelta: unknown command '%s', expected one of:", cmd);
  for (size_t i = 0; i < NCOMMANDS; i++)
    fprintf(stderr, " %s", commands[i].name);
  fprintf(stderr, " (see ehdelta --help)\n");
  return CLI_EXIT_USAGE;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return CLI_EXIT_USAGE;
  }
  const char *cmd = argv[1];
  /* `ehdelta help CMD` is `ehdelta CMD --help` (git's and az's convention). */
  if (!strcmp(cmd, "help") && argc >= 3 && strcmp(argv[2], "-h") && strcmp(argv[2], "--help")) {
    if (!cli_options_of(argv[2]))
      return unknown_command(argv[2]);
    char *hargv[] = {argv[2], "--help", NULL};
    return run_command(argv[2], 2, hargv);
  }
  if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
    usage(stdout);
    return CLI_EXIT_OK;
  }
  if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
    printf("ehdelta %s\n", PACKAGE_VERSION);
    return CLI_EXIT_OK;
  }
  /* Hidden: the option names of a command, one per line, for the test that
   * checks every flag against its man page. */
  if (!strcmp(cmd, "--list-options")) {
    if (argc == 2) {
      for (size_t i = 0; i < NCOMMANDS; i++)
        printf("%s\n", commands[i].name);
      return CLI_EXIT_OK;
    }
    const ed_opt_t *t = cli_options_of(argv[2]);
    if (!t)
      return unknown_command(argv[2]);
    ed_opt_list(stdout, t);
    return CLI_EXIT_OK;
  }
  int rc = run_command(cmd, argc - 1, argv + 1);
  return rc >= 0 ? rc : unknown_command(cmd);
}
