/* link: the base receivers and senders share (client_int.h eh_link_t):
 * their state as callers see it, retry after a failure, close and release;
 * and request/response on a node's link pair ($cbs, $management). */
#include <inttypes.h>
#include <stdio.h>

#include <proton/delivery.h>
#include <proton/session.h>
#include <proton/terminus.h>

#include "common/log.h"
#include "eventhubs/client_int.h"

pn_link_t *eh_link_make(eh_client_t *c, bool sender, const char *name, const char *source,
                        const char *target) {
  pn_link_t *l = sender ? pn_sender(c->ssn, name) : pn_receiver(c->ssn, name);
  if (source)
    pn_terminus_set_address(pn_link_source(l), source);
  if (target)
    pn_terminus_set_address(pn_link_target(l), target);
  return l;
}

/* Sends m on l (unsettled). */
void eh_link_send_message(eh_client_t *c, pn_link_t *l, pn_message_t *m) {
  ed_buf_reset(&c->scratch);
  size_t cap = 4096;
  for (;;) {
    if (ed_buf_reserve(&c->scratch, cap))
      return; /* unsent: the request's own timeout reports it */
    size_t n = cap;
    int rc = pn_message_encode(m, c->scratch.data, &n);
    if (rc == 0) {
      char tag[16];
      int tl = snprintf(tag, sizeof tag, "%" PRIu64, ++c->link_seq);
      pn_delivery(l, pn_dtag(tag, (size_t)tl));
      pn_link_send(l, c->scratch.data, n);
      pn_link_advance(l);
      return;
    }
    if (rc != PN_OVERFLOW || cap > (64u << 20))
      return;
    cap *= 2;
  }
}

void eh_link_put_app_str(pn_data_t *d, const char *k, const char *v) {
  pn_data_put_string(d, pn_bytes(strlen(k), k));
  pn_data_put_string(d, pn_bytes(strlen(v), v));
}

void eh_link_init(eh_link_t *l, eh_client_t *c, const char *noun, const char *addr) {
  memset(l, 0, sizeof *l);
  l->c = c;
  l->noun = noun;
  l->addr = addr;
  l->state = EH_STATE_CONNECTING;
}

void eh_link_set_state(eh_link_t *l, eh_state_t st, const ed_err_t *err) {
  eh_client_t *c = l->c;
  pthread_mutex_lock(&c->mu);
  l->state = st;
  if (err)
    l->err = *err;
  if (st == EH_STATE_READY)
    l->ever_ready = true;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

void eh_link_forget(eh_link_t *l) {
  if (l->link) {
    pn_link_set_context(l->link, NULL);
    l->link = NULL;
  }
  l->attached = false;
}

bool eh_link_schedule_retry(eh_link_t *l, const ed_err_t *why) {
  if (!ed_code_is_retriable(why->code) || eh_client_gives_up(l->c, ++l->attempts))
    return false;
  l->reattach_at = ed_time_mono_us() + eh_client_backoff(l->c, l->attempts - 1);
  return true;
}

bool eh_link_close_requested(eh_link_t *l) {
  pthread_mutex_lock(&l->c->mu);
  bool close_req = l->close_req;
  pthread_mutex_unlock(&l->c->mu);
  if (close_req && l->link) {
    pn_link_set_context(l->link, NULL);
    pn_link_close(l->link);
    l->link = NULL;
  }
  return close_req;
}

bool eh_link_reattach_due(eh_link_t *l, int64_t now) {
  if (l->reattach_at && now < l->reattach_at) {
    eh_client_timer_want(l->c, l->reattach_at);
    return false;
  }
  return true;
}

bool eh_link_release(eh_link_t *l) {
  if (!l->close_req || l->link)
    return false;
  l->released = true;
  pthread_cond_broadcast(&l->c->cv);
  return true;
}

void eh_link_detach_reason(const eh_link_t *l, pn_condition_t *cond, bool expired, ed_err_t *why) {
  char what[200];
  snprintf(what, sizeof what, "%s %s", l->noun, l->addr);
  if (pn_condition_is_set(cond))
    eh_client_cond_err(why, cond, what);
  else
    ed_err_set(why, ED_E_CONNECTION, "%s: detached by the service", what);
  if (expired)
    why->code = ED_E_TOKEN_EXPIRED;
}

eh_state_t eh_link_wait_ready(eh_link_t *l, int64_t deadline, ed_err_t *err) {
  while (l->state != EH_STATE_READY && l->state != EH_STATE_FAILED && l->state != EH_STATE_STOLEN &&
         eh_client_wait_until(l->c, deadline))
    ;
  *err = l->err;
  return l->state;
}

bool eh_link_close_wait(eh_link_t *l) {
  eh_client_t *c = l->c;
  l->close_req = true;
  eh_client_wake_locked(c);
  while (!l->released && !c->exited)
    pthread_cond_wait(&c->cv, &c->mu);
  return l->released;
}

ed_code_t eh_link_refuse_if_stopped(eh_client_t *c, ed_err_t *err) {
  if (c->state != EH_STATE_FAILED && !c->stopping)
    return ED_OK;
  return ed_err_set(err, c->err.code ? c->err.code : ED_E_STOPPED, "%s",
                    c->err.msg[0] ? c->err.msg : "client stopped");
}
