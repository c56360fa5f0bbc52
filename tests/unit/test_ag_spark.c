/* Taking over from a Spark query's checkpoint (the Event Hubs connector's
 * offsets/ and commits/ logs): parsing both offset formats, the refusals,
 * and the sink committing Spark's positions as its first batch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/sink.h"
#include "agent/spark.h"
#include "delta/table.h"
#include "stream/schema.h"
#include "tests/unit/cu.h"

static void put(const char *dir, const char *name, const char *text) {
  char path[400];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  char *slash = strrchr(path, '/');
  *slash = 0;
  mkdir(path, 0755);
  *slash = '/';
  FILE *f = fopen(path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputs(text, f);
  fclose(f);
}

static const char *META = "{\"batchWatermarkMs\":0,\"batchTimestampMs\":1700000000000,\"conf\":{"
                          "\"spark.sql.shuffle.partitions\":\"200\"}}";

/* offsets/<n> of the connector (2.3.22 format) */
static void offsets(const char *dir, int n, const char *hub, long p0, long p1) {
  char name[32], text[512];
  snprintf(name, sizeof name, "offsets/%d", n);
  snprintf(text, sizeof text, "v1\n%s\n{\"%s\":{\"1\":%ld,\"0\":%ld}}", META, hub, p1, p0);
  put(dir, name, text);
}

static void commit(const char *dir, int n) {
  char name[32];
  snprintf(name, sizeof name, "commits/%d", n);
  put(dir, name, "v1\n{\"nextBatchWatermarkMs\":0}");
}

static void test_offsets_formats(void) {
  ag_spark_pos_t p = {0};
  ed_err_t e = {0};
  const char *old = "v1\n{\"batchWatermarkMs\":0}\n{\"txns\":{\"0\":17,\"1\":-1,\"2\":4}}\n";
  CU_ASSERT_EQUAL_FATAL(ag_spark_parse_offsets("o", old, strlen(old), &p, &e), ED_OK);
  CU_ASSERT_STRING_EQUAL(p.hub, "txns");
  CU_ASSERT_PTR_NULL(p.consumer_group);
  int64_t x = 0;
  CU_ASSERT_TRUE(ag_spark_next(&p, "0", &x));
  CU_ASSERT_EQUAL(x, 17);
  CU_ASSERT_TRUE(ag_spark_next(&p, "1", &x));
  CU_ASSERT_EQUAL(x, -1);
  ag_spark_pos_fini(&p);
  const char *neu =
      "v1\n{}\n-\n{\"endpoint\":\"sb://ns.servicebus.windows.net/\",\"consumerGroup\":"
      "\"spark\",\"partitionToSeqNos\":{\"txns\":{\"0\":5,\"1\":6}}}";
  CU_ASSERT_EQUAL_FATAL(ag_spark_parse_offsets("o", neu, strlen(neu), &p, &e), ED_OK);
  CU_ASSERT_STRING_EQUAL(p.consumer_group, "spark");
  CU_ASSERT_EQUAL(p.n, 2);
  char *ids[] = {"0", "1"}, *three[] = {"0", "1", "2"};
  CU_ASSERT_EQUAL(ag_spark_match(&p, "txns", ids, 2, &e), ED_OK);
  CU_ASSERT_EQUAL(ag_spark_match(&p, "other", ids, 2, &e), ED_E_CONFIG);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "read event hub 'txns', but ehdelta reads 'other'"));
  CU_ASSERT_EQUAL(ag_spark_match(&p, "txns", three, 3, &e), ED_E_CONFIG);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "no position for partition 2"));
  CU_ASSERT_EQUAL(ag_spark_match(&p, "txns", ids, 1, &e), ED_E_CONFIG);
  ag_spark_pos_fini(&p);
  const char *none = "v1\n{}\n{\"path\":\"/x\",\"logOffset\":3}\n";
  CU_ASSERT_EQUAL(ag_spark_parse_offsets("o", none, strlen(none), &p, &e), ED_E_CONFIG);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "no Event Hubs source offset"));
  CU_ASSERT_EQUAL(ag_spark_parse_offsets("o", "{}", 2, &p, &e), ED_E_CORRUPT);
}

static void test_last_committed_batch(void) {
  char dir[] = "/tmp/ag_spark_XXXXXX";
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
  ag_spark_pos_t p = {0};
  ed_err_t e = {0};
  offsets(dir, 0, "txns", 10, 20);
  CU_ASSERT_EQUAL(ag_spark_read(dir, NULL, -1, &p, &e), ED_E_CONFIG);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "has no commits/<n> file"));
  commit(dir, 0);
  offsets(dir, 1, "txns", 30, 40);
  commit(dir, 1);
  offsets(dir, 2, "txns", 50, 60); /* planned, never committed */
  put(dir, "commits/.1.crc", "x");
  put(dir, "metadata", "{\"id\":\"3b1e0c2a-1111-2222-3333-444455556666\"}");
  CU_ASSERT_EQUAL_FATAL(ag_spark_read(dir, NULL, -1, &p, &e), ED_OK);
  CU_ASSERT_EQUAL(p.batch_id, 1);
  CU_ASSERT_STRING_EQUAL(p.query_id, "3b1e0c2a-1111-2222-3333-444455556666");
  int64_t x = 0;
  CU_ASSERT_TRUE(ag_spark_next(&p, "0", &x));
  CU_ASSERT_EQUAL(x, 30);
  ag_spark_pos_fini(&p);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  CU_ASSERT_EQUAL(system(cmd), 0);
}

/* A table Spark's query wrote batches 0..2 to (txn appId = its id), with
 * commits/ up to 1: batch 2 landed, so its end is where ehdelta starts. */
static void test_sink_takes_over(void) {
  char dir[] = "/tmp/ag_take_XXXXXX";
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
  char ck[300], url[300];
  snprintf(ck, sizeof ck, "%s/ck", dir);
  snprintf(url, sizeof url, "%s/t", dir);
  mkdir(ck, 0755);
  const char *qid = "3b1e0c2a-1111-2222-3333-444455556666";
  put(ck, "metadata", "{\"id\":\"3b1e0c2a-1111-2222-3333-444455556666\"}");
  for (int b = 0; b <= 2; b++)
    offsets(ck, b, "txns", 10 * (b + 1), 100 * (b + 1));
  commit(ck, 0), commit(ck, 1);
  sm_type_t *t = NULL;
  ed_err_t e = {0};
  CU_ASSERT_EQUAL_FATAL(sm_schema_parse_ddl("id STRING, seq BIGINT", &t, &e), ED_OK);
  ed_buf_t js = {0};
  CU_ASSERT_EQUAL(sm_schema_to_json(t, &js), ED_OK);
  st_store_t *st = NULL;
  dl_table_t *tb = NULL;
  dl_create_opts_t co = {.schema_string = js.data};
  CU_ASSERT_EQUAL_FATAL(st_open(url, NULL, &st, &e), ED_OK);
  CU_ASSERT_EQUAL_FATAL(dl_table_create(st, &co, &tb, &e), ED_OK);

  ag_spark_pos_t sp = {0};
  CU_ASSERT_EQUAL_FATAL(ag_spark_read(ck, NULL, -1, &sp, &e), ED_OK);
  ag_dsink_opts_t o = {.url = url, .query_id = "ehdelta-raw", .schema = t, .takeover = &sp};
  ag_dsink_t *s = NULL;
  ag_ckpt_t r = {0};
  /* the table has no commit of that Spark query: refused */
  CU_ASSERT_EQUAL(ag_dsink_open(&o, &s, &r, &e), ED_E_CONFIG);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "has no commit of Spark query"));
  ag_ckpt_fini(&r);
  for (int b = 0; b <= 2; b++) {
    dl_commit_t c = {.app_id = qid, .txn_version = b};
    CU_ASSERT_EQUAL_FATAL(dl_table_commit(tb, &c, NULL, &e), ED_OK);
  }
  CU_ASSERT_EQUAL_FATAL(ag_dsink_open(&o, &s, &r, &e), ED_OK);
  CU_ASSERT_EQUAL(r.batch_id, 0);
  int64_t seq = 0;
  CU_ASSERT_TRUE(ag_ckpt_get(&r, "0", &seq));
  CU_ASSERT_EQUAL(seq, 29); /* offsets/2 says next 30 */
  CU_ASSERT_TRUE(ag_ckpt_get(&r, "1", &seq));
  CU_ASSERT_EQUAL(seq, 299);
  CU_ASSERT_EQUAL(ag_dsink_next_batch(s), 1);
  ag_dsink_free(s);
  ag_ckpt_fini(&r);
  /* a restart with the same setting: already taken over, nothing new */
  CU_ASSERT_EQUAL_FATAL(ag_dsink_open(&o, &s, &r, &e), ED_OK);
  CU_ASSERT_EQUAL(r.batch_id, 0);
  CU_ASSERT_EQUAL(ag_dsink_next_batch(s), 1);
  ag_dsink_free(s);
  ag_ckpt_fini(&r);
  /* Spark went on (batch 3) after ehdelta's positions: refused unless forced */
  offsets(ck, 3, "txns", 40, 400);
  commit(ck, 2), commit(ck, 3);
  ag_spark_pos_fini(&sp);
  CU_ASSERT_EQUAL_FATAL(ag_spark_read(ck, NULL, -1, &sp, &e), ED_OK);
  CU_ASSERT_EQUAL(ag_dsink_open(&o, &s, &r, &e), ED_E_CONFIG);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "already has ehdelta positions"));
  ag_ckpt_fini(&r);
  o.takeover_force = true;
  CU_ASSERT_EQUAL_FATAL(ag_dsink_open(&o, &s, &r, &e), ED_OK);
  CU_ASSERT_EQUAL(r.batch_id, 1);
  CU_ASSERT_TRUE(ag_ckpt_get(&r, "0", &seq));
  CU_ASSERT_EQUAL(seq, 39);
  ag_dsink_free(s);
  ag_ckpt_fini(&r);
  ag_spark_pos_fini(&sp);
  dl_table_free(tb);
  st_free(st);
  ed_buf_fini(&js);
  sm_type_free(t);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  CU_ASSERT_EQUAL(system(cmd), 0);
}

static const cu_case_t cases[] = {
    CU_CASE(test_offsets_formats),
    CU_CASE(test_last_committed_batch),
    CU_CASE(test_sink_takes_over),
    CU_END,
};
ED_SUITE(ag_spark, cases)
