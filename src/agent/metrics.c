/* metrics: the registry and its HTTP endpoint (see metrics.h).
 * Owns: one family of series per AG_METRICS row (label values copied, kept
 * sorted: digit-only values first in numeric order, so partitions read
 * 0, 1, 2, ..., 10, then the others byte-wise), the commit-latency
 * histograms, the last progress JSON of each sink, and the server thread with
 * its listening socket and wake-up pipe. Every update takes the one mutex for
 * a few instructions; rendering copies nothing out of it but builds the body
 * under it (bodies are small: tens of series). The server answers one request
 * per connection, one connection at a time, each bounded in size and time, so
 * a slow or hostile client costs at most a few seconds of scrapes, never the
 * pipeline. Never logs request contents. */
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
#include <sys/socket.h>
#include <unistd.h>

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

typedef struct progress {
  lkey_t k;
  char *json;
  int64_t at_us;
} progress_t;

struct ag_metrics {
  pthread_mutex_t mu;
  family_t fam[AG_M__COUNT];
  hist_t *h;
  size_t nh, caph;
  progress_t *p;
  size_t np, capp;
  char *agent_id;
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
 * array; NULL when out of memory. */
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

static series_t *series_of(ag_metrics_t *m, ag_metric_t id, const char *label) {
  family_t *f = &m->fam[id];
  return find_or_add((void **)&f->s, &f->n, &f->cap, sizeof *f->s, key_of(id, label));
}

/* ---- updates ---- */

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

void ag_metrics_set(ag_metrics_t *m, ag_metric_t id, const char *label, double value) {
  if (!m || (unsigned)id >= AG_M__COUNT)
    return;
  pthread_mutex_lock(&m->mu);
  series_t *s = series_of(m, id, label);
  if (s)
    s->v = value;
  pthread_mutex_unlock(&m->mu);
}

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
    p->at_us = ed_time_now_us();
    copy = NULL;
  }
  pthread_mutex_unlock(&m->mu);
  free(copy);
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
 * labels (call with the mutex held). Caller frees the array with free. */
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
  pthread_mutex_unlock(&m->mu);
  ed_buf_puts(&b, "}}}\n");
  return ed_buf_steal(&b);
}

/* ---- the server ---- */

static int ms_left(int64_t deadline_us) {
  int64_t left = (deadline_us - ed_time_mono_us()) / 1000;
  return left < 0 ? 0 : left > 60000 ? 60000 : (int)left;
}

/* Waits for fd to be ready for events (or the wake pipe); false on timeout,
 * error or shutdown. */
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

static void respond(ag_metrics_t *m, int fd, int code, const char *reason, const char *type,
                    const char *extra, const char *body) {
  ed_buf_t b = ED_BUF_INIT;
  size_t n = strlen(body);
  ed_buf_printf(&b,
                "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                code, reason, type, n, extra ? extra : "");
  ed_buf_append(&b, body, n);
  if (b.data)
    send_all(m, fd, b.data, b.len);
  ed_buf_fini(&b);
}

#define TEXT "text/plain; charset=utf-8"

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
  target[strcspn(target, "?#")] = '\0';
  if (strcmp(req, "GET")) {
    respond(m, fd, 405, "Method Not Allowed", TEXT, "Allow: GET\r\n", "only GET is served\n");
    return;
  }
  if (!strcmp(target, "/metrics")) {
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
    respond(m, fd, 404, "Not Found", TEXT, NULL, "not found; try /metrics, /status or /healthz\n");
  }
}

/* Closes a connection without a reset: unread request bytes in the kernel
 * make close() send RST, which can destroy the response before the client
 * reads it (the 431 case), so half-close and read a bounded remainder. */
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

static void *serve(void *arg) {
  ag_metrics_t *m = arg;
  for (;;) {
    struct pollfd p[2] = {{m->lfd, POLLIN, 0}, {m->wake[0], POLLIN, 0}};
    int r = poll(p, 2, -1);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0 || p[1].revents)
      break;
    if (!(p[0].revents & POLLIN))
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

ed_code_t ag_metrics_new(const char *listen_addr, const char *agent_id, ag_metrics_t **out,
                         ed_err_t *err) {
  *out = NULL;
  ag_metrics_t *m = calloc(1, sizeof *m);
  if (!m || !(m->agent_id = strdup(agent_id ? agent_id : ""))) {
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
  }
  free(m->p);
  pthread_mutex_destroy(&m->mu);
  free(m->agent_id);
  free(m);
}
