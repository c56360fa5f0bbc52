/* torture: allocation-failure testing (curl's torture mode). Test runners
 * linked with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc route every
 * allocation of the code under test through a counter; torture_fail_at(n)
 * makes the n-th allocation from now fail (0 = never). A torture test runs an
 * operation once to count its allocations, then again failing each one in
 * turn, and checks the operation reports ED_E_NOMEM (or copes) without
 * crashing or leaking (ASan checks the leaks). */
#ifndef ED_TESTS_TORTURE_H
#define ED_TESTS_TORTURE_H

#include <stddef.h>

void torture_fail_at(size_t n);
size_t torture_count(void); /* allocations since the last torture_fail_at */
int torture_failed(void);   /* did the planned failure happen? */

#endif
