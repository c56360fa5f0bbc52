/* thrift: compact protocol coding. See thrift.h. */
#include "parquet/thrift.h"

#include <string.h>

#include "proto/parquet.h"

static void put(pq_tw_t *w, const void *p, size_t n) {
  if (ed_buf_append(w->b, p, n))
    w->oom = true;
}
static void putb(pq_tw_t *w, uint8_t c) { put(w, &c, 1); }
static void varint(pq_tw_t *w, uint64_t v) {
  uint8_t t[10];
  size_t n = 0;
  while (v >= 0x80) {
    t[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  t[n++] = (uint8_t)v;
  put(w, t, n);
}
/* Zigzag without shifting a negative value: the sign mask is 0 or all ones. */
static uint64_t zz(int64_t v) { return ((uint64_t)v << 1) ^ (v < 0 ? ~UINT64_C(0) : 0); }

void pq_tw_init(pq_tw_t *w, ed_buf_t *b) {
  memset(w, 0, sizeof *w);
  w->b = b;
}
static void header(pq_tw_t *w, int type, int id) {
  int d = id - w->last;
  if (d >= 1 && d <= 15)
    putb(w, (uint8_t)(d << 4 | type));
  else {
    putb(w, (uint8_t)type);
    varint(w, zz(id));
  }
  w->last = (int16_t)id;
}
void pq_tw_i32(pq_tw_t *w, int id, int32_t v) {
  header(w, PQ_TT_I32, id);
  varint(w, zz(v));
}
void pq_tw_i16(pq_tw_t *w, int id, int16_t v) {
  header(w, PQ_TT_I16, id);
  varint(w, zz(v));
}
void pq_tw_i64(pq_tw_t *w, int id, int64_t v) {
  header(w, PQ_TT_I64, id);
  varint(w, zz(v));
}
void pq_tw_bool(pq_tw_t *w, int id, bool v) { header(w, v ? PQ_TT_TRUE : PQ_TT_FALSE, id); }
void pq_tw_bin(pq_tw_t *w, int id, const void *p, size_t n) {
  header(w, PQ_TT_BINARY, id);
  varint(w, n);
  put(w, p, n);
}
void pq_tw_str(pq_tw_t *w, int id, const char *s) { pq_tw_bin(w, id, s, strlen(s)); }
static void push(pq_tw_t *w) {
  if (w->depth < PQ_THRIFT_MAX_DEPTH)
    w->stack[w->depth] = w->last;
  w->depth++;
  w->last = 0;
}
void pq_tw_begin(pq_tw_t *w) { push(w); }
void pq_tw_struct(pq_tw_t *w, int id) {
  header(w, PQ_TT_STRUCT, id);
  push(w);
}
void pq_tw_end(pq_tw_t *w) {
  putb(w, 0);
  w->depth--;
  w->last = (w->depth >= 0 && w->depth < PQ_THRIFT_MAX_DEPTH) ? w->stack[w->depth] : 0;
}
void pq_tw_list(pq_tw_t *w, int id, int elem_type, size_t n) {
  header(w, PQ_TT_LIST, id);
  if (n <= 14)
    putb(w, (uint8_t)(n << 4 | (size_t)elem_type));
  else {
    putb(w, (uint8_t)(0xF0 | elem_type));
    varint(w, n);
  }
}
void pq_tw_elem_i32(pq_tw_t *w, int32_t v) { varint(w, zz(v)); }
void pq_tw_elem_bin(pq_tw_t *w, const void *p, size_t n) {
  varint(w, n);
  put(w, p, n);
}
void pq_tw_elem_struct(pq_tw_t *w) { push(w); }

/* ---- decoding ---- */

void pq_tr_init(pq_tr_t *r, const void *p, size_t n) {
  r->p = p;
  r->end = r->p + n;
  r->err = NULL;
}
static bool fail(pq_tr_t *r, const char *m) {
  if (!r->err)
    r->err = m;
  return false;
}
/* False (and r->err set) on malformed or truncated input. */
static bool pq_tr_varint(pq_tr_t *r, uint64_t *v) {
  uint64_t x = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (r->p >= r->end)
      return fail(r, "truncated varint");
    uint8_t c = *r->p++;
    x |= (uint64_t)(c & 0x7F) << shift;
    if (!(c & 0x80)) {
      *v = x;
      return true;
    }
  }
  return fail(r, "varint longer than 10 bytes");
}
bool pq_tr_i64(pq_tr_t *r, int64_t *v) {
  uint64_t u;
  if (!pq_tr_varint(r, &u))
    return false;
  *v = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
  return true;
}
bool pq_tr_bin(pq_tr_t *r, const uint8_t **p, size_t *n) {
  uint64_t len;
  if (!pq_tr_varint(r, &len))
    return false;
  if (len > (uint64_t)(r->end - r->p))
    return fail(r, "binary length past the end");
  *p = r->p;
  *n = (size_t)len;
  r->p += len;
  return true;
}
bool pq_tr_field(pq_tr_t *r, int16_t *last, int *type, int16_t *id) {
  if (r->p >= r->end)
    return fail(r, "truncated struct (no stop byte)");
  uint8_t c = *r->p++;
  *type = c & 0x0F;
  if (*type == PQ_TT_STOP) {
    *id = 0;
    return true;
  }
  if (*type > PQ_TT_UUID)
    return fail(r, "unknown thrift field type");
  int d = c >> 4;
  if (d)
    *id = (int16_t)(*last + d);
  else {
    int64_t x;
    if (!pq_tr_i64(r, &x))
      return false;
    if (x < INT16_MIN || x > INT16_MAX)
      return fail(r, "field id out of range");
    *id = (int16_t)x;
  }
  *last = *id;
  return true;
}
bool pq_tr_list(pq_tr_t *r, int *elem_type, uint32_t *n) {
  if (r->p >= r->end)
    return fail(r, "truncated list header");
  uint8_t c = *r->p++;
  *elem_type = c & 0x0F;
  uint64_t sz = c >> 4;
  if (sz == 15 && !pq_tr_varint(r, &sz))
    return false;
  if (*elem_type == PQ_TT_STOP || *elem_type > PQ_TT_UUID)
    return fail(r, "unknown thrift list element type");
  /* Every element takes at least one byte: a larger count is a lie, and
   * checking here bounds any allocation the caller makes from it. */
  if (sz > (uint64_t)(r->end - r->p))
    return fail(r, "list size past the end");
  *n = (uint32_t)sz;
  return true;
}
bool pq_tr_int(pq_tr_t *r, int type, int64_t *v) {
  if (type == PQ_TT_I8) {
    if (r->p >= r->end)
      return fail(r, "truncated i8");
    *v = (int8_t)*r->p++;
    return true;
  }
  if (type != PQ_TT_I16 && type != PQ_TT_I32 && type != PQ_TT_I64)
    return fail(r, "expected an integer field");
  return pq_tr_i64(r, v);
}
bool pq_tr_skip(pq_tr_t *r, int type, int depth) {
  if (depth > PQ_THRIFT_MAX_DEPTH)
    return fail(r, "thrift nesting too deep");
  uint64_t u;
  const uint8_t *p;
  size_t n;
  switch (type) {
  case PQ_TT_TRUE:
  case PQ_TT_FALSE:
    return true; /* in a field header; list elements handled below */
  case PQ_TT_I8:
    if (r->p >= r->end)
      return fail(r, "truncated i8");
    r->p++;
    return true;
  case PQ_TT_I16:
  case PQ_TT_I32:
  case PQ_TT_I64:
    return pq_tr_varint(r, &u);
  case PQ_TT_DOUBLE:
    if (r->end - r->p < 8)
      return fail(r, "truncated double");
    r->p += 8;
    return true;
  case PQ_TT_UUID:
    if (r->end - r->p < 16)
      return fail(r, "truncated uuid");
    r->p += 16;
    return true;
  case PQ_TT_BINARY:
    return pq_tr_bin(r, &p, &n);
  case PQ_TT_LIST:
  case PQ_TT_SET: {
    int et;
    uint32_t cnt;
    if (!pq_tr_list(r, &et, &cnt))
      return false;
    for (uint32_t i = 0; i < cnt; i++) {
      if (et == PQ_TT_TRUE || et == PQ_TT_FALSE) {
        if (r->p >= r->end)
          return fail(r, "truncated bool");
        r->p++;
      } else if (!pq_tr_skip(r, et, depth + 1))
        return false;
    }
    return true;
  }
  case PQ_TT_MAP: {
    if (!pq_tr_varint(r, &u))
      return false;
    if (u == 0)
      return true;
    if (u > (uint64_t)(r->end - r->p))
      return fail(r, "map size past the end");
    if (r->p >= r->end)
      return fail(r, "truncated map");
    uint8_t kv = *r->p++;
    for (uint64_t i = 0; i < u; i++) {
      int kt = kv >> 4, vt = kv & 15;
      for (int j = 0; j < 2; j++) {
        int t = j ? vt : kt;
        if (t == PQ_TT_TRUE || t == PQ_TT_FALSE) {
          if (r->p >= r->end)
            return fail(r, "truncated bool");
          r->p++;
        } else if (!pq_tr_skip(r, t, depth + 1))
          return false;
      }
    }
    return true;
  }
  case PQ_TT_STRUCT: {
    int16_t last = 0, id;
    int t;
    for (;;) {
      if (!pq_tr_field(r, &last, &t, &id))
        return false;
      if (t == PQ_TT_STOP)
        return true;
      if (!pq_tr_skip(r, t, depth + 1))
        return false;
    }
  }
  default:
    return fail(r, "unknown thrift type");
  }
}
