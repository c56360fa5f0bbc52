/* decode_int: what the two JSON back ends (json-c in decode.c, simdjson
 * On-Demand in decode_simd.cpp) share: the decoder object and the leaf
 * conversions from JSON scalars to column values, so both follow one set of
 * rules. Private to src/stream/decode*. */
#ifndef ED_STREAM_DECODE_INT_H
#define ED_STREAM_DECODE_INT_H

#include <string.h>

#include "stream/decode.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sm_dec {
  sm_type_t *body;   /* the body STRUCT (a copy) */
  sm_type_t *schema; /* body fields + metadata columns */
  sm_meta_col_t *meta;
  size_t nmeta;
  sm_dec_opts_t opts;
  sm_dec_backend_t backend; /* resolved: SIMDJSON or JSONC */
  sm_dec_counts_t counts;
  void *jsonc; /* json_tokener */
  void *simd;  /* decode_simd.cpp's parser state */
  /* per event */
  sm_reason_t reason; /* first failure in this event, NONE if clean */
  ed_err_t *err;
  ed_err_t scratch_err;
  char *b64; /* BINARY decoding scratch */
  size_t b64_cap;
};

/* Leaf results: SM_REASON_NONE when the value was appended to c, a reason
 * when it does not fit c's type (nothing appended), or -1 for out of memory. */
#define SM_DEC_NOMEM ((int)-1)
int sm_dec__put_str(sm_dec_t *d, sm_col_t *c, const char *p, size_t n);
int sm_dec__put_i64(sm_dec_t *d, sm_col_t *c, int64_t v);
int sm_dec__put_u64(sm_dec_t *d, sm_col_t *c, uint64_t v); /* > INT64_MAX */
int sm_dec__put_f64(sm_dec_t *d, sm_col_t *c, double v);
int sm_dec__put_bool(sm_dec_t *d, sm_col_t *c, bool v);
int sm_dec__put_null(sm_dec_t *d, sm_col_t *c, bool nullable);

/* The same leaves for the values nearly every event carries (a STRING, a
 * finite DOUBLE) into a column with room left: no call, no growth check.
 * Anything else goes to the leaves above, so the rules stay theirs. */
/* `readable`: bytes that may be read at p (>= n); with 16 of them, and room
 * for 16, a short string is copied as one fixed 16-byte move. */
static inline int sm_dec__put_str_fast(sm_dec_t *d, sm_col_t *c, const char *p, size_t n,
                                       size_t readable) {
  if (c->type->kind == SM_STRING && n <= d->opts.max_string && c->len < c->cap && c->valid &&
      c->data && n <= c->data_cap - c->data_len && c->data_cap <= UINT32_MAX) {
    if (n <= 16 && readable >= 16 && c->data_cap - c->data_len >= 16)
      memcpy(c->data + c->data_len, p, 16);
    else
      memcpy(c->data + c->data_len, p, n);
    c->data_len += n;
    c->off[c->len + 1] = (uint32_t)c->data_len;
    c->valid[c->len++] = 1;
    return SM_REASON_NONE;
  }
  return sm_dec__put_str(d, c, p, n);
}

static inline int sm_dec__put_f64_fast(sm_dec_t *d, sm_col_t *c, double v) {
  if (c->type->kind == SM_DOUBLE && c->len < c->cap && c->valid && __builtin_isfinite(v)) {
    c->v.f64[c->len] = v;
    c->valid[c->len++] = 1;
    return SM_REASON_NONE;
  }
  return sm_dec__put_f64(d, c, v);
}

/* A value of column c (field `name`) failed with reason r: records the first
 * failure's message ("field 'amount': expected DOUBLE, got string "12,5" at
 * byte 31"; at = SIZE_MAX when unknown; got is a JSON type name; raw the
 * token's text, may be NULL). In permissive mode appends a null to c and
 * returns 0 (go on) unless c is NOT NULL; otherwise returns 1 (give up the
 * row). -1: out of memory. */
int sm_dec__fail(sm_dec_t *d, sm_col_t *c, bool nullable, const char *name, int r, const char *got,
                 const char *raw, size_t raw_len, size_t at);
/* The whole body is unusable (r: NOT_JSON, NOT_OBJECT, INVALID_UTF8,
 * TOO_DEEP, TOO_LARGE): records the message; the caller gives up the body. */
void sm_dec__fail_body(sm_dec_t *d, int r, size_t at, const char *what);
/* True when p[0..n) is a JSON number (the grammar, not its range). */
bool sm_dec__is_number(const char *p, size_t n);
/* True when brackets outside strings nest deeper than max in p[0..n). */
bool sm_dec__too_deep(const char *p, size_t n, unsigned max);
/* The struct field named k (exact, then case-insensitive; hint first), or -1. */
int sm_dec__field(const sm_type_t *st, const char *k, size_t kn, int hint);

#ifdef HAVE_SIMDJSON
/* decode_simd.cpp. new: NULL on out of memory. decode: appends one body row
 * (columns cols[0..st->nfields)) at row index `row`; 0 = done, 1 = gave up
 * (d->reason set), -1 = out of memory. */
void *sm_dec__simd_new(unsigned max_depth);
void sm_dec__simd_free(void *s);
int sm_dec__simd_decode(sm_dec_t *d, sm_col_t *cols, size_t row, const char *body, size_t len);
/* The bench's baseline: parse and touch every value, no columns. 0 = ok. */
int sm_dec__simd_bare(void *s, const char *body, size_t len, double *sink);
/* The simdjson kernel On-Demand was compiled for ("haswell", "fallback"). */
const char *sm_dec__simd_kernel(void);
#endif

#ifdef __cplusplus
}
#endif

#endif
