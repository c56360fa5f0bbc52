/* sink: Delta sink, exactly once (see sink.h for the protocol). */
#include "agent/sink.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/b64.h"
#include "common/log.h"
#include "common/time.h"
#include "delta/datafile.h"
#include "delta/features.h"
#include "delta/path.h"
#include "delta/stats.h"
#include "delta/table.h"
#include "store/store.h"
#include "stream/expr.h"
#include "stream/schema.h"

/* ---- checkpoints ---- */

ed_code_t ag_ckpt_set(ag_ckpt_t *c, const char *partition, int64_t seq, ed_err_t *err) {
  for (size_t i = 0; i < c->n; i++)
    if (!strcmp(c->partition[i], partition)) {
      c->seq[i] = seq;
      return ED_OK;
    }
  char **np = realloc(c->partition, (c->n + 1) * sizeof *np);
  if (np)
    c->partition = np;
  int64_t *ns = np ? realloc(c->seq, (c->n + 1) * sizeof *ns) : NULL;
  if (ns)
    c->seq = ns;
  char *id = ns ? strdup(partition) : NULL;
  if (!id)
    return ed_err_set(err, ED_E_NOMEM, "checkpoint: out of memory adding partition %s", partition);
  c->partition[c->n] = id;
  c->seq[c->n++] = seq;
  return ED_OK;
}

bool ag_ckpt_get(const ag_ckpt_t *c, const char *partition, int64_t *seq) {
  for (size_t i = 0; i < c->n; i++)
    if (!strcmp(c->partition[i], partition)) {
      *seq = c->seq[i];
      return true;
    }
  return false;
}

void ag_ckpt_fini(ag_ckpt_t *c) {
  if (!c)
    return;
  for (size_t i = 0; i < c->n; i++)
    free(c->partition[i]);
  free(c->partition);
  free(c->seq);
  ed_buf_fini(&c->state);
  memset(c, 0, sizeof *c);
}

ed_code_t ag_ckpt_to_json(const ag_ckpt_t *c, const char *query_id, ed_buf_t *out, ed_err_t *err) {
  ed_code_t rc = ed_buf_puts(out, "{\"version\":1,\"queryId\":");
  rc = rc ? rc : ed_buf_json_str(out, query_id, strlen(query_id));
  rc = rc ? rc : ed_buf_printf(out, ",\"batchId\":%" PRId64 ",\"sequenceNumbers\":{", c->batch_id);
  for (size_t i = 0; !rc && i < c->n; i++) {
    rc = i ? ed_buf_putc(out, ',') : ED_OK;
    rc = rc ? rc : ed_buf_json_str(out, c->partition[i], strlen(c->partition[i]));
    rc = rc ? rc : ed_buf_printf(out, ":%" PRId64, c->seq[i]);
  }
  rc = rc ? rc : ed_buf_puts(out, "}");
  if (!rc && c->watermark_us != INT64_MIN)
    rc = ed_buf_printf(out, ",\"watermarkUs\":%" PRId64, c->watermark_us);
  if (!rc && c->state.len) {
    char *b = malloc((c->state.len + 2) / 3 * 4 + 1);
    if (!b)
      return ed_err_set(err, ED_E_NOMEM, "checkpoint: out of memory");
    size_t n = ed_b64_encode((const uint8_t *)c->state.data, c->state.len, b);
    rc = ed_buf_puts(out, ",\"state\":\"");
    rc = rc ? rc : ed_buf_append(out, b, n);
    rc = rc ? rc : ed_buf_putc(out, '"');
    free(b);
  }
  rc = rc ? rc : ed_buf_puts(out, "}\n");
  return rc ? ed_err_set(err, rc, "checkpoint: out of memory") : ED_OK;
}

ed_code_t ag_ckpt_from_json(const char *name, const char *json, size_t n, ag_ckpt_t *c,
                            ed_err_t *err) {
  memset(c, 0, sizeof *c);
  c->watermark_us = INT64_MIN;
  struct json_tokener *tok = json_tokener_new();
  json_object *o = tok ? json_tokener_parse_ex(tok, json, (int)n) : NULL;
  json_tokener_free(tok);
  json_object *bid, *seqs, *wm, *st;
  if (!o || !json_object_is_type(o, json_type_object) ||
      !json_object_object_get_ex(o, "batchId", &bid) || !json_object_is_type(bid, json_type_int) ||
      !json_object_object_get_ex(o, "sequenceNumbers", &seqs) ||
      !json_object_is_type(seqs, json_type_object)) {
    json_object_put(o);
    return ed_err_set(err, ED_E_CORRUPT,
                      "checkpoint '%s': expected an object with batchId and sequenceNumbers", name);
  }
  c->batch_id = json_object_get_int64(bid);
  ed_code_t rc = ED_OK;
  json_object_object_foreach(seqs, k, v) {
    if (rc)
      break;
    if (!json_object_is_type(v, json_type_int))
      rc = ed_err_set(err, ED_E_CORRUPT, "checkpoint '%s': partition %s: expected an integer", name,
                      k);
    else
      rc = ag_ckpt_set(c, k, json_object_get_int64(v), err);
  }
  if (!rc && json_object_object_get_ex(o, "watermarkUs", &wm))
    c->watermark_us = json_object_get_int64(wm);
  if (!rc && json_object_object_get_ex(o, "state", &st) &&
      json_object_is_type(st, json_type_string)) {
    size_t sl = (size_t)json_object_get_string_len(st), outn = 0;
    rc = ed_buf_reserve(&c->state, sl / 4 * 3 + 3);
    if (!rc)
      rc = ed_b64_decode(json_object_get_string(st), sl, (uint8_t *)c->state.data, &outn, err);
    if (!rc)
      c->state.len = outn;
    else
      ed_err_prefix(err, "checkpoint '%s': state", name);
  }
  json_object_put(o);
  if (rc)
    ag_ckpt_fini(c);
  return rc;
}

/* ---- sm -> Parquet ---- */

static ed_code_t add_node(pq_schema_t *s, int parent, const char *name, const sm_type_t *t,
                          bool nullable, ed_err_t *err) {
  static const pq_type_t map[] = {
      [SM_STRING] = PQ_T_STRING, [SM_BINARY] = PQ_T_BINARY, [SM_BOOLEAN] = PQ_T_BOOLEAN,
      [SM_INT] = PQ_T_INT32,     [SM_BIGINT] = PQ_T_INT64,  [SM_FLOAT] = PQ_T_FLOAT,
      [SM_DOUBLE] = PQ_T_DOUBLE, [SM_DATE] = PQ_T_DATE,     [SM_TIMESTAMP] = PQ_T_TIMESTAMP,
      [SM_STRUCT] = PQ_T_STRUCT, [SM_ARRAY] = PQ_T_LIST,    [SM_MAP] = PQ_T_MAP,
  };
  int id;
  ed_code_t rc =
      pq_schema_add(s, parent, name, map[t->kind], nullable ? PQ_OPTIONAL : PQ_REQUIRED, &id, err);
  if (rc)
    return rc;
  switch (t->kind) {
  case SM_STRUCT:
    for (size_t i = 0; !rc && i < t->nfields; i++)
      rc = add_node(s, id, t->fields[i].name, t->fields[i].type, t->fields[i].nullable, err);
    return rc;
  case SM_ARRAY:
    return add_node(s, id, "element", t->elem, t->elem_nullable, err);
  case SM_MAP: {
    sm_type_t key = {.kind = SM_STRING};
    rc = add_node(s, id, "key", &key, false, err);
    return rc ? rc : add_node(s, id, "value", t->elem, t->elem_nullable, err);
  }
  default:
    return ED_OK;
  }
}

/* The Parquet schema of a sm STRUCT (fields nullable -> OPTIONAL). Caller
 * frees with pq_schema_free. */
static ed_code_t ag_pq_schema(const sm_type_t *st, pq_schema_t **out, ed_err_t *err) {
  *out = NULL;
  pq_schema_t *s;
  ed_code_t rc = pq_schema_new(&s, err);
  if (rc)
    return rc;
  for (size_t i = 0; !rc && i < st->nfields; i++)
    rc = add_node(s, PQ_ROOT, st->fields[i].name, st->fields[i].type, st->fields[i].nullable, err);
  rc = rc ? rc : pq_schema_finish(s, err);
  if (rc)
    pq_schema_free(s);
  else
    *out = s;
  return rc;
}

static size_t count_kids(const sm_col_t *c) {
  size_t n = c->nchildren;
  for (size_t i = 0; i < c->nchildren; i++)
    n += count_kids(&c->children[i]);
  return n;
}

static void view(const sm_col_t *c, pq_col_t *p, pq_col_t **next) {
  memset(p, 0, sizeof *p);
  p->len = c->len;
  p->valid = c->valid;
  memcpy(&p->v, &c->v, sizeof p->v);
  p->off = c->off;
  p->data = c->data;
  p->nchildren = c->nchildren;
  if (c->nchildren) {
    pq_col_t *kids = *next;
    *next += c->nchildren;
    for (size_t i = 0; i < c->nchildren; i++)
      view(&c->children[i], &kids[i], next);
    p->children = kids;
  }
}

/* Views the columns of b as pq_col_t (borrows b's arrays; valid until b
 * changes). cols has b->schema->nfields entries; kids is scratch the nested
 * columns use: caller frees *kids with free. */
static ed_code_t ag_pq_cols(const sm_batch_t *b, pq_col_t *cols, pq_col_t **kids, ed_err_t *err) {
  size_t n = 0, nf = b->schema->nfields;
  for (size_t i = 0; i < nf; i++)
    n += count_kids(&b->cols[i]);
  *kids = n ? calloc(n, sizeof **kids) : NULL;
  if (n && !*kids)
    return ed_err_set(err, ED_E_NOMEM, "batch of %zu rows: out of memory", b->nrows);
  pq_col_t *next = *kids;
  for (size_t i = 0; i < nf; i++)
    view(&b->cols[i], &cols[i], &next);
  return ED_OK;
}

/* ---- the sink ---- */

struct ag_dsink {
  st_store_t *store, *ckpts;
  dl_table_t *t;
  char *query_id;
  sm_type_t *schema;
  pq_schema_t *full, *data;
  size_t npart;
  int *part_idx; /* top-level column index of each partition column */
  bool *is_part; /* per top-level column */
  int64_t next_batch;
  bool shared; /* positions only in the per-partition txns (ag_dsink_opts_t.shared) */
  /* What this sink last committed per partition (its ptxns' bases; a
   * partition it never committed is at the table's value when opened, -1
   * when none). Advanced only after a commit lands: jobs commit in order. */
  ag_ckpt_t committed;
  pq_writer_opts_t pq;
  ag_dsink_timing_t timing;
  char **pnames; /* per top-level column: its name in Parquet and partitionValues */
  /* the table's row rules (CHECK constraints, invariants, generated columns),
   * compiled against the rows' schema */
  dl_rules_t rules;
  sm_expr_t **rexpr; /* the commit's (flush thread) */
  uint8_t *rsel;
  size_t rsel_cap;
  sm_expr_t **sexpr; /* ag_dsink_screen's (pipeline thread); NULL: on a computed column */
  uint8_t *ssel;
  size_t ssel_cap;
  /* Columns the table has and the rows lack that the sink computes: generated
   * columns (their expression over the rows) and the identity column. They
   * follow the rows' columns in s->schema. */
  sm_type_t *rows; /* the rows' STRUCT as given */
  size_t ncomp;
  struct comp {
    char *name;
    sm_expr_t *gen; /* generated: the expression, bound to the rows */
    bool identity;
    sm_col_t col;
  } * comp;
  sm_col_t *ext; /* the rows' column headers, then the computed ones */
};

/* @locality flush thread (ag-flush)  @locks none */
void ag_dsink_last_timing(const ag_dsink_t *s, ag_dsink_timing_t *out) { *out = s->timing; }

int64_t ag_dsink_next_batch(const ag_dsink_t *s) { return s->next_batch; }

void ag_dsink_free(ag_dsink_t *s) {
  if (!s)
    return;
  dl_table_free(s->t);
  ag_ckpt_fini(&s->committed);
  st_free(s->ckpts);
  st_free(s->store);
  free(s->query_id);
  pq_schema_free(s->full);
  pq_schema_free(s->data);
  free(s->part_idx);
  free(s->is_part);
  for (size_t i = 0; s->pnames && s->schema && i < s->schema->nfields; i++)
    free(s->pnames[i]);
  free(s->pnames);
  for (size_t i = 0; i < s->rules.n; i++) {
    sm_expr_free(s->rexpr ? s->rexpr[i] : NULL);
    sm_expr_free(s->sexpr ? s->sexpr[i] : NULL);
  }
  free(s->rexpr);
  free(s->rsel);
  free(s->sexpr);
  free(s->ssel);
  dl_rules_fini(&s->rules);
  for (size_t i = 0; i < s->ncomp; i++) {
    free(s->comp[i].name);
    sm_expr_free(s->comp[i].gen);
    sm_col_fini(&s->comp[i].col);
  }
  free(s->comp);
  free(s->ext);
  sm_type_free(s->rows);
  sm_type_free(s->schema);
  free(s);
}

static ed_code_t ckpt_key(int64_t batch, char out[40]) {
  snprintf(out, 40, "%" PRId64 ".json", batch);
  return ED_OK;
}

/* The partition of a per-partition txn appId of query q ("<q>/<partition>"),
 * or NULL when app is not one. Borrows app. */
static const char *ptxn_partition(const char *q, const char *app) {
  size_t n = strlen(q);
  if (strncmp(app, q, n) || app[n] != '/' || !app[n + 1] || strchr(app + n + 1, '/'))
    return NULL;
  return app + n + 1;
}

/* The table's per-partition positions of the sink's query into
 * s->committed. */
static ed_code_t read_ptxns(ag_dsink_t *s, ed_err_t *err) {
  for (size_t i = 0; i < dl_table_num_txns(s->t); i++) {
    const dl_txn_t *x = dl_table_txn_at(s->t, i);
    const char *p = ptxn_partition(s->query_id, x->app_id);
    ed_code_t rc = p ? ag_ckpt_set(&s->committed, p, x->version, err) : ED_OK;
    if (rc)
      return rc;
  }
  return ED_OK;
}

/* Whether rows of type w may be written into a table column of type h: the
 * same kind and nested field names, and nowhere a nullable row value where
 * the table promises none. Values that are never null fit a nullable column
 * (Spark marks every column it writes by DataFrame or writeStream nullable,
 * and writes non-null values into it). */
static bool type_fits(const sm_type_t *w, const sm_type_t *h) {
  if (w->kind != h->kind || w->nfields != h->nfields)
    return false;
  if (w->kind == SM_ARRAY || w->kind == SM_MAP)
    return (h->elem_nullable || !w->elem_nullable) && type_fits(w->elem, h->elem);
  for (size_t i = 0; i < w->nfields; i++)
    if (strcmp(w->fields[i].name, h->fields[i].name) ||
        (w->fields[i].nullable && !h->fields[i].nullable) ||
        !type_fits(w->fields[i].type, h->fields[i].type))
      return false;
  return true;
}

/* Rows of another shape would make files readers reject (or misread): an
 * existing table must carry the rows' columns (matched by name, as Delta
 * readers match them), each of the same type, where a column that the rows
 * never leave null may go into a nullable one (not the reverse). With merge, the rows' new
 * nullable columns are appended to the table's schema (one metaData commit,
 * Delta's mergeSchema); a column the rows lack or of another type is refused. */
static ed_code_t check_schema(const char *url, const pq_schema_t *full, dl_table_t *t, bool merge,
                              const char *const *computed, ed_err_t *err) {
  const dl_metadata_t *md = dl_table_metadata(t);
  ed_buf_t js = {0}, a = {0};
  ed_code_t rc = dl_schema_from_pq(full, &js, err);
  sm_type_t *want = NULL, *have = NULL;
  rc = rc ? rc : sm_schema_parse_json(js.data, js.len, &want, err);
  if (!rc && sm_schema_parse_json(md->schema_string, strlen(md->schema_string), &have, err))
    rc = ed_err_prefix(err, "table '%s': its schemaString", url);
  size_t added = 0;
  for (size_t i = 0; !rc && i < have->nfields; i++) {
    const sm_field_t *h = &have->fields[i];
    const sm_field_t *w = NULL;
    for (size_t k = 0; k < want->nfields; k++)
      if (!strcmp(want->fields[k].name, h->name))
        w = &want->fields[k];
    bool comp = false;
    for (size_t k = 0; computed && computed[k]; k++)
      comp |= !strcmp(computed[k], h->name);
    if (!w && comp)
      continue; /* generated or identity: the sink computes it */
    if (!w) {
      rc = ed_err_set(err, ED_E_SCHEMA,
                      "table '%s' has column '%s' but the rows lack it: write to a new path or "
                      "change the configuration",
                      url, h->name);
    } else if (!type_fits(w->type, h->type) || (w->nullable && !h->nullable)) {
      ed_buf_t x = {0}, y = {0};
      (void)sm_schema_type_to_ddl(h->type, &x);
      (void)sm_schema_type_to_ddl(w->type, &y);
      rc = ed_err_set(err, ED_E_SCHEMA,
                      "table '%s' column '%s' is %s%s but the rows have %s%s: write to a new path "
                      "or change the configuration",
                      url, h->name, x.data ? x.data : "", h->nullable ? "" : " NOT NULL",
                      y.data ? y.data : "", w->nullable ? "" : " NOT NULL");
      ed_buf_fini(&x), ed_buf_fini(&y);
    }
  }
  for (size_t k = 0; !rc && k < want->nfields; k++) {
    const sm_field_t *w = &want->fields[k];
    if (sm_type_field_index(have, w->name) >= 0 &&
        !strcmp(have->fields[sm_type_field_index(have, w->name)].name, w->name))
      continue;
    if (!merge || !w->nullable) {
      rc = ed_err_set(err, ED_E_SCHEMA, "table '%s' has no column '%s' that the rows have: %s", url,
                      w->name,
                      merge ? "a new column must be nullable"
                            : "set merge_schema = true to add it, or write to a new path");
      break;
    }
    sm_type_t *t2 = sm_type_clone(w->type);
    if (!t2 || (rc = sm_type_add_field(have, w->name, t2, true, err))) {
      rc = rc ? rc : ed_err_set(err, ED_E_NOMEM, "schema: out of memory");
      break;
    }
    added++;
  }
  if (!rc && added && strcmp(dl_feat_mapping_mode(t), "none"))
    rc = ed_err_set(err, ED_E_UNSUPPORTED,
                    "table '%s' uses column mapping: ehdelta does not assign the physical names "
                    "and ids new columns need; add them with Spark (ALTER TABLE ... ADD COLUMNS)",
                    url);
  if (!rc && added) {
    dl_metadata_t m = {0};
    rc = dl_metadata_copy(&m, md);
    rc = rc ? rc : sm_schema_to_json(have, &a);
    if (!rc) {
      free(m.schema_string);
      m.schema_string = strdup(a.data);
      if (!m.schema_string)
        rc = ed_err_set(err, ED_E_NOMEM, "schema: out of memory");
    }
    dl_commit_t c = {.operation = "ADD COLUMNS", .metadata = &m};
    rc = rc ? rc : dl_table_commit(t, &c, NULL, err);
    dl_metadata_fini(&m);
  }
  sm_type_free(want), sm_type_free(have);
  ed_buf_fini(&js), ed_buf_fini(&a);
  return rc;
}

/* Gives dst (a copy of the rows' type) the names of phys (the table's type
 * with physical names), field by field: type_fits made the nested shapes
 * equal. */
static ed_code_t rename_like(sm_type_t *dst, const sm_type_t *phys) {
  if (dst->kind == SM_ARRAY || dst->kind == SM_MAP)
    return dst->elem && phys->elem ? rename_like(dst->elem, phys->elem) : ED_OK;
  for (size_t i = 0; i < dst->nfields && i < phys->nfields; i++) {
    char *n = strdup(phys->fields[i].name);
    if (!n)
      return ED_E_NOMEM;
    free(dst->fields[i].name);
    dst->fields[i].name = n;
    ed_code_t rc = rename_like(dst->fields[i].type, phys->fields[i].type);
    if (rc)
      return rc;
  }
  return ED_OK;
}

/* Column mapping (name mode, Delta PROTOCOL.md "Column Mapping"): data files,
 * stats and partitionValues use each column's physical name. Rebuilds
 * s->full with them and fills s->pnames. */
static ed_code_t map_names(ag_dsink_t *s, const char *url, ed_err_t *err) {
  s->pnames = calloc(s->schema->nfields + 1, sizeof *s->pnames);
  if (!s->pnames)
    return ed_err_set(err, ED_E_NOMEM, "sink '%s': out of memory", url);
  bool mapped = !strcmp(dl_feat_mapping_mode(s->t), "name");
  ed_buf_t js = ED_BUF_INIT;
  sm_type_t *phys = NULL, *logical = NULL, *renamed = NULL;
  const dl_metadata_t *md = dl_table_metadata(s->t);
  ed_code_t rc = ED_OK;
  if (mapped) {
    rc = dl_feat_physical_schema(s->t, &js, err);
    rc = rc ? rc : sm_schema_parse_json(js.data, js.len, &phys, err);
    rc =
        rc ? rc : sm_schema_parse_json(md->schema_string, strlen(md->schema_string), &logical, err);
    if (!rc && !(renamed = sm_type_clone(s->schema)))
      rc = ed_err_set(err, ED_E_NOMEM, "sink '%s': out of memory", url);
  }
  for (size_t i = 0; !rc && i < s->schema->nfields; i++) {
    const char *name = s->schema->fields[i].name;
    if (mapped) {
      int k = sm_type_field_index(logical, name);
      if (k < 0)
        rc = ed_err_set(err, ED_E_SCHEMA, "table '%s' has no column '%s'", url, name);
      else if (rename_like(renamed->fields[i].type, phys->fields[k].type))
        rc = ed_err_set(err, ED_E_NOMEM, "sink '%s': out of memory", url);
      else
        name = phys->fields[k].name;
    }
    if (!rc && !(s->pnames[i] = strdup(name)))
      rc = ed_err_set(err, ED_E_NOMEM, "sink '%s': out of memory", url);
    if (!rc && mapped) {
      free(renamed->fields[i].name);
      renamed->fields[i].name = strdup(name);
      if (!renamed->fields[i].name)
        rc = ed_err_set(err, ED_E_NOMEM, "sink '%s': out of memory", url);
    }
  }
  if (!rc && mapped) {
    pq_schema_free(s->full);
    s->full = NULL;
    rc = ag_pq_schema(renamed, &s->full, err);
  }
  sm_type_free(phys), sm_type_free(logical), sm_type_free(renamed);
  ed_buf_fini(&js);
  return rc;
}

static const char *rule_kind(dl_rule_kind_t k) {
  return k == DL_RULE_CHECK       ? "CHECK constraint"
         : k == DL_RULE_INVARIANT ? "invariant on column"
                                  : "generated column";
}

/* Compiles the table's row rules against the rows' schema: a rule the
 * expression engine cannot parse or bind is refused here, before anything is
 * written. */
static ed_code_t compile_rules(ag_dsink_t *s, const char *url, ed_err_t *err) {
  if (!s->rules.n)
    return ED_OK;
  if (!(s->rexpr = calloc(s->rules.n, sizeof *s->rexpr)) ||
      !(s->sexpr = calloc(s->rules.n, sizeof *s->sexpr)))
    return ed_err_set(err, ED_E_NOMEM, "sink '%s': out of memory", url);
  static const char *const what[] = {"CHECK constraint", "invariant on column", "generated column"};
  for (size_t i = 0; i < s->rules.n; i++) {
    const dl_rule_t *r = &s->rules.v[i];
    ed_err_t e2 = {0};
    if (sm_expr_compile(r->expr, s->schema, &s->rexpr[i], &e2) == ED_OK &&
        sm_expr_type(s->rexpr[i])->kind == SM_BOOLEAN) {
      /* screening sees the rows before the computed columns: a rule on one
       * of those is left to the commit's check */
      if (sm_expr_compile(r->expr, s->rows, &s->sexpr[i], NULL) != ED_OK)
        s->sexpr[i] = NULL;
      continue;
    }
    return ed_err_set(err, ED_E_UNSUPPORTED,
                      "table '%s': %s %s (%s) cannot be enforced by ehdelta's expression engine "
                      "(%s); refusing to append",
                      url, what[r->kind], r->name, r->source,
                      e2.msg[0] ? e2.msg : "not a BOOLEAN expression");
  }
  return ED_OK;
}

/* The first rule a row of b breaks: ED_E_INVALID naming the rule, the row and
 * what the table says, before anything of the batch is written. */
static ed_code_t check_rules(ag_dsink_t *s, const sm_batch_t *b, int64_t batch, ed_err_t *err) {
  if (!s->rules.n || !b || !b->nrows)
    return ED_OK;
  if (b->nrows > s->rsel_cap) {
    uint8_t *n = realloc(s->rsel, b->nrows);
    if (!n)
      return ed_err_set(err, ED_E_NOMEM, "batch of %zu rows: out of memory", b->nrows);
    s->rsel = n;
    s->rsel_cap = b->nrows;
  }
  int64_t now = ed_time_now_us();
  for (size_t i = 0; i < s->rules.n; i++) {
    size_t nsel = 0;
    ed_code_t rc = sm_expr_filter(s->rexpr[i], b, now, s->rsel, &nsel, err);
    if (rc)
      return rc;
    if (nsel == b->nrows)
      continue;
    size_t row = 0;
    while (row < b->nrows && s->rsel[row])
      row++;
    return ed_err_set(err, ED_E_INVALID,
                      "table '%s': %s '%s' (%s) is violated by %zu of %zu rows of batch %" PRId64
                      " (the first is row %zu); nothing of the batch was written",
                      st_url(s->store), rule_kind(s->rules.v[i].kind), s->rules.v[i].name,
                      s->rules.v[i].source, b->nrows - nsel, b->nrows, batch, row);
  }
  return ED_OK;
}

/* The columns the sink may compute (NULL-terminated; names borrowed from
 * s->rules and ids): top-level generated columns and identity columns. An
 * identity column the rows carry must allow explicit values. */
static ed_code_t computable(ag_dsink_t *s, const char *url, const dl_identity_t *ids, size_t nids,
                            const char ***out, ed_err_t *err) {
  *out = NULL;
  const char **v = calloc(s->rules.n + nids + 1, sizeof *v);
  if (!v)
    return ed_err_set(err, ED_E_NOMEM, "sink '%s': out of memory", url);
  *out = v; /* the caller frees it, also after an error below */
  size_t n = 0;
  for (size_t i = 0; i < s->rules.n; i++)
    if (s->rules.v[i].kind == DL_RULE_GENERATED && s->rules.v[i].column)
      v[n++] = s->rules.v[i].column;
  if (nids > 1)
    return ed_err_set(err, ED_E_UNSUPPORTED,
                      "table '%s' has %zu identity columns; ehdelta generates one", url, nids);
  for (size_t i = 0; i < nids; i++) {
    if (sm_type_field_index(s->rows, ids[i].column) >= 0 && !ids[i].allow_explicit)
      return ed_err_set(err, ED_E_UNSUPPORTED,
                        "table '%s': column '%s' is GENERATED ALWAYS AS IDENTITY: its values come "
                        "from the table, so the rows must not carry it (drop it from the "
                        "configuration)",
                        url, ids[i].column);
    v[n++] = ids[i].column;
  }
  return ED_OK;
}

/* Appends to s->schema each computable column of the table the rows lack,
 * with the table's type, and binds its generation expression to the rows. */
static ed_code_t extend(ag_dsink_t *s, const char *url, const char *const *cols, ed_err_t *err) {
  const dl_metadata_t *md = dl_table_metadata(s->t);
  sm_type_t *have = NULL;
  ed_code_t rc = sm_schema_parse_json(md->schema_string, strlen(md->schema_string), &have, err);
  for (size_t i = 0; !rc && cols[i]; i++) {
    int k = sm_type_field_index(have, cols[i]);
    if (k < 0 || sm_type_field_index(s->rows, cols[i]) >= 0)
      continue;
    const sm_field_t *f = &have->fields[k];
    struct comp *nc = realloc(s->comp, (s->ncomp + 1) * sizeof *nc);
    if (!nc) {
      rc = ed_err_set(err, ED_E_NOMEM, "sink '%s': out of memory", url);
      break;
    }
    s->comp = nc;
    struct comp *c = memset(&s->comp[s->ncomp++], 0, sizeof *c);
    if (!(c->name = strdup(f->name))) {
      rc = ed_err_set(err, ED_E_NOMEM, "sink '%s': out of memory", url);
      break;
    }
    const dl_rule_t *g = NULL;
    for (size_t r = 0; r < s->rules.n; r++)
      if (s->rules.v[r].kind == DL_RULE_GENERATED && s->rules.v[r].column &&
          !strcmp(s->rules.v[r].column, f->name))
        g = &s->rules.v[r];
    c->identity = !g;
    if (g) {
      ed_err_t e2 = {0};
      if (sm_expr_compile(g->source, s->rows, &c->gen, &e2) != ED_OK)
        rc = ed_err_set(err, ED_E_UNSUPPORTED,
                        "table '%s': generated column '%s' = %s cannot be computed by ehdelta's "
                        "expression engine (%s); refusing to append",
                        url, f->name, g->source, e2.msg);
      else if (sm_expr_type(c->gen)->kind != f->type->kind)
        rc = ed_err_set(err, ED_E_UNSUPPORTED,
                        "table '%s': generated column '%s' is %s but %s gives %s; refusing to "
                        "append",
                        url, f->name, sm_kind_name(f->type->kind), g->source,
                        sm_kind_name(sm_expr_type(c->gen)->kind));
    }
    sm_type_t *ty = rc ? NULL : sm_type_clone(f->type);
    if (!rc && (!ty || sm_type_add_field(s->schema, f->name, ty, f->nullable, err)))
      rc = ed_err_set(err, ED_E_NOMEM, "sink '%s': out of memory", url);
  }
  sm_type_free(have);
  for (size_t i = 0; !rc && i < s->ncomp; i++)
    sm_col_init(&s->comp[i].col, s->schema->fields[s->rows->nfields + i].type);
  if (!rc && s->ncomp) {
    if (!(s->ext = calloc(s->schema->nfields, sizeof *s->ext)))
      return ed_err_set(err, ED_E_NOMEM, "sink '%s': out of memory", url);
    pq_schema_free(s->full);
    s->full = NULL;
    rc = ag_pq_schema(s->schema, &s->full, err);
  }
  return rc;
}

/* b with the computed columns after its own (a view in s->ext), and, for an
 * identity column, the metaData that advances its high water mark. */
static ed_code_t compute(ag_dsink_t *s, const sm_batch_t *b, sm_batch_t *out, dl_metadata_t *md,
                         bool *have_md, ed_err_t *err) {
  *have_md = false;
  *out = *b;
  if (!s->ncomp || !b->nrows)
    return ED_OK;
  size_t nr = s->rows->nfields;
  memcpy(s->ext, b->cols, nr * sizeof *s->ext);
  int64_t now = ed_time_now_us();
  for (size_t i = 0; i < s->ncomp; i++) {
    struct comp *c = &s->comp[i];
    ed_code_t rc = ED_OK;
    if (c->gen) {
      rc = sm_expr_eval(c->gen, b, now, &c->col, err);
    } else {
      /* PROTOCOL.md "Identity Columns": values start at start, go by step,
       * and the commit records the last one as highWaterMark */
      dl_identity_t *ids = NULL;
      size_t n = 0;
      rc = dl_feat_identities(s->t, &ids, &n, err);
      const dl_identity_t *id = NULL;
      for (size_t k = 0; !rc && k < n; k++)
        if (!strcmp(ids[k].column, c->name))
          id = &ids[k];
      if (!rc && !id)
        rc = ed_err_set(err, ED_E_SCHEMA, "table %s: column '%s' is no longer an identity column",
                        st_url(s->store), c->name);
      if (!rc) {
        int64_t v = id->has_hwm ? id->hwm : id->start - id->step;
        sm_col_reset(&c->col);
        for (size_t r = 0; !rc && r < b->nrows; r++)
          rc = sm_col_append_i64(&c->col, v += id->step);
        if (rc)
          rc = ed_err_set(err, rc, "identity: out of memory");
        else if (!(rc = dl_feat_identity_advance(s->t, c->name, v, md, err)))
          *have_md = true;
      }
      dl_identities_free(ids, n);
    }
    if (rc)
      return rc;
    s->ext[nr + i] = c->col;
  }
  out->schema = s->schema;
  out->cols = s->ext;
  return ED_OK;
}

/* Spark's positions as this query's first batch (see sink.h). */
static ed_code_t take_over(ag_dsink_t *s, const ag_dsink_opts_t *o, ag_ckpt_t *resume,
                           ed_err_t *err) {
  const ag_spark_pos_t *sp = o->takeover;
  ag_spark_pos_t later = {0};
  int64_t tv = -1;
  bool has = sp->query_id && dl_table_txn_version(s->t, sp->query_id, &tv);
  if (!has && !o->takeover_force)
    return ed_err_set(err, ED_E_CONFIG,
                      "table '%s' has no commit of Spark query %s (the id in %s/metadata): "
                      "expected the checkpoint of the query that wrote this table; set "
                      "from_spark_force = true to take its positions anyway",
                      o->url, sp->query_id ? sp->query_id : "(none)", sp->url);
  ed_code_t rc = ED_OK;
  if (has && tv > sp->batch_id) {
    /* Spark's Delta sink committed batch tv, then stopped before writing
     * commits/tv: the table has it, so its end is where to go on. */
    if ((rc = ag_spark_read(sp->url, o->takeover_store, tv, &later, err)))
      return ed_err_prefix(err, "table '%s' holds Spark batch %" PRId64, o->url, tv);
    sp = &later;
  }
  if (resume->batch_id >= 0 && !o->takeover_force) {
    for (size_t i = 0; !rc && i < sp->n; i++) {
      int64_t have;
      if (!ag_ckpt_get(resume, sp->partition[i], &have) || have < sp->next[i] - 1)
        rc = ed_err_set(err, ED_E_CONFIG,
                        "table '%s' already has ehdelta positions for query '%s' (batch %" PRId64
                        "), behind Spark's batch %" PRId64 " on partition %s: set "
                        "from_spark_force = true to replace them with Spark's, or remove "
                        "from_spark_checkpoint",
                        o->url, o->query_id, resume->batch_id, sp->batch_id, sp->partition[i]);
    }
    if (!rc)
      ED_LOG_INFO("spark_takeover", "table=%s already=true batch=%" PRId64, o->url,
                  resume->batch_id);
    ag_spark_pos_fini(&later);
    return rc;
  }
  ag_ckpt_t ck = {.batch_id = s->next_batch, .watermark_us = INT64_MIN};
  for (size_t i = 0; !rc && i < sp->n; i++)
    rc = ag_ckpt_set(&ck, sp->partition[i], sp->next[i] - 1, err);
  rc = rc ? rc : ag_dsink_commit(s, NULL, &ck, NULL, NULL, err);
  if (!rc) {
    ED_LOG_INFO("spark_takeover",
                "table=%s spark_batch=%" PRId64 " partitions=%zu query=%s batch=%" PRId64, o->url,
                sp->batch_id, sp->n, o->query_id, ck.batch_id);
    ag_ckpt_fini(resume);
    *resume = ck;
  } else {
    ag_ckpt_fini(&ck);
  }
  ag_spark_pos_fini(&later);
  return rc;
}

size_t ag_dsink_num_rules(const ag_dsink_t *s) { return s->rules.n; }

void ag_dsink_rule_text(const ag_dsink_t *s, size_t k, char *buf, size_t n) {
  const dl_rule_t *r = &s->rules.v[k];
  snprintf(buf, n, "%s %s (%s) of table %s", rule_kind(r->kind), r->name, r->source,
           st_url(s->store));
}

ed_code_t ag_dsink_screen(ag_dsink_t *s, const sm_batch_t *chunk, const uint8_t *sel,
                          int64_t now_us, uint8_t *bad, size_t *nbad, ed_err_t *err) {
  *nbad = 0;
  if (!chunk->nrows)
    return ED_OK;
  memset(bad, 0, chunk->nrows);
  if (chunk->nrows > s->ssel_cap) {
    uint8_t *n = realloc(s->ssel, chunk->nrows * 2);
    if (!n)
      return ed_err_set(err, ED_E_NOMEM, "chunk of %zu rows: out of memory", chunk->nrows);
    s->ssel = n;
    s->ssel_cap = chunk->nrows * 2;
  }
  for (size_t k = 0; k < s->rules.n; k++) {
    size_t ok = 0;
    if (!s->sexpr[k])
      continue;
    ed_code_t rc = sm_expr_filter(s->sexpr[k], chunk, now_us, s->ssel, &ok, err);
    if (rc)
      return rc;
    for (size_t i = 0; ok < chunk->nrows && i < chunk->nrows; i++)
      if (!s->ssel[i] && !bad[i] && (!sel || sel[i])) {
        bad[i] = (uint8_t)(k < 254 ? k + 1 : 255);
        (*nbad)++;
      }
  }
  return ED_OK;
}

/* @locality caller's thread, at start-up  @locks none */
ed_code_t ag_dsink_open(const ag_dsink_opts_t *o, ag_dsink_t **out, ag_ckpt_t *resume,
                        ed_err_t *err) {
  *out = NULL;
  memset(resume, 0, sizeof *resume);
  resume->batch_id = -1;
  resume->watermark_us = INT64_MIN;
  ag_dsink_t *s = calloc(1, sizeof *s);
  if (!s || !(s->query_id = strdup(o->query_id)) || !(s->schema = sm_type_clone(o->schema)) ||
      !(s->rows = sm_type_clone(o->schema))) {
    ag_dsink_free(s);
    return ed_err_set(err, ED_E_NOMEM, "sink '%s': out of memory", o->url);
  }
  s->shared = o->shared;
  if (o->shared && o->takeover) {
    ag_dsink_free(s);
    return ed_err_set(err, ED_E_CONFIG,
                      "sink '%s': a Spark takeover needs one reader of every partition; expected "
                      "no checkpoint store (shared reading) with from_spark_checkpoint",
                      o->url);
  }
  pq_writer_opts_init(&s->pq);
  if (o->zstd_level)
    s->pq.zstd_level = o->zstd_level;
  ed_code_t rc = st_open(o->url, o->store, &s->store, err);
  rc = rc ? rc : ag_pq_schema(s->schema, &s->full, err);
  if (!rc)
    rc = o->checkpoint_url ? st_open(o->checkpoint_url, o->store, &s->ckpts, err)
                           : st_open_sub(s->store, "_ehdelta/checkpoints", &s->ckpts, err);
  const char **comp = NULL;
  dl_identity_t *ids = NULL;
  size_t nids = 0;
  if (!rc) {
    rc = dl_table_open(s->store, &s->t, err);
    /* the protocol first: check_schema may commit (ADD COLUMNS) */
    if (!rc)
      rc = dl_feat_check(s->t, DL_OP_APPEND, err);
    rc = rc ? rc : dl_feat_rules(s->t, &s->rules, err);
    rc = rc ? rc : dl_feat_identities(s->t, &ids, &nids, err);
    rc = rc ? rc : computable(s, o->url, ids, nids, &comp, err);
    if (!rc)
      rc = check_schema(o->url, s->full, s->t, o->merge_schema, comp, err);
    rc = rc ? rc : extend(s, o->url, comp, err);
    if (rc == ED_E_NOT_FOUND) {
      ed_buf_t js = {0};
      rc = dl_schema_from_pq(s->full, &js, err);
      dl_create_opts_t co = {.schema_string = js.data, .partition_cols = o->partition_by};
      if (!rc)
        rc = dl_table_create(s->store, &co, &s->t, err);
      ed_buf_fini(&js);
    }
  }
  free(comp);
  dl_identities_free(ids, nids);
  /* The table's own partition columns rule (it may predate this config). */
  const dl_metadata_t *md = rc ? NULL : dl_table_metadata(s->t);
  if (md) {
    s->is_part = calloc(s->schema->nfields + 1, sizeof *s->is_part);
    s->part_idx = calloc(md->npart + 1, sizeof *s->part_idx);
    if (!s->is_part || !s->part_idx)
      rc = ed_err_set(err, ED_E_NOMEM, "sink '%s': out of memory", o->url);
    for (size_t i = 0; !rc && i < md->npart; i++) {
      int k = -1;
      for (size_t f = 0; f < s->schema->nfields; f++)
        if (!strcmp(s->schema->fields[f].name, md->partition_cols[i]))
          k = (int)f;
      if (k < 0)
        rc = ed_err_set(err, ED_E_SCHEMA,
                        "table '%s' is partitioned by '%s', a column the rows lack", o->url,
                        md->partition_cols[i]);
      else
        s->part_idx[s->npart++] = k, s->is_part[k] = true;
    }
    rc = rc ? rc : compile_rules(s, o->url, err);
    rc = rc ? rc : map_names(s, o->url, err);
    const char **pp = rc ? NULL : calloc(md->npart + 1, sizeof *pp);
    if (!rc && !pp)
      rc = ed_err_set(err, ED_E_NOMEM, "sink '%s': out of memory", o->url);
    for (size_t i = 0; !rc && i < s->npart; i++)
      pp[i] = s->pnames[s->part_idx[i]];
    if (!rc)
      rc = dl_schema_without(s->full, pp, &s->data, err);
    free(pp);
  }
  rc = rc ? rc : read_ptxns(s, err);
  int64_t v;
  if (!rc && s->shared) {
    /* any number that grows will do for progress lines: the table's
     * version is one that also grows across reopenings */
    s->next_batch = dl_table_version(s->t) + 1;
  } else if (!rc && dl_table_txn_version(s->t, s->query_id, &v)) {
    char key[40];
    ckpt_key(v, key);
    ed_buf_t b = {0};
    rc = st_get(s->ckpts, key, 0, -1, &b, err);
    if (rc)
      ed_err_prefix(err, "sink '%s': batch %" PRId64 " landed but its checkpoint", o->url, v);
    else
      rc = ag_ckpt_from_json(key, b.data, b.len, resume, err);
    ed_buf_fini(&b);
    if (!rc && resume->batch_id != v)
      rc = ed_err_set(err, ED_E_CORRUPT, "checkpoint '%s' says batch %" PRId64, key,
                      resume->batch_id);
    s->next_batch = v + 1;
  }
  /* A partition resumes after the further of its batch checkpoint's and
   * its per-partition txn's position (the latter alone when shared). */
  for (size_t i = 0; !rc && i < s->committed.n; i++) {
    int64_t have;
    if (!ag_ckpt_get(resume, s->committed.partition[i], &have) || have < s->committed.seq[i])
      rc = ag_ckpt_set(resume, s->committed.partition[i], s->committed.seq[i], err);
  }
  if (!rc && o->takeover)
    rc = take_over(s, o, resume, err);
  if (rc) {
    ag_ckpt_fini(resume);
    resume->batch_id = -1;
    ag_dsink_free(s);
    return rc;
  }
  *out = s;
  return ED_OK;
}

/* Writes the rows of b whose sel is set (all when sel NULL) as one file. */
static ed_code_t write_file(ag_dsink_t *s, const sm_batch_t *b, const dl_kv_t *pv, dl_add_t *add,
                            ed_err_t *err) {
  size_t nf = b->schema->nfields, nd = 0;
  pq_col_t *all = calloc(nf + 1, sizeof *all), *data = calloc(nf + 1, sizeof *data), *kids = NULL;
  if (!all || !data) {
    free(all), free(data);
    return ed_err_set(err, ED_E_NOMEM, "batch: out of memory");
  }
  ed_code_t rc = ag_pq_cols(b, all, &kids, err);
  for (size_t i = 0; !rc && i < nf; i++)
    if (!s->is_part[i])
      data[nd++] = all[i];
  dl_file_writer_t *w = NULL;
  rc = rc ? rc : dl_file_writer_new(s->t, s->data, pv, s->npart, &s->pq, &w, err);
  rc = rc ? rc : dl_file_writer_write(w, data, b->nrows, err);
  rc = rc ? rc : dl_file_writer_finish(w, true, add, err);
  dl_file_writer_free(w);
  free(kids), free(all), free(data);
  return rc;
}

/* The partition values of row r, joined for grouping (NUL-separated, a null
 * marked by \1). */
static ed_code_t row_key(ag_dsink_t *s, const pq_col_t *cols, size_t r, ed_buf_t *key,
                         ed_err_t *err) {
  key->len = 0;
  for (size_t i = 0; i < s->npart; i++) {
    const pq_node_t *nd =
        pq_schema_node(s->full, pq_schema_find(s->full, PQ_ROOT, s->pnames[s->part_idx[i]]));
    bool null = false;
    size_t at = key->len;
    ed_code_t rc = dl_pv_format(nd->type, &cols[s->part_idx[i]], r, key, &null, err);
    if (rc)
      return rc;
    if (null) {
      key->len = at;
      rc = ed_buf_putc(key, '\1');
    }
    rc = rc ? rc : ed_buf_putc(key, '\0');
    if (rc)
      return ed_err_set(err, rc, "partition value: out of memory");
  }
  return ED_OK;
}

/* Whether every row of b has row 0's partition values (the usual case: one
 * processing_date per batch), compared on the column values themselves so
 * that one file is written from b without formatting a key per row or
 * copying the batch. Nested or unusual kinds answer false (the general path). */
static bool one_partition(const ag_dsink_t *s, const sm_batch_t *b) {
  for (size_t i = 0; i < s->npart; i++) {
    const sm_col_t *c = &b->cols[s->part_idx[i]];
    for (size_t r = 1; r < b->nrows; r++) {
      if (c->valid[r] != c->valid[0])
        return false;
      if (!c->valid[r])
        continue;
      size_t n0, n1;
      switch (c->type->kind) {
      case SM_INT:
      case SM_DATE:
        if (c->v.i32[r] != c->v.i32[0])
          return false;
        break;
      case SM_BIGINT:
      case SM_TIMESTAMP:
        if (c->v.i64[r] != c->v.i64[0])
          return false;
        break;
      case SM_BOOLEAN:
        if (c->v.b8[r] != c->v.b8[0])
          return false;
        break;
      case SM_STRING:
      case SM_BINARY: {
        const char *a = sm_col_str(c, 0, &n0), *z = sm_col_str(c, r, &n1);
        if (n0 != n1 || memcmp(a, z, n0))
          return false;
        break;
      }
      default:
        return false;
      }
    }
  }
  return true;
}

/* @locality flush thread (ag-flush)  @locks none: a sink is committed by one thread at a time */
ed_code_t ag_dsink_commit(ag_dsink_t *s, const sm_batch_t *b, const ag_ckpt_t *ck, int64_t *version,
                          bool *already, ed_err_t *err) {
  if (ck->batch_id != s->next_batch)
    return ed_err_set(err, ED_E_INVALID, "sink: batch %" PRId64 " given, %" PRId64 " expected",
                      ck->batch_id, s->next_batch);
  /* 0. the computed columns, then the table's row rules, before anything is
   * written */
  sm_batch_t ext;
  dl_metadata_t idmd = {0};
  bool have_md = false;
  ed_code_t rc = b ? compute(s, b, &ext, &idmd, &have_md, err) : ED_OK;
  if (b && !rc)
    b = &ext;
  rc = rc ? rc : check_rules(s, b, ck->batch_id, err);
  if (!rc && s->shared && ck->state.len)
    rc = ed_err_set(err, ED_E_INVALID,
                    "sink '%s': batch %" PRId64 " carries operator state, which a shared sink "
                    "cannot keep (no checkpoint file): expected a stateless query",
                    st_url(s->store), ck->batch_id);
  /* the partitions whose position the batch moves, each on the base this
   * sink last committed; the records are made now so that advancing them
   * after the commit cannot fail */
  dl_ptxn_t *ptxns = rc ? NULL : calloc(ck->n + 1, sizeof *ptxns);
  size_t nptxns = 0, *at = rc ? NULL : calloc(ck->n + 1, sizeof *at);
  ed_buf_t ids = ED_BUF_INIT; /* the appIds, NUL-separated */
  if (!rc && (!ptxns || !at))
    rc = ed_err_set(err, ED_E_NOMEM, "batch %" PRId64 ": out of memory", ck->batch_id);
  for (size_t i = 0; !rc && i < ck->n; i++) {
    int64_t base;
    if (!ag_ckpt_get(&s->committed, ck->partition[i], &base)) {
      base = -1;
      rc = ag_ckpt_set(&s->committed, ck->partition[i], -1, err);
    }
    if (rc || ck->seq[i] == base)
      continue;
    at[nptxns] = ids.len;
    ptxns[nptxns++] = (dl_ptxn_t){NULL, base, ck->seq[i]};
    rc = ed_buf_printf(&ids, "%s/%s", s->query_id, ck->partition[i]);
    rc = rc ? rc : ed_buf_putc(&ids, '\0');
    if (rc)
      rc = ed_err_set(err, rc, "batch %" PRId64 ": out of memory", ck->batch_id);
  }
  for (size_t i = 0; !rc && i < nptxns; i++)
    ptxns[i].app_id = ids.data + at[i];
  free(at);
  if (rc) {
    free(ptxns);
    ed_buf_fini(&ids);
    dl_metadata_fini(&idmd);
    return rc;
  }
  /* 1. the checkpoint, before anything can land (shared: none, the
   * positions are the ptxns) */
  memset(&s->timing, 0, sizeof s->timing);
  int64_t t0 = ed_time_mono_us();
  if (!s->shared) {
    ed_buf_t js = {0};
    char key[40];
    ckpt_key(ck->batch_id, key);
    rc = ag_ckpt_to_json(ck, s->query_id, &js, err);
    rc = rc ? rc : st_put(s->ckpts, key, js.data, js.len, err);
    ed_buf_fini(&js);
  }
  if (rc) {
    free(ptxns);
    ed_buf_fini(&ids);
    dl_metadata_fini(&idmd);
    return rc;
  }
  int64_t t1 = ed_time_mono_us();
  s->timing.checkpoint_us = t1 - t0;
  /* 2. the files: one per distinct partition value */
  dl_add_t *adds = NULL;
  size_t nadds = 0;
  if (b && b->nrows) {
    uint8_t *done = calloc(b->nrows, 1), *sel = calloc(b->nrows, 1);
    pq_col_t *cols = calloc(b->schema->nfields + 1, sizeof *cols), *kids = NULL;
    sm_batch_t *part = sm_batch_new(b->schema);
    ed_buf_t k0 = {0}, k1 = {0};
    if (!done || !sel || !cols || !part)
      rc = ed_err_set(err, ED_E_NOMEM, "batch of %zu rows: out of memory", b->nrows);
    rc = rc ? rc : ag_pq_cols(b, cols, &kids, err);
    bool single = !rc && s->npart && one_partition(s, b);
    for (size_t r = 0; !rc && r < b->nrows; r++) {
      if (done[r])
        continue;
      const sm_batch_t *src = b;
      if (single) {
        rc = row_key(s, cols, r, &k0, err);
        memset(done, 1, b->nrows);
      } else if (s->npart) {
        rc = row_key(s, cols, r, &k0, err);
        memset(sel, 0, b->nrows);
        for (size_t q = r; !rc && q < b->nrows; q++) {
          if (done[q])
            continue;
          rc = row_key(s, cols, q, &k1, err);
          if (!rc && k1.len == k0.len && !memcmp(k1.data, k0.data, k0.len))
            sel[q] = done[q] = 1;
        }
        sm_batch_reset(part);
        rc = rc ? rc : sm_batch_append_selected(part, b, sel);
        src = part;
      } else {
        memset(done, 1, b->nrows);
      }
      dl_kv_t pv[16] = {{0}};
      char *p = k0.data;
      for (size_t i = 0; !rc && i < s->npart && i < 16; i++) {
        pv[i].key = s->pnames[s->part_idx[i]];
        pv[i].value = *p == '\1' ? NULL : p;
        p += strlen(p) + 1;
      }
      dl_add_t *na = rc ? NULL : realloc(adds, (nadds + 1) * sizeof *na);
      if (!rc && !na)
        rc = ed_err_set(err, ED_E_NOMEM, "out of memory");
      if (!rc) {
        adds = na;
        memset(&adds[nadds], 0, sizeof *adds);
        rc = write_file(s, src, pv, &adds[nadds], err);
        if (!rc)
          nadds++;
      }
    }
    ed_buf_fini(&k0), ed_buf_fini(&k1);
    sm_batch_free(part);
    free(kids), free(cols), free(sel), free(done);
  }
  /* 3. the commit, with the txn that makes a replay a no-op */
  int64_t t2 = ed_time_mono_us();
  s->timing.files_us = t2 - t1;
  s->timing.files = nadds;
  for (size_t i = 0; i < nadds; i++)
    s->timing.bytes += adds[i].size;
  dl_commit_result_t res = {.version = dl_table_version(s->t)};
  ed_buf_t params = ED_BUF_INIT;
  /* shared: a batch that moves nothing and adds nothing has nothing to say */
  if (!rc && (!s->shared || nadds || nptxns || have_md)) {
    dl_commit_t c = {.adds = adds,
                     .nadds = nadds,
                     .app_id = s->shared ? NULL : s->query_id,
                     .txn_version = ck->batch_id,
                     .metadata = have_md ? &idmd : NULL,
                     .ptxns = ptxns,
                     .nptxns = nptxns};
    if (s->shared) {
      /* Spark's operationParameters of a streaming append, our local batch
       * number as its epoch */
      rc = ed_buf_puts(&params, "{\"outputMode\":\"Append\",\"queryId\":");
      rc = rc ? rc : ed_buf_json_str(&params, s->query_id, strlen(s->query_id));
      rc = rc ? rc : ed_buf_printf(&params, ",\"epochId\":\"%" PRId64 "\"}", ck->batch_id);
      c.params_json = params.data;
      if (rc)
        rc = ed_err_set(err, rc, "batch %" PRId64 ": out of memory", ck->batch_id);
    }
    rc = rc ? rc : dl_table_commit(s->t, &c, &res, err);
  }
  ed_buf_fini(&params);
  dl_metadata_fini(&idmd);
  for (size_t i = 0; i < nadds; i++)
    dl_add_fini(&adds[i]);
  free(adds);
  /* Landed, or found landed: the bases move to what this batch committed
   * (not to what the table holds: a batch another owner already covered
   * leaves this sink behind it, and its next commit is fenced). */
  for (size_t i = 0; !rc && i < ck->n; i++)
    for (size_t k = 0; k < s->committed.n; k++)
      if (!strcmp(s->committed.partition[k], ck->partition[i]))
        s->committed.seq[k] = ck->seq[i];
  free(ptxns);
  ed_buf_fini(&ids);
  if (rc)
    return rc;
  s->timing.commit_us = ed_time_mono_us() - t2;
  s->next_batch = ck->batch_id + 1;
  if (version)
    *version = res.version;
  if (already)
    *already = res.already_committed;
  return ED_OK;
}
