/* buf: a growable byte buffer.
 * Owns its bytes; grows geometrically; reset keeps capacity so hot paths reuse
 * it without allocating. Always NUL-terminated after len (not counted), so text
 * can be used as a C string.
 * A failed append is sticky (curl's dynbuf): the buffer is marked failed, it
 * keeps what it held before that append (never half a value), every later
 * append is a no-op returning the same code, and ed_buf_status / ed_buf_steal
 * report it. So a writer may chain appends and check once, at the end, before
 * the bytes are used; ed_buf_reset or ed_buf_fini clears the mark. */
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
  ed_code_t failed; /* ED_OK, or the first append's failure (sticky) */
} ed_buf_t;

#define ED_BUF_INIT                                                                                \
  { NULL, 0, 0, ED_OK }

void ed_buf_init(ed_buf_t *b);
void ed_buf_fini(ed_buf_t *b);
void ed_buf_reset(ed_buf_t *b); /* len = 0, capacity kept, failure mark cleared */
/* ED_OK, or the code of the first append that failed since init/reset. The
 * bytes of a failed buffer must not be used: check before writing them out. */
ed_code_t ed_buf_status(const ed_buf_t *b) ED_MUST_CHECK;
/* Ensure room for `extra` more bytes (plus the NUL). ED_E_NOMEM on failure
 * (and the buffer is marked failed). Callers write into data directly after
 * it, so its result must be checked. */
ed_code_t ed_buf_reserve(ed_buf_t *b, size_t extra) ED_MUST_CHECK;
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

/* Gives the bytes to the caller (caller frees with free()); b is left empty.
 * NULL when an append failed (the bytes are freed) or memory ran out. */
char *ed_buf_steal(ed_buf_t *b) ED_MUST_CHECK;

#endif
