/* sink: Delta sink, exactly once (see sink.h for the protocol). */
#include "agent/sink.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/b64.h"
#include "common/time.h"
#include "delta/datafile.h"
#include "delta/path.h"
#include "delta/stats.h"
#include "delta/table.h"
#include "store/store.h"
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

ed_code_t ag_pq_schema(const sm_type_t *st, pq_schema_t **out, ed_err_t *err) {
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

ed_code_t ag_pq_cols(const sm_batch_t *b, pq_col_t *cols, pq_col_t **kids, ed_err_t *err) {
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
  pq_writer_opts_t pq;
  ag_dsink_timing_t timing;
};

void ag_dsink_last_timing(const ag_dsink_t *s, ag_dsink_timing_t *out) { *out = s->timing; }

int64_t ag_dsink_next_batch(const ag_dsink_t *s) { return s->next_batch; }

void ag_dsink_free(ag_dsink_t *s) {
  if (!s)
    return;
  dl_table_free(s->t);
  st_free(s->ckpts);
  st_free(s->store);
  free(s->query_id);
  sm_type_free(s->schema);
  pq_schema_free(s->full);
  pq_schema_free(s->data);
  free(s->part_idx);
  free(s->is_part);
  free(s);
}

static ed_code_t ckpt_key(int64_t batch, char out[40]) {
  snprintf(out, 40, "%" PRId64 ".json", batch);
  return ED_OK;
}

/* Rows of another shape would make files readers reject (or misread): an
 * existing table must carry the rows' columns (matched by name, as Delta
 * readers match them), each of the same type. With merge, the rows' new
 * nullable columns are appended to the table's schema (one metaData commit,
 * Delta's mergeSchema); a column the rows lack or of another type is refused. */
static ed_code_t check_schema(const char *url, const pq_schema_t *full, dl_table_t *t, bool merge,
                              ed_err_t *err) {
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
    if (!w) {
      rc = ed_err_set(err, ED_E_SCHEMA,
                      "table '%s' has column '%s' but the rows lack it: write to a new path or "
                      "change the configuration",
                      url, h->name);
    } else if (!sm_type_equal(w->type, h->type) || w->nullable != h->nullable) {
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

ed_code_t ag_dsink_open(const ag_dsink_opts_t *o, ag_dsink_t **out, ag_ckpt_t *resume,
                        ed_err_t *err) {
  *out = NULL;
  memset(resume, 0, sizeof *resume);
  resume->batch_id = -1;
  resume->watermark_us = INT64_MIN;
  ag_dsink_t *s = calloc(1, sizeof *s);
  if (!s || !(s->query_id = strdup(o->query_id)) || !(s->schema = sm_type_clone(o->schema))) {
    ag_dsink_free(s);
    return ed_err_set(err, ED_E_NOMEM, "sink '%s': out of memory", o->url);
  }
  pq_writer_opts_init(&s->pq);
  if (o->zstd_level)
    s->pq.zstd_level = o->zstd_level;
  ed_code_t rc = st_open(o->url, o->store, &s->store, err);
  rc = rc ? rc : ag_pq_schema(s->schema, &s->full, err);
  if (!rc)
    rc = o->checkpoint_url ? st_open(o->checkpoint_url, o->store, &s->ckpts, err)
                           : st_open_sub(s->store, "_ehdelta/checkpoints", &s->ckpts, err);
  if (!rc) {
    rc = dl_table_open(s->store, &s->t, err);
    if (!rc)
      rc = check_schema(o->url, s->full, s->t, o->merge_schema, err);
    if (rc == ED_E_NOT_FOUND) {
      ed_buf_t js = {0};
      rc = dl_schema_from_pq(s->full, &js, err);
      dl_create_opts_t co = {.schema_string = js.data, .partition_cols = o->partition_by};
      if (!rc)
        rc = dl_table_create(s->store, &co, &s->t, err);
      ed_buf_fini(&js);
    }
  }
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
    if (!rc)
      rc = dl_schema_without(s->full, (const char *const *)md->partition_cols, &s->data, err);
  }
  int64_t v;
  if (!rc && dl_table_txn_version(s->t, s->query_id, &v)) {
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
    const pq_node_t *nd = pq_schema_node(
        s->full, pq_schema_find(s->full, PQ_ROOT, s->schema->fields[s->part_idx[i]].name));
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

ed_code_t ag_dsink_commit(ag_dsink_t *s, const sm_batch_t *b, const ag_ckpt_t *ck, int64_t *version,
                          bool *already, ed_err_t *err) {
  if (ck->batch_id != s->next_batch)
    return ed_err_set(err, ED_E_INVALID, "sink: batch %" PRId64 " given, %" PRId64 " expected",
                      ck->batch_id, s->next_batch);
  /* 1. the checkpoint, before anything can land */
  ed_buf_t js = {0};
  char key[40];
  ckpt_key(ck->batch_id, key);
  memset(&s->timing, 0, sizeof s->timing);
  int64_t t0 = ed_time_mono_us();
  ed_code_t rc = ag_ckpt_to_json(ck, s->query_id, &js, err);
  rc = rc ? rc : st_put(s->ckpts, key, js.data, js.len, err);
  ed_buf_fini(&js);
  if (rc)
    return rc;
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
        pv[i].key = s->schema->fields[s->part_idx[i]].name;
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
  dl_commit_result_t res = {0};
  if (!rc) {
    dl_commit_t c = {
        .adds = adds, .nadds = nadds, .app_id = s->query_id, .txn_version = ck->batch_id};
    rc = dl_table_commit(s->t, &c, &res, err);
  }
  for (size_t i = 0; i < nadds; i++)
    dl_add_fini(&adds[i]);
  free(adds);
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
