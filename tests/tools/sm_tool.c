/* sm_tool: the interop tests' bridge to the decoder. Reads one event body per
 * line on stdin, decodes each against the schema in argv[1] with back end
 * argv[2] ("json-c" or "simdjson"), and prints each row as one JSON line
 * (TIMESTAMP as integer microseconds, DOUBLE with 17 digits), or
 * {"dead": "<reason>"} for a dead letter. */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "stream/decode.h"
#include "stream/schema.h"
#include "tests/sm_text.h"

static void put_value(ed_buf_t *o, const sm_col_t *c, size_t r) {
  if (sm_text_scalar(o, c, r))
    return;
  if (c->type->kind == SM_STRING || c->type->kind == SM_BINARY) {
    size_t n;
    const char *p = sm_col_str(c, r, &n);
    ed_buf_json_str(o, p, n);
  } else {
    ed_buf_puts(o, "\"(nested)\"");
  }
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: sm_tool SCHEMA json-c|simdjson < bodies\n");
    return 2;
  }
  sm_type_t *st;
  ed_err_t e = {0};
  if (sm_schema_parse(argv[1], &st, &e)) {
    fprintf(stderr, "sm_tool: %s\n", e.msg);
    return 2;
  }
  sm_dec_opts_t o = {.backend = strcmp(argv[2], "simdjson") == 0 ? SM_DEC_SIMDJSON : SM_DEC_JSONC};
  sm_dec_t *d;
  if (sm_dec_new(st, NULL, 0, &o, &d, &e)) {
    fprintf(stderr, "sm_tool: %s\n", e.msg);
    return 2;
  }
  sm_batch_t *b = sm_batch_new(sm_dec_schema(d));
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  ed_buf_t out = ED_BUF_INIT;
  while ((len = getline(&line, &cap, stdin)) > 0) {
    if (line[len - 1] == '\n')
      len--;
    sm_batch_reset(b);
    sm_dec_status_t s;
    sm_reason_t r;
    if (sm_dec_decode(d, b, line, (size_t)len, NULL, &s, &r, &e))
      return 1;
    ed_buf_reset(&out);
    if (s == SM_DEC_DEAD) {
      ed_buf_printf(&out, "{\"dead\": \"%s\"}", sm_reason_name(r));
    } else {
      ed_buf_putc(&out, '{');
      for (size_t i = 0; i < b->schema->nfields; i++) {
        if (i)
          ed_buf_puts(&out, ", ");
        ed_buf_json_str(&out, b->schema->fields[i].name, strlen(b->schema->fields[i].name));
        ed_buf_puts(&out, ": ");
        put_value(&out, &b->cols[i], 0);
      }
      ed_buf_putc(&out, '}');
    }
    puts(out.data);
  }
  free(line);
  ed_buf_fini(&out);
  sm_batch_free(b);
  sm_dec_free(d);
  sm_type_free(st);
  return 0;
}
