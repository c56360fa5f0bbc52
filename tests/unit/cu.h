/* cu: a thin layer over CUnit so each test file declares its suite in one
 * place. A file lists its cases in a table and registers it with ED_SUITE;
 * cu_main.c runs every registered suite and prints CUnit's totals. */
#ifndef ED_TESTS_CU_H
#define ED_TESTS_CU_H

#include <CUnit/CUnit.h>
#include <string.h>

typedef struct cu_case {
  const char *name;
  void (*fn)(void);
} cu_case_t;

typedef struct cu_suite {
  const char *name;
  const cu_case_t *cases;
  int (*init)(void);
  int (*cleanup)(void);
  struct cu_suite *next;
} cu_suite_t;

void cu_register(cu_suite_t *s);

#define ED_SUITE_FULL(sname, table, init_fn, cleanup_fn)                                           \
  static cu_suite_t cu_suite_##sname = {#sname, table, init_fn, cleanup_fn, NULL};                 \
  __attribute__((constructor)) static void cu_ctor_##sname(void) { cu_register(&cu_suite_##sname); }
#define ED_SUITE(sname, table) ED_SUITE_FULL(sname, table, NULL, NULL)
#define CU_CASE(fn)                                                                                \
  { #fn, fn }
#define CU_END                                                                                     \
  { NULL, NULL }

/* String equality with both values in the failure message. */
#define CU_ASSERT_STR(actual, expected)                                                            \
  do {                                                                                             \
    const char *a_ = (actual), *e_ = (expected);                                                   \
    CU_assertImplementation(a_ &&e_ &&strcmp(a_, e_) == 0, __LINE__,                               \
                            cu_fmt2("strings differ: got '%s', want '%s'", a_, e_), __FILE__, "",  \
                            CU_FALSE);                                                             \
  } while (0)
const char *cu_fmt2(const char *fmt, const char *a, const char *b);

#endif
