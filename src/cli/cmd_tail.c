/* ehdelta tail: print events as JSON lines, from a chosen position, for one
 * or all partitions, until --count events, the end (--to-end), an idle spell
 * (--idle-exit), a signal or a reader that went away. Events are written
 * from the client's network thread straight to standard output: a slow
 * reader slows the receivers down through credit, never through memory; the
 * wait for a stalled reader polls, so a signal still ends tail. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli/cli.h"
#include "cli/cli_eh.h"
#include "common/b64.h"
#include "common/buf.h"
#include "common/time.h"

struct tail_cfg {
  cli_eh_cfg_t eh;
  char **partitions;
  char *consumer_group;
  char *from;
  char *offset;
  int64_t count;
  bool to_end;
  int64_t idle_exit;
  int64_t epoch;
  int64_t prefetch;
  int body;   /* BODY_TEXT, BODY_JSON, BODY_BASE64: body_names' order */
  int format; /* FORMAT_JSON, FORMAT_PAYLOAD */
};

enum { BODY_TEXT, BODY_JSON, BODY_BASE64 };
static const char *const body_names[] = {"text", "json", "base64", NULL};
enum { FORMAT_JSON, FORMAT_PAYLOAD };
static const char *const format_names[] = {"json", "payload", NULL};

const ed_opt_t cmd_tail_options[] = {
    CLI_EH_OPTIONS(struct tail_cfg),
    {"partition", 'p', ED_OPT_STRINGS, "ID", NULL, offsetof(struct tail_cfg, partitions),
     "read this partition, repeatable (default: all)", 0, 0, 0, NULL},
    {"consumer-group", 'g', ED_OPT_STRING, "NAME", "$Default",
     offsetof(struct tail_cfg, consumer_group), "consumer group", 0, 0, 0, NULL},
    {"from", 'f', ED_OPT_STRING, "POSITION", "latest", offsetof(struct tail_cfg, from),
     "earliest, latest, offset:N, offset>=N, seq:N, seq>N, time:ISO or time>=ISO", 0, 0, 0, NULL},
    {"offset", 'o', ED_OPT_STRING, "WHERE", NULL, offsetof(struct tail_cfg, offset),
     "kcat's -o: beginning, end or a sequence number N (seq:N); instead of --from", 0, 0, 0, NULL},
    {"count", 'n', ED_OPT_INT, "N", "0", offsetof(struct tail_cfg, count),
     "stop after N events in all (0: follow)", 0, 0, INT64_MAX, NULL},
    {"to-end", 'e', ED_OPT_FLAG, NULL, NULL, offsetof(struct tail_cfg, to_end),
     "stop once each partition reached the last event it had at start", 0, 0, 0, NULL},
    {"idle-exit", 0, ED_OPT_DURATION, "DURATION", "0s", offsetof(struct tail_cfg, idle_exit),
     "stop after no event for DURATION (0: never)", 0, 0, 0, NULL},
    {"epoch", 0, ED_OPT_INT, "N", "-1", offsetof(struct tail_cfg, epoch),
     "exclusive receivers with this owner level (-1: none)", 0, -1, INT64_MAX, NULL},
    {"prefetch", 0, ED_OPT_INT, "N", "300", offsetof(struct tail_cfg, prefetch),
     "link credit per partition (events buffered at most)", 0, 1, 100000, NULL},
    {"body", 0, ED_OPT_ENUM, "FORMAT", "text", offsetof(struct tail_cfg, body),
     "how the body is printed (a JSON string; embedded when valid JSON; base64)", 0, 0, 0,
     body_names},
    {"format", 0, ED_OPT_ENUM, "FORMAT", "json", offsetof(struct tail_cfg, format),
     "one JSON line per event, or the body alone and a newline", 0, 0, 0, format_names},
    ED_OPT_END,
};

typedef struct tail_part {
  struct tail *t;
  eh_receiver_t *rx;
  int64_t end_seq; /* --to-end: last sequence number at start; -1 when empty */
  bool done;
} tail_part_t;

typedef struct tail {
  int body;
  bool payload; /* --format payload: the body's bytes and a newline, as kcat prints */
  int64_t limit;
  _Atomic int64_t seen;
  _Atomic int64_t last_event_us;
  atomic_int finished;    /* partitions done */
  atomic_int failed;      /* first terminal error code + 1 */
  atomic_bool out_closed; /* the reader of standard output went away */
  size_t chunk;           /* most bytes per write(2): PIPE_BUF unless a regular file */
  ed_err_t err;           /* written once, under mu */
  pthread_mutex_t mu;
  ed_buf_t line;
  json_tokener *tok;
  bool to_end;
} tail_t;

static void put_body(tail_t *t, const eh_event_t *e) {
  ed_buf_t *b = &t->line;
  if (t->body == BODY_BASE64) {
    ed_buf_putc(b, '"');
    if (ed_buf_reserve(b, (e->body_len + 2) / 3 * 4 + 2) == ED_OK)
      b->len += ed_b64_encode(e->body, e->body_len, b->data + b->len);
    ed_buf_putc(b, '"');
    return;
  }
  if (t->body == BODY_JSON && e->body_len) {
    json_tokener_reset(t->tok);
    json_object *o = json_tokener_parse_ex(t->tok, e->body, (int)e->body_len);
    bool ok = o && json_tokener_get_error(t->tok) == json_tokener_success &&
              json_tokener_get_parse_end(t->tok) == e->body_len;
    json_object_put(o);
    if (ok) {
      ed_buf_append(b, e->body, e->body_len);
      return;
    }
  }
  ed_buf_json_str(b, e->body, e->body_len);
}

static void put_line(tail_t *t, const eh_event_t *e) {
  ed_buf_t *b = &t->line;
  if (t->payload) {
    ed_buf_append(b, e->body, e->body_len);
    ed_buf_putc(b, '\n');
    return;
  }
  char iso[ED_TIME_ISO_MAX];
  ed_time_format_iso(e->enqueued_time_us, 3, iso);
  ed_buf_puts(b, "{\"partition\":");
  ed_buf_json_str(b, e->partition, strlen(e->partition));
  ed_buf_printf(b,
                ",\"sequence_number\":%" PRId64 ",\"offset\":\"%" PRId64
                "\",\"enqueued_time\":\"%s\",\"partition_key\":",
                e->sequence_number, e->offset, iso);
  if (e->partition_key)
    ed_buf_json_str(b, e->partition_key, e->partition_key_len);
  else
    ed_buf_puts(b, "null");
  ed_buf_puts(b, ",\"properties\":{");
  for (size_t i = 0; i < e->nprops; i++) {
    const eh_prop_t *p = &e->props[i];
    if (i)
      ed_buf_putc(b, ',');
    ed_buf_json_str(b, p->key, p->key_len);
    ed_buf_putc(b, ':');
    if (p->kind == EH_VAL_INT || p->kind == EH_VAL_BOOL || p->kind == EH_VAL_NULL ||
        (p->kind == EH_VAL_DOUBLE && strspn(p->text, "0123456789+-.eE") == p->text_len))
      ed_buf_append(b, p->text, p->text_len);
    else
      ed_buf_json_str(b, p->text, p->text_len);
  }
  ed_buf_puts(b, "},\"body\":");
  put_body(t, e);
  ed_buf_puts(b, "}\n");
}

/* Writes p to standard output; returns the bytes written. A reader that
 * does not read is waited for in short polls, so a signal ends the wait;
 * a reader that went away (EPIPE) or a failed write ends tail. */
static size_t write_out(tail_t *t, const char *p, size_t n) {
  size_t done = 0;
  while (done < n && !atomic_load(&t->out_closed)) {
    struct pollfd pf = {.fd = STDOUT_FILENO, .events = POLLOUT};
    int r = poll(&pf, 1, 200);
    if (cli_eh_interrupted())
      break;
    if (r < 0 && errno != EINTR)
      break;
    if (r <= 0)
      continue;
    size_t len = n - done < t->chunk ? n - done : t->chunk;
    ssize_t w = write(STDOUT_FILENO, p + done, len);
    if (w > 0) {
      done += (size_t)w;
    } else if (w < 0 && errno != EINTR && errno != EAGAIN) {
      if (errno != EPIPE) {
        ed_err_t e;
        ed_err_set(&e, ED_E_IO, "standard output: %s", strerror(errno));
        pthread_mutex_lock(&t->mu);
        if (!atomic_load(&t->failed)) {
          t->err = e;
          atomic_store(&t->failed, (int)e.code + 1);
        }
        pthread_mutex_unlock(&t->mu);
      }
      atomic_store(&t->out_closed, true);
    }
  }
  return done;
}

static size_t on_events(void *ctx, eh_receiver_t *rx, const eh_event_t *evs, size_t n) {
  tail_part_t *tp = ctx;
  tail_t *t = tp->t;
  if (tp->done)
    return 0;
  size_t take = n;
  if (t->limit > 0) {
    int64_t left = t->limit - atomic_load(&t->seen);
    if (left <= 0)
      return 0;
    if ((int64_t)take > left)
      take = (size_t)left;
  }
  if (t->to_end) {
    size_t k = 0;
    while (k < take && evs[k].sequence_number <= tp->end_seq)
      k++;
    take = k;
  }
  ed_buf_reset(&t->line);
  for (size_t i = 0; i < take; i++)
    put_line(t, &evs[i]);
  size_t wrote = write_out(t, t->line.data, t->line.len);
  if (wrote < t->line.len) {
    /* interrupted or the reader is gone: what went out whole counts */
    size_t lines = 0;
    for (size_t i = 0; i < wrote; i++)
      lines += t->line.data[i] == '\n';
    take = lines;
    tp->done = true;
  }
  atomic_fetch_add(&t->seen, (int64_t)take);
  atomic_store(&t->last_event_us, ed_time_mono_us());
  if (t->to_end && take < n) {
    tp->done = true;
    atomic_fetch_add(&t->finished, 1);
  } else if (t->to_end && take && evs[take - 1].sequence_number >= tp->end_seq && !tp->done) {
    tp->done = true;
    atomic_fetch_add(&t->finished, 1);
  }
  return take;
}

static void on_state(void *ctx, eh_receiver_t *rx, eh_state_t st, const ed_err_t *err) {
  tail_part_t *tp = ctx;
  tail_t *t = tp->t;
  if ((st == EH_STATE_FAILED || st == EH_STATE_STOLEN) && err) {
    pthread_mutex_lock(&t->mu);
    if (!atomic_load(&t->failed)) {
      t->err = *err;
      atomic_store(&t->failed, (int)err->code + 1);
    }
    pthread_mutex_unlock(&t->mu);
  }
}

/* --to-end: whether the start position leaves nothing to read up to the
 * partition's last event at start (empty partition, latest, or a position
 * at or past the end); such a partition is done without a receiver, which
 * would otherwise wait for an event that never comes. */
static bool past_end(const eh_position_t *p, const eh_partition_props_t *pp) {
  if (pp->is_empty || pp->last_seq < 0)
    return true;
  switch (p->kind) {
  case EH_POS_EARLIEST:
    return false;
  case EH_POS_LATEST:
    return true;
  case EH_POS_SEQUENCE:
    return p->inclusive ? p->value > pp->last_seq : p->value >= pp->last_seq;
  case EH_POS_OFFSET:
    return p->inclusive ? p->value > pp->last_offset : p->value >= pp->last_offset;
  default: {
    /* the filter is in milliseconds, like the enqueued time */
    int64_t ms = ed_floordiv(p->value, 1000), last_ms = ed_floordiv(pp->last_enqueued_us, 1000);
    return p->inclusive ? ms > last_ms : ms >= last_ms;
  }
  }
}

int cmd_tail(int argc, char **argv) {
  struct tail_cfg cfg = {0};
  int nop = 0, rc;
  tail_t t = {0};
  pthread_mutex_init(&t.mu, NULL);
  if ((rc = cli_parse("tail",
                      "ehdelta tail [--connection-string-file FILE] [--hub NAME] [--partition "
                      "ID]... [--from POSITION | -o beginning|end|N] [--count N | -e] "
                      "[--format json|payload] [--epoch N]",
                      "Print a hub's events as JSON lines.", cmd_tail_options, &cfg, argc, argv,
                      &nop)) >= 0)
    goto out;
  ed_err_t err = {0};
  if (nop > 0) {
    fprintf(stderr, "ehdelta tail: unexpected argument '%s'\n", argv[0]);
    rc = CLI_EXIT_USAGE;
    goto out;
  }
  t.body = cfg.body;
  t.payload = cfg.format == FORMAT_PAYLOAD;
  char seqpos[40];
  const char *from = cfg.from;
  if (cfg.offset) {
    /* kcat's names; a number is a sequence number, the position Event Hubs
     * counts events by (its byte offsets are not dense). */
    char *end = NULL;
    long long n = strtoll(cfg.offset, &end, 10);
    if (!strcmp(cfg.offset, "beginning"))
      from = "earliest";
    else if (!strcmp(cfg.offset, "end"))
      from = "latest";
    else if (*cfg.offset >= '0' && *cfg.offset <= '9' && !*end) {
      snprintf(seqpos, sizeof seqpos, "seq:%lld", n);
      from = seqpos;
    } else {
      fprintf(stderr, "ehdelta tail: --offset '%s': expected beginning, end or a sequence number\n",
              cfg.offset);
      rc = CLI_EXIT_USAGE;
      goto out;
    }
  }
  eh_position_t start;
  if (eh_position_parse(from, &start, &err)) {
    fprintf(stderr, "ehdelta tail: --from: %s\n", err.msg);
    rc = CLI_EXIT_USAGE;
    goto out;
  }
  t.limit = cfg.count;
  t.to_end = cfg.to_end;
  struct stat st;
  /* a write of at most PIPE_BUF to a pipe or terminal that polled writable
   * does not block; files take big writes */
  t.chunk = fstat(STDOUT_FILENO, &st) == 0 && S_ISREG(st.st_mode) ? (size_t)1 << 20 : 4096;
  t.tok = json_tokener_new();
  cli_eh_signals();
  eh_client_t *c = NULL;
  eh_hub_props_t hub = {0};
  if (cli_eh_connect(&cfg.eh, &c, &err)) {
    rc = cli_fail("tail", &err);
    goto out;
  }
  if (!cfg.partitions && eh_client_hub_props(c, 0, &hub, &err)) {
    rc = cli_fail("tail", &err);
    eh_client_free(c);
    goto out;
  }
  char **ids = cfg.partitions ? cfg.partitions : hub.partition_ids;
  size_t n = 0;
  while (ids[n])
    n++;
  tail_part_t *parts = calloc(n ? n : 1, sizeof *parts);
  rc = CLI_EXIT_OK;
  for (size_t i = 0; i < n; i++) {
    parts[i].t = &t;
    parts[i].end_seq = INT64_MAX;
    if (cfg.to_end) {
      eh_partition_props_t pp;
      if (eh_client_partition_props(c, ids[i], 0, &pp, &err)) {
        rc = cli_fail("tail", &err);
        break;
      }
      parts[i].end_seq = pp.is_empty ? -1 : pp.last_seq;
      bool nothing = past_end(&start, &pp);
      eh_partition_props_fini(&pp);
      if (nothing) {
        parts[i].done = true;
        atomic_fetch_add(&t.finished, 1);
        continue;
      }
    }
  }
  atomic_store(&t.last_event_us, ed_time_mono_us());
  for (size_t i = 0; i < n && rc == CLI_EXIT_OK; i++) {
    if (parts[i].done)
      continue;
    eh_receiver_opts_t ro;
    eh_receiver_opts_init(&ro);
    ro.consumer_group = cfg.consumer_group;
    ro.partition = ids[i];
    ro.start = start;
    ro.has_epoch = cfg.epoch >= 0;
    ro.epoch = cfg.epoch;
    ro.prefetch = (uint32_t)cfg.prefetch;
    ro.on_events = on_events;
    ro.on_state = on_state;
    ro.ctx = &parts[i];
    if (eh_receiver_open(c, &ro, &parts[i].rx, &err))
      rc = cli_fail("tail", &err);
  }
  while (rc == CLI_EXIT_OK) {
    if (cli_eh_interrupted()) {
      /* following is ended by a signal; a --count that was not reached was interrupted */
      rc = cfg.count > 0 || cfg.to_end ? CLI_EXIT_INTERRUPTED : CLI_EXIT_OK;
      break;
    }
    int f = atomic_load(&t.failed);
    if (f) {
      pthread_mutex_lock(&t.mu);
      rc = cli_fail("tail", &t.err);
      pthread_mutex_unlock(&t.mu);
      break;
    }
    if (t.limit > 0 && atomic_load(&t.seen) >= t.limit)
      break;
    if (atomic_load(&t.out_closed))
      break; /* the reader went away: the normal end of `tail | head` */
    if (t.to_end && (size_t)atomic_load(&t.finished) >= n)
      break;
    if (cfg.idle_exit > 0 && ed_time_mono_us() - atomic_load(&t.last_event_us) >= cfg.idle_exit)
      break;
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  for (size_t i = 0; i < n; i++)
    eh_receiver_close(parts[i].rx);
  fflush(stdout);
  free(parts);
  eh_hub_props_fini(&hub);
  eh_client_free(c);
out:
  if (t.tok)
    json_tokener_free(t.tok);
  ed_buf_fini(&t.line);
  pthread_mutex_destroy(&t.mu);
  ed_opt_free(cmd_tail_options, &cfg);
  return rc;
}
