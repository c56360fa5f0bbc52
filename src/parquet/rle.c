/* rle: RLE/bit-packed hybrid coding. See rle.h. */
#include "parquet/rle.h"

#include <string.h>

static ed_code_t varint(ed_buf_t *o, uint64_t v) {
  uint8_t t[10];
  size_t n = 0;
  while (v >= 0x80) {
    t[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  t[n++] = (uint8_t)v;
  return ed_buf_append(o, t, n);
}

#define RLE_ENCODER(name, T)                                                                       \
  static ed_code_t name##_packed(ed_buf_t *o, const T *v, size_t n, int bw) {                      \
    /* n values, padded with zeros to a multiple of 8. */                                          \
    size_t groups = (n + 7) / 8;                                                                   \
    if (!groups)                                                                                   \
      return ED_OK;                                                                                \
    if (varint(o, (uint64_t)groups << 1 | 1))                                                      \
      return ED_E_NOMEM;                                                                           \
    size_t bytes = groups * (size_t)bw;                                                            \
    if (ed_buf_reserve(o, bytes))                                                                  \
      return ED_E_NOMEM;                                                                           \
    uint8_t *d = (uint8_t *)o->data + o->len;                                                      \
    memset(d, 0, bytes);                                                                           \
    uint64_t acc = 0;                                                                              \
    int nb = 0;                                                                                    \
    size_t k = 0;                                                                                  \
    for (size_t i = 0; i < groups * 8; i++) {                                                      \
      uint64_t x = i < n ? (uint64_t)v[i] : 0;                                                     \
      acc |= x << nb;                                                                              \
      nb += bw;                                                                                    \
      while (nb >= 8) {                                                                            \
        d[k++] = (uint8_t)acc;                                                                     \
        acc >>= 8;                                                                                 \
        nb -= 8;                                                                                   \
      }                                                                                            \
    }                                                                                              \
    o->len += bytes;                                                                               \
    return ED_OK;                                                                                  \
  }                                                                                                \
  ed_code_t name(ed_buf_t *o, const T *v, size_t n, int bw) {                                      \
    size_t vb = ((size_t)bw + 7) / 8;                                                              \
    size_t lit = 0, i = 0;                                                                         \
    while (i < n) {                                                                                \
      size_t j = i + 1;                                                                            \
      while (j < n && v[j] == v[i])                                                                \
        j++;                                                                                       \
      size_t run = j - i;                                                                          \
      if (run >= 8) {                                                                              \
        size_t pend = i - lit;                                                                     \
        size_t borrow = pend % 8 ? 8 - pend % 8 : 0;                                               \
        if (run - borrow >= 8) {                                                                   \
          i += borrow;                                                                             \
          if (name##_packed(o, v + lit, i - lit, bw))                                              \
            return ED_E_NOMEM;                                                                     \
          uint64_t x = (uint64_t)v[i];                                                             \
          if (varint(o, (uint64_t)(j - i) << 1) || ed_buf_append(o, &x, vb))                       \
            return ED_E_NOMEM;                                                                     \
          lit = i = j;                                                                             \
          continue;                                                                                \
        }                                                                                          \
      }                                                                                            \
      i = j;                                                                                       \
    }                                                                                              \
    return name##_packed(o, v + lit, n - lit, bw);                                                 \
  }
RLE_ENCODER(pq_rle_encode16, uint16_t)
RLE_ENCODER(pq_rle_encode32, uint32_t)

static int rvarint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  uint64_t x = 0;
  for (int s = 0; s < 64; s += 7) {
    if (*p >= end)
      return -1;
    uint8_t c = *(*p)++;
    x |= (uint64_t)(c & 0x7F) << s;
    if (!(c & 0x80)) {
      *v = x;
      return 0;
    }
  }
  return -1;
}

#define RLE_DECODER(name, T)                                                                       \
  int name(const uint8_t *p, size_t len, int bw, T *out, size_t n, size_t *used) {                 \
    const uint8_t *s = p, *end = p + len;                                                          \
    if (bw < 0 || bw > 32)                                                                         \
      return -1;                                                                                   \
    size_t vb = ((size_t)bw + 7) / 8;                                                              \
    uint64_t mask = bw == 64 ? ~0ULL : ((1ULL << bw) - 1);                                         \
    size_t k = 0;                                                                                  \
    while (k < n) {                                                                                \
      uint64_t h;                                                                                  \
      if (rvarint(&p, end, &h))                                                                    \
        return -1;                                                                                 \
      if (h & 1) {                                                                                 \
        uint64_t groups = h >> 1;                                                                  \
        if (groups == 0)                                                                           \
          return -1;                                                                               \
        if (groups > (uint64_t)(end - p) + 1)                                                      \
          return -1;                                                                               \
        uint64_t cnt = groups * 8;                                                                 \
        size_t bytes = (size_t)groups * (size_t)bw;                                                \
        /* The last run of a page may be cut short by the writer (arrow); */                       \
        /* only the values we need must be present. */                                             \
        size_t need = n - k < cnt ? n - k : (size_t)cnt;                                           \
        size_t need_bytes = (need * (size_t)bw + 7) / 8;                                           \
        if (need_bytes > (size_t)(end - p))                                                        \
          return -1;                                                                               \
        uint64_t acc = 0;                                                                          \
        int nb = 0;                                                                                \
        const uint8_t *q = p;                                                                      \
        for (size_t i = 0; i < need; i++) {                                                        \
          while (nb < bw) {                                                                        \
            acc |= (uint64_t)(q < end ? *q : 0) << nb;                                             \
            q++;                                                                                   \
            nb += 8;                                                                               \
          }                                                                                        \
          out[k++] = (T)(acc & mask);                                                              \
          acc >>= bw;                                                                              \
          nb -= bw;                                                                                \
        }                                                                                          \
        p += bytes < (size_t)(end - p) ? bytes : (size_t)(end - p);                                \
      } else {                                                                                     \
        uint64_t cnt = h >> 1;                                                                     \
        if (cnt == 0)                                                                              \
          return -1;                                                                               \
        if (vb > (size_t)(end - p))                                                                \
          return -1;                                                                               \
        uint64_t x = 0;                                                                            \
        for (size_t b = 0; b < vb; b++)                                                            \
          x |= (uint64_t)p[b] << (8 * b);                                                          \
        p += vb;                                                                                   \
        size_t m = n - k < cnt ? n - k : (size_t)cnt;                                              \
        for (size_t i = 0; i < m; i++)                                                             \
          out[k++] = (T)x;                                                                         \
      }                                                                                            \
    }                                                                                              \
    if (used)                                                                                      \
      *used = (size_t)(p - s);                                                                     \
    return 0;                                                                                      \
  }
RLE_DECODER(pq_rle_decode32, uint32_t)
RLE_DECODER(pq_rle_decode16, int16_t)
