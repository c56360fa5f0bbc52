/* path: Spark's partition-directory escaping and the URI layer on top. */
#include <string.h>

#include <inttypes.h>

#include "common/pct.h"
#include "common/time.h"
#include "delta/path.h"

/* Spark ExternalCatalogUtils.escapePathName's set (non-Windows). */
static int spark_escapes(unsigned char c) {
  return c < 0x20 || c == '"' || c == '#' || c == '%' || c == '\'' || c == '*' || c == '/' ||
         c == ':' || c == '=' || c == '?' || c == '\\' || c == 0x7F || c == '{' || c == '[' ||
         c == ']' || c == '^';
}

static ed_code_t escape_name(ed_buf_t *out, const char *s) {
  static const char hex[] = "0123456789ABCDEF";
  ed_code_t rc = ED_OK;
  for (const unsigned char *p = (const unsigned char *)s; *p && !rc; p++) {
    if (spark_escapes(*p)) {
      char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
      rc = ed_buf_append(out, e, 3);
    } else {
      rc = ed_buf_putc(out, (char)*p);
    }
  }
  return rc;
}

ed_code_t dl_path_partition_dir(ed_buf_t *out, const dl_kv_t *pv, size_t npv) {
  ed_code_t rc = ED_OK;
  for (size_t i = 0; i < npv && !rc; i++) {
    escape_name(out, pv[i].key);
    ed_buf_putc(out, '=');
    if (!pv[i].value || !*pv[i].value)
      ed_buf_puts(out, DL_HIVE_NULL);
    else
      escape_name(out, pv[i].value);
    rc = ed_buf_putc(out, '/');
  }
  return rc;
}

ed_code_t dl_path_to_uri(ed_buf_t *out, const char *s, size_t n) {
  static const char hex[] = "0123456789ABCDEF";
  ed_code_t rc = ED_OK;
  for (size_t i = 0; i < n && !rc; i++) {
    unsigned char c = (unsigned char)s[i];
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~' || c == '=' || c == '+' || c == '/') {
      rc = ed_buf_putc(out, (char)c);
    } else {
      char e[3] = {'%', hex[c >> 4], hex[c & 15]};
      rc = ed_buf_append(out, e, 3);
    }
  }
  return rc;
}

ed_code_t dl_path_from_uri(ed_buf_t *out, const char *uri, ed_err_t *err) {
  return ed_pct_decode(out, uri, strlen(uri), false, err);
}

ed_code_t dl_pv_format(pq_type_t type, const pq_col_t *col, size_t row, ed_buf_t *out,
                       bool *is_null, ed_err_t *err) {
  *is_null = col->valid && !col->valid[row];
  if (*is_null)
    return ED_OK;
  switch (type) {
  case PQ_T_INT32:
    return ed_buf_printf(out, "%" PRId32, col->v.i32[row]);
  case PQ_T_INT64:
    return ed_buf_printf(out, "%" PRId64, col->v.i64[row]);
  case PQ_T_BOOLEAN:
    return ed_buf_puts(out, col->v.b8[row] ? "true" : "false");
  case PQ_T_DATE: {
    char d[11];
    ed_time_format_date((int64_t)col->v.i32[row] * ED_US_PER_DAY, d);
    return ed_buf_puts(out, d);
  }
  case PQ_T_TIMESTAMP: {
    /* the UTC form the spec recommends for new writers */
    char d[ED_TIME_ISO_MAX];
    ed_time_format_iso(col->v.i64[row], 6, d);
    return ed_buf_puts(out, d);
  }
  case PQ_T_STRING: {
    size_t n = col->off[row + 1] - col->off[row];
    *is_null = n == 0;
    return ed_buf_append(out, col->data + col->off[row], n);
  }
  default:
    return ed_err_set(err, ED_E_UNSUPPORTED,
                      "partition column of this type is not supported (use string, integer, "
                      "boolean, date or timestamp)");
  }
}
