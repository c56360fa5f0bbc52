/* The metrics registry and its HTTP endpoint: the Prometheus text format
 * (HELP/TYPE, escaping, cumulative histogram buckets, sorted series),
 * updates from several threads at once, the /status page, the history rings
 * behind /history, the token, and a real server on a loopback port spoken
 * to over a raw socket. */
#include <arpa/inet.h>
#include <json-c/json.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/metrics.h"
#include "common/time.h"
#include "tests/unit/cu.h"

static ag_metrics_t *registry(void) {
  ag_metrics_t *m = NULL;
  ed_err_t e = {0};
  CU_ASSERT_EQUAL_FATAL(ag_metrics_new(NULL, "agent-1", NULL, &m, &e), ED_OK);
  return m;
}

/* True when line (a whole line) is in text. */
static bool has_line(const char *text, const char *line) {
  size_t n = strlen(line);
  for (const char *p = text; (p = strstr(p, line)); p++)
    if ((p == text || p[-1] == '\n') && p[n] == '\n')
      return true;
  return false;
}

static void test_text_has_help_and_type_for_every_family(void) {
  ag_metrics_t *m = registry();
  char *t = ag_metrics_prometheus(m);
  CU_ASSERT_PTR_NOT_NULL_FATAL(t);
  CU_ASSERT_TRUE(has_line(t, "# HELP ehdelta_events_received_total events taken from the hub"));
  CU_ASSERT_TRUE(has_line(t, "# TYPE ehdelta_events_received_total counter"));
  CU_ASSERT_TRUE(has_line(t, "# TYPE ehdelta_consumer_lag_events gauge"));
  CU_ASSERT_TRUE(has_line(t, "# TYPE ehdelta_commit_latency_seconds histogram"));
  CU_ASSERT_TRUE(has_line(t, "# TYPE ehdelta_start_time_seconds gauge"));
  /* unlabelled families always have their one sample; up is 1 from the start */
  CU_ASSERT_TRUE(has_line(t, "ehdelta_dead_letters_total 0"));
  CU_ASSERT_TRUE(has_line(t, "ehdelta_up 1"));
  /* labelled ones have none until a label is used */
  CU_ASSERT_PTR_NULL(strstr(t, "ehdelta_events_received_total{"));
  /* every line is a comment or "name[{labels}] value" and ends with \n */
  size_t helps = 0, types = 0;
  for (const char *p = t; *p;) {
    const char *nl = strchr(p, '\n');
    CU_ASSERT_PTR_NOT_NULL_FATAL(nl);
    if (!strncmp(p, "# HELP ", 7))
      helps++;
    else if (!strncmp(p, "# TYPE ", 7))
      types++;
    else
      CU_ASSERT_EQUAL(strncmp(p, "ehdelta_", 8), 0);
    p = nl + 1;
  }
  CU_ASSERT_EQUAL(helps, (size_t)AG_M__COUNT + 2);
  CU_ASSERT_EQUAL(types, helps);
  free(t);
  ag_metrics_free(m);
}

static void test_label_values_escaped(void) {
  ag_metrics_t *m = registry();
  ag_metrics_set(m, AG_M_LAG, "a\"b\\c\nd", 5);
  ag_metrics_add(m, AG_M_ROWS_WRITTEN, "raw", 12);
  char *t = ag_metrics_prometheus(m);
  CU_ASSERT_TRUE(has_line(t, "ehdelta_consumer_lag_events{partition=\"a\\\"b\\\\c\\nd\"} 5"));
  CU_ASSERT_TRUE(has_line(t, "ehdelta_rows_written_total{sink=\"raw\"} 12"));
  free(t);
  /* the label was copied: the caller's buffer may change */
  char label[8] = "p7";
  ag_metrics_set(m, AG_M_LAG, label, 1);
  strcpy(label, "zz");
  CU_ASSERT_EQUAL(ag_metrics_get(m, AG_M_LAG, "p7"), 1);
  CU_ASSERT_EQUAL(ag_metrics_get(m, AG_M_LAG, "zz"), 0);
  ag_metrics_free(m);
}

static void test_series_sorted_partitions_numerically(void) {
  ag_metrics_t *m = registry();
  const char *in[] = {"10", "b", "2", "a", "1", "02", "0"};
  for (size_t i = 0; i < sizeof in / sizeof in[0]; i++)
    ag_metrics_add(m, AG_M_EVENTS_RECEIVED, in[i], (double)i + 1);
  char *t = ag_metrics_prometheus(m);
  /* 0 < 1 < 02 == 2 numerically (then byte-wise) < 10 < names */
  const char *order[] = {"0", "1", "02", "2", "10", "a", "b"};
  const char *prev = t;
  for (size_t i = 0; i < 7; i++) {
    char s[64];
    snprintf(s, sizeof s, "ehdelta_events_received_total{partition=\"%s\"}", order[i]);
    const char *at = strstr(t, s);
    CU_ASSERT_PTR_NOT_NULL(at);
    CU_ASSERT_TRUE(at && at > prev);
    if (at)
      prev = at;
  }
  free(t);
  ag_metrics_free(m);
}

static void test_histogram_buckets_cumulative(void) {
  ag_metrics_t *m = registry();
  const double obs[] = {0.001, 0.005, 0.2, 0.2, 7, 100};
  for (size_t i = 0; i < 6; i++)
    ag_metrics_observe_commit(m, "raw", obs[i]);
  ag_metrics_observe_commit(m, "by_category", 0.04);
  char *t = ag_metrics_prometheus(m);
  static const struct {
    const char *le;
    int n;
  } want[] = {{"0.005", 2}, {"0.01", 2}, {"0.025", 2}, {"0.05", 2}, {"0.1", 2},
              {"0.25", 4},  {"0.5", 4},  {"1", 4},     {"2.5", 4},  {"5", 4},
              {"10", 5},    {"30", 5},   {"+Inf", 6}};
  const char *prev = t;
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    char s[128];
    snprintf(s, sizeof s, "ehdelta_commit_latency_seconds_bucket{sink=\"raw\",le=\"%s\"} %d",
             want[i].le, want[i].n);
    CU_ASSERT_TRUE(has_line(t, s));
    const char *at = strstr(t, s);
    CU_ASSERT_TRUE(at && at > prev); /* in bucket order */
    if (at)
      prev = at;
  }
  const char *sum = strstr(t, "\nehdelta_commit_latency_seconds_sum{sink=\"raw\"} ");
  CU_ASSERT_TRUE(sum && fabs(strtod(strchr(sum, '}') + 2, NULL) - 107.406) < 1e-9);
  CU_ASSERT_TRUE(has_line(t, "ehdelta_commit_latency_seconds_count{sink=\"raw\"} 6"));
  CU_ASSERT_TRUE(
      has_line(t, "ehdelta_commit_latency_seconds_bucket{sink=\"by_category\",le=\"0.025\"} 0"));
  CU_ASSERT_TRUE(
      has_line(t, "ehdelta_commit_latency_seconds_bucket{sink=\"by_category\",le=\"0.05\"} 1"));
  /* sinks sorted: by_category before raw */
  CU_ASSERT_TRUE(strstr(t, "sink=\"by_category\"") < strstr(t, "sink=\"raw\""));
  free(t);
  ag_metrics_free(m);
}

static void test_values_and_counters(void) {
  ag_metrics_t *m = registry();
  ag_metrics_set(m, AG_M_INPUT_RATE, "raw", 0.1);
  ag_metrics_set(m, AG_M_PROCESS_RATE, "raw", 1e20);
  ag_metrics_set(m, AG_M_WATERMARK, "raw", 1700000000.25);
  ag_metrics_set(m, AG_M_STATE_ROWS, "raw", NAN);
  ag_metrics_set(m, AG_M_RING_USED, NULL, -0.0);
  ag_metrics_add(m, AG_M_RETRIES, NULL, 3);
  ag_metrics_add(m, AG_M_RETRIES, NULL, -2); /* a counter never goes down */
  ag_metrics_add(m, AG_M_RETRIES, "ignored", 1);
  char *t = ag_metrics_prometheus(m);
  CU_ASSERT_TRUE(has_line(t, "ehdelta_input_rows_per_second{sink=\"raw\"} 0.1"));
  CU_ASSERT_TRUE(has_line(t, "ehdelta_processed_rows_per_second{sink=\"raw\"} 1e+20"));
  CU_ASSERT_TRUE(has_line(t, "ehdelta_watermark_seconds{sink=\"raw\"} 1700000000.25"));
  CU_ASSERT_TRUE(has_line(t, "ehdelta_state_rows{sink=\"raw\"} NaN"));
  CU_ASSERT_TRUE(has_line(t, "ehdelta_ring_used_slots 0"));
  CU_ASSERT_TRUE(has_line(t, "ehdelta_retries_total 4"));
  free(t);
  CU_ASSERT_EQUAL(ag_metrics_get(m, AG_M_RETRIES, NULL), 4);
  /* NULL label on a labelled family: the sum over its series */
  ag_metrics_add(m, AG_M_EVENTS_RECEIVED, "0", 5);
  ag_metrics_add(m, AG_M_EVENTS_RECEIVED, "1", 7);
  CU_ASSERT_EQUAL(ag_metrics_get(m, AG_M_EVENTS_RECEIVED, NULL), 12);
  CU_ASSERT_EQUAL(ag_metrics_get(m, AG_M_EVENTS_RECEIVED, "1"), 7);
  CU_ASSERT_EQUAL(ag_metrics_get(m, AG_M_EVENTS_RECEIVED, "2"), 0);
  /* a NULL registry is a no-op everywhere */
  ag_metrics_add(NULL, AG_M_RETRIES, NULL, 1);
  ag_metrics_set(NULL, AG_M_LAG, "0", 1);
  ag_metrics_observe_commit(NULL, "raw", 1);
  ag_metrics_set_progress(NULL, "raw", "{}");
  CU_ASSERT_EQUAL(ag_metrics_get(NULL, AG_M_RETRIES, NULL), 0);
  CU_ASSERT_STR(ag_metrics_address(NULL), "");
  CU_ASSERT_STR(ag_metrics_address(m), "");
  ag_metrics_free(NULL);
  ag_metrics_free(m);
}

#define THREADS 4
#define ROUNDS  20000

static void *hammer(void *arg) {
  ag_metrics_t *m = arg;
  char label[8];
  for (int i = 0; i < ROUNDS; i++) {
    snprintf(label, sizeof label, "%d", i % 8);
    ag_metrics_add(m, AG_M_EVENTS_RECEIVED, label, 1);
    ag_metrics_add(m, AG_M_BYTES_RECEIVED, label, 10);
    ag_metrics_add(m, AG_M_DEAD_LETTERS, NULL, 1);
    if (i % 100 == 0)
      ag_metrics_observe_commit(m, "raw", 0.01);
    if (i % 1000 == 0) {
      char *t = ag_metrics_prometheus(m);
      char *s = ag_metrics_status_json(m);
      CU_ASSERT_PTR_NOT_NULL(t);
      CU_ASSERT_PTR_NOT_NULL(s);
      free(t);
      free(s);
    }
  }
  return NULL;
}

static void test_concurrent_updates_sum(void) {
  ag_metrics_t *m = registry();
  pthread_t th[THREADS];
  for (int i = 0; i < THREADS; i++)
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, hammer, m), 0);
  for (int i = 0; i < THREADS; i++)
    pthread_join(th[i], NULL);
  CU_ASSERT_EQUAL(ag_metrics_get(m, AG_M_EVENTS_RECEIVED, NULL), THREADS * ROUNDS);
  CU_ASSERT_EQUAL(ag_metrics_get(m, AG_M_EVENTS_RECEIVED, "3"), THREADS * ROUNDS / 8);
  CU_ASSERT_EQUAL(ag_metrics_get(m, AG_M_BYTES_RECEIVED, NULL), THREADS * ROUNDS * 10);
  CU_ASSERT_EQUAL(ag_metrics_get(m, AG_M_DEAD_LETTERS, NULL), THREADS * ROUNDS);
  char *t = ag_metrics_prometheus(m);
  char want[96];
  snprintf(want, sizeof want, "ehdelta_commit_latency_seconds_count{sink=\"raw\"} %d",
           THREADS * ROUNDS / 100);
  CU_ASSERT_TRUE(has_line(t, want));
  free(t);
  ag_metrics_free(m);
}

static json_object *parse(const char *s) {
  json_object *o = s ? json_tokener_parse(s) : NULL;
  CU_ASSERT_PTR_NOT_NULL(o);
  return o;
}

static json_object *path(json_object *o, const char *a, const char *b, const char *c) {
  json_object *v = NULL;
  if (!o || !json_object_object_get_ex(o, a, &v))
    return NULL;
  if (b && !json_object_object_get_ex(v, b, &v))
    return NULL;
  if (c && !json_object_object_get_ex(v, c, &v))
    return NULL;
  return v;
}

static void test_status_progress_replaced(void) {
  ag_metrics_t *m = registry();
  ag_metrics_set_progress(m, "raw", "{\"batchId\":1,\"numInputRows\":10}\n");
  ag_metrics_set_progress(m, "raw", "{\"batchId\":2,\"numInputRows\":20,\"x\":0.1}");
  ag_metrics_set_progress(m, "raw", "{\"batchId\":3"); /* not JSON: ignored */
  ag_metrics_set_progress(m, "raw", "[1,2]");          /* not an object: ignored */
  ag_metrics_set_progress(m, "raw", "{} trailing");    /* not one object: ignored */
  ag_metrics_add(m, AG_M_BATCHES, "by_category", 0);   /* known sink, no progress yet */
  ag_metrics_set(m, AG_M_LAG, "3", 42);
  ag_metrics_add(m, AG_M_DEAD_LETTERS, NULL, 2);
  ag_metrics_observe_commit(m, "raw", 0.5);
  char *s = ag_metrics_status_json(m);
  json_object *o = parse(s);
  CU_ASSERT_STR(json_object_get_string(path(o, "agent", NULL, NULL)), "agent-1");
  CU_ASSERT_STR(json_object_get_string(path(o, "address", NULL, NULL)), "");
  const char *started = json_object_get_string(path(o, "startedAt", NULL, NULL));
  int64_t us = 0;
  ed_err_t e = {0};
  CU_ASSERT_TRUE(started && ed_time_parse_iso(started, strlen(started), &us, &e) == ED_OK);
  CU_ASSERT_TRUE(llabs(us - ed_time_now_us()) < 60 * ED_US_PER_SEC);
  CU_ASSERT_TRUE(json_object_is_type(path(o, "uptimeSeconds", NULL, NULL), json_type_double) ||
                 json_object_is_type(path(o, "uptimeSeconds", NULL, NULL), json_type_int));
  CU_ASSERT_EQUAL(json_object_get_int(path(o, "sinks", "raw", "batchId")), 2);
  CU_ASSERT_EQUAL(json_object_get_int(path(o, "sinks", "raw", "numInputRows")), 20);
  CU_ASSERT_PTR_NOT_NULL(strstr(s, "\"x\":0.1")); /* kept as written */
  json_object *bc = NULL;
  CU_ASSERT_TRUE(json_object_object_get_ex(path(o, "sinks", NULL, NULL), "by_category", &bc));
  CU_ASSERT_PTR_NULL(bc);
  CU_ASSERT_PTR_NOT_NULL(json_object_get_string(path(o, "lastCommitAt", "raw", NULL)));
  CU_ASSERT_EQUAL(json_object_get_int(path(o, "metrics", "consumer_lag_events", "3")), 42);
  CU_ASSERT_EQUAL(json_object_get_int(path(o, "metrics", "dead_letters_total", NULL)), 2);
  json_object *lat = path(o, "metrics", "commit_latency_seconds", "raw");
  CU_ASSERT_EQUAL(json_object_get_int(path(lat, "count", NULL, NULL)), 1);
  CU_ASSERT_DOUBLE_EQUAL(json_object_get_double(path(lat, "sum", NULL, NULL)), 0.5, 1e-12);
  CU_ASSERT_EQUAL(json_object_get_int(path(o, "metrics", "up", NULL)), 1);
  json_object_put(o);
  free(s);
  ag_metrics_free(m);
}

static void test_listen_address_errors(void) {
  ag_metrics_t *m = NULL;
  ed_err_t e = {0};
  const char *bad[] = {
      "nonsense", "127.0.0.1:99999", "127.0.0.1:", "::1:80", "[::1]80", "127.0.0.1:x1"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    CU_ASSERT_EQUAL(ag_metrics_new(bad[i], "a", NULL, &m, &e), ED_E_CONFIG);
    CU_ASSERT_PTR_NULL(m);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, bad[i]));
  }
  CU_ASSERT_EQUAL(ag_metrics_new("no-such-host.invalid:80", "a", NULL, &m, &e), ED_E_CONFIG);
  /* a port already taken */
  ag_metrics_t *a = NULL;
  CU_ASSERT_EQUAL_FATAL(ag_metrics_new("127.0.0.1:0", "a", NULL, &a, &e), ED_OK);
  char busy[64];
  snprintf(busy, sizeof busy, "%s", ag_metrics_address(a));
  CU_ASSERT_EQUAL(ag_metrics_new(busy, "b", NULL, &m, &e), ED_E_CONNECTION);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "cannot listen on"));
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "Address already in use"));
  ag_metrics_free(a);
}

/* ---- history, live figures, notes ---- */

static json_object *history(ag_metrics_t *m, int64_t since_ms) {
  char *h = ag_metrics_history_json(m, since_ms);
  json_object *o = parse(h);
  free(h);
  return o;
}

static size_t col_of(json_object *cols, const char *name) {
  for (size_t i = 0; i < json_object_array_length(cols); i++)
    if (!strcmp(json_object_get_string(json_object_array_get_idx(cols, i)), name))
      return i;
  CU_FAIL("column missing");
  return 0;
}

static void test_history_batch_ring_keeps_the_last_batches(void) {
  ag_metrics_t *m = registry();
  char line[512];
  for (int i = 0; i < AG_HISTORY_BATCHES + 100; i++) {
    snprintf(line, sizeof line,
             "{\"batchId\":%d,\"numInputRows\":%d,\"inputRowsPerSecond\":12.5,"
             "\"durationMs\":{\"getBatch\":1,\"queueWait\":2,\"walCommit\":3,\"addBatch\":4,"
             "\"commitOffsets\":5,\"triggerExecution\":20},"
             "\"eventTime\":{\"watermark\":\"2026-12-02T00:00:00.000Z\"},"
             "\"stateOperators\":[{\"numRowsTotal\":10,\"memoryUsedBytes\":100,"
             "\"numRowsDroppedByWatermark\":1},{\"numRowsTotal\":5,\"memoryUsedBytes\":50,"
             "\"numRowsDroppedByWatermark\":2}],\"sink\":{\"tableVersion\":%d}}",
             i, i * 10, i + 1);
    ag_metrics_set_progress(m, "raw", line);
  }
  json_object *o = history(m, 0);
  CU_ASSERT_EQUAL(json_object_get_int(path(o, "batchCapacity", NULL, NULL)), AG_HISTORY_BATCHES);
  json_object *cols = path(o, "batchColumns", NULL, NULL), *rows = path(o, "sinks", "raw", NULL);
  CU_ASSERT_EQUAL_FATAL(json_object_array_length(rows), AG_HISTORY_BATCHES);
  json_object *first = json_object_array_get_idx(rows, 0);
  json_object *last = json_object_array_get_idx(rows, AG_HISTORY_BATCHES - 1);
  /* the oldest 100 went; order is oldest first */
  CU_ASSERT_EQUAL(json_object_get_int(json_object_array_get_idx(first, col_of(cols, "batchId"))),
                  100);
  CU_ASSERT_EQUAL(json_object_get_int(json_object_array_get_idx(last, col_of(cols, "batchId"))),
                  AG_HISTORY_BATCHES + 99);
  struct {
    const char *col;
    double want;
  } want[] = {{"numInputRows", (AG_HISTORY_BATCHES + 99) * 10.0},
              {"inputRowsPerSecond", 12.5},
              {"getBatch", 1},
              {"commitOffsets", 5},
              {"triggerExecution", 20},
              {"tableVersion", AG_HISTORY_BATCHES + 100},
              {"watermarkMs", 1796169600000.0},
              {"numRowsDroppedByWatermark", 3},
              {"stateRows", 15},
              {"stateMemoryBytes", 150}};
  for (size_t i = 0; i < sizeof want / sizeof *want; i++)
    CU_ASSERT_DOUBLE_EQUAL(
        json_object_get_double(json_object_array_get_idx(last, col_of(cols, want[i].col))),
        want[i].want, 1e-9);
  /* what a line lacks is null, not 0 */
  CU_ASSERT_TRUE(json_object_is_type(
      json_object_array_get_idx(last, col_of(cols, "eventTimeMaxMs")), json_type_null));
  /* since: only newer rows */
  int64_t t_last = json_object_get_int64(json_object_array_get_idx(last, 0));
  json_object_put(o);
  o = history(m, t_last);
  CU_ASSERT_EQUAL(json_object_array_length(path(o, "sinks", "raw", NULL)), 0);
  json_object_put(o);
  ag_metrics_free(m);
}

static void test_history_sample_ring_bounded(void) {
  ag_metrics_t *m = registry();
  ag_metrics_add(m, AG_M_EVENTS_RECEIVED, "0", 5);
  ag_metrics_add(m, AG_M_EVENTS_RECEIVED, "1", 7);
  ag_metrics_set(m, AG_M_LAG, "0", 3);
  for (int i = 0; i < AG_HISTORY_SAMPLES + 5; i++)
    ag_metrics_sample(m);
  json_object *o = history(m, 0);
  CU_ASSERT_EQUAL(json_object_get_int(path(o, "capacity", NULL, NULL)), AG_HISTORY_SAMPLES);
  json_object *cols = path(o, "columns", NULL, NULL), *rows = path(o, "samples", NULL, NULL);
  CU_ASSERT_EQUAL_FATAL(json_object_array_length(rows), AG_HISTORY_SAMPLES);
  json_object *last = json_object_array_get_idx(rows, AG_HISTORY_SAMPLES - 1);
  CU_ASSERT_EQUAL(json_object_array_length(last), json_object_array_length(cols));
  CU_ASSERT_EQUAL(
      json_object_get_int(json_object_array_get_idx(last, col_of(cols, "eventsReceived"))), 12);
  CU_ASSERT_EQUAL(json_object_get_int(json_object_array_get_idx(last, col_of(cols, "lagEvents"))),
                  3);
  CU_ASSERT_TRUE(json_object_get_double(json_object_array_get_idx(last, col_of(cols, "rssBytes"))) >
                 0);
  json_object_put(o);
  ag_metrics_free(m);
}

static void test_status_partitions_state_rate_and_notes(void) {
  ag_metrics_t *m = registry();
  ag_metrics_set_state(m, "1", "retrying");
  ag_metrics_set_state(m, "0", "ready");
  ag_metrics_set(m, AG_M_LAG, "0", 40);
  ag_metrics_set(m, AG_M_LAG, "1", 0);
  ag_metrics_set(m, AG_M_LAG, "2", 9); /* no events yet: not draining */
  ag_metrics_add(m, AG_M_EVENTS_RECEIVED, "0", 100);
  ag_metrics_sample(m);
  usleep(20000);
  ag_metrics_add(m, AG_M_EVENTS_RECEIVED, "0", 100);
  ag_metrics_sample(m);
  for (int i = 0; i < AG_METRICS_NOTES + 3; i++) {
    char f[32];
    snprintf(f, sizeof f, "n=%d", i);
    ag_metrics_note(m, i % 2 ? 1 : 0, "commit_retry", f);
  }
  char *s = ag_metrics_status_json(m);
  json_object *o = parse(s);
  free(s);
  json_object *parts = path(o, "partitions", NULL, NULL);
  CU_ASSERT_EQUAL_FATAL(json_object_array_length(parts), 3);
  json_object *p0 = json_object_array_get_idx(parts, 0), *p1 = json_object_array_get_idx(parts, 1),
              *p2 = json_object_array_get_idx(parts, 2);
  CU_ASSERT_STR(json_object_get_string(path(p0, "id", NULL, NULL)), "0");
  CU_ASSERT_STR(json_object_get_string(path(p0, "state", NULL, NULL)), "ready");
  CU_ASSERT_TRUE(json_object_get_boolean(path(p0, "owned", NULL, NULL)));
  double rate = json_object_get_double(path(p0, "eventsPerSecond", NULL, NULL));
  CU_ASSERT_TRUE(rate > 0);
  /* 40 events behind at `rate` events/s */
  CU_ASSERT_DOUBLE_EQUAL(json_object_get_double(path(p0, "lagSeconds", NULL, NULL)), 40 / rate,
                         0.051 + 40 / rate * 0.01);
  CU_ASSERT_STR(json_object_get_string(path(p1, "state", NULL, NULL)), "retrying");
  CU_ASSERT_EQUAL(json_object_get_int(path(p1, "lagSeconds", NULL, NULL)), 0);
  CU_ASSERT_STR(json_object_get_string(path(p2, "state", NULL, NULL)), "unknown");
  CU_ASSERT_TRUE(json_object_is_type(path(p2, "lagSeconds", NULL, NULL), json_type_null));
  json_object *errs = path(o, "errors", NULL, NULL);
  CU_ASSERT_EQUAL_FATAL(json_object_array_length(errs), AG_METRICS_NOTES);
  json_object *newest = json_object_array_get_idx(errs, 0);
  char want[32];
  snprintf(want, sizeof want, "commit_retry n=%d", AG_METRICS_NOTES + 2);
  CU_ASSERT_STR(json_object_get_string(path(newest, "text", NULL, NULL)), want);
  CU_ASSERT_STR(json_object_get_string(path(newest, "level", NULL, NULL)), "error");
  CU_ASSERT_STR(
      json_object_get_string(path(json_object_array_get_idx(errs, 1), "level", NULL, NULL)),
      "warn");
  CU_ASSERT_PTR_NOT_NULL(path(o, "process", "rssBytes", NULL));
  json_object_put(o);
  ag_metrics_free(m);
}

/* ---- a real server over a raw socket ---- */

static int port_of(const ag_metrics_t *m) {
  const char *a = ag_metrics_address(m);
  const char *c = strrchr(a, ':');
  return c ? atoi(c + 1) : 0;
}

static int dial(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CU_ASSERT_EQUAL_FATAL(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  return fd;
}

/* Reads until the server closes (at most 10 s); caller frees. */
static char *read_all(int fd) {
  size_t cap = 1 << 16, n = 0;
  char *b = malloc(cap + 1);
  int64_t deadline = ed_time_mono_us() + 10 * ED_US_PER_SEC;
  while (ed_time_mono_us() < deadline) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 200) <= 0)
      continue;
    if (n == cap) {
      char *nb = realloc(b, (cap *= 2) + 1);
      CU_ASSERT_PTR_NOT_NULL_FATAL(nb);
      b = nb;
    }
    ssize_t r = recv(fd, b + n, cap - n, 0);
    if (r <= 0)
      break;
    n += (size_t)r;
  }
  b[n] = '\0';
  return b;
}

static char *request(int port, const char *req, size_t n) {
  int fd = dial(port);
  size_t off = 0;
  while (off < n) {
    ssize_t w = send(fd, req + off, n - off, MSG_NOSIGNAL);
    if (w <= 0)
      break; /* the server may answer and close before reading it all */
    off += (size_t)w;
  }
  char *r = read_all(fd);
  close(fd);
  return r;
}

static char *get(int port, const char *req) { return request(port, req, strlen(req)); }

static const char *body_of(const char *resp) {
  const char *b = strstr(resp, "\r\n\r\n");
  return b ? b + 4 : "";
}

static ag_metrics_t *server(void) {
  ag_metrics_t *m = NULL;
  ed_err_t e = {0};
  CU_ASSERT_EQUAL_FATAL(ag_metrics_new("127.0.0.1:0", "agent-srv", NULL, &m, &e), ED_OK);
  CU_ASSERT_EQUAL(strncmp(ag_metrics_address(m), "127.0.0.1:", 10), 0);
  CU_ASSERT_TRUE(port_of(m) > 0);
  return m;
}

static void test_server_metrics_status_healthz(void) {
  ag_metrics_t *m = server();
  int port = port_of(m);
  ag_metrics_add(m, AG_M_EVENTS_RECEIVED, "0", 100);
  ag_metrics_set_progress(m, "raw", "{\"batchId\":7}");

  char *r = get(port, "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n");
  CU_ASSERT_EQUAL(strncmp(r, "HTTP/1.1 200 OK\r\n", 17), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(r, "\r\nContent-Type: text/plain; version=0.0.4"));
  CU_ASSERT_PTR_NOT_NULL(strstr(r, "\r\nConnection: close\r\n"));
  CU_ASSERT_TRUE(has_line(body_of(r), "ehdelta_events_received_total{partition=\"0\"} 100"));
  char cl[64];
  snprintf(cl, sizeof cl, "\r\nContent-Length: %zu\r\n", strlen(body_of(r)));
  CU_ASSERT_PTR_NOT_NULL(strstr(r, cl));
  free(r);

  r = get(port, "GET /status?pretty=0 HTTP/1.0\n\n"); /* bare LF and a query: accepted */
  CU_ASSERT_EQUAL(strncmp(r, "HTTP/1.1 200 OK\r\n", 17), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(r, "\r\nContent-Type: application/json\r\n"));
  json_object *o = parse(body_of(r));
  CU_ASSERT_STR(json_object_get_string(path(o, "agent", NULL, NULL)), "agent-srv");
  CU_ASSERT_STR(json_object_get_string(path(o, "address", NULL, NULL)), ag_metrics_address(m));
  CU_ASSERT_EQUAL(json_object_get_int(path(o, "sinks", "raw", "batchId")), 7);
  json_object_put(o);
  free(r);

  r = get(port, "GET /healthz HTTP/1.1\r\n\r\n");
  CU_ASSERT_EQUAL(strncmp(r, "HTTP/1.1 200 OK\r\n", 17), 0);
  CU_ASSERT_STR(body_of(r), "ok\n");
  free(r);
  ag_metrics_free(m);
}

static void test_server_page_and_history(void) {
  ag_metrics_t *m = server();
  int port = port_of(m);
  char *r = get(port, "GET / HTTP/1.1\r\n\r\n");
  CU_ASSERT_EQUAL(strncmp(r, "HTTP/1.1 200 OK\r\n", 17), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(r, "\r\nContent-Type: text/html; charset=utf-8\r\n"));
  CU_ASSERT_PTR_NOT_NULL(strstr(r, "\r\nContent-Security-Policy: default-src 'none';"));
  CU_ASSERT_PTR_NOT_NULL(strstr(body_of(r), "<!doctype html>"));
  CU_ASSERT_PTR_NOT_NULL(strstr(body_of(r), "</html>"));
  free(r);
  ag_metrics_set_progress(m, "raw", "{\"batchId\":3}");
  r = get(port, "GET /history?since=0 HTTP/1.1\r\n\r\n");
  json_object *o = parse(body_of(r));
  CU_ASSERT_EQUAL(json_object_array_length(path(o, "sinks", "raw", NULL)), 1);
  json_object_put(o);
  free(r);
  ag_metrics_free(m);
}

static char *write_token(const char *text) {
  char *f = strdup("/tmp/ag_metrics_token.XXXXXX");
  int fd = mkstemp(f);
  CU_ASSERT_TRUE_FATAL(fd >= 0);
  CU_ASSERT_EQUAL((size_t)write(fd, text, strlen(text)), strlen(text));
  close(fd);
  return f;
}

static void test_token_file_and_every_request(void) {
  ed_err_t e = {0};
  char *tok = NULL;
  char *f = write_token("s3cret+/=\n");
  CU_ASSERT_EQUAL_FATAL(ag_metrics_read_token(f, &tok, &e), ED_OK);
  CU_ASSERT_STR(tok, "s3cret+/=");
  unlink(f);
  free(f);
  f = write_token("\n");
  char *none = NULL;
  CU_ASSERT_EQUAL(ag_metrics_read_token(f, &none, &e), ED_E_CONFIG);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "is empty (expected one line with the token)"));
  CU_ASSERT_PTR_NULL(none);
  unlink(f);
  free(f);
  CU_ASSERT_EQUAL(ag_metrics_read_token("/nonexistent/token", &none, &e), ED_E_CONFIG);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "/nonexistent/token"));

  ag_metrics_t *m = NULL;
  CU_ASSERT_EQUAL_FATAL(ag_metrics_new("127.0.0.1:0", "tok", tok, &m, &e), ED_OK);
  int port = port_of(m);
  const struct {
    const char *req;
    int code;
  } cases[] = {
      {"GET /status HTTP/1.1\r\n\r\n", 401},
      {"GET / HTTP/1.1\r\n\r\n", 401},
      {"GET /healthz HTTP/1.1\r\n\r\n", 401},
      {"GET /metrics HTTP/1.1\r\nAuthorization: Bearer s3cret+/=\r\n\r\n", 200},
      {"GET /metrics HTTP/1.1\r\nHost: x\r\nauthorization:   bearer s3cret+/=  \r\n\r\n", 200},
      {"GET /metrics HTTP/1.1\r\nAuthorization: Bearer s3cret+/\r\n\r\n", 401},
      {"GET /metrics HTTP/1.1\r\nAuthorization: Bearer s3cret+/==\r\n\r\n", 401},
      {"GET /metrics HTTP/1.1\r\nAuthorization: Basic czNjcmV0\r\n\r\n", 401},
      {"GET /status?token=s3cret%2B%2F%3D HTTP/1.1\r\n\r\n", 200},
      {"GET /history?since=5&token=s3cret%2B%2F%3D HTTP/1.1\r\n\r\n", 200},
      {"GET /status?token=s3cret HTTP/1.1\r\n\r\n", 401},
      {"GET /status?xtoken=s3cret%2B%2F%3D HTTP/1.1\r\n\r\n", 401},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char *r = get(port, cases[i].req);
    char want[32];
    snprintf(want, sizeof want, "HTTP/1.1 %d ", cases[i].code);
    if (strncmp(r, want, strlen(want)))
      fprintf(stderr, "case %zu: %.40s\n", i, r);
    CU_ASSERT_EQUAL(strncmp(r, want, strlen(want)), 0);
    CU_ASSERT_PTR_NULL(strstr(body_of(r), "s3cret"));
    free(r);
  }
  ag_metrics_free(m);
  free(tok);
}

static void test_server_refuses_what_it_does_not_serve(void) {
  ag_metrics_t *m = server();
  int port = port_of(m);
  char *r = get(port, "GET /nope HTTP/1.1\r\n\r\n");
  CU_ASSERT_EQUAL(strncmp(r, "HTTP/1.1 404 ", 13), 0);
  free(r);
  r = get(port, "POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
  CU_ASSERT_EQUAL(strncmp(r, "HTTP/1.1 405 ", 13), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(r, "\r\nAllow: GET\r\n"));
  free(r);
  r = get(port, "HEAD /metrics HTTP/1.1\r\n\r\n");
  CU_ASSERT_EQUAL(strncmp(r, "HTTP/1.1 405 ", 13), 0);
  free(r);
  r = get(port, "garbage\r\n\r\n");
  CU_ASSERT_EQUAL(strncmp(r, "HTTP/1.1 400 ", 13), 0);
  free(r);
  /* a head over 8 KiB: refused, and the answer arrives (no reset) */
  size_t n = 64 * 1024;
  char *big = malloc(n + 1);
  memcpy(big, "GET /metrics HTTP/1.1\r\nX-Pad: ", 30);
  memset(big + 30, 'a', n - 30);
  big[n] = '\0';
  r = request(port, big, n);
  CU_ASSERT_EQUAL(strncmp(r, "HTTP/1.1 431 ", 13), 0);
  free(r);
  free(big);
  /* still serving after all that */
  r = get(port, "GET /healthz HTTP/1.1\r\n\r\n");
  CU_ASSERT_STR(body_of(r), "ok\n");
  free(r);
  ag_metrics_free(m);
}

static void test_server_times_out_slow_client_and_stops_promptly(void) {
  ag_metrics_t *m = server();
  int port = port_of(m);
  /* a request that never ends: 408 after the 2 s bound */
  int fd = dial(port);
  CU_ASSERT_EQUAL(send(fd, "GET /metrics HTTP/1.1\r\n", 23, MSG_NOSIGNAL), 23);
  int64_t t0 = ed_time_mono_us();
  char *r = read_all(fd);
  int64_t took = ed_time_mono_us() - t0;
  close(fd);
  CU_ASSERT_EQUAL(strncmp(r, "HTTP/1.1 408 ", 13), 0);
  CU_ASSERT_TRUE(took >= 1500 * 1000 && took < 5 * ED_US_PER_SEC);
  free(r);
  /* free while a client holds a connection open: returns at once */
  fd = dial(port);
  struct pollfd p = {fd, POLLIN, 0};
  poll(&p, 1, 100); /* let the server accept it */
  t0 = ed_time_mono_us();
  ag_metrics_free(m);
  CU_ASSERT_TRUE(ed_time_mono_us() - t0 < 1000 * 1000);
  close(fd);
}

static void test_server_ipv6_loopback(void) {
  ag_metrics_t *m = NULL;
  ed_err_t e = {0};
  if (ag_metrics_new("[::1]:0", "v6", NULL, &m, &e) != ED_OK)
    return; /* no IPv6 on this host: the address forms are covered above */
  CU_ASSERT_EQUAL(strncmp(ag_metrics_address(m), "[::1]:", 6), 0);
  int fd = socket(AF_INET6, SOCK_STREAM, 0);
  struct sockaddr_in6 sa = {0};
  sa.sin6_family = AF_INET6;
  sa.sin6_port = htons((uint16_t)port_of(m));
  sa.sin6_addr = in6addr_loopback;
  CU_ASSERT_EQUAL_FATAL(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  CU_ASSERT_EQUAL(send(fd, "GET /healthz HTTP/1.1\r\n\r\n", 25, MSG_NOSIGNAL), 25);
  char *r = read_all(fd);
  close(fd);
  CU_ASSERT_STR(body_of(r), "ok\n");
  free(r);
  ag_metrics_free(m);
}

static void test_server_every_address_and_rude_clients(void) {
  ag_metrics_t *m = NULL;
  ed_err_t e = {0};
  CU_ASSERT_EQUAL_FATAL(ag_metrics_new(":0", "any", NULL, &m, &e), ED_OK);
  const char *a = ag_metrics_address(m);
  CU_ASSERT_TRUE(!strncmp(a, "[::]:", 5) || !strncmp(a, "0.0.0.0:", 8));
  int port = port_of(m);
  CU_ASSERT_TRUE(port > 0);
  /* connects and leaves at once; sends half a request and leaves */
  close(dial(port));
  int fd = dial(port);
  CU_ASSERT_EQUAL(send(fd, "GET /met", 8, MSG_NOSIGNAL), 8);
  close(fd);
  /* resets the connection mid-request */
  fd = dial(port);
  struct linger lg = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  CU_ASSERT_EQUAL(send(fd, "GET /metrics", 12, MSG_NOSIGNAL), 12);
  close(fd);
  /* IPv4 loopback reaches an every-address endpoint */
  char *r = get(port, "GET /healthz HTTP/1.1\r\n\r\n");
  CU_ASSERT_STR(body_of(r), "ok\n");
  free(r);
  ag_metrics_free(m);
}

static const cu_case_t cases[] = {
    CU_CASE(test_text_has_help_and_type_for_every_family),
    CU_CASE(test_label_values_escaped),
    CU_CASE(test_series_sorted_partitions_numerically),
    CU_CASE(test_histogram_buckets_cumulative),
    CU_CASE(test_values_and_counters),
    CU_CASE(test_concurrent_updates_sum),
    CU_CASE(test_status_progress_replaced),
    CU_CASE(test_listen_address_errors),
    CU_CASE(test_history_batch_ring_keeps_the_last_batches),
    CU_CASE(test_history_sample_ring_bounded),
    CU_CASE(test_status_partitions_state_rate_and_notes),
    CU_CASE(test_server_metrics_status_healthz),
    CU_CASE(test_server_page_and_history),
    CU_CASE(test_token_file_and_every_request),
    CU_CASE(test_server_refuses_what_it_does_not_serve),
    CU_CASE(test_server_times_out_slow_client_and_stops_promptly),
    CU_CASE(test_server_ipv6_loopback),
    CU_CASE(test_server_every_address_and_rude_clients),
    CU_END,
};
ED_SUITE(ag_metrics, cases)
