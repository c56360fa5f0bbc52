/* console: tables for the console sink (see console.h). */
#include "agent/console.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/time.h"

static ed_code_t put_double(double v, ed_buf_t *out) {
  if (isnan(v))
    return ed_buf_puts(out, "NaN");
  if (isinf(v))
    return ed_buf_puts(out, v > 0 ? "Infinity" : "-Infinity");
  char t[40];
  /* the shortest text that reads back as the same double */
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(t, sizeof t, "%.*g", prec, v);
    if (strtod(t, NULL) == v)
      break;
  }
  if (!strpbrk(t, ".eEn"))
    strcat(t, ".0");
  return ed_buf_puts(out, t);
}

static ed_code_t put_ts(int64_t us, ed_buf_t *out) {
  char iso[ED_TIME_ISO_MAX];
  size_t n = ed_time_format_iso(us, us % 1000000 ? 6 : 0, iso);
  /* Spark shows "2026-12-02 10:05:00": a space, no zone letter */
  if (n && iso[n - 1] == 'Z')
    iso[--n] = 0;
  char *tee = strchr(iso, 'T');
  if (tee)
    *tee = ' ';
  return ed_buf_puts(out, iso);
}

/* Appends row `row` of column c as Spark shows it ("null", "2026-12-02
 * 10:05:00", "[a, b]", "{k -> v}"). */
static ed_code_t ag_console_value(const sm_col_t *c, size_t row, ed_buf_t *out) {
  if (!c->valid[row])
    return ed_buf_puts(out, "null");
  size_t n;
  const char *s;
  ed_code_t rc = ED_OK;
  switch (c->type->kind) {
  case SM_STRING:
    s = sm_col_str(c, row, &n);
    return ed_buf_append(out, s, n);
  case SM_BINARY:
    s = sm_col_str(c, row, &n);
    rc = ed_buf_putc(out, '[');
    for (size_t i = 0; !rc && i < n; i++)
      rc = ed_buf_printf(out, "%s%02X", i ? " " : "", (unsigned char)s[i]);
    return rc ? rc : ed_buf_putc(out, ']');
  case SM_BOOLEAN:
    return ed_buf_puts(out, c->v.b8[row] ? "true" : "false");
  case SM_INT:
    return ed_buf_printf(out, "%" PRId32, c->v.i32[row]);
  case SM_BIGINT:
    return ed_buf_printf(out, "%" PRId64, c->v.i64[row]);
  case SM_FLOAT:
    return put_double((double)c->v.f32[row], out);
  case SM_DOUBLE:
    return put_double(c->v.f64[row], out);
  case SM_DATE: {
    char d[11];
    ed_time_format_date((int64_t)c->v.i32[row] * 86400 * 1000000, d);
    return ed_buf_puts(out, d);
  }
  case SM_TIMESTAMP:
    return put_ts(c->v.i64[row], out);
  case SM_STRUCT:
    rc = ed_buf_putc(out, '{');
    for (size_t i = 0; !rc && i < c->nchildren; i++) {
      rc = i ? ed_buf_puts(out, ", ") : ED_OK;
      rc = rc ? rc : ag_console_value(&c->children[i], row, out);
    }
    return rc ? rc : ed_buf_putc(out, '}');
  case SM_ARRAY:
  case SM_MAP: {
    bool map = c->type->kind == SM_MAP;
    rc = ed_buf_putc(out, map ? '{' : '[');
    for (uint32_t e = c->off[row]; !rc && e < c->off[row + 1]; e++) {
      rc = e > c->off[row] ? ed_buf_puts(out, ", ") : ED_OK;
      rc = rc ? rc : ag_console_value(&c->children[0], e, out);
      if (map && !rc) {
        rc = ed_buf_puts(out, " -> ");
        rc = rc ? rc : ag_console_value(&c->children[1], e, out);
      }
    }
    return rc ? rc : ed_buf_putc(out, map ? '}' : ']');
  }
  }
  return ED_OK;
}

static void rule(FILE *out, const size_t *w, size_t n) {
  for (size_t i = 0; i < n; i++) {
    fputc('+', out);
    for (size_t k = 0; k < w[i]; k++)
      fputc('-', out);
  }
  fputs("+\n", out);
}

static void cell(FILE *out, const char *s, size_t w) {
  fprintf(out, "|%s", s);
  for (size_t k = strlen(s); k < w; k++)
    fputc(' ', out);
}

/* @locality flush thread (ag-flush)  @locks none */
void ag_console_print(FILE *out, const char *sink, int64_t batch, const sm_batch_t *b,
                      size_t max_rows) {
  fprintf(out,
          "-------------------------------------------\nBatch: %" PRId64 " (sink %s)\n"
          "-------------------------------------------\n",
          batch, sink);
  size_t nc = b ? b->schema->nfields : 0, nr = b ? b->nrows : 0;
  size_t shown = nr < max_rows ? nr : max_rows;
  size_t *w = calloc(nc + 1, sizeof *w);
  char **text = calloc(nc * (shown + 1) + 1, sizeof *text);
  if (!w || !text) {
    free(w), free(text);
    fputs("(out of memory formatting the batch)\n\n", out);
    return;
  }
  for (size_t c = 0; c < nc; c++) {
    w[c] = strlen(b->schema->fields[c].name);
    for (size_t r = 0; r < shown; r++) {
      ed_buf_t v = {0};
      (void)ag_console_value(&b->cols[c], r, &v);
      text[c * (shown + 1) + r] = v.data ? v.data : strdup("");
      size_t l = text[c * (shown + 1) + r] ? strlen(text[c * (shown + 1) + r]) : 0;
      if (l > w[c])
        w[c] = l;
    }
  }
  rule(out, w, nc);
  for (size_t c = 0; c < nc; c++)
    cell(out, b->schema->fields[c].name, w[c]);
  fputs(nc ? "|\n" : "\n", out);
  rule(out, w, nc);
  for (size_t r = 0; r < shown; r++) {
    for (size_t c = 0; c < nc; c++) {
      const char *t = text[c * (shown + 1) + r];
      cell(out, t ? t : "", w[c]);
    }
    fputs("|\n", out);
  }
  rule(out, w, nc);
  if (nr > shown)
    fprintf(out, "only showing top %zu rows\n", shown);
  fputc('\n', out);
  fflush(out);
  for (size_t i = 0; i < nc * (shown + 1); i++)
    free(text[i]);
  free(text);
  free(w);
}
