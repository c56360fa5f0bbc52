/* amqp/write: see write.h. */
#include "amqp/write.h"

void amqp_w_init(amqp_w_t *w, ed_buf_t *b) {
  w->b = b;
  w->start = b->len;
  w->rc = ED_OK;
}

ed_code_t amqp_w_end(amqp_w_t *w) {
  if (w->rc != ED_OK)
    w->b->len = w->start;
  return w->rc;
}

void amqp_put_raw(amqp_w_t *w, const void *p, size_t n) {
  if (w->rc == ED_OK)
    w->rc = ed_buf_append(w->b, p, n);
}

void amqp_put_byte(amqp_w_t *w, uint8_t v) { amqp_put_raw(w, &v, 1); }

static void be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

void amqp_put_be32(amqp_w_t *w, uint32_t v) {
  uint8_t x[4];
  be32(x, v);
  amqp_put_raw(w, x, 4);
}

void amqp_patch_be32(ed_buf_t *b, size_t at, uint32_t v) { be32((uint8_t *)b->data + at, v); }

static void put_fixed64(amqp_w_t *w, uint8_t code, uint64_t v) {
  uint8_t x[9] = {code};
  be32(x + 1, (uint32_t)(v >> 32));
  be32(x + 5, (uint32_t)v);
  amqp_put_raw(w, x, 9);
}

void amqp_put_described(amqp_w_t *w, uint64_t code) {
  if (code < 256) {
    uint8_t x[3] = {AMQP_T_DESCRIBED, AMQP_T_SMALLULONG, (uint8_t)code};
    amqp_put_raw(w, x, 3);
  } else {
    amqp_put_byte(w, AMQP_T_DESCRIBED);
    put_fixed64(w, AMQP_T_ULONG, code);
  }
}

void amqp_put_null(amqp_w_t *w) { amqp_put_byte(w, AMQP_T_NULL); }

void amqp_put_ubyte(amqp_w_t *w, uint8_t v) {
  uint8_t x[2] = {AMQP_T_UBYTE, v};
  amqp_put_raw(w, x, 2);
}

void amqp_put_ushort(amqp_w_t *w, uint16_t v) {
  uint8_t x[3] = {AMQP_T_USHORT, (uint8_t)(v >> 8), (uint8_t)v};
  amqp_put_raw(w, x, 3);
}

void amqp_put_uint(amqp_w_t *w, uint32_t v) {
  uint8_t x[5] = {AMQP_T_UINT};
  be32(x + 1, v);
  amqp_put_raw(w, x, 5);
}

void amqp_put_long(amqp_w_t *w, int64_t v) { put_fixed64(w, AMQP_T_LONG, (uint64_t)v); }

void amqp_put_timestamp(amqp_w_t *w, int64_t ms) { put_fixed64(w, AMQP_T_TIMESTAMP, (uint64_t)ms); }

/* a variable-width value: the 8-bit form when it fits, else the 32-bit one */
static void put_var(amqp_w_t *w, uint8_t code8, uint8_t code32, const void *p, size_t n) {
  if (n > UINT32_MAX) {
    if (w->rc == ED_OK)
      w->rc = ED_E_TOO_LARGE;
    return;
  }
  if (n < 256 && code8) {
    uint8_t x[2] = {code8, (uint8_t)n};
    amqp_put_raw(w, x, 2);
  } else {
    amqp_put_byte(w, code32);
    amqp_put_be32(w, (uint32_t)n);
  }
  amqp_put_raw(w, p, n);
}

void amqp_put_str(amqp_w_t *w, const char *s, size_t n) {
  put_var(w, AMQP_T_STR8, AMQP_T_STR32, s, n);
}
void amqp_put_sym(amqp_w_t *w, const char *s, size_t n) {
  put_var(w, AMQP_T_SYM8, AMQP_T_SYM32, s, n);
}
void amqp_put_bin(amqp_w_t *w, const void *p, size_t n) {
  put_var(w, AMQP_T_VBIN8, AMQP_T_VBIN32, p, n);
}
void amqp_put_str32(amqp_w_t *w, const char *s, size_t n) { put_var(w, 0, AMQP_T_STR32, s, n); }

size_t amqp_open(amqp_w_t *w, uint8_t code) {
  size_t at = w->b->len;
  uint8_t x[9] = {code};
  amqp_put_raw(w, x, 9);
  return at;
}

void amqp_close(amqp_w_t *w, size_t at, uint32_t count) {
  if (w->rc != ED_OK)
    return;
  amqp_patch_be32(w->b, at + 1, (uint32_t)(w->b->len - at - 5));
  amqp_patch_be32(w->b, at + 5, count);
}

size_t amqp_frame_open(amqp_w_t *w, uint8_t type, uint16_t channel) {
  size_t at = w->b->len;
  /* doff 2: the header is 2 words, no extended header */
  uint8_t h[AMQP_FRAME_HEADER] = {0, 0, 0, 0, 2, type, (uint8_t)(channel >> 8), (uint8_t)channel};
  amqp_put_raw(w, h, sizeof h);
  return at;
}

void amqp_frame_close(amqp_w_t *w, size_t at) {
  if (w->rc == ED_OK)
    amqp_patch_be32(w->b, at, (uint32_t)(w->b->len - at));
}
