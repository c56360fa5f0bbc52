/* Allocation failures in the Parquet writer and reader: every failing
 * allocation is reported (ED_E_NOMEM) or survived, never a crash, never a
 * leak (ASan), and a reported success still produces a correct file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "parquet/inspect.h"
#include "parquet/reader.h"
#include "parquet/writer.h"
#include "tests/unit/cu.h"
#include "tests/unit/torture.h"

static ed_code_t buf_sink(void *ctx, const void *p, size_t n, ed_err_t *err) {
  (void)err;
  return ed_buf_append(ctx, p, n);
}

static ed_buf_t g_file; /* a good file for the reader ops */
static ed_err_t g_err;  /* the last op's message, shown on failure */

/* struct<a string, m map<string,int64>>, list<string>, int64: 50 rows. */
static ed_code_t write_file(ed_buf_t *out, bool dict) {
  pq_schema_t *s = NULL;
  pq_writer_t *w = NULL;
  ed_err_t e = {0};
  int st, m, l;
  ed_code_t rc = pq_schema_new(&s, &e);
  if (!rc)
    rc = pq_schema_add(s, PQ_ROOT, "st", PQ_T_STRUCT, PQ_OPTIONAL, &st, &e);
  if (!rc)
    rc = pq_schema_add(s, st, "a", PQ_T_STRING, PQ_OPTIONAL, NULL, &e);
  if (!rc)
    rc = pq_schema_add(s, st, "m", PQ_T_MAP, PQ_OPTIONAL, &m, &e);
  if (!rc)
    rc = pq_schema_add(s, m, "key", PQ_T_STRING, PQ_REQUIRED, NULL, &e);
  if (!rc)
    rc = pq_schema_add(s, m, "value", PQ_T_INT64, PQ_OPTIONAL, NULL, &e);
  if (!rc)
    rc = pq_schema_add(s, PQ_ROOT, "l", PQ_T_LIST, PQ_OPTIONAL, &l, &e);
  if (!rc)
    rc = pq_schema_add(s, l, "element", PQ_T_STRING, PQ_OPTIONAL, NULL, &e);
  if (!rc)
    rc = pq_schema_add(s, PQ_ROOT, "n", PQ_T_INT64, PQ_REQUIRED, NULL, &e);
  pq_writer_opts_t o;
  pq_writer_opts_init(&o);
  o.dictionary = dict;
  o.row_group_bytes = 300;
  if (!rc)
    rc = pq_writer_new(s, &o, buf_sink, out, &w, &e);
  enum { N = 50 };
  static uint8_t valid[N];
  static uint32_t soff[N + 1], moff[N + 1], koff[2 * N + 1], loff[N + 1], eoff[2 * N + 1];
  static int64_t vals[2 * N], n[N];
  static char sdata[N * 4], kdata[2 * N * 4];
  for (int i = 0; i < N; i++) {
    valid[i] = i % 5 != 0;
    soff[i + 1] = soff[i] + (uint32_t)(i % 4);
    moff[i + 1] = moff[i] + (uint32_t)(i % 3);
    loff[i + 1] = loff[i] + (uint32_t)(i % 2);
    n[i] = i * 7;
  }
  for (int i = 0; i < 2 * N; i++) {
    koff[i + 1] = koff[i] + 2;
    eoff[i + 1] = eoff[i] + 1;
    vals[i] = -i;
  }
  memset(sdata, 'x', sizeof sdata);
  for (size_t i = 0; i < sizeof kdata; i++)
    kdata[i] = (char)('a' + i % 26);
  pq_col_t keys = {.len = 2 * N, .off = koff, .data = kdata};
  pq_col_t mv = {.len = 2 * N, .valid = valid, .v.i64 = vals};
  pq_col_t mk[2] = {keys, mv};
  pq_col_t sk[2] = {{.len = N, .valid = valid, .off = soff, .data = sdata},
                    {.len = N, .valid = valid, .off = moff, .nchildren = 2, .children = mk}};
  pq_col_t el = {.len = 2 * N, .valid = valid, .off = eoff, .data = kdata};
  pq_col_t cols[3] = {{.len = N, .valid = valid, .nchildren = 2, .children = sk},
                      {.len = N, .valid = valid, .off = loff, .nchildren = 1, .children = &el},
                      {.len = N, .v.i64 = n}};
  if (!rc)
    rc = pq_writer_write(w, cols, N, &e);
  if (!rc)
    rc = pq_writer_close(w, &e);
  pq_stats_t stt;
  if (!rc)
    rc = pq_writer_stats(w, 0, &stt, &e);
  if (!rc && !(stt.has_min_max && stt.min.len == 0 && stt.max.len == 3))
    rc = ED_E_INTERNAL;
  pq_writer_free(w);
  pq_schema_free(s);
  g_err = e;
  return rc;
}

static ed_code_t op_write(void) {
  ed_buf_t out = ED_BUF_INIT;
  ed_code_t rc = write_file(&out, true);
  /* A success must be byte-identical to the file written without failures. */
  if (!rc && (out.len != g_file.len || memcmp(out.data, g_file.data, out.len)))
    rc = ED_E_INTERNAL;
  ed_buf_fini(&out);
  return rc;
}

static ed_code_t op_read(void) {
  pq_reader_t *r = NULL;
  ed_err_t e = {0};
  ed_code_t rc = pq_reader_open(g_file.data, g_file.len, &r, &e);
  for (size_t g = 0; !rc && g < pq_reader_num_row_groups(r); g++) {
    pq_batch_t *b = NULL;
    rc = pq_reader_read_row_group(r, g, &b, &e);
    pq_batch_free(b);
  }
  pq_reader_free(r);
  ed_buf_t o = ED_BUF_INIT;
  if (!rc)
    rc = pq_inspect(g_file.data, g_file.len, true, &o, &e);
  ed_buf_fini(&o);
  g_err = e;
  return rc;
}

typedef ed_code_t (*op_fn)(void);
static void torture(op_fn op) {
  torture_fail_at(0);
  CU_ASSERT_EQUAL_FATAL(op(), ED_OK);
  size_t n = torture_count();
  CU_ASSERT_TRUE(n > 0);
  for (size_t i = 1; i <= n; i++) {
    torture_fail_at(i);
    ed_code_t rc = op();
    CU_ASSERT_TRUE(rc == ED_OK || rc == ED_E_NOMEM || !torture_failed());
    if (!(rc == ED_OK || rc == ED_E_NOMEM || !torture_failed())) {
      printf("allocation %zu of %zu: %s: %s\n", i, n, ed_code_name(rc), g_err.msg);
      break;
    }
  }
  torture_fail_at(0);
}

static void test_writer_survives_allocation_failures(void) {
  ed_buf_init(&g_file);
  CU_ASSERT_EQUAL_FATAL(write_file(&g_file, true), ED_OK);
  torture(op_write);
  ed_buf_fini(&g_file);
}
static void test_reader_survives_allocation_failures(void) {
  ed_buf_init(&g_file);
  CU_ASSERT_EQUAL_FATAL(write_file(&g_file, false), ED_OK);
  torture(op_read);
  ed_buf_fini(&g_file);
}

static const cu_case_t cases[] = {CU_CASE(test_writer_survives_allocation_failures),
                                  CU_CASE(test_reader_survives_allocation_failures), CU_END};
ED_SUITE(pq_torture, cases)
