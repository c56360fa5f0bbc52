/* fuzz_amqp: deliveries come from the network; any bytes must decode or fail
 * with ED_E_PARSE, never read past the end, and the inline paths of
 * eh_amqp_decode must give exactly what the general reader gives. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
