/* win_tool: the window oracle's bridge to the windowing core.
 *   win_tool window [--size US] [--slide US] [--start US] [--delay US]
 *            [--mode append|update|complete] [--struct] [--restore-at N]
 *            --key NAME... --agg "TEXT"...           < EVENTS
 *   win_tool dedup [--delay US] [--restore-at N] [--exact] --key NAME... < EVENTS
 * EVENTS: CSV lines ts,k1,k2,v,x (ts TIMESTAMP us, k1 STRING, k2 BIGINT,
 * v DOUBLE, x BIGINT; an empty field is NULL); a line "B" ends a micro-batch.
 * Prints JSON lines: window: {"b":N,"ws":..,"we":..,"k":[..],"a":[..]} per
 * emitted row and {"b":N,"stats":{..}} per batch; dedup: {"b":N,"keep":[seq..]}
 * (seq = the event's 0-based line number among events). --restore-at N saves
 * the state after batch N, frees the operator and continues from the bytes
 * in a new one. A test tool: prints, exits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "stream/dedup.h"
#include "stream/window.h"

static void die(const char *what, const ed_err_t *e) {
  fprintf(stderr, "win_tool: %s: %s\n", what, e ? e->msg : "");
  exit(1);
}

static sm_type_t *schema(void) {
  sm_type_t *st = sm_type_new(SM_STRUCT);
  const char *names[] = {"ts", "k1", "k2", "v", "x"};
  sm_kind_t kinds[] = {SM_TIMESTAMP, SM_STRING, SM_BIGINT, SM_DOUBLE, SM_BIGINT};
  for (int i = 0; i < 5; i++)
    if (!st || sm_type_add_field(st, names[i], sm_type_new(kinds[i]), true, NULL) != ED_OK)
      die("schema", NULL);
  return st;
}

/* Splits one CSV line (no quoting: the generator writes none) into the batch. */
static void add_line(sm_batch_t *b, char *line) {
  char *f[5] = {0};
  int n = 0;
  char *p = line;
  while (n < 5) {
    f[n++] = p;
    char *c = strchr(p, ',');
    if (!c)
      break;
    *c = 0;
    p = c + 1;
  }
  if (n != 5)
    die("event line: expected 5 fields", NULL);
  for (int i = 0; i < 5; i++) {
    sm_col_t *c = &b->cols[i];
    ed_code_t rc;
    if (!f[i][0])
      rc = sm_col_append_null(c);
    else if (i == 1)
      rc = sm_col_append_str(c, f[i], strlen(f[i]));
    else if (i == 3)
      rc = sm_col_append_f64(c, strtod(f[i], NULL));
    else
      rc = sm_col_append_i64(c, strtoll(f[i], NULL, 10));
    if (rc)
      die("append", NULL);
  }
  b->nrows++;
}

static void print_val(const sm_col_t *c, size_t r) {
  if (!c->valid[r]) {
    fputs("null", stdout);
    return;
  }
  switch (c->type->kind) {
  case SM_STRING: {
    size_t n;
    const char *s = sm_col_str(c, r, &n);
    ed_buf_t b = ED_BUF_INIT;
    ed_buf_json_str(&b, s, n);
    fputs(b.data, stdout);
    ed_buf_fini(&b);
    break;
  }
  case SM_DOUBLE:
    if (c->v.f64[r] != c->v.f64[r])
      fputs("\"NaN\"", stdout);
    else
      printf("%.17g", c->v.f64[r]);
    break;
  default:
    printf("%lld", (long long)c->v.i64[r]);
    break;
  }
}

typedef struct {
  const char *keys[8];
  int nkeys;
  const char *aggs[16];
  int naggs;
  int64_t size, slide, start, delay;
  win_mode_t mode;
  bool wstruct, exact;
  long restore_at;
} opts_t;

static void emit_window(win_t *w, sm_batch_t *out, long batch, const opts_t *o) {
  ed_err_t e = {0};
  win_end_batch(w);
  if (win_emit(w, out, &e))
    die("emit", &e);
  for (size_t r = 0; r < out->nrows; r++) {
    size_t c = 0;
    int64_t ws, we;
    if (o->wstruct) {
      ws = out->cols[0].children[0].v.i64[r];
      we = out->cols[0].children[1].v.i64[r];
      c = 1;
    } else {
      ws = out->cols[0].v.i64[r];
      we = out->cols[1].v.i64[r];
      c = 2;
    }
    printf("{\"b\":%ld,\"ws\":%lld,\"we\":%lld,\"k\":[", batch, (long long)ws, (long long)we);
    for (int k = 0; k < o->nkeys; k++, c++) {
      if (k)
        putchar(',');
      print_val(&out->cols[c], r);
    }
    fputs("],\"a\":[", stdout);
    for (int a = 0; a < o->naggs; a++, c++) {
      if (a)
        putchar(',');
      print_val(&out->cols[c], r);
    }
    fputs("]}\n", stdout);
  }
  win_stats_t st;
  win_get_stats(w, &st);
  printf("{\"b\":%ld,\"stats\":{\"watermark\":%lld,\"dropped\":%llu,\"null_time\":%llu,"
         "\"total\":%llu,\"updated\":%llu,\"removed\":%llu,\"memory\":%llu,\"input\":%llu}}\n",
         batch, (long long)st.watermark_us, (unsigned long long)st.num_rows_dropped_by_watermark,
         (unsigned long long)st.null_event_time, (unsigned long long)st.num_rows_total,
         (unsigned long long)st.num_rows_updated, (unsigned long long)st.num_rows_removed,
         (unsigned long long)st.memory_used_bytes, (unsigned long long)st.input_rows);
}

int main(int argc, char **argv) {
  if (argc < 2)
    die("usage: win_tool window|dedup [options] < events", NULL);
  bool dedup = strcmp(argv[1], "dedup") == 0;
  opts_t o = {.size = 5 * 60000000LL, .mode = WIN_APPEND, .restore_at = -1, .delay = 0};
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--struct")) {
      o.wstruct = true;
      continue;
    }
    if (!strcmp(a, "--exact")) {
      o.exact = true;
      continue;
    }
    if (!v)
      die(a, NULL);
    i++;
    if (!strcmp(a, "--size"))
      o.size = strtoll(v, NULL, 10);
    else if (!strcmp(a, "--slide"))
      o.slide = strtoll(v, NULL, 10);
    else if (!strcmp(a, "--start"))
      o.start = strtoll(v, NULL, 10);
    else if (!strcmp(a, "--delay"))
      o.delay = strtoll(v, NULL, 10);
    else if (!strcmp(a, "--restore-at"))
      o.restore_at = strtol(v, NULL, 10);
    else if (!strcmp(a, "--mode"))
      o.mode = !strcmp(v, "append") ? WIN_APPEND : !strcmp(v, "update") ? WIN_UPDATE : WIN_COMPLETE;
    else if (!strcmp(a, "--key") && o.nkeys < 8)
      o.keys[o.nkeys++] = v;
    else if (!strcmp(a, "--agg") && o.naggs < 16)
      o.aggs[o.naggs++] = v;
    else
      die(a, NULL);
  }
  sm_type_t *st = schema();
  sm_batch_t *in = sm_batch_new(st);
  ed_err_t e = {0};
  agg_spec_t specs[16];
  for (int i = 0; i < o.naggs; i++)
    if (agg_spec_parse(o.aggs[i], &specs[i], &e))
      die("aggregate", &e);
  win_spec_t ws = {.time_col = "ts",
                   .time_index = -1,
                   .size_us = o.size,
                   .slide_us = o.slide,
                   .start_us = o.start,
                   .watermark = true,
                   .delay_us = o.delay,
                   .keys = o.keys,
                   .nkeys = (size_t)o.nkeys,
                   .aggs = specs,
                   .naggs = (size_t)o.naggs,
                   .mode = o.mode,
                   .window_struct = o.wstruct};
  dd_spec_t ds = {.time_col = "ts",
                  .time_index = -1,
                  .delay_us = o.delay,
                  .keys = o.keys,
                  .nkeys = (size_t)o.nkeys,
                  .mode = o.exact ? DD_KEYS : DD_WITHIN_WATERMARK};
  win_t *w = NULL;
  dd_t *d = NULL;
  if (dedup ? dd_new(&ds, st, &d, &e) : win_new(&ws, st, &w, &e))
    die("configure", &e);
  sm_batch_t *out = dedup ? NULL : sm_batch_new(win_output_schema(w));
  uint32_t *keep = NULL;
  char line[4096];
  long batch = 0, seq = 0, batch_first = 0;
  ed_buf_t saved = ED_BUF_INIT;
  while (fgets(line, sizeof line, stdin)) {
    line[strcspn(line, "\r\n")] = 0;
    if (strcmp(line, "B") != 0) {
      add_line(in, line);
      seq++;
      continue;
    }
    if (dedup) {
      uint32_t *nkp = realloc(keep, (in->nrows + 1) * sizeof *keep);
      if (!nkp)
        die("out of memory", NULL);
      keep = nkp;
      size_t nk = 0;
      if (dd_update(d, in, NULL, 0, keep, &nk, &e))
        die("dedup", &e);
      dd_end_batch(d);
      printf("{\"b\":%ld,\"keep\":[", batch);
      for (size_t i = 0; i < nk; i++)
        printf("%s%ld", i ? "," : "", batch_first + (long)keep[i]);
      dd_stats_t s;
      dd_get_stats(d, &s);
      printf("],\"watermark\":%lld,\"dropped\":%llu,\"total\":%llu}\n", (long long)s.watermark_us,
             (unsigned long long)s.num_rows_dropped_by_watermark,
             (unsigned long long)s.num_rows_total);
    } else {
      if (win_update(w, in, NULL, 0, &e))
        die("update", &e);
      emit_window(w, out, batch, &o);
    }
    if (batch == o.restore_at) {
      ed_buf_reset(&saved);
      if (dedup) {
        if (dd_state_save(d, &saved, &e))
          die("save", &e);
        dd_free(d);
        if (dd_new(&ds, st, &d, &e) || dd_state_load(d, saved.data, saved.len, &e))
          die("restore", &e);
      } else {
        if (win_state_save(w, &saved, &e))
          die("save", &e);
        sm_batch_free(out);
        win_free(w);
        if (win_new(&ws, st, &w, &e) || win_state_load(w, saved.data, saved.len, &e))
          die("restore", &e);
        out = sm_batch_new(win_output_schema(w));
      }
      fprintf(stderr, "win_tool: state after batch %ld: %zu bytes\n", batch, saved.len);
    }
    sm_batch_reset(in);
    batch++;
    batch_first = seq;
  }
  ed_buf_fini(&saved);
  free(keep);
  sm_batch_free(out);
  sm_batch_free(in);
  win_free(w);
  dd_free(d);
  for (int i = 0; i < o.naggs; i++)
    agg_spec_fini(&specs[i]);
  sm_type_free(st);
  return 0;
}
