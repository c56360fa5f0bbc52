/* cbs: the $cbs node (reference eventhubs-amqp.md §4): the token for
 * sb://host/hub, a Microsoft Entra ID JWT from the client's credential (type
 * jwt) or a SAS minted from the key (or the ready SharedAccessSignature), put
 * before any other link, refreshed at 80% of its life, put again when a
 * put-token goes unanswered, and a detach for an expired token recovered. */
#include <inttypes.h>
#include <stdio.h>

#include <proton/connection.h>
#include <proton/delivery.h>
#include <proton/session.h>

#include "common/log.h"
#include "eventhubs/client_int.h"
#include "eventhubs/sas.h"
#include "proto/eventhubs.h"

/* how often the session window is re-announced while an answer is awaited */
#define CBS_WINDOW_POKE_US 50000

ed_code_t eh_cbs_make_token(eh_client_t *c, ed_buf_t *out, int64_t *expiry_us, ed_err_t *err) {
  ed_buf_reset(out);
  if (c->cred) {
    const char *t = NULL;
    ed_code_t rc = au_cred_token(c->cred, false, &t, expiry_us, err);
    return rc ? rc : ed_buf_puts(out, t);
  }
  if (c->sas) {
    eh_sas_fields_t f;
    if (eh_sas_parse(c->sas, &f, err))
      return ed_err_prefix(err, "SharedAccessSignature");
    *expiry_us = f.se * ED_US_PER_SEC;
    eh_sas_fields_fini(&f);
    return ed_buf_puts(out, c->sas);
  }
  int64_t se = ed_time_now_us() / ED_US_PER_SEC + c->o.token_lifetime_s;
  *expiry_us = se * ED_US_PER_SEC;
  return eh_sas_token(c->audience, c->key_name, c->key, se, out, err);
}

void eh_cbs_put_token(eh_client_t *c) {
  ed_buf_t tok = ED_BUF_INIT;
  int64_t exp_us = 0;
  ed_err_t err = {0};
  if (eh_cbs_make_token(c, &tok, &exp_us, &err)) {
    ed_buf_fini(&tok);
    c->conn_err = err;
    c->conn_err_set = true;
    pn_connection_close(pn_session_connection(c->ssn));
    return;
  }
  pn_message_t *m = c->msg;
  pn_message_clear(m);
  c->cbs_id = ++c->next_id;
  pn_atom_t id = {.type = PN_ULONG, .u.as_ulong = c->cbs_id};
  pn_message_set_id(m, id);
  pn_data_t *b = pn_message_body(m);
  pn_data_put_string(b, pn_bytes(tok.len, tok.data));
  pn_data_t *ap = pn_message_properties(m);
  pn_data_put_map(ap);
  pn_data_enter(ap);
  eh_link_put_app_str(ap, EHP_CBS_KEY_OPERATION, EHP_CBS_OP_PUT_TOKEN);
  eh_link_put_app_str(ap, EHP_CBS_KEY_TYPE, c->cred ? EHP_CBS_TYPE_JWT : EHP_CBS_TYPE_SAS);
  eh_link_put_app_str(ap, EHP_CBS_KEY_NAME, c->audience);
  pn_data_put_string(ap, pn_bytes(strlen(EHP_CBS_KEY_EXPIRATION), EHP_CBS_KEY_EXPIRATION));
  pn_data_put_timestamp(ap, exp_us / 1000);
  pn_data_exit(ap);
  eh_link_send_message(c, c->cbs_tx, m);
  explicit_bzero(tok.data, tok.len);
  ed_buf_fini(&tok);
  c->cbs_inflight = true;
  c->cbs_deadline = ed_time_mono_us() + c->o.op_timeout_us;
  c->token_expiry_us = exp_us;
  int64_t life = exp_us - ed_time_now_us();
  /* refresh at 80% of the remaining life (§3.4: well before expiry); an Entra
   * token of a long life when the credential will hand out a new one (fewer
   * than 300 s left, auth/cred.h), not earlier to be given the same one
   * (a short one is replaced past half its life, so 80% gets a new one) */
  int64_t at = life * 8 / 10;
  if (c->cred && life > 600 * ED_US_PER_SEC)
    at = life - 300 * ED_US_PER_SEC;
  c->refresh_at = c->sas && !c->cred ? 0 : ed_time_mono_us() + at;
  ED_LOG_DEBUG("eh_put_token", "audience=%s expires_in_s=%" PRId64, c->audience,
               life / ED_US_PER_SEC);
}

/* A link detached because its token expired (the refresh came too late, or
 * the service cut the token's life short) is recoverable when we mint our
 * own tokens: put a fresh one now and re-attach after the backoff. A ready
 * SharedAccessSignature cannot be renewed, so then it stays unauthorized. */
bool eh_cbs_token_expired(eh_client_t *c, pn_condition_t *cond) {
  const char *name = pn_condition_get_name(cond);
  const char *desc = pn_condition_get_description(cond);
  if ((c->sas && !c->cred) || !name || strcmp(name, ehp_cond_name(EHP_COND_UNAUTHORIZED)) ||
      !desc || !(strstr(desc, "expired") || strstr(desc, "Expired")))
    return false;
  if (!c->cbs_inflight)
    c->refresh_at = ed_time_mono_us();
  return true;
}

void eh_cbs_open(eh_client_t *c) {
  c->cbs_tx = eh_link_make(c, true, "cbs-sender", EHP_CBS_NODE, EHP_CBS_NODE);
  c->cbs_rx = eh_link_make(c, false, "cbs-receiver", EHP_CBS_NODE, EHP_CBS_NODE);
  pn_link_open(c->cbs_tx);
  pn_link_open(c->cbs_rx);
  pn_link_flow(c->cbs_rx, 16);
  eh_cbs_put_token(c);
}

bool eh_cbs_tick(eh_client_t *c, int64_t now) {
  if (c->cbs_inflight && now >= c->cbs_deadline) {
    /* an unanswered refresh must not stop refreshing: put the token again
     * (the late answer, if any, carries the old id and is ignored); after
     * three in a row the connection itself is suspect and is started over */
    if (++c->cbs_unanswered >= 3) {
      ed_err_set(&c->conn_err, ED_E_TIMEOUT,
                 "CBS put-token for %s: %d in a row unanswered within %" PRId64 " s", c->audience,
                 c->cbs_unanswered, c->o.op_timeout_us / ED_US_PER_SEC);
      c->conn_err_set = true;
      pn_connection_close(pn_session_connection(c->ssn));
      return false;
    }
    ED_LOG_WARN("eh_put_token_timeout", "audience=%s attempt=%d", c->audience, c->cbs_unanswered);
    c->cbs_inflight = false;
    c->refresh_at = now;
  }
  if (c->refresh_at && now >= c->refresh_at && !c->cbs_inflight)
    eh_cbs_put_token(c);
  if (c->refresh_at)
    eh_client_timer_want(c, c->refresh_at);
  if (c->cbs_inflight)
    eh_client_timer_want(c, c->cbs_deadline);
  if (c->cbs_inflight && c->cbs_rx) {
    /* the session window kept open to the answer (mgmt.c says why) */
    pn_link_flow(c->cbs_rx, 0);
    eh_client_timer_want(c, now + CBS_WINDOW_POKE_US);
  }
  return true;
}

void eh_cbs_response(eh_client_t *c, pn_link_t *l, pn_message_t *m) {
  pn_atom_t cid = pn_message_get_correlation_id(m);
  if (cid.type != PN_ULONG || cid.u.as_ulong != c->cbs_id)
    return;
  c->cbs_inflight = false;
  c->cbs_unanswered = 0;
  char desc[256];
  int status = eh_mgmt_status(m, desc, sizeof desc);
  if (status < 200 || status > 299) {
    ed_err_set(&c->conn_err, eh_mgmt_status_code(status), "CBS put-token for %s: status %d%s%s",
               c->audience, status, desc[0] ? ": " : "", desc);
    if (c->conn_err.code == ED_E_INVALID)
      c->conn_err.code = ED_E_UNAUTHORIZED;
    c->conn_err_set = true;
    pn_connection_close(pn_session_connection(pn_link_session(l)));
    return;
  }
  if (!c->authed) {
    c->authed = true;
    c->attempts = 0;
    ED_LOG_INFO("eh_connected", "host=%s hub=%s", c->host, c->hub);
    eh_client_notify(c, EH_STATE_READY, NULL);
  }
}
