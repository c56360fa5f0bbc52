/* sasl: our SASL server (Proton 0.37 has no PLAIN/MSSBCBS server without
 * Cyrus): mechanisms offered, INIT read, outcome sent. PLAIN checks the key
 * name and key; MSSBCBS and ANONYMOUS authorize later on $cbs. */
#include <string.h>

#include "amqp/write.h"
#include "common/hmac.h"
#include "common/log.h"
#include "emu/emu_int.h"

/* sasl-mechanisms: an array32 of sym32 (as the service sends it) */
static void sasl_mechs(amqp_w_t *w) {
  static const char *mechs[] = {EHP_SASL_MSSBCBS, EHP_SASL_PLAIN, EHP_SASL_ANONYMOUS};
  size_t f = amqp_frame_open(w, AMQP_FRAME_TYPE_SASL, 0);
  amqp_put_described(w, AMQP_D_SASL_MECHANISMS);
  size_t l = amqp_open(w, AMQP_T_LIST32);
  size_t arr = amqp_open(w, AMQP_T_ARRAY32);
  amqp_put_byte(w, AMQP_T_SYM32);
  for (size_t i = 0; i < sizeof mechs / sizeof mechs[0]; i++) {
    amqp_put_be32(w, (uint32_t)strlen(mechs[i]));
    amqp_put_raw(w, mechs[i], strlen(mechs[i]));
  }
  amqp_close(w, arr, sizeof mechs / sizeof mechs[0]);
  amqp_close(w, l, 1);
  amqp_frame_close(w, f);
}

static void sasl_outcome(amqp_w_t *w, bool ok) {
  size_t f = amqp_frame_open(w, AMQP_FRAME_TYPE_SASL, 0);
  amqp_put_described(w, AMQP_D_SASL_OUTCOME);
  size_t l = amqp_open(w, AMQP_T_LIST32);
  amqp_put_ubyte(w, ok ? AMQP_SASL_OK : AMQP_SASL_AUTH);
  amqp_put_bin(w, EHP_SASL_WELCOME, strlen(EHP_SASL_WELCOME));
  amqp_close(w, l, 2);
  amqp_frame_close(w, f);
}

/* Our SASL server: returns bytes consumed, or -1 to drop the connection. */
ssize_t emu_sasl_input(emu_conn_t *c, const uint8_t *p, size_t n) {
  amqp_w_t w;
  amqp_w_init(&w, &c->out);
  if (c->st == ST_HDR) {
    if (n < AMQP_FRAME_HEADER)
      return 0;
    if (memcmp(p, AMQP_SASL_HEADER, AMQP_FRAME_HEADER) == 0) {
      amqp_put_raw(&w, AMQP_SASL_HEADER, AMQP_FRAME_HEADER);
      sasl_mechs(&w);
      c->st = ST_SASL;
      return amqp_w_end(&w) == ED_OK ? AMQP_FRAME_HEADER : -1;
    }
    if (memcmp(p, AMQP_PROTO_HEADER, AMQP_FRAME_HEADER) == 0) {
      c->st = ST_AMQP; /* no SASL: anonymous, as the service allows after the upgrade */
      return 0;
    }
    amqp_put_raw(&w, AMQP_SASL_HEADER, AMQP_FRAME_HEADER);
    /* the header says what we speak; the connection is dropped either way */
    if (amqp_w_end(&w) != ED_OK)
      ED_LOG_DEBUG("emu_sasl_header_unsent", "reason=\"out of memory\"");
    return -1;
  }
  if (n < AMQP_FRAME_HEADER)
    return 0;
  uint32_t size = amqp_be32(p);
  if (size < AMQP_FRAME_HEADER || size > EMU_MAX_FRAME)
    return -1;
  if (n < size)
    return 0;
  amqp_val_t init, it[3];
  uint32_t total;
  if (!emu_norm_frame_body(p, size, &init) || init.desc != AMQP_D_SASL_INIT)
    return -1;
  int got = amqp_items(&init, it, 3, &total);
  if (got <= AMQP_SASL_INIT_MECHANISM || !amqp_val_is_sym(&it[AMQP_SASL_INIT_MECHANISM]))
    return -1;
  const amqp_val_t *mech = &it[AMQP_SASL_INIT_MECHANISM], *resp = &it[AMQP_SASL_INIT_RESPONSE];
  bool ok = false;
  if (amqp_val_str_eq(mech, EHP_SASL_ANONYMOUS) || amqp_val_str_eq(mech, EHP_SASL_MSSBCBS))
    ok = true; /* authorization follows on $cbs */
  else if (amqp_val_str_eq(mech, EHP_SASL_PLAIN) && got > AMQP_SASL_INIT_RESPONSE &&
           amqp_val_is_bin(resp)) {
    /* [authzid] NUL authcid NUL password: key name and key */
    size_t rl = resp->n;
    const char *r = (const char *)resp->p;
    const char *z1 = memchr(r, 0, rl);
    const char *z2 = z1 ? memchr(z1 + 1, 0, rl - (size_t)(z1 + 1 - r)) : NULL;
    if (z2) {
      size_t ul = (size_t)(z2 - z1 - 1), pl = rl - (size_t)(z2 + 1 - r);
      const char *kn = c->emu->cfg.key_name, *k = c->emu->key;
      if (!c->emu->cfg.disable_local_auth && ul == strlen(kn) && memcmp(z1 + 1, kn, ul) == 0 &&
          pl == strlen(k) && ed_hmac_equal(z2 + 1, k, pl)) {
        ok = true;
        emu_node_grant(c, "", INT64_MAX, EMU_RIGHT_ALL);
      }
    }
  }
  sasl_outcome(&w, ok);
  if (amqp_w_end(&w) != ED_OK || !ok)
    return -1;
  c->st = ST_AMQP;
  return (ssize_t)size;
}
