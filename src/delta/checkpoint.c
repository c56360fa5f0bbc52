/* checkpoint: classic V1 Parquet checkpoints (delta-parquet.md §C.2-C.5):
 * one row per protocol, metaData, txn, live add (dataChange=false) and
 * unexpired tombstone; the 5-column subset schema of §C.3 (readers fill the
 * columns we omit with nulls). Reading takes any classic checkpoint,
 * including Spark's and delta-rs's wider ones, by column name. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/time.h"
#include "delta/table_int.h"
#include "parquet/reader.h"
#include "parquet/writer.h"

/* ---- column builders (rows aligned with the checkpoint's rows) ---- */

typedef struct {
  uint8_t *valid;
  uint32_t *off;
  ed_buf_t data;
  size_t n;
} strcol_t;

typedef struct {
  uint8_t *valid;
  int64_t *i64;
  int32_t *i32;
  uint8_t *b8;
  size_t n;
} numcol_t;

typedef struct {
  uint8_t *valid;
  uint32_t *off;
  size_t n;
  strcol_t keys, vals;
  pq_col_t kids[2];
} mapcol_t;

static ed_code_t sc_init(strcol_t *c, size_t cap) {
  memset(c, 0, sizeof *c);
  c->valid = calloc(cap + 1, 1);
  c->off = calloc(cap + 1, sizeof *c->off);
  return c->valid && c->off ? ED_OK : ED_E_NOMEM;
}

static void sc_push(strcol_t *c, const char *s) {
  c->valid[c->n] = s != NULL;
  if (s)
    ed_buf_append(&c->data, s, strlen(s));
  c->off[++c->n] = (uint32_t)c->data.len;
}

static pq_col_t sc_col(const strcol_t *c) {
  pq_col_t p = {0};
  p.len = c->n;
  p.valid = c->valid;
  p.off = c->off;
  p.data = c->data.data ? c->data.data : "";
  return p;
}

static void sc_fini(strcol_t *c) {
  free(c->valid);
  free(c->off);
  ed_buf_fini(&c->data);
}

static ed_code_t nc_init(numcol_t *c, size_t cap) {
  memset(c, 0, sizeof *c);
  c->valid = calloc(cap + 1, 1);
  c->i64 = calloc(cap + 1, sizeof *c->i64);
  c->i32 = calloc(cap + 1, sizeof *c->i32);
  c->b8 = calloc(cap + 1, 1);
  return c->valid && c->i64 && c->i32 && c->b8 ? ED_OK : ED_E_NOMEM;
}

static void nc_push(numcol_t *c, bool valid, int64_t v) {
  c->valid[c->n] = valid;
  c->i64[c->n] = v;
  c->i32[c->n] = (int32_t)v;
  c->b8[c->n] = v != 0;
  c->n++;
}

static pq_col_t nc_col(const numcol_t *c, pq_type_t t) {
  pq_col_t p = {0};
  p.len = c->n;
  p.valid = c->valid;
  if (t == PQ_T_INT64)
    p.v.i64 = c->i64;
  else if (t == PQ_T_INT32)
    p.v.i32 = c->i32;
  else
    p.v.b8 = c->b8;
  return p;
}

static void nc_fini(numcol_t *c) {
  free(c->valid);
  free(c->i64);
  free(c->i32);
  free(c->b8);
}

static ed_code_t mc_init(mapcol_t *c, size_t rows, size_t entries) {
  memset(c, 0, sizeof *c);
  c->valid = calloc(rows + 1, 1);
  c->off = calloc(rows + 1, sizeof *c->off);
  if (!c->valid || !c->off || sc_init(&c->keys, entries) || sc_init(&c->vals, entries))
    return ED_E_NOMEM;
  return ED_OK;
}

static void mc_push(mapcol_t *c, bool valid, const dl_kv_t *kv, size_t n) {
  c->valid[c->n] = valid;
  for (size_t i = 0; valid && i < n; i++) {
    sc_push(&c->keys, kv[i].key);
    sc_push(&c->vals, kv[i].value);
  }
  c->off[++c->n] = (uint32_t)c->keys.n;
}

static pq_col_t mc_col(mapcol_t *c) {
  pq_col_t p = {0};
  c->kids[0] = sc_col(&c->keys);
  c->kids[1] = sc_col(&c->vals);
  p.len = c->n;
  p.valid = c->valid;
  p.off = c->off;
  p.nchildren = 2;
  p.children = c->kids;
  return p;
}

static void mc_fini(mapcol_t *c) {
  free(c->valid);
  free(c->off);
  sc_fini(&c->keys);
  sc_fini(&c->vals);
}

/* ---- schema (§C.3) ---- */

static ed_code_t add_map(pq_schema_t *s, int parent, const char *name, ed_err_t *err) {
  int m;
  ed_code_t rc = pq_schema_add(s, parent, name, PQ_T_MAP, PQ_OPTIONAL, &m, err);
  if (!rc)
    rc = pq_schema_add(s, m, "key", PQ_T_STRING, PQ_REQUIRED, NULL, err);
  if (!rc)
    rc = pq_schema_add(s, m, "value", PQ_T_STRING, PQ_OPTIONAL, NULL, err);
  return rc;
}

static ed_code_t ckpt_schema(pq_schema_t **out, ed_err_t *err) {
  pq_schema_t *s;
  ed_code_t rc = pq_schema_new(&s, err);
  if (rc)
    return rc;
  int g, f, l;
#define ADD(par, nm, ty)                                                                           \
  if (!rc)                                                                                         \
  rc = pq_schema_add(s, par, nm, ty, PQ_OPTIONAL, NULL, err)
  rc = pq_schema_add(s, PQ_ROOT, "txn", PQ_T_STRUCT, PQ_OPTIONAL, &g, err);
  ADD(g, "appId", PQ_T_STRING);
  ADD(g, "version", PQ_T_INT64);
  ADD(g, "lastUpdated", PQ_T_INT64);
  if (!rc)
    rc = pq_schema_add(s, PQ_ROOT, "add", PQ_T_STRUCT, PQ_OPTIONAL, &g, err);
  ADD(g, "path", PQ_T_STRING);
  if (!rc)
    rc = add_map(s, g, "partitionValues", err);
  ADD(g, "size", PQ_T_INT64);
  ADD(g, "modificationTime", PQ_T_INT64);
  ADD(g, "dataChange", PQ_T_BOOLEAN);
  ADD(g, "stats", PQ_T_STRING);
  if (!rc)
    rc = pq_schema_add(s, PQ_ROOT, "remove", PQ_T_STRUCT, PQ_OPTIONAL, &g, err);
  ADD(g, "path", PQ_T_STRING);
  ADD(g, "deletionTimestamp", PQ_T_INT64);
  ADD(g, "dataChange", PQ_T_BOOLEAN);
  ADD(g, "extendedFileMetadata", PQ_T_BOOLEAN);
  if (!rc)
    rc = add_map(s, g, "partitionValues", err);
  ADD(g, "size", PQ_T_INT64);
  if (!rc)
    rc = pq_schema_add(s, PQ_ROOT, "metaData", PQ_T_STRUCT, PQ_OPTIONAL, &g, err);
  ADD(g, "id", PQ_T_STRING);
  ADD(g, "name", PQ_T_STRING);
  ADD(g, "description", PQ_T_STRING);
  if (!rc)
    rc = pq_schema_add(s, g, "format", PQ_T_STRUCT, PQ_OPTIONAL, &f, err);
  ADD(f, "provider", PQ_T_STRING);
  if (!rc)
    rc = add_map(s, f, "options", err);
  ADD(g, "schemaString", PQ_T_STRING);
  if (!rc)
    rc = pq_schema_add(s, g, "partitionColumns", PQ_T_LIST, PQ_OPTIONAL, &l, err);
  ADD(l, "element", PQ_T_STRING);
  if (!rc)
    rc = add_map(s, g, "configuration", err);
  ADD(g, "createdTime", PQ_T_INT64);
  if (!rc)
    rc = pq_schema_add(s, PQ_ROOT, "protocol", PQ_T_STRUCT, PQ_OPTIONAL, &g, err);
  ADD(g, "minReaderVersion", PQ_T_INT32);
  ADD(g, "minWriterVersion", PQ_T_INT32);
  /* null unless the versions are 3 / 7 (kernel rejects them otherwise) */
  if (!rc)
    rc = pq_schema_add(s, g, "readerFeatures", PQ_T_LIST, PQ_OPTIONAL, &l, err);
  ADD(l, "element", PQ_T_STRING);
  if (!rc)
    rc = pq_schema_add(s, g, "writerFeatures", PQ_T_LIST, PQ_OPTIONAL, &l, err);
  ADD(l, "element", PQ_T_STRING);
#undef ADD
  if (rc) {
    pq_schema_free(s);
    return rc;
  }
  *out = s;
  return ED_OK;
}

static ed_code_t sink_buf(void *ctx, const void *data, size_t len, ed_err_t *err) {
  (void)err;
  return ed_buf_append(ctx, data, len);
}

ed_code_t dl_table_checkpoint(dl_table_t *t, ed_err_t *err) {
  int64_t now = ed_time_now_us() / 1000, tomb_us;
  if (ed_time_parse_duration(
          dl_table_config(t, "delta.deletedFileRetentionDuration", "interval 1 week"), &tomb_us,
          NULL))
    tomb_us = 7 * ED_US_PER_DAY;
  size_t nf = dl_table_num_files(t), nt = dl_table_num_tombstones(t), nx = t->ntxns;
  size_t keep_t = 0;
  for (size_t i = 0; i < nt; i++)
    keep_t += dl_table_tombstone(t, i)->deletion_ts > now - tomb_us / 1000;
  size_t N = 2 + nx + nf + keep_t, pv_entries = 0;
  for (size_t i = 0; i < nf; i++)
    pv_entries += dl_table_file(t, i)->npv;
  for (size_t i = 0; i < nt; i++)
    pv_entries += dl_table_tombstone(t, i)->npv;
  const dl_metadata_t *m = &t->metadata;

  numcol_t tx_v, tx_lu, a_size, a_mt, a_dc, r_dt, r_dc, r_efm, r_size, m_ct, p_r, p_w;
  strcol_t tx_app, a_path, a_stats, r_path, m_id, m_name, m_desc, m_prov, m_ss, m_pc;
  mapcol_t a_pv, r_pv, m_opts, m_conf;
  uint8_t *v_tx = calloc(N, 1), *v_add = calloc(N, 1), *v_rm = calloc(N, 1), *v_md = calloc(N, 1),
          *v_pr = calloc(N, 1), *v_fmt = calloc(N, 1);
  uint32_t *pc_off = calloc(N + 1, sizeof *pc_off);
  uint8_t *pc_valid = calloc(N, 1);
  /* the protocol's feature lists (Delta PROTOCOL.md "Table Features"): a
   * checkpoint without them would turn a (3,7) table unreadable */
  const dl_protocol_t *P = &t->protocol;
  bool has_rf = P->min_reader == 3, has_wf = P->min_writer == 7;
  size_t nrf = 0, nwf = 0;
  while (P->reader_features && P->reader_features[nrf])
    nrf++;
  while (P->writer_features && P->writer_features[nwf])
    nwf++;
  uint32_t *rf_off = calloc(N + 1, sizeof *rf_off), *wf_off = calloc(N + 1, sizeof *wf_off);
  uint8_t *rf_valid = calloc(N, 1), *wf_valid = calloc(N, 1);
  strcol_t rf_el, wf_el;
  pq_schema_t *schema = NULL;
  pq_writer_t *w = NULL;
  ed_buf_t file = ED_BUF_INIT, lc = ED_BUF_INIT;
  ed_code_t rc = (v_tx && v_add && v_rm && v_md && v_pr && v_fmt && pc_off && pc_valid && rf_off &&
                  wf_off && rf_valid && wf_valid)
                     ? ED_OK
                     : ED_E_NOMEM;
  numcol_t *ncs[] = {&tx_v, &tx_lu, &a_size, &a_mt, &a_dc, &r_dt,
                     &r_dc, &r_efm, &r_size, &m_ct, &p_r,  &p_w};
  strcol_t *scs[] = {&tx_app, &a_path, &a_stats, &r_path, &m_id, &m_name, &m_desc, &m_prov, &m_ss};
  for (size_t i = 0; i < sizeof ncs / sizeof *ncs; i++)
    if (nc_init(ncs[i], N))
      rc = ED_E_NOMEM;
  for (size_t i = 0; i < sizeof scs / sizeof *scs; i++)
    if (sc_init(scs[i], N))
      rc = ED_E_NOMEM;
  if (sc_init(&rf_el, nrf + 1))
    rc = ED_E_NOMEM;
  if (sc_init(&wf_el, nwf + 1))
    rc = ED_E_NOMEM;
  if (sc_init(&m_pc, m->npart + 1) || mc_init(&a_pv, N, pv_entries) ||
      mc_init(&r_pv, N, pv_entries) || mc_init(&m_opts, N, 1) ||
      mc_init(&m_conf, N, m->nconfig + 1))
    rc = ED_E_NOMEM;
  if (rc) {
    ed_err_set(err, rc, "checkpoint: out of memory");
    goto out;
  }
  size_t row = 0, nadd = 0;
  /* Every column gets one entry per row; a row's non-owning columns are null. */
  for (size_t kind = 0; kind < 5; kind++) {
    size_t cnt = kind == 0 ? 1 : kind == 1 ? 1 : kind == 2 ? nx : kind == 3 ? nf : nt;
    for (size_t i = 0; i < cnt; i++) {
      const dl_add_t *a = kind == 3 ? dl_table_file(t, i) : NULL;
      const dl_remove_t *r = kind == 4 ? dl_table_tombstone(t, i) : NULL;
      if (r && r->deletion_ts <= now - tomb_us / 1000)
        continue;
      const dl_txn_t *x = kind == 2 ? &t->txns[i] : NULL;
      bool pr = kind == 0, md = kind == 1;
      v_pr[row] = pr;
      v_md[row] = md;
      v_fmt[row] = md;
      v_tx[row] = x != NULL;
      v_add[row] = a != NULL;
      v_rm[row] = r != NULL;
      nadd += a != NULL;
      sc_push(&tx_app, x ? x->app_id : NULL);
      nc_push(&tx_v, x, x ? x->version : 0);
      nc_push(&tx_lu, x && x->last_updated, x ? x->last_updated : 0);
      sc_push(&a_path, a ? a->path : NULL);
      mc_push(&a_pv, a, a ? a->pv : NULL, a ? a->npv : 0);
      nc_push(&a_size, a, a ? a->size : 0);
      nc_push(&a_mt, a, a ? a->mtime_ms : 0);
      nc_push(&a_dc, a, 0); /* Spark writes dataChange=false in checkpoints (§C.2) */
      sc_push(&a_stats, a ? a->stats : NULL);
      sc_push(&r_path, r ? r->path : NULL);
      nc_push(&r_dt, r, r ? r->deletion_ts : 0);
      nc_push(&r_dc, r, 0);
      nc_push(&r_efm, r, r && r->size >= 0);
      mc_push(&r_pv, r && r->size >= 0, r ? r->pv : NULL, r ? r->npv : 0);
      nc_push(&r_size, r && r->size >= 0, r ? r->size : 0);
      sc_push(&m_id, md ? m->id : NULL);
      sc_push(&m_name, md ? m->name : NULL);
      sc_push(&m_desc, NULL);
      sc_push(&m_prov, md ? "parquet" : NULL);
      mc_push(&m_opts, md, NULL, 0);
      sc_push(&m_ss, md ? m->schema_string : NULL);
      pc_valid[row] = md;
      for (size_t k = 0; md && k < m->npart; k++)
        sc_push(&m_pc, m->partition_cols[k]);
      pc_off[row + 1] = (uint32_t)m_pc.n;
      mc_push(&m_conf, md, md ? m->config : NULL, md ? m->nconfig : 0);
      nc_push(&m_ct, md, md ? m->created_ms : 0);
      nc_push(&p_r, pr, pr ? t->protocol.min_reader : 0);
      nc_push(&p_w, pr, pr ? t->protocol.min_writer : 0);
      rf_valid[row] = pr && has_rf;
      wf_valid[row] = pr && has_wf;
      for (size_t k = 0; pr && has_rf && k < nrf; k++)
        sc_push(&rf_el, P->reader_features[k]);
      for (size_t k = 0; pr && has_wf && k < nwf; k++)
        sc_push(&wf_el, P->writer_features[k]);
      rf_off[row + 1] = (uint32_t)rf_el.n;
      wf_off[row + 1] = (uint32_t)wf_el.n;
      row++;
    }
  }
  N = row;
  {
    pq_col_t tx_k[3] = {sc_col(&tx_app), nc_col(&tx_v, PQ_T_INT64), nc_col(&tx_lu, PQ_T_INT64)};
    pq_col_t add_k[6] = {sc_col(&a_path),
                         mc_col(&a_pv),
                         nc_col(&a_size, PQ_T_INT64),
                         nc_col(&a_mt, PQ_T_INT64),
                         nc_col(&a_dc, PQ_T_BOOLEAN),
                         sc_col(&a_stats)};
    pq_col_t rm_k[6] = {sc_col(&r_path),
                        nc_col(&r_dt, PQ_T_INT64),
                        nc_col(&r_dc, PQ_T_BOOLEAN),
                        nc_col(&r_efm, PQ_T_BOOLEAN),
                        mc_col(&r_pv),
                        nc_col(&r_size, PQ_T_INT64)};
    pq_col_t fmt_k[2] = {sc_col(&m_prov), mc_col(&m_opts)};
    pq_col_t pc_el = sc_col(&m_pc);
    pq_col_t md_k[8] = {
        sc_col(&m_id), sc_col(&m_name), sc_col(&m_desc),          {0}, sc_col(&m_ss),
        {0},           mc_col(&m_conf), nc_col(&m_ct, PQ_T_INT64)};
    md_k[3] = (pq_col_t){.len = N, .valid = v_fmt, .nchildren = 2, .children = fmt_k};
    md_k[5] =
        (pq_col_t){.len = N, .valid = pc_valid, .off = pc_off, .nchildren = 1, .children = &pc_el};
    pq_col_t rf_e = sc_col(&rf_el), wf_e = sc_col(&wf_el);
    pq_col_t pr_k[4] = {
        nc_col(&p_r, PQ_T_INT32),
        nc_col(&p_w, PQ_T_INT32),
        {.len = N, .valid = rf_valid, .off = rf_off, .nchildren = 1, .children = &rf_e},
        {.len = N, .valid = wf_valid, .off = wf_off, .nchildren = 1, .children = &wf_e}};
    pq_col_t top[5] = {
        {.len = N, .valid = v_tx, .nchildren = 3, .children = tx_k},
        {.len = N, .valid = v_add, .nchildren = 6, .children = add_k},
        {.len = N, .valid = v_rm, .nchildren = 6, .children = rm_k},
        {.len = N, .valid = v_md, .nchildren = 8, .children = md_k},
        {.len = N, .valid = v_pr, .nchildren = 4, .children = pr_k},
    };
    pq_writer_opts_t o;
    pq_writer_opts_init(&o);
    if ((rc = ckpt_schema(&schema, err)))
      goto out;
    if ((rc = pq_writer_new(schema, &o, sink_buf, &file, &w, err)))
      goto out;
    if ((rc = pq_writer_write(w, top, N, err)) || (rc = pq_writer_close(w, err)))
      goto out;
  }
  char name[64];
  dl_log_name(t->version, ".checkpoint.parquet", name);
  if ((rc = st_put(t->store, name, file.data, file.len, err)))
    goto out;
  ed_buf_printf(&lc,
                "{\"version\":%" PRId64 ",\"size\":%zu,\"sizeInBytes\":%zu,\"numOfAddFiles\":%zu}",
                t->version, N, file.len, nadd);
  if ((rc = st_put(t->store, "_delta_log/_last_checkpoint", lc.data, lc.len, err)))
    goto out;
  t->checkpoint_version = t->version;
  t->since_ckpt = 0;
out:
  pq_writer_free(w);
  pq_schema_free(schema);
  for (size_t i = 0; i < sizeof ncs / sizeof *ncs; i++)
    nc_fini(ncs[i]);
  for (size_t i = 0; i < sizeof scs / sizeof *scs; i++)
    sc_fini(scs[i]);
  sc_fini(&m_pc);
  sc_fini(&rf_el);
  sc_fini(&wf_el);
  free(rf_off), free(wf_off), free(rf_valid), free(wf_valid);
  mc_fini(&a_pv);
  mc_fini(&r_pv);
  mc_fini(&m_opts);
  mc_fini(&m_conf);
  free(v_tx);
  free(v_add);
  free(v_rm);
  free(v_md);
  free(v_pr);
  free(v_fmt);
  free(pc_off);
  free(pc_valid);
  ed_buf_fini(&file);
  ed_buf_fini(&lc);
  return rc;
}

/* ---- reading ---- */

typedef struct {
  const pq_schema_t *s;
  const pq_batch_t *b;
} ck_t;

/* The column of child `name` of struct column c at schema node `node`. */
static const pq_col_t *child(const ck_t *k, int node, const pq_col_t *c, const char *name,
                             int *child_node) {
  if (!c)
    return NULL;
  int id = pq_schema_find(k->s, node, name);
  if (id < 0)
    return NULL;
  const pq_node_t *n = pq_schema_node(k->s, node);
  for (size_t i = 0; i < n->nchildren && i < c->nchildren; i++)
    if (n->children[i] == id) {
      if (child_node)
        *child_node = id;
      return &c->children[i];
    }
  return NULL;
}

static bool valid_at(const pq_col_t *c, size_t r) { return c && (!c->valid || c->valid[r]); }

static char *str_at(const pq_col_t *c, size_t r) {
  if (!valid_at(c, r) || !c->off)
    return NULL;
  return strndup(c->data + c->off[r], c->off[r + 1] - c->off[r]);
}

static int64_t i64_at(const pq_col_t *c, size_t r, int64_t def, pq_type_t t) {
  if (!valid_at(c, r))
    return def;
  if (t == PQ_T_INT32)
    return c->v.i32[r];
  if (t == PQ_T_BOOLEAN)
    return c->v.b8[r];
  return c->v.i64[r];
}

static pq_type_t type_of(const ck_t *k, int node) { return pq_schema_node(k->s, node)->type; }

static int64_t num(const ck_t *k, int node, const pq_col_t *c, const char *name, size_t r,
                   int64_t def) {
  int id = -1;
  const pq_col_t *x = child(k, node, c, name, &id);
  return x ? i64_at(x, r, def, type_of(k, id)) : def;
}

static char *str(const ck_t *k, int node, const pq_col_t *c, const char *name, size_t r) {
  return str_at(child(k, node, c, name, NULL), r);
}

static ed_code_t read_map(const ck_t *k, int node, const pq_col_t *c, const char *name, size_t r,
                          dl_kv_t **out, size_t *n) {
  *out = NULL;
  *n = 0;
  const pq_col_t *m = child(k, node, c, name, NULL);
  if (!valid_at(m, r) || !m->off || m->nchildren < 2)
    return ED_OK;
  size_t a = m->off[r], b = m->off[r + 1];
  if (b <= a)
    return ED_OK;
  dl_kv_t *kv = calloc(b - a, sizeof *kv);
  if (!kv)
    return ED_E_NOMEM;
  for (size_t i = a; i < b; i++) {
    kv[i - a].key = str_at(&m->children[0], i);
    kv[i - a].value = str_at(&m->children[1], i);
  }
  *out = kv;
  *n = b - a;
  return ED_OK;
}

ed_code_t dl_checkpoint_load(dl_table_t *t, int64_t v, ed_err_t *err) {
  char name[64];
  dl_log_name(v, ".checkpoint.parquet", name);
  ed_buf_t b = ED_BUF_INIT;
  pq_reader_t *r = NULL;
  ed_code_t rc = st_get(t->store, name, 0, -1, &b, err);
  if (!rc)
    rc = pq_reader_open(b.data, b.len, &r, err);
  if (rc) {
    ed_err_prefix(err, "checkpoint %s", name);
    ed_buf_fini(&b);
    return rc == ED_E_NOT_FOUND ? ED_E_CORRUPT : rc;
  }
  const pq_schema_t *s = pq_reader_schema(r);
  ck_t k = {s, NULL};
  int n_tx = pq_schema_find(s, PQ_ROOT, "txn"), n_add = pq_schema_find(s, PQ_ROOT, "add"),
      n_rm = pq_schema_find(s, PQ_ROOT, "remove"), n_md = pq_schema_find(s, PQ_ROOT, "metaData"),
      n_pr = pq_schema_find(s, PQ_ROOT, "protocol");
  const pq_node_t *root = pq_schema_node(s, PQ_ROOT);
  for (size_t g = 0; !rc && g < pq_reader_num_row_groups(r); g++) {
    pq_batch_t *bt = NULL;
    if ((rc = pq_reader_read_row_group(r, g, &bt, err)))
      break;
    k.b = bt;
    const pq_col_t *c_tx = NULL, *c_add = NULL, *c_rm = NULL, *c_md = NULL, *c_pr = NULL;
    for (size_t i = 0; i < root->nchildren && i < bt->ncols; i++) {
      int id = root->children[i];
      const pq_col_t *c = &bt->cols[i];
      if (id == n_tx)
        c_tx = c;
      else if (id == n_add)
        c_add = c;
      else if (id == n_rm)
        c_rm = c;
      else if (id == n_md)
        c_md = c;
      else if (id == n_pr)
        c_pr = c;
    }
    for (size_t row = 0; !rc && row < bt->nrows; row++) {
      dl_action_t a = {0};
      if (valid_at(c_add, row)) {
        a.kind = DL_A_ADD;
        a.u.add.path = str(&k, n_add, c_add, "path", row);
        a.u.add.size = num(&k, n_add, c_add, "size", row, 0);
        a.u.add.mtime_ms = num(&k, n_add, c_add, "modificationTime", row, 0);
        a.u.add.data_change = false;
        a.u.add.stats = str(&k, n_add, c_add, "stats", row);
        rc = read_map(&k, n_add, c_add, "partitionValues", row, &a.u.add.pv, &a.u.add.npv);
        if (!a.u.add.path)
          rc = ed_err_set(err, ED_E_CORRUPT, "checkpoint %s: add row %zu without path", name, row);
      } else if (valid_at(c_rm, row)) {
        a.kind = DL_A_REMOVE;
        a.u.remove.path = str(&k, n_rm, c_rm, "path", row);
        a.u.remove.deletion_ts = num(&k, n_rm, c_rm, "deletionTimestamp", row, 0);
        a.u.remove.size = num(&k, n_rm, c_rm, "size", row, -1);
        rc = read_map(&k, n_rm, c_rm, "partitionValues", row, &a.u.remove.pv, &a.u.remove.npv);
        if (!a.u.remove.path)
          rc = ed_err_set(err, ED_E_CORRUPT, "checkpoint %s: remove row %zu without path", name,
                          row);
      } else if (valid_at(c_tx, row)) {
        a.kind = DL_A_TXN;
        a.u.txn.app_id = str(&k, n_tx, c_tx, "appId", row);
        a.u.txn.version = num(&k, n_tx, c_tx, "version", row, -1);
        a.u.txn.last_updated = num(&k, n_tx, c_tx, "lastUpdated", row, 0);
        if (!a.u.txn.app_id)
          rc = ed_err_set(err, ED_E_CORRUPT, "checkpoint %s: txn row %zu without appId", name, row);
      } else if (valid_at(c_md, row)) {
        dl_metadata_t *m = &a.u.metadata;
        a.kind = DL_A_METADATA;
        m->id = str(&k, n_md, c_md, "id", row);
        m->name = str(&k, n_md, c_md, "name", row);
        m->schema_string = str(&k, n_md, c_md, "schemaString", row);
        m->created_ms = num(&k, n_md, c_md, "createdTime", row, 0);
        rc = read_map(&k, n_md, c_md, "configuration", row, &m->config, &m->nconfig);
        int pcn = -1;
        const pq_col_t *pc = child(&k, n_md, c_md, "partitionColumns", &pcn);
        size_t a0 = valid_at(pc, row) && pc->off ? pc->off[row] : 0,
               a1 = valid_at(pc, row) && pc->off ? pc->off[row + 1] : 0;
        m->partition_cols = calloc(a1 - a0 + 1, sizeof(char *));
        for (size_t i = a0; m->partition_cols && i < a1 && pc->nchildren; i++)
          m->partition_cols[m->npart++] = str_at(&pc->children[0], i);
        if (!m->id || !m->schema_string)
          rc = ed_err_set(err, ED_E_CORRUPT, "checkpoint %s: metaData without id or schema", name);
      } else if (valid_at(c_pr, row)) {
        a.kind = DL_A_PROTOCOL;
        a.u.protocol.min_reader = (int)num(&k, n_pr, c_pr, "minReaderVersion", row, 1);
        a.u.protocol.min_writer = (int)num(&k, n_pr, c_pr, "minWriterVersion", row, 2);
        /* feature lists: read as NULL-terminated string vectors */
        static const char *const lists[2] = {"readerFeatures", "writerFeatures"};
        for (int q = 0; q < 2; q++) {
          const pq_col_t *fl = child(&k, n_pr, c_pr, lists[q], NULL);
          if (!valid_at(fl, row) || !fl->off || !fl->nchildren)
            continue;
          size_t f0 = fl->off[row], f1 = fl->off[row + 1];
          char **v2 = calloc(f1 - f0 + 1, sizeof *v2);
          for (size_t i = f0; v2 && i < f1; i++)
            v2[i - f0] = str_at(&fl->children[0], i);
          if (q == 0)
            a.u.protocol.reader_features = v2;
          else
            a.u.protocol.writer_features = v2;
        }
      }
      if (!rc && a.kind != DL_A_NONE)
        rc = dl_snapshot_apply(t, &a, err);
      dl_action_fini(&a);
    }
    pq_batch_free(bt);
  }
  pq_reader_free(r);
  ed_buf_fini(&b);
  if (!rc)
    t->version = v;
  return rc;
}
