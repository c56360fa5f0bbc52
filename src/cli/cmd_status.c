/* ehdelta status: hub and partition properties from $management, as a table
 * or as JSON; with --agent, a running agent's status page instead, as text
 * (the terminal view of its web page; --watch redraws it in place); with
 * --checkpoint-store, the partition-ownership and checkpoint records of a
 * consumer group in the SDKs' Blob layout (agent/owner.h). */
#include <curl/curl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/metrics.h"
#include "agent/owner.h"
#include "cli/cli.h"
#include "cli/cli_eh.h"
#include "common/buf.h"
#include "common/time.h"
#include "config.h"

struct status_cfg {
  cli_eh_cfg_t eh;
  bool json;
  char **partitions;
  char *agent;
  char *token_file;
  bool watch;
  int64_t interval;
  char *checkpoint_store;
  char *consumer_group;
};

const ed_opt_t cmd_status_options[] = {
    CLI_EH_OPTIONS(struct status_cfg),
    {"json", 0, ED_OPT_FLAG, NULL, NULL, offsetof(struct status_cfg, json),
     "print one JSON object instead of a table", 0, 0, 0, NULL},
    {"partition", 'p', ED_OPT_STRINGS, "ID", NULL, offsetof(struct status_cfg, partitions),
     "only this partition, repeatable (default: all)", 0, 0, 0, NULL},
    {"agent", 0, ED_OPT_STRING, "ADDR", NULL, offsetof(struct status_cfg, agent),
     "show the status page of the agent serving metrics at ADDR (HOST:PORT) instead", 0, 0, 0,
     NULL},
    {"token-file", 0, ED_OPT_STRING, "FILE", NULL, offsetof(struct status_cfg, token_file),
     "with --agent: send the token on FILE's first line (the agent's --metrics-token-file)", 0, 0,
     0, NULL},
    {"watch", 0, ED_OPT_FLAG, NULL, NULL, offsetof(struct status_cfg, watch),
     "with --agent: redraw the view in place every --interval until interrupted", 0, 0, 0, NULL},
    {"interval", 0, ED_OPT_DURATION, "DURATION", "2s", offsetof(struct status_cfg, interval),
     "with --watch: time between redraws", 0, 100000, INT64_MAX, NULL},
    {"checkpoint-store", 0, ED_OPT_STRING, "URL", NULL,
     offsetof(struct status_cfg, checkpoint_store),
     "list the ownership and checkpoint records in this Blob container instead", 0, 0, 0, NULL},
    {"consumer-group", 0, ED_OPT_STRING, "NAME", "$Default",
     offsetof(struct status_cfg, consumer_group), "with --checkpoint-store: whose records to list",
     0, 0, 0, NULL},
    ED_OPT_END,
};

static void iso(int64_t us, char out[ED_TIME_ISO_MAX]) {
  if (us <= 0)
    snprintf(out, ED_TIME_ISO_MAX, "-");
  else
    ed_time_format_iso(us, 3, out);
}

static int status_agent(const struct status_cfg *cfg);
static int status_owners(const struct status_cfg *cfg);

int cmd_status(int argc, char **argv) {
  struct status_cfg cfg = {0};
  int nop = 0, rc;
  if ((rc = cli_parse("status",
                      "ehdelta status [--connection-string-file FILE] [--hub NAME] [--json] "
                      "[--partition ID]... | ehdelta status --agent ADDR [--json] "
                      "[--token-file FILE] [--watch [--interval DURATION]] | ehdelta status "
                      "--checkpoint-store URL [--consumer-group NAME] [--json]",
                      "Show an event hub's properties and each partition's sequence numbers, "
                      "or a running agent's sinks.",
                      cmd_status_options, &cfg, argc, argv, &nop)) >= 0)
    goto out;
  if (nop > 0) {
    fprintf(stderr, "ehdelta status: unexpected argument '%s'\n", argv[0]);
    rc = CLI_EXIT_USAGE;
    goto out;
  }
  if (cfg.agent && cfg.partitions) {
    fprintf(stderr, "ehdelta status: --partition does not apply to --agent (the page lists every "
                    "partition)\n");
    rc = CLI_EXIT_USAGE;
    goto out;
  }
  if (!cfg.agent && (cfg.watch || cfg.token_file)) {
    fprintf(stderr, "ehdelta status: --%s applies to --agent ADDR only\n",
            cfg.watch ? "watch" : "token-file");
    rc = CLI_EXIT_USAGE;
    goto out;
  }
  if (cfg.agent && cfg.watch && cfg.json) {
    fprintf(stderr, "ehdelta status: --watch redraws the text view; it does not apply to --json\n");
    rc = CLI_EXIT_USAGE;
    goto out;
  }
  if (cfg.agent && cfg.checkpoint_store) {
    fprintf(stderr, "ehdelta status: --agent and --checkpoint-store show different things; give "
                    "one\n");
    rc = CLI_EXIT_USAGE;
    goto out;
  }
  if (cfg.agent) {
    rc = status_agent(&cfg);
    goto out;
  }
  if (cfg.checkpoint_store) {
    rc = status_owners(&cfg);
    goto out;
  }
  ed_err_t err = {0};
  eh_client_t *c = NULL;
  eh_hub_props_t hub = {0};
  if (cli_eh_connect(&cfg.eh, &c, &err) || eh_client_hub_props(c, 0, &hub, &err)) {
    rc = cli_fail("status", &err);
    eh_client_free(c);
    goto out;
  }
  char **ids = cfg.partitions ? cfg.partitions : hub.partition_ids;
  size_t n = 0;
  while (ids[n])
    n++;
  eh_partition_props_t *pp = calloc(n ? n : 1, sizeof *pp);
  rc = CLI_EXIT_OK;
  for (size_t i = 0; i < n && pp; i++)
    if (eh_client_partition_props(c, ids[i], 0, &pp[i], &err)) {
      rc = cli_fail("status", &err);
      break;
    }
  if (rc == CLI_EXIT_OK && pp) {
    char t[ED_TIME_ISO_MAX];
    ed_buf_t b = ED_BUF_INIT;
    if (cfg.json) {
      iso(hub.created_at_us, t);
      ed_buf_puts(&b, "{\"hub\":");
      ed_buf_json_str(&b, hub.name ? hub.name : eh_client_hub(c),
                      strlen(hub.name ? hub.name : eh_client_hub(c)));
      ed_buf_printf(&b, ",\"host\":");
      ed_buf_json_str(&b, eh_client_host(c), strlen(eh_client_host(c)));
      if (hub.created_at_us > 0)
        ed_buf_printf(&b, ",\"created_at\":\"%s\"", t);
      else
        ed_buf_puts(&b, ",\"created_at\":null");
      ed_buf_printf(&b, ",\"partition_count\":%d,\"partition_ids\":[", hub.partition_count);
      for (int i = 0; i < hub.partition_count; i++) {
        if (i)
          ed_buf_putc(&b, ',');
        ed_buf_json_str(&b, hub.partition_ids[i], strlen(hub.partition_ids[i]));
      }
      ed_buf_puts(&b, "],\"partitions\":[");
      for (size_t i = 0; i < n; i++) {
        eh_partition_props_t *p = &pp[i];
        iso(p->last_enqueued_us, t);
        ed_buf_printf(&b,
                      "%s{\"partition\":\"%s\",\"begin_sequence_number\":%" PRId64
                      ",\"last_enqueued_sequence_number\":%" PRId64
                      ",\"last_enqueued_offset\":\"%" PRId64 "\",\"last_enqueued_time\":",
                      i ? "," : "", ids[i], p->begin_seq, p->last_seq, p->last_offset);
        if (p->last_enqueued_us > 0)
          ed_buf_printf(&b, "\"%s\"", t);
        else
          ed_buf_puts(&b, "null");
        ed_buf_printf(&b, ",\"is_empty\":%s,\"events\":%" PRId64 "}",
                      p->is_empty ? "true" : "false",
                      p->is_empty ? 0 : p->last_seq - p->begin_seq + 1);
      }
      ed_buf_puts(&b, "]}\n");
    } else {
      iso(hub.created_at_us, t);
      ed_buf_printf(&b, "hub %s on %s, created %s, %d partitions\n",
                    hub.name ? hub.name : eh_client_hub(c), eh_client_host(c), t,
                    hub.partition_count);
      ed_buf_printf(&b, "%-10s %14s %14s %14s %12s %-24s %s\n", "PARTITION", "BEGIN_SEQ",
                    "LAST_SEQ", "LAST_OFFSET", "EVENTS", "LAST_ENQUEUED", "EMPTY");
      for (size_t i = 0; i < n; i++) {
        eh_partition_props_t *p = &pp[i];
        iso(p->last_enqueued_us, t);
        ed_buf_printf(
            &b, "%-10s %14" PRId64 " %14" PRId64 " %14" PRId64 " %12" PRId64 " %-24s %s\n", ids[i],
            p->begin_seq, p->last_seq, p->last_offset,
            p->is_empty ? 0 : p->last_seq - p->begin_seq + 1, t, p->is_empty ? "yes" : "no");
      }
    }
    fwrite(b.data, 1, b.len, stdout);
    ed_buf_fini(&b);
  }
  for (size_t i = 0; i < n && pp; i++)
    eh_partition_props_fini(&pp[i]);
  free(pp);
  eh_hub_props_fini(&hub);
  eh_client_free(c);
out:
  ed_opt_free(cmd_status_options, &cfg);
  return rc;
}

/* ---- --agent: the status page of `ehdelta run --metrics-listen ADDR` ----
 * Fetched over plain HTTP with libcurl (the page holds no secret), printed
 * as received (--json) or as one row per sink. Unreachable: exit 5. */

#define AGENT_PAGE_MAX (16u << 20)

static size_t on_page(char *p, size_t size, size_t n, void *ctx) {
  ed_buf_t *b = ctx;
  size_t len = size * n;
  if (b->len + len > AGENT_PAGE_MAX || ed_buf_append(b, p, len))
    return 0; /* curl reports a write error */
  return len;
}

static json_object *jget(json_object *o, const char *key) {
  json_object *v = NULL;
  return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/* A value as a table cell: "-" for missing or null. */
static const char *cell(json_object *v, char *out, size_t n) {
  if (!v)
    return "-";
  if (json_object_is_type(v, json_type_int))
    snprintf(out, n, "%" PRId64, json_object_get_int64(v));
  else if (json_object_is_type(v, json_type_double)) {
    /* two decimals at most, without trailing zeros: 1234.5, 4321.25, 17 */
    int k = snprintf(out, n, "%.2f", json_object_get_double(v));
    while (k > 0 && k < (int)n && strchr(out, '.') && (out[k - 1] == '0' || out[k - 1] == '.'))
      out[--k] = '\0';
  } else
    snprintf(out, n, "%s", json_object_get_string(v));
  return out;
}

static double num_of(json_object *v) { return v ? json_object_get_double(v) : 0; }

/* "14.9 MiB"; "-" for missing. */
static const char *bytes_cell(json_object *v, char *out, size_t n) {
  if (!v || json_object_is_type(v, json_type_null))
    return "-";
  double b = json_object_get_double(v);
  if (b >= 1 << 30)
    snprintf(out, n, "%.2f GiB", b / (1 << 30));
  else if (b >= 1 << 20)
    snprintf(out, n, "%.1f MiB", b / (1 << 20));
  else if (b >= 1 << 10)
    snprintf(out, n, "%.1f KiB", b / (1 << 10));
  else
    snprintf(out, n, "%.0f B", b);
  return out;
}

/* The terminal view of the agent's page: the same sections, as tables. */
static void print_agent_table(json_object *o) {
  char c[8][64];
  json_object *proc = jget(o, "process");
  printf("agent %s at %s, started %s, up %ss, rss %s, cpu %s%%\n", cell(jget(o, "agent"), c[0], 64),
         cell(jget(o, "address"), c[1], 64), cell(jget(o, "startedAt"), c[2], 64),
         cell(jget(o, "uptimeSeconds"), c[3], 64), bytes_cell(jget(proc, "rssBytes"), c[4], 64),
         cell(jget(proc, "cpuPercent"), c[5], 64));
  json_object *sinks = jget(o, "sinks"), *at = jget(o, "lastCommitAt");
  int w = 4;
  if (sinks && json_object_is_type(sinks, json_type_object)) {
    json_object_object_foreach(sinks, k0, v0) {
      (void)v0;
      if ((int)strlen(k0) > w)
        w = (int)strlen(k0);
    }
  }
  printf("%-*s %8s %12s %14s %16s %-24s %10s %s\n", w, "SINK", "BATCH", "INPUT_ROWS",
         "INPUT_ROWS/S", "PROCESSED_ROWS/S", "WATERMARK", "STATE_ROWS", "LAST_COMMIT");
  if (sinks && json_object_is_type(sinks, json_type_object)) {
    json_object_object_foreach(sinks, name, p) {
      json_object *ops = jget(p, "stateOperators"), *state = NULL;
      if (ops && json_object_is_type(ops, json_type_array) && json_object_array_length(ops)) {
        int64_t total = 0;
        for (size_t i = 0; i < json_object_array_length(ops); i++)
          total += json_object_get_int64(jget(json_object_array_get_idx(ops, i), "numRowsTotal"));
        state = json_object_new_int64(total);
      }
      json_object *when = jget(at, name);
      printf("%-*s %8s %12s %14s %16s %-24s %10s %s\n", w, name, cell(jget(p, "batchId"), c[0], 64),
             cell(jget(p, "numInputRows"), c[1], 64), cell(jget(p, "inputRowsPerSecond"), c[2], 64),
             cell(jget(p, "processedRowsPerSecond"), c[3], 64),
             cell(jget(jget(p, "eventTime"), "watermark"), c[4], 64), cell(state, c[5], 64),
             cell(when ? when : jget(p, "timestamp"), c[6], 64));
      json_object_put(state);
    }
    /* the last batch's duration by phase, as the page's stacked bars */
    printf("%-*s %9s %8s %8s %11s %8s %8s %14s %12s %12s\n", w, "SINK", "BATCH_MS", "PROCESS",
           "QUEUE", "CHECKPOINT", "FILES", "COMMIT", "TABLE_VERSION", "STATE_MEMORY",
           "DROPPED_LATE");
    json_object_object_foreach(sinks, name2, p2) {
      json_object *d = jget(p2, "durationMs"), *ops = jget(p2, "stateOperators");
      json_object *mem = NULL, *dropped = NULL;
      if (ops && json_object_is_type(ops, json_type_array) && json_object_array_length(ops)) {
        double mb = 0, dr = 0;
        for (size_t i = 0; i < json_object_array_length(ops); i++) {
          json_object *op = json_object_array_get_idx(ops, i);
          mb += num_of(jget(op, "memoryUsedBytes"));
          dr += num_of(jget(op, "numRowsDroppedByWatermark"));
        }
        mem = json_object_new_double(mb);
        dropped = json_object_new_int64((int64_t)dr);
      }
      printf("%-*s %9s %8s %8s %11s %8s %8s %14s %12s %12s\n", w, name2,
             cell(jget(d, "triggerExecution"), c[0], 64), cell(jget(d, "getBatch"), c[1], 64),
             cell(jget(d, "queueWait"), c[2], 64), cell(jget(d, "walCommit"), c[3], 64),
             cell(jget(d, "addBatch"), c[4], 64), cell(jget(d, "commitOffsets"), c[5], 64),
             cell(jget(jget(p2, "sink"), "tableVersion"), c[6], 64), bytes_cell(mem, c[7], 64),
             cell(dropped, c[1], 64));
      json_object_put(mem);
      json_object_put(dropped);
    }
  }
  json_object *mt = jget(o, "metrics"), *parts = jget(o, "partitions");
  size_t np =
      parts && json_object_is_type(parts, json_type_array) ? json_object_array_length(parts) : 0;
  size_t ready = 0;
  if (np) {
    printf("%-10s %-12s %-9s %14s %10s %12s %8s\n", "PARTITION", "STATE", "OWNED", "EVENTS",
           "EVENTS/S", "LAG", "LAG_S");
    for (size_t i = 0; i < np; i++) {
      json_object *p = json_object_array_get_idx(parts, i);
      ready += !strcmp(json_object_get_string(jget(p, "state")), "ready");
      printf("%-10s %-12s %-9s %14s %10s %12s %8s\n", cell(jget(p, "id"), c[0], 64),
             cell(jget(p, "state"), c[1], 64),
             json_object_get_boolean(jget(p, "owned")) ? "owned" : "not-owned",
             cell(jget(p, "receivedEvents"), c[2], 64), cell(jget(p, "eventsPerSecond"), c[3], 64),
             cell(jget(p, "lagEvents"), c[4], 64), cell(jget(p, "lagSeconds"), c[5], 64));
    }
  }
  printf("dead letters %s, retries %s\n", cell(jget(mt, "dead_letters_total"), c[0], 64),
         cell(jget(mt, "retries_total"), c[1], 64));
  printf("receivers ready %zu of %zu\n", ready, np);
  json_object *errs = jget(o, "errors");
  size_t ne =
      errs && json_object_is_type(errs, json_type_array) ? json_object_array_length(errs) : 0;
  printf("last warnings and errors (newest first): %s\n", ne ? "" : "none");
  for (size_t i = 0; i < ne; i++) {
    json_object *e = json_object_array_get_idx(errs, i);
    printf("  %s %-5s %s\n", cell(jget(e, "at"), c[0], 64), cell(jget(e, "level"), c[1], 64),
           json_object_get_string(jget(e, "text")));
  }
}

static volatile sig_atomic_t watch_stop;
static void on_watch_signal(int sig) {
  (void)sig;
  watch_stop = 1;
}

/* One GET of url into page (reset first); the curl code, *code the HTTP
 * status. */
static CURLcode fetch_page(CURL *c, const char *url, ed_buf_t *page, long *code) {
  ed_buf_reset(page);
  curl_easy_setopt(c, CURLOPT_URL, url);
  CURLcode cc = curl_easy_perform(c);
  *code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, code);
  return cc;
}

static int status_agent(const struct status_cfg *cfg) {
  const char *a = cfg->agent;
  ed_buf_t url = ED_BUF_INIT, page = ED_BUF_INIT, auth = ED_BUF_INIT;
  if (!strncmp(a, "http://", 7) || !strncmp(a, "https://", 8)) {
    ed_buf_puts(&url, a);
    while (url.len && url.data[url.len - 1] == '/')
      url.data[--url.len] = '\0';
    if (url.len < 7 || strcmp(url.data + url.len - 7, "/status"))
      ed_buf_puts(&url, "/status");
  } else {
    /* ":PORT" is an agent listening on every address: ask it on loopback */
    ed_buf_printf(&url, "http://%s%s/status", a[0] == ':' ? "127.0.0.1" : "", a);
  }
  int rc = CLI_EXIT_OK;
  if (cfg->token_file) {
    char *token = NULL;
    ed_err_t err = {0};
    if (ag_metrics_read_token(cfg->token_file, &token, &err)) {
      fprintf(stderr, "ehdelta status: --token-file: %s\n", err.msg);
      ed_buf_fini(&url);
      return CLI_EXIT_USAGE;
    }
    ed_buf_printf(&auth, "Authorization: Bearer %s", token);
    cli_secret_free(token);
  }
  char errbuf[CURL_ERROR_SIZE] = "";
  long code = 0;
  CURL *c = NULL;
  CURLcode cc = CURLE_OUT_OF_MEMORY;
  struct curl_slist *hdrs = auth.data ? curl_slist_append(NULL, auth.data) : NULL;
  bool inited = url.data && curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  if (cfg->watch)
    cli_on_stop_signals(on_watch_signal);
  if (inited && (c = curl_easy_init())) {
    long ms = cfg->eh.timeout > 0 ? (long)(cfg->eh.timeout / 1000) : 30000;
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_page);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &page);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, ms > 0 ? ms : 1L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "127.0.0.1,localhost,::1");
    curl_easy_setopt(c, CURLOPT_USERAGENT, "ehdelta/" PACKAGE_VERSION);
    if (hdrs)
      curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    if (cfg->eh.ca_file)
      curl_easy_setopt(c, CURLOPT_CAINFO, cfg->eh.ca_file);
  }
  bool tty = cfg->watch && isatty(STDOUT_FILENO);
  for (int round = 0; c && !watch_stop; round++) {
    if (round) {
      /* sleep in short steps so an interrupt ends the watch at once */
      for (int64_t left = cfg->interval; left > 0 && !watch_stop; left -= 50000)
        usleep((useconds_t)(left < 50000 ? left : 50000));
      if (watch_stop)
        break;
    }
    errbuf[0] = '\0';
    cc = fetch_page(c, url.data, &page, &code);
    if (tty)
      fputs("\033[H\033[2J", stdout); /* home, clear: redraw in place */
    else if (round)
      putchar('\n');
    if (cc != CURLE_OK) {
      fprintf(stderr, "ehdelta status: cannot reach the agent at %s: %s\n", a,
              errbuf[0] ? errbuf : curl_easy_strerror(cc));
      rc = cc == CURLE_URL_MALFORMAT || cc == CURLE_UNSUPPORTED_PROTOCOL ? CLI_EXIT_USAGE
                                                                         : CLI_EXIT_UNAVAILABLE;
    } else if (code != 200) {
      fprintf(stderr, "ehdelta status: the agent at %s answered HTTP %ld for %s (expected 200)%s\n",
              a, code, url.data,
              code == 401 ? (cfg->token_file ? "; the token was refused"
                                             : "; it wants a token: --token-file FILE")
                          : "");
      rc = code == 404 ? CLI_EXIT_NOT_FOUND : CLI_EXIT_FAILURE;
    } else {
      json_object *o = json_tokener_parse(page.data ? page.data : "");
      if (!o || !json_object_is_type(o, json_type_object) || !jget(o, "sinks")) {
        fprintf(stderr,
                "ehdelta status: the agent at %s sent no status page (expected a JSON object "
                "with \"sinks\")\n",
                a);
        rc = CLI_EXIT_FAILURE;
      } else if (cfg->json) {
        fwrite(page.data, 1, page.len, stdout);
        if (page.data[page.len - 1] != '\n')
          putchar('\n');
        rc = CLI_EXIT_OK;
      } else {
        print_agent_table(o);
        rc = CLI_EXIT_OK;
      }
      json_object_put(o);
    }
    fflush(stdout);
    if (!cfg->watch)
      break;
  }
  if (!c) {
    fprintf(stderr, "ehdelta status: cannot start an HTTP client (out of memory)\n");
    rc = CLI_EXIT_FAILURE;
  }
  curl_easy_cleanup(c);
  curl_slist_free_all(hdrs);
  if (inited)
    curl_global_cleanup();
  if (auth.data)
    explicit_bzero(auth.data, auth.len);
  ed_buf_fini(&auth);
  ed_buf_fini(&url);
  ed_buf_fini(&page);
  return cfg->watch && watch_stop ? CLI_EXIT_OK : rc;
}

/* ---- --checkpoint-store: who owns which partition, and how far it read ----
 * The namespace and hub come from the connection string (no connection is
 * opened); storage credentials from the environment, as the agent's. */

static int status_owners(const struct status_cfg *cfg) {
  ed_err_t err = {0};
  eh_connstr_t cs = {0}; /* zeroed: fini is safe whatever failed */
  char *secret = NULL;
  const char *hub = NULL;
  st_store_t *s = NULL;
  ag_own_t *o = NULL;
  ag_own_rec_t *recs = NULL;
  ag_own_ckpt_t *cps = NULL;
  size_t nr = 0, nc = 0;
  int rc = CLI_EXIT_OK;
  ed_log_setup((ed_log_level_t)cfg->eh.log_level, false, NULL);
  if (!cfg->eh.cs_file && !getenv("EVENTHUB_CONNECTION_STRING")) {
    ed_err_set(&err, ED_E_INVALID,
               "no connection string (it names the namespace and hub of the records): give "
               "--connection-string-file FILE or set EVENTHUB_CONNECTION_STRING");
    rc = cli_fail("status", &err);
    goto out;
  }
  if (cli_read_secret(cfg->eh.cs_file, "EVENTHUB_CONNECTION_STRING", "connection string", &secret,
                      &err) ||
      eh_connstr_parse(secret, &cs, &err) || eh_connstr_hub(&cs, cfg->eh.hub, &hub, &err) ||
      st_open(cfg->checkpoint_store, NULL, &s, &err)) {
    rc = cli_fail("status", &err);
    goto out;
  }
  /* The SDKs name the records after the endpoint's authority: the host, and
   * the port when the endpoint gives one (an emulator's "localhost:5672"). */
  char ns[512];
  const char *a = strstr(cs.endpoint, "://");
  a = a ? a + 3 : cs.endpoint;
  snprintf(ns, sizeof ns, "%.*s", (int)strcspn(a, "/"), a);
  ag_own_opts_t oo = {.ns = ns, .hub = hub, .group = cfg->consumer_group, .owner_id = "status"};
  ed_code_t orc = ag_own_new(s, &oo, &o, &err);
  s = NULL; /* ag_own_new took it, even when it failed */
  if (orc || ag_own_list(o, &recs, &nr, &err) || ag_own_list_checkpoints(o, &cps, &nc, &err)) {
    rc = cli_fail("status", &err);
    goto out;
  }
  ed_buf_t b = ED_BUF_INIT;
  char t[ED_TIME_ISO_MAX];
  if (cfg->json) {
    ed_buf_puts(&b, "{\"consumer_group\":");
    ed_buf_json_str(&b, cfg->consumer_group, strlen(cfg->consumer_group));
    ed_buf_puts(&b, ",\"ownership\":[");
    for (size_t i = 0; i < nr; i++) {
      iso(recs[i].mtime_ms * 1000, t);
      ed_buf_printf(&b, "%s{\"partition\":", i ? "," : "");
      ed_buf_json_str(&b, recs[i].pid, strlen(recs[i].pid));
      ed_buf_puts(&b, ",\"owner_id\":");
      ed_buf_json_str(&b, recs[i].owner, strlen(recs[i].owner));
      ed_buf_printf(&b, ",\"last_modified\":\"%s\"}", t);
    }
    ed_buf_puts(&b, "],\"checkpoints\":[");
    for (size_t i = 0; i < nc; i++) {
      ed_buf_printf(&b, "%s{\"partition\":", i ? "," : "");
      ed_buf_json_str(&b, cps[i].pid, strlen(cps[i].pid));
      ed_buf_printf(&b, ",\"offset\":%" PRId64 ",\"sequence_number\":%" PRId64 "}", cps[i].offset,
                    cps[i].seq);
    }
    ed_buf_puts(&b, "]}\n");
  } else {
    ed_buf_printf(&b, "%-10s %-40s %-24s %14s %14s\n", "PARTITION", "OWNER", "CLAIMED", "OFFSET",
                  "SEQ");
    for (size_t i = 0; i < nr; i++) {
      const ag_own_ckpt_t *cp = NULL;
      for (size_t k = 0; k < nc && !cp; k++)
        if (!strcmp(cps[k].pid, recs[i].pid))
          cp = &cps[k];
      iso(recs[i].mtime_ms * 1000, t);
      ed_buf_printf(&b, "%-10s %-40s %-24s", recs[i].pid, recs[i].owner[0] ? recs[i].owner : "-",
                    t);
      if (cp)
        ed_buf_printf(&b, " %14" PRId64 " %14" PRId64 "\n", cp->offset, cp->seq);
      else
        ed_buf_printf(&b, " %14s %14s\n", "-", "-");
    }
  }
  fwrite(b.data ? b.data : "", 1, b.len, stdout);
  ed_buf_fini(&b);
out:
  free(recs);
  free(cps);
  ag_own_free(o);
  st_free(s);
  eh_connstr_fini(&cs);
  cli_secret_free(secret);
  return rc;
}
