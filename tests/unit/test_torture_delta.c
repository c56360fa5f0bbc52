/* Allocation failures in the Delta log reader and snapshot: every failing
 * allocation is reported or survived, never a crash, never a leak. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delta/actions.h"
#include "delta/table.h"
#include "tests/unit/cu.h"
#include "tests/unit/torture.h"

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
  }
  torture_fail_at(0);
}

static const char *LINES[] = {
    "{\"add\":{\"path\":\"d=1/a.parquet\",\"partitionValues\":{\"d\":\"1\",\"e\":null},\"size\":5,"
    "\"modificationTime\":1,\"dataChange\":true,\"stats\":\"{\\\"numRecords\\\":2}\"}}",
    "{\"metaData\":{\"id\":\"x\",\"format\":{\"provider\":\"parquet\",\"options\":{}},"
    "\"schemaString\":\"{}\",\"partitionColumns\":[\"d\",\"e\"],\"configuration\":{\"k\":\"v\"}}}",
    "{\"protocol\":{\"minReaderVersion\":3,\"minWriterVersion\":7,\"readerFeatures\":[\"a\"],"
    "\"writerFeatures\":[\"a\",\"b\"]}}",
    "{\"remove\":{\"path\":\"a\",\"deletionTimestamp\":1,\"dataChange\":false,\"size\":3,"
    "\"partitionValues\":{\"d\":\"1\"}}}",
};

static ed_code_t op_parse(void) {
  ed_code_t rc = ED_OK;
  for (size_t i = 0; i < sizeof LINES / sizeof *LINES && !rc; i++) {
    dl_action_t a;
    rc = dl_action_parse(LINES[i], strlen(LINES[i]), &a, NULL);
    if (!rc)
      dl_action_fini(&a);
  }
  return rc;
}

static char dir[128];

static int setup(void) {
  snprintf(dir, sizeof dir, "/tmp/ed-torture-XXXXXX");
  if (!mkdtemp(dir))
    return 1;
  st_store_t *s;
  dl_table_t *t;
  /* No checkpoint: the JSON replay path. Through the checkpoint, failures
   * inside the Parquet reader surface as CORRUPT ("parquet footer: out of
   * memory") and one unchecked dictionary append yields a wrong row; those
   * belong to src/parquet and are reported there. */
  dl_kv_t cfg = {(char *)"delta.checkpointInterval", (char *)"100"};
  dl_create_opts_t o = {"{\"type\":\"struct\",\"fields\":[]}", NULL, &cfg, 1, NULL};
  if (st_open(dir, NULL, &s, NULL) || dl_table_create(s, &o, &t, NULL))
    return 1;
  for (int i = 0; i < 12; i++) {
    char p[32];
    snprintf(p, sizeof p, "f%d.parquet", i);
    dl_kv_t pv = {(char *)"d", (char *)"x"};
    dl_add_t a = {p, NULL, 0, 10, 1, true, (char *)"{\"numRecords\":1}"};
    (void)pv;
    dl_commit_t c = {.adds = &a, .nadds = 1, .app_id = "app", .txn_version = i};
    if (dl_table_commit(t, &c, NULL, NULL))
      return 1;
  }
  dl_table_free(t);
  st_free(s);
  return 0;
}

static int teardown(void) {
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : 1;
}

/* list, _last_checkpoint, 13 JSON commits */
static ed_code_t op_open(void) {
  st_store_t *s = NULL;
  dl_table_t *t = NULL;
  ed_err_t e = {0};
  ed_code_t rc = st_open(dir, NULL, &s, &e);
  if (!rc)
    rc = dl_table_open(s, &t, &e);
  if (!rc && (dl_table_version(t) != 12 || dl_table_num_files(t) != 12))
    rc = ED_E_INTERNAL;
  dl_table_free(t);
  st_free(s);
  return rc;
}

/* ---- the commit writer: create a table, commit adds with partition values,
 * stats, a txn, per-partition txns and a new metaData, then a remove; a fresh
 * table each run ---- */

static int g_commit_run;
static char g_commit_dir[200];
static ed_err_t g_commit_err;

static ed_code_t op_commit(void) {
  snprintf(g_commit_dir, sizeof g_commit_dir, "%s/commit-%d", dir, g_commit_run++);
  st_store_t *s = NULL;
  dl_table_t *t = NULL;
  ed_err_clear(&g_commit_err);
  ed_err_t *e = &g_commit_err;
  static const char *parts[] = {"d", NULL};
  dl_kv_t cfg = {(char *)"delta.appendOnly", (char *)"false"};
  dl_create_opts_t o = {"{\"type\":\"struct\",\"fields\":[{\"name\":\"d\",\"type\":\"string\","
                        "\"nullable\":true,\"metadata\":{}}]}",
                        parts, &cfg, 1, "t\"1"};
  ed_code_t rc = st_open(g_commit_dir, NULL, &s, e);
  if (!rc)
    rc = dl_table_create(s, &o, &t, e);
  dl_kv_t pv[2] = {{(char *)"d", (char *)"caf\xc3\xa9 \"x\""}, {(char *)"d", NULL}};
  dl_add_t adds[2] = {
      {(char *)"d=caf%C3%A9/part-0.parquet", &pv[0], 1, 1234, 1700000000000, true,
       (char *)"{\"numRecords\":3,\"minValues\":{\"d\":\"a\"}}"},
      {(char *)"d=__HIVE_DEFAULT_PARTITION__/part-1.parquet", &pv[1], 1, 99, 1700000000001, true,
       NULL},
  };
  dl_metadata_t m = {
      (char *)"id-1", (char *)"t\"1", (char *)o.schema_string, (char **)parts, 1, &cfg, 1,
      1700000000000};
  dl_ptxn_t px1[2] = {{"q\"1/0", -1, 5}, {"q\"1/1", -1, 7}}, px2 = {"q\"1/0", 5, 9};
  dl_commit_t c1 = {.adds = adds,
                    .nadds = 2,
                    .app_id = "q\"1",
                    .txn_version = 0,
                    .metadata = &m,
                    .no_checkpoint = true,
                    .ptxns = px1,
                    .nptxns = 2};
  if (!rc)
    rc = dl_table_commit(t, &c1, NULL, e);
  dl_remove_t rm = {
      (char *)"d=__HIVE_DEFAULT_PARTITION__/part-1.parquet", 1700000000002, true, &pv[1], 1, 99};
  dl_commit_t c2 = {.removes = &rm,
                    .nremoves = 1,
                    .app_id = "q\"1",
                    .txn_version = 1,
                    .no_checkpoint = true,
                    .ptxns = &px2,
                    .nptxns = 1};
  if (!rc)
    rc = dl_table_commit(t, &c2, NULL, e);
  if (!rc && dl_table_version(t) != 2)
    rc = ED_E_INTERNAL;
  dl_table_free(t);
  st_free(s);
  return rc;
}

/* Every file under _delta_log/ that is a commit: whole lines, each one a
 * Delta action. Returns the number of bad files (0 when the log is sound). */
static int bad_commit_files(const char *table, char *why, size_t whylen) {
  char logdir[300];
  snprintf(logdir, sizeof logdir, "%s/_delta_log", table);
  DIR *d = opendir(logdir);
  if (!d)
    return 0;
  int bad = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    size_t nl = strlen(de->d_name);
    if (nl != 25 || strcmp(de->d_name + 20, ".json"))
      continue;
    char path[600];
    snprintf(path, sizeof path, "%s/%s", logdir, de->d_name);
    FILE *f = fopen(path, "rb");
    char body[8192];
    size_t n = f ? fread(body, 1, sizeof body - 1, f) : 0;
    if (f)
      fclose(f);
    body[n] = 0;
    const char *p = body;
    bool ok = n > 0 && body[n - 1] == '\n';
    while (ok && *p) {
      const char *e = strchr(p, '\n');
      dl_action_t a;
      ed_err_t pe = {0};
      if (e == p || dl_action_parse(p, (size_t)(e - p), &a, &pe)) {
        snprintf(why, whylen, "%s: line '%.*s': %.100s", de->d_name,
                 (int)(e - p) > 300 ? 300 : (int)(e - p), p, pe.msg);
        ok = false;
        break;
      }
      dl_action_fini(&a);
      p = e + 1;
    }
    if (!ok && !bad && n == 0)
      snprintf(why, whylen, "%s: empty", de->d_name);
    bad += !ok;
  }
  closedir(d);
  return bad;
}

static void test_commit_writer_never_writes_a_malformed_line(void) {
  torture_fail_at(0);
  CU_ASSERT_EQUAL_FATAL(op_commit(), ED_OK);
  size_t n = torture_count();
  char why[512] = "";
  CU_ASSERT_EQUAL(bad_commit_files(g_commit_dir, why, sizeof why), 0);
  int malformed = 0, unreported = 0, wrong_code = 0;
  for (size_t i = 1; i <= n; i++) {
    torture_fail_at(i);
    ed_code_t rc = op_commit();
    int failed = torture_failed();
    torture_fail_at(0);
    if (bad_commit_files(g_commit_dir, why, sizeof why)) {
      if (!malformed)
        fprintf(stderr, "\nallocation %zu of %zu failed: %s\n", i, n, why);
      malformed++;
    }
    if ((rc != ED_OK && rc != ED_E_NOMEM && failed) || (rc != ED_OK && !g_commit_err.msg[0]))
      fprintf(stderr, "\nallocation %zu of %zu failed: %s: '%s'\n", i, n, ed_code_name(rc),
              g_commit_err.msg);
    if (rc != ED_OK && rc != ED_E_NOMEM && failed)
      wrong_code++;
    if (rc != ED_OK && !g_commit_err.msg[0])
      unreported++;
  }
  CU_ASSERT_EQUAL(malformed, 0);
  CU_ASSERT_EQUAL(wrong_code, 0);
  CU_ASSERT_EQUAL(unreported, 0);
  if (malformed || wrong_code || unreported)
    fprintf(stderr,
            "%zu allocations: %d runs left a malformed line, %d returned another code "
            "than NOMEM, %d failed without a message\n",
            n, malformed, wrong_code, unreported);
}

static void test_parsing_actions_survives_allocation_failures(void) { torture(op_parse); }
static void test_loading_a_snapshot_survives_allocation_failures(void) { torture(op_open); }

static const cu_case_t cases[] = {CU_CASE(test_parsing_actions_survives_allocation_failures),
                                  CU_CASE(test_loading_a_snapshot_survives_allocation_failures),
                                  CU_CASE(test_commit_writer_never_writes_a_malformed_line),
                                  CU_END};
ED_SUITE_FULL(torture_delta, cases, setup, teardown)
