/* amqp: in-place AMQP 1.0 message decoding and event encoding (see amqp.h).
 * Every read is bounds-checked against the end of the delivery: a malformed
 * frame from the peer is an ED_E_PARSE, never a read past the buffer. */
#include "eventhubs/amqp.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/time.h"
#include "proto/eventhubs.h"

/* AMQP 1.0 part 1 §1.6 type codes used here */
enum {
  T_DESCRIBED = 0x00,
  T_NULL = 0x40,
  T_TRUE = 0x41,
  T_FALSE = 0x42,
  T_UINT0 = 0x43,
  T_ULONG0 = 0x44,
  T_LIST0 = 0x45,
  T_UBYTE = 0x50,
  T_BYTE = 0x51,
  T_SMALLUINT = 0x52,
  T_SMALLULONG = 0x53,
  T_SMALLINT = 0x54,
  T_SMALLLONG = 0x55,
  T_BOOL = 0x56,
  T_USHORT = 0x60,
  T_SHORT = 0x61,
  T_UINT = 0x70,
  T_INT = 0x71,
  T_FLOAT = 0x72,
  T_CHAR = 0x73,
  T_DEC32 = 0x74,
  T_ULONG = 0x80,
  T_LONG = 0x81,
  T_DOUBLE = 0x82,
  T_TIMESTAMP = 0x83,
  T_DEC64 = 0x84,
  T_DEC128 = 0x94,
  T_UUID = 0x98,
  T_VBIN8 = 0xa0,
  T_STR8 = 0xa1,
  T_SYM8 = 0xa3,
  T_VBIN32 = 0xb0,
  T_STR32 = 0xb1,
  T_SYM32 = 0xb3,
  T_LIST8 = 0xc0,
  T_MAP8 = 0xc1,
  T_LIST32 = 0xd0,
  T_MAP32 = 0xd1,
  T_ARRAY8 = 0xe0,
  T_ARRAY32 = 0xf0,
};

/* message sections, part 3 §3.2 */
enum {
  S_HEADER = 0x70,
  S_DELIVERY_ANN = 0x71,
  S_MESSAGE_ANN = 0x72,
  S_PROPERTIES = 0x73,
  S_APP_PROPS = 0x74,
  S_DATA = 0x75,
  S_SEQUENCE = 0x76,
  S_VALUE = 0x77,
  S_FOOTER = 0x78,
};

typedef struct val {
  uint8_t code; /* constructor of the value itself (after any descriptor) */
  bool described;
  uint64_t desc;        /* numeric descriptor, when described by a ulong */
  const uint8_t *p;     /* payload: fixed-width bytes, string bytes, or compound items */
  size_t n;             /* payload length */
  uint32_t count;       /* items of a list/map/array */
  const uint8_t *start; /* first byte of the whole encoding (descriptor included) */
  size_t total;
} val_t;

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint64_t be64(const uint8_t *p) { return (uint64_t)be32(p) << 32 | be32(p + 4); }

/* How a constructor's payload is laid out: a fixed width (0..16 bytes), a
 * length-prefixed run (variable), or a size+count-prefixed compound. */
enum { L_BAD = 0xff, L_VAR8 = 0x20, L_VAR32, L_COMP8, L_COMP32 };
/* 0x40..0x9f: the fixed widths by the top nibble, where a type exists */
static uint8_t layout_of(uint8_t code) {
  switch (code) {
  case T_VBIN8:
  case T_STR8:
  case T_SYM8:
    return L_VAR8;
  case T_VBIN32:
  case T_STR32:
  case T_SYM32:
    return L_VAR32;
  case T_LIST8:
  case T_MAP8:
  case T_ARRAY8:
    return L_COMP8;
  case T_LIST32:
  case T_MAP32:
  case T_ARRAY32:
    return L_COMP32;
  default:
    break;
  }
  static const uint8_t width[16] = {L_BAD, L_BAD, L_BAD, L_BAD, 0,     1,     2,     4,
                                    8,     16,    L_BAD, L_BAD, L_BAD, L_BAD, L_BAD, L_BAD};
  return width[code >> 4];
}

/* Reads the value at p (< end) from its constructor on (no descriptor); *out
 * is where the next value starts. Returns 0, or -1 when malformed. */
static inline int val_body(const uint8_t *p, const uint8_t *end, val_t *v, const uint8_t **out) {
  uint8_t code = *p++, lay = layout_of(code);
  size_t left = (size_t)(end - p), len;
  v->code = code;
  v->count = 0;
  switch (lay) {
  case L_VAR8:
    if (left < 1 || left - 1 < p[0])
      return -1;
    v->p = p + 1;
    v->n = p[0];
    break;
  case L_VAR32:
    if (left < 4 || left - 4 < (len = be32(p)))
      return -1;
    v->p = p + 4;
    v->n = len;
    break;
  case L_COMP8:
    if (left < 2 || (len = p[0]) < 1 || left - 1 < len)
      return -1;
    v->count = p[1];
    v->p = p + 2;
    v->n = len - 1;
    break;
  case L_COMP32:
    if (left < 8 || (len = be32(p)) < 4 || left - 4 < len)
      return -1;
    v->count = be32(p + 4);
    v->p = p + 8;
    v->n = len - 4;
    break;
  case L_BAD:
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

/* Reads one value at *pp (< end). Returns 0, or -1 when malformed. */
static int val_read(const uint8_t **pp, const uint8_t *end, val_t *v, int depth) {
  const uint8_t *p = *pp;
  if (p >= end || depth > 32)
    return -1;
  v->start = p;
  v->described = false;
  v->desc = 0;
  if (*p == T_DESCRIBED) {
    p++;
    /* the descriptor every section carries, 0x53 code, read without recursion */
    if (end - p >= 2 && p[0] == T_SMALLULONG) {
      v->desc = p[1];
      p += 2;
    } else {
      val_t d;
      if (val_read(&p, end, &d, depth + 1))
        return -1;
      if (d.code == T_SMALLULONG)
        v->desc = d.p[0];
      else if (d.code == T_ULONG)
        v->desc = be64(d.p);
      else
        v->desc = UINT64_MAX; /* symbolic descriptor: not a section we know */
    }
    v->described = true;
    if (p >= end || *p == T_DESCRIBED)
      return -1;
  }
  if (val_body(p, end, v, &p))
    return -1;
  v->total = (size_t)(p - v->start);
  *pp = p;
  return 0;
}

static bool val_int(const val_t *v, int64_t *out) {
  switch (v->code) {
  case T_UINT0:
  case T_ULONG0:
    *out = 0;
    return true;
  case T_UBYTE:
  case T_SMALLUINT:
  case T_SMALLULONG:
    *out = v->p[0];
    return true;
  case T_BYTE:
  case T_SMALLINT:
  case T_SMALLLONG:
    *out = (int8_t)v->p[0];
    return true;
  case T_USHORT:
    *out = (uint16_t)(v->p[0] << 8 | v->p[1]);
    return true;
  case T_SHORT:
    *out = (int16_t)(v->p[0] << 8 | v->p[1]);
    return true;
  case T_UINT:
    *out = be32(v->p);
    return true;
  case T_INT:
    *out = (int32_t)be32(v->p);
    return true;
  case T_ULONG:
  case T_LONG:
  case T_TIMESTAMP:
    *out = (int64_t)be64(v->p);
    return true;
  default:
    return false;
  }
}

static bool val_is_str(const val_t *v) {
  return v->code == T_STR8 || v->code == T_STR32 || v->code == T_SYM8 || v->code == T_SYM32;
}

/* Parses a decimal int64 from bytes (the offset annotation is a string). */
static bool parse_i64(const uint8_t *p, size_t n, int64_t *out) {
  if (n == 0 || n > 20)
    return false;
  bool neg = p[0] == '-';
  size_t i = neg ? 1 : 0;
  if (i == n)
    return false;
  /* up to 18 digits cannot overflow: no check per digit then */
  bool may_overflow = n - i > 18;
  int64_t v = 0;
  for (; i < n; i++) {
    unsigned d = (unsigned)p[i] - '0';
    if (d > 9)
      return false;
    if (may_overflow && v > (INT64_MAX - (int64_t)d) / 10)
      return false;
    v = v * 10 + (int64_t)d;
  }
  *out = neg ? -v : v;
  return true;
}

static ed_code_t bad(ed_err_t *err, const uint8_t *base, const uint8_t *at, const char *what) {
  return ed_err_set(err, ED_E_PARSE, "AMQP message: %s at byte %zu", what, (size_t)(at - base));
}

enum { K_OTHER, K_SEQ, K_OFFSET, K_ENQUEUED, K_PKEY, K_PUBLISHER };

/* Which annotation the key bytes name: one length switch and one compare. */
static int ann_key(const uint8_t *k, size_t n) {
#define KEY_IS(lit) (n == sizeof lit - 1 && memcmp(k, lit, sizeof lit - 1) == 0)
  switch (n) {
  case sizeof EHP_ANN_SEQUENCE - 1:
    return KEY_IS(EHP_ANN_SEQUENCE) ? K_SEQ : K_OTHER;
  case sizeof EHP_ANN_OFFSET - 1:
    return KEY_IS(EHP_ANN_OFFSET) ? K_OFFSET : K_OTHER;
  case sizeof EHP_ANN_ENQUEUED - 1: /* the partition key has the same length */
    return KEY_IS(EHP_ANN_ENQUEUED) ? K_ENQUEUED : KEY_IS(EHP_ANN_PARTITION_KEY) ? K_PKEY : K_OTHER;
  case sizeof EHP_ANN_PUBLISHER - 1:
    return KEY_IS(EHP_ANN_PUBLISHER) ? K_PUBLISHER : K_OTHER;
  default:
    return K_OTHER;
  }
#undef KEY_IS
}

/* The general path for one annotation value: any encoding val_read takes. */
static void ann_value(int key, const val_t *v, eh_amqp_msg_t *m) {
  switch (key) {
  case K_SEQ:
    m->has_seq = val_int(v, &m->seq);
    break;
  case K_OFFSET:
    /* a string on the wire (§6.6); tolerate an integer too */
    m->has_offset = val_is_str(v) ? parse_i64(v->p, v->n, &m->offset) : val_int(v, &m->offset);
    break;
  case K_ENQUEUED:
    m->has_enqueued = val_int(v, &m->enqueued_ms);
    break;
  case K_PKEY:
    if (val_is_str(v)) {
      m->partition_key = (const char *)v->p;
      m->partition_key_len = v->n;
    }
    break;
  case K_PUBLISHER:
    if (val_is_str(v)) {
      m->publisher = (const char *)v->p;
      m->publisher_len = v->n;
    }
    break;
  default:
    break;
  }
}

/* The message-annotations map. What the service sends (sym8 keys; long,
 * timestamp, str8 and str32 values) is read inline; anything else, and every value
 * of a key we do not use, goes through val_read, which also checks it. With
 * fast false everything does (the reference the fast path must agree with). */
static ed_code_t decode_annotations(const uint8_t *base, const val_t *map, eh_amqp_msg_t *m,
                                    bool fast, ed_err_t *err) {
  const uint8_t *p = map->p, *end = map->p + map->n;
  for (uint32_t i = 0; i + 1 < map->count; i += 2) {
    int key = K_OTHER;
    if (fast && end - p >= 2 && p[0] == T_SYM8 && (size_t)(end - p - 2) >= p[1]) {
      key = ann_key(p + 2, p[1]);
      p += 2 + p[1];
    } else {
      val_t k;
      if (val_read(&p, end, &k, 1))
        return bad(err, base, p, "truncated message-annotations map");
      if (val_is_str(&k))
        key = ann_key(k.p, k.n);
    }
    if (fast && p < end) {
      if ((key == K_SEQ || key == K_ENQUEUED) && (p[0] == T_LONG || p[0] == T_TIMESTAMP) &&
          end - p >= 9) {
        int64_t x = (int64_t)be64(p + 1);
        if (key == K_SEQ)
          m->has_seq = true, m->seq = x;
        else
          m->has_enqueued = true, m->enqueued_ms = x;
        p += 9;
        continue;
      }
      size_t n, hdr = p[0] == T_STR8 ? 2 : 5;
      if ((p[0] == T_STR8 || p[0] == T_STR32) && (key == K_OFFSET || key == K_PKEY) &&
          (size_t)(end - p) >= hdr &&
          (size_t)(end - p) - hdr >= (n = hdr == 2 ? p[1] : be32(p + 1))) {
        const uint8_t *s = p + hdr;
        if (key == K_OFFSET) {
          m->has_offset = parse_i64(s, n, &m->offset);
        } else {
          m->partition_key = (const char *)s;
          m->partition_key_len = n;
        }
        p = s + n;
        continue;
      }
    }
    val_t v;
    if (val_read(&p, end, &v, 1))
      return bad(err, base, p, "truncated message-annotations map");
    ann_value(key, &v, m);
  }
  return ED_OK;
}

static ed_code_t decode(const uint8_t *buf, size_t n, eh_amqp_msg_t *m, bool fast, ed_err_t *err) {
  /* field by field: a memset of the struct compiles to rep stos, whose
   * start-up cost was half of this function's time */
  m->body_kind = EH_BODY_NONE;
  m->body = m->body_sections = m->app_props = NULL;
  m->body_len = m->body_sections_len = m->app_props_len = 0;
  m->ndata = 0;
  m->has_seq = m->has_offset = m->has_enqueued = false;
  m->seq = m->offset = m->enqueued_ms = 0;
  m->partition_key = m->publisher = m->content_type = NULL;
  m->partition_key_len = m->publisher_len = m->content_type_len = 0;
  const uint8_t *p = buf, *end = buf + n;
  while (p < end) {
    val_t s;
    const uint8_t *at = p;
    if (fast && end - p >= 4 && p[0] == T_DESCRIBED && p[1] == T_SMALLULONG &&
        p[3] != T_DESCRIBED) {
      /* what every section starts with: 0x00 0x53 code, then the value */
      s.start = at;
      s.described = true;
      s.desc = p[2];
      if (val_body(p + 3, end, &s, &p))
        return bad(err, buf, at, "malformed section");
      s.total = (size_t)(p - at);
    } else if (val_read(&p, end, &s, 0)) {
      return bad(err, buf, at, "malformed section");
    }
    if (!s.described)
      return bad(err, buf, at, "expected a described section");
    switch (s.desc) {
    case S_HEADER:
    case S_DELIVERY_ANN:
    case S_FOOTER:
      break;
    case S_MESSAGE_ANN:
      if (s.code != T_MAP8 && s.code != T_MAP32)
        return bad(err, buf, at, "message-annotations is not a map");
      if (decode_annotations(buf, &s, m, fast, err))
        return err ? err->code : ED_E_PARSE;
      break;
    case S_PROPERTIES: {
      if (s.code == T_LIST0)
        break;
      if (s.code != T_LIST8 && s.code != T_LIST32)
        return bad(err, buf, at, "properties is not a list");
      const uint8_t *q = s.p, *qe = s.p + s.n;
      for (uint32_t i = 0; i < s.count && i < 7; i++) {
        val_t f;
        if (val_read(&q, qe, &f, 1))
          return bad(err, buf, q, "truncated properties list");
        if (i == 6 && val_is_str(&f)) {
          m->content_type = (const char *)f.p;
          m->content_type_len = f.n;
        }
      }
      break;
    }
    case S_APP_PROPS:
      if (s.code != T_MAP8 && s.code != T_MAP32)
        return bad(err, buf, at, "application-properties is not a map");
      m->app_props = s.start;
      m->app_props_len = s.total;
      break;
    case S_DATA:
      if (s.code != T_VBIN8 && s.code != T_VBIN32)
        return bad(err, buf, at, "data section is not binary");
      if (!m->body_sections)
        m->body_sections = at;
      m->body_sections_len = (size_t)(p - m->body_sections);
      if (m->ndata++ == 0) {
        m->body_kind = EH_BODY_DATA;
        m->body = s.p;
        m->body_len = s.n;
      }
      break;
    case S_VALUE:
      m->body_sections = at;
      m->body_sections_len = s.total;
      if (val_is_str(&s) && (s.code == T_STR8 || s.code == T_STR32)) {
        m->body_kind = EH_BODY_STRING;
        m->body = s.p;
        m->body_len = s.n;
      } else if (s.code == T_VBIN8 || s.code == T_VBIN32) {
        m->body_kind = EH_BODY_BINARY;
        m->body = s.p;
        m->body_len = s.n;
      } else {
        m->body_kind = EH_BODY_OTHER;
        m->body = at;
        m->body_len = s.total;
      }
      break;
    case S_SEQUENCE:
      if (!m->body_sections)
        m->body_sections = at;
      m->body_sections_len = (size_t)(p - m->body_sections);
      m->body_kind = EH_BODY_OTHER;
      m->body = m->body_sections;
      m->body_len = m->body_sections_len;
      break;
    default:
      return bad(err, buf, at, "unknown section descriptor");
    }
  }
  return ED_OK;
}

ed_code_t eh_amqp_decode(const uint8_t *buf, size_t n, eh_amqp_msg_t *m, ed_err_t *err) {
  return decode(buf, n, m, true, err);
}

ed_code_t eh_amqp_decode_general(const uint8_t *buf, size_t n, eh_amqp_msg_t *m, ed_err_t *err) {
  return decode(buf, n, m, false, err);
}

ed_code_t eh_amqp_data_concat(const uint8_t *sections, size_t n, ed_buf_t *out) {
  const uint8_t *p = sections, *end = sections + n;
  while (p < end) {
    val_t s;
    if (val_read(&p, end, &s, 0))
      return ED_E_PARSE;
    if (s.described && s.desc == S_DATA && ed_buf_append(out, s.p, s.n))
      return ED_E_NOMEM;
  }
  return ED_OK;
}

static ed_code_t render_other(const val_t *v, ed_buf_t *a) {
  static const char hex[] = "0123456789abcdef";
  switch (v->code) {
  case T_VBIN8:
  case T_VBIN32:
    /* binary as hex: readable, unambiguous, JSON-safe */
    for (size_t i = 0; i < v->n; i++)
      if (ed_buf_putc(a, hex[v->p[i] >> 4]) || ed_buf_putc(a, hex[v->p[i] & 15]))
        return ED_E_NOMEM;
    return ED_OK;
  case T_UUID: {
    for (int i = 0; i < 16; i++) {
      if ((i == 4 || i == 6 || i == 8 || i == 10) && ed_buf_putc(a, '-'))
        return ED_E_NOMEM;
      if (ed_buf_putc(a, hex[v->p[i] >> 4]) || ed_buf_putc(a, hex[v->p[i] & 15]))
        return ED_E_NOMEM;
    }
    return ED_OK;
  }
  case T_CHAR: {
    uint32_t c = be32(v->p);
    return ed_buf_printf(a, "U+%04" PRIX32, c);
  }
  default:
    return ed_buf_printf(a, "<%s%s of %" PRIu32 " items>", v->described ? "described " : "",
                         (v->code & 0x0f) == 0x1 ? "map" : (v->code >= T_ARRAY8 ? "array" : "list"),
                         v->count);
  }
}

ed_code_t eh_amqp_props(const uint8_t *map, size_t n, ed_buf_t *arena, eh_amqp_prop_t **props,
                        size_t *cap, size_t *nprops, ed_err_t *err) {
  const uint8_t *p = map, *end = map + n;
  val_t mv;
  if (val_read(&p, end, &mv, 0) || (mv.code != T_MAP8 && mv.code != T_MAP32))
    return ed_err_set(err, ED_E_PARSE, "AMQP message: application-properties is not a map");
  p = mv.p;
  end = mv.p + mv.n;
  for (uint32_t i = 0; i + 1 < mv.count; i += 2) {
    val_t k, v;
    if (val_read(&p, end, &k, 1) || val_read(&p, end, &v, 1))
      return ed_err_set(err, ED_E_PARSE, "AMQP message: truncated application-properties");
    if (!val_is_str(&k))
      continue; /* keys are strings by the spec; skip anything else */
    if (*nprops == *cap) {
      size_t nc = *cap ? *cap * 2 : 16;
      eh_amqp_prop_t *np = realloc(*props, nc * sizeof *np);
      if (!np)
        return ED_E_NOMEM;
      *props = np;
      *cap = nc;
    }
    eh_amqp_prop_t *o = &(*props)[(*nprops)++];
    o->key = (const char *)k.p;
    o->key_len = k.n;
    o->text_in_arena = true;
    o->text_wire = NULL;
    o->text_off = arena->len;
    int64_t iv;
    ed_code_t rc = ED_OK;
    if (v.described) {
      o->kind = EH_VAL_OTHER;
      rc = render_other(&v, arena);
    } else if (val_is_str(&v)) {
      o->kind = EH_VAL_STRING;
      o->text_in_arena = false;
      o->text_wire = (const char *)v.p;
      o->text_len = v.n;
      continue;
    } else if (v.code == T_NULL) {
      o->kind = EH_VAL_NULL;
      rc = ed_buf_puts(arena, "null");
    } else if (v.code == T_TRUE || v.code == T_FALSE || v.code == T_BOOL) {
      bool b = v.code == T_TRUE || (v.code == T_BOOL && v.p[0]);
      o->kind = EH_VAL_BOOL;
      rc = ed_buf_puts(arena, b ? "true" : "false");
    } else if (v.code == T_TIMESTAMP) {
      char iso[ED_TIME_ISO_MAX];
      o->kind = EH_VAL_TIMESTAMP;
      ed_time_format_iso((int64_t)be64(v.p) * 1000, 3, iso);
      rc = ed_buf_puts(arena, iso);
    } else if (v.code == T_ULONG) {
      o->kind = EH_VAL_INT;
      rc = ed_buf_printf(arena, "%" PRIu64, be64(v.p));
    } else if (val_int(&v, &iv)) {
      o->kind = EH_VAL_INT;
      rc = ed_buf_printf(arena, "%" PRId64, iv);
    } else if (v.code == T_DOUBLE || v.code == T_FLOAT) {
      double d;
      if (v.code == T_DOUBLE) {
        uint64_t u = be64(v.p);
        memcpy(&d, &u, sizeof d);
      } else {
        uint32_t u = be32(v.p);
        float f;
        memcpy(&f, &u, sizeof f);
        d = f;
      }
      o->kind = EH_VAL_DOUBLE;
      rc = ed_buf_printf(arena, "%.17g", d);
    } else {
      o->kind = EH_VAL_OTHER;
      rc = render_other(&v, arena);
    }
    if (rc)
      return rc;
    o->text_len = arena->len - o->text_off;
  }
  return ED_OK;
}

/* ---- encoding ---- */

static ed_code_t put_u8(ed_buf_t *b, uint8_t v) { return ed_buf_putc(b, (char)v); }
static ed_code_t put_u32(ed_buf_t *b, uint32_t v) {
  uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
  return ed_buf_append(b, x, 4);
}
static ed_code_t put_section(ed_buf_t *b, uint8_t code) {
  uint8_t x[3] = {T_DESCRIBED, T_SMALLULONG, code};
  return ed_buf_append(b, x, 3);
}
/* str8/sym8 when short, else str32/sym32 */
static ed_code_t put_str(ed_buf_t *b, const char *s, size_t n, bool sym) {
  ed_code_t rc;
  if (n < 256)
    rc = put_u8(b, sym ? T_SYM8 : T_STR8) || put_u8(b, (uint8_t)n) ? ED_E_NOMEM : ED_OK;
  else
    rc = put_u8(b, sym ? T_SYM32 : T_STR32) || put_u32(b, (uint32_t)n) ? ED_E_NOMEM : ED_OK;
  return rc ? rc : ed_buf_append(b, s, n);
}
/* A map32 whose size and count are patched once its items are written. */
static size_t map_open(ed_buf_t *b) {
  size_t at = b->len;
  put_u8(b, T_MAP32);
  put_u32(b, 0);
  put_u32(b, 0);
  return at;
}
static void map_close(ed_buf_t *b, size_t at, uint32_t items) {
  uint32_t size = (uint32_t)(b->len - at - 5);
  uint8_t *p = (uint8_t *)b->data + at + 1;
  p[0] = (uint8_t)(size >> 24), p[1] = (uint8_t)(size >> 16), p[2] = (uint8_t)(size >> 8),
  p[3] = (uint8_t)size;
  p[4] = (uint8_t)(items >> 24), p[5] = (uint8_t)(items >> 16), p[6] = (uint8_t)(items >> 8),
  p[7] = (uint8_t)items;
}

ed_code_t eh_amqp_encode_event(const eh_send_event_t *ev, ed_buf_t *out) {
  /* reserve everything up front so the appends below cannot fail half-way */
  size_t need = ev->body_len + 64;
  if (ev->partition_key)
    need += strlen(ev->partition_key) + 40;
  if (ev->content_type)
    need += strlen(ev->content_type) + 20;
  for (size_t i = 0; i < ev->nprops; i++)
    need += strlen(ev->prop_keys[i]) + strlen(ev->prop_values[i]) + 10;
  if (ed_buf_reserve(out, need))
    return ED_E_NOMEM;
  size_t start = out->len;
  if (ev->partition_key) {
    put_section(out, S_MESSAGE_ANN);
    size_t at = map_open(out);
    put_str(out, EHP_ANN_PARTITION_KEY, strlen(EHP_ANN_PARTITION_KEY), true);
    put_str(out, ev->partition_key, strlen(ev->partition_key), false);
    map_close(out, at, 2);
  }
  if (ev->content_type) {
    /* properties list: message-id .. content-type is the 7th field */
    put_section(out, S_PROPERTIES);
    size_t n = strlen(ev->content_type);
    uint32_t size = 4 + 6 + (n < 256 ? 2 : 5) + (uint32_t)n;
    put_u8(out, T_LIST32);
    put_u32(out, size);
    put_u32(out, 7);
    for (int i = 0; i < 6; i++)
      put_u8(out, T_NULL);
    put_str(out, ev->content_type, n, true);
  }
  if (ev->nprops) {
    put_section(out, S_APP_PROPS);
    size_t at = map_open(out);
    for (size_t i = 0; i < ev->nprops; i++) {
      put_str(out, ev->prop_keys[i], strlen(ev->prop_keys[i]), false);
      put_str(out, ev->prop_values[i], strlen(ev->prop_values[i]), false);
    }
    map_close(out, at, (uint32_t)(2 * ev->nprops));
  }
  put_section(out, S_DATA);
  if (ev->body_len < 256) {
    put_u8(out, T_VBIN8);
    put_u8(out, (uint8_t)ev->body_len);
  } else {
    put_u8(out, T_VBIN32);
    put_u32(out, (uint32_t)ev->body_len);
  }
  if (ed_buf_append(out, ev->body, ev->body_len)) {
    out->len = start;
    return ED_E_NOMEM;
  }
  return ED_OK;
}

/* Reads the section descriptor (smallulong or ulong) and the code of the
 * value that follows it, for eh_body_what. */
static bool section_codes(const uint8_t *b, size_t n, uint8_t *desc, uint8_t *code) {
  if (n >= 4 && b[0] == T_DESCRIBED && b[1] == 0x53) /* smallulong */
    return *desc = b[2], *code = b[3], true;
  if (n >= 11 && b[0] == T_DESCRIBED && b[1] == 0x80) /* ulong, big-endian */
    return *desc = b[9], *code = b[10], true;
  return false;
}

const char *eh_body_what(eh_body_kind_t kind, const void *body, size_t len) {
  if (kind == EH_BODY_NONE)
    return "no body section";
  if (kind != EH_BODY_OTHER)
    return NULL;
  uint8_t desc, code;
  if (!section_codes(body, len, &desc, &code))
    return "an AMQP message that does not decode";
  if (desc == S_SEQUENCE)
    return "an AMQP sequence";
  if (desc != S_VALUE)
    return "an AMQP message that does not decode";
  switch (code) {
  case T_MAP8:
  case T_MAP32:
    return "an AMQP map";
  case T_LIST0:
  case T_LIST8:
  case T_LIST32:
    return "an AMQP list";
  case T_ARRAY8:
  case T_ARRAY32:
    return "an AMQP array";
  case T_NULL:
    return "an AMQP null";
  case T_SYM8:
  case T_SYM32:
    return "an AMQP symbol";
  default:
    return "an AMQP value other than a string or binary";
  }
}
