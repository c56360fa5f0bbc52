/* backoff: the delay before a retry, one rule for every retry loop of the
 * project: capped exponential (base, 2 base, 4 base, ... up to cap) with
 * equal jitter in the terms of the AWS Architecture Blog's "Exponential
 * Backoff And Jitter" (2015): half of the capped delay is fixed and half is
 * uniform random, so a retry never comes sooner than half its step (a
 * struggling server gets that rest) while many clients retrying at once
 * spread out. Each ed_backoff_t carries its own PRNG state (splitmix64),
 * seeded once at init: nothing here touches rand()/srand(), so the library
 * never disturbs a program's own random sequence. Never sleeps; the caller
 * waits as suits it (a timed condition wait, nanosleep). Not locked: one
 * ed_backoff_t per thread that retries. */
#ifndef ED_COMMON_BACKOFF_H
#define ED_COMMON_BACKOFF_H

#include <stdint.h>

typedef struct ed_backoff {
  int64_t base_us, cap_us;
  uint64_t state; /* splitmix64 */
} ed_backoff_t;

/* base_us: the first step (at least 1); cap_us: the largest step (at least
 * base_us). seed 0 seeds from the clock, the pid and b's address (so two
 * processes, or two loops of one, do not retry in step); any other seed gives
 * the same delays every time (tests). */
void ed_backoff_init(ed_backoff_t *b, int64_t base_us, int64_t cap_us, uint64_t seed);

/* The step before retry number attempt+1 (attempt 0: the first retry):
 * min(cap, base * 2^attempt), without jitter. */
int64_t ed_backoff_step(const ed_backoff_t *b, int attempt);

/* The delay to wait before retry number attempt+1, in [step/2, step]
 * (equal jitter); advances the PRNG. */
int64_t ed_backoff_delay(ed_backoff_t *b, int attempt);

#endif
