/* pct: percent-encoding for SAS resources, Blob URLs and query strings.
 * Appends to an ed_buf_t; never decodes '+' as space unless asked. */
#ifndef ED_COMMON_PCT_H
#define ED_COMMON_PCT_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

typedef enum {
  /* RFC 3986 unreserved (A-Z a-z 0-9 - . _ ~) kept, everything else %XX, upper
   * hex. This is Python's quote(s, safe='') and what Event Hubs SAS 'sr' uses
   * (quote_plus differs only for spaces, which a URI cannot contain). */
  ED_PCT_COMPONENT = 0,
  /* As COMPONENT but '/' kept: blob paths inside a URL. */
  ED_PCT_PATH = 1,
  /* As COMPONENT but ' ' becomes '+': Python's quote_plus / urlencode, which
   * the official SDK uses for every SAS field. */
  ED_PCT_FORM = 2,
} ed_pct_mode_t;

ed_code_t ed_pct_encode(ed_buf_t *out, const char *s, size_t n, ed_pct_mode_t mode);
/* Decodes %XX (either case); a '+' stays '+' unless plus_is_space. */
ed_code_t ed_pct_decode(ed_buf_t *out, const char *s, size_t n, bool plus_is_space, ed_err_t *err);

#endif
