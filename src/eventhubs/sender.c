/* sender: senders (reference eventhubs-amqp.md §8): events encoded at
 * eh_sender_send, queued, transferred as credit allows, completed by their
 * outcome; released or retriable rejections re-sent after a backoff, and
 * what was unsettled when a link or connection dropped re-sent on the next
 * (at least once). */
#include <inttypes.h>
#include <stdio.h>

#include <proton/delivery.h>

#include "common/log.h"
#include "eventhubs/client_int.h"
#include "proto/eventhubs.h"

/* The send queues (olist_t) are shared: every ol_ call is made with
 * @locks c->mu held */
static void ol_push_back(olist_t *l, omsg_t *m) {
  m->next = NULL;
  m->prev = l->tail;
  if (l->tail)
    l->tail->next = m;
  else
    l->head = m;
  l->tail = m;
}

static void ol_push_front(olist_t *l, omsg_t *m) {
  m->prev = NULL;
  m->next = l->head;
  if (l->head)
    l->head->prev = m;
  else
    l->tail = m;
  l->head = m;
}

static void ol_remove(olist_t *l, omsg_t *m) {
  if (m->prev)
    m->prev->next = m->next;
  else
    l->head = m->next;
  if (m->next)
    m->next->prev = m->prev;
  else
    l->tail = m->prev;
  m->next = m->prev = NULL;
}

void eh_tx_notify(eh_sender_t *tx, eh_state_t st, const ed_err_t *err) {
  eh_link_set_state(&tx->lk, st, err);
}

/* @locality network thread */
static void tx_attach(eh_client_t *c, eh_sender_t *tx) {
  char name[160];
  snprintf(name, sizeof name, "%s-%" PRIu64, tx->link_name, ++c->link_seq);
  pn_link_t *l = eh_link_make(c, true, name, name, tx->addr);
  pn_link_set_snd_settle_mode(l, PN_SND_UNSETTLED);
  pn_link_set_rcv_settle_mode(l, PN_RCV_FIRST);
  pn_link_set_context(l, tx);
  pn_link_open(l);
  tx->lk.link = l;
  tx->lk.attached = false;
  tx->lk.reattach_at = 0;
}

/* Completes one event: outcome callback, counters, frees it.
 * @locality network thread @locks takes c->mu (released for on_outcome) */
static void tx_complete(eh_sender_t *tx, omsg_t *m, const ed_err_t *err) {
  eh_client_t *c = tx->lk.c;
  pthread_mutex_lock(&c->mu);
  ol_remove(&tx->unacked, m);
  tx->st.in_flight--;
  if (err) {
    tx->st.failed++;
    if (!tx->has_fail) {
      tx->has_fail = true;
      tx->first_fail = *err;
    }
  } else {
    tx->st.accepted++;
  }
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
  if (tx->o.on_outcome)
    tx->o.on_outcome(tx->o.ctx, tx, m->tag, err);
  free(m);
}

/* All unsettled events go back to the front of the queue, in order; with
 * resend they count as retried (they go out again on the next link). */
void eh_tx_requeue_unacked(eh_sender_t *tx, bool resend) {
  eh_client_t *c = tx->lk.c;
  pthread_mutex_lock(&c->mu);
  while (tx->unacked.tail) {
    omsg_t *m = tx->unacked.tail;
    ol_remove(&tx->unacked, m);
    ol_push_front(&tx->queue, m);
    if (resend)
      tx->st.retried++;
  }
  pthread_mutex_unlock(&c->mu);
}

/* The sender stops for good: it and everything still queued fail with why. */
void eh_tx_fail(eh_client_t *c, eh_sender_t *tx, const ed_err_t *why) {
  tx->lk.terminal = true;
  /* a first attach refused is returned by eh_sender_open: no second line */
  ed_log(tx->lk.ever_ready ? ED_LOG_ERROR : ED_LOG_DEBUG, "eh_tx_failed", "target=%s reason=\"%s\"",
         tx->addr, why->msg);
  eh_tx_notify(tx, EH_STATE_FAILED, why);
  for (;;) {
    pthread_mutex_lock(&c->mu);
    omsg_t *m = tx->unacked.head ? tx->unacked.head : tx->queue.head;
    if (m && m == tx->queue.head) {
      ol_remove(&tx->queue, m);
      ol_push_back(&tx->unacked, m);
    }
    pthread_mutex_unlock(&c->mu);
    if (!m)
      break;
    tx_complete(tx, m, why);
  }
}

void eh_tx_lost(eh_client_t *c, eh_sender_t *tx, const ed_err_t *why) {
  eh_link_forget(&tx->lk);
  eh_tx_requeue_unacked(tx, !tx->lk.terminal && ed_code_is_retriable(why->code));
  if (tx->lk.terminal)
    return;
  if (!eh_link_schedule_retry(&tx->lk, why)) {
    eh_tx_fail(c, tx, why);
    return;
  }
  ED_LOG_WARN("eh_tx_retry", "target=%s attempt=%d reason=\"%s\"", tx->addr, tx->lk.attempts,
              why->msg);
  eh_tx_notify(tx, EH_STATE_RETRYING, why);
}

void eh_tx_conn_lost(eh_client_t *c, eh_sender_t *tx, bool fatal, const ed_err_t *why) {
  tx->lk.link = NULL; /* freed with the connection */
  tx->lk.attached = false;
  tx->lk.reattach_at = 0;
  eh_tx_requeue_unacked(tx, !fatal && !tx->lk.terminal);
  if (fatal && !tx->lk.terminal)
    eh_tx_fail(c, tx, why);
}

/* Transfers queued events while the link has credit.
 * @locality network thread @locks takes c->mu */
static void tx_pump(eh_client_t *c, eh_sender_t *tx) {
  if (!tx->lk.link || !tx->lk.attached)
    return;
  int64_t now = ed_time_mono_us();
  while (pn_link_credit(tx->lk.link) > 0) {
    pthread_mutex_lock(&c->mu);
    omsg_t *m = tx->queue.head;
    if (m && m->not_before > now) {
      eh_client_timer_want(c, m->not_before);
      m = NULL;
    }
    if (m) {
      ol_remove(&tx->queue, m);
      ol_push_back(&tx->unacked, m);
    }
    pthread_mutex_unlock(&c->mu);
    if (!m)
      break;
    uint64_t t = ++tx->dtag;
    pn_delivery_t *d = pn_delivery(tx->lk.link, pn_dtag((const char *)&t, sizeof t));
    pn_delivery_set_context(d, m);
    pn_link_send(tx->lk.link, (const char *)m->data, m->len);
    pn_link_advance(tx->lk.link);
  }
}

void eh_tx_delivery(eh_client_t *c, eh_sender_t *tx, pn_delivery_t *d) {
  if (!pn_delivery_updated(d))
    return;
  omsg_t *m = pn_delivery_get_context(d);
  uint64_t state = pn_delivery_remote_state(d);
  if (!m)
    return;
  if (!state) {
    if (!pn_delivery_settled(d))
      return;
    state = PN_ACCEPTED; /* settled without an outcome: the default outcome */
  }
  pn_delivery_set_context(d, NULL);
  pn_condition_t *cond = pn_disposition_condition(pn_delivery_remote(d));
  pn_delivery_settle(d);
  if (state == PN_ACCEPTED) {
    tx->lk.attempts = 0;
    tx_complete(tx, m, NULL);
    return;
  }
  ed_err_t err = {0};
  if (state == PN_REJECTED) {
    eh_client_cond_err(&err, cond, "send rejected");
  } else {
    ed_err_set(&err, ED_E_UNAVAILABLE, "send %s by the service",
               state == PN_RELEASED ? "released" : "modified");
  }
  if (ed_code_is_retriable(err.code) && !eh_client_gives_up(c, ++m->attempts)) {
    m->not_before = ed_time_mono_us() + eh_client_backoff(c, m->attempts - 1);
    eh_client_timer_want(c, m->not_before);
    pthread_mutex_lock(&c->mu);
    ol_remove(&tx->unacked, m);
    ol_push_front(&tx->queue, m);
    tx->st.retried++;
    pthread_mutex_unlock(&c->mu);
    ED_LOG_WARN("eh_send_retry", "target=%s attempt=%d reason=\"%s\"", tx->addr, m->attempts,
                err.msg);
    return;
  }
  tx_complete(tx, m, &err);
}

void eh_tx_reconcile(eh_client_t *c, eh_sender_t *tx, int64_t now) {
  if (eh_link_close_requested(&tx->lk) || tx->lk.terminal)
    return;
  if (!tx->lk.link) {
    if (eh_link_reattach_due(&tx->lk, now))
      tx_attach(c, tx);
    return;
  }
  tx_pump(c, tx);
}

void eh_tx_free(eh_sender_t *tx) {
  for (omsg_t *m = tx->queue.head, *n; m; m = n) {
    n = m->next;
    free(m);
  }
  for (omsg_t *m = tx->unacked.head, *n; m; m = n) {
    n = m->next;
    free(m);
  }
  free(tx->partition);
  free(tx->addr);
  free(tx->link_name);
  free(tx);
}

void eh_sender_opts_init(eh_sender_opts_t *o) {
  memset(o, 0, sizeof *o);
  o->max_in_flight = 1024;
}

ed_code_t eh_sender_open(eh_client_t *c, const eh_sender_opts_t *o, eh_sender_t **out,
                         ed_err_t *err) {
  *out = NULL;
  if (eh_client_on_net_thread(c))
    return ed_err_set(err, ED_E_INTERNAL, "sender open from a client callback");
  eh_sender_t *tx = calloc(1, sizeof *tx);
  if (!tx)
    return ED_E_NOMEM;
  tx->o = *o;
  if (!tx->o.max_in_flight)
    tx->o.max_in_flight = 1024;
  tx->partition = eh_dupstr(o->partition);
  tx->o.partition = tx->partition;
  ed_buf_t a = ED_BUF_INIT;
  if (tx->partition)
    ed_buf_printf(&a, EHP_ADDR_PARTITION_SENDER_FMT, c->hub, tx->partition);
  else
    ed_buf_puts(&a, c->hub);
  tx->addr = ed_buf_steal(&a);
  ed_buf_printf(&a, "tx-%s", c->container);
  tx->link_name = ed_buf_steal(&a);
  eh_link_init(&tx->lk, c, "sender", tx->addr);
  if (!tx->addr || !tx->link_name) {
    eh_tx_free(tx);
    return ED_E_NOMEM;
  }
  pthread_mutex_lock(&c->mu);
  ed_code_t rc = eh_link_refuse_if_stopped(c, err);
  if (rc) {
    pthread_mutex_unlock(&c->mu);
    eh_tx_free(tx);
    return rc;
  }
  tx->next = c->txs;
  c->txs = tx;
  eh_client_wake_locked(c);
  ed_err_t e;
  eh_state_t st = eh_link_wait_ready(&tx->lk, eh_deadline_in(c->o.op_timeout_us), &e);
  pthread_mutex_unlock(&c->mu);
  if (st != EH_STATE_READY) {
    eh_sender_close(tx);
    if (st == EH_STATE_FAILED)
      return ed_err_set(err, e.code ? e.code : ED_E_CONNECTION, "%s", e.msg);
    return ed_err_set(err, ED_E_TIMEOUT, "sender: not attached within %" PRId64 " s%s%s",
                      c->o.op_timeout_us / ED_US_PER_SEC, e.msg[0] ? ": " : "", e.msg);
  }
  *out = tx;
  return ED_OK;
}

ed_code_t eh_sender_send(eh_sender_t *tx, const eh_send_event_t *ev, uint64_t tag,
                         int64_t timeout_us, ed_err_t *err) {
  eh_client_t *c = tx->lk.c;
  if (ev->partition_key && tx->partition)
    return ed_err_set(err, ED_E_INVALID,
                      "event with partition key '%s' on a sender to partition %s: give one or the "
                      "other",
                      ev->partition_key, tx->partition);
  ed_buf_t b = ED_BUF_INIT;
  if (ed_buf_reserve(&b, sizeof(omsg_t) + ev->body_len + 64))
    return ED_E_NOMEM;
  b.len = sizeof(omsg_t);
  if (eh_amqp_encode_event(ev, &b)) {
    ed_buf_fini(&b);
    return ED_E_NOMEM;
  }
  size_t len = b.len - sizeof(omsg_t);
  omsg_t *m = (omsg_t *)ed_buf_steal(&b);
  memset(m, 0, sizeof *m);
  m->tag = tag;
  m->len = len;
  pthread_mutex_lock(&c->mu);
  if (tx->max_msg && len > tx->max_msg) {
    uint64_t mm = tx->max_msg;
    pthread_mutex_unlock(&c->mu);
    free(m);
    return ed_err_set(err, ED_E_TOO_LARGE,
                      "event of %zu bytes (%zu encoded) exceeds the link's max-message-size of "
                      "%" PRIu64 " bytes; not sent",
                      ev->body_len, len, mm);
  }
  int64_t deadline = timeout_us > 0 ? eh_deadline_in(timeout_us) : 0;
  while (tx->st.in_flight >= tx->o.max_in_flight && tx->lk.state != EH_STATE_FAILED) {
    if (timeout_us == 0 || eh_client_on_net_thread(c)) {
      pthread_mutex_unlock(&c->mu);
      free(m);
      return ed_err_set(err, ED_E_THROTTLED, "sender: %zu events in flight", tx->o.max_in_flight);
    }
    if (timeout_us < 0)
      pthread_cond_wait(&c->cv, &c->mu);
    else if (!eh_client_wait_until(c, deadline)) {
      pthread_mutex_unlock(&c->mu);
      free(m);
      return ed_err_set(err, ED_E_TIMEOUT, "sender: still %zu events in flight after the timeout",
                        tx->o.max_in_flight);
    }
  }
  if (tx->lk.state == EH_STATE_FAILED) {
    ed_err_t e = tx->lk.err;
    pthread_mutex_unlock(&c->mu);
    free(m);
    return ed_err_set(err, e.code, "%s", e.msg);
  }
  ol_push_back(&tx->queue, m);
  tx->st.queued++;
  tx->st.in_flight++;
  eh_client_wake_locked(c);
  pthread_mutex_unlock(&c->mu);
  return ED_OK;
}

ed_code_t eh_sender_flush(eh_sender_t *tx, int64_t timeout_us, ed_err_t *err) {
  eh_client_t *c = tx->lk.c;
  if (eh_client_on_net_thread(c))
    return ed_err_set(err, ED_E_INTERNAL, "sender flush from a client callback");
  if (timeout_us <= 0)
    timeout_us = c->o.op_timeout_us;
  int64_t deadline = eh_deadline_in(timeout_us);
  pthread_mutex_lock(&c->mu);
  while (tx->st.in_flight > 0 && eh_client_wait_until(c, deadline))
    ;
  ed_code_t rc = ED_OK;
  if (tx->has_fail) {
    rc = ed_err_set(err, tx->first_fail.code, "%s", tx->first_fail.msg);
    tx->has_fail = false;
  } else if (tx->st.in_flight > 0) {
    rc = ed_err_set(err, ED_E_TIMEOUT,
                    "sender: %" PRIu64 " events still in flight after %" PRId64 " s",
                    tx->st.in_flight, timeout_us / ED_US_PER_SEC);
  }
  pthread_mutex_unlock(&c->mu);
  return rc;
}

uint64_t eh_sender_max_message_size(eh_sender_t *tx) {
  pthread_mutex_lock(&tx->lk.c->mu);
  uint64_t v = tx->max_msg;
  pthread_mutex_unlock(&tx->lk.c->mu);
  return v;
}

void eh_sender_stats(eh_sender_t *tx, eh_sender_stats_t *out) {
  pthread_mutex_lock(&tx->lk.c->mu);
  *out = tx->st;
  pthread_mutex_unlock(&tx->lk.c->mu);
}

void eh_sender_close(eh_sender_t *tx) {
  if (!tx)
    return;
  eh_client_t *c = tx->lk.c;
  if (tx->lk.ever_ready && tx->lk.state != EH_STATE_FAILED)
    eh_sender_flush(tx, c->o.op_timeout_us, NULL);
  pthread_mutex_lock(&c->mu);
  if (!eh_link_close_wait(&tx->lk))
    for (eh_sender_t **pp = &c->txs; *pp; pp = &(*pp)->next)
      if (*pp == tx) {
        *pp = tx->next;
        break;
      }
  pthread_mutex_unlock(&c->mu);
  /* what never got an outcome is reported stopped */
  if (tx->o.on_outcome) {
    ed_err_t e;
    ed_err_set(&e, ED_E_STOPPED, "sender closed before the service answered");
    for (omsg_t *m = tx->unacked.head; m; m = m->next)
      tx->o.on_outcome(tx->o.ctx, tx, m->tag, &e);
    for (omsg_t *m = tx->queue.head; m; m = m->next)
      tx->o.on_outcome(tx->o.ctx, tx, m->tag, &e);
  }
  eh_tx_free(tx);
}
