/* amqp: in-place AMQP 1.0 message decoding and event encoding (see amqp.h).
 * Every read is bounds-checked against the end of the delivery: a malformed
 * frame from the peer is an ED_E_PARSE, never a read past the buffer. */
#include "eventhubs/amqp.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amqp/value.h"
#include "amqp/write.h"
#include "common/time.h"
#include "proto/eventhubs.h"

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

/* The general path for one annotation value: any encoding amqp_read takes. */
static void ann_value(int key, const amqp_val_t *v, eh_amqp_msg_t *m) {
  switch (key) {
  case K_SEQ:
    m->has_seq = amqp_val_int(v, &m->seq);
    break;
  case K_OFFSET:
    /* a string on the wire (§6.6); tolerate an integer too */
    m->has_offset =
        amqp_val_is_str(v) ? parse_i64(v->p, v->n, &m->offset) : amqp_val_int(v, &m->offset);
    break;
  case K_ENQUEUED:
    m->has_enqueued = amqp_val_int(v, &m->enqueued_ms);
    break;
  case K_PKEY:
    if (amqp_val_is_str(v)) {
      m->partition_key = (const char *)v->p;
      m->partition_key_len = v->n;
    }
    break;
  case K_PUBLISHER:
    if (amqp_val_is_str(v)) {
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
 * of a key we do not use, goes through amqp_read, which also checks it. With
 * fast false everything does (the reference the fast path must agree with). */
static ed_code_t decode_annotations(const uint8_t *base, const amqp_val_t *map, eh_amqp_msg_t *m,
                                    bool fast, ed_err_t *err) {
  const uint8_t *p = map->p, *end = map->p + map->n;
  for (uint32_t i = 0; i + 1 < map->count; i += 2) {
    int key = K_OTHER;
    if (fast && end - p >= 2 && p[0] == AMQP_T_SYM8 && (size_t)(end - p - 2) >= p[1]) {
      key = ann_key(p + 2, p[1]);
      p += 2 + p[1];
    } else {
      amqp_val_t k;
      if (amqp_read(&p, end, &k, 1))
        return bad(err, base, p, "truncated message-annotations map");
      if (amqp_val_is_str(&k))
        key = ann_key(k.p, k.n);
    }
    if (fast && p < end) {
      if ((key == K_SEQ || key == K_ENQUEUED) &&
          (p[0] == AMQP_T_LONG || p[0] == AMQP_T_TIMESTAMP) && end - p >= 9) {
        int64_t x = (int64_t)amqp_be64(p + 1);
        if (key == K_SEQ)
          m->has_seq = true, m->seq = x;
        else
          m->has_enqueued = true, m->enqueued_ms = x;
        p += 9;
        continue;
      }
      size_t n, hdr = p[0] == AMQP_T_STR8 ? 2 : 5;
      if ((p[0] == AMQP_T_STR8 || p[0] == AMQP_T_STR32) && (key == K_OFFSET || key == K_PKEY) &&
          (size_t)(end - p) >= hdr &&
          (size_t)(end - p) - hdr >= (n = hdr == 2 ? p[1] : amqp_be32(p + 1))) {
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
    amqp_val_t v;
    if (amqp_read(&p, end, &v, 1))
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
    amqp_val_t s;
    const uint8_t *at = p;
    if (fast && end - p >= 4 && p[0] == AMQP_T_DESCRIBED && p[1] == AMQP_T_SMALLULONG &&
        p[3] != AMQP_T_DESCRIBED) {
      /* what every section starts with: 0x00 0x53 code, then the value */
      s.start = at;
      s.described = true;
      s.desc = p[2];
      if (amqp_read_body(p + 3, end, &s, &p))
        return bad(err, buf, at, "malformed section");
      s.total = (size_t)(p - at);
    } else if (amqp_read(&p, end, &s, 0)) {
      return bad(err, buf, at, "malformed section");
    }
    if (!s.described)
      return bad(err, buf, at, "expected a described section");
    switch (s.desc) {
    case AMQP_S_HEADER:
    case AMQP_S_DELIVERY_ANN:
    case AMQP_S_FOOTER:
      break;
    case AMQP_S_MESSAGE_ANN:
      if (s.code != AMQP_T_MAP8 && s.code != AMQP_T_MAP32)
        return bad(err, buf, at, "message-annotations is not a map");
      if (decode_annotations(buf, &s, m, fast, err))
        return err ? err->code : ED_E_PARSE;
      break;
    case AMQP_S_PROPERTIES: {
      if (s.code == AMQP_T_LIST0)
        break;
      if (s.code != AMQP_T_LIST8 && s.code != AMQP_T_LIST32)
        return bad(err, buf, at, "properties is not a list");
      const uint8_t *q = s.p, *qe = s.p + s.n;
      for (uint32_t i = 0; i < s.count && i < 7; i++) {
        amqp_val_t f;
        if (amqp_read(&q, qe, &f, 1))
          return bad(err, buf, q, "truncated properties list");
        if (i == 6 && amqp_val_is_str(&f)) {
          m->content_type = (const char *)f.p;
          m->content_type_len = f.n;
        }
      }
      break;
    }
    case AMQP_S_APP_PROPS:
      if (s.code != AMQP_T_MAP8 && s.code != AMQP_T_MAP32)
        return bad(err, buf, at, "application-properties is not a map");
      m->app_props = s.start;
      m->app_props_len = s.total;
      break;
    case AMQP_S_DATA:
      if (s.code != AMQP_T_VBIN8 && s.code != AMQP_T_VBIN32)
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
    case AMQP_S_VALUE:
      m->body_sections = at;
      m->body_sections_len = s.total;
      if (amqp_val_is_str(&s) && (s.code == AMQP_T_STR8 || s.code == AMQP_T_STR32)) {
        m->body_kind = EH_BODY_STRING;
        m->body = s.p;
        m->body_len = s.n;
      } else if (s.code == AMQP_T_VBIN8 || s.code == AMQP_T_VBIN32) {
        m->body_kind = EH_BODY_BINARY;
        m->body = s.p;
        m->body_len = s.n;
      } else {
        m->body_kind = EH_BODY_OTHER;
        m->body = at;
        m->body_len = s.total;
      }
      break;
    case AMQP_S_SEQUENCE:
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
    amqp_val_t s;
    if (amqp_read(&p, end, &s, 0))
      return ED_E_PARSE;
    if (s.described && s.desc == AMQP_S_DATA && ed_buf_append(out, s.p, s.n))
      return ED_E_NOMEM;
  }
  return ED_OK;
}

/* Whether a timestamp (ms since the epoch) is within years 0000..9999. */
static bool ts_in_range(int64_t ms) {
  return ms >= INT64_C(-62167219200000) && ms <= INT64_C(253402300799999);
}

static ed_code_t render_other(const amqp_val_t *v, ed_buf_t *a) {
  static const char hex[] = "0123456789abcdef";
  switch (v->code) {
  case AMQP_T_VBIN8:
  case AMQP_T_VBIN32:
    /* binary as hex: readable, unambiguous, JSON-safe */
    for (size_t i = 0; i < v->n; i++)
      if (ed_buf_putc(a, hex[v->p[i] >> 4]) || ed_buf_putc(a, hex[v->p[i] & 15]))
        return ED_E_NOMEM;
    return ED_OK;
  case AMQP_T_UUID: {
    for (int i = 0; i < 16; i++) {
      if ((i == 4 || i == 6 || i == 8 || i == 10) && ed_buf_putc(a, '-'))
        return ED_E_NOMEM;
      if (ed_buf_putc(a, hex[v->p[i] >> 4]) || ed_buf_putc(a, hex[v->p[i] & 15]))
        return ED_E_NOMEM;
    }
    return ED_OK;
  }
  case AMQP_T_CHAR: {
    uint32_t c = amqp_be32(v->p);
    return ed_buf_printf(a, "U+%04" PRIX32, c);
  }
  default:
    return ed_buf_printf(a, "<%s%s of %" PRIu32 " items>", v->described ? "described " : "",
                         v->code == AMQP_T_MAP8 || v->code == AMQP_T_MAP32
                             ? "map"
                             : (v->code >= AMQP_T_ARRAY8 ? "array" : "list"),
                         v->count);
  }
}

ed_code_t eh_amqp_props(const uint8_t *map, size_t n, ed_buf_t *arena, eh_amqp_prop_t **props,
                        size_t *cap, size_t *nprops, ed_err_t *err) {
  const uint8_t *p = map, *end = map + n;
  amqp_val_t mv;
  if (amqp_read(&p, end, &mv, 0) || (mv.code != AMQP_T_MAP8 && mv.code != AMQP_T_MAP32))
    return ed_err_set(err, ED_E_PARSE, "AMQP message: application-properties is not a map");
  p = mv.p;
  end = mv.p + mv.n;
  for (uint32_t i = 0; i + 1 < mv.count; i += 2) {
    amqp_val_t k, v;
    if (amqp_read(&p, end, &k, 1) || amqp_read(&p, end, &v, 1))
      return ed_err_set(err, ED_E_PARSE, "AMQP message: truncated application-properties");
    if (!amqp_val_is_str(&k))
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
    } else if (amqp_val_is_str(&v)) {
      o->kind = EH_VAL_STRING;
      o->text_in_arena = false;
      o->text_wire = (const char *)v.p;
      o->text_len = v.n;
      continue;
    } else if (v.code == AMQP_T_NULL) {
      o->kind = EH_VAL_NULL;
      rc = ed_buf_puts(arena, "null");
    } else if (v.code == AMQP_T_TRUE || v.code == AMQP_T_FALSE || v.code == AMQP_T_BOOL) {
      bool b = v.code == AMQP_T_TRUE || (v.code == AMQP_T_BOOL && v.p[0]);
      o->kind = EH_VAL_BOOL;
      rc = ed_buf_puts(arena, b ? "true" : "false");
    } else if (v.code == AMQP_T_TIMESTAMP && ts_in_range((int64_t)amqp_be64(v.p))) {
      char iso[ED_TIME_ISO_MAX];
      o->kind = EH_VAL_TIMESTAMP;
      ed_time_format_iso((int64_t)amqp_be64(v.p) * 1000, 3, iso);
      rc = ed_buf_puts(arena, iso);
    } else if (v.code == AMQP_T_TIMESTAMP) {
      /* beyond ISO-8601's four-digit years (and past what microseconds hold) */
      o->kind = EH_VAL_OTHER;
      rc = ed_buf_printf(arena, "<timestamp %" PRId64 " ms>", (int64_t)amqp_be64(v.p));
    } else if (v.code == AMQP_T_ULONG) {
      o->kind = EH_VAL_INT;
      rc = ed_buf_printf(arena, "%" PRIu64, amqp_be64(v.p));
    } else if (amqp_val_int(&v, &iv)) {
      o->kind = EH_VAL_INT;
      rc = ed_buf_printf(arena, "%" PRId64, iv);
    } else if (v.code == AMQP_T_DOUBLE || v.code == AMQP_T_FLOAT) {
      double d;
      if (v.code == AMQP_T_DOUBLE) {
        uint64_t u = amqp_be64(v.p);
        memcpy(&d, &u, sizeof d);
      } else {
        uint32_t u = amqp_be32(v.p);
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

ed_code_t eh_amqp_encode_event(const eh_send_event_t *ev, ed_buf_t *out) {
  amqp_w_t w;
  amqp_w_init(&w, out);
  if (ev->partition_key) {
    amqp_put_described(&w, AMQP_S_MESSAGE_ANN);
    size_t at = amqp_open(&w, AMQP_T_MAP32);
    amqp_put_sym(&w, EHP_ANN_PARTITION_KEY, strlen(EHP_ANN_PARTITION_KEY));
    amqp_put_str(&w, ev->partition_key, strlen(ev->partition_key));
    amqp_close(&w, at, 2);
  }
  if (ev->content_type) {
    /* properties list: message-id .. content-type is the 7th field */
    amqp_put_described(&w, AMQP_S_PROPERTIES);
    size_t at = amqp_open(&w, AMQP_T_LIST32);
    for (int i = 0; i < 6; i++)
      amqp_put_null(&w);
    amqp_put_sym(&w, ev->content_type, strlen(ev->content_type));
    amqp_close(&w, at, 7);
  }
  if (ev->nprops) {
    amqp_put_described(&w, AMQP_S_APP_PROPS);
    size_t at = amqp_open(&w, AMQP_T_MAP32);
    for (size_t i = 0; i < ev->nprops; i++) {
      amqp_put_str(&w, ev->prop_keys[i], strlen(ev->prop_keys[i]));
      amqp_put_str(&w, ev->prop_values[i], strlen(ev->prop_values[i]));
    }
    amqp_close(&w, at, (uint32_t)(2 * ev->nprops));
  }
  amqp_put_described(&w, AMQP_S_DATA);
  amqp_put_bin(&w, ev->body, ev->body_len);
  return amqp_w_end(&w);
}

/* Reads the section descriptor (smallulong or ulong) and the code of the
 * value that follows it, for eh_body_what. */
static bool section_codes(const uint8_t *b, size_t n, uint8_t *desc, uint8_t *code) {
  if (n >= 4 && b[0] == AMQP_T_DESCRIBED && b[1] == AMQP_T_SMALLULONG)
    return *desc = b[2], *code = b[3], true;
  if (n >= 11 && b[0] == AMQP_T_DESCRIBED && b[1] == AMQP_T_ULONG) /* big-endian */
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
  if (desc == AMQP_S_SEQUENCE)
    return "an AMQP sequence";
  if (desc != AMQP_S_VALUE)
    return "an AMQP message that does not decode";
  switch (code) {
  case AMQP_T_MAP8:
  case AMQP_T_MAP32:
    return "an AMQP map";
  case AMQP_T_LIST0:
  case AMQP_T_LIST8:
  case AMQP_T_LIST32:
    return "an AMQP list";
  case AMQP_T_ARRAY8:
  case AMQP_T_ARRAY32:
    return "an AMQP array";
  case AMQP_T_NULL:
    return "an AMQP null";
  case AMQP_T_SYM8:
  case AMQP_T_SYM32:
    return "an AMQP symbol";
  default:
    return "an AMQP value other than a string or binary";
  }
}
