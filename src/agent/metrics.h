/* metrics: the agent's counters and the HTTP endpoint that serves them
 * (`ehdelta run --metrics-listen ADDR`): GET /metrics in the Prometheus text
 * format (version 0.0.4), GET /status a JSON page with the agent's identity and
 * the last progress line of every sink (the shape ehdelta-run(1) documents under METRICS),
 * GET /history the bounded sample rings behind the charts, GET / the status
 * page (agent/page.h) and GET /healthz. Owns: the registry (counters, gauges,
 * one latency histogram per sink), the last progress JSON per sink, the
 * history rings (one sample a second, one record per batch), the last
 * warnings and errors, and the server thread (plain
 * sockets, loopback or any address the user names; one request per
 * connection, bounded reads, never blocks the pipeline: updates take one
 * short mutex).
 * Thread-safe: the pipeline, flush and network threads update it at once. */
#ifndef ED_AGENT_METRICS_H
#define ED_AGENT_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef struct ag_metrics ag_metrics_t;

/* Counters (monotonic) and gauges, each with one label whose name the table
 * gives ("partition", "sink" or "reason"; "" for none). The Prometheus
 * names are "ehdelta_" + the second column. */
#define AG_METRICS(X)                                                                              \
  X(EVENTS_RECEIVED, "events_received_total", counter, "partition", "events taken from the hub")   \
  X(BYTES_RECEIVED, "bytes_received_total", counter, "partition", "event body bytes taken")        \
  X(DEAD_LETTERS, "dead_letters_total", counter, "", "events that could not be decoded")           \
  X(RETRIES, "retries_total", counter, "", "transient failures retried (hub and storage)")         \
  X(STORAGE_RETRIES, "storage_retries_total", counter, "reason",                                   \
    "storage requests retried, by cause: timeout, connection or http_STATUS")                      \
  X(RETENTION_GAPS, "retention_gaps_total", counter, "partition",                                  \
    "resume positions found expired from the hub")                                                 \
  X(EVENTS_LOST, "events_lost_total", counter, "partition",                                        \
    "events skipped by retention_gap_policy = skip-to-earliest")                                   \
  X(ROWS_WRITTEN, "rows_written_total", counter, "sink", "rows committed to the sink")             \
  X(BATCHES, "batches_committed_total", counter, "sink", "micro-batches committed")                \
  X(INPUT_RATE, "input_rows_per_second", gauge, "sink", "of the last batch")                       \
  X(PROCESS_RATE, "processed_rows_per_second", gauge, "sink", "of the last batch")                 \
  X(WATERMARK, "watermark_seconds", gauge, "sink", "event-time watermark, seconds since epoch")    \
  X(STATE_ROWS, "state_rows", gauge, "sink", "open window rows held")                              \
  X(LATE_EVENTS, "late_events_total", counter, "partition",                                        \
    "rows window sinks dropped as late, summed over the sinks")                                    \
  X(PART_EVENT_TIME, "partition_event_time_seconds", gauge, "partition",                           \
    "largest event time seen (the first window sink's), seconds since epoch")                      \
  X(PART_HELD, "partition_held", gauge, "partition",                                               \
    "1 while credit is withheld to keep the partition aligned")                                    \
  X(LAG, "consumer_lag_events", gauge, "partition",                                                \
    "last enqueued sequence number minus last committed")                                          \
  X(LAST_ENQUEUED, "last_enqueued_sequence_number", gauge, "partition", "as the hub reports it")   \
  X(COMMITTED_SEQ, "committed_sequence_number", gauge, "partition", "the lowest over the sinks")   \
  X(COMPACTIONS, "compactions_total", counter, "sink", "compaction commits (sink.compaction)")     \
  X(COMPACT_FILES_REMOVED, "compaction_files_removed_total", counter, "sink",                      \
    "small files compaction rewrote")                                                              \
  X(COMPACT_FILES_ADDED, "compaction_files_added_total", counter, "sink",                          \
    "files compaction wrote")                                                                      \
  X(COMPACT_BYTES, "compaction_bytes_total", counter, "sink", "bytes of the files it rewrote")     \
  X(COMPACT_SECONDS, "compaction_seconds_total", counter, "sink",                                  \
    "time spent compacting (read, rewrite, commit)")                                               \
  X(COMPACT_CONFLICTS, "compaction_conflicts_total", counter, "sink",                              \
    "concurrent commits a compaction commit was retried on top of, or aborted by")                 \
  X(RING_USED, "ring_used_slots", gauge, "", "event blocks waiting for the pipeline")              \
  X(OWNED_PARTS, "owned_partitions", gauge, "",                                                    \
    "partitions this agent provably owns in the checkpoint store")                                 \
  X(OWN_CLAIMS, "ownership_claims_total", counter, "",                                             \
    "partitions claimed (unowned, expired, stolen)")                                               \
  X(OWN_STEALS, "ownership_steals_total", counter, "", "partitions claimed from a live owner")     \
  X(OWN_LOSSES, "ownership_losses_total", counter, "",                                             \
    "partitions lost to another owner or to a proof that ran out")                                 \
  X(GENERATION, "generation", gauge, "", "the run's generation: one per change of the owned set")  \
  X(PART_OWNED, "partition_owned", gauge, "partition", "1 while this agent reads the partition")   \
  X(UP, "up", gauge, "", "1 while the agent runs")

typedef enum {
#define AG_M_ENUM(id, name, kind, label, help) AG_M_##id,
  AG_METRICS(AG_M_ENUM)
#undef AG_M_ENUM
      AG_M__COUNT
} ag_metric_t;

/* listen: "HOST:PORT" ("127.0.0.1:9464", "[::1]:0", ":9464" = every address;
 * port 0 picks a free one) or NULL for no server (the registry still counts,
 * for the final summary). agent_id: shown on /status (copied).
 * ED_E_CONFIG for a malformed address, ED_E_CONNECTION when it cannot be bound
 * ("metrics: cannot listen on 127.0.0.1:9464: Address already in use").
 * Caller frees with ag_metrics_free (stops the server thread). */
/* token: when not NULL, every request must carry it ("Authorization: Bearer
 * TOKEN" or "?token=TOKEN"; compared in constant time), else 401 (copied;
 * never logged or served). */
ed_code_t ag_metrics_new(const char *listen, const char *agent_id, const char *token,
                         ag_metrics_t **out, ed_err_t *err);
/* Reads the token of --metrics-token-file: the file's first line, trailing
 * blanks removed. ED_E_CONFIG when unreadable or empty. Caller frees *out
 * with free. */
ed_code_t ag_metrics_read_token(const char *path, char **out, ed_err_t *err);
void ag_metrics_free(ag_metrics_t *m); /* NULL is a no-op */
/* "127.0.0.1:PORT" as bound (the real port when 0 was asked); "" without a
 * server. Borrowed, valid until ag_metrics_free. */
const char *ag_metrics_address(const ag_metrics_t *m);

/* label: the partition id or sink name (copied on first use), NULL for
 * metrics without a label. m may be NULL (then these do nothing).
 * Counters ignore a negative delta. get with a NULL label on a labelled
 * metric returns the sum over its labels. Any use of a sink label lists the
 * sink on /status (null until its first progress): add(..., sink, 0) at
 * start shows every configured sink. */
void ag_metrics_add(ag_metrics_t *m, ag_metric_t id, const char *label, double delta);
void ag_metrics_set(ag_metrics_t *m, ag_metric_t id, const char *label, double value);
double ag_metrics_get(ag_metrics_t *m, ag_metric_t id, const char *label);
/* Commit latency of one batch of sink (checkpoint + files + Delta commit), a
 * histogram ehdelta_commit_latency_seconds{sink} with fixed buckets. */
void ag_metrics_observe_commit(ag_metrics_t *m, const char *sink, double seconds);
/* The last progress line of sink (one JSON object, copied): /status shows it. */
void ag_metrics_set_progress(ag_metrics_t *m, const char *sink, const char *json);

/* With a checkpoint store: this agent's owner id (copied), shown on /status
 * as ownerId beside ownedPartitions (the partitions whose partition_owned
 * gauge is 1), and each partition's "owned" is that gauge (without one, the
 * agent reads every partition and each is owned). */
void ag_metrics_set_owner(ag_metrics_t *m, const char *owner_id);

/* The receiver state of a partition ("connecting", "ready", "retrying",
 * ...; copied), shown per partition on /status and the page. */
void ag_metrics_set_state(ag_metrics_t *m, const char *partition, const char *state);
/* A warning or error as logged (event name and its fields; copied), kept
 * with its time among the last AG_METRICS_NOTES for "last errors". The
 * signature of ed_log's tap (common/log.h), with m as its context. */
#define AG_METRICS_NOTES 16
void ag_metrics_note(void *m, int level, const char *event, const char *fields);
/* Takes one history sample now (the server thread does so once a second;
 * tests call it to fill the ring without waiting). */
void ag_metrics_sample(ag_metrics_t *m);

/* History bounds: AG_HISTORY_SAMPLES agent samples (one a second: an
 * hour) and AG_HISTORY_BATCHES batch records per sink, fixed arrays
 * allocated on first use; ehdelta-run(1) states the memory they take. */
#define AG_HISTORY_SAMPLES 3600
#define AG_HISTORY_BATCHES 1024

/* The bodies the server sends, for tests and `ehdelta status --agent`.
 * since_ms: /history returns only samples and batches after this wall time
 * (milliseconds since the epoch; 0 for all). Caller frees with free. */
char *ag_metrics_prometheus(ag_metrics_t *m);
char *ag_metrics_status_json(ag_metrics_t *m);
char *ag_metrics_history_json(ag_metrics_t *m, int64_t since_ms);

#endif
