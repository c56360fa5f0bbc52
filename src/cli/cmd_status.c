/* ehdelta status: hub and partition properties from $management, as a table
 * or as JSON. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_eh.h"
#include "common/buf.h"
#include "common/time.h"

struct status_cfg {
  cli_eh_cfg_t eh;
  bool json;
  char **partitions;
};

const ed_opt_t cmd_status_options[] = {
    CLI_EH_OPTIONS(struct status_cfg),
    {"json", 0, ED_OPT_FLAG, NULL, NULL, offsetof(struct status_cfg, json),
     "print one JSON object instead of a table", 0, 0, 0},
    {"partition", 'p', ED_OPT_STRINGS, "ID", NULL, offsetof(struct status_cfg, partitions),
     "only this partition (repeatable; default all)", 0, 0, 0},
    ED_OPT_END,
};

static void iso(int64_t us, char out[ED_TIME_ISO_MAX]) {
  if (us <= 0)
    snprintf(out, ED_TIME_ISO_MAX, "-");
  else
    ed_time_format_iso(us, 3, out);
}

int cmd_status(int argc, char **argv) {
  struct status_cfg cfg = {0};
  int nop = 0, rc;
  if ((rc = cli_parse("status",
                      "ehdelta status [--connection-string-file FILE] [--hub NAME] [--json] "
                      "[--partition ID]...",
                      "Show an event hub's properties and each partition's sequence numbers.",
                      cmd_status_options, &cfg, argc, argv, &nop)) >= 0)
    goto out;
  if (nop > 0) {
    fprintf(stderr, "ehdelta status: unexpected argument '%s'\n", argv[0]);
    rc = CLI_EXIT_USAGE;
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
