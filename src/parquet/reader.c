/* reader: Parquet bytes in memory -> levels, values and pq_col_t trees.
 * See reader.h. Every offset and length from the file is checked before use;
 * allocations are bounded by the bytes actually present (or by fixed caps
 * for run-length encoded levels, which can claim many entries in few bytes). */
#include "parquet/reader.h"

#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "parquet/rle.h"
#include "parquet/schema_int.h"
#include "parquet/thrift.h"
#include "proto/parquet.h"

/* Caps that keep a lying file from allocating without bound. */
#define MAX_PAGE_BYTES    (256u << 20)
#define MAX_CHUNK_ENTRIES (1u << 26)
#define MAX_SCHEMA_DEPTH  64

typedef struct rstats {
  bool has;
  bool has_nulls;
  int64_t nulls;
  const uint8_t *min_value, *max_value, *min, *max;
  size_t min_value_len, max_value_len, min_len, max_len;
} rstats_t;

typedef struct rchunk {
  int phys;
  uint32_t enc;
  int codec;
  int64_t num_values, unc, comp, data_off, dict_off;
  rstats_t st;
  bool has_meta;
} rchunk_t;

typedef struct rrg {
  int64_t nrows;
  size_t ncols;
  rchunk_t *cols;
} rrg_t;

typedef struct relem {
  int type, type_length, rep, conv, nchildren;
  bool has_type, has_rep, has_conv;
  int logical; /* LogicalType union field id, 0 = none */
  int ts_unit; /* TimeUnit field id */
  const uint8_t *name;
  size_t name_len;
} relem_t;

struct pq_reader {
  const uint8_t *data;
  size_t len;
  int64_t num_rows;
  relem_t *el;
  uint32_t nel;
  rrg_t *rgs;
  uint32_t nrgs;
  char *created_by;
  char **kv;
  uint32_t nkv;
  pq_schema_t *schema;
  ed_buf_t page; /* decompressed page scratch */
};

static ed_code_t corrupt(ed_err_t *err, const char *fmt, const char *what) {
  return ed_err_set(err, ED_E_CORRUPT, fmt, what);
}
#define TR_FAIL(r, err)                                                                            \
  ((r)->err && !strcmp((r)->err, "out of memory")                                                  \
       ? ed_err_set(err, ED_E_NOMEM, "parquet reader: out of memory")                              \
       : corrupt(err, "parquet footer: %s", (r)->err ? (r)->err : "malformed"))

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

/* ---- pages ---- */

typedef struct pagehdr {
  int type;
  int32_t unc, comp;
  int32_t nvals, nnulls, nrows;
  int enc, def_enc, rep_enc;
  int32_t def_len, rep_len;
  bool is_compressed;
  bool has_dp, has_dict, has_v2;
} pagehdr_t;

static bool read_page_header(pq_tr_t *t, pagehdr_t *h) {
  int16_t last = 0, id;
  int ty;
  memset(h, 0, sizeof *h);
  h->type = -1;
  h->unc = h->comp = -1;
  h->is_compressed = true;
  for (;;) {
    if (!pq_tr_field(t, &last, &ty, &id))
      return false;
    if (ty == PQ_TT_STOP)
      return true;
    int64_t v;
    if ((id == PQF_PH_DATA_PAGE || id == PQF_PH_DICT_PAGE || id == PQF_PH_DATA_PAGE_V2) &&
        ty == PQ_TT_STRUCT) {
      int16_t l2 = 0, id2;
      int t2;
      if (id == PQF_PH_DATA_PAGE)
        h->has_dp = true;
      if (id == PQF_PH_DICT_PAGE)
        h->has_dict = true;
      if (id == PQF_PH_DATA_PAGE_V2)
        h->has_v2 = true;
      for (;;) {
        if (!pq_tr_field(t, &l2, &t2, &id2))
          return false;
        if (t2 == PQ_TT_STOP)
          break;
        if (t2 == PQ_TT_TRUE || t2 == PQ_TT_FALSE) {
          if (id == PQF_PH_DATA_PAGE_V2 && id2 == PQF_DP2_IS_COMPRESSED)
            h->is_compressed = t2 == PQ_TT_TRUE;
          continue;
        }
        if (t2 != PQ_TT_I32 && t2 != PQ_TT_I16 && t2 != PQ_TT_I64) {
          if (!pq_tr_skip(t, t2, 2))
            return false;
          continue;
        }
        if (!pq_tr_int(t, t2, &v))
          return false;
        if (v < INT32_MIN || v > INT32_MAX) {
          t->err = "page header value out of range";
          return false;
        }
        int32_t x = (int32_t)v;
        if (id == PQF_PH_DATA_PAGE) {
          if (id2 == PQF_DP_NUM_VALUES)
            h->nvals = x;
          if (id2 == PQF_DP_ENCODING)
            h->enc = x;
          if (id2 == PQF_DP_DEF_ENCODING)
            h->def_enc = x;
          if (id2 == PQF_DP_REP_ENCODING)
            h->rep_enc = x;
        } else if (id == PQF_PH_DICT_PAGE) {
          if (id2 == PQF_DICT_NUM_VALUES)
            h->nvals = x;
          if (id2 == PQF_DICT_ENCODING)
            h->enc = x;
        } else {
          if (id2 == PQF_DP2_NUM_VALUES)
            h->nvals = x;
          if (id2 == PQF_DP2_NUM_NULLS)
            h->nnulls = x;
          if (id2 == PQF_DP2_NUM_ROWS)
            h->nrows = x;
          if (id2 == PQF_DP2_ENCODING)
            h->enc = x;
          if (id2 == PQF_DP2_DEF_LEN)
            h->def_len = x;
          if (id2 == PQF_DP2_REP_LEN)
            h->rep_len = x;
        }
      }
      continue;
    }
    if (id == PQF_PH_TYPE || id == PQF_PH_UNCOMPRESSED_SIZE || id == PQF_PH_COMPRESSED_SIZE) {
      if (!pq_tr_int(t, ty, &v))
        return false;
      if (v < INT32_MIN || v > INT32_MAX) {
        t->err = "page header value out of range";
        return false;
      }
      if (id == PQF_PH_TYPE)
        h->type = (int)v;
      if (id == PQF_PH_UNCOMPRESSED_SIZE)
        h->unc = (int32_t)v;
      if (id == PQF_PH_COMPRESSED_SIZE)
        h->comp = (int32_t)v;
      continue;
    }
    if (!pq_tr_skip(t, ty, 1))
      return false;
  }
}

/* Growable output of one leaf. */
typedef struct lout {
  pq_leaf_data_t *d;
  size_t lcap, vcap, dcap; /* entries, values, data bytes */
  size_t width;
  /* dictionary */
  uint8_t *dict;        /* fixed-width values */
  uint32_t *doff;       /* byte arrays: offsets into dict_data, n+1 */
  const uint8_t *ddata; /* byte arrays: points into dictbuf */
  ed_buf_t dictbuf;
  size_t dn;
  bool has_dict;
  uint32_t *idx;
  size_t icap;
} lout_t;

static ed_code_t oom(ed_err_t *err) {
  return ed_err_set(err, ED_E_NOMEM, "parquet reader: out of memory");
}

static bool grow(void **p, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap)
    return true;
  size_t n = *cap ? *cap : 64;
  while (n < need)
    n *= 2;
  void *q = realloc(*p, n * elem);
  if (!q)
    return false;
  *p = q;
  *cap = n;
  return true;
}

static size_t phys_width(int ph, int type_length) {
  switch (ph) {
  case PQ_P_INT32:
  case PQ_P_FLOAT:
    return 4;
  case PQ_P_INT64:
  case PQ_P_DOUBLE:
    return 8;
  case PQ_P_INT96:
    return 12;
  case PQ_P_FIXED_LEN_BYTE_ARRAY:
    return (size_t)type_length;
  default:
    return 0;
  }
}

/* Appends m PLAIN values from p[0..n) (bytes consumed in *used). Byte-like
 * types (BYTE_ARRAY, INT96, FIXED) go to off/data. */
static ed_code_t plain_values(lout_t *o, int ph, int tl, const uint8_t *p, size_t n, size_t m,
                              size_t *used, const char *path, ed_err_t *err) {
  pq_leaf_data_t *d = o->d;
  size_t at = 0;
  if (ph == PQ_P_BOOLEAN) {
    if ((m + 7) / 8 > n)
      return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': booleans truncated", path);
    if (!grow((void **)&d->v.b8, &o->vcap, d->nvalues + m + 1, 1))
      return oom(err);
    for (size_t i = 0; i < m; i++)
      d->v.b8[d->nvalues + i] = (p[i >> 3] >> (i & 7)) & 1;
    d->nvalues += m;
    *used = (m + 7) / 8;
    return ED_OK;
  }
  if (ph == PQ_P_BYTE_ARRAY || ph == PQ_P_INT96 || ph == PQ_P_FIXED_LEN_BYTE_ARRAY) {
    size_t fw = phys_width(ph, tl);
    /* Each value takes at least 4 (length) or fw bytes: a larger count lies. */
    size_t minw = ph == PQ_P_BYTE_ARRAY ? 4 : fw;
    if (minw && m > n / minw)
      return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': %zu values cannot fit %zu bytes",
                        path, m, n);
    if (!grow((void **)&d->off, &o->vcap, d->nvalues + m + 2, 4))
      return oom(err);
    if (d->nvalues == 0)
      d->off[0] = 0;
    for (size_t i = 0; i < m; i++) {
      size_t len = fw;
      if (ph == PQ_P_BYTE_ARRAY) {
        if (n - at < 4)
          return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': values truncated", path);
        uint32_t l;
        memcpy(&l, p + at, 4);
        at += 4;
        len = l;
      }
      if (len > n - at)
        return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': value past the page", path);
      size_t cur = d->off[d->nvalues];
      if (cur + len > UINT32_MAX)
        return ed_err_set(err, ED_E_TOO_LARGE, "parquet page '%s': over 4 GiB", path);
      if (!grow((void **)&d->data, &o->dcap, cur + len + 1, 1))
        return oom(err);
      memcpy(d->data + cur, p + at, len);
      at += len;
      d->off[++d->nvalues] = (uint32_t)(cur + len);
    }
    *used = at;
    return ED_OK;
  }
  size_t w = phys_width(ph, tl);
  if (w == 0 || m > n / w)
    return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': values truncated", path);
  if (!grow((void **)&d->v.b8, &o->vcap, d->nvalues + m + 1, w))
    return oom(err);
  memcpy(d->v.b8 + d->nvalues * w, p, m * w);
  d->nvalues += m;
  *used = m * w;
  return ED_OK;
}

/* DELTA_BINARY_PACKED (Encodings.md): exactly m values into out (as
 * uint64, wrapping like the writer's arithmetic); *used = bytes consumed. */
static int rd_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  uint64_t x = 0;
  for (int sh = 0; sh < 70; sh += 7) {
    if (*p >= end)
      return -1;
    uint8_t c = *(*p)++;
    x |= (uint64_t)(c & 0x7F) << sh;
    if (!(c & 0x80)) {
      *v = x;
      return 0;
    }
  }
  return -1;
}
static uint64_t unzz(uint64_t u) { return (u >> 1) ^ (0 - (u & 1)); }

static int delta_bp(const uint8_t *p, size_t n, uint64_t *out, size_t m, size_t *used) {
  const uint8_t *s = p, *end = p + n;
  uint64_t bs, nmb, total, first;
  if (rd_varint(&p, end, &bs) || rd_varint(&p, end, &nmb) || rd_varint(&p, end, &total) ||
      rd_varint(&p, end, &first))
    return -1;
  if (bs == 0 || bs % 128 || nmb == 0 || bs % nmb || (bs / nmb) % 32 || total != m || bs > 1u << 20)
    return -1;
  size_t per = (size_t)(bs / nmb), k = 0;
  uint64_t cur = unzz(first);
  if (m)
    out[k++] = cur;
  while (k < m) {
    uint64_t mdz;
    if (rd_varint(&p, end, &mdz) || (uint64_t)(end - p) < nmb)
      return -1;
    uint64_t mind = unzz(mdz);
    const uint8_t *widths = p;
    p += nmb;
    for (size_t b = 0; b < nmb && k < m; b++) {
      int w = widths[b];
      if (w > 64)
        return -1;
      size_t bytes = per * (size_t)w / 8;
      if (bytes > (size_t)(end - p))
        return -1;
      for (size_t i = 0; i < per && k < m; i++) {
        uint64_t d = 0;
        size_t bit = i * (size_t)w;
        for (int j = 0; j < w; j++, bit++)
          d |= (uint64_t)(p[bit >> 3] >> (bit & 7) & 1) << j;
        cur += mind + d;
        out[k++] = cur;
      }
      p += bytes;
    }
  }
  *used = (size_t)(p - s);
  return 0;
}

/* DELTA_BINARY_PACKED, DELTA_LENGTH_BYTE_ARRAY, DELTA_BYTE_ARRAY and
 * BYTE_STREAM_SPLIT values (files from Spark's v2 writer and Arrow options). */
static ed_code_t other_values(lout_t *o, int enc, int ph, int tl, const uint8_t *p, size_t n,
                              size_t m, const char *path, ed_err_t *err) {
  pq_leaf_data_t *d = o->d;
  ed_code_t rc = ED_OK;
  uint64_t *a = NULL, *b = NULL;
  /* Every encoded value takes at least one bit: a count past 8 per byte lies
   * (DELTA runs can be denser, so allow the block header's worth too). */
  if (m > (n + 64) * 64)
    return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': %zu values cannot fit %zu bytes", path,
                      m, n);
  a = malloc((m + 1) * sizeof *a);
  b = malloc((m + 1) * sizeof *b);
  if (!a || !b) {
    rc = oom(err);
    goto out;
  }
  size_t used = 0;
  if (enc == PQ_ENC_DELTA_BINARY_PACKED && (ph == PQ_P_INT32 || ph == PQ_P_INT64)) {
    if (delta_bp(p, n, a, m, &used))
      goto bad;
    size_t w = ph == PQ_P_INT32 ? 4 : 8;
    if (!grow((void **)&d->v.b8, &o->vcap, d->nvalues + m + 1, w)) {
      rc = oom(err);
      goto out;
    }
    for (size_t i = 0; i < m; i++) {
      if (w == 4) {
        uint32_t x = (uint32_t)a[i];
        memcpy(d->v.b8 + (d->nvalues + i) * 4, &x, 4);
      } else
        memcpy(d->v.b8 + (d->nvalues + i) * 8, &a[i], 8);
    }
    d->nvalues += m;
  } else if ((enc == PQ_ENC_DELTA_LENGTH_BYTE_ARRAY || enc == PQ_ENC_DELTA_BYTE_ARRAY) &&
             ph == PQ_P_BYTE_ARRAY) {
    size_t at = 0;
    if (enc == PQ_ENC_DELTA_BYTE_ARRAY) { /* prefix lengths first */
      if (delta_bp(p, n, b, m, &used))
        goto bad;
      at = used;
    }
    if (delta_bp(p + at, n - at, a, m, &used))
      goto bad;
    at += used;
    if (!grow((void **)&d->off, &o->vcap, d->nvalues + m + 2, 4)) {
      rc = oom(err);
      goto out;
    }
    if (d->nvalues == 0)
      d->off[0] = 0;
    size_t prev_at = 0, prev_len = 0; /* previous value, inside d->data */
    for (size_t i = 0; i < m; i++) {
      uint64_t sl = a[i], pl = enc == PQ_ENC_DELTA_BYTE_ARRAY ? b[i] : 0;
      if (sl > n - at || pl > prev_len || (i == 0 && pl))
        goto bad;
      size_t cur = d->off[d->nvalues];
      if (cur + pl + sl > UINT32_MAX)
        goto bad;
      if (!grow((void **)&d->data, &o->dcap, cur + pl + sl + 1, 1)) {
        rc = oom(err);
        goto out;
      }
      if (pl)
        memmove(d->data + cur, d->data + prev_at, pl);
      memcpy(d->data + cur + pl, p + at, sl);
      at += sl;
      prev_at = cur;
      prev_len = pl + sl;
      d->off[++d->nvalues] = (uint32_t)(cur + pl + sl);
    }
  } else if (enc == PQ_ENC_BYTE_STREAM_SPLIT &&
             (ph == PQ_P_FLOAT || ph == PQ_P_DOUBLE || ph == PQ_P_INT32 || ph == PQ_P_INT64)) {
    size_t w = phys_width(ph, tl);
    if (m > n / w)
      goto bad;
    if (!grow((void **)&d->v.b8, &o->vcap, d->nvalues + m + 1, w)) {
      rc = oom(err);
      goto out;
    }
    uint8_t *dst = d->v.b8 + d->nvalues * w;
    for (size_t i = 0; i < m; i++)
      for (size_t k = 0; k < w; k++)
        dst[i * w + k] = p[k * m + i];
    d->nvalues += m;
  } else {
    rc = ed_err_set(err, ED_E_UNSUPPORTED,
                    "parquet page '%s': encoding %d not supported for type %d", path, enc, ph);
  }
  goto out;
bad:
  rc = ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': malformed encoding %d values", path, enc);
out:
  free(a);
  free(b);
  return rc;
}

static ed_code_t dict_values(lout_t *o, int ph, int tl, const uint8_t *p, size_t n, size_t m,
                             const char *path, ed_err_t *err) {
  if (!o->has_dict)
    return ed_err_set(err, ED_E_CORRUPT,
                      "parquet page '%s': dictionary indices without a dictionary", path);
  if (n < 1)
    return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': no index bit width", path);
  int bw = p[0];
  if (bw > 32)
    return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': index bit width %d", path, bw);
  if (!grow((void **)&o->idx, &o->icap, m + 1, 4))
    return oom(err);
  if (pq_rle_decode32(p + 1, n - 1, bw, o->idx, m, NULL))
    return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': dictionary indices truncated", path);
  pq_leaf_data_t *d = o->d;
  for (size_t i = 0; i < m; i++)
    if (o->idx[i] >= o->dn)
      return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': index %u past a dictionary of %zu",
                        path, o->idx[i], o->dn);
  if (ph == PQ_P_BYTE_ARRAY || ph == PQ_P_INT96 || ph == PQ_P_FIXED_LEN_BYTE_ARRAY) {
    if (!grow((void **)&d->off, &o->vcap, d->nvalues + m + 2, 4))
      return oom(err);
    if (d->nvalues == 0)
      d->off[0] = 0;
    for (size_t i = 0; i < m; i++) {
      uint32_t a = o->doff[o->idx[i]], b = o->doff[o->idx[i] + 1];
      size_t cur = d->off[d->nvalues];
      if (cur + (b - a) > UINT32_MAX)
        return ed_err_set(err, ED_E_TOO_LARGE, "parquet page '%s': over 4 GiB", path);
      if (!grow((void **)&d->data, &o->dcap, cur + (b - a) + 1, 1))
        return oom(err);
      memcpy(d->data + cur, o->ddata + a, b - a);
      d->off[++d->nvalues] = (uint32_t)(cur + (b - a));
    }
    return ED_OK;
  }
  size_t w = ph == PQ_P_BOOLEAN ? 1 : phys_width(ph, tl);
  if (!grow((void **)&d->v.b8, &o->vcap, d->nvalues + m + 1, w))
    return oom(err);
  for (size_t i = 0; i < m; i++)
    memcpy(d->v.b8 + (d->nvalues + i) * w, o->dict + o->idx[i] * w, w);
  d->nvalues += m;
  return ED_OK;
}

static ed_code_t decompress(pq_reader_t *r, int codec, const uint8_t *src, size_t n, size_t unc,
                            const uint8_t **out, const char *path, ed_err_t *err) {
  if (codec == PQ_CC_UNCOMPRESSED) {
    if (n != unc)
      return ed_err_set(err, ED_E_CORRUPT,
                        "parquet page '%s': sizes differ (%zu vs %zu) uncompressed", path, n, unc);
    *out = src;
    return ED_OK;
  }
  ed_buf_reset(&r->page);
  if (ed_buf_reserve(&r->page, unc + 1))
    return oom(err);
  if (codec == PQ_CC_ZSTD) {
    unsigned long long fs = ZSTD_getFrameContentSize(src, n);
    if (fs != ZSTD_CONTENTSIZE_UNKNOWN && fs != unc)
      return ed_err_set(err, ED_E_CORRUPT,
                        "parquet page '%s': zstd frame holds %llu bytes, header says %zu", path, fs,
                        unc);
    size_t k = ZSTD_decompress(r->page.data, unc, src, n);
    if (ZSTD_isError(k) || k != unc)
      return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': zstd: %s", path,
                        ZSTD_isError(k) ? ZSTD_getErrorName(k) : "short output");
  } else if (codec == PQ_CC_SNAPPY) {
    size_t ul;
    if (snappy_uncompressed_length((const char *)src, n, &ul) != SNAPPY_OK || ul != unc)
      return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': snappy length mismatch", path);
    size_t k = unc;
    if (snappy_uncompress((const char *)src, n, r->page.data, &k) != SNAPPY_OK || k != unc)
      return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': snappy data corrupt", path);
  } else
    return ed_err_set(err, ED_E_UNSUPPORTED, "parquet page '%s': codec %d not supported", path,
                      codec);
  *out = (const uint8_t *)r->page.data;
  return ED_OK;
}

static int bitw(int maxl) {
  int b = 0;
  while (maxl)
    b++, maxl >>= 1;
  return b;
}

static ed_code_t levels_into(int16_t *dst, const uint8_t *p, size_t n, size_t cnt, int maxl,
                             const char *what, const char *path, ed_err_t *err) {
  if (pq_rle_decode16(p, n, bitw(maxl), dst, cnt, NULL))
    return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': %s levels truncated", path, what);
  for (size_t i = 0; i < cnt; i++)
    if (dst[i] < 0 || dst[i] > maxl)
      return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': %s level %d above max %d", path,
                        what, dst[i], maxl);
  return ED_OK;
}

void pq_leaf_data_fini(pq_leaf_data_t *d) {
  if (!d)
    return;
  free(d->def);
  free(d->rep);
  free(d->v.b8);
  free(d->off);
  free(d->data);
  memset(d, 0, sizeof *d);
}

/* What every page of one column chunk is read against. */
typedef struct leafctx {
  pq_reader_t *r;
  const rchunk_t *c;
  const pq_node_t *ln;
  int tl; /* FIXED_LEN_BYTE_ARRAY: the value length */
  const char *path;
} leafctx_t;

static bool is_bytes(pq_phys_t ph) {
  return ph == PQ_P_BYTE_ARRAY || ph == PQ_P_INT96 || ph == PQ_P_FIXED_LEN_BYTE_ARRAY;
}

/* type_length of the element of leaf number `leaf` (FIXED_LEN_BYTE_ARRAY). */
static int leaf_type_length(const pq_reader_t *r, size_t leaf) {
  size_t li = 0;
  for (uint32_t i = 1; i < r->nel; i++)
    if (r->el[i].nchildren == 0 && r->el[i].has_type) {
      if (li == leaf)
        return r->el[i].type_length;
      li++;
    }
  return 0;
}

/* The chunk's bytes [*p, *end), checked against the file and the footer's
 * value count. */
static ed_code_t chunk_span(const leafctx_t *x, const uint8_t **p, const uint8_t **end,
                            ed_err_t *err) {
  const rchunk_t *c = x->c;
  int64_t start = c->dict_off > 0 ? c->dict_off : c->data_off;
  if (c->dict_off > 0 && c->data_off < c->dict_off)
    start = c->data_off;
  size_t file_end = x->r->len - 8;
  if (start < 4 || (uint64_t)start >= file_end || c->comp < 0 ||
      (uint64_t)c->comp > file_end - (uint64_t)start)
    return ed_err_set(err, ED_E_CORRUPT,
                      "parquet footer: column '%s' chunk [%lld, +%lld) outside the file", x->path,
                      (long long)start, (long long)c->comp);
  if (c->num_values < 0 || c->num_values > MAX_CHUNK_ENTRIES)
    return ed_err_set(err, ED_E_CORRUPT, "parquet footer: column '%s' claims %lld values", x->path,
                      (long long)c->num_values);
  *p = x->r->data + start;
  *end = *p + c->comp;
  return ED_OK;
}

/* A dictionary page: its values decoded as PLAIN into o's dictionary. */
static ed_code_t read_dict_page(const leafctx_t *x, const pagehdr_t *h, const uint8_t *body,
                                lout_t *o, ed_err_t *err) {
  const char *path = x->path;
  pq_phys_t ph = x->ln->phys;
  if (!h->has_dict || o->has_dict || h->nvals < 0)
    return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': bad dictionary page", path);
  const uint8_t *u;
  ed_code_t rc =
      decompress(x->r, x->c->codec, body, (size_t)h->comp, (size_t)h->unc, &u, path, err);
  if (rc)
    return rc;
  /* Decode the dictionary as PLAIN values into a private leaf. */
  pq_leaf_data_t dd = {0};
  lout_t dl = {0};
  dl.d = &dd;
  size_t used;
  size_t n = (size_t)h->nvals;
  if (ph == PQ_P_BYTE_ARRAY ? n > (size_t)h->unc / 4 : 0)
    return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': dictionary count past the page", path);
  rc = plain_values(&dl, ph, x->tl, u, (size_t)h->unc, n, &used, path, err);
  if (rc) {
    pq_leaf_data_fini(&dd);
    return rc;
  }
  o->has_dict = true;
  o->dn = n;
  if (is_bytes(ph)) {
    o->doff = dd.off;
    dd.off = NULL;
    if (!o->doff && !(o->doff = calloc(1, 4))) {
      pq_leaf_data_fini(&dd);
      return oom(err);
    }
    ed_buf_append(&o->dictbuf, dd.data ? dd.data : "", dd.data ? o->doff[n] : 0);
    o->ddata = (const uint8_t *)(o->dictbuf.data ? o->dictbuf.data : "");
  } else {
    o->dict = dd.v.b8;
    dd.v.b8 = NULL;
  }
  pq_leaf_data_fini(&dd);
  return ED_OK;
}

/* Room for `need` definition and repetition levels. */
static ed_code_t grow_levels(pq_leaf_data_t *out, lout_t *o, size_t need, ed_err_t *err) {
  if (!grow((void **)&out->def, &o->lcap, need, 2))
    return oom(err);
  void *q = realloc(out->rep, o->lcap * 2);
  if (!q)
    return oom(err);
  out->rep = q;
  return ED_OK;
}

/* A v1 data page: decompressed whole, then the repetition and definition
 * levels (each RLE with a 4-byte length), then the values (*vals, *vlen). */
static ed_code_t levels_v1(const leafctx_t *x, const pagehdr_t *h, const uint8_t *body, size_t n,
                           int16_t *def, int16_t *rep, const uint8_t **vals, size_t *vlen,
                           ed_err_t *err) {
  const char *path = x->path;
  const uint8_t *u;
  ed_code_t rc =
      decompress(x->r, x->c->codec, body, (size_t)h->comp, (size_t)h->unc, &u, path, err);
  if (rc)
    return rc;
  size_t at = 0, un = (size_t)h->unc;
  for (int pass = 0; pass < 2; pass++) {
    int maxl = pass == 0 ? x->ln->max_rep : x->ln->max_def;
    int16_t *dst = pass == 0 ? rep : def;
    if (maxl == 0) {
      for (size_t i = 0; i < n; i++)
        dst[i] = 0;
      continue;
    }
    int enc = pass == 0 ? h->rep_enc : h->def_enc;
    if (enc != PQ_ENC_RLE)
      return ed_err_set(err, ED_E_UNSUPPORTED, "parquet page '%s': level encoding %d", path, enc);
    uint32_t ll;
    if (un - at < 4)
      return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': levels truncated", path);
    memcpy(&ll, u + at, 4);
    at += 4;
    if (ll > un - at)
      return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': level length past the page", path);
    if ((rc = levels_into(dst, u + at, ll, n, maxl, pass ? "definition" : "repetition", path, err)))
      return rc;
    at += ll;
  }
  *vals = u + at;
  *vlen = un - at;
  return ED_OK;
}

/* A v2 data page: the levels uncompressed up front (lengths in the header),
 * then the values, compressed or not (*vals, *vlen). */
static ed_code_t levels_v2(const leafctx_t *x, const pagehdr_t *h, const uint8_t *body, size_t n,
                           int16_t *def, int16_t *rep, const uint8_t **vals, size_t *vlen,
                           ed_err_t *err) {
  const char *path = x->path;
  if (h->def_len < 0 || h->rep_len < 0 ||
      (size_t)h->def_len + (size_t)h->rep_len > (size_t)h->comp ||
      (size_t)h->def_len + (size_t)h->rep_len > (size_t)h->unc)
    return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': v2 level lengths past the page", path);
  const uint8_t *lv = body;
  ed_code_t rc;
  for (int pass = 0; pass < 2; pass++) {
    int maxl = pass == 0 ? x->ln->max_rep : x->ln->max_def;
    int16_t *dst = pass == 0 ? rep : def;
    size_t ll = pass == 0 ? (size_t)h->rep_len : (size_t)h->def_len;
    if (maxl == 0)
      for (size_t i = 0; i < n; i++)
        dst[i] = 0;
    else if ((rc =
                  levels_into(dst, lv, ll, n, maxl, pass ? "definition" : "repetition", path, err)))
      return rc;
    lv += ll;
  }
  size_t lsz = (size_t)h->def_len + (size_t)h->rep_len;
  size_t cn = (size_t)h->comp - lsz, unv = (size_t)h->unc - lsz;
  if (h->is_compressed && x->c->codec != PQ_CC_UNCOMPRESSED) {
    if ((rc = decompress(x->r, x->c->codec, body + lsz, cn, unv, vals, path, err)))
      return rc;
  } else {
    if (cn != unv)
      return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': v2 sizes differ", path);
    *vals = body + lsz;
  }
  *vlen = unv;
  return ED_OK;
}

/* The page's m non-null values, in its encoding, appended to o->d. */
static ed_code_t page_values(const leafctx_t *x, lout_t *o, int enc, const uint8_t *vals,
                             size_t vlen, size_t m, ed_err_t *err) {
  const char *path = x->path;
  pq_phys_t ph = x->ln->phys;
  pq_leaf_data_t *out = o->d;
  size_t used = 0;
  if (enc == PQ_ENC_PLAIN)
    return plain_values(o, ph, x->tl, vals, vlen, m, &used, path, err);
  if (enc == PQ_ENC_RLE_DICTIONARY || enc == PQ_ENC_PLAIN_DICTIONARY)
    return dict_values(o, ph, x->tl, vals, vlen, m, path, err);
  if (enc != PQ_ENC_RLE || ph != PQ_P_BOOLEAN)
    return other_values(o, enc, ph, x->tl, vals, vlen, m, path, err);
  /* RLE booleans: 4-byte length prefix, then the hybrid at width 1. */
  if (vlen < 4)
    return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': RLE booleans truncated", path);
  if (!grow((void **)&o->idx, &o->icap, m + 1, 4) ||
      !grow((void **)&out->v.b8, &o->vcap, out->nvalues + m + 1, 1))
    return oom(err);
  if (pq_rle_decode32(vals + 4, vlen - 4, 1, o->idx, m, NULL))
    return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': RLE booleans truncated", path);
  for (size_t i = 0; i < m; i++)
    out->v.b8[out->nvalues++] = (uint8_t)o->idx[i];
  return ED_OK;
}

/* A data page (v1 or v2) of n entries appended after the *total before it. */
static ed_code_t read_data_page(const leafctx_t *x, const pagehdr_t *h, const uint8_t *body,
                                lout_t *o, size_t *total, ed_err_t *err) {
  const char *path = x->path;
  pq_leaf_data_t *out = o->d;
  if ((h->type == PQ_PAGE_DATA && !h->has_dp) || (h->type == PQ_PAGE_DATA_V2 && !h->has_v2) ||
      h->nvals < 0)
    return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': data page without its header", path);
  size_t n = (size_t)h->nvals;
  if (*total + n > (size_t)x->c->num_values || n > ((size_t)h->unc + 64) * 65536)
    return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': %zu values exceed the chunk's %lld",
                      path, *total + n, (long long)x->c->num_values);
  ed_code_t rc = grow_levels(out, o, *total + n + 1, err);
  if (rc)
    return rc;
  int16_t *def = out->def + *total, *rep = out->rep + *total;
  const uint8_t *vals = NULL;
  size_t vlen = 0;
  rc = h->type == PQ_PAGE_DATA ? levels_v1(x, h, body, n, def, rep, &vals, &vlen, err)
                               : levels_v2(x, h, body, n, def, rep, &vals, &vlen, err);
  if (rc)
    return rc;
  size_t m = 0;
  for (size_t i = 0; i < n; i++)
    m += def[i] == x->ln->max_def;
  if ((rc = page_values(x, o, h->enc, vals, vlen, m, err)))
    return rc;
  *total += n;
  out->n = *total;
  return ED_OK;
}

/* The pages of the chunk in order: the dictionary into o, data pages
 * appended to o->d, index pages skipped. */
static ed_code_t read_pages(const leafctx_t *x, const uint8_t *p, const uint8_t *end, lout_t *o,
                            ed_err_t *err) {
  const char *path = x->path;
  size_t total = 0;
  while (p < end && total < (size_t)x->c->num_values) {
    pq_tr_t t;
    pq_tr_init(&t, p, (size_t)(end - p));
    pagehdr_t h;
    if (!read_page_header(&t, &h))
      return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': header: %s", path,
                        t.err ? t.err : "malformed");
    p = t.p;
    if (h.comp < 0 || h.unc < 0 || (size_t)h.comp > (size_t)(end - p) ||
        (size_t)h.unc > MAX_PAGE_BYTES)
      return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': sizes %d/%d do not fit the chunk",
                        path, h.comp, h.unc);
    const uint8_t *body = p;
    p += h.comp;
    ed_code_t rc = ED_OK;
    if (h.type == PQ_PAGE_DICTIONARY)
      rc = read_dict_page(x, &h, body, o, err);
    else if (h.type == PQ_PAGE_DATA || h.type == PQ_PAGE_DATA_V2)
      rc = read_data_page(x, &h, body, o, &total, err);
    if (rc)
      return rc;
  }
  if (total != (size_t)x->c->num_values)
    return ed_err_set(err, ED_E_CORRUPT,
                      "parquet column '%s': %zu values in pages, footer says %lld", path, total,
                      (long long)x->c->num_values);
  return ED_OK;
}

ed_code_t pq_reader_read_leaf(pq_reader_t *r, size_t rg, size_t leaf, pq_leaf_data_t *out,
                              ed_err_t *err) {
  memset(out, 0, sizeof *out);
  if (rg >= r->nrgs || leaf >= r->rgs[rg].ncols)
    return ed_err_set(err, ED_E_INVALID, "parquet reader: no column %zu in row group %zu", leaf,
                      rg);
  const pq_node_t *ln = pq_schema_node(r->schema, pq_schema_leaf_node(r->schema, leaf));
  leafctx_t x = {.r = r,
                 .c = &r->rgs[rg].cols[leaf],
                 .ln = ln,
                 .tl = leaf_type_length(r, leaf),
                 .path = ln->path};
  if (ln->phys == PQ_P_FIXED_LEN_BYTE_ARRAY && x.tl <= 0)
    return ed_err_set(err, ED_E_CORRUPT, "parquet footer: '%s' FIXED_LEN_BYTE_ARRAY without length",
                      x.path);
  out->phys = ln->phys;
  if (x.c->num_values == 0) { /* empty chunk: writers may leave its offsets unset */
    if (is_bytes(ln->phys) && !(out->off = calloc(1, 4)))
      return oom(err);
    return ED_OK;
  }
  const uint8_t *p = NULL, *end = NULL;
  ed_code_t rc = chunk_span(&x, &p, &end, err);
  if (rc)
    return rc;
  lout_t o = {0};
  o.d = out;
  rc = read_pages(&x, p, end, &o, err);
  if (!rc && ln->max_def == 0) {
    free(out->def);
    out->def = NULL;
  }
  if (!rc && ln->max_rep == 0) {
    free(out->rep);
    out->rep = NULL;
  }
  if (!rc && is_bytes(ln->phys) && !out->off && !(out->off = calloc(1, 4)))
    rc = oom(err);
  free(o.dict);
  free(o.doff);
  ed_buf_fini(&o.dictbuf);
  free(o.idx);
  if (rc)
    pq_leaf_data_fini(out);
  return rc;
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
