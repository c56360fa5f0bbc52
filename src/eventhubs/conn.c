/* conn: the client's network thread (see client_int.h): the proactor loop,
 * the connection's events, and reconciliation, where Proton is brought in line
 * with what callers asked for. One state machine; receivers, senders, $cbs
 * and $management each get their part through one call. */
#include <inttypes.h>
#include <stdio.h>
#include <strings.h>
#include <sys/utsname.h>

#include <proton/connection.h>
#include <proton/delivery.h>
#include <proton/event.h>
#include <proton/sasl.h>
#include <proton/session.h>
#include <proton/terminus.h>
#include <proton/transport.h>

#include "common/log.h"
#include "config.h"
#include "eventhubs/client_int.h"
#include "eventhubs/tlscheck.h"
#include "proto/eventhubs.h"

/* The OPEN properties the service logs: product, version, platform.
 * @locality network thread */
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

/* Dials a new connection; its events arrive in later batches.
 * @locality network thread @locks takes c->mu */
static void conn_start(eh_client_t *c) {
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
  c->connect_deadline = eh_deadline_in(c->o.op_timeout_us);
  eh_client_timer_want(c, c->connect_deadline);
  pthread_mutex_lock(&c->mu);
  c->conn = conn;
  c->wake_pending = false;
  pthread_mutex_unlock(&c->mu);
  ED_LOG_DEBUG("eh_connect", "host=%s port=%d tls=%s", c->host, c->port, c->tls ? "yes" : "no");
  pn_proactor_connect2(c->pro, conn, t, addr);
}

/* The peer opened: one session for every link, $cbs first.
 * @locality network thread */
static void conn_open_session(eh_client_t *c, pn_connection_t *conn) {
  c->ssn = pn_session(conn);
  pn_session_set_incoming_capacity(c->ssn, 64u << 20);
  pn_session_open(c->ssn);
  eh_cbs_open(c);
}

/* Releases closed receivers and senders whose links are gone to their
 * callers; touches no Proton object. @locality network thread
 * @locks takes c->mu */
static void conn_reap(eh_client_t *c) {
  pthread_mutex_lock(&c->mu);
  for (eh_receiver_t **pp = &c->rxs; *pp;) {
    eh_receiver_t *rx = *pp;
    if (eh_link_release(&rx->lk)) {
      *pp = rx->next;
      if (rx->resolve)
        eh_mgmt_req_unlink_free(c, rx->resolve);
      rx->resolve = NULL;
      continue;
    }
    pp = &rx->next;
  }
  for (eh_sender_t **pp = &c->txs; *pp;) {
    eh_sender_t *tx = *pp;
    if (eh_link_release(&tx->lk)) {
      *pp = tx->next;
      continue;
    }
    pp = &tx->next;
  }
  pthread_mutex_unlock(&c->mu);
}

/* Inside a batch of the live connection: brings Proton in line with what
 * the callers asked for, fires due timers, dispatches events, pumps sends
 * (one call per part: connect deadline, $cbs, receivers, senders,
 * $management, release). @locality network thread @locks takes c->mu */
static void conn_reconcile(eh_client_t *c) {
  pn_connection_t *conn;
  pthread_mutex_lock(&c->mu);
  c->wake_pending = false;
  conn = c->conn;
  bool stopping = c->stopping;
  eh_receiver_t *rxs = c->rxs;
  eh_sender_t *txs = c->txs;
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
    eh_client_timer_want(c, c->connect_deadline);
    return;
  }
  if (!eh_cbs_tick(c, now))
    return;
  /* the lists only lose members in conn_reap(), on this thread, so walking
   * them without the lock is safe; new members are pushed at the head */
  for (eh_receiver_t *rx = rxs; rx; rx = rx->next)
    eh_rx_reconcile(c, rx, now);
  for (eh_sender_t *tx = txs; tx; tx = tx->next)
    eh_tx_reconcile(c, tx, now);
  if (!c->mgmt_tx)
    eh_mgmt_open(c);
  if (c->mgmt_attached)
    eh_mgmt_send_pending(c);
  conn_reap(c);
}

/* The connection is gone (PN_TRANSPORT_CLOSED): every link with it; retried
 * after a backoff, or the client fails. @locality network thread
 * @locks takes c->mu */
static void conn_lost(eh_client_t *c, pn_transport_t *t) {
  ed_err_t why = {0};
  if (c->conn_err_set) {
    why = c->conn_err;
  } else {
    pn_condition_t *cond = pn_transport_condition(t);
    if (cond && pn_condition_is_set(cond))
      eh_client_cond_err(&why, cond, "connection");
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
      rx->lk.link = NULL;
    for (eh_sender_t *tx = txs; tx; tx = tx->next) {
      tx->lk.link = NULL;
      eh_tx_requeue_unacked(tx, false);
    }
    conn_reap(c);
    return;
  }
  /* a refused connection is fatal for the client; a dropped one is retried */
  bool fatal = !ed_code_is_retriable(why.code);
  if (!fatal && eh_client_gives_up(c, ++c->attempts))
    fatal = true;
  if (fatal) {
    /* before the first connection eh_client_new returns the error itself */
    ed_log(c->ever_ready ? ED_LOG_ERROR : ED_LOG_DEBUG, "eh_connection_failed", "reason=\"%s\"",
           why.msg);
  } else {
    c->reconnect_at = ed_time_mono_us() + eh_client_backoff(c, c->attempts - 1);
    /* The first failure of the first connect is said at once (a refused port,
     * a wrong host), not only when the retries run out --timeout later; the
     * retries after it stay quiet until one gives up. */
    ed_log(c->ever_ready || c->attempts == 1 ? ED_LOG_WARN : ED_LOG_DEBUG, "eh_connection_retry",
           "attempt=%d reason=\"%s\"%s", c->attempts, why.msg,
           c->ever_ready ? "" : " retrying=until-timeout");
  }
  /* links: retried with the connection unless the failure is permanent */
  for (eh_receiver_t *rx = rxs; rx; rx = rx->next)
    eh_rx_conn_lost(rx, fatal, was_authed, &why);
  for (eh_sender_t *tx = txs; tx; tx = tx->next)
    eh_tx_conn_lost(c, tx, fatal, &why);
  if (fatal) {
    pthread_mutex_lock(&c->mu);
    for (mreq_t *r = c->mreqs; r; r = r->next)
      if (!r->done) {
        r->done = true;
        r->err = why;
        r->rc = why.code;
      }
    pthread_mutex_unlock(&c->mu);
    eh_client_notify(c, EH_STATE_FAILED, &why);
  } else {
    eh_client_notify(c, EH_STATE_RETRYING, &why);
    eh_client_timer_want(c, c->reconnect_at);
  }
}

/* The peer answered an attach. @locality network thread @locks takes c->mu */
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
    rx->lk.attached = true;
    ED_LOG_DEBUG("eh_rx_ready", "partition=%s", rx->partition);
    eh_rx_notify(rx, EH_STATE_READY, NULL);
  } else {
    eh_sender_t *tx = ctx;
    if (!pn_terminus_get_address(pn_link_remote_target(l)))
      return;
    tx->lk.attached = true;
    uint64_t mm = pn_link_remote_max_message_size(l);
    pthread_mutex_lock(&c->mu);
    /* no limit announced: assume the service's 1 MiB, as the Python SDK does */
    tx->max_msg = mm ? mm : EHP_MAX_MESSAGE_SIZE;
    pthread_mutex_unlock(&c->mu);
    eh_tx_notify(tx, EH_STATE_READY, NULL);
  }
}

/* The peer detached a link: a node link takes the connection down; a
 * receiver or sender retries or stops. @locality network thread */
static void on_link_close(eh_client_t *c, pn_link_t *l) {
  pn_condition_t *cond = pn_link_remote_condition(l);
  if (l == c->cbs_tx || l == c->cbs_rx || l == c->mgmt_tx || l == c->mgmt_rx) {
    /* a node link lost: start over on a new connection */
    eh_client_cond_err(&c->conn_err, cond,
                       l == c->cbs_tx || l == c->cbs_rx ? "$cbs link detached"
                                                        : "$management link");
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
  bool expired = eh_cbs_token_expired(c, cond);
  /* both start with their eh_link_t: the context is either */
  eh_link_detach_reason(ctx, cond, expired, &why);
  if (pn_link_is_receiver(l))
    eh_rx_lost(ctx, &why);
  else
    eh_tx_lost(c, ctx, &why);
  pn_link_free(l);
}

/* A delivery arrived or changed: node responses, events, send outcomes.
 * @locality network thread */
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
    if (l == c->mgmt_rx)
      eh_mgmt_response(c, m);
    else
      eh_cbs_response(c, l, m);
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
    eh_rx_delivery(ctx, d);
  else
    eh_tx_delivery(c, ctx, d);
}

/* For an IP-literal host, before any token goes out: the certificate this
 * connection got (Proton verified its chain) must be the one tlscheck.c
 * verified for the IP address in a handshake of its own. Blocks the network
 * thread for one handshake (bounded by op_timeout), once per connection.
 * @locality network thread */
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

/* One event of a batch; *in_conn when it belongs to the live connection.
 * @locality network thread */
static void handle(eh_client_t *c, pn_event_t *e, bool *in_conn) {
  switch (pn_event_type(e)) {
  case PN_CONNECTION_REMOTE_OPEN:
    *in_conn = true;
    if (tls_name_check(c, pn_event_connection(e)))
      conn_open_session(c, pn_event_connection(e));
    break;
  case PN_CONNECTION_REMOTE_CLOSE: {
    pn_connection_t *conn = pn_event_connection(e);
    pn_condition_t *cond = pn_connection_remote_condition(conn);
    if (!c->conn_err_set && pn_condition_is_set(cond)) {
      eh_client_cond_err(&c->conn_err, cond, "connection closed by the service");
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
      eh_client_cond_err(&c->conn_err, cond, "connection");
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

void *eh_conn_main(void *arg) {
  eh_client_t *c = arg;
  conn_start(c);
  eh_client_timer_arm(c);
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
      conn_reconcile(c);
    pn_proactor_done(c->pro, b);
    if (!have_conn) {
      conn_reap(c);
      if (stopping)
        break;
      int64_t now = ed_time_mono_us();
      pthread_mutex_lock(&c->mu);
      bool failed = c->state == EH_STATE_FAILED;
      pthread_mutex_unlock(&c->mu);
      if (!failed) {
        if (now >= c->reconnect_at)
          conn_start(c);
        else
          eh_client_timer_want(c, c->reconnect_at);
      }
    } else if (timeout || interrupt) {
      eh_client_wake(c);
    }
    eh_client_timer_arm(c);
  }
  pthread_mutex_lock(&c->mu);
  c->exited = true;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
  return NULL;
}
