/* fuzz_expr: expressions come from configuration; any text must parse or
 * fail with a positioned message, and whatever binds must evaluate. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stream/decode.h"
#include "stream/expr.h"
#include "stream/schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static sm_type_t *g_st;
static sm_batch_t *g_b;

static void setup(void) {
  sm_dec_t *d;
  if (sm_schema_parse_ddl("amount DOUBLE, qty INT, name STRING, ts TIMESTAMP, big BIGINT, "
                          "ok BOOLEAN, g STRUCT<lat: DOUBLE>",
                          &g_st, NULL) ||
      sm_dec_new(g_st, NULL, 0, NULL, &d, NULL))
    abort();
  /* the decoder's schema equals the body schema when no metadata is asked */
  g_b = sm_batch_new(g_st);
  static const char *rows[] = {
      ("{\"amount\": 12.5, \"qty\": 3, \"name\": \"Books\", \"ts\": \"2024-01-02T03:04:05\", "
       "\"big\": -9223372036854775808, \"ok\": true, \"g\": {\"lat\": 1}}"),
      "{\"qty\": -2147483648, \"amount\": 0}", "{}"};
  for (int i = 0; i < 3; i++)
    if (sm_dec_decode(d, g_b, rows[i], strlen(rows[i]), NULL, NULL, NULL, NULL))
      abort();
  sm_dec_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!g_st)
    setup();
  char *text = malloc(size + 1);
  memcpy(text, data, size);
  text[size] = '\0';
  sm_expr_t *e;
  ed_err_t err = {0};
  if (sm_expr_parse(text, &e, &err) == ED_OK) {
    if (sm_expr_bind(e, g_st, &err) == ED_OK) {
      sm_col_t out;
      sm_col_init(&out, sm_expr_type(e));
      if (sm_expr_eval(e, g_b, 1700000000000000, &out, &err) != ED_OK || out.len != g_b->nrows)
        abort();
      uint8_t sel[3];
      (void)sm_expr_filter(e, g_b, 0, sel, NULL, &err);
      sm_col_fini(&out);
    }
    sm_expr_free(e);
  } else if (strncmp(err.msg, "expr: at ", 9) != 0) {
    abort(); /* every parse error points at a character */
  }
  free(text);
  return 0;
}
