/* test_win_window: window alignment, watermark, lateness, output modes,
 * configuration errors and state save/restore, on hand-built batches. */
#include <math.h>
#include <stdlib.h>

#include "common/time.h"
#include "stream/window.h"
#include "tests/unit/cu.h"

#define MIN ED_US_PER_MIN

/* STRUCT<ts TIMESTAMP, cat STRING, amount DOUBLE, n INT> */
static sm_type_t *schema(void) {
  sm_type_t *st = sm_type_new(SM_STRUCT);
  sm_type_add_field(st, "ts", sm_type_new(SM_TIMESTAMP), true, NULL);
  sm_type_add_field(st, "cat", sm_type_new(SM_STRING), true, NULL);
  sm_type_add_field(st, "amount", sm_type_new(SM_DOUBLE), true, NULL);
  sm_type_add_field(st, "n", sm_type_new(SM_INT), true, NULL);
  return st;
}

/* ts < 0: null time; cat NULL: null key; amount NAN: null amount */
static void row(sm_batch_t *b, int64_t ts, const char *cat, double amount) {
  if (ts == INT64_MIN)
    sm_col_append_null(&b->cols[0]);
  else
    sm_col_append_i64(&b->cols[0], ts);
  if (cat)
    sm_col_append_str(&b->cols[1], cat, strlen(cat));
  else
    sm_col_append_null(&b->cols[1]);
  if (isnan(amount))
    sm_col_append_null(&b->cols[2]);
  else
    sm_col_append_f64(&b->cols[2], amount);
  sm_col_append_i32(&b->cols[3], (int32_t)b->nrows);
  b->nrows++;
}

typedef struct {
  sm_type_t *st;
  agg_spec_t aggs[8];
  size_t naggs;
  win_spec_t sp;
  win_t *w;
  sm_batch_t *in, *out;
} fx_t;

static const char *g_keys[] = {"cat"};

static void fx_open(fx_t *f, win_mode_t mode, int64_t size, int64_t slide,
                    const char *const *aggs) {
  memset(f, 0, sizeof *f);
  f->st = schema();
  for (; aggs[f->naggs]; f->naggs++)
    CU_ASSERT_EQUAL_FATAL(agg_spec_parse(aggs[f->naggs], &f->aggs[f->naggs], NULL), ED_OK);
  f->sp = (win_spec_t){.time_col = "ts",
                       .time_index = -1,
                       .size_us = size,
                       .slide_us = slide,
                       .watermark = true,
                       .delay_us = 10 * MIN,
                       .keys = g_keys,
                       .nkeys = 1,
                       .aggs = f->aggs,
                       .naggs = f->naggs,
                       .mode = mode};
  ed_err_t e = {0};
  CU_ASSERT_EQUAL_FATAL(win_new(&f->sp, f->st, &f->w, &e), ED_OK);
  f->in = sm_batch_new(f->st);
  f->out = sm_batch_new(win_output_schema(f->w));
}

static void fx_close(fx_t *f) {
  sm_batch_free(f->in);
  sm_batch_free(f->out);
  win_free(f->w);
  for (size_t i = 0; i < f->naggs; i++)
    agg_spec_fini(&f->aggs[i]);
  sm_type_free(f->st);
}

/* Runs the rows in f->in as one micro-batch and emits. */
static void fx_batch(fx_t *f) {
  ed_err_t e = {0};
  CU_ASSERT_EQUAL(win_update(f->w, f->in, NULL, 0, &e), ED_OK);
  win_end_batch(f->w);
  CU_ASSERT_EQUAL(win_emit(f->w, f->out, &e), ED_OK);
  sm_batch_reset(f->in);
}

static const char *key_at(const sm_batch_t *b, size_t col, size_t r, char *buf) {
  if (!b->cols[col].valid[r])
    return "NULL";
  size_t n;
  const char *s = sm_col_str(&b->cols[col], r, &n);
  memcpy(buf, s, n);
  buf[n] = 0;
  return buf;
}

static void test_alignment_follows_spark_including_negative_and_offset(void) {
  CU_ASSERT_EQUAL(win_last_start(7 * MIN, 5 * MIN, 0), 5 * MIN);
  CU_ASSERT_EQUAL(win_last_start(5 * MIN, 5 * MIN, 0), 5 * MIN);
  CU_ASSERT_EQUAL(win_last_start(-1, 5 * MIN, 0), -5 * MIN);
  CU_ASSERT_EQUAL(win_last_start(7 * MIN, 5 * MIN, 2 * MIN), 7 * MIN);
  CU_ASSERT_EQUAL(win_last_start(6 * MIN, 5 * MIN, 2 * MIN), 2 * MIN);
  CU_ASSERT_EQUAL(win_last_start(6 * MIN, 5 * MIN, -2 * MIN), 3 * MIN);
}

/* The names are parsed once, by the configuration's option rows. */
static void test_mode_names(void) { CU_ASSERT_STR(win_mode_name(WIN_UPDATE), "update"); }

static void test_config_errors_name_the_field(void) {
  sm_type_t *st = schema();
  agg_spec_t a;
  CU_ASSERT_EQUAL_FATAL(agg_spec_parse("count(*)", &a, NULL), ED_OK);
  struct {
    int64_t size, slide, start;
    const char *time;
    win_mode_t mode;
    bool wm;
    const char *want;
  } t[] = {
      {0, 0, 0, "ts", WIN_UPDATE, true, "size 0 us"},
      {-5, 0, 0, "ts", WIN_UPDATE, true, "size -5 us"},
      {10 * MIN, -1, 0, "ts", WIN_UPDATE, true, "slide -1 us"},
      {10 * MIN, 3 * MIN, 0, "ts", WIN_UPDATE, true, "not a multiple of the slide"},
      {10 * MIN, 5 * MIN, 5 * MIN, "ts", WIN_UPDATE, true, "|start| < slide"},
      {10 * MIN, 0, 0, "cat", WIN_UPDATE, true, "expected TIMESTAMP, got STRING"},
      {10 * MIN, 0, 0, "nope", WIN_UPDATE, true, "'nope': not in the input schema"},
      {10 * MIN, 0, 0, "ts", WIN_APPEND, false, "append output mode needs a watermark"},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    win_spec_t sp = {.time_col = t[i].time,
                     .time_index = -1,
                     .size_us = t[i].size,
                     .slide_us = t[i].slide,
                     .start_us = t[i].start,
                     .watermark = t[i].wm,
                     .aggs = &a,
                     .naggs = 1,
                     .mode = t[i].mode};
    ed_err_t e = {0};
    win_t *w = NULL;
    CU_ASSERT_EQUAL(win_new(&sp, st, &w, &e), ED_E_CONFIG);
    CU_ASSERT_PTR_NULL(w);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, t[i].want));
    if (!strstr(e.msg, t[i].want))
      fprintf(stderr, "case %zu: %s\n", i, e.msg);
  }
  agg_spec_fini(&a);
  CU_ASSERT_EQUAL_FATAL(agg_spec_parse("sum(cat) AS s", &a, NULL), ED_OK);
  win_spec_t sp = {.time_col = "ts",
                   .time_index = -1,
                   .size_us = MIN,
                   .aggs = &a,
                   .naggs = 1,
                   .mode = WIN_UPDATE};
  ed_err_t e = {0};
  win_t *w = NULL;
  CU_ASSERT_EQUAL(win_new(&sp, st, &w, &e), ED_E_CONFIG);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "sum(cat): expected a numeric column"));
  if (!strstr(e.msg, "sum(cat)"))
    fprintf(stderr, "%s\n", e.msg);
  agg_spec_fini(&a);
  sm_type_free(st);
}

/* The tutorial's first query: 5-minute tumbling windows by category, append. */
static void test_tumbling_append_emits_once_watermark_passes_end(void) {
  fx_t f;
  const char *aggs[] = {"count(*) AS txn_count", "sum(amount) AS total_amount",
                        "avg(amount) AS avg_amount", "max(amount) AS max_amount", NULL};
  fx_open(&f, WIN_APPEND, 5 * MIN, 0, aggs);
  row(f.in, 1 * MIN, "Books", 10);
  row(f.in, 2 * MIN, "Books", 20);
  row(f.in, 3 * MIN, "Home", 5);
  row(f.in, 6 * MIN, "Books", 7);
  fx_batch(&f);
  CU_ASSERT_EQUAL(f.out->nrows, 0); /* watermark -4 min: nothing closed */
  CU_ASSERT_EQUAL(win_watermark(f.w), -4 * MIN);
  row(f.in, 16 * MIN, "Home", 1); /* watermark -> 6 min: [0,5) closes */
  fx_batch(&f);
  CU_ASSERT_EQUAL_FATAL(f.out->nrows, 2);
  char buf[64];
  CU_ASSERT_EQUAL(f.out->cols[0].v.i64[0], 0);
  CU_ASSERT_EQUAL(f.out->cols[1].v.i64[0], 5 * MIN);
  CU_ASSERT_STR(key_at(f.out, 2, 0, buf), "Books");
  CU_ASSERT_EQUAL(f.out->cols[3].v.i64[0], 2);
  CU_ASSERT_DOUBLE_EQUAL(f.out->cols[4].v.f64[0], 30, 1e-9);
  CU_ASSERT_DOUBLE_EQUAL(f.out->cols[5].v.f64[0], 15, 1e-9);
  CU_ASSERT_DOUBLE_EQUAL(f.out->cols[6].v.f64[0], 20, 1e-9);
  CU_ASSERT_STR(key_at(f.out, 2, 1, buf), "Home");
  CU_ASSERT_STR(win_output_schema(f.w)->fields[3].name, "txn_count");
  win_stats_t st;
  win_get_stats(f.w, &st);
  CU_ASSERT_EQUAL(st.num_rows_removed, 2);
  CU_ASSERT_EQUAL(st.num_rows_total, 2); /* [5,10) Books, [15,20) Home */
  CU_ASSERT_TRUE(st.memory_used_bytes > 0);
  /* a late row for [0,5) (end 5 <= watermark 6) is dropped and counted;
   * one for [5,10) (end 10 > 6) still counts */
  row(f.in, 4 * MIN, "Books", 100);
  row(f.in, 9 * MIN, "Books", 1);
  fx_batch(&f);
  win_get_stats(f.w, &st);
  CU_ASSERT_EQUAL(st.num_rows_dropped_by_watermark, 1);
  CU_ASSERT_EQUAL(st.input_rows, 2);
  CU_ASSERT_EQUAL(st.event_time_min, 4 * MIN);
  CU_ASSERT_EQUAL(st.event_time_max, 9 * MIN);
  CU_ASSERT_EQUAL(f.out->nrows, 0);
  row(f.in, 30 * MIN, "X", 1); /* watermark 20: [5,10) and [15,20) close */
  fx_batch(&f);
  CU_ASSERT_EQUAL_FATAL(f.out->nrows, 2);
  CU_ASSERT_EQUAL(f.out->cols[0].v.i64[0], 5 * MIN);
  CU_ASSERT_EQUAL(f.out->cols[3].v.i64[0], 2);
  CU_ASSERT_DOUBLE_EQUAL(f.out->cols[4].v.f64[0], 8, 1e-9);
  fx_close(&f);
}

/* The tutorial's second query: 10-minute windows sliding by 5; a row late for
 * one of its windows still counts in the other. */
static void test_sliding_row_counts_in_its_open_window_only(void) {
  fx_t f;
  const char *aggs[] = {"count(*) AS txn_count", "sum(amount) AS revenue", NULL};
  fx_open(&f, WIN_UPDATE, 10 * MIN, 5 * MIN, aggs);
  row(f.in, 7 * MIN, "US", 1);
  fx_batch(&f);
  CU_ASSERT_EQUAL_FATAL(f.out->nrows, 2); /* [0,10) and [5,15) */
  CU_ASSERT_EQUAL(f.out->cols[0].v.i64[0], 0);
  CU_ASSERT_EQUAL(f.out->cols[0].v.i64[1], 5 * MIN);
  row(f.in, 20 * MIN, "US", 1); /* watermark 10 min: [0,10) closes */
  fx_batch(&f);
  CU_ASSERT_EQUAL(f.out->nrows, 2); /* [15,25) and [20,30) */
  row(f.in, 8 * MIN, "US", 5);      /* [0,10) late; [5,15) open */
  fx_batch(&f);
  win_stats_t st;
  win_get_stats(f.w, &st);
  CU_ASSERT_EQUAL(st.num_rows_dropped_by_watermark, 0);
  CU_ASSERT_EQUAL(st.num_rows_updated, 1);
  CU_ASSERT_EQUAL_FATAL(f.out->nrows, 1);
  CU_ASSERT_EQUAL(f.out->cols[0].v.i64[0], 5 * MIN);
  CU_ASSERT_EQUAL(f.out->cols[3].v.i64[0], 2);
  CU_ASSERT_DOUBLE_EQUAL(f.out->cols[4].v.f64[0], 6, 1e-9);
  row(f.in, 2 * MIN, "US", 5); /* both of its windows closed */
  fx_batch(&f);
  win_get_stats(f.w, &st);
  CU_ASSERT_EQUAL(st.num_rows_dropped_by_watermark, 1);
  CU_ASSERT_EQUAL(f.out->nrows, 0);
  fx_close(&f);
}

static void test_null_key_is_a_group_and_null_time_is_counted(void) {
  fx_t f;
  const char *aggs[] = {"count(*)", "count(amount)", "sum(amount)", "min(cat)", NULL};
  fx_open(&f, WIN_COMPLETE, 5 * MIN, 0, aggs);
  row(f.in, MIN, NULL, 1);
  row(f.in, MIN, NULL, NAN);
  row(f.in, MIN, "a", NAN);
  row(f.in, INT64_MIN, "a", 3);
  fx_batch(&f);
  CU_ASSERT_EQUAL_FATAL(f.out->nrows, 2);
  char buf[64];
  CU_ASSERT_STR(key_at(f.out, 2, 0, buf), "NULL");
  CU_ASSERT_EQUAL(f.out->cols[3].v.i64[0], 2);
  CU_ASSERT_EQUAL(f.out->cols[4].v.i64[0], 1);
  CU_ASSERT_STR(key_at(f.out, 2, 1, buf), "a");
  CU_ASSERT_FALSE(f.out->cols[5].valid[1]); /* sum of only nulls is NULL */
  CU_ASSERT_STR(key_at(f.out, 6, 1, buf), "a");
  CU_ASSERT_STR(win_output_schema(f.w)->fields[3].name, "count(1)");
  CU_ASSERT_STR(win_output_schema(f.w)->fields[5].name, "sum(amount)");
  win_stats_t st;
  win_get_stats(f.w, &st);
  CU_ASSERT_EQUAL(st.null_event_time, 1);
  /* complete mode keeps everything and drops nothing, however late */
  row(f.in, 100 * MIN, "a", 1);
  fx_batch(&f);
  row(f.in, MIN, "a", 1);
  fx_batch(&f);
  CU_ASSERT_EQUAL(f.out->nrows, 3);
  win_get_stats(f.w, &st);
  CU_ASSERT_EQUAL(st.num_rows_dropped_by_watermark, 0);
  CU_ASSERT_EQUAL(st.num_rows_total, 3);
  fx_close(&f);
}

static void test_future_rows_beyond_skew_are_refused(void) {
  fx_t f;
  const char *aggs[] = {"count(*)", NULL};
  memset(&f, 0, sizeof f);
  fx_open(&f, WIN_UPDATE, 5 * MIN, 0, aggs);
  sm_batch_free(f.out);
  win_free(f.w);
  f.sp.max_future_us = 60 * MIN;
  CU_ASSERT_EQUAL_FATAL(win_new(&f.sp, f.st, &f.w, NULL), ED_OK);
  f.out = sm_batch_new(win_output_schema(f.w));
  win_set_now(f.w, 1000 * MIN);
  row(f.in, 1000 * MIN, "a", 1);
  row(f.in, 1061 * MIN, "a", 1); /* an hour and a minute ahead */
  fx_batch(&f);
  win_stats_t st;
  win_get_stats(f.w, &st);
  CU_ASSERT_EQUAL(st.future_event_time, 1);
  CU_ASSERT_EQUAL(st.watermark_us, 990 * MIN); /* the bogus row did not move it */
  CU_ASSERT_EQUAL(f.out->nrows, 1);
  fx_close(&f);
}

static void test_window_struct_output(void) {
  sm_type_t *st = schema();
  agg_spec_t a;
  agg_spec_parse("count(*) AS c", &a, NULL);
  win_spec_t sp = {.time_col = "ts",
                   .time_index = -1,
                   .size_us = 5 * MIN,
                   .aggs = &a,
                   .naggs = 1,
                   .mode = WIN_UPDATE,
                   .window_struct = true};
  win_t *w = NULL;
  CU_ASSERT_EQUAL_FATAL(win_new(&sp, st, &w, NULL), ED_OK);
  const sm_type_t *os = win_output_schema(w);
  CU_ASSERT_EQUAL(os->nfields, 2);
  CU_ASSERT_STR(os->fields[0].name, "window");
  CU_ASSERT_EQUAL(os->fields[0].type->kind, SM_STRUCT);
  CU_ASSERT_STR(os->fields[0].type->fields[1].name, "end");
  sm_batch_t *in = sm_batch_new(st), *out = sm_batch_new(os);
  row(in, 12 * MIN, "x", 1);
  CU_ASSERT_EQUAL(win_update(w, in, NULL, 0, NULL), ED_OK);
  win_end_batch(w);
  CU_ASSERT_EQUAL(win_emit(w, out, NULL), ED_OK);
  CU_ASSERT_EQUAL_FATAL(out->nrows, 1);
  CU_ASSERT_EQUAL(out->cols[0].children[0].v.i64[0], 10 * MIN);
  CU_ASSERT_EQUAL(out->cols[0].children[1].v.i64[0], 15 * MIN);
  sm_batch_free(in);
  sm_batch_free(out);
  win_free(w);
  agg_spec_fini(&a);
  sm_type_free(st);
}

static void test_selection_limits_rows(void) {
  fx_t f;
  const char *aggs[] = {"count(*)", NULL};
  fx_open(&f, WIN_UPDATE, 5 * MIN, 0, aggs);
  for (int i = 0; i < 10; i++)
    row(f.in, MIN, "a", i);
  uint32_t bad[] = {1, 10};
  ed_err_t e = {0};
  CU_ASSERT_EQUAL(win_update(f.w, f.in, bad, 2, &e), ED_E_INVALID);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "selected row 10 of a batch of 10 rows"));
  sm_type_t *other = sm_type_new(SM_STRUCT);
  sm_type_add_field(other, "ts", sm_type_new(SM_STRING), true, NULL);
  sm_batch_t *ob = sm_batch_new(other);
  CU_ASSERT_EQUAL(win_update(f.w, ob, NULL, 0, &e), ED_E_SCHEMA);
  sm_batch_free(ob);
  sm_type_free(other);
  uint32_t sel[] = {1, 3, 5};
  CU_ASSERT_EQUAL(win_update(f.w, f.in, sel, 3, NULL), ED_OK);
  win_end_batch(f.w);
  CU_ASSERT_EQUAL(win_emit(f.w, f.out, NULL), ED_OK);
  CU_ASSERT_EQUAL(f.out->cols[3].v.i64[0], 3);
  uint8_t mask[10] = {1, 1, 0, 0, 0, 0, 0, 0, 0, 1};
  CU_ASSERT_EQUAL(win_update_mask(f.w, f.in, mask, NULL), ED_OK);
  win_end_batch(f.w);
  CU_ASSERT_EQUAL(win_emit(f.w, f.out, NULL), ED_OK);
  CU_ASSERT_EQUAL(f.out->cols[3].v.i64[0], 6);
  fx_close(&f);
}

static void part_rows(fx_t *f, size_t part, const int64_t *ts, size_t n) {
  for (size_t i = 0; i < n; i++)
    row(f->in, ts[i], "a", 1);
  ed_err_t e = {0};
  CU_ASSERT_EQUAL(win_update_part(f->w, f->in, NULL, part, &e), ED_OK);
  sm_batch_reset(f->in);
}

static void end_emit(fx_t *f) {
  win_end_batch(f->w);
  CU_ASSERT_EQUAL(win_emit(f->w, f->out, NULL), ED_OK);
}

static uint64_t dropped(const win_t *w, size_t part, bool total) {
  uint64_t b, t;
  win_part_dropped(w, part, &b, &t);
  return total ? t : b;
}

/* The watermark is the minimum over the partitions not idle of (largest event
 * time - delay); one without an event time holds it; an idle one does not, and
 * when it comes back its rows for windows the others closed are late. A row
 * is late against its own partition's watermark, counted on that partition. */
static void test_watermark_is_the_minimum_over_partitions_not_idle(void) {
  const char *aggs[] = {"count(*)", NULL};
  fx_t f;
  fx_open(&f, WIN_APPEND, 5 * MIN, 0, aggs);
  const char *ids[] = {"0", "1", "2"};
  CU_ASSERT_EQUAL_FATAL(win_set_partitions(f.w, ids, 3, NULL), ED_OK);
  CU_ASSERT_EQUAL(win_partitions(f.w), 3);
  part_rows(&f, 0, (int64_t[]){100 * MIN}, 1);
  part_rows(&f, 1, (int64_t[]){20 * MIN}, 1);
  end_emit(&f);
  CU_ASSERT_EQUAL(win_watermark(f.w), INT64_MIN); /* partition 2 has no time yet */
  CU_ASSERT_EQUAL(win_part_time(f.w, 0), 100 * MIN);
  CU_ASSERT_EQUAL(win_part_time(f.w, 2), INT64_MIN);
  win_set_idle(f.w, 2, true);
  end_emit(&f);
  CU_ASSERT_EQUAL(win_watermark(f.w), 10 * MIN); /* min(90, 10): not Spark's 90 */
  /* 21 min on 1: kept; 8 min on 1: its window [5, 10) ends at 1's watermark;
   * 30 min on 0: late against 0's own 90 min, though the watermark is 10 */
  part_rows(&f, 1, (int64_t[]){21 * MIN, 8 * MIN}, 2);
  part_rows(&f, 0, (int64_t[]){30 * MIN}, 1);
  end_emit(&f);
  CU_ASSERT_EQUAL(win_watermark(f.w), 11 * MIN);
  CU_ASSERT_EQUAL(dropped(f.w, 0, false), 1);
  CU_ASSERT_EQUAL(dropped(f.w, 1, false), 1);
  CU_ASSERT_EQUAL(dropped(f.w, 2, false), 0);
  /* 2 comes back behind: [0, 5) is closed (5 <= 11), [10, 15) is not */
  win_set_idle(f.w, 2, false);
  part_rows(&f, 2, (int64_t[]){3 * MIN, 12 * MIN}, 2);
  end_emit(&f);
  CU_ASSERT_EQUAL(dropped(f.w, 2, false), 1);
  CU_ASSERT_EQUAL(dropped(f.w, 0, false), 0);
  CU_ASSERT_EQUAL(dropped(f.w, 0, true), 1);
  CU_ASSERT_EQUAL(win_watermark(f.w), 11 * MIN); /* 2's 2 min: never moved back */
  ed_err_t e = {0};
  CU_ASSERT_EQUAL(win_update_part(f.w, f.in, NULL, 3, &e), ED_E_INVALID);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "partition index 3: expected < 3"));
  fx_close(&f);
}

/* Rows kept do not depend on where batches are cut: the same partition order
 * in one batch or a batch per row drops the same rows. */
static void test_lateness_does_not_depend_on_batches(void) {
  const char *aggs[] = {"count(*)", NULL};
  int64_t ts[] = {0, 30 * MIN, 5 * MIN, 25 * MIN, 21 * MIN, 19 * MIN, 40 * MIN, 31 * MIN};
  size_t n = sizeof ts / sizeof ts[0];
  uint64_t got[2];
  uint64_t emitted[2];
  for (int split = 0; split < 2; split++) {
    fx_t f;
    fx_open(&f, WIN_APPEND, 5 * MIN, 0, aggs);
    if (split) {
      for (size_t i = 0; i < n; i++) {
        part_rows(&f, 0, &ts[i], 1);
        end_emit(&f);
      }
    } else {
      part_rows(&f, 0, ts, n);
      end_emit(&f);
    }
    got[split] = dropped(f.w, 0, true);
    win_stats_t st;
    win_get_stats(f.w, &st);
    emitted[split] = st.total_input_rows - st.total_dropped_by_watermark;
    fx_close(&f);
  }
  /* 5 (< 30 - 10 = 20: its window ends at 10) and 19 ([15, 20) ends at 20) */
  CU_ASSERT_EQUAL(got[0], 2);
  CU_ASSERT_EQUAL(got[1], 2);
  CU_ASSERT_EQUAL(emitted[0], emitted[1]);
}

/* Partition event times and drop counts come back by partition id (in any
 * order); a version-1 state (no partitions) is still read; another version is
 * refused by name. */
static void test_state_restores_partition_times_and_reads_version_1(void) {
  const char *aggs[] = {"count(*)", NULL};
  fx_t a, b;
  fx_open(&a, WIN_APPEND, 5 * MIN, 0, aggs);
  fx_open(&b, WIN_APPEND, 5 * MIN, 0, aggs);
  const char *ids[] = {"0", "1"}, *rev[] = {"1", "7", "0"};
  CU_ASSERT_EQUAL_FATAL(win_set_partitions(a.w, ids, 2, NULL), ED_OK);
  CU_ASSERT_EQUAL_FATAL(win_set_partitions(b.w, rev, 3, NULL), ED_OK);
  part_rows(&a, 0, (int64_t[]){50 * MIN, 20 * MIN}, 2);
  part_rows(&a, 1, (int64_t[]){30 * MIN}, 1);
  end_emit(&a);
  ed_buf_t saved = ED_BUF_INIT;
  ed_err_t e = {0};
  CU_ASSERT_EQUAL_FATAL(win_state_save(a.w, &saved, &e), ED_OK);
  CU_ASSERT_EQUAL_FATAL(win_state_load(b.w, saved.data, saved.len, &e), ED_OK);
  CU_ASSERT_EQUAL(win_watermark(b.w), 20 * MIN);
  CU_ASSERT_EQUAL(win_part_time(b.w, 0), 30 * MIN);
  CU_ASSERT_EQUAL(win_part_time(b.w, 1), INT64_MIN);
  CU_ASSERT_EQUAL(win_part_time(b.w, 2), 50 * MIN);
  CU_ASSERT_EQUAL(dropped(b.w, 2, true), 1);
  /* version 1: magic, version, fingerprint, watermark, 3 totals, 0 rows, hash */
  ed_buf_t v1 = ED_BUF_INIT;
  uint64_t fp;
  const uint8_t *q = (const uint8_t *)saved.data + 8;
  ed_get_u64le(&q, q + 8, &fp);
  uint64_t hdr[] = {fp, (uint64_t)(7 * MIN), 3, 1, 0, 0};
  CU_ASSERT_EQUAL(agg_state_head(&v1, "EDWS", 1, hdr, 6), ED_OK);
  CU_ASSERT_EQUAL(agg_state_seal(&v1, 0), ED_OK);
  CU_ASSERT_EQUAL_FATAL(win_state_load(b.w, v1.data, v1.len, &e), ED_OK);
  CU_ASSERT_EQUAL(win_watermark(b.w), 7 * MIN);
  CU_ASSERT_EQUAL(win_part_time(b.w, 2), INT64_MIN);
  saved.data[4] = 3;
  CU_ASSERT_EQUAL(win_state_load(b.w, saved.data, saved.len, &e), ED_E_UNSUPPORTED);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "version 3, expected 2"));
  ed_buf_fini(&v1);
  ed_buf_fini(&saved);
  fx_close(&a);
  fx_close(&b);
}

/* Saved mid-stream and restored into a fresh operator, the output goes on
 * exactly as in an uninterrupted run; damaged bytes are refused. */
static void test_state_roundtrip_continues_identically_and_rejects_damage(void) {
  const char *aggs[] = {"count(*)",          "sum(n)",   "avg(amount)", "min(cat)",
                        "count(DISTINCT n)", "first(n)", "last(cat)",   NULL};
  fx_t a, b;
  fx_open(&a, WIN_APPEND, 5 * MIN, 0, aggs);
  fx_open(&b, WIN_APPEND, 5 * MIN, 0, aggs);
  srand(7);
  const char *cats[] = {"a", "b", NULL, "d"};
  ed_buf_t saved = ED_BUF_INIT;
  for (int batch = 0; batch < 12; batch++) {
    for (int i = 0; i < 50; i++) {
      int64_t ts = (batch * 3 + rand() % 20 - 10) * MIN + rand() % 1000;
      const char *c = cats[rand() % 4];
      double amt = rand() % 5 ? rand() % 100 : NAN;
      row(a.in, ts, c, amt);
      row(b.in, ts, c, amt);
    }
    fx_batch(&a);
    fx_batch(&b);
    if (batch == 5) {
      CU_ASSERT_EQUAL(win_state_save(b.w, &saved, NULL), ED_OK);
      /* damage: flipped byte, truncation, wrong query */
      ed_err_t e = {0};
      saved.data[saved.len / 2] ^= 1;
      CU_ASSERT_EQUAL(win_state_load(b.w, saved.data, saved.len, &e), ED_E_CORRUPT);
      saved.data[saved.len / 2] ^= 1;
      CU_ASSERT_EQUAL(win_state_load(b.w, saved.data, saved.len - 3, &e), ED_E_CORRUPT);
      fx_t other;
      const char *oaggs[] = {"count(*)", NULL};
      fx_open(&other, WIN_APPEND, 5 * MIN, 0, oaggs);
      CU_ASSERT_EQUAL(win_state_load(other.w, saved.data, saved.len, &e), ED_E_CONFIG);
      fx_close(&other);
      /* restore into a brand-new operator */
      sm_batch_free(b.out);
      win_free(b.w);
      CU_ASSERT_EQUAL_FATAL(win_new(&b.sp, b.st, &b.w, NULL), ED_OK);
      b.out = sm_batch_new(win_output_schema(b.w));
      CU_ASSERT_EQUAL_FATAL(win_state_load(b.w, saved.data, saved.len, &e), ED_OK);
      CU_ASSERT_EQUAL(win_watermark(b.w), win_watermark(a.w));
    }
    CU_ASSERT_EQUAL_FATAL(a.out->nrows, b.out->nrows);
    for (size_t c = 0; a.out->nrows && c < a.out->schema->nfields; c++) {
      const sm_col_t *x = &a.out->cols[c], *y = &b.out->cols[c];
      CU_ASSERT_EQUAL(memcmp(x->valid, y->valid, a.out->nrows), 0);
      if (x->off) {
        CU_ASSERT_EQUAL(memcmp(x->off, y->off, (a.out->nrows + 1) * 4), 0);
        if (x->off[a.out->nrows]) {
          CU_ASSERT_EQUAL(memcmp(x->data, y->data, x->off[a.out->nrows]), 0);
        }
      } else {
        size_t w = x->type->kind == SM_INT ? 4 : 8;
        for (size_t r = 0; r < a.out->nrows; r++)
          if (x->valid[r]) {
            CU_ASSERT_EQUAL(memcmp((char *)x->v.i64 + r * w, (char *)y->v.i64 + r * w, w), 0);
          }
      }
    }
  }
  win_stats_t sa, sb;
  win_get_stats(a.w, &sa);
  win_get_stats(b.w, &sb);
  CU_ASSERT_EQUAL(sa.total_emitted, sb.total_emitted);
  CU_ASSERT_TRUE(sa.total_emitted > 10);
  ed_buf_fini(&saved);
  fx_close(&a);
  fx_close(&b);
}

static const cu_case_t cases[] = {
    CU_CASE(test_alignment_follows_spark_including_negative_and_offset),
    CU_CASE(test_mode_names),
    CU_CASE(test_config_errors_name_the_field),
    CU_CASE(test_tumbling_append_emits_once_watermark_passes_end),
    CU_CASE(test_sliding_row_counts_in_its_open_window_only),
    CU_CASE(test_null_key_is_a_group_and_null_time_is_counted),
    CU_CASE(test_future_rows_beyond_skew_are_refused),
    CU_CASE(test_window_struct_output),
    CU_CASE(test_selection_limits_rows),
    CU_CASE(test_state_roundtrip_continues_identically_and_rejects_damage),
    CU_CASE(test_watermark_is_the_minimum_over_partitions_not_idle),
    CU_CASE(test_lateness_does_not_depend_on_batches),
    CU_CASE(test_state_restores_partition_times_and_reads_version_1),
    CU_END,
};
ED_SUITE(win_window, cases)
