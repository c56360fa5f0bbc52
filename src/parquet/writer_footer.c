/* writer_footer: the Parquet FileMetaData the writer closes a file with
 * (Thrift compact): the flattened schema with its logical annotations, each
 * row group's column chunks and their statistics, and the key/value metadata.
 * Reads the writer's state (writer_int.h); writes nothing but out. */
#include "parquet/writer.h"

#include <string.h>

#include "common/buf.h"
#include "config.h"
#include "parquet/schema_int.h"
#include "parquet/thrift.h"
#include "parquet/writer_int.h"
#include "proto/parquet.h"

static void se_leaf_annot(pq_tw_t *t, pq_type_t ty) {
  switch (ty) {
  case PQ_T_STRING:
    pq_tw_i32(t, PQF_SE_CONVERTED, PQ_CT_UTF8);
    pq_tw_struct(t, PQF_SE_LOGICAL);
    pq_tw_struct(t, PQF_LT_STRING);
    pq_tw_end(t);
    pq_tw_end(t);
    break;
  case PQ_T_DATE:
    pq_tw_i32(t, PQF_SE_CONVERTED, PQ_CT_DATE);
    pq_tw_struct(t, PQF_SE_LOGICAL);
    pq_tw_struct(t, PQF_LT_DATE);
    pq_tw_end(t);
    pq_tw_end(t);
    break;
  case PQ_T_TIMESTAMP:
    pq_tw_i32(t, PQF_SE_CONVERTED, PQ_CT_TIMESTAMP_MICROS);
    pq_tw_struct(t, PQF_SE_LOGICAL);
    pq_tw_struct(t, PQF_LT_TIMESTAMP);
    pq_tw_bool(t, PQF_TS_ADJUSTED_UTC, true);
    pq_tw_struct(t, PQF_TS_UNIT);
    pq_tw_struct(t, PQF_TU_MICROS);
    pq_tw_end(t);
    pq_tw_end(t);
    pq_tw_end(t);
    pq_tw_end(t);
    break;
  default:
    break;
  }
}

static size_t count_elements(const pq_schema_t *s, int id) {
  const pq_inode_t *n = &s->n[id];
  size_t c = 1;
  if (n->pub.type == PQ_T_LIST || n->pub.type == PQ_T_MAP)
    c++;
  for (size_t i = 0; i < n->pub.nchildren; i++)
    c += count_elements(s, n->kids[i]);
  return c;
}

static void write_elements(pq_tw_t *t, const pq_schema_t *s, int id) {
  const pq_inode_t *n = &s->n[id];
  bool group = n->pub.type == PQ_T_STRUCT || n->pub.type == PQ_T_LIST || n->pub.type == PQ_T_MAP;
  pq_tw_elem_struct(t);
  if (!group)
    pq_tw_i32(t, PQF_SE_TYPE, n->pub.phys);
  if (id != PQ_ROOT)
    pq_tw_i32(t, PQF_SE_REPETITION, n->pub.rep);
  pq_tw_str(t, PQF_SE_NAME, n->name);
  if (group)
    pq_tw_i32(t, PQF_SE_NUM_CHILDREN, n->pub.type == PQ_T_STRUCT ? (int32_t)n->pub.nchildren : 1);
  if (!group)
    se_leaf_annot(t, n->pub.type);
  if (n->pub.type == PQ_T_LIST || n->pub.type == PQ_T_MAP) {
    bool list = n->pub.type == PQ_T_LIST;
    pq_tw_i32(t, PQF_SE_CONVERTED, list ? PQ_CT_LIST : PQ_CT_MAP);
    pq_tw_struct(t, PQF_SE_LOGICAL);
    pq_tw_struct(t, list ? PQF_LT_LIST : PQF_LT_MAP);
    pq_tw_end(t);
    pq_tw_end(t);
    pq_tw_end(t);
    pq_tw_elem_struct(t);
    pq_tw_i32(t, PQF_SE_REPETITION, PQ_REPEATED);
    pq_tw_str(t, PQF_SE_NAME, n->mid_name ? n->mid_name : list ? "list" : "key_value");
    pq_tw_i32(t, PQF_SE_NUM_CHILDREN, (int32_t)n->pub.nchildren);
  }
  pq_tw_end(t);
  for (size_t i = 0; i < n->pub.nchildren; i++)
    write_elements(t, s, n->kids[i]);
}

static void put_stat_value(pq_tw_t *t, int id, pq_phys_t ph, const st_t *s, bool max) {
  uint8_t b[8];
  switch (ph) {
  case PQ_P_BOOLEAN:
    b[0] = max ? s->mx.b : s->mn.b;
    pq_tw_bin(t, id, b, 1);
    break;
  case PQ_P_INT32:
    memcpy(b, max ? &s->mx.i32 : &s->mn.i32, 4);
    pq_tw_bin(t, id, b, 4);
    break;
  case PQ_P_INT64:
    memcpy(b, max ? &s->mx.i64 : &s->mn.i64, 8);
    pq_tw_bin(t, id, b, 8);
    break;
  case PQ_P_FLOAT: {
    /* parquet.thrift: a zero min is written -0.0, a zero max +0.0. */
    float f = max ? s->mx.f : s->mn.f;
    if (f == 0.0f)
      f = max ? 0.0f : -0.0f;
    memcpy(b, &f, 4);
    pq_tw_bin(t, id, b, 4);
    break;
  }
  case PQ_P_DOUBLE: {
    double d = max ? s->mx.d : s->mn.d;
    if (d == 0.0)
      d = max ? 0.0 : -0.0;
    memcpy(b, &d, 8);
    pq_tw_bin(t, id, b, 8);
    break;
  }
  default: {
    const ed_buf_t *x = max ? &s->mxb : &s->mnb;
    pq_tw_bin(t, id, x->data ? x->data : "", x->len);
  }
  }
}

ed_code_t pq_writer_footer(pq_writer_t *w, ed_buf_t *out) {
  pq_tw_t t;
  pq_tw_init(&t, out);
  pq_tw_begin(&t);
  pq_tw_i32(&t, PQF_FMD_VERSION, 1);
  pq_tw_list(&t, PQF_FMD_SCHEMA, PQ_TT_STRUCT, count_elements(w->schema, PQ_ROOT));
  write_elements(&t, w->schema, PQ_ROOT);
  pq_tw_i64(&t, PQF_FMD_NUM_ROWS, w->rows);
  pq_tw_list(&t, PQF_FMD_ROW_GROUPS, PQ_TT_STRUCT, w->nrgs);
  for (size_t r = 0; r < w->nrgs; r++) {
    const rgmeta_t *rg = &w->rgs[r];
    pq_tw_elem_struct(&t);
    pq_tw_list(&t, PQF_RG_COLUMNS, PQ_TT_STRUCT, w->ncols);
    for (size_t i = 0; i < w->ncols; i++) {
      const colmeta_t *m = &rg->cols[i];
      const wcol_t *c = &w->cols[i];
      pq_tw_elem_struct(&t);
      pq_tw_i64(&t, PQF_CC_FILE_OFFSET, m->dict_off >= 0 ? m->dict_off : m->data_off);
      pq_tw_struct(&t, PQF_CC_META_DATA);
      pq_tw_i32(&t, PQF_CMD_TYPE, c->phys);
      size_t ne = 0;
      for (int e = 0; e < 32; e++)
        ne += (m->enc >> e) & 1;
      pq_tw_list(&t, PQF_CMD_ENCODINGS, PQ_TT_I32, ne);
      for (int e = 0; e < 32; e++)
        if ((m->enc >> e) & 1)
          pq_tw_elem_i32(&t, e);
      /* path_in_schema: the dotted path split at dots (names are ours). */
      const char *path = c->leaf->path;
      size_t np = 1;
      for (const char *p = path; *p; p++)
        np += *p == '.';
      pq_tw_list(&t, PQF_CMD_PATH, PQ_TT_BINARY, np);
      for (const char *p = path;;) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        pq_tw_elem_bin(&t, p, len);
        if (!dot)
          break;
        p = dot + 1;
      }
      pq_tw_i32(&t, PQF_CMD_CODEC, w->o.codec);
      pq_tw_i64(&t, PQF_CMD_NUM_VALUES, m->num_values);
      pq_tw_i64(&t, PQF_CMD_TOTAL_UNCOMPRESSED, m->unc);
      pq_tw_i64(&t, PQF_CMD_TOTAL_COMPRESSED, m->comp);
      pq_tw_i64(&t, PQF_CMD_DATA_PAGE_OFFSET, m->data_off);
      if (m->dict_off >= 0)
        pq_tw_i64(&t, PQF_CMD_DICT_PAGE_OFFSET, m->dict_off);
      pq_tw_struct(&t, PQF_CMD_STATISTICS);
      pq_tw_i64(&t, PQF_ST_NULL_COUNT, m->st.nulls);
      if (m->st.has) {
        put_stat_value(&t, PQF_ST_MAX_VALUE, c->phys, &m->st, true);
        put_stat_value(&t, PQF_ST_MIN_VALUE, c->phys, &m->st, false);
        pq_tw_bool(&t, PQF_ST_MAX_EXACT, true);
        pq_tw_bool(&t, PQF_ST_MIN_EXACT, true);
      }
      pq_tw_end(&t);
      pq_tw_end(&t);
      pq_tw_end(&t);
    }
    pq_tw_i64(&t, PQF_RG_TOTAL_BYTE_SIZE, rg->total_byte);
    pq_tw_i64(&t, PQF_RG_NUM_ROWS, rg->nrows);
    pq_tw_i64(&t, PQF_RG_FILE_OFFSET, rg->file_off);
    pq_tw_i64(&t, PQF_RG_TOTAL_COMPRESSED_SIZE, rg->total_comp);
    pq_tw_i16(&t, PQF_RG_ORDINAL, (int16_t)r);
    pq_tw_end(&t);
  }
  if (w->nkv) {
    pq_tw_list(&t, PQF_FMD_KV, PQ_TT_STRUCT, w->nkv);
    for (size_t i = 0; i < w->nkv; i++) {
      pq_tw_elem_struct(&t);
      pq_tw_str(&t, PQF_KV_KEY, w->kv[2 * i]);
      if (w->kv[2 * i + 1])
        pq_tw_str(&t, PQF_KV_VALUE, w->kv[2 * i + 1]);
      pq_tw_end(&t);
    }
  }
  pq_tw_str(&t, PQF_FMD_CREATED_BY, w->created_by);
  pq_tw_list(&t, PQF_FMD_COLUMN_ORDERS, PQ_TT_STRUCT, w->ncols);
  for (size_t i = 0; i < w->ncols; i++) {
    pq_tw_elem_struct(&t);
    pq_tw_struct(&t, PQF_CO_TYPE_ORDER);
    pq_tw_end(&t);
    pq_tw_end(&t);
  }
  pq_tw_end(&t);
  return t.oom ? ED_E_NOMEM : ED_OK;
}
