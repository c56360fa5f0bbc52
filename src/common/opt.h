/* opt: options declared once, as a table that drives parsing, defaults and
 * --help (Fluent Bit's config maps, curl's per-option tables). The same rows
 * serve command-line flags (--name VALUE, --name=VALUE, -x VALUE) and
 * configuration-file keys; tests check each table against its man page.
 * Values land in a caller's struct at the row's offset. Never prints except
 * through ed_opt_usage; never exits. */
#ifndef ED_COMMON_OPT_H
#define ED_COMMON_OPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"

typedef enum {
  ED_OPT_FLAG,     /* bool; no value on the command line ("true"/"false" in files) */
  ED_OPT_STRING,   /* char *, malloc'd; freed by ed_opt_free */
  ED_OPT_INT,      /* int64_t */
  ED_OPT_DURATION, /* int64_t microseconds, parsed by ed_time_parse_duration */
  ED_OPT_STRINGS,  /* char **, NULL-terminated, repeatable; freed by ed_opt_free */
  ED_OPT_ENUM,     /* int: the index of the value in the row's names (-1: not given, no
                      default); names match ignoring case, '-' and '_' (librdkafka's
                      enum rows: the one list the parser, --help and the man check use) */
} ed_opt_type_t;

enum {
  ED_OPT_REQUIRED = 1u << 0, /* must be given (after defaults) */
  ED_OPT_HIDDEN = 1u << 1,   /* not in --help (tests, internals) */
};

typedef struct ed_opt {
  const char *name; /* "count": --count on the command line, count = in a file */
  char short_name;  /* 'n', or 0 */
  ed_opt_type_t type;
  const char *metavar; /* "N", "DURATION"; NULL for flags */
  const char *def;     /* default as text, or NULL */
  size_t offset;       /* offsetof(config struct, field) */
  const char *help;    /* one line for --help */
  unsigned flags;
  int64_t min, max;         /* bounds for INT and DURATION when min < max */
  const char *const *names; /* ENUM: the allowed values, NULL-terminated, canonical spelling */
} ed_opt_t;

/* Terminates a table. */
#define ED_OPT_END                                                                                 \
  { NULL, 0, 0, NULL, NULL, 0, NULL, 0, 0, 0, NULL }

/* Applies defaults, then parses argv[1..argc). Options and operands may be
 * mixed; "--" ends options. Operands are moved, in order, to the front of argv
 * (argv[0..*noperands)). *help is set when -h/--help was seen (parsing stops).
 * Unknown options, missing values and bad values fail with a message naming the
 * flag and what was expected. */
ed_code_t ed_opt_parse(const ed_opt_t *table, void *cfg, int argc, char **argv, int *noperands,
                       bool *help, ed_err_t *err);
/* The same, the message naming it by label instead (a config file's
 * "[section] key"; NULL: --NAME). label is borrowed for the call. */
ed_code_t ed_opt_set_as(const ed_opt_t *o, void *cfg, const char *value, const char *label,
                        ed_err_t *err);
ed_code_t ed_opt_apply_defaults(const ed_opt_t *table, void *cfg, ed_err_t *err);
const ed_opt_t *ed_opt_find(const ed_opt_t *table, const char *name);
/* The one of names[0..n) closest to typed (within two edits, one for short
 * words, or typed a prefix of it), for "did you mean"; NULL when none is close.
 * Borrowed from names. */
const char *ed_opt_suggest(const char *typed, const char *const *names, size_t n);
/* Frees STRING and STRINGS fields (safe on a zeroed struct). */
void ed_opt_free(const ed_opt_t *table, void *cfg);
/* Prints "usage: <synopsis>" and one line per visible option. */
void ed_opt_usage(FILE *out, const char *synopsis, const char *summary, const ed_opt_t *table);
/* Prints each visible option as "--name" one per line (for the man-page check). */
void ed_opt_list(FILE *out, const ed_opt_t *table);
/* An ENUM row's value as its canonical name (borrowed; static), or NULL
 * when v is not one of them (-1: not given). */
const char *ed_opt_enum_name(const ed_opt_t *o, int v);

#endif
