/* fuzz_amqp: deliveries come from the network; any bytes must decode or fail
 * with ED_E_PARSE, never read past the end, and the inline paths of
 * eh_amqp_decode must give exactly what the general reader (the shared
 * src/amqp reader) gives. The other side: what ehemu stores for a message it
 * accepts (emu_event_stamp, written with the shared writer) must read back
 * through both with the numbers it stamped and the body it was sent. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "amqp/value.h"
#include "emu/event.h"
#include "eventhubs/amqp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same(const eh_amqp_msg_t *a, const eh_amqp_msg_t *b) {
  return a->body_kind == b->body_kind && a->body == b->body && a->body_len == b->body_len &&
         a->ndata == b->ndata && a->body_sections == b->body_sections &&
         a->body_sections_len == b->body_sections_len && a->has_seq == b->has_seq &&
         a->has_offset == b->has_offset && a->has_enqueued == b->has_enqueued &&
         (!a->has_seq || a->seq == b->seq) && (!a->has_offset || a->offset == b->offset) &&
         (!a->has_enqueued || a->enqueued_ms == b->enqueued_ms) &&
         a->partition_key == b->partition_key && a->partition_key_len == b->partition_key_len &&
         a->publisher == b->publisher && a->publisher_len == b->publisher_len &&
         a->content_type == b->content_type && a->content_type_len == b->content_type_len &&
         a->app_props == b->app_props && a->app_props_len == b->app_props_len;
}

static bool same_bytes(const void *a, size_t an, const void *b, size_t bn) {
  return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

/* The body sections (data, amqp-sequence, amqp-value) among sections, in
 * order and encoded: what the body is, whatever other sections ehemu moved or
 * dropped between them. */
static void body_only(const uint8_t *p, size_t n, ed_buf_t *out) {
  if (!p)
    return;
  const uint8_t *end = p + n;
  amqp_val_t s;
  while (p < end && amqp_read(&p, end, &s, 0) == 0)
    if (s.desc >= AMQP_S_DATA && s.desc <= AMQP_S_VALUE)
      ed_buf_append(out, s.start, s.total);
}

/* The message as ehemu would deliver it decodes to the same event, with the
 * annotations ehemu stamped. */
static void check_stamped(const uint8_t *data, size_t size, const eh_amqp_msg_t *orig) {
  emu_event_t ev = {.seq = (int64_t)(size * 7919),
                    .offset = (int64_t)size * 104729,
                    .enq_ms = 1700000000000 + (int64_t)size};
  const char *pub = size % 2 ? "fuzz-publisher" : NULL;
  if (emu_event_stamp(data, size, NULL, 0, pub, &ev) != ED_OK)
    return;
  eh_amqp_msg_t f, g;
  ed_err_t ef = {0}, eg = {0};
  if (eh_amqp_decode(ev.bytes, ev.len, &f, &ef) != ED_OK ||
      eh_amqp_decode_general(ev.bytes, ev.len, &g, &eg) != ED_OK || !same(&f, &g))
    abort();
  if (!f.has_seq || f.seq != ev.seq || !f.has_offset || f.offset != ev.offset || !f.has_enqueued ||
      f.enqueued_ms != ev.enq_ms)
    abort();
  /* an OTHER body is its sections, with whatever lay between them */
  bool other = f.body_kind == EH_BODY_OTHER;
  if (f.body_kind != orig->body_kind || f.ndata != orig->ndata ||
      (!other && !same_bytes(f.body, f.body_len, orig->body, orig->body_len)) ||
      !same_bytes(f.content_type, f.content_type_len, orig->content_type, orig->content_type_len) ||
      !same_bytes(f.app_props, f.app_props_len, orig->app_props, orig->app_props_len))
    abort();
  if (pub && !same_bytes(f.publisher, f.publisher_len, pub, strlen(pub)))
    abort();
  ed_buf_t a = ED_BUF_INIT, b = ED_BUF_INIT;
  body_only(f.body_sections, f.body_sections_len, &a);
  body_only(orig->body_sections, orig->body_sections_len, &b);
  if (!same_bytes(a.data, a.len, b.data, b.len))
    abort();
  ed_buf_reset(&a);
  ed_buf_reset(&b);
  body_only(other ? f.body : NULL, f.body_len, &a);
  body_only(other ? orig->body : NULL, orig->body_len, &b);
  if (!same_bytes(a.data, a.len, b.data, b.len))
    abort();
  ed_buf_fini(&a);
  ed_buf_fini(&b);
  free(ev.bytes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  eh_amqp_msg_t f, g;
  ed_err_t ef = {0}, eg = {0};
  ed_code_t rf = eh_amqp_decode(data, size, &f, &ef),
            rg = eh_amqp_decode_general(data, size, &g, &eg);
  if (rf != rg || strcmp(ef.msg, eg.msg) != 0)
    abort();
  if (rf != ED_OK)
    return 0;
  if (!same(&f, &g))
    abort();
  check_stamped(data, size, &f);
  ed_buf_t arena = ED_BUF_INIT;
  if (f.ndata > 1)
    eh_amqp_data_concat(f.body_sections, f.body_sections_len, &arena);
  if (f.app_props) {
    eh_amqp_prop_t *props = NULL;
    size_t cap = 0, n = 0;
    eh_amqp_props(f.app_props, f.app_props_len, &arena, &props, &cap, &n, NULL);
    free(props);
  }
  ed_buf_fini(&arena);
  return 0;
}
