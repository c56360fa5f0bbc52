/* bench_decode: events per second per core decoding the tutorial's transaction
 * events into column batches, beside the bare parse of the same bytes by the
 * JSON library (the limit), measured in the same run on the same bodies.
 * Usage: bench_decode [seconds-per-figure (default 1) [simd: only that figure]]
 * The bodies are what the tutorial's generator sends: json.dumps of a dict
 * with transaction_id, customer_id, amount (round(uniform(10, 500), 2)),
 * category, timestamp (datetime.utcnow().isoformat()), location and
 * payment_method. */
#include "config.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/time.h"
#include "stream/decode.h"
#include "stream/decode_int.h"
#include "stream/schema.h"

#define NBODIES 4096
#define BATCH   4096

static char *bodies[NBODIES];
static size_t lens[NBODIES];

/* CPU time of this thread: events per second per core, not per wall second
 * on a machine other processes share. */
static int64_t cpu_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static void make_bodies(void) {
  static const char *cats[] = {"Electronics", "Books", "Clothing", "Home", "Sports"};
  static const char *locs[] = {"US", "UK", "EU", "APAC"};
  static const char *pays[] = {"Credit", "Debit", "PayPal"};
  int64_t t0 = INT64_C(1764625800000000);
  for (int i = 0; i < NBODIES; i++) {
    char ts[ED_TIME_ISO_MAX];
    size_t n = ed_time_format_iso(t0 + (int64_t)i * 1237, 6, ts);
    ts[n - 1] = '\0'; /* isoformat() has no zone */
    char buf[512];
    int len = snprintf(buf, sizeof buf,
                       "{\"transaction_id\": \"T%06d\", \"customer_id\": \"C%03d\", \"amount\": "
                       "%.2f, \"category\": \"%s\", \"timestamp\": \"%s\", \"location\": \"%s\", "
                       "\"payment_method\": \"%s\"}",
                       i + 1, (int)(next() % 100) + 1, 10.0 + (double)(next() % 49000) / 100.0,
                       cats[next() % 5], ts, locs[next() % 4], pays[next() % 3]);
    bodies[i] = strdup(buf);
    lens[i] = (size_t)len;
  }
}

static const char *SCHEMA = "transaction_id STRING, customer_id STRING, amount DOUBLE, "
                            "category STRING, timestamp TIMESTAMP, location STRING, "
                            "payment_method STRING";

typedef struct {
  const char *name;
  double eps;
} fig_t;

static double run_decode(sm_dec_backend_t be, double secs, const char **name) {
  *name = "?";
  sm_type_t *st;
  if (sm_schema_parse_ddl(SCHEMA, &st, NULL))
    exit(2);
  sm_meta_col_t meta[] = {{SM_META_ENQUEUED_TIME, "ingestion_time"},
                          {SM_META_OFFSET, NULL},
                          {SM_META_SEQUENCE_NUMBER, NULL}};
  sm_dec_opts_t o = {.backend = be};
  sm_dec_t *d;
  if (sm_dec_new(st, meta, 3, &o, &d, NULL))
    exit(2);
  *name = sm_dec_backend_name(d);
  sm_batch_t *b = sm_batch_new(sm_dec_schema(d));
  sm_event_meta_t m = {0};
  uint64_t n = 0;
  int64_t start = cpu_us(), end = start + (int64_t)(secs * 1e6);
  do {
    sm_batch_reset(b);
    for (int i = 0; i < BATCH; i++) {
      m.sequence_number = m.offset = (int64_t)n + i;
      m.enqueued_us = INT64_C(1764625800000000);
      sm_dec_status_t s;
      if (sm_dec_decode(d, b, bodies[i], lens[i], &m, &s, NULL, NULL) || s != SM_DEC_ROW) {
        fprintf(stderr, "bench_decode: event %d not decoded\n", i);
        exit(1);
      }
    }
    n += BATCH;
  } while (cpu_us() < end);
  double eps = (double)n / ((double)(cpu_us() - start) / 1e6);
  sm_batch_free(b);
  sm_dec_free(d);
  sm_type_free(st);
  return eps;
}

static double run_jsonc_bare(double secs) {
  json_tokener *tok = json_tokener_new();
  uint64_t n = 0;
  double sink = 0;
  int64_t start = cpu_us(), end = start + (int64_t)(secs * 1e6);
  do {
    for (int i = 0; i < BATCH; i++) {
      json_tokener_reset(tok);
      json_object *o = json_tokener_parse_ex(tok, bodies[i], (int)lens[i]);
      if (!o)
        exit(1);
      json_object_object_foreach(o, k, v) {
        sink += (double)strlen(k);
        if (json_object_is_type(v, json_type_double))
          sink += json_object_get_double(v);
        else
          sink += (double)json_object_get_string_len(v);
      }
      json_object_put(o);
    }
    n += BATCH;
  } while (cpu_us() < end);
  json_tokener_free(tok);
  if (sink == 0.5)
    puts("");
  return (double)n / ((double)(cpu_us() - start) / 1e6);
}

#ifdef HAVE_SIMDJSON
static double run_simd_bare(double secs) {
  void *s = sm_dec__simd_new(64);
  uint64_t n = 0;
  double sink = 0;
  int64_t start = cpu_us(), end = start + (int64_t)(secs * 1e6);
  do {
    for (int i = 0; i < BATCH; i++)
      if (sm_dec__simd_bare(s, bodies[i], lens[i], &sink))
        exit(1);
    n += BATCH;
  } while (cpu_us() < end);
  sm_dec__simd_free(s);
  if (sink == 0.5)
    puts("");
  return (double)n / ((double)(cpu_us() - start) / 1e6);
}
#endif

/* The machine is shared: each figure is the best of ROUNDS short runs,
 * interleaved with the others, so a descheduled moment spoils one round, not
 * one figure. */
#define ROUNDS 10
static double best(double a, double b) { return a > b ? a : b; }

int main(int argc, char **argv) {
  double secs = argc > 1 ? atof(argv[1]) : 1.0;
  if (secs <= 0)
    secs = 1.0;
  make_bodies();
  size_t total = 0;
  for (int i = 0; i < NBODIES; i++)
    total += lens[i];
  printf("bench_decode: %d tutorial transaction bodies, mean %zu bytes, %s s per figure (best of "
         "%d rounds)\n",
         NBODIES, total / NBODIES, argc > 1 ? argv[1] : "1", ROUNDS);
  const char *name = "?";
  if (argc > 2 && strcmp(argv[2], "simd") == 0) { /* one figure alone, for a profiler */
    printf("  decode %.3f M events/s (%s)\n", run_decode(SM_DEC_AUTO, secs, &name) / 1e6, name);
    return 0;
  }
#ifdef HAVE_SIMDJSON
  if (argc > 2 && strcmp(argv[2], "bare") == 0) {
    printf("  bare %.3f M events/s\n", run_simd_bare(secs) / 1e6);
    return 0;
  }
#endif
  double jc_bare = 0, jc = 0, sj_bare = 0, sj = 0;
  for (int r = 0; r < ROUNDS; r++) {
    jc_bare = best(jc_bare, run_jsonc_bare(secs / ROUNDS));
    jc = best(jc, run_decode(SM_DEC_JSONC, secs / ROUNDS, &name));
#ifdef HAVE_SIMDJSON
    sj_bare = best(sj_bare, run_simd_bare(secs / ROUNDS));
    sj = best(sj, run_decode(SM_DEC_SIMDJSON, secs / ROUNDS, &name));
#endif
  }
  printf("  json-c   bare parse        %8.3f M events/s  %6.3f us/event\n", jc_bare / 1e6,
         1e6 / jc_bare);
  printf("  json-c   decode to columns %8.3f M events/s  %6.3f us/event  (%.2fx the bare parse)\n",
         jc / 1e6, 1e6 / jc, jc_bare / jc);
#ifdef HAVE_SIMDJSON
  printf("  simdjson bare parse        %8.3f M events/s  %6.3f us/event  (On-Demand, %s kernel)\n",
         sj_bare / 1e6, 1e6 / sj_bare, sm_dec__simd_kernel());
  printf("  simdjson decode to columns %8.3f M events/s  %6.3f us/event  (%.2fx the bare parse)\n",
         sj / 1e6, 1e6 / sj, sj_bare / sj);
  printf("  goal: >= 2 M events/s and <= 1.5x the bare parse: %s\n",
         sj >= 2e6 && sj_bare / sj <= 1.5 ? "met" : "NOT met");
#else
  (void)sj_bare, (void)sj;
  printf("  goal: >= 2 M events/s and <= 1.5x the bare parse: %s (built without simdjson)\n",
         jc >= 2e6 && jc_bare / jc <= 1.5 ? "met" : "NOT met");
#endif
  return 0;
}
