/* metrics_tool: a process serving the agent's metrics endpoint with known
 * values, for tests/integration/agent_metrics.sh.
 *   metrics_tool [LISTEN [TOKEN_FILE]]   (default 127.0.0.1:0, no token)
 * Prints "listening ADDR" once bound, fills the registry (two partitions, a
 * delta sink "raw" with a progress line and commit latencies, a sink
 * "by_category" that has not committed yet, partition 0 ready and 1
 * retrying, one warning noted), then serves until stdin closes.
 * Exits 1 with the error on stderr when it cannot listen. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/metrics.h"

int main(int argc, char **argv) {
  ag_metrics_t *m = NULL;
  ed_err_t err = {0};
  char *token = NULL;
  if ((argc > 2 && ag_metrics_read_token(argv[2], &token, &err)) ||
      ag_metrics_new(argc > 1 ? argv[1] : "127.0.0.1:0", "tool-agent", token, &m, &err)) {
    fprintf(stderr, "metrics_tool: %s\n", err.msg);
    free(token);
    return 1;
  }
  free(token);
  ag_metrics_set_state(m, "0", "ready");
  ag_metrics_set_state(m, "1", "retrying");
  ag_metrics_note(m, 1, "partition_retry", "partition=1 connection reset");
  ag_metrics_add(m, AG_M_EVENTS_RECEIVED, "0", 600);
  ag_metrics_add(m, AG_M_EVENTS_RECEIVED, "1", 400);
  ag_metrics_add(m, AG_M_BYTES_RECEIVED, "0", 60000);
  ag_metrics_add(m, AG_M_DEAD_LETTERS, NULL, 3);
  ag_metrics_add(m, AG_M_RETRIES, NULL, 2);
  ag_metrics_set(m, AG_M_LAG, "0", 17);
  ag_metrics_set(m, AG_M_LAG, "1", 0);
  ag_metrics_set(m, AG_M_LAST_ENQUEUED, "0", 616);
  ag_metrics_set(m, AG_M_COMMITTED_SEQ, "0", 599);
  ag_metrics_add(m, AG_M_ROWS_WRITTEN, "raw", 997);
  ag_metrics_add(m, AG_M_BATCHES, "raw", 2);
  ag_metrics_add(m, AG_M_BATCHES, "by_category", 0);
  ag_metrics_set(m, AG_M_INPUT_RATE, "raw", 1234.5);
  ag_metrics_observe_commit(m, "raw", 0.02);
  ag_metrics_observe_commit(m, "raw", 0.3);
  ag_metrics_set_progress(
      m, "raw",
      "{\"id\":\"6f1c\",\"runId\":\"9a2e\",\"name\":\"raw\",\"timestamp\":\"2026-12-02T00:10:00."
      "000Z\",\"batchId\":41,\"numInputRows\":997,\"inputRowsPerSecond\":1234.5,"
      "\"processedRowsPerSecond\":4321.25,\"eventTime\":{\"watermark\":\"2026-12-02T00:00:00."
      "000Z\"},\"stateOperators\":[{\"numRowsTotal\":12},{\"numRowsTotal\":3}],"
      "\"sink\":{\"numOutputRows\":997}}");
  printf("listening %s\n", ag_metrics_address(m));
  fflush(stdout);
  char line[256];
  while (fgets(line, sizeof line, stdin))
    ;
  ag_metrics_free(m);
  return 0;
}
