/* metrics: the registry and its HTTP endpoint (see metrics.h).
 * Owns: one family of series per AG_METRICS row (label values copied, kept
 * sorted: digit-only values first in numeric order, so partitions read
 * 0, 1, 2, ..., 10, then the others byte-wise), the commit-latency
 * histograms, the last progress JSON of each sink, and the server thread with
 * its listening socket and wake-up pipe. Every update takes the one mutex for
 * a few instructions; rendering copies nothing out of it but builds the body
 * under it (bodies are small: tens of series). History: one agent sample a
 * second, taken by the server thread between requests, and one record per
 * batch, taken from the progress line as it is stored; both in fixed rings
 * allocated on first use, so an hour of charts costs a fixed few hundred KiB
 * and a sample costs a few dozen loads under the mutex, nothing per event. The server answers one
 * request per connection, one connection at a time, each bounded in size and time, so a slow or
 * hostile client costs at most a few seconds of scrapes, never the pipeline. Never logs request
 * contents. */
#include "agent/metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/page.h"

#include "common/buf.h"
#include "common/log.h"
#include "common/time.h"

#define REQ_MAX       8192 /* bytes of request line + headers we accept */
#define REQ_TIMEOUT   2000 /* ms to receive the whole request head */
#define SEND_TIMEOUT  5000 /* ms to hand the response to the kernel */
#define DRAIN_TIMEOUT 200  /* ms spent reading what the client still sends */

static const struct {
  const char *name, *type, *label, *help;
} defs[AG_M__COUNT] = {
#define AG_M_DEF(id, name, kind, label, help) {name, #kind, label, help},
    AG_METRICS(AG_M_DEF)
#undef AG_M_DEF
};

/* Upper bounds of the commit-latency buckets, seconds (+Inf implied). */
static const double buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
#define NBUCKETS (sizeof buckets / sizeof buckets[0])

/* A label value with what its ordering needs, computed once when stored, so
 * a lookup does not rescan every stored label it compares against. */
typedef struct lkey {
  char *label;
  size_t len;
  size_t digits; /* digit-only: length without leading zeros; else SIZE_MAX */
} lkey_t;

typedef struct series {
  lkey_t k;
  double v;
} series_t;

typedef struct family {
  series_t *s;
  size_t n, cap;
} family_t;

typedef struct hist {
  lkey_t k;
  uint64_t counts[NBUCKETS + 1]; /* per bucket, not cumulative; last is +Inf */
  double sum;
  uint64_t count;
} hist_t;

/* The columns of a batch record, as /history names them; NAN is null. */
#define BATCH_COLS(X)                                                                              \
  X(BATCH_ID, "batchId")                                                                           \
  X(INPUT_ROWS, "numInputRows")                                                                    \
  X(INPUT_RATE, "inputRowsPerSecond")                                                              \
  X(PROC_RATE, "processedRowsPerSecond")                                                           \
  X(D_GET, "getBatch")                                                                             \
  X(D_QUEUE, "queueWait")                                                                          \
  X(D_WAL, "walCommit")                                                                            \
  X(D_ADD, "addBatch")                                                                             \
  X(D_COMMIT, "commitOffsets")                                                                     \
  X(D_TOTAL, "triggerExecution")                                                                   \
  X(OUT_ROWS, "numOutputRows")                                                                     \
  X(VERSION, "tableVersion")                                                                       \
  X(WATERMARK, "watermarkMs")                                                                      \
  X(EVT_MAX, "eventTimeMaxMs")                                                                     \
  X(DROPPED, "numRowsDroppedByWatermark")                                                          \
  X(STATE_ROWS, "stateRows")                                                                       \
  X(STATE_MEM, "stateMemoryBytes")

enum {
#define BC_ENUM(id, name) BC_##id,
  BATCH_COLS(BC_ENUM)
#undef BC_ENUM
      BC__COUNT
};
static const char *const batch_col_names[] = {
#define BC_NAME(id, name) name,
    BATCH_COLS(BC_NAME)
#undef BC_NAME
};

typedef struct batchrec {
  int64_t t_ms; /* when the progress line was stored */
  double v[BC__COUNT];
} batchrec_t;

typedef struct progress {
  lkey_t k;
  char *json;
  int64_t at_us;
  batchrec_t *ring; /* AG_HISTORY_BATCHES, allocated with the first record */
  size_t rn, rat;   /* records held, next slot */
} progress_t;

/* One agent sample; columns of /history "samples", in this order. */
typedef struct sample {
  int64_t t_ms;
  double events, dead, retries, lag, rss, cpu_s, ring;
} sample_t;
static const char *const sample_col_names[] = {"t",          "eventsReceived", "deadLetters",
                                               "retries",    "lagEvents",      "rssBytes",
                                               "cpuSeconds", "ringUsed"};

/* Per partition: receiver state and the received totals of the last
 * RATE_WIN samples, for events/s over ten seconds. */
#define RATE_WIN 11
typedef struct pstate {
  lkey_t k;
  char state[16];
  double tot[RATE_WIN];
  int64_t t_us[RATE_WIN];
  size_t n, at;
  double rate;
} pstate_t;

typedef struct note {
  int64_t at_us;
  int level;
  char text[256];
} note_t;

struct ag_metrics {
  pthread_mutex_t mu;
  family_t fam[AG_M__COUNT];
  hist_t *h;
  size_t nh, caph;
  progress_t *p;
  size_t np, capp;
  pstate_t *ps;
  size_t nps, capps;
  sample_t *samples; /* AG_HISTORY_SAMPLES, allocated with the first sample */
  size_t sn, sat;
  double cpu_pct, rss;
  note_t notes[AG_METRICS_NOTES];
  size_t nnotes, note_at;
  char *agent_id;
  char *owner_id; /* with a checkpoint store, else NULL */
  char *token;
  char addr[INET6_ADDRSTRLEN + 16];
  int64_t started_us, started_mono_us;
  int lfd;
  int wake[2];
  bool running;
  pthread_t th;
};

/* ---- ordering and lookup ---- */

static lkey_t key_make(const char *label) {
  lkey_t k = {(char *)label, strlen(label), SIZE_MAX};
  size_t i = 0;
  while (i < k.len && label[i] >= '0' && label[i] <= '9')
    i++;
  if (k.len && i == k.len) {
    size_t z = 0;
    while (z + 1 < k.len && label[z] == '0')
      z++;
    k.digits = k.len - z;
  }
  return k;
}

/* A total order: digit-only values first, by numeric value (fewer
 * significant digits is smaller), ties and everything else byte-wise. */
static int key_cmp(const lkey_t *a, const lkey_t *b) {
  bool na = a->digits != SIZE_MAX, nb = b->digits != SIZE_MAX;
  if (na != nb)
    return na ? -1 : 1;
  if (na) {
    if (a->digits != b->digits)
      return a->digits < b->digits ? -1 : 1;
    int c = memcmp(a->label + a->len - a->digits, b->label + b->len - b->digits, a->digits);
    if (c)
      return c;
  }
  return strcmp(a->label, b->label);
}

static int label_cmp(const char *a, const char *b) {
  lkey_t ka = key_make(a), kb = key_make(b);
  return key_cmp(&ka, &kb);
}

/* Binary search over a sorted array of structs whose first member is an
 * lkey_t. Returns the index of label, or where it would go with *found
 * false. */
static size_t find_at(const void *arr, size_t n, size_t size, const char *label, bool *found) {
  lkey_t probe = key_make(label);
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = key_cmp((const lkey_t *)(const void *)((const char *)arr + mid * size), &probe);
    if (c == 0) {
      *found = true;
      return mid;
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  *found = false;
  return lo;
}

/* Finds or inserts (zeroed, label copied) the element for label in a sorted
 * array; NULL when out of memory.
 * @locality any thread  @locks m->mu held */
static void *find_or_add(void **arr, size_t *n, size_t *cap, size_t size, const char *label) {
  bool found;
  size_t i = find_at(*arr, *n, size, label, &found);
  char *base = *arr;
  if (found)
    return base + i * size;
  if (*n == *cap) {
    size_t nc = *cap ? *cap * 2 : 8;
    void *na = realloc(*arr, nc * size);
    if (!na)
      return NULL;
    *arr = na;
    *cap = nc;
    base = na;
  }
  char *copy = strdup(label);
  if (!copy)
    return NULL;
  memmove(base + (i + 1) * size, base + i * size, (*n - i) * size);
  memset(base + i * size, 0, size);
  lkey_t k = key_make(copy);
  memcpy(base + i * size, &k, sizeof k);
  (*n)++;
  return base + i * size;
}

/* The label a series is stored under: "" for unlabelled metrics (whatever
 * the caller passed) and for a labelled one given NULL. */
static const char *key_of(ag_metric_t id, const char *label) {
  if (!defs[id].label[0] || !label)
    return "";
  return label;
}

/* @locality any thread  @locks m->mu held */
static series_t *series_of(ag_metrics_t *m, ag_metric_t id, const char *label) {
  family_t *f = &m->fam[id];
  return find_or_add((void **)&f->s, &f->n, &f->cap, sizeof *f->s, key_of(id, label));
}

/* ---- updates ---- */

/* @locality any thread  @locks takes m->mu */
void ag_metrics_add(ag_metrics_t *m, ag_metric_t id, const char *label, double delta) {
  if (!m || (unsigned)id >= AG_M__COUNT || isnan(delta))
    return;
  /* Counters only go up (Prometheus treats a decrease as a restart). */
  if (defs[id].type[0] == 'c' && delta < 0)
    return;
  pthread_mutex_lock(&m->mu);
  series_t *s = series_of(m, id, label);
  if (s)
    s->v += delta;
  pthread_mutex_unlock(&m->mu);
}

/* @locality any thread  @locks takes m->mu */
void ag_metrics_set(ag_metrics_t *m, ag_metric_t id, const char *label, double value) {
  if (!m || (unsigned)id >= AG_M__COUNT)
    return;
  pthread_mutex_lock(&m->mu);
  series_t *s = series_of(m, id, label);
  if (s)
    s->v = value;
  pthread_mutex_unlock(&m->mu);
}

/* @locality any thread  @locks takes m->mu */
double ag_metrics_get(ag_metrics_t *m, ag_metric_t id, const char *label) {
  if (!m || (unsigned)id >= AG_M__COUNT)
    return 0;
  double v = 0;
  pthread_mutex_lock(&m->mu);
  family_t *f = &m->fam[id];
  if (defs[id].label[0] && !label) {
    for (size_t i = 0; i < f->n; i++)
      v += f->s[i].v;
  } else {
    bool found;
    size_t i = find_at(f->s, f->n, sizeof *f->s, key_of(id, label), &found);
    if (found)
      v = f->s[i].v;
  }
  pthread_mutex_unlock(&m->mu);
  return v;
}

/* @locality flush thread (ag-flush)  @locks takes m->mu */
void ag_metrics_observe_commit(ag_metrics_t *m, const char *sink, double seconds) {
  if (!m || isnan(seconds))
    return;
  if (seconds < 0)
    seconds = 0;
  size_t b = 0;
  while (b < NBUCKETS && seconds > buckets[b])
    b++;
  pthread_mutex_lock(&m->mu);
  hist_t *h = find_or_add((void **)&m->h, &m->nh, &m->caph, sizeof *m->h, sink ? sink : "");
  if (h) {
    h->counts[b]++;
    h->sum += seconds;
    h->count++;
  }
  pthread_mutex_unlock(&m->mu);
}

static void batch_record(json_object *o, batchrec_t *r);

/* @locality flush thread (ag-flush)  @locks takes m->mu (the JSON is parsed before) */
void ag_metrics_set_progress(ag_metrics_t *m, const char *sink, const char *json) {
  if (!m || !json)
    return;
  /* Stored as given (number formatting kept) once it is known to be one JSON
   * object, so /status is always valid JSON. */
  size_t n = strlen(json);
  while (n && (json[n - 1] == '\n' || json[n - 1] == '\r' || json[n - 1] == ' '))
    n--;
  struct json_tokener *tok = json_tokener_new();
  json_object *o = tok && n <= INT32_MAX ? json_tokener_parse_ex(tok, json, (int)n) : NULL;
  bool ok = o && json_object_is_type(o, json_type_object) &&
            json_tokener_get_error(tok) == json_tokener_success &&
            json_tokener_get_parse_end(tok) == n;
  int64_t now = ed_time_now_us();
  batchrec_t rec = {now / 1000, {0}};
  if (ok)
    batch_record(o, &rec);
  json_object_put(o);
  json_tokener_free(tok);
  if (!ok)
    return;
  char *copy = strndup(json, n);
  if (!copy)
    return;
  pthread_mutex_lock(&m->mu);
  progress_t *p = find_or_add((void **)&m->p, &m->np, &m->capp, sizeof *m->p, sink ? sink : "");
  if (p) {
    free(p->json);
    p->json = copy;
    p->at_us = now;
    copy = NULL;
    if (!p->ring)
      p->ring = malloc(AG_HISTORY_BATCHES * sizeof *p->ring);
    if (p->ring) {
      p->ring[p->rat] = rec;
      p->rat = (p->rat + 1) % AG_HISTORY_BATCHES;
      if (p->rn < AG_HISTORY_BATCHES)
        p->rn++;
    }
  }
  pthread_mutex_unlock(&m->mu);
  free(copy);
}

/* ---- history ---- */

static json_object *jpath(json_object *o, const char *a, const char *b) {
  json_object *v = NULL;
  if (!o || !json_object_object_get_ex(o, a, &v))
    return NULL;
  if (b && (!v || !json_object_object_get_ex(v, b, &v)))
    return NULL;
  return v;
}

static double jnum(json_object *v) {
  return v && (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double))
             ? json_object_get_double(v)
             : NAN;
}

static double jtime_ms(json_object *v) {
  int64_t us;
  if (!v || !json_object_is_type(v, json_type_string) ||
      ed_time_parse_iso(json_object_get_string(v), (size_t)json_object_get_string_len(v), &us,
                        NULL))
    return NAN;
  return (double)(us / 1000);
}

/* The chart columns of one progress line (its shape: ehdelta-run(1),
 * PROGRESS); what a line lacks stays NAN. */
static void batch_record(json_object *o, batchrec_t *r) {
  static const char *const phases[] = {"getBatch", "queueWait",     "walCommit",
                                       "addBatch", "commitOffsets", "triggerExecution"};
  r->v[BC_BATCH_ID] = jnum(jpath(o, "batchId", NULL));
  r->v[BC_INPUT_ROWS] = jnum(jpath(o, "numInputRows", NULL));
  r->v[BC_INPUT_RATE] = jnum(jpath(o, "inputRowsPerSecond", NULL));
  r->v[BC_PROC_RATE] = jnum(jpath(o, "processedRowsPerSecond", NULL));
  for (int i = 0; i < 6; i++)
    r->v[BC_D_GET + i] = jnum(jpath(o, "durationMs", phases[i]));
  r->v[BC_OUT_ROWS] = jnum(jpath(o, "sink", "numOutputRows"));
  r->v[BC_VERSION] = jnum(jpath(o, "sink", "tableVersion"));
  r->v[BC_WATERMARK] = jtime_ms(jpath(o, "eventTime", "watermark"));
  r->v[BC_EVT_MAX] = jtime_ms(jpath(o, "eventTime", "max"));
  json_object *ops = jpath(o, "stateOperators", NULL);
  size_t nops =
      ops && json_object_is_type(ops, json_type_array) ? json_object_array_length(ops) : 0;
  r->v[BC_DROPPED] = r->v[BC_STATE_ROWS] = r->v[BC_STATE_MEM] = nops ? 0 : NAN;
  for (size_t i = 0; i < nops; i++) {
    json_object *op = json_object_array_get_idx(ops, i);
    double d = jnum(jpath(op, "numRowsDroppedByWatermark", NULL)),
           rows = jnum(jpath(op, "numRowsTotal", NULL)),
           mem = jnum(jpath(op, "memoryUsedBytes", NULL));
    r->v[BC_DROPPED] += isnan(d) ? 0 : d;
    r->v[BC_STATE_ROWS] += isnan(rows) ? 0 : rows;
    r->v[BC_STATE_MEM] += isnan(mem) ? 0 : mem;
  }
}

static double family_sum(const family_t *f) {
  double v = 0;
  for (size_t i = 0; i < f->n; i++)
    v += f->s[i].v;
  return v;
}

/* Resident set size from /proc/self/statm; NAN where there is none. */
static double read_rss(void) {
  FILE *f = fopen("/proc/self/statm", "re");
  long pages = -1, size;
  if (f) {
    if (fscanf(f, "%ld %ld", &size, &pages) != 2)
      pages = -1;
    fclose(f);
  }
  return pages < 0 ? NAN : (double)pages * (double)sysconf(_SC_PAGESIZE);
}

/* @locality metrics thread (ag-metrics), once a second  @locks takes m->mu */
void ag_metrics_sample(ag_metrics_t *m) {
  if (!m)
    return;
  struct rusage ru;
  double cpu = NAN;
  if (getrusage(RUSAGE_SELF, &ru) == 0)
    cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
          (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
  double rss = read_rss();
  int64_t now = ed_time_now_us(), mono = ed_time_mono_us();
  pthread_mutex_lock(&m->mu);
  if (!m->samples)
    m->samples = malloc(AG_HISTORY_SAMPLES * sizeof *m->samples);
  if (m->samples) {
    sample_t *prev =
        m->sn ? &m->samples[(m->sat + AG_HISTORY_SAMPLES - 1) % AG_HISTORY_SAMPLES] : NULL;
    if (prev && now / 1000 > prev->t_ms && !isnan(cpu))
      m->cpu_pct = 100 * (cpu - prev->cpu_s) / ((double)(now / 1000 - prev->t_ms) / 1e3);
    sample_t *x = &m->samples[m->sat];
    x->t_ms = now / 1000;
    x->events = family_sum(&m->fam[AG_M_EVENTS_RECEIVED]);
    x->dead = family_sum(&m->fam[AG_M_DEAD_LETTERS]);
    x->retries = family_sum(&m->fam[AG_M_RETRIES]);
    x->lag = family_sum(&m->fam[AG_M_LAG]);
    x->rss = rss;
    x->cpu_s = cpu;
    x->ring = family_sum(&m->fam[AG_M_RING_USED]);
    m->sat = (m->sat + 1) % AG_HISTORY_SAMPLES;
    if (m->sn < AG_HISTORY_SAMPLES)
      m->sn++;
  }
  m->rss = rss;
  const family_t *rx = &m->fam[AG_M_EVENTS_RECEIVED];
  for (size_t i = 0; i < rx->n; i++) {
    pstate_t *p = find_or_add((void **)&m->ps, &m->nps, &m->capps, sizeof *m->ps, rx->s[i].k.label);
    if (!p)
      continue;
    p->tot[p->at] = rx->s[i].v;
    p->t_us[p->at] = mono;
    size_t oldest = p->n < RATE_WIN ? 0 : (p->at + 1) % RATE_WIN;
    p->at = (p->at + 1) % RATE_WIN;
    if (p->n < RATE_WIN)
      p->n++;
    int64_t dt = mono - p->t_us[oldest];
    p->rate = dt > 0 ? (rx->s[i].v - p->tot[oldest]) * 1e6 / (double)dt : 0;
  }
  pthread_mutex_unlock(&m->mu);
}

/* @locality network thread (eh-net)  @locks takes m->mu */
/* @locality caller's thread, at start-up  @locks takes m->mu */
void ag_metrics_set_owner(ag_metrics_t *m, const char *owner_id) {
  if (!m)
    return;
  char *id = strdup(owner_id ? owner_id : "");
  pthread_mutex_lock(&m->mu);
  free(m->owner_id);
  m->owner_id = id;
  pthread_mutex_unlock(&m->mu);
}

void ag_metrics_set_state(ag_metrics_t *m, const char *partition, const char *state) {
  if (!m || !partition || !state)
    return;
  pthread_mutex_lock(&m->mu);
  pstate_t *p = find_or_add((void **)&m->ps, &m->nps, &m->capps, sizeof *m->ps, partition);
  if (p)
    snprintf(p->state, sizeof p->state, "%s", state);
  pthread_mutex_unlock(&m->mu);
}

/* @locality any thread that logs  @locks takes m->mu (the log layer holds none of its own) */
void ag_metrics_note(void *ctx, int level, const char *event, const char *fields) {
  ag_metrics_t *m = ctx;
  if (!m || !event)
    return;
  int64_t now = ed_time_now_us();
  pthread_mutex_lock(&m->mu);
  note_t *x = &m->notes[m->note_at];
  x->at_us = now;
  x->level = level;
  snprintf(x->text, sizeof x->text, "%s%s%s", event, fields && *fields ? " " : "",
           fields ? fields : "");
  m->note_at = (m->note_at + 1) % AG_METRICS_NOTES;
  if (m->nnotes < AG_METRICS_NOTES)
    m->nnotes++;
  pthread_mutex_unlock(&m->mu);
}

/* ---- rendering ---- */

/* Shortest decimal that reads back as v: integers without exponent. */
static void put_num(ed_buf_t *b, double v, bool json) {
  if (isnan(v) || isinf(v)) {
    ed_buf_puts(b, json ? "null" : isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf");
    return;
  }
  if (v == floor(v) && fabs(v) < 1e15) {
    ed_buf_printf(b, "%.0f", v == 0 ? 0.0 : v); /* no "-0" */
    return;
  }
  char t[40];
  snprintf(t, sizeof t, "%.15g", v);
  if (strtod(t, NULL) != v)
    snprintf(t, sizeof t, "%.17g", v);
  ed_buf_puts(b, t);
}

/* Text format 0.0.4: HELP escapes \ and newline; label values also ". */
static void put_escaped(ed_buf_t *b, const char *s, bool quote) {
  for (; *s; s++) {
    if (*s == '\\')
      ed_buf_puts(b, "\\\\");
    else if (*s == '\n')
      ed_buf_puts(b, "\\n");
    else if (quote && *s == '"')
      ed_buf_puts(b, "\\\"");
    else
      ed_buf_putc(b, *s);
  }
}

static void put_head(ed_buf_t *b, const char *name, const char *type, const char *help) {
  ed_buf_printf(b, "# HELP ehdelta_%s ", name);
  put_escaped(b, help, false);
  ed_buf_printf(b, "\n# TYPE ehdelta_%s %s\n", name, type);
}

static void put_label(ed_buf_t *b, const char *key, const char *value) {
  ed_buf_printf(b, "%s=\"", key);
  put_escaped(b, value, true);
  ed_buf_putc(b, '"');
}

/* @locality metrics thread (ag-metrics); tests call it directly  @locks takes m->mu */
char *ag_metrics_prometheus(ag_metrics_t *m) {
  if (!m)
    return NULL;
  ed_buf_t b = ED_BUF_INIT;
  pthread_mutex_lock(&m->mu);
  for (int id = 0; id < AG_M__COUNT; id++) {
    const family_t *f = &m->fam[id];
    put_head(&b, defs[id].name, defs[id].type, defs[id].help);
    if (!defs[id].label[0] && f->n == 0)
      ed_buf_printf(&b, "ehdelta_%s 0\n", defs[id].name); /* unlabelled: always one sample */
    for (size_t i = 0; i < f->n; i++) {
      ed_buf_printf(&b, "ehdelta_%s", defs[id].name);
      if (defs[id].label[0]) {
        ed_buf_putc(&b, '{');
        put_label(&b, defs[id].label, f->s[i].k.label);
        ed_buf_putc(&b, '}');
      }
      ed_buf_putc(&b, ' ');
      put_num(&b, f->s[i].v, false);
      ed_buf_putc(&b, '\n');
    }
  }
  put_head(&b, "commit_latency_seconds", "histogram",
           "time to commit one batch of a sink (checkpoint, files, Delta commit)");
  for (size_t i = 0; i < m->nh; i++) {
    const hist_t *h = &m->h[i];
    uint64_t cum = 0;
    for (size_t k = 0; k <= NBUCKETS; k++) {
      cum += h->counts[k];
      ed_buf_puts(&b, "ehdelta_commit_latency_seconds_bucket{");
      put_label(&b, "sink", h->k.label);
      ed_buf_puts(&b, ",le=\"");
      if (k < NBUCKETS)
        put_num(&b, buckets[k], false);
      else
        ed_buf_puts(&b, "+Inf");
      ed_buf_printf(&b, "\"} %llu\n", (unsigned long long)cum);
    }
    ed_buf_puts(&b, "ehdelta_commit_latency_seconds_sum{");
    put_label(&b, "sink", h->k.label);
    ed_buf_puts(&b, "} ");
    put_num(&b, h->sum, false);
    ed_buf_puts(&b, "\nehdelta_commit_latency_seconds_count{");
    put_label(&b, "sink", h->k.label);
    ed_buf_printf(&b, "} %llu\n", (unsigned long long)h->count);
  }
  pthread_mutex_unlock(&m->mu);
  put_head(&b, "start_time_seconds", "gauge", "when the agent started, seconds since epoch");
  ed_buf_puts(&b, "ehdelta_start_time_seconds ");
  put_num(&b, (double)(m->started_us / 1000) / 1e3, false);
  ed_buf_putc(&b, '\n');
  return ed_buf_steal(&b);
}

static int cmp_labels(const void *a, const void *b) {
  return label_cmp(*(const char *const *)a, *(const char *const *)b);
}

/* Every sink the registry has heard of, sorted, without repeats; borrowed
 * labels (call with the mutex held). Caller frees the array with free.
 * @locality metrics thread (ag-metrics)  @locks m->mu held */
static const char **sink_names(ag_metrics_t *m, size_t *out_n) {
  size_t cap = m->np + m->nh;
  for (int id = 0; id < AG_M__COUNT; id++)
    if (!strcmp(defs[id].label, "sink"))
      cap += m->fam[id].n;
  const char **v = malloc((cap ? cap : 1) * sizeof *v);
  size_t n = 0;
  if (!v) {
    *out_n = 0;
    return NULL;
  }
  for (size_t i = 0; i < m->np; i++)
    v[n++] = m->p[i].k.label;
  for (size_t i = 0; i < m->nh; i++)
    v[n++] = m->h[i].k.label;
  for (int id = 0; id < AG_M__COUNT; id++)
    if (!strcmp(defs[id].label, "sink"))
      for (size_t i = 0; i < m->fam[id].n; i++)
        v[n++] = m->fam[id].s[i].k.label;
  qsort(v, n, sizeof *v, cmp_labels);
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (k == 0 || strcmp(v[k - 1], v[i]))
      v[k++] = v[i];
  *out_n = k;
  return v;
}

static void put_jstr(ed_buf_t *b, const char *s) { ed_buf_json_str(b, s, strlen(s)); }
static void put_live(ag_metrics_t *m, ed_buf_t *b);

/* @locality metrics thread (ag-metrics); tests call it directly  @locks takes m->mu */
char *ag_metrics_status_json(ag_metrics_t *m) {
  if (!m)
    return NULL;
  ed_buf_t b = ED_BUF_INIT;
  char t[ED_TIME_ISO_MAX];
  ed_time_format_iso(m->started_us, 3, t);
  ed_buf_puts(&b, "{\"agent\":");
  put_jstr(&b, m->agent_id);
  ed_buf_puts(&b, ",\"address\":");
  put_jstr(&b, m->addr);
  ed_buf_printf(&b, ",\"startedAt\":\"%s\",\"uptimeSeconds\":", t);
  put_num(&b, (double)((ed_time_mono_us() - m->started_mono_us) / 1000) / 1e3, true);
  pthread_mutex_lock(&m->mu);
  if (m->owner_id) {
    ed_buf_puts(&b, ",\"ownerId\":");
    put_jstr(&b, m->owner_id);
    ed_buf_puts(&b, ",\"ownedPartitions\":[");
    const family_t *f = &m->fam[AG_M_PART_OWNED];
    bool first = true;
    for (size_t i = 0; i < f->n; i++)
      if (f->s[i].v > 0) {
        ed_buf_puts(&b, first ? "" : ",");
        put_jstr(&b, f->s[i].k.label);
        first = false;
      }
    ed_buf_putc(&b, ']');
  }
  size_t ns;
  const char **names = sink_names(m, &ns);
  for (int pass = 0; pass < 2; pass++) {
    ed_buf_puts(&b, pass ? ",\"lastCommitAt\":{" : ",\"sinks\":{");
    for (size_t i = 0; i < ns; i++) {
      bool found;
      size_t k = find_at(m->p, m->np, sizeof *m->p, names[i], &found);
      if (i)
        ed_buf_putc(&b, ',');
      put_jstr(&b, names[i]);
      ed_buf_putc(&b, ':');
      if (!found) {
        ed_buf_puts(&b, "null");
      } else if (pass == 0) {
        ed_buf_puts(&b, m->p[k].json);
      } else {
        ed_time_format_iso(m->p[k].at_us, 3, t);
        ed_buf_printf(&b, "\"%s\"", t);
      }
    }
    ed_buf_putc(&b, '}');
  }
  free(names);
  ed_buf_puts(&b, ",\"metrics\":{");
  for (int id = 0; id < AG_M__COUNT; id++) {
    const family_t *f = &m->fam[id];
    ed_buf_printf(&b, "%s\"%s\":", id ? "," : "", defs[id].name);
    if (!defs[id].label[0]) {
      put_num(&b, f->n ? f->s[0].v : 0, true);
      continue;
    }
    ed_buf_putc(&b, '{');
    for (size_t i = 0; i < f->n; i++) {
      if (i)
        ed_buf_putc(&b, ',');
      put_jstr(&b, f->s[i].k.label);
      ed_buf_putc(&b, ':');
      put_num(&b, f->s[i].v, true);
    }
    ed_buf_putc(&b, '}');
  }
  ed_buf_puts(&b, ",\"commit_latency_seconds\":{");
  for (size_t i = 0; i < m->nh; i++) {
    if (i)
      ed_buf_putc(&b, ',');
    put_jstr(&b, m->h[i].k.label);
    ed_buf_printf(&b, ":{\"count\":%llu,\"sum\":", (unsigned long long)m->h[i].count);
    put_num(&b, m->h[i].sum, true);
    ed_buf_putc(&b, '}');
  }
  ed_buf_puts(&b, "}}");
  put_live(m, &b);
  pthread_mutex_unlock(&m->mu);
  ed_buf_puts(&b, "}\n");
  return ed_buf_steal(&b);
}

static const char *const level_names[] = {"error", "warn", "info", "debug"};

/* @locality metrics thread (ag-metrics)  @locks m->mu held */
static double series_value(const family_t *f, const char *label, bool *found) {
  size_t i = find_at(f->s, f->n, sizeof *f->s, label, found);
  return *found ? f->s[i].v : 0;
}

/* The page's derived figures (call with the mutex held): the process,
 * every partition any family or state names, and the last notes, newest
 * first. Lag in seconds is an estimate: the lag in events over the events/s
 * received in the last ten seconds (null when the lag is not draining).
 * @locality metrics thread (ag-metrics)  @locks m->mu held */
static void put_live(ag_metrics_t *m, ed_buf_t *b) {
  ed_buf_puts(b, ",\"process\":{\"rssBytes\":");
  put_num(b, m->rss, true);
  ed_buf_puts(b, ",\"cpuPercent\":");
  put_num(b, m->cpu_pct, true);
  ed_buf_puts(b, "},\"partitions\":[");
  static const ag_metric_t fams[] = {AG_M_EVENTS_RECEIVED, AG_M_LAG, AG_M_LAST_ENQUEUED};
  size_t cap = m->nps;
  for (size_t i = 0; i < 3; i++)
    cap += m->fam[fams[i]].n;
  const char **v = malloc((cap ? cap : 1) * sizeof *v);
  size_t n = 0;
  if (v) {
    for (size_t i = 0; i < m->nps; i++)
      v[n++] = m->ps[i].k.label;
    for (size_t i = 0; i < 3; i++)
      for (size_t k = 0; k < m->fam[fams[i]].n; k++)
        v[n++] = m->fam[fams[i]].s[k].k.label;
    qsort(v, n, sizeof *v, cmp_labels);
  }
  bool first = true;
  for (size_t i = 0; i < n; i++) {
    if (i && !strcmp(v[i - 1], v[i]))
      continue;
    bool found, has_lag;
    size_t k = find_at(m->ps, m->nps, sizeof *m->ps, v[i], &found);
    const pstate_t *p = found ? &m->ps[k] : NULL;
    double rx = series_value(&m->fam[AG_M_EVENTS_RECEIVED], v[i], &found);
    double lag = series_value(&m->fam[AG_M_LAG], v[i], &has_lag);
    double rate = p ? p->rate : 0;
    ed_buf_puts(b, first ? "{\"id\":" : ",{\"id\":");
    first = false;
    put_jstr(b, v[i]);
    ed_buf_puts(b, ",\"state\":");
    put_jstr(b, p && p->state[0] ? p->state : "unknown");
    /* alone, an agent reads every partition; sharing, those it reads now */
    bool owned_found;
    double owned = series_value(&m->fam[AG_M_PART_OWNED], v[i], &owned_found);
    ed_buf_puts(b, !m->owner_id || (owned_found && owned > 0) ? ",\"owned\":true"
                                                              : ",\"owned\":false");
    ed_buf_puts(b, ",\"receivedEvents\":");
    put_num(b, rx, true);
    ed_buf_puts(b, ",\"lagEvents\":");
    put_num(b, has_lag ? lag : NAN, true);
    ed_buf_puts(b, ",\"lagSeconds\":");
    put_num(b, !has_lag ? NAN : lag <= 0 ? 0 : rate > 0 ? round(lag / rate * 10) / 10 : NAN, true);
    ed_buf_puts(b, ",\"eventsPerSecond\":");
    put_num(b, round(rate * 10) / 10, true);
    ed_buf_putc(b, '}');
  }
  free(v);
  ed_buf_puts(b, "],\"errors\":[");
  for (size_t i = 0; i < m->nnotes; i++) {
    const note_t *x = &m->notes[(m->note_at + AG_METRICS_NOTES - 1 - i) % AG_METRICS_NOTES];
    char t[ED_TIME_ISO_MAX];
    ed_time_format_iso(x->at_us, 3, t);
    ed_buf_printf(b, "%s{\"at\":\"%s\",\"level\":\"%s\",\"text\":", i ? "," : "", t,
                  level_names[x->level & 3]);
    put_jstr(b, x->text);
    ed_buf_putc(b, '}');
  }
  ed_buf_putc(b, ']');
}

/* @locality metrics thread (ag-metrics); tests call it directly  @locks takes m->mu */
char *ag_metrics_history_json(ag_metrics_t *m, int64_t since_ms) {
  if (!m)
    return NULL;
  ed_buf_t b = ED_BUF_INIT;
  ed_buf_printf(&b, "{\"intervalSeconds\":1,\"capacity\":%d,\"columns\":[", AG_HISTORY_SAMPLES);
  for (size_t i = 0; i < sizeof sample_col_names / sizeof *sample_col_names; i++)
    ed_buf_printf(&b, "%s\"%s\"", i ? "," : "", sample_col_names[i]);
  ed_buf_puts(&b, "],\"samples\":[");
  pthread_mutex_lock(&m->mu);
  bool first = true;
  for (size_t i = 0; m->samples && i < m->sn; i++) {
    const sample_t *x = &m->samples[(m->sat + AG_HISTORY_SAMPLES - m->sn + i) % AG_HISTORY_SAMPLES];
    if (x->t_ms <= since_ms)
      continue;
    const double v[] = {x->events, x->dead, x->retries, x->lag, x->rss, x->cpu_s, x->ring};
    ed_buf_printf(&b, "%s[%lld", first ? "" : ",", (long long)x->t_ms);
    first = false;
    for (size_t k = 0; k < sizeof v / sizeof *v; k++) {
      ed_buf_putc(&b, ',');
      put_num(&b, v[k], true);
    }
    ed_buf_putc(&b, ']');
  }
  ed_buf_printf(&b, "],\"batchCapacity\":%d,\"batchColumns\":[\"t\"", AG_HISTORY_BATCHES);
  for (size_t i = 0; i < BC__COUNT; i++)
    ed_buf_printf(&b, ",\"%s\"", batch_col_names[i]);
  ed_buf_puts(&b, "],\"sinks\":{");
  for (size_t s = 0; s < m->np; s++) {
    const progress_t *p = &m->p[s];
    if (s)
      ed_buf_putc(&b, ',');
    put_jstr(&b, p->k.label);
    ed_buf_puts(&b, ":[");
    first = true;
    for (size_t i = 0; p->ring && i < p->rn; i++) {
      const batchrec_t *x =
          &p->ring[(p->rat + AG_HISTORY_BATCHES - p->rn + i) % AG_HISTORY_BATCHES];
      if (x->t_ms <= since_ms)
        continue;
      ed_buf_printf(&b, "%s[%lld", first ? "" : ",", (long long)x->t_ms);
      first = false;
      for (size_t k = 0; k < BC__COUNT; k++) {
        ed_buf_putc(&b, ',');
        put_num(&b, x->v[k], true);
      }
      ed_buf_putc(&b, ']');
    }
    ed_buf_putc(&b, ']');
  }
  pthread_mutex_unlock(&m->mu);
  ed_buf_puts(&b, "}}\n");
  return ed_buf_steal(&b);
}

/* ---- the server ---- */

static int ms_left(int64_t deadline_us) {
  int64_t left = (deadline_us - ed_time_mono_us()) / 1000;
  return left < 0 ? 0 : left > 60000 ? 60000 : (int)left;
}

/* Waits for fd to be ready for events (or the wake pipe); false on timeout,
 * error or shutdown.
 * @locality metrics thread (ag-metrics)  @locks none */
static bool wait_fd(ag_metrics_t *m, int fd, short events, int64_t deadline_us) {
  for (;;) {
    struct pollfd p[2] = {{fd, events, 0}, {m->wake[0], POLLIN, 0}};
    int r = poll(p, 2, ms_left(deadline_us));
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0 || p[1].revents)
      return false;
    return true;
  }
}

/* @locality metrics thread (ag-metrics)  @locks none */
static void send_all(ag_metrics_t *m, int fd, const char *p, size_t n) {
  int64_t deadline = ed_time_mono_us() + (int64_t)SEND_TIMEOUT * 1000;
  while (n > 0) {
    if (!wait_fd(m, fd, POLLOUT, deadline))
      return;
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
      continue;
    if (w <= 0)
      return;
    p += w;
    n -= (size_t)w;
  }
}

/* @locality metrics thread (ag-metrics)  @locks none */
static void respond_n(ag_metrics_t *m, int fd, int code, const char *reason, const char *type,
                      const char *extra, const char *body, size_t n) {
  ed_buf_t b = ED_BUF_INIT;
  ed_buf_printf(&b,
                "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                code, reason, type, n, extra ? extra : "");
  ed_buf_append(&b, body, n);
  if (b.data)
    send_all(m, fd, b.data, b.len);
  ed_buf_fini(&b);
}

/* @locality metrics thread (ag-metrics)  @locks none */
static void respond(ag_metrics_t *m, int fd, int code, const char *reason, const char *type,
                    const char *extra, const char *body) {
  respond_n(m, fd, code, reason, type, extra, body, strlen(body));
}

#define TEXT "text/plain; charset=utf-8"

/* The page may run nothing but itself and talk to nothing but this server:
 * a browser then refuses any fetch elsewhere, so an offline host loses
 * nothing and an injected value cannot phone out. */
#define PAGE_HEADERS                                                                               \
  "Content-Security-Policy: default-src 'none'; script-src 'unsafe-inline'; "                      \
  "style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; "                \
  "form-action 'none'; frame-ancestors 'none'\r\nX-Content-Type-Options: nosniff\r\n"              \
  "Referrer-Policy: no-referrer\r\n"

/* Equal in time that depends on the lengths only, never on where the first
 * difference is. */
static bool token_equal(const char *want, const char *got, size_t got_len) {
  size_t wl = strlen(want);
  unsigned char diff = wl != got_len;
  for (size_t i = 0; i < got_len; i++)
    diff |= (unsigned char)(got[i] ^ want[i % (wl ? wl : 1)]);
  return diff == 0;
}

static int hexval(char c) {
  return c >= '0' && c <= '9'   ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                : -1;
}

/* The value of key in a query string, percent-decoded into out; false
 * when absent or longer than n - 1. */
static bool query_param(const char *q, const char *key, char *out, size_t n) {
  size_t kl = strlen(key);
  while (q && *q) {
    size_t len = strcspn(q, "&#");
    if (len > kl && !strncmp(q, key, kl) && q[kl] == '=') {
      size_t o = 0;
      for (size_t i = kl + 1; i < len; i++) {
        char c = q[i];
        if (c == '%' && i + 2 < len && hexval(q[i + 1]) >= 0 && hexval(q[i + 2]) >= 0) {
          c = (char)(hexval(q[i + 1]) * 16 + hexval(q[i + 2]));
          i += 2;
        } else if (c == '+') {
          c = ' ';
        }
        if (o + 1 >= n)
          return false;
        out[o++] = c;
      }
      out[o] = '\0';
      return true;
    }
    q += len;
    if (*q != '&')
      break;
    q++;
  }
  return false;
}

/* The bearer token of an Authorization header among the header lines
 * (between the request line and the blank line), or NULL. */
static const char *bearer(const char *headers, size_t *len) {
  for (const char *l = headers; l && *l;) {
    const char *e = strpbrk(l, "\r\n");
    size_t ll = e ? (size_t)(e - l) : strlen(l);
    if (ll == 0)
      break;
    if (ll > 14 && !strncasecmp(l, "authorization:", 14)) {
      const char *v = l + 14;
      while (*v == ' ' || *v == '\t')
        v++;
      if (!strncasecmp(v, "bearer ", 7)) {
        v += 7;
        const char *ve = l + ll;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
          ve--;
        *len = (size_t)(ve - v);
        return v;
      }
    }
    l = e ? e + (e[0] == '\r' && e[1] == '\n' ? 2 : 1) : NULL;
  }
  return NULL;
}

/* @locality metrics thread (ag-metrics)  @locks none */
static void handle(ag_metrics_t *m, int fd) {
  char req[REQ_MAX + 1];
  size_t len = 0;
  int64_t deadline = ed_time_mono_us() + (int64_t)REQ_TIMEOUT * 1000;
  const char *end = NULL;
  while (!end) {
    if (len == REQ_MAX) {
      respond(m, fd, 431, "Request Header Fields Too Large", TEXT, NULL,
              "request head larger than 8192 bytes\n");
      return;
    }
    if (!wait_fd(m, fd, POLLIN, deadline)) {
      if (len)
        respond(m, fd, 408, "Request Timeout", TEXT, NULL, "request not received in time\n");
      return;
    }
    ssize_t r = recv(fd, req + len, REQ_MAX - len, MSG_DONTWAIT);
    if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
      continue;
    if (r <= 0) {
      if (len)
        respond(m, fd, 400, "Bad Request", TEXT, NULL, "incomplete request\n");
      return;
    }
    len += (size_t)r;
    req[len] = '\0';
    /* HTTP/1.1 (RFC 9112 2.2) lets a server accept a bare LF as line end. */
    end = strstr(req, "\r\n\r\n");
    if (!end)
      end = strstr(req, "\n\n");
  }
  /* request-line = method SP request-target SP HTTP-version */
  char *line_end = strpbrk(req, "\r\n");
  *line_end = '\0';
  char *sp1 = strchr(req, ' ');
  char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
  if (!sp1 || !sp2 || sp2 == sp1 + 1 || strncmp(sp2 + 1, "HTTP/1.", 7) || strchr(sp2 + 1, ' ')) {
    respond(m, fd, 400, "Bad Request", TEXT, NULL, "malformed request line\n");
    return;
  }
  *sp1 = *sp2 = '\0';
  char *target = sp1 + 1;
  char *query = NULL;
  size_t cut = strcspn(target, "?#");
  if (target[cut] == '?')
    query = target + cut + 1;
  target[cut] = '\0';
  if (strcmp(req, "GET")) {
    respond(m, fd, 405, "Method Not Allowed", TEXT, "Allow: GET\r\n", "only GET is served\n");
    return;
  }
  if (m->token) {
    char qt[512];
    size_t bl = 0;
    const char *bt = bearer(line_end + 1 + (line_end[1] == '\n'), &bl);
    bool ok =
        bt ? token_equal(m->token, bt, bl)
           : query_param(query, "token", qt, sizeof qt) && token_equal(m->token, qt, strlen(qt));
    if (!ok) {
      respond(m, fd, 401, "Unauthorized", TEXT, "WWW-Authenticate: Bearer realm=\"ehdelta\"\r\n",
              "this agent requires its metrics token: send 'Authorization: Bearer TOKEN' or "
              "add ?token=TOKEN\n");
      return;
    }
  }
  if (!strcmp(target, "/")) {
    respond_n(m, fd, 200, "OK", "text/html; charset=utf-8", PAGE_HEADERS,
              (const char *)ag_page_html, ag_page_html_len);
  } else if (!strcmp(target, "/history")) {
    char since[32];
    int64_t since_ms = 0;
    if (query_param(query, "since", since, sizeof since))
      since_ms = strtoll(since, NULL, 10);
    char *body = ag_metrics_history_json(m, since_ms);
    if (body)
      respond(m, fd, 200, "OK", "application/json", NULL, body);
    free(body);
  } else if (!strcmp(target, "/metrics")) {
    char *body = ag_metrics_prometheus(m);
    if (body)
      respond(m, fd, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", NULL, body);
    free(body);
  } else if (!strcmp(target, "/status")) {
    char *body = ag_metrics_status_json(m);
    if (body)
      respond(m, fd, 200, "OK", "application/json", NULL, body);
    free(body);
  } else if (!strcmp(target, "/healthz")) {
    respond(m, fd, 200, "OK", TEXT, NULL, "ok\n");
  } else {
    respond(m, fd, 404, "Not Found", TEXT, NULL,
            "not found; try /, /metrics, /status, /history or /healthz\n");
  }
}

/* Closes a connection without a reset: unread request bytes in the kernel
 * make close() send RST, which can destroy the response before the client
 * reads it (the 431 case), so half-close and read a bounded remainder.
 * @locality metrics thread (ag-metrics)  @locks none */
static void close_gracefully(ag_metrics_t *m, int fd) {
  shutdown(fd, SHUT_WR);
  int64_t deadline = ed_time_mono_us() + (int64_t)DRAIN_TIMEOUT * 1000;
  char sink[4096];
  size_t drained = 0;
  while (drained < (1u << 20) && wait_fd(m, fd, POLLIN, deadline)) {
    ssize_t r = recv(fd, sink, sizeof sink, MSG_DONTWAIT);
    if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
      continue;
    if (r <= 0)
      break;
    drained += (size_t)r;
  }
  close(fd);
}

/* @locality metrics thread (ag-metrics): its body  @locks none held across a request */
static void *serve(void *arg) {
  ag_metrics_t *m = arg;
  int64_t next_sample = ed_time_mono_us();
  for (;;) {
    if (ed_time_mono_us() >= next_sample) {
      ag_metrics_sample(m);
      /* on the second boundary after the last: a slow request delays a
       * sample, never makes two */
      int64_t now = ed_time_mono_us();
      while (next_sample <= now)
        next_sample += 1000000;
    }
    struct pollfd p[2] = {{m->lfd, POLLIN, 0}, {m->wake[0], POLLIN, 0}};
    int r = poll(p, 2, ms_left(next_sample) + 1);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0 || p[1].revents)
      break;
    if (r == 0 || !(p[0].revents & POLLIN))
      continue;
    int fd = accept4(m->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED) {
        /* out of descriptors or memory: back off instead of spinning */
        struct pollfd w = {m->wake[0], POLLIN, 0};
        if (poll(&w, 1, 100) > 0)
          break;
      }
      continue;
    }
    handle(m, fd);
    close_gracefully(m, fd);
  }
  return NULL;
}

/* "HOST:PORT", "[V6]:PORT" or ":PORT" into host ("" for every address) and
 * port. */
static ed_code_t parse_listen(const char *s, char *host, size_t hn, char *port, size_t pn,
                              ed_err_t *err) {
  const char *colon;
  const char *h = s;
  size_t hl;
  if (s[0] == '[') {
    const char *rb = strchr(s, ']');
    if (!rb || rb[1] != ':')
      return ed_err_set(err, ED_E_CONFIG,
                        "metrics: listen address '%s': expected [IPV6]:PORT, HOST:PORT or :PORT",
                        s);
    h = s + 1;
    hl = (size_t)(rb - h);
    colon = rb + 1;
  } else {
    colon = strrchr(s, ':');
    if (!colon || memchr(s, ':', (size_t)(colon - s)))
      return ed_err_set(err, ED_E_CONFIG,
                        "metrics: listen address '%s': expected HOST:PORT, [IPV6]:PORT or :PORT",
                        s);
    hl = (size_t)(colon - s);
  }
  const char *p = colon + 1;
  size_t pl = strlen(p);
  long v = 0;
  for (size_t i = 0; i < pl && pl <= 5; i++)
    v = p[i] >= '0' && p[i] <= '9' ? v * 10 + (p[i] - '0') : -1;
  if (pl == 0 || pl > 5 || v < 0 || v > 65535)
    return ed_err_set(err, ED_E_CONFIG,
                      "metrics: listen address '%s': expected a port number 0-65535 after ':'", s);
  if (hl >= hn)
    return ed_err_set(err, ED_E_CONFIG, "metrics: listen address '%s': host name too long", s);
  memcpy(host, h, hl);
  host[hl] = '\0';
  snprintf(port, pn, "%ld", v);
  return ED_OK;
}

/* @locality caller's thread, before ag-metrics starts  @locks none */
static ed_code_t listen_on(ag_metrics_t *m, const char *listen_addr, ed_err_t *err) {
  char host[256], port[8];
  ed_code_t rc = parse_listen(listen_addr, host, sizeof host, port, sizeof port, err);
  if (rc)
    return rc;
  struct addrinfo hints = {0}, *res = NULL;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  int g = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
  if (g)
    return ed_err_set(err, ED_E_CONFIG, "metrics: listen address '%s': cannot resolve '%s': %s",
                      listen_addr, host, gai_strerror(g));
  int last_errno = 0;
  /* Every address (":PORT"): one IPv6 socket that also takes IPv4 when the
   * host has IPv6, else the IPv4 one; so try v6 first in that case. */
  for (int pass = 0; pass < 2 && m->lfd < 0; pass++)
    for (struct addrinfo *ai = res; ai && m->lfd < 0; ai = ai->ai_next) {
      bool v6 = ai->ai_family == AF_INET6;
      if (!host[0] && (pass == 0) != v6)
        continue;
      if (host[0] && pass == 1)
        break;
      int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
      if (fd < 0) {
        last_errno = errno;
        continue;
      }
      int one = 1, zero = 0;
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (v6 && !host[0])
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
      if (bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 16)) {
        last_errno = errno;
        close(fd);
        continue;
      }
      m->lfd = fd;
    }
  freeaddrinfo(res);
  if (m->lfd < 0)
    return ed_err_set(err, ED_E_CONNECTION, "metrics: cannot listen on %s: %s", listen_addr,
                      strerror(last_errno ? last_errno : EADDRNOTAVAIL));
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  char ip[INET6_ADDRSTRLEN] = "?";
  int bound = 0;
  if (getsockname(m->lfd, (struct sockaddr *)&ss, &sl) == 0) {
    if (ss.ss_family == AF_INET6) {
      const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
      inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
      bound = ntohs(a->sin6_port);
    } else {
      const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
      inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
      bound = ntohs(a->sin_port);
    }
  }
  snprintf(m->addr, sizeof m->addr, ss.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", ip, bound);
  return ED_OK;
}

ed_code_t ag_metrics_read_token(const char *path, char **out, ed_err_t *err) {
  *out = NULL;
  FILE *f = fopen(path, "re");
  if (!f)
    return ed_err_set(err, ED_E_CONFIG, "metrics: token file '%s': %s", path, strerror(errno));
  char line[512];
  bool got = fgets(line, sizeof line, f) != NULL;
  bool longer = got && !strchr(line, '\n') && !feof(f);
  fclose(f);
  size_t n = got ? strlen(line) : 0;
  while (n &&
         (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
    line[--n] = '\0';
  if (longer)
    return ed_err_set(err, ED_E_CONFIG,
                      "metrics: token file '%s': first line longer than 510 bytes (expected one "
                      "line with the token)",
                      path);
  if (!n)
    return ed_err_set(err, ED_E_CONFIG,
                      "metrics: token file '%s' is empty (expected one line with the token)", path);
  if (!(*out = strdup(line)))
    return ed_err_set(err, ED_E_NOMEM, "metrics: out of memory");
  return ED_OK;
}

ed_code_t ag_metrics_new(const char *listen_addr, const char *agent_id, const char *token,
                         ag_metrics_t **out, ed_err_t *err) {
  *out = NULL;
  ag_metrics_t *m = calloc(1, sizeof *m);
  if (!m || !(m->agent_id = strdup(agent_id ? agent_id : "")) ||
      (token && !(m->token = strdup(token)))) {
    if (m)
      free(m->agent_id);
    free(m->owner_id);
    free(m);
    return ed_err_set(err, ED_E_NOMEM, "metrics: out of memory");
  }
  pthread_mutex_init(&m->mu, NULL);
  m->lfd = m->wake[0] = m->wake[1] = -1;
  m->started_us = ed_time_now_us();
  m->started_mono_us = ed_time_mono_us();
  ed_code_t rc = ED_OK;
  if (listen_addr) {
    if ((rc = listen_on(m, listen_addr, err)))
      goto fail;
    if (pipe2(m->wake, O_CLOEXEC | O_NONBLOCK)) {
      rc = ed_err_set(err, ED_E_IO, "metrics: pipe: %s", strerror(errno));
      goto fail;
    }
    /* Signals stay with the threads that handle them, not this one. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e = pthread_create(&m->th, NULL, serve, m);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e) {
      rc = ed_err_set(err, ED_E_NOMEM, "metrics: cannot start the server thread: %s", strerror(e));
      goto fail;
    }
    m->running = true;
    pthread_setname_np(m->th, "ag-metrics");
  }
  ag_metrics_set(m, AG_M_UP, NULL, 1);
  *out = m;
  return ED_OK;
fail:
  ag_metrics_free(m);
  return rc;
}

const char *ag_metrics_address(const ag_metrics_t *m) { return m ? m->addr : ""; }

/* @locality caller's thread, after the agent's threads stopped; joins ag-metrics  @locks none */
void ag_metrics_free(ag_metrics_t *m) {
  if (!m)
    return;
  if (m->running) {
    ssize_t w;
    do
      w = write(m->wake[1], "x", 1);
    while (w < 0 && errno == EINTR);
    pthread_join(m->th, NULL);
  }
  if (m->lfd >= 0)
    close(m->lfd);
  for (int i = 0; i < 2; i++)
    if (m->wake[i] >= 0)
      close(m->wake[i]);
  for (int id = 0; id < AG_M__COUNT; id++) {
    for (size_t i = 0; i < m->fam[id].n; i++)
      free(m->fam[id].s[i].k.label);
    free(m->fam[id].s);
  }
  for (size_t i = 0; i < m->nh; i++)
    free(m->h[i].k.label);
  free(m->h);
  for (size_t i = 0; i < m->np; i++) {
    free(m->p[i].k.label);
    free(m->p[i].json);
    free(m->p[i].ring);
  }
  free(m->p);
  for (size_t i = 0; i < m->nps; i++)
    free(m->ps[i].k.label);
  free(m->ps);
  free(m->samples);
  if (m->token) {
    explicit_bzero(m->token, strlen(m->token));
    free(m->token);
  }
  pthread_mutex_destroy(&m->mu);
  free(m->agent_id);
  free(m);
}
