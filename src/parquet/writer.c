/* writer: column batches -> one Parquet file. See writer.h.
 * Per leaf the writer keeps the current page (levels + values or dictionary
 * indices) and the row group's finished pages (compressed, with headers);
 * the row group goes to the sink when it passes row_group_bytes or on close,
 * each chunk as [dictionary page] data pages, contiguous (D.1).
 * This file: construction, statistics, dictionaries, shredding, pages and row
 * groups; the FileMetaData footer is writer_footer.c. */
#include "parquet/writer.h"

#include <errno.h>
#include <math.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
/* ZSTD_getCParams (exported by libzstd since 1.0, declared behind this macro) */
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

#include "common/buf.h"
#include "config.h"
#include "parquet/rle.h"
#include "parquet/schema_int.h"
#include "parquet/thrift.h"
#include "parquet/writer_int.h"
#include "proto/parquet.h"

#define SLICE_ROWS 4096

void pq_writer_opts_init(pq_writer_opts_t *o) {
  memset(o, 0, sizeof *o);
  o->codec = PQ_CODEC_ZSTD;
  /* Arrow C++'s and the Rust parquet crate's default (parquet-mr's is 3): on
   * event data level 3 costs the agent about 12% more CPU for 4% smaller files */
  o->zstd_level = 1;
  o->row_group_bytes = 128u << 20;
  o->page_bytes = 1u << 20;
  o->dictionary = true;
  o->dict_max_bytes = 1u << 20;
  o->dict_trial = 4096;
}

static ed_code_t oom(ed_err_t *err) {
  return ed_err_set(err, ED_E_NOMEM, "parquet writer: out of memory");
}

static void st_reset(st_t *s) {
  s->nulls = s->nvals = 0;
  s->has = false;
  ed_buf_reset(&s->mnb);
  ed_buf_reset(&s->mxb);
}
static void st_fini(st_t *s) {
  ed_buf_fini(&s->mnb);
  ed_buf_fini(&s->mxb);
}

/* ---- sink ---- */

static ed_code_t emit(pq_writer_t *w, const void *p, size_t n, ed_err_t *err) {
  if (!n)
    return ED_OK;
  ed_code_t rc = w->sink(w->ctx, p, n, err);
  if (rc) {
    w->failed = true;
    /* The sink may not have filled err: the code it returned is the truth. */
    if (err && err->code != rc)
      ed_err_set(err, rc, "parquet writer: sink failed: %s", ed_code_desc(rc));
    else
      ed_err_prefix(err, "parquet writer");
    return rc;
  }
  w->off += n;
  return ED_OK;
}

ed_code_t pq_sink_buf(void *ctx, const void *data, size_t len, ed_err_t *err) {
  if (ed_buf_append(ctx, data, len))
    return ed_err_set(err, ED_E_NOMEM, "parquet writer: out of memory for the file buffer");
  return ED_OK;
}

static ed_code_t fd_sink(void *ctx, const void *data, size_t len, ed_err_t *err) {
  int fd = *(int *)ctx;
  const char *p = data;
  while (len) {
    ssize_t k = write(fd, p, len);
    if (k < 0) {
      if (errno == EINTR)
        continue;
      return ed_err_set(err, errno == ENOSPC ? ED_E_NOSPACE : ED_E_IO, "write to fd %d: %s", fd,
                        strerror(errno));
    }
    p += k;
    len -= (size_t)k;
  }
  return ED_OK;
}

/* ---- construction ---- */

static bool use_dict(const pq_writer_t *w, const wcol_t *c) {
  return w->o.dictionary && !c->dict_failed && c->phys != PQ_P_BOOLEAN;
}

/* One context per writer, its parameters set once. Each page is its own
 * zstd frame of up to about page_bytes; for inputs past 256 KiB zstd sizes
 * its match tables for much larger data (level 3: a 2 MiB window and 2^17
 * hash entries), which fall out of the cache, while the 256 KiB row of its
 * table compresses page data to the same size about 1.5x faster (measured
 * on the bench's PLAIN int64 and string pages, levels 3-9). Level 1 keeps
 * its own row: the small one makes its output 2% larger. */
static ZSTD_CCtx *zstd_cctx(int level) {
  ZSTD_CCtx *z = ZSTD_createCCtx();
  if (!z)
    return NULL;
  /* the window stays the large-input one (it costs no memory here, and a
   * smaller one loses matches); levels 1-2 have small tables already */
  ZSTD_compressionParameters cp = ZSTD_getCParams(level, level >= 3 ? 256u << 10 : 1u << 20, 0);
  cp.windowLog = ZSTD_getCParams(level, 1u << 20, 0).windowLog;
  const struct {
    ZSTD_cParameter p;
    int v;
  } set[] = {
      {ZSTD_c_compressionLevel, level},
      {ZSTD_c_windowLog, (int)cp.windowLog},
      {ZSTD_c_hashLog, (int)cp.hashLog},
      {ZSTD_c_chainLog, (int)cp.chainLog},
      {ZSTD_c_searchLog, (int)cp.searchLog},
      {ZSTD_c_minMatch, (int)cp.minMatch},
      {ZSTD_c_targetLength, (int)cp.targetLength},
      {ZSTD_c_strategy, (int)cp.strategy},
  };
  for (size_t i = 0; i < sizeof set / sizeof set[0]; i++)
    if (ZSTD_isError(ZSTD_CCtx_setParameter(z, set[i].p, set[i].v))) {
      ZSTD_freeCCtx(z);
      return NULL;
    }
  return z;
}

ed_code_t pq_writer_new(const pq_schema_t *schema, const pq_writer_opts_t *opts, pq_sink_fn sink,
                        void *ctx, pq_writer_t **out, ed_err_t *err) {
  pq_writer_t *w = calloc(1, sizeof *w);
  if (!w)
    return oom(err);
  w->fd = -1;
  w->bad_null = -1;
  if (opts)
    w->o = *opts;
  else
    pq_writer_opts_init(&w->o);
  if (w->o.page_bytes == 0)
    w->o.page_bytes = 1u << 20;
  if (w->o.row_group_bytes == 0)
    w->o.row_group_bytes = 128u << 20;
  if (w->o.codec != PQ_CODEC_UNCOMPRESSED && w->o.codec != PQ_CODEC_ZSTD &&
      w->o.codec != PQ_CODEC_SNAPPY) {
    int codec = w->o.codec;
    free(w);
    return ed_err_set(err, ED_E_INVALID, "parquet writer: codec %d not supported", codec);
  }
  ed_code_t rc = pq_schema_clone(schema, &w->schema, err);
  if (rc) {
    free(w);
    return rc;
  }
  /* A schema from the reader may describe how another writer stored a leaf
   * (INT96 or millisecond timestamps): this writer stores each type its own
   * way, so those facts are dropped and the leaves recomputed. */
  for (size_t i = 0; i < w->schema->nn; i++) {
    pq_inode_t *n = &w->schema->n[i];
    n->phys_override = -2;
    n->ts_unit = PQ_TS_MICROS;
    n->two_level = false; /* written as the standard 3-level list */
    free(n->mid_name);
    n->mid_name = NULL;
  }
  w->schema->finished = false;
  if ((rc = pq_schema_finish(w->schema, err)))
    goto fail;
  char cb[128];
  snprintf(cb, sizeof cb, "ehdelta version %s (build ehdelta)", PACKAGE_VERSION);
  const char *c = w->o.created_by ? w->o.created_by : cb;
  w->created_by = strdup(c);
  w->o.created_by = NULL;
  if (!w->created_by)
    goto nomem;
  w->sink = sink;
  w->ctx = ctx;
  w->cols = calloc(pq_schema_num_leaves(w->schema), sizeof *w->cols);
  if (!w->cols)
    goto nomem;
  w->ncols = pq_schema_num_leaves(w->schema);
  for (size_t i = 0; i < w->ncols; i++) {
    wcol_t *col = &w->cols[i];
    col->node = pq_schema_leaf_node(w->schema, i);
    col->leaf = &w->schema->n[col->node];
    col->phys = col->leaf->pub.phys;
    col->max_def = col->leaf->pub.max_def;
    col->max_rep = col->leaf->pub.max_rep;
    col->page_dict = use_dict(w, col);
    int chain[64], nchain = 0;
    for (int id = col->node; id != PQ_ROOT; id = w->schema->n[id].pub.parent) {
      if (nchain == 64) {
        rc = ed_err_set(err, ED_E_UNSUPPORTED, "parquet writer: '%s' nested deeper than 64",
                        col->leaf->pub.path);
        goto fail;
      }
      chain[nchain++] = id;
    }
    if (col->max_def > 255) {
      rc = ed_err_set(err, ED_E_UNSUPPORTED, "parquet writer: '%s' nested too deep",
                      col->leaf->pub.path);
      goto fail;
    }
    col->depth = nchain;
    for (int k = 0; k < nchain; k++) {
      int id = chain[nchain - 1 - k];
      col->path[k] = id;
      const pq_inode_t *p = &w->schema->n[w->schema->n[id].pub.parent];
      for (size_t j = 0; j < p->pub.nchildren; j++)
        if (p->kids[j] == id)
          col->cix[k] = (int)j;
    }
  }
  if (w->o.codec == PQ_CODEC_ZSTD && !(w->zc = zstd_cctx(w->o.zstd_level)))
    goto nomem;
  *out = w;
  static const char magic[4] = {'P', 'A', 'R', '1'};
  if ((rc = emit(w, magic, 4, err))) {
    pq_writer_free(w);
    *out = NULL;
    return rc;
  }
  return ED_OK;
nomem:
  rc = oom(err);
fail:
  pq_writer_free(w);
  return rc;
}

ed_code_t pq_writer_new_fd(const pq_schema_t *schema, const pq_writer_opts_t *opts, int fd,
                           pq_writer_t **out, ed_err_t *err) {
  /* The fd lives inside the writer so the sink context outlives the call. */
  pq_writer_t *w = NULL;
  int *slot = malloc(sizeof(int));
  if (!slot)
    return oom(err);
  *slot = fd;
  ed_code_t rc = pq_writer_new(schema, opts, fd_sink, slot, &w, err);
  if (rc) {
    free(slot);
    return rc;
  }
  w->fd = fd; /* marks ctx as owned */
  *out = w;
  return ED_OK;
}

static void col_fini(wcol_t *c) {
  free(c->def);
  free(c->rep);
  ed_buf_fini(&c->plain);
  free(c->idx);
  free(c->ht);
  free(c->doff);
  ed_buf_fini(&c->dbuf);
  ed_buf_fini(&c->chunk);
  st_fini(&c->cst);
  st_fini(&c->fst);
}

void pq_writer_free(pq_writer_t *w) {
  if (!w)
    return;
  for (size_t i = 0; i < w->ncols; i++)
    col_fini(&w->cols[i]);
  free(w->cols);
  for (size_t r = 0; r < w->nrgs; r++) {
    for (size_t i = 0; w->rgs[r].cols && i < w->ncols; i++)
      st_fini(&w->rgs[r].cols[i].st);
    free(w->rgs[r].cols);
  }
  free(w->rgs);
  for (size_t i = 0; i < 2 * w->nkv; i++)
    free(w->kv[i]);
  free(w->kv);
  ed_buf_fini(&w->body);
  ed_buf_fini(&w->cbuf);
  ed_buf_fini(&w->hbuf);
  ZSTD_freeCCtx(w->zc);
  if (w->fd >= 0)
    free(w->ctx);
  free(w->created_by);
  pq_schema_free(w->schema);
  free(w);
}

ed_code_t pq_writer_add_kv(pq_writer_t *w, const char *key, const char *value, ed_err_t *err) {
  if (w->closed)
    return ed_err_set(err, ED_E_INVALID, "parquet writer: already closed");
  char **kv = realloc(w->kv, (w->nkv + 1) * 2 * sizeof *kv);
  if (!kv)
    return oom(err);
  w->kv = kv;
  kv[2 * w->nkv] = strdup(key);
  kv[2 * w->nkv + 1] = value ? strdup(value) : NULL;
  w->nkv++;
  if (!kv[2 * w->nkv - 2] || (value && !kv[2 * w->nkv - 1]))
    return oom(err);
  return ED_OK;
}

/* ---- statistics ---- */

/* false when out of memory (the statistics would be wrong: the caller fails). */
static bool st_set(ed_buf_t *b, const char *p, size_t n) {
  ed_buf_reset(b);
  return ed_buf_reserve(b, n) == ED_OK && ed_buf_append(b, p, n) == ED_OK;
}

static bool st_bytes(st_t *s, const char *p, size_t n) {
  if (!s->has) {
    if (!st_set(&s->mnb, p, n) || !st_set(&s->mxb, p, n))
      return false;
    s->has = true;
    return true;
  }
  /* Unsigned byte-wise order (TypeDefinedOrder for BYTE_ARRAY). */
  size_t m = n < s->mnb.len ? n : s->mnb.len;
  int c = m ? memcmp(p, s->mnb.data, m) : 0;
  if ((c < 0 || (c == 0 && n < s->mnb.len)) && !st_set(&s->mnb, p, n))
    return false;
  m = n < s->mxb.len ? n : s->mxb.len;
  c = m ? memcmp(p, s->mxb.data, m) : 0;
  if ((c > 0 || (c == 0 && n > s->mxb.len)) && !st_set(&s->mxb, p, n))
    return false;
  return true;
}

#define ST_NUM(s, field, v)                                                                        \
  do {                                                                                             \
    if (!(s)->has) {                                                                               \
      (s)->mn.field = (s)->mx.field = (v);                                                         \
      (s)->has = true;                                                                             \
    } else {                                                                                       \
      if ((v) < (s)->mn.field)                                                                     \
        (s)->mn.field = (v);                                                                       \
      if ((v) > (s)->mx.field)                                                                     \
        (s)->mx.field = (v);                                                                       \
    }                                                                                              \
  } while (0)

static bool st_merge(st_t *d, const st_t *s, pq_phys_t ph) {
  d->nulls += s->nulls;
  d->nvals += s->nvals;
  if (!s->has)
    return true;
  switch (ph) {
  case PQ_P_BOOLEAN:
    ST_NUM(d, b, s->mn.b);
    ST_NUM(d, b, s->mx.b);
    break;
  case PQ_P_INT32:
    ST_NUM(d, i32, s->mn.i32);
    ST_NUM(d, i32, s->mx.i32);
    break;
  case PQ_P_INT64:
    ST_NUM(d, i64, s->mn.i64);
    ST_NUM(d, i64, s->mx.i64);
    break;
  case PQ_P_FLOAT:
    ST_NUM(d, f, s->mn.f);
    ST_NUM(d, f, s->mx.f);
    break;
  case PQ_P_DOUBLE:
    ST_NUM(d, d, s->mn.d);
    ST_NUM(d, d, s->mx.d);
    break;
  default:
    return st_bytes(d, s->mnb.data ? s->mnb.data : "", s->mnb.len) &&
           st_bytes(d, s->mxb.data ? s->mxb.data : "", s->mxb.len);
  }
  return true;
}

static ed_code_t st_copy(st_t *d, const st_t *s) {
  *d = *s;
  memset(&d->mnb, 0, sizeof d->mnb);
  memset(&d->mxb, 0, sizeof d->mxb);
  if (s->mnb.len && ed_buf_append(&d->mnb, s->mnb.data, s->mnb.len))
    return ED_E_NOMEM;
  if (s->mxb.len && ed_buf_append(&d->mxb, s->mxb.data, s->mxb.len))
    return ED_E_NOMEM;
  if (s->has && !d->mnb.data && ed_buf_reserve(&d->mnb, 1))
    return ED_E_NOMEM;
  if (s->has && !d->mxb.data && ed_buf_reserve(&d->mxb, 1))
    return ED_E_NOMEM;
  return ED_OK;
}

/* ---- dictionary ---- */

static inline uint64_t mix64(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}
static inline uint64_t load64(const char *p) {
  uint64_t x;
  memcpy(&x, p, 8);
  return x;
}
static inline uint32_t load32(const char *p) {
  uint32_t x;
  memcpy(&x, p, 4);
  return x;
}
/* Short strings dominate (ids, codes, enums): their tail is read with
 * overlapping fixed-size loads instead of a variable-length copy. */
static inline uint64_t hash_bytes(const char *p, size_t n) {
  uint64_t h = 0x9E3779B97F4A7C15ULL ^ n;
  if (n >= 8) {
    const char *end = p + n;
    while (end - p > 8) {
      h = (h ^ load64(p)) * 0x100000001b3ULL;
      h = (h << 31) | (h >> 33);
      p += 8;
    }
    return mix64(h ^ load64(end - 8));
  }
  uint64_t x;
  if (n >= 4)
    x = (uint64_t)load32(p) << 32 | load32(p + n - 4);
  else if (n > 0)
    x = (uint64_t)(uint8_t)p[0] << 16 | (uint64_t)(uint8_t)p[n / 2] << 8 | (uint8_t)p[n - 1];
  else
    x = 0;
  return mix64(h ^ x);
}
static inline bool bytes_eq(const char *a, const char *b, size_t n) {
  if (n >= 8 && n <= 16)
    return load64(a) == load64(b) && load64(a + n - 8) == load64(b + n - 8);
  if (n >= 4 && n < 8)
    return load32(a) == load32(b) && load32(a + n - 4) == load32(b + n - 4);
  if (n < 4) /* first, middle and last byte cover all of 0-3 bytes */
    return n == 0 || (a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1]);
  return memcmp(a, b, n) == 0;
}

/* Open addressing with the key inline (the value's bits, or for byte arrays
 * its 64-bit hash) so a probe touches one cache line, not two. */
static bool dict_grow(wcol_t *c) {
  size_t ncap = c->htcap ? c->htcap * 2 : 1024;
  hslot_t *nt = calloc(ncap, sizeof *nt);
  if (!nt)
    return false;
  bool bytes = c->phys == PQ_P_BYTE_ARRAY;
  for (size_t i = 0; i < c->htcap; i++) {
    hslot_t e = c->ht[i];
    if (!e.idx1)
      continue;
    size_t j = (bytes ? e.key : mix64(e.key)) & (ncap - 1);
    while (nt[j].idx1)
      j = (j + 1) & (ncap - 1);
    nt[j] = e;
  }
  free(c->ht);
  c->ht = nt;
  c->htcap = ncap;
  return true;
}

static bool dv_reserve(wcol_t *c) {
  if (c->dcount < c->dvcap)
    return true;
  size_t n = c->dvcap ? c->dvcap * 2 : 256;
  uint32_t *d = realloc(c->doff, n * sizeof *d);
  if (!d)
    return false;
  c->doff = d;
  c->dvcap = n;
  return true;
}

/* Index of the value in the dictionary, inserting it; -1 on OOM. *fresh is
 * set when inserted (statistics are updated only then). */
static inline int64_t dict_fixed(wcol_t *c, uint64_t key, size_t width, bool *fresh) {
  if ((c->dcount + 1) * 2 > c->htcap && !dict_grow(c))
    return -1;
  size_t mask = c->htcap - 1, j = mix64(key) & mask;
  hslot_t *ht = c->ht;
  for (;;) {
    if (!ht[j].idx1)
      break;
    if (ht[j].key == key) {
      *fresh = false;
      return ht[j].idx1 - 1;
    }
    j = (j + 1) & mask;
  }
  if (ed_buf_append(&c->dbuf, &key, width))
    return -1;
  ht[j].key = key;
  ht[j].idx1 = (uint32_t)++c->dcount;
  *fresh = true;
  return (int64_t)c->dcount - 1;
}

static inline int64_t dict_bytes(wcol_t *c, const char *p, uint32_t n, bool *fresh) {
  if ((c->dcount + 1) * 2 > c->htcap && !dict_grow(c))
    return -1;
  uint64_t h = hash_bytes(p, n);
  size_t mask = c->htcap - 1, j = h & mask;
  hslot_t *ht = c->ht;
  for (;;) {
    uint32_t e = ht[j].idx1;
    if (!e)
      break;
    if (ht[j].key == h) {
      const char *q = c->dbuf.data + c->doff[e - 1];
      uint32_t len;
      memcpy(&len, q, 4);
      if (len == n && bytes_eq(q + 4, p, n)) {
        *fresh = false;
        return e - 1;
      }
    }
    j = (j + 1) & mask;
  }
  if (!dv_reserve(c))
    return -1;
  c->doff[c->dcount] = (uint32_t)c->dbuf.len;
  if (ed_buf_reserve(&c->dbuf, 4 + (size_t)n))
    return -1;
  memcpy(c->dbuf.data + c->dbuf.len, &n, 4);
  memcpy(c->dbuf.data + c->dbuf.len + 4, p, n);
  c->dbuf.len += 4 + (size_t)n;
  ht[j].key = h;
  ht[j].idx1 = (uint32_t)++c->dcount;
  *fresh = true;
  return (int64_t)c->dcount - 1;
}

/* ---- values and levels ---- */

static inline bool lv_reserve(wcol_t *c, size_t extra) {
  if (c->n + extra <= c->lcap)
    return true;
  size_t n = c->lcap ? c->lcap : 1024;
  while (n < c->n + extra)
    n *= 2;
  if (c->max_def) {
    uint16_t *d = realloc(c->def, n * sizeof *d);
    if (!d)
      return false;
    c->def = d;
  }
  if (c->max_rep) {
    uint16_t *r = realloc(c->rep, n * sizeof *r);
    if (!r)
      return false;
    c->rep = r;
  }
  c->lcap = n;
  return true;
}
static inline bool idx_push(wcol_t *c, uint32_t v) {
  if (c->nidx == c->icap) {
    size_t n = c->icap ? c->icap * 2 : 1024;
    uint32_t *p = realloc(c->idx, n * sizeof *p);
    if (!p)
      return false;
    c->idx = p;
    c->icap = n;
  }
  c->idx[c->nidx++] = v;
  return true;
}

/* Appends the value of row i of leaf column v. */
static inline bool put_value(pq_writer_t *w, wcol_t *c, const pq_col_t *v, size_t i) {
  bool fresh = true;
  int64_t k;
  st_t *s = &c->cst;
  if (c->phys == PQ_P_BOOLEAN) {
    uint8_t b = v->v.b8[i] ? 1 : 0;
    ST_NUM(s, b, b);
    return ed_buf_append(&c->plain, &b, 1) == ED_OK;
  }
  bool dict = c->page_dict;
  switch (c->phys) {
  case PQ_P_INT32: {
    int32_t x = v->v.i32[i];
    if (dict) {
      if ((k = dict_fixed(c, (uint32_t)x, 4, &fresh)) < 0 || !idx_push(c, (uint32_t)k))
        return false;
    } else if (ed_buf_append(&c->plain, &x, 4))
      return false;
    if (fresh)
      ST_NUM(s, i32, x);
    return true;
  }
  case PQ_P_INT64: {
    int64_t x = v->v.i64[i];
    if (dict) {
      if ((k = dict_fixed(c, (uint64_t)x, 8, &fresh)) < 0 || !idx_push(c, (uint32_t)k))
        return false;
    } else if (ed_buf_append(&c->plain, &x, 8))
      return false;
    if (fresh)
      ST_NUM(s, i64, x);
    return true;
  }
  case PQ_P_FLOAT: {
    float x = v->v.f32[i];
    uint32_t bits;
    memcpy(&bits, &x, 4);
    if (dict) {
      if ((k = dict_fixed(c, bits, 4, &fresh)) < 0 || !idx_push(c, (uint32_t)k))
        return false;
    } else if (ed_buf_append(&c->plain, &x, 4))
      return false;
    if (fresh && !isnan(x))
      ST_NUM(s, f, x);
    return true;
  }
  case PQ_P_DOUBLE: {
    double x = v->v.f64[i];
    uint64_t bits;
    memcpy(&bits, &x, 8);
    if (dict) {
      if ((k = dict_fixed(c, bits, 8, &fresh)) < 0 || !idx_push(c, (uint32_t)k))
        return false;
    } else if (ed_buf_append(&c->plain, &x, 8))
      return false;
    if (fresh && !isnan(x))
      ST_NUM(s, d, x);
    return true;
  }
  default: {
    uint32_t a = v->off[i], b = v->off[i + 1];
    const char *p = v->data + a;
    uint32_t n = b - a;
    if (dict) {
      if ((k = dict_bytes(c, p, n, &fresh)) < 0 || !idx_push(c, (uint32_t)k))
        return false;
    } else if (ed_buf_append(&c->plain, &n, 4) || ed_buf_append(&c->plain, p, n))
      return false;
    return !fresh || st_bytes(s, p, n);
  }
  }
}

/* Shreds rows [r0, r1) of column v at step k of c's path (delta-parquet.md
 * D.7): d and r are the levels so far; rep for later elements of a repeated
 * node is its repetition depth. */
static bool shred(pq_writer_t *w, wcol_t *c, int k, const pq_col_t *v, size_t i, int r, int d);

static inline bool entry(wcol_t *c, int r, int d) {
  if (!lv_reserve(c, 1))
    return false;
  if (c->max_def)
    c->def[c->n] = (uint16_t)d;
  if (c->max_rep)
    c->rep[c->n] = (uint16_t)r;
  c->n++;
  if (d < c->max_def)
    c->cst.nulls++;
  return true;
}

static bool shred(pq_writer_t *w, wcol_t *c, int k, const pq_col_t *v, size_t i, int r, int d) {
  const pq_inode_t *n = &w->schema->n[c->path[k]];
  if (n->pub.rep == PQ_OPTIONAL) {
    if (v->valid && !v->valid[i])
      return entry(c, r, d);
    d++;
  } else if (v->valid && !v->valid[i]) {
    w->bad_null = c->path[k];
    w->bad_row = i;
    return false;
  }
  bool is_leaf = k == c->depth - 1;
  if (n->pub.rep == PQ_REPEATED || n->pub.type == PQ_T_LIST || n->pub.type == PQ_T_MAP) {
    int rr = n->rep_here + (n->pub.rep == PQ_REPEATED ? 0 : 1);
    uint32_t a = v->off[i], b = v->off[i + 1];
    if (a == b)
      return entry(c, r, d);
    const pq_col_t *ch;
    int nk;
    if (n->pub.rep == PQ_REPEATED && n->pub.type != PQ_T_LIST && n->pub.type != PQ_T_MAP) {
      /* Bare repeated: children[0] holds the elements, of this node's type. */
      ch = &v->children[0];
      for (uint32_t j = a; j < b; j++) {
        int rj = j == a ? r : rr;
        if (is_leaf) {
          if (!entry(c, rj, d + 1) || !put_value(w, c, ch, j))
            return false;
        } else {
          const pq_inode_t *kid = &w->schema->n[c->path[k + 1]];
          (void)kid;
          if (!shred(w, c, k + 1, &ch->children[c->cix[k + 1]], j, rj, d + 1))
            return false;
        }
      }
      return true;
    }
    nk = k + 1;
    ch = &v->children[c->cix[nk]];
    int dd = d + 1;
    for (uint32_t j = a; j < b; j++)
      if (!shred(w, c, nk, ch, j, j == a ? r : rr, dd))
        return false;
    return true;
  }
  if (is_leaf)
    return entry(c, r, d) && put_value(w, c, v, i);
  return shred(w, c, k + 1, &v->children[c->cix[k + 1]], i, r, d);
}

/* ---- pages ---- */

/* Bytes of one PLAIN value of a fixed-width physical type. */
static size_t phys_width(pq_phys_t p) {
  return p == PQ_P_INT64 || p == PQ_P_DOUBLE ? 8 : p == PQ_P_BOOLEAN ? 1 : 4;
}

static int bitwidth(uint64_t maxv) {
  int b = 0;
  while (maxv)
    b++, maxv >>= 1;
  return b;
}

static ed_code_t compress(pq_writer_t *w, const void *src, size_t n, const void **out, size_t *on,
                          ed_err_t *err) {
  if (w->o.codec == PQ_CODEC_UNCOMPRESSED) {
    *out = src;
    *on = n;
    return ED_OK;
  }
  ed_buf_reset(&w->cbuf);
  if (w->o.codec == PQ_CODEC_ZSTD) {
    size_t cap = ZSTD_compressBound(n);
    if (ed_buf_reserve(&w->cbuf, cap))
      return oom(err);
    size_t k = ZSTD_compress2(w->zc, w->cbuf.data, cap, src, n);
    if (ZSTD_isError(k))
      return ed_err_set(err, ED_E_INTERNAL, "parquet writer: zstd: %s", ZSTD_getErrorName(k));
    w->cbuf.len = k;
  } else {
    size_t cap = snappy_max_compressed_length(n);
    if (ed_buf_reserve(&w->cbuf, cap))
      return oom(err);
    size_t k = cap;
    if (snappy_compress(src, n, w->cbuf.data, &k) != SNAPPY_OK)
      return ed_err_set(err, ED_E_INTERNAL, "parquet writer: snappy failed");
    w->cbuf.len = k;
  }
  *out = w->cbuf.data;
  *on = w->cbuf.len;
  return ED_OK;
}

/* Header + compressed body appended to dst. */
static ed_code_t put_page(pq_writer_t *w, ed_buf_t *dst, int type, const void *body, size_t n,
                          int32_t nvals, int enc, int64_t *unc, int64_t *comp, ed_err_t *err) {
  if (n > INT32_MAX)
    return ed_err_set(err, ED_E_TOO_LARGE, "parquet writer: page over 2 GiB");
  const void *cp = NULL;
  size_t cn = 0;
  ed_code_t rc = compress(w, body, n, &cp, &cn, err);
  if (rc)
    return rc;
  ed_buf_reset(&w->hbuf);
  pq_tw_t t;
  pq_tw_init(&t, &w->hbuf);
  pq_tw_begin(&t);
  pq_tw_i32(&t, PQF_PH_TYPE, type);
  pq_tw_i32(&t, PQF_PH_UNCOMPRESSED_SIZE, (int32_t)n);
  pq_tw_i32(&t, PQF_PH_COMPRESSED_SIZE, (int32_t)cn);
  if (type == PQ_PAGE_DICTIONARY) {
    pq_tw_struct(&t, PQF_PH_DICT_PAGE);
    pq_tw_i32(&t, PQF_DICT_NUM_VALUES, nvals);
    pq_tw_i32(&t, PQF_DICT_ENCODING, PQ_ENC_PLAIN);
    pq_tw_end(&t);
  } else {
    pq_tw_struct(&t, PQF_PH_DATA_PAGE);
    pq_tw_i32(&t, PQF_DP_NUM_VALUES, nvals);
    pq_tw_i32(&t, PQF_DP_ENCODING, enc);
    pq_tw_i32(&t, PQF_DP_DEF_ENCODING, PQ_ENC_RLE);
    pq_tw_i32(&t, PQF_DP_REP_ENCODING, PQ_ENC_RLE);
    pq_tw_end(&t);
  }
  pq_tw_end(&t);
  if (t.oom || ed_buf_append(dst, w->hbuf.data, w->hbuf.len) || ed_buf_append(dst, cp, cn))
    return oom(err);
  *unc += (int64_t)(w->hbuf.len + n);
  *comp += (int64_t)(w->hbuf.len + cn);
  return ED_OK;
}

static ed_code_t levels(pq_writer_t *w, const uint16_t *lv, size_t n, int maxl, ed_err_t *err) {
  size_t at = w->body.len;
  uint32_t z = 0;
  if (ed_buf_append(&w->body, &z, 4))
    return oom(err);
  if (pq_rle_encode16(&w->body, lv, n, bitwidth((uint64_t)maxl)))
    return oom(err);
  uint32_t len = (uint32_t)(w->body.len - at - 4);
  memcpy(w->body.data + at, &len, 4);
  return ED_OK;
}

static ed_code_t finish_page(pq_writer_t *w, wcol_t *c, ed_err_t *err) {
  if (c->n == 0)
    return ED_OK;
  ed_buf_reset(&w->body);
  ed_code_t rc;
  if (c->max_rep && (rc = levels(w, c->rep, c->n, c->max_rep, err)))
    return rc;
  if (c->max_def && (rc = levels(w, c->def, c->n, c->max_def, err)))
    return rc;
  int enc = PQ_ENC_PLAIN;
  if (c->phys == PQ_P_BOOLEAN) {
    size_t nb = c->plain.len, bytes = (nb + 7) / 8;
    if (ed_buf_reserve(&w->body, bytes))
      return oom(err);
    uint8_t *o = (uint8_t *)w->body.data + w->body.len;
    memset(o, 0, bytes);
    const uint8_t *in = (const uint8_t *)c->plain.data;
    for (size_t i = 0; i < nb; i++)
      o[i >> 3] |= (uint8_t)(in[i] << (i & 7));
    w->body.len += bytes;
  } else if (c->page_dict && c->dcount > 0) {
    enc = PQ_ENC_RLE_DICTIONARY;
    int bw = bitwidth(c->dcount - 1);
    if (bw == 0)
      bw = 1;
    if (ed_buf_putc(&w->body, (char)bw) || pq_rle_encode32(&w->body, c->idx, c->nidx, bw))
      return oom(err);
    c->dict_used = true;
  } else if (c->plain.len && ed_buf_append(&w->body, c->plain.data, c->plain.len))
    return oom(err);
  if (c->n > INT32_MAX)
    return ed_err_set(err, ED_E_TOO_LARGE, "parquet writer: page too long");
  if ((rc = put_page(w, &c->chunk, PQ_PAGE_DATA, w->body.data, w->body.len, (int32_t)c->n, enc,
                     &c->unc, &c->comp, err)))
    return rc;
  c->enc |= 1u << enc | 1u << PQ_ENC_RLE;
  c->num_values += (int64_t)c->n;
  c->n = 0;
  c->nidx = 0;
  ed_buf_reset(&c->plain);
  c->page_dict = use_dict(w, c);
  return ED_OK;
}

static size_t page_estimate(const wcol_t *c) {
  if (c->page_dict)
    return c->nidx * (size_t)(bitwidth(c->dcount) + 1) / 8 + c->n / 4;
  return c->plain.len + c->n / 4;
}

/* ---- row groups ---- */

static void col_reset_chunk(wcol_t *c, const pq_writer_t *w) {
  ed_buf_reset(&c->chunk);
  c->num_values = c->unc = c->comp = 0;
  c->enc = 0;
  st_reset(&c->cst);
  c->dcount = 0;
  c->dict_failed = false;
  c->dict_used = false;
  c->tried = false;
  c->trial_rows = c->trial_vals = c->trial_plain = 0;
  ed_buf_reset(&c->dbuf);
  if (c->ht)
    memset(c->ht, 0, c->htcap * sizeof *c->ht);
  c->page_dict = use_dict(w, c);
}

ed_code_t pq_writer_flush(pq_writer_t *w, ed_err_t *err) {
  if (w->failed)
    return ed_err_set(err, ED_E_INVALID, "parquet writer: failed earlier");
  if (w->rg_rows == 0)
    return ED_OK;
  if (w->nrgs == w->rgcap) {
    size_t n = w->rgcap ? w->rgcap * 2 : 8;
    rgmeta_t *r = realloc(w->rgs, n * sizeof *r);
    if (!r)
      return oom(err);
    w->rgs = r;
    w->rgcap = n;
  }
  rgmeta_t *rg = &w->rgs[w->nrgs];
  memset(rg, 0, sizeof *rg);
  rg->cols = calloc(w->ncols, sizeof *rg->cols);
  if (!rg->cols)
    return oom(err);
  w->nrgs++;
  rg->nrows = w->rg_rows;
  rg->file_off = (int64_t)w->off;
  ed_code_t rc;
  for (size_t i = 0; i < w->ncols; i++) {
    wcol_t *c = &w->cols[i];
    colmeta_t *m = &rg->cols[i];
    if ((rc = finish_page(w, c, err)))
      goto fail;
    m->dict_off = -1;
    if (c->dict_used) {
      ed_buf_t dp = ED_BUF_INIT;
      int64_t u = 0, k = 0;
      rc = put_page(w, &dp, PQ_PAGE_DICTIONARY, c->dbuf.data, c->dbuf.len, (int32_t)c->dcount,
                    PQ_ENC_PLAIN, &u, &k, err);
      if (!rc) {
        m->dict_off = (int64_t)w->off;
        rc = emit(w, dp.data, dp.len, err);
      }
      ed_buf_fini(&dp);
      if (rc)
        goto fail;
      c->unc += u;
      c->comp += k;
      c->enc |= 1u << PQ_ENC_PLAIN;
    }
    m->data_off = (int64_t)w->off;
    if ((rc = emit(w, c->chunk.data, c->chunk.len, err)))
      goto fail;
    m->num_values = c->num_values;
    m->unc = c->unc;
    m->comp = c->comp;
    m->enc = c->enc;
    c->cst.nvals = c->num_values;
    if (st_copy(&m->st, &c->cst)) {
      rc = oom(err);
      goto fail;
    }
    if (!st_merge(&c->fst, &c->cst, c->phys)) {
      rc = oom(err);
      goto fail;
    }
    rg->total_byte += c->unc;
    rg->total_comp += c->comp;
    col_reset_chunk(c, w);
  }
  w->rg_rows = 0;
  return ED_OK;
fail:
  w->failed = true;
  return rc;
}

static size_t rg_estimate(const pq_writer_t *w) {
  size_t s = 0;
  for (size_t i = 0; i < w->ncols; i++)
    s += w->cols[i].chunk.len + page_estimate(&w->cols[i]) + w->cols[i].dbuf.len;
  return s;
}

/* Checks REQUIRED fields for nulls and child shapes the shredder relies on. */
static ed_code_t check_col(const pq_writer_t *w, int node, const pq_col_t *v, size_t r0, size_t r1,
                           ed_err_t *err) {
  const pq_inode_t *n = &w->schema->n[node];
  /* Nulls in REQUIRED fields are found while shredding: under a null parent
   * they are allowed (Arrow leaves such child slots undefined). */
  if (v->len < r1)
    return ed_err_set(err, ED_E_SCHEMA, "parquet writer: column '%s' has %zu rows, expected %zu",
                      n->name, v->len, r1);
  bool rep = n->pub.rep == PQ_REPEATED || n->pub.type == PQ_T_LIST || n->pub.type == PQ_T_MAP;
  bool leafy = n->pub.type != PQ_T_STRUCT && n->pub.type != PQ_T_LIST && n->pub.type != PQ_T_MAP;
  if ((rep || n->pub.phys == PQ_P_BYTE_ARRAY) && !v->off)
    return ed_err_set(err, ED_E_SCHEMA, "parquet writer: column '%s' has no offsets", n->name);
  if (leafy && !rep) {
    bool ok = n->pub.phys == PQ_P_BYTE_ARRAY ? (v->data || r1 == r0 || v->off[r1] == v->off[r0])
                                             : v->v.i32 != NULL || r1 == r0;
    if (!ok)
      return ed_err_set(err, ED_E_SCHEMA, "parquet writer: column '%s' has no values", n->name);
    if (n->pub.phys == PQ_P_BYTE_ARRAY)
      for (size_t i = r0; i < r1; i++)
        if (v->off[i + 1] < v->off[i])
          return ed_err_set(err, ED_E_SCHEMA,
                            "parquet writer: column '%s': offsets decrease at row %zu", n->name, i);
    return ED_OK;
  }
  size_t cr0 = r0, cr1 = r1;
  if (rep) {
    for (size_t i = r0; i < r1; i++)
      if (v->off[i + 1] < v->off[i])
        return ed_err_set(err, ED_E_SCHEMA,
                          "parquet writer: column '%s': offsets decrease at row %zu", n->name, i);
    cr0 = r1 > r0 ? v->off[r0] : 0;
    cr1 = r1 > r0 ? v->off[r1] : 0;
  }
  bool bare = n->pub.rep == PQ_REPEATED && n->pub.type != PQ_T_LIST && n->pub.type != PQ_T_MAP;
  size_t want = bare                         ? 1
                : n->pub.type == PQ_T_STRUCT ? n->pub.nchildren
                : n->pub.type == PQ_T_MAP    ? 2
                                             : 1;
  if (v->nchildren < want || !v->children)
    return ed_err_set(err, ED_E_SCHEMA,
                      "parquet writer: column '%s' has %zu children, expected %zu", n->name,
                      v->nchildren, want);
  if (n->pub.rep == PQ_REPEATED && n->pub.type != PQ_T_LIST && n->pub.type != PQ_T_MAP) {
    /* Bare repeated: the elements column is of this node's own shape. */
    const pq_col_t *e = &v->children[0];
    if (e->len < cr1)
      return ed_err_set(err, ED_E_SCHEMA, "parquet writer: column '%s' elements too short",
                        n->name);
    if (n->pub.type == PQ_T_STRUCT) {
      if (e->nchildren < n->pub.nchildren)
        return ed_err_set(err, ED_E_SCHEMA, "parquet writer: column '%s' elements lack fields",
                          n->name);
      for (size_t k = 0; k < n->pub.nchildren; k++) {
        ed_code_t rc = check_col(w, n->kids[k], &e->children[k], cr0, cr1, err);
        if (rc)
          return rc;
      }
    } else if (n->pub.phys == PQ_P_BYTE_ARRAY && !e->off)
      return ed_err_set(err, ED_E_SCHEMA, "parquet writer: column '%s' elements lack offsets",
                        n->name);
    return ED_OK;
  }
  for (size_t k = 0; k < want; k++) {
    ed_code_t rc = check_col(w, n->kids[k], &v->children[k], cr0, cr1, err);
    if (rc)
      return rc;
  }
  return ED_OK;
}

/* The common case, a top-level leaf, without per-value dispatch: buffers are
 * reserved once per slice and the dictionary probe is inlined. Same output
 * as put_value. */
#define FLAT_LOOP(BODY)                                                                            \
  for (size_t i = r0; i < r1; i++) {                                                               \
    if (v->valid && !v->valid[i]) {                                                                \
      if (!optional) {                                                                             \
        w->bad_null = c->path[0];                                                                  \
        w->bad_row = i;                                                                            \
        return false;                                                                              \
      }                                                                                            \
      c->def[c->n++] = 0;                                                                          \
      s->nulls++;                                                                                  \
      continue;                                                                                    \
    }                                                                                              \
    if (optional)                                                                                  \
      c->def[c->n] = 1;                                                                            \
    c->n++;                                                                                        \
    BODY                                                                                           \
  }

#define FLAT_FIXED(T, FIELD, STAT, NANCHECK)                                                       \
  do {                                                                                             \
    const T *src = v->v.FIELD;                                                                     \
    if (c->page_dict) {                                                                            \
      FLAT_LOOP({                                                                                  \
        T x = src[i];                                                                              \
        uint64_t key = 0;                                                                          \
        memcpy(&key, &x, sizeof x);                                                                \
        bool fresh;                                                                                \
        int64_t k = dict_fixed(c, key, sizeof x, &fresh);                                          \
        if (k < 0)                                                                                 \
          return false;                                                                            \
        c->idx[c->nidx++] = (uint32_t)k;                                                           \
        if (fresh && !(NANCHECK))                                                                  \
          ST_NUM(s, STAT, x);                                                                      \
      })                                                                                           \
    } else {                                                                                       \
      if (ed_buf_reserve(&c->plain, cnt * sizeof(T)))                                              \
        return false;                                                                              \
      char *o = c->plain.data + c->plain.len;                                                      \
      FLAT_LOOP({                                                                                  \
        T x = src[i];                                                                              \
        memcpy(o, &x, sizeof x);                                                                   \
        o += sizeof x;                                                                             \
        if (!(NANCHECK))                                                                           \
          ST_NUM(s, STAT, x);                                                                      \
      })                                                                                           \
      c->plain.len = (size_t)(o - c->plain.data);                                                  \
    }                                                                                              \
  } while (0)

static bool flat_fast(pq_writer_t *w, wcol_t *c, const pq_col_t *v, size_t r0, size_t r1,
                      bool optional) {
  size_t cnt = r1 - r0;
  st_t *s = &c->cst;
  if (c->page_dict && c->nidx + cnt > c->icap) {
    size_t n = c->icap ? c->icap : 1024;
    while (n < c->nidx + cnt)
      n *= 2;
    uint32_t *p = realloc(c->idx, n * sizeof *p);
    if (!p)
      return false;
    c->idx = p;
    c->icap = n;
  }
  switch (c->phys) {
  case PQ_P_INT32:
    FLAT_FIXED(int32_t, i32, i32, false);
    return true;
  case PQ_P_INT64:
    FLAT_FIXED(int64_t, i64, i64, false);
    return true;
  case PQ_P_FLOAT:
    FLAT_FIXED(float, f32, f, isnan(x));
    return true;
  case PQ_P_DOUBLE:
    FLAT_FIXED(double, f64, d, isnan(x));
    return true;
  case PQ_P_BYTE_ARRAY: {
    const uint32_t *off = v->off;
    const char *data = v->data;
    if (c->page_dict) {
      FLAT_LOOP({
        uint32_t len = off[i + 1] - off[i];
        bool fresh;
        int64_t k = dict_bytes(c, data + off[i], len, &fresh);
        if (k < 0)
          return false;
        c->idx[c->nidx++] = (uint32_t)k;
        if (fresh && !st_bytes(s, data + off[i], len))
          return false;
      })
    } else {
      if (ed_buf_reserve(&c->plain, cnt * 4 + (off[r1] - off[r0])))
        return false;
      char *o = c->plain.data + c->plain.len;
      FLAT_LOOP({
        uint32_t len = off[i + 1] - off[i];
        memcpy(o, &len, 4);
        memcpy(o + 4, data + off[i], len);
        o += 4 + len;
        if (!st_bytes(s, data + off[i], len))
          return false;
      })
      c->plain.len = (size_t)(o - c->plain.data);
    }
    return true;
  }
  default:
    return false;
  }
}

/* The rest of the chunk is PLAIN: the current page keeps its indices (D.6). */
static ed_code_t dict_fall_back(pq_writer_t *w, wcol_t *c, ed_err_t *err) {
  ed_code_t rc = finish_page(w, c, err);
  if (rc)
    return rc;
  c->dict_failed = true;
  c->page_dict = false;
  return ED_OK;
}

/* After a run of rows: fall back from a dictionary grown too large, or close
 * a full page. Pages therefore end on row boundaries. */
static ed_code_t after_rows(pq_writer_t *w, wcol_t *c, ed_err_t *err) {
  if (c->page_dict && c->dbuf.len > w->o.dict_max_bytes)
    return dict_fall_back(w, c, err); /* the dictionary grew too large */
  return page_estimate(c) >= w->o.page_bytes ? finish_page(w, c, err) : ED_OK;
}

/* The end of a flat column's trial. Unique values (ids, offsets, amounts,
 * times) make a dictionary as large as the values plus the indices, and
 * every later value costs a hash probe for nothing; parquet-mr makes the
 * same call (dictionary plus indices not smaller than PLAIN) after its first
 * page. */
static ed_code_t dict_trial_end(pq_writer_t *w, wcol_t *c, ed_err_t *err) {
  c->tried = true;
  size_t idx_bytes = c->trial_vals * (size_t)bitwidth(c->dcount) / 8;
  return c->dbuf.len + idx_bytes < c->trial_plain ? ED_OK : dict_fall_back(w, c, err);
}

/* Rows [r0, r1) of one flat leaf. */
static bool flat_rows(pq_writer_t *w, wcol_t *c, const pq_inode_t *n, const pq_col_t *top,
                      size_t r0, size_t r1) {
  size_t cnt = r1 - r0;
  bool ok = true;
  if (!lv_reserve(c, cnt))
    return false;
  if (c->phys != PQ_P_BOOLEAN)
    return flat_fast(w, c, top, r0, r1, n->pub.rep == PQ_OPTIONAL);
  if (n->pub.rep == PQ_OPTIONAL) {
    for (size_t i = r0; i < r1; i++) {
      bool present = !top->valid || top->valid[i];
      c->def[c->n++] = present;
      if (present)
        ok &= put_value(w, c, top, i);
      else
        c->cst.nulls++;
    }
    return ok;
  }
  for (size_t i = r0; i < r1 && ok; i++) {
    if (top->valid && !top->valid[i]) {
      w->bad_null = c->path[0];
      w->bad_row = i;
      return false;
    }
    ok = put_value(w, c, top, i);
  }
  c->n += cnt;
  return ok;
}

static ed_code_t write_slice(pq_writer_t *w, const pq_col_t *cols, size_t r0, size_t r1,
                             ed_err_t *err) {
  for (size_t ci = 0; ci < w->ncols; ci++) {
    wcol_t *c = &w->cols[ci];
    const pq_col_t *top = &cols[c->cix[0]];
    const pq_inode_t *n = &w->schema->n[c->path[0]];
    bool flat = c->depth == 1 && n->pub.rep != PQ_REPEATED;
    for (size_t i = r0; i < r1;) {
      size_t j = r1;
      bool ok = true;
      bool trial = flat && c->page_dict && !c->tried && w->o.dict_trial;
      if (trial && j - i > w->o.dict_trial - c->trial_rows)
        j = i + (w->o.dict_trial - c->trial_rows);
      size_t idx0 = c->nidx;
      if (flat && c->phys == PQ_P_BYTE_ARRAY) {
        /* Long strings: cut the run so a page stays near page_bytes. */
        size_t end = j;
        j = i + 1;
        while (j < end && top->off[j] - top->off[i] < w->o.page_bytes)
          j++;
        ok = flat_rows(w, c, n, top, i, j);
      } else if (flat) {
        ok = flat_rows(w, c, n, top, i, j);
      } else {
        /* Nested rows can be of any size: check the page after each. */
        for (j = i; j < r1 && ok;) {
          ok = shred(w, c, 0, top, j++, 0, 0);
          if (page_estimate(c) >= w->o.page_bytes)
            break;
        }
      }
      if (!ok && w->bad_null >= 0)
        return ed_err_set(err, ED_E_SCHEMA,
                          "parquet writer: column '%s': null in row %zu of REQUIRED field '%s'",
                          c->leaf->pub.path, w->bad_row, w->schema->n[w->bad_null].name);
      if (!ok)
        return oom(err);
      ed_code_t rc = ED_OK;
      if (trial && c->page_dict) {
        size_t vals = c->nidx - idx0;
        c->trial_rows += j - i;
        c->trial_vals += vals;
        /* PLAIN: each value's bytes, a byte array's with its 4-byte length;
         * bytes a caller left under a null row count too (an estimate) */
        c->trial_plain += c->phys == PQ_P_BYTE_ARRAY ? top->off[j] - top->off[i] + 4 * vals
                                                     : vals * phys_width(c->phys);
        if (c->trial_rows >= w->o.dict_trial && (rc = dict_trial_end(w, c, err)))
          return rc;
      }
      rc = after_rows(w, c, err);
      if (rc)
        return rc;
      i = j;
    }
  }
  return ED_OK;
}

ed_code_t pq_writer_write(pq_writer_t *w, const pq_col_t *cols, size_t nrows, ed_err_t *err) {
  if (w->closed)
    return ed_err_set(err, ED_E_INVALID, "parquet writer: already closed");
  if (w->failed)
    return ed_err_set(err, ED_E_INVALID, "parquet writer: failed earlier");
  if (nrows == 0)
    return ED_OK;
  const pq_inode_t *root = &w->schema->n[PQ_ROOT];
  for (size_t k = 0; k < root->pub.nchildren; k++) {
    ed_code_t rc = check_col(w, root->kids[k], &cols[k], 0, nrows, err);
    if (rc)
      return rc;
  }
  for (size_t r0 = 0; r0 < nrows;) {
    size_t r1 = r0 + SLICE_ROWS < nrows ? r0 + SLICE_ROWS : nrows;
    ed_code_t rc = write_slice(w, cols, r0, r1, err);
    if (rc) {
      w->failed = true;
      return rc;
    }
    w->rg_rows += (int64_t)(r1 - r0);
    w->rows += (int64_t)(r1 - r0);
    r0 = r1;
    if (rg_estimate(w) >= w->o.row_group_bytes && (rc = pq_writer_flush(w, err)))
      return rc;
  }
  return ED_OK;
}

ed_code_t pq_writer_close(pq_writer_t *w, ed_err_t *err) {
  if (w->closed)
    return ED_OK;
  ed_code_t rc = pq_writer_flush(w, err);
  if (rc)
    return rc;
  ed_buf_t f = ED_BUF_INIT;
  if (pq_writer_footer(w, &f)) {
    ed_buf_fini(&f);
    return oom(err);
  }
  uint32_t len = (uint32_t)f.len;
  rc = ed_buf_append(&f, &len, 4);
  if (!rc)
    rc = ed_buf_append(&f, "PAR1", 4);
  if (!rc)
    rc = emit(w, f.data, f.len, err);
  else
    rc = oom(err);
  ed_buf_fini(&f);
  if (rc)
    return rc;
  w->closed = true;
  /* Pages are gone: give the memory back, keep the statistics. */
  for (size_t i = 0; i < w->ncols; i++) {
    wcol_t *c = &w->cols[i];
    ed_buf_fini(&c->chunk);
    ed_buf_fini(&c->plain);
    ed_buf_fini(&c->dbuf);
    free(c->ht);
    c->ht = NULL;
    c->htcap = 0;
  }
  return ED_OK;
}

const pq_schema_t *pq_writer_schema(const pq_writer_t *w) { return w->schema; }
int64_t pq_writer_num_rows(const pq_writer_t *w) { return w->rows; }
uint64_t pq_writer_bytes(const pq_writer_t *w) { return w->off; }
size_t pq_writer_num_row_groups(const pq_writer_t *w) { return w->nrgs; }

static ed_code_t stats_out(const wcol_t *c, const st_t *s, pq_stats_t *out) {
  memset(out, 0, sizeof *out);
  out->num_values = s->nvals;
  out->null_count = s->nulls;
  out->has_null_count = true;
  out->has_min_max = s->has;
  if (!s->has)
    return ED_OK;
  switch (c->phys) {
  case PQ_P_BOOLEAN:
    out->min.u.b = s->mn.b;
    out->max.u.b = s->mx.b;
    break;
  case PQ_P_INT32:
    out->min.u.i32 = s->mn.i32;
    out->max.u.i32 = s->mx.i32;
    break;
  case PQ_P_INT64:
    out->min.u.i64 = s->mn.i64;
    out->max.u.i64 = s->mx.i64;
    break;
  case PQ_P_FLOAT:
    out->min.u.f32 = s->mn.f == 0.0f ? -0.0f : s->mn.f;
    out->max.u.f32 = s->mx.f == 0.0f ? 0.0f : s->mx.f;
    break;
  case PQ_P_DOUBLE:
    out->min.u.f64 = s->mn.d == 0.0 ? -0.0 : s->mn.d;
    out->max.u.f64 = s->mx.d == 0.0 ? 0.0 : s->mx.d;
    break;
  default:
    out->min.bytes = (const uint8_t *)s->mnb.data;
    out->min.len = s->mnb.len;
    out->max.bytes = (const uint8_t *)s->mxb.data;
    out->max.len = s->mxb.len;
  }
  return ED_OK;
}

ed_code_t pq_writer_stats(const pq_writer_t *w, size_t leaf, pq_stats_t *out, ed_err_t *err) {
  if (leaf >= w->ncols)
    return ed_err_set(err, ED_E_INVALID, "parquet writer: no leaf %zu (file has %zu)", leaf,
                      w->ncols);
  return stats_out(&w->cols[leaf], &w->cols[leaf].fst, out);
}

ed_code_t pq_writer_chunk_stats(const pq_writer_t *w, size_t rg, size_t leaf, pq_stats_t *out,
                                ed_err_t *err) {
  if (rg >= w->nrgs || leaf >= w->ncols)
    return ed_err_set(err, ED_E_INVALID,
                      "parquet writer: no column chunk %zu of row group %zu (%zu x %zu)", leaf, rg,
                      w->nrgs, w->ncols);
  return stats_out(&w->cols[leaf], &w->rgs[rg].cols[leaf].st, out);
}
