/* DRAFT, NOT BUILT (not in src/agent/local.mk): against ehemu this loop
 * takes only some events (20 sent over 4 partitions: 12 reach the pipeline;
 * 1000: 501, and available-now then waits for a last event that never
 * comes). Find where events are lost before wiring it into cmd_run.c;
 * tests/integration/agent_run.sh (not declared in TESTS yet) is its test.
 *
 * run: the agent's main loop (thin first path). Reads every partition of the
 * hub up to the last sequence numbers management reports at start
 * (trigger = available-now), decodes each event into the schema's rows and
 * commits them to every delta sink exactly once (sink.h), then returns.
 * Window, console and interval-trigger sinks are refused (ED_E_UNSUPPORTED)
 * until the window operator is wired in. Network callbacks copy events into a
 * bounded queue; a full queue leaves them with the receiver (back-pressure by
 * credit) until the pipeline drains it. */
#ifndef ED_AGENT_RUN_H
#define ED_AGENT_RUN_H

#include <signal.h>
#include <stdio.h>

#include "agent/conf.h"
#include "common/err.h"

/* conn: the connection string (borrowed). stop: set by a signal handler;
 * checked between batches (the current batch is committed first).
 * progress: one JSON line per committed batch per sink. */
ed_code_t ag_run(const ag_conf_t *conf, const char *conn, volatile sig_atomic_t *stop,
                 FILE *progress, ed_err_t *err);

#endif
