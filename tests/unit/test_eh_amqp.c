/* eh_amqp: the in-place codec against Proton's own message codec (a real
 * implementation nobody here wrote): what Proton encodes we decode, what we
 * encode Proton decodes to the same fields. Also positions and filters. */
#include <proton/codec.h>
#include <proton/message.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amqp/write.h"
#include "eventhubs/amqp.h"
#include "eventhubs/client.h"
#include "proto/eventhubs.h"
#include "tests/unit/cu.h"

static size_t encode_pn(pn_message_t *m, char *buf, size_t cap) {
  size_t n = cap;
  CU_ASSERT_EQUAL_FATAL(pn_message_encode(m, buf, &n), 0);
  return n;
}

static void sym_key(pn_data_t *d, const char *k) { pn_data_put_symbol(d, pn_bytes(strlen(k), k)); }
static void str_val(pn_data_t *d, const char *v) { pn_data_put_string(d, pn_bytes(strlen(v), v)); }

/* A message shaped like what the service delivers (§6.6). */
static pn_message_t *service_event(const char *body, size_t body_len) {
  pn_message_t *m = pn_message();
  pn_message_set_content_type(m, "application/json");
  pn_data_t *ma = pn_message_annotations(m);
  pn_data_put_map(ma);
  pn_data_enter(ma);
  sym_key(ma, EHP_ANN_SEQUENCE);
  pn_data_put_long(ma, 4242);
  sym_key(ma, EHP_ANN_OFFSET);
  str_val(ma, "987654321");
  sym_key(ma, EHP_ANN_ENQUEUED);
  pn_data_put_timestamp(ma, 1700000000123);
  sym_key(ma, EHP_ANN_PARTITION_KEY);
  str_val(ma, "device-42");
  pn_data_exit(ma);
  pn_data_t *ap = pn_message_properties(m);
  pn_data_put_map(ap);
  pn_data_enter(ap);
  str_val(ap, "s");
  str_val(ap, "hello");
  str_val(ap, "i");
  pn_data_put_int(ap, -7);
  str_val(ap, "l");
  pn_data_put_long(ap, 1234567890123);
  str_val(ap, "b");
  pn_data_put_bool(ap, true);
  str_val(ap, "d");
  pn_data_put_double(ap, 2.5);
  str_val(ap, "n");
  pn_data_put_null(ap);
  str_val(ap, "t");
  pn_data_put_timestamp(ap, 0);
  str_val(ap, "bin");
  pn_data_put_binary(ap, pn_bytes(2, "\x01\xab"));
  pn_data_exit(ap);
  pn_message_set_inferred(m, true);
  pn_data_put_binary(pn_message_body(m), pn_bytes(body_len, body));
  return m;
}

static void test_decodes_service_annotations_in_place(void) {
  char buf[4096];
  pn_message_t *m = service_event("{\"a\":1}", 7);
  size_t n = encode_pn(m, buf, sizeof buf);
  eh_amqp_msg_t d;
  ed_err_t e = {0};
  CU_ASSERT_EQUAL_FATAL(eh_amqp_decode((const uint8_t *)buf, n, &d, &e), ED_OK);
  CU_ASSERT_EQUAL(d.body_kind, EH_BODY_DATA);
  CU_ASSERT_EQUAL(d.body_len, 7);
  CU_ASSERT_EQUAL(memcmp(d.body, "{\"a\":1}", 7), 0);
  /* zero copy: the body points into the delivery bytes */
  CU_ASSERT_TRUE((const char *)d.body > buf && (const char *)d.body < buf + n);
  CU_ASSERT_TRUE(d.has_seq && d.seq == 4242);
  CU_ASSERT_TRUE(d.has_offset && d.offset == 987654321);
  CU_ASSERT_TRUE(d.has_enqueued && d.enqueued_ms == 1700000000123);
  CU_ASSERT_EQUAL(d.partition_key_len, 9);
  CU_ASSERT_EQUAL(memcmp(d.partition_key, "device-42", 9), 0);
  CU_ASSERT_EQUAL(d.content_type_len, 16);
  CU_ASSERT_PTR_NULL(d.publisher);
  ed_buf_t arena = ED_BUF_INIT;
  eh_amqp_prop_t *props = NULL;
  size_t cap = 0, np = 0;
  CU_ASSERT_EQUAL_FATAL(eh_amqp_props(d.app_props, d.app_props_len, &arena, &props, &cap, &np, &e),
                        ED_OK);
  CU_ASSERT_EQUAL_FATAL(np, 8);
  static const struct {
    const char *k, *text;
    eh_val_kind_t kind;
  } want[] = {{"s", "hello", EH_VAL_STRING},
              {"i", "-7", EH_VAL_INT},
              {"l", "1234567890123", EH_VAL_INT},
              {"b", "true", EH_VAL_BOOL},
              {"d", "2.5", EH_VAL_DOUBLE},
              {"n", "null", EH_VAL_NULL},
              {"t", "1970-01-01T00:00:00.000Z", EH_VAL_TIMESTAMP},
              {"bin", "01ab", EH_VAL_OTHER}};
  for (size_t i = 0; i < 8; i++) {
    const char *text = props[i].text_in_arena ? arena.data + props[i].text_off : props[i].text_wire;
    CU_ASSERT_EQUAL(props[i].key_len, strlen(want[i].k));
    CU_ASSERT_EQUAL(memcmp(props[i].key, want[i].k, props[i].key_len), 0);
    CU_ASSERT_EQUAL(props[i].kind, want[i].kind);
    CU_ASSERT_EQUAL(props[i].text_len, strlen(want[i].text));
    CU_ASSERT_EQUAL(memcmp(text, want[i].text, props[i].text_len), 0);
  }
  free(props);
  ed_buf_fini(&arena);
  pn_message_free(m);
}

/* A timestamp property past year 9999 (found by fuzz_amqp: ms * 1000
 * overflowed) is shown as its number, not as a date. */
static void test_timestamp_property_out_of_range(void) {
  static const int64_t ms[] = {INT64_C(253402300799999), INT64_C(253402300800000), INT64_MAX,
                               INT64_MIN};
  static const char *want[] = {"9999-12-31T23:59:59.999Z", "<timestamp 253402300800000 ms>",
                               "<timestamp 9223372036854775807 ms>",
                               "<timestamp -9223372036854775808 ms>"};
  for (size_t i = 0; i < 4; i++) {
    ed_buf_t map = ED_BUF_INIT, arena = ED_BUF_INIT;
    amqp_w_t w;
    amqp_w_init(&w, &map);
    size_t at = amqp_open(&w, AMQP_T_MAP32);
    amqp_put_str(&w, "t", 1);
    amqp_put_timestamp(&w, ms[i]);
    amqp_close(&w, at, 2);
    CU_ASSERT_EQUAL_FATAL(amqp_w_end(&w), ED_OK);
    eh_amqp_prop_t *props = NULL;
    size_t cap = 0, np = 0;
    CU_ASSERT_EQUAL_FATAL(
        eh_amqp_props((const uint8_t *)map.data, map.len, &arena, &props, &cap, &np, NULL), ED_OK);
    CU_ASSERT_EQUAL_FATAL(np, 1);
    CU_ASSERT_EQUAL(props[0].kind, i == 0 ? EH_VAL_TIMESTAMP : EH_VAL_OTHER);
    CU_ASSERT_EQUAL(props[0].text_len, strlen(want[i]));
    CU_ASSERT_EQUAL(memcmp(arena.data + props[0].text_off, want[i], props[0].text_len), 0);
    free(props);
    ed_buf_fini(&arena);
    ed_buf_fini(&map);
  }
}

static void test_decodes_string_value_body_and_large_body(void) {
  char *buf = malloc(1 << 20);
  pn_message_t *m = pn_message();
  pn_data_put_string(pn_message_body(m), pn_bytes(5, "hello"));
  size_t n = encode_pn(m, buf, 1 << 20);
  eh_amqp_msg_t d;
  CU_ASSERT_EQUAL_FATAL(eh_amqp_decode((const uint8_t *)buf, n, &d, NULL), ED_OK);
  CU_ASSERT_EQUAL(d.body_kind, EH_BODY_STRING);
  CU_ASSERT_EQUAL(d.body_len, 5);
  CU_ASSERT_FALSE(d.has_seq);
  pn_message_free(m);
  /* a 300 KB data body uses the 32-bit binary encoding */
  char *big = malloc(300000);
  memset(big, 'z', 300000);
  m = service_event(big, 300000);
  n = encode_pn(m, buf, 1 << 20);
  CU_ASSERT_EQUAL_FATAL(eh_amqp_decode((const uint8_t *)buf, n, &d, NULL), ED_OK);
  CU_ASSERT_EQUAL(d.body_len, 300000);
  CU_ASSERT_EQUAL(((const char *)d.body)[299999], 'z');
  pn_message_free(m);
  free(big);
  free(buf);
}

static void test_refuses_truncated_messages_at_every_length(void) {
  char buf[4096];
  pn_message_t *m = service_event("payload", 7);
  size_t n = encode_pn(m, buf, sizeof buf);
  int refused = 0;
  for (size_t cut = 1; cut < n; cut++) {
    eh_amqp_msg_t d;
    ed_err_t e = {0};
    /* copy so a read past the cut would be caught by ASan */
    char *p = malloc(cut);
    memcpy(p, buf, cut);
    if (eh_amqp_decode((const uint8_t *)p, cut, &d, &e) != ED_OK) {
      refused++;
      CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "AMQP message"));
    }
    free(p);
  }
  /* a cut exactly between sections is a shorter valid message; all others fail */
  CU_ASSERT_TRUE(refused >= (int)n - 6);
  pn_message_free(m);
}

static void test_encoded_event_reads_back_in_proton(void) {
  const char *keys[] = {"source", "kind"}, *vals[] = {"ehdelta", "tx"};
  eh_send_event_t ev = {.body = "{\"x\":1}",
                        .body_len = 7,
                        .partition_key = "pk1",
                        .prop_keys = keys,
                        .prop_values = vals,
                        .nprops = 2,
                        .content_type = "application/json"};
  ed_buf_t b = ED_BUF_INIT;
  CU_ASSERT_EQUAL_FATAL(eh_amqp_encode_event(&ev, &b), ED_OK);
  pn_message_t *m = pn_message();
  CU_ASSERT_EQUAL_FATAL(pn_message_decode(m, b.data, b.len), 0);
  CU_ASSERT_STR(pn_message_get_content_type(m), "application/json");
  pn_data_t *body = pn_message_body(m);
  pn_data_rewind(body);
  CU_ASSERT_TRUE(pn_data_next(body));
  CU_ASSERT_EQUAL(pn_data_type(body), PN_BINARY);
  pn_bytes_t bb = pn_data_get_binary(body);
  CU_ASSERT_EQUAL(bb.size, 7);
  CU_ASSERT_EQUAL(memcmp(bb.start, "{\"x\":1}", 7), 0);
  char txt[512];
  size_t tl = sizeof txt;
  pn_data_format(pn_message_annotations(m), txt, &tl);
  CU_ASSERT_PTR_NOT_NULL(strstr(txt, ":\"x-opt-partition-key\"=\"pk1\""));
  tl = sizeof txt;
  pn_data_format(pn_message_properties(m), txt, &tl);
  CU_ASSERT_PTR_NOT_NULL(strstr(txt, "\"source\"=\"ehdelta\""));
  CU_ASSERT_PTR_NOT_NULL(strstr(txt, "\"kind\"=\"tx\""));
  /* and our own decoder agrees */
  eh_amqp_msg_t d;
  CU_ASSERT_EQUAL(eh_amqp_decode((const uint8_t *)b.data, b.len, &d, NULL), ED_OK);
  CU_ASSERT_EQUAL(d.partition_key_len, 3);
  CU_ASSERT_EQUAL(d.body_len, 7);
  pn_message_free(m);
  /* a 1000-byte body and no optional sections */
  char big[1000];
  memset(big, 'q', sizeof big);
  eh_send_event_t ev2 = {.body = big, .body_len = sizeof big};
  ed_buf_reset(&b);
  CU_ASSERT_EQUAL_FATAL(eh_amqp_encode_event(&ev2, &b), ED_OK);
  m = pn_message();
  CU_ASSERT_EQUAL_FATAL(pn_message_decode(m, b.data, b.len), 0);
  body = pn_message_body(m);
  pn_data_rewind(body);
  pn_data_next(body);
  CU_ASSERT_EQUAL(pn_data_get_binary(body).size, 1000);
  pn_message_free(m);
  ed_buf_fini(&b);
}

static void test_positions_parse_and_render_filters(void) {
  static const struct {
    const char *text, *filter;
  } cases[] = {
      {"earliest", "amqp.annotation.x-opt-offset > '-1'"},
      {"latest", "amqp.annotation.x-opt-offset > '@latest'"},
      {"offset:120", "amqp.annotation.x-opt-offset > '120'"},
      {"offset>=120", "amqp.annotation.x-opt-offset >= '120'"},
      {"seq:5", "amqp.annotation.x-opt-sequence-number >= '5'"},
      {"seq>5", "amqp.annotation.x-opt-sequence-number > '5'"},
      {"time:2023-11-14T22:13:20.123Z", "amqp.annotation.x-opt-enqueued-time > '1700000000123'"},
      {"time>=2023-11-14T22:13:20Z", "amqp.annotation.x-opt-enqueued-time >= '1700000000000'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    eh_position_t p;
    char f[200];
    CU_ASSERT_EQUAL_FATAL(eh_position_parse(cases[i].text, &p, NULL), ED_OK);
    eh_position_filter(&p, f, sizeof f);
    CU_ASSERT_STR(f, cases[i].filter);
  }
  const char *bad[] = {"", "seq:", "seq:-3", "offset:abc", "time:yesterday", "from-start"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    eh_position_t p;
    ed_err_t e = {0};
    CU_ASSERT_EQUAL(eh_position_parse(bad[i], &p, &e), ED_E_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "position"));
  }
}

/* ---- the annotation fast path against the general reader ---- */

typedef struct {
  uint8_t b[1024];
  size_t n;
} wire_t;

static void w_bytes(wire_t *w, const void *p, size_t n) {
  CU_ASSERT_FATAL(w->n + n <= sizeof w->b);
  memcpy(w->b + w->n, p, n);
  w->n += n;
}
static void w_u8(wire_t *w, uint8_t v) { w_bytes(w, &v, 1); }
static void w_be(wire_t *w, uint64_t v, int width) {
  for (int i = width - 1; i >= 0; i--)
    w_u8(w, (uint8_t)(v >> (8 * i)));
}
/* a string-like value: code is 0xa1/0xa3 (8-bit length) or 0xb1/0xb3 (32-bit) */
static void w_str(wire_t *w, uint8_t code, const char *s) {
  size_t n = strlen(s);
  w_u8(w, code);
  w_be(w, n, code & 0x10 ? 4 : 1);
  w_bytes(w, s, n);
}

/* One way to write an integer annotation value. */
enum { I_LONG, I_TIMESTAMP, I_ULONG, I_SMALLULONG, I_SMALLLONG, I_UINT, I_INT, I_ULONG0, I_NKIND };
static void w_int(wire_t *w, int kind, int64_t v) {
  static const uint8_t code[] = {0x81, 0x83, 0x80, 0x53, 0x55, 0x70, 0x71, 0x44};
  static const int width[] = {8, 8, 8, 1, 1, 4, 4, 0};
  w_u8(w, code[kind]);
  w_be(w, (uint64_t)v, width[kind]);
}

static void same_msg(const eh_amqp_msg_t *a, const eh_amqp_msg_t *b, const char *what) {
  bool same = a->body_kind == b->body_kind && a->body == b->body && a->body_len == b->body_len &&
              a->ndata == b->ndata && a->body_sections == b->body_sections &&
              a->body_sections_len == b->body_sections_len && a->has_seq == b->has_seq &&
              a->has_offset == b->has_offset && a->has_enqueued == b->has_enqueued &&
              (!a->has_seq || a->seq == b->seq) && (!a->has_offset || a->offset == b->offset) &&
              (!a->has_enqueued || a->enqueued_ms == b->enqueued_ms) &&
              a->partition_key == b->partition_key &&
              a->partition_key_len == b->partition_key_len && a->publisher == b->publisher &&
              a->publisher_len == b->publisher_len && a->content_type == b->content_type &&
              a->content_type_len == b->content_type_len && a->app_props == b->app_props &&
              a->app_props_len == b->app_props_len;
  if (!same)
    fprintf(stderr, "fast and general decoders differ: %s\n", what);
  CU_ASSERT_TRUE(same);
}

/* Both decoders over buf[0..n) and every shorter cut of it: same result,
 * same fields, same error. Returns the fast decoder's result on the whole. */
static ed_code_t both(const uint8_t *buf, size_t n, eh_amqp_msg_t *out, const char *what) {
  ed_code_t whole = ED_OK;
  for (size_t cut = n + 1; cut-- > 0;) {
    uint8_t *p = malloc(cut ? cut : 1); /* exact size: ASan sees any read past the cut */
    memcpy(p, buf, cut);
    eh_amqp_msg_t f, g;
    ed_err_t ef = {0}, eg = {0};
    ed_code_t rf = eh_amqp_decode(p, cut, &f, &ef), rg = eh_amqp_decode_general(p, cut, &g, &eg);
    CU_ASSERT_EQUAL(rf, rg);
    CU_ASSERT_STR(ef.msg, eg.msg);
    if (rf == ED_OK && rg == ED_OK)
      same_msg(&f, &g, what);
    if (cut == n) {
      whole = rf;
      if (out) {
        *out = f;
        /* point back into the caller's bytes, not the freed copy */
        const uint8_t *fields[] = {f.body, (const uint8_t *)f.partition_key,
                                   (const uint8_t *)f.publisher};
        out->body = fields[0] ? buf + (fields[0] - p) : NULL;
        out->partition_key = fields[1] ? (const char *)buf + (fields[1] - p) : NULL;
        out->publisher = fields[2] ? (const char *)buf + (fields[2] - p) : NULL;
      }
    }
    free(p);
  }
  return whole;
}

/* Writes message annotations (a map8 or map32 of the items in ann), then a
 * data section "body". */
static void w_message(wire_t *w, const wire_t *ann, uint32_t count, bool map32) {
  w->n = 0;
  w_bytes(w, "\x00\x53\x72", 3);
  if (map32) {
    w_u8(w, 0xd1);
    w_be(w, ann->n + 4, 4);
    w_be(w, count, 4);
  } else {
    w_u8(w, 0xc1);
    w_u8(w, (uint8_t)(ann->n + 1));
    w_u8(w, (uint8_t)count);
  }
  w_bytes(w, ann->b, ann->n);
  w_bytes(w,
          "\x00\x53\x75\xa0\x04"
          "body",
          9);
}

static void test_annotation_fast_path_agrees_with_general_reader(void) {
  /* the four annotations under every integer and string encoding, in two
   * orders, with and without extra keys, some absent */
  static const uint8_t skinds[] = {0xa1, 0xb1, 0xa3, 0xb3};
  static const uint8_t kkinds[] = {0xa3, 0xb3, 0xa1};
  int checked = 0;
  for (int ik = 0; ik < I_NKIND; ik++)
    for (int ek = 0; ek < I_NKIND; ek++)
      for (int ok = 0; ok < 5; ok++)   /* 4 = the offset as a long */
        for (int pk = 0; pk < 6; pk++) /* 4 = absent, 5 = a long (not a key) */
          for (int shape = 0; shape < 4; shape++) {
            uint8_t kk = kkinds[(ik + ek + ok + pk + shape) % 3];
            bool reversed = shape & 1, extra = shape & 2;
            int64_t seq = ik == I_ULONG0       ? 0
                          : ik == I_SMALLULONG ? 200
                          : ik == I_SMALLLONG  ? -3
                          : ik >= I_UINT       ? 70000
                                               : 123456789012;
            int64_t enq = ek == I_ULONG0       ? 0
                          : ek == I_SMALLULONG ? 7
                          : ek == I_SMALLLONG  ? -1
                          : ek >= I_UINT       ? 1700000
                                               : 1700000000123;
            wire_t a = {0};
            uint32_t count = 0;
            for (int slot = 0; slot < 4; slot++) {
              int which = reversed ? 3 - slot : slot;
              if (extra && slot == 2) {
                w_str(&a, 0xa3, "x-opt-sequence-numbeX"); /* same length, not the key */
                w_int(&a, I_LONG, 99);
                w_str(&a, 0xa3, "x-opt-other");
                w_str(&a, 0xa1, "ignored");
                w_u8(&a, 0x80); /* a ulong key: not a string, skipped */
                w_be(&a, 5, 8);
                w_bytes(&a,
                        "\x00\xa3\x03"
                        "abc"
                        "\x45",
                        7); /* a described value */
                count += 6;
              }
              if (which == 0) {
                w_str(&a, kk, EHP_ANN_SEQUENCE);
                w_int(&a, ik, seq);
              } else if (which == 1) {
                w_str(&a, kk, EHP_ANN_OFFSET);
                if (ok == 4)
                  w_int(&a, I_LONG, 4096);
                else
                  w_str(&a, skinds[ok], "4096");
              } else if (which == 2) {
                w_str(&a, kk, EHP_ANN_ENQUEUED);
                w_int(&a, ek, enq);
              } else if (pk < 4) {
                w_str(&a, kk, EHP_ANN_PARTITION_KEY);
                w_str(&a, skinds[pk], "device-7");
              } else if (pk == 5) {
                w_str(&a, kk, EHP_ANN_PARTITION_KEY);
                w_int(&a, I_LONG, 7);
              } else {
                continue;
              }
              count += 2;
            }
            char what[128];
            snprintf(what, sizeof what, "seq %d enq %d off %d pk %d shape %d key 0x%02x", ik, ek,
                     ok, pk, shape, kk);
            wire_t w;
            w_message(&w, &a, count, (ik + pk) % 2);
            eh_amqp_msg_t m;
            CU_ASSERT_EQUAL_FATAL(both(w.b, w.n, &m, what), ED_OK);
            CU_ASSERT_TRUE(m.has_seq && m.seq == seq);
            CU_ASSERT_TRUE(m.has_enqueued && m.enqueued_ms == enq);
            CU_ASSERT_TRUE(m.has_offset && m.offset == 4096);
            if (pk < 4) {
              CU_ASSERT_EQUAL(m.partition_key_len, 8);
              CU_ASSERT_TRUE(m.partition_key && !memcmp(m.partition_key, "device-7", 8));
            } else {
              CU_ASSERT_PTR_NULL(m.partition_key);
            }
            CU_ASSERT_EQUAL(m.body_len, 4);
            checked++;
          }
  CU_ASSERT_EQUAL(checked, I_NKIND * I_NKIND * 5 * 6 * 4);
}

static void test_annotation_fast_path_edge_values(void) {
  /* duplicates (the last wins), an unparsable offset, a non-string partition
   * key after a string one, an odd item count, the key as the last byte */
  wire_t a = {0}, w;
  w_str(&a, 0xa3, EHP_ANN_SEQUENCE);
  w_int(&a, I_LONG, 1);
  w_str(&a, 0xa3, EHP_ANN_SEQUENCE);
  w_int(&a, I_TIMESTAMP, -2);
  w_str(&a, 0xa3, EHP_ANN_PARTITION_KEY);
  w_str(&a, 0xa1, "k");
  w_str(&a, 0xa3, EHP_ANN_PARTITION_KEY);
  w_int(&a, I_LONG, 3);
  w_str(&a, 0xa3, EHP_ANN_OFFSET);
  w_str(&a, 0xa1, "12x");
  w_str(&a, 0xa3, EHP_ANN_PUBLISHER);
  w_str(&a, 0xa1, "pub");
  w_str(&a, 0xa3, EHP_ANN_ENQUEUED); /* no value: count says 13 */
  w_message(&w, &a, 13, false);
  eh_amqp_msg_t m;
  CU_ASSERT_EQUAL_FATAL(both(w.b, w.n, &m, "edge values"), ED_OK);
  CU_ASSERT_TRUE(m.has_seq && m.seq == -2);
  CU_ASSERT_FALSE(m.has_offset);
  CU_ASSERT_FALSE(m.has_enqueued);
  CU_ASSERT_TRUE(m.partition_key_len == 1 && m.partition_key[0] == 'k');
  CU_ASSERT_TRUE(m.publisher_len == 3 && !memcmp(m.publisher, "pub", 3));
  /* a count larger than the items: truncated for both */
  w_message(&w, &a, 16, true);
  CU_ASSERT_EQUAL(both(w.b, w.n, NULL, "count too large"), ED_E_PARSE);
  /* a value claiming more bytes than the map holds */
  wire_t b = {0};
  w_str(&b, 0xa3, EHP_ANN_OFFSET);
  w_bytes(&b,
          "\xa1\x30"
          "12",
          4);
  w_message(&w, &b, 2, false);
  CU_ASSERT_EQUAL(both(w.b, w.n, NULL, "string past the map"), ED_E_PARSE);
  /* offsets at the edges of int64, with leading zeros, and not numbers */
  static const struct {
    const char *text;
    bool ok;
    int64_t v;
  } offs[] = {{"9223372036854775807", true, INT64_MAX},
              {"9223372036854775808", false, 0},
              {"-9223372036854775807", true, -INT64_MAX},
              {"00000000000000000042", true, 42},
              {"000000000000000000042", false, 0},
              {"999999999999999999", true, 999999999999999999},
              {"-", false, 0},
              {"", false, 0},
              {"1 2", false, 0}};
  for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
    for (int code = 0; code < 2; code++) {
      wire_t o = {0};
      w_str(&o, 0xa3, EHP_ANN_OFFSET);
      w_str(&o, code ? 0xb1 : 0xa1, offs[i].text);
      w_message(&w, &o, 2, code);
      CU_ASSERT_EQUAL_FATAL(both(w.b, w.n, &m, offs[i].text), ED_OK);
      CU_ASSERT_EQUAL(m.has_offset, offs[i].ok);
      if (offs[i].ok)
        CU_ASSERT_EQUAL(m.offset, offs[i].v);
    }
  }
  /* sections described by a ulong, or by a symbol (not one we know) */
  wire_t u = {0};
  w_bytes(&u, "\x00\x80\0\0\0\0\0\0\0\x75\xa0\x02hi", 14);
  CU_ASSERT_EQUAL_FATAL(both(u.b, u.n, &m, "ulong descriptor"), ED_OK);
  CU_ASSERT_TRUE(m.body_len == 2 && !memcmp(m.body, "hi", 2));
  u.n = 0;
  w_bytes(&u, "\x00\xa3\x01x\xa0\x02hi", 8);
  CU_ASSERT_EQUAL(both(u.b, u.n, NULL, "symbolic descriptor"), ED_E_PARSE);
  u.n = 0;
  w_bytes(&u, "\x00\x53\x75\x00\x53\x75\xa0\x00", 8);
  CU_ASSERT_EQUAL(both(u.b, u.n, NULL, "descriptor of a descriptor"), ED_E_PARSE);
  /* the service's own encoding, as ehemu writes it, from Proton */
  char buf[4096];
  pn_message_t *pm = service_event("{}", 2);
  size_t n = encode_pn(pm, buf, sizeof buf);
  CU_ASSERT_EQUAL(both((const uint8_t *)buf, n, &m, "proton"), ED_OK);
  CU_ASSERT_TRUE(m.has_seq && m.seq == 4242 && m.has_offset && m.offset == 987654321);
  pn_message_free(pm);
}

static const cu_case_t cases[] = {
    CU_CASE(test_decodes_service_annotations_in_place),
    CU_CASE(test_decodes_string_value_body_and_large_body),
    CU_CASE(test_timestamp_property_out_of_range),
    CU_CASE(test_refuses_truncated_messages_at_every_length),
    CU_CASE(test_encoded_event_reads_back_in_proton),
    CU_CASE(test_positions_parse_and_render_filters),
    CU_CASE(test_annotation_fast_path_agrees_with_general_reader),
    CU_CASE(test_annotation_fast_path_edge_values),
    CU_END,
};
ED_SUITE(eh_amqp, cases);
