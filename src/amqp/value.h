/* amqp/value: the one AMQP 1.0 value reader (part 1 §1.2-§1.6) shared by the
 * client's message decoder (src/eventhubs/amqp.c) and the emulator (its frame
 * normaliser, SASL server and event stamping). It reads one value in place:
 * what it points at borrows from the caller's bytes, nothing is copied or
 * allocated, and every read is bounds-checked against end, so bytes from the
 * network are never trusted.
 *
 * Why its own layer (src/amqp/, below eventhubs and emu, above common): both
 * the client and the emulator must read the same bytes the same way, and the
 * emulator must not depend on the client for it; common/ owns no wire
 * protocol. Why the readers are static inline in this header (as Proton's
 * c/src/core/consumers.h is): the client's decode loop runs them once per
 * value of every event, and a call per value across translation units cost
 * measurably more (callgrind Ir/event, see the commit that made this). */
#ifndef ED_AMQP_VALUE_H
#define ED_AMQP_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/amqp.h"

/* One value as read: borrows from the bytes it was read from. */
typedef struct amqp_val {
  uint8_t code; /* constructor of the value itself (after any descriptor) */
  bool described;
  uint64_t desc;        /* numeric descriptor; UINT64_MAX when symbolic */
  const uint8_t *p;     /* payload: fixed-width bytes, string bytes, or compound items */
  size_t n;             /* payload length */
  uint32_t count;       /* items of a list/map/array */
  const uint8_t *start; /* first byte of the whole encoding (descriptor included) */
  size_t total;         /* bytes of the whole encoding */
} amqp_val_t;

/* how deep descriptors may nest before a value counts as malformed */
#define AMQP_MAX_DEPTH 32

static inline uint32_t amqp_be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t amqp_be64(const uint8_t *p) {
  return (uint64_t)amqp_be32(p) << 32 | amqp_be32(p + 4);
}

/* How a constructor's payload is laid out: a fixed width (0..16 bytes), a
 * length-prefixed run (variable), or a size+count-prefixed compound. */
enum { AMQP_L_BAD = 0xff, AMQP_L_VAR8 = 0x20, AMQP_L_VAR32, AMQP_L_COMP8, AMQP_L_COMP32 };

static inline uint8_t amqp_layout(uint8_t code) {
  switch (code) {
  case AMQP_T_VBIN8:
  case AMQP_T_STR8:
  case AMQP_T_SYM8:
    return AMQP_L_VAR8;
  case AMQP_T_VBIN32:
  case AMQP_T_STR32:
  case AMQP_T_SYM32:
    return AMQP_L_VAR32;
  case AMQP_T_LIST8:
  case AMQP_T_MAP8:
  case AMQP_T_ARRAY8:
    return AMQP_L_COMP8;
  case AMQP_T_LIST32:
  case AMQP_T_MAP32:
  case AMQP_T_ARRAY32:
    return AMQP_L_COMP32;
  default:
    break;
  }
  /* 0x40..0x9f: the fixed widths by the top nibble (part 1 §1.6's
   * subcategories), where a type exists */
  static const uint8_t width[16] = {
      AMQP_L_BAD, AMQP_L_BAD, AMQP_L_BAD, AMQP_L_BAD, 0,          1,          2,         4, 8,
      16,         AMQP_L_BAD, AMQP_L_BAD, AMQP_L_BAD, AMQP_L_BAD, AMQP_L_BAD, AMQP_L_BAD};
  return width[code >> 4];
}

/* Reads the value at p (< end) from its constructor on (no descriptor); *out
 * is where the next value starts. Returns 0, or -1 when malformed. Sets code,
 * p, n, count; the caller sets described, desc, start and total. */
static inline int amqp_read_body(const uint8_t *p, const uint8_t *end, amqp_val_t *v,
                                 const uint8_t **out) {
  uint8_t code = *p++, lay = amqp_layout(code);
  size_t left = (size_t)(end - p), len;
  v->code = code;
  v->count = 0;
  switch (lay) {
  case AMQP_L_VAR8:
    if (left < 1 || left - 1 < p[0])
      return -1;
    v->p = p + 1;
    v->n = p[0];
    break;
  case AMQP_L_VAR32:
    if (left < 4 || left - 4 < (len = amqp_be32(p)))
      return -1;
    v->p = p + 4;
    v->n = len;
    break;
  case AMQP_L_COMP8:
    if (left < 2 || (len = p[0]) < 1 || left - 1 < len)
      return -1;
    v->count = p[1];
    v->p = p + 2;
    v->n = len - 1;
    break;
  case AMQP_L_COMP32:
    if (left < 8 || (len = amqp_be32(p)) < 4 || left - 4 < len)
      return -1;
    v->count = amqp_be32(p + 4);
    v->p = p + 8;
    v->n = len - 4;
    break;
  case AMQP_L_BAD:
    return -1;
  default: /* fixed width */
    if (left < lay)
      return -1;
    v->p = p;
    v->n = lay;
    break;
  }
  *out = v->p + v->n;
  return 0;
}

/* Reads one value at *pp (< end), descriptor included, and moves *pp past it.
 * Returns 0, or -1 when malformed (*pp then unchanged). A described value's
 * own value may not itself be described (part 1 §1.2 allows it; no peer of
 * ours sends it, and refusing bounds the work per value). */
static inline int amqp_read(const uint8_t **pp, const uint8_t *end, amqp_val_t *v, int depth) {
  const uint8_t *p = *pp;
  if (p >= end || depth > AMQP_MAX_DEPTH)
    return -1;
  v->start = p;
  v->described = false;
  v->desc = 0;
  if (*p == AMQP_T_DESCRIBED) {
    p++;
    /* the descriptor every section and performative carries, read without
     * recursion */
    if (end - p >= 2 && p[0] == AMQP_T_SMALLULONG) {
      v->desc = p[1];
      p += 2;
    } else {
      amqp_val_t d;
      if (amqp_read(&p, end, &d, depth + 1))
        return -1;
      if (d.code == AMQP_T_SMALLULONG)
        v->desc = d.p[0];
      else if (d.code == AMQP_T_ULONG)
        v->desc = amqp_be64(d.p);
      else
        v->desc = UINT64_MAX; /* symbolic descriptor: none we know */
    }
    v->described = true;
    if (p >= end || *p == AMQP_T_DESCRIBED)
      return -1;
  }
  if (amqp_read_body(p, end, v, &p))
    return -1;
  v->total = (size_t)(p - v->start);
  *pp = p;
  return 0;
}

/* Any integer type (and timestamp) as int64; false for anything else. A ulong
 * above INT64_MAX comes out negative: callers that care check code. */
static inline bool amqp_val_int(const amqp_val_t *v, int64_t *out) {
  switch (v->code) {
  case AMQP_T_UINT0:
  case AMQP_T_ULONG0:
    *out = 0;
    return true;
  case AMQP_T_UBYTE:
  case AMQP_T_SMALLUINT:
  case AMQP_T_SMALLULONG:
    *out = v->p[0];
    return true;
  case AMQP_T_BYTE:
  case AMQP_T_SMALLINT:
  case AMQP_T_SMALLLONG:
    *out = (int8_t)v->p[0];
    return true;
  case AMQP_T_USHORT:
    *out = (uint16_t)(v->p[0] << 8 | v->p[1]);
    return true;
  case AMQP_T_SHORT:
    *out = (int16_t)(v->p[0] << 8 | v->p[1]);
    return true;
  case AMQP_T_UINT:
    *out = amqp_be32(v->p);
    return true;
  case AMQP_T_INT:
    *out = (int32_t)amqp_be32(v->p);
    return true;
  case AMQP_T_ULONG:
  case AMQP_T_LONG:
  case AMQP_T_TIMESTAMP:
    *out = (int64_t)amqp_be64(v->p);
    return true;
  default:
    return false;
  }
}

/* string or symbol */
static inline bool amqp_val_is_str(const amqp_val_t *v) {
  return v->code == AMQP_T_STR8 || v->code == AMQP_T_STR32 || v->code == AMQP_T_SYM8 ||
         v->code == AMQP_T_SYM32;
}
static inline bool amqp_val_is_sym(const amqp_val_t *v) {
  return v->code == AMQP_T_SYM8 || v->code == AMQP_T_SYM32;
}
static inline bool amqp_val_is_bin(const amqp_val_t *v) {
  return v->code == AMQP_T_VBIN8 || v->code == AMQP_T_VBIN32;
}
static inline bool amqp_val_is_null(const amqp_val_t *v) {
  return !v->described && v->code == AMQP_T_NULL;
}

/* The rest is not on a per-event path: plain functions (value.c). */

/* Reads the items of the list or map v (list0 included) into items[0..max):
 * returns how many it stored, or -1 when an item is malformed or v is not a
 * list or map. Every declared item is read (and so checked) even past max;
 * *count gets how many v declares. Items borrow from v's bytes. */
int amqp_items(const amqp_val_t *v, amqp_val_t *items, int max, uint32_t *count);

/* Whether v is a string or symbol whose bytes are s. */
bool amqp_val_str_eq(const amqp_val_t *v, const char *s);

/* Reads the value that fills the whole of [p, p + n): false when malformed or
 * when bytes follow it. */
bool amqp_read_exact(const uint8_t *p, size_t n, amqp_val_t *v);

/* Finds key (a string or symbol) among a map's items (as amqp_items read them)
 * and returns its value, or NULL. */
const amqp_val_t *amqp_map_get(const amqp_val_t *items, int n, const char *key);

#endif
