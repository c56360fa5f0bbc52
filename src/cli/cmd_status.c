/* ehdelta status: hub and partition properties from $management, as a table
 * or as JSON; with --agent, a running agent's status page instead. */
#include <curl/curl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    ED_OPT_END,
};

static void iso(int64_t us, char out[ED_TIME_ISO_MAX]) {
  if (us <= 0)
    snprintf(out, ED_TIME_ISO_MAX, "-");
  else
    ed_time_format_iso(us, 3, out);
}

static int status_agent(const struct status_cfg *cfg);

int cmd_status(int argc, char **argv) {
  struct status_cfg cfg = {0};
  int nop = 0, rc;
  if ((rc = cli_parse("status",
                      "ehdelta status [--connection-string-file FILE] [--hub NAME] [--json] "
                      "[--partition ID]... | ehdelta status --agent ADDR [--json]",
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
  if (cfg.agent) {
    rc = status_agent(&cfg);
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

static void print_agent_table(json_object *o) {
  char c[8][64];
  printf("agent %s at %s, started %s, up %ss\n", cell(jget(o, "agent"), c[0], 64),
         cell(jget(o, "address"), c[1], 64), cell(jget(o, "startedAt"), c[2], 64),
         cell(jget(o, "uptimeSeconds"), c[3], 64));
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
  }
  json_object *mt = jget(o, "metrics");
  json_object *rx = jget(mt, "events_received_total"), *lag = jget(mt, "consumer_lag_events");
  if (lag && json_object_is_type(lag, json_type_object) && json_object_object_length(lag)) {
    printf("%-10s %14s %12s\n", "PARTITION", "EVENTS", "LAG");
    json_object_object_foreach(lag, part, l) {
      printf("%-10s %14s %12s\n", part, cell(jget(rx, part), c[0], 64), cell(l, c[1], 64));
    }
  }
  printf("dead letters %s, retries %s\n", cell(jget(mt, "dead_letters_total"), c[0], 64),
         cell(jget(mt, "retries_total"), c[1], 64));
}

static int status_agent(const struct status_cfg *cfg) {
  const char *a = cfg->agent;
  ed_buf_t url = ED_BUF_INIT, page = ED_BUF_INIT;
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
  char errbuf[CURL_ERROR_SIZE] = "";
  long code = 0;
  CURL *c = NULL;
  CURLcode cc = CURLE_OUT_OF_MEMORY;
  bool inited = url.data && curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  if (inited && (c = curl_easy_init())) {
    long ms = cfg->eh.timeout > 0 ? (long)(cfg->eh.timeout / 1000) : 30000;
    curl_easy_setopt(c, CURLOPT_URL, url.data);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_page);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &page);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, ms > 0 ? ms : 1L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "127.0.0.1,localhost,::1");
    curl_easy_setopt(c, CURLOPT_USERAGENT, "ehdelta/" PACKAGE_VERSION);
    if (cfg->eh.ca_file)
      curl_easy_setopt(c, CURLOPT_CAINFO, cfg->eh.ca_file);
    cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  }
  if (cc != CURLE_OK) {
    fprintf(stderr, "ehdelta status: cannot reach the agent at %s: %s\n", a,
            errbuf[0] ? errbuf : curl_easy_strerror(cc));
    rc = cc == CURLE_URL_MALFORMAT || cc == CURLE_UNSUPPORTED_PROTOCOL ? CLI_EXIT_USAGE
                                                                       : CLI_EXIT_UNAVAILABLE;
  } else if (code != 200) {
    fprintf(stderr, "ehdelta status: the agent at %s answered HTTP %ld for %s (expected 200)\n", a,
            code, url.data);
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
    } else {
      print_agent_table(o);
    }
    json_object_put(o);
  }
  curl_easy_cleanup(c);
  if (inited)
    curl_global_cleanup();
  ed_buf_fini(&url);
  ed_buf_fini(&page);
  return rc;
}
