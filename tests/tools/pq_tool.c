/* pq_tool: the interop tests' bridge to the Parquet writer and reader.
 *   pq_tool write SPEC.json OUT.parquet   writes the rows SPEC describes; prints
 *                                          a JSON summary (rows, bytes, per-leaf stats)
 *   pq_tool read IN.parquet               prints {"schema":..., "rows":[...]} from
 *                                          our reader (row groups assembled)
 *   pq_tool copy IN.parquet OUT.parquet   reads IN with our reader, writes it
 *                                          again with our writer (same schema)
 * SPEC: {"schema":[FIELD...], "rows":[[v...]...], "options":{...}, "kv":{...}}
 * FIELD: {"name","type","nullable", "fields":[FIELD] | "element":FIELD |
 * "key":FIELD,"value":FIELD}; types boolean int32 int64 float double string
 * binary(hex) date timestamp struct list map (JSON [[k,v],...]); floats may be
 * "NaN", "Infinity", "-Infinity". A test tool: prints, exits. */
#include <fcntl.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "parquet/reader.h"
#include "parquet/writer.h"

static void die(const char *what, const ed_err_t *e) {
  fprintf(stderr, "pq_tool: %s: %s\n", what, e ? e->msg : "");
  exit(1);
}

/* ---- schema from JSON ---- */

static pq_type_t type_of(const char *s) {
  static const struct {
    const char *n;
    pq_type_t t;
  } m[] = {{"boolean", PQ_T_BOOLEAN}, {"int32", PQ_T_INT32},   {"int64", PQ_T_INT64},
           {"float", PQ_T_FLOAT},     {"double", PQ_T_DOUBLE}, {"string", PQ_T_STRING},
           {"binary", PQ_T_BINARY},   {"date", PQ_T_DATE},     {"timestamp", PQ_T_TIMESTAMP},
           {"struct", PQ_T_STRUCT},   {"list", PQ_T_LIST},     {"map", PQ_T_MAP}};
  for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
    if (!strcmp(m[i].n, s))
      return m[i].t;
  fprintf(stderr, "pq_tool: unknown type %s\n", s);
  exit(2);
}

static void add_field(pq_schema_t *s, int parent, json_object *f) {
  json_object *o;
  const char *name = json_object_object_get_ex(f, "name", &o) ? json_object_get_string(o) : "x";
  pq_type_t t = type_of(json_object_get_string(json_object_object_get(f, "type")));
  bool nullable = !json_object_object_get_ex(f, "nullable", &o) || json_object_get_boolean(o);
  pq_repetition_t rep = nullable ? PQ_OPTIONAL : PQ_REQUIRED;
  if (json_object_object_get_ex(f, "repetition", &o) &&
      !strcmp(json_object_get_string(o), "repeated"))
    rep = PQ_REPEATED;
  ed_err_t e = {0};
  int id;
  if (pq_schema_add(s, parent, name, t, rep, &id, &e))
    die("schema", &e);
  if (t == PQ_T_STRUCT) {
    json_object *fs = json_object_object_get(f, "fields");
    for (size_t i = 0; i < json_object_array_length(fs); i++)
      add_field(s, id, json_object_array_get_idx(fs, i));
  } else if (t == PQ_T_LIST) {
    add_field(s, id, json_object_object_get(f, "element"));
  } else if (t == PQ_T_MAP) {
    add_field(s, id, json_object_object_get(f, "key"));
    add_field(s, id, json_object_object_get(f, "value"));
  }
}

/* ---- columns from JSON ---- */

typedef struct mcol {
  pq_col_t c;
  uint8_t *valid;
  void *vals;
  uint32_t *off;
  ed_buf_t data;
  struct mcol *kids;
  size_t nkids;
} mcol_t;

static double num(json_object *v) {
  if (json_object_is_type(v, json_type_string)) {
    const char *s = json_object_get_string(v);
    if (!strcmp(s, "NaN"))
      return NAN;
    if (!strcmp(s, "Infinity"))
      return INFINITY;
    if (!strcmp(s, "-Infinity"))
      return -INFINITY;
    return strtod(s, NULL);
  }
  return json_object_get_double(v);
}

static int hexv(char c) { return c <= '9' ? c - '0' : (c | 32) - 'a' + 10; }

static void build_as(const pq_schema_t *s, int id, json_object **vals, size_t n, mcol_t *m,
                     bool elem);
static void build(const pq_schema_t *s, int id, json_object **vals, size_t n, mcol_t *m) {
  build_as(s, id, vals, n, m, false);
}

/* elem: build the elements of a bare REPEATED node (its own type, never null). */
static void build_as(const pq_schema_t *s, int id, json_object **vals, size_t n, mcol_t *m,
                     bool elem) {
  const pq_node_t *nd = pq_schema_node(s, id);
  memset(m, 0, sizeof *m);
  m->c.len = n;
  if (!elem && nd->rep == PQ_REPEATED) {
    /* A repeated field is laid out like a non-null list: off + children[0]. */
    size_t tot = 0;
    for (size_t i = 0; i < n; i++)
      if (vals[i])
        tot += json_object_array_length(vals[i]);
    m->off = calloc(n + 1, 4);
    json_object **e0 = calloc(tot + 1, sizeof *e0);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
      if (vals[i])
        for (size_t j = 0; j < json_object_array_length(vals[i]); j++)
          e0[k++] = json_object_array_get_idx(vals[i], j);
      m->off[i + 1] = (uint32_t)k;
    }
    m->c.off = m->off;
    m->nkids = 1;
    m->kids = calloc(1, sizeof *m->kids);
    build_as(s, id, e0, tot, &m->kids[0], true);
    free(e0);
    pq_col_t *cs = calloc(1, sizeof *cs);
    cs[0] = m->kids[0].c;
    m->c.children = cs;
    m->c.nchildren = 1;
    return;
  }
  m->valid = calloc(n + 1, 1);
  for (size_t i = 0; i < n; i++)
    m->valid[i] = vals[i] != NULL;
  m->c.valid = m->valid;
  switch (nd->type) {
  case PQ_T_BOOLEAN: {
    uint8_t *b = calloc(n + 1, 1);
    for (size_t i = 0; i < n; i++)
      b[i] = vals[i] && json_object_get_boolean(vals[i]);
    m->vals = b;
    m->c.v.b8 = b;
    break;
  }
  case PQ_T_INT32:
  case PQ_T_DATE: {
    int32_t *b = calloc(n + 1, 4);
    for (size_t i = 0; i < n; i++)
      b[i] = vals[i] ? (int32_t)json_object_get_int64(vals[i]) : 0;
    m->vals = b;
    m->c.v.i32 = b;
    break;
  }
  case PQ_T_INT64:
  case PQ_T_TIMESTAMP: {
    int64_t *b = calloc(n + 1, 8);
    for (size_t i = 0; i < n; i++)
      b[i] = vals[i] ? json_object_get_int64(vals[i]) : 0;
    m->vals = b;
    m->c.v.i64 = b;
    break;
  }
  case PQ_T_FLOAT: {
    float *b = calloc(n + 1, 4);
    for (size_t i = 0; i < n; i++)
      b[i] = vals[i] ? (float)num(vals[i]) : 0;
    m->vals = b;
    m->c.v.f32 = b;
    break;
  }
  case PQ_T_DOUBLE: {
    double *b = calloc(n + 1, 8);
    for (size_t i = 0; i < n; i++)
      b[i] = vals[i] ? num(vals[i]) : 0;
    m->vals = b;
    m->c.v.f64 = b;
    break;
  }
  case PQ_T_STRING:
  case PQ_T_BINARY: {
    m->off = calloc(n + 1, 4);
    for (size_t i = 0; i < n; i++) {
      if (vals[i]) {
        const char *p = json_object_get_string(vals[i]);
        size_t len = (size_t)json_object_get_string_len(vals[i]);
        if (nd->type == PQ_T_BINARY) {
          for (size_t k = 0; k + 1 < len; k += 2) {
            char c = (char)(hexv(p[k]) << 4 | hexv(p[k + 1]));
            ed_buf_append(&m->data, &c, 1);
          }
        } else
          ed_buf_append(&m->data, p, len);
      }
      m->off[i + 1] = (uint32_t)m->data.len;
    }
    m->c.off = m->off;
    m->c.data = m->data.data ? m->data.data : "";
    break;
  }
  case PQ_T_STRUCT: {
    m->nkids = nd->nchildren;
    m->kids = calloc(m->nkids, sizeof *m->kids);
    json_object **sub = calloc(n + 1, sizeof *sub);
    for (size_t k = 0; k < nd->nchildren; k++) {
      const pq_node_t *kn = pq_schema_node(s, nd->children[k]);
      for (size_t i = 0; i < n; i++) {
        json_object *o = NULL;
        sub[i] = vals[i] && json_object_object_get_ex(vals[i], kn->name, &o) ? o : NULL;
      }
      build(s, nd->children[k], sub, n, &m->kids[k]);
    }
    free(sub);
    break;
  }
  case PQ_T_LIST:
  case PQ_T_MAP: {
    size_t tot = 0;
    for (size_t i = 0; i < n; i++)
      if (vals[i])
        tot += json_object_array_length(vals[i]);
    m->off = calloc(n + 1, 4);
    json_object **e0 = calloc(tot + 1, sizeof *e0), **e1 = calloc(tot + 1, sizeof *e1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
      if (vals[i])
        for (size_t j = 0; j < json_object_array_length(vals[i]); j++) {
          json_object *e = json_object_array_get_idx(vals[i], j);
          if (nd->type == PQ_T_MAP) {
            e0[k] = json_object_array_get_idx(e, 0);
            e1[k] = json_object_array_get_idx(e, 1);
          } else
            e0[k] = e;
          k++;
        }
      m->off[i + 1] = (uint32_t)k;
    }
    m->c.off = m->off;
    m->nkids = nd->nchildren;
    m->kids = calloc(m->nkids, sizeof *m->kids);
    build(s, nd->children[0], e0, tot, &m->kids[0]);
    if (nd->type == PQ_T_MAP)
      build(s, nd->children[1], e1, tot, &m->kids[1]);
    free(e0);
    free(e1);
    break;
  }
  }
  if (m->nkids) {
    pq_col_t *cs = calloc(m->nkids, sizeof *cs);
    for (size_t k = 0; k < m->nkids; k++)
      cs[k] = m->kids[k].c;
    m->c.children = cs;
    m->c.nchildren = m->nkids;
  }
}

static void mfree(mcol_t *m) {
  for (size_t k = 0; k < m->nkids; k++)
    mfree(&m->kids[k]);
  free(m->kids);
  free((void *)m->c.children);
  free(m->valid);
  free(m->vals);
  free(m->off);
  ed_buf_fini(&m->data);
}

static ed_code_t file_sink(void *ctx, const void *p, size_t n, ed_err_t *err) {
  if (fwrite(p, 1, n, ctx) != n)
    return ed_err_set(err, ED_E_IO, "short write");
  return ED_OK;
}

static void print_value(ed_buf_t *o, pq_phys_t ph, pq_type_t t, const pq_value_t *v) {
  switch (ph) {
  case PQ_P_BOOLEAN:
    ed_buf_puts(o, v->u.b ? "true" : "false");
    break;
  case PQ_P_INT32:
    ed_buf_printf(o, "%d", v->u.i32);
    break;
  case PQ_P_INT64:
    ed_buf_printf(o, "%lld", (long long)v->u.i64);
    break;
  case PQ_P_FLOAT:
  case PQ_P_DOUBLE: {
    double d = ph == PQ_P_FLOAT ? v->u.f32 : v->u.f64;
    if (isinf(d))
      ed_buf_puts(o, d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    else
      ed_buf_printf(o, ph == PQ_P_FLOAT ? "%.9g" : "%.17g", d);
    break;
  }
  default:
    if (t == PQ_T_STRING)
      ed_buf_json_str(o, (const char *)v->bytes, v->len);
    else {
      ed_buf_putc(o, '"');
      for (size_t i = 0; i < v->len; i++)
        ed_buf_printf(o, "%02x", v->bytes[i]);
      ed_buf_putc(o, '"');
    }
  }
}

static int cmd_write(const char *spec, const char *out) {
  json_object *j = json_object_from_file(spec);
  if (!j) {
    fprintf(stderr, "pq_tool: cannot parse %s\n", spec);
    return 2;
  }
  ed_err_t e = {0};
  pq_schema_t *s;
  if (pq_schema_new(&s, &e))
    die("schema", &e);
  json_object *fs = json_object_object_get(j, "schema");
  for (size_t i = 0; i < json_object_array_length(fs); i++)
    add_field(s, PQ_ROOT, json_object_array_get_idx(fs, i));
  if (pq_schema_finish(s, &e))
    die("schema", &e);
  pq_writer_opts_t o;
  pq_writer_opts_init(&o);
  size_t batch = 0;
  json_object *opt, *x;
  if (json_object_object_get_ex(j, "options", &opt)) {
    if (json_object_object_get_ex(opt, "codec", &x)) {
      const char *c = json_object_get_string(x);
      o.codec = !strcmp(c, "none")     ? PQ_CODEC_UNCOMPRESSED
                : !strcmp(c, "snappy") ? PQ_CODEC_SNAPPY
                                       : PQ_CODEC_ZSTD;
    }
    if (json_object_object_get_ex(opt, "level", &x))
      o.zstd_level = json_object_get_int(x);
    if (json_object_object_get_ex(opt, "row_group_bytes", &x))
      o.row_group_bytes = (size_t)json_object_get_int64(x);
    if (json_object_object_get_ex(opt, "page_bytes", &x))
      o.page_bytes = (size_t)json_object_get_int64(x);
    if (json_object_object_get_ex(opt, "dictionary", &x))
      o.dictionary = json_object_get_boolean(x);
    if (json_object_object_get_ex(opt, "dict_max_bytes", &x))
      o.dict_max_bytes = (size_t)json_object_get_int64(x);
    if (json_object_object_get_ex(opt, "dict_trial", &x))
      o.dict_trial = (size_t)json_object_get_int64(x);
    if (json_object_object_get_ex(opt, "batch_rows", &x))
      batch = (size_t)json_object_get_int64(x);
    if (json_object_object_get_ex(opt, "created_by", &x))
      o.created_by = json_object_get_string(x);
  }
  FILE *f = fopen(out, "wb");
  if (!f) {
    perror(out);
    return 1;
  }
  pq_writer_t *w;
  if (pq_writer_new(s, &o, file_sink, f, &w, &e))
    die("writer", &e);
  json_object *kv;
  if (json_object_object_get_ex(j, "kv", &kv)) {
    json_object_object_foreach(kv, k, v) {
      if (pq_writer_add_kv(w, k, json_object_get_string(v), &e))
        die("kv", &e);
    }
  }
  json_object *rows = json_object_object_get(j, "rows");
  size_t nrows = rows ? json_object_array_length(rows) : 0;
  if (!batch)
    batch = nrows ? nrows : 1;
  const pq_node_t *root = pq_schema_node(s, PQ_ROOT);
  size_t nf = root->nchildren;
  for (size_t r0 = 0; r0 < nrows || (r0 == 0 && nrows == 0); r0 += batch) {
    size_t r1 = r0 + batch < nrows ? r0 + batch : nrows;
    size_t n = r1 - r0;
    mcol_t *cols = calloc(nf, sizeof *cols);
    pq_col_t *pc = calloc(nf, sizeof *pc);
    json_object **vals = calloc(n + 1, sizeof *vals);
    for (size_t k = 0; k < nf; k++) {
      for (size_t i = 0; i < n; i++) {
        json_object *row = json_object_array_get_idx(rows, r0 + i);
        vals[i] = json_object_array_get_idx(row, k);
      }
      build(s, root->children[k], vals, n, &cols[k]);
      pc[k] = cols[k].c;
    }
    if (pq_writer_write(w, pc, n, &e))
      die("write", &e);
    for (size_t k = 0; k < nf; k++)
      mfree(&cols[k]);
    free(cols);
    free(pc);
    free(vals);
    if (nrows == 0)
      break;
  }
  if (pq_writer_close(w, &e))
    die("close", &e);
  fclose(f);
  ed_buf_t o2 = ED_BUF_INIT;
  ed_buf_printf(&o2, "{\"rows\":%lld,\"bytes\":%llu,\"row_groups\":%zu,\"leaves\":[",
                (long long)pq_writer_num_rows(w), (unsigned long long)pq_writer_bytes(w),
                pq_writer_num_row_groups(w));
  const pq_schema_t *ws = pq_writer_schema(w);
  for (size_t i = 0; i < pq_schema_num_leaves(ws); i++) {
    const pq_node_t *ln = pq_schema_node(ws, pq_schema_leaf_node(ws, i));
    pq_stats_t st;
    if (pq_writer_stats(w, i, &st, &e))
      die("stats", &e);
    ed_buf_printf(&o2, "%s{\"path\":", i ? "," : "");
    ed_buf_json_str(&o2, ln->path, strlen(ln->path));
    ed_buf_printf(&o2, ",\"num_values\":%lld,\"null_count\":%lld", (long long)st.num_values,
                  (long long)st.null_count);
    if (st.has_min_max) {
      ed_buf_puts(&o2, ",\"min\":");
      print_value(&o2, ln->phys, ln->type, &st.min);
      ed_buf_puts(&o2, ",\"max\":");
      print_value(&o2, ln->phys, ln->type, &st.max);
    }
    ed_buf_putc(&o2, '}');
  }
  ed_buf_puts(&o2, "]}\n");
  fputs(o2.data, stdout);
  ed_buf_fini(&o2);
  pq_writer_free(w);
  pq_schema_free(s);
  json_object_put(j);
  return 0;
}

/* ---- reading ---- */

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    exit(1);
  }
  ed_buf_t b = ED_BUF_INIT;
  char tmp[65536];
  size_t k;
  while ((k = fread(tmp, 1, sizeof tmp, f)) > 0)
    ed_buf_append(&b, tmp, k);
  fclose(f);
  *len = b.len;
  return b.data ? ed_buf_steal(&b) : calloc(1, 1);
}

static void dump_as(ed_buf_t *o, const pq_schema_t *s, int id, const pq_col_t *c, size_t i,
                    bool elem);
static void dump_val(ed_buf_t *o, const pq_schema_t *s, int id, const pq_col_t *c, size_t i) {
  dump_as(o, s, id, c, i, false);
}
static void dump_as(ed_buf_t *o, const pq_schema_t *s, int id, const pq_col_t *c, size_t i,
                    bool elem) {
  const pq_node_t *n = pq_schema_node(s, id);
  if (!elem && n->rep == PQ_REPEATED) {
    ed_buf_putc(o, '[');
    for (uint32_t k = c->off[i]; k < c->off[i + 1]; k++) {
      if (k > c->off[i])
        ed_buf_putc(o, ',');
      dump_as(o, s, id, &c->children[0], k, true);
    }
    ed_buf_putc(o, ']');
    return;
  }
  if (c->valid && !c->valid[i]) {
    ed_buf_puts(o, "null");
    return;
  }
  switch (n->type) {
  case PQ_T_BOOLEAN:
    ed_buf_puts(o, c->v.b8[i] ? "true" : "false");
    return;
  case PQ_T_INT32:
  case PQ_T_DATE:
    ed_buf_printf(o, "%d", c->v.i32[i]);
    return;
  case PQ_T_INT64:
  case PQ_T_TIMESTAMP:
    ed_buf_printf(o, "%lld", (long long)c->v.i64[i]);
    return;
  case PQ_T_FLOAT:
  case PQ_T_DOUBLE: {
    double d = n->type == PQ_T_FLOAT ? c->v.f32[i] : c->v.f64[i];
    if (isnan(d))
      ed_buf_puts(o, "\"NaN\"");
    else if (isinf(d))
      ed_buf_puts(o, d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    else {
      char t[64];
      snprintf(t, sizeof t, n->type == PQ_T_FLOAT ? "%.9g" : "%.17g", d);
      ed_buf_puts(o, t);
      if (!strpbrk(t, ".e"))
        ed_buf_puts(o, ".0"); /* keeps -0.0 a float in JSON */
    }
    return;
  }
  case PQ_T_STRING:
    ed_buf_json_str(o, c->data + c->off[i], c->off[i + 1] - c->off[i]);
    return;
  case PQ_T_BINARY:
    ed_buf_putc(o, '"');
    for (uint32_t k = c->off[i]; k < c->off[i + 1]; k++)
      ed_buf_printf(o, "%02x", (unsigned char)c->data[k]);
    ed_buf_putc(o, '"');
    return;
  case PQ_T_STRUCT:
    ed_buf_putc(o, '{');
    for (size_t k = 0; k < n->nchildren; k++) {
      const pq_node_t *kn = pq_schema_node(s, n->children[k]);
      if (k)
        ed_buf_putc(o, ',');
      ed_buf_json_str(o, kn->name, strlen(kn->name));
      ed_buf_putc(o, ':');
      dump_val(o, s, n->children[k], &c->children[k], i);
    }
    ed_buf_putc(o, '}');
    return;
  case PQ_T_LIST:
  case PQ_T_MAP:
    ed_buf_putc(o, '[');
    for (uint32_t k = c->off[i]; k < c->off[i + 1]; k++) {
      if (k > c->off[i])
        ed_buf_putc(o, ',');
      if (n->type == PQ_T_MAP) {
        ed_buf_putc(o, '[');
        dump_val(o, s, n->children[0], &c->children[0], k);
        ed_buf_putc(o, ',');
        dump_val(o, s, n->children[1], &c->children[1], k);
        ed_buf_putc(o, ']');
      } else
        dump_val(o, s, n->children[0], &c->children[0], k);
    }
    ed_buf_putc(o, ']');
    return;
  }
}

static int cmd_read(const char *path) {
  size_t len;
  char *data = slurp(path, &len);
  ed_err_t e = {0};
  pq_reader_t *r;
  if (pq_reader_open(data, len, &r, &e)) {
    fprintf(stderr, "pq_tool: %s\n", e.msg);
    free(data);
    return 3;
  }
  const pq_schema_t *s = pq_reader_schema(r);
  const pq_node_t *root = pq_schema_node(s, PQ_ROOT);
  ed_buf_t o = ED_BUF_INIT;
  ed_buf_printf(&o, "{\"num_rows\":%lld,\"row_groups\":%zu,\"created_by\":",
                (long long)pq_reader_num_rows(r), pq_reader_num_row_groups(r));
  const char *cb = pq_reader_created_by(r);
  ed_buf_json_str(&o, cb, strlen(cb));
  ed_buf_puts(&o, ",\"columns\":[");
  for (size_t k = 0; k < root->nchildren; k++) {
    const pq_node_t *kn = pq_schema_node(s, root->children[k]);
    ed_buf_printf(&o, "%s", k ? "," : "");
    ed_buf_json_str(&o, kn->name, strlen(kn->name));
  }
  ed_buf_puts(&o, "],\"rows\":[");
  int rc = 0;
  bool first = true;
  for (size_t g = 0; g < pq_reader_num_row_groups(r); g++) {
    pq_batch_t *b;
    if (pq_reader_read_row_group(r, g, &b, &e)) {
      fprintf(stderr, "pq_tool: %s\n", e.msg);
      rc = 3;
      break;
    }
    for (size_t i = 0; i < b->nrows; i++) {
      ed_buf_puts(&o, first ? "[" : ",[");
      first = false;
      for (size_t k = 0; k < b->ncols; k++) {
        if (k)
          ed_buf_putc(&o, ',');
        dump_val(&o, s, root->children[k], &b->cols[k], i);
      }
      ed_buf_putc(&o, ']');
    }
    pq_batch_free(b);
  }
  ed_buf_puts(&o, "]}\n");
  if (!rc)
    fputs(o.data, stdout);
  ed_buf_fini(&o);
  pq_reader_free(r);
  free(data);
  return rc;
}

/* Reads IN with our reader and writes every row group again with our writer,
 * same schema (names included): the reader's batches are the writer's input. */
static int cmd_copy(const char *in, const char *out) {
  size_t len;
  char *data = slurp(in, &len);
  ed_err_t e = {0};
  pq_reader_t *r;
  if (pq_reader_open(data, len, &r, &e))
    die("open", &e);
  FILE *f = fopen(out, "wb");
  if (!f) {
    perror(out);
    return 1;
  }
  pq_writer_t *w;
  if (pq_writer_new(pq_reader_schema(r), NULL, file_sink, f, &w, &e))
    die("writer", &e);
  for (size_t i = 0; i < pq_reader_num_kv(r); i++) {
    const char *k, *v;
    pq_reader_kv(r, i, &k, &v);
    if (pq_writer_add_kv(w, k, v, &e))
      die("kv", &e);
  }
  for (size_t g = 0; g < pq_reader_num_row_groups(r); g++) {
    pq_batch_t *b;
    if (pq_reader_read_row_group(r, g, &b, &e))
      die("read", &e);
    if (pq_writer_write(w, b->cols, b->nrows, &e))
      die("write", &e);
    pq_batch_free(b);
    if (pq_writer_flush(w, &e))
      die("flush", &e);
  }
  if (pq_writer_close(w, &e))
    die("close", &e);
  fclose(f);
  printf("{\"rows\":%lld,\"bytes\":%llu}\n", (long long)pq_writer_num_rows(w),
         (unsigned long long)pq_writer_bytes(w));
  pq_writer_free(w);
  pq_reader_free(r);
  free(data);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 4 && !strcmp(argv[1], "copy"))
    return cmd_copy(argv[2], argv[3]);
  if (argc == 4 && !strcmp(argv[1], "write"))
    return cmd_write(argv[2], argv[3]);
  if (argc == 3 && !strcmp(argv[1], "read"))
    return cmd_read(argv[2]);
  fprintf(stderr, "usage: pq_tool write SPEC.json OUT.parquet | read IN.parquet\n");
  return 2;
}
