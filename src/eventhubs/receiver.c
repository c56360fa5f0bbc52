/* receiver: partition receivers (reference eventhubs-amqp.md §6-§7): the
 * attach with its position filter and epoch, deliveries kept as raw bytes
 * until the consumer takes them, decode and dispatch in batches, credit as
 * back-pressure, re-attach after the last sequence number taken; and event
 * positions (parse, filter expression). */
#include <inttypes.h>
#include <stdio.h>

#include <proton/codec.h>
#include <proton/delivery.h>
#include <proton/terminus.h>

#include "common/log.h"
#include "eventhubs/client_int.h"
#include "proto/eventhubs.h"

void eh_rx_notify(eh_receiver_t *rx, eh_state_t st, const ed_err_t *err) {
  eh_link_set_state(&rx->lk, st, err);
  if (rx->o.on_state)
    rx->o.on_state(rx->o.ctx, rx, st, err);
}

/* Attaches rx from its position (after the last sequence number taken, once
 * anything was). @locality network thread */
static void rx_attach(eh_client_t *c, eh_receiver_t *rx) {
  eh_position_t pos = rx->o.start;
  int64_t last = atomic_load(&rx->last_seq);
  if (last >= 0) {
    /* resume right after what the consumer took: no loss, no repeat */
    pos.kind = EH_POS_SEQUENCE;
    pos.inclusive = false;
    pos.value = last;
  }
  char expr[160];
  eh_position_filter(&pos, expr, sizeof expr);
  /* Unique in the client, as senders' are: a closed link whose detach the
   * service has not answered yet still matches its name in Proton, which
   * would take the service's attach of a new receiver of the same partition
   * (a run's next generation) for the old link and then send flow frames on
   * its unmapped handle (amqp:invalid-field "no such handle", the connection
   * closed) */
  char name[200];
  snprintf(name, sizeof name, "%s-%" PRIu64, rx->link_name, ++c->link_seq);
  pn_link_t *l = eh_link_make(c, false, name, rx->addr, name);
  pn_data_t *f = pn_terminus_filter(pn_link_source(l));
  pn_data_put_map(f);
  pn_data_enter(f);
  pn_data_put_symbol(f, pn_bytes(strlen(EHP_FILTER_KEY), EHP_FILTER_KEY));
  pn_data_put_described(f);
  pn_data_enter(f);
  pn_data_put_symbol(f, pn_bytes(strlen(EHP_FILTER_KEY), EHP_FILTER_KEY));
  pn_data_put_string(f, pn_bytes(strlen(expr), expr));
  pn_data_exit(f);
  pn_data_exit(f);
  if (rx->o.has_epoch || rx->name) {
    pn_data_t *p = pn_link_properties(l);
    pn_data_put_map(p);
    pn_data_enter(p);
    if (rx->o.has_epoch) {
      pn_data_put_symbol(p, pn_bytes(strlen(EHP_LINK_EPOCH), EHP_LINK_EPOCH));
      pn_data_put_long(p, rx->o.epoch);
    }
    if (rx->name) {
      pn_data_put_symbol(p, pn_bytes(strlen(EHP_LINK_RECEIVER_NAME), EHP_LINK_RECEIVER_NAME));
      pn_data_put_string(p, pn_bytes(strlen(rx->name), rx->name));
    }
    pn_data_exit(p);
  }
  pn_link_set_snd_settle_mode(l, PN_SND_SETTLED);
  pn_link_set_rcv_settle_mode(l, PN_RCV_FIRST);
  pn_link_set_context(l, rx);
  pn_link_open(l);
  pn_link_flow(l, (int)rx->o.prefetch);
  rx->lk.link = l;
  rx->lk.attached = false;
  rx->paused = false;
  rx->lk.reattach_at = 0;
  ED_LOG_DEBUG("eh_rx_attach", "partition=%s filter=\"%s\"", rx->partition, expr);
}

void eh_rx_drop_pending(eh_receiver_t *rx) {
  rx->pend_head = rx->pend_count = 0;
  ed_buf_reset(&rx->raw);
}

void eh_rx_lost(eh_receiver_t *rx, const ed_err_t *why) {
  eh_link_forget(&rx->lk);
  eh_rx_drop_pending(rx);
  if (rx->lk.terminal)
    return;
  /* a first attach refused is returned by eh_receiver_open itself: no log
   * line beside the caller's message */
  ed_log_level_t lvl = rx->lk.ever_ready ? ED_LOG_WARN : ED_LOG_DEBUG;
  if (why->code == ED_E_LINK_STOLEN) {
    rx->lk.terminal = true;
    ed_log(lvl, "eh_rx_stolen", "partition=%s reason=\"%s\"", rx->partition, why->msg);
    eh_rx_notify(rx, EH_STATE_STOLEN, why);
    return;
  }
  if (!eh_link_schedule_retry(&rx->lk, why)) {
    rx->lk.terminal = true;
    ed_log(rx->lk.ever_ready ? ED_LOG_ERROR : ED_LOG_DEBUG, "eh_rx_failed",
           "partition=%s reason=\"%s\"", rx->partition, why->msg);
    eh_rx_notify(rx, EH_STATE_FAILED, why);
    return;
  }
  ED_LOG_WARN("eh_rx_retry", "partition=%s attempt=%d reason=\"%s\"", rx->partition,
              rx->lk.attempts, why->msg);
  eh_rx_notify(rx, EH_STATE_RETRYING, why);
}

void eh_rx_conn_lost(eh_receiver_t *rx, bool fatal, bool was_authed, const ed_err_t *why) {
  rx->lk.link = NULL; /* freed with the connection */
  if (rx->lk.terminal)
    return;
  rx->lk.attached = false;
  eh_rx_drop_pending(rx);
  rx->lk.reattach_at = 0;
  if (fatal) {
    rx->lk.terminal = true;
    eh_rx_notify(rx, EH_STATE_FAILED, why);
  } else if (was_authed) {
    eh_rx_notify(rx, EH_STATE_RETRYING, why);
  }
}

/* Room for n events in the dispatch scratch. @locality network thread */
static ed_code_t rx_grow(eh_receiver_t *rx, size_t n) {
  if (n <= rx->evs_cap)
    return ED_OK;
  size_t cap = rx->evs_cap ? rx->evs_cap : 64;
  while (cap < n)
    cap *= 2;
  eh_event_t *e = realloc(rx->evs, cap * sizeof *e);
  if (!e)
    return ED_E_NOMEM;
  rx->evs = e;
  size_t *bo = realloc(rx->body_off, cap * sizeof *bo);
  if (!bo)
    return ED_E_NOMEM;
  rx->body_off = bo;
  size_t *ps = realloc(rx->pstart, (cap + 1) * sizeof *ps);
  if (!ps)
    return ED_E_NOMEM;
  rx->pstart = ps;
  rx->evs_cap = cap;
  return ED_OK;
}

/* Tops the credit up to prefetch less what is still pending: the ring's
 * back-pressure reaches the service here. @locality network thread */
static void rx_credit(eh_receiver_t *rx) {
  if (!rx->lk.link || rx->paused || rx->lk.terminal)
    return;
  int have = pn_link_credit(rx->lk.link) + (int)(rx->pend_count - rx->pend_head);
  int want = (int)rx->o.prefetch - have;
  /* top up in chunks, not one flow frame per event */
  if (want > 0 && (want >= (int)rx->o.prefetch / 2 || have == 0))
    pn_link_flow(rx->lk.link, want);
}

/* Hands pending events to the consumer, as many as it takes.
 * @locality network thread (on_events runs here, no lock held) */
static void rx_dispatch(eh_client_t *c, eh_receiver_t *rx) {
  while (rx->pend_head < rx->pend_count && !rx->lk.terminal) {
    if (rx->paused) {
      if (!atomic_exchange(&rx->resume_req, false))
        return;
      rx->paused = false;
    }
    size_t n = rx->pend_count - rx->pend_head;
    if (rx->o.max_batch && n > rx->o.max_batch)
      n = rx->o.max_batch;
    if (rx_grow(rx, n))
      return;
    ed_buf_reset(&rx->arena);
    size_t naprops = 0;
    bool fixup = false; /* some event points into the arena (which may still move) */
    ed_err_t err;       /* read only after eh_amqp_decode set it: no zeroing per event */
    for (size_t i = 0; i < n; i++) {
      pend_t *pd = &rx->pend[rx->pend_head + i];
      const uint8_t *p = (const uint8_t *)rx->raw.data + pd->off;
      eh_amqp_msg_t m;
      eh_event_t *e = &rx->evs[i];
      rx->body_off[i] = SIZE_MAX;
      rx->pstart[i] = naprops;
      if (eh_amqp_decode(p, pd->len, &m, &err)) {
        ED_LOG_ERR("eh_rx_decode", "partition=%s reason=\"%s\"", rx->partition, err.msg);
        memset(&m, 0, sizeof m);
        m.body_kind = EH_BODY_OTHER;
        m.body = p;
        m.body_len = pd->len;
      } else {
        if (m.ndata > 1) {
          rx->body_off[i] = rx->arena.len;
          eh_amqp_data_concat(m.body_sections, m.body_sections_len, &rx->arena);
          m.body_len = rx->arena.len - rx->body_off[i];
          fixup = true;
        }
        if (m.app_props)
          eh_amqp_props(m.app_props, m.app_props_len, &rx->arena, &rx->aprops, &rx->aprops_cap,
                        &naprops, NULL);
      }
      e->partition = rx->partition;
      e->body = m.body;
      e->body_len = m.body_len;
      e->body_kind = m.body_kind;
      e->sequence_number = m.has_seq ? m.seq : -1;
      e->offset = m.has_offset ? m.offset : -1;
      e->enqueued_time_us = m.has_enqueued ? m.enqueued_ms * 1000 : 0;
      e->partition_key = m.partition_key;
      e->partition_key_len = m.partition_key_len;
      e->publisher = m.publisher;
      e->publisher_len = m.publisher_len;
      e->props = NULL;
      e->nprops = 0;
      e->content_type = m.content_type;
      e->content_type_len = m.content_type_len;
    }
    rx->pstart[n] = naprops;
    if (naprops > rx->props_cap) {
      eh_prop_t *np = realloc(rx->props, naprops * sizeof *np);
      if (!np)
        return;
      rx->props = np;
      rx->props_cap = naprops;
    }
    /* the arena no longer moves; point into it */
    for (size_t j = 0; j < naprops; j++) {
      eh_amqp_prop_t *a = &rx->aprops[j];
      rx->props[j] = (eh_prop_t){a->key, a->key_len,
                                 a->text_in_arena ? rx->arena.data + a->text_off : a->text_wire,
                                 a->text_len, a->kind};
    }
    if (fixup || naprops)
      for (size_t i = 0; i < n; i++) {
        eh_event_t *e = &rx->evs[i];
        if (rx->body_off[i] != SIZE_MAX)
          e->body = rx->arena.data + rx->body_off[i];
        e->nprops = rx->pstart[i + 1] - rx->pstart[i];
        e->props = naprops ? rx->props + rx->pstart[i] : NULL;
      }
    size_t took = rx->o.on_events(rx->o.ctx, rx, rx->evs, n);
    if (took > n)
      took = n;
    if (took) {
      atomic_store(&rx->last_seq, rx->evs[took - 1].sequence_number);
      rx->lk.attempts = 0;
    }
    rx->pend_head += took;
    if (took < n) {
      rx->paused = true;
      /* a resume that raced with the callback is honoured next round */
      if (!atomic_load(&rx->resume_req))
        break;
    }
  }
  if (rx->pend_head == rx->pend_count) {
    eh_rx_drop_pending(rx);
  } else if (rx->pend_head > 0 && rx->pend_head * 2 >= rx->pend_count) {
    /* compact so the raw buffer stays bounded by the credit window */
    size_t from = rx->pend[rx->pend_head].off;
    memmove(rx->raw.data, rx->raw.data + from, rx->raw.len - from);
    rx->raw.len -= from;
    size_t k = 0;
    for (size_t i = rx->pend_head; i < rx->pend_count; i++, k++) {
      rx->pend[k] = rx->pend[i];
      rx->pend[k].off -= from;
    }
    rx->pend_head = 0;
    rx->pend_count = k;
  }
  rx_credit(rx);
}

void eh_rx_delivery(eh_receiver_t *rx, pn_delivery_t *d) {
  pn_link_t *l = pn_delivery_link(d);
  if (!pn_delivery_readable(d) || pn_delivery_partial(d))
    return;
  size_t n = pn_delivery_pending(d);
  if (rx->pend_count == rx->pend_cap) {
    size_t cap = rx->pend_cap ? rx->pend_cap * 2 : 64;
    pend_t *np = realloc(rx->pend, cap * sizeof *np);
    if (!np)
      return;
    rx->pend = np;
    rx->pend_cap = cap;
  }
  if (ed_buf_reserve(&rx->raw, n))
    return;
  ssize_t got = pn_link_recv(l, rx->raw.data + rx->raw.len, n);
  if (got > 0) {
    rx->pend[rx->pend_count++] = (pend_t){rx->raw.len, (size_t)got};
    rx->raw.len += (size_t)got;
  }
  if (!pn_delivery_settled(d))
    pn_delivery_update(d, PN_ACCEPTED);
  /* advance first: settling the current delivery advances the link itself,
   * and a second advance would skip (lose) the next delivery */
  pn_link_advance(l);
  pn_delivery_settle(d);
}

/* Whether rx may attach now. A receiver asked to start at latest whose
 * consumer has taken nothing yet must not attach at "latest" again after a
 * drop (what arrived meanwhile would be skipped), so its start is pinned
 * once, before the first attach, to "after the partition's last sequence
 * number" read through $management. @locality network thread
 * @locks takes c->mu */
static bool rx_start_ready(eh_client_t *c, eh_receiver_t *rx, int64_t now) {
  if (rx->o.start.kind != EH_POS_LATEST || atomic_load(&rx->last_seq) >= 0)
    return true;
  mreq_t *r = rx->resolve;
  if (!r) {
    r = calloc(1, sizeof *r);
    if (!r || !(r->partition = eh_dupstr(rx->partition))) {
      free(r);
      return true; /* no memory for the pin: attach at latest as asked */
    }
    r->kind = MREQ_PARTITION;
    r->deadline = now + c->o.op_timeout_us;
    pthread_mutex_lock(&c->mu);
    r->id = ++c->next_id + (UINT64_C(1) << 40);
    r->next = c->mreqs;
    c->mreqs = r;
    pthread_mutex_unlock(&c->mu);
    rx->resolve = r;
    eh_client_timer_want(c, r->deadline);
    return false; /* sent by the management step of this sync */
  }
  pthread_mutex_lock(&c->mu);
  bool done = r->done;
  ed_code_t rc = r->rc;
  ed_err_t why = r->err;
  int64_t last = r->part.last_seq;
  pthread_mutex_unlock(&c->mu);
  if (!done && now < r->deadline) {
    eh_client_timer_want(c, r->deadline);
    return false;
  }
  if (!done)
    rc = ed_err_set(&why, ED_E_TIMEOUT,
                    "receiver %s: management READ of the partition unanswered within %" PRId64 " s",
                    rx->addr, c->o.op_timeout_us / ED_US_PER_SEC);
  pthread_mutex_lock(&c->mu);
  eh_mgmt_req_unlink_free(c, r);
  pthread_mutex_unlock(&c->mu);
  rx->resolve = NULL;
  if (rc) {
    eh_rx_lost(rx, &why);
    return false;
  }
  if (last >= 0)
    rx->o.start = (eh_position_t){.kind = EH_POS_SEQUENCE, .inclusive = false, .value = last};
  else
    rx->o.start = (eh_position_t){.kind = EH_POS_EARLIEST};
  ED_LOG_DEBUG("eh_rx_latest", "partition=%s after_seq=%" PRId64, rx->partition, last);
  return true;
}

void eh_rx_reconcile(eh_client_t *c, eh_receiver_t *rx, int64_t now) {
  if (eh_link_close_requested(&rx->lk) || rx->lk.terminal)
    return;
  if (!rx->lk.link) {
    if (eh_link_reattach_due(&rx->lk, now) && rx_start_ready(c, rx, now))
      rx_attach(c, rx);
    return;
  }
  if (rx->lk.attached)
    rx_dispatch(c, rx);
}

ed_code_t eh_position_parse(const char *s, eh_position_t *p, ed_err_t *err) {
  memset(p, 0, sizeof *p);
  if (!s)
    return ed_err_set(err, ED_E_INVALID, "position: empty");
  if (!strcmp(s, "earliest") || !strcmp(s, "-1")) {
    p->kind = EH_POS_EARLIEST;
    return ED_OK;
  }
  if (!strcmp(s, "latest") || !strcmp(s, "@latest")) {
    p->kind = EH_POS_LATEST;
    return ED_OK;
  }
  static const struct {
    const char *prefix;
    eh_pos_kind_t kind;
    bool inclusive;
  } forms[] = {
      {"offset>=", EH_POS_OFFSET, true}, {"offset>", EH_POS_OFFSET, false},
      {"offset:", EH_POS_OFFSET, false}, {"seq>=", EH_POS_SEQUENCE, true},
      {"seq>", EH_POS_SEQUENCE, false},  {"seq:", EH_POS_SEQUENCE, true},
      {"time>=", EH_POS_ENQUEUED, true}, {"time>", EH_POS_ENQUEUED, false},
      {"time:", EH_POS_ENQUEUED, false},
  };
  for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
    size_t n = strlen(forms[i].prefix);
    if (strncmp(s, forms[i].prefix, n))
      continue;
    const char *v = s + n;
    p->kind = forms[i].kind;
    p->inclusive = forms[i].inclusive;
    if (p->kind == EH_POS_ENQUEUED) {
      ed_err_t e2 = {0};
      if (ed_time_parse_iso(v, strlen(v), &p->value, &e2))
        return ed_err_set(err, ED_E_INVALID, "position '%s': expected an ISO-8601 time: %s", s,
                          e2.msg);
      return ED_OK;
    }
    char *end;
    long long x = strtoll(v, &end, 10);
    if (!*v || *end || x < 0)
      return ed_err_set(err, ED_E_INVALID,
                        "position '%s': expected a non-negative integer after '%s'", s,
                        forms[i].prefix);
    p->value = x;
    return ED_OK;
  }
  return ed_err_set(err, ED_E_INVALID,
                    "position '%s': expected earliest, latest, offset:N, offset>=N, seq:N, seq>N, "
                    "time:ISO-8601 or time>=ISO-8601",
                    s);
}

size_t eh_position_filter(const eh_position_t *p, char *out, size_t n) {
  const char *op = p->inclusive ? ">=" : ">";
  int w;
  switch (p->kind) {
  case EH_POS_EARLIEST:
    w = snprintf(out, n, "%s > '%s'", EHP_FILTER_OFFSET, EHP_OFFSET_START);
    break;
  case EH_POS_LATEST:
    w = snprintf(out, n, "%s > '%s'", EHP_FILTER_OFFSET, EHP_OFFSET_LATEST);
    break;
  case EH_POS_OFFSET:
    w = snprintf(out, n, "%s %s '%" PRId64 "'", EHP_FILTER_OFFSET, op, p->value);
    break;
  case EH_POS_SEQUENCE:
    w = snprintf(out, n, "%s %s '%" PRId64 "'", EHP_FILTER_SEQ, op, p->value);
    break;
  default:
    w = snprintf(out, n, "%s %s '%" PRId64 "'", EHP_FILTER_ENQUEUED, op,
                 ed_floordiv(p->value, 1000));
    break;
  }
  return w < 0 ? 0 : (size_t)w;
}

void eh_receiver_opts_init(eh_receiver_opts_t *o) {
  memset(o, 0, sizeof *o);
  o->consumer_group = EHP_DEFAULT_CONSUMER_GROUP;
  o->start.kind = EH_POS_EARLIEST;
  o->prefetch = 300;
}

void eh_rx_free(eh_receiver_t *rx) {
  ed_buf_fini(&rx->raw);
  ed_buf_fini(&rx->arena);
  free(rx->pend);
  free(rx->body_off);
  free(rx->pstart);
  free(rx->evs);
  free(rx->aprops);
  free(rx->props);
  free(rx->cg);
  free(rx->partition);
  free(rx->name);
  free(rx->addr);
  free(rx->link_name);
  free(rx);
}

ed_code_t eh_receiver_open(eh_client_t *c, const eh_receiver_opts_t *o, eh_receiver_t **out,
                           ed_err_t *err) {
  *out = NULL;
  if (!o->partition || !*o->partition || !o->on_events)
    return ed_err_set(err, ED_E_INVALID, "receiver: a partition id and on_events are required");
  if (!o->no_wait && eh_client_on_net_thread(c))
    return ed_err_set(err, ED_E_INTERNAL, "receiver open from a client callback");
  eh_receiver_t *rx = calloc(1, sizeof *rx);
  if (!rx)
    return ED_E_NOMEM;
  rx->o = *o;
  if (!rx->o.prefetch)
    rx->o.prefetch = 300;
  if (!rx->o.max_batch)
    rx->o.max_batch = rx->o.prefetch;
  rx->cg = eh_dupstr(o->consumer_group ? o->consumer_group : EHP_DEFAULT_CONSUMER_GROUP);
  rx->partition = eh_dupstr(o->partition);
  rx->name = eh_dupstr(o->receiver_name);
  ed_buf_t a = ED_BUF_INIT;
  ed_buf_printf(&a, EHP_ADDR_RECEIVER_FMT, c->hub, rx->cg, rx->partition);
  rx->addr = ed_buf_steal(&a);
  ed_buf_printf(&a, "rx-%s-%s", rx->partition, c->container);
  rx->link_name = ed_buf_steal(&a);
  eh_link_init(&rx->lk, c, "receiver", rx->addr);
  rx->o.consumer_group = rx->cg;
  rx->o.partition = rx->partition;
  rx->o.receiver_name = rx->name;
  atomic_init(&rx->last_seq, -1);
  atomic_init(&rx->resume_req, false);
  if (!rx->cg || !rx->partition || !rx->addr || !rx->link_name) {
    eh_rx_free(rx);
    return ED_E_NOMEM;
  }
  pthread_mutex_lock(&c->mu);
  ed_code_t rc = eh_link_refuse_if_stopped(c, err);
  if (rc) {
    pthread_mutex_unlock(&c->mu);
    eh_rx_free(rx);
    return rc;
  }
  rx->next = c->rxs;
  c->rxs = rx;
  eh_client_wake_locked(c);
  if (o->no_wait) {
    pthread_mutex_unlock(&c->mu);
    *out = rx;
    return ED_OK;
  }
  ed_err_t e;
  eh_state_t st = eh_link_wait_ready(&rx->lk, eh_deadline_in(c->o.op_timeout_us), &e);
  pthread_mutex_unlock(&c->mu);
  if (st != EH_STATE_READY) {
    eh_receiver_close(rx);
    if (st == EH_STATE_CONNECTING || st == EH_STATE_RETRYING)
      return ed_err_set(
          err, ED_E_TIMEOUT, "receiver for partition %s: not attached within %" PRId64 " s%s%s",
          o->partition, c->o.op_timeout_us / ED_US_PER_SEC, e.msg[0] ? ": " : "", e.msg);
    return ed_err_set(err, e.code == ED_OK ? ED_E_CONNECTION : e.code, "%s", e.msg);
  }
  *out = rx;
  return ED_OK;
}

void eh_receiver_close(eh_receiver_t *rx) {
  if (!rx)
    return;
  eh_client_t *c = rx->lk.c;
  pthread_mutex_lock(&c->mu);
  if (!eh_link_close_wait(&rx->lk)) {
    /* network thread gone: unlink ourselves */
    for (eh_receiver_t **pp = &c->rxs; *pp; pp = &(*pp)->next)
      if (*pp == rx) {
        *pp = rx->next;
        break;
      }
  }
  pthread_mutex_unlock(&c->mu);
  if (rx->o.on_state)
    rx->o.on_state(rx->o.ctx, rx, EH_STATE_CLOSED, NULL);
  eh_rx_free(rx);
}

void eh_receiver_resume(eh_receiver_t *rx) {
  if (!atomic_exchange(&rx->resume_req, true))
    eh_client_wake(rx->lk.c);
}

int64_t eh_receiver_last_seq(eh_receiver_t *rx) { return atomic_load(&rx->last_seq); }
