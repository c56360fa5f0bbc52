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
};

static const ed_opt_t table[] = {
    {"name", 'n', ED_OPT_STRING, "NAME", NULL, offsetof(struct cfg, name), "a name",
     ED_OPT_REQUIRED, 0, 0},
    {"count", 'c', ED_OPT_INT, "N", "10", offsetof(struct cfg, count), "how many", 0, 1, 1000},
    {"every", 0, ED_OPT_DURATION, "DURATION", "5 seconds", offsetof(struct cfg, every), "period", 0,
     0, 0},
    {"follow", 'f', ED_OPT_FLAG, NULL, NULL, offsetof(struct cfg, follow), "keep going", 0, 0, 0},
    {"tag", 't', ED_OPT_STRINGS, "TAG", NULL, offsetof(struct cfg, tag), "repeatable", 0, 0, 0},
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

static const cu_case_t cases[] = {
    CU_CASE(test_parses_all_forms_and_defaults), CU_CASE(test_errors_name_the_flag),
    CU_CASE(test_help_and_double_dash), CU_CASE(test_usage_lists_visible_options), CU_END};
ED_SUITE(opt, cases)
