/* dl_tool: the Delta tests' and bench's driver of src/delta (a test tool:
 * prints, exits).
 *   dl_tool create URL [--partitioned] [--interval N]   create the test table
 *   dl_tool append URL APPID WRITER COMMITS ROWS [--no-checkpoint] [--ptxns N]
 *       COMMITS commits, each one data file of ROWS rows and txn(APPID, i)
 *       (with --ptxns, also txn(APPID/p, i*100+p) for p < N on its base);
 *       ids are WRITER*10^9 + i*ROWS + r so every row is unique; prints one
 *       line: commits, attempts, retries, versions, wall and CPU ms per commit
 *   dl_tool snapshot URL         prints the snapshot as JSON (version, txn,
 *                                files with partition values and numRecords)
 *   dl_tool checkpoint URL       writes a checkpoint of the latest version
 *   dl_tool load URL N           loads the snapshot N times; prints ms each
 * Test schema: id long, name string, value double, ts timestamp, flag
 * boolean, part string (partition column when --partitioned). Credentials
 * for Azure URLs come from the environment (store.h). */
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "common/buf.h"
#include "common/time.h"
#include "delta/datafile.h"
#include "delta/maint.h"
#include "delta/stats.h"
#include "delta/table.h"

static void die(const char *what, const ed_err_t *e) {
  fprintf(stderr, "dl_tool: %s: %s\n", what,
          e && e->msg[0] ? e->msg : ed_code_desc(e ? e->code : ED_E_INTERNAL));
  exit(e && e->code == ED_E_CONFLICT ? 3 : 1);
}

static st_store_t *open_store(const char *url) {
  st_store_t *s;
  ed_err_t e = {0};
  if (st_open(url, NULL, &s, &e))
    die("open store", &e);
  return s;
}

static pq_schema_t *data_schema(void) {
  pq_schema_t *s;
  ed_err_t e = {0};
  if (pq_schema_new(&s, &e) || pq_schema_add(s, PQ_ROOT, "id", PQ_T_INT64, PQ_REQUIRED, NULL, &e) ||
      pq_schema_add(s, PQ_ROOT, "name", PQ_T_STRING, PQ_OPTIONAL, NULL, &e) ||
      pq_schema_add(s, PQ_ROOT, "value", PQ_T_DOUBLE, PQ_OPTIONAL, NULL, &e) ||
      pq_schema_add(s, PQ_ROOT, "ts", PQ_T_TIMESTAMP, PQ_OPTIONAL, NULL, &e) ||
      pq_schema_add(s, PQ_ROOT, "flag", PQ_T_BOOLEAN, PQ_OPTIONAL, NULL, &e) ||
      pq_schema_finish(s, &e))
    die("schema", &e);
  return s;
}

static const char *SCHEMA_PART =
    "{\"type\":\"struct\",\"fields\":[{\"name\":\"id\",\"type\":\"long\",\"nullable\":false,"
    "\"metadata\":{}},{\"name\":\"name\",\"type\":\"string\",\"nullable\":true,\"metadata\":{}},"
    "{\"name\":\"value\",\"type\":\"double\",\"nullable\":true,\"metadata\":{}},{\"name\":\"ts\","
    "\"type\":\"timestamp\",\"nullable\":true,\"metadata\":{}},{\"name\":\"flag\",\"type\":"
    "\"boolean\",\"nullable\":true,\"metadata\":{}},{\"name\":\"part\",\"type\":\"string\","
    "\"nullable\":true,\"metadata\":{}}]}";

static int cmd_create(int argc, char **argv) {
  bool part = false;
  const char *interval = "10";
  for (int i = 3; i < argc; i++) {
    if (!strcmp(argv[i], "--partitioned"))
      part = true;
    else if (!strcmp(argv[i], "--interval") && i + 1 < argc)
      interval = argv[++i];
  }
  st_store_t *s = open_store(argv[2]);
  const char *pcols[] = {"part", NULL};
  dl_kv_t cfg[] = {{"delta.checkpointInterval", (char *)interval}};
  dl_create_opts_t o = {SCHEMA_PART, part ? pcols : NULL, cfg, 1, "dl_tool"};
  dl_table_t *t;
  ed_err_t e = {0};
  if (dl_table_create(s, &o, &t, &e))
    die("create", &e);
  printf("{\"version\":%" PRId64 "}\n", dl_table_version(t));
  dl_table_free(t);
  st_free(s);
  return 0;
}

static int cmd_append(int argc, char **argv) {
  if (argc < 7) {
    fprintf(stderr, "usage: dl_tool append URL APPID WRITER COMMITS ROWS [--no-checkpoint] "
                    "[--ptxns N]\n");
    return 2;
  }
  const char *app = argv[3];
  int64_t writer = atoll(argv[4]), commits = atoll(argv[5]), rows = atoll(argv[6]);
  bool nockpt = false;
  /* --ptxns N: every commit also moves partitions APPID/0..N-1 (a sink's
   * per-partition positions), partition p of commit c to c * 100 + p */
  size_t np = 0;
  for (int i = 7; i < argc; i++)
    if (!strcmp(argv[i], "--no-checkpoint"))
      nockpt = true;
    else if (!strcmp(argv[i], "--ptxns") && i + 1 < argc)
      np = (size_t)atoll(argv[++i]);
  st_store_t *s = open_store(argv[2]);
  dl_table_t *t;
  ed_err_t e = {0};
  if (dl_table_open(s, &t, &e))
    die("open", &e);
  char(*pids)[64] = calloc(np + 1, sizeof *pids);
  dl_ptxn_t *px = calloc(np + 1, sizeof *px);
  for (size_t p = 0; p < np; p++) {
    snprintf(pids[p], sizeof pids[p], "%s/%zu", app, p);
    px[p].app_id = pids[p];
    if (!dl_table_txn_version(t, pids[p], &px[p].base))
      px[p].base = -1;
  }
  pq_schema_t *schema = data_schema();
  bool part = dl_table_metadata(t)->npart > 0;
  int64_t start = 0, have;
  if (dl_table_txn_version(t, app, &have))
    start = have + 1;
  int64_t *ids = malloc(rows * sizeof *ids), *ts = malloc(rows * sizeof *ts);
  double *vals = malloc(rows * sizeof *vals);
  uint8_t *valid = malloc(rows), *flags = malloc(rows);
  uint32_t *off = malloc((rows + 1) * sizeof *off);
  ed_buf_t names = ED_BUF_INIT;
  int attempts = 0;
  struct rusage ru0, ru1;
  getrusage(RUSAGE_SELF, &ru0);
  int64_t t0 = ed_time_mono_us(), vmin = INT64_MAX, vmax = -1;
  for (int64_t c = start; c < commits; c++) {
    ed_buf_reset(&names);
    off[0] = 0;
    for (int64_t r = 0; r < rows; r++) {
      ids[r] = writer * 1000000000 + c * rows + r;
      ed_buf_printf(&names, "w%" PRId64 "-c%" PRId64 "-r%" PRId64, writer, c, r);
      off[r + 1] = (uint32_t)names.len;
      vals[r] = (double)ids[r] / 7.0;
      ts[r] = INT64_C(1732406400000000) + ids[r] * 1000;
      valid[r] = r % 5 != 4;
      flags[r] = r & 1;
    }
    pq_col_t cols[5] = {{.len = (size_t)rows, .v.i64 = ids},
                        {.len = (size_t)rows, .off = off, .data = names.data},
                        {.len = (size_t)rows, .valid = valid, .v.f64 = vals},
                        {.len = (size_t)rows, .v.i64 = ts},
                        {.len = (size_t)rows, .v.b8 = flags}};
    char pval[32];
    snprintf(pval, sizeof pval, "p%" PRId64, c % 3);
    dl_kv_t pv[1] = {{"part", pval}};
    dl_file_writer_t *w;
    dl_add_t add;
    if (dl_file_writer_new(t, schema, pv, part ? 1 : 0, NULL, &w, &e) ||
        dl_file_writer_write(w, cols, (size_t)rows, &e) || dl_file_writer_finish(w, true, &add, &e))
      die("data file", &e);
    dl_file_writer_free(w);
    for (size_t p = 0; p < np; p++)
      px[p].version = c * 100 + (int64_t)p;
    dl_commit_t cm = {.adds = &add,
                      .nadds = 1,
                      .app_id = app,
                      .txn_version = c,
                      .no_checkpoint = nockpt,
                      .ptxns = px,
                      .nptxns = np};
    dl_commit_result_t res;
    if (dl_table_commit(t, &cm, &res, &e))
      die("commit", &e);
    for (size_t p = 0; p < np; p++)
      px[p].base = px[p].version;
    attempts += res.attempts;
    if (res.version < vmin)
      vmin = res.version;
    if (res.version > vmax)
      vmax = res.version;
    dl_add_fini(&add);
  }
  int64_t us = ed_time_mono_us() - t0;
  getrusage(RUSAGE_SELF, &ru1);
  /* CPU time too: wall time on a loaded machine says more about the load */
  int64_t cpu_us =
      (ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) *
          INT64_C(1000000) +
      (ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec);
  int64_t n = commits - start;
  st_counters_t cnt;
  st_counters(s, &cnt);
  printf("{\"app\":\"%s\",\"commits\":%" PRId64 ",\"attempts\":%d,\"http_retries\":%" PRIu64
         ",\"first_version\":%" PRId64 ",\"last_version\":%" PRId64
         ",\"ms_per_commit\":%.3f,\"cpu_ms_per_commit\":%.3f}\n",
         app, n, attempts, cnt.retries, vmin == INT64_MAX ? -1 : vmin, vmax,
         n ? us / 1000.0 / (double)n : 0.0, n ? cpu_us / 1000.0 / (double)n : 0.0);
  free(ids);
  free(ts);
  free(vals);
  free(valid);
  free(flags);
  free(off);
  ed_buf_fini(&names);
  free(pids);
  free(px);
  pq_schema_free(schema);
  dl_table_free(t);
  st_free(s);
  return 0;
}

static int cmd_snapshot(int argc, char **argv) {
  (void)argc;
  st_store_t *s = open_store(argv[2]);
  dl_table_t *t;
  ed_err_t e = {0};
  if (dl_table_open(s, &t, &e))
    die("open", &e);
  json_object *o = json_object_new_object(), *tx = json_object_new_object(),
              *files = json_object_new_array();
  json_object_object_add(o, "version", json_object_new_int64(dl_table_version(t)));
  json_object_object_add(o, "checkpoint", json_object_new_int64(dl_table_checkpoint_version(t)));
  json_object_object_add(o, "schemaString",
                         json_object_new_string(dl_table_metadata(t)->schema_string));
  for (size_t i = 0; i < dl_table_num_txns(t); i++)
    json_object_object_add(tx, dl_table_txn_at(t, i)->app_id,
                           json_object_new_int64(dl_table_txn_at(t, i)->version));
  json_object_object_add(o, "txn", tx);
  for (size_t i = 0; i < dl_table_num_files(t); i++) {
    const dl_add_t *a = dl_table_file(t, i);
    json_object *f = json_object_new_object(), *pv = json_object_new_object();
    json_object_object_add(f, "path", json_object_new_string(a->path));
    json_object_object_add(f, "size", json_object_new_int64(a->size));
    for (size_t k = 0; k < a->npv; k++)
      json_object_object_add(pv, a->pv[k].key,
                             a->pv[k].value ? json_object_new_string(a->pv[k].value) : NULL);
    json_object_object_add(f, "partitionValues", pv);
    json_object_object_add(f, "stats", a->stats ? json_object_new_string(a->stats) : NULL);
    json_object_array_add(files, f);
  }
  json_object_object_add(o, "files", files);
  json_object_object_add(o, "tombstones",
                         json_object_new_int64((int64_t)dl_table_num_tombstones(t)));
  printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                       JSON_C_TO_STRING_NOSLASHESCAPE));
  json_object_put(o);
  dl_table_free(t);
  st_free(s);
  return 0;
}

static int cmd_checkpoint(int argc, char **argv) {
  (void)argc;
  st_store_t *s = open_store(argv[2]);
  dl_table_t *t;
  ed_err_t e = {0};
  if (dl_table_open(s, &t, &e) || dl_table_checkpoint(t, &e))
    die("checkpoint", &e);
  printf("{\"checkpoint\":%" PRId64 "}\n", dl_table_version(t));
  dl_table_free(t);
  st_free(s);
  return 0;
}

static int cmd_load(int argc, char **argv) {
  int n = argc > 3 ? atoi(argv[3]) : 5;
  st_store_t *s = open_store(argv[2]);
  for (int i = 0; i < n; i++) {
    dl_table_t *t;
    ed_err_t e = {0};
    int64_t t0 = ed_time_mono_us();
    if (dl_table_open(s, &t, &e))
      die("open", &e);
    printf("%.3f %" PRId64 " %zu\n", (ed_time_mono_us() - t0) / 1000.0, dl_table_version(t),
           dl_table_num_files(t));
    dl_table_free(t);
  }
  st_free(s);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: dl_tool create|append|snapshot|checkpoint|load URL ...\n");
    return 2;
  }
  if (!strcmp(argv[1], "create"))
    return cmd_create(argc, argv);
  if (!strcmp(argv[1], "append"))
    return cmd_append(argc, argv);
  if (!strcmp(argv[1], "snapshot"))
    return cmd_snapshot(argc, argv);
  if (!strcmp(argv[1], "checkpoint"))
    return cmd_checkpoint(argc, argv);
  if (!strcmp(argv[1], "load"))
    return cmd_load(argc, argv);
  fprintf(stderr, "dl_tool: unknown command '%s'\n", argv[1]);
  return 2;
}
