/* inspect: footer formatting. See inspect.h. */
#include "parquet/inspect.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "common/time.h"
#include "parquet/reader.h"
#include "proto/parquet.h"

static const char *type_name(pq_type_t t) {
  static const char *n[] = {"BOOLEAN", "INT32", "INT64",     "FLOAT",  "DOUBLE", "STRING",
                            "BINARY",  "DATE",  "TIMESTAMP", "STRUCT", "LIST",   "MAP"};
  return (unsigned)t < sizeof n / sizeof n[0] ? n[t] : "?";
}
static const char *phys_name(pq_phys_t p) {
  static const char *n[] = {"BOOLEAN", "INT32",  "INT64",      "INT96",
                            "FLOAT",   "DOUBLE", "BYTE_ARRAY", "FIXED_LEN_BYTE_ARRAY"};
  return (unsigned)p < sizeof n / sizeof n[0] ? n[p] : "-";
}
static const char *rep_name(pq_repetition_t r) {
  return r == PQ_REQUIRED ? "REQUIRED" : r == PQ_OPTIONAL ? "OPTIONAL" : "REPEATED";
}
static const char *codec_name(int c) {
  switch (c) {
  case PQ_CC_UNCOMPRESSED:
    return "UNCOMPRESSED";
  case PQ_CC_SNAPPY:
    return "SNAPPY";
  case PQ_CC_GZIP:
    return "GZIP";
  case PQ_CC_ZSTD:
    return "ZSTD";
  default:
    return "OTHER";
  }
}
static const char *enc_name(int e) {
  static const struct {
    const char *group, *name;
    int v;
  } t[] = {
#define PQ_ENUM(g, n, v) {#g, #n, v},
#include "proto/parquet.def"
#undef PQ_ENUM
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    if (t[i].v == e && !strcmp(t[i].group, "ENC"))
      return t[i].name;
  return "OTHER";
}

/* A statistics value in the leaf's logical type; JSON-safe either way. */
static void put_value(ed_buf_t *o, const pq_node_t *n, const pq_value_t *v) {
  bool sized = true;
  switch (n->phys) {
  case PQ_P_BOOLEAN:
    sized = v->len == 1;
    break;
  case PQ_P_INT32:
  case PQ_P_FLOAT:
    sized = v->len == 4;
    break;
  case PQ_P_INT64:
  case PQ_P_DOUBLE:
    sized = v->len == 8;
    break;
  default:
    break;
  }
  if (!sized) {
    ed_buf_puts(o, "\"(malformed)\"");
    return;
  }
  switch (n->phys) {
  case PQ_P_BOOLEAN:
    ed_buf_puts(o, v->u.b ? "true" : "false");
    return;
  case PQ_P_INT32:
    if (n->type == PQ_T_DATE && v->u.i32 > -719162 && v->u.i32 < 2932896) {
      char d[11];
      ed_time_format_date((int64_t)v->u.i32 * 86400 * 1000000, d);
      ed_buf_printf(o, "\"%s\"", d);
      return;
    }
    ed_buf_printf(o, "%" PRId32, v->u.i32);
    return;
  case PQ_P_INT64:
    /* Years 1..9999 as ISO-8601 UTC; anything else as the raw microseconds. */
    if (n->type == PQ_T_TIMESTAMP && v->u.i64 > INT64_C(-62135596800000000) &&
        v->u.i64 < INT64_C(253402300800000000)) {
      char iso[ED_TIME_ISO_MAX];
      ed_time_format_iso(v->u.i64, -1, iso);
      ed_buf_printf(o, "\"%s\"", iso);
      return;
    }
    ed_buf_printf(o, "%" PRId64, v->u.i64);
    return;
  case PQ_P_FLOAT:
  case PQ_P_DOUBLE: {
    double d = n->phys == PQ_P_FLOAT ? v->u.f32 : v->u.f64;
    if (isnan(d) || isinf(d))
      ed_buf_printf(o, "\"%s\"", isnan(d) ? "NaN" : d > 0 ? "Infinity" : "-Infinity");
    else
      ed_buf_printf(o, "%.17g", d);
    return;
  }
  default:
    if (n->type == PQ_T_STRING) {
      ed_buf_json_str(o, (const char *)v->bytes, v->len);
    } else {
      ed_buf_puts(o, "\"0x");
      for (size_t i = 0; i < v->len; i++)
        ed_buf_printf(o, "%02x", v->bytes[i]);
      ed_buf_putc(o, '"');
    }
  }
}

static void schema_node(ed_buf_t *o, const pq_schema_t *s, int id, int depth, bool json,
                        bool *first) {
  const pq_node_t *n = pq_schema_node(s, id);
  if (id != PQ_ROOT) {
    if (json) {
      ed_buf_puts(o, *first ? "{" : ",{");
      *first = false;
      ed_buf_puts(o, "\"name\":");
      ed_buf_json_str(o, n->name, strlen(n->name));
      ed_buf_printf(o, ",\"depth\":%d,\"type\":\"%s\",\"repetition\":\"%s\"", depth,
                    type_name(n->type), rep_name(n->rep));
      if (n->leaf >= 0) {
        ed_buf_printf(o, ",\"physical\":\"%s\",\"path\":", phys_name(n->phys));
        ed_buf_json_str(o, n->path, strlen(n->path));
        ed_buf_printf(o, ",\"max_def\":%d,\"max_rep\":%d", n->max_def, n->max_rep);
      }
      ed_buf_putc(o, '}');
    } else {
      ed_buf_printf(o, "%*s%s %s %s", 2 * depth, "", rep_name(n->rep), type_name(n->type), n->name);
      if (n->leaf >= 0)
        ed_buf_printf(o, " (%s, def %d, rep %d)", phys_name(n->phys), n->max_def, n->max_rep);
      ed_buf_putc(o, '\n');
    }
  }
  for (size_t k = 0; k < n->nchildren; k++)
    schema_node(o, s, n->children[k], depth + 1, json, first);
}

ed_code_t pq_inspect(const void *data, size_t len, bool json, ed_buf_t *o, ed_err_t *err) {
  pq_reader_t *r;
  ed_code_t rc = pq_reader_open(data, len, &r, err);
  if (rc)
    return rc;
  const pq_schema_t *s = pq_reader_schema(r);
  const char *cb = pq_reader_created_by(r);
  size_t nl = pq_schema_num_leaves(s), nrg = pq_reader_num_row_groups(r);
  if (json) {
    ed_buf_printf(o, "{\"size\":%zu,\"num_rows\":%" PRId64 ",\"created_by\":", len,
                  pq_reader_num_rows(r));
    ed_buf_json_str(o, cb, strlen(cb));
    ed_buf_puts(o, ",\"key_value_metadata\":{");
    for (size_t i = 0; i < pq_reader_num_kv(r); i++) {
      const char *k, *v;
      pq_reader_kv(r, i, &k, &v);
      if (i)
        ed_buf_putc(o, ',');
      ed_buf_json_str(o, k, strlen(k));
      ed_buf_putc(o, ':');
      if (v)
        ed_buf_json_str(o, v, strlen(v));
      else
        ed_buf_puts(o, "null");
    }
    ed_buf_puts(o, "},\"schema\":[");
  } else {
    ed_buf_printf(o, "file: %zu bytes, %" PRId64 " rows, %zu row groups, %zu columns\n", len,
                  pq_reader_num_rows(r), nrg, nl);
    ed_buf_printf(o, "created_by: %s\n", cb);
    for (size_t i = 0; i < pq_reader_num_kv(r); i++) {
      const char *k, *v;
      pq_reader_kv(r, i, &k, &v);
      ed_buf_printf(o, "key_value: %s = %.200s%s\n", k, v ? v : "(null)",
                    v && strlen(v) > 200 ? "..." : "");
    }
    ed_buf_puts(o, "schema:\n");
  }
  bool first = true;
  schema_node(o, s, PQ_ROOT, 0, json, &first);
  if (json)
    ed_buf_puts(o, "],\"row_groups\":[");
  for (size_t g = 0; g < nrg; g++) {
    if (json)
      ed_buf_printf(o, "%s{\"num_rows\":%" PRId64 ",\"columns\":[", g ? "," : "",
                    pq_reader_row_group_rows(r, g));
    else
      ed_buf_printf(o, "row group %zu: %" PRId64 " rows\n", g, pq_reader_row_group_rows(r, g));
    for (size_t i = 0; i < nl; i++) {
      pq_chunk_info_t ci;
      if ((rc = pq_reader_chunk_info(r, g, i, &ci, err)))
        goto out;
      const pq_node_t *n = pq_schema_node(s, pq_schema_leaf_node(s, i));
      if (json) {
        ed_buf_puts(o, i ? ",{\"path\":" : "{\"path\":");
        ed_buf_json_str(o, n->path, strlen(n->path));
        ed_buf_printf(o, ",\"physical\":\"%s\",\"codec\":\"%s\",\"encodings\":[",
                      phys_name(ci.phys), codec_name(ci.codec));
        bool f = true;
        for (int e = 0; e < 32; e++)
          if (ci.encodings >> e & 1) {
            ed_buf_printf(o, "%s\"%s\"", f ? "" : ",", enc_name(e));
            f = false;
          }
        ed_buf_printf(o,
                      "],\"num_values\":%" PRId64 ",\"total_compressed_size\":%" PRId64
                      ",\"total_uncompressed_size\":%" PRId64 ",\"data_page_offset\":%" PRId64,
                      ci.num_values, ci.total_compressed_size, ci.total_uncompressed_size,
                      ci.data_page_offset);
        if (ci.dictionary_page_offset >= 0)
          ed_buf_printf(o, ",\"dictionary_page_offset\":%" PRId64, ci.dictionary_page_offset);
        if (ci.has_stats) {
          ed_buf_puts(o, ",\"statistics\":{");
          if (ci.stats.has_null_count)
            ed_buf_printf(o, "\"null_count\":%" PRId64, ci.stats.null_count);
          if (ci.stats.has_min_max) {
            ed_buf_puts(o, ci.stats.has_null_count ? ",\"min\":" : "\"min\":");
            put_value(o, n, &ci.stats.min);
            ed_buf_puts(o, ",\"max\":");
            put_value(o, n, &ci.stats.max);
            if (ci.min_max_legacy)
              ed_buf_puts(o, ",\"legacy_min_max\":true");
          }
          ed_buf_putc(o, '}');
        }
        ed_buf_putc(o, '}');
      } else {
        ed_buf_printf(o, "  %s: %s %s [", n->path, phys_name(ci.phys), codec_name(ci.codec));
        bool f = true;
        for (int e = 0; e < 32; e++)
          if (ci.encodings >> e & 1) {
            ed_buf_printf(o, "%s%s", f ? "" : " ", enc_name(e));
            f = false;
          }
        ed_buf_printf(o, "] values %" PRId64 ", %" PRId64 " -> %" PRId64 " bytes", ci.num_values,
                      ci.total_uncompressed_size, ci.total_compressed_size);
        if (ci.has_stats) {
          if (ci.stats.has_null_count)
            ed_buf_printf(o, ", nulls %" PRId64, ci.stats.null_count);
          if (ci.stats.has_min_max) {
            ed_buf_puts(o, ", min ");
            put_value(o, n, &ci.stats.min);
            ed_buf_puts(o, ", max ");
            put_value(o, n, &ci.stats.max);
          }
        }
        ed_buf_putc(o, '\n');
      }
    }
    if (json)
      ed_buf_puts(o, "]}");
  }
  if (json)
    ed_buf_puts(o, "]}\n");
out:
  pq_reader_free(r);
  return rc;
}
