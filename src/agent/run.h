/* run: the agent's run loop, `ehdelta run` (see run.c for the threads and
 * what passes between them). One call runs the whole configuration: every
 * partition of the source, read once, fanned out to every sink; each sink
 * commits its micro-batches exactly once (sink.h) and resumes where its last
 * landed batch left off. */
#ifndef ED_AGENT_RUN_H
#define ED_AGENT_RUN_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "agent/conf.h"
#include "agent/metrics.h"
#include "auth/cred.h"
#include "common/err.h"
#include "store/store.h"

typedef struct ag_run_opts {
  const char *connection_string; /* borrowed; never logged; without a key when entra is set */
  const au_cred_opts_t *entra;   /* Microsoft Entra ID for the hub, or NULL (SAS); borrowed */
  const char *ca_file;           /* extra CAs for the hub's TLS, or NULL */
  const st_opts_t *store;        /* credentials for the tables, or NULL (environment) */
  volatile sig_atomic_t *stop;   /* set by a signal: finish the current batches, commit, return */
  bool available_now;            /* every sink as if trigger = available-now */
  FILE *progress;                /* one JSON line per batch per sink, or NULL */
  FILE *console;                 /* where console sinks print (stdout) */
  ag_metrics_t *metrics;         /* counters and the /status page, or NULL */
  int64_t op_timeout_us;         /* hub connect/attach/management bound; 0: 60 s */
  int64_t lag_poll_us;           /* how often the hub's last sequence numbers are read; 0: 5 s */
  const char *until;             /* --until: an ISO-8601 enqueued time or "ID:SEQ,..."; implies
                                  * available-now; NULL: none */
} ag_run_opts_t;

/* Runs until every available-now sink has taken what the hub held at start,
 * or until *stop. Returns the first permanent error (the batches committed
 * before it stay committed; what was not committed is read again next time):
 * ED_E_UNAUTHORIZED, ED_E_NOT_FOUND (hub, consumer group, table), ED_E_SCHEMA
 * (a table of another schema), ED_E_NOSPACE, ED_E_LINK_STOLEN (another reader
 * took a partition), ED_E_PARSE (fail-fast and a bad event), ED_E_CONFIG. */
ed_code_t ag_run(const ag_conf_t *conf, const ag_run_opts_t *opts, ed_err_t *err);

/* Builds the whole plan that ag_run would (schema, metadata, derived columns,
 * filter, windows and aggregates, every sink's output schema and partition
 * columns) and frees it, without the network or storage: `run --check`.
 * Returns the error ag_run would return for the same configuration before
 * connecting (ED_E_CONFIG, ED_E_PARSE, ED_E_SCHEMA). */
ed_code_t ag_run_check(const ag_conf_t *conf, bool available_now, ed_err_t *err);

#endif
