/* decode_simd: the per-event hot path on simdjson On-Demand, behind a C
 * interface (decode_int.h). It walks the body against the schema and hands
 * each scalar to the leaf conversions in decode.c, so the rules are those of
 * the json-c back end. Measured (bench/bench_decode, this machine, one core):
 * see the commit that introduced it; json-c alone is ~6x slower.
 * Owns: the On-Demand parser and a padded copy of the body (simdjson reads up
 * to SIMDJSON_PADDING bytes past the end). No exceptions: error codes only.
 * Note: On-Demand never parses values of fields the schema does not name, so
 * a malformed scalar inside an unknown field (`{"x": tru}`) is not seen here,
 * while json-c refuses it; everything the schema reads is checked. */
#include "config.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

/* error codes only: a conversion that could throw does not compile */
#define SIMDJSON_EXCEPTIONS 0
#include <simdjson.h>

#include "stream/decode_int.h"

using namespace simdjson;

namespace {

struct simd_state {
  ondemand::parser parser;
  char *buf = nullptr;
  size_t cap = 0;
  unsigned max_depth = 64;
  /* the body struct's field names as views (lengths counted once), so a key
   * is one memcmp against the expected field; nested structs use the names */
  const sm_type_t *keys_of = nullptr;
  std::string_view *keys = nullptr;
  char *key_names = nullptr; /* what keys point into */
};

struct walk {
  sm_dec_t *d;
  const char *base; /* start of the padded copy, for byte offsets */
  unsigned depth, max_depth;
  size_t len;
  const sm_type_t *keyed; /* the struct `keys` names */
  const std::string_view *keys;
};

/* True when the raw key (after its opening quote) is exactly `name`: the
 * bytes, then the closing quote. name points into a copy followed by '"'
 * and 8 readable bytes, so both are compared 8 bytes at a time, quote
 * included; the first differing word stops the loop, and the key's own
 * closing quote is followed by at least ":x}" and the padding, so the key
 * side never reads past the padded copy. */
inline bool key_is(ondemand::raw_json_string rk, std::string_view name) {
  const char *k = rk.raw(), *nm = name.data();
  size_t n = name.size() + 1; /* with the quote */
  for (size_t i = 0; i < n; i += 8) {
    uint64_t a, b;
    memcpy(&a, k + i, 8);
    memcpy(&b, nm + i, 8);
    uint64_t x = a ^ b;
    if (n - i < 8)
      x &= (uint64_t(1) << ((n - i) * 8)) - 1;
    if (x)
      return false;
  }
  return true;
}

/* Any backslash in p[0..n)? Eight bytes at a time; p[n..n+8) may be read
 * (the padded copy extends SIMDJSON_PADDING bytes past any string). */
inline bool has_backslash(const char *p, size_t n) {
  const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
  for (size_t i = 0; i < n; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    w ^= 0x5c5c5c5c5c5c5c5cull; /* a backslash becomes a zero byte */
    uint64_t z = (w - ones) & ~w & highs;
    if (n - i < 8)
      z &= (uint64_t(1) << ((n - i) * 8)) - 1; /* little-endian: the first n-i bytes */
    if (z)
      return true;
  }
  return false;
}

const char *type_name(ondemand::json_type t) {
  switch (t) {
  case ondemand::json_type::array:
    return "array";
  case ondemand::json_type::object:
    return "object";
  case ondemand::json_type::number:
    return "number";
  case ondemand::json_type::string:
    return "string";
  case ondemand::json_type::boolean:
    return "boolean";
  default:
    return "null";
  }
}

/* The body is gone (syntax, UTF-8, depth): the reason from simdjson's code. */
int body_error(walk &w, error_code e, const char *at) {
  size_t off = at ? (size_t)(at - w.base) : SIZE_MAX;
  switch (e) {
  case UTF8_ERROR:
    sm_dec__fail_body(w.d, SM_REASON_INVALID_UTF8, SIZE_MAX, "invalid UTF-8");
    break;
  case DEPTH_ERROR:
    sm_dec__fail_body(w.d, SM_REASON_TOO_DEEP, off, "nested deeper than the limit");
    break;
  case EMPTY:
    sm_dec__fail_body(w.d, SM_REASON_NOT_JSON, SIZE_MAX, "not JSON (empty)");
    break;
  case TAPE_ERROR:
  case INCOMPLETE_ARRAY_OR_OBJECT:
    /* simdjson reports nesting past its bound as a structure error */
    if (sm_dec__too_deep(w.base, w.len, w.max_depth)) {
      sm_dec__fail_body(w.d, SM_REASON_TOO_DEEP, SIZE_MAX, "nested deeper than the limit");
      break;
    }
    /* fall through */
  default: {
    char what[96];
    snprintf(what, sizeof what, "not JSON (%s)", error_message(e));
    sm_dec__fail_body(w.d, SM_REASON_NOT_JSON, off, what);
  }
  }
  return 1;
}

int value(walk &w, sm_col_t *c, bool nullable, const char *name, ondemand::value &v);

/* A string token without escapes is its own text (stage 1 already checked
 * UTF-8 and the quotes), so no unescaping copy is needed. The token runs to
 * the next structural character: its closing quote is the last quote,
 * behind any whitespace. False when there are escapes (or no quote). */
inline bool plain_string(std::string_view raw, std::string_view &s) {
  const char *p = raw.data() + 1;
  size_t m = raw.size() - 1;
  while (m && p[m - 1] != '"')
    m--;
  if (!m || has_backslash(p, m - 1))
    return false;
  s = std::string_view(p, m - 1);
  return true;
}

/* The values nearly every event carries, appended without value()'s
 * dispatch: a plain string into STRING/TIMESTAMP/DATE, a number into
 * DOUBLE. False (nothing appended, nothing consumed) sends the value to
 * value(), which handles it again and reports any failure. */
inline bool leaf_fast(walk &w, sm_col_t *c, ondemand::value &v) {
  sm_kind_t k = c->type->kind;
  std::string_view raw = v.raw_json_token(), s;
  char c0 = raw[0];
  if (c0 == '"') {
    if ((k != SM_STRING && k != SM_TIMESTAMP && k != SM_DATE) || !plain_string(raw, s))
      return false;
    return sm_dec__put_str_fast(w.d, c, s.data(), s.size(), s.size() + SIMDJSON_PADDING) ==
           SM_REASON_NONE;
  }
  if (k == SM_DOUBLE && (c0 == '-' || (c0 >= '0' && c0 <= '9'))) {
    double x;
    return v.get_double().get(x) == SUCCESS && sm_dec__put_f64_fast(w.d, c, x) == SM_REASON_NONE;
  }
  return false;
}

/* A leaf said no (r > 0) or ran out of memory (r < 0): report with the token. */
int leaf_fail(walk &w, sm_col_t *c, bool nullable, const char *name, int r, const char *got,
              std::string_view raw) {
  if (r < 0)
    return -1;
  return sm_dec__fail(w.d, c, nullable, name, r, got, raw.data(), raw.size(),
                      (size_t)(raw.data() - w.base));
}

/* One row of STRUCT st whose children are cols[0..nfields), all at `row`. */
int object_row(walk &w, const sm_type_t *st, sm_col_t *cols, size_t row, ondemand::object obj) {
  int hint = 0, nf = (int)st->nfields;
  const std::string_view *keys = st == w.keyed ? w.keys : nullptr;
  for (auto field : obj) { /* simdjson_result<field>, read in place (a copy costs) */
    error_code e = field.error();
    if (e)
      return body_error(w, e, nullptr);
    /* Keys are compared raw first (no unescaping copy): the next field in
     * schema order, then any field; escapes or another case fall back to
     * the unescaped key and sm_dec__field's case-insensitive match. */
    ondemand::raw_json_string rk = field.value_unsafe().key();
    int fi = -1;
    if (keys) {
      if (hint < nf && key_is(rk, keys[hint]))
        fi = hint;
      for (int i = 0; fi < 0 && i < nf; i++)
        if (key_is(rk, keys[i]))
          fi = i;
    } else {
      if (hint < nf && rk.unsafe_is_equal(st->fields[hint].name))
        fi = hint;
      for (int i = 0; fi < 0 && i < nf; i++)
        if (rk.unsafe_is_equal(st->fields[i].name))
          fi = i;
    }
    if (fi < 0) {
      std::string_view key;
      if ((e = field.value_unsafe().unescaped_key().get(key)))
        return body_error(w, e, nullptr);
      fi = sm_dec__field(st, key.data(), key.size(), hint);
      if (fi < 0)
        continue; /* unknown fields are skipped, unparsed */
    }
    hint = fi + 1;
    sm_col_t *c = &cols[fi];
    if (c->len > row) /* a duplicate key: the last one wins, as in Spark */
      sm_col_truncate(c, row);
    ondemand::value &fv = field.value_unsafe().value();
    if (leaf_fast(w, c, fv))
      continue;
    int r = value(w, c, st->fields[fi].nullable, st->fields[fi].name, fv);
    if (r)
      return r;
  }
  for (size_t i = 0; i < st->nfields; i++)
    if (cols[i].len == row) { /* missing: null */
      int r = sm_dec__put_null(w.d, &cols[i], st->fields[i].nullable);
      if (r && (r = sm_dec__fail(w.d, &cols[i], st->fields[i].nullable, st->fields[i].name, r,
                                 nullptr, nullptr, 0, SIZE_MAX)) != 0)
        return r;
    }
  return 0;
}

bool map_has_key(const sm_col_t *keys, size_t from, std::string_view k) {
  for (size_t i = from; i < keys->len; i++) {
    size_t n;
    const char *p = sm_col_str(keys, i, &n);
    if (n == k.size() && memcmp(p, k.data(), n) == 0)
      return true;
  }
  return false;
}

int number(walk &w, sm_col_t *c, bool nullable, const char *name, ondemand::value &v,
           std::string_view raw) {
  sm_kind_t k = c->type->kind;
  int r;
  if (k == SM_DOUBLE || k == SM_FLOAT) {
    double x;
    if (v.get_double().get(x) == SUCCESS)
      r = sm_dec__put_f64_fast(w.d, c, x);
    else
      r = -2;
  } else {
    ondemand::number_type nt;
    if (v.get_number_type().get(nt) != SUCCESS)
      r = -2;
    else if (nt == ondemand::number_type::signed_integer) {
      int64_t i;
      r = v.get_int64().get(i) == SUCCESS ? sm_dec__put_i64(w.d, c, i) : -2;
    } else if (nt == ondemand::number_type::unsigned_integer) {
      uint64_t u;
      r = v.get_uint64().get(u) == SUCCESS ? sm_dec__put_u64(w.d, c, u) : -2;
    } else {
      double x;
      r = v.get_double().get(x) == SUCCESS ? sm_dec__put_f64(w.d, c, x) : -2;
    }
  }
  if (r == -2) {
    /* simdjson refuses numbers it cannot represent: out of range if the
     * text is a JSON number, else the body is not JSON */
    size_t n = raw.size();
    while (n &&
           (raw[n - 1] == ' ' || raw[n - 1] == '\t' || raw[n - 1] == '\n' || raw[n - 1] == '\r'))
      n--;
    if (!sm_dec__is_number(raw.data(), n))
      return body_error(w, NUMBER_ERROR, raw.data());
    bool integral =
        !memchr(raw.data(), '.', n) && !memchr(raw.data(), 'e', n) && !memchr(raw.data(), 'E', n);
    r = (k == SM_DOUBLE || k == SM_FLOAT || k == SM_INT || k == SM_BIGINT ||
         (k == SM_TIMESTAMP && integral))
            ? (integral || k == SM_DOUBLE || k == SM_FLOAT ? SM_REASON_OVERFLOW : SM_REASON_TYPE)
            : SM_REASON_TYPE;
  }
  return r ? leaf_fail(w, c, nullable, name, r, "number", raw) : 0;
}

int value(walk &w, sm_col_t *c, bool nullable, const char *name, ondemand::value &v) {
  ondemand::json_type t;
  error_code e = v.type().get(t);
  if (e)
    return body_error(w, e, nullptr);
  std::string_view raw = v.raw_json_token();
  int r;
  switch (t) {
  case ondemand::json_type::null: {
    bool is_null = false;
    if (v.is_null().get(is_null) || !is_null)
      return body_error(w, TAPE_ERROR, raw.data()); /* "nul", "nulll" */
  }
    r = sm_dec__put_null(w.d, c, nullable);
    break;
  case ondemand::json_type::boolean: {
    bool b;
    if ((e = v.get_bool().get(b)))
      return body_error(w, e, raw.data());
    r = sm_dec__put_bool(w.d, c, b);
    break;
  }
  case ondemand::json_type::number:
    return number(w, c, nullable, name, v, raw);
  case ondemand::json_type::string: {
    std::string_view s;
    if (!plain_string(raw, s) && (e = v.get_string().get(s))) {
      return body_error(w, e, raw.data());
    }
    r = sm_dec__put_str(w.d, c, s.data(), s.size());
    if (r == SM_REASON_TOO_LARGE)
      return sm_dec__fail(w.d, c, nullable, name, r, "string", nullptr, s.size(),
                          (size_t)(raw.data() - w.base));
    break;
  }
  case ondemand::json_type::object: {
    const sm_type_t *ty = c->type;
    if (ty->kind != SM_STRUCT && ty->kind != SM_MAP) /* left unread: skipped by the parent */
      return leaf_fail(w, c, nullable, name, SM_REASON_TYPE, "object", raw);
    if (++w.depth > w.max_depth) {
      sm_dec__fail_body(w.d, SM_REASON_TOO_DEEP, (size_t)(raw.data() - w.base),
                        "nested deeper than the limit");
      return 1;
    }
    ondemand::object obj;
    if ((e = v.get_object().get(obj)))
      return body_error(w, e, raw.data());
    if (ty->kind == SM_STRUCT) {
      if ((r = object_row(w, ty, c->children, c->len, obj)) != 0)
        return r;
      r = sm_col_append_struct(c) ? -1 : 0;
    } else {
      size_t first = c->children[0].len;
      for (auto field : obj) {
        std::string_view key;
        if ((e = field.unescaped_key().get(key)))
          return body_error(w, e, nullptr);
        if (map_has_key(&c->children[0], first, key)) {
          /* a duplicate map key must not leave half a map behind */
          sm_col_truncate(&c->children[0], first);
          sm_col_truncate(&c->children[1], first);
          w.depth--;
          return sm_dec__fail(w.d, c, nullable, name, SM_REASON_DUPLICATE_KEY, "object", key.data(),
                              key.size(), SIZE_MAX);
        }
        if (sm_col_append_str(&c->children[0], key.data(), key.size()))
          return -1;
        ondemand::value fv;
        if ((e = field.value().get(fv)))
          return body_error(w, e, nullptr);
        if ((r = value(w, &c->children[1], ty->elem_nullable, name, fv)) != 0)
          return r;
      }
      r = sm_col_append_list_end(c) ? -1 : 0;
    }
    w.depth--;
    return r;
  }
  case ondemand::json_type::array: {
    if (c->type->kind != SM_ARRAY)
      return leaf_fail(w, c, nullable, name, SM_REASON_TYPE, "array", raw);
    if (++w.depth > w.max_depth) {
      sm_dec__fail_body(w.d, SM_REASON_TOO_DEEP, (size_t)(raw.data() - w.base),
                        "nested deeper than the limit");
      return 1;
    }
    ondemand::array arr;
    if ((e = v.get_array().get(arr)))
      return body_error(w, e, raw.data());
    for (auto elem : arr) {
      ondemand::value ev;
      if ((e = elem.get(ev)))
        return body_error(w, e, nullptr);
      if ((r = value(w, &c->children[0], c->type->elem_nullable, name, ev)) != 0)
        return r;
    }
    w.depth--;
    return sm_col_append_list_end(c) ? -1 : 0;
  }
  default:
    return body_error(w, TAPE_ERROR, raw.data());
  }
  if (r)
    return leaf_fail(w, c, nullable, name, r, type_name(t), raw);
  return 0;
}

bool load(simd_state *s, const char *body, size_t len) {
  if (len + SIMDJSON_PADDING > s->cap) {
    size_t cap = (len + SIMDJSON_PADDING) * 2;
    char *b = (char *)realloc(s->buf, cap);
    if (!b)
      return false;
    s->buf = b;
    s->cap = cap;
  }
  memcpy(s->buf, body, len);
  memset(s->buf + len, 0, SIMDJSON_PADDING);
  return true;
}

/* The body's names for key_is: each copied with its quote and 8 bytes of
 * zeros after it, in one block. */
bool set_keys(simd_state *s, const sm_type_t *st) {
  size_t total = 0, nf = st->nfields;
  for (size_t i = 0; i < nf; i++)
    total += strlen(st->fields[i].name) + 9;
  std::string_view *k = new (std::nothrow) std::string_view[nf + 1];
  char *names = (char *)calloc(total + 1, 1);
  if (!k || !names) {
    delete[] k;
    free(names);
    return false;
  }
  char *p = names;
  for (size_t i = 0; i < nf; i++) {
    size_t n = strlen(st->fields[i].name);
    memcpy(p, st->fields[i].name, n);
    p[n] = '"';
    k[i] = std::string_view(p, n);
    p += n + 9;
  }
  delete[] s->keys;
  free(s->key_names);
  s->keys = k;
  s->key_names = names;
  s->keys_of = st;
  return true;
}

} // namespace

extern "C" void *sm_dec__simd_new(unsigned max_depth) {
  simd_state *s = new (std::nothrow) simd_state();
  if (!s)
    return nullptr;
  s->max_depth = max_depth;
  /* the parser's own bound covers what we skip; ours covers what we walk */
  if (s->parser.allocate(64 * 1024, max_depth + 1) != SUCCESS) {
    delete s;
    return nullptr;
  }
  return s;
}

extern "C" void sm_dec__simd_free(void *p) {
  simd_state *s = (simd_state *)p;
  if (!s)
    return;
  free(s->buf);
  delete[] s->keys;
  free(s->key_names);
  delete s;
}

extern "C" int sm_dec__simd_decode(sm_dec_t *d, sm_col_t *cols, size_t row, const char *body,
                                   size_t len) {
  simd_state *s = (simd_state *)d->simd;
  if (!load(s, body, len))
    return -1;
  if (s->keys_of != d->body && !set_keys(s, d->body))
    return -1;
  walk w{d, s->buf, 1, s->max_depth, len, s->keys_of, s->keys};
  if (len > s->parser.capacity() && s->parser.allocate(len, s->max_depth + 1) != SUCCESS)
    return -1;
  ondemand::document doc;
  error_code e = s->parser.iterate(s->buf, len, s->cap).get(doc);
  if (e)
    return body_error(w, e, nullptr);
  ondemand::json_type t;
  if ((e = doc.type().get(t)))
    return body_error(w, e, nullptr);
  if (t != ondemand::json_type::object) {
    /* a scalar document must still be valid JSON to be "not an object" */
    std::string_view raw;
    if ((e = doc.raw_json_token().get(raw)))
      return body_error(w, e, nullptr);
    size_t n = raw.size();
    while (n &&
           (raw[n - 1] == ' ' || raw[n - 1] == '\t' || raw[n - 1] == '\n' || raw[n - 1] == '\r'))
      n--;
    std::string_view tok(raw.data(), n);
    bool scalar_ok = tok == "null" || tok == "true" || tok == "false" ||
                     sm_dec__is_number(tok.data(), n) || (n >= 2 && tok[0] == '"');
    if (t != ondemand::json_type::array && !scalar_ok)
      return body_error(w, TAPE_ERROR, raw.data());
    sm_dec__fail_body(d, SM_REASON_NOT_OBJECT, SIZE_MAX, "not a JSON object");
    return 1;
  }
  ondemand::object obj;
  if ((e = doc.get_object().get(obj)))
    return body_error(w, e, nullptr);
  int r = object_row(w, d->body, cols, row, obj);
  if (r)
    return r;
  const char *loc = nullptr; /* an error here means the end of the input: good */
  if (doc.current_location().get(loc) == SUCCESS)
    return body_error(w, TRAILING_CONTENT, loc);
  return 0;
}

extern "C" int sm_dec__simd_bare(void *p, const char *body, size_t len, double *sink) {
  simd_state *s = (simd_state *)p;
  if (!load(s, body, len))
    return -1;
  ondemand::document doc;
  if (s->parser.iterate(s->buf, len, s->cap).get(doc))
    return 1;
  ondemand::object obj;
  if (doc.get_object().get(obj))
    return 1;
  double acc = 0;
  for (auto field : obj) {
    std::string_view key, sv;
    if (field.unescaped_key().get(key))
      return 1;
    ondemand::value v;
    if (field.value().get(v))
      return 1;
    ondemand::json_type t;
    if (v.type().get(t))
      return 1;
    if (t == ondemand::json_type::number) {
      double x;
      if (v.get_double().get(x))
        return 1;
      acc += x;
    } else if (t == ondemand::json_type::string) {
      if (v.get_string().get(sv))
        return 1;
      acc += (double)sv.size();
    } /* objects and arrays are skipped by the next field() */
    acc += (double)key.size();
  }
  *sink += acc;
  return 0;
}

#define SM_STR2(x) #x
#define SM_STR(x)  SM_STR2(x)
extern "C" const char *sm_dec__simd_kernel(void) { return SM_STR(SIMDJSON_BUILTIN_IMPLEMENTATION); }
