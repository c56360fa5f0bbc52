/* cu_main: runs every suite registered with ED_SUITE, prints CUnit's basic
 * report, and exits non-zero on any failure. Pass suite names to run a subset. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>

#include "tests/unit/cu.h"

static cu_suite_t *g_suites;

void cu_register(cu_suite_t *s) {
  /* keep registration order (constructors run in link order) */
  cu_suite_t **p = &g_suites;
  while (*p)
    p = &(*p)->next;
  *p = s;
}

const char *cu_fmt2(const char *fmt, const char *a, const char *b) {
  static char buf[8][1024];
  static int slot;
  char *out = buf[slot++ % 8];
  snprintf(out, sizeof buf[0], fmt, a ? a : "(null)", b ? b : "(null)");
  return out;
}

int main(int argc, char **argv) {
  if (CU_initialize_registry() != CUE_SUCCESS)
    return 2;
  for (cu_suite_t *s = g_suites; s; s = s->next) {
    int wanted = argc < 2;
    for (int i = 1; i < argc; i++)
      wanted |= strcmp(argv[i], s->name) == 0;
    if (!wanted)
      continue;
    CU_pSuite suite = CU_add_suite(s->name, s->init, s->cleanup);
    if (!suite)
      return 2;
    for (const cu_case_t *c = s->cases; c->name; c++)
      if (!CU_add_test(suite, c->name, c->fn))
        return 2;
  }
  CU_basic_set_mode(CU_BRM_VERBOSE);
  CU_basic_run_tests();
  unsigned failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
  unsigned ran = CU_get_number_of_tests_run();
  CU_cleanup_registry();
  return failed ? 1 : (ran ? 0 : 77);
}
