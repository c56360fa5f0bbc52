/* path: Spark's partition-directory escaping and the URI layer on top. */
#include <string.h>

#include "common/pct.h"
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
