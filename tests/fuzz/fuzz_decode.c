/* fuzz_decode: event bodies are untrusted input; any bytes must give a row,
 * a partial row or a counted dead letter, never a crash or a leak, with the
 * batch's columns aligned afterwards. Both back ends, permissive mode too. */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "stream/decode.h"
#include "stream/schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static sm_type_t *g_st;
static sm_dec_t *g_dec[4];
static sm_batch_t *g_b[4];

static void setup(void) {
  if (sm_schema_parse_ddl("transaction_id STRING, amount DOUBLE, qty INT NOT NULL, n BIGINT, "
                          "f FLOAT, ok BOOLEAN, ts TIMESTAMP, d DATE, bin BINARY, "
                          "tags ARRAY<STRING>, geo STRUCT<lat: DOUBLE, p: ARRAY<INT>>, "
                          "m MAP<STRING, DOUBLE>",
                          &g_st, NULL))
    abort();
  for (int i = 0; i < 4; i++) {
    sm_dec_opts_t o = {.mode = i & 1 ? SM_BAD_PERMISSIVE : SM_BAD_DEAD_LETTER,
#ifdef HAVE_SIMDJSON
                       .backend = i & 2 ? SM_DEC_SIMDJSON : SM_DEC_JSONC,
#else
                       .backend = SM_DEC_JSONC,
#endif
                       .max_depth = 16};
    if (sm_dec_new(g_st, NULL, 0, &o, &g_dec[i], NULL))
      abort();
    g_b[i] = sm_batch_new(sm_dec_schema(g_dec[i]));
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!g_st)
    setup();
  for (int i = 0; i < 4; i++) {
    sm_dec_status_t s;
    size_t before = g_b[i]->nrows;
    if (sm_dec_decode(g_dec[i], g_b[i], data, size, NULL, &s, NULL, NULL) != ED_OK)
      abort();
    if ((s == SM_DEC_DEAD) != (g_b[i]->nrows == before))
      abort();
    for (size_t c = 0; c < g_b[i]->schema->nfields; c++)
      if (g_b[i]->cols[c].len != g_b[i]->nrows)
        abort();
    if (g_b[i]->nrows > 1000)
      sm_batch_reset(g_b[i]);
  }
  return 0;
}
