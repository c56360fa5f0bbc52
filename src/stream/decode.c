/* decode: the decoder object, the shared leaf conversions, the json-c back
 * end, metadata columns and dead-letter rows (see decode.h). The simdjson
 * back end (decode_simd.cpp) walks the same schema with the same leaves. */
#include "config.h"

#include "stream/decode.h"

#include <ctype.h>
#include <float.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/b64.h"
#include "common/time.h"
#include "stream/decode_int.h"

#define DEFAULT_MAX_DEPTH  64
#define DEFAULT_MAX_STRING (256 * 1024)
#define DEFAULT_MAX_BODY   (4 * 1024 * 1024)

/* ---- names ---- */

const char *sm_reason_name(sm_reason_t r) {
  static const char *const names[] = {"ok",
#define SM_REASON_NAME(id, name) name,
                                      SM_REASONS(SM_REASON_NAME)
#undef SM_REASON_NAME
  };
  return (unsigned)r < SM_REASON__COUNT ? names[r] : "?";
}

ed_code_t sm_bad_mode_parse(const char *s, sm_bad_mode_t *mode, ed_err_t *err) {
  static const struct {
    const char *name;
    sm_bad_mode_t mode;
  } names[] = {
      {"dead-letter", SM_BAD_DEAD_LETTER}, {"deadletter", SM_BAD_DEAD_LETTER},
      {"dead_letter", SM_BAD_DEAD_LETTER}, {"permissive", SM_BAD_PERMISSIVE},
      {"fail-fast", SM_BAD_FAIL_FAST},     {"failfast", SM_BAD_FAIL_FAST},
      {"fail_fast", SM_BAD_FAIL_FAST},
  };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcasecmp(s, names[i].name) == 0) {
      *mode = names[i].mode;
      return ED_OK;
    }
  return ed_err_set(err, ED_E_INVALID,
                    "bad-event mode '%.40s': expected dead-letter, permissive or fail-fast", s);
}

/* ---- metadata columns ---- */

static const struct {
  const char *name, *alias;
  sm_meta_kind_t kind;
} meta_names[] = {
    {"enqueued_time", "enqueuedTime", SM_META_ENQUEUED_TIME},
    {"offset", "offset", SM_META_OFFSET},
    {"sequence_number", "sequenceNumber", SM_META_SEQUENCE_NUMBER},
    {"partition", "partitionId", SM_META_PARTITION},
    {"partition_key", "partitionKey", SM_META_PARTITION_KEY},
    {"publisher", "publisher", SM_META_PUBLISHER},
    {"properties", "applicationProperties", SM_META_PROPERTIES},
};

static const char *meta_default_name(sm_meta_kind_t k) {
  for (size_t i = 0; i < sizeof meta_names / sizeof meta_names[0]; i++)
    if (meta_names[i].kind == k)
      return meta_names[i].name;
  return "?";
}

void sm_meta_cols_free(sm_meta_col_t *cols, size_t n) {
  if (!cols)
    return;
  for (size_t i = 0; i < n; i++)
    free((char *)cols[i].name);
  free(cols);
}

static size_t meta_word(const char *s, size_t i, size_t *end) {
  size_t j = i;
  while (s[j] && (isalnum((unsigned char)s[j]) || s[j] == '_'))
    j++;
  *end = j;
  return j - i;
}

ed_code_t sm_meta_parse(const char *spec, sm_meta_col_t **cols, size_t *n, ed_err_t *err) {
  *cols = NULL;
  *n = 0;
  if (!spec)
    return ED_OK;
  size_t i = 0, cap = 0;
  sm_meta_col_t *out = NULL;
  ed_code_t rc = ED_OK;
  for (;;) {
    while (isspace((unsigned char)spec[i]))
      i++;
    if (!spec[i] && !*n)
      break; /* empty spec */
    size_t end, l = meta_word(spec, i, &end);
    int kind = -1;
    for (size_t k = 0; k < sizeof meta_names / sizeof meta_names[0] && l; k++)
      if ((strlen(meta_names[k].name) == l && strncasecmp(spec + i, meta_names[k].name, l) == 0) ||
          (strlen(meta_names[k].alias) == l && strncasecmp(spec + i, meta_names[k].alias, l) == 0))
        kind = (int)meta_names[k].kind;
    if (kind < 0) {
      rc = ed_err_set(err, ED_E_CONFIG,
                      "metadata: at %zu: expected enqueued_time, offset, sequence_number, "
                      "partition, partition_key, publisher or properties, got '%.*s'",
                      i + 1, (int)(l ? l : 1), spec + i);
      break;
    }
    char *name = strndup(spec + i, l);
    i = end;
    while (isspace((unsigned char)spec[i]))
      i++;
    if (strncasecmp(spec + i, "AS", 2) == 0 && !isalnum((unsigned char)spec[i + 2]) &&
        spec[i + 2] != '_') {
      i += 2;
      while (isspace((unsigned char)spec[i]))
        i++;
      l = meta_word(spec, i, &end);
      if (!l) {
        free(name);
        rc = ed_err_set(err, ED_E_CONFIG, "metadata: at %zu: expected a column name after AS",
                        i + 1);
        break;
      }
      free(name);
      name = strndup(spec + i, l);
      i = end;
    } else if (isalpha((unsigned char)spec[i]) || spec[i] == '_') { /* "offset off" */
      l = meta_word(spec, i, &end);
      free(name);
      name = strndup(spec + i, l);
      i = end;
    }
    if (*n == cap) {
      cap = cap ? cap * 2 : 8;
      sm_meta_col_t *p = realloc(out, cap * sizeof *p);
      if (!p) {
        free(name);
        rc = ed_err_set(err, ED_E_NOMEM, "metadata: out of memory");
        break;
      }
      out = p;
    }
    if (!name) {
      rc = ed_err_set(err, ED_E_NOMEM, "metadata: out of memory");
      break;
    }
    out[*n].kind = (sm_meta_kind_t)kind;
    out[*n].name = name;
    (*n)++;
    while (isspace((unsigned char)spec[i]))
      i++;
    if (!spec[i])
      break;
    if (spec[i] != ',') {
      rc = ed_err_set(err, ED_E_CONFIG, "metadata: at %zu: expected ',' or the end, got '%c'",
                      i + 1, spec[i]);
      break;
    }
    i++;
  }
  if (rc) {
    sm_meta_cols_free(out, *n);
    *n = 0;
    return rc;
  }
  *cols = out;
  return ED_OK;
}

static sm_type_t *meta_type(sm_meta_kind_t k, bool *nullable) {
  *nullable = true;
  switch (k) {
  case SM_META_ENQUEUED_TIME:
    *nullable = false;
    return sm_type_new(SM_TIMESTAMP);
  case SM_META_OFFSET:
  case SM_META_SEQUENCE_NUMBER:
    *nullable = false;
    return sm_type_new(SM_BIGINT);
  case SM_META_PROPERTIES:
    return sm_type_new_map(sm_type_new(SM_STRING), true);
  default:
    return sm_type_new(SM_STRING);
  }
}

/* ---- the decoder ---- */

ed_code_t sm_dec_new(const sm_type_t *body_schema, const sm_meta_col_t *meta, size_t nmeta,
                     const sm_dec_opts_t *opts, sm_dec_t **out, ed_err_t *err) {
  *out = NULL;
  if (!body_schema || body_schema->kind != SM_STRUCT)
    return ed_err_set(err, ED_E_INVALID, "decode: the body schema must be a STRUCT");
  sm_dec_t *d = calloc(1, sizeof *d);
  if (!d)
    return ed_err_set(err, ED_E_NOMEM, "decode: out of memory");
  if (opts)
    d->opts = *opts;
  if (!d->opts.max_depth)
    d->opts.max_depth = DEFAULT_MAX_DEPTH;
  if (!d->opts.max_string)
    d->opts.max_string = DEFAULT_MAX_STRING;
  if (!d->opts.max_body)
    d->opts.max_body = DEFAULT_MAX_BODY;
  ed_code_t rc = ED_OK;
  d->body = sm_type_clone(body_schema);
  d->schema = sm_type_clone(body_schema);
  d->meta = calloc(nmeta ? nmeta : 1, sizeof *d->meta);
  if (!d->body || !d->schema || !d->meta) {
    rc = ed_err_set(err, ED_E_NOMEM, "decode: out of memory");
    goto fail;
  }
  for (size_t i = 0; i < nmeta; i++) {
    const char *name = meta[i].name ? meta[i].name : meta_default_name(meta[i].kind);
    d->meta[i].kind = meta[i].kind;
    d->meta[i].name = strdup(name);
    d->nmeta = i + 1;
    bool nullable;
    sm_type_t *t = meta_type(meta[i].kind, &nullable);
    if (!d->meta[i].name || !t) {
      sm_type_free(t);
      rc = ed_err_set(err, ED_E_NOMEM, "decode: out of memory");
      goto fail;
    }
    if (sm_type_field_index(d->schema, name) >= 0) {
      sm_type_free(t);
      rc = ed_err_set(err, ED_E_SCHEMA,
                      "decode: metadata column '%s' has the name of a body field (use AS)", name);
      goto fail;
    }
    if ((rc = sm_type_add_field(d->schema, name, t, nullable, err)) != ED_OK)
      goto fail;
  }
  sm_dec_backend_t be = d->opts.backend;
#ifdef HAVE_SIMDJSON
  if (be == SM_DEC_AUTO)
    be = SM_DEC_SIMDJSON;
#else
  if (be == SM_DEC_AUTO)
    be = SM_DEC_JSONC;
  if (be == SM_DEC_SIMDJSON) {
    rc = ed_err_set(err, ED_E_UNSUPPORTED, "decode: built without simdjson");
    goto fail;
  }
#endif
  d->backend = be;
#ifdef HAVE_SIMDJSON
  if (be == SM_DEC_SIMDJSON && !(d->simd = sm_dec__simd_new(d->opts.max_depth))) {
    rc = ed_err_set(err, ED_E_NOMEM, "decode: out of memory");
    goto fail;
  }
#endif
  if (be == SM_DEC_JSONC) {
    json_tokener *tok = json_tokener_new_ex((int)d->opts.max_depth);
    if (!tok) {
      rc = ed_err_set(err, ED_E_NOMEM, "decode: out of memory");
      goto fail;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    d->jsonc = tok;
  }
  *out = d;
  return ED_OK;
fail:
  sm_dec_free(d);
  return rc;
}

void sm_dec_free(sm_dec_t *d) {
  if (!d)
    return;
  sm_type_free(d->body);
  sm_type_free(d->schema);
  if (d->meta)
    for (size_t i = 0; i < d->nmeta; i++)
      free((char *)d->meta[i].name);
  free(d->meta);
  if (d->jsonc)
    json_tokener_free(d->jsonc);
#ifdef HAVE_SIMDJSON
  sm_dec__simd_free(d->simd);
#endif
  free(d->b64);
  free(d);
}

const sm_type_t *sm_dec_schema(const sm_dec_t *d) { return d->schema; }
const char *sm_dec_backend_name(const sm_dec_t *d) {
  return d->backend == SM_DEC_SIMDJSON ? "simdjson" : "json-c";
}
const sm_dec_counts_t *sm_dec_counts(const sm_dec_t *d) { return &d->counts; }

/* ---- leaves ---- */

static int put_rc(ed_code_t rc) { return rc ? SM_DEC_NOMEM : SM_REASON_NONE; }

int sm_dec__put_str(sm_dec_t *d, sm_col_t *c, const char *p, size_t n) {
  switch (c->type->kind) {
  case SM_STRING:
    if (n > d->opts.max_string)
      return SM_REASON_TOO_LARGE;
    return put_rc(sm_col_append_str(c, p, n));
  case SM_BINARY: {
    if (n > d->opts.max_string)
      return SM_REASON_TOO_LARGE;
    size_t need = n / 4 * 3 + 3, got;
    if (need > d->b64_cap) {
      char *q = realloc(d->b64, need);
      if (!q)
        return SM_DEC_NOMEM;
      d->b64 = q;
      d->b64_cap = need;
    }
    if (ed_b64_decode(p, n, (uint8_t *)d->b64, &got, NULL))
      return SM_REASON_TYPE;
    return put_rc(sm_col_append_str(c, d->b64, got));
  }
  case SM_TIMESTAMP:
  case SM_DATE: {
    int64_t us;
    if (ed_time_parse_iso(p, n, &us, NULL))
      return SM_REASON_TIMESTAMP;
    if (c->type->kind == SM_TIMESTAMP)
      return put_rc(sm_col_append_i64(c, us));
    return put_rc(sm_col_append_i32(c, (int32_t)ed_floordiv(us, ED_US_PER_DAY)));
  }
  default:
    return SM_REASON_TYPE;
  }
}

int sm_dec__put_i64(sm_dec_t *d, sm_col_t *c, int64_t v) {
  switch (c->type->kind) {
  case SM_INT:
    if (v < INT32_MIN || v > INT32_MAX)
      return SM_REASON_OVERFLOW;
    return put_rc(sm_col_append_i32(c, (int32_t)v));
  case SM_BIGINT:
    return put_rc(sm_col_append_i64(c, v));
  case SM_FLOAT:
    return put_rc(sm_col_append_f32(c, (float)v));
  case SM_DOUBLE:
    return put_rc(sm_col_append_f64(c, (double)v));
  case SM_TIMESTAMP: /* seconds since the epoch, as Spark reads a JSON integer */
    if (v > INT64_MAX / ED_US_PER_SEC || v < INT64_MIN / ED_US_PER_SEC)
      return SM_REASON_OVERFLOW;
    return put_rc(sm_col_append_i64(c, v * ED_US_PER_SEC));
  default:
    return SM_REASON_TYPE;
  }
}

int sm_dec__put_u64(sm_dec_t *d, sm_col_t *c, uint64_t v) {
  switch (c->type->kind) {
  case SM_INT:
  case SM_BIGINT:
  case SM_TIMESTAMP:
    return SM_REASON_OVERFLOW;
  case SM_FLOAT:
    return put_rc(sm_col_append_f32(c, (float)v));
  case SM_DOUBLE:
    return put_rc(sm_col_append_f64(c, (double)v));
  default:
    return SM_REASON_TYPE;
  }
}

int sm_dec__put_f64(sm_dec_t *d, sm_col_t *c, double v) {
  if (!isfinite(v))
    return c->type->kind == SM_DOUBLE || c->type->kind == SM_FLOAT ? SM_REASON_OVERFLOW
                                                                   : SM_REASON_TYPE;
  switch (c->type->kind) {
  case SM_FLOAT:
    if (fabs(v) > FLT_MAX)
      return SM_REASON_OVERFLOW;
    return put_rc(sm_col_append_f32(c, (float)v));
  case SM_DOUBLE:
    return put_rc(sm_col_append_f64(c, v));
  default:
    return SM_REASON_TYPE;
  }
}

int sm_dec__put_bool(sm_dec_t *d, sm_col_t *c, bool v) {
  if (c->type->kind != SM_BOOLEAN)
    return SM_REASON_TYPE;
  return put_rc(sm_col_append_bool(c, v));
}

int sm_dec__put_null(sm_dec_t *d, sm_col_t *c, bool nullable) {
  if (!nullable)
    return SM_REASON_NULL_REQUIRED;
  return put_rc(sm_col_append_null(c));
}

bool sm_dec__is_number(const char *p, size_t n) {
  size_t i = 0;
  if (i < n && p[i] == '-')
    i++;
  if (i >= n || !isdigit((unsigned char)p[i]))
    return false;
  if (p[i] == '0')
    i++;
  else
    while (i < n && isdigit((unsigned char)p[i]))
      i++;
  if (i < n && p[i] == '.') {
    i++;
    if (i >= n || !isdigit((unsigned char)p[i]))
      return false;
    while (i < n && isdigit((unsigned char)p[i]))
      i++;
  }
  if (i < n && (p[i] == 'e' || p[i] == 'E')) {
    i++;
    if (i < n && (p[i] == '+' || p[i] == '-'))
      i++;
    if (i >= n || !isdigit((unsigned char)p[i]))
      return false;
    while (i < n && isdigit((unsigned char)p[i]))
      i++;
  }
  return i == n;
}

bool sm_dec__too_deep(const char *p, size_t n, unsigned max) {
  unsigned depth = 0;
  bool in_str = false;
  for (size_t i = 0; i < n; i++) {
    char c = p[i];
    if (in_str) {
      if (c == '\\')
        i++;
      else if (c == '"')
        in_str = false;
    } else if (c == '"') {
      in_str = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max)
        return true;
    } else if ((c == ']' || c == '}') && depth) {
      depth--;
    }
  }
  return false;
}

int sm_dec__field(const sm_type_t *st, const char *k, size_t kn, int hint) {
  size_t nf = st->nfields;
  if (hint >= 0 && (size_t)hint < nf) {
    const char *nm = st->fields[hint].name;
    if (strncmp(nm, k, kn) == 0 && nm[kn] == '\0')
      return hint;
  }
  for (size_t i = 0; i < nf; i++) {
    const char *nm = st->fields[i].name;
    if (strncmp(nm, k, kn) == 0 && nm[kn] == '\0')
      return (int)i;
  }
  for (size_t i = 0; i < nf; i++) {
    const char *nm = st->fields[i].name;
    if (strncasecmp(nm, k, kn) == 0 && nm[kn] == '\0')
      return (int)i;
  }
  return -1;
}

static const char *kind_expected(const sm_type_t *t) {
  switch (t->kind) {
  case SM_TIMESTAMP:
    return "TIMESTAMP (ISO-8601 text or integral seconds)";
  case SM_DATE:
    return "DATE (yyyy-mm-dd)";
  case SM_BINARY:
    return "BINARY (base64 text)";
  case SM_STRUCT:
    return "STRUCT (a JSON object)";
  case SM_MAP:
    return "MAP (a JSON object)";
  case SM_ARRAY:
    return "ARRAY (a JSON array)";
  default:
    return sm_kind_name(t->kind);
  }
}

static void record(sm_dec_t *d, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void record(sm_dec_t *d, int r, const char *fmt, ...) {
  if (d->reason != SM_REASON_NONE)
    return; /* the first failure names the event */
  d->reason = (sm_reason_t)r;
  va_list ap;
  va_start(ap, fmt);
  ed_err_vset(d->err, ED_E_PARSE, fmt, ap);
  va_end(ap);
}

int sm_dec__fail(sm_dec_t *d, sm_col_t *c, bool nullable, const char *name, int r, const char *got,
                 const char *raw, size_t raw_len, size_t at) {
  if (r == SM_DEC_NOMEM)
    return -1;
  char where[40] = "";
  if (at != SIZE_MAX)
    snprintf(where, sizeof where, " at byte %zu", at);
  while (raw && raw_len && isspace((unsigned char)raw[raw_len - 1]))
    raw_len--;
  int shown = raw ? (int)(raw_len > 40 ? 40 : raw_len) : 0;
  const char *dots = raw && raw_len > 40 ? "..." : "";
  switch (r) {
  case SM_REASON_NULL_REQUIRED:
    record(d, r, "decode: field '%s': NOT NULL, got %s%s", name, got ? got : "nothing", where);
    break;
  case SM_REASON_OVERFLOW:
    record(d, r, "decode: field '%s': %.*s%s is out of the range of %s%s", name, shown,
           raw ? raw : "", dots, sm_kind_name(c->type->kind), where);
    break;
  case SM_REASON_TOO_LARGE:
    record(d, r, "decode: field '%s': string of %zu bytes, longer than the limit %zu%s", name,
           raw_len, d->opts.max_string, where);
    break;
  case SM_REASON_DUPLICATE_KEY:
    record(d, r, "decode: field '%s': key %.*s%s twice in one MAP%s", name, shown, raw ? raw : "",
           dots, where);
    break;
  default:
    record(d, r, "decode: field '%s': expected %s, got %s%s%.*s%s%s", name, kind_expected(c->type),
           got ? got : "?", raw ? " " : "", shown, raw ? raw : "", dots, where);
  }
  if (d->opts.mode != SM_BAD_PERMISSIVE || !nullable || r == SM_REASON_NULL_REQUIRED)
    return 1;
  /* permissive: the value becomes null, the row goes on; children of a
   * struct that failed half way are cut back first */
  if (c->type->kind == SM_STRUCT) {
    for (size_t i = 0; i < c->nchildren; i++)
      sm_col_truncate(&c->children[i], c->len);
  } else if (c->type->kind == SM_ARRAY || c->type->kind == SM_MAP) {
    sm_col_truncate(c, c->len);
  }
  return sm_col_append_null(c) ? -1 : 0;
}

void sm_dec__fail_body(sm_dec_t *d, int r, size_t at, const char *what) {
  if (at != SIZE_MAX)
    record(d, r, "decode: body: %s at byte %zu", what, at);
  else
    record(d, r, "decode: body: %s", what);
}

/* ---- json-c back end ---- */

static const char *jc_type_name(json_object *v) {
  switch (json_object_get_type(v)) {
  case json_type_null:
    return "null";
  case json_type_boolean:
    return "boolean";
  case json_type_double:
  case json_type_int:
    return "number";
  case json_type_object:
    return "object";
  case json_type_array:
    return "array";
  default:
    return "string";
  }
}

static int jc_value(sm_dec_t *d, sm_col_t *c, bool nullable, const char *name, json_object *v);

static int jc_fail(sm_dec_t *d, sm_col_t *c, bool nullable, const char *name, int r,
                   json_object *v) {
  const char *raw = v ? json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN) : NULL;
  return sm_dec__fail(d, c, nullable, name, r, v ? jc_type_name(v) : NULL, raw,
                      raw ? strlen(raw) : 0, SIZE_MAX);
}

/* One row of a struct whose children are cols[0..st->nfields), all at `row`. */
static int jc_struct(sm_dec_t *d, const sm_type_t *st, sm_col_t *cols, size_t row, json_object *o) {
  int hint = 0, r;
  json_object_object_foreach(o, key, val) {
    int fi = sm_dec__field(st, key, strlen(key), hint);
    if (fi < 0)
      continue;
    hint = fi + 1;
    sm_col_t *c = &cols[fi];
    if (c->len > row) /* the same field again, in another case: the last wins */
      sm_col_truncate(c, row);
    if ((r = jc_value(d, c, st->fields[fi].nullable, st->fields[fi].name, val)) != 0)
      return r;
  }
  for (size_t i = 0; i < st->nfields; i++)
    if (cols[i].len == row) {
      r = sm_dec__put_null(d, &cols[i], st->fields[i].nullable);
      if (r && (r = sm_dec__fail(d, &cols[i], st->fields[i].nullable, st->fields[i].name, r, NULL,
                                 NULL, 0, SIZE_MAX)) != 0)
        return r;
    }
  return 0;
}

static bool map_has_key(const sm_col_t *keys, size_t from, const char *k, size_t kn) {
  for (size_t i = from; i < keys->len; i++) {
    size_t n;
    const char *p = sm_col_str(keys, i, &n);
    if (n == kn && memcmp(p, k, kn) == 0)
      return true;
  }
  return false;
}

static int jc_value(sm_dec_t *d, sm_col_t *c, bool nullable, const char *name, json_object *v) {
  int r;
  const sm_type_t *t = c->type;
  switch (json_object_get_type(v)) {
  case json_type_null:
    r = sm_dec__put_null(d, c, nullable);
    break;
  case json_type_boolean:
    r = sm_dec__put_bool(d, c, json_object_get_boolean(v));
    break;
  case json_type_string:
    r = sm_dec__put_str(d, c, json_object_get_string(v), (size_t)json_object_get_string_len(v));
    break;
  case json_type_int: {
    int64_t i = json_object_get_int64(v);
    uint64_t u = json_object_get_uint64(v);
    /* json-c saturates integers past 64 bits at UINT64_MAX: read as out
     * of range (the one real 2^64-1 with them; simdjson has no such limit) */
    if (u == UINT64_MAX)
      r = SM_REASON_OVERFLOW;
    else
      r = i == INT64_MAX && u > (uint64_t)INT64_MAX ? sm_dec__put_u64(d, c, u)
                                                    : sm_dec__put_i64(d, c, i);
    break;
  }
  case json_type_double:
    r = sm_dec__put_f64(d, c, json_object_get_double(v));
    break;
  case json_type_object:
    if (t->kind == SM_STRUCT) {
      size_t row = c->len;
      if ((r = jc_struct(d, t, c->children, row, v)) != 0)
        return r;
      r = put_rc(sm_col_append_struct(c));
    } else if (t->kind == SM_MAP) {
      size_t first = c->children[0].len;
      r = 0;
      json_object_object_foreach(v, key, val) {
        size_t kn = strlen(key);
        if (map_has_key(&c->children[0], first, key, kn)) {
          r = SM_REASON_DUPLICATE_KEY;
          break;
        }
        if (sm_col_append_str(&c->children[0], key, kn))
          return -1;
        if ((r = jc_value(d, &c->children[1], t->elem_nullable, name, val)) != 0)
          return r;
      }
      if (!r)
        r = put_rc(sm_col_append_list_end(c));
    } else {
      r = SM_REASON_TYPE;
    }
    break;
  case json_type_array:
    if (t->kind == SM_ARRAY) {
      size_t n = json_object_array_length(v);
      for (size_t i = 0; i < n; i++)
        if ((r = jc_value(d, &c->children[0], t->elem_nullable, name,
                          json_object_array_get_idx(v, i))) != 0)
          return r;
      r = put_rc(sm_col_append_list_end(c));
    } else {
      r = SM_REASON_TYPE;
    }
    break;
  default:
    r = SM_REASON_TYPE;
  }
  if (r == SM_DEC_NOMEM)
    return -1;
  if (r)
    return jc_fail(d, c, nullable, name, r, v);
  return 0;
}

static bool valid_utf8(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    if (!len || c > 0xF4 || i + len > n)
      return false;
    for (size_t k = 1; k < len; k++)
      if ((s[i + k] & 0xC0) != 0x80)
        return false;
    if (len == 3 && ((c == 0xE0 && s[i + 1] < 0xA0) || (c == 0xED && s[i + 1] > 0x9F)))
      return false;
    if (len == 4 && ((c == 0xF0 && s[i + 1] < 0x90) || (c == 0xF4 && s[i + 1] > 0x8F)))
      return false;
    i += len;
  }
  return true;
}

static int jc_decode(sm_dec_t *d, sm_col_t *cols, size_t row, const char *body, size_t len) {
  json_tokener *tok = d->jsonc;
  json_tokener_reset(tok);
  /* json-c's own UTF-8 check lets some overlong forms through; the body is
   * checked here so both back ends refuse the same bytes */
  if (!valid_utf8((const unsigned char *)body, len)) {
    sm_dec__fail_body(d, SM_REASON_INVALID_UTF8, SIZE_MAX, "invalid UTF-8");
    return 1;
  }
  if (len > INT32_MAX) {
    sm_dec__fail_body(d, SM_REASON_TOO_LARGE, SIZE_MAX, "too large");
    return 1;
  }
  json_object *o = json_tokener_parse_ex(tok, body, (int)len);
  enum json_tokener_error je = json_tokener_get_error(tok);
  size_t end = json_tokener_get_parse_end(tok);
  if (o && je == json_tokener_success)
    while (end < len && isspace((unsigned char)body[end]))
      end++;
  if (!o || je != json_tokener_success || end != len) {
    json_object_put(o);
    if (je == json_tokener_error_depth)
      sm_dec__fail_body(d, SM_REASON_TOO_DEEP, end, "nested deeper than the limit");
    else if (je == json_tokener_continue || je == json_tokener_success)
      sm_dec__fail_body(d, SM_REASON_NOT_JSON, end,
                        je == json_tokener_success ? "not JSON (text after the value)"
                                                   : "not JSON (truncated)");
    else {
      char what[120];
      snprintf(what, sizeof what, "not JSON (%s)", json_tokener_error_desc(je));
      sm_dec__fail_body(d, SM_REASON_NOT_JSON, end, what);
    }
    return 1;
  }
  int r;
  if (!json_object_is_type(o, json_type_object)) {
    sm_dec__fail_body(d, SM_REASON_NOT_OBJECT, SIZE_MAX, "not a JSON object");
    r = 1;
  } else {
    r = jc_struct(d, d->body, cols, row, o);
  }
  json_object_put(o);
  return r;
}

/* ---- metadata, rows ---- */

static ed_code_t put_opt_str(sm_col_t *c, sm_str_t s) {
  return s.p ? sm_col_append_str(c, s.p, s.n) : sm_col_append_null(c);
}

/* sm_col_append_i64 without the call while the column has room (every
 * event appends its offset, sequence number and enqueued time). */
static inline ed_code_t put_i64(sm_col_t *c, int64_t v) {
  if (c->len < c->cap && c->valid) {
    c->v.i64[c->len] = v;
    c->valid[c->len++] = 1;
    return ED_OK;
  }
  return sm_col_append_i64(c, v);
}

static ed_code_t put_meta(const sm_dec_t *d, sm_col_t *cols, const sm_event_meta_t *m) {
  static const sm_event_meta_t none = {0};
  if (!m)
    m = &none;
  ed_code_t rc = ED_OK;
  for (size_t i = 0; i < d->nmeta && !rc; i++) {
    sm_col_t *c = &cols[i];
    switch (d->meta[i].kind) {
    case SM_META_ENQUEUED_TIME:
      rc = put_i64(c, m->enqueued_us);
      break;
    case SM_META_OFFSET:
      rc = put_i64(c, m->offset);
      break;
    case SM_META_SEQUENCE_NUMBER:
      rc = put_i64(c, m->sequence_number);
      break;
    case SM_META_PARTITION:
      rc = put_opt_str(c, m->partition);
      break;
    case SM_META_PARTITION_KEY:
      rc = put_opt_str(c, m->partition_key);
      break;
    case SM_META_PUBLISHER:
      rc = put_opt_str(c, m->publisher);
      break;
    case SM_META_PROPERTIES:
      for (size_t k = 0; k < m->nprops && !rc; k++) {
        if (!m->prop_keys[k].p)
          continue;
        rc = sm_col_append_str(&c->children[0], m->prop_keys[k].p, m->prop_keys[k].n);
        if (!rc)
          rc = put_opt_str(&c->children[1], m->prop_values[k]);
      }
      if (!rc)
        rc = sm_col_append_list_end(c);
      break;
    }
  }
  return rc;
}

static ed_code_t reason_code(sm_reason_t r) {
  switch (r) {
  case SM_REASON_TOO_LARGE:
    return ED_E_TOO_LARGE;
  case SM_REASON_TYPE:
  case SM_REASON_OVERFLOW:
  case SM_REASON_TIMESTAMP:
  case SM_REASON_NULL_REQUIRED:
    return ED_E_SCHEMA;
  default:
    return ED_E_PARSE;
  }
}

/* The end of the object or array s starts with (by its brackets, outside
 * strings), or 0 when s starts with neither or it does not close. */
static size_t value_end(const char *s, size_t n) {
  size_t i = 0;
  while (i < n && isspace((unsigned char)s[i]))
    i++;
  if (i == n || (s[i] != '{' && s[i] != '['))
    return 0;
  size_t depth = 0;
  for (bool in_str = false; i < n; i++) {
    char c = s[i];
    if (in_str) {
      if (c == '\\')
        i++;
      else if (c == '"')
        in_str = false;
    } else if (c == '"') {
      in_str = true;
    } else if (c == '{' || c == '[') {
      depth++;
    } else if ((c == '}' || c == ']') && --depth == 0) {
      return i + 1;
    }
  }
  return 0;
}

/* A body that is one whole JSON value and then more than blanks is named for
 * that, with the first byte after the value, instead of what the parser met
 * first (json-c: "unexpected character"; simdjson: "document ended early").
 * Only for bodies already refused as not JSON: the second parse, of the
 * value alone, costs nothing on the path of good events. */
static void name_trailing(sm_dec_t *d, const char *body, size_t len) {
  size_t v = value_end(body, len), t = v;
  if (!v || v > INT32_MAX)
    return;
  while (t < len && isspace((unsigned char)body[t]))
    t++;
  if (t == len)
    return;
  json_tokener *tok = json_tokener_new_ex((int)d->opts.max_depth);
  if (!tok)
    return;
  json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
  json_object *o = json_tokener_parse_ex(tok, body, (int)v);
  bool whole = o && json_tokener_get_error(tok) == json_tokener_success;
  json_object_put(o);
  json_tokener_free(tok);
  if (!whole)
    return;
  unsigned char c = (unsigned char)body[t];
  if (c >= 0x20 && c < 0x7f)
    ed_err_set(d->err, ED_E_PARSE, "decode: body: unexpected '%c' after the JSON value at byte %zu",
               c, t);
  else
    ed_err_set(d->err, ED_E_PARSE,
               "decode: body: unexpected byte 0x%02x after the JSON value at byte %zu", c, t);
}

ed_code_t sm_dec_decode(sm_dec_t *d, sm_batch_t *batch, const void *body, size_t len,
                        const sm_event_meta_t *meta, sm_dec_status_t *status, sm_reason_t *reason,
                        ed_err_t *err) {
  size_t nbody = d->body->nfields, row = batch->nrows;
  d->reason = SM_REASON_NONE;
  d->err = err ? err : &d->scratch_err;
  d->counts.events++;
  int r;
  if (meta && meta->body_refused) {
    record(d, SM_REASON_NOT_JSON, "decode: %s", meta->body_refused);
    r = 1;
  } else if (len > d->opts.max_body) {
    char what[80];
    snprintf(what, sizeof what, "%zu bytes, larger than the limit %zu", len, d->opts.max_body);
    sm_dec__fail_body(d, SM_REASON_TOO_LARGE, SIZE_MAX, what);
    r = 1;
  } else {
#ifdef HAVE_SIMDJSON
    if (d->backend == SM_DEC_SIMDJSON)
      r = sm_dec__simd_decode(d, batch->cols, row, (const char *)body, len);
    else
#endif
      r = jc_decode(d, batch->cols, row, (const char *)body, len);
  }
  if (r < 0)
    goto nomem;
  if (r > 0 && d->reason == SM_REASON_NOT_JSON && !(meta && meta->body_refused))
    name_trailing(d, (const char *)body, len);
  sm_dec_status_t st = d->reason == SM_REASON_NONE ? SM_DEC_ROW : SM_DEC_PARTIAL;
  if (r > 0) {
    /* gave up the body: permissive keeps the event as a row of nulls where
     * the schema allows it; the other modes keep no row */
    sm_batch_rollback_row(batch);
    bool nulls_ok = d->opts.mode == SM_BAD_PERMISSIVE && d->reason != SM_REASON_NULL_REQUIRED;
    for (size_t i = 0; i < nbody && nulls_ok; i++)
      nulls_ok = d->body->fields[i].nullable;
    if (nulls_ok) {
      for (size_t i = 0; i < nbody; i++)
        if (sm_col_append_null(&batch->cols[i]))
          goto nomem;
      st = SM_DEC_PARTIAL;
    } else {
      st = SM_DEC_DEAD;
    }
  }
  if (st != SM_DEC_DEAD) {
    if (put_meta(d, batch->cols + nbody, meta))
      goto nomem;
    batch->nrows++;
  }
  if (status)
    *status = st;
  if (reason)
    *reason = d->reason;
  if (d->reason != SM_REASON_NONE)
    d->counts.reasons[d->reason]++;
  if (st == SM_DEC_ROW)
    d->counts.rows++;
  else if (st == SM_DEC_PARTIAL)
    d->counts.rows++, d->counts.partial++;
  else
    d->counts.dead++;
  if (st == SM_DEC_DEAD && d->opts.mode == SM_BAD_FAIL_FAST) {
    d->err->code = reason_code(d->reason);
    return d->err->code;
  }
  if (st == SM_DEC_DEAD)
    d->err->code = ED_OK; /* the message stays: it is the dead letter's reason */
  return ED_OK;
nomem:
  sm_batch_rollback_row(batch);
  d->counts.events--;
  if (status)
    *status = SM_DEC_DEAD;
  return ed_err_set(err, ED_E_NOMEM, "decode: out of memory");
}

/* ---- dead letters ---- */

static sm_type_t dl_binary = {SM_BINARY, 0, NULL, NULL, false};
static sm_type_t dl_string = {SM_STRING, 0, NULL, NULL, false};
static sm_type_t dl_bigint = {SM_BIGINT, 0, NULL, NULL, false};
static sm_type_t dl_ts = {SM_TIMESTAMP, 0, NULL, NULL, false};
static sm_field_t dl_fields[] = {
    {(char *)"body", &dl_binary, false},
    {(char *)"partition", &dl_string, true},
    {(char *)"sequence_number", &dl_bigint, false},
    {(char *)"offset", &dl_bigint, false},
    {(char *)"enqueued_time", &dl_ts, false},
    {(char *)"reason", &dl_string, false},
    {(char *)"reason_code", &dl_string, false},
};
static const sm_type_t dl_schema = {SM_STRUCT, sizeof dl_fields / sizeof dl_fields[0], dl_fields,
                                    NULL, false};

const sm_type_t *sm_dec_dl_schema(void) { return &dl_schema; }

ed_code_t sm_dec_dl_append(sm_batch_t *dl, const void *body, size_t len,
                           const sm_event_meta_t *meta, sm_reason_t reason, const char *message) {
  static const sm_event_meta_t none = {0};
  if (!meta)
    meta = &none;
  if (dl->schema->nfields != dl_schema.nfields)
    return ED_E_SCHEMA;
  const char *rn = sm_reason_name(reason);
  if (!message)
    message = rn;
  sm_col_t *c = dl->cols;
  ed_code_t rc = sm_col_append_str(&c[0], len ? (const char *)body : "", len);
  if (!rc)
    rc = put_opt_str(&c[1], meta->partition);
  if (!rc)
    rc = sm_col_append_i64(&c[2], meta->sequence_number);
  if (!rc)
    rc = sm_col_append_i64(&c[3], meta->offset);
  if (!rc)
    rc = sm_col_append_i64(&c[4], meta->enqueued_us);
  if (!rc)
    rc = sm_col_append_str(&c[5], message, strlen(message));
  if (!rc)
    rc = sm_col_append_str(&c[6], rn, strlen(rn));
  if (rc) {
    sm_batch_rollback_row(dl);
    return rc;
  }
  dl->nrows++;
  return ED_OK;
}
