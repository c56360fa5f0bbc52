/* torture: the --wrap'd allocator. */
#include "tests/unit/torture.h"

#include <stdlib.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t m, size_t n);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t m, size_t n);
void *__wrap_realloc(void *p, size_t n);

static size_t g_count, g_fail_at;
static int g_failed;

void torture_fail_at(size_t n) {
  g_count = 0;
  g_fail_at = n;
  g_failed = 0;
}

size_t torture_count(void) { return g_count; }
int torture_failed(void) { return g_failed; }

static int should_fail(void) {
  g_count++;
  if (g_fail_at && g_count == g_fail_at) {
    g_failed = 1;
    return 1;
  }
  return 0;
}

void *__wrap_malloc(size_t n) { return should_fail() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t m, size_t n) { return should_fail() ? NULL : __real_calloc(m, n); }
void *__wrap_realloc(void *p, size_t n) { return should_fail() ? NULL : __real_realloc(p, n); }
