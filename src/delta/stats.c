/* stats: add.stats from the Parquet writer's whole-file statistics. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/time.h"
#include "delta/stats.h"

/* Length in bytes of the UTF-8 sequence starting with byte c (1 for junk). */
static size_t u8len(unsigned char c) {
  return c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
}

/* Byte length of the first k code points of s[0..n). */
static size_t prefix_bytes(const char *s, size_t n, size_t k, size_t *cps) {
  size_t i = 0, c = 0;
  while (i < n && c < k) {
    size_t l = u8len((unsigned char)s[i]);
    if (i + l > n)
      break;
    i += l;
    c++;
  }
  if (cps)
    *cps = c;
  return i;
}

void dl_stats_trunc_min(const char *s, size_t n, ed_buf_t *out) {
  ed_buf_append(out, s, prefix_bytes(s, n, DL_STATS_STRING_PREFIX, NULL));
}

bool dl_stats_trunc_max(const char *s, size_t n, ed_buf_t *out) {
  size_t p = prefix_bytes(s, n, DL_STATS_STRING_PREFIX, NULL);
  if (p == n) {
    ed_buf_append(out, s, n);
    return true;
  }
  unsigned char next = (unsigned char)s[p];
  if (next < 0x7F) {
    ed_buf_append(out, s, p);
    ed_buf_putc(out, 0x7F);
    return true;
  }
  if (n - p >= 4 && !memcmp(s + p, "\xF4\x8F\xBF\xBF", 4))
    return false; /* the next character is U+10FFFF itself */
  ed_buf_append(out, s, p);
  ed_buf_append(out, "\xF4\x8F\xBF\xBF", 4);
  return true;
}

typedef struct {
  const pq_writer_t *w;
  const pq_schema_t *s;
  ed_buf_t *mn, *mx, *nc;
  int budget;
  const bool *nan;
} sctx_t;

static void put_name(ed_buf_t *b, const char *name) {
  if (b->len && b->data[b->len - 1] != '{')
    ed_buf_putc(b, ',');
  ed_buf_json_str(b, name, strlen(name));
  ed_buf_putc(b, ':');
}

static bool put_value(ed_buf_t *b, pq_type_t t, const pq_value_t *v, bool is_max) {
  char tmp[64];
  switch (t) {
  case PQ_T_INT32:
    return ed_buf_printf(b, "%" PRId32, v->u.i32) == ED_OK;
  case PQ_T_INT64:
    return ed_buf_printf(b, "%" PRId64, v->u.i64) == ED_OK;
  case PQ_T_FLOAT:
    if (!isfinite(v->u.f32))
      return false;
    return ed_buf_printf(b, "%.9g", (double)v->u.f32) == ED_OK;
  case PQ_T_DOUBLE:
    if (!isfinite(v->u.f64))
      return false;
    return ed_buf_printf(b, "%.17g", v->u.f64) == ED_OK;
  case PQ_T_DATE: {
    int64_t y;
    unsigned m, d;
    ed_time_civil_from_days(v->u.i32, &y, &m, &d);
    return ed_buf_printf(b, "\"%04" PRId64 "-%02u-%02u\"", y, m, d) == ED_OK;
  }
  case PQ_T_TIMESTAMP: {
    /* milliseconds, truncated down; readers add 1 ms to max (§A.5) */
    int64_t ms = ed_floordiv(v->u.i64, 1000);
    ed_time_format_iso(ms * 1000, 3, tmp);
    return ed_buf_printf(b, "\"%s\"", tmp) == ED_OK;
  }
  case PQ_T_STRING: {
    ed_buf_t s = ED_BUF_INIT;
    bool ok = true;
    if (is_max)
      ok = dl_stats_trunc_max((const char *)v->bytes, v->len, &s);
    else
      dl_stats_trunc_min((const char *)v->bytes, v->len, &s);
    if (ok)
      ed_buf_json_str(b, s.data ? s.data : "", s.len);
    ed_buf_fini(&s);
    return ok;
  }
  default:
    return false;
  }
}

static ed_code_t walk(sctx_t *c, int node, ed_err_t *err) {
  const pq_node_t *n = pq_schema_node(c->s, node);
  for (size_t i = 0; i < n->nchildren && c->budget > 0; i++) {
    const pq_node_t *ch = pq_schema_node(c->s, n->children[i]);
    if (ch->type == PQ_T_LIST || ch->type == PQ_T_MAP || ch->rep == PQ_REPEATED) {
      c->budget -= (int)1; /* counts against the indexed columns, like Spark */
      continue;
    }
    if (ch->type == PQ_T_STRUCT) {
      size_t l0 = c->mn->len, l1 = c->mx->len, l2 = c->nc->len;
      put_name(c->mn, ch->name), ed_buf_putc(c->mn, '{');
      put_name(c->mx, ch->name), ed_buf_putc(c->mx, '{');
      put_name(c->nc, ch->name), ed_buf_putc(c->nc, '{');
      ed_code_t rc = walk(c, n->children[i], err);
      if (rc)
        return rc;
      ed_buf_t *bs[3] = {c->mn, c->mx, c->nc};
      size_t ls[3] = {l0, l1, l2};
      for (int k = 0; k < 3; k++) {
        if (bs[k]->data[bs[k]->len - 1] == '{') { /* nothing inside: drop the key */
          bs[k]->len = ls[k];
          bs[k]->data[bs[k]->len] = 0;
        } else {
          ed_buf_putc(bs[k], '}');
        }
      }
      continue;
    }
    c->budget--;
    pq_stats_t st;
    ed_code_t rc = pq_writer_stats(c->w, (size_t)ch->leaf, &st, err);
    if (rc)
      return rc;
    if (st.has_null_count) {
      put_name(c->nc, ch->name);
      ed_buf_printf(c->nc, "%" PRId64, st.null_count);
    }
    if (!st.has_min_max || ch->type == PQ_T_BOOLEAN || ch->type == PQ_T_BINARY ||
        (c->nan && c->nan[ch->leaf]))
      continue;
    size_t l0 = c->mn->len;
    put_name(c->mn, ch->name);
    if (!put_value(c->mn, ch->type, &st.min, false) && c->mn->data) {
      c->mn->len = l0;
      c->mn->data[l0] = 0;
    }
    size_t l1 = c->mx->len;
    put_name(c->mx, ch->name);
    if (!put_value(c->mx, ch->type, &st.max, true) && c->mx->data) {
      c->mx->len = l1;
      c->mx->data[l1] = 0;
    }
  }
  return ED_OK;
}

static void scan(const pq_schema_t *s, int node, const pq_col_t *c, size_t n, bool *nan) {
  const pq_node_t *nd = pq_schema_node(s, node);
  for (size_t i = 0; i < nd->nchildren && i < c->nchildren; i++) {
    const pq_node_t *ch = pq_schema_node(s, nd->children[i]);
    const pq_col_t *cc = &c->children[i];
    if (ch->type == PQ_T_STRUCT && ch->rep != PQ_REPEATED) {
      scan(s, nd->children[i], cc, n, nan);
    } else if ((ch->type == PQ_T_FLOAT || ch->type == PQ_T_DOUBLE) && ch->rep != PQ_REPEATED &&
               ch->leaf >= 0 && !nan[ch->leaf]) {
      for (size_t r = 0; r < n; r++) {
        if (cc->valid && !cc->valid[r])
          continue;
        if (ch->type == PQ_T_FLOAT ? isnan(cc->v.f32[r]) : isnan(cc->v.f64[r])) {
          nan[ch->leaf] = true;
          break;
        }
      }
    }
  }
}

void dl_stats_scan_nan(const pq_schema_t *s, const pq_col_t *cols, size_t nrows, bool *nan) {
  const pq_node_t *root = pq_schema_node(s, PQ_ROOT);
  pq_col_t top = {.len = nrows, .nchildren = root->nchildren, .children = cols};
  scan(s, PQ_ROOT, &top, nrows, nan);
}

ed_code_t dl_stats_from_writer(const pq_writer_t *w, int max_leaves, const bool *nan, ed_buf_t *out,
                               ed_err_t *err) {
  ed_buf_t mn = ED_BUF_INIT, mx = ED_BUF_INIT, nc = ED_BUF_INIT;
  ed_buf_putc(&mn, '{');
  ed_buf_putc(&mx, '{');
  ed_buf_putc(&nc, '{');
  sctx_t c = {
      w,  pq_writer_schema(w), &mn, &mx, &nc, max_leaves > 0 ? max_leaves : DL_STATS_INDEXED_COLS,
      nan};
  ed_code_t rc = walk(&c, PQ_ROOT, err);
  /* stats cut short by a failed append would be wrong, not just missing */
  if (!rc && (ed_buf_status(&mn) || ed_buf_status(&mx) || ed_buf_status(&nc)))
    rc = ed_err_set(err, ED_E_NOMEM, "file statistics: out of memory");
  if (!rc)
    rc = ed_buf_printf(
        out, "{\"numRecords\":%" PRId64 ",\"minValues\":%s},\"maxValues\":%s},\"nullCount\":%s}}",
        pq_writer_num_rows(w), mn.data, mx.data, nc.data);
  ed_buf_fini(&mn);
  ed_buf_fini(&mx);
  ed_buf_fini(&nc);
  return rc;
}

static ed_code_t type_json(const pq_schema_t *s, int id, ed_buf_t *out, ed_err_t *err);

static ed_code_t struct_json(const pq_schema_t *s, int id, ed_buf_t *out, ed_err_t *err) {
  const pq_node_t *n = pq_schema_node(s, id);
  ed_buf_puts(out, "{\"type\":\"struct\",\"fields\":[");
  for (size_t i = 0; i < n->nchildren; i++) {
    const pq_node_t *c = pq_schema_node(s, n->children[i]);
    if (i)
      ed_buf_putc(out, ',');
    ed_buf_puts(out, "{\"name\":");
    ed_buf_json_str(out, c->name, strlen(c->name));
    ed_buf_puts(out, ",\"type\":");
    ed_code_t rc = type_json(s, n->children[i], out, err);
    if (rc)
      return rc;
    ed_buf_printf(out, ",\"nullable\":%s,\"metadata\":{}}",
                  c->rep == PQ_REQUIRED ? "false" : "true");
  }
  return ed_buf_puts(out, "]}");
}

static ed_code_t type_json(const pq_schema_t *s, int id, ed_buf_t *out, ed_err_t *err) {
  const pq_node_t *n = pq_schema_node(s, id);
  static const char *const prim[] = {"boolean", "integer", "long", "float",    "double",
                                     "string",  "binary",  "date", "timestamp"};
  if (n->type <= PQ_T_TIMESTAMP)
    return ed_buf_printf(out, "\"%s\"", prim[n->type]);
  if (n->type == PQ_T_STRUCT)
    return struct_json(s, id, out, err);
  if (n->type == PQ_T_LIST) {
    const pq_node_t *e = pq_schema_node(s, n->children[0]);
    ed_buf_puts(out, "{\"type\":\"array\",\"elementType\":");
    ed_code_t rc = type_json(s, n->children[0], out, err);
    if (rc)
      return rc;
    return ed_buf_printf(out, ",\"containsNull\":%s}", e->rep == PQ_REQUIRED ? "false" : "true");
  }
  if (n->type == PQ_T_MAP) {
    const pq_node_t *v = pq_schema_node(s, n->children[1]);
    ed_buf_puts(out, "{\"type\":\"map\",\"keyType\":");
    type_json(s, n->children[0], out, err);
    ed_buf_puts(out, ",\"valueType\":");
    type_json(s, n->children[1], out, err);
    return ed_buf_printf(out, ",\"valueContainsNull\":%s}",
                         v->rep == PQ_REQUIRED ? "false" : "true");
  }
  return ed_err_set(err, ED_E_UNSUPPORTED, "schema: column '%s' has no Delta type", n->name);
}

ed_code_t dl_schema_from_pq(const pq_schema_t *s, ed_buf_t *out, ed_err_t *err) {
  return struct_json(s, PQ_ROOT, out, err);
}

static ed_code_t copy_node(const pq_schema_t *src, int id, pq_schema_t *dst, int parent,
                           ed_err_t *err) {
  const pq_node_t *n = pq_schema_node(src, id);
  int nid;
  ed_code_t rc = pq_schema_add(dst, parent, n->name, n->type, n->rep, &nid, err);
  for (size_t i = 0; !rc && i < n->nchildren; i++)
    rc = copy_node(src, n->children[i], dst, nid, err);
  return rc;
}

ed_code_t dl_schema_without(const pq_schema_t *full, const char *const *drop, pq_schema_t **out,
                            ed_err_t *err) {
  pq_schema_t *s;
  ed_code_t rc = pq_schema_new(&s, err);
  if (rc)
    return rc;
  const pq_node_t *root = pq_schema_node(full, PQ_ROOT);
  for (size_t i = 0; !rc && i < root->nchildren; i++) {
    const pq_node_t *c = pq_schema_node(full, root->children[i]);
    bool skip = false;
    for (size_t k = 0; drop && drop[k]; k++)
      skip |= !strcmp(drop[k], c->name);
    if (!skip)
      rc = copy_node(full, root->children[i], s, PQ_ROOT, err);
  }
  if (!rc)
    rc = pq_schema_finish(s, err);
  if (rc) {
    pq_schema_free(s);
    return rc;
  }
  *out = s;
  return ED_OK;
}
