/* pct: percent-encoding. */
#include "common/pct.h"

static bool unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

ed_code_t ed_pct_encode(ed_buf_t *out, const char *s, size_t n, ed_pct_mode_t mode) {
  static const char hex[] = "0123456789ABCDEF";
  if (ed_buf_reserve(out, n * 3))
    return ED_E_NOMEM;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (unreserved(c) || (mode == ED_PCT_PATH && c == '/')) {
      out->data[out->len++] = (char)c;
    } else if (mode == ED_PCT_FORM && c == ' ') {
      out->data[out->len++] = '+';
    } else {
      out->data[out->len++] = '%';
      out->data[out->len++] = hex[c >> 4];
      out->data[out->len++] = hex[c & 15];
    }
  }
  out->data[out->len] = '\0';
  return ED_OK;
}

static int hexval(unsigned char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

ed_code_t ed_pct_decode(ed_buf_t *out, const char *s, size_t n, bool plus_is_space, ed_err_t *err) {
  if (ed_buf_reserve(out, n))
    return ED_E_NOMEM;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '%') {
      int h = -1, l = -1;
      if (i + 2 < n) {
        h = hexval((unsigned char)s[i + 1]);
        l = hexval((unsigned char)s[i + 2]);
      }
      if (h < 0 || l < 0)
        return ed_err_set(err, ED_E_PARSE,
                          "percent-encoding: bad escape at offset %zu, expected %%XX with two hex "
                          "digits",
                          i);
      out->data[out->len++] = (char)(h << 4 | l);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out->data[out->len++] = ' ';
    } else {
      out->data[out->len++] = (char)c;
    }
  }
  out->data[out->len] = '\0';
  return ED_OK;
}
