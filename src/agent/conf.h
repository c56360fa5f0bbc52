/* conf: the agent's configuration file, ehdelta.conf(5). INI-like:
 * `[source]`, `[schema]`, `[storage]`, `[dead_letter]` and any number of
 * `[sink NAME]` sections of `key = value` lines, `#` comments. One ed_opt_t
 * table per section drives parsing, defaults and the man-page check. Every
 * problem is collected (file:line: message) so a user fixes them in one pass.
 * Owns the parsed strings; ag_conf_free releases them. */
#ifndef ED_AGENT_CONF_H
#define ED_AGENT_CONF_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"
#include "common/opt.h"

/* The values of the keys with a fixed set of them, in the order of their
 * names in conf.c's rows (the field holds the index). */
typedef enum { AG_GAP_FAIL, AG_GAP_SKIP_TO_EARLIEST } ag_gap_policy_t;
typedef enum {
  AG_AUTH_SHARED_KEY,
  AG_AUTH_SAS,
  AG_AUTH_CLIENT_SECRET,
  AG_AUTH_MANAGED_ID,
  AG_AUTH_AZURE_CLI,
  AG_AUTH_NONE,
  AG_AUTH_WORKLOAD_ID,
  AG_AUTH_DEFAULT
} ag_auth_t;

typedef struct ag_source {
  char *namespace_; /* host, e.g. NS.servicebus.windows.net; else from the connection string */
  char *hub;
  char *consumer_group;
  char *connection_string_file; /* else EVENTHUB_CONNECTION_STRING */
  char *partitions;             /* "all" or "0,1,5" */
  char *starting_position;      /* eh_position_parse's forms */
  char **partition_position;    /* "ID = POSITION", repeatable: per-partition overrides */
  int retention_gap_policy;     /* ag_gap_policy_t */
  bool tls;
  int64_t prefetch;
  int64_t idle_timeout_us;     /* caught up and quiet this long: no longer holds the watermark */
  char *max_drift;             /* DURATION | off: watermark alignment bound */
  int64_t max_drift_us;        /* resolved; -1: off */
  char *from_spark_checkpoint; /* a Spark query's checkpoint folder to take over from */
  bool from_spark_force;       /* take over even over ehdelta's own positions */
  int auth;                    /* eh_auth_names: sas, or a Microsoft Entra ID credential */
  char *tenant_id, *client_id, *client_secret_file, *federated_token_file; /* Entra ID */
  /* several agents on one hub (ehdelta-run(1), SEVERAL AGENTS): the Blob
   * container of the SDKs' ownership and checkpoint records, with [storage]'s
   * credentials; NULL: this agent reads every partition alone */
  char *checkpoint_store;
  char *owner_id;              /* NULL: a fresh uuid per process */
  int64_t ownership_expiry_us; /* a claim not renewed this long may be taken */
  int64_t ownership_renew_us;  /* how often claims are renewed and balanced */
  int load_balancing;          /* ag_own_mode_t: AG_OWN_BALANCED or AG_OWN_GREEDY */
} ag_source_t;

typedef struct ag_schema {
  char *columns;  /* Spark DDL */
  char *metadata; /* "enqueued_time AS ingestion_time, offset, ..." */
  char **derive;  /* "name = expr", repeatable, in order */
  char *filter;
  int bad_event_mode;     /* sm_bad_mode_t, in its order */
  int64_t max_event_size; /* bytes of a body, and of any one string in it */
} ag_schema_t;

typedef struct ag_storage {
  char *account;
  int auth; /* ag_auth_t; -1: not given (st_open chooses from what is set) */
  char *account_key_file;
  char *sas_token_file;
  char *tenant_id;
  char *client_id;
  char *client_secret_file;
  char *federated_token_file;
  char *endpoint;             /* e.g. Azurite's http://127.0.0.1:10000/devstoreaccount1 */
  int64_t timeout_us;         /* a request that moves no byte this long fails, is retried */
  int64_t connect_timeout_us; /* bound of one connect */
  int64_t retries;            /* transient failures retried per request */
} ag_storage_t;

typedef enum { AG_SINK_DELTA, AG_SINK_CONSOLE } ag_sink_type_t;
typedef enum { AG_OUT_APPEND, AG_OUT_UPDATE, AG_OUT_COMPLETE } ag_output_mode_t;
typedef enum { AG_VIOLATION_FAIL, AG_VIOLATION_DEAD_LETTER } ag_violation_t;

typedef struct ag_sink {
  char *name; /* from the section header */
  int kind;   /* ag_sink_type_t: type = delta | console */
  char *path;
  char *partition_by;
  char *trigger; /* DURATION | continuous[, min DURATION] | available-now | once */
  int64_t max_batch_events;
  int64_t max_batch_bytes;
  char *window;    /* "[COLUMN,] LENGTH[, SLIDE]" */
  char *group_by;  /* "category, location" */
  char *aggregate; /* "count(*) AS n, sum(amount) AS total" */
  char *watermark; /* "[COLUMN,] DELAY" */
  int output_mode; /* ag_output_mode_t; -1 until validation resolves the default */
  char *checkpoint_location;
  char *query_id; /* the txn appId; default "ehdelta-<name>" */
  bool merge_schema;
  int64_t zstd_level;             /* of the table's Parquet pages */
  int64_t num_rows;               /* console: rows printed per batch */
  int constraint_violation;       /* ag_violation_t: a row breaking the table's rules */
  bool compaction;                /* compact small files in the background */
  int64_t compaction_files;       /* a partition with more small files than this is compacted */
  int64_t compaction_target_size; /* bytes of the files compaction builds; 0: the table's */
  int64_t compaction_interval_us; /* the least time between two looks at the table */
  /* resolved by validation */
  ag_output_mode_t mode;
  bool available_now;
  bool violation_dead_letter; /* constraint_violation = dead-letter */
  bool continuous; /* trigger = continuous: trigger_us is its minimum interval (may be 0) */
  int64_t trigger_us;
  char *window_column; /* NULL when no window */
  int64_t window_us, slide_us;
  char *watermark_column;
  int64_t watermark_us;
  int line;          /* of the header, for messages */
  int key_lines[32]; /* of each key given, by table row; 0 = not given */
} ag_sink_t;

typedef struct ag_dead_letter {
  char *path; /* a Delta table; NULL: bad events are counted and dropped */
  char *checkpoint_location;
} ag_dead_letter_t;

typedef struct ag_conf {
  char *file;
  ag_source_t source;
  ag_schema_t schema;
  ag_storage_t storage;
  ag_dead_letter_t dead_letter;
  ag_sink_t *sinks;
  size_t nsinks;
  int key_lines[5][32]; /* [source, schema, storage, sink (unused), dead_letter][row] */
} ag_conf_t;

/* The key tables, one per section ("source", "schema", "storage", "sink",
 * "dead_letter"), for the man-page check. NULL for an unknown section. */
const ed_opt_t *ag_conf_section_keys(const char *section);
/* Prints "section.key" for every key, one a line. */
void ag_conf_list_keys(FILE *out);

/* Parses and validates text (the contents of file `name`). Every problem is
 * appended to *problems as "name:line: message\n" (caller frees with free);
 * returns ED_E_CONFIG (with err naming the count) when there was any. conf
 * is filled either way; caller frees with ag_conf_free. */
ed_code_t ag_conf_parse(const char *name, const char *text, ag_conf_t *conf, char **problems,
                        ed_err_t *err);
/* Reads path and parses it as above. */
ed_code_t ag_conf_load(const char *path, ag_conf_t *conf, char **problems, ed_err_t *err);

/* --checkpoint-store and --owner-id over what the file says (NULL: keep),
 * validated as the file's keys are (problems and the result as for
 * ag_conf_parse). */
ed_code_t ag_conf_set_sharing(ag_conf_t *conf, const char *checkpoint_store, const char *owner_id,
                              char **problems, ed_err_t *err);

/* s without its leading and trailing white space: trailing bytes are
 * overwritten with NULs in place, the return points into s. */
char *ag_trim(char *s);
void ag_conf_free(ag_conf_t *conf);
/* Writes the resolved configuration back in the file's syntax (defaults
 * filled in), secrets excluded (only file names are kept anyway). */
void ag_conf_print(FILE *out, const ag_conf_t *conf);

#endif
