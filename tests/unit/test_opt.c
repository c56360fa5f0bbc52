#include <stdlib.h>

#include "common/opt.h"
#include "common/time.h"
#include "tests/unit/cu.h"

struct cfg {
  char *name;
  int64_t count;
  int64_t every;
  bool follow;
  char **tag;
  int mode, level;
};

static const char *const modes[] = {"append", "update", "complete", NULL};
static const char *const levels[] = {"error", "warn", "info", NULL};

static const ed_opt_t table[] = {
    {"name", 'n', ED_OPT_STRING, "NAME", NULL, offsetof(struct cfg, name), "a name",
     ED_OPT_REQUIRED, 0, 0, NULL},
    {"count", 'c', ED_OPT_INT, "N", "10", offsetof(struct cfg, count), "how many", 0, 1, 1000,
     NULL},
    {"every", 0, ED_OPT_DURATION, "DURATION", "5 seconds", offsetof(struct cfg, every), "period", 0,
     0, 0, NULL},
    {"follow", 'f', ED_OPT_FLAG, NULL, NULL, offsetof(struct cfg, follow), "keep going", 0, 0, 0,
     NULL},
    {"tag", 't', ED_OPT_STRINGS, "TAG", NULL, offsetof(struct cfg, tag), "repeatable", 0, 0, 0,
     NULL},
    {"mode", 0, ED_OPT_ENUM, "MODE", NULL, offsetof(struct cfg, mode), "output mode", 0, 0, 0,
     modes},
    {"level", 0, ED_OPT_ENUM, "LEVEL", "warn", offsetof(struct cfg, level), "log level", 0, 0, 0,
     levels},
    ED_OPT_END,
};

static ed_code_t parse(int argc, const char *const *argv_in, struct cfg *c, int *nop, bool *help,
                       ed_err_t *e) {
  static char *argv[32];
  for (int i = 0; i < argc; i++)
    argv[i] = (char *)argv_in[i];
  memset(c, 0, sizeof *c);
  return ed_opt_parse(table, c, argc, argv, nop, help, e);
}

static void test_parses_all_forms_and_defaults(void) {
  const char *argv[] = {"x",        "--name=a", "op1",   "-c",  "7",
                        "--follow", "-tone",    "--tag", "two", "op2"};
  struct cfg c;
  int nop;
  bool help;
  ed_err_t e = {0};
  CU_ASSERT_EQUAL_FATAL(parse(10, argv, &c, &nop, &help, &e), ED_OK);
  CU_ASSERT_STR(c.name, "a");
  CU_ASSERT_EQUAL(c.count, 7);
  CU_ASSERT_EQUAL(c.every, 5 * ED_US_PER_SEC);
  CU_ASSERT_TRUE(c.follow);
  CU_ASSERT_STR(c.tag[0], "one");
  CU_ASSERT_STR(c.tag[1], "two");
  CU_ASSERT_PTR_NULL(c.tag[2]);
  CU_ASSERT_EQUAL(nop, 2);
  ed_opt_free(table, &c);
  CU_ASSERT_PTR_NULL(c.name);
}

static void test_errors_name_the_flag(void) {
  static const struct {
    int argc;
    const char *argv[4];
    const char *why;
  } cases[] = {
      {2, {"x", "--bogus"}, "unknown option '--bogus'"},
      {3, {"x", "--name", "a"}, NULL},
      {2, {"x", "-c"}, "needs a value"},
      {1, {"x"}, "--name is required"},
      {4, {"x", "-n", "a", "--count=abc"}, "--count 'abc': expected a whole number"},
      {4, {"x", "-n", "a", "--count=0"}, "from 1 to 1000"},
      {4, {"x", "-n", "a", "--every=soon"}, "--every: duration 'soon'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct cfg c;
    int nop;
    bool help;
    ed_err_t e = {0};
    ed_code_t rc = parse(cases[i].argc, cases[i].argv, &c, &nop, &help, &e);
    if (cases[i].why) {
      CU_ASSERT_NOT_EQUAL(rc, ED_OK);
      CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, cases[i].why));
    } else
      CU_ASSERT_EQUAL(rc, ED_OK);
    ed_opt_free(table, &c);
  }
}

static void test_help_and_double_dash(void) {
  const char *argv[] = {"x", "--", "--name"};
  struct cfg c;
  int nop;
  bool help;
  CU_ASSERT_NOT_EQUAL(parse(3, argv, &c, &nop, &help, NULL), ED_OK); /* name still required */
  CU_ASSERT_EQUAL(nop, 1);
  ed_opt_free(table, &c);
  const char *argv2[] = {"x", "--help"};
  CU_ASSERT_EQUAL(parse(2, argv2, &c, &nop, &help, NULL), ED_OK);
  CU_ASSERT_TRUE(help);
  ed_opt_free(table, &c);
}

static void test_usage_lists_visible_options(void) {
  char *mem = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&mem, &len);
  ed_opt_usage(f, "x [options]", NULL, table);
  ed_opt_list(f, table);
  fclose(f);
  CU_ASSERT_PTR_NOT_NULL(strstr(mem, "--count N"));
  CU_ASSERT_PTR_NOT_NULL(strstr(mem, "(default: 10)"));
  CU_ASSERT_PTR_NOT_NULL(strstr(mem, "\n--tag\n"));
  free(mem);
}

/* A key with a fixed set of values is one row with its names: matched
 * ignoring case, '-' and '_', refused naming every allowed value, listed by
 * --help, unset (-1) when given nowhere and without a default. */
static void test_enum_rows(void) {
  struct cfg c;
  int nop;
  bool help;
  ed_err_t e = {0};
  const char *a1[] = {"x", "--name=a"};
  CU_ASSERT_EQUAL_FATAL(parse(2, a1, &c, &nop, &help, &e), ED_OK);
  CU_ASSERT_EQUAL(c.mode, -1);
  CU_ASSERT_EQUAL(c.level, 1);
  CU_ASSERT_STR(ed_opt_enum_name(&table[6], c.level), "warn");
  CU_ASSERT_PTR_NULL(ed_opt_enum_name(&table[5], c.mode));
  ed_opt_free(table, &c);
  const char *a2[] = {"x", "--name=a", "--mode", "Complete", "--level=INFO"};
  CU_ASSERT_EQUAL_FATAL(parse(5, a2, &c, &nop, &help, &e), ED_OK);
  CU_ASSERT_EQUAL(c.mode, 2);
  CU_ASSERT_EQUAL(c.level, 2);
  ed_opt_free(table, &c);
  const char *a3[] = {"x", "--name=a", "--mode=upsert"};
  CU_ASSERT_EQUAL(parse(3, a3, &c, &nop, &help, &e), ED_E_INVALID);
  CU_ASSERT_STR(e.msg, "--mode 'upsert': expected append, update or complete");
  ed_opt_free(table, &c);
  CU_ASSERT_EQUAL(ed_opt_set_as(&table[5], &c, "APPEND", "[sink w] output_mode", &e), ED_OK);
  CU_ASSERT_EQUAL(c.mode, 0);
  CU_ASSERT_EQUAL(ed_opt_set_as(&table[5], &c, "app end", "[sink w] output_mode", &e),
                  ED_E_INVALID);
  CU_ASSERT_STR(e.msg, "[sink w] output_mode 'app end': expected append, update or complete");
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  ed_opt_usage(f, "x", NULL, table);
  fclose(f);
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "output mode: append, update or complete"));
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "log level: error, warn or info (default: warn)"));
  free(text);
}

static const cu_case_t cases[] = {CU_CASE(test_parses_all_forms_and_defaults),
                                  CU_CASE(test_errors_name_the_flag),
                                  CU_CASE(test_help_and_double_dash),
                                  CU_CASE(test_usage_lists_visible_options),
                                  CU_CASE(test_enum_rows),
                                  CU_END};
ED_SUITE(opt, cases)
