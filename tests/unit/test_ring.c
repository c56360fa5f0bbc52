/* test_ring: the SPSC ring's ordering, back-pressure signal, space callback,
 * timeouts and close, single-threaded and across two threads. */
#include <pthread.h>
#include <stdint.h>

#include "common/time.h"
#include "stream/ring.h"
#include "tests/unit/cu.h"

static int g_space_calls;
static void on_space(void *arg) {
  (void)arg;
  g_space_calls++;
}

static void test_ring_rounds_capacity_and_refuses_bad_sizes(void) {
  rb_t *rb = NULL;
  ed_err_t e = {0};
  CU_ASSERT_EQUAL(rb_new(1, 0, NULL, NULL, &rb, &e), ED_E_INVALID);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "capacity 1"));
  CU_ASSERT_EQUAL(rb_new(8, 9, NULL, NULL, &rb, &e), ED_E_INVALID);
  CU_ASSERT_EQUAL_FATAL(rb_new(5, 0, NULL, NULL, &rb, &e), ED_OK);
  CU_ASSERT_EQUAL(rb_capacity(rb), 8);
  CU_ASSERT_EQUAL(rb_free_slots(rb), 8);
  rb_free(rb);
  rb_free(NULL);
}

static void test_ring_full_refuses_and_callback_fires_once_at_resume_mark(void) {
  rb_t *rb = NULL;
  g_space_calls = 0;
  CU_ASSERT_EQUAL_FATAL(rb_new(4, 2, on_space, NULL, &rb, NULL), ED_OK);
  for (uintptr_t i = 1; i <= 4; i++)
    CU_ASSERT_EQUAL(rb_push(rb, (void *)i), ED_OK);
  CU_ASSERT_EQUAL(rb_push(rb, (void *)5), ED_E_SERVER_BUSY);
  CU_ASSERT_EQUAL(rb_push(rb, (void *)5), ED_E_SERVER_BUSY);
  CU_ASSERT_EQUAL(rb_count(rb), 4);
  void *it;
  CU_ASSERT_EQUAL(rb_pop(rb, &it), ED_OK);
  CU_ASSERT_EQUAL((uintptr_t)it, 1);
  CU_ASSERT_EQUAL(g_space_calls, 0); /* one free slot: below resume_at */
  CU_ASSERT_EQUAL(rb_pop(rb, &it), ED_OK);
  CU_ASSERT_EQUAL((uintptr_t)it, 2);
  CU_ASSERT_EQUAL(g_space_calls, 1);
  CU_ASSERT_EQUAL(rb_pop(rb, &it), ED_OK);
  CU_ASSERT_EQUAL(g_space_calls, 1); /* not re-armed: no refusal since */
  CU_ASSERT_EQUAL(rb_pop(rb, &it), ED_OK);
  CU_ASSERT_EQUAL((uintptr_t)it, 4);
  CU_ASSERT_EQUAL(rb_pop(rb, &it), ED_E_TIMEOUT);
  rb_stats_t st;
  rb_get_stats(rb, &st);
  CU_ASSERT_EQUAL(st.pushed, 4);
  CU_ASSERT_EQUAL(st.popped, 4);
  CU_ASSERT_EQUAL(st.full_refusals, 2);
  CU_ASSERT_EQUAL(st.space_wakeups, 1);
  rb_free(rb);
}

static void test_ring_wait_times_out_and_close_drains_then_stops(void) {
  rb_t *rb = NULL;
  CU_ASSERT_EQUAL_FATAL(rb_new(2, 0, NULL, NULL, &rb, NULL), ED_OK);
  void *it;
  int64_t t0 = ed_time_mono_us();
  CU_ASSERT_EQUAL(rb_pop_wait(rb, &it, 20000), ED_E_TIMEOUT);
  CU_ASSERT_TRUE(ed_time_mono_us() - t0 >= 19000);
  CU_ASSERT_EQUAL(rb_push(rb, (void *)7), ED_OK);
  CU_ASSERT_EQUAL(rb_push(rb, (void *)8), ED_OK);
  CU_ASSERT_EQUAL(rb_push_wait(rb, (void *)9, 10000), ED_E_TIMEOUT);
  rb_close(rb);
  CU_ASSERT_EQUAL(rb_push(rb, (void *)9), ED_E_STOPPED);
  CU_ASSERT_EQUAL(rb_pop_wait(rb, &it, -1), ED_OK);
  CU_ASSERT_EQUAL((uintptr_t)it, 7);
  CU_ASSERT_EQUAL(rb_pop_wait(rb, &it, -1), ED_OK);
  CU_ASSERT_EQUAL((uintptr_t)it, 8);
  CU_ASSERT_EQUAL(rb_pop_wait(rb, &it, -1), ED_E_STOPPED);
  rb_free(rb);
}

typedef struct {
  rb_t *rb;
  int blocking;
  uintptr_t n;
  uint64_t refusals;
} prod_t;

static void *producer(void *arg) {
  prod_t *p = arg;
  for (uintptr_t i = 1; i <= p->n; i++) {
    if (p->blocking) {
      if (rb_push_wait(p->rb, (void *)i, -1) != ED_OK)
        return NULL;
    } else {
      while (rb_push(p->rb, (void *)i) == ED_E_SERVER_BUSY)
        p->refusals++;
    }
  }
  rb_close(p->rb);
  return NULL;
}

static void run_two_threads(int blocking, size_t cap, uintptr_t n) {
  rb_t *rb = NULL;
  CU_ASSERT_EQUAL_FATAL(rb_new(cap, 0, NULL, NULL, &rb, NULL), ED_OK);
  prod_t p = {rb, blocking, n, 0};
  pthread_t th;
  CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, producer, &p), 0);
  uintptr_t want = 1;
  size_t bad = 0;
  void *it;
  ed_code_t rc;
  while ((rc = rb_pop_wait(rb, &it, 5 * ED_US_PER_SEC)) == ED_OK) {
    bad += (uintptr_t)it != want;
    want++;
  }
  pthread_join(th, NULL);
  CU_ASSERT_EQUAL(rc, ED_E_STOPPED);
  CU_ASSERT_EQUAL(bad, 0);
  CU_ASSERT_EQUAL(want - 1, n);
  rb_stats_t st;
  rb_get_stats(rb, &st);
  CU_ASSERT_EQUAL(st.pushed, n);
  CU_ASSERT_EQUAL(st.popped, n);
  rb_free(rb);
}

static void test_ring_two_threads_keep_order_spinning_producer(void) {
  run_two_threads(0, 64, 500000);
}
/* capacity 2 makes nearly every hand-off sleep: fewer items */
static void test_ring_two_threads_keep_order_sleeping_producer(void) {
  run_two_threads(1, 2, 100000);
}

static const cu_case_t cases[] = {
    CU_CASE(test_ring_rounds_capacity_and_refuses_bad_sizes),
    CU_CASE(test_ring_full_refuses_and_callback_fires_once_at_resume_mark),
    CU_CASE(test_ring_wait_times_out_and_close_drains_then_stops),
    CU_CASE(test_ring_two_threads_keep_order_spinning_producer),
    CU_CASE(test_ring_two_threads_keep_order_sleeping_producer),
    CU_END,
};
ED_SUITE(ring, cases)
