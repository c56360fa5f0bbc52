/* agg_keys: group-key tables (agg_keys_*) and the state frame the window
 * checkpoints are written in (agg_state_*). A key is encoded once per group
 * into an arena and found again through an open-addressing index keyed by
 * (prefix, key hash); one STRING/BINARY key column takes a path that hashes
 * the row's bytes where they lie. The aggregate functions are agg.c. */
#include "stream/agg.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "stream/agg_int.h"

/* ---------------------------------------------------------------- group keys */

/* Encoded key: per column one tag byte (0 null, 1 present), then 8 bytes for
 * fixed-width kinds (integers widened, floats normalised) or a u32 length
 * and the bytes. The prefix (window start) is kept beside it, not inside. */
struct agg_keys {
  size_t ncols;
  const sm_type_t **types;
  ed_buf_t scratch;
  uint64_t scratch_hash;
  /* One STRING/BINARY key column (the tutorial's queries): the row's bytes
   * are hashed and compared where they lie, and encoded only when added. */
  bool single_bytes;
  bool snull;
  const char *sp;
  size_t sn;
  size_t n, cap;
  int64_t *prefix;
  uint64_t *hash;
  uint32_t *koff, *klen;
  char *arena;
  size_t alen, acap;
  uint32_t *index; /* gid + 1; 0 = empty */
  size_t icap;
};

ed_code_t agg_keys_new(const sm_type_t *const *types, const char *const *names, size_t nkeys,
                       agg_keys_t **out, ed_err_t *err) {
  *out = NULL;
  for (size_t i = 0; i < nkeys; i++)
    if (!kind_flat(types[i]->kind))
      return ed_err_set(err, ED_E_CONFIG, "group key '%s': expected a flat column, got %s",
                        names && names[i] ? names[i] : "?", sm_kind_name(types[i]->kind));
  agg_keys_t *k = calloc(1, sizeof *k);
  if (!k)
    return ed_err_set(err, ED_E_NOMEM, "group keys: out of memory");
  k->types = calloc(nkeys ? nkeys : 1, sizeof *k->types);
  if (!k->types) {
    free(k);
    return ed_err_set(err, ED_E_NOMEM, "group keys: out of memory");
  }
  for (size_t i = 0; i < nkeys; i++)
    k->types[i] = types[i];
  k->ncols = nkeys;
  k->single_bytes = nkeys == 1 && kind_bytes(types[0]->kind);
  ed_buf_init(&k->scratch);
  *out = k;
  return ED_OK;
}

void agg_keys_free(agg_keys_t *k) {
  if (!k)
    return;
  free(k->types);
  ed_buf_fini(&k->scratch);
  free(k->prefix);
  free(k->hash);
  free(k->koff);
  free(k->klen);
  free(k->arena);
  free(k->index);
  free(k);
}

size_t agg_keys_count(const agg_keys_t *k) { return k->n; }

#define NULL_KEY_HASH UINT64_C(0x51ed270b27a1c3d5)

/* The hash of an encoded key: for a single bytes column, of its payload, so
 * that rows can be hashed without encoding them. */
static uint64_t enc_hash(const agg_keys_t *k, const uint8_t *enc, size_t len) {
  if (k->single_bytes)
    return len <= 1 ? NULL_KEY_HASH : agg_hash64(enc + 5, len - 5, 0);
  return agg_hash64(enc, len, 0);
}

/* memcmp(a, b, n) == 0 for the short strings keys mostly are, inline. */
static inline bool bytes_eq(const char *a, const char *b, size_t n) {
  if (n >= 8 && n <= 16) {
    uint64_t x0, x1, y0, y1;
    memcpy(&x0, a, 8);
    memcpy(&y0, b, 8);
    memcpy(&x1, a + n - 8, 8);
    memcpy(&y1, b + n - 8, 8);
    return ((x0 ^ y0) | (x1 ^ y1)) == 0;
  }
  if (n >= 4 && n < 8) {
    uint32_t x0, x1, y0, y1;
    memcpy(&x0, a, 4);
    memcpy(&y0, b, 4);
    memcpy(&x1, a + n - 4, 4);
    memcpy(&y1, b + n - 4, 4);
    return ((x0 ^ y0) | (x1 ^ y1)) == 0;
  }
  if (n < 4) {
    for (size_t i = 0; i < n; i++)
      if (a[i] != b[i])
        return false;
    return true;
  }
  return memcmp(a, b, n) == 0;
}

ed_code_t agg_keys_row(agg_keys_t *k, const sm_col_t *const *cols, size_t row) {
  if (k->single_bytes) {
    const sm_col_t *c = cols[0];
    k->snull = !c->valid[row];
    if (k->snull) {
      k->sn = 0;
      k->scratch_hash = NULL_KEY_HASH;
    } else {
      k->sp = sm_col_str(c, row, &k->sn);
      k->scratch_hash = agg_hash64(k->sp, k->sn, 0);
    }
    return ED_OK;
  }
  /* Size first, one reserve, then plain stores: this runs once per row. */
  size_t need = 0;
  for (size_t i = 0; i < k->ncols; i++) {
    const sm_col_t *c = cols[i];
    if (!c->valid[row])
      need += 1;
    else if (kind_bytes(c->type->kind))
      need += 5 + (c->off[row + 1] - c->off[row]);
    else
      need += 9;
  }
  ed_buf_t *b = &k->scratch;
  b->len = 0;
  if (need + 1 > b->cap && ed_buf_reserve(b, need))
    return ED_E_NOMEM;
  uint8_t *w = (uint8_t *)b->data;
  for (size_t i = 0; i < k->ncols; i++) {
    const sm_col_t *c = cols[i];
    if (!c->valid[row]) {
      *w++ = 0;
      continue;
    }
    *w++ = 1;
    sm_kind_t kd = c->type->kind;
    if (kind_bytes(kd)) {
      size_t n;
      const char *p = sm_col_str(c, row, &n);
      uint32_t n32 = (uint32_t)n;
      memcpy(w, &n32, 4);
      memcpy(w + 4, p, n);
      w += 4 + n;
    } else {
      uint64_t v;
      if (kind_float(kd)) {
        double d = norm_f64(get_f64(c, row));
        memcpy(&v, &d, 8);
      } else {
        v = (uint64_t)get_i64(c, row);
      }
      memcpy(w, &v, 8);
      w += 8;
    }
  }
  b->len = need;
  k->scratch_hash = enc_hash(k, (const uint8_t *)b->data, b->len);
  return ED_OK;
}

static inline uint64_t full_hash(uint64_t kh, int64_t prefix) {
  return mix64(kh ^ ((uint64_t)prefix * UINT64_C(0x9e3779b97f4a7c15)));
}

static ed_code_t index_rebuild(agg_keys_t *k, size_t icap) {
  uint32_t *ix = calloc(icap, sizeof *ix);
  if (!ix)
    return ED_E_NOMEM;
  for (size_t g = 0; g < k->n; g++) {
    size_t j = k->hash[g] & (icap - 1);
    while (ix[j])
      j = (j + 1) & (icap - 1);
    ix[j] = (uint32_t)g + 1;
  }
  free(k->index);
  k->index = ix;
  k->icap = icap;
  return ED_OK;
}

static bool lookup(const agg_keys_t *k, int64_t prefix, const void *key, size_t len, uint64_t h,
                   size_t *slot, uint32_t *gid) {
  if (!k->icap) {
    *slot = 0;
    return false;
  }
  size_t j = h & (k->icap - 1);
  for (;;) {
    uint32_t e = k->index[j];
    if (!e) {
      *slot = j;
      return false;
    }
    uint32_t g = e - 1;
    if (k->hash[g] == h && k->prefix[g] == prefix && k->klen[g] == len &&
        bytes_eq(k->arena + k->koff[g], key, len)) {
      *gid = g;
      return true;
    }
    j = (j + 1) & (k->icap - 1);
  }
}

static ed_code_t add_group(agg_keys_t *k, int64_t prefix, const void *key, size_t len, uint64_t h,
                           uint32_t *gid) {
  if (k->n >= UINT32_MAX - 1)
    return ED_E_TOO_LARGE;
  if ((k->n + 1) * 2 > k->icap) {
    ed_code_t rc = index_rebuild(k, k->icap ? k->icap * 2 : 64);
    if (rc)
      return rc;
  }
  if (k->n == k->cap) {
    size_t nc = k->cap ? k->cap * 2 : 32;
    if (agg_grow_arr((void **)&k->prefix, 8, k->cap, nc) ||
        agg_grow_arr((void **)&k->hash, 8, k->cap, nc) ||
        agg_grow_arr((void **)&k->koff, 4, k->cap, nc) ||
        agg_grow_arr((void **)&k->klen, 4, k->cap, nc))
      return ED_E_NOMEM;
    k->cap = nc;
  }
  ed_code_t rc = agg_arena_put(&k->arena, &k->alen, &k->acap, 256, key, len, &k->koff[k->n]);
  if (rc)
    return rc;
  uint32_t g = (uint32_t)k->n++;
  k->prefix[g] = prefix;
  k->hash[g] = h;
  k->klen[g] = (uint32_t)len;
  size_t j = h & (k->icap - 1);
  while (k->index[j])
    j = (j + 1) & (k->icap - 1);
  k->index[j] = g + 1;
  *gid = g;
  return ED_OK;
}

static inline bool lookup_single(const agg_keys_t *k, int64_t prefix, uint64_t h, uint32_t *gid) {
  if (!k->icap)
    return false;
  size_t want = k->snull ? 1 : 5 + k->sn;
  size_t j = h & (k->icap - 1);
  for (;;) {
    uint32_t e = k->index[j];
    if (!e)
      return false;
    uint32_t g = e - 1;
    if (k->hash[g] == h && k->prefix[g] == prefix && k->klen[g] == want &&
        (k->snull
             ? k->arena[k->koff[g]] == 0
             : k->arena[k->koff[g]] == 1 && bytes_eq(k->arena + k->koff[g] + 5, k->sp, k->sn))) {
      *gid = g;
      return true;
    }
    j = (j + 1) & (k->icap - 1);
  }
}

/* Encodes the single-bytes row held by reference into scratch. */
static ed_code_t encode_single(agg_keys_t *k) {
  ed_buf_t *b = &k->scratch;
  b->len = 0;
  uint8_t tag = k->snull ? 0 : 1;
  if (ed_buf_append(b, &tag, 1))
    return ED_E_NOMEM;
  if (k->snull)
    return ED_OK;
  uint32_t n32 = (uint32_t)k->sn;
  if (ed_buf_append(b, &n32, 4) || ed_buf_append(b, k->sp, k->sn))
    return ED_E_NOMEM;
  return ED_OK;
}

ed_code_t agg_keys_upsert(agg_keys_t *k, int64_t prefix, uint32_t *gid, bool *added) {
  uint64_t h = full_hash(k->scratch_hash, prefix);
  if (k->single_bytes) {
    if (lookup_single(k, prefix, h, gid)) {
      *added = false;
      return ED_OK;
    }
    *added = true;
    if (encode_single(k))
      return ED_E_NOMEM;
    return add_group(k, prefix, k->scratch.data, k->scratch.len, h, gid);
  }
  size_t slot;
  if (lookup(k, prefix, k->scratch.data, k->scratch.len, h, &slot, gid)) {
    *added = false;
    return ED_OK;
  }
  *added = true;
  return add_group(k, prefix, k->scratch.data, k->scratch.len, h, gid);
}

bool agg_keys_find(agg_keys_t *k, int64_t prefix, uint32_t *gid) {
  if (k->single_bytes)
    return lookup_single(k, prefix, full_hash(k->scratch_hash, prefix), gid);
  size_t slot;
  return lookup(k, prefix, k->scratch.data, k->scratch.len, full_hash(k->scratch_hash, prefix),
                &slot, gid);
}

int64_t agg_keys_prefix(const agg_keys_t *k, uint32_t gid) { return k->prefix[gid]; }

/* Raw encoded key of group gid, for serialisation (agg_keys_add_raw is the
 * inverse). */
static void agg_keys_raw(const agg_keys_t *k, uint32_t gid, const uint8_t **key, size_t *len) {
  *key = (const uint8_t *)k->arena + k->koff[gid];
  *len = k->klen[gid];
}

/* Checks that bytes are a well-formed key for these columns. */
static bool key_valid(const agg_keys_t *k, const uint8_t *p, size_t len) {
  const uint8_t *end = p + len;
  for (size_t i = 0; i < k->ncols; i++) {
    if (p >= end || *p > 1)
      return false;
    if (!*p++)
      continue;
    if (kind_bytes(k->types[i]->kind)) {
      uint32_t n;
      if (end - p < 4)
        return false;
      memcpy(&n, p, 4);
      p += 4;
      if ((size_t)(end - p) < n)
        return false;
      p += n;
    } else {
      if (end - p < 8)
        return false;
      p += 8;
    }
  }
  return p == end;
}

ed_code_t agg_keys_add_raw(agg_keys_t *k, int64_t prefix, const uint8_t *key, size_t len,
                           uint32_t *gid, ed_err_t *err) {
  if (!key_valid(k, key, len))
    return ed_err_set(err, ED_E_CORRUPT, "group keys: a saved key does not match the key columns");
  uint64_t h = full_hash(enc_hash(k, key, len), prefix);
  size_t slot;
  if (lookup(k, prefix, key, len, h, &slot, gid))
    return ed_err_set(err, ED_E_CORRUPT, "group keys: a saved key appears twice");
  ed_code_t rc = add_group(k, prefix, key, len, h, gid);
  if (rc)
    return ed_err_set(err, rc, "group keys: out of memory");
  return ED_OK;
}

ed_code_t agg_keys_emit(const agg_keys_t *k, const uint32_t *gids, size_t n, sm_col_t *const *out,
                        ed_err_t *err) {
  for (size_t i = 0; i < n; i++) {
    const uint8_t *p = (const uint8_t *)k->arena + k->koff[gids[i]];
    for (size_t c = 0; c < k->ncols; c++) {
      ed_code_t rc;
      sm_col_t *o = out[c];
      if (!*p++) {
        rc = sm_col_append_null(o);
      } else if (kind_bytes(k->types[c]->kind)) {
        uint32_t len;
        memcpy(&len, p, 4);
        rc = sm_col_append_str(o, (const char *)p + 4, len);
        p += 4 + len;
      } else {
        uint64_t v;
        memcpy(&v, p, 8);
        p += 8;
        switch (k->types[c]->kind) {
        case SM_FLOAT:
        case SM_DOUBLE: {
          double d;
          memcpy(&d, &v, 8);
          rc = k->types[c]->kind == SM_FLOAT ? sm_col_append_f32(o, (float)d)
                                             : sm_col_append_f64(o, d);
          break;
        }
        case SM_INT:
        case SM_DATE:
          rc = sm_col_append_i32(o, (int32_t)v);
          break;
        case SM_BOOLEAN:
          rc = sm_col_append_bool(o, v != 0);
          break;
        default:
          rc = sm_col_append_i64(o, (int64_t)v);
          break;
        }
      }
      if (rc)
        return ed_err_set(err, rc, "group keys: out of memory emitting %zu keys", n);
    }
  }
  return ED_OK;
}

ed_code_t agg_keys_compact(agg_keys_t *k, const uint8_t *keep, uint32_t *remap) {
  size_t w = 0, apos = 0;
  for (size_t g = 0; g < k->n; g++) {
    if (!keep[g]) {
      if (remap)
        remap[g] = UINT32_MAX;
      continue;
    }
    uint32_t len = k->klen[g];
    memmove(k->arena + apos, k->arena + k->koff[g], len);
    k->prefix[w] = k->prefix[g];
    k->hash[w] = k->hash[g];
    k->koff[w] = (uint32_t)apos;
    k->klen[w] = len;
    apos += len;
    if (remap)
      remap[g] = (uint32_t)w;
    w++;
  }
  k->n = w;
  k->alen = apos;
  size_t icap = 64;
  while (icap < 2 * (w + 1))
    icap *= 2;
  return index_rebuild(k, icap);
}

size_t agg_keys_mem_bytes(const agg_keys_t *k) {
  return sizeof *k + k->cap * (8 + 8 + 4 + 4) + k->acap + k->icap * 4 + k->scratch.cap;
}

/* ---------------------------------------------------------------- state frame */

ed_code_t agg_state_head(ed_buf_t *out, const char *magic, uint32_t version, const uint64_t *hdr,
                         size_t nhdr) {
  uint8_t ver[4] = {(uint8_t)version, (uint8_t)(version >> 8), (uint8_t)(version >> 16),
                    (uint8_t)(version >> 24)};
  ed_code_t rc = ed_buf_append(out, magic, 4);
  if (!rc)
    rc = ed_buf_append(out, ver, 4);
  for (size_t i = 0; i < nhdr && !rc; i++)
    rc = ed_buf_put_u64le(out, hdr[i]);
  return rc;
}

ed_code_t agg_state_put_key(ed_buf_t *out, uint64_t tag, const agg_keys_t *k, uint32_t gid) {
  const uint8_t *key;
  size_t len;
  agg_keys_raw(k, gid, &key, &len);
  ed_code_t rc = ed_buf_put_u64le(out, tag);
  if (!rc)
    rc = ed_buf_put_u64le(out, len);
  return rc ? rc : ed_buf_append(out, key, len);
}

ed_code_t agg_state_seal(ed_buf_t *out, size_t base) {
  return ed_buf_put_u64le(out, agg_hash64(out->data + base, out->len - base, 7));
}

ed_code_t agg_state_open(const void *bytes, size_t len, const char *what, const char *magic,
                         uint32_t version, uint64_t *hdr, size_t nhdr, const uint8_t **body,
                         const uint8_t **end, ed_err_t *err) {
  const uint8_t *p = bytes, *e = p + len;
  if (len < 4 + 4 + nhdr * 8 + 8 || memcmp(p, magic, 4) != 0)
    return ed_err_set(err, ED_E_CORRUPT, "%s state: %zu bytes: not a %s state", what, len, what);
  uint32_t ver = p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
  if (ver != version)
    return ed_err_set(err, ED_E_UNSUPPORTED, "%s state: version %u, expected %u", what, ver,
                      version);
  const uint8_t *sum_at = e - 8;
  uint64_t sum = 0;
  ed_get_u64le(&sum_at, e, &sum);
  if (sum != agg_hash64(p, len - 8, 7))
    return ed_err_set(err, ED_E_CORRUPT, "%s state: checksum mismatch (truncated or damaged)",
                      what);
  e -= 8;
  p += 8;
  for (size_t i = 0; i < nhdr; i++)
    ed_get_u64le(&p, e, &hdr[i]); /* the length check above leaves room */
  *body = p;
  *end = e;
  return ED_OK;
}

bool agg_state_get_key(const uint8_t **p, const uint8_t *end, uint64_t *tag, const uint8_t **key,
                       uint64_t *len) {
  if (!ed_get_u64le(p, end, tag) || !ed_get_u64le(p, end, len) || (uint64_t)(end - *p) < *len)
    return false;
  *key = *p;
  *p += *len;
  return true;
}
