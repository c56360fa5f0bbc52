/* amqp/write: the one AMQP 1.0 value writer (part 1 §1.6) shared by the
 * client's event encoder and the emulator (stamped events, normalised and
 * SASL frames). Appends to a caller's ed_buf_t through a writer whose error
 * is sticky (curl's dynbuf): after the first failed append every later one
 * does nothing, and amqp_w_end, which the caller must check, reports it and
 * takes the buffer back to where the writer started, so no half-encoded value
 * is ever left behind. Owns nothing. */
#ifndef ED_AMQP_WRITE_H
#define ED_AMQP_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "proto/amqp.h"

typedef struct amqp_w {
  ed_buf_t *b; /* borrowed */
  size_t start;
  ed_code_t rc;
} amqp_w_t;

/* Starts writing at the end of b (borrowed until amqp_w_end). */
void amqp_w_init(amqp_w_t *w, ed_buf_t *b);
/* ED_OK, or the first error of any append (the buffer then back at its
 * length at amqp_w_init). */
__attribute__((warn_unused_result)) ed_code_t amqp_w_end(amqp_w_t *w);

void amqp_put_raw(amqp_w_t *w, const void *p, size_t n); /* bytes as they are */
void amqp_put_byte(amqp_w_t *w, uint8_t v);              /* one byte: a constructor */
void amqp_put_be32(amqp_w_t *w, uint32_t v);             /* a raw big-endian word */
/* 0x00 then the descriptor as smallulong (codes < 256) or ulong */
void amqp_put_described(amqp_w_t *w, uint64_t code);
void amqp_put_null(amqp_w_t *w);
void amqp_put_ubyte(amqp_w_t *w, uint8_t v);
void amqp_put_ushort(amqp_w_t *w, uint16_t v);
void amqp_put_uint(amqp_w_t *w, uint32_t v); /* always the 4-byte uint */
void amqp_put_long(amqp_w_t *w, int64_t v);
void amqp_put_timestamp(amqp_w_t *w, int64_t ms);
/* str8/sym8/vbin8 when shorter than 256 bytes, else the 32-bit forms */
void amqp_put_str(amqp_w_t *w, const char *s, size_t n);
void amqp_put_sym(amqp_w_t *w, const char *s, size_t n);
void amqp_put_bin(amqp_w_t *w, const void *p, size_t n);
/* always str32: what ehemu has always stamped, so stored events keep their size */
void amqp_put_str32(amqp_w_t *w, const char *s, size_t n);

/* A list32, map32 or array32 whose size and count amqp_close patches once the
 * items are written; returns where it starts, for amqp_close. */
size_t amqp_open(amqp_w_t *w, uint8_t code);
void amqp_close(amqp_w_t *w, size_t at, uint32_t count);

/* A frame (part 2 §2.3): its 8-byte header with the size patched by
 * amqp_frame_close; returns where it starts. */
size_t amqp_frame_open(amqp_w_t *w, uint8_t type, uint16_t channel);
void amqp_frame_close(amqp_w_t *w, size_t at);

/* Overwrites 4 bytes at offset at of b with v, big-endian (at + 4 <= b->len). */
void amqp_patch_be32(ed_buf_t *b, size_t at, uint32_t v);

#endif
