/* emu/event: see event.h. */
#include "emu/event.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amqp/write.h"
#include "common/buf.h"
#include "proto/eventhubs.h"

/* A string value of a key in a map's items (the key a string or symbol). */
bool emu_msg_find_str(const amqp_val_t *it, int n, const char *key, const char **v, size_t *vl) {
  const amqp_val_t *x = amqp_map_get(it, n, key);
  if (!x || (x->code != AMQP_T_STR8 && x->code != AMQP_T_STR32))
    return false;
  *v = (const char *)x->p, *vl = x->n;
  return true;
}

void emu_msg_free(emu_msg_t *v) {
  if (v && v->sec != v->sec_inline)
    free(v->sec);
  free(v);
}

/* Splits a message into its sections; v is freed with emu_msg_free either way. */
bool emu_msg_split(const uint8_t *m, size_t n, emu_msg_t *v) {
  v->nsec = 0, v->ann = -1, v->nann = 0;
  v->sec = v->sec_inline, v->cap = 16;
  const uint8_t *p = m, *end = m + n;
  while (p < end) {
    amqp_val_t s;
    if (amqp_read(&p, end, &s, 0) || !s.described || s.desc < AMQP_S_HEADER ||
        s.desc > AMQP_S_FOOTER)
      return false;
    if (v->nsec == v->cap) {
      amqp_val_t *ns = malloc((size_t)v->cap * 2 * sizeof *ns);
      if (!ns)
        return false;
      memcpy(ns, v->sec, (size_t)v->nsec * sizeof *ns);
      if (v->sec != v->sec_inline)
        free(v->sec);
      v->sec = ns, v->cap *= 2;
    }
    v->sec[v->nsec] = s;
    if (s.desc == AMQP_S_MESSAGE_ANN) {
      v->ann = v->nsec;
      uint32_t total;
      int got = amqp_items(&s, v->ann_items, 128, &total);
      if (got < 0 || (uint32_t)got != total)
        return false;
      v->nann = got;
    }
    v->nsec++;
  }
  return v->nsec > 0;
}

/* Whether an annotation key (an encoded symbol) is one the service stamps
 * itself: a publisher's own value for it is replaced, never duplicated. */
static bool stamped_key(const amqp_val_t *k, bool publisher) {
  static const char *keys[] = {EHP_ANN_SEQUENCE, EHP_ANN_OFFSET, EHP_ANN_ENQUEUED,
                               EHP_ANN_PUBLISHER};
  for (size_t i = 0; amqp_val_is_sym(k) && i < (publisher ? 4u : 3u); i++)
    if (amqp_val_str_eq(k, keys[i]))
      return true;
  return false;
}

/* Encodes one event (an encoded AMQP message) as delivered, with the
 * service's annotations for the numbers in *ev; ev->bytes: caller frees. */
ed_code_t emu_event_stamp(const uint8_t *m, size_t n, const char *pk, size_t pkl, const char *pub,
                          emu_event_t *ev) {
  emu_msg_t *v = malloc(sizeof *v);
  if (!v)
    return ED_E_NOMEM;
  if (!emu_msg_split(m, n, v)) {
    emu_msg_free(v);
    return ED_E_PARSE;
  }
  const char *have;
  size_t havel;
  bool add_pk = pk && !(v->ann >= 0 && emu_msg_find_str(v->ann_items, v->nann,
                                                        EHP_ANN_PARTITION_KEY, &have, &havel));
  ed_buf_t o = ED_BUF_INIT;
  amqp_w_t w;
  amqp_w_init(&w, &o);
  bool done = false;
  for (int i = 0; i <= v->nsec; i++) {
    uint64_t code = i < v->nsec ? v->sec[i].desc : UINT64_MAX;
    if (code == AMQP_S_DELIVERY_ANN)
      continue; /* delivery annotations belong to the hop, not the event */
    if (!done && code >= AMQP_S_MESSAGE_ANN) {
      amqp_put_described(&w, AMQP_S_MESSAGE_ANN);
      size_t at = amqp_open(&w, AMQP_T_MAP32);
      uint32_t count = 6;
      for (int j = 0; v->ann >= 0 && j + 1 < v->nann; j += 2) {
        if (stamped_key(&v->ann_items[j], pub != NULL))
          continue;
        amqp_put_raw(&w, v->ann_items[j].start, v->ann_items[j].total);
        amqp_put_raw(&w, v->ann_items[j + 1].start, v->ann_items[j + 1].total);
        count += 2;
      }
      char offs[24];
      int ol = snprintf(offs, sizeof offs, "%" PRId64, ev->offset);
      amqp_put_sym(&w, EHP_ANN_SEQUENCE, strlen(EHP_ANN_SEQUENCE));
      amqp_put_long(&w, ev->seq);
      amqp_put_sym(&w, EHP_ANN_OFFSET, strlen(EHP_ANN_OFFSET));
      amqp_put_str32(&w, offs, (size_t)ol);
      amqp_put_sym(&w, EHP_ANN_ENQUEUED, strlen(EHP_ANN_ENQUEUED));
      amqp_put_timestamp(&w, ev->enq_ms);
      if (add_pk) {
        amqp_put_sym(&w, EHP_ANN_PARTITION_KEY, strlen(EHP_ANN_PARTITION_KEY));
        amqp_put_str32(&w, pk, pkl);
        count += 2;
      }
      if (pub) {
        amqp_put_sym(&w, EHP_ANN_PUBLISHER, strlen(EHP_ANN_PUBLISHER));
        amqp_put_str32(&w, pub, strlen(pub));
        count += 2;
      }
      amqp_close(&w, at, count);
      done = true;
    }
    if (i < v->nsec && code != AMQP_S_MESSAGE_ANN)
      amqp_put_raw(&w, v->sec[i].start, v->sec[i].total);
  }
  emu_msg_free(v);
  ed_code_t rc = amqp_w_end(&w);
  if (rc != ED_OK || !o.data) {
    ed_buf_fini(&o);
    return rc != ED_OK ? rc : ED_E_NOMEM;
  }
  ev->len = (uint32_t)o.len;
  ev->bytes = (uint8_t *)ed_buf_steal(&o);
  return ED_OK;
}
