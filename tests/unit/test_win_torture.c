/* Allocation failures in windows, aggregates and dedup: every failing
 * allocation is reported (ED_E_NOMEM) or survived, never a crash, never a
 * leak (ASan), across update, emit, save and restore. */
#include <stdio.h>
#include <stdlib.h>

#include "common/time.h"
#include "stream/dedup.h"
#include "stream/window.h"
#include "tests/unit/cu.h"
#include "tests/unit/torture.h"

#define MIN ED_US_PER_MIN

static sm_type_t *g_st;
static sm_batch_t *g_in[3];
static agg_spec_t g_aggs[10];
static ed_err_t g_err;

static void setup(void) {
  g_st = sm_type_new(SM_STRUCT);
  sm_type_add_field(g_st, "ts", sm_type_new(SM_TIMESTAMP), true, NULL);
  sm_type_add_field(g_st, "k", sm_type_new(SM_STRING), true, NULL);
  sm_type_add_field(g_st, "n", sm_type_new(SM_BIGINT), true, NULL);
  sm_type_add_field(g_st, "v", sm_type_new(SM_DOUBLE), true, NULL);
  const char *texts[] = {"count(*)",
                         "count(n)",
                         "sum(n)",
                         "avg(v)",
                         "min(k)",
                         "max(v)",
                         "first(k)",
                         "last(n)",
                         "count(DISTINCT k)",
                         "approx_count_distinct(n)"};
  for (int i = 0; i < 10; i++)
    agg_spec_parse(texts[i], &g_aggs[i], NULL);
  char key[16];
  for (int b = 0; b < 3; b++) {
    g_in[b] = sm_batch_new(g_st);
    for (int i = 0; i < 40; i++) {
      sm_col_append_i64(&g_in[b]->cols[0], (b * 7 + i % 9) * MIN);
      int l = snprintf(key, sizeof key, "key-%d", (i * 7 + b) % 13);
      if (i % 11 == 0)
        sm_col_append_null(&g_in[b]->cols[1]);
      else
        sm_col_append_str(&g_in[b]->cols[1], key, (size_t)l);
      sm_col_append_i64(&g_in[b]->cols[2], i);
      sm_col_append_f64(&g_in[b]->cols[3], i * 0.5);
      g_in[b]->nrows++;
    }
  }
}

static void teardown(void) {
  for (int b = 0; b < 3; b++)
    sm_batch_free(g_in[b]);
  for (int i = 0; i < 10; i++)
    agg_spec_fini(&g_aggs[i]);
  sm_type_free(g_st);
}

static ed_code_t batch(win_t *w, sm_batch_t *out, int b, ed_err_t *e) {
  ed_code_t rc = win_update(w, g_in[b], NULL, 0, e);
  if (rc)
    return rc;
  win_end_batch(w);
  return win_emit(w, out, e);
}

static ed_code_t op_window(win_mode_t mode, bool wstruct) {
  const char *keys[] = {"k"};
  win_spec_t sp = {.time_col = "ts",
                   .time_index = -1,
                   .size_us = 10 * MIN,
                   .slide_us = 5 * MIN,
                   .watermark = true,
                   .delay_us = 5 * MIN,
                   .keys = keys,
                   .nkeys = 1,
                   .aggs = g_aggs,
                   .naggs = 10,
                   .mode = mode,
                   .window_struct = wstruct};
  win_t *w = NULL, *w2 = NULL;
  sm_batch_t *out = NULL, *out2 = NULL;
  ed_buf_t sv = ED_BUF_INIT;
  ed_err_t e = {0};
  ed_code_t rc = win_new(&sp, g_st, &w, &e);
  if (!rc && !(out = sm_batch_new(win_output_schema(w))))
    rc = ED_E_NOMEM;
  for (int b = 0; b < 2 && !rc; b++)
    rc = batch(w, out, b, &e);
  if (!rc)
    rc = win_state_save(w, &sv, &e);
  if (!rc)
    rc = win_new(&sp, g_st, &w2, &e);
  if (!rc)
    rc = win_state_load(w2, sv.data, sv.len, &e);
  if (!rc && !(out2 = sm_batch_new(win_output_schema(w2))))
    rc = ED_E_NOMEM;
  if (!rc)
    rc = batch(w2, out2, 2, &e);
  g_err = e;
  ed_buf_fini(&sv);
  sm_batch_free(out);
  sm_batch_free(out2);
  win_free(w);
  win_free(w2);
  return rc;
}

static ed_code_t op_append(void) { return op_window(WIN_APPEND, false); }
static ed_code_t op_update_struct(void) { return op_window(WIN_UPDATE, true); }

static ed_code_t op_dedup(void) {
  const char *keys[] = {"k", "n"};
  dd_spec_t sp = {
      .time_col = "ts", .time_index = -1, .delay_us = 3 * MIN, .keys = keys, .nkeys = 2};
  dd_t *d = NULL, *d2 = NULL;
  ed_buf_t sv = ED_BUF_INIT;
  ed_err_t e = {0};
  uint32_t keep[40];
  uint8_t mask[40];
  size_t nk;
  ed_code_t rc = dd_new(&sp, g_st, &d, &e);
  for (int b = 0; b < 2 && !rc; b++) {
    rc = dd_update(d, g_in[b], NULL, 0, keep, &nk, &e);
    dd_end_batch(d);
  }
  if (!rc)
    rc = dd_state_save(d, &sv, &e);
  if (!rc)
    rc = dd_new(&sp, g_st, &d2, &e);
  if (!rc)
    rc = dd_state_load(d2, sv.data, sv.len, &e);
  if (!rc)
    rc = dd_update_mask(d2, g_in[2], NULL, mask, &nk, &e);
  g_err = e;
  ed_buf_fini(&sv);
  dd_free(d);
  dd_free(d2);
  return rc;
}

typedef ed_code_t (*op_fn)(void);
static void torture(op_fn op) {
  torture_fail_at(0);
  CU_ASSERT_EQUAL_FATAL(op(), ED_OK);
  size_t n = torture_count();
  CU_ASSERT_TRUE(n > 10);
  for (size_t i = 1; i <= n; i++) {
    torture_fail_at(i);
    ed_code_t rc = op();
    bool ok = rc == ED_OK || rc == ED_E_NOMEM || !torture_failed();
    CU_ASSERT_TRUE(ok);
    if (!ok) {
      printf("allocation %zu of %zu: %s: %s\n", i, n, ed_code_name(rc), g_err.msg);
      break;
    }
  }
  torture_fail_at(0);
}

static void test_window_append_survives_allocation_failures(void) {
  setup();
  torture(op_append);
  teardown();
}

static void test_window_update_struct_survives_allocation_failures(void) {
  setup();
  torture(op_update_struct);
  teardown();
}

static void test_dedup_survives_allocation_failures(void) {
  setup();
  torture(op_dedup);
  teardown();
}

static const cu_case_t cases[] = {
    CU_CASE(test_window_append_survives_allocation_failures),
    CU_CASE(test_window_update_struct_survives_allocation_failures),
    CU_CASE(test_dedup_survives_allocation_failures),
    CU_END,
};
ED_SUITE(win_torture, cases)
