/* reader: Parquet bytes in memory -> levels, values and pq_col_t trees.
 * See reader.h. Every offset and length from the file is checked before use;
 * allocations are bounded by the bytes actually present (or by fixed caps
 * for run-length encoded levels, which can claim many entries in few bytes).
 * This file: the footer, the schema tree, the accessors and record assembly;
 * page decoding is reader_page.c, the shared footer types reader_int.h. */
#include "parquet/reader.h"

#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "parquet/reader_int.h"
#include "parquet/rle.h"
#include "parquet/schema_int.h"
#include "parquet/thrift.h"
#include "proto/parquet.h"

/* ---- footer ---- */

static char *dupn(const uint8_t *p, size_t n) {
  char *s = malloc(n + 1);
  if (s) {
    memcpy(s, p, n);
    s[n] = 0;
  }
  return s;
}

static bool read_stats(pq_tr_t *t, rstats_t *s) {
  int16_t last = 0, id;
  int ty;
  s->has = true;
  for (;;) {
    if (!pq_tr_field(t, &last, &ty, &id))
      return false;
    if (ty == PQ_TT_STOP)
      return true;
    const uint8_t *p;
    size_t n;
    if (ty == PQ_TT_BINARY && (id == PQF_ST_MAX || id == PQF_ST_MIN || id == PQF_ST_MAX_VALUE ||
                               id == PQF_ST_MIN_VALUE)) {
      if (!pq_tr_bin(t, &p, &n))
        return false;
      if (id == PQF_ST_MAX)
        s->max = p, s->max_len = n;
      if (id == PQF_ST_MIN)
        s->min = p, s->min_len = n;
      if (id == PQF_ST_MAX_VALUE)
        s->max_value = p, s->max_value_len = n;
      if (id == PQF_ST_MIN_VALUE)
        s->min_value = p, s->min_value_len = n;
    } else if (id == PQF_ST_NULL_COUNT && ty == PQ_TT_I64) {
      if (!pq_tr_i64(t, &s->nulls))
        return false;
      s->has_nulls = true;
    } else if (!pq_tr_skip(t, ty, 1))
      return false;
  }
}

static bool read_cmd(pq_tr_t *t, rchunk_t *c) {
  int16_t last = 0, id;
  int ty;
  c->has_meta = true;
  for (;;) {
    if (!pq_tr_field(t, &last, &ty, &id))
      return false;
    if (ty == PQ_TT_STOP)
      return true;
    int64_t v;
    switch (id) {
    case PQF_CMD_TYPE:
      if (!pq_tr_int(t, ty, &v))
        return false;
      c->phys = (int)v;
      break;
    case PQF_CMD_ENCODINGS: {
      if (ty != PQ_TT_LIST)
        goto skip;
      int et;
      uint32_t n;
      if (!pq_tr_list(t, &et, &n))
        return false;
      for (uint32_t i = 0; i < n; i++) {
        if (!pq_tr_int(t, et, &v))
          return false;
        if (v >= 0 && v < 32)
          c->enc |= 1u << v;
      }
      break;
    }
    case PQF_CMD_CODEC:
      if (!pq_tr_int(t, ty, &v))
        return false;
      c->codec = (int)v;
      break;
    case PQF_CMD_NUM_VALUES:
      if (!pq_tr_int(t, ty, &c->num_values))
        return false;
      break;
    case PQF_CMD_TOTAL_UNCOMPRESSED:
      if (!pq_tr_int(t, ty, &c->unc))
        return false;
      break;
    case PQF_CMD_TOTAL_COMPRESSED:
      if (!pq_tr_int(t, ty, &c->comp))
        return false;
      break;
    case PQF_CMD_DATA_PAGE_OFFSET:
      if (!pq_tr_int(t, ty, &c->data_off))
        return false;
      break;
    case PQF_CMD_DICT_PAGE_OFFSET:
      if (!pq_tr_int(t, ty, &c->dict_off))
        return false;
      break;
    case PQF_CMD_STATISTICS:
      if (ty != PQ_TT_STRUCT)
        goto skip;
      if (!read_stats(t, &c->st))
        return false;
      break;
    default:
    skip:
      if (!pq_tr_skip(t, ty, 1))
        return false;
    }
  }
}

static bool read_rg(pq_tr_t *t, rrg_t *g) {
  int16_t last = 0, id;
  int ty;
  for (;;) {
    if (!pq_tr_field(t, &last, &ty, &id))
      return false;
    if (ty == PQ_TT_STOP)
      return true;
    if (id == PQF_RG_COLUMNS && ty == PQ_TT_LIST) {
      int et;
      uint32_t n;
      if (!pq_tr_list(t, &et, &n))
        return false;
      if (et != PQ_TT_STRUCT) {
        t->err = "row group columns are not structs";
        return false;
      }
      free(g->cols);
      g->cols = calloc(n ? n : 1, sizeof *g->cols);
      if (!g->cols) {
        t->err = "out of memory";
        return false;
      }
      g->ncols = n;
      for (uint32_t i = 0; i < n; i++) {
        rchunk_t *c = &g->cols[i];
        c->dict_off = -1;
        int16_t l2 = 0, id2;
        int t2;
        for (;;) {
          if (!pq_tr_field(t, &l2, &t2, &id2))
            return false;
          if (t2 == PQ_TT_STOP)
            break;
          if (id2 == PQF_CC_META_DATA && t2 == PQ_TT_STRUCT) {
            if (!read_cmd(t, c))
              return false;
          } else if (!pq_tr_skip(t, t2, 1))
            return false;
        }
      }
    } else if (id == PQF_RG_NUM_ROWS) {
      if (!pq_tr_int(t, ty, &g->nrows))
        return false;
    } else if (!pq_tr_skip(t, ty, 1))
      return false;
  }
}

static bool read_logical(pq_tr_t *t, relem_t *e) {
  int16_t last = 0, id;
  int ty;
  for (;;) {
    if (!pq_tr_field(t, &last, &ty, &id))
      return false;
    if (ty == PQ_TT_STOP)
      return true;
    e->logical = id;
    if (id == PQF_LT_TIMESTAMP && ty == PQ_TT_STRUCT) {
      int16_t l2 = 0, id2;
      int t2;
      for (;;) {
        if (!pq_tr_field(t, &l2, &t2, &id2))
          return false;
        if (t2 == PQ_TT_STOP)
          break;
        if (id2 == PQF_TS_UNIT && t2 == PQ_TT_STRUCT) {
          int16_t l3 = 0, id3;
          int t3;
          for (;;) {
            if (!pq_tr_field(t, &l3, &t3, &id3))
              return false;
            if (t3 == PQ_TT_STOP)
              break;
            e->ts_unit = id3;
            if (!pq_tr_skip(t, t3, 3))
              return false;
          }
        } else if (!pq_tr_skip(t, t2, 2))
          return false;
      }
    } else if (!pq_tr_skip(t, ty, 1))
      return false;
  }
}

static bool read_elem(pq_tr_t *t, relem_t *e) {
  int16_t last = 0, id;
  int ty;
  for (;;) {
    if (!pq_tr_field(t, &last, &ty, &id))
      return false;
    if (ty == PQ_TT_STOP)
      return true;
    int64_t v;
    switch (id) {
    case PQF_SE_TYPE:
      if (!pq_tr_int(t, ty, &v))
        return false;
      e->type = (int)v, e->has_type = true;
      break;
    case PQF_SE_TYPE_LENGTH:
      if (!pq_tr_int(t, ty, &v))
        return false;
      e->type_length = (int)v;
      break;
    case PQF_SE_REPETITION:
      if (!pq_tr_int(t, ty, &v))
        return false;
      e->rep = (int)v, e->has_rep = true;
      break;
    case PQF_SE_NAME:
      if (ty != PQ_TT_BINARY)
        goto skip;
      if (!pq_tr_bin(t, &e->name, &e->name_len))
        return false;
      break;
    case PQF_SE_NUM_CHILDREN:
      if (!pq_tr_int(t, ty, &v))
        return false;
      if (v < 0 || v > INT32_MAX) {
        t->err = "negative num_children";
        return false;
      }
      e->nchildren = (int)v;
      break;
    case PQF_SE_CONVERTED:
      if (!pq_tr_int(t, ty, &v))
        return false;
      e->conv = (int)v, e->has_conv = true;
      break;
    case PQF_SE_LOGICAL:
      if (ty != PQ_TT_STRUCT)
        goto skip;
      if (!read_logical(t, e))
        return false;
      break;
    default:
    skip:
      if (!pq_tr_skip(t, ty, 1))
        return false;
    }
  }
}

static ed_code_t parse_footer(pq_reader_t *r, const uint8_t *p, size_t n, ed_err_t *err) {
  pq_tr_t t;
  pq_tr_init(&t, p, n);
  int16_t last = 0, id;
  int ty;
  bool have_schema = false;
  for (;;) {
    if (!pq_tr_field(&t, &last, &ty, &id))
      return TR_FAIL(&t, err);
    if (ty == PQ_TT_STOP)
      break;
    if (id == PQF_FMD_SCHEMA && ty == PQ_TT_LIST) {
      int et;
      uint32_t cnt;
      if (!pq_tr_list(&t, &et, &cnt))
        return TR_FAIL(&t, err);
      if (et != PQ_TT_STRUCT)
        return corrupt(err, "parquet footer: %s", "schema is not structs");
      free(r->el);
      r->el = calloc(cnt ? cnt : 1, sizeof *r->el);
      if (!r->el)
        return ed_err_set(err, ED_E_NOMEM, "parquet reader: out of memory");
      r->nel = cnt;
      for (uint32_t i = 0; i < cnt; i++)
        if (!read_elem(&t, &r->el[i]))
          return TR_FAIL(&t, err);
      have_schema = true;
    } else if (id == PQF_FMD_NUM_ROWS) {
      if (!pq_tr_int(&t, ty, &r->num_rows))
        return TR_FAIL(&t, err);
    } else if (id == PQF_FMD_ROW_GROUPS && ty == PQ_TT_LIST) {
      int et;
      uint32_t cnt;
      if (!pq_tr_list(&t, &et, &cnt))
        return TR_FAIL(&t, err);
      if (et != PQ_TT_STRUCT)
        return corrupt(err, "parquet footer: %s", "row groups are not structs");
      if (r->rgs)
        return corrupt(err, "parquet footer: %s", "row_groups twice");
      r->rgs = calloc(cnt ? cnt : 1, sizeof *r->rgs);
      if (!r->rgs)
        return ed_err_set(err, ED_E_NOMEM, "parquet reader: out of memory");
      for (uint32_t i = 0; i < cnt; i++) {
        r->nrgs = i + 1;
        if (!read_rg(&t, &r->rgs[i]))
          return TR_FAIL(&t, err);
      }
      r->nrgs = cnt;
    } else if (id == PQF_FMD_KV && ty == PQ_TT_LIST) {
      int et;
      uint32_t cnt;
      if (!pq_tr_list(&t, &et, &cnt))
        return TR_FAIL(&t, err);
      if (et != PQ_TT_STRUCT || r->kv)
        return corrupt(err, "parquet footer: %s", "bad key_value_metadata");
      r->kv = calloc(2 * (size_t)cnt + 1, sizeof *r->kv);
      if (!r->kv)
        return ed_err_set(err, ED_E_NOMEM, "parquet reader: out of memory");
      for (uint32_t i = 0; i < cnt; i++) {
        int16_t l2 = 0, id2;
        int t2;
        r->nkv = i + 1;
        for (;;) {
          if (!pq_tr_field(&t, &l2, &t2, &id2))
            return TR_FAIL(&t, err);
          if (t2 == PQ_TT_STOP)
            break;
          if ((id2 == PQF_KV_KEY || id2 == PQF_KV_VALUE) && t2 == PQ_TT_BINARY) {
            const uint8_t *b;
            size_t bn;
            if (!pq_tr_bin(&t, &b, &bn))
              return TR_FAIL(&t, err);
            char **slot = &r->kv[2 * i + (id2 == PQF_KV_VALUE)];
            free(*slot);
            if (!(*slot = dupn(b, bn)))
              return ed_err_set(err, ED_E_NOMEM, "parquet reader: out of memory");
          } else if (!pq_tr_skip(&t, t2, 1))
            return TR_FAIL(&t, err);
        }
        if (!r->kv[2 * i] && !(r->kv[2 * i] = dupn((const uint8_t *)"", 0)))
          return ed_err_set(err, ED_E_NOMEM, "parquet reader: out of memory");
      }
    } else if (id == PQF_FMD_CREATED_BY && ty == PQ_TT_BINARY) {
      const uint8_t *b;
      size_t bn;
      if (!pq_tr_bin(&t, &b, &bn))
        return TR_FAIL(&t, err);
      free(r->created_by);
      if (!(r->created_by = dupn(b, bn)))
        return ed_err_set(err, ED_E_NOMEM, "parquet reader: out of memory");
    } else if (!pq_tr_skip(&t, ty, 0))
      return TR_FAIL(&t, err);
  }
  if (!have_schema || r->nel == 0)
    return corrupt(err, "parquet footer: %s", "no schema");
  return ED_OK;
}

/* ---- schema ---- */

/* *ts: how a TIMESTAMP is stored (micros, millis, nanos, Spark's INT96). */
static pq_type_t leaf_type(const relem_t *e, int *ts) {
  *ts = PQ_TS_MICROS;
  switch (e->type) {
  case PQ_P_BOOLEAN:
    return PQ_T_BOOLEAN;
  case PQ_P_INT32:
    if (e->logical == PQF_LT_DATE || (e->has_conv && e->conv == PQ_CT_DATE))
      return PQ_T_DATE;
    return PQ_T_INT32;
  case PQ_P_INT64:
    if (e->logical == PQF_LT_TIMESTAMP) {
      *ts = e->ts_unit == PQF_TU_MILLIS  ? PQ_TS_MILLIS
            : e->ts_unit == PQF_TU_NANOS ? PQ_TS_NANOS
                                         : PQ_TS_MICROS;
      return PQ_T_TIMESTAMP;
    }
    if (!e->logical && e->has_conv &&
        (e->conv == PQ_CT_TIMESTAMP_MICROS || e->conv == PQ_CT_TIMESTAMP_MILLIS)) {
      *ts = e->conv == PQ_CT_TIMESTAMP_MILLIS ? PQ_TS_MILLIS : PQ_TS_MICROS;
      return PQ_T_TIMESTAMP;
    }
    return PQ_T_INT64;
  case PQ_P_INT96: /* Spark's legacy timestamps: nanoseconds of day + Julian day */
    *ts = PQ_TS_INT96;
    return PQ_T_TIMESTAMP;
  case PQ_P_FLOAT:
    return PQ_T_FLOAT;
  case PQ_P_DOUBLE:
    return PQ_T_DOUBLE;
  case PQ_P_BYTE_ARRAY:
    if (e->logical == PQF_LT_STRING || e->logical == PQF_LT_ENUM || e->logical == PQF_LT_JSON ||
        (e->has_conv && (e->conv == PQ_CT_UTF8 || e->conv == PQ_CT_JSON)))
      return PQ_T_STRING;
    return PQ_T_BINARY;
  default:
    return PQ_T_BINARY;
  }
}

static ed_code_t rename_node(pq_schema_t *s, int id, const relem_t *e, ed_err_t *err) {
  char *nm = dupn(e->name ? e->name : (const uint8_t *)"", e->name_len);
  if (!nm)
    return ed_err_set(err, ED_E_NOMEM, "parquet reader: out of memory");
  free(s->n[id].name);
  s->n[id].name = nm;
  s->n[id].pub.name = nm;
  return ED_OK;
}

static ed_code_t build_node(pq_reader_t *r, uint32_t *pos, int parent, int depth,
                            pq_repetition_t force_rep, bool force, ed_err_t *err);

static ed_code_t add_elem(pq_reader_t *r, int parent, const relem_t *e, pq_type_t t,
                          pq_repetition_t rep, int *id, ed_err_t *err) {
  char name[64];
  size_t n = e->name_len < sizeof name - 1 ? e->name_len : sizeof name - 1;
  memcpy(name, e->name ? (const char *)e->name : "", n);
  name[n] = 0;
  ed_code_t rc = pq_schema_add(r->schema, parent, n ? name : "_", t, rep, id, err);
  if (rc == ED_E_NOMEM)
    return rc;
  if (rc)
    return ed_err_set(err, ED_E_CORRUPT, "parquet footer: %s", err ? err->msg : "schema");
  return rename_node(r->schema, *id, e, err);
}

/* Consumes element *pos and its subtree. */
static ed_code_t build_node(pq_reader_t *r, uint32_t *pos, int parent, int depth,
                            pq_repetition_t force_rep, bool force, ed_err_t *err) {
  if (depth > MAX_SCHEMA_DEPTH)
    return corrupt(err, "parquet footer: %s", "schema nested too deep");
  if (*pos >= r->nel)
    return corrupt(err, "parquet footer: %s", "schema shorter than num_children");
  const relem_t *e = &r->el[(*pos)++];
  pq_repetition_t rep = force ? force_rep : e->has_rep ? (pq_repetition_t)e->rep : PQ_OPTIONAL;
  if (rep > PQ_REPEATED)
    return corrupt(err, "parquet footer: %s", "bad repetition_type");
  int id;
  ed_code_t rc;
  if (e->nchildren == 0 && e->has_type) {
    if (e->type < 0 || e->type > PQ_P_FIXED_LEN_BYTE_ARRAY)
      return corrupt(err, "parquet footer: %s", "unknown physical type");
    int ts;
    if ((rc = add_elem(r, parent, e, leaf_type(e, &ts), rep, &id, err)))
      return rc;
    r->schema->n[id].phys_override = e->type;
    r->schema->n[id].ts_unit = ts;
    return ED_OK;
  }
  if (e->nchildren == 0)
    return corrupt(err, "parquet footer: %s", "group without children");
  bool is_list = e->logical == PQF_LT_LIST || (e->has_conv && e->conv == PQ_CT_LIST);
  bool is_map = e->logical == PQF_LT_MAP ||
                (e->has_conv && (e->conv == PQ_CT_MAP || e->conv == PQ_CT_MAP_KEY_VALUE));
  if ((is_list || is_map) && rep != PQ_REPEATED && e->nchildren == 1 && *pos < r->nel) {
    const relem_t *mid = &r->el[*pos];
    size_t want = is_list ? 1 : 2;
    /* Legacy 2-level lists (LogicalTypes.md backward compatibility): the
     * repeated field is the element when it is a primitive, a group of
     * several fields, or named "array" / "<list>_tuple". */
    bool two = false;
    if (is_list && mid->has_rep && mid->rep == PQ_REPEATED) {
      size_t nl = e->name_len;
      two = mid->has_type || mid->nchildren != 1 ||
            (mid->name_len == 5 && mid->name && !memcmp(mid->name, "array", 5)) ||
            (mid->name && e->name && mid->name_len == nl + 6 && !memcmp(mid->name, e->name, nl) &&
             !memcmp(mid->name + nl, "_tuple", 6));
    }
    if (two) {
      if ((rc = add_elem(r, parent, e, PQ_T_LIST, rep, &id, err)))
        return rc;
      char *mn = dupn(mid->name ? mid->name : (const uint8_t *)"", mid->name_len);
      if (!mn)
        return ed_err_set(err, ED_E_NOMEM, "parquet reader: out of memory");
      r->schema->n[id].mid_name = mn;
      r->schema->n[id].two_level = true;
      return build_node(r, pos, id, depth + 1, PQ_REQUIRED, true, err);
    }
    if (mid->has_rep && mid->rep == PQ_REPEATED && mid->nchildren == (int)want && !mid->has_type) {
      if ((rc = add_elem(r, parent, e, is_list ? PQ_T_LIST : PQ_T_MAP, rep, &id, err)))
        return rc;
      (*pos)++;
      char *mn = dupn(mid->name ? mid->name : (const uint8_t *)"", mid->name_len);
      if (!mn)
        return ed_err_set(err, ED_E_NOMEM, "parquet reader: out of memory");
      r->schema->n[id].mid_name = mn;
      for (size_t k = 0; k < want; k++) {
        pq_repetition_t kr = PQ_OPTIONAL;
        bool f = false;
        if (!is_list && k == 0)
          kr = PQ_REQUIRED, f = true; /* map keys are required */
        if ((rc = build_node(r, pos, id, depth + 1, kr, f, err)))
          return rc;
        int kid = r->schema->n[id].kids[k];
        if (r->schema->n[kid].pub.rep == PQ_REPEATED)
          return ed_err_set(err, ED_E_UNSUPPORTED,
                            "parquet reader: repeated list element in '%.*s'", (int)e->name_len,
                            e->name ? (const char *)e->name : "");
      }
      return ED_OK;
    }
    return ed_err_set(err, ED_E_UNSUPPORTED,
                      "parquet reader: list or map '%.*s' of an unsupported shape",
                      (int)e->name_len, e->name ? (const char *)e->name : "");
  }
  if ((rc = add_elem(r, parent, e, PQ_T_STRUCT, rep, &id, err)))
    return rc;
  for (int k = 0; k < e->nchildren; k++)
    if ((rc = build_node(r, pos, id, depth + 1, PQ_REQUIRED, false, err)))
      return rc;
  return ED_OK;
}

static ed_code_t build_schema(pq_reader_t *r, ed_err_t *err) {
  ed_code_t rc = pq_schema_new(&r->schema, err);
  if (rc)
    return rc;
  const relem_t *root = &r->el[0];
  if (root->nchildren <= 0)
    return corrupt(err, "parquet footer: %s", "root has no children");
  if ((uint32_t)root->nchildren >= r->nel)
    return corrupt(err, "parquet footer: %s", "root num_children past the schema");
  uint32_t pos = 1;
  for (int k = 0; k < root->nchildren; k++)
    if ((rc = build_node(r, &pos, PQ_ROOT, 1, PQ_REQUIRED, false, err)))
      return rc;
  if (pos != r->nel)
    return corrupt(err, "parquet footer: %s", "schema elements left over");
  if ((rc = pq_schema_finish(r->schema, err))) {
    ed_err_prefix(err, "parquet footer");
    return rc;
  }
  size_t nl = pq_schema_num_leaves(r->schema);
  for (uint32_t g = 0; g < r->nrgs; g++) {
    if (r->rgs[g].ncols != nl)
      return ed_err_set(err, ED_E_CORRUPT,
                        "parquet footer: row group %u has %zu columns, schema %zu", g,
                        r->rgs[g].ncols, nl);
    for (size_t i = 0; i < nl; i++) {
      const pq_node_t *ln = pq_schema_node(r->schema, pq_schema_leaf_node(r->schema, i));
      if (!r->rgs[g].cols[i].has_meta)
        return ed_err_set(err, ED_E_UNSUPPORTED,
                          "parquet reader: column %zu of row group %u has no "
                          "meta_data",
                          i, g);
      if (r->rgs[g].cols[i].phys != (int)ln->phys)
        return ed_err_set(err, ED_E_CORRUPT, "parquet footer: column '%s' type %d, schema says %d",
                          ln->path, r->rgs[g].cols[i].phys, (int)ln->phys);
    }
  }
  return ED_OK;
}

ed_code_t pq_reader_open(const void *data, size_t len, pq_reader_t **out, ed_err_t *err) {
  const uint8_t *p = data;
  *out = NULL;
  if (len < 12)
    return ed_err_set(err, ED_E_CORRUPT, "parquet: file of %zu bytes is too short", len);
  if (memcmp(p, "PAR1", 4) || memcmp(p + len - 4, "PAR1", 4))
    return ed_err_set(err, ED_E_CORRUPT, "parquet: bad magic (expected PAR1 at both ends)");
  uint32_t flen;
  memcpy(&flen, p + len - 8, 4);
  if (flen > len - 12)
    return ed_err_set(err, ED_E_CORRUPT, "parquet: footer length %u past the file (%zu bytes)",
                      flen, len);
  pq_reader_t *r = calloc(1, sizeof *r);
  if (!r)
    return ed_err_set(err, ED_E_NOMEM, "parquet reader: out of memory");
  r->data = p;
  r->len = len;
  ed_code_t rc = parse_footer(r, p + len - 8 - flen, flen, err);
  if (!rc)
    rc = build_schema(r, err);
  if (rc) {
    pq_reader_free(r);
    return rc;
  }
  *out = r;
  return ED_OK;
}

void pq_reader_free(pq_reader_t *r) {
  if (!r)
    return;
  free(r->el);
  for (uint32_t i = 0; i < r->nrgs; i++)
    free(r->rgs[i].cols);
  free(r->rgs);
  free(r->created_by);
  for (uint32_t i = 0; i < 2 * r->nkv; i++)
    free(r->kv[i]);
  free(r->kv);
  pq_schema_free(r->schema);
  ed_buf_fini(&r->page);
  free(r);
}

const pq_schema_t *pq_reader_schema(const pq_reader_t *r) { return r->schema; }
int64_t pq_reader_num_rows(const pq_reader_t *r) { return r->num_rows; }
size_t pq_reader_num_row_groups(const pq_reader_t *r) { return r->nrgs; }
int64_t pq_reader_row_group_rows(const pq_reader_t *r, size_t rg) {
  return rg < r->nrgs ? r->rgs[rg].nrows : 0;
}
const char *pq_reader_created_by(const pq_reader_t *r) {
  return r->created_by ? r->created_by : "";
}
size_t pq_reader_num_kv(const pq_reader_t *r) { return r->nkv; }
void pq_reader_kv(const pq_reader_t *r, size_t i, const char **key, const char **value) {
  *key = i < r->nkv ? r->kv[2 * i] : NULL;
  *value = i < r->nkv ? r->kv[2 * i + 1] : NULL;
}

static void fill_value(pq_phys_t ph, const uint8_t *p, size_t n, pq_value_t *v) {
  memset(v, 0, sizeof *v);
  v->bytes = p;
  v->len = n;
  if (ph == PQ_P_BOOLEAN && n >= 1)
    v->u.b = p[0] != 0;
  if ((ph == PQ_P_INT32 || ph == PQ_P_FLOAT) && n == 4)
    memcpy(&v->u.i32, p, 4);
  if ((ph == PQ_P_INT64 || ph == PQ_P_DOUBLE) && n == 8)
    memcpy(&v->u.i64, p, 8);
}

ed_code_t pq_reader_chunk_info(const pq_reader_t *r, size_t rg, size_t leaf, pq_chunk_info_t *out,
                               ed_err_t *err) {
  if (rg >= r->nrgs || leaf >= r->rgs[rg].ncols)
    return ed_err_set(err, ED_E_INVALID, "parquet reader: no column %zu in row group %zu", leaf,
                      rg);
  const rchunk_t *c = &r->rgs[rg].cols[leaf];
  memset(out, 0, sizeof *out);
  out->phys = (pq_phys_t)c->phys;
  out->codec = c->codec;
  out->encodings = c->enc;
  out->num_values = c->num_values;
  out->total_uncompressed_size = c->unc;
  out->total_compressed_size = c->comp;
  out->data_page_offset = c->data_off;
  out->dictionary_page_offset = c->dict_off;
  out->has_stats = c->st.has;
  out->stats.num_values = c->num_values;
  out->stats.has_null_count = c->st.has_nulls;
  out->stats.null_count = c->st.nulls;
  if (c->st.min_value && c->st.max_value) {
    out->stats.has_min_max = true;
    fill_value(out->phys, c->st.min_value, c->st.min_value_len, &out->stats.min);
    fill_value(out->phys, c->st.max_value, c->st.max_value_len, &out->stats.max);
  } else if (c->st.min && c->st.max) {
    out->stats.has_min_max = true;
    out->min_max_legacy = true;
    fill_value(out->phys, c->st.min, c->st.min_len, &out->stats.min);
    fill_value(out->phys, c->st.max, c->st.max_len, &out->stats.max);
  }
  return ED_OK;
}

/* ---- record assembly ---- */

typedef struct arena {
  void **p;
  size_t n, cap;
} arena_t;

static void *aalloc(arena_t *a, size_t bytes) {
  if (a->n == a->cap) {
    size_t c = a->cap ? a->cap * 2 : 64;
    void **q = realloc(a->p, c * sizeof *q);
    if (!q)
      return NULL;
    a->p = q;
    a->cap = c;
  }
  void *m = calloc(1, bytes ? bytes : 1);
  if (m)
    a->p[a->n++] = m;
  return m;
}
static bool akeep(arena_t *a, void *m) {
  if (!m)
    return true;
  if (a->n == a->cap) {
    size_t c = a->cap ? a->cap * 2 : 64;
    void **q = realloc(a->p, c * sizeof *q);
    if (!q)
      return false;
    a->p = q;
    a->cap = c;
  }
  a->p[a->n++] = m;
  return true;
}

typedef struct asm_ctx {
  pq_reader_t *r;
  size_t rg;
  arena_t *a;
  pq_leaf_data_t *leaves; /* decoded lazily */
  bool *have;
  ed_err_t *err;
} asm_ctx_t;

static int first_leaf(const pq_schema_t *s, int id) {
  const pq_node_t *n = pq_schema_node(s, id);
  while (n->leaf < 0) {
    id = n->children[0];
    n = pq_schema_node(s, id);
  }
  return n->leaf;
}

static ed_code_t get_leaf(asm_ctx_t *x, int leaf, pq_leaf_data_t **out) {
  if (!x->have[leaf]) {
    ed_code_t rc = pq_reader_read_leaf(x->r, x->rg, (size_t)leaf, &x->leaves[leaf], x->err);
    if (rc)
      return rc;
    x->have[leaf] = true;
  }
  *out = &x->leaves[leaf];
  return ED_OK;
}

static ed_code_t assemble(asm_ctx_t *x, int id, int slot_def, int slot_rep, bool elem_of_repeated,
                          pq_col_t *col, size_t *nslots);

/* Builds the column of node id: its slots are the entries of its first leaf
 * with def >= slot_def and rep <= slot_rep (delta-parquet.md D.7 read
 * backwards). elem_of_repeated: id is the element of a bare REPEATED node
 * (never null, same type). */
static ed_code_t assemble(asm_ctx_t *x, int id, int slot_def, int slot_rep, bool elem_of_repeated,
                          pq_col_t *col, size_t *nslots) {
  const pq_schema_t *s = x->r->schema;
  const pq_inode_t *in = &s->n[id];
  const pq_node_t *n = &in->pub;
  pq_leaf_data_t *L;
  ed_code_t rc = get_leaf(x, first_leaf(s, id), &L);
  if (rc)
    return rc;
  const pq_node_t *lnode = pq_schema_node(s, pq_schema_leaf_node(s, (size_t)first_leaf(s, id)));
  size_t cnt = 0;
  for (size_t k = 0; k < L->n; k++) {
    int d = L->def ? L->def[k] : 0, rr = L->rep ? L->rep[k] : 0;
    if (d >= slot_def && rr <= slot_rep)
      cnt++;
  }
  memset(col, 0, sizeof *col);
  col->len = cnt;
  uint8_t *valid = aalloc(x->a, cnt + 1);
  if (!valid)
    return oom(x->err);
  col->valid = valid;
  *nslots = cnt;
  bool repeated = !elem_of_repeated && n->rep == PQ_REPEATED;
  int null_def = elem_of_repeated ? slot_def : (n->rep == PQ_OPTIONAL ? in->def_here : slot_def);
  if (repeated)
    null_def = slot_def;
  bool listy = repeated || n->type == PQ_T_LIST || n->type == PQ_T_MAP;
  int edef = 0, erep = 0;
  if (listy) {
    edef = repeated ? in->def_here : in->def_here + 1;
    erep = repeated ? in->rep_here : in->rep_here + 1;
  }
  uint32_t *off = NULL;
  if (listy) {
    off = aalloc(x->a, (cnt + 1) * sizeof *off);
    if (!off)
      return oom(x->err);
  }
  size_t si = 0, ne = 0;
  for (size_t k = 0; k < L->n; k++) {
    int d = L->def ? L->def[k] : 0, rr = L->rep ? L->rep[k] : 0;
    if (d >= slot_def && rr <= slot_rep) {
      if (si && off)
        off[si] = (uint32_t)ne;
      valid[si] = d >= null_def;
      si++;
    }
    if (listy && d >= edef && rr <= erep)
      ne++;
  }
  if (off)
    off[cnt] = (uint32_t)ne;
  if (listy) {
    col->off = off;
    size_t nk = repeated ? 1 : n->nchildren;
    pq_col_t *kids = aalloc(x->a, nk * sizeof *kids);
    if (!kids)
      return oom(x->err);
    col->children = kids;
    col->nchildren = nk;
    for (size_t k = 0; k < nk; k++) {
      size_t got;
      if (repeated)
        rc = assemble(x, id, edef, erep, true, &kids[k], &got);
      else
        rc = assemble(x, n->children[k], edef, erep, false, &kids[k], &got);
      if (rc)
        return rc;
      if (got != ne)
        return ed_err_set(x->err, ED_E_CORRUPT,
                          "parquet row group %zu: '%s' has %zu elements, its "
                          "child %zu",
                          x->rg, n->name, ne, got);
    }
    return ED_OK;
  }
  if (n->type == PQ_T_STRUCT) {
    pq_col_t *kids = aalloc(x->a, n->nchildren * sizeof *kids);
    if (!kids)
      return oom(x->err);
    col->children = kids;
    col->nchildren = n->nchildren;
    for (size_t k = 0; k < n->nchildren; k++) {
      size_t got;
      if ((rc = assemble(x, n->children[k], slot_def, slot_rep, false, &kids[k], &got)))
        return rc;
      if (got != cnt)
        return ed_err_set(x->err, ED_E_CORRUPT,
                          "parquet row group %zu: struct '%s' has %zu rows, "
                          "field %zu has %zu",
                          x->rg, n->name, cnt, k, got);
    }
    return ED_OK;
  }
  /* Leaf: spread the dense values over the slots. */
  int maxd = lnode->max_def;
  size_t vi = 0;
  pq_phys_t ph = lnode->phys;
  /* TIMESTAMP leaves come out as int64 microseconds whatever the file holds. */
  int tsu = lnode->type == PQ_T_TIMESTAMP
                ? s->n[pq_schema_leaf_node(s, (size_t)lnode->leaf)].ts_unit
                : PQ_TS_MICROS;
  bool int96 = tsu == PQ_TS_INT96;
  bool bytes =
      ph == PQ_P_BYTE_ARRAY || (ph == PQ_P_INT96 && !int96) || ph == PQ_P_FIXED_LEN_BYTE_ARRAY;
  size_t w = ph == PQ_P_BOOLEAN ? 1 : int96 ? 8 : phys_width(ph, 0);
  uint8_t *vals = NULL;
  uint32_t *voff = NULL;
  if (bytes) {
    voff = aalloc(x->a, (cnt + 1) * sizeof *voff);
    if (!voff)
      return oom(x->err);
    char *dp = L->data;
    if (dp) {
      if (!akeep(x->a, dp))
        return oom(x->err);
      L->data = NULL; /* the batch owns the bytes now */
    }
    col->data = dp ? dp : "";
  } else {
    vals = aalloc(x->a, (cnt + 1) * w);
    if (!vals)
      return oom(x->err);
  }
  si = 0;
  for (size_t k = 0; k < L->n; k++) {
    int d = L->def ? L->def[k] : 0, rr = L->rep ? L->rep[k] : 0;
    if (!(d >= slot_def && rr <= slot_rep))
      continue;
    if (d == maxd) {
      if (vi >= L->nvalues)
        return ed_err_set(x->err, ED_E_CORRUPT, "parquet row group %zu: '%s' has too few values",
                          x->rg, lnode->path);
      if (bytes) {
        voff[si] = L->off[vi];
      } else if (int96) {
        /* 8 bytes nanoseconds of the day, then 4 bytes Julian day number. */
        if (L->off[vi + 1] - L->off[vi] != 12)
          return ed_err_set(x->err, ED_E_CORRUPT, "parquet row group %zu: '%s': INT96 of %u bytes",
                            x->rg, lnode->path, L->off[vi + 1] - L->off[vi]);
        uint64_t nanos;
        uint32_t jd;
        memcpy(&nanos, L->data + L->off[vi], 8);
        memcpy(&jd, L->data + L->off[vi] + 8, 4);
        uint64_t us = ((uint64_t)jd - UINT64_C(2440588)) * UINT64_C(86400000000) + nanos / 1000;
        memcpy(vals + si * 8, &us, 8);
      } else {
        memcpy(vals + si * w, L->v.b8 + vi * w, w);
        if (tsu == PQ_TS_MILLIS || tsu == PQ_TS_NANOS) {
          int64_t t;
          memcpy(&t, vals + si * 8, 8);
          if (tsu == PQ_TS_MILLIS)
            t = (int64_t)((uint64_t)t * 1000u); /* wraps like the source would */
          else
            t = t / 1000 - (t % 1000 < 0);
          memcpy(vals + si * 8, &t, 8);
        }
      }
      vi++;
      if (bytes)
        voff[si + 1] = L->off[vi];
    } else if (bytes)
      voff[si + 1] = voff[si];
    si++;
  }
  if (bytes) {
    col->off = voff;
  } else {
    col->v.b8 = vals;
  }
  return ED_OK;
}

void pq_batch_free(pq_batch_t *b) {
  if (!b)
    return;
  arena_t *a = b->arena_;
  if (a) {
    for (size_t i = 0; i < a->n; i++)
      free(a->p[i]);
    free(a->p);
    free(a);
  }
  free(b);
}

ed_code_t pq_reader_read_row_group(pq_reader_t *r, size_t rg, pq_batch_t **out, ed_err_t *err) {
  *out = NULL;
  if (rg >= r->nrgs)
    return ed_err_set(err, ED_E_INVALID, "parquet reader: no row group %zu (file has %u)", rg,
                      r->nrgs);
  pq_batch_t *b = calloc(1, sizeof *b);
  arena_t *a = calloc(1, sizeof *a);
  size_t nl = pq_schema_num_leaves(r->schema);
  asm_ctx_t x = {r, rg, a, calloc(nl, sizeof(pq_leaf_data_t)), calloc(nl, sizeof(bool)), err};
  ed_code_t rc = ED_OK;
  if (!b || !a || !x.leaves || !x.have) {
    rc = oom(err);
    goto done;
  }
  b->arena_ = a;
  const pq_node_t *root = pq_schema_node(r->schema, PQ_ROOT);
  b->ncols = root->nchildren;
  b->cols = aalloc(a, b->ncols * sizeof *b->cols);
  if (!b->cols) {
    rc = oom(err);
    goto done;
  }
  for (size_t k = 0; k < b->ncols; k++) {
    size_t got;
    if ((rc = assemble(&x, root->children[k], 0, 0, false, &b->cols[k], &got)))
      goto done;
    if (k == 0)
      b->nrows = got;
    if (got != b->nrows || (int64_t)got != r->rgs[rg].nrows) {
      rc = ed_err_set(err, ED_E_CORRUPT,
                      "parquet row group %zu: column %zu has %zu rows, footer says %lld", rg, k,
                      got, (long long)r->rgs[rg].nrows);
      goto done;
    }
  }
done:
  if (x.leaves)
    for (size_t i = 0; i < nl; i++)
      pq_leaf_data_fini(&x.leaves[i]);
  free(x.leaves);
  free(x.have);
  if (rc) {
    if (b)
      b->arena_ = a;
    else if (a) {
      free(a->p);
      free(a);
    }
    pq_batch_free(b);
    return rc;
  }
  *out = b;
  return ED_OK;
}
