/* ag_sink_tool: drives the agent's decode -> Delta sink path from a file,
 * for the crash and interop suites until the network stage is wired.
 *   ag_sink_tool TABLE DDL PARTITION_COL BATCH_ROWS < events
 * Each input line is "PARTITION<TAB>SEQ<TAB>JSON". On start it resumes from
 * the table (lines at or below a partition's checkpointed sequence number
 * are skipped), then commits every BATCH_ROWS lines as one batch. Bad
 * bodies are counted, not written. AG_TOOL_PAUSE_MS sleeps between batches
 * so a test can kill it mid-run. Prints one line per batch. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/sink.h"
#include "stream/decode.h"
#include "stream/schema.h"

static int fail(const ed_err_t *e) {
  fprintf(stderr, "ag_sink_tool: %s\n", e->msg);
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: ag_sink_tool TABLE DDL PARTITION_COL BATCH_ROWS < events\n");
    return 2;
  }
  ed_err_t e = {0};
  sm_type_t *body = NULL;
  sm_dec_t *dec = NULL;
  if (sm_schema_parse_ddl(argv[2], &body, &e) || sm_dec_new(body, NULL, 0, NULL, &dec, &e))
    return fail(&e);
  const sm_type_t *schema = sm_dec_schema(dec);
  const char *part[] = {argv[3], NULL};
  ag_dsink_opts_t o = {.url = argv[1],
                       .query_id = "ag-sink-tool",
                       .schema = schema,
                       .partition_by = *argv[3] ? part : NULL};
  ag_dsink_t *s = NULL;
  ag_ckpt_t ck;
  if (ag_dsink_open(&o, &s, &ck, &e))
    return fail(&e);
  printf("resume batch=%" PRId64 " partitions=%zu\n", ck.batch_id, ck.n);
  long per = atol(argv[4]),
       pause_ms = getenv("AG_TOOL_PAUSE_MS") ? atol(getenv("AG_TOOL_PAUSE_MS")) : 0;
  sm_batch_t *b = sm_batch_new(schema);
  char line[65536];
  long inbatch = 0, bad = 0, skipped = 0;
  int rc = 0;
  bool more = true;
  while (more) {
    more = fgets(line, sizeof line, stdin) != NULL;
    if (more) {
      char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
      if (!t2)
        continue;
      *t1 = 0;
      int64_t seq = strtoll(t1 + 1, NULL, 10), last;
      if (ag_ckpt_get(&ck, line, &last) && seq <= last) {
        skipped++;
        continue;
      }
      char *js = t2 + 1;
      size_t n = strcspn(js, "\n");
      sm_dec_status_t st;
      if (sm_dec_decode(dec, b, js, n, NULL, &st, NULL, &e)) {
        rc = fail(&e);
        break;
      }
      bad += st == SM_DEC_DEAD;
      if (ag_ckpt_set(&ck, line, seq, &e)) {
        rc = fail(&e);
        break;
      }
      inbatch++;
    }
    if (inbatch && (inbatch >= per || !more)) {
      ck.batch_id = ag_dsink_next_batch(s);
      int64_t v;
      bool already;
      if (ag_dsink_commit(s, b, &ck, &v, &already, &e)) {
        rc = fail(&e);
        break;
      }
      printf("batch=%" PRId64 " rows=%zu version=%" PRId64 "%s\n", ck.batch_id, b->nrows, v,
             already ? " already" : "");
      fflush(stdout);
      sm_batch_reset(b);
      inbatch = 0;
      if (pause_ms) {
        struct timespec ts = {pause_ms / 1000, (pause_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
      }
    }
  }
  printf("done skipped=%ld bad=%ld\n", skipped, bad);
  sm_batch_free(b);
  ag_ckpt_fini(&ck);
  ag_dsink_free(s);
  sm_dec_free(dec);
  sm_type_free(body);
  return rc;
}
