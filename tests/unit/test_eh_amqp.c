/* eh_amqp: the in-place codec against Proton's own message codec (a real
 * implementation nobody here wrote): what Proton encodes we decode, what we
 * encode Proton decodes to the same fields. Also positions and filters. */
#include <proton/codec.h>
#include <proton/message.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static const cu_case_t cases[] = {
    CU_CASE(test_decodes_service_annotations_in_place),
    CU_CASE(test_decodes_string_value_body_and_large_body),
    CU_CASE(test_refuses_truncated_messages_at_every_length),
    CU_CASE(test_encoded_event_reads_back_in_proton),
    CU_CASE(test_positions_parse_and_render_filters),
    CU_END,
};
ED_SUITE(eh_amqp, cases);
