/* client_int: what the client's modules share, and nothing else includes.
 * The client (client.h) is one connection per eh_client_t, driven by one
 * network thread; its modules are:
 *   client.c    the public client object; waking, waiting, backoff, timers,
 *               conditions: the helpers every other module uses
 *   conn.c      the network thread: the proactor loop, connection events,
 *               reconciliation of Proton with what callers asked for
 *   link.c      the link base receivers and senders share (state, retry,
 *               close, release) and request/response on a node's links
 *   cbs.c       the $cbs node: tokens, put-token, refresh
 *   mgmt.c      the $management node: READ requests and their answers
 *   receiver.c  partition receivers: attach, deliveries, dispatch, positions
 *   sender.c    senders: queue, transfer, outcomes, re-send
 *
 * Threads and locks, on every function that is not public (librdkafka's
 * notes): "@locality network thread" means it runs only on the network thread
 * and may touch Proton objects and the fields marked "network thread only";
 * "@locality any thread" means a caller's thread (or the network thread).
 * "@locks c->mu held" means the caller holds c->mu; "@locks takes c->mu" that
 * it locks it itself (so the caller must not hold it); "@locks none" that it
 * needs no lock. Fields marked "shared, under c->mu" are read and written
 * with c->mu held; callbacks run on the network thread with c->mu released. */
#ifndef ED_EVENTHUBS_CLIENT_INT_H
#define ED_EVENTHUBS_CLIENT_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <proton/condition.h>
#include <proton/link.h>
#include <proton/message.h>
#include <proton/proactor.h>
#include <proton/ssl.h>

#include "auth/cred.h"
#include "common/backoff.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/time.h"
#include "eventhubs/amqp.h"
#include "eventhubs/client.h"

/* ---- the link base -------------------------------------------------------- */

/* What receivers and senders share: the first member of both. */
typedef struct eh_link {
  eh_client_t *c;
  const char *noun; /* "receiver" or "sender": in error messages */
  const char *addr; /* the node address attached to (borrowed from the owner) */
  /* shared, under c->mu */
  eh_state_t state;
  ed_err_t err;
  bool close_req;  /* the caller asked to close */
  bool released;   /* the network thread let go of it: the caller may free it */
  bool ever_ready; /* attached once: later failures are logged, not only returned */
  /* network thread only */
  pn_link_t *link;     /* NULL while detached */
  bool attached;       /* the peer answered the attach */
  bool terminal;       /* stopped for good (failed, stolen): never re-attached */
  int attempts;        /* consecutive failures, for the backoff */
  int64_t reattach_at; /* monotonic µs; 0 = none */
} eh_link_t;

/* ---- receivers ------------------------------------------------------------ */

typedef struct pend {
  size_t off, len; /* a delivery's bytes in rx->raw */
} pend_t;

struct eh_receiver {
  eh_link_t lk;
  eh_receiver_opts_t o;
  char *cg, *partition, *name, *addr, *link_name;
  struct eh_receiver *next;
  /* any thread, atomic */
  atomic_bool resume_req;
  _Atomic int64_t last_seq;
  /* network thread only */
  bool paused;
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

/* ---- senders -------------------------------------------------------------- */

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
  eh_link_t lk;
  eh_sender_opts_t o;
  char *partition, *addr, *link_name;
  struct eh_sender *next;
  /* shared, under c->mu */
  ed_err_t first_fail;
  bool has_fail;
  olist_t queue;   /* encoded, not yet transferred */
  olist_t unacked; /* transferred, no outcome yet */
  uint64_t max_msg;
  eh_sender_stats_t st;
  /* network thread only */
  uint64_t dtag;
};

/* ---- management requests -------------------------------------------------- */

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

/* ---- the client ----------------------------------------------------------- */

struct eh_client {
  char *host, *hub, *key_name, *key, *sas, *audience, *container;
  au_cred_t *cred; /* Entra ID (CBS type jwt), or NULL for SAS */
  int port;
  bool tls;
  bool host_is_ip; /* TLS name check by tlscheck.c, not Proton (IP SANs) */
  eh_client_opts_t o;
  ed_backoff_t backoff; /* reconnects, re-attaches, re-sends: network thread only */
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
  int64_t timer_at;
};

static inline char *eh_dupstr(const char *s) { return s ? strdup(s) : NULL; }
static inline int64_t eh_deadline_in(int64_t us) { return ed_time_mono_us() + us; }

/* ---- client.c: helpers every module uses ---------------------------------- */

/* @locality any thread @locks none */
bool eh_client_on_net_thread(eh_client_t *c);
/* Makes the network thread look at shared state soon. @locks c->mu held */
void eh_client_wake_locked(eh_client_t *c);
/* @locks takes c->mu */
void eh_client_wake(eh_client_t *c);
/* Waits on c->cv until an absolute monotonic deadline; false on timeout.
 * @locality a caller's thread @locks c->mu held (released while waiting) */
bool eh_client_wait_until(eh_client_t *c, int64_t deadline);
/* The delay before retry number attempt (0-based): common/backoff's capped
 * exponential with equal jitter, from the client's own PRNG.
 * @locality network thread (the one user of c->backoff) @locks none */
int64_t eh_client_backoff(eh_client_t *c, int attempt);
/* Whether attempts consecutive failures exhaust max_retries. @locks none */
bool eh_client_gives_up(const eh_client_t *c, int attempts);
/* Fills err from a remote condition, classified by conditions.def. @locks none */
void eh_client_cond_err(ed_err_t *err, pn_condition_t *cond, const char *what);
/* Asks for a proactor timeout no later than at. @locality network thread */
void eh_client_timer_want(eh_client_t *c, int64_t at);
/* Arms the proactor timeout asked for since the last call. @locality network thread */
void eh_client_timer_arm(eh_client_t *c);
/* Sets the connection state and calls on_state.
 * @locality network thread @locks takes c->mu (released for the callback) */
void eh_client_notify(eh_client_t *c, eh_state_t st, const ed_err_t *err);

/* ---- conn.c: the network thread ------------------------------------------- */

/* The network thread's body (pthread_create). Takes nothing; c outlives it. */
void *eh_conn_main(void *arg);

/* ---- link.c: the link base and node requests ------------------------------ */

/* Initialises the base of a receiver or sender (embedded, nothing to free). */
void eh_link_init(eh_link_t *l, eh_client_t *c, const char *noun, const char *addr);
/* A Proton link on the client's session. @locality network thread */
pn_link_t *eh_link_make(eh_client_t *c, bool sender, const char *name, const char *source,
                        const char *target);
/* Sets the state callers see and wakes waiters.
 * @locality network thread @locks takes c->mu */
void eh_link_set_state(eh_link_t *l, eh_state_t st, const ed_err_t *err);
/* Lets go of the Proton link (the peer detached it, or the connection
 * dropped): nothing of it is touched again. @locality network thread */
void eh_link_forget(eh_link_t *l);
/* After a failure: true when a re-attach is scheduled (retriable and retries
 * left), false when the link must stop. @locality network thread */
bool eh_link_schedule_retry(eh_link_t *l, const ed_err_t *why);
/* True when the caller asked to close: the Proton link, if any, is closed and
 * forgotten. @locality network thread @locks takes c->mu */
bool eh_link_close_requested(eh_link_t *l);
/* Whether a detached link may attach now; if not, asks for a timer at the
 * time it may. @locality network thread */
bool eh_link_reattach_due(eh_link_t *l, int64_t now);
/* A closed link whose Proton link is gone is released to its caller: true
 * then. @locality network thread @locks c->mu held */
bool eh_link_release(eh_link_t *l);
/* Why the peer detached l, from its remote condition (expired: the token
 * expired, which is recoverable). @locality network thread */
void eh_link_detach_reason(const eh_link_t *l, pn_condition_t *cond, bool expired, ed_err_t *why);
/* Waits until the link is READY or stopped (FAILED, STOLEN) or deadline.
 * @locality a caller's thread @locks c->mu held */
eh_state_t eh_link_wait_ready(eh_link_t *l, int64_t deadline, ed_err_t *err);
/* Asks the network thread to close the link and waits until it has: true,
 * or false when the network thread is gone (the caller unlinks it then).
 * @locality a caller's thread @locks c->mu held */
bool eh_link_close_wait(eh_link_t *l);
/* The error a new link gets when the client has already failed or is
 * stopping, else ED_OK. @locks c->mu held */
ed_code_t eh_link_refuse_if_stopped(eh_client_t *c, ed_err_t *err);
/* Sends m on the node link l, unsettled, encoded through c->scratch.
 * @locality network thread */
void eh_link_send_message(eh_client_t *c, pn_link_t *l, pn_message_t *m);
/* One string key and string value into an application-properties map. */
void eh_link_put_app_str(pn_data_t *d, const char *k, const char *v);

/* ---- cbs.c ---------------------------------------------------------------- */

/* Opens the $cbs links on the new session and puts the first token.
 * @locality network thread */
void eh_cbs_open(eh_client_t *c);
/* The token for the hub audience: minted from the key, or the ready one; out
 * is reset first, *expiry_us when it expires. @locks none */
ed_code_t eh_cbs_make_token(eh_client_t *c, ed_buf_t *out, int64_t *expiry_us, ed_err_t *err);
/* Puts the token on $cbs and schedules its refresh. @locality network thread */
void eh_cbs_put_token(eh_client_t *c);
/* Refreshes the token when due and bounds an unanswered put-token; false when
 * the connection was closed for it. @locality network thread */
bool eh_cbs_tick(eh_client_t *c, int64_t now);
/* Handles a $cbs response (already decoded into m). @locality network thread */
void eh_cbs_response(eh_client_t *c, pn_link_t *l, pn_message_t *m);
/* Whether a detach is a token that expired (and so recoverable); if so, a
 * fresh token is put at once. @locality network thread */
bool eh_cbs_token_expired(eh_client_t *c, pn_condition_t *cond);

/* ---- mgmt.c --------------------------------------------------------------- */

/* @locality network thread */
void eh_mgmt_open(eh_client_t *c);
/* Sends every management request not yet sent. @locality network thread
 * @locks takes c->mu */
void eh_mgmt_send_pending(eh_client_t *c);
/* Handles a $management response. @locality network thread @locks takes c->mu */
void eh_mgmt_response(eh_client_t *c, pn_message_t *m);
/* A node response's status code (status-code or statusCode) and description. */
int eh_mgmt_status(pn_message_t *m, char *desc, size_t n);
/* The error code of a node response status. */
ed_code_t eh_mgmt_status_code(int status);
/* Takes r out of the request list and frees it. @locks c->mu held */
void eh_mgmt_req_unlink_free(eh_client_t *c, mreq_t *r);
/* Frees r and what it holds (not in any list). @locks none */
void eh_mgmt_req_free(mreq_t *r);

/* ---- receiver.c ----------------------------------------------------------- */

/* Attaches, dispatches or closes rx as its state and the caller ask.
 * @locality network thread */
void eh_rx_reconcile(eh_client_t *c, eh_receiver_t *rx, int64_t now);
/* @locality network thread @locks takes c->mu (released for on_state) */
void eh_rx_notify(eh_receiver_t *rx, eh_state_t st, const ed_err_t *err);
/* @locality network thread */
void eh_rx_drop_pending(eh_receiver_t *rx);
/* The link ended (remote detach): retry, stolen or failed.
 * @locality network thread */
void eh_rx_lost(eh_receiver_t *rx, const ed_err_t *why);
/* The connection dropped: rx re-attaches on the next one unless fatal.
 * @locality network thread */
void eh_rx_conn_lost(eh_receiver_t *rx, bool fatal, bool was_authed, const ed_err_t *why);
/* @locality network thread */
void eh_rx_delivery(eh_receiver_t *rx, pn_delivery_t *d);
/* Frees rx (unlinked, released). @locks none */
void eh_rx_free(eh_receiver_t *rx);

/* ---- sender.c ------------------------------------------------------------- */

/* Attaches, pumps or closes tx as its state and the caller ask.
 * @locality network thread */
void eh_tx_reconcile(eh_client_t *c, eh_sender_t *tx, int64_t now);
/* @locality network thread @locks takes c->mu */
void eh_tx_notify(eh_sender_t *tx, eh_state_t st, const ed_err_t *err);
/* @locality network thread @locks takes c->mu */
void eh_tx_requeue_unacked(eh_sender_t *tx, bool resend);
/* The sender stops for good: it and everything still queued fail with why.
 * @locality network thread @locks takes c->mu (released for on_outcome) */
void eh_tx_fail(eh_client_t *c, eh_sender_t *tx, const ed_err_t *why);
/* The link ended (remote detach): re-send after a backoff, or fail.
 * @locality network thread */
void eh_tx_lost(eh_client_t *c, eh_sender_t *tx, const ed_err_t *why);
/* The connection dropped: unsettled events are queued again, or fail.
 * @locality network thread */
void eh_tx_conn_lost(eh_client_t *c, eh_sender_t *tx, bool fatal, const ed_err_t *why);
/* @locality network thread */
void eh_tx_delivery(eh_client_t *c, eh_sender_t *tx, pn_delivery_t *d);
/* Frees tx and what is still queued (unlinked, released). @locks none */
void eh_tx_free(eh_sender_t *tx);

#endif
