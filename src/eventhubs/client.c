/* client: the Event Hubs AMQP client (see client.h for the contract, and
 * client_int.h for its modules and the thread and lock notes).
 *
 * Shape: one network thread loops on pn_proactor_wait (conn.c). Caller
 * threads never touch Proton: they change shared state under c->mu (request
 * lists, receiver and sender flags, send queues) and wake the connection; the
 * network thread then reconciles Proton with it (conn_reconcile), inside a
 * batch of that connection's events, which is where the proactor allows its
 * objects to be used. Callbacks run on the network thread with c->mu
 * released.
 *
 * One connection per client: a session carrying $cbs (put-token for
 * sb://host/hub before any other link, again at 80% of the token's life),
 * $management, and every receiver and sender. When the connection drops,
 * every link is re-attached on the next one; receivers from the last sequence
 * number their consumer accepted (exclusive), senders re-send what was not
 * settled (at least once: the service has no de-duplication without the
 * idempotent producer, which Proton 0.37 cannot request, §8.7).
 *
 * This file: the public client object and the helpers every module uses
 * (waking the network thread, waiting, backoff, timers, conditions). */
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include <proton/connection.h>

#include "common/log.h"
#include "eventhubs/client_int.h"
#include "eventhubs/tlscheck.h"
#include "proto/eventhubs.h"

const char *eh_state_name(eh_state_t st) {
  static const char *names[] = {"connecting", "ready", "retrying", "stolen", "failed", "closed"};
  return (unsigned)st < sizeof names / sizeof names[0] ? names[st] : "?";
}

bool eh_client_on_net_thread(eh_client_t *c) {
  return c->thread_started && pthread_equal(pthread_self(), c->net_tid);
}

void eh_client_wake_locked(eh_client_t *c) {
  if (c->wake_pending)
    return;
  c->wake_pending = true;
  if (c->conn)
    pn_connection_wake(c->conn);
  else
    pn_proactor_interrupt(c->pro);
}

void eh_client_wake(eh_client_t *c) {
  pthread_mutex_lock(&c->mu);
  eh_client_wake_locked(c);
  pthread_mutex_unlock(&c->mu);
}

bool eh_client_wait_until(eh_client_t *c, int64_t deadline) {
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

int64_t eh_client_backoff(eh_client_t *c, int attempt) {
  return ed_backoff_delay(&c->backoff, attempt);
}

bool eh_client_gives_up(const eh_client_t *c, int attempts) {
  return c->o.max_retries >= 0 && attempts > c->o.max_retries;
}

static const ehp_condition_t conditions[] = {
#define EHP_COND(id, name, code) {name, code},
#include "proto/conditions.def"
#undef EHP_COND
};

/* @locks none */
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

void eh_client_cond_err(ed_err_t *err, pn_condition_t *cond, const char *what) {
  const char *name = cond ? pn_condition_get_name(cond) : NULL;
  const char *desc = cond ? pn_condition_get_description(cond) : NULL;
  ed_code_t code = condition_code(name);
  if (desc && (strstr(desc, "certificate") || strstr(desc, "SSL") || strstr(desc, "TLS")))
    code = ED_E_TLS;
  if (name && !strcmp(name, ehp_cond_name(EHP_COND_UNAUTHORIZED)))
    code = ED_E_UNAUTHORIZED;
  /* Proton reports a peer that vanished mid-frame (a TCP reset, a dropped
   * connection) as a framing error; that is the network, not the protocol */
  if (name && !strcmp(name, ehp_cond_name(EHP_COND_FRAMING_ERROR)) && desc &&
      strstr(desc, "connection aborted"))
    code = ED_E_CONNECTION;
  ed_err_set(err, code, "%s: %s%s%s", what, name ? name : "closed", desc ? ": " : "",
             desc ? desc : "");
}

void eh_client_timer_want(eh_client_t *c, int64_t at) {
  if (at > 0 && (c->timer_at == 0 || at < c->timer_at))
    c->timer_at = at;
}

void eh_client_timer_arm(eh_client_t *c) {
  if (!c->timer_at)
    return;
  int64_t left = c->timer_at - ed_time_mono_us();
  pn_millis_t ms = left <= 0 ? 0 : (pn_millis_t)((left + 999) / 1000);
  pn_proactor_set_timeout(c->pro, ms);
  c->timer_at = 0;
}

void eh_client_notify(eh_client_t *c, eh_state_t st, const ed_err_t *err) {
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

void eh_client_opts_init(eh_client_opts_t *o) {
  memset(o, 0, sizeof *o);
  o->token_lifetime_s = 3600;
  o->op_timeout_us = 60 * ED_US_PER_SEC;
  o->max_retries = 8;
  o->backoff_base_us = 800 * 1000;
  o->backoff_max_us = 30 * ED_US_PER_SEC;
  o->client_name = "ehdelta";
}

const char *const eh_auth_names[] = {
    "sas", "client-secret", "workload-identity", "managed-identity", "azure-cli", "default", NULL};
_Static_assert(AU_CRED_CLIENT_SECRET == 0 && AU_CRED_WORKLOAD_ID == 1 && AU_CRED_MANAGED_ID == 2 &&
                   AU_CRED_AZURE_CLI == 3 && AU_CRED_DEFAULT == 4,
               "eh_auth_names follows au_kind_t");

/* Frees what eh_client_new set up; the network thread is not running.
 * @locality a caller's thread @locks none */
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
  c->ca_file = eh_dupstr(c->o.ca_file);
  c->client_name = eh_dupstr(c->o.client_name ? c->o.client_name : "ehdelta");
  c->o.ca_file = c->ca_file;
  c->o.client_name = c->client_name;
  c->host = eh_dupstr(cs->host);
  c->hub = eh_dupstr(hub);
  c->key_name = eh_dupstr(cs->key_name);
  c->key = eh_dupstr(cs->key);
  c->sas = eh_dupstr(cs->sas);
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
  ed_backoff_init(&c->backoff, c->o.backoff_base_us, c->o.backoff_max_us, 0);
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
  if (pthread_create(&c->thread, NULL, eh_conn_main, c)) {
    client_destroy(c);
    return ed_err_set(err, ED_E_INTERNAL, "cannot start the network thread");
  }
  c->net_tid = c->thread;
  c->thread_started = true;
  /* named for top -H, perf and the bench's per-thread CPU (15 bytes at most) */
  pthread_setname_np(c->thread, "eh-net");
  /* wait for READY, or FAILED, or op_timeout */
  int64_t deadline = eh_deadline_in(c->o.op_timeout_us);
  ed_err_t last = {0};
  pthread_mutex_lock(&c->mu);
  while (c->state != EH_STATE_READY && c->state != EH_STATE_FAILED) {
    if (!eh_client_wait_until(c, deadline))
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

void eh_client_free(eh_client_t *c) {
  if (!c)
    return;
  if (c->thread_started) {
    pthread_mutex_lock(&c->mu);
    for (eh_receiver_t *rx = c->rxs; rx; rx = rx->next)
      rx->lk.close_req = true;
    for (eh_sender_t *tx = c->txs; tx; tx = tx->next)
      tx->lk.close_req = true;
    c->stopping = true;
    eh_client_wake_locked(c);
    /* a peer that never answers the CLOSE is abandoned after 3 s */
    int64_t deadline = eh_deadline_in(3 * ED_US_PER_SEC);
    while (!c->exited) {
      if (!eh_client_wait_until(c, deadline)) {
        pn_proactor_disconnect(c->pro, NULL);
        deadline = eh_deadline_in(3 * ED_US_PER_SEC);
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
    eh_rx_free(rx);
  }
  while (c->txs) {
    eh_sender_t *tx = c->txs;
    c->txs = tx->next;
    eh_tx_free(tx);
  }
  while (c->mreqs) {
    mreq_t *r = c->mreqs;
    c->mreqs = r->next;
    eh_mgmt_req_free(r);
  }
  client_destroy(c);
}

const char *eh_client_hub(const eh_client_t *c) { return c->hub; }

const char *eh_client_host(const eh_client_t *c) { return c->host; }
