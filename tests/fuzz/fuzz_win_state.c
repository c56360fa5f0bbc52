/* fuzz_win_state: window and dedup state come back from the checkpoint
 * location, so win_state_load and dd_state_load must take any bytes to
 * ED_OK or an error, never a crash or a leak, and a loaded state must then
 * update and emit. The fuzzer's bytes become the body of a state (between
 * a valid header with the query's fingerprint and a valid checksum) so it
 * explores the parser rather than the checksum. Byte 0 picks window or dedup. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "stream/dedup.h"
#include "stream/window.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static sm_type_t *schema(void) {
  sm_type_t *st = sm_type_new(SM_STRUCT);
  sm_type_add_field(st, "ts", sm_type_new(SM_TIMESTAMP), true, NULL);
  sm_type_add_field(st, "k", sm_type_new(SM_STRING), true, NULL);
  sm_type_add_field(st, "n", sm_type_new(SM_BIGINT), true, NULL);
  sm_type_add_field(st, "v", sm_type_new(SM_DOUBLE), true, NULL);
  return st;
}

/* header (magic, version, fingerprint) of an empty state, body, checksum */
static void wrap(const ed_buf_t *empty, size_t hdr, const uint8_t *body, size_t n, ed_buf_t *out) {
  ed_buf_append(out, empty->data, hdr);
  ed_buf_append(out, body, n);
  uint64_t h = agg_hash64(out->data, out->len, 7);
  uint8_t x[8];
  for (int i = 0; i < 8; i++)
    x[i] = (uint8_t)(h >> (8 * i));
  ed_buf_append(out, x, 8);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  sm_type_t *st = schema();
  sm_batch_t *in = sm_batch_new(st);
  sm_col_append_i64(&in->cols[0], 123456789);
  sm_col_append_str(&in->cols[1], "key", 3);
  sm_col_append_i64(&in->cols[2], 5);
  sm_col_append_f64(&in->cols[3], 1.5);
  in->nrows = 1;
  ed_buf_t empty = ED_BUF_INIT, full = ED_BUF_INIT;
  if (data[0] & 1) {
    const char *keys[] = {"k", "n"};
    dd_spec_t sp = {.time_col = "ts", .time_index = -1, .delay_us = 1000, .keys = keys, .nkeys = 2};
    dd_t *d = NULL;
    if (dd_new(&sp, st, &d, NULL) == ED_OK && dd_state_save(d, &empty, NULL) == ED_OK) {
      /* magic, version, fingerprint: 16 bytes */
      wrap(&empty, 16, data + 1, size - 1, &full);
      if (dd_state_load(d, full.data, full.len, NULL) == ED_OK) {
        uint32_t keep[1];
        size_t nk;
        dd_update(d, in, NULL, 0, keep, &nk, NULL);
        dd_end_batch(d);
      }
    }
    dd_free(d);
  } else {
    static const char *texts[] = {"count(*)",
                                  "count(n)",
                                  "sum(n)",
                                  "avg(v)",
                                  "min(k)",
                                  "max(v)",
                                  "first(k)",
                                  "last(n)",
                                  "count(DISTINCT k)",
                                  "approx_count_distinct(n)"};
    agg_spec_t aggs[10];
    for (int i = 0; i < 10; i++)
      agg_spec_parse(texts[i], &aggs[i], NULL);
    const char *keys[] = {"k", "n"};
    win_spec_t sp = {.time_col = "ts",
                     .time_index = -1,
                     .size_us = 1000000,
                     .slide_us = 500000,
                     .watermark = true,
                     .delay_us = 1000,
                     .keys = keys,
                     .nkeys = 2,
                     .aggs = aggs,
                     .naggs = 10,
                     .mode = (win_mode_t)((data[0] >> 1) % 3)};
    win_t *w = NULL;
    if (win_new(&sp, st, &w, NULL) == ED_OK && win_state_save(w, &empty, NULL) == ED_OK) {
      wrap(&empty, 16, data + 1, size - 1, &full);
      if (win_state_load(w, full.data, full.len, NULL) == ED_OK) {
        sm_batch_t *out = sm_batch_new(win_output_schema(w));
        win_update(w, in, NULL, 0, NULL);
        win_end_batch(w);
        win_emit(w, out, NULL);
        ed_buf_reset(&empty);
        win_state_save(w, &empty, NULL);
        sm_batch_free(out);
      }
    }
    win_free(w);
    for (int i = 0; i < 10; i++)
      agg_spec_fini(&aggs[i]);
  }
  ed_buf_fini(&empty);
  ed_buf_fini(&full);
  sm_batch_free(in);
  sm_type_free(st);
  return 0;
}
