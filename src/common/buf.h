/* buf: a growable byte buffer.
 * Owns its bytes; grows geometrically; reset keeps capacity so hot paths reuse
 * it without allocating. Always NUL-terminated after len (not counted), so text
 * can be used as a C string. */
#ifndef ED_COMMON_BUF_H
#define ED_COMMON_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef struct ed_buf {
  char *data;
  size_t len;
  size_t cap;
} ed_buf_t;

#define ED_BUF_INIT                                                                                \
  { NULL, 0, 0 }

void ed_buf_init(ed_buf_t *b);
void ed_buf_fini(ed_buf_t *b);
void ed_buf_reset(ed_buf_t *b); /* len = 0, capacity kept */
/* Ensure room for `extra` more bytes (plus the NUL). ED_E_NOMEM on failure. */
ed_code_t ed_buf_reserve(ed_buf_t *b, size_t extra);
ed_code_t ed_buf_append(ed_buf_t *b, const void *p, size_t n);
ed_code_t ed_buf_puts(ed_buf_t *b, const char *s);
ed_code_t ed_buf_putc(ed_buf_t *b, char c);
ed_code_t ed_buf_printf(ed_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
ed_code_t ed_buf_vprintf(ed_buf_t *b, const char *fmt, va_list ap);
/* Appends s as a JSON string literal, quotes included; invalid UTF-8 bytes
 * become U+FFFD so the output is always valid JSON. */
ed_code_t ed_buf_json_str(ed_buf_t *b, const char *s, size_t n);
/* Little-endian fixed-width integers for binary state formats (windows,
 * dedup and aggregate state): append v, or read one from *p (advanced) when
 * at least 8 bytes remain before end, else false and *p unchanged. */
ed_code_t ed_buf_put_u64le(ed_buf_t *b, uint64_t v);
bool ed_get_u64le(const uint8_t **p, const uint8_t *end, uint64_t *v);

/* Gives the bytes to the caller (caller frees with free()); b is left empty. */
char *ed_buf_steal(ed_buf_t *b);

#endif
