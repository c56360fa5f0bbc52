/* mgmt: the $management node (reference eventhubs-amqp.md §5): READ of the
 * hub and of a partition, for callers (eh_client_hub_props,
 * eh_client_partition_props, which block) and for receivers pinning a start
 * at latest (no caller waits: a deadline bounds it). */
#include <inttypes.h>
#include <stdio.h>

#include <proton/codec.h>

#include "common/log.h"
#include "eventhubs/client_int.h"
#include "proto/eventhubs.h"

/* how often the session window is re-announced while a reply is awaited */
#define MGMT_WINDOW_POKE_US 50000

void eh_mgmt_open(eh_client_t *c) {
  c->mgmt_tx = eh_link_make(c, true, "mgmt-sender", EHP_MGMT_NODE, EHP_MGMT_NODE);
  c->mgmt_rx = eh_link_make(c, false, "mgmt-receiver", EHP_MGMT_NODE, EHP_MGMT_NODE);
  pn_link_open(c->mgmt_tx);
  pn_link_open(c->mgmt_rx);
  pn_link_flow(c->mgmt_rx, 64);
}

/* One READ request on the management link. @locality network thread
 * @locks c->mu held (r is in the shared list) */
static void mgmt_send(eh_client_t *c, mreq_t *r) {
  pn_message_t *m = c->msg;
  pn_message_clear(m);
  pn_atom_t id = {.type = PN_ULONG, .u.as_ulong = r->id};
  pn_message_set_id(m, id);
  pn_data_t *ap = pn_message_properties(m);
  pn_data_put_map(ap);
  pn_data_enter(ap);
  eh_link_put_app_str(ap, EHP_MGMT_KEY_OPERATION, EHP_MGMT_OP_READ);
  eh_link_put_app_str(ap, EHP_MGMT_KEY_NAME, c->hub);
  if (r->kind == MREQ_HUB) {
    eh_link_put_app_str(ap, EHP_MGMT_KEY_TYPE, EHP_MGMT_TYPE_EVENTHUB);
  } else {
    eh_link_put_app_str(ap, EHP_MGMT_KEY_TYPE, EHP_MGMT_TYPE_PARTITION);
    eh_link_put_app_str(ap, EHP_MGMT_KEY_PARTITION, r->partition);
  }
  ed_buf_t tok = ED_BUF_INIT;
  int64_t exp;
  if (eh_cbs_make_token(c, &tok, &exp, NULL) == ED_OK)
    eh_link_put_app_str(ap, EHP_MGMT_KEY_SECURITY_TOKEN, tok.data);
  explicit_bzero(tok.data, tok.len);
  ed_buf_fini(&tok);
  pn_data_exit(ap);
  eh_link_send_message(c, c->mgmt_tx, m);
  r->sent = true;
}

/* Positions d on the value of key in the map d is positioned on (entered).
 * @locks none (d is the network thread's message) */
static bool map_get(pn_data_t *d, const char *key) {
  pn_data_rewind(d);
  if (!pn_data_next(d) || pn_data_type(d) != PN_MAP)
    return false;
  pn_data_enter(d);
  size_t kl = strlen(key);
  while (pn_data_next(d)) {
    pn_type_t t = pn_data_type(d);
    pn_bytes_t k = t == PN_STRING   ? pn_data_get_string(d)
                   : t == PN_SYMBOL ? pn_data_get_symbol(d)
                                    : pn_bytes(0, NULL);
    if (!pn_data_next(d))
      break;
    if (k.size == kl && !memcmp(k.start, key, kl))
      return true;
  }
  return false;
}

/* @locks none */
static bool data_int(pn_data_t *d, int64_t *v) {
  switch (pn_data_type(d)) {
  case PN_LONG:
    *v = pn_data_get_long(d);
    return true;
  case PN_INT:
    *v = pn_data_get_int(d);
    return true;
  case PN_UINT:
    *v = pn_data_get_uint(d);
    return true;
  case PN_ULONG:
    *v = (int64_t)pn_data_get_ulong(d);
    return true;
  case PN_SHORT:
    *v = pn_data_get_short(d);
    return true;
  case PN_TIMESTAMP:
    *v = pn_data_get_timestamp(d);
    return true;
  case PN_STRING: {
    pn_bytes_t b = pn_data_get_string(d);
    char tmp[32];
    if (b.size == 0 || b.size >= sizeof tmp)
      return false;
    memcpy(tmp, b.start, b.size);
    tmp[b.size] = 0;
    char *end;
    *v = strtoll(tmp, &end, 10);
    return *end == 0;
  }
  default:
    return false;
  }
}

/* Caller frees. @locks none */
static char *data_str(pn_data_t *d) {
  pn_type_t t = pn_data_type(d);
  if (t != PN_STRING && t != PN_SYMBOL)
    return NULL;
  pn_bytes_t b = t == PN_STRING ? pn_data_get_string(d) : pn_data_get_symbol(d);
  return strndup(b.start, b.size);
}

/* @locality network thread @locks c->mu held (h is in a shared request) */
static ed_code_t parse_hub(pn_data_t *d, eh_hub_props_t *h, ed_err_t *err) {
  int64_t v;
  if (map_get(d, EHP_HUB_NAME))
    h->name = data_str(d);
  if (map_get(d, EHP_HUB_CREATED_AT) && data_int(d, &v))
    h->created_at_us = v * 1000;
  if (!map_get(d, EHP_HUB_PARTITION_IDS))
    return ed_err_set(err, ED_E_PROTOCOL, "management READ of the hub: no %s in the response",
                      EHP_HUB_PARTITION_IDS);
  pn_type_t t = pn_data_type(d);
  size_t n = t == PN_ARRAY ? pn_data_get_array(d) : t == PN_LIST ? pn_data_get_list(d) : 0;
  h->partition_ids = calloc(n + 1, sizeof *h->partition_ids);
  if (!h->partition_ids)
    return ED_E_NOMEM;
  pn_data_enter(d);
  size_t k = 0;
  while (k < n && pn_data_next(d)) {
    char *s = data_str(d);
    if (s)
      h->partition_ids[k++] = s;
  }
  pn_data_exit(d);
  h->partition_count = (int)k;
  return ED_OK;
}

/* @locality network thread @locks c->mu held (p is in a shared request) */
static ed_code_t parse_part(pn_data_t *d, eh_partition_props_t *p, ed_err_t *err) {
  int64_t v;
  p->last_seq = p->last_offset = -1;
  if (map_get(d, EHP_PART_NAME))
    p->hub = data_str(d);
  if (map_get(d, EHP_PART_PARTITION))
    p->partition = data_str(d);
  if (!map_get(d, EHP_PART_BEGIN_SEQ) || !data_int(d, &p->begin_seq))
    return ed_err_set(err, ED_E_PROTOCOL, "management READ of a partition: no %s",
                      EHP_PART_BEGIN_SEQ);
  if (map_get(d, EHP_PART_LAST_SEQ) && data_int(d, &v))
    p->last_seq = v;
  if (map_get(d, EHP_PART_LAST_OFFSET) && data_int(d, &v))
    p->last_offset = v;
  if (map_get(d, EHP_PART_LAST_TIME) && data_int(d, &v))
    p->last_enqueued_us = v * 1000;
  if (map_get(d, EHP_PART_IS_EMPTY) && pn_data_type(d) == PN_BOOL)
    p->is_empty = pn_data_get_bool(d);
  return ED_OK;
}

/* Reads status-code and status-description from a response message. */
int eh_mgmt_status(pn_message_t *m, char *desc, size_t n) {
  pn_data_t *ap = pn_message_properties(m);
  int64_t code = 0;
  desc[0] = 0;
  if (map_get(ap, EHP_RESP_STATUS_DESC)) {
    char *s = data_str(ap);
    if (s) {
      snprintf(desc, n, "%s", s);
      free(s);
    }
  }
  if (!map_get(ap, EHP_RESP_STATUS_CODE) || !data_int(ap, &code)) {
    if (map_get(ap, "statusCode"))
      data_int(ap, &code);
  }
  return (int)code;
}

ed_code_t eh_mgmt_status_code(int status) {
  switch (status) {
  case 400:
    return ED_E_INVALID;
  case 401:
  case 403:
    return ED_E_UNAUTHORIZED;
  case 404:
    return ED_E_NOT_FOUND;
  case 408:
    return ED_E_TIMEOUT;
  case 410:
    return ED_E_LINK_STOLEN;
  case 503:
    return ED_E_SERVER_BUSY;
  default:
    return status >= 500 ? ED_E_UNAVAILABLE : ED_E_PROTOCOL;
  }
}

void eh_mgmt_response(eh_client_t *c, pn_message_t *m) {
  pn_atom_t cid = pn_message_get_correlation_id(m);
  if (cid.type != PN_ULONG)
    return;
  char desc[256];
  int status = eh_mgmt_status(m, desc, sizeof desc);
  pthread_mutex_lock(&c->mu);
  for (mreq_t *r = c->mreqs; r; r = r->next) {
    if (r->id != cid.u.as_ulong || r->done)
      continue;
    if (status < 200 || status > 299) {
      r->rc = ed_err_set(
          &r->err, eh_mgmt_status_code(status), "management READ of %s%s%s%s: status %d%s%s",
          r->kind == MREQ_HUB ? "hub " : "partition ", c->hub, r->kind == MREQ_HUB ? "" : "/",
          r->kind == MREQ_HUB ? "" : r->partition, status, desc[0] ? ": " : "", desc);
    } else {
      pn_data_t *body = pn_message_body(m);
      r->rc = r->kind == MREQ_HUB ? parse_hub(body, &r->hub, &r->err)
                                  : parse_part(body, &r->part, &r->err);
    }
    r->done = true;
    pthread_cond_broadcast(&c->cv);
    break;
  }
  pthread_mutex_unlock(&c->mu);
}

void eh_mgmt_req_unlink_free(eh_client_t *c, mreq_t *r) {
  for (mreq_t **pp = &c->mreqs; *pp; pp = &(*pp)->next)
    if (*pp == r) {
      *pp = r->next;
      break;
    }
  eh_mgmt_req_free(r);
}

void eh_mgmt_req_free(mreq_t *r) {
  eh_hub_props_fini(&r->hub);
  eh_partition_props_fini(&r->part);
  free(r->partition);
  free(r);
}

void eh_mgmt_send_pending(eh_client_t *c) {
  bool waiting = false;
  pthread_mutex_lock(&c->mu);
  for (mreq_t *r = c->mreqs; r; r = r->next) {
    if (!r->sent && !r->done)
      mgmt_send(c, r);
    waiting |= !r->done;
  }
  pthread_mutex_unlock(&c->mu);
  /* While a reply is awaited the session must stay open to it. Proton
   * announces our incoming window only in flow frames, and posts one for a
   * window that ran out only when a receiver link is touched: when every
   * event receiver withholds credit (the ring is full while the caller waits
   * here, as a run opening receivers does), the service's view of the window
   * reaches 0 and the reply never comes (seen: 1024 event transfers, then a
   * READ unanswered for 60 s). A zero-credit flow call marks the link, so
   * Proton re-announces the window once it is 0; looked at again shortly. */
  if (waiting && c->mgmt_rx) {
    pn_link_flow(c->mgmt_rx, 0);
    eh_client_timer_want(c, ed_time_mono_us() + MGMT_WINDOW_POKE_US);
  }
}

/* Queues a READ for the network thread and waits for its answer; *done:
 * caller frees with eh_mgmt_req_free (or takes its props).
 * @locality a caller's thread, never a callback @locks takes c->mu */
static ed_code_t mgmt_call(eh_client_t *c, int kind, const char *partition, int64_t timeout_us,
                           mreq_t **done, ed_err_t *err) {
  if (eh_client_on_net_thread(c))
    return ed_err_set(err, ED_E_INTERNAL, "management call from a client callback");
  mreq_t *r = calloc(1, sizeof *r);
  if (!r)
    return ED_E_NOMEM;
  r->kind = kind;
  r->partition = eh_dupstr(partition);
  if (timeout_us <= 0)
    timeout_us = c->o.op_timeout_us;
  int64_t deadline = eh_deadline_in(timeout_us);
  pthread_mutex_lock(&c->mu);
  r->id = ++c->next_id + (UINT64_C(1) << 40); /* disjoint from CBS ids */
  r->next = c->mreqs;
  c->mreqs = r;
  eh_client_wake_locked(c);
  while (!r->done && eh_client_wait_until(c, deadline))
    ;
  for (mreq_t **pp = &c->mreqs; *pp; pp = &(*pp)->next)
    if (*pp == r) {
      *pp = r->next;
      break;
    }
  pthread_mutex_unlock(&c->mu);
  ed_code_t rc;
  if (!r->done)
    rc = ed_err_set(err, ED_E_TIMEOUT, "management READ of %s%s%s: no answer within %" PRId64 " s",
                    c->hub, partition ? "/" : "", partition ? partition : "",
                    timeout_us / ED_US_PER_SEC);
  else if (r->rc)
    rc = ed_err_set(err, r->rc, "%s", r->err.msg);
  else
    rc = ED_OK;
  if (rc) {
    eh_mgmt_req_free(r);
    return rc;
  }
  *done = r;
  return ED_OK;
}

ed_code_t eh_client_hub_props(eh_client_t *c, int64_t timeout_us, eh_hub_props_t *out,
                              ed_err_t *err) {
  memset(out, 0, sizeof *out);
  mreq_t *r;
  ed_code_t rc = mgmt_call(c, MREQ_HUB, NULL, timeout_us, &r, err);
  if (rc)
    return rc;
  *out = r->hub;
  free(r->partition);
  free(r);
  return ED_OK;
}

void eh_hub_props_fini(eh_hub_props_t *p) {
  if (!p)
    return;
  free(p->name);
  if (p->partition_ids)
    for (char **s = p->partition_ids; *s; s++)
      free(*s);
  free(p->partition_ids);
  memset(p, 0, sizeof *p);
}

ed_code_t eh_client_partition_props(eh_client_t *c, const char *partition, int64_t timeout_us,
                                    eh_partition_props_t *out, ed_err_t *err) {
  memset(out, 0, sizeof *out);
  if (!partition || !*partition)
    return ed_err_set(err, ED_E_INVALID, "partition props: no partition id");
  mreq_t *r;
  ed_code_t rc = mgmt_call(c, MREQ_PARTITION, partition, timeout_us, &r, err);
  if (rc)
    return rc;
  *out = r->part;
  free(r->partition);
  free(r);
  return ED_OK;
}

void eh_partition_props_fini(eh_partition_props_t *p) {
  if (!p)
    return;
  free(p->hub);
  free(p->partition);
  memset(p, 0, sizeof *p);
}
