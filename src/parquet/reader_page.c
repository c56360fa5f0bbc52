/* reader_page: one column chunk's pages -> levels and values
 * (pq_reader_read_leaf, pq_leaf_data_fini). Owns page headers, decompression,
 * the PLAIN, dictionary, RLE and DELTA value decoders and v1/v2 level
 * decoding; every length from the file is checked against the bytes present
 * before use. The footer it reads against is reader.c's (reader_int.h). */
#include "parquet/reader.h"

#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "parquet/reader_int.h"
#include "parquet/rle.h"
#include "parquet/schema_int.h"
#include "parquet/thrift.h"
#include "proto/parquet.h"

/* ---- pages ---- */

typedef struct pagehdr {
  int type;
  int32_t unc, comp;
  int32_t nvals, nnulls, nrows;
  int enc, def_enc, rep_enc;
  int32_t def_len, rep_len;
  bool is_compressed;
  bool has_dp, has_dict, has_v2;
} pagehdr_t;

static bool read_page_header(pq_tr_t *t, pagehdr_t *h) {
  int16_t last = 0, id;
  int ty;
  memset(h, 0, sizeof *h);
  h->type = -1;
  h->unc = h->comp = -1;
  h->is_compressed = true;
  for (;;) {
    if (!pq_tr_field(t, &last, &ty, &id))
      return false;
    if (ty == PQ_TT_STOP)
      return true;
    int64_t v;
    if ((id == PQF_PH_DATA_PAGE || id == PQF_PH_DICT_PAGE || id == PQF_PH_DATA_PAGE_V2) &&
        ty == PQ_TT_STRUCT) {
      int16_t l2 = 0, id2;
      int t2;
      if (id == PQF_PH_DATA_PAGE)
        h->has_dp = true;
      if (id == PQF_PH_DICT_PAGE)
        h->has_dict = true;
      if (id == PQF_PH_DATA_PAGE_V2)
        h->has_v2 = true;
      for (;;) {
        if (!pq_tr_field(t, &l2, &t2, &id2))
          return false;
        if (t2 == PQ_TT_STOP)
          break;
        if (t2 == PQ_TT_TRUE || t2 == PQ_TT_FALSE) {
          if (id == PQF_PH_DATA_PAGE_V2 && id2 == PQF_DP2_IS_COMPRESSED)
            h->is_compressed = t2 == PQ_TT_TRUE;
          continue;
        }
        if (t2 != PQ_TT_I32 && t2 != PQ_TT_I16 && t2 != PQ_TT_I64) {
          if (!pq_tr_skip(t, t2, 2))
            return false;
          continue;
        }
        if (!pq_tr_int(t, t2, &v))
          return false;
        if (v < INT32_MIN || v > INT32_MAX) {
          t->err = "page header value out of range";
          return false;
        }
        int32_t x = (int32_t)v;
        if (id == PQF_PH_DATA_PAGE) {
          if (id2 == PQF_DP_NUM_VALUES)
            h->nvals = x;
          if (id2 == PQF_DP_ENCODING)
            h->enc = x;
          if (id2 == PQF_DP_DEF_ENCODING)
            h->def_enc = x;
          if (id2 == PQF_DP_REP_ENCODING)
            h->rep_enc = x;
        } else if (id == PQF_PH_DICT_PAGE) {
          if (id2 == PQF_DICT_NUM_VALUES)
            h->nvals = x;
          if (id2 == PQF_DICT_ENCODING)
            h->enc = x;
        } else {
          if (id2 == PQF_DP2_NUM_VALUES)
            h->nvals = x;
          if (id2 == PQF_DP2_NUM_NULLS)
            h->nnulls = x;
          if (id2 == PQF_DP2_NUM_ROWS)
            h->nrows = x;
          if (id2 == PQF_DP2_ENCODING)
            h->enc = x;
          if (id2 == PQF_DP2_DEF_LEN)
            h->def_len = x;
          if (id2 == PQF_DP2_REP_LEN)
            h->rep_len = x;
        }
      }
      continue;
    }
    if (id == PQF_PH_TYPE || id == PQF_PH_UNCOMPRESSED_SIZE || id == PQF_PH_COMPRESSED_SIZE) {
      if (!pq_tr_int(t, ty, &v))
        return false;
      if (v < INT32_MIN || v > INT32_MAX) {
        t->err = "page header value out of range";
        return false;
      }
      if (id == PQF_PH_TYPE)
        h->type = (int)v;
      if (id == PQF_PH_UNCOMPRESSED_SIZE)
        h->unc = (int32_t)v;
      if (id == PQF_PH_COMPRESSED_SIZE)
        h->comp = (int32_t)v;
      continue;
    }
    if (!pq_tr_skip(t, ty, 1))
      return false;
  }
}

/* Growable output of one leaf. */
typedef struct lout {
  pq_leaf_data_t *d;
  size_t lcap, vcap, dcap; /* entries, values, data bytes */
  size_t width;
  /* dictionary */
  uint8_t *dict;        /* fixed-width values */
  uint32_t *doff;       /* byte arrays: offsets into dict_data, n+1 */
  const uint8_t *ddata; /* byte arrays: points into dictbuf */
  ed_buf_t dictbuf;
  size_t dn;
  bool has_dict;
  uint32_t *idx;
  size_t icap;
} lout_t;

static bool grow(void **p, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap)
    return true;
  size_t n = *cap ? *cap : 64;
  while (n < need)
    n *= 2;
  void *q = realloc(*p, n * elem);
  if (!q)
    return false;
  *p = q;
  *cap = n;
  return true;
}

/* Appends m PLAIN values from p[0..n) (bytes consumed in *used). Byte-like
 * types (BYTE_ARRAY, INT96, FIXED) go to off/data. */
static ed_code_t plain_values(lout_t *o, int ph, int tl, const uint8_t *p, size_t n, size_t m,
                              size_t *used, const char *path, ed_err_t *err) {
  pq_leaf_data_t *d = o->d;
  size_t at = 0;
  if (ph == PQ_P_BOOLEAN) {
    if ((m + 7) / 8 > n)
      return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': booleans truncated", path);
    if (!grow((void **)&d->v.b8, &o->vcap, d->nvalues + m + 1, 1))
      return oom(err);
    for (size_t i = 0; i < m; i++)
      d->v.b8[d->nvalues + i] = (p[i >> 3] >> (i & 7)) & 1;
    d->nvalues += m;
    *used = (m + 7) / 8;
    return ED_OK;
  }
  if (ph == PQ_P_BYTE_ARRAY || ph == PQ_P_INT96 || ph == PQ_P_FIXED_LEN_BYTE_ARRAY) {
    size_t fw = phys_width(ph, tl);
    /* Each value takes at least 4 (length) or fw bytes: a larger count lies. */
    size_t minw = ph == PQ_P_BYTE_ARRAY ? 4 : fw;
    if (minw && m > n / minw)
      return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': %zu values cannot fit %zu bytes",
                        path, m, n);
    if (!grow((void **)&d->off, &o->vcap, d->nvalues + m + 2, 4))
      return oom(err);
    if (d->nvalues == 0)
      d->off[0] = 0;
    for (size_t i = 0; i < m; i++) {
      size_t len = fw;
      if (ph == PQ_P_BYTE_ARRAY) {
        if (n - at < 4)
          return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': values truncated", path);
        uint32_t l;
        memcpy(&l, p + at, 4);
        at += 4;
        len = l;
      }
      if (len > n - at)
        return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': value past the page", path);
      size_t cur = d->off[d->nvalues];
      if (cur + len > UINT32_MAX)
        return ed_err_set(err, ED_E_TOO_LARGE, "parquet page '%s': over 4 GiB", path);
      if (!grow((void **)&d->data, &o->dcap, cur + len + 1, 1))
        return oom(err);
      memcpy(d->data + cur, p + at, len);
      at += len;
      d->off[++d->nvalues] = (uint32_t)(cur + len);
    }
    *used = at;
    return ED_OK;
  }
  size_t w = phys_width(ph, tl);
  if (w == 0 || m > n / w)
    return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': values truncated", path);
  if (!grow((void **)&d->v.b8, &o->vcap, d->nvalues + m + 1, w))
    return oom(err);
  memcpy(d->v.b8 + d->nvalues * w, p, m * w);
  d->nvalues += m;
  *used = m * w;
  return ED_OK;
}

/* DELTA_BINARY_PACKED (Encodings.md): exactly m values into out (as
 * uint64, wrapping like the writer's arithmetic); *used = bytes consumed. */
static int rd_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  uint64_t x = 0;
  for (int sh = 0; sh < 70; sh += 7) {
    if (*p >= end)
      return -1;
    uint8_t c = *(*p)++;
    x |= (uint64_t)(c & 0x7F) << sh;
    if (!(c & 0x80)) {
      *v = x;
      return 0;
    }
  }
  return -1;
}
static uint64_t unzz(uint64_t u) { return (u >> 1) ^ (0 - (u & 1)); }

static int delta_bp(const uint8_t *p, size_t n, uint64_t *out, size_t m, size_t *used) {
  const uint8_t *s = p, *end = p + n;
  uint64_t bs, nmb, total, first;
  if (rd_varint(&p, end, &bs) || rd_varint(&p, end, &nmb) || rd_varint(&p, end, &total) ||
      rd_varint(&p, end, &first))
    return -1;
  if (bs == 0 || bs % 128 || nmb == 0 || bs % nmb || (bs / nmb) % 32 || total != m || bs > 1u << 20)
    return -1;
  size_t per = (size_t)(bs / nmb), k = 0;
  uint64_t cur = unzz(first);
  if (m)
    out[k++] = cur;
  while (k < m) {
    uint64_t mdz;
    if (rd_varint(&p, end, &mdz) || (uint64_t)(end - p) < nmb)
      return -1;
    uint64_t mind = unzz(mdz);
    const uint8_t *widths = p;
    p += nmb;
    for (size_t b = 0; b < nmb && k < m; b++) {
      int w = widths[b];
      if (w > 64)
        return -1;
      size_t bytes = per * (size_t)w / 8;
      if (bytes > (size_t)(end - p))
        return -1;
      for (size_t i = 0; i < per && k < m; i++) {
        uint64_t d = 0;
        size_t bit = i * (size_t)w;
        for (int j = 0; j < w; j++, bit++)
          d |= (uint64_t)(p[bit >> 3] >> (bit & 7) & 1) << j;
        cur += mind + d;
        out[k++] = cur;
      }
      p += bytes;
    }
  }
  *used = (size_t)(p - s);
  return 0;
}

/* DELTA_BINARY_PACKED, DELTA_LENGTH_BYTE_ARRAY, DELTA_BYTE_ARRAY and
 * BYTE_STREAM_SPLIT values (files from Spark's v2 writer and Arrow options). */
static ed_code_t other_values(lout_t *o, int enc, int ph, int tl, const uint8_t *p, size_t n,
                              size_t m, const char *path, ed_err_t *err) {
  pq_leaf_data_t *d = o->d;
  ed_code_t rc = ED_OK;
  uint64_t *a = NULL, *b = NULL;
  /* Every encoded value takes at least one bit: a count past 8 per byte lies
   * (DELTA runs can be denser, so allow the block header's worth too). */
  if (m > (n + 64) * 64)
    return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': %zu values cannot fit %zu bytes", path,
                      m, n);
  a = malloc((m + 1) * sizeof *a);
  b = malloc((m + 1) * sizeof *b);
  if (!a || !b) {
    rc = oom(err);
    goto out;
  }
  size_t used = 0;
  if (enc == PQ_ENC_DELTA_BINARY_PACKED && (ph == PQ_P_INT32 || ph == PQ_P_INT64)) {
    if (delta_bp(p, n, a, m, &used))
      goto bad;
    size_t w = ph == PQ_P_INT32 ? 4 : 8;
    if (!grow((void **)&d->v.b8, &o->vcap, d->nvalues + m + 1, w)) {
      rc = oom(err);
      goto out;
    }
    for (size_t i = 0; i < m; i++) {
      if (w == 4) {
        uint32_t x = (uint32_t)a[i];
        memcpy(d->v.b8 + (d->nvalues + i) * 4, &x, 4);
      } else
        memcpy(d->v.b8 + (d->nvalues + i) * 8, &a[i], 8);
    }
    d->nvalues += m;
  } else if ((enc == PQ_ENC_DELTA_LENGTH_BYTE_ARRAY || enc == PQ_ENC_DELTA_BYTE_ARRAY) &&
             ph == PQ_P_BYTE_ARRAY) {
    size_t at = 0;
    if (enc == PQ_ENC_DELTA_BYTE_ARRAY) { /* prefix lengths first */
      if (delta_bp(p, n, b, m, &used))
        goto bad;
      at = used;
    }
    if (delta_bp(p + at, n - at, a, m, &used))
      goto bad;
    at += used;
    if (!grow((void **)&d->off, &o->vcap, d->nvalues + m + 2, 4)) {
      rc = oom(err);
      goto out;
    }
    if (d->nvalues == 0)
      d->off[0] = 0;
    size_t prev_at = 0, prev_len = 0; /* previous value, inside d->data */
    for (size_t i = 0; i < m; i++) {
      uint64_t sl = a[i], pl = enc == PQ_ENC_DELTA_BYTE_ARRAY ? b[i] : 0;
      if (sl > n - at || pl > prev_len || (i == 0 && pl))
        goto bad;
      size_t cur = d->off[d->nvalues];
      if (cur + pl + sl > UINT32_MAX)
        goto bad;
      if (!grow((void **)&d->data, &o->dcap, cur + pl + sl + 1, 1)) {
        rc = oom(err);
        goto out;
      }
      if (pl)
        memmove(d->data + cur, d->data + prev_at, pl);
      memcpy(d->data + cur + pl, p + at, sl);
      at += sl;
      prev_at = cur;
      prev_len = pl + sl;
      d->off[++d->nvalues] = (uint32_t)(cur + pl + sl);
    }
  } else if (enc == PQ_ENC_BYTE_STREAM_SPLIT &&
             (ph == PQ_P_FLOAT || ph == PQ_P_DOUBLE || ph == PQ_P_INT32 || ph == PQ_P_INT64)) {
    size_t w = phys_width(ph, tl);
    if (m > n / w)
      goto bad;
    if (!grow((void **)&d->v.b8, &o->vcap, d->nvalues + m + 1, w)) {
      rc = oom(err);
      goto out;
    }
    uint8_t *dst = d->v.b8 + d->nvalues * w;
    for (size_t i = 0; i < m; i++)
      for (size_t k = 0; k < w; k++)
        dst[i * w + k] = p[k * m + i];
    d->nvalues += m;
  } else {
    rc = ed_err_set(err, ED_E_UNSUPPORTED,
                    "parquet page '%s': encoding %d not supported for type %d", path, enc, ph);
  }
  goto out;
bad:
  rc = ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': malformed encoding %d values", path, enc);
out:
  free(a);
  free(b);
  return rc;
}

static ed_code_t dict_values(lout_t *o, int ph, int tl, const uint8_t *p, size_t n, size_t m,
                             const char *path, ed_err_t *err) {
  if (!o->has_dict)
    return ed_err_set(err, ED_E_CORRUPT,
                      "parquet page '%s': dictionary indices without a dictionary", path);
  if (n < 1)
    return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': no index bit width", path);
  int bw = p[0];
  if (bw > 32)
    return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': index bit width %d", path, bw);
  if (!grow((void **)&o->idx, &o->icap, m + 1, 4))
    return oom(err);
  if (pq_rle_decode32(p + 1, n - 1, bw, o->idx, m, NULL))
    return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': dictionary indices truncated", path);
  pq_leaf_data_t *d = o->d;
  for (size_t i = 0; i < m; i++)
    if (o->idx[i] >= o->dn)
      return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': index %u past a dictionary of %zu",
                        path, o->idx[i], o->dn);
  if (ph == PQ_P_BYTE_ARRAY || ph == PQ_P_INT96 || ph == PQ_P_FIXED_LEN_BYTE_ARRAY) {
    if (!grow((void **)&d->off, &o->vcap, d->nvalues + m + 2, 4))
      return oom(err);
    if (d->nvalues == 0)
      d->off[0] = 0;
    for (size_t i = 0; i < m; i++) {
      uint32_t a = o->doff[o->idx[i]], b = o->doff[o->idx[i] + 1];
      size_t cur = d->off[d->nvalues];
      if (cur + (b - a) > UINT32_MAX)
        return ed_err_set(err, ED_E_TOO_LARGE, "parquet page '%s': over 4 GiB", path);
      if (!grow((void **)&d->data, &o->dcap, cur + (b - a) + 1, 1))
        return oom(err);
      memcpy(d->data + cur, o->ddata + a, b - a);
      d->off[++d->nvalues] = (uint32_t)(cur + (b - a));
    }
    return ED_OK;
  }
  size_t w = ph == PQ_P_BOOLEAN ? 1 : phys_width(ph, tl);
  if (!grow((void **)&d->v.b8, &o->vcap, d->nvalues + m + 1, w))
    return oom(err);
  for (size_t i = 0; i < m; i++)
    memcpy(d->v.b8 + (d->nvalues + i) * w, o->dict + o->idx[i] * w, w);
  d->nvalues += m;
  return ED_OK;
}

static ed_code_t decompress(pq_reader_t *r, int codec, const uint8_t *src, size_t n, size_t unc,
                            const uint8_t **out, const char *path, ed_err_t *err) {
  if (codec == PQ_CC_UNCOMPRESSED) {
    if (n != unc)
      return ed_err_set(err, ED_E_CORRUPT,
                        "parquet page '%s': sizes differ (%zu vs %zu) uncompressed", path, n, unc);
    *out = src;
    return ED_OK;
  }
  ed_buf_reset(&r->page);
  if (ed_buf_reserve(&r->page, unc + 1))
    return oom(err);
  if (codec == PQ_CC_ZSTD) {
    unsigned long long fs = ZSTD_getFrameContentSize(src, n);
    if (fs != ZSTD_CONTENTSIZE_UNKNOWN && fs != unc)
      return ed_err_set(err, ED_E_CORRUPT,
                        "parquet page '%s': zstd frame holds %llu bytes, header says %zu", path, fs,
                        unc);
    size_t k = ZSTD_decompress(r->page.data, unc, src, n);
    if (ZSTD_isError(k) || k != unc)
      return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': zstd: %s", path,
                        ZSTD_isError(k) ? ZSTD_getErrorName(k) : "short output");
  } else if (codec == PQ_CC_SNAPPY) {
    size_t ul;
    if (snappy_uncompressed_length((const char *)src, n, &ul) != SNAPPY_OK || ul != unc)
      return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': snappy length mismatch", path);
    size_t k = unc;
    if (snappy_uncompress((const char *)src, n, r->page.data, &k) != SNAPPY_OK || k != unc)
      return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': snappy data corrupt", path);
  } else
    return ed_err_set(err, ED_E_UNSUPPORTED, "parquet page '%s': codec %d not supported", path,
                      codec);
  *out = (const uint8_t *)r->page.data;
  return ED_OK;
}

static int bitw(int maxl) {
  int b = 0;
  while (maxl)
    b++, maxl >>= 1;
  return b;
}

static ed_code_t levels_into(int16_t *dst, const uint8_t *p, size_t n, size_t cnt, int maxl,
                             const char *what, const char *path, ed_err_t *err) {
  if (pq_rle_decode16(p, n, bitw(maxl), dst, cnt, NULL))
    return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': %s levels truncated", path, what);
  for (size_t i = 0; i < cnt; i++)
    if (dst[i] < 0 || dst[i] > maxl)
      return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': %s level %d above max %d", path,
                        what, dst[i], maxl);
  return ED_OK;
}

void pq_leaf_data_fini(pq_leaf_data_t *d) {
  if (!d)
    return;
  free(d->def);
  free(d->rep);
  free(d->v.b8);
  free(d->off);
  free(d->data);
  memset(d, 0, sizeof *d);
}

/* What every page of one column chunk is read against. */
typedef struct leafctx {
  pq_reader_t *r;
  const rchunk_t *c;
  const pq_node_t *ln;
  int tl; /* FIXED_LEN_BYTE_ARRAY: the value length */
  const char *path;
} leafctx_t;

static bool is_bytes(pq_phys_t ph) {
  return ph == PQ_P_BYTE_ARRAY || ph == PQ_P_INT96 || ph == PQ_P_FIXED_LEN_BYTE_ARRAY;
}

/* type_length of the element of leaf number `leaf` (FIXED_LEN_BYTE_ARRAY). */
static int leaf_type_length(const pq_reader_t *r, size_t leaf) {
  size_t li = 0;
  for (uint32_t i = 1; i < r->nel; i++)
    if (r->el[i].nchildren == 0 && r->el[i].has_type) {
      if (li == leaf)
        return r->el[i].type_length;
      li++;
    }
  return 0;
}

/* The chunk's bytes [*p, *end), checked against the file and the footer's
 * value count. */
static ed_code_t chunk_span(const leafctx_t *x, const uint8_t **p, const uint8_t **end,
                            ed_err_t *err) {
  const rchunk_t *c = x->c;
  int64_t start = c->dict_off > 0 ? c->dict_off : c->data_off;
  if (c->dict_off > 0 && c->data_off < c->dict_off)
    start = c->data_off;
  size_t file_end = x->r->len - 8;
  if (start < 4 || (uint64_t)start >= file_end || c->comp < 0 ||
      (uint64_t)c->comp > file_end - (uint64_t)start)
    return ed_err_set(err, ED_E_CORRUPT,
                      "parquet footer: column '%s' chunk [%lld, +%lld) outside the file", x->path,
                      (long long)start, (long long)c->comp);
  if (c->num_values < 0 || c->num_values > MAX_CHUNK_ENTRIES)
    return ed_err_set(err, ED_E_CORRUPT, "parquet footer: column '%s' claims %lld values", x->path,
                      (long long)c->num_values);
  *p = x->r->data + start;
  *end = *p + c->comp;
  return ED_OK;
}

/* A dictionary page: its values decoded as PLAIN into o's dictionary. */
static ed_code_t read_dict_page(const leafctx_t *x, const pagehdr_t *h, const uint8_t *body,
                                lout_t *o, ed_err_t *err) {
  const char *path = x->path;
  pq_phys_t ph = x->ln->phys;
  if (!h->has_dict || o->has_dict || h->nvals < 0)
    return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': bad dictionary page", path);
  const uint8_t *u;
  ed_code_t rc =
      decompress(x->r, x->c->codec, body, (size_t)h->comp, (size_t)h->unc, &u, path, err);
  if (rc)
    return rc;
  /* Decode the dictionary as PLAIN values into a private leaf. */
  pq_leaf_data_t dd = {0};
  lout_t dl = {0};
  dl.d = &dd;
  size_t used;
  size_t n = (size_t)h->nvals;
  if (ph == PQ_P_BYTE_ARRAY ? n > (size_t)h->unc / 4 : 0)
    return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': dictionary count past the page", path);
  rc = plain_values(&dl, ph, x->tl, u, (size_t)h->unc, n, &used, path, err);
  if (rc) {
    pq_leaf_data_fini(&dd);
    return rc;
  }
  o->has_dict = true;
  o->dn = n;
  if (is_bytes(ph)) {
    o->doff = dd.off;
    dd.off = NULL;
    if (!o->doff && !(o->doff = calloc(1, 4))) {
      pq_leaf_data_fini(&dd);
      return oom(err);
    }
    ed_buf_append(&o->dictbuf, dd.data ? dd.data : "", dd.data ? o->doff[n] : 0);
    o->ddata = (const uint8_t *)(o->dictbuf.data ? o->dictbuf.data : "");
  } else {
    o->dict = dd.v.b8;
    dd.v.b8 = NULL;
  }
  pq_leaf_data_fini(&dd);
  return ED_OK;
}

/* Room for `need` definition and repetition levels. */
static ed_code_t grow_levels(pq_leaf_data_t *out, lout_t *o, size_t need, ed_err_t *err) {
  if (!grow((void **)&out->def, &o->lcap, need, 2))
    return oom(err);
  void *q = realloc(out->rep, o->lcap * 2);
  if (!q)
    return oom(err);
  out->rep = q;
  return ED_OK;
}

/* A v1 data page: decompressed whole, then the repetition and definition
 * levels (each RLE with a 4-byte length), then the values (*vals, *vlen). */
static ed_code_t levels_v1(const leafctx_t *x, const pagehdr_t *h, const uint8_t *body, size_t n,
                           int16_t *def, int16_t *rep, const uint8_t **vals, size_t *vlen,
                           ed_err_t *err) {
  const char *path = x->path;
  const uint8_t *u;
  ed_code_t rc =
      decompress(x->r, x->c->codec, body, (size_t)h->comp, (size_t)h->unc, &u, path, err);
  if (rc)
    return rc;
  size_t at = 0, un = (size_t)h->unc;
  for (int pass = 0; pass < 2; pass++) {
    int maxl = pass == 0 ? x->ln->max_rep : x->ln->max_def;
    int16_t *dst = pass == 0 ? rep : def;
    if (maxl == 0) {
      for (size_t i = 0; i < n; i++)
        dst[i] = 0;
      continue;
    }
    int enc = pass == 0 ? h->rep_enc : h->def_enc;
    if (enc != PQ_ENC_RLE)
      return ed_err_set(err, ED_E_UNSUPPORTED, "parquet page '%s': level encoding %d", path, enc);
    uint32_t ll;
    if (un - at < 4)
      return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': levels truncated", path);
    memcpy(&ll, u + at, 4);
    at += 4;
    if (ll > un - at)
      return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': level length past the page", path);
    if ((rc = levels_into(dst, u + at, ll, n, maxl, pass ? "definition" : "repetition", path, err)))
      return rc;
    at += ll;
  }
  *vals = u + at;
  *vlen = un - at;
  return ED_OK;
}

/* A v2 data page: the levels uncompressed up front (lengths in the header),
 * then the values, compressed or not (*vals, *vlen). */
static ed_code_t levels_v2(const leafctx_t *x, const pagehdr_t *h, const uint8_t *body, size_t n,
                           int16_t *def, int16_t *rep, const uint8_t **vals, size_t *vlen,
                           ed_err_t *err) {
  const char *path = x->path;
  if (h->def_len < 0 || h->rep_len < 0 ||
      (size_t)h->def_len + (size_t)h->rep_len > (size_t)h->comp ||
      (size_t)h->def_len + (size_t)h->rep_len > (size_t)h->unc)
    return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': v2 level lengths past the page", path);
  const uint8_t *lv = body;
  ed_code_t rc;
  for (int pass = 0; pass < 2; pass++) {
    int maxl = pass == 0 ? x->ln->max_rep : x->ln->max_def;
    int16_t *dst = pass == 0 ? rep : def;
    size_t ll = pass == 0 ? (size_t)h->rep_len : (size_t)h->def_len;
    if (maxl == 0)
      for (size_t i = 0; i < n; i++)
        dst[i] = 0;
    else if ((rc =
                  levels_into(dst, lv, ll, n, maxl, pass ? "definition" : "repetition", path, err)))
      return rc;
    lv += ll;
  }
  size_t lsz = (size_t)h->def_len + (size_t)h->rep_len;
  size_t cn = (size_t)h->comp - lsz, unv = (size_t)h->unc - lsz;
  if (h->is_compressed && x->c->codec != PQ_CC_UNCOMPRESSED) {
    if ((rc = decompress(x->r, x->c->codec, body + lsz, cn, unv, vals, path, err)))
      return rc;
  } else {
    if (cn != unv)
      return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': v2 sizes differ", path);
    *vals = body + lsz;
  }
  *vlen = unv;
  return ED_OK;
}

/* The page's m non-null values, in its encoding, appended to o->d. */
static ed_code_t page_values(const leafctx_t *x, lout_t *o, int enc, const uint8_t *vals,
                             size_t vlen, size_t m, ed_err_t *err) {
  const char *path = x->path;
  pq_phys_t ph = x->ln->phys;
  pq_leaf_data_t *out = o->d;
  size_t used = 0;
  if (enc == PQ_ENC_PLAIN)
    return plain_values(o, ph, x->tl, vals, vlen, m, &used, path, err);
  if (enc == PQ_ENC_RLE_DICTIONARY || enc == PQ_ENC_PLAIN_DICTIONARY)
    return dict_values(o, ph, x->tl, vals, vlen, m, path, err);
  if (enc != PQ_ENC_RLE || ph != PQ_P_BOOLEAN)
    return other_values(o, enc, ph, x->tl, vals, vlen, m, path, err);
  /* RLE booleans: 4-byte length prefix, then the hybrid at width 1. */
  if (vlen < 4)
    return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': RLE booleans truncated", path);
  if (!grow((void **)&o->idx, &o->icap, m + 1, 4) ||
      !grow((void **)&out->v.b8, &o->vcap, out->nvalues + m + 1, 1))
    return oom(err);
  if (pq_rle_decode32(vals + 4, vlen - 4, 1, o->idx, m, NULL))
    return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': RLE booleans truncated", path);
  for (size_t i = 0; i < m; i++)
    out->v.b8[out->nvalues++] = (uint8_t)o->idx[i];
  return ED_OK;
}

/* A data page (v1 or v2) of n entries appended after the *total before it. */
static ed_code_t read_data_page(const leafctx_t *x, const pagehdr_t *h, const uint8_t *body,
                                lout_t *o, size_t *total, ed_err_t *err) {
  const char *path = x->path;
  pq_leaf_data_t *out = o->d;
  if ((h->type == PQ_PAGE_DATA && !h->has_dp) || (h->type == PQ_PAGE_DATA_V2 && !h->has_v2) ||
      h->nvals < 0)
    return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': data page without its header", path);
  size_t n = (size_t)h->nvals;
  if (*total + n > (size_t)x->c->num_values || n > ((size_t)h->unc + 64) * 65536)
    return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': %zu values exceed the chunk's %lld",
                      path, *total + n, (long long)x->c->num_values);
  ed_code_t rc = grow_levels(out, o, *total + n + 1, err);
  if (rc)
    return rc;
  int16_t *def = out->def + *total, *rep = out->rep + *total;
  const uint8_t *vals = NULL;
  size_t vlen = 0;
  rc = h->type == PQ_PAGE_DATA ? levels_v1(x, h, body, n, def, rep, &vals, &vlen, err)
                               : levels_v2(x, h, body, n, def, rep, &vals, &vlen, err);
  if (rc)
    return rc;
  size_t m = 0;
  for (size_t i = 0; i < n; i++)
    m += def[i] == x->ln->max_def;
  if ((rc = page_values(x, o, h->enc, vals, vlen, m, err)))
    return rc;
  *total += n;
  out->n = *total;
  return ED_OK;
}

/* The pages of the chunk in order: the dictionary into o, data pages
 * appended to o->d, index pages skipped. */
static ed_code_t read_pages(const leafctx_t *x, const uint8_t *p, const uint8_t *end, lout_t *o,
                            ed_err_t *err) {
  const char *path = x->path;
  size_t total = 0;
  while (p < end && total < (size_t)x->c->num_values) {
    pq_tr_t t;
    pq_tr_init(&t, p, (size_t)(end - p));
    pagehdr_t h;
    if (!read_page_header(&t, &h))
      return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': header: %s", path,
                        t.err ? t.err : "malformed");
    p = t.p;
    if (h.comp < 0 || h.unc < 0 || (size_t)h.comp > (size_t)(end - p) ||
        (size_t)h.unc > MAX_PAGE_BYTES)
      return ed_err_set(err, ED_E_CORRUPT, "parquet page '%s': sizes %d/%d do not fit the chunk",
                        path, h.comp, h.unc);
    const uint8_t *body = p;
    p += h.comp;
    ed_code_t rc = ED_OK;
    if (h.type == PQ_PAGE_DICTIONARY)
      rc = read_dict_page(x, &h, body, o, err);
    else if (h.type == PQ_PAGE_DATA || h.type == PQ_PAGE_DATA_V2)
      rc = read_data_page(x, &h, body, o, &total, err);
    if (rc)
      return rc;
  }
  if (total != (size_t)x->c->num_values)
    return ed_err_set(err, ED_E_CORRUPT,
                      "parquet column '%s': %zu values in pages, footer says %lld", path, total,
                      (long long)x->c->num_values);
  return ED_OK;
}

ed_code_t pq_reader_read_leaf(pq_reader_t *r, size_t rg, size_t leaf, pq_leaf_data_t *out,
                              ed_err_t *err) {
  memset(out, 0, sizeof *out);
  if (rg >= r->nrgs || leaf >= r->rgs[rg].ncols)
    return ed_err_set(err, ED_E_INVALID, "parquet reader: no column %zu in row group %zu", leaf,
                      rg);
  const pq_node_t *ln = pq_schema_node(r->schema, pq_schema_leaf_node(r->schema, leaf));
  leafctx_t x = {.r = r,
                 .c = &r->rgs[rg].cols[leaf],
                 .ln = ln,
                 .tl = leaf_type_length(r, leaf),
                 .path = ln->path};
  if (ln->phys == PQ_P_FIXED_LEN_BYTE_ARRAY && x.tl <= 0)
    return ed_err_set(err, ED_E_CORRUPT, "parquet footer: '%s' FIXED_LEN_BYTE_ARRAY without length",
                      x.path);
  out->phys = ln->phys;
  if (x.c->num_values == 0) { /* empty chunk: writers may leave its offsets unset */
    if (is_bytes(ln->phys) && !(out->off = calloc(1, 4)))
      return oom(err);
    return ED_OK;
  }
  const uint8_t *p = NULL, *end = NULL;
  ed_code_t rc = chunk_span(&x, &p, &end, err);
  if (rc)
    return rc;
  lout_t o = {0};
  o.d = out;
  rc = read_pages(&x, p, end, &o, err);
  if (!rc && ln->max_def == 0) {
    free(out->def);
    out->def = NULL;
  }
  if (!rc && ln->max_rep == 0) {
    free(out->rep);
    out->rep = NULL;
  }
  if (!rc && is_bytes(ln->phys) && !out->off && !(out->off = calloc(1, 4)))
    rc = oom(err);
  free(o.dict);
  free(o.doff);
  ed_buf_fini(&o.dictbuf);
  free(o.idx);
  if (rc)
    pq_leaf_data_fini(out);
  return rc;
}
