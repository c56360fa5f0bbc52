/* conf: ehdelta.conf(5) parsing and validation. The tables below are the one
 * place a key is declared; the man page is checked against them. */
#include "agent/conf.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "agent/owner.h"
#include "common/buf.h"
#include "common/time.h"
#include "eventhubs/client.h"
#include "stream/decode.h"
#include "stream/schema.h"
#include "store/azure.h"

#define S(st, f) offsetof(st, f)

static const char *const gap_names[] = {"fail", "skip-to-earliest", NULL};
static const char *const bad_mode_names[] = {"dead-letter", "permissive", "fail-fast", NULL};
static const char *const auth_names[] = {"shared-key",        "sas",       "client-secret",
                                         "managed-identity",  "azure-cli", "none",
                                         "workload-identity", "default",   NULL};
static const char *const sink_type_names[] = {"delta", "console", NULL};
static const char *const output_mode_names[] = {"append", "update", "complete", NULL};
static const char *const violation_names[] = {"fail", "dead-letter", NULL};
_Static_assert(SM_BAD_DEAD_LETTER == 0 && SM_BAD_PERMISSIVE == 1 && SM_BAD_FAIL_FAST == 2,
               "bad_mode_names follows sm_bad_mode_t");
_Static_assert(AG_SINK_DELTA == 0 && AG_SINK_CONSOLE == 1,
               "sink_type_names follows ag_sink_type_t");
_Static_assert(AG_OUT_APPEND == 0 && AG_OUT_UPDATE == 1 && AG_OUT_COMPLETE == 2,
               "output_mode_names follows ag_output_mode_t");
_Static_assert(AG_AUTH_NONE == 5 && AG_AUTH_DEFAULT == 7, "auth_names follows ag_auth_t");
_Static_assert(AG_VIOLATION_FAIL == 0 && AG_VIOLATION_DEAD_LETTER == 1,
               "violation_names follows ag_violation_t");

static const ed_opt_t source_keys[] = {
    {"namespace", 0, ED_OPT_STRING, "HOST", NULL, S(ag_source_t, namespace_),
     "the Event Hubs namespace host (default: the connection string's Endpoint)", 0, 0, 0, NULL},
    {"auth", 0, ED_OPT_ENUM, "METHOD", "sas", S(ag_source_t, auth),
     "how the agent authenticates to Event Hubs: the key (sas) or a Microsoft Entra ID credential",
     0, 0, 0, eh_auth_names},
    {"tenant_id", 0, ED_OPT_STRING, "ID", NULL, S(ag_source_t, tenant_id),
     "the Entra tenant (client-secret, workload-identity; else AZURE_TENANT_ID)", 0, 0, 0, NULL},
    {"client_id", 0, ED_OPT_STRING, "ID", NULL, S(ag_source_t, client_id),
     "the application or user-assigned identity id (else AZURE_CLIENT_ID)", 0, 0, 0, NULL},
    {"client_secret_file", 0, ED_OPT_STRING, "FILE", NULL, S(ag_source_t, client_secret_file),
     "a file holding the client secret (client-secret; else AZURE_CLIENT_SECRET)", 0, 0, 0, NULL},
    {"federated_token_file", 0, ED_OPT_STRING, "FILE", NULL, S(ag_source_t, federated_token_file),
     "workload identity's token file (else AZURE_FEDERATED_TOKEN_FILE)", 0, 0, 0, NULL},
    {"hub", 0, ED_OPT_STRING, "NAME", NULL, S(ag_source_t, hub),
     "the event hub (default: the connection string's EntityPath)", 0, 0, 0, NULL},
    {"consumer_group", 0, ED_OPT_STRING, "NAME", "$Default", S(ag_source_t, consumer_group),
     "the consumer group read through", 0, 0, 0, NULL},
    {"connection_string_file", 0, ED_OPT_STRING, "FILE", NULL,
     S(ag_source_t, connection_string_file),
     "a file whose first line is the connection string (else EVENTHUB_CONNECTION_STRING)", 0, 0, 0,
     NULL},
    {"partitions", 0, ED_OPT_STRING, "LIST", "all", S(ag_source_t, partitions),
     "\"all\" or a comma-separated list of partition ids", 0, 0, 0, NULL},
    {"starting_position", 0, ED_OPT_STRING, "POSITION", "earliest",
     S(ag_source_t, starting_position), "where a partition without a checkpoint starts", 0, 0, 0,
     NULL},
    {"partition_position", 0, ED_OPT_STRINGS, "ID = POSITION", NULL,
     S(ag_source_t, partition_position), "the starting position of one partition (repeatable)", 0,
     0, 0, NULL},
    {"retention_gap_policy", 0, ED_OPT_ENUM, "POLICY", "fail", S(ag_source_t, retention_gap_policy),
     "what to do when the resume position has expired", 0, 0, 0, gap_names},
    {"tls", 0, ED_OPT_FLAG, NULL, "true", S(ag_source_t, tls),
     "TLS with the server's certificate verified (false only for the emulator)", 0, 0, 0, NULL},
    {"prefetch", 0, ED_OPT_INT, "N", "300", S(ag_source_t, prefetch),
     "link credit granted per partition", 0, 1, 100000, NULL},
    {"idle_timeout", 0, ED_OPT_DURATION, "DURATION", "30 seconds", S(ag_source_t, idle_timeout_us),
     "a partition caught up and quiet this long stops holding the watermark back", 0, 0, 0, NULL},
    {"max_drift", 0, ED_OPT_STRING, "DURATION", "1 hour", S(ag_source_t, max_drift),
     "no credit to a partition this far ahead in event time of the slowest (or off)", 0, 0, 0,
     NULL},
    {"from_spark_checkpoint", 0, ED_OPT_STRING, "URL", NULL, S(ag_source_t, from_spark_checkpoint),
     "a stopped Spark query's checkpoint folder: its tables start where it last committed", 0, 0, 0,
     NULL},
    {"from_spark_force", 0, ED_OPT_FLAG, NULL, "false", S(ag_source_t, from_spark_force),
     "take over from Spark even over ehdelta's own positions", 0, 0, 0, NULL},
    {"checkpoint_store", 0, ED_OPT_STRING, "URL", NULL, S(ag_source_t, checkpoint_store),
     "a Blob container of the SDKs' ownership records: agents of the consumer group share the "
     "partitions",
     0, 0, 0, NULL},
    {"owner_id", 0, ED_OPT_STRING, "ID", NULL, S(ag_source_t, owner_id),
     "this agent's owner id in the checkpoint store (default: a fresh uuid per process)", 0, 0, 0,
     NULL},
    {"ownership_expiry", 0, ED_OPT_DURATION, "DURATION", "60 seconds",
     S(ag_source_t, ownership_expiry_us),
     "a claim not renewed this long may be taken by another agent", 0, 0, 0, NULL},
    {"ownership_renew", 0, ED_OPT_DURATION, "DURATION", "10 seconds",
     S(ag_source_t, ownership_renew_us), "how often an agent renews its claims and balances", 0, 0,
     0, NULL},
    {"load_balancing", 0, ED_OPT_ENUM, "STRATEGY", "greedy", S(ag_source_t, load_balancing),
     "the SDKs' strategy: greedy takes its whole share of free partitions in one round, balanced "
     "one a round",
     0, 0, 0, ag_own_strategy_names},
    ED_OPT_END,
};

static const ed_opt_t schema_keys[] = {
    {"columns", 0, ED_OPT_STRING, "DDL", NULL, S(ag_schema_t, columns),
     "the JSON body's fields in Spark DDL", ED_OPT_REQUIRED, 0, 0, NULL},
    {"metadata", 0, ED_OPT_STRING, "LIST", NULL, S(ag_schema_t, metadata),
     "event metadata columns, \"enqueued_time AS ingestion_time, offset\"", 0, 0, 0, NULL},
    {"derive", 0, ED_OPT_STRINGS, "NAME = EXPR", NULL, S(ag_schema_t, derive),
     "a derived column (repeatable, evaluated in order)", 0, 0, 0, NULL},
    {"filter", 0, ED_OPT_STRING, "EXPR", NULL, S(ag_schema_t, filter),
     "keep only rows where EXPR is true", 0, 0, 0, NULL},
    {"bad_event_mode", 0, ED_OPT_ENUM, "MODE", "dead-letter", S(ag_schema_t, bad_event_mode),
     "what becomes of an event that does not decode", 0, 0, 0, bad_mode_names},
    /* 20 MiB: the largest event any Event Hubs tier accepts (Dedicated), so no event
     * the hub delivers is refused for its size unless the user bounds it lower. */
    {"max_event_size", 0, ED_OPT_INT, "BYTES", "20971520", S(ag_schema_t, max_event_size),
     "largest body (and string in it) decoded; larger ones are dead letters", 0, 1024,
     INT64_C(268435456), NULL},
    ED_OPT_END,
};

static const ed_opt_t storage_keys[] = {
    {"account", 0, ED_OPT_STRING, "NAME", NULL, S(ag_storage_t, account),
     "the storage account of abfss:// paths", 0, 0, 0, NULL},
    {"auth", 0, ED_OPT_ENUM, "METHOD", NULL, S(ag_storage_t, auth),
     "how the agent authenticates to storage", 0, 0, 0, auth_names},
    {"account_key_file", 0, ED_OPT_STRING, "FILE", NULL, S(ag_storage_t, account_key_file),
     "a file holding the account key (shared-key)", 0, 0, 0, NULL},
    {"sas_token_file", 0, ED_OPT_STRING, "FILE", NULL, S(ag_storage_t, sas_token_file),
     "a file holding a SAS token (sas)", 0, 0, 0, NULL},
    {"tenant_id", 0, ED_OPT_STRING, "ID", NULL, S(ag_storage_t, tenant_id),
     "the Entra tenant (client-secret)", 0, 0, 0, NULL},
    {"client_id", 0, ED_OPT_STRING, "ID", NULL, S(ag_storage_t, client_id),
     "the application id (client-secret, user-assigned managed-identity)", 0, 0, 0, NULL},
    {"client_secret_file", 0, ED_OPT_STRING, "FILE", NULL, S(ag_storage_t, client_secret_file),
     "a file holding the client secret (client-secret)", 0, 0, 0, NULL},
    {"federated_token_file", 0, ED_OPT_STRING, "FILE", NULL, S(ag_storage_t, federated_token_file),
     "workload identity's token file (else AZURE_FEDERATED_TOKEN_FILE)", 0, 0, 0, NULL},
    {"endpoint", 0, ED_OPT_STRING, "URL", NULL, S(ag_storage_t, endpoint),
     "the blob endpoint instead of the account's (Azurite)", 0, 0, 0, NULL},
    {"timeout", 0, ED_OPT_DURATION, "DURATION", "30 seconds", S(ag_storage_t, timeout_us),
     "a request that moves no byte for this long fails and is retried (whole seconds)", 0,
     ED_US_PER_SEC, 3600 * ED_US_PER_SEC, NULL},
    {"connect_timeout", 0, ED_OPT_DURATION, "DURATION", "5 seconds",
     S(ag_storage_t, connect_timeout_us), "bound of one connection attempt", 0, 1000,
     600 * ED_US_PER_SEC, NULL},
    {"retries", 0, ED_OPT_INT, "N", "8", S(ag_storage_t, retries),
     "times a request is retried after a transient failure", 0, 0, 100, NULL},
    ED_OPT_END,
};

static const ed_opt_t sink_keys[] = {
    {"type", 0, ED_OPT_ENUM, "TYPE", "delta", S(ag_sink_t, kind), "what the sink writes to", 0, 0,
     0, sink_type_names},
    {"path", 0, ED_OPT_STRING, "URL", NULL, S(ag_sink_t, path),
     "the Delta table: a local path, file:// or abfss:// URL", 0, 0, 0, NULL},
    {"partition_by", 0, ED_OPT_STRING, "COLUMNS", NULL, S(ag_sink_t, partition_by),
     "partition columns of a new table, comma-separated", 0, 0, 0, NULL},
    {"trigger", 0, ED_OPT_STRING, "TRIGGER", "10 seconds", S(ag_sink_t, trigger),
     "a processing-time interval, continuous[, min DURATION], or available-now", 0, 0, 0, NULL},
    {"max_batch_events", 0, ED_OPT_INT, "N", "1000000", S(ag_sink_t, max_batch_events),
     "close a batch early at this many events", 0, 1, INT64_MAX, NULL},
    {"max_batch_bytes", 0, ED_OPT_INT, "N", "8388608", S(ag_sink_t, max_batch_bytes),
     "close a batch early at this many bytes of event bodies", 0, 1, INT64_MAX, NULL},
    {"window", 0, ED_OPT_STRING, "SPEC", NULL, S(ag_sink_t, window),
     "\"[COLUMN,] LENGTH[, SLIDE]\": tumbling or sliding event-time windows", 0, 0, 0, NULL},
    {"group_by", 0, ED_OPT_STRING, "COLUMNS", NULL, S(ag_sink_t, group_by),
     "grouping columns besides the window, comma-separated", 0, 0, 0, NULL},
    {"aggregate", 0, ED_OPT_STRING, "LIST", NULL, S(ag_sink_t, aggregate),
     "\"count(*) AS n, sum(amount) AS total\"", 0, 0, 0, NULL},
    {"watermark", 0, ED_OPT_STRING, "SPEC", NULL, S(ag_sink_t, watermark),
     "\"[COLUMN,] DELAY\": how late an event may be", 0, 0, 0, NULL},
    {"output_mode", 0, ED_OPT_ENUM, "MODE", NULL, S(ag_sink_t, output_mode),
     "which window rows a batch writes (default: append; complete for console windows)", 0, 0, 0,
     output_mode_names},
    {"checkpoint_location", 0, ED_OPT_STRING, "URL", NULL, S(ag_sink_t, checkpoint_location),
     "where batch checkpoints go (default: PATH/_ehdelta/checkpoints)", 0, 0, 0, NULL},
    {"query_id", 0, ED_OPT_STRING, "ID", NULL, S(ag_sink_t, query_id),
     "the txn appId of this sink's commits (default: ehdelta-NAME)", 0, 0, 0, NULL},
    {"merge_schema", 0, ED_OPT_FLAG, NULL, "false", S(ag_sink_t, merge_schema),
     "add new nullable columns to an existing table's schema", 0, 0, 0, NULL},
    {"zstd_level", 0, ED_OPT_INT, "N", "1", S(ag_sink_t, zstd_level),
     "zstd level of the table's Parquet pages", 0, 1, 22, NULL},
    {"num_rows", 0, ED_OPT_INT, "N", "20", S(ag_sink_t, num_rows),
     "console: rows printed per batch", 0, 1, INT64_MAX, NULL},
    {"constraint_violation", 0, ED_OPT_ENUM, "POLICY", "fail", S(ag_sink_t, constraint_violation),
     "a row breaking the table's constraints: refuse the batch, or dead-letter the row", 0, 0, 0,
     violation_names},
    {"compaction", 0, ED_OPT_FLAG, NULL, "false", S(ag_sink_t, compaction),
     "rewrite small files into larger ones in the background (dataChange = false)", 0, 0, 0, NULL},
    {"compaction_files", 0, ED_OPT_INT, "N", "10", S(ag_sink_t, compaction_files),
     "compact a partition once it holds more small files than this", 0, 1, 1000000, NULL},
    {"compaction_target_size", 0, ED_OPT_INT, "BYTES", "0", S(ag_sink_t, compaction_target_size),
     "size of the files compaction builds (0: delta.targetFileSize, else 134217728)", 0, 0,
     INT64_C(1) << 40, NULL},
    {"compaction_interval", 0, ED_OPT_DURATION, "DURATION", "1 minute",
     S(ag_sink_t, compaction_interval_us), "the least time between two looks at the table", 0, 1000,
     7 * ED_US_PER_DAY, NULL},
    ED_OPT_END,
};

static const ed_opt_t dead_letter_keys[] = {
    {"path", 0, ED_OPT_STRING, "URL", NULL, S(ag_dead_letter_t, path),
     "the dead-letter Delta table (raw body, reason, partition, sequence number)", 0, 0, 0, NULL},
    {"checkpoint_location", 0, ED_OPT_STRING, "URL", NULL, S(ag_dead_letter_t, checkpoint_location),
     "where its batch checkpoints go", 0, 0, 0, NULL},
    ED_OPT_END,
};

static const struct {
  const char *name;
  const ed_opt_t *keys;
} sections[] = {{"source", source_keys},
                {"schema", schema_keys},
                {"storage", storage_keys},
                {"sink", sink_keys},
                {"dead_letter", dead_letter_keys}};
#define NSECTIONS (sizeof sections / sizeof sections[0])

const ed_opt_t *ag_conf_section_keys(const char *section) {
  for (size_t i = 0; i < NSECTIONS; i++)
    if (!strcmp(sections[i].name, section))
      return sections[i].keys;
  return NULL;
}

void ag_conf_list_keys(FILE *out) {
  for (size_t i = 0; i < NSECTIONS; i++)
    for (const ed_opt_t *o = sections[i].keys; o->name; o++)
      fprintf(out, "%s.%s\n", sections[i].name, o->name);
}

/* Problems accumulate here; the parse goes on after each. */
typedef struct {
  const char *file;
  ed_buf_t out;
  size_t n;
} probs_t;

static void prob(probs_t *p, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void prob(probs_t *p, int line, const char *fmt, ...) {
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  char head[300];
  snprintf(head, sizeof head, "%s:%d: ", p->file, line);
  (void)ed_buf_append(&p->out, head, strlen(head));
  (void)ed_buf_append(&p->out, msg, strlen(msg));
  (void)ed_buf_append(&p->out, "\n", 1);
  p->n++;
}

char *ag_trim(char *s) {
  while (isspace((unsigned char)*s))
    s++;
  size_t n = strlen(s);
  while (n && isspace((unsigned char)s[n - 1]))
    s[--n] = 0;
  return s;
}

static bool is_name(const char *s) {
  if (!*s)
    return false;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-')
      return false;
  return true;
}

/* Splits "[COLUMN,] D1[, D2]": column NULL when the first part is a duration. */
static bool split_time_spec(const char *spec, size_t maxdur, char **col, int64_t *d, size_t *nd,
                            char *why, size_t whyn) {
  char *copy = strdup(spec), *save = NULL;
  if (!copy) {
    snprintf(why, whyn, "out of memory");
    return false;
  }
  *col = NULL;
  *nd = 0;
  bool ok = true;
  for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    char *t = ag_trim(tok);
    int64_t us;
    if (ed_time_parse_duration(t, &us, NULL) == ED_OK) {
      if (*nd == maxdur || us <= 0) {
        snprintf(why, whyn,
                 us <= 0 ? "'%s' is not a positive duration" : "too many durations at '%s'", t);
        ok = false;
        break;
      }
      d[(*nd)++] = us;
    } else if (!*col && *nd == 0 && is_name(t)) {
      *col = strdup(t);
    } else {
      snprintf(why, whyn, "'%s' is neither a column name nor a duration such as \"5 minutes\"", t);
      ok = false;
      break;
    }
  }
  if (ok && *nd == 0) {
    snprintf(why, whyn, "no duration");
    ok = false;
  }
  if (!ok) {
    free(*col);
    *col = NULL;
  }
  free(copy);
  return ok;
}

/* The line a key was given on, else the section header's. */
static int key_line(const ed_opt_t *keys, const int *lines, const char *key, int header) {
  const ed_opt_t *o = ed_opt_find(keys, key);
  size_t i = o ? (size_t)(o - keys) : 32;
  return i < 32 && lines[i] ? lines[i] : header;
}
#define KL(keys, lines, key, header) key_line(keys, lines, key, header)

/* What follows "continuous" in a trigger: nothing, or ", min DURATION". */
static bool continuous_min(const char *rest, int64_t *min_us) {
  *min_us = 0;
  rest += strspn(rest, " \t");
  if (!*rest)
    return true;
  if (*rest++ != ',')
    return false;
  rest += strspn(rest, " \t");
  if (strncmp(rest, "min ", 4))
    return false;
  return ed_time_parse_duration(rest + 4, min_us, NULL) == ED_OK && *min_us >= 0;
}

static void validate_sink(probs_t *p, ag_sink_t *k, const sm_type_t *schema) {
  int ln = k->line;
  if (k->kind == AG_SINK_DELTA && !k->path)
    prob(p, ln, "[sink %s] a delta sink needs path", k->name);
  if (k->kind == AG_SINK_CONSOLE && k->path)
    prob(p, ln, "[sink %s] a console sink takes no path", k->name);
  if (k->kind == AG_SINK_CONSOLE && k->compaction)
    prob(p, KL(sink_keys, k->key_lines, "compaction", ln),
         "[sink %s] compaction = true: expected a delta sink (a console sink has no files)",
         k->name);
  if (!strcmp(k->trigger, "available-now") || !strcmp(k->trigger, "once")) {
    k->available_now = true;
  } else if (!strncmp(k->trigger, "continuous", 10) && strchr(" \t,", k->trigger[10])) {
    k->continuous = true;
    if (!continuous_min(k->trigger + 10, &k->trigger_us))
      prob(p, KL(sink_keys, k->key_lines, "trigger", ln),
           "[sink %s] trigger '%s': expected continuous or \"continuous, min DURATION\"", k->name,
           k->trigger);
  } else {
    ed_err_t e = {0};
    if (ed_time_parse_duration(k->trigger, &k->trigger_us, &e) || k->trigger_us <= 0)
      prob(p, KL(sink_keys, k->key_lines, "trigger", ln),
           "[sink %s] trigger '%s': expected a duration (\"1 minute\") or available-now", k->name,
           k->trigger);
  }
  char why[400];
  if (k->window) {
    int64_t d[2];
    size_t nd;
    if (!split_time_spec(k->window, 2, &k->window_column, d, &nd, why, sizeof why)) {
      prob(p, KL(sink_keys, k->key_lines, "window", ln), "[sink %s] window '%s': %s", k->name,
           k->window, why);
    } else {
      k->window_us = d[0];
      k->slide_us = nd == 2 ? d[1] : d[0];
      if (k->slide_us > k->window_us)
        prob(p, ln, "[sink %s] window '%s': the slide is longer than the window", k->name,
             k->window);
    }
  }
  if (k->watermark) {
    int64_t d[1];
    size_t nd;
    if (!split_time_spec(k->watermark, 1, &k->watermark_column, d, &nd, why, sizeof why))
      prob(p, KL(sink_keys, k->key_lines, "watermark", ln), "[sink %s] watermark '%s': %s", k->name,
           k->watermark, why);
    else
      k->watermark_us = d[0];
  }
  /* The event-time column: named, else the first TIMESTAMP field of the schema. */
  char **cols[2] = {&k->window_column, &k->watermark_column};
  for (int i = 0; i < 2; i++) {
    if (!(i ? k->watermark : k->window) || *cols[i] || !schema)
      continue;
    for (size_t f = 0; f < schema->nfields; f++)
      if (schema->fields[f].type->kind == SM_TIMESTAMP) {
        *cols[i] = strdup(schema->fields[f].name);
        break;
      }
    if (!*cols[i])
      prob(p, ln, "[sink %s] %s: no column named and the schema has no TIMESTAMP column", k->name,
           i ? "watermark" : "window");
  }
  if ((k->group_by || k->aggregate) && !k->window)
    prob(p, ln, "[sink %s] group_by and aggregate need a window", k->name);
  if (k->window && !k->aggregate)
    prob(p, ln, "[sink %s] a window needs aggregate", k->name);
  if (k->output_mode < 0) /* what --check prints, and run uses */
    k->output_mode = k->window && k->kind == AG_SINK_CONSOLE ? AG_OUT_COMPLETE : AG_OUT_APPEND;
  k->mode = (ag_output_mode_t)k->output_mode;
  if (k->window && k->mode == AG_OUT_APPEND && !k->watermark)
    prob(
        p, ln,
        "[sink %s] append mode over windows needs a watermark (windows are emitted when it passes)",
        k->name);
  if (k->mode == AG_OUT_COMPLETE && k->kind == AG_SINK_DELTA && k->window)
    prob(p, ln, "[sink %s] complete mode is for console sinks (a Delta table is appended to)",
         k->name);
  k->violation_dead_letter = k->constraint_violation == AG_VIOLATION_DEAD_LETTER;
  if (k->violation_dead_letter && (k->window || k->kind != AG_SINK_DELTA))
    prob(p, KL(sink_keys, k->key_lines, "constraint_violation", ln),
         "[sink %s] constraint_violation = dead-letter is for delta sinks of rows (a window's "
         "rows are aggregates of many events)",
         k->name);
  /* A partition's position is the txn "<query id>/<partition>": with a '/'
   * in it, query "q"'s partition txn could be query "q/1"'s batch txn. (The
   * default, ehdelta-NAME, has none: sink names are letters, digits, _ and -.) */
  if (k->query_id && strchr(k->query_id, '/'))
    prob(p, KL(sink_keys, k->key_lines, "query_id", ln),
         "[sink %s] query id '%s': expected no '/' (it separates the query id from the "
         "partition in the per-partition txn appIds)",
         k->name, k->query_id);
  if (!k->query_id) {
    size_t n = strlen(k->name) + 9;
    k->query_id = malloc(n);
    if (k->query_id)
      snprintf(k->query_id, n, "ehdelta-%s", k->name);
  }
}

/* [source] checkpoint_store and its timings. Only the URL's form is checked:
 * a store unreachable now may be reachable when the agent starts.
 * owner.c keeps a proof of ownership until expiry minus a quarter of it, and
 * renews every ownership_renew: a renewal must fit before the proof ends. */
static void validate_sharing(probs_t *p, ag_conf_t *c, const int *lines) {
  const int(*kl)[32] = c->key_lines;
  ag_source_t *s = &c->source;
  ed_err_t e = {0};
  if (s->checkpoint_store) {
    st_az_url_t u = {0};
    if (st_az_parse_url(s->checkpoint_store, c->storage.account, &u, &e))
      prob(p, KL(source_keys, kl[0], "checkpoint_store", lines[0]),
           "[source] checkpoint_store '%s': expected the URL of a Blob container (https://ACCOUNT."
           "blob.core.windows.net/CONTAINER, abfss://, az:// or Azurite's http://HOST:PORT/ACCOUNT/"
           "CONTAINER): %s",
           s->checkpoint_store, e.msg);
    st_az_url_fini(&u);
  }
  if (s->owner_id) {
    bool ok = *s->owner_id && strlen(s->owner_id) < 128;
    for (const char *q = s->owner_id; *q; q++)
      ok &= *q > 0x20 && *q <= 0x7e;
    if (!ok)
      prob(p, KL(source_keys, kl[0], "owner_id", lines[0]),
           "[source] owner_id: expected 1 to 127 printable ASCII characters without spaces (it is "
           "stored as blob metadata)");
  }
  int64_t ex = s->ownership_expiry_us, rn = s->ownership_renew_us;
  if (rn <= 0 || ex <= 0 || rn + ex / 4 >= ex)
    prob(
        p, KL(source_keys, kl[0], "ownership_renew", lines[0]),
        "[source] ownership_renew %lld ms with ownership_expiry %lld ms: expected renew + expiry/4 "
        "(the safety margin) < expiry, so a claim is renewed before its proof runs out",
        (long long)(rn / 1000), (long long)(ex / 1000));
}

ed_code_t ag_conf_set_sharing(ag_conf_t *c, const char *store, const char *owner_id,
                              char **problems, ed_err_t *err) {
  *problems = NULL;
  if (store) {
    free(c->source.checkpoint_store);
    c->source.checkpoint_store = strdup(store);
  }
  if (owner_id) {
    free(c->source.owner_id);
    c->source.owner_id = strdup(owner_id);
  }
  if ((store && !c->source.checkpoint_store) || (owner_id && !c->source.owner_id))
    return ed_err_set(err, ED_E_NOMEM, "out of memory");
  probs_t p = {"(flags)", {0}, 0};
  int lines[5] = {0};
  validate_sharing(&p, c, lines);
  if (!p.n)
    return ED_OK;
  *problems = ed_buf_steal(&p.out);
  return ed_err_set(err, ED_E_CONFIG, "%zu problem%s in the flags", p.n, p.n == 1 ? "" : "s");
}

static void validate(probs_t *p, ag_conf_t *c, const int *lines) {
  const int(*kl)[32] = c->key_lines;
  ed_err_t e = {0};
  ag_source_t *s = &c->source;
  eh_position_t pos;
  if (eh_position_parse(s->starting_position, &pos, &e))
    prob(p, KL(source_keys, kl[0], "starting_position", lines[0]), "[source] starting_position: %s",
         e.msg);
  for (char **q = s->partition_position; q && *q; q++) {
    const char *eq = strchr(*q, '=');
    char *pp = eq ? strdup(ag_trim((char *)eq + 1)) : NULL;
    if (!eq || !pp || eh_position_parse(pp, &pos, &e))
      prob(p, lines[0], "[source] partition_position '%s': expected \"PARTITION = POSITION\"%s%s",
           *q, eq ? ": " : "", eq ? e.msg : "");
    free(pp);
  }
  s->max_drift_us = -1;
  if (strcmp(s->max_drift, "off") &&
      (ed_time_parse_duration(s->max_drift, &s->max_drift_us, &e) || s->max_drift_us <= 0))
    prob(p, KL(source_keys, kl[0], "max_drift", lines[0]),
         "[source] max_drift '%s': expected a duration > 0 (\"1 hour\") or off", s->max_drift);
  if (s->idle_timeout_us <= 0)
    prob(p, KL(source_keys, kl[0], "idle_timeout", lines[0]),
         "[source] idle_timeout: expected a duration > 0 (\"30 seconds\")");
  if (strcmp(s->partitions, "all")) {
    for (const char *q = s->partitions; *q; q++)
      if (!isdigit((unsigned char)*q) && *q != ',' && *q != ' ') {
        prob(p, KL(source_keys, kl[0], "partitions", lines[0]),
             "[source] partitions '%s': expected all or a list such as 0,1,2", s->partitions);
        break;
      }
  }
  validate_sharing(p, c, lines);
  ag_schema_t *sc = &c->schema;
  sm_type_t *schema = NULL;
  if (!sc->columns)
    prob(p, KL(schema_keys, kl[1], "columns", lines[1]),
         "[schema] columns is required (the body's fields in Spark DDL)");
  else if (sm_schema_parse_ddl(sc->columns, &schema, &e))
    prob(p, KL(schema_keys, kl[1], "columns", lines[1]), "[schema] columns: %s", e.msg);
  sm_meta_col_t *meta = NULL;
  size_t nmeta = 0;
  if (sc->metadata && sm_meta_parse(sc->metadata, &meta, &nmeta, &e))
    prob(p, KL(schema_keys, kl[1], "metadata", lines[1]), "[schema] metadata: %s", e.msg);
  sm_meta_cols_free(meta, nmeta);
  for (char **q = sc->derive; q && *q; q++) {
    const char *eq = strchr(*q, '=');
    bool ok = eq && eq[1] && eq[1] != '=';
    if (ok) {
      char *nm = strndup(*q, (size_t)(eq - *q));
      ok = nm && is_name(ag_trim(nm));
      free(nm);
    }
    if (!ok)
      prob(p, lines[1], "[schema] derive '%s': expected \"NAME = EXPRESSION\"", *q);
  }
  ag_storage_t *st = &c->storage;
  if (st->auth == AG_AUTH_SAS && !st->sas_token_file)
    prob(p, KL(storage_keys, kl[2], "auth", lines[2]), "[storage] auth sas needs sas_token_file");
  else if (st->auth == AG_AUTH_CLIENT_SECRET &&
           (!st->tenant_id || !st->client_id || !st->client_secret_file))
    prob(p, KL(storage_keys, kl[2], "auth", lines[2]),
         "[storage] auth client-secret needs tenant_id, client_id and client_secret_file");
  if (c->nsinks == 0)
    prob(p, 0, "no [sink NAME] section: nothing would be written");
  for (size_t i = 0; i < c->nsinks; i++)
    if (c->sinks[i].constraint_violation == AG_VIOLATION_DEAD_LETTER && !c->dead_letter.path)
      prob(p, c->sinks[i].line,
           "[sink %s] constraint_violation = dead-letter needs a [dead_letter] path",
           c->sinks[i].name);
  for (size_t i = 0; i < c->nsinks; i++) {
    validate_sink(p, &c->sinks[i], schema);
    for (size_t j = 0; j < i; j++) {
      if (!strcmp(c->sinks[i].name, c->sinks[j].name))
        prob(p, c->sinks[i].line, "[sink %s] defined twice (first at line %d)", c->sinks[i].name,
             c->sinks[j].line);
      else if (c->sinks[i].path && c->sinks[j].path && !strcmp(c->sinks[i].path, c->sinks[j].path))
        prob(p, c->sinks[i].line, "[sink %s] writes the same table as [sink %s]", c->sinks[i].name,
             c->sinks[j].name);
    }
  }
  sm_type_free(schema);
}

ed_code_t ag_conf_parse(const char *name, const char *text, ag_conf_t *c, char **problems,
                        ed_err_t *err) {
  memset(c, 0, sizeof *c);
  *problems = NULL;
  probs_t p = {name, {0}, 0};
  c->file = strdup(name);
  ed_err_t e = {0};
  /* defaults first, so a key given overrides them */
  (void)ed_opt_apply_defaults(source_keys, &c->source, &e);
  (void)ed_opt_apply_defaults(schema_keys, &c->schema, &e);
  (void)ed_opt_apply_defaults(storage_keys, &c->storage, &e);
  (void)ed_opt_apply_defaults(dead_letter_keys, &c->dead_letter, &e);
  int lines[5] = {0}; /* header lines of the fixed sections */
  const ed_opt_t *keys = NULL;
  void *target = NULL;
  bool seen[32];
  int seen_line[32];
  char *copy = strdup(text ? text : "");
  if (!copy || !c->file) {
    free(copy);
    return ed_err_set(err, ED_E_NOMEM, "out of memory reading '%s'", name);
  }
  int ln = 0;
  size_t cur = 0;
  bool skip = false; /* inside an unknown section: its keys are not reported one by one */
  for (char *line = copy, *next; line; line = next) {
    ln++;
    next = strchr(line, '\n');
    if (next)
      *next++ = 0;
    char *s = ag_trim(line);
    if (!*s || *s == '#' || *s == ';')
      continue;
    if (*s == '[') {
      char *end = strchr(s, ']');
      if (!end || ag_trim(end + 1)[0]) {
        prob(&p, ln, "section header '%s': expected [NAME] or [sink NAME]", s);
        keys = NULL, skip = true;
        continue;
      }
      *end = 0;
      char *hdr = ag_trim(s + 1), *sp = strpbrk(hdr, " \t");
      char *arg = sp ? (*sp = 0, ag_trim(sp + 1)) : NULL;
      memset(seen, 0, sizeof seen);
      skip = false;
      if (!strcmp(hdr, "sink")) {
        if (!arg || !is_name(arg)) {
          prob(&p, ln, "[sink]: expected [sink NAME] (letters, digits, _ and -)");
          keys = NULL, skip = true;
          continue;
        }
        ag_sink_t *ns = realloc(c->sinks, (c->nsinks + 1) * sizeof *ns);
        if (!ns)
          break;
        c->sinks = ns;
        ag_sink_t *k = &c->sinks[c->nsinks++];
        memset(k, 0, sizeof *k);
        (void)ed_opt_apply_defaults(sink_keys, k, &e);
        k->name = strdup(arg);
        k->line = ln;
        keys = sink_keys, target = k;
        continue;
      }
      size_t i;
      for (i = 0; i < NSECTIONS; i++)
        if (!strcmp(sections[i].name, hdr))
          break;
      if (i == NSECTIONS || arg) {
        prob(&p, ln,
             "unknown section [%s%s%s]: expected source, schema, storage, sink NAME or "
             "dead_letter",
             hdr, arg ? " " : "", arg ? arg : "");
        keys = NULL, skip = true;
        continue;
      }
      if (lines[i])
        prob(&p, ln, "[%s] appears twice (first at line %d); keys are merged", hdr, lines[i]);
      else
        lines[i] = ln;
      keys = sections[i].keys;
      cur = i;
      target = i == 0   ? (void *)&c->source
               : i == 1 ? (void *)&c->schema
               : i == 2 ? (void *)&c->storage
                        : (void *)&c->dead_letter;
      continue;
    }
    char *eq = strchr(s, '=');
    if (!eq) {
      prob(&p, ln, "'%s': expected key = value", s);
      continue;
    }
    *eq = 0;
    char *key = ag_trim(s), *val = ag_trim(eq + 1);
    if (skip)
      continue;
    if (!keys) {
      prob(&p, ln, "key '%s' before any [section]", key);
      continue;
    }
    const ed_opt_t *o = ed_opt_find(keys, key);
    if (!o) {
      prob(&p, ln, "unknown key '%s' (see ehdelta.conf(5))", key);
      continue;
    }
    size_t idx = (size_t)(o - keys);
    if (o->type != ED_OPT_STRINGS && idx < 32 && seen[idx]) {
      prob(&p, ln, "key '%s' given twice in this section (first at line %d)", key, seen_line[idx]);
      continue;
    }
    if (idx < 32) {
      seen[idx] = true, seen_line[idx] = ln;
      if (keys == sink_keys)
        ((ag_sink_t *)target)->key_lines[idx] = ln;
      else
        c->key_lines[cur][idx] = ln;
    }
    if (!*val) {
      prob(&p, ln, "key '%s' has no value", key);
      continue;
    }
    if (o->type == ED_OPT_STRING) /* replace the default */
      free(*(char **)((char *)target + o->offset)), *(char **)((char *)target + o->offset) = NULL;
    char label[300];
    if (keys == sink_keys)
      snprintf(label, sizeof label, "[sink %s] %s", ((ag_sink_t *)target)->name, o->name);
    else
      snprintf(label, sizeof label, "[%s] %s", sections[cur].name, o->name);
    if (ed_opt_set_as(o, target, val, label, &e))
      prob(&p, ln, "%s", e.msg);
  }
  free(copy);
  validate(&p, c, lines);
  if (p.n) {
    (void)ed_buf_append(&p.out, "", 1);
    *problems = (char *)p.out.data;
    return ed_err_set(err, ED_E_CONFIG, "%s: %zu problem%s", name, p.n, p.n == 1 ? "" : "s");
  }
  ed_buf_fini(&p.out);
  return ED_OK;
}

ed_code_t ag_conf_load(const char *path, ag_conf_t *conf, char **problems, ed_err_t *err) {
  memset(conf, 0, sizeof *conf);
  *problems = NULL;
  FILE *f = fopen(path, "rb");
  if (!f)
    return ed_err_set(err, errno == ENOENT ? ED_E_NOT_FOUND : ED_E_IO,
                      "configuration '%s': cannot open: %s", path, strerror(errno));
  ed_buf_t b = {0};
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
    if (ed_buf_append(&b, chunk, n)) {
      fclose(f);
      ed_buf_fini(&b);
      return ed_err_set(err, ED_E_NOMEM, "configuration '%s': out of memory", path);
    }
  fclose(f);
  (void)ed_buf_append(&b, "", 1);
  ed_code_t rc = ag_conf_parse(path, (const char *)b.data, conf, problems, err);
  ed_buf_fini(&b);
  return rc;
}

void ag_conf_free(ag_conf_t *c) {
  if (!c)
    return;
  ed_opt_free(source_keys, &c->source);
  ed_opt_free(schema_keys, &c->schema);
  ed_opt_free(storage_keys, &c->storage);
  ed_opt_free(dead_letter_keys, &c->dead_letter);
  for (size_t i = 0; i < c->nsinks; i++) {
    ag_sink_t *k = &c->sinks[i];
    ed_opt_free(sink_keys, k);
    free(k->name);
    free(k->window_column);
    free(k->watermark_column);
  }
  free(c->sinks);
  free(c->file);
  memset(c, 0, sizeof *c);
}

static void print_section(FILE *out, const ed_opt_t *keys, const void *src) {
  for (const ed_opt_t *o = keys; o->name; o++) {
    const char *base = (const char *)src + o->offset;
    if (o->type == ED_OPT_STRING && *(char *const *)base)
      fprintf(out, "%s = %s\n", o->name, *(char *const *)base);
    else if (o->type == ED_OPT_FLAG)
      fprintf(out, "%s = %s\n", o->name, *(const bool *)base ? "true" : "false");
    else if (o->type == ED_OPT_INT)
      fprintf(out, "%s = %lld\n", o->name, (long long)*(const int64_t *)base);
    else if (o->type == ED_OPT_ENUM && ed_opt_enum_name(o, *(const int *)base))
      fprintf(out, "%s = %s\n", o->name, ed_opt_enum_name(o, *(const int *)base));
    else if (o->type == ED_OPT_STRINGS)
      for (char *const *q = *(char **const *)base; q && *q; q++)
        fprintf(out, "%s = %s\n", o->name, *q);
  }
}

void ag_conf_print(FILE *out, const ag_conf_t *c) {
  fprintf(out, "[source]\n");
  print_section(out, source_keys, &c->source);
  fprintf(out, "\n[schema]\n");
  print_section(out, schema_keys, &c->schema);
  fprintf(out, "\n[storage]\n");
  print_section(out, storage_keys, &c->storage);
  for (size_t i = 0; i < c->nsinks; i++) {
    fprintf(out, "\n[sink %s]\n", c->sinks[i].name);
    print_section(out, sink_keys, &c->sinks[i]);
  }
  if (c->dead_letter.path) {
    fprintf(out, "\n[dead_letter]\n");
    print_section(out, dead_letter_keys, &c->dead_letter);
  }
}
