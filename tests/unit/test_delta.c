#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <utime.h>

#include "common/time.h"
#include "delta/actions.h"
#include "delta/datafile.h"
#include "delta/features.h"
#include "delta/maint.h"
#include "delta/path.h"
#include "delta/stats.h"
#include "delta/table.h"
#include "tests/unit/cu.h"

static char root[256];
static int seq;

static int setup(void) {
  snprintf(root, sizeof root, "/tmp/ed-delta-XXXXXX");
  return mkdtemp(root) ? 0 : 1;
}

static int teardown(void) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
  return system(cmd) == 0 ? 0 : 1;
}

static const char *SCHEMA = "{\"type\":\"struct\",\"fields\":[{\"name\":\"id\",\"type\":\"long\","
                            "\"nullable\":true,\"metadata\":{}}]}";

/* A fresh table directory and an open store on it. */
static st_store_t *fresh(char *dir, size_t n) {
  snprintf(dir, n, "%s/t%d", root, seq++);
  st_store_t *s = NULL;
  CU_ASSERT_EQUAL_FATAL(st_open(dir, NULL, &s, NULL), ED_OK);
  return s;
}

static dl_table_t *create(st_store_t *s) {
  dl_table_t *t = NULL;
  dl_create_opts_t o = {SCHEMA, NULL, NULL, 0, NULL};
  ed_err_t e = {0};
  CU_ASSERT_EQUAL_FATAL(dl_table_create(s, &o, &t, &e), ED_OK);
  return t;
}

static dl_add_t fake_add(const char *path) {
  dl_add_t a = {0};
  a.path = (char *)path;
  a.size = 100;
  a.mtime_ms = 1;
  a.data_change = true;
  a.stats = (char *)"{\"numRecords\":1}";
  return a;
}

static void test_partition_paths_escape_like_spark(void) {
  static const struct {
    const char *key, *value, *dir, *uri;
  } cases[] = {
      {"as_timestamp", "2021-09-08 11:11:11", "as_timestamp=2021-09-08 11%3A11%3A11/",
       "as_timestamp=2021-09-08%2011%253A11%253A11/"},
      {"_2", "bar+%21", "_2=bar+%2521/", "_2=bar+%252521/"},
      {"d", NULL, "d=__HIVE_DEFAULT_PARTITION__/", "d=__HIVE_DEFAULT_PARTITION__/"},
      {"d", "", "d=__HIVE_DEFAULT_PARTITION__/", "d=__HIVE_DEFAULT_PARTITION__/"},
      {"p", "a/b=c?#", "p=a%2Fb%3Dc%3F%23/", "p=a%252Fb%253Dc%253F%2523/"},
      {"p", "caf\xc3\xa9", "p=caf\xc3\xa9/", "p=caf%C3%A9/"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    dl_kv_t kv = {(char *)cases[i].key, (char *)cases[i].value};
    ed_buf_t d = ED_BUF_INIT, u = ED_BUF_INIT, back = ED_BUF_INIT;
    dl_path_partition_dir(&d, &kv, 1);
    CU_ASSERT_STR(d.data, cases[i].dir);
    dl_path_to_uri(&u, d.data, d.len);
    CU_ASSERT_STR(u.data, cases[i].uri);
    CU_ASSERT_EQUAL(dl_path_from_uri(&back, u.data, NULL), ED_OK);
    CU_ASSERT_STR(back.data, cases[i].dir);
    ed_buf_fini(&d);
    ed_buf_fini(&u);
    ed_buf_fini(&back);
  }
}

static void test_string_stats_truncate_to_32_chars(void) {
  static const struct {
    const char *in, *min, *max;
    bool has_max;
  } cases[] = {
      {"short", "short", "short", true},
      {"0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef",
       "0123456789abcdef0123456789abcdef", true},
      {"0123456789abcdef0123456789abcdefZZ", "0123456789abcdef0123456789abcdef",
       "0123456789abcdef0123456789abcdef\x7f", true},
      {"0123456789abcdef0123456789abcdef\xc3\xa9", "0123456789abcdef0123456789abcdef",
       "0123456789abcdef0123456789abcdef\xf4\x8f\xbf\xbf", true},
      /* 32 two-byte characters then more: the prefix never splits a character */
      {"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
       "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
       "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9x",
       "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
       "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
       "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
       "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
       "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
       "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\x7f",
       true},
      {"0123456789abcdef0123456789abcdef\xf4\x8f\xbf\xbfz", "0123456789abcdef0123456789abcdef", "",
       false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    ed_buf_t mn = ED_BUF_INIT, mx = ED_BUF_INIT;
    dl_stats_trunc_min(cases[i].in, strlen(cases[i].in), &mn);
    CU_ASSERT_STR(mn.data, cases[i].min);
    CU_ASSERT_EQUAL(dl_stats_trunc_max(cases[i].in, strlen(cases[i].in), &mx), cases[i].has_max);
    if (cases[i].has_max)
      CU_ASSERT_STR(mx.data, cases[i].max);
    ed_buf_fini(&mn);
    ed_buf_fini(&mx);
  }
}

static ed_code_t to_buf(void *ctx, const void *d, size_t n, ed_err_t *e) {
  (void)e;
  return ed_buf_append(ctx, d, n);
}

static void test_stats_json_is_exact(void) {
  pq_schema_t *s;
  int st;
  pq_schema_new(&s, NULL);
  pq_schema_add(s, PQ_ROOT, "i", PQ_T_INT32, PQ_OPTIONAL, NULL, NULL);
  pq_schema_add(s, PQ_ROOT, "d", PQ_T_DOUBLE, PQ_OPTIONAL, NULL, NULL);
  pq_schema_add(s, PQ_ROOT, "n", PQ_T_DOUBLE, PQ_OPTIONAL, NULL, NULL);
  pq_schema_add(s, PQ_ROOT, "ts", PQ_T_TIMESTAMP, PQ_OPTIONAL, NULL, NULL);
  pq_schema_add(s, PQ_ROOT, "day", PQ_T_DATE, PQ_OPTIONAL, NULL, NULL);
  pq_schema_add(s, PQ_ROOT, "b", PQ_T_BOOLEAN, PQ_OPTIONAL, NULL, NULL);
  pq_schema_add(s, PQ_ROOT, "st", PQ_T_STRUCT, PQ_OPTIONAL, &st, NULL);
  pq_schema_add(s, st, "name", PQ_T_STRING, PQ_OPTIONAL, NULL, NULL);
  pq_schema_add(s, PQ_ROOT, "allnull", PQ_T_INT64, PQ_OPTIONAL, NULL, NULL);
  int32_t iv[3] = {5, -2, 9}, dv[3] = {0, 19000, 1};
  double d[3] = {1.5, -0.25, 3}, nn[3] = {1, NAN, 2};
  int64_t ts[3] = {1500, 2999, INT64_C(1732406400123456)}, an[3] = {0};
  uint8_t b[3] = {1, 0, 1}, v3[3] = {1, 1, 0}, none[3] = {0};
  uint32_t off[4] = {0, 3, 6, 6};
  pq_col_t name = {.len = 3, .valid = v3, .off = off, .data = "abcxyz"};
  pq_col_t cols[8] = {{.len = 3, .v.i32 = iv},
                      {.len = 3, .v.f64 = d},
                      {.len = 3, .v.f64 = nn},
                      {.len = 3, .v.i64 = ts},
                      {.len = 3, .v.i32 = dv},
                      {.len = 3, .v.b8 = b},
                      {.len = 3, .nchildren = 1, .children = &name},
                      {.len = 3, .valid = none, .v.i64 = an}};
  ed_buf_t file = ED_BUF_INIT, js = ED_BUF_INIT;
  pq_writer_t *w;
  ed_err_t e = {0};
  CU_ASSERT_EQUAL_FATAL(pq_writer_new(s, NULL, to_buf, &file, &w, &e), ED_OK);
  CU_ASSERT_EQUAL_FATAL(pq_writer_write(w, cols, 3, &e), ED_OK);
  CU_ASSERT_EQUAL_FATAL(pq_writer_close(w, &e), ED_OK);
  bool nan[9] = {0};
  dl_stats_scan_nan(pq_writer_schema(w), cols, 3, nan);
  CU_ASSERT(nan[2] && !nan[1]);
  CU_ASSERT_EQUAL(dl_stats_from_writer(w, 0, nan, &js, &e), ED_OK);
  CU_ASSERT_STR(js.data,
                "{\"numRecords\":3,\"minValues\":{\"i\":-2,\"d\":-0.25,\"ts\":\"1970-01-01T00:00:"
                "00.001Z\",\"day\":\"1970-01-01\",\"st\":{\"name\":\"abc\"}},\"maxValues\":{\"i\":"
                "9,\"d\":3,\"ts\":\"2024-11-24T00:00:00.123Z\",\"day\":\"2022-01-08\",\"st\":{"
                "\"name\":\"xyz\"}},\"nullCount\":{\"i\":0,\"d\":0,\"n\":0,\"ts\":0,\"day\":0,"
                "\"b\":0,\"st\":{\"name\":1},\"allnull\":3}}");
  ed_buf_t sj = ED_BUF_INIT;
  CU_ASSERT_EQUAL(dl_schema_from_pq(pq_writer_schema(w), &sj, &e), ED_OK);
  CU_ASSERT(strstr(sj.data, "{\"name\":\"st\",\"type\":{\"type\":\"struct\",\"fields\":[{\"name\""
                            ":\"name\",\"type\":\"string\",\"nullable\":true,\"metadata\":{}}]},"
                            "\"nullable\":true,\"metadata\":{}}") != NULL);
  ed_buf_fini(&sj);
  pq_writer_free(w);
  pq_schema_free(s);
  ed_buf_fini(&file);
  ed_buf_fini(&js);
}

static void test_actions_round_trip(void) {
  ed_buf_t b = ED_BUF_INIT;
  dl_kv_t pv[2] = {{"d", "2024-11-24"}, {"h", NULL}};
  dl_add_t a = {(char *)"d=2024-11-24/x.parquet", pv, 2, 1234, 99, true,
                (char *)"{\"numRecords\":3}"};
  dl_remove_t r = {(char *)"y.parquet", 77, false, pv, 2, 10};
  dl_txn_t x = {(char *)"orders-p0", 1999, 5};
  CU_ASSERT_EQUAL(dl_write_add(&b, &a), ED_OK);
  CU_ASSERT_EQUAL(dl_write_remove(&b, &r), ED_OK);
  CU_ASSERT_EQUAL(dl_write_txn(&b, &x), ED_OK);
  const char *p = b.data;
  dl_action_t got;
  const char *nl = strchr(p, '\n');
  CU_ASSERT_EQUAL_FATAL(dl_action_parse(p, (size_t)(nl - p), &got, NULL), ED_OK);
  CU_ASSERT_EQUAL(got.kind, DL_A_ADD);
  CU_ASSERT_STR(got.u.add.path, a.path);
  CU_ASSERT_EQUAL(got.u.add.size, 1234);
  CU_ASSERT_EQUAL(got.u.add.npv, 2);
  CU_ASSERT(got.u.add.pv[1].value == NULL);
  CU_ASSERT_STR(got.u.add.stats, "{\"numRecords\":3}");
  dl_action_fini(&got);
  p = nl + 1;
  nl = strchr(p, '\n');
  CU_ASSERT_EQUAL_FATAL(dl_action_parse(p, (size_t)(nl - p), &got, NULL), ED_OK);
  CU_ASSERT_EQUAL(got.kind, DL_A_REMOVE);
  CU_ASSERT_EQUAL(got.u.remove.deletion_ts, 77);
  CU_ASSERT_FALSE(got.u.remove.data_change);
  dl_action_fini(&got);
  p = nl + 1;
  nl = strchr(p, '\n');
  CU_ASSERT_EQUAL_FATAL(dl_action_parse(p, (size_t)(nl - p), &got, NULL), ED_OK);
  CU_ASSERT_EQUAL(got.kind, DL_A_TXN);
  CU_ASSERT_EQUAL(got.u.txn.version, 1999);
  dl_action_fini(&got);
  ed_err_t e = {0};
  CU_ASSERT_EQUAL(dl_action_parse("{\"add\":{\"path\":\"x\"", 18, &got, &e), ED_E_CORRUPT);
  CU_ASSERT_EQUAL(dl_action_parse("{\"add\":{\"path\":\"x\"}}", 20, &got, &e), ED_E_CORRUPT);
  ed_buf_fini(&b);
}

static void test_commit_retries_after_conflict(void) {
  char dir[300];
  st_store_t *s = fresh(dir, sizeof dir);
  dl_table_t *a = create(s), *b = NULL;
  CU_ASSERT_EQUAL_FATAL(dl_table_open(s, &b, NULL), ED_OK);
  dl_add_t fa = fake_add("a.parquet"), fb = fake_add("b.parquet");
  dl_commit_t ca = {.adds = &fa, .nadds = 1, .app_id = "A", .txn_version = 1};
  dl_commit_t cb = {.adds = &fb, .nadds = 1, .app_id = "B", .txn_version = 1};
  dl_commit_result_t r;
  CU_ASSERT_EQUAL(dl_table_commit(a, &ca, &r, NULL), ED_OK);
  CU_ASSERT_EQUAL(r.version, 1);
  ed_err_t e = {0};
  CU_ASSERT_EQUAL(dl_table_commit(b, &cb, &r, &e), ED_OK);
  CU_ASSERT_EQUAL(r.version, 2);
  CU_ASSERT_EQUAL(r.attempts, 2);
  CU_ASSERT_EQUAL(dl_table_num_files(b), 2); /* saw the winner's add */
  int64_t v;
  CU_ASSERT(dl_table_txn_version(b, "A", &v) && v == 1);
  dl_table_free(a);
  dl_table_free(b);
  st_free(s);
}

static void test_commit_aborts_on_metadata_change(void) {
  char dir[300];
  st_store_t *s = fresh(dir, sizeof dir);
  dl_table_t *a = create(s);
  const char *md =
      "{\"metaData\":{\"id\":\"x\",\"format\":{\"provider\":\"parquet\",\"options\":{}},"
      "\"schemaString\":\"{}\",\"partitionColumns\":[],\"configuration\":{}}}\n";
  CU_ASSERT_EQUAL(st_put_if_absent(s, "_delta_log/00000000000000000001.json", md, strlen(md), NULL),
                  ED_OK);
  dl_add_t fa = fake_add("a.parquet");
  dl_commit_t c = {.adds = &fa, .nadds = 1};
  ed_err_t e = {0};
  CU_ASSERT_EQUAL(dl_table_commit(a, &c, NULL, &e), ED_E_CONFLICT);
  CU_ASSERT(strstr(e.msg, "metadata") != NULL);
  st_stat_t st;
  CU_ASSERT_EQUAL(st_stat(s, "_delta_log/00000000000000000002.json", &st, NULL), ED_E_NOT_FOUND);
  dl_table_free(a);
  st_free(s);
}

static void test_commit_with_our_app_id_already_landed_is_not_repeated(void) {
  char dir[300];
  st_store_t *s = fresh(dir, sizeof dir);
  dl_table_t *a = create(s), *b = NULL;
  CU_ASSERT_EQUAL_FATAL(dl_table_open(s, &b, NULL), ED_OK);
  dl_add_t f1 = fake_add("1.parquet"), f2 = fake_add("2.parquet");
  dl_commit_t c1 = {.adds = &f1, .nadds = 1, .app_id = "sink-p0", .txn_version = 5};
  dl_commit_t c2 = {.adds = &f2, .nadds = 1, .app_id = "sink-p0", .txn_version = 5};
  dl_commit_result_t r;
  CU_ASSERT_EQUAL(dl_table_commit(a, &c1, &r, NULL), ED_OK);
  CU_ASSERT_EQUAL(dl_table_commit(b, &c2, &r, NULL), ED_OK);
  CU_ASSERT(r.already_committed);
  CU_ASSERT_EQUAL(r.version, 1);
  CU_ASSERT_EQUAL(dl_table_version(b), 1);
  /* the same batch again, now known from the snapshot */
  CU_ASSERT_EQUAL(dl_table_commit(b, &c2, &r, NULL), ED_OK);
  CU_ASSERT(r.already_committed);
  CU_ASSERT_EQUAL(r.attempts, 0);
  dl_table_free(a);
  dl_table_free(b);
  st_free(s);
}

static void test_commit_fences_a_second_writer_of_one_app_id(void) {
  char dir[300];
  st_store_t *s = fresh(dir, sizeof dir);
  dl_table_t *a = create(s), *b = NULL;
  CU_ASSERT_EQUAL_FATAL(dl_table_open(s, &b, NULL), ED_OK);
  dl_add_t f1 = fake_add("1.parquet"), f2 = fake_add("2.parquet");
  dl_commit_t c1 = {.adds = &f1, .nadds = 1, .app_id = "q", .txn_version = 2};
  dl_commit_t c2 = {.adds = &f2, .nadds = 1, .app_id = "q", .txn_version = 7};
  CU_ASSERT_EQUAL(dl_table_commit(a, &c1, NULL, NULL), ED_OK);
  ed_err_t e = {0};
  CU_ASSERT_EQUAL(dl_table_commit(b, &c2, NULL, &e), ED_E_CONFLICT);
  CU_ASSERT(strstr(e.msg, "appId 'q'") != NULL);
  dl_table_free(a);
  dl_table_free(b);
  st_free(s);
}

static void test_compactions_removing_one_file_conflict(void) {
  char dir[300];
  st_store_t *s = fresh(dir, sizeof dir);
  dl_table_t *a = create(s), *b = NULL;
  dl_add_t f[2] = {fake_add("1.parquet"), fake_add("2.parquet")};
  dl_commit_t c = {.adds = f, .nadds = 2};
  CU_ASSERT_EQUAL(dl_table_commit(a, &c, NULL, NULL), ED_OK);
  CU_ASSERT_EQUAL_FATAL(dl_table_open(s, &b, NULL), ED_OK);
  dl_remove_t r = {(char *)"1.parquet", 5, false, NULL, 0, 100};
  dl_commit_t cr = {.removes = &r, .nremoves = 1, .operation = "OPTIMIZE"};
  CU_ASSERT_EQUAL(dl_table_commit(a, &cr, NULL, NULL), ED_OK);
  ed_err_t e = {0};
  CU_ASSERT_EQUAL(dl_table_commit(b, &cr, NULL, &e), ED_E_CONFLICT);
  CU_ASSERT(strstr(e.msg, "1.parquet") != NULL);
  dl_table_free(a);
  dl_table_free(b);
  st_free(s);
}

/* A long-lived reader (the agent's compaction) brings its snapshot forward
 * by the commits since: adds and removes of another writer show. */
static void test_update_reads_only_the_new_commits(void) {
  char dir[300];
  st_store_t *s = fresh(dir, sizeof dir);
  dl_table_t *a = create(s), *b = NULL;
  CU_ASSERT_EQUAL_FATAL(dl_table_open(s, &b, NULL), ED_OK);
  dl_add_t f[2] = {fake_add("1.parquet"), fake_add("2.parquet")};
  dl_commit_t c = {.adds = f, .nadds = 2};
  CU_ASSERT_EQUAL(dl_table_commit(a, &c, NULL, NULL), ED_OK);
  dl_remove_t r = {(char *)"1.parquet", 5, false, NULL, 0, 100};
  dl_commit_t cr = {.removes = &r, .nremoves = 1, .operation = "OPTIMIZE"};
  CU_ASSERT_EQUAL(dl_table_commit(a, &cr, NULL, NULL), ED_OK);
  CU_ASSERT_EQUAL(dl_table_num_files(b), 0);
  CU_ASSERT_EQUAL(dl_table_update(b, NULL), ED_OK);
  CU_ASSERT_EQUAL(dl_table_version(b), 2);
  CU_ASSERT_EQUAL(dl_table_num_files(b), 1);
  CU_ASSERT_STRING_EQUAL(dl_table_file(b, 0)->path, "2.parquet");
  CU_ASSERT_EQUAL(dl_table_update(b, NULL), ED_OK); /* nothing new */
  CU_ASSERT_EQUAL(dl_table_version(b), 2);
  dl_table_free(a);
  dl_table_free(b);
  st_free(s);
}

/* optimize's plan with min_files (the agent's compaction): a partition with
 * no more small files than the bound is left alone; above it only the
 * smallest files of a like size are merged, a big earlier output waits. */
static void test_optimize_min_files_is_size_tiered(void) {
  static const struct {
    int64_t sizes[8];
    size_t n, min_files, removed;
  } cases[] = {
      {{100, 100, 100}, 3, 3, 0},                  /* at the bound */
      {{100, 100, 100, 100}, 4, 3, 4},             /* like sizes: all */
      {{100, 100, 100, 100, 5000}, 5, 3, 4},       /* the big one waits */
      {{100, 100, 100, 100, 400}, 5, 3, 5},        /* ... until they add up to it */
      {{100, 100, 100, 100, 5000}, 5, 0, 5},       /* the CLI's optimize: all */
      {{100, 120, 200, 400, 800, 90000}, 6, 2, 5}, /* tiers */
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char dir[300], names[8][32];
    st_store_t *s = fresh(dir, sizeof dir);
    dl_table_t *t = create(s);
    dl_add_t f[8];
    for (size_t k = 0; k < cases[i].n; k++) {
      snprintf(names[k], sizeof names[k], "%zu.parquet", k);
      f[k] = fake_add(names[k]);
      f[k].size = cases[i].sizes[k];
    }
    dl_commit_t c = {.adds = f, .nadds = cases[i].n};
    CU_ASSERT_EQUAL(dl_table_commit(t, &c, NULL, NULL), ED_OK);
    dl_optimize_opts_t o = {
        .target_size = 1 << 20, .dry_run = true, .min_files = cases[i].min_files};
    dl_optimize_result_t res;
    CU_ASSERT_EQUAL(dl_optimize(t, &o, &res, NULL), ED_OK);
    CU_ASSERT_EQUAL(res.files_removed, cases[i].removed);
    if (res.files_removed != cases[i].removed)
      fprintf(stderr, "case %zu: %zu removed, expected %zu\n", i, res.files_removed,
              cases[i].removed);
    dl_table_free(t);
    st_free(s);
  }
}

static void test_bad_tables_get_one_clear_error(void) {
  char dir[300];
  st_store_t *s = fresh(dir, sizeof dir);
  dl_table_t *t = NULL;
  ed_err_t e = {0};
  CU_ASSERT_EQUAL(dl_table_open(s, &t, &e), ED_E_NOT_FOUND);
  CU_ASSERT(strstr(e.msg, "no Delta table") != NULL);
  dl_table_t *a = create(s);
  dl_table_free(a);
  const char *trunc = "{\"add\":{\"path\":\"x.parquet\",\"size\":1";
  st_put_if_absent(s, "_delta_log/00000000000000000001.json", trunc, strlen(trunc), NULL);
  memset(&e, 0, sizeof e);
  CU_ASSERT_EQUAL(dl_table_open(s, &t, &e), ED_E_CORRUPT);
  CU_ASSERT(strstr(e.msg, "00000000000000000001.json line 1") != NULL);
  st_free(s);

  s = fresh(dir, sizeof dir);
  const char *v0 = "{\"protocol\":{\"minReaderVersion\":3,\"minWriterVersion\":7,"
                   "\"readerFeatures\":[\"deletionVectors\"],\"writerFeatures\":["
                   "\"deletionVectors\"]}}\n{\"metaData\":{\"id\":\"x\",\"schemaString\":\"{}\","
                   "\"partitionColumns\":[],\"configuration\":{}}}\n";
  st_put_if_absent(s, "_delta_log/00000000000000000000.json", v0, strlen(v0), NULL);
  memset(&e, 0, sizeof e);
  CU_ASSERT_EQUAL(dl_table_open(s, &t, &e), ED_E_UNSUPPORTED);
  CU_ASSERT(strstr(e.msg, "deletionVectors") != NULL);
  st_free(s);

  s = fresh(dir, sizeof dir);
  a = create(s);
  dl_table_free(a);
  dl_create_opts_t o = {"{\"type\":\"struct\",\"fields\":[]}", NULL, NULL, 0, NULL};
  memset(&e, 0, sizeof e);
  CU_ASSERT_EQUAL(dl_table_create(s, &o, &t, &e), ED_E_SCHEMA);
  st_free(s);
}

static void test_checkpoint_round_trips_the_snapshot(void) {
  char dir[300];
  st_store_t *s = fresh(dir, sizeof dir);
  dl_table_t *a = create(s), *b = NULL;
  for (int i = 0; i < 12; i++) {
    char p[32];
    snprintf(p, sizeof p, "f%02d.parquet", i);
    dl_add_t f = fake_add(p);
    dl_kv_t pv = {(char *)"d", i % 2 ? (char *)"x" : NULL};
    f.pv = &pv;
    f.npv = 1;
    dl_commit_t c = {.adds = &f, .nadds = 1, .app_id = i % 2 ? "odd" : "even", .txn_version = i};
    dl_commit_result_t r;
    CU_ASSERT_EQUAL(dl_table_commit(a, &c, &r, NULL), ED_OK);
    CU_ASSERT_EQUAL(r.checkpointed, r.version == 10);
  }
  dl_remove_t rm = {(char *)"f03.parquet", ed_time_now_us() / 1000, true, NULL, 0, 100};
  dl_commit_t c = {.removes = &rm, .nremoves = 1};
  CU_ASSERT_EQUAL(dl_table_commit(a, &c, NULL, NULL), ED_OK);
  CU_ASSERT_EQUAL(dl_table_checkpoint(a, NULL), ED_OK);
  /* only the checkpoint may be read: hide the JSON commits */
  for (int v = 0; v <= 13; v++) {
    char n[64];
    dl_log_name(v, ".json", n);
    st_delete(s, n, NULL);
  }
  ed_err_t e = {0};
  CU_ASSERT_EQUAL_FATAL(dl_table_open(s, &b, &e), ED_OK);
  CU_ASSERT_EQUAL(dl_table_version(b), 13);
  CU_ASSERT_EQUAL(dl_table_checkpoint_version(b), 13);
  CU_ASSERT_EQUAL(dl_table_num_files(b), 11);
  CU_ASSERT_EQUAL(dl_table_num_tombstones(b), 1);
  int64_t v;
  CU_ASSERT(dl_table_txn_version(b, "odd", &v) && v == 11);
  CU_ASSERT(dl_table_txn_version(b, "even", &v) && v == 10);
  bool null_pv = false;
  for (size_t i = 0; i < dl_table_num_files(b); i++) {
    const dl_add_t *f = dl_table_file(b, i);
    if (!strcmp(f->path, "f00.parquet"))
      null_pv = f->npv == 1 && f->pv[0].value == NULL;
  }
  CU_ASSERT(null_pv);
  CU_ASSERT_STR(dl_table_metadata(b)->schema_string, SCHEMA);
  dl_table_free(a);
  dl_table_free(b);
  st_free(s);
}

/* A table whose snapshot is large against what is committed (one commit of
 * 300 files, checkpointed, then one file a commit) is not checkpointed at every tenth
 * version: only once the actions since the last checkpoint (an add and a txn
 * a commit) number at least its rows over the interval, 300 / 10 = 30, so
 * at version 20 (38 actions since version 1), not 10 (18). */
static void test_checkpoint_waits_until_the_actions_pay_for_it(void) {
  char dir[300];
  st_store_t *s = fresh(dir, sizeof dir);
  dl_table_t *a = create(s);
  enum { BIG = 300 };
  dl_add_t *big = calloc(BIG, sizeof *big);
  char(*names)[32] = calloc(BIG, sizeof *names);
  CU_ASSERT_FATAL(big && names);
  for (int i = 0; i < BIG; i++) {
    snprintf(names[i], sizeof names[i], "big%03d.parquet", i);
    big[i] = fake_add(names[i]);
  }
  dl_commit_t c0 = {.adds = big, .nadds = BIG, .no_checkpoint = true};
  CU_ASSERT_EQUAL(dl_table_commit(a, &c0, NULL, NULL), ED_OK); /* version 1 */
  CU_ASSERT_EQUAL(dl_table_checkpoint(a, NULL), ED_OK);
  int64_t first = -1;
  for (int i = 0; i < 25; i++) {
    char p[32];
    snprintf(p, sizeof p, "f%02d.parquet", i);
    dl_add_t f = fake_add(p);
    dl_commit_t c = {.adds = &f, .nadds = 1, .app_id = "q", .txn_version = i};
    dl_commit_result_t r;
    CU_ASSERT_EQUAL(dl_table_commit(a, &c, &r, NULL), ED_OK);
    if (r.checkpointed && first < 0)
      first = r.version;
  }
  CU_ASSERT_EQUAL(first, 20);
  CU_ASSERT_EQUAL(dl_table_checkpoint_version(a), 20);
  free(names);
  free(big);
  dl_table_free(a);
  st_free(s);
}

static void age(const char *dir, const char *name, int64_t days) {
  char p[400];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  time_t t = time(NULL) - (time_t)(days * 86400);
  struct utimbuf u = {t, t};
  utime(p, &u);
}

static void test_log_cleanup_only_behind_a_checkpoint(void) {
  char dir[300];
  st_store_t *s = fresh(dir, sizeof dir);
  dl_table_t *a = create(s);
  for (int i = 0; i < 14; i++) {
    dl_commit_t c = {.app_id = "x", .txn_version = i, .no_checkpoint = true};
    CU_ASSERT_EQUAL(dl_table_commit(a, &c, NULL, NULL), ED_OK);
  }
  for (int v = 0; v <= 14; v++) {
    char n[64];
    dl_log_name(v, ".json", n);
    age(dir, n, 40);
  }
  size_t del = 99;
  /* no checkpoint: nothing may go */
  CU_ASSERT_EQUAL(dl_table_cleanup_log(a, ed_time_now_us() / 1000, &del, NULL), ED_OK);
  CU_ASSERT_EQUAL(del, 0);
  CU_ASSERT_EQUAL(dl_table_checkpoint(a, NULL), ED_OK); /* at 14 */
  /* a fresh checkpoint is not past the retention: still nothing */
  CU_ASSERT_EQUAL(dl_table_cleanup_log(a, ed_time_now_us() / 1000, &del, NULL), ED_OK);
  CU_ASSERT_EQUAL(del, 0);
  age(dir, "_delta_log/00000000000000000014.checkpoint.parquet", 31);
  CU_ASSERT_EQUAL(dl_table_cleanup_log(a, ed_time_now_us() / 1000, &del, NULL), ED_OK);
  CU_ASSERT_EQUAL(del, 14); /* 0..13, the checkpoint's own commit stays */
  dl_table_t *b = NULL;
  CU_ASSERT_EQUAL(dl_table_open(s, &b, NULL), ED_OK);
  CU_ASSERT_EQUAL(dl_table_version(b), 14);
  dl_table_free(a);
  dl_table_free(b);
  st_free(s);
}

static void test_partition_values_serialise_as_delta_says(void) {
  int32_t i32[2] = {-7, 19000};
  int64_t i64[2] = {INT64_C(1732406400123456), 42};
  uint8_t b8[2] = {1, 0}, v[2] = {1, 0};
  uint32_t off[3] = {0, 3, 3};
  static const struct {
    pq_type_t t;
    size_t row;
    const char *want;
    bool null;
  } cases[] = {
      {PQ_T_INT32, 0, "-7", false},
      {PQ_T_DATE, 1, "2022-01-08", false},
      {PQ_T_TIMESTAMP, 0, "2024-11-24T00:00:00.123456Z", false},
      {PQ_T_INT64, 1, "42", false},
      {PQ_T_BOOLEAN, 0, "true", false},
      {PQ_T_STRING, 0, "abc", false},
      {PQ_T_STRING, 1, "", true}, /* empty string is null in Delta */
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    pq_col_t c = {.len = 2, .off = off, .data = "abc"};
    if (cases[i].t == PQ_T_INT32 || cases[i].t == PQ_T_DATE)
      c.v.i32 = i32;
    else if (cases[i].t == PQ_T_BOOLEAN)
      c.v.b8 = b8;
    else if (cases[i].t != PQ_T_STRING)
      c.v.i64 = i64;
    ed_buf_t b = ED_BUF_INIT;
    bool null = false;
    CU_ASSERT_EQUAL(dl_pv_format(cases[i].t, &c, cases[i].row, &b, &null, NULL), ED_OK);
    CU_ASSERT_EQUAL(null, cases[i].null);
    CU_ASSERT_STR(b.data ? b.data : "", cases[i].want);
    ed_buf_fini(&b);
  }
  pq_col_t c = {.len = 2, .valid = v, .v.i64 = i64};
  ed_buf_t b = ED_BUF_INIT;
  bool null = false;
  CU_ASSERT_EQUAL(dl_pv_format(PQ_T_INT64, &c, 1, &b, &null, NULL), ED_OK);
  CU_ASSERT(null);
  CU_ASSERT_EQUAL(dl_pv_format(PQ_T_DOUBLE, &c, 0, &b, &null, NULL), ED_E_UNSUPPORTED);
  ed_buf_fini(&b);
}

static void test_data_schema_drops_partition_columns(void) {
  pq_schema_t *full, *data;
  int st;
  pq_schema_new(&full, NULL);
  pq_schema_add(full, PQ_ROOT, "id", PQ_T_INT64, PQ_REQUIRED, NULL, NULL);
  pq_schema_add(full, PQ_ROOT, "day", PQ_T_DATE, PQ_OPTIONAL, NULL, NULL);
  pq_schema_add(full, PQ_ROOT, "s", PQ_T_STRUCT, PQ_OPTIONAL, &st, NULL);
  pq_schema_add(full, st, "x", PQ_T_STRING, PQ_OPTIONAL, NULL, NULL);
  const char *drop[] = {"day", NULL};
  CU_ASSERT_EQUAL_FATAL(dl_schema_without(full, drop, &data, NULL), ED_OK);
  ed_buf_t j = ED_BUF_INIT;
  dl_schema_from_pq(data, &j, NULL);
  CU_ASSERT_STR(j.data,
                "{\"type\":\"struct\",\"fields\":[{\"name\":\"id\",\"type\":\"long\",\"nullable\":"
                "false,\"metadata\":{}},{\"name\":\"s\",\"type\":{\"type\":\"struct\",\"fields\":[{"
                "\"name\":\"x\",\"type\":\"string\",\"nullable\":true,\"metadata\":{}}]},"
                "\"nullable\":true,\"metadata\":{}}]}");
  ed_buf_fini(&j);
  pq_schema_free(full);
  pq_schema_free(data);
}

/* Every writer version and feature: honoured or refused per operation, and
 * a refusal names the feature. */
static void test_writer_features_per_operation(void) {
  static const struct {
    const char *protocol, *config, *schema;
    ed_code_t append, optimize, vacuum;
    const char *named;
  } cases[] = {
      {"1,2", "", NULL, ED_OK, ED_OK, ED_OK, NULL},
      {"1,3", "\"delta.constraints.pos\":\"id > 0\"", NULL, ED_OK, ED_OK, ED_OK, NULL},
      {"1,4", "", NULL, ED_OK, ED_OK, ED_OK, NULL},
      {"2,5", "\"delta.columnMapping.mode\":\"name\"", NULL, ED_OK, ED_OK, ED_OK, NULL},
      {"2,5", "\"delta.columnMapping.mode\":\"id\"", NULL, ED_E_UNSUPPORTED, ED_E_UNSUPPORTED,
       ED_OK, "mode id"},
      {"1,6", "", NULL, ED_OK, ED_OK, ED_OK, NULL},
      {"1,6", "",
       "{\"type\":\"struct\",\"fields\":[{\"name\":\"id\",\"type\":\"long\",\"nullable\":false,"
       "\"metadata\":{\"delta.identity.start\":1,\"delta.identity.step\":1}}]}",
       ED_OK, ED_OK, ED_OK, NULL}, /* the sink generates identity values */
      {"1,8", "", NULL, ED_E_UNSUPPORTED, ED_E_UNSUPPORTED, ED_E_UNSUPPORTED, "minWriterVersion"},
      {"1,7,[\"appendOnly\",\"invariants\",\"checkConstraints\",\"generatedColumns\","
       "\"changeDataFeed\",\"timestampNtz\",\"vacuumProtocolCheck\",\"allowColumnDefaults\"]",
       "", NULL, ED_OK, ED_OK, ED_OK, NULL},
      {"1,7,[\"rowTracking\"]", "", NULL, ED_E_UNSUPPORTED, ED_E_UNSUPPORTED, ED_OK, "rowTracking"},
      {"1,7,[\"domainMetadata\"]", "", NULL, ED_E_UNSUPPORTED, ED_E_UNSUPPORTED, ED_OK,
       "domainMetadata"},
      {"1,7,[\"deletionVectors\"]", "", NULL, ED_E_UNSUPPORTED, ED_E_UNSUPPORTED, ED_E_UNSUPPORTED,
       "deletionVectors"},
      {"1,7,[\"v2Checkpoint\"]", "", NULL, ED_E_UNSUPPORTED, ED_E_UNSUPPORTED, ED_E_UNSUPPORTED,
       "v2Checkpoint"},
      {"1,7,[\"inCommitTimestamp\"]", "", NULL, ED_OK, ED_OK, ED_OK, NULL},
      {"1,7,[\"inCommitTimestamp\"]", "\"delta.enableInCommitTimestamps\":\"true\"", NULL,
       ED_E_UNSUPPORTED, ED_E_UNSUPPORTED, ED_OK, "inCommitTimestamp"},
      {"1,7,[\"someFutureThing\"]", "", NULL, ED_E_UNSUPPORTED, ED_E_UNSUPPORTED, ED_E_UNSUPPORTED,
       "someFutureThing"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char dir[300];
    st_store_t *s = fresh(dir, sizeof dir);
    int r = 1, w = 2;
    sscanf(cases[i].protocol, "%d,%d", &r, &w);
    const char *feats = strchr(cases[i].protocol, '[');
    ed_buf_t v0 = ED_BUF_INIT, sj = ED_BUF_INIT;
    ed_buf_json_str(&sj, cases[i].schema ? cases[i].schema : SCHEMA,
                    strlen(cases[i].schema ? cases[i].schema : SCHEMA));
    ed_buf_printf(&v0, "{\"protocol\":{\"minReaderVersion\":%d,\"minWriterVersion\":%d%s%s}}\n", r,
                  w, feats ? ",\"writerFeatures\":" : "", feats ? feats : "");
    ed_buf_printf(
        &v0,
        "{\"metaData\":{\"id\":\"x\",\"format\":{\"provider\":\"parquet\",\"options\":{}},"
        "\"schemaString\":%s,\"partitionColumns\":[],\"configuration\":{%s}}}\n",
        sj.data, cases[i].config);
    CU_ASSERT_EQUAL(
        st_put_if_absent(s, "_delta_log/00000000000000000000.json", v0.data, v0.len, NULL), ED_OK);
    dl_table_t *t = NULL;
    ed_err_t e = {0};
    CU_ASSERT_EQUAL_FATAL(dl_table_open(s, &t, &e), ED_OK);
    const ed_code_t want[3] = {cases[i].append, cases[i].optimize, cases[i].vacuum};
    for (int op = 0; op < 3; op++) {
      memset(&e, 0, sizeof e);
      ed_code_t rc = dl_feat_check(t, (dl_op_t)op, &e);
      if (rc != want[op])
        fprintf(stderr, "case %zu op %d: got %d (%s)\n", i, op, rc, e.msg);
      CU_ASSERT_EQUAL(rc, want[op]);
      if (rc)
        CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, cases[i].named));
    }
    /* a refused append commits nothing */
    if (cases[i].append) {
      dl_add_t a = fake_add("x.parquet");
      dl_commit_t c = {.adds = &a, .nadds = 1};
      CU_ASSERT_EQUAL(dl_table_commit(t, &c, NULL, &e), ED_E_UNSUPPORTED);
      CU_ASSERT_EQUAL(dl_table_version(t), 0);
    }
    dl_table_free(t);
    st_free(s);
    ed_buf_fini(&v0);
    ed_buf_fini(&sj);
  }
}

static void test_rules_come_from_constraints_invariants_and_generation(void) {
  char dir[300];
  st_store_t *s = fresh(dir, sizeof dir);
  const char *schema =
      "{\"type\":\"struct\",\"fields\":[{\"name\":\"amount\",\"type\":\"double\",\"nullable\":true,"
      "\"metadata\":{\"delta.invariants\":\"{\\\"expression\\\":{\\\"expression\\\":\\\"amount < "
      "1000\\\"}}\"}},{\"name\":\"d\",\"type\":\"date\",\"nullable\":true,\"metadata\":{"
      "\"delta.generationExpression\":\"CAST(ts AS DATE)\"}},{\"name\":\"ts\",\"type\":"
      "\"timestamp\",\"nullable\":true,\"metadata\":{}}]}";
  ed_buf_t v0 = ED_BUF_INIT, sj = ED_BUF_INIT;
  ed_buf_json_str(&sj, schema, strlen(schema));
  ed_buf_printf(&v0,
                "{\"protocol\":{\"minReaderVersion\":1,\"minWriterVersion\":4}}\n"
                "{\"metaData\":{\"id\":\"x\",\"format\":{\"provider\":\"parquet\",\"options\":{}},"
                "\"schemaString\":%s,\"partitionColumns\":[],\"configuration\":{"
                "\"delta.constraints.amount_positive\":\"amount > 0\"}}}\n",
                sj.data);
  CU_ASSERT_EQUAL(
      st_put_if_absent(s, "_delta_log/00000000000000000000.json", v0.data, v0.len, NULL), ED_OK);
  dl_table_t *t = NULL;
  ed_err_t e = {0};
  CU_ASSERT_EQUAL_FATAL(dl_table_open(s, &t, &e), ED_OK);
  dl_rules_t r;
  CU_ASSERT_EQUAL_FATAL(dl_feat_rules(t, &r, &e), ED_OK);
  CU_ASSERT_EQUAL_FATAL(r.n, 3);
  CU_ASSERT_EQUAL(r.v[0].kind, DL_RULE_CHECK);
  CU_ASSERT_STRING_EQUAL(r.v[0].name, "amount_positive");
  CU_ASSERT_STRING_EQUAL(r.v[0].expr, "amount > 0");
  CU_ASSERT_EQUAL(r.v[1].kind, DL_RULE_INVARIANT);
  CU_ASSERT_STRING_EQUAL(r.v[1].expr, "amount < 1000");
  CU_ASSERT_EQUAL(r.v[2].kind, DL_RULE_GENERATED);
  CU_ASSERT_STRING_EQUAL(r.v[2].name, "`d`");
  CU_ASSERT_STRING_EQUAL(r.v[2].source, "CAST(ts AS DATE)");
  dl_rules_fini(&r);
  dl_table_free(t);
  st_free(s);
  ed_buf_fini(&v0);
  ed_buf_fini(&sj);
}

/* A checkpoint keeps the protocol's feature lists: without them a (3,7)
 * table is unreadable to Spark ("Mismatched minReaderVersion and
 * readerFeatures"), and a (1,2) table has them null. */
static void test_checkpoint_keeps_table_features(void) {
  char dir[300];
  st_store_t *s = fresh(dir, sizeof dir);
  ed_buf_t v0 = ED_BUF_INIT, sj = ED_BUF_INIT;
  ed_buf_json_str(&sj, SCHEMA, strlen(SCHEMA));
  ed_buf_printf(&v0,
                "{\"protocol\":{\"minReaderVersion\":3,\"minWriterVersion\":7,\"readerFeatures\":"
                "[\"timestampNtz\"],\"writerFeatures\":[\"timestampNtz\",\"appendOnly\"]}}\n"
                "{\"metaData\":{\"id\":\"x\",\"format\":{\"provider\":\"parquet\",\"options\":{}},"
                "\"schemaString\":%s,\"partitionColumns\":[],\"configuration\":{}}}\n",
                sj.data);
  CU_ASSERT_EQUAL(
      st_put_if_absent(s, "_delta_log/00000000000000000000.json", v0.data, v0.len, NULL), ED_OK);
  dl_table_t *t = NULL;
  ed_err_t e = {0};
  CU_ASSERT_EQUAL_FATAL(dl_table_open(s, &t, &e), ED_OK);
  dl_add_t a = fake_add("a.parquet");
  dl_commit_t c = {.adds = &a, .nadds = 1, .no_checkpoint = true};
  CU_ASSERT_EQUAL_FATAL(dl_table_commit(t, &c, NULL, &e), ED_OK);
  CU_ASSERT_EQUAL_FATAL(dl_table_checkpoint(t, &e), ED_OK);
  dl_table_free(t);
  /* only the checkpoint left to read the protocol from */
  CU_ASSERT_EQUAL(st_delete(s, "_delta_log/00000000000000000000.json", &e), ED_OK);
  CU_ASSERT_EQUAL(st_delete(s, "_delta_log/00000000000000000001.json", &e), ED_OK);
  CU_ASSERT_EQUAL_FATAL(dl_table_open(s, &t, &e), ED_OK);
  CU_ASSERT_EQUAL(dl_table_checkpoint_version(t), 1);
  const dl_protocol_t *p = dl_table_protocol(t);
  CU_ASSERT_EQUAL(p->min_reader, 3);
  CU_ASSERT_EQUAL(p->min_writer, 7);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p->reader_features);
  CU_ASSERT_STRING_EQUAL(p->reader_features[0], "timestampNtz");
  CU_ASSERT_PTR_NULL(p->reader_features[1]);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p->writer_features);
  CU_ASSERT_STRING_EQUAL(p->writer_features[1], "appendOnly");
  CU_ASSERT_PTR_NULL(p->writer_features[2]);
  dl_table_free(t);
  st_free(s);
  /* (1,2): no lists */
  s = fresh(dir, sizeof dir);
  t = create(s);
  CU_ASSERT_EQUAL_FATAL(dl_table_commit(t, &c, NULL, &e), ED_OK);
  CU_ASSERT_EQUAL_FATAL(dl_table_checkpoint(t, &e), ED_OK);
  dl_table_free(t);
  CU_ASSERT_EQUAL(st_delete(s, "_delta_log/00000000000000000000.json", &e), ED_OK);
  CU_ASSERT_EQUAL(st_delete(s, "_delta_log/00000000000000000001.json", &e), ED_OK);
  CU_ASSERT_EQUAL_FATAL(dl_table_open(s, &t, &e), ED_OK);
  CU_ASSERT_PTR_NULL(dl_table_protocol(t)->reader_features);
  CU_ASSERT_PTR_NULL(dl_table_protocol(t)->writer_features);
  dl_table_free(t);
  st_free(s);
  ed_buf_fini(&v0);
  ed_buf_fini(&sj);
}

/* ---- per-partition positions (dl_ptxn_t, issue 18) ---- */

static int64_t txn_of(const dl_table_t *t, const char *app) {
  int64_t v;
  return dl_table_txn_version(t, app, &v) ? v : -1;
}

static bool log_exists(st_store_t *s, int64_t v) {
  char n[64];
  dl_log_name(v, ".json", n);
  st_stat_t st;
  return st_stat(s, n, &st, NULL) == ED_OK;
}

/* Two owners of one partition, each reading from its own base: the second
 * one's batch repeats events the first committed, so it must not land. */
static void test_ptxn_second_owner_of_a_partition_is_fenced(void) {
  char dir[300];
  st_store_t *s = fresh(dir, sizeof dir);
  dl_table_t *a = create(s), *b = NULL;
  CU_ASSERT_EQUAL_FATAL(dl_table_open(s, &b, NULL), ED_OK);
  dl_add_t fa = fake_add("a.parquet"), fb = fake_add("b.parquet");
  dl_ptxn_t pa = {"q/0", -1, 10}, pb = {"q/0", -1, 12};
  dl_commit_t ca = {.adds = &fa, .nadds = 1, .ptxns = &pa, .nptxns = 1};
  dl_commit_t cb = {.adds = &fb, .nadds = 1, .ptxns = &pb, .nptxns = 1};
  dl_commit_result_t r;
  CU_ASSERT_EQUAL(dl_table_commit(a, &ca, &r, NULL), ED_OK);
  CU_ASSERT_EQUAL(r.version, 1);
  CU_ASSERT_EQUAL(txn_of(a, "q/0"), 10);
  /* b's snapshot predates a's commit: the race is lost and the winner read */
  ed_err_t e = {0};
  CU_ASSERT_EQUAL(dl_table_commit(b, &cb, &r, &e), ED_E_FENCED);
  CU_ASSERT(strstr(e.msg, "'q/0'") && strstr(e.msg, "version 10") && strstr(e.msg, "base was -1"));
  CU_ASSERT(!log_exists(s, 2));
  CU_ASSERT_EQUAL(dl_table_version(b), 1);
  /* the same from the snapshot, before any attempt */
  memset(&e, 0, sizeof e);
  CU_ASSERT_EQUAL(dl_table_commit(b, &cb, &r, &e), ED_E_FENCED);
  CU_ASSERT_EQUAL(r.attempts, 0);
  CU_ASSERT(strstr(e.msg, "'q/0' is at version 10") && strstr(e.msg, "base is -1"));
  CU_ASSERT(!log_exists(s, 2));
  CU_ASSERT_EQUAL(ed_code_is_retriable(ED_E_FENCED), false);
  /* with the right base b goes on */
  dl_ptxn_t pb2 = {"q/0", 10, 12};
  cb.ptxns = &pb2;
  CU_ASSERT_EQUAL(dl_table_commit(b, &cb, &r, NULL), ED_OK);
  CU_ASSERT_EQUAL(r.version, 2);
  CU_ASSERT_EQUAL(txn_of(b, "q/0"), 12);
  dl_table_free(a);
  dl_table_free(b);
  st_free(s);
}

/* A writer that retries a commit which did land (an ambiguous failure, a
 * restart) is told so, from the snapshot or from the winners. */
static void test_ptxn_own_landed_commit_is_already_committed(void) {
  char dir[300];
  st_store_t *s = fresh(dir, sizeof dir);
  dl_table_t *a = create(s), *stale = NULL;
  CU_ASSERT_EQUAL_FATAL(dl_table_open(s, &stale, NULL), ED_OK);
  dl_add_t f = fake_add("a.parquet");
  dl_ptxn_t p[2] = {{"q/0", -1, 10}, {"q/1", -1, 4}};
  dl_commit_t c = {.adds = &f, .nadds = 1, .ptxns = p, .nptxns = 2};
  dl_commit_result_t r;
  CU_ASSERT_EQUAL(dl_table_commit(a, &c, &r, NULL), ED_OK);
  CU_ASSERT_EQUAL(dl_table_commit(a, &c, &r, NULL), ED_OK);
  CU_ASSERT(r.already_committed);
  CU_ASSERT_EQUAL(r.attempts, 0);
  CU_ASSERT_EQUAL(dl_table_commit(stale, &c, &r, NULL), ED_OK);
  CU_ASSERT(r.already_committed);
  CU_ASSERT_EQUAL(r.version, 1);
  CU_ASSERT(!log_exists(s, 2));
  CU_ASSERT_EQUAL(dl_table_num_files(stale), 1);
  /* with the batch txn as well (a sink that is not shared) */
  dl_table_free(stale);
  CU_ASSERT_EQUAL_FATAL(dl_table_open(s, &stale, NULL), ED_OK);
  dl_ptxn_t p2[2] = {{"q/0", 10, 20}, {"q/1", 4, 9}};
  dl_commit_t c2 = {
      .adds = &f, .nadds = 1, .app_id = "q", .txn_version = 7, .ptxns = p2, .nptxns = 2};
  CU_ASSERT_EQUAL(dl_table_commit(a, &c2, &r, NULL), ED_OK);
  CU_ASSERT_EQUAL(r.version, 2);
  CU_ASSERT_EQUAL(dl_table_commit(stale, &c2, &r, NULL), ED_OK);
  CU_ASSERT(r.already_committed);
  CU_ASSERT_EQUAL(r.version, 2);
  CU_ASSERT(!log_exists(s, 3));
  dl_table_free(a);
  dl_table_free(stale);
  st_free(s);
}

/* Owners of different partitions share the table: each retries past the
 * other's commits and lands; a winner that touches none of a commit's
 * appIds is no reason to stop. */
static void test_ptxn_disjoint_partitions_and_unrelated_winners_land(void) {
  char dir[300];
  st_store_t *s = fresh(dir, sizeof dir);
  dl_table_t *a = create(s), *b = NULL, *c3 = NULL;
  CU_ASSERT_EQUAL_FATAL(dl_table_open(s, &b, NULL), ED_OK);
  CU_ASSERT_EQUAL_FATAL(dl_table_open(s, &c3, NULL), ED_OK);
  dl_add_t fa = fake_add("a.parquet"), fb = fake_add("b.parquet"), fc = fake_add("c.parquet");
  dl_ptxn_t pa[2] = {{"q/0", -1, 10}, {"q/2", -1, 3}}, pb[2] = {{"q/1", -1, 12}, {"q/3", -1, 5}};
  dl_commit_t ca = {.adds = &fa, .nadds = 1, .ptxns = pa, .nptxns = 2};
  dl_commit_t cb = {.adds = &fb, .nadds = 1, .ptxns = pb, .nptxns = 2};
  dl_commit_t other = {.adds = &fc, .nadds = 1, .app_id = "another-query", .txn_version = 1};
  dl_commit_result_t r;
  CU_ASSERT_EQUAL(dl_table_commit(a, &ca, &r, NULL), ED_OK);
  CU_ASSERT_EQUAL(dl_table_commit(c3, &other, &r, NULL), ED_OK);
  CU_ASSERT_EQUAL(r.version, 2);
  ed_err_t e = {0};
  CU_ASSERT_EQUAL(dl_table_commit(b, &cb, &r, &e), ED_OK);
  CU_ASSERT_EQUAL(r.version, 3);
  CU_ASSERT_EQUAL(r.attempts, 2);
  CU_ASSERT(!r.already_committed);
  CU_ASSERT_EQUAL(txn_of(b, "q/0"), 10);
  CU_ASSERT_EQUAL(txn_of(b, "q/1"), 12);
  CU_ASSERT_EQUAL(txn_of(b, "q/2"), 3);
  CU_ASSERT_EQUAL(txn_of(b, "q/3"), 5);
  CU_ASSERT_EQUAL(txn_of(b, "another-query"), 1);
  CU_ASSERT_EQUAL(dl_table_num_files(b), 3);
  /* the commit's actions: one txn per partition, a streaming commitInfo */
  ed_buf_t body = ED_BUF_INIT;
  CU_ASSERT_EQUAL(st_get(s, "_delta_log/00000000000000000003.json", 0, -1, &body, NULL), ED_OK);
  size_t ntxn = 0;
  for (const char *p = body.data; p && (p = strstr(p, "{\"txn\":")); p++)
    ntxn++;
  CU_ASSERT_EQUAL(ntxn, 2);
  CU_ASSERT(body.data && strstr(body.data, "\"operation\":\"STREAMING UPDATE\""));
  CU_ASSERT(body.data && strstr(body.data, "{\"txn\":{\"appId\":\"q/3\",\"version\":5,"));
  ed_buf_fini(&body);
  dl_table_free(a);
  dl_table_free(b);
  dl_table_free(c3);
  st_free(s);
}

/* A winner that moved only some of a commit's partitions, or moved them
 * to other versions, is another owner: fenced, naming the partition. A
 * winner that holds all of them at or past the commit's versions covers the
 * batch's events: already committed. */
static void test_ptxn_partial_winner_fences_and_covering_winner_absorbs(void) {
  char dir[300];
  st_store_t *s = fresh(dir, sizeof dir);
  dl_table_t *a = create(s), *b = NULL;
  CU_ASSERT_EQUAL_FATAL(dl_table_open(s, &b, NULL), ED_OK);
  dl_add_t fa = fake_add("a.parquet"), fb = fake_add("b.parquet");
  dl_ptxn_t pa = {"q/1", -1, 30}, pb[2] = {{"q/0", -1, 10}, {"q/1", -1, 10}};
  dl_commit_t ca = {.adds = &fa, .nadds = 1, .ptxns = &pa, .nptxns = 1};
  dl_commit_t cb = {.adds = &fb, .nadds = 1, .ptxns = pb, .nptxns = 2};
  CU_ASSERT_EQUAL(dl_table_commit(a, &ca, NULL, NULL), ED_OK);
  ed_err_t e = {0};
  CU_ASSERT_EQUAL(dl_table_commit(b, &cb, NULL, &e), ED_E_FENCED);
  CU_ASSERT(strstr(e.msg, "'q/1'") && strstr(e.msg, "version 30"));
  CU_ASSERT(!log_exists(s, 2));
  /* a winner with both partitions past b's versions */
  dl_table_t *b2 = NULL;
  CU_ASSERT_EQUAL_FATAL(dl_table_open(s, &b2, NULL), ED_OK);
  dl_ptxn_t pw[2] = {{"q/0", -1, 15}, {"q/1", 30, 40}}, pb2[2] = {{"q/0", -1, 11}, {"q/1", 30, 35}};
  dl_commit_t cw = {.adds = &fa, .nadds = 1, .ptxns = pw, .nptxns = 2};
  dl_commit_t cb2 = {.adds = &fb, .nadds = 1, .ptxns = pb2, .nptxns = 2};
  CU_ASSERT_EQUAL(dl_table_commit(a, &cw, NULL, NULL), ED_OK);
  dl_commit_result_t r;
  CU_ASSERT_EQUAL(dl_table_commit(b2, &cb2, &r, NULL), ED_OK);
  CU_ASSERT(r.already_committed);
  CU_ASSERT_EQUAL(r.version, 2);
  CU_ASSERT(!log_exists(s, 3));
  dl_table_free(a);
  dl_table_free(b);
  dl_table_free(b2);
  st_free(s);
}

static void test_ptxn_mistakes_are_refused_before_writing(void) {
  char dir[300];
  st_store_t *s = fresh(dir, sizeof dir);
  dl_table_t *a = create(s);
  dl_ptxn_t twice[2] = {{"q/0", -1, 1}, {"q/0", -1, 2}}, batch = {"q", -1, 1},
            neg = {"q/0", -1, -1}, noid = {NULL, -1, 1};
  const struct {
    dl_ptxn_t *p;
    size_t n;
    const char *msg;
  } cases[] = {{twice, 2, "given twice"},
               {&batch, 1, "the commit's appId"},
               {&neg, 1, "version >= 0"},
               {&noid, 1, "expected an appId"}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    dl_commit_t c = {.app_id = "q", .txn_version = 1, .ptxns = cases[i].p, .nptxns = cases[i].n};
    ed_err_t e = {0};
    CU_ASSERT_EQUAL(dl_table_commit(a, &c, NULL, &e), ED_E_INVALID);
    CU_ASSERT(strstr(e.msg, cases[i].msg) != NULL);
  }
  CU_ASSERT(!log_exists(s, 1));
  dl_table_free(a);
  st_free(s);
}

/* Positions must outlive the JSON commits: a checkpoint keeps every txn,
 * and a writer reopened from it goes on from its bases. */
static void test_ptxn_checkpoint_keeps_every_position(void) {
  char dir[300];
  st_store_t *s = fresh(dir, sizeof dir);
  dl_table_t *a = create(s), *b = NULL;
  char ids[32][16];
  int64_t last[32];
  for (int p = 0; p < 32; p++) {
    snprintf(ids[p], sizeof ids[p], "q/%d", p);
    last[p] = -1;
  }
  for (int v = 1; v <= 10; v++) {
    dl_ptxn_t px[32];
    size_t n = 0;
    for (int p = 0; p < 32; p++)
      if ((p + v) % 3) { /* each commit moves two partitions in three */
        px[n++] = (dl_ptxn_t){ids[p], last[p], last[p] + 100 + p};
        last[p] += 100 + p;
      }
    dl_commit_t c = {.app_id = "q", .txn_version = v, .ptxns = px, .nptxns = n};
    dl_commit_result_t r;
    CU_ASSERT_EQUAL(dl_table_commit(a, &c, &r, NULL), ED_OK);
    CU_ASSERT_EQUAL(r.checkpointed, v == 10);
  }
  for (int v = 0; v <= 10; v++) {
    char n[64];
    dl_log_name(v, ".json", n);
    st_delete(s, n, NULL);
  }
  CU_ASSERT_EQUAL_FATAL(dl_table_open(s, &b, NULL), ED_OK);
  CU_ASSERT_EQUAL(dl_table_checkpoint_version(b), 10);
  CU_ASSERT_EQUAL(dl_table_num_txns(b), 33);
  for (int p = 0; p < 32; p++)
    CU_ASSERT_EQUAL(txn_of(b, ids[p]), last[p]);
  CU_ASSERT_EQUAL(txn_of(b, "q"), 10);
  dl_ptxn_t go = {ids[5], last[5], last[5] + 1}, stale = {ids[6], last[6] - 1, last[6] + 1};
  dl_commit_t c = {.ptxns = &go, .nptxns = 1};
  CU_ASSERT_EQUAL(dl_table_commit(b, &c, NULL, NULL), ED_OK);
  c.ptxns = &stale;
  CU_ASSERT_EQUAL(dl_table_commit(b, &c, NULL, NULL), ED_E_FENCED);
  dl_table_free(a);
  dl_table_free(b);
  st_free(s);
}

static const cu_case_t cases[] = {
    CU_CASE(test_checkpoint_keeps_table_features),
    CU_CASE(test_writer_features_per_operation),
    CU_CASE(test_rules_come_from_constraints_invariants_and_generation),
    CU_CASE(test_partition_values_serialise_as_delta_says),
    CU_CASE(test_data_schema_drops_partition_columns),
    CU_CASE(test_partition_paths_escape_like_spark),
    CU_CASE(test_string_stats_truncate_to_32_chars),
    CU_CASE(test_stats_json_is_exact),
    CU_CASE(test_actions_round_trip),
    CU_CASE(test_commit_retries_after_conflict),
    CU_CASE(test_commit_aborts_on_metadata_change),
    CU_CASE(test_commit_with_our_app_id_already_landed_is_not_repeated),
    CU_CASE(test_commit_fences_a_second_writer_of_one_app_id),
    CU_CASE(test_compactions_removing_one_file_conflict),
    CU_CASE(test_update_reads_only_the_new_commits),
    CU_CASE(test_optimize_min_files_is_size_tiered),
    CU_CASE(test_bad_tables_get_one_clear_error),
    CU_CASE(test_checkpoint_round_trips_the_snapshot),
    CU_CASE(test_checkpoint_waits_until_the_actions_pay_for_it),
    CU_CASE(test_log_cleanup_only_behind_a_checkpoint),
    CU_CASE(test_ptxn_second_owner_of_a_partition_is_fenced),
    CU_CASE(test_ptxn_own_landed_commit_is_already_committed),
    CU_CASE(test_ptxn_disjoint_partitions_and_unrelated_winners_land),
    CU_CASE(test_ptxn_partial_winner_fences_and_covering_winner_absorbs),
    CU_CASE(test_ptxn_mistakes_are_refused_before_writing),
    CU_CASE(test_ptxn_checkpoint_keeps_every_position),
    CU_END};
ED_SUITE_FULL(delta, cases, setup, teardown)
