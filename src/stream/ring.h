/* ring: the bounded single-producer / single-consumer hand-off between the
 * network thread (producer) and the pipeline thread (consumer).
 * Owns: a power-of-two array of slots, each holding one borrowed pointer (a
 * batch of events, normally); it never owns, frees or looks inside what it
 * carries. The fast path is two C11 atomics (no lock, no syscall); a thread
 * sleeps in the kernel (futex) only when its side cannot proceed.
 * Back-pressure: rb_push returns ED_E_SERVER_BUSY when the ring is full, so the
 * producer withholds link credit; once the consumer has freed `resume_at`
 * slots, the space callback fires (on the consumer's thread) so the producer
 * can be woken to grant credit again (eh_receiver_resume via a proactor wake).
 * Exactly one thread may push and exactly one may pop. */
#ifndef ED_STREAM_RING_H
#define ED_STREAM_RING_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef struct rb rb_t;

/* Called on the consumer's thread, at most once per refusal: after rb_push
 * returned ED_E_SERVER_BUSY, when rb_free_slots() reaches resume_at again.
 * Must not block; typically it wakes the network thread. */
typedef void (*rb_space_cb_t)(void *arg);

/* capacity: rounded up to a power of two, >= 2, <= 2^30. resume_at: free slots
 * needed before the space callback fires (0 means capacity / 2). cb may be NULL.
 * Caller frees with rb_free. ED_E_INVALID for a bad capacity, ED_E_NOMEM. */
ed_code_t rb_new(size_t capacity, size_t resume_at, rb_space_cb_t cb, void *cb_arg, rb_t **out,
                 ed_err_t *err);
/* The ring must be empty or its remaining items owned elsewhere: rb_free does
 * not touch them. rb_free(NULL) is a no-op. */
void rb_free(rb_t *rb);

/* Producer side. Borrows item (not NULL) until the consumer pops it.
 * ED_OK, or ED_E_SERVER_BUSY when full (nothing queued; the space callback is
 * armed), or ED_E_STOPPED after rb_close. Never blocks. */
ed_code_t rb_push(rb_t *rb, void *item);
/* As rb_push, but waits up to timeout_us (< 0: forever) for room. A full
 * ring wakes the sleeping producer once resume_at slots are free (or it is
 * empty), not per freed slot. ED_E_TIMEOUT when still full at the deadline. */
ed_code_t rb_push_wait(rb_t *rb, void *item, int64_t timeout_us);
/* No more pushes: a consumer waiting on an empty ring gets ED_E_STOPPED once
 * the items already queued are drained. Called by the producer. */
void rb_close(rb_t *rb);

/* Consumer side. ED_OK with *item set, ED_E_TIMEOUT (empty; rb_pop never
 * waits, rb_pop_wait waited timeout_us, < 0 meaning forever), or ED_E_STOPPED
 * (closed and drained). */
ed_code_t rb_pop(rb_t *rb, void **item);
ed_code_t rb_pop_wait(rb_t *rb, void **item, int64_t timeout_us);

/* Approximate from the other side's point of view; exact from the owner's. */
size_t rb_count(const rb_t *rb);
size_t rb_capacity(const rb_t *rb);
size_t rb_free_slots(const rb_t *rb);

typedef struct rb_stats {
  uint64_t pushed, popped;
  uint64_t full_refusals;  /* rb_push calls that found the ring full */
  uint64_t space_wakeups;  /* space callbacks fired */
  uint64_t consumer_waits; /* times the consumer slept in the kernel */
} rb_stats_t;
/* Counters; read by either side (each counter is written by one side only). */
void rb_get_stats(const rb_t *rb, rb_stats_t *out);

#endif
