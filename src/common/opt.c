/* opt: table-driven options. */
#include "common/opt.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/time.h"

static void *field(void *cfg, const ed_opt_t *o) { return (char *)cfg + o->offset; }

/* "Fail-Fast", "fail_fast" and "failfast" are one name: case, '-' and '_'
 * are how spellings of a value differ, never what tells two values apart. */
static bool same_name(const char *a, const char *b) {
  for (;;) {
    while (*a == '-' || *a == '_')
      a++;
    while (*b == '-' || *b == '_')
      b++;
    if (!*a || !*b)
      return !*a && !*b;
    if (tolower((unsigned char)*a++) != tolower((unsigned char)*b++))
      return false;
  }
}

const char *ed_opt_enum_name(const ed_opt_t *o, int v) {
  for (int i = 0; o->names && o->names[i]; i++)
    if (i == v)
      return o->names[i];
  return NULL;
}

/* "a, b or c": an ENUM row's names as a message or --help lists them. */
static void ed_opt_enum_list(const ed_opt_t *o, char *out, size_t cap) {
  size_t n = 0, at = 0;
  while (o->names && o->names[n])
    n++;
  out[0] = 0;
  for (size_t i = 0; i < n && at < cap; i++) {
    int w = snprintf(out + at, cap - at, "%s%s",
                     i == 0       ? ""
                     : i + 1 == n ? " or "
                                  : ", ",
                     o->names[i]);
    if (w < 0)
      break;
    at += (size_t)w;
  }
}

const ed_opt_t *ed_opt_find(const ed_opt_t *t, const char *name) {
  for (; t->name; t++)
    if (strcmp(t->name, name) == 0)
      return t;
  return NULL;
}

/* Optimal string alignment distance (Levenshtein plus adjacent swaps: "--partiton"
 * is one edit from "--partition"), over names short enough for a fixed table. */
static size_t edit_distance(const char *a, const char *b) {
  enum { MAX = 64 };
  size_t la = strlen(a), lb = strlen(b);
  if (la >= MAX || lb >= MAX)
    return (size_t)-1;
  size_t d[MAX][MAX];
  for (size_t i = 0; i <= la; i++)
    d[i][0] = i;
  for (size_t j = 0; j <= lb; j++)
    d[0][j] = j;
  for (size_t i = 1; i <= la; i++)
    for (size_t j = 1; j <= lb; j++) {
      size_t cost = a[i - 1] != b[j - 1], v = d[i - 1][j - 1] + cost;
      if (d[i - 1][j] + 1 < v)
        v = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < v)
        v = d[i][j - 1] + 1;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
        v = d[i - 2][j - 2] + 1;
      d[i][j] = v;
    }
  return d[la][lb];
}

const char *ed_opt_suggest(const char *typed, const char *const *names, size_t n) {
  const char *best = NULL;
  size_t best_d = (size_t)-1, len = strlen(typed);
  /* Up to 2 edits, and fewer for short words, so "--x" suggests nothing. */
  size_t limit = len < 4 ? 1 : 2;
  for (size_t i = 0; i < n; i++) {
    size_t d = edit_distance(typed, names[i]);
    /* A prefix of one name ("--partition-k") is as good a guess as a typo. */
    if (d > limit && len >= 3 && strncmp(names[i], typed, len) == 0)
      d = limit;
    if (d <= limit && d < best_d)
      best = names[i], best_d = d;
  }
  return best;
}

static ed_code_t check_bounds(const ed_opt_t *o, const char *label, int64_t v, const char *text,
                              ed_err_t *err) {
  if (o->min < o->max && (v < o->min || v > o->max)) {
    if (o->type == ED_OPT_DURATION) {
      char lo[48], hi[48];
      ed_time_format_duration(o->min, lo, sizeof lo);
      ed_time_format_duration(o->max, hi, sizeof hi);
      return ed_err_set(err, ED_E_INVALID, "%s '%s': expected a duration from %s to %s", label,
                        text, lo, hi);
    }
    return ed_err_set(err, ED_E_INVALID, "%s '%s': expected a whole number from %lld to %lld",
                      label, text, (long long)o->min, (long long)o->max);
  }
  return ED_OK;
}

/* Sets one option from text (config files, environment); a bad value's
 * message names it --NAME. */
static ed_code_t ed_opt_set(const ed_opt_t *o, void *cfg, const char *value, ed_err_t *err) {
  return ed_opt_set_as(o, cfg, value, NULL, err);
}

ed_code_t ed_opt_set_as(const ed_opt_t *o, void *cfg, const char *value, const char *label,
                        ed_err_t *err) {
  char flag[80];
  if (!label) {
    snprintf(flag, sizeof flag, "--%s", o->name);
    label = flag;
  }
  void *f = field(cfg, o);
  switch (o->type) {
  case ED_OPT_FLAG:
    if (!value || !strcasecmp(value, "true") || !strcasecmp(value, "yes") || !strcmp(value, "1") ||
        !strcasecmp(value, "on"))
      *(bool *)f = true;
    else if (!strcasecmp(value, "false") || !strcasecmp(value, "no") || !strcmp(value, "0") ||
             !strcasecmp(value, "off"))
      *(bool *)f = false;
    else
      return ed_err_set(err, ED_E_INVALID, "%s '%s': expected true or false", label, value);
    return ED_OK;
  case ED_OPT_STRING: {
    char *dup = strdup(value);
    if (!dup)
      return ED_E_NOMEM;
    free(*(char **)f);
    *(char **)f = dup;
    return ED_OK;
  }
  case ED_OPT_INT: {
    char *end;
    errno = 0;
    long long v = strtoll(value, &end, 10);
    if (errno || end == value || *end)
      return ed_err_set(err, ED_E_INVALID, "%s '%s': expected a whole number", label, value);
    if (check_bounds(o, label, v, value, err))
      return err ? err->code : ED_E_INVALID;
    *(int64_t *)f = v;
    return ED_OK;
  }
  case ED_OPT_DURATION: {
    int64_t us;
    ed_code_t rc = ed_time_parse_duration(value, &us, err);
    if (rc)
      return err ? ed_err_prefix(err, "%s", label) : rc;
    if (check_bounds(o, label, us, value, err))
      return err ? err->code : ED_E_INVALID;
    *(int64_t *)f = us;
    return ED_OK;
  }
  case ED_OPT_ENUM:
    for (int i = 0; o->names && o->names[i]; i++)
      if (value && same_name(value, o->names[i])) {
        *(int *)f = i;
        return ED_OK;
      }
    {
      char names[256];
      ed_opt_enum_list(o, names, sizeof names);
      return ed_err_set(err, ED_E_INVALID, "%s '%s': expected %s", label, value ? value : "",
                        names);
    }
  case ED_OPT_STRINGS: {
    char ***lp = (char ***)f;
    size_t n = 0;
    while (*lp && (*lp)[n])
      n++;
    char **nl = realloc(*lp, (n + 2) * sizeof *nl);
    if (!nl)
      return ED_E_NOMEM;
    *lp = nl;
    if (!(nl[n] = strdup(value)))
      return ED_E_NOMEM;
    nl[n + 1] = NULL;
    return ED_OK;
  }
  }
  return ed_err_set(err, ED_E_INTERNAL, "%s: unknown option type", label);
}

ed_code_t ed_opt_apply_defaults(const ed_opt_t *t, void *cfg, ed_err_t *err) {
  for (; t->name; t++)
    if (t->type == ED_OPT_ENUM && !t->def)
      *(int *)field(cfg, t) = -1;
    else if (t->def) {
      ed_code_t rc = ed_opt_set(t, cfg, t->def, err);
      if (rc)
        return rc;
    }
  return ED_OK;
}

static ed_code_t ed_opt_check_required(const ed_opt_t *t, const void *cfg, const bool *seen,
                                       ed_err_t *err) {
  for (size_t i = 0; t[i].name; i++) {
    if (!(t[i].flags & ED_OPT_REQUIRED) || t[i].def)
      continue;
    const void *f = (const char *)cfg + t[i].offset;
    bool missing = seen ? !seen[i]
                        : ((t[i].type == ED_OPT_STRING && !*(char *const *)f) ||
                           (t[i].type == ED_OPT_STRINGS && !*(char **const *)f) ||
                           (t[i].type == ED_OPT_ENUM && *(const int *)f < 0));
    if (missing)
      return ed_err_set(err, ED_E_INVALID, "--%s is required (%s)", t[i].name, t[i].help);
  }
  return ED_OK;
}

ed_code_t ed_opt_parse(const ed_opt_t *table, void *cfg, int argc, char **argv, int *noperands,
                       bool *help, ed_err_t *err) {
  size_t count = 0;
  while (table[count].name)
    count++;
  bool *seen = calloc(count + 1, sizeof *seen);
  if (!seen)
    return ED_E_NOMEM;
  ed_code_t rc = ed_opt_apply_defaults(table, cfg, err);
  int nop = 0;
  bool only_operands = false;
  *help = false;
  for (int i = 1; i < argc && rc == ED_OK; i++) {
    char *a = argv[i];
    if (only_operands || a[0] != '-' || a[1] == '\0') {
      argv[nop++] = a;
      continue;
    }
    if (strcmp(a, "--") == 0) {
      only_operands = true;
      continue;
    }
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      *help = true;
      break;
    }
    const ed_opt_t *o = NULL;
    const char *inline_val = NULL;
    char name[128];
    if (a[1] == '-') {
      const char *eq = strchr(a + 2, '=');
      size_t nl = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
      if (nl >= sizeof name)
        nl = sizeof name - 1;
      memcpy(name, a + 2, nl);
      name[nl] = '\0';
      inline_val = eq ? eq + 1 : NULL;
      o = ed_opt_find(table, name);
    } else {
      for (const ed_opt_t *t = table; t->name; t++)
        if (t->short_name && t->short_name == a[1])
          o = t;
      snprintf(name, sizeof name, "%c", a[1]);
      if (a[2])
        inline_val = a + 2;
    }
    if (!o) {
      const char *names[256];
      size_t n = 0;
      for (const ed_opt_t *t = table; t->name && n < 255; t++)
        if (!(t->flags & ED_OPT_HIDDEN))
          names[n++] = t->name;
      names[n++] = "help";
      const char *guess = a[1] == '-' ? ed_opt_suggest(name, names, n) : NULL;
      if (guess)
        rc = ed_err_set(err, ED_E_INVALID, "unknown option '--%s': did you mean --%s? (see --help)",
                        name, guess);
      else
        rc = ed_err_set(err, ED_E_INVALID, "unknown option '%s%s' (see --help)",
                        a[1] == '-' ? "--" : "-", name);
      break;
    }
    const char *val = inline_val;
    if (o->type == ED_OPT_FLAG) {
      if (inline_val && a[1] != '-') {
        rc = ed_err_set(err, ED_E_INVALID, "option -%c takes no value", o->short_name);
        break;
      }
    } else if (!val) {
      if (i + 1 >= argc) {
        rc = ed_err_set(err, ED_E_INVALID, "option --%s needs a value (%s)", o->name,
                        o->metavar ? o->metavar : "VALUE");
        break;
      }
      val = argv[++i];
    }
    rc = ed_opt_set(o, cfg, val, err);
    seen[o - table] = true;
  }
  if (rc == ED_OK && !*help) {
    for (size_t k = 0; k < count; k++)
      if (table[k].def)
        seen[k] = true;
    rc = ed_opt_check_required(table, cfg, seen, err);
  }
  free(seen);
  *noperands = nop;
  return rc;
}

void ed_opt_free(const ed_opt_t *t, void *cfg) {
  for (; t->name; t++) {
    void *f = field(cfg, t);
    if (t->type == ED_OPT_STRING) {
      free(*(char **)f);
      *(char **)f = NULL;
    } else if (t->type == ED_OPT_STRINGS) {
      char **l = *(char ***)f;
      for (size_t i = 0; l && l[i]; i++)
        free(l[i]);
      free(l);
      *(char ***)f = NULL;
    }
  }
}

/* The left column: "  -n, --count N" or "      --hub NAME" (long names line up
 * whether or not there is a short one). */
static int usage_left(const ed_opt_t *t, char *buf, size_t n) {
  char sh[8] = "    ";
  if (t->short_name)
    snprintf(sh, sizeof sh, "-%c, ", t->short_name);
  return snprintf(buf, n, "  %s--%s%s%s", sh, t->name, t->metavar ? " " : "",
                  t->metavar ? t->metavar : "");
}

void ed_opt_usage(FILE *out, const char *synopsis, const char *summary, const ed_opt_t *table) {
  fprintf(out, "usage: %s\n", synopsis);
  if (summary)
    fprintf(out, "%s\n", summary);
  fprintf(out, "\noptions:\n");
  char left[128];
  int width = (int)strlen("  -h, --help");
  for (const ed_opt_t *t = table; t->name; t++)
    if (!(t->flags & ED_OPT_HIDDEN)) {
      int n = usage_left(t, left, sizeof left);
      if (n > width)
        width = n;
    }
  for (const ed_opt_t *t = table; t->name; t++) {
    if (t->flags & ED_OPT_HIDDEN)
      continue;
    usage_left(t, left, sizeof left);
    fprintf(out, "%-*s  %s", width, left, t->help);
    if (t->type == ED_OPT_ENUM) {
      char names[256];
      ed_opt_enum_list(t, names, sizeof names);
      fprintf(out, ": %s", names);
    }
    if (t->def && t->type != ED_OPT_FLAG)
      fprintf(out, " (default: %s)", t->def);
    if (t->flags & ED_OPT_REQUIRED)
      fprintf(out, " (required)");
    fputc('\n', out);
  }
  fprintf(out, "%-*s  %s\n", width, "  -h, --help", "show this help");
}

void ed_opt_list(FILE *out, const ed_opt_t *t) {
  for (; t->name; t++)
    if (!(t->flags & ED_OPT_HIDDEN))
      fprintf(out, "--%s\n", t->name);
}
