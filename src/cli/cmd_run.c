/* ehdelta run: the agent. Reads an ehdelta.conf(5), reports every problem in
 * it at once, and runs it (or, with --check, prints it as resolved). Signals:
 * the first SIGINT/SIGTERM finishes the open batches, commits them and
 * returns; a second one exits at once (still exactly once: what was not
 * committed is read again on the next start). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "agent/conf.h"
#include "agent/metrics.h"
#include "agent/run.h"
#include "cli/cli.h"
#include "common/buf.h"
#include "common/log.h"
#include "eventhubs/client.h"

struct run_cfg {
  char *config;
  /* the simple case without a file: one source, one raw table */
  char *cs_file, *hub, *consumer_group, *start, *schema, *metadata, *filter, *table, *partition_by,
      *trigger, *dead_letter;
  char *auth, *namespace_, *tenant_id, *client_id, *client_secret_file, *federated_token_file;
  char **derive;
  bool check;
  bool list_keys;
  bool available_now;
  char *until;
  char *progress;
  char *metrics_listen;
  char *metrics_token_file;
  char *ca_file;
  int log_level; /* ed_log_level_t */
  bool log_json;
  int64_t timeout;
  int64_t lag_poll;
  char *from_spark;
  bool from_spark_force;
  char *checkpoint_store, *owner_id;
};

const ed_opt_t cmd_run_options[] = {
    {"config", 'c', ED_OPT_STRING, "FILE", NULL, offsetof(struct run_cfg, config),
     "the configuration file, see ehdelta.conf(5)", 0, 0, 0, NULL},
    {"connection-string-file", 0, ED_OPT_STRING, "FILE", NULL, offsetof(struct run_cfg, cs_file),
     "without --config: file whose first line is the connection string (else "
     "$EVENTHUB_CONNECTION_STRING)",
     0, 0, 0, NULL},
    {"hub", 0, ED_OPT_STRING, "NAME", NULL, offsetof(struct run_cfg, hub),
     "without --config: the event hub (else the connection string's EntityPath)", 0, 0, 0, NULL},
    {"auth", 0, ED_OPT_STRING, "METHOD", NULL, offsetof(struct run_cfg, auth),
     "without --config: sas (default), client-secret, workload-identity, managed-identity, "
     "azure-cli or default",
     0, 0, 0, NULL},
    {"namespace", 0, ED_OPT_STRING, "HOST", NULL, offsetof(struct run_cfg, namespace_),
     "without --config: the namespace host, instead of a connection string (Entra ID)", 0, 0, 0,
     NULL},
    {"tenant-id", 0, ED_OPT_STRING, "ID", NULL, offsetof(struct run_cfg, tenant_id),
     "without --config: the Entra tenant (else $AZURE_TENANT_ID)", 0, 0, 0, NULL},
    {"client-id", 0, ED_OPT_STRING, "ID", NULL, offsetof(struct run_cfg, client_id),
     "without --config: the application or identity id (else $AZURE_CLIENT_ID)", 0, 0, 0, NULL},
    {"client-secret-file", 0, ED_OPT_STRING, "FILE", NULL,
     offsetof(struct run_cfg, client_secret_file),
     "without --config: file whose first line is the client secret (else $AZURE_CLIENT_SECRET)", 0,
     0, 0, NULL},
    {"federated-token-file", 0, ED_OPT_STRING, "FILE", NULL,
     offsetof(struct run_cfg, federated_token_file),
     "without --config: workload identity's token file (else $AZURE_FEDERATED_TOKEN_FILE)", 0, 0, 0,
     NULL},
    {"consumer-group", 'g', ED_OPT_STRING, "NAME", NULL, offsetof(struct run_cfg, consumer_group),
     "without --config: the consumer group (default: $Default)", 0, 0, 0, NULL},
    {"from", 0, ED_OPT_STRING, "POSITION", NULL, offsetof(struct run_cfg, start),
     "without --config: where partitions without a checkpoint start (default: earliest)", 0, 0, 0,
     NULL},
    {"schema", 's', ED_OPT_STRING, "DDL", NULL, offsetof(struct run_cfg, schema),
     "without --config: the events' fields in Spark DDL", 0, 0, 0, NULL},
    {"metadata", 0, ED_OPT_STRING, "LIST", NULL, offsetof(struct run_cfg, metadata),
     "without --config: event metadata columns (\"enqueued_time AS ingestion_time, offset\")", 0, 0,
     0, NULL},
    {"derive", 0, ED_OPT_STRINGS, "NAME=EXPR", NULL, offsetof(struct run_cfg, derive),
     "without --config: a derived column (repeatable, in order)", 0, 0, 0, NULL},
    {"filter", 0, ED_OPT_STRING, "EXPR", NULL, offsetof(struct run_cfg, filter),
     "without --config: keep only rows where EXPR is true", 0, 0, 0, NULL},
    {"table", 't', ED_OPT_STRING, "URL", NULL, offsetof(struct run_cfg, table),
     "without --config: the Delta table every row is appended to", 0, 0, 0, NULL},
    {"partition-by", 0, ED_OPT_STRING, "COLUMNS", NULL, offsetof(struct run_cfg, partition_by),
     "without --config: partition columns of a new table", 0, 0, 0, NULL},
    {"trigger", 0, ED_OPT_STRING, "TRIGGER", NULL, offsetof(struct run_cfg, trigger),
     "without --config: an interval or available-now (default: 10 seconds)", 0, 0, 0, NULL},
    {"dead-letter", 0, ED_OPT_STRING, "URL", NULL, offsetof(struct run_cfg, dead_letter),
     "without --config: the Delta table of events that do not decode", 0, 0, 0, NULL},
    {"check", 0, ED_OPT_FLAG, NULL, NULL, offsetof(struct run_cfg, check),
     "validate the configuration, print it with defaults filled in, and exit", 0, 0, 0, NULL},
    {"from-spark-checkpoint", 0, ED_OPT_STRING, "URL", NULL, offsetof(struct run_cfg, from_spark),
     "take over from a stopped Spark query: its checkpoint folder (overrides [source] "
     "from_spark_checkpoint)",
     0, 0, 0, NULL},
    {"from-spark-force", 0, ED_OPT_FLAG, NULL, NULL, offsetof(struct run_cfg, from_spark_force),
     "take over from Spark even over ehdelta's own positions", 0, 0, 0, NULL},
    {"checkpoint-store", 0, ED_OPT_STRING, "URL", NULL, offsetof(struct run_cfg, checkpoint_store),
     "share the hub's partitions with other agents through this Blob container (overrides [source] "
     "checkpoint_store)",
     0, 0, 0, NULL},
    {"owner-id", 0, ED_OPT_STRING, "ID", NULL, offsetof(struct run_cfg, owner_id),
     "this agent's owner id in the checkpoint store (overrides [source] owner_id)", 0, 0, 0, NULL},
    {"available-now", 0, ED_OPT_FLAG, NULL, NULL, offsetof(struct run_cfg, available_now),
     "run every sink as if trigger = available-now: take what the hub holds, commit, exit", 0, 0, 0,
     NULL},
    {"until", 0, ED_OPT_STRING, "END", NULL, offsetof(struct run_cfg, until),
     "read up to an enqueued time (ISO-8601) or ID:SEQ,... per partition, commit, exit", 0, 0, 0,
     NULL},
    {"progress", 0, ED_OPT_STRING, "FILE", NULL, offsetof(struct run_cfg, progress),
     "append one JSON progress line per batch per sink to FILE (- for standard error)", 0, 0, 0,
     NULL},
    {"metrics-listen", 0, ED_OPT_STRING, "ADDR", NULL, offsetof(struct run_cfg, metrics_listen),
     "serve the status page (/), /metrics (Prometheus), /status and /history (JSON) on HOST:PORT",
     0, 0, 0, NULL},
    {"metrics-token-file", 0, ED_OPT_STRING, "FILE", NULL,
     offsetof(struct run_cfg, metrics_token_file),
     "require the token on FILE's first line on every --metrics-listen request", 0, 0, 0, NULL},
    {"ca-file", 0, ED_OPT_STRING, "FILE", NULL, offsetof(struct run_cfg, ca_file),
     "PEM file of extra CA certificates to trust for the hub's TLS", 0, 0, 0, NULL},
    {"timeout", 0, ED_OPT_DURATION, "DURATION", "60s", offsetof(struct run_cfg, timeout),
     "bound on connecting to the hub, attaching and each management call", 0, 1, INT64_MAX, NULL},
    {"log-level", 0, ED_OPT_ENUM, "LEVEL", "info", offsetof(struct run_cfg, log_level),
     "what is logged, to standard error", 0, 0, 0, ed_log_level_names},
    {"log-json", 0, ED_OPT_FLAG, NULL, NULL, offsetof(struct run_cfg, log_json),
     "write logs as JSON lines", 0, 0, 0, NULL},
    {"lag-poll-interval", 0, ED_OPT_DURATION, "DURATION", "5s", offsetof(struct run_cfg, lag_poll),
     "how often the hub's last sequence numbers are read for the lag metric (tests)", ED_OPT_HIDDEN,
     1000, INT64_MAX, NULL},
    {"list-conf-keys", 0, ED_OPT_FLAG, NULL, NULL, offsetof(struct run_cfg, list_keys),
     "print every configuration key as section.key (for the man-page check)", ED_OPT_HIDDEN, 0, 0,
     NULL},
    ED_OPT_END,
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
  (void)sig;
  if (stop_requested) {
    static const char msg[] = "ehdelta run: second signal, exiting now\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(CLI_EXIT_INTERRUPTED);
  }
  stop_requested = 1;
}

static ed_code_t read_opt_secret(const char *path, const char *what, char **out, ed_err_t *err) {
  *out = NULL;
  return path ? cli_read_secret(path, NULL, what, out, err) : ED_OK;
}

/* st_opts_t.on_retry: storage retries by cause, from whichever thread
 * uses the store (the registry is thread-safe). */
static void count_storage_retry(void *metrics, const char *reason) {
  ag_metrics_add(metrics, AG_M_STORAGE_RETRIES, reason, 1);
}

static int run(struct run_cfg *cfg, const ag_conf_t *conf) {
  ed_err_t err = {0};
  ed_log_setup((ed_log_level_t)cfg->log_level, cfg->log_json, NULL);
  char *cs = NULL, *key = NULL, *sas = NULL, *secret = NULL;
  const ag_source_t *src = &conf->source;
  bool entra = src->auth != EH_AUTH_SAS;
  ed_code_t rc = ED_OK;
  if (entra && src->namespace_) {
    /* Entra ID needs only the endpoint; a key-less connection string says it */
    ed_buf_t b = ED_BUF_INIT;
    const char *h = src->namespace_;
    if (!strncasecmp(h, "sb://", 5))
      h += 5;
    rc = ed_buf_printf(&b, "Endpoint=sb://%s", h);
    cs = ed_buf_steal(&b);
  } else if (!src->connection_string_file && !getenv("EVENTHUB_CONNECTION_STRING")) {
    ed_err_set(&err, ED_E_INVALID,
               entra ? "no namespace: set [source] namespace (or --namespace), "
                       "connection_string_file or EVENTHUB_CONNECTION_STRING"
                     : "no connection string: set [source] connection_string_file (or "
                       "--connection-string-file) or "
                       "EVENTHUB_CONNECTION_STRING");
    return cli_fail("run", &err);
  } else {
    rc = cli_read_secret(src->connection_string_file, "EVENTHUB_CONNECTION_STRING",
                         "connection string", &cs, &err);
  }
  if (!rc && entra)
    rc = read_opt_secret(src->client_secret_file, "client secret", &secret, &err);
  au_cred_opts_t entra_opts = {.kind = (au_kind_t)(src->auth - 1),
                               .scope = AU_SCOPE_EVENTHUBS,
                               .tenant = src->tenant_id,
                               .client_id = src->client_id,
                               .client_secret = secret,
                               .federated_token_file = src->federated_token_file,
                               .ca_file = cfg->ca_file};
  rc = rc ? rc : read_opt_secret(conf->storage.account_key_file, "account key", &key, &err);
  rc = rc ? rc : read_opt_secret(conf->storage.sas_token_file, "SAS token", &sas, &err);
  char *st_secret = NULL;
  rc = rc ? rc
          : read_opt_secret(conf->storage.client_secret_file, "client secret", &st_secret, &err);
  FILE *progress = NULL;
  if (!rc && cfg->progress) {
    progress = strcmp(cfg->progress, "-") ? fopen(cfg->progress, "a") : stderr;
    if (!progress)
      rc = ed_err_set(&err, ED_E_IO, "--progress '%s': cannot open for appending", cfg->progress);
  }
  ag_metrics_t *metrics = NULL;
  char id[64];
  snprintf(id, sizeof id, "ehdelta-run-%d", (int)getpid());
  char *token = NULL;
  if (!rc && cfg->metrics_token_file && !cfg->metrics_listen)
    rc = ed_err_set(&err, ED_E_CONFIG,
                    "--metrics-token-file needs --metrics-listen (the token guards that server)");
  rc = rc || !cfg->metrics_token_file
           ? rc
           : ag_metrics_read_token(cfg->metrics_token_file, &token, &err);
  rc = rc ? rc : ag_metrics_new(cfg->metrics_listen, id, token, &metrics, &err);
  cli_secret_free(token);
  if (!rc && cfg->metrics_listen) {
    ED_LOG_INFO("metrics", "listening on %s%s", ag_metrics_address(metrics),
                cfg->metrics_token_file ? " token=required" : "");
    /* the page's "last errors": every warning and error logged from here on */
    ed_log_set_tap(ag_metrics_note, metrics);
  }
  int status;
  if (rc) {
    status = cli_fail("run", &err);
  } else {
    st_opts_t so = {0};
    so.account = conf->storage.account;
    so.account_key = key;
    so.sas = sas;
    so.tenant = conf->storage.tenant_id;
    so.client_id = conf->storage.client_id;
    so.client_secret = st_secret;
    so.federated_token_file = conf->storage.federated_token_file;
    so.create_container = true;
    so.timeout_us = conf->storage.timeout_us;
    so.connect_timeout_us = conf->storage.connect_timeout_us;
    so.max_retries = conf->storage.retries > 0 ? (int)conf->storage.retries : -1;
    so.on_retry = count_storage_retry;
    so.on_retry_ctx = metrics;
    static const st_auth_t methods[] = {
        [AG_AUTH_SHARED_KEY] = ST_AUTH_SHARED_KEY,       [AG_AUTH_SAS] = ST_AUTH_SAS,
        [AG_AUTH_CLIENT_SECRET] = ST_AUTH_CLIENT_SECRET, [AG_AUTH_MANAGED_ID] = ST_AUTH_MANAGED_ID,
        [AG_AUTH_AZURE_CLI] = ST_AUTH_AZURE_CLI,         [AG_AUTH_NONE] = ST_AUTH_NONE,
        [AG_AUTH_WORKLOAD_ID] = ST_AUTH_WORKLOAD_ID,     [AG_AUTH_DEFAULT] = ST_AUTH_DEFAULT};
    if (conf->storage.auth >= 0)
      so.auth = methods[conf->storage.auth];
    cli_on_stop_signals(on_signal);
    ag_run_opts_t o = {.connection_string = cs,
                       .entra = entra ? &entra_opts : NULL,
                       .ca_file = cfg->ca_file,
                       .store = &so,
                       .stop = &stop_requested,
                       .available_now = cfg->available_now,
                       .until = cfg->until,
                       .progress = progress,
                       .console = stdout,
                       .metrics = metrics,
                       .op_timeout_us = cfg->timeout,
                       .lag_poll_us = cfg->lag_poll};
    rc = ag_run(conf, &o, &err);
    status = rc ? cli_fail("run", &err) : CLI_EXIT_OK;
  }
  ed_log_set_tap(NULL, NULL);
  ag_metrics_free(metrics);
  if (progress && progress != stderr)
    fclose(progress);
  cli_secret_free(cs);
  cli_secret_free(key);
  cli_secret_free(sas);
  cli_secret_free(secret);
  cli_secret_free(st_secret);
  return status;
}

/* The flags of the simple case, written as the configuration file they
 * stand for, so that one parser validates both (caller frees). A value with a
 * newline could smuggle in a section: refused. */
static char *flags_conf(const struct run_cfg *c, ed_err_t *err) {
  ed_buf_t b = ED_BUF_INIT;
  const char *vals[] = {c->cs_file,
                        c->hub,
                        c->consumer_group,
                        c->start,
                        c->schema,
                        c->metadata,
                        c->filter,
                        c->table,
                        c->partition_by,
                        c->trigger,
                        c->dead_letter,
                        c->auth,
                        c->namespace_,
                        c->tenant_id,
                        c->client_id,
                        c->client_secret_file,
                        c->federated_token_file};
  for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
    if (vals[i] && strpbrk(vals[i], "\r\n")) {
      ed_err_set(err, ED_E_INVALID, "a flag's value has a line break: expected one line");
      return NULL;
    }
  for (size_t i = 0; c->derive && c->derive[i]; i++)
    if (strpbrk(c->derive[i], "\r\n")) {
      ed_err_set(err, ED_E_INVALID, "--derive '%s': expected one line", c->derive[i]);
      return NULL;
    }
#define KV(k, v)                                                                                   \
  if (v)                                                                                           \
  ed_buf_printf(&b, "%s = %s\n", k, v)
  ed_buf_puts(&b, "[source]\n");
  KV("connection_string_file", c->cs_file);
  KV("hub", c->hub);
  KV("consumer_group", c->consumer_group);
  KV("starting_position", c->start);
  KV("auth", c->auth);
  KV("namespace", c->namespace_);
  KV("tenant_id", c->tenant_id);
  KV("client_id", c->client_id);
  KV("client_secret_file", c->client_secret_file);
  KV("federated_token_file", c->federated_token_file);
  ed_buf_puts(&b, "[schema]\n");
  KV("columns", c->schema);
  KV("metadata", c->metadata);
  for (size_t i = 0; c->derive && c->derive[i]; i++)
    ed_buf_printf(&b, "derive = %s\n", c->derive[i]);
  KV("filter", c->filter);
  ed_buf_puts(&b, "[sink raw]\n");
  KV("path", c->table);
  KV("partition_by", c->partition_by);
  KV("trigger", c->trigger);
  if (c->dead_letter) {
    ed_buf_puts(&b, "[dead_letter]\n");
    KV("path", c->dead_letter);
  }
#undef KV
  return b.data;
}

static bool any_simple_flag(const struct run_cfg *c) {
  return c->cs_file || c->hub || c->auth || c->namespace_ || c->tenant_id || c->client_id ||
         c->client_secret_file || c->federated_token_file || c->consumer_group || c->start ||
         c->schema || c->metadata || c->filter || c->table || c->partition_by || c->trigger ||
         c->dead_letter || c->derive;
}

int cmd_run(int argc, char **argv) {
  struct run_cfg cfg = {0};
  int nop = 0, rc;
  if ((rc = cli_parse("run",
                      "ehdelta run --config FILE [--check] [--available-now]\n"
                      "       ehdelta run --schema DDL --table URL [--trigger T] [...]",
                      "Run the agent: event hub to Delta tables, exactly once.", cmd_run_options,
                      &cfg, argc, argv, &nop)) >= 0)
    return rc;
  if (cfg.list_keys) {
    ag_conf_list_keys(stdout);
    ed_opt_free(cmd_run_options, &cfg);
    return CLI_EXIT_OK;
  }
  bool simple = any_simple_flag(&cfg);
  if (nop != 0 || (!cfg.config && !simple) || (cfg.config && simple)) {
    fprintf(stderr, "ehdelta run: expected --config FILE, or --schema DDL and --table URL "
                    "(the simple case), and no operands\n");
    ed_opt_free(cmd_run_options, &cfg);
    return CLI_EXIT_USAGE;
  }
  ag_conf_t conf;
  char *problems = NULL;
  ed_err_t err = {0};
  ed_code_t code;
  if (simple) {
    char *text = flags_conf(&cfg, &err);
    code = text ? ag_conf_parse("(flags)", text, &conf, &problems, &err) : err.code;
    if (!text)
      memset(&conf, 0, sizeof conf);
    free(text);
  } else {
    code = ag_conf_load(cfg.config, &conf, &problems, &err);
  }
  if (problems)
    fputs(problems, stderr);
  if (!code && cfg.from_spark) {
    free(conf.source.from_spark_checkpoint);
    if (!(conf.source.from_spark_checkpoint = strdup(cfg.from_spark)))
      code = ed_err_set(&err, ED_E_NOMEM, "out of memory");
  }
  if (!code && cfg.from_spark_force)
    conf.source.from_spark_force = true;
  if (!code && (cfg.checkpoint_store || cfg.owner_id)) {
    free(problems);
    code = ag_conf_set_sharing(&conf, cfg.checkpoint_store, cfg.owner_id, &problems, &err);
    if (problems)
      fputs(problems, stderr);
  }
  if (code)
    rc = cli_fail("run", &err);
  else if (cfg.check) {
    /* the plan run builds before it connects, so that what passes here
     * is refused later only by the hub or the storage */
    code = ag_run_check(&conf, cfg.available_now, &err);
    if (code) {
      rc = cli_fail("run", &err);
    } else {
      ag_conf_print(stdout, &conf);
      rc = CLI_EXIT_OK;
    }
  } else {
    rc = run(&cfg, &conf);
  }
  free(problems);
  ag_conf_free(&conf);
  ed_opt_free(cmd_run_options, &cfg);
  return rc;
}
