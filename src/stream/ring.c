/* ring: see ring.h. Lamport's SPSC queue with cached indices: each side
 * keeps a private copy of the other side's index and re-reads the shared one
 * only when the copy says it cannot proceed, so in steady state a push or pop
 * touches one shared cache line, its own. Sleeping uses Linux futexes on
 * 32-bit sequence words that the other side bumps only when someone sleeps. */
#include "stream/ring.h"

#include <linux/futex.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/time.h"

#define RB_LINE 64

struct rb {
  /* read-mostly */
  void **slots;
  size_t mask;
  size_t resume_at;
  rb_space_cb_t cb;
  void *cb_arg;
  /* producer's line */
  _Alignas(RB_LINE) _Atomic size_t head; /* next slot to write */
  size_t tail_cache;
  uint64_t full_refusals;
  /* consumer's line */
  _Alignas(RB_LINE) _Atomic size_t tail; /* next slot to read */
  size_t head_cache;
  uint64_t space_wakeups, consumer_waits;
  /* sleeping: rare, so these share a line */
  _Alignas(RB_LINE) _Atomic uint32_t data_seq; /* bumped on push while consumer sleeps */
  _Atomic uint32_t space_seq;                  /* bumped on pop while producer sleeps */
  _Atomic int consumer_sleeping, producer_sleeping;
  _Atomic int want_space; /* armed by a refused push, cleared by the callback */
  _Atomic int closed;
};

static long futex_wait(_Atomic uint32_t *addr, uint32_t expected, int64_t timeout_us) {
  struct timespec ts, *tsp = NULL;
  if (timeout_us >= 0) {
    ts.tv_sec = (time_t)(timeout_us / ED_US_PER_SEC);
    ts.tv_nsec = (long)(timeout_us % ED_US_PER_SEC) * 1000;
    tsp = &ts;
  }
  return syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, expected, tsp, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *addr) {
  syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

ed_code_t rb_new(size_t capacity, size_t resume_at, rb_space_cb_t cb, void *cb_arg, rb_t **out,
                 ed_err_t *err) {
  *out = NULL;
  if (capacity < 2 || capacity > ((size_t)1 << 30))
    return ed_err_set(err, ED_E_INVALID, "ring: capacity %zu: expected 2 .. 2^30 slots", capacity);
  size_t cap = 2;
  while (cap < capacity)
    cap <<= 1;
  if (resume_at == 0)
    resume_at = cap / 2;
  if (resume_at > cap)
    return ed_err_set(err, ED_E_INVALID, "ring: resume_at %zu: expected at most the capacity %zu",
                      resume_at, cap);
  rb_t *rb = aligned_alloc(RB_LINE, (sizeof *rb + RB_LINE - 1) / RB_LINE * RB_LINE);
  if (!rb)
    return ed_err_set(err, ED_E_NOMEM, "ring: out of memory");
  *rb = (rb_t){0};
  rb->slots = calloc(cap, sizeof *rb->slots);
  if (!rb->slots) {
    free(rb);
    return ed_err_set(err, ED_E_NOMEM, "ring: out of memory for %zu slots", cap);
  }
  rb->mask = cap - 1;
  rb->resume_at = resume_at;
  rb->cb = cb;
  rb->cb_arg = cb_arg;
  *out = rb;
  return ED_OK;
}

void rb_free(rb_t *rb) {
  if (!rb)
    return;
  free(rb->slots);
  free(rb);
}

size_t rb_capacity(const rb_t *rb) { return rb->mask + 1; }

size_t rb_count(const rb_t *rb) {
  size_t h = atomic_load_explicit(&((rb_t *)rb)->head, memory_order_acquire);
  size_t t = atomic_load_explicit(&((rb_t *)rb)->tail, memory_order_acquire);
  return h - t;
}

size_t rb_free_slots(const rb_t *rb) { return rb_capacity(rb) - rb_count(rb); }

ed_code_t rb_push(rb_t *rb, void *item) {
  if (atomic_load_explicit(&rb->closed, memory_order_relaxed))
    return ED_E_STOPPED;
  size_t h = atomic_load_explicit(&rb->head, memory_order_relaxed);
  if (h - rb->tail_cache > rb->mask) {
    rb->tail_cache = atomic_load_explicit(&rb->tail, memory_order_acquire);
    if (h - rb->tail_cache > rb->mask) {
      rb->full_refusals++;
      /* Arm the callback, then look again: a pop between our check and the
       * arming would otherwise never fire it. */
      atomic_store_explicit(&rb->want_space, 1, memory_order_seq_cst);
      rb->tail_cache = atomic_load_explicit(&rb->tail, memory_order_seq_cst);
      if (h - rb->tail_cache > rb->mask)
        return ED_E_SERVER_BUSY;
    }
  }
  rb->slots[h & rb->mask] = item;
  atomic_store_explicit(&rb->head, h + 1, memory_order_release);
  /* seq_cst pairs with the consumer's store to consumer_sleeping: either it
   * sees our head or we see it asleep. */
  atomic_thread_fence(memory_order_seq_cst);
  /* exchange: one wake per sleep, not one per push while it wakes up */
  if (atomic_load_explicit(&rb->consumer_sleeping, memory_order_relaxed) &&
      atomic_exchange_explicit(&rb->consumer_sleeping, 0, memory_order_seq_cst)) {
    atomic_fetch_add_explicit(&rb->data_seq, 1, memory_order_seq_cst);
    futex_wake(&rb->data_seq);
  }
  return ED_OK;
}

static int64_t remaining(int64_t deadline) {
  if (deadline < 0)
    return -1;
  int64_t left = deadline - ed_time_mono_us();
  return left < 0 ? 0 : left;
}

ed_code_t rb_push_wait(rb_t *rb, void *item, int64_t timeout_us) {
  int64_t deadline = timeout_us < 0 ? -1 : ed_time_mono_us() + timeout_us;
  for (;;) {
    ed_code_t rc = rb_push(rb, item);
    if (rc != ED_E_SERVER_BUSY)
      return rc;
    uint32_t seq = atomic_load_explicit(&rb->space_seq, memory_order_seq_cst);
    atomic_store_explicit(&rb->producer_sleeping, 1, memory_order_seq_cst);
    if (rb_free_slots(rb) == 0) {
      int64_t left = remaining(deadline);
      if (left == 0) {
        atomic_store_explicit(&rb->producer_sleeping, 0, memory_order_relaxed);
        return ED_E_TIMEOUT;
      }
      futex_wait(&rb->space_seq, seq, left);
    }
    atomic_store_explicit(&rb->producer_sleeping, 0, memory_order_relaxed);
  }
}

void rb_close(rb_t *rb) {
  atomic_store_explicit(&rb->closed, 1, memory_order_seq_cst);
  atomic_fetch_add_explicit(&rb->data_seq, 1, memory_order_seq_cst);
  futex_wake(&rb->data_seq);
}

ed_code_t rb_pop(rb_t *rb, void **item) {
  size_t t = atomic_load_explicit(&rb->tail, memory_order_relaxed);
  if (t == rb->head_cache) {
    rb->head_cache = atomic_load_explicit(&rb->head, memory_order_acquire);
    if (t == rb->head_cache) {
      if (atomic_load_explicit(&rb->closed, memory_order_acquire)) {
        /* a push may have landed just before the close */
        rb->head_cache = atomic_load_explicit(&rb->head, memory_order_acquire);
        if (t == rb->head_cache)
          return ED_E_STOPPED;
      } else {
        return ED_E_TIMEOUT;
      }
    }
  }
  *item = rb->slots[t & rb->mask];
  atomic_store_explicit(&rb->tail, t + 1, memory_order_release);
  atomic_thread_fence(memory_order_seq_cst);
  /* A sleeping producer is woken only once resume_at slots are free (or the
   * ring is empty), the same hysteresis as the space callback: waking it per
   * freed slot made each hand-off a futex round trip (measured: batches of
   * 256 events moved slower than through a mutex queue). */
  if (atomic_load_explicit(&rb->producer_sleeping, memory_order_relaxed)) {
    size_t h = atomic_load_explicit(&rb->head, memory_order_acquire);
    size_t used = h - (t + 1);
    if ((rb->mask + 1 - used >= rb->resume_at || used == 0) &&
        atomic_exchange_explicit(&rb->producer_sleeping, 0, memory_order_seq_cst)) {
      atomic_fetch_add_explicit(&rb->space_seq, 1, memory_order_seq_cst);
      futex_wake(&rb->space_seq);
    }
  }
  if (atomic_load_explicit(&rb->want_space, memory_order_relaxed)) {
    size_t h = atomic_load_explicit(&rb->head, memory_order_acquire);
    if (rb->mask + 1 - (h - (t + 1)) >= rb->resume_at &&
        atomic_exchange_explicit(&rb->want_space, 0, memory_order_acq_rel)) {
      rb->space_wakeups++;
      if (rb->cb)
        rb->cb(rb->cb_arg);
    }
  }
  return ED_OK;
}

ed_code_t rb_pop_wait(rb_t *rb, void **item, int64_t timeout_us) {
  int64_t deadline = timeout_us < 0 ? -1 : ed_time_mono_us() + timeout_us;
  for (;;) {
    ed_code_t rc = rb_pop(rb, item);
    if (rc != ED_E_TIMEOUT)
      return rc;
    /* A short spin first: a hand-off usually follows within microseconds
     * under load, and a futex round trip costs more than that. */
    for (int i = 0; i < 64; i++) {
      if (atomic_load_explicit(&rb->head, memory_order_acquire) != rb->head_cache)
        break;
    }
    rc = rb_pop(rb, item);
    if (rc != ED_E_TIMEOUT)
      return rc;
    int64_t left = remaining(deadline);
    if (left == 0)
      return ED_E_TIMEOUT;
    uint32_t seq = atomic_load_explicit(&rb->data_seq, memory_order_seq_cst);
    atomic_store_explicit(&rb->consumer_sleeping, 1, memory_order_seq_cst);
    size_t t = atomic_load_explicit(&rb->tail, memory_order_relaxed);
    if (atomic_load_explicit(&rb->head, memory_order_seq_cst) == t &&
        !atomic_load_explicit(&rb->closed, memory_order_seq_cst)) {
      rb->consumer_waits++;
      futex_wait(&rb->data_seq, seq, left);
    }
    atomic_store_explicit(&rb->consumer_sleeping, 0, memory_order_relaxed);
  }
}

void rb_get_stats(const rb_t *rb, rb_stats_t *out) {
  out->pushed = atomic_load_explicit(&((rb_t *)rb)->head, memory_order_acquire);
  out->popped = atomic_load_explicit(&((rb_t *)rb)->tail, memory_order_acquire);
  out->full_refusals = rb->full_refusals;
  out->space_wakeups = rb->space_wakeups;
  out->consumer_waits = rb->consumer_waits;
}
