/* backoff: see backoff.h. */
#include "common/backoff.h"

#include <stdint.h>
#include <unistd.h>

#include "common/time.h"

/* Steele, Lea and Flood, "Fast splittable pseudorandom number generators"
 * (OOPSLA 2014): one add and a mix per draw, any 64-bit seed is good. */
static uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}

void ed_backoff_init(ed_backoff_t *b, int64_t base_us, int64_t cap_us, uint64_t seed) {
  b->base_us = base_us > 0 ? base_us : 1;
  b->cap_us = cap_us > b->base_us ? cap_us : b->base_us;
  if (!seed)
    seed = (uint64_t)ed_time_mono_us() ^ (uint64_t)ed_time_now_us() ^ (uint64_t)getpid() << 32 ^
           (uint64_t)(uintptr_t)b;
  b->state = seed;
}

int64_t ed_backoff_step(const ed_backoff_t *b, int attempt) {
  int64_t d = b->base_us;
  /* doubling stops at the cap: no shift can overflow */
  for (int i = 0; i < attempt && d < b->cap_us; i++)
    d = d > b->cap_us / 2 ? b->cap_us : d * 2;
  return d < b->cap_us ? d : b->cap_us;
}

int64_t ed_backoff_delay(ed_backoff_t *b, int attempt) {
  int64_t step = ed_backoff_step(b, attempt);
  /* modulo bias: at most step/2^64, nothing a retry can tell */
  return step / 2 + (int64_t)(splitmix64(&b->state) % (uint64_t)(step / 2 + 1));
}
