/* buf: growable byte buffer. */
#include "common/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ed_buf_init(ed_buf_t *b) {
  b->data = NULL;
  b->len = b->cap = 0;
  b->failed = ED_OK;
}

void ed_buf_fini(ed_buf_t *b) {
  free(b->data);
  ed_buf_init(b);
}

void ed_buf_reset(ed_buf_t *b) {
  b->len = 0;
  b->failed = ED_OK;
  if (b->data)
    b->data[0] = '\0';
}

ed_code_t ed_buf_status(const ed_buf_t *b) { return b->failed; }

static ed_code_t fail(ed_buf_t *b, ed_code_t code) {
  if (!b->failed)
    b->failed = code;
  return b->failed;
}

ed_code_t ed_buf_reserve(ed_buf_t *b, size_t extra) {
  if (b->failed)
    return b->failed;
  if (extra > SIZE_MAX - b->len - 1)
    return fail(b, ED_E_NOMEM);
  size_t need = b->len + extra + 1;
  if (need <= b->cap)
    return ED_OK;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need)
    cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  char *p = realloc(b->data, cap);
  if (!p)
    return fail(b, ED_E_NOMEM);
  b->data = p;
  b->cap = cap;
  return ED_OK;
}

ed_code_t ed_buf_append(ed_buf_t *b, const void *p, size_t n) {
  ed_code_t rc = ed_buf_reserve(b, n);
  if (rc)
    return rc;
  if (n)
    memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return ED_OK;
}

ed_code_t ed_buf_puts(ed_buf_t *b, const char *s) { return ed_buf_append(b, s, strlen(s)); }

ed_code_t ed_buf_putc(ed_buf_t *b, char c) { return ed_buf_append(b, &c, 1); }

ed_code_t ed_buf_vprintf(ed_buf_t *b, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (b->failed)
    return b->failed;
  if (n < 0)
    return fail(b, ED_E_INVALID);
  ed_code_t rc = ed_buf_reserve(b, (size_t)n);
  if (rc)
    return rc;
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
  return ED_OK;
}

ed_code_t ed_buf_printf(ed_buf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ed_code_t rc = ed_buf_vprintf(b, fmt, ap);
  va_end(ap);
  return rc;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  size_t len;
  uint32_t cp;
  if (c < 0x80)
    return 1;
  if ((c & 0xE0) == 0xC0) {
    len = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4;
    cp = c & 0x07;
  } else
    return 0;
  if (n < len)
    return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80)
      return 0;
    cp = (cp << 6) | (s[i] & 0x3F);
  }
  /* overlong forms, surrogates and out-of-range code points are invalid */
  if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
      cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return len;
}

static ed_code_t json_str(ed_buf_t *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *u = (const unsigned char *)s;
  ed_code_t rc0 = n > SIZE_MAX - 2 ? fail(b, ED_E_NOMEM) : ed_buf_reserve(b, n + 2);
  if (rc0)
    return rc0;
  b->data[b->len++] = '"';
  size_t i = 0;
  while (i < n) {
    unsigned c = u[i];
    size_t run = i;
    /* copy plain ASCII runs at once */
    while (run < n && u[run] >= 0x20 && u[run] < 0x80 && u[run] != '"' && u[run] != '\\')
      run++;
    if (run > i) {
      ed_code_t rc = ed_buf_append(b, s + i, run - i);
      if (rc)
        return rc;
      i = run;
      continue;
    }
    ed_code_t rc = ED_OK;
    if (c == '"')
      rc = ed_buf_puts(b, "\\\"");
    else if (c == '\\')
      rc = ed_buf_puts(b, "\\\\");
    else if (c == '\n')
      rc = ed_buf_puts(b, "\\n");
    else if (c == '\r')
      rc = ed_buf_puts(b, "\\r");
    else if (c == '\t')
      rc = ed_buf_puts(b, "\\t");
    else if (c < 0x20) {
      char esc[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};
      rc = ed_buf_puts(b, esc);
    } else {
      size_t l = utf8_len(u + i, n - i);
      if (l == 0) {
        rc = ed_buf_puts(b, "\xEF\xBF\xBD");
        l = 1;
      } else
        rc = ed_buf_append(b, s + i, l);
      i += l;
      if (rc)
        return rc;
      continue;
    }
    if (rc)
      return rc;
    i++;
  }
  return ed_buf_putc(b, '"');
}

ed_code_t ed_buf_json_str(ed_buf_t *b, const char *s, size_t n) {
  size_t start = b->len;
  ed_code_t rc = json_str(b, s, n);
  if (rc && b->data && b->len > start) {
    /* never half a string: back to what the buffer held before */
    b->len = start;
    b->data[start] = '\0';
  }
  return rc;
}

char *ed_buf_steal(ed_buf_t *b) {
  char *p = b->data;
  if (b->failed) {
    free(p);
    p = NULL;
  } else if (!p) {
    p = calloc(1, 1);
  }
  ed_buf_init(b);
  return p;
}

ed_code_t ed_buf_put_u64le(ed_buf_t *b, uint64_t v) {
  uint8_t x[8];
  for (int i = 0; i < 8; i++)
    x[i] = (uint8_t)(v >> (8 * i));
  return ed_buf_append(b, x, 8);
}

bool ed_get_u64le(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  if (end - *p < 8)
    return false;
  *v = 0;
  for (int i = 0; i < 8; i++)
    *v |= (uint64_t)(*p)[i] << (8 * i);
  *p += 8;
  return true;
}
