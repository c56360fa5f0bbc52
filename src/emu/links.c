/* links: the connection's Proton events. Attaches are checked (address,
 * authorization, partition, consumer group, epoch, start position) and
 * refused the way the service refuses them; events sent to a hub or a
 * partition are stored and settled; receivers are pumped from their
 * partition within their credit (and a `slow` partition's rate). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "emu/emu_int.h"

static void tracking(char *buf, size_t n) {
  char iso[ED_TIME_ISO_MAX];
  ed_time_format_iso(ed_time_now_us(), 0, iso);
  snprintf(buf, n, " TrackingId:%08lx-ehemu, SystemTracker:localhost, Timestamp:%s",
           (unsigned long)random(), iso);
}

void emu_link_cond(pn_condition_t *c, const char *name, const char *desc) {
  char t[160], full[1024];
  tracking(t, sizeof t);
  snprintf(full, sizeof full, "%s%s", desc, t);
  pn_condition_set_name(c, name);
  pn_condition_set_description(c, full);
}

/* Whether d is positioned on the symbol s (a map key, say). */
static bool sym_is(pn_data_t *d, const char *s) {
  if (pn_data_type(d) != PN_SYMBOL)
    return false;
  pn_bytes_t k = pn_data_get_symbol(d);
  return k.size == strlen(s) && memcmp(k.start, s, k.size) == 0;
}

static emu_link_t *link_ctx(pn_link_t *l) { return pn_link_get_context(l); }

static void link_fail(pn_link_t *l, bool null_source, const char *cond, const char *desc) {
  if (null_source) {
    pn_terminus_set_type(pn_link_source(l), PN_UNSPECIFIED);
    pn_terminus_copy(pn_link_target(l), pn_link_remote_target(l));
  } else {
    pn_terminus_set_type(pn_link_target(l), PN_UNSPECIFIED);
    pn_terminus_copy(pn_link_source(l), pn_link_remote_source(l));
  }
  emu_link_cond(pn_link_condition(l), cond, desc);
  pn_link_open(l);
  pn_link_close(l);
}

void emu_link_detach(emu_link_t *el, const char *cond, const char *desc) {
  if (el->closed)
    return;
  emu_link_cond(pn_link_condition(el->link), cond, desc);
  pn_link_close(el->link);
  el->closed = true;
}

static void reject(pn_delivery_t *d, const char *cond, const char *desc) {
  emu_link_cond(pn_disposition_condition(pn_delivery_local(d)), cond, desc);
  pn_delivery_update(d, PN_REJECTED);
  pn_delivery_settle(d);
}

static void handle_send(emu_conn_t *c, emu_link_t *el, pn_delivery_t *d) {
  emu_t *e = c->emu;
  emu_hub_t *h = el->hub;
  const uint8_t *m = (const uint8_t *)el->acc.data;
  size_t n = el->acc.len;
  if (el->oversize) {
    char msg[256];
    snprintf(msg, sizeof msg,
             "The received message (delivery-id:0, size:%zu bytes) exceeds the limit "
             "(%" PRId64 " bytes) currently allowed on the link.",
             n, c->emu->cfg.max_message_size);
    reject(d, ehp_cond_name(EHP_COND_MESSAGE_SIZE), msg);
    return;
  }
  if (e->busy_left > 0) {
    e->busy_left--;
    reject(d, ehp_cond_name(EHP_COND_SERVER_BUSY),
           "The request was terminated because the entity is being throttled. Error code : "
           "50002. Please wait 4 seconds and try again.");
    return;
  }
  emu_msg_t *v = malloc(sizeof *v);
  if (!v || !emu_msg_split(m, n, v)) {
    emu_msg_free(v);
    reject(d, ehp_cond_name(EHP_COND_DECODE_ERROR), "The message could not be decoded.");
    return;
  }
  const char *pk = NULL;
  size_t pkl = 0;
  if (v->ann >= 0)
    emu_msg_find_str(v->ann_items, v->nann, EHP_ANN_PARTITION_KEY, &pk, &pkl);
  int part = el->part;
  if ((part >= 0 || el->publisher) && pk) {
    emu_msg_free(v);
    reject(d, ehp_cond_name(EHP_COND_ARGUMENT_ERROR),
           el->publisher ? "A partition key cannot be set when sending to a publisher."
                         : "A partition key cannot be set when sending to a partition.");
    return;
  }
  /* [U] the service's placement of publisher events is not documented: the
   * publisher name is hashed like a partition key, so one publisher's events
   * stay in order in one partition */
  if (part < 0 && el->publisher)
    part = emu_hub_key_partition(el->publisher, strlen(el->publisher), h->nparts);
  else if (part < 0)
    part = pk ? emu_hub_key_partition(pk, pkl, h->nparts) : (int)(h->rr++ % (unsigned)h->nparts);
  emu_part_t *p = &h->parts[part];
  ed_code_t rc = ED_OK;
  if (el->cur_format == EHP_BATCH_MESSAGE_FORMAT) {
    /* every data section is one encoded event; all or nothing */
    emu_span_t *inner = malloc((size_t)v->nsec * sizeof *inner);
    size_t ni = 0;
    if (!inner)
      rc = ED_E_NOMEM;
    for (int i = 0; i < v->nsec && rc == ED_OK; i++) {
      const amqp_val_t *s = &v->sec[i];
      if (s->desc != AMQP_S_DATA)
        continue;
      if (!amqp_val_is_bin(s))
        rc = ED_E_PARSE;
      else
        inner[ni++] = (emu_span_t){s->p, s->n};
    }
    if (rc == ED_OK)
      rc = emu_hub_store(e, p, inner, ni, pk, pkl, el->publisher);
    free(inner);
  } else
    rc = emu_hub_store(e, p, &(emu_span_t){m, n}, 1, NULL, 0, el->publisher);
  emu_msg_free(v);
  if (rc == ED_E_PARSE)
    reject(d, ehp_cond_name(EHP_COND_DECODE_ERROR), "The message could not be decoded.");
  else if (rc != ED_OK)
    reject(d, ehp_cond_name(EHP_COND_INTERNAL), "The event could not be stored.");
  else {
    pn_delivery_update(d, PN_ACCEPTED);
    pn_delivery_settle(d);
  }
}

static void on_delivery(emu_conn_t *c, pn_delivery_t *d) {
  pn_link_t *l = pn_delivery_link(d);
  emu_link_t *el = link_ctx(l);
  if (!el || el->closed) {
    pn_delivery_settle(d);
    return;
  }
  if (pn_link_is_sender(l)) {
    if (pn_delivery_updated(d))
      pn_delivery_settle(d); /* dispositions from consumers mean nothing to a log */
    return;
  }
  if (!pn_delivery_readable(d))
    return;
  el->active_us = ed_time_mono_us();
  if (el->cur != d) {
    el->cur = d;
    el->cur_format = c->last_format;
    el->oversize = false;
    ed_buf_reset(&el->acc);
  }
  char buf[16384];
  ssize_t r;
  while ((r = pn_link_recv(l, buf, sizeof buf)) > 0) {
    if (el->acc.len + (size_t)r > (uint64_t)c->emu->cfg.max_message_size)
      el->oversize = true;
    if (!el->oversize)
      ed_buf_append(&el->acc, buf, (size_t)r);
    else
      el->acc.len += (size_t)r; /* counted, not kept */
  }
  if (pn_delivery_partial(d))
    return;
  if (el->kind == LK_SEND)
    handle_send(c, el, d);
  else {
    pn_message_t *msg = pn_message();
    if (msg && !el->oversize && pn_message_decode(msg, el->acc.data, el->acc.len) == 0) {
      if (el->kind == LK_CBS_IN)
        emu_node_cbs(c, el, msg, d);
      else
        emu_node_mgmt(c, el, msg, d);
    } else
      reject(d, ehp_cond_name(EHP_COND_DECODE_ERROR), "The request could not be decoded.");
    pn_message_free(msg);
  }
  el->cur = NULL;
  if (el->acc.cap > (1u << 20))
    ed_buf_fini(&el->acc); /* an oversized buffer is not kept for the next one */
  ed_buf_reset(&el->acc);
  if (pn_link_credit(l) < EMU_SEND_CREDIT / 2)
    pn_link_flow(l, EMU_SEND_CREDIT - pn_link_credit(l));
}

/* Receiver start position from the selector filter; false with an error. */
static bool receiver_position(emu_t *e, emu_link_t *el, pn_link_t *l, char *why, size_t wn,
                              const char **cond) {
  emu_part_t *p = &el->hub->parts[el->part];
  emu_hub_retain(e, p);
  int64_t begin = p->first < p->n ? p->ev[p->first].seq : p->next_seq;
  el->next_seq = begin;
  pn_data_t *f = pn_terminus_filter(pn_link_remote_source(l));
  if (!f)
    return true;
  pn_data_rewind(f);
  if (!pn_data_next(f) || pn_data_type(f) != PN_MAP)
    return true;
  char expr[512] = "";
  pn_data_enter(f);
  while (pn_data_next(f)) {
    bool ours = sym_is(f, EHP_FILTER_KEY);
    if (!pn_data_next(f))
      break;
    if (ours && pn_data_type(f) == PN_DESCRIBED) {
      pn_data_enter(f);
      pn_data_next(f);
      pn_data_next(f);
      if (pn_data_type(f) == PN_STRING) {
        pn_bytes_t v = pn_data_get_string(f);
        snprintf(expr, sizeof expr, "%.*s", (int)v.size, v.start);
      }
      pn_data_exit(f);
    }
  }
  pn_data_exit(f);
  if (!expr[0])
    return true;
  const char *lhs[] = {EHP_FILTER_OFFSET, EHP_FILTER_SEQ, EHP_FILTER_ENQUEUED};
  int kind = -1;
  const char *s = expr;
  while (*s == ' ')
    s++;
  for (int i = 0; i < 3; i++)
    if (strncasecmp(s, lhs[i], strlen(lhs[i])) == 0)
      kind = i, s += strlen(lhs[i]);
  while (*s == ' ')
    s++;
  bool incl = false;
  if (*s == '>' && s[1] == '=')
    incl = true, s += 2;
  else if (*s == '>')
    s++;
  else
    kind = -1;
  while (*s == ' ')
    s++;
  char val[64];
  size_t vl = 0;
  if (*s == '\'')
    s++;
  while (*s && *s != '\'' && *s != ' ' && vl < sizeof val - 1)
    val[vl++] = *s++;
  val[vl] = 0;
  if (*s == '\'')
    s++;
  while (*s == ' ')
    s++;
  *cond = ehp_cond_name(EHP_COND_ARGUMENT_ERROR);
  if (kind < 0 || *s) {
    snprintf(why, wn, "The filter expression '%s' is not valid.", expr);
    return false;
  }
  if (kind == 0 && strcmp(val, EHP_OFFSET_LATEST) == 0) {
    el->next_seq = p->next_seq;
    return true;
  }
  if (kind == 0 && strcmp(val, EHP_OFFSET_START) == 0)
    return true;
  char *end;
  errno = 0;
  long long v = strtoll(val, &end, 10);
  if (!vl || *end || errno) {
    snprintf(why, wn, "The filter value '%s' is not a number.", val);
    return false;
  }
  int64_t last_seq = p->next_seq - 1;
  int64_t last_off = p->n ? p->ev[p->n - 1].offset : -1;
  *cond = ehp_cond_name(EHP_COND_ARGUMENT_OUT_OF_RANGE);
  if (kind == 1 && v > last_seq + (incl ? 1 : 0)) {
    snprintf(why, wn,
             "The supplied sequence number '%lld' is invalid. The last sequence number in the "
             "system is '%" PRId64 "'",
             v, last_seq);
    return false;
  }
  if (kind == 0 && v > last_off && !(incl && v == p->next_off)) {
    snprintf(why, wn,
             "The supplied offset '%lld' is invalid. The last offset in the system is '%" PRId64
             "'",
             v, last_off);
    return false;
  }
  el->next_seq = p->next_seq;
  for (size_t i = p->first; i < p->n; i++) {
    const emu_event_t *ev = &p->ev[i];
    int64_t k = kind == 0 ? ev->offset : kind == 1 ? ev->seq : ev->enq_ms;
    if (k > v || (incl && k == v)) {
      el->next_seq = ev->seq;
      break;
    }
  }
  return true;
}

void emu_link_pump(emu_t *e, emu_link_t *el) {
  if (el->closed || el->kind != LK_RECV)
    return;
  pn_link_t *l = el->link;
  emu_part_t *p = &el->hub->parts[el->part];
  int64_t begin = p->first < p->n ? p->ev[p->first].seq : p->next_seq;
  if (el->next_seq < begin)
    el->next_seq = begin;
  if (pn_link_credit(l) > 0 && el->next_seq < p->next_seq)
    el->active_us = ed_time_mono_us();
  if (p->rate > 0) {
    int64_t now = ed_time_mono_us();
    p->allowance += (double)(now - p->rate_at_us) * (double)p->rate / 1e6;
    if (p->allowance > (double)p->rate)
      p->allowance = (double)p->rate; /* at most a second's worth at once */
    p->rate_at_us = now;
  }
  while (pn_link_credit(l) > 0 && el->next_seq < p->next_seq &&
         (p->rate <= 0 || p->allowance >= 1.0)) {
    if (p->rate > 0)
      p->allowance -= 1.0;
    const emu_event_t *ev = &p->ev[p->first + (size_t)(el->next_seq - begin)];
    uint64_t tag = ++el->tag;
    pn_delivery_t *d = pn_delivery(l, pn_dtag((const char *)&tag, sizeof tag));
    pn_link_send(l, (const char *)ev->bytes, ev->len);
    pn_link_advance(l);
    pn_delivery_settle(d);
    el->next_seq++;
  }
  if (pn_link_get_drain(l) && pn_link_credit(l) > 0)
    pn_link_drained(l);
  (void)e;
}

/* Every receiver of (hub, group, partition) across all connections. */
#define FOR_SCOPE(e, el, X)                                                                        \
  for (int ci_ = 0; ci_ < EMU_MAX_CONNS; ci_++)                                                    \
    if ((e)->conns[ci_])                                                                           \
      for (emu_link_t *X = (e)->conns[ci_]->links; X; X = X->next)                                 \
        if (X->kind == LK_RECV && !X->closed && X != (el) && X->hub == (el)->hub &&                \
            X->part == (el)->part && X->group == (el)->group)

static bool epoch_admit(emu_t *e, emu_link_t *el, char *why, size_t wn, const char **cond) {
  int nonepoch = 0;
  bool have_epoch = false;
  int64_t cur = 0;
  FOR_SCOPE(e, el, o) {
    if (o->has_epoch) {
      if (!have_epoch || o->epoch > cur)
        cur = o->epoch;
      have_epoch = true;
    } else
      nonepoch++;
  }
  *cond = ehp_cond_name(EHP_COND_LINK_STOLEN);
  if (el->has_epoch) {
    if (have_epoch && el->epoch < cur) {
      snprintf(why, wn,
               "A receiver with a higher epoch '%" PRId64 "' already exists. A new receiver with "
               "epoch %" PRId64 " cannot be created. Make sure you are creating receiver with "
               "increasing epoch value to ensure connectivity, or ensure all old epoch receivers "
               "are closed or disconnected.",
               cur, el->epoch);
      return false;
    }
    FOR_SCOPE(e, el, o) {
      char msg[512];
      snprintf(msg, sizeof msg,
               "New receiver 'nil' with higher epoch of '%" PRId64 "' is created hence current "
               "receiver 'nil' with epoch '%" PRId64 "' is getting disconnected. If you are "
               "recreating the receiver, make sure a higher epoch is used.",
               el->epoch, o->has_epoch ? o->epoch : 0);
      emu_link_detach(o, ehp_cond_name(EHP_COND_LINK_STOLEN), msg);
    }
    return true;
  }
  if (have_epoch) {
    snprintf(why, wn,
             "At least one receiver for the endpoint is created with epoch of '%" PRId64 "', and "
             "so non-epoch receiver is not allowed. Either reconnect with a higher epoch, or "
             "make sure all epoch receivers are closed or disconnected.",
             cur);
    return false;
  }
  if (nonepoch >= EHP_MAX_NON_EPOCH_RECEIVERS) {
    *cond = ehp_cond_name(EHP_COND_RESOURCE_LIMIT);
    snprintf(why, wn,
             "Exceeded the maximum number of allowed receivers per partition in a consumer group "
             "which is %d. List of connected receivers - nil, nil, nil, nil, nil.",
             EHP_MAX_NON_EPOCH_RECEIVERS);
    return false;
  }
  return true;
}

/* The service's refusal of a partition id the hub does not have. */
static void refuse_partition(emu_link_t *el, pn_link_t *l, bool out, const emu_hub_t *h) {
  char why[256];
  snprintf(why, sizeof why,
           "The specified partition is invalid for an EventHub partition sender or receiver. "
           "It should be between 0 and %d.",
           h->nparts - 1);
  el->closed = true;
  link_fail(l, out, ehp_cond_name(EHP_COND_ARGUMENT_OUT_OF_RANGE), why);
}

/* The receiver's epoch (com.microsoft:epoch, a long or an int) from its
 * attach properties, if it asks for one. */
static void read_epoch(emu_link_t *el, pn_data_t *props) {
  if (!props)
    return;
  pn_data_rewind(props);
  if (!pn_data_next(props) || pn_data_type(props) != PN_MAP)
    return;
  pn_data_enter(props);
  while (pn_data_next(props)) {
    bool ep = sym_is(props, EHP_LINK_EPOCH);
    if (!pn_data_next(props))
      break;
    if (ep && pn_data_type(props) == PN_LONG)
      el->has_epoch = true, el->epoch = pn_data_get_long(props);
    else if (ep && pn_data_type(props) == PN_INT)
      el->has_epoch = true, el->epoch = pn_data_get_int(props);
  }
  pn_data_exit(props);
}

static void on_link_open(emu_conn_t *c, pn_link_t *l) {
  emu_t *e = c->emu;
  bool out = pn_link_is_sender(l); /* we send: the client receives */
  const char *addr =
      pn_terminus_get_address(out ? pn_link_remote_source(l) : pn_link_remote_target(l));
  emu_link_t *el = calloc(1, sizeof *el);
  if (!el) {
    link_fail(l, out, ehp_cond_name(EHP_COND_INTERNAL), "Out of memory.");
    return;
  }
  el->link = l, el->conn = c, el->part = -1;
  el->active_us = ed_time_mono_us();
  ed_buf_init(&el->acc);
  el->next = c->links;
  c->links = el;
  pn_link_set_context(l, el);
  char path[1024], why[2400];
  emu_node_path(addr ? addr : "", path, sizeof path);
  const char *rest = path + 1;
  if (strcasecmp(rest, EHP_CBS_NODE) == 0 || strcasecmp(rest, EHP_MGMT_NODE) == 0) {
    bool cbs = strcasecmp(rest, EHP_CBS_NODE) == 0;
    el->kind = out ? (cbs ? LK_CBS_OUT : LK_MGMT_OUT) : (cbs ? LK_CBS_IN : LK_MGMT_IN);
    const char *ra = pn_terminus_get_address(pn_link_remote_target(l));
    if (out && ra)
      el->reply_addr = strdup(ra);
    pn_terminus_copy(pn_link_source(l), pn_link_remote_source(l));
    pn_terminus_copy(pn_link_target(l), pn_link_remote_target(l));
    pn_link_set_snd_settle_mode(l, pn_link_remote_snd_settle_mode(l));
    pn_link_set_rcv_settle_mode(l, pn_link_remote_rcv_settle_mode(l));
    pn_link_open(l);
    if (!out)
      pn_link_flow(l, 100);
    return;
  }
  /* data link: <hub>[/Partitions/<p>|/Publishers/<n>] or
   * <hub>/ConsumerGroups/<cg>/Partitions/<p> */
  char segs[5][256];
  int ns = 0;
  for (const char *s = rest; *s && ns < 5;) {
    const char *sl = strchr(s, '/');
    size_t n = sl ? (size_t)(sl - s) : strlen(s);
    snprintf(segs[ns++], sizeof segs[0], "%.*s", (int)(n < 255 ? n : 255), s);
    s = sl ? sl + 1 : s + n;
    if (sl && !*s)
      break;
  }
  emu_hub_t *h = ns ? emu_hub_find(e, segs[0]) : NULL;
  el->kind = out ? LK_RECV : LK_SEND;
  el->path = strdup(path);
  if (!h) {
    snprintf(why, sizeof why, "The messaging entity 'sb://localhost%s' could not be found.", path);
    el->closed = true;
    link_fail(l, out, ehp_cond_name(EHP_COND_NOT_FOUND), why);
    return;
  }
  el->hub = h;
  bool shape;
  if (out)
    shape = ns == 5 && strcasecmp(segs[1], "ConsumerGroups") == 0 &&
            strcasecmp(segs[3], "Partitions") == 0;
  else
    shape = ns == 1 || (ns == 3 && (strcasecmp(segs[1], "Partitions") == 0 ||
                                    strcasecmp(segs[1], "Publishers") == 0));
  if (!shape) {
    snprintf(why, sizeof why, "The messaging entity 'sb://localhost%s' could not be found.", path);
    el->closed = true;
    link_fail(l, out, ehp_cond_name(EHP_COND_NOT_FOUND), why);
    return;
  }
  if (!emu_node_authorized(c, path, out ? EMU_RIGHT_LISTEN : EMU_RIGHT_SEND)) {
    snprintf(why, sizeof why,
             "Unauthorized access. '%s' claim(s) are required to perform this operation. "
             "Resource: 'sb://localhost%s'.",
             out ? "Listen" : "Send", path);
    el->closed = true;
    link_fail(l, out, ehp_cond_name(EHP_COND_UNAUTHORIZED), why);
    return;
  }
  if (out) {
    el->group = emu_hub_name_index(h->groups, h->ngroups, segs[2]);
    el->part = emu_hub_partition(h, segs[4]);
    if (el->group < 0) {
      snprintf(why, sizeof why, "The messaging entity 'sb://localhost%s' could not be found.",
               path);
      el->closed = true;
      link_fail(l, out, ehp_cond_name(EHP_COND_NOT_FOUND), why);
      return;
    }
    if (el->part < 0) {
      refuse_partition(el, l, out, h);
      return;
    }
    read_epoch(el, pn_link_remote_properties(l));
    const char *cond = NULL;
    if (!receiver_position(e, el, l, why, sizeof why, &cond) ||
        !epoch_admit(e, el, why, sizeof why, &cond)) {
      el->closed = true;
      link_fail(l, out, cond, why);
      return;
    }
    if (el->has_epoch) {
      pn_data_t *lp = pn_link_properties(l);
      pn_data_put_map(lp);
      pn_data_enter(lp);
      pn_data_put_symbol(lp, pn_bytes(strlen(EHP_LINK_EPOCH), EHP_LINK_EPOCH));
      pn_data_put_long(lp, el->epoch);
      pn_data_exit(lp);
    }
  } else if (ns == 3 && strcasecmp(segs[1], "Publishers") == 0) {
    el->publisher = strdup(segs[2]);
  } else if (ns == 3 && strcasecmp(segs[1], "Partitions") == 0) {
    el->part = emu_hub_partition(h, segs[2]);
    if (el->part < 0) {
      refuse_partition(el, l, out, h);
      return;
    }
  }
  pn_terminus_copy(pn_link_source(l), pn_link_remote_source(l));
  pn_terminus_copy(pn_link_target(l), pn_link_remote_target(l));
  pn_link_set_snd_settle_mode(l, pn_link_remote_snd_settle_mode(l));
  pn_link_set_rcv_settle_mode(l, pn_link_remote_rcv_settle_mode(l));
  if (!out) {
    pn_link_set_max_message_size(l, (uint64_t)e->cfg.max_message_size);
    pn_link_open(l);
    pn_link_flow(l, EMU_SEND_CREDIT);
  } else {
    pn_link_open(l);
    emu_link_pump(e, el);
  }
}

void emu_link_event(emu_conn_t *c, pn_event_t *ev) {
  switch (pn_event_type(ev)) {
  case PN_CONNECTION_REMOTE_OPEN: {
    pn_connection_t *pc = pn_event_connection(ev);
    char id[64];
    snprintf(id, sizeof id, "%08lx%08lx%08lx%08lx_G0", (unsigned long)random(),
             (unsigned long)random(), (unsigned long)random(), (unsigned long)random());
    pn_connection_set_container(pc, id);
    pn_connection_open(pc);
    break;
  }
  case PN_CONNECTION_REMOTE_CLOSE:
    pn_connection_close(pn_event_connection(ev));
    break;
  case PN_SESSION_REMOTE_OPEN: {
    pn_session_t *s = pn_event_session(ev);
    pn_session_set_incoming_capacity(s, 16u << 20);
    pn_session_open(s);
    break;
  }
  case PN_SESSION_REMOTE_CLOSE:
    pn_session_close(pn_event_session(ev));
    break;
  case PN_LINK_REMOTE_OPEN:
    on_link_open(c, pn_event_link(ev));
    break;
  case PN_LINK_REMOTE_CLOSE:
  case PN_LINK_REMOTE_DETACH: {
    pn_link_t *l = pn_event_link(ev);
    emu_link_t *el = link_ctx(l);
    if (el)
      el->closed = true;
    if (!(pn_link_state(l) & PN_LOCAL_CLOSED))
      pn_link_close(l);
    break;
  }
  case PN_LINK_FLOW: {
    emu_link_t *el = link_ctx(pn_event_link(ev));
    if (el) {
      el->active_us = ed_time_mono_us();
      emu_link_pump(c->emu, el);
    }
    break;
  }
  case PN_DELIVERY:
    on_delivery(c, pn_event_delivery(ev));
    break;
  case PN_LINK_FINAL: {
    pn_link_t *l = pn_event_link(ev);
    emu_link_t *el = link_ctx(l);
    if (!el)
      break;
    for (emu_link_t **pp = &c->links; *pp; pp = &(*pp)->next)
      if (*pp == el) {
        *pp = el->next;
        break;
      }
    pn_link_set_context(l, NULL);
    ed_buf_fini(&el->acc);
    free(el->path);
    free(el->reply_addr);
    free(el->publisher);
    free(el);
    break;
  }
  default:
    break;
  }
}
