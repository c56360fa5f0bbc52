/* test_win_dedup: duplicates dropped within the watermark, late rows dropped,
 * keys forgotten once the watermark passes their expiry, state restored. */
#include <stdlib.h>

#include "common/time.h"
#include "stream/agg.h"
#include "stream/dedup.h"
#include "tests/unit/cu.h"

#define MIN ED_US_PER_MIN

static sm_type_t *schema(void) {
  sm_type_t *st = sm_type_new(SM_STRUCT);
  sm_type_add_field(st, "ts", sm_type_new(SM_TIMESTAMP), true, NULL);
  sm_type_add_field(st, "id", sm_type_new(SM_STRING), true, NULL);
  return st;
}

static void row(sm_batch_t *b, int64_t ts, const char *id) {
  if (ts == INT64_MIN)
    sm_col_append_null(&b->cols[0]);
  else
    sm_col_append_i64(&b->cols[0], ts);
  if (id)
    sm_col_append_str(&b->cols[1], id, strlen(id));
  else
    sm_col_append_null(&b->cols[1]);
  b->nrows++;
}

static size_t run(dd_t *d, sm_batch_t *b, uint32_t *keep) {
  size_t k = 0;
  CU_ASSERT_EQUAL(dd_update(d, b, NULL, 0, keep, &k, NULL), ED_OK);
  dd_end_batch(d);
  sm_batch_reset(b);
  return k;
}

static const char *g_id[] = {"id"};
static sm_type_t *g_st;

static void test_within_watermark_drops_repeats_and_forgets_after_delay(void) {
  sm_type_t *st = schema();
  dd_spec_t sp = {
      .time_col = "ts", .time_index = -1, .delay_us = 10 * MIN, .keys = g_id, .nkeys = 1};
  dd_t *d = NULL;
  CU_ASSERT_EQUAL_FATAL(dd_new(&sp, st, &d, NULL), ED_OK);
  sm_batch_t *b = sm_batch_new(st);
  uint32_t keep[16];
  row(b, 1 * MIN, "T1");
  row(b, 2 * MIN, "T2");
  row(b, 3 * MIN, "T1"); /* repeat in the same batch */
  row(b, 3 * MIN, NULL); /* null is a key */
  row(b, 4 * MIN, NULL);
  row(b, INT64_MIN, "T9");
  CU_ASSERT_EQUAL(run(d, b, keep), 3);
  CU_ASSERT_EQUAL(keep[0], 0);
  CU_ASSERT_EQUAL(keep[1], 1);
  CU_ASSERT_EQUAL(keep[2], 3);
  dd_stats_t s;
  dd_get_stats(d, &s);
  CU_ASSERT_EQUAL(s.duplicates, 2);
  CU_ASSERT_EQUAL(s.null_event_time, 1);
  CU_ASSERT_EQUAL(s.num_rows_total, 3);
  CU_ASSERT_EQUAL(s.watermark_us, -6 * MIN);
  /* watermark 10: T1 (expires 1+10 = 11) still known; T2 expires at 12 */
  row(b, 20 * MIN, "X");
  CU_ASSERT_EQUAL(run(d, b, keep), 1);
  row(b, 15 * MIN, "T1");
  CU_ASSERT_EQUAL(run(d, b, keep), 0);
  /* watermark 12 after a row at 22: T1 (11) and T2 (12, watermark >= expiry) forgotten */
  row(b, 22 * MIN, "Y");
  run(d, b, keep);
  dd_get_stats(d, &s);
  CU_ASSERT_EQUAL(s.num_rows_removed, 2); /* T1, T2; NULL (3 + 10 = 13) stays */
  row(b, 13 * MIN, "T1");                 /* after the watermark (12): new again */
  row(b, 12 * MIN, "T2");                 /* at the watermark: late (event time <= watermark) */
  CU_ASSERT_EQUAL(run(d, b, keep), 1);
  dd_get_stats(d, &s);
  CU_ASSERT_EQUAL(s.num_rows_dropped_by_watermark, 1);
  /* state round trip */
  ed_buf_t sv = ED_BUF_INIT;
  CU_ASSERT_EQUAL(dd_state_save(d, &sv, NULL), ED_OK);
  dd_t *d2 = NULL;
  CU_ASSERT_EQUAL_FATAL(dd_new(&sp, st, &d2, NULL), ED_OK);
  ed_err_t e = {0};
  CU_ASSERT_EQUAL(dd_state_load(d2, sv.data, sv.len - 1, &e), ED_E_CORRUPT);
  CU_ASSERT_EQUAL(dd_state_load(d2, sv.data, sv.len, &e), ED_OK);
  row(b, 14 * MIN, "T1");
  row(b, 14 * MIN, "Z");
  CU_ASSERT_EQUAL(run(d2, b, keep), 1);
  CU_ASSERT_EQUAL(keep[0], 1);
  ed_buf_fini(&sv);
  dd_free(d2);
  sm_batch_free(b);
  dd_free(d);
  dd_free(NULL);
  sm_type_free(st);
}

static size_t part_rows(dd_t *d, size_t part, int64_t ts, const char *id) {
  sm_batch_t *b = sm_batch_new(g_st);
  row(b, ts, id);
  uint8_t keep[1];
  size_t nk = 0;
  CU_ASSERT_EQUAL(dd_update_part(d, b, NULL, part, keep, &nk, NULL), ED_OK);
  sm_batch_free(b);
  return nk;
}

static uint64_t dropped(const dd_t *d, size_t part) {
  uint64_t b, t;
  dd_part_dropped(d, part, &b, &t);
  return t;
}

/* As windows: the watermark is the minimum over the partitions; a row is
 * late against its own partition's watermark; the partition times and drop
 * counts come back from the state by id; a version-1 state is still read. */
static void test_watermark_per_partition_and_state_by_id(void) {
  g_st = schema();
  dd_spec_t sp = {
      .time_col = "ts", .time_index = -1, .delay_us = 10 * MIN, .keys = g_id, .nkeys = 1};
  dd_t *d = NULL, *d2 = NULL;
  CU_ASSERT_EQUAL_FATAL(dd_new(&sp, g_st, &d, NULL), ED_OK);
  CU_ASSERT_EQUAL_FATAL(dd_new(&sp, g_st, &d2, NULL), ED_OK);
  const char *ids[] = {"0", "1"}, *rev[] = {"1", "0"};
  CU_ASSERT_EQUAL_FATAL(dd_set_partitions(d, ids, 2, NULL), ED_OK);
  CU_ASSERT_EQUAL_FATAL(dd_set_partitions(d2, rev, 2, NULL), ED_OK);
  CU_ASSERT_EQUAL(part_rows(d, 0, 100 * MIN, "a"), 1);
  CU_ASSERT_EQUAL(part_rows(d, 1, 20 * MIN, "b"), 1);
  dd_end_batch(d);
  dd_stats_t s;
  dd_get_stats(d, &s);
  CU_ASSERT_EQUAL(s.watermark_us, 10 * MIN);          /* min(90, 10), not Spark's 90 */
  CU_ASSERT_EQUAL(part_rows(d, 0, 50 * MIN, "c"), 0); /* 0's own watermark is 90 */
  CU_ASSERT_EQUAL(part_rows(d, 1, 15 * MIN, "d"), 1);
  dd_end_batch(d);
  CU_ASSERT_EQUAL(dropped(d, 0), 1);
  CU_ASSERT_EQUAL(dropped(d, 1), 0);
  ed_buf_t saved = ED_BUF_INIT, v1 = ED_BUF_INIT;
  CU_ASSERT_EQUAL_FATAL(dd_state_save(d, &saved, NULL), ED_OK);
  CU_ASSERT_EQUAL_FATAL(dd_state_load(d2, saved.data, saved.len, NULL), ED_OK);
  CU_ASSERT_EQUAL(dropped(d2, 1), 1);                  /* partition "0" is second in d2 */
  CU_ASSERT_EQUAL(part_rows(d2, 1, 60 * MIN, "e"), 0); /* late by 0's restored 90 */
  uint64_t fp;
  const uint8_t *q = (const uint8_t *)saved.data + 8;
  ed_get_u64le(&q, q + 8, &fp);
  uint64_t hdr[] = {fp, (uint64_t)(7 * MIN), 0};
  CU_ASSERT_EQUAL(agg_state_head(&v1, "EDDD", 1, hdr, 3), ED_OK);
  CU_ASSERT_EQUAL(agg_state_seal(&v1, 0), ED_OK);
  CU_ASSERT_EQUAL_FATAL(dd_state_load(d2, v1.data, v1.len, NULL), ED_OK);
  dd_get_stats(d2, &s);
  CU_ASSERT_EQUAL(s.watermark_us, 7 * MIN);
  CU_ASSERT_EQUAL(part_rows(d2, 1, 60 * MIN, "e"), 1); /* no partition time after version 1 */
  ed_buf_fini(&saved);
  ed_buf_fini(&v1);
  dd_free(d);
  dd_free(d2);
  sm_type_free(g_st);
  g_st = NULL;
}

static void test_keys_mode_needs_the_time_column(void) {
  sm_type_t *st = schema();
  dd_spec_t sp = {.time_col = "ts", .time_index = -1, .keys = g_id, .nkeys = 1, .mode = DD_KEYS};
  dd_t *d = NULL;
  ed_err_t e = {0};
  CU_ASSERT_EQUAL(dd_new(&sp, st, &d, &e), ED_E_CONFIG);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "must include the event-time column 'ts'"));
  const char *keys[] = {"id", "ts"};
  sp.keys = keys;
  sp.nkeys = 2;
  /* a minute: with 0, a row at its partition's latest event time would be
   * late already (event time <= watermark, judged row by row) */
  sp.delay_us = MIN;
  CU_ASSERT_EQUAL_FATAL(dd_new(&sp, st, &d, &e), ED_OK);
  sm_batch_t *b = sm_batch_new(st);
  uint32_t keep[8];
  row(b, 5 * MIN, "a");
  row(b, 5 * MIN, "a");
  row(b, 6 * MIN, "a"); /* other time: another key */
  uint8_t in_mask[3] = {0, 1, 1}, keep_mask[3];
  size_t nk;
  CU_ASSERT_EQUAL(dd_update_mask(d, b, in_mask, keep_mask, &nk, NULL), ED_OK);
  CU_ASSERT_EQUAL(nk, 2);
  CU_ASSERT_EQUAL(keep_mask[0], 0);
  CU_ASSERT_EQUAL(keep_mask[1], 1);
  CU_ASSERT_EQUAL(keep_mask[2], 1);
  sm_batch_reset(b);
  row(b, 6 * MIN, "a"); /* the same batch goes on: a repeat of the kept row 2 */
  CU_ASSERT_EQUAL(run(d, b, keep), 0);
  dd_stats_t s;
  dd_get_stats(d, &s);
  CU_ASSERT_EQUAL(s.num_rows_removed, 1); /* watermark 5 evicts the 5-minute key only */
  CU_ASSERT_EQUAL(s.duplicates, 1);
  sm_batch_free(b);
  dd_free(d);
  sp.keys = g_id;
  sp.nkeys = 0;
  CU_ASSERT_EQUAL(dd_new(&sp, st, &d, &e), ED_E_CONFIG);
  sm_type_free(st);
}

static const cu_case_t cases[] = {
    CU_CASE(test_within_watermark_drops_repeats_and_forgets_after_delay),
    CU_CASE(test_keys_mode_needs_the_time_column),
    CU_CASE(test_watermark_per_partition_and_state_by_id),
    CU_END,
};
ED_SUITE(win_dedup, cases)
