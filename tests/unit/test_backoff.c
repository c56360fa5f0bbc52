/* test_backoff: steps double from base up to the cap and stay there; every
 * delay lies in [step/2, step] and the draws cover that range; a fixed seed
 * gives the same delays every time, two seeds different ones. */
#include <stdint.h>

#include "common/backoff.h"
#include "tests/unit/cu.h"

static void test_steps_double_up_to_the_cap(void) {
  ed_backoff_t b;
  ed_backoff_init(&b, 100000, 1000000, 1);
  static const int64_t want[] = {100000, 200000, 400000, 800000, 1000000, 1000000};
  for (int a = 0; a < 6; a++)
    CU_ASSERT_EQUAL(ed_backoff_step(&b, a), want[a]);
  /* far past the cap: no overflow, still the cap */
  CU_ASSERT_EQUAL(ed_backoff_step(&b, 1000), 1000000);
  CU_ASSERT_EQUAL(ed_backoff_step(&b, INT32_MAX), 1000000);
}

static void test_cap_below_base_and_zero_base_are_clamped(void) {
  ed_backoff_t b;
  ed_backoff_init(&b, 500, 100, 1);
  CU_ASSERT_EQUAL(ed_backoff_step(&b, 0), 500);
  CU_ASSERT_EQUAL(ed_backoff_step(&b, 5), 500);
  ed_backoff_init(&b, 0, 0, 1);
  CU_ASSERT_EQUAL(ed_backoff_step(&b, 3), 1);
  CU_ASSERT(ed_backoff_delay(&b, 3) <= 1);
  ed_backoff_init(&b, INT64_MAX / 2 + 1, INT64_MAX, 1);
  CU_ASSERT_EQUAL(ed_backoff_step(&b, 10), INT64_MAX);
}

static void test_delays_lie_in_half_step_to_step_and_cover_it(void) {
  ed_backoff_t b;
  ed_backoff_init(&b, 1000, 30000000, 42);
  for (int a = 0; a < 20; a++) {
    int64_t step = ed_backoff_step(&b, a), lo = INT64_MAX, hi = INT64_MIN;
    for (int i = 0; i < 2000; i++) {
      int64_t d = ed_backoff_delay(&b, a);
      CU_ASSERT_FATAL(d >= step / 2 && d <= step);
      lo = d < lo ? d : lo;
      hi = d > hi ? d : hi;
    }
    /* 2000 uniform draws over [step/2, step]: both ends within 1% (the chance
     * of missing one is about e^-40; the seed is fixed anyway) */
    CU_ASSERT(lo - step / 2 <= step / 100);
    CU_ASSERT(step - hi <= step / 100);
  }
}

static void test_a_fixed_seed_repeats_and_two_seeds_differ(void) {
  ed_backoff_t a, b, c;
  ed_backoff_init(&a, 1000, 1000000, 7);
  ed_backoff_init(&b, 1000, 1000000, 7);
  ed_backoff_init(&c, 1000, 1000000, 8);
  int same_ab = 0, same_ac = 0;
  for (int i = 0; i < 100; i++) {
    int64_t x = ed_backoff_delay(&a, 10), y = ed_backoff_delay(&b, 10),
            z = ed_backoff_delay(&c, 10);
    same_ab += x == y;
    same_ac += x == z;
  }
  CU_ASSERT_EQUAL(same_ab, 100);
  CU_ASSERT(same_ac < 5);
}

static void test_seed_zero_seeds_from_the_clock(void) {
  ed_backoff_t a, b;
  ed_backoff_init(&a, 1000, 1000000, 0);
  ed_backoff_init(&b, 1000, 1000000, 0);
  /* distinct addresses at least: never the same state */
  CU_ASSERT(a.state != b.state);
  CU_ASSERT(a.state != 0);
}

static const cu_case_t cases[] = {CU_CASE(test_steps_double_up_to_the_cap),
                                  CU_CASE(test_cap_below_base_and_zero_base_are_clamped),
                                  CU_CASE(test_delays_lie_in_half_step_to_step_and_cover_it),
                                  CU_CASE(test_a_fixed_seed_repeats_and_two_seeds_differ),
                                  CU_CASE(test_seed_zero_seeds_from_the_clock),
                                  CU_END};
ED_SUITE(backoff, cases)
