/* ehdelta send: events from standard input, one per line (kcat's producer
 * convention), or from a file, or the tutorial's transaction generator when
 * asked (--generate N), to a hub, a partition or by partition key. It never
 * invents events unasked: with nothing piped in and no --generate it refuses. Many events are
 * in flight at once (one per transfer); the summary counts what the service
 * accepted. A progress line goes to stderr when it is a terminal. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli/cli.h"
#include "cli/cli_eh.h"
#include "common/buf.h"
#include "common/time.h"

struct send_cfg {
  cli_eh_cfg_t eh;
  int64_t count;
  int64_t rate;
  int64_t batch;
  char *input;
  char *delimiter;
  char *partition;
  char *partition_key;
  char *partition_key_field;
  char **properties;
  char *content_type;
  int64_t max_in_flight;
  int64_t seed;
  int64_t body_size;
  bool progress;
  bool no_progress;
};

const ed_opt_t cmd_send_options[] = {
    CLI_EH_OPTIONS(struct send_cfg),
    {"generate", 'n', ED_OPT_INT, "N", NULL, offsetof(struct send_cfg, count),
     "send N of the tutorial's generated transactions instead of reading input", 0, 0, INT64_MAX,
     NULL},
    {"count", 0, ED_OPT_INT, "N", NULL, offsetof(struct send_cfg, count),
     "the same as --generate N", 0, 0, INT64_MAX, NULL},
    {"rate", 'r', ED_OPT_INT, "EVENTS", "0", offsetof(struct send_cfg, rate),
     "at most EVENTS per second (0: as fast as the service accepts)", 0, 0, INT64_MAX, NULL},
    {"batch", 'b', ED_OPT_INT, "N", "0", offsetof(struct send_cfg, batch),
     "wait for the outcome of every N events before sending more (0: stream)", 0, 0, 1000000, NULL},
    {"input", 'i', ED_OPT_STRING, "FILE", NULL, offsetof(struct send_cfg, input),
     "read the events from FILE instead of standard input ('-': standard input)", 0, 0, 0, NULL},
    {"delimiter", 'D', ED_OPT_STRING, "CHAR", NULL, offsetof(struct send_cfg, delimiter),
     "what ends each input event: one character, or \\n, \\t, \\0 (default: \\n)", 0, 0, 0, NULL},
    {"partition", 'p', ED_OPT_STRING, "ID", NULL, offsetof(struct send_cfg, partition),
     "send to this partition (default: the service chooses)", 0, 0, 0, NULL},
    {"partition-key", 'k', ED_OPT_STRING, "KEY", NULL, offsetof(struct send_cfg, partition_key),
     "partition key of every event", 0, 0, 0, NULL},
    {"partition-key-field", 0, ED_OPT_STRING, "FIELD", NULL,
     offsetof(struct send_cfg, partition_key_field),
     "partition key from this top-level field of each JSON event", 0, 0, 0, NULL},
    {"property", 'P', ED_OPT_STRINGS, "KEY=VALUE", NULL, offsetof(struct send_cfg, properties),
     "application property of every event (repeatable)", 0, 0, 0, NULL},
    {"content-type", 0, ED_OPT_STRING, "TYPE", NULL, offsetof(struct send_cfg, content_type),
     "content type of every event, e.g. application/json", 0, 0, 0, NULL},
    {"max-in-flight", 0, ED_OPT_INT, "N", "1024", offsetof(struct send_cfg, max_in_flight),
     "events sent and not yet answered at most", 0, 1, 1000000, NULL},
    {"seed", 0, ED_OPT_INT, "N", "0", offsetof(struct send_cfg, seed),
     "generator: random seed (0: from the clock)", 0, 0, INT64_MAX, NULL},
    {"body-size", 0, ED_OPT_INT, "BYTES", "0", offsetof(struct send_cfg, body_size),
     "generator: pad each transaction with a 'note' field to BYTES (0: no padding)", 0, 0, 16777216,
     NULL},
    {"progress", 0, ED_OPT_FLAG, NULL, NULL, offsetof(struct send_cfg, progress),
     "show the progress line even when stderr is not a terminal", 0, 0, 0, NULL},
    {"no-progress", 0, ED_OPT_FLAG, NULL, NULL, offsetof(struct send_cfg, no_progress),
     "never show the progress line", 0, 0, 0, NULL},
    ED_OPT_END,
};

static uint64_t rng_state;
static uint64_t rng(void) {
  /* xorshift64*: reproducible with --seed, no libc state */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * UINT64_C(2685821657736338717);
}

/* One transaction exactly as the tutorial's producer builds it. */
static void gen_transaction(ed_buf_t *b, int64_t i, int64_t pad_to) {
  static const char *cats[] = {"Electronics", "Books", "Clothing", "Home", "Sports"};
  static const char *locs[] = {"US", "UK", "EU", "APAC"};
  static const char *pays[] = {"Credit", "Debit", "PayPal"};
  char ts[ED_TIME_ISO_MAX];
  size_t n = ed_time_format_iso(ed_time_now_us(), -1, ts);
  if (n && ts[n - 1] == 'Z')
    ts[n - 1] = 0; /* datetime.utcnow().isoformat() has no zone */
  double amount = 10.0 + (double)(rng() % 49001) / 100.0;
  ed_buf_printf(b,
                "{\"transaction_id\": \"T%06" PRId64 "\", \"customer_id\": \"C%03d\", "
                "\"amount\": %.2f, \"category\": \"%s\", \"timestamp\": \"%s\", "
                "\"location\": \"%s\", \"payment_method\": \"%s\"",
                i + 1, (int)(rng() % 100) + 1, amount, cats[rng() % 5], ts, locs[rng() % 4],
                pays[rng() % 3]);
  if (pad_to > 0 && (int64_t)b->len + 14 < pad_to) {
    ed_buf_puts(b, ", \"note\": \"");
    while ((int64_t)b->len + 2 < pad_to)
      ed_buf_putc(b, 'x');
    ed_buf_putc(b, '"');
  }
  ed_buf_putc(b, '}');
}

/* The partition key from a top-level field of a JSON line, into key. */
static bool key_from_field(json_tokener *tok, const char *line, size_t n, const char *field,
                           ed_buf_t *key) {
  json_tokener_reset(tok);
  json_object *o = json_tokener_parse_ex(tok, line, (int)n);
  json_object *v = NULL;
  bool ok = false;
  if (o && json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, field, &v) &&
      v && !json_object_is_type(v, json_type_null)) {
    ed_buf_reset(key);
    ed_buf_puts(key, json_object_is_type(v, json_type_string)
                         ? json_object_get_string(v)
                         : json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
    ok = true;
  }
  json_object_put(o);
  return ok;
}

/* -D: one byte, or the escapes a shell makes awkward to type. */
static int parse_delimiter(const char *s, int *out) {
  static const struct {
    const char *text;
    char c;
  } esc[] = {{"\\n", '\n'}, {"\\t", '\t'}, {"\\0", '\0'}, {"\\r", '\r'}};
  for (size_t i = 0; i < sizeof esc / sizeof esc[0]; i++)
    if (!strcmp(s, esc[i].text)) {
      *out = (unsigned char)esc[i].c;
      return 0;
    }
  if (strlen(s) != 1)
    return -1;
  *out = (unsigned char)s[0];
  return 0;
}

static void progress(bool show, int64_t sent, int64_t total, const eh_sender_stats_t *st,
                     int64_t t0, bool final) {
  if (!show)
    return;
  double secs = (double)(ed_time_mono_us() - t0) / 1e6;
  if (total > 0)
    fprintf(stderr, "\rsent %" PRId64 "/%" PRId64 "  accepted %" PRIu64 "  %.0f events/s   ", sent,
            total, st->accepted, secs > 0 ? (double)st->accepted / secs : 0.0);
  else
    fprintf(stderr, "\rsent %" PRId64 "  accepted %" PRIu64 "  %.0f events/s   ", sent,
            st->accepted, secs > 0 ? (double)st->accepted / secs : 0.0);
  if (final)
    fputc('\n', stderr);
}

int cmd_send(int argc, char **argv) {
  struct send_cfg cfg = {0};
  int nop = 0, rc;
  FILE *in = NULL;
  char *line = NULL;
  const char **pk = NULL, **pv = NULL;
  json_tokener *tok = NULL;
  ed_buf_t body = ED_BUF_INIT, key = ED_BUF_INIT;
  eh_client_t *c = NULL;
  eh_sender_t *tx = NULL;
  cfg.count = -1; /* not asked to generate */
  if ((rc = cli_parse("send",
                      "ehdelta send [--connection-string-file FILE] [--hub NAME] "
                      "[--input FILE [-D CHAR] | --generate N] [--rate EVENTS] [--batch N] "
                      "[--partition ID | --partition-key KEY | --partition-key-field FIELD]",
                      "Send events read from standard input (one per line), or --generate N "
                      "of the tutorial's transactions, to an event hub.",
                      cmd_send_options, &cfg, argc, argv, &nop)) >= 0)
    goto out;
  ed_err_t err = {0};
  rc = CLI_EXIT_USAGE;
  if (nop > 0) {
    fprintf(stderr, "ehdelta send: unexpected argument '%s'\n", argv[0]);
    goto out;
  }
  if (!!cfg.partition + !!cfg.partition_key + !!cfg.partition_key_field > 1) {
    fprintf(stderr, "ehdelta send: give at most one of --partition, --partition-key and "
                    "--partition-key-field\n");
    goto out;
  }
  size_t nprops = 0;
  for (char **p = cfg.properties; p && *p; p++)
    nprops++;
  pk = calloc(nprops + 1, sizeof *pk);
  pv = calloc(nprops + 1, sizeof *pv);
  for (size_t i = 0; i < nprops; i++) {
    char *eq = strchr(cfg.properties[i], '=');
    if (!eq || eq == cfg.properties[i]) {
      fprintf(stderr, "ehdelta send: --property '%s': expected KEY=VALUE\n", cfg.properties[i]);
      goto out;
    }
    *eq = 0;
    pk[i] = cfg.properties[i];
    pv[i] = eq + 1;
  }
  bool generate = cfg.count >= 0;
  if (generate && cfg.input) {
    fprintf(stderr, "ehdelta send: give --generate N or --input FILE, not both\n");
    goto out;
  }
  int delim = '\n';
  if (cfg.delimiter && parse_delimiter(cfg.delimiter, &delim)) {
    fprintf(stderr, "ehdelta send: --delimiter '%s': expected one character, or \\n, \\t or \\0\n",
            cfg.delimiter);
    goto out;
  }
  /* kcat's producer reads standard input; a terminal there means nobody piped
   * anything, and inventing 100 transactions for a production hub is not a
   * default anyone wants. */
  const char *input = cfg.input ? cfg.input : generate ? NULL : "-";
  if (input && !strcmp(input, "-") && isatty(STDIN_FILENO)) {
    fprintf(stderr, "ehdelta send: nothing to send: pipe events on standard input (one per line), "
                    "or give --input FILE or --generate N\n");
    goto out;
  }
  if (input) {
    in = strcmp(input, "-") ? fopen(input, "r") : stdin;
    if (!in) {
      fprintf(stderr, "ehdelta send: --input '%s': cannot open: %m\n", input);
      rc = CLI_EXIT_NOT_FOUND;
      goto out;
    }
  }
  tok = json_tokener_new();
  rng_state =
      cfg.seed ? (uint64_t)cfg.seed * 0x9E3779B97F4A7C15u | 1 : (uint64_t)ed_time_now_us() | 1;
  cli_eh_signals();
  if (cli_eh_connect(&cfg.eh, &c, &err)) {
    rc = cli_fail("send", &err);
    goto out;
  }
  eh_sender_opts_t so;
  eh_sender_opts_init(&so);
  so.partition = cfg.partition;
  so.max_in_flight = (size_t)cfg.max_in_flight;
  if (eh_sender_open(c, &so, &tx, &err)) {
    rc = cli_fail("send", &err);
    goto out;
  }
  bool show = !cfg.no_progress && (cfg.progress || isatty(2));
  int64_t t0 = ed_time_mono_us(), last_progress = t0, sent = 0, lineno = 0;
  int64_t total = input ? 0 : cfg.count;
  size_t cap = 0;
  rc = CLI_EXIT_OK;
  for (;;) {
    if (cli_eh_interrupted()) {
      rc = CLI_EXIT_INTERRUPTED;
      break;
    }
    ed_buf_reset(&body);
    if (input) {
      ssize_t n = getdelim(&line, &cap, delim, in);
      if (n < 0)
        break;
      lineno++;
      if (n && line[n - 1] == (char)delim)
        line[--n] = 0;
      while (delim == '\n' && n && line[n - 1] == '\r')
        line[--n] = 0;
      if (!n)
        continue;
      ed_buf_append(&body, line, (size_t)n);
    } else {
      if (sent >= cfg.count)
        break;
      gen_transaction(&body, sent, cfg.body_size);
    }
    eh_send_event_t ev = {.body = body.data,
                          .body_len = body.len,
                          .partition_key = cfg.partition_key,
                          .prop_keys = pk,
                          .prop_values = pv,
                          .nprops = nprops,
                          .content_type = cfg.content_type};
    if (cfg.partition_key_field) {
      if (key_from_field(tok, body.data, body.len, cfg.partition_key_field, &key))
        ev.partition_key = key.data;
      else
        ev.partition_key = NULL;
    }
    if (cfg.rate > 0) {
      int64_t due = t0 + sent * ED_US_PER_SEC / cfg.rate, now = ed_time_mono_us();
      if (due > now) {
        struct timespec ts = {(time_t)((due - now) / ED_US_PER_SEC),
                              (long)((due - now) % ED_US_PER_SEC) * 1000};
        nanosleep(&ts, NULL);
      }
    }
    if (eh_sender_send(tx, &ev, (uint64_t)sent, -1, &err)) {
      if (err.code == ED_E_TOO_LARGE && input)
        ed_err_prefix(&err, "%s event %" PRId64, strcmp(input, "-") ? input : "stdin", lineno);
      rc = cli_fail("send", &err);
      break;
    }
    sent++;
    if (cfg.batch > 0 && sent % cfg.batch == 0 && eh_sender_flush(tx, 0, &err)) {
      rc = cli_fail("send", &err);
      break;
    }
    int64_t now = ed_time_mono_us();
    if (show && now - last_progress > 250000) {
      eh_sender_stats_t st;
      eh_sender_stats(tx, &st);
      progress(show, sent, total, &st, t0, false);
      last_progress = now;
    }
  }
  if (rc == CLI_EXIT_OK && eh_sender_flush(tx, 0, &err))
    rc = cli_fail("send", &err);
  eh_sender_stats_t st;
  eh_sender_stats(tx, &st);
  progress(show, sent, total, &st, t0, true);
  double secs = (double)(ed_time_mono_us() - t0) / 1e6;
  printf("sent %" PRId64 " events to %s%s%s in %.3f s (%.0f events/s): accepted %" PRIu64
         ", failed %" PRIu64 ", retried %" PRIu64 "\n",
         sent, eh_client_hub(c), cfg.partition ? "/partition " : "",
         cfg.partition ? cfg.partition : "", secs, secs > 0 ? (double)st.accepted / secs : 0.0,
         st.accepted, st.failed, st.retried);
  fflush(stdout);
out:
  eh_sender_close(tx);
  eh_client_free(c);
  if (in && in != stdin)
    fclose(in);
  free(line);
  free(pk);
  free(pv);
  if (tok)
    json_tokener_free(tok);
  ed_buf_fini(&body);
  ed_buf_fini(&key);
  ed_opt_free(cmd_send_options, &cfg);
  return rc;
}
