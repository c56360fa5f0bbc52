/* rle: the RLE/bit-packed hybrid of Parquet's Encodings.md, used for levels,
 * dictionary indices and RLE booleans. Encoding picks RLE runs for repeats of
 * 8 or more and bit-packed groups of 8 otherwise. Decoding is bounds-checked
 * and never writes more than the caller's count. Internal to src/parquet. */
#ifndef ED_PARQUET_RLE_H
#define ED_PARQUET_RLE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* Appends the hybrid encoding of v[0..n) at bit width bw (1..32) to out. */
ed_code_t pq_rle_encode16(ed_buf_t *out, const uint16_t *v, size_t n, int bw);
ed_code_t pq_rle_encode32(ed_buf_t *out, const uint32_t *v, size_t n, int bw);
/* Decodes exactly n values from p[0..len) at width bw into out. Returns 0,
 * or -1 when the data ends early or is malformed. *used = bytes consumed. */
int pq_rle_decode32(const uint8_t *p, size_t len, int bw, uint32_t *out, size_t n, size_t *used);
int pq_rle_decode16(const uint8_t *p, size_t len, int bw, int16_t *out, size_t n, size_t *used);

#endif
