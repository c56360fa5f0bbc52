/* norm: frames read and rewritten. Out: Proton's frames re-encoded with
 * every field of every performative written (§17: the Python SDK indexes
 * fields by position), within the peer's max-frame-size. In: the peer's OPEN
 * told a max-frame-size EMU_NORM_SLACK smaller, so padded frames still fit;
 * each TRANSFER's message-format read. All through the shared src/amqp
 * reader and writer. */
#include <string.h>

#include "amqp/write.h"
#include "common/log.h"
#include "emu/emu_int.h"

/* Every performative (and the composites inside them) with its number of
 * fields, part 2 §2.7, part 3 §3.4-§3.5, part 5 §5.3.3. */
typedef struct perf_shape {
  uint64_t code;
  int arity;
} perf_shape_t;
static const perf_shape_t SHAPES[] = {
    {AMQP_D_OPEN, 10},           {AMQP_D_BEGIN, 8},        {AMQP_D_ATTACH, 14},
    {AMQP_D_FLOW, 11},           {AMQP_D_TRANSFER, 11},    {AMQP_D_DISPOSITION, 6},
    {AMQP_D_DETACH, 3},          {AMQP_D_END, 1},          {AMQP_D_CLOSE, 1},
    {AMQP_D_SOURCE, 11},         {AMQP_D_TARGET, 7},       {AMQP_D_ERROR, 3},
    {AMQP_D_SASL_MECHANISMS, 1}, {AMQP_D_SASL_INIT, 3},    {AMQP_D_SASL_CHALLENGE, 1},
    {AMQP_D_SASL_RESPONSE, 1},   {AMQP_D_SASL_OUTCOME, 2}, {AMQP_D_REJECTED, 1},
    {AMQP_D_MODIFIED, 3},
};

static int shape_arity(const amqp_val_t *v) {
  for (size_t i = 0; v->described && i < sizeof SHAPES / sizeof SHAPES[0]; i++)
    if (SHAPES[i].code == v->desc)
      return SHAPES[i].arity;
  return 0;
}

/* the fields whose value is itself a described list to write out in full */
static bool field_nested(uint64_t code, int i) {
  switch (code) {
  case AMQP_D_ATTACH:
    return i == AMQP_ATTACH_SOURCE || i == AMQP_ATTACH_TARGET;
  case AMQP_D_DETACH:
    return i == AMQP_DETACH_ERROR;
  case AMQP_D_END:
  case AMQP_D_CLOSE:
  case AMQP_D_REJECTED:
    return i == 0;
  case AMQP_D_DISPOSITION:
    return i == AMQP_DISPOSITION_STATE;
  case AMQP_D_TRANSFER:
    return i == AMQP_TRANSFER_STATE;
  default:
    return false;
  }
}

static void norm_value(amqp_w_t *w, const amqp_val_t *v, int depth);

/* One field: its value, or for an absent one the default the spec gives it
 * (the SDK reads some positionally and takes null for 0). */
static void norm_field(amqp_w_t *w, uint64_t code, int i, const amqp_val_t *it, int depth) {
  if (it && !amqp_val_is_null(it)) {
    if (field_nested(code, i))
      norm_value(w, it, depth + 1);
    else
      amqp_put_raw(w, it->start, it->total);
    return;
  }
  if (code == AMQP_D_OPEN && i == AMQP_OPEN_MAX_FRAME_SIZE)
    amqp_put_uint(w, UINT16_MAX); /* what ehemu has always announced here */
  else if (code == AMQP_D_OPEN && i == AMQP_OPEN_CHANNEL_MAX)
    amqp_put_ushort(w, UINT16_MAX);
  else if (code == AMQP_D_BEGIN && i == AMQP_BEGIN_HANDLE_MAX)
    amqp_put_uint(w, 255);
  else if (code == AMQP_D_ATTACH && i == AMQP_ATTACH_PROPERTIES) {
    static const uint8_t empty_map[] = {AMQP_T_MAP8, 1, 0};
    amqp_put_raw(w, empty_map, sizeof empty_map);
  } else
    amqp_put_null(w);
}

/* Re-encodes a described list with all its fields; anything else is copied. */
static void norm_value(amqp_w_t *w, const amqp_val_t *v, int depth) {
  int arity = shape_arity(v);
  amqp_val_t items[16];
  uint32_t total = 0;
  int got = arity && depth < 4 ? amqp_items(v, items, 16, &total) : -1;
  if (got < 0 || (uint32_t)got != total) {
    amqp_put_raw(w, v->start, v->total);
    return;
  }
  amqp_put_described(w, v->desc);
  size_t at = amqp_open(w, AMQP_T_LIST32);
  int count = got > arity ? got : arity;
  for (int i = 0; i < count; i++)
    norm_field(w, v->desc, i, i < got ? &items[i] : NULL, depth);
  amqp_close(w, at, (uint32_t)count);
}

/* Moves whole frames from raw (Proton's output) to out, normalised. No frame
 * goes out larger than limit (the peer's max-frame-size, 0: none yet): Proton
 * sized its frames EMU_NORM_SLACK under it, and a frame that padding would
 * still push over goes out as Proton wrote it, which is valid AMQP too.
 * ED_E_NOMEM leaves out as it was before the frame that did not fit. */
ed_code_t emu_norm_frames(ed_buf_t *raw, ed_buf_t *out, uint32_t limit) {
  size_t pos = 0;
  ed_code_t rc = ED_OK;
  while (rc == ED_OK && raw->len - pos >= AMQP_FRAME_HEADER) {
    const uint8_t *f = (const uint8_t *)raw->data + pos;
    amqp_w_t w;
    amqp_w_init(&w, out);
    uint32_t size = amqp_be32(f);
    if (memcmp(f, "AMQP", 4) == 0) {
      size = AMQP_FRAME_HEADER;
      amqp_put_raw(&w, f, size);
    } else if (size < AMQP_FRAME_HEADER || raw->len - pos < size) {
      break;
    } else {
      size_t doff = (size_t)f[4] * 4;
      const uint8_t *body = f + doff, *rest = body, *end = f + size;
      amqp_val_t v;
      if (size == AMQP_FRAME_HEADER || doff < AMQP_FRAME_HEADER || doff >= size) {
        amqp_put_raw(&w, f, size);
      } else {
        size_t at = amqp_frame_open(&w, f[5], (uint16_t)(f[6] << 8 | f[7]));
        if (amqp_read(&rest, end, &v, 0) == 0)
          norm_value(&w, &v, 0);
        amqp_put_raw(&w, rest, (size_t)(end - rest));
        amqp_frame_close(&w, at);
        if (w.rc == ED_OK && limit && out->len - at > limit) {
          out->len = at;
          amqp_put_raw(&w, f, size);
        }
      }
    }
    if ((rc = amqp_w_end(&w)) == ED_OK)
      pos += size;
  }
  if (pos) {
    memmove(raw->data, raw->data + pos, raw->len - pos);
    raw->len -= pos;
  }
  return rc;
}

/* The frame body at p (size bytes, header included) as one described value;
 * false when the header or the value is malformed. */
bool emu_norm_frame_body(const uint8_t *p, size_t size, amqp_val_t *v) {
  size_t doff = (size_t)p[4] * 4;
  const uint8_t *b = p + doff;
  return doff >= AMQP_FRAME_HEADER && doff < size && amqp_read(&b, p + size, v, 0) == 0 &&
         v->described;
}

/* A frame field that is a uint (uint, smalluint or uint0) into *out. */
static bool field_uint(const amqp_val_t *v, uint32_t *out) {
  int64_t x;
  if ((v->code != AMQP_T_UINT && v->code != AMQP_T_SMALLUINT && v->code != AMQP_T_UINT0) ||
      !amqp_val_int(v, &x))
    return false;
  *out = (uint32_t)x;
  return true;
}

/* The peer's OPEN (at f, size bytes), rewritten into o with a max-frame-size
 * EMU_NORM_SLACK smaller for Proton to frame by; the announced value goes to
 * c->peer_max_frame. False (o untouched) when there is nothing to rewrite. */
bool emu_norm_open(emu_conn_t *c, const uint8_t *f, size_t size, ed_buf_t *o) {
  amqp_val_t open, it[16];
  uint32_t total = 0, peer;
  if (!emu_norm_frame_body(f, size, &open) || open.desc != AMQP_D_OPEN)
    return false;
  int got = amqp_items(&open, it, 16, &total);
  if (got <= AMQP_OPEN_MAX_FRAME_SIZE || (uint32_t)got != total)
    return false; /* no max-frame-size (no limit), or malformed: Proton says so */
  if (!field_uint(&it[AMQP_OPEN_MAX_FRAME_SIZE], &peer))
    return false; /* null: no limit */
  uint32_t announced = peer < EMU_MIN_MAX_FRAME ? EMU_MIN_MAX_FRAME : peer;
  uint32_t framed = announced - EMU_NORM_SLACK;
  if (framed < EMU_MIN_MAX_FRAME)
    framed = EMU_MIN_MAX_FRAME;
  amqp_w_t w;
  amqp_w_init(&w, o);
  size_t at = amqp_frame_open(&w, AMQP_FRAME_TYPE_AMQP, (uint16_t)(f[6] << 8 | f[7]));
  amqp_put_described(&w, AMQP_D_OPEN);
  size_t l = amqp_open(&w, AMQP_T_LIST32);
  for (int i = 0; i < got; i++) {
    if (i == AMQP_OPEN_MAX_FRAME_SIZE)
      amqp_put_uint(&w, framed);
    else
      amqp_put_raw(&w, it[i].start, it[i].total);
  }
  amqp_close(&w, l, (uint32_t)got);
  amqp_frame_close(&w, at);
  if (amqp_w_end(&w) != ED_OK)
    return false;
  c->peer_max_frame = announced;
  return true;
}

/* A TRANSFER's message-format (§13: Proton drops it) into c->last_format. */
void emu_norm_transfer_format(emu_conn_t *c, const uint8_t *f, size_t size) {
  amqp_val_t tr, it[AMQP_TRANSFER_MESSAGE_FORMAT + 1];
  uint32_t total;
  if (!emu_norm_frame_body(f, size, &tr) || tr.desc != AMQP_D_TRANSFER)
    return;
  int got = amqp_items(&tr, it, AMQP_TRANSFER_MESSAGE_FORMAT + 1, &total);
  uint32_t fmt;
  if (got > AMQP_TRANSFER_MESSAGE_FORMAT) {
    if (field_uint(&it[AMQP_TRANSFER_MESSAGE_FORMAT], &fmt))
      c->last_format = fmt;
  } else if (got >= 0) {
    c->last_format = 0;
  }
}
