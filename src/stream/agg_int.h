/* agg_int: what the aggregate functions (agg.c) and the group-key tables
 * and state frames (agg_keys.c) share; private to those two. Value readers
 * are inline because they sit in the per-row update and key loops. */
#ifndef ED_STREAM_AGG_INT_H
#define ED_STREAM_AGG_INT_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "stream/agg.h"
#include "stream/batch.h"
#include "stream/schema.h"

static inline uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= UINT64_C(0xff51afd7ed558ccd);
  x ^= x >> 33;
  x *= UINT64_C(0xc4ceb9fe1a85ec53);
  x ^= x >> 33;
  return x;
}

static inline bool kind_numeric(sm_kind_t k) {
  return k == SM_INT || k == SM_BIGINT || k == SM_FLOAT || k == SM_DOUBLE;
}
static inline bool kind_flat(sm_kind_t k) { return k != SM_STRUCT && k != SM_ARRAY && k != SM_MAP; }
static inline bool kind_bytes(sm_kind_t k) { return k == SM_STRING || k == SM_BINARY; }
static inline bool kind_float(sm_kind_t k) { return k == SM_FLOAT || k == SM_DOUBLE; }

/* Integer-like value of a fixed-width row (INT, DATE, BIGINT, TIMESTAMP, BOOLEAN). */
static inline int64_t get_i64(const sm_col_t *c, size_t r) {
  switch (c->type->kind) {
  case SM_INT:
  case SM_DATE:
    return c->v.i32[r];
  case SM_BOOLEAN:
    return c->v.b8[r];
  default:
    return c->v.i64[r];
  }
}
static inline double get_f64(const sm_col_t *c, size_t r) {
  switch (c->type->kind) {
  case SM_FLOAT:
    return c->v.f32[r];
  case SM_DOUBLE:
    return c->v.f64[r];
  default:
    return (double)get_i64(c, r);
  }
}

/* Spark's NormalizeFloatingNumbers: -0.0 groups with 0.0, every NaN is one. */
static inline double norm_f64(double d) {
  if (d != d)
    return NAN;
  return d == 0.0 ? 0.0 : d;
}

/* Grows the array *p of elem-byte entries from oldn to newn, zeroing the new
 * ones; *p is unchanged on ED_E_NOMEM. */
ed_code_t agg_grow_arr(void **p, size_t elem, size_t oldn, size_t newn);
/* Appends n bytes to an arena that grows geometrically from first bytes;
 * *off is where they start. Offsets are 32-bit, so an arena stops at 4 GiB. */
ed_code_t agg_arena_put(char **arena, size_t *alen, size_t *acap, size_t first, const void *p,
                        size_t n, uint32_t *off);

#endif
