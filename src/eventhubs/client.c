/* client: the Event Hubs AMQP client (see client.h for the contract).
 *
 * Shape: one network thread loops on pn_proactor_wait. Caller threads never
 * touch Proton: they change shared state under c->mu (request lists, receiver
 * and sender flags, send queues) and wake the connection; the network thread
 * then reconciles in sync(), inside a batch of that connection's events, which
 * is where the proactor allows its objects to be used. Callbacks run on the
 * network thread with c->mu released.
 *
 * One connection per client: a session carrying $cbs (put-token for
 * sb://host/hub before any other link, again at 80% of the token's life),
 * $management, and every receiver and sender. When the connection drops,
 * every link is re-attached on the next one; receivers from the last sequence
 * number their consumer accepted (exclusive), senders re-send what was not
 * settled (at least once: the service has no de-duplication without the
 * idempotent producer, which Proton 0.37 cannot request, §8.7). */
#include "eventhubs/client.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/utsname.h>

#include <proton/condition.h>
#include <proton/connection.h>
#include <proton/delivery.h>
#include <proton/event.h>
#include <proton/link.h>
#include <proton/message.h>
#include <proton/proactor.h>
#include <proton/sasl.h>
#include <proton/session.h>
#include <proton/ssl.h>
#include <proton/terminus.h>
#include <proton/transport.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/time.h"
#include "config.h"
#include "eventhubs/amqp.h"
#include "eventhubs/sas.h"
#include "auth/cred.h"
#include "eventhubs/tlscheck.h"
#include "proto/eventhubs.h"

static const ehp_condition_t conditions[] = {
#define EHP_COND(id, name, code) {name, code},
#include "proto/conditions.def"
#undef EHP_COND
};

static ed_code_t condition_code(const char *name) {
  if (!name)
    return ED_E_CONNECTION;
  for (size_t i = 0; i < sizeof conditions / sizeof conditions[0]; i++)
    if (!strcmp(conditions[i].name, name))
      return (ed_code_t)conditions[i].code;
  if (!strncmp(name, "proton:io", 9))
    return ED_E_CONNECTION;
  return ED_E_PROTOCOL;
}

const char *eh_state_name(eh_state_t st) {
  static const char *names[] = {"connecting", "ready", "retrying", "stolen", "failed", "closed"};
  return (unsigned)st < sizeof names / sizeof names[0] ? names[st] : "?";
}

/* ---- objects -------------------------------------------------------------- */

typedef struct pend {
  size_t off, len; /* a delivery's bytes in rx->raw */
} pend_t;

struct eh_receiver {
  eh_client_t *c;
  eh_receiver_opts_t o;
  char *cg, *partition, *name, *addr, *link_name;
  struct eh_receiver *next;
  /* shared, under c->mu */
  eh_state_t state;
  ed_err_t err;
  bool close_req, released, ever_ready;
  atomic_bool resume_req;
  _Atomic int64_t last_seq;
  /* network thread only */
  pn_link_t *link;
  bool attached, terminal, paused;
  int attempts;
  int64_t reattach_at; /* monotonic µs; 0 = none */
  uint64_t link_gen;
  struct mreq *resolve; /* a latest start being pinned to a sequence number */
  ed_buf_t raw;
  pend_t *pend;
  size_t pend_head, pend_count, pend_cap;
  /* dispatch scratch, reused */
  size_t *body_off, *pstart; /* per event: arena offsets, fixed up once the arena stops moving */
  eh_event_t *evs;
  size_t evs_cap;
  ed_buf_t arena;
  eh_amqp_prop_t *aprops;
  size_t aprops_cap;
  eh_prop_t *props;
  size_t props_cap;
};

typedef struct omsg {
  struct omsg *next, *prev;
  uint64_t tag;
  int attempts;
  int64_t not_before;
  size_t len;
  unsigned char data[];
} omsg_t;

typedef struct olist {
  omsg_t *head, *tail;
} olist_t;

struct eh_sender {
  eh_client_t *c;
  eh_sender_opts_t o;
  char *partition, *addr, *link_name;
  struct eh_sender *next;
  /* shared, under c->mu */
  eh_state_t state;
  ed_err_t err, first_fail;
  bool close_req, released, ever_ready, has_fail;
  olist_t queue;   /* encoded, not yet transferred */
  olist_t unacked; /* transferred, no outcome yet */
  uint64_t max_msg;
  eh_sender_stats_t st;
  /* network thread only */
  pn_link_t *link;
  bool attached, terminal;
  int attempts;
  int64_t reattach_at;
  uint64_t dtag;
};

enum { MREQ_HUB, MREQ_PARTITION };

typedef struct mreq {
  struct mreq *next;
  uint64_t id;
  int kind;
  char *partition;
  bool sent, done;
  int64_t deadline; /* internal requests (no caller waiting) give up here */
  ed_code_t rc;
  ed_err_t err;
  eh_hub_props_t hub;
  eh_partition_props_t part;
} mreq_t;

struct eh_client {
  char *host, *hub, *key_name, *key, *sas, *audience, *container;
  au_cred_t *cred; /* Entra ID (CBS type jwt), or NULL for SAS */
  int port;
  bool tls;
  bool host_is_ip; /* TLS name check by tlscheck.c, not Proton (IP SANs) */
  eh_client_opts_t o;
  char *ca_file, *client_name;
  pthread_t thread;
  bool thread_started;
  pn_proactor_t *pro;
  pn_ssl_domain_t *ssl_domain;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  /* shared, under mu */
  pn_connection_t *conn; /* for pn_connection_wake; NULL between connections */
  bool wake_pending;
  eh_state_t state;
  ed_err_t err;
  bool stopping, exited, ever_ready;
  eh_receiver_t *rxs;
  eh_sender_t *txs;
  mreq_t *mreqs;
  uint64_t next_id;
  eh_client_stats_t stats;
  pthread_t net_tid;
  /* network thread only */
  pn_session_t *ssn;
  pn_link_t *cbs_tx, *cbs_rx, *mgmt_tx, *mgmt_rx;
  bool authed, cbs_inflight, mgmt_attached, closing;
  uint64_t cbs_id;
  int64_t token_expiry_us, refresh_at;
  int64_t cbs_deadline; /* monotonic µs by which the put-token must be answered */
  int cbs_unanswered;   /* consecutive put-tokens that timed out on this connection */
  int attempts;
  int64_t reconnect_at, connect_deadline;
  ed_err_t conn_err; /* why the current connection ended */
  bool conn_err_set;
  pn_message_t *msg;
  ed_buf_t scratch;
  uint64_t link_seq;
  pn_millis_t timer_set_ms;
  int64_t timer_at;
};

static bool on_net_thread(eh_client_t *c) {
  return c->thread_started && pthread_equal(pthread_self(), c->net_tid);
}

/* Under mu: make the network thread look at shared state soon. */
static void wake_locked(eh_client_t *c) {
  if (c->wake_pending)
    return;
  c->wake_pending = true;
  if (c->conn)
    pn_connection_wake(c->conn);
  else
    pn_proactor_interrupt(c->pro);
}

static void wake(eh_client_t *c) {
  pthread_mutex_lock(&c->mu);
  wake_locked(c);
  pthread_mutex_unlock(&c->mu);
}

static int64_t deadline_in(int64_t us) { return ed_time_mono_us() + us; }

/* Waits on c->cv until an absolute monotonic deadline; false on timeout. */
static bool cv_wait_until(eh_client_t *c, int64_t deadline) {
  int64_t left = deadline - ed_time_mono_us();
  if (left <= 0)
    return false;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  int64_t ns = ts.tv_nsec + (left % ED_US_PER_SEC) * 1000;
  ts.tv_sec += left / ED_US_PER_SEC + ns / 1000000000;
  ts.tv_nsec = ns % 1000000000;
  pthread_cond_timedwait(&c->cv, &c->mu, &ts);
  return true;
}

static int64_t backoff(const eh_client_t *c, int attempt) {
  int64_t d = c->o.backoff_base_us;
  for (int i = 0; i < attempt && d < c->o.backoff_max_us; i++)
    d *= 2;
  if (d > c->o.backoff_max_us)
    d = c->o.backoff_max_us;
  /* half fixed, half random: retries from many partitions spread out */
  return d / 2 + (int64_t)(((uint64_t)rand() << 16 ^ (uint64_t)rand()) % (uint64_t)(d / 2 + 1));
}

static bool give_up(const eh_client_t *c, int attempts) {
  return c->o.max_retries >= 0 && attempts > c->o.max_retries;
}

static char *dupstr(const char *s) { return s ? strdup(s) : NULL; }

static void set_cond_err(ed_err_t *err, pn_condition_t *cond, const char *what) {
  const char *name = cond ? pn_condition_get_name(cond) : NULL;
  const char *desc = cond ? pn_condition_get_description(cond) : NULL;
  ed_code_t code = condition_code(name);
  if (desc && (strstr(desc, "certificate") || strstr(desc, "SSL") || strstr(desc, "TLS")))
    code = ED_E_TLS;
  if (name && !strcmp(name, "amqp:unauthorized-access"))
    code = ED_E_UNAUTHORIZED;
  /* Proton reports a peer that vanished mid-frame (a TCP reset, a dropped
   * connection) as a framing error; that is the network, not the protocol */
  if (name && !strcmp(name, "amqp:connection:framing-error") && desc &&
      strstr(desc, "connection aborted"))
    code = ED_E_CONNECTION;
  ed_err_set(err, code, "%s: %s%s%s", what, name ? name : "closed", desc ? ": " : "",
             desc ? desc : "");
}

/* ---- timers --------------------------------------------------------------- */

static void timer_want(eh_client_t *c, int64_t at) {
  if (at > 0 && (c->timer_at == 0 || at < c->timer_at))
    c->timer_at = at;
}

static void timer_arm(eh_client_t *c) {
  if (!c->timer_at)
    return;
  int64_t left = c->timer_at - ed_time_mono_us();
  pn_millis_t ms = left <= 0 ? 0 : (pn_millis_t)((left + 999) / 1000);
  pn_proactor_set_timeout(c->pro, ms);
  c->timer_at = 0;
}

/* ---- connection ----------------------------------------------------------- */

static void put_props(pn_connection_t *conn) {
  pn_data_t *d = pn_connection_properties(conn);
  struct utsname u;
  char platform[400] = "unknown", ua[512];
  if (uname(&u) == 0)
    snprintf(platform, sizeof platform, "%s-%s-%s", u.sysname, u.release, u.machine);
  snprintf(ua, sizeof ua, "ehdelta/%s proton-c/0.37 (%s)", PACKAGE_VERSION, platform);
  pn_data_put_map(d);
  pn_data_enter(d);
  const char *kv[][2] = {{EHP_OPEN_PRODUCT, "ehdelta"},
                         {EHP_OPEN_VERSION, PACKAGE_VERSION},
                         {EHP_OPEN_FRAMEWORK, "C/Proton-0.37"},
                         {EHP_OPEN_PLATFORM, platform},
                         {EHP_OPEN_USER_AGENT, ua}};
  for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
    pn_data_put_symbol(d, pn_bytes(strlen(kv[i][0]), kv[i][0]));
    pn_data_put_string(d, pn_bytes(strlen(kv[i][1]), kv[i][1]));
  }
  pn_data_exit(d);
}

static void connect_now(eh_client_t *c) {
  pn_connection_t *conn = pn_connection();
  pn_connection_set_container(conn, c->container);
  pn_connection_set_hostname(conn, c->host);
  pn_connection_set_context(conn, c);
  put_props(conn);
  pn_transport_t *t = pn_transport();
  pn_transport_set_max_frame(t, EHP_CLIENT_MAX_FRAME);
  pn_transport_set_channel_max(t, 16);
  /* the service sends keep-alives at half of this; a dead peer is noticed */
  pn_transport_set_idle_timeout(t, 120000);
  pn_sasl_t *sasl = pn_sasl(t);
  /* the service also offers EXTERNAL, which Proton would pick (§1.2) */
  pn_sasl_allowed_mechs(sasl, EHP_SASL_ANONYMOUS);
  if (c->tls) {
    pn_ssl_t *ssl = pn_ssl(t);
    pn_ssl_init(ssl, c->ssl_domain, NULL);
    if (!c->host_is_ip) /* SNI carries DNS names only (RFC 6066 §3) */
      pn_ssl_set_peer_hostname(ssl, c->host);
  }
  char addr[300];
  snprintf(addr, sizeof addr, "%s:%d", c->host, c->port);
  c->authed = false;
  c->cbs_inflight = false;
  c->cbs_unanswered = 0;
  c->mgmt_attached = false;
  c->ssn = NULL;
  c->cbs_tx = c->cbs_rx = c->mgmt_tx = c->mgmt_rx = NULL;
  c->conn_err_set = false;
  c->connect_deadline = deadline_in(c->o.op_timeout_us);
  timer_want(c, c->connect_deadline);
  pthread_mutex_lock(&c->mu);
  c->conn = conn;
  c->wake_pending = false;
  pthread_mutex_unlock(&c->mu);
  ED_LOG_DEBUG("eh_connect", "host=%s port=%d tls=%s", c->host, c->port, c->tls ? "yes" : "no");
  pn_proactor_connect2(c->pro, conn, t, addr);
}

static void notify_client(eh_client_t *c, eh_state_t st, const ed_err_t *err) {
  pthread_mutex_lock(&c->mu);
  c->state = st;
  if (err)
    c->err = *err;
  if (st == EH_STATE_READY)
    c->ever_ready = true;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
  if (c->o.on_state)
    c->o.on_state(c->o.user_ctx, st, err);
}

static pn_link_t *make_link(eh_client_t *c, bool sender, const char *name, const char *source,
                            const char *target) {
  pn_link_t *l = sender ? pn_sender(c->ssn, name) : pn_receiver(c->ssn, name);
  if (source)
    pn_terminus_set_address(pn_link_source(l), source);
  if (target)
    pn_terminus_set_address(pn_link_target(l), target);
  return l;
}

/* Sends m on l (unsettled). */
static void send_message(eh_client_t *c, pn_link_t *l, pn_message_t *m) {
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

static void put_app_str(pn_data_t *d, const char *k, const char *v) {
  pn_data_put_string(d, pn_bytes(strlen(k), k));
  pn_data_put_string(d, pn_bytes(strlen(v), v));
}

const char *const eh_auth_names[] = {
    "sas", "client-secret", "workload-identity", "managed-identity", "azure-cli", "default", NULL};
_Static_assert(AU_CRED_CLIENT_SECRET == 0 && AU_CRED_WORKLOAD_ID == 1 && AU_CRED_MANAGED_ID == 2 &&
                   AU_CRED_AZURE_CLI == 3 && AU_CRED_DEFAULT == 4,
               "eh_auth_names follows au_kind_t");

/* The token for the hub audience: the credential's JWT, minted from the key,
 * or the ready one. */
static ed_code_t make_token(eh_client_t *c, ed_buf_t *out, int64_t *expiry_us, ed_err_t *err) {
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

static void put_token(eh_client_t *c) {
  ed_buf_t tok = ED_BUF_INIT;
  int64_t exp_us = 0;
  ed_err_t err = {0};
  if (make_token(c, &tok, &exp_us, &err)) {
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
  put_app_str(ap, EHP_CBS_KEY_OPERATION, EHP_CBS_OP_PUT_TOKEN);
  put_app_str(ap, EHP_CBS_KEY_TYPE, c->cred ? EHP_CBS_TYPE_JWT : EHP_CBS_TYPE_SAS);
  put_app_str(ap, EHP_CBS_KEY_NAME, c->audience);
  pn_data_put_string(ap, pn_bytes(strlen(EHP_CBS_KEY_EXPIRATION), EHP_CBS_KEY_EXPIRATION));
  pn_data_put_timestamp(ap, exp_us / 1000);
  pn_data_exit(ap);
  send_message(c, c->cbs_tx, m);
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

static void start_session(eh_client_t *c, pn_connection_t *conn) {
  c->ssn = pn_session(conn);
  pn_session_set_incoming_capacity(c->ssn, 64u << 20);
  pn_session_open(c->ssn);
  c->cbs_tx = make_link(c, true, "cbs-sender", EHP_CBS_NODE, EHP_CBS_NODE);
  c->cbs_rx = make_link(c, false, "cbs-receiver", EHP_CBS_NODE, EHP_CBS_NODE);
  pn_link_open(c->cbs_tx);
  pn_link_open(c->cbs_rx);
  pn_link_flow(c->cbs_rx, 16);
  put_token(c);
}

static void open_mgmt(eh_client_t *c) {
  c->mgmt_tx = make_link(c, true, "mgmt-sender", EHP_MGMT_NODE, EHP_MGMT_NODE);
  c->mgmt_rx = make_link(c, false, "mgmt-receiver", EHP_MGMT_NODE, EHP_MGMT_NODE);
  pn_link_open(c->mgmt_tx);
  pn_link_open(c->mgmt_rx);
  pn_link_flow(c->mgmt_rx, 64);
}

/* ---- management ----------------------------------------------------------- */

static void send_mreq(eh_client_t *c, mreq_t *r) {
  pn_message_t *m = c->msg;
  pn_message_clear(m);
  pn_atom_t id = {.type = PN_ULONG, .u.as_ulong = r->id};
  pn_message_set_id(m, id);
  pn_data_t *ap = pn_message_properties(m);
  pn_data_put_map(ap);
  pn_data_enter(ap);
  put_app_str(ap, EHP_MGMT_KEY_OPERATION, EHP_MGMT_OP_READ);
  put_app_str(ap, EHP_MGMT_KEY_NAME, c->hub);
  if (r->kind == MREQ_HUB) {
    put_app_str(ap, EHP_MGMT_KEY_TYPE, EHP_MGMT_TYPE_EVENTHUB);
  } else {
    put_app_str(ap, EHP_MGMT_KEY_TYPE, EHP_MGMT_TYPE_PARTITION);
    put_app_str(ap, EHP_MGMT_KEY_PARTITION, r->partition);
  }
  ed_buf_t tok = ED_BUF_INIT;
  int64_t exp;
  if (make_token(c, &tok, &exp, NULL) == ED_OK)
    put_app_str(ap, EHP_MGMT_KEY_SECURITY_TOKEN, tok.data);
  explicit_bzero(tok.data, tok.len);
  ed_buf_fini(&tok);
  pn_data_exit(ap);
  send_message(c, c->mgmt_tx, m);
  r->sent = true;
}

/* Positions d on the value of key in the map d is positioned on (entered). */
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

static char *data_str(pn_data_t *d) {
  pn_type_t t = pn_data_type(d);
  if (t != PN_STRING && t != PN_SYMBOL)
    return NULL;
  pn_bytes_t b = t == PN_STRING ? pn_data_get_string(d) : pn_data_get_symbol(d);
  return strndup(b.start, b.size);
}

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
static int status_of(pn_message_t *m, char *desc, size_t n) {
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

static ed_code_t status_code(int status) {
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

static void mgmt_response(eh_client_t *c, pn_message_t *m) {
  pn_atom_t cid = pn_message_get_correlation_id(m);
  if (cid.type != PN_ULONG)
    return;
  char desc[256];
  int status = status_of(m, desc, sizeof desc);
  pthread_mutex_lock(&c->mu);
  for (mreq_t *r = c->mreqs; r; r = r->next) {
    if (r->id != cid.u.as_ulong || r->done)
      continue;
    if (status < 200 || status > 299) {
      r->rc = ed_err_set(&r->err, status_code(status), "management READ of %s%s%s%s: status %d%s%s",
                         r->kind == MREQ_HUB ? "hub " : "partition ", c->hub,
                         r->kind == MREQ_HUB ? "" : "/", r->kind == MREQ_HUB ? "" : r->partition,
                         status, desc[0] ? ": " : "", desc);
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

/* ---- receivers (network side) --------------------------------------------- */

static void rx_notify(eh_receiver_t *rx, eh_state_t st, const ed_err_t *err) {
  eh_client_t *c = rx->c;
  pthread_mutex_lock(&c->mu);
  rx->state = st;
  if (err)
    rx->err = *err;
  if (st == EH_STATE_READY)
    rx->ever_ready = true;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
  if (rx->o.on_state)
    rx->o.on_state(rx->o.ctx, rx, st, err);
}

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
  char name[200];
  snprintf(name, sizeof name, "%s-%" PRIu64, rx->link_name, ++rx->link_gen);
  pn_link_t *l = make_link(c, false, name, rx->addr, name);
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
  rx->link = l;
  rx->attached = false;
  rx->paused = false;
  rx->reattach_at = 0;
  ED_LOG_DEBUG("eh_rx_attach", "partition=%s filter=\"%s\"", rx->partition, expr);
}

static void rx_drop_pending(eh_receiver_t *rx) {
  rx->pend_head = rx->pend_count = 0;
  ed_buf_reset(&rx->raw);
}

/* The link ended (remote close, or the whole connection). Decides: retry,
 * stolen, failed. */
static void rx_lost(eh_client_t *c, eh_receiver_t *rx, const ed_err_t *why) {
  if (rx->link) {
    pn_link_set_context(rx->link, NULL);
    rx->link = NULL;
  }
  rx->attached = false;
  rx_drop_pending(rx);
  if (rx->terminal)
    return;
  ed_code_t code = why->code;
  /* a first attach refused is returned by eh_receiver_open itself: no log
   * line beside the caller's message */
  ed_log_level_t lvl = rx->ever_ready ? ED_LOG_WARN : ED_LOG_DEBUG;
  if (code == ED_E_LINK_STOLEN) {
    rx->terminal = true;
    ed_log(lvl, "eh_rx_stolen", "partition=%s reason=\"%s\"", rx->partition, why->msg);
    rx_notify(rx, EH_STATE_STOLEN, why);
    return;
  }
  if (!ed_code_is_retriable(code) || give_up(c, ++rx->attempts)) {
    rx->terminal = true;
    ed_log(rx->ever_ready ? ED_LOG_ERROR : ED_LOG_DEBUG, "eh_rx_failed",
           "partition=%s reason=\"%s\"", rx->partition, why->msg);
    rx_notify(rx, EH_STATE_FAILED, why);
    return;
  }
  c->stats.retries++;
  rx->reattach_at = ed_time_mono_us() + backoff(c, rx->attempts - 1);
  ED_LOG_WARN("eh_rx_retry", "partition=%s attempt=%d reason=\"%s\"", rx->partition, rx->attempts,
              why->msg);
  rx_notify(rx, EH_STATE_RETRYING, why);
}

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

static void rx_credit(eh_receiver_t *rx) {
  if (!rx->link || rx->paused || rx->terminal)
    return;
  int have = pn_link_credit(rx->link) + (int)(rx->pend_count - rx->pend_head);
  int want = (int)rx->o.prefetch - have;
  /* top up in chunks, not one flow frame per event */
  if (want > 0 && (want >= (int)rx->o.prefetch / 2 || have == 0))
    pn_link_flow(rx->link, want);
}

/* Hands pending events to the consumer, as many as it takes. */
static void rx_dispatch(eh_client_t *c, eh_receiver_t *rx) {
  while (rx->pend_head < rx->pend_count && !rx->terminal) {
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
      rx->attempts = 0;
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
    rx_drop_pending(rx);
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

static void rx_delivery(eh_receiver_t *rx, pn_delivery_t *d) {
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

/* ---- senders (network side) ----------------------------------------------- */

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

static void tx_notify(eh_sender_t *tx, eh_state_t st, const ed_err_t *err) {
  eh_client_t *c = tx->c;
  pthread_mutex_lock(&c->mu);
  tx->state = st;
  if (err)
    tx->err = *err;
  if (st == EH_STATE_READY)
    tx->ever_ready = true;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

static void tx_attach(eh_client_t *c, eh_sender_t *tx) {
  char name[160];
  snprintf(name, sizeof name, "%s-%" PRIu64, tx->link_name, ++c->link_seq);
  pn_link_t *l = make_link(c, true, name, name, tx->addr);
  pn_link_set_snd_settle_mode(l, PN_SND_UNSETTLED);
  pn_link_set_rcv_settle_mode(l, PN_RCV_FIRST);
  pn_link_set_context(l, tx);
  pn_link_open(l);
  tx->link = l;
  tx->attached = false;
  tx->reattach_at = 0;
}

/* Completes one event: outcome callback, counters, frees it. Under no lock. */
static void tx_complete(eh_sender_t *tx, omsg_t *m, const ed_err_t *err) {
  eh_client_t *c = tx->c;
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
static void tx_requeue_unacked(eh_sender_t *tx, bool resend) {
  eh_client_t *c = tx->c;
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
static void tx_fail(eh_client_t *c, eh_sender_t *tx, const ed_err_t *why) {
  tx->terminal = true;
  /* a first attach refused is returned by eh_sender_open: no second line */
  ed_log(tx->ever_ready ? ED_LOG_ERROR : ED_LOG_DEBUG, "eh_tx_failed", "target=%s reason=\"%s\"",
         tx->addr, why->msg);
  tx_notify(tx, EH_STATE_FAILED, why);
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

static void tx_lost(eh_client_t *c, eh_sender_t *tx, const ed_err_t *why) {
  if (tx->link) {
    pn_link_set_context(tx->link, NULL);
    tx->link = NULL;
  }
  tx->attached = false;
  tx_requeue_unacked(tx, !tx->terminal && ed_code_is_retriable(why->code));
  if (tx->terminal)
    return;
  if (!ed_code_is_retriable(why->code) || give_up(c, ++tx->attempts)) {
    tx_fail(c, tx, why);
    return;
  }
  c->stats.retries++;
  tx->reattach_at = ed_time_mono_us() + backoff(c, tx->attempts - 1);
  ED_LOG_WARN("eh_tx_retry", "target=%s attempt=%d reason=\"%s\"", tx->addr, tx->attempts,
              why->msg);
  tx_notify(tx, EH_STATE_RETRYING, why);
}

static void tx_pump(eh_client_t *c, eh_sender_t *tx) {
  if (!tx->link || !tx->attached)
    return;
  int64_t now = ed_time_mono_us();
  while (pn_link_credit(tx->link) > 0) {
    pthread_mutex_lock(&c->mu);
    omsg_t *m = tx->queue.head;
    if (m && m->not_before > now) {
      timer_want(c, m->not_before);
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
    pn_delivery_t *d = pn_delivery(tx->link, pn_dtag((const char *)&t, sizeof t));
    pn_delivery_set_context(d, m);
    pn_link_send(tx->link, (const char *)m->data, m->len);
    pn_link_advance(tx->link);
  }
}

static void tx_delivery(eh_client_t *c, eh_sender_t *tx, pn_delivery_t *d) {
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
    tx->attempts = 0;
    tx_complete(tx, m, NULL);
    return;
  }
  ed_err_t err = {0};
  if (state == PN_REJECTED) {
    set_cond_err(&err, cond, "send rejected");
  } else {
    ed_err_set(&err, ED_E_UNAVAILABLE, "send %s by the service",
               state == PN_RELEASED ? "released" : "modified");
  }
  if (ed_code_is_retriable(err.code) && !give_up(c, ++m->attempts)) {
    c->stats.retries++;
    m->not_before = ed_time_mono_us() + backoff(c, m->attempts - 1);
    timer_want(c, m->not_before);
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

/* ---- reconciliation ------------------------------------------------------- */

/* Under mu: takes r out of the request list and frees it. */
static void mreq_unlink_free(eh_client_t *c, mreq_t *r) {
  for (mreq_t **pp = &c->mreqs; *pp; pp = &(*pp)->next)
    if (*pp == r) {
      *pp = r->next;
      break;
    }
  eh_hub_props_fini(&r->hub);
  eh_partition_props_fini(&r->part);
  free(r->partition);
  free(r);
}

/* Whether rx may attach now. A receiver asked to start at latest whose
 * consumer has taken nothing yet must not attach at "latest" again after a
 * drop (what arrived meanwhile would be skipped), so its start is pinned
 * once, before the first attach, to "after the partition's last sequence
 * number" read through $management. */
static bool rx_start_ready(eh_client_t *c, eh_receiver_t *rx, int64_t now) {
  if (rx->o.start.kind != EH_POS_LATEST || atomic_load(&rx->last_seq) >= 0)
    return true;
  mreq_t *r = rx->resolve;
  if (!r) {
    r = calloc(1, sizeof *r);
    if (!r || !(r->partition = dupstr(rx->partition))) {
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
    timer_want(c, r->deadline);
    return false; /* sent by the management step of this sync */
  }
  pthread_mutex_lock(&c->mu);
  bool done = r->done;
  ed_code_t rc = r->rc;
  ed_err_t why = r->err;
  int64_t last = r->part.last_seq;
  pthread_mutex_unlock(&c->mu);
  if (!done && now < r->deadline) {
    timer_want(c, r->deadline);
    return false;
  }
  if (!done)
    rc = ed_err_set(&why, ED_E_TIMEOUT,
                    "receiver %s: management READ of the partition unanswered within %" PRId64 " s",
                    rx->addr, c->o.op_timeout_us / ED_US_PER_SEC);
  pthread_mutex_lock(&c->mu);
  mreq_unlink_free(c, r);
  pthread_mutex_unlock(&c->mu);
  rx->resolve = NULL;
  if (rc) {
    rx_lost(c, rx, &why);
    return false;
  }
  if (last >= 0)
    rx->o.start = (eh_position_t){.kind = EH_POS_SEQUENCE, .inclusive = false, .value = last};
  else
    rx->o.start = (eh_position_t){.kind = EH_POS_EARLIEST};
  ED_LOG_DEBUG("eh_rx_latest", "partition=%s after_seq=%" PRId64, rx->partition, last);
  return true;
}

/* Releases closed objects whose links are gone; touches no Proton object. */
static void reap(eh_client_t *c) {
  pthread_mutex_lock(&c->mu);
  for (eh_receiver_t **pp = &c->rxs; *pp;) {
    eh_receiver_t *rx = *pp;
    if (rx->close_req && !rx->link) {
      *pp = rx->next;
      if (rx->resolve)
        mreq_unlink_free(c, rx->resolve);
      rx->resolve = NULL;
      rx->released = true;
      pthread_cond_broadcast(&c->cv);
      continue;
    }
    pp = &rx->next;
  }
  for (eh_sender_t **pp = &c->txs; *pp;) {
    eh_sender_t *tx = *pp;
    if (tx->close_req && !tx->link) {
      *pp = tx->next;
      tx->released = true;
      pthread_cond_broadcast(&c->cv);
      continue;
    }
    pp = &tx->next;
  }
  pthread_mutex_unlock(&c->mu);
}

/* Inside a batch of the live connection: bring Proton in line with what the
 * callers asked for, fire due timers, dispatch events, pump sends. */
static void sync(eh_client_t *c) {
  pn_connection_t *conn;
  pthread_mutex_lock(&c->mu);
  c->wake_pending = false;
  conn = c->conn;
  bool stopping = c->stopping;
  pthread_mutex_unlock(&c->mu);
  if (!conn)
    return;
  int64_t now = ed_time_mono_us();
  if (stopping && !c->closing) {
    c->closing = true;
    pn_connection_close(conn);
    return;
  }
  if (c->closing)
    return;
  if (!c->authed) {
    if (now >= c->connect_deadline) {
      ed_err_set(&c->conn_err, ED_E_TIMEOUT, "connecting to %s:%d: no answer within %" PRId64 " s",
                 c->host, c->port, c->o.op_timeout_us / ED_US_PER_SEC);
      c->conn_err_set = true;
      pn_connection_close(conn);
      return;
    }
    timer_want(c, c->connect_deadline);
    return;
  }
  if (c->cbs_inflight && now >= c->cbs_deadline) {
    /* an unanswered refresh must not stop refreshing: put the token again
     * (the late answer, if any, carries the old id and is ignored); after
     * three in a row the connection itself is suspect and is started over */
    c->stats.retries++;
    if (++c->cbs_unanswered >= 3) {
      ed_err_set(&c->conn_err, ED_E_TIMEOUT,
                 "CBS put-token for %s: %d in a row unanswered within %" PRId64 " s", c->audience,
                 c->cbs_unanswered, c->o.op_timeout_us / ED_US_PER_SEC);
      c->conn_err_set = true;
      pn_connection_close(conn);
      return;
    }
    ED_LOG_WARN("eh_put_token_timeout", "audience=%s attempt=%d", c->audience, c->cbs_unanswered);
    c->cbs_inflight = false;
    c->refresh_at = now;
  }
  if (c->refresh_at && now >= c->refresh_at && !c->cbs_inflight) {
    c->stats.token_refresh++;
    put_token(c);
  }
  if (c->refresh_at)
    timer_want(c, c->refresh_at);
  if (c->cbs_inflight)
    timer_want(c, c->cbs_deadline);
  /* receivers: attach, close, dispatch */
  pthread_mutex_lock(&c->mu);
  eh_receiver_t *rxs = c->rxs;
  eh_sender_t *txs = c->txs;
  pthread_mutex_unlock(&c->mu);
  /* the lists only lose members in reap(), on this thread, so walking them
   * without the lock is safe; new members are pushed at the head */
  for (eh_receiver_t *rx = rxs; rx; rx = rx->next) {
    pthread_mutex_lock(&c->mu);
    bool close_req = rx->close_req;
    pthread_mutex_unlock(&c->mu);
    if (close_req) {
      if (rx->link) {
        pn_link_set_context(rx->link, NULL);
        pn_link_close(rx->link);
        rx->link = NULL;
      }
      continue;
    }
    if (rx->terminal)
      continue;
    if (!rx->link) {
      if (rx->reattach_at && now < rx->reattach_at)
        timer_want(c, rx->reattach_at);
      else if (rx_start_ready(c, rx, now))
        rx_attach(c, rx);
      continue;
    }
    if (rx->attached)
      rx_dispatch(c, rx);
  }
  for (eh_sender_t *tx = txs; tx; tx = tx->next) {
    pthread_mutex_lock(&c->mu);
    bool close_req = tx->close_req;
    pthread_mutex_unlock(&c->mu);
    if (close_req) {
      if (tx->link) {
        pn_link_set_context(tx->link, NULL);
        pn_link_close(tx->link);
        tx->link = NULL;
      }
      continue;
    }
    if (tx->terminal)
      continue;
    if (!tx->link) {
      if (!tx->reattach_at || now >= tx->reattach_at)
        tx_attach(c, tx);
      else
        timer_want(c, tx->reattach_at);
      continue;
    }
    tx_pump(c, tx);
  }
  /* management */
  if (!c->mgmt_tx)
    open_mgmt(c);
  if (c->mgmt_attached) {
    pthread_mutex_lock(&c->mu);
    for (mreq_t *r = c->mreqs; r; r = r->next)
      if (!r->sent && !r->done)
        send_mreq(c, r);
    pthread_mutex_unlock(&c->mu);
  }
  reap(c);
}

/* The connection is gone (PN_TRANSPORT_CLOSED). */
static void conn_lost(eh_client_t *c, pn_transport_t *t) {
  ed_err_t why = {0};
  if (c->conn_err_set) {
    why = c->conn_err;
  } else {
    pn_condition_t *cond = pn_transport_condition(t);
    if (cond && pn_condition_is_set(cond))
      set_cond_err(&why, cond, "connection");
    else
      ed_err_set(&why, ED_E_CONNECTION, "connection to %s:%d closed", c->host, c->port);
  }
  if (!strstr(why.msg, c->host) && why.code != ED_E_UNAUTHORIZED)
    ed_err_prefix(&why, "%s:%d", c->host, c->port);
  pthread_mutex_lock(&c->mu);
  c->conn = NULL;
  c->wake_pending = false;
  bool stopping = c->stopping;
  for (mreq_t *r = c->mreqs; r; r = r->next)
    r->sent = false; /* READs are idempotent: ask again on the next connection */
  eh_receiver_t *rxs = c->rxs;
  eh_sender_t *txs = c->txs;
  pthread_mutex_unlock(&c->mu);
  bool was_authed = c->authed;
  c->authed = false;
  c->closing = false;
  c->ssn = NULL;
  c->cbs_tx = c->cbs_rx = c->mgmt_tx = c->mgmt_rx = NULL;
  c->mgmt_attached = false;
  c->refresh_at = 0;
  if (stopping) {
    for (eh_receiver_t *rx = rxs; rx; rx = rx->next)
      rx->link = NULL;
    for (eh_sender_t *tx = txs; tx; tx = tx->next) {
      tx->link = NULL;
      tx_requeue_unacked(tx, false);
    }
    reap(c);
    return;
  }
  /* a refused connection is fatal for the client; a dropped one is retried */
  bool fatal = !ed_code_is_retriable(why.code);
  if (!fatal && give_up(c, ++c->attempts))
    fatal = true;
  if (fatal) {
    /* before the first connection eh_client_new returns the error itself */
    ed_log(c->ever_ready ? ED_LOG_ERROR : ED_LOG_DEBUG, "eh_connection_failed", "reason=\"%s\"",
           why.msg);
  } else {
    c->stats.retries++;
    c->reconnect_at = ed_time_mono_us() + backoff(c, c->attempts - 1);
    /* The first failure of the first connect is said at once (a refused port,
     * a wrong host), not only when the retries run out --timeout later; the
     * retries after it stay quiet until one gives up. */
    ed_log(c->ever_ready || c->attempts == 1 ? ED_LOG_WARN : ED_LOG_DEBUG, "eh_connection_retry",
           "attempt=%d reason=\"%s\"%s", c->attempts, why.msg,
           c->ever_ready ? "" : " retrying=until-timeout");
  }
  /* links: retried with the connection unless the failure is permanent */
  for (eh_receiver_t *rx = rxs; rx; rx = rx->next) {
    if (rx->terminal) {
      rx->link = NULL;
      continue;
    }
    rx->link = NULL;
    rx->attached = false;
    rx_drop_pending(rx);
    rx->reattach_at = 0;
    if (fatal) {
      rx->terminal = true;
      rx_notify(rx, EH_STATE_FAILED, &why);
    } else if (was_authed) {
      rx_notify(rx, EH_STATE_RETRYING, &why);
    }
  }
  for (eh_sender_t *tx = txs; tx; tx = tx->next) {
    tx->link = NULL;
    tx->attached = false;
    tx->reattach_at = 0;
    tx_requeue_unacked(tx, !fatal && !tx->terminal);
    if (fatal && !tx->terminal)
      tx_fail(c, tx, &why);
  }
  if (fatal) {
    pthread_mutex_lock(&c->mu);
    for (mreq_t *r = c->mreqs; r; r = r->next)
      if (!r->done) {
        r->done = true;
        r->err = why;
        r->rc = why.code;
      }
    pthread_mutex_unlock(&c->mu);
    notify_client(c, EH_STATE_FAILED, &why);
  } else {
    notify_client(c, EH_STATE_RETRYING, &why);
    timer_want(c, c->reconnect_at);
  }
}

static void on_link_open(eh_client_t *c, pn_link_t *l) {
  if (l == c->mgmt_tx || l == c->mgmt_rx) {
    if (pn_link_state(c->mgmt_tx) & PN_REMOTE_ACTIVE &&
        pn_link_state(c->mgmt_rx) & PN_REMOTE_ACTIVE)
      c->mgmt_attached = true;
    return;
  }
  void *ctx = pn_link_get_context(l);
  if (!ctx)
    return;
  if (pn_link_is_receiver(l)) {
    eh_receiver_t *rx = ctx;
    /* an attach refusal is an attach with a null source, then a detach */
    if (!pn_terminus_get_address(pn_link_remote_source(l)))
      return;
    rx->attached = true;
    ED_LOG_DEBUG("eh_rx_ready", "partition=%s", rx->partition);
    rx_notify(rx, EH_STATE_READY, NULL);
  } else {
    eh_sender_t *tx = ctx;
    if (!pn_terminus_get_address(pn_link_remote_target(l)))
      return;
    tx->attached = true;
    uint64_t mm = pn_link_remote_max_message_size(l);
    pthread_mutex_lock(&c->mu);
    /* no limit announced: assume the service's 1 MiB, as the Python SDK does */
    tx->max_msg = mm ? mm : EHP_MAX_MESSAGE_SIZE;
    pthread_mutex_unlock(&c->mu);
    tx_notify(tx, EH_STATE_READY, NULL);
  }
}

/* A link detached because its token expired (the refresh came too late, or
 * the service cut the token's life short) is recoverable when we mint our
 * own tokens: put a fresh one now and re-attach after the backoff. A ready
 * SharedAccessSignature cannot be renewed, so then it stays unauthorized. */
static bool token_expired_detach(eh_client_t *c, pn_condition_t *cond) {
  const char *name = pn_condition_get_name(cond);
  const char *desc = pn_condition_get_description(cond);
  if ((c->sas && !c->cred) || !name || strcmp(name, "amqp:unauthorized-access") || !desc ||
      !(strstr(desc, "expired") || strstr(desc, "Expired")))
    return false;
  if (!c->cbs_inflight)
    c->refresh_at = ed_time_mono_us();
  return true;
}

static void on_link_close(eh_client_t *c, pn_link_t *l) {
  pn_condition_t *cond = pn_link_remote_condition(l);
  if (l == c->cbs_tx || l == c->cbs_rx || l == c->mgmt_tx || l == c->mgmt_rx) {
    /* a node link lost: start over on a new connection */
    set_cond_err(&c->conn_err, cond,
                 l == c->cbs_tx || l == c->cbs_rx ? "$cbs link detached" : "$management link");
    if (!pn_condition_is_set(cond))
      c->conn_err.code = ED_E_CONNECTION;
    c->conn_err_set = true;
    pn_connection_close(pn_link_session(l) ? pn_session_connection(pn_link_session(l)) : NULL);
    return;
  }
  void *ctx = pn_link_get_context(l);
  pn_link_set_context(l, NULL);
  if (!(pn_link_state(l) & PN_LOCAL_CLOSED))
    pn_link_close(l);
  if (!ctx) {
    pn_link_free(l);
    return;
  }
  ed_err_t why = {0};
  bool expired = token_expired_detach(c, cond);
  if (pn_link_is_receiver(l)) {
    eh_receiver_t *rx = ctx;
    char what[200];
    snprintf(what, sizeof what, "receiver %s", rx->addr);
    if (pn_condition_is_set(cond))
      set_cond_err(&why, cond, what);
    else
      ed_err_set(&why, ED_E_CONNECTION, "%s: detached by the service", what);
    if (expired)
      why.code = ED_E_TOKEN_EXPIRED;
    rx->link = NULL;
    rx_lost(c, rx, &why);
  } else {
    eh_sender_t *tx = ctx;
    char what[200];
    snprintf(what, sizeof what, "sender %s", tx->addr);
    if (pn_condition_is_set(cond))
      set_cond_err(&why, cond, what);
    else
      ed_err_set(&why, ED_E_CONNECTION, "%s: detached by the service", what);
    if (expired)
      why.code = ED_E_TOKEN_EXPIRED;
    tx->link = NULL;
    tx_lost(c, tx, &why);
  }
  pn_link_free(l);
}

static void on_delivery(eh_client_t *c, pn_delivery_t *d) {
  pn_link_t *l = pn_delivery_link(d);
  if (l == c->cbs_rx || l == c->mgmt_rx) {
    if (!pn_delivery_readable(d) || pn_delivery_partial(d))
      return;
    size_t n = pn_delivery_pending(d);
    ed_buf_reset(&c->scratch);
    /* out of memory: a zero-byte read drops the reply, as a bad one is */
    ssize_t got = ed_buf_reserve(&c->scratch, n) ? 0 : pn_link_recv(l, c->scratch.data, n);
    pn_delivery_update(d, PN_ACCEPTED);
    pn_link_advance(l);
    pn_delivery_settle(d);
    pn_link_flow(l, 1);
    pn_message_t *m = c->msg;
    pn_message_clear(m);
    if (got <= 0 || pn_message_decode(m, c->scratch.data, (size_t)got))
      return;
    if (l == c->mgmt_rx) {
      mgmt_response(c, m);
      return;
    }
    pn_atom_t cid = pn_message_get_correlation_id(m);
    if (cid.type != PN_ULONG || cid.u.as_ulong != c->cbs_id)
      return;
    c->cbs_inflight = false;
    c->cbs_unanswered = 0;
    char desc[256];
    int status = status_of(m, desc, sizeof desc);
    if (status < 200 || status > 299) {
      ed_err_set(&c->conn_err, status_code(status), "CBS put-token for %s: status %d%s%s",
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
      c->stats.connects++;
      ED_LOG_INFO("eh_connected", "host=%s hub=%s", c->host, c->hub);
      notify_client(c, EH_STATE_READY, NULL);
    }
    return;
  }
  void *ctx = pn_link_get_context(l);
  if (!ctx) {
    if (pn_link_is_receiver(l) && pn_delivery_readable(d) && !pn_delivery_partial(d)) {
      pn_link_advance(l);
      pn_delivery_settle(d);
    }
    return;
  }
  if (pn_link_is_receiver(l))
    rx_delivery(ctx, d);
  else
    tx_delivery(c, ctx, d);
}

/* For an IP-literal host, before any token goes out: the certificate this
 * connection got (Proton verified its chain) must be the one tlscheck.c
 * verified for the IP address in a handshake of its own. Blocks the network
 * thread for one handshake (bounded by op_timeout), once per connection. */
static bool tls_name_check(eh_client_t *c, pn_connection_t *conn) {
  if (!c->tls || !c->host_is_ip)
    return true;
  char have[EH_TLS_FP_MAX] = "", want[EH_TLS_FP_MAX];
  pn_ssl_t *ssl = pn_ssl(pn_connection_transport(conn));
  ed_err_t err = {0};
  if (!ssl || pn_ssl_get_cert_fingerprint(ssl, have, sizeof have, PN_SSL_SHA256) != 0)
    ed_err_set(&err, ED_E_TLS, "no server certificate to check against %s", c->host);
  else if (eh_tls_check(c->host, c->port, c->ca_file, c->o.op_timeout_us, want, &err) == ED_OK &&
           strcasecmp(have, want) != 0)
    ed_err_set(&err, ED_E_TLS,
               "the server's certificate changed between this connection and its check for "
               "IP address %s",
               c->host);
  if (!err.code)
    return true;
  ed_err_prefix(&err, "TLS");
  c->conn_err = err;
  c->conn_err_set = true;
  pn_connection_close(conn);
  return false;
}

static void handle(eh_client_t *c, pn_event_t *e, bool *in_conn) {
  switch (pn_event_type(e)) {
  case PN_CONNECTION_REMOTE_OPEN:
    *in_conn = true;
    if (tls_name_check(c, pn_event_connection(e)))
      start_session(c, pn_event_connection(e));
    break;
  case PN_CONNECTION_REMOTE_CLOSE: {
    pn_connection_t *conn = pn_event_connection(e);
    pn_condition_t *cond = pn_connection_remote_condition(conn);
    if (!c->conn_err_set && pn_condition_is_set(cond)) {
      set_cond_err(&c->conn_err, cond, "connection closed by the service");
      c->conn_err_set = true;
    }
    pn_connection_close(conn);
    break;
  }
  case PN_LINK_REMOTE_OPEN:
    *in_conn = true;
    on_link_open(c, pn_event_link(e));
    break;
  case PN_LINK_REMOTE_CLOSE:
  case PN_LINK_REMOTE_DETACH:
    *in_conn = true;
    on_link_close(c, pn_event_link(e));
    break;
  case PN_DELIVERY:
    *in_conn = true;
    on_delivery(c, pn_event_delivery(e));
    break;
  case PN_TRANSPORT_ERROR: {
    pn_condition_t *cond = pn_transport_condition(pn_event_transport(e));
    if (!c->conn_err_set && pn_condition_is_set(cond)) {
      const char *name = pn_condition_get_name(cond);
      const char *desc = pn_condition_get_description(cond);
      set_cond_err(&c->conn_err, cond, "connection");
      /* SASL refused: the credentials, not the network */
      if (desc && strstr(desc, "SASL") && name && strstr(name, "unauthorized"))
        c->conn_err.code = ED_E_UNAUTHORIZED;
      /* Proton says only "certificate verify failed": a handshake of our
       * own says which name was expected and OpenSSL's reason */
      char fp[EH_TLS_FP_MAX];
      ed_err_t why = {0};
      if (c->tls && desc && strstr(desc, "certificate verify failed") &&
          eh_tls_check(c->host, c->port, c->ca_file, c->o.op_timeout_us, fp, &why) == ED_E_TLS)
        ed_err_set(&c->conn_err, ED_E_TLS, "TLS: %s", why.msg);
      c->conn_err_set = true;
    }
    break;
  }
  case PN_TRANSPORT_CLOSED:
    *in_conn = false;
    conn_lost(c, pn_event_transport(e));
    break;
  case PN_CONNECTION_WAKE:
  case PN_LINK_FLOW:
  case PN_CONNECTION_INIT:
  case PN_CONNECTION_BOUND:
  case PN_SESSION_REMOTE_OPEN:
    *in_conn = true;
    break;
  default:
    break;
  }
}

static void *net_main(void *arg) {
  eh_client_t *c = arg;
  connect_now(c);
  timer_arm(c);
  for (;;) {
    pn_event_batch_t *b = pn_proactor_wait(c->pro);
    pn_event_t *e;
    bool in_conn = false, timeout = false, interrupt = false;
    while ((e = pn_event_batch_next(b))) {
      pn_event_type_t t = pn_event_type(e);
      if (t == PN_PROACTOR_TIMEOUT)
        timeout = true;
      else if (t == PN_PROACTOR_INTERRUPT)
        interrupt = true;
      else
        handle(c, e, &in_conn);
    }
    pthread_mutex_lock(&c->mu);
    bool stopping = c->stopping;
    bool have_conn = c->conn != NULL;
    if (interrupt && !have_conn)
      c->wake_pending = false;
    pthread_mutex_unlock(&c->mu);
    if (in_conn && have_conn)
      sync(c);
    pn_proactor_done(c->pro, b);
    if (!have_conn) {
      reap(c);
      if (stopping)
        break;
      int64_t now = ed_time_mono_us();
      pthread_mutex_lock(&c->mu);
      bool failed = c->state == EH_STATE_FAILED;
      pthread_mutex_unlock(&c->mu);
      if (!failed) {
        if (now >= c->reconnect_at)
          connect_now(c);
        else
          timer_want(c, c->reconnect_at);
      }
    } else if (timeout || interrupt) {
      wake(c);
    }
    timer_arm(c);
  }
  pthread_mutex_lock(&c->mu);
  c->exited = true;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
  return NULL;
}

/* ---- public: client ------------------------------------------------------- */

void eh_client_opts_init(eh_client_opts_t *o) {
  memset(o, 0, sizeof *o);
  o->token_lifetime_s = 3600;
  o->op_timeout_us = 60 * ED_US_PER_SEC;
  o->max_retries = 8;
  o->backoff_base_us = 800 * 1000;
  o->backoff_max_us = 30 * ED_US_PER_SEC;
  o->client_name = "ehdelta";
}

static void client_destroy(eh_client_t *c) {
  if (c->pro)
    pn_proactor_free(c->pro);
  if (c->ssl_domain)
    pn_ssl_domain_free(c->ssl_domain);
  if (c->msg)
    pn_message_free(c->msg);
  ed_buf_fini(&c->scratch);
  if (c->key)
    explicit_bzero(c->key, strlen(c->key));
  if (c->sas)
    explicit_bzero(c->sas, strlen(c->sas));
  free(c->host);
  free(c->hub);
  free(c->key_name);
  free(c->key);
  free(c->sas);
  free(c->audience);
  free(c->container);
  free(c->ca_file);
  free(c->client_name);
  au_cred_free(c->cred);
  pthread_mutex_destroy(&c->mu);
  pthread_cond_destroy(&c->cv);
  free(c);
}

ed_code_t eh_client_new(const eh_connstr_t *cs, const char *hub_arg, const eh_client_opts_t *opts,
                        eh_client_t **out, ed_err_t *err) {
  *out = NULL;
  const char *hub;
  ed_code_t rc = eh_connstr_hub(cs, hub_arg, &hub, err);
  if (rc)
    return rc;
  if (!hub || !*hub)
    return ed_err_set(err, ED_E_INVALID,
                      "no event hub: give one (--hub) or an EntityPath in the connection string");
  eh_client_t *c = calloc(1, sizeof *c);
  if (!c)
    return ED_E_NOMEM;
  pthread_mutex_init(&c->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&c->cv, &ca);
  pthread_condattr_destroy(&ca);
  if (opts)
    c->o = *opts;
  else
    eh_client_opts_init(&c->o);
  if (c->o.op_timeout_us <= 0)
    c->o.op_timeout_us = 60 * ED_US_PER_SEC;
  if (c->o.backoff_base_us <= 0)
    c->o.backoff_base_us = 800 * 1000;
  if (c->o.backoff_max_us < c->o.backoff_base_us)
    c->o.backoff_max_us = c->o.backoff_base_us;
  if (c->o.token_lifetime_s <= 0)
    c->o.token_lifetime_s = 3600;
  c->ca_file = dupstr(c->o.ca_file);
  c->client_name = dupstr(c->o.client_name ? c->o.client_name : "ehdelta");
  c->o.ca_file = c->ca_file;
  c->o.client_name = c->client_name;
  c->host = dupstr(cs->host);
  c->hub = dupstr(hub);
  c->key_name = dupstr(cs->key_name);
  c->key = dupstr(cs->key);
  c->sas = dupstr(cs->sas);
  c->port = eh_connstr_port(cs);
  c->tls = !cs->use_emulator;
  c->host_is_ip = eh_tls_host_is_ip(c->host);
  ed_buf_t a = ED_BUF_INIT;
  ed_buf_printf(&a, "sb://%s/%s", c->host, c->hub);
  c->audience = ed_buf_steal(&a);
  unsigned char rnd[8];
  FILE *ur = fopen("/dev/urandom", "rb");
  if (!ur || fread(rnd, 1, sizeof rnd, ur) != sizeof rnd)
    for (size_t i = 0; i < sizeof rnd; i++)
      rnd[i] = (unsigned char)(ed_time_now_us() >> (i * 3));
  if (ur)
    fclose(ur);
  srand((unsigned)(rnd[0] | rnd[1] << 8 | rnd[2] << 16) ^ (unsigned)ed_time_mono_us());
  ed_buf_printf(&a, "%s-", c->client_name);
  for (size_t i = 0; i < sizeof rnd; i++)
    ed_buf_printf(&a, "%02x", rnd[i]);
  c->container = ed_buf_steal(&a);
  if (c->o.entra) {
    /* The first token is fetched here, on the caller's thread, so that a
     * credential that cannot get one fails before any connection, with the
     * token endpoint's own message. */
    au_cred_opts_t co = *c->o.entra;
    co.scope = AU_SCOPE_EVENTHUBS;
    rc = au_cred_new(&co, &c->cred, err);
    rc = rc ? rc : au_cred_token(c->cred, false, NULL, NULL, err);
    /* Refreshes run on the network thread: one try of at most 5 s each (the
     * old token serves meanwhile and the next refresh tries again), so a slow
     * token endpoint cannot stall the links for minutes. */
    if (!rc)
      au_cred_set_limits(c->cred, -1, 5 * ED_US_PER_SEC);
    c->o.entra = NULL;
    if (rc) {
      client_destroy(c);
      return rc;
    }
  } else if (!c->key && !c->sas) {
    client_destroy(c);
    return ed_err_set(err, ED_E_INVALID,
                      "no credentials: the connection string has no SharedAccessKey or "
                      "SharedAccessSignature and no Entra ID credential was given");
  }
  c->msg = pn_message();
  c->pro = pn_proactor();
  if (!c->host || !c->hub || !c->audience || !c->container || !c->msg || !c->pro) {
    client_destroy(c);
    return ED_E_NOMEM;
  }
  if (c->tls) {
    c->ssl_domain = pn_ssl_domain(PN_SSL_MODE_CLIENT);
    if (!c->ssl_domain) {
      client_destroy(c);
      return ed_err_set(err, ED_E_TLS, "TLS: Proton has no SSL support");
    }
    if (c->ca_file && pn_ssl_domain_set_trusted_ca_db(c->ssl_domain, c->ca_file)) {
      ed_err_set(err, ED_E_TLS, "--ca-file '%s': not a readable PEM file of CA certificates",
                 c->ca_file);
      client_destroy(c);
      return ED_E_TLS;
    }
    /* Proton matches DNS names and the CN only: for an IP literal it checks
     * the chain and tls_name_check (at REMOTE_OPEN) checks the IP SAN */
    pn_ssl_verify_mode_t mode = c->host_is_ip ? PN_SSL_VERIFY_PEER : PN_SSL_VERIFY_PEER_NAME;
    if (pn_ssl_domain_set_peer_authentication(c->ssl_domain, mode, NULL)) {
      client_destroy(c);
      return ed_err_set(err, ED_E_TLS, "TLS: cannot enable peer verification");
    }
  }
  c->state = EH_STATE_CONNECTING;
  if (pthread_create(&c->thread, NULL, net_main, c)) {
    client_destroy(c);
    return ed_err_set(err, ED_E_INTERNAL, "cannot start the network thread");
  }
  c->net_tid = c->thread;
  c->thread_started = true;
  /* named for top -H, perf and the bench's per-thread CPU (15 bytes at most) */
  pthread_setname_np(c->thread, "eh-net");
  /* wait for READY, or FAILED, or op_timeout */
  int64_t deadline = deadline_in(c->o.op_timeout_us);
  ed_err_t last = {0};
  pthread_mutex_lock(&c->mu);
  while (c->state != EH_STATE_READY && c->state != EH_STATE_FAILED) {
    if (!cv_wait_until(c, deadline))
      break;
  }
  eh_state_t st = c->state;
  last = c->err;
  pthread_mutex_unlock(&c->mu);
  if (st != EH_STATE_READY) {
    if (st == EH_STATE_FAILED)
      ed_err_set(err, last.code, "%s", last.msg);
    else if (last.msg[0])
      ed_err_set(err, ED_E_TIMEOUT, "%s (still failing after %" PRId64 " s)", last.msg,
                 c->o.op_timeout_us / ED_US_PER_SEC);
    else
      ed_err_set(err, ED_E_TIMEOUT, "connecting to %s:%d: no answer within %" PRId64 " s", c->host,
                 c->port, c->o.op_timeout_us / ED_US_PER_SEC);
    eh_client_free(c);
    return err ? err->code : ED_E_CONNECTION;
  }
  *out = c;
  return ED_OK;
}

static void rx_free(eh_receiver_t *rx);
static void tx_free(eh_sender_t *tx);

void eh_client_free(eh_client_t *c) {
  if (!c)
    return;
  if (c->thread_started) {
    pthread_mutex_lock(&c->mu);
    for (eh_receiver_t *rx = c->rxs; rx; rx = rx->next)
      rx->close_req = true;
    for (eh_sender_t *tx = c->txs; tx; tx = tx->next)
      tx->close_req = true;
    c->stopping = true;
    wake_locked(c);
    /* a peer that never answers the CLOSE is abandoned after 3 s */
    int64_t deadline = deadline_in(3 * ED_US_PER_SEC);
    while (!c->exited) {
      if (!cv_wait_until(c, deadline)) {
        pn_proactor_disconnect(c->pro, NULL);
        deadline = deadline_in(3 * ED_US_PER_SEC);
      }
    }
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    c->thread_started = false;
  }
  /* objects the caller never closed */
  while (c->rxs) {
    eh_receiver_t *rx = c->rxs;
    c->rxs = rx->next;
    rx_free(rx);
  }
  while (c->txs) {
    eh_sender_t *tx = c->txs;
    c->txs = tx->next;
    tx_free(tx);
  }
  while (c->mreqs) {
    mreq_t *r = c->mreqs;
    c->mreqs = r->next;
    eh_hub_props_fini(&r->hub);
    eh_partition_props_fini(&r->part);
    free(r->partition);
    free(r);
  }
  client_destroy(c);
}

const char *eh_client_hub(const eh_client_t *c) { return c->hub; }
const char *eh_client_host(const eh_client_t *c) { return c->host; }

void eh_client_stats(eh_client_t *c, eh_client_stats_t *out) {
  pthread_mutex_lock(&c->mu);
  *out = c->stats;
  pthread_mutex_unlock(&c->mu);
}

/* ---- public: management --------------------------------------------------- */

static ed_code_t mgmt_call(eh_client_t *c, int kind, const char *partition, int64_t timeout_us,
                           mreq_t **done, ed_err_t *err) {
  if (on_net_thread(c))
    return ed_err_set(err, ED_E_INTERNAL, "management call from a client callback");
  mreq_t *r = calloc(1, sizeof *r);
  if (!r)
    return ED_E_NOMEM;
  r->kind = kind;
  r->partition = dupstr(partition);
  if (timeout_us <= 0)
    timeout_us = c->o.op_timeout_us;
  int64_t deadline = deadline_in(timeout_us);
  pthread_mutex_lock(&c->mu);
  r->id = ++c->next_id + (UINT64_C(1) << 40); /* disjoint from CBS ids */
  r->next = c->mreqs;
  c->mreqs = r;
  wake_locked(c);
  while (!r->done && cv_wait_until(c, deadline))
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
    eh_hub_props_fini(&r->hub);
    eh_partition_props_fini(&r->part);
    free(r->partition);
    free(r);
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

/* ---- public: positions ---------------------------------------------------- */

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

/* ---- public: receivers ---------------------------------------------------- */

void eh_receiver_opts_init(eh_receiver_opts_t *o) {
  memset(o, 0, sizeof *o);
  o->consumer_group = EHP_DEFAULT_CONSUMER_GROUP;
  o->start.kind = EH_POS_EARLIEST;
  o->prefetch = 300;
}

static void rx_free(eh_receiver_t *rx) {
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
  if (!o->no_wait && on_net_thread(c))
    return ed_err_set(err, ED_E_INTERNAL, "receiver open from a client callback");
  eh_receiver_t *rx = calloc(1, sizeof *rx);
  if (!rx)
    return ED_E_NOMEM;
  rx->c = c;
  rx->o = *o;
  if (!rx->o.prefetch)
    rx->o.prefetch = 300;
  if (!rx->o.max_batch)
    rx->o.max_batch = rx->o.prefetch;
  rx->cg = dupstr(o->consumer_group ? o->consumer_group : EHP_DEFAULT_CONSUMER_GROUP);
  rx->partition = dupstr(o->partition);
  rx->name = dupstr(o->receiver_name);
  ed_buf_t a = ED_BUF_INIT;
  ed_buf_printf(&a, EHP_ADDR_RECEIVER_FMT, c->hub, rx->cg, rx->partition);
  rx->addr = ed_buf_steal(&a);
  ed_buf_printf(&a, "rx-%s-%s", rx->partition, c->container);
  rx->link_name = ed_buf_steal(&a);
  rx->o.consumer_group = rx->cg;
  rx->o.partition = rx->partition;
  rx->o.receiver_name = rx->name;
  atomic_init(&rx->last_seq, -1);
  atomic_init(&rx->resume_req, false);
  rx->state = EH_STATE_CONNECTING;
  if (!rx->cg || !rx->partition || !rx->addr || !rx->link_name) {
    rx_free(rx);
    return ED_E_NOMEM;
  }
  pthread_mutex_lock(&c->mu);
  if (c->state == EH_STATE_FAILED || c->stopping) {
    ed_err_t e = c->err;
    pthread_mutex_unlock(&c->mu);
    rx_free(rx);
    return ed_err_set(err, e.code ? e.code : ED_E_STOPPED, "%s",
                      e.msg[0] ? e.msg : "client stopped");
  }
  rx->next = c->rxs;
  c->rxs = rx;
  wake_locked(c);
  if (o->no_wait) {
    pthread_mutex_unlock(&c->mu);
    *out = rx;
    return ED_OK;
  }
  int64_t deadline = deadline_in(c->o.op_timeout_us);
  while (rx->state != EH_STATE_READY && rx->state != EH_STATE_FAILED &&
         rx->state != EH_STATE_STOLEN && cv_wait_until(c, deadline))
    ;
  eh_state_t st = rx->state;
  ed_err_t e = rx->err;
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
  eh_client_t *c = rx->c;
  pthread_mutex_lock(&c->mu);
  rx->close_req = true;
  wake_locked(c);
  while (!rx->released && !c->exited)
    pthread_cond_wait(&c->cv, &c->mu);
  if (!rx->released) {
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
  rx_free(rx);
}

void eh_receiver_resume(eh_receiver_t *rx) {
  if (!atomic_exchange(&rx->resume_req, true))
    wake(rx->c);
}

int64_t eh_receiver_last_seq(eh_receiver_t *rx) { return atomic_load(&rx->last_seq); }

eh_state_t eh_receiver_state(eh_receiver_t *rx, ed_err_t *err) {
  pthread_mutex_lock(&rx->c->mu);
  eh_state_t st = rx->state;
  if (err)
    *err = rx->err;
  pthread_mutex_unlock(&rx->c->mu);
  return st;
}

const char *eh_receiver_partition(const eh_receiver_t *rx) { return rx->partition; }

/* ---- public: senders ------------------------------------------------------ */

void eh_sender_opts_init(eh_sender_opts_t *o) {
  memset(o, 0, sizeof *o);
  o->max_in_flight = 1024;
}

static void tx_free(eh_sender_t *tx) {
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

ed_code_t eh_sender_open(eh_client_t *c, const eh_sender_opts_t *o, eh_sender_t **out,
                         ed_err_t *err) {
  *out = NULL;
  if (on_net_thread(c))
    return ed_err_set(err, ED_E_INTERNAL, "sender open from a client callback");
  eh_sender_t *tx = calloc(1, sizeof *tx);
  if (!tx)
    return ED_E_NOMEM;
  tx->c = c;
  tx->o = *o;
  if (!tx->o.max_in_flight)
    tx->o.max_in_flight = 1024;
  tx->partition = dupstr(o->partition);
  tx->o.partition = tx->partition;
  ed_buf_t a = ED_BUF_INIT;
  if (tx->partition)
    ed_buf_printf(&a, EHP_ADDR_PARTITION_SENDER_FMT, c->hub, tx->partition);
  else
    ed_buf_puts(&a, c->hub);
  tx->addr = ed_buf_steal(&a);
  ed_buf_printf(&a, "tx-%s", c->container);
  tx->link_name = ed_buf_steal(&a);
  tx->state = EH_STATE_CONNECTING;
  if (!tx->addr || !tx->link_name) {
    tx_free(tx);
    return ED_E_NOMEM;
  }
  pthread_mutex_lock(&c->mu);
  if (c->state == EH_STATE_FAILED || c->stopping) {
    ed_err_t e = c->err;
    pthread_mutex_unlock(&c->mu);
    tx_free(tx);
    return ed_err_set(err, e.code ? e.code : ED_E_STOPPED, "%s",
                      e.msg[0] ? e.msg : "client stopped");
  }
  tx->next = c->txs;
  c->txs = tx;
  wake_locked(c);
  int64_t deadline = deadline_in(c->o.op_timeout_us);
  while (tx->state != EH_STATE_READY && tx->state != EH_STATE_FAILED && cv_wait_until(c, deadline))
    ;
  eh_state_t st = tx->state;
  ed_err_t e = tx->err;
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
  eh_client_t *c = tx->c;
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
  int64_t deadline = timeout_us > 0 ? deadline_in(timeout_us) : 0;
  while (tx->st.in_flight >= tx->o.max_in_flight && tx->state != EH_STATE_FAILED) {
    if (timeout_us == 0 || on_net_thread(c)) {
      pthread_mutex_unlock(&c->mu);
      free(m);
      return ed_err_set(err, ED_E_THROTTLED, "sender: %zu events in flight", tx->o.max_in_flight);
    }
    if (timeout_us < 0)
      pthread_cond_wait(&c->cv, &c->mu);
    else if (!cv_wait_until(c, deadline)) {
      pthread_mutex_unlock(&c->mu);
      free(m);
      return ed_err_set(err, ED_E_TIMEOUT, "sender: still %zu events in flight after the timeout",
                        tx->o.max_in_flight);
    }
  }
  if (tx->state == EH_STATE_FAILED) {
    ed_err_t e = tx->err;
    pthread_mutex_unlock(&c->mu);
    free(m);
    return ed_err_set(err, e.code, "%s", e.msg);
  }
  ol_push_back(&tx->queue, m);
  tx->st.queued++;
  tx->st.in_flight++;
  wake_locked(c);
  pthread_mutex_unlock(&c->mu);
  return ED_OK;
}

ed_code_t eh_sender_flush(eh_sender_t *tx, int64_t timeout_us, ed_err_t *err) {
  eh_client_t *c = tx->c;
  if (on_net_thread(c))
    return ed_err_set(err, ED_E_INTERNAL, "sender flush from a client callback");
  if (timeout_us <= 0)
    timeout_us = c->o.op_timeout_us;
  int64_t deadline = deadline_in(timeout_us);
  pthread_mutex_lock(&c->mu);
  while (tx->st.in_flight > 0 && cv_wait_until(c, deadline))
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
  pthread_mutex_lock(&tx->c->mu);
  uint64_t v = tx->max_msg;
  pthread_mutex_unlock(&tx->c->mu);
  return v;
}

void eh_sender_stats(eh_sender_t *tx, eh_sender_stats_t *out) {
  pthread_mutex_lock(&tx->c->mu);
  *out = tx->st;
  pthread_mutex_unlock(&tx->c->mu);
}

void eh_sender_close(eh_sender_t *tx) {
  if (!tx)
    return;
  eh_client_t *c = tx->c;
  if (tx->ever_ready && tx->state != EH_STATE_FAILED)
    eh_sender_flush(tx, c->o.op_timeout_us, NULL);
  pthread_mutex_lock(&c->mu);
  tx->close_req = true;
  wake_locked(c);
  while (!tx->released && !c->exited)
    pthread_cond_wait(&c->cv, &c->mu);
  if (!tx->released)
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
  tx_free(tx);
}
