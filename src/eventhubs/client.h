/* client: the Event Hubs AMQP 1.0 client on the Qpid Proton-C proactor
 * (reference eventhubs-amqp.md §13 for the flow, §4 CBS, §5 management,
 * §6-§7 receivers and epochs, §8 senders, §9 retries).
 *
 * Owns one network thread per client running the proactor; every Proton
 * object lives on it and nothing else touches them. One AMQP connection per
 * client carries the $cbs links, the $management links, every partition
 * receiver and every sender. Never prints; logs through common/log.h.
 *
 * Threading: every public function is thread-safe unless stated. Callbacks
 * (on_events, on_state, on_outcome) run ON THE NETWORK THREAD: they must be
 * quick and must not call a blocking function of this header (open, close,
 * flush, *_props, eh_client_free) — doing so returns ED_E_INTERNAL.
 * eh_receiver_resume and eh_sender_send with a zero timeout may be called
 * from callbacks.
 *
 * Recovery: dropped connections, server-busy, timeouts and expired tokens are
 * retried with capped exponential backoff and full jitter; the CBS token is
 * put again on the same link at 80% of its lifetime. A receiver re-attaches
 * right after the last sequence number its consumer accepted, so nothing is
 * lost or repeated; one started at latest is first pinned (a $management
 * READ) to after the partition's last sequence number, so a drop before its
 * first event does not skip what arrived meanwhile. A link detached because
 * its token expired gets a fresh token and is re-attached; a put-token left
 * unanswered for op_timeout_us is put again. amqp:link:stolen stops only
 * that receiver; unauthorized and not-found are reported as fatal to the
 * object they concern. */
#ifndef ED_EVENTHUBS_CLIENT_H
#define ED_EVENTHUBS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/cred.h"
#include "common/err.h"
#include "eventhubs/connstr.h"

typedef struct eh_client eh_client_t;
typedef struct eh_receiver eh_receiver_t;
typedef struct eh_sender eh_sender_t;

/* ---- client -------------------------------------------------------------- */

typedef enum {
  EH_STATE_CONNECTING, /* dialing, SASL, OPEN, CBS put-token */
  EH_STATE_READY,      /* connected and authorized / receiver or sender attached */
  EH_STATE_RETRYING,   /* a transient failure; backing off (err says why) */
  EH_STATE_STOLEN,     /* receiver only: a higher or equal epoch took the partition; stopped */
  EH_STATE_FAILED,     /* permanent failure (err says why); stopped */
  EH_STATE_CLOSED,     /* closed by the caller */
} eh_state_t;

const char *eh_state_name(eh_state_t st); /* "ready"; static string */

typedef struct eh_client_opts {
  const char *ca_file;      /* PEM file of extra trusted CAs (added to the system bundle); NULL */
  int64_t token_lifetime_s; /* lifetime of SAS tokens minted from a key; default 3600 */
  int64_t op_timeout_us;    /* bound on connect, attach, put-token and management; default 60 s */
  int max_retries;          /* consecutive transient failures before FAILED; -1 = forever;
                               default 8 */
  int64_t backoff_base_us;  /* first retry delay; default 800 ms (the SDKs' 0.8 s) */
  int64_t backoff_max_us;   /* cap of the delay; default 30 s */
  const char *client_name;  /* prefix of the AMQP container id; default "ehdelta" */
  /* Microsoft Entra ID instead of the connection string's key: CBS put-token
   * of type jwt with tokens from this credential (its scope is set to Event
   * Hubs'). NULL: SAS. Borrowed for eh_client_new only. */
  const au_cred_opts_t *entra;
  /* Connection-level state changes (network thread). ctx is user_ctx. */
  void (*on_state)(void *ctx, eh_state_t st, const ed_err_t *err);
  void *user_ctx;
} eh_client_opts_t;

/* How a client authenticates, as configuration and flags spell it: "sas"
 * (the connection string's key or signature), then the au_kind_t values in
 * their order (index i > 0 is au_kind_t i - 1). NULL-terminated. */
extern const char *const eh_auth_names[];
#define EH_AUTH_SAS 0

/* Fills o with the defaults above. */
void eh_client_opts_init(eh_client_opts_t *o);

/* Starts the network thread and connects: TLS to host:5671 with the peer name
 * verified (or plain AMQP to host:5672 when cs says UseDevelopmentEmulator=
 * true; an explicit endpoint port wins), SASL ANONYMOUS, OPEN, CBS put-token
 * for sb://host/hub. Blocks until authorized, a permanent failure, or
 * op_timeout_us after retries. Borrows cs, hub and opts (copied). On success
 * *out is the client; caller frees with eh_client_free.
 * Errors: ED_E_UNAUTHORIZED (token refused), ED_E_NOT_FOUND (unknown hub),
 * ED_E_TLS (certificate refused), ED_E_CONNECTION / ED_E_TIMEOUT (unreachable
 * after retries), ED_E_INVALID (bad arguments). */
ed_code_t eh_client_new(const eh_connstr_t *cs, const char *hub, const eh_client_opts_t *opts,
                        eh_client_t **out, ed_err_t *err);

/* Closes every receiver and sender still open, the connection, and joins the
 * network thread. NULL is a no-op. Not from a callback. */
void eh_client_free(eh_client_t *c);

/* The hub name and host; borrowed, valid until eh_client_free. */
const char *eh_client_hub(const eh_client_t *c);
const char *eh_client_host(const eh_client_t *c);

/* ---- management (reference §5) ------------------------------------------- */

typedef struct eh_hub_props {
  char *name;
  int64_t created_at_us;
  int partition_count;
  char **partition_ids; /* partition_count strings, then NULL */
} eh_hub_props_t;

typedef struct eh_partition_props {
  char *hub;
  char *partition;
  int64_t begin_seq;        /* first retained sequence number */
  int64_t last_seq;         /* last enqueued sequence number, -1 when empty */
  int64_t last_offset;      /* last enqueued offset, -1 when empty */
  int64_t last_enqueued_us; /* last enqueued time, µs since the epoch (0 when empty) */
  bool is_empty;
} eh_partition_props_t;

/* $management READ of com.microsoft:eventhub. Blocks up to timeout_us
 * (0 = op_timeout_us). Fills *out; caller frees with eh_hub_props_fini. */
ed_code_t eh_client_hub_props(eh_client_t *c, int64_t timeout_us, eh_hub_props_t *out,
                              ed_err_t *err);
void eh_hub_props_fini(eh_hub_props_t *p);

/* $management READ of com.microsoft:partition for partition id `partition`.
 * ED_E_NOT_FOUND / ED_E_INVALID for an unknown partition. Caller frees with
 * eh_partition_props_fini. */
ed_code_t eh_client_partition_props(eh_client_t *c, const char *partition, int64_t timeout_us,
                                    eh_partition_props_t *out, ed_err_t *err);
void eh_partition_props_fini(eh_partition_props_t *p);

/* ---- positions (reference §6.3) ------------------------------------------ */

typedef enum {
  EH_POS_EARLIEST, /* the first retained event */
  EH_POS_LATEST,   /* only events enqueued after the attach */
  EH_POS_OFFSET,   /* value = offset */
  EH_POS_SEQUENCE, /* value = sequence number */
  EH_POS_ENQUEUED, /* value = enqueued time, µs since the epoch (sent as ms) */
} eh_pos_kind_t;

typedef struct eh_position {
  eh_pos_kind_t kind;
  bool inclusive; /* >= instead of > (OFFSET, SEQUENCE, ENQUEUED) */
  int64_t value;
} eh_position_t;

/* Parses the text form used by the CLI and configuration:
 *   earliest | latest | offset:N | offset>=N | seq:N (same as seq>=N) |
 *   seq>N | time:ISO-8601 (enqueued after) | time>=ISO-8601
 * "offset:N" is exclusive (after offset N, like a checkpoint); "seq:N"
 * inclusive (starting at N). */
ed_code_t eh_position_parse(const char *s, eh_position_t *p, ed_err_t *err);
/* The selector-filter expression for p, e.g.
 * "amqp.annotation.x-opt-sequence-number >= '42'"; out gets at most n bytes. */
size_t eh_position_filter(const eh_position_t *p, char *out, size_t n);

/* ---- received events (reference §6.6) ------------------------------------ */

typedef enum {
  EH_BODY_DATA,   /* one or more data sections (concatenated): the SDKs' EventData.body */
  EH_BODY_STRING, /* amqp-value holding a string */
  EH_BODY_BINARY, /* amqp-value holding binary */
  EH_BODY_OTHER,  /* anything else: body is the encoded AMQP section(s) */
  EH_BODY_NONE,   /* no body section */
} eh_body_kind_t;

typedef enum {
  EH_VAL_NULL,
  EH_VAL_BOOL,      /* text "true" / "false" */
  EH_VAL_INT,       /* any AMQP integer type; text is decimal */
  EH_VAL_DOUBLE,    /* float or double; text as printed by %.17g */
  EH_VAL_STRING,    /* string or symbol; text is the value itself */
  EH_VAL_TIMESTAMP, /* text is ISO-8601 UTC */
  EH_VAL_OTHER,     /* binary, uuid, described, list, map...: text is a readable rendering */
} eh_val_kind_t;

/* One application property. Key and text BORROWED (see eh_event_t). Text is
 * not NUL-terminated when it comes straight from the wire; use the lengths. */
typedef struct eh_prop {
  const char *key;
  size_t key_len;
  const char *text;
  size_t text_len;
  eh_val_kind_t kind;
} eh_prop_t;

/* What a body is when it is not bytes (a data section, an AMQP string or
 * binary value): "an AMQP map", "an AMQP list", "an AMQP sequence", "no body
 * section", ... (static), for a message naming what was expected instead.
 * NULL for EH_BODY_DATA, EH_BODY_STRING and EH_BODY_BINARY. */
const char *eh_body_what(eh_body_kind_t kind, const void *body, size_t len);

/* One event. Everything it points to is BORROWED: valid only during the
 * on_events callback that received it (copy what you keep). */
typedef struct eh_event {
  const char *partition; /* partition id (NUL-terminated) */
  const void *body;
  size_t body_len;
  eh_body_kind_t body_kind;
  int64_t sequence_number;
  int64_t offset;
  int64_t enqueued_time_us;
  const char *partition_key; /* NULL when absent; partition_key_len bytes */
  size_t partition_key_len;
  const char *publisher; /* NULL when absent */
  size_t publisher_len;
  const eh_prop_t *props; /* application properties, in wire order */
  size_t nprops;
  const char *content_type; /* properties.content-type or NULL */
  size_t content_type_len;
} eh_event_t;

/* ---- receivers (reference §6, §7) ---------------------------------------- */

/* Called on the network thread with n >= 1 events in sequence order. Returns
 * how many it took (0..n). When it takes fewer than n the receiver keeps the
 * rest, stops granting credit and calls again with the rest only after
 * eh_receiver_resume(rx). */
typedef size_t (*eh_on_events_fn)(void *ctx, eh_receiver_t *rx, const eh_event_t *evs, size_t n);
/* Called on the network thread on every state change: READY after each
 * attach, RETRYING (err set) before a re-attach, STOLEN or FAILED (err set,
 * terminal: no more on_events), CLOSED after eh_receiver_close. */
typedef void (*eh_on_rx_state_fn)(void *ctx, eh_receiver_t *rx, eh_state_t st, const ed_err_t *err);

typedef struct eh_receiver_opts {
  const char *consumer_group; /* default "$Default" */
  const char *partition;      /* partition id; required */
  eh_position_t start;        /* default earliest */
  bool has_epoch;             /* send com.microsoft:epoch */
  int64_t epoch;
  uint32_t prefetch;          /* link credit window = most events buffered; default 300 */
  size_t max_batch;           /* most events per on_events call; default = prefetch */
  const char *receiver_name;  /* com.microsoft:receiver-name, or NULL */
  bool no_wait;               /* return at once instead of waiting for the first attach */
  eh_on_events_fn on_events;  /* required */
  eh_on_rx_state_fn on_state; /* optional */
  void *ctx;
} eh_receiver_opts_t;

void eh_receiver_opts_init(eh_receiver_opts_t *o);

/* Attaches a partition receiver. Unless no_wait, blocks until the first
 * attach succeeded (READY) or failed for good: ED_E_NOT_FOUND (hub,
 * consumer group or partition), ED_E_LINK_STOLEN (a higher epoch holds the
 * partition), ED_E_UNAUTHORIZED, ED_E_INVALID (position out of range).
 * Borrows o (copied). Caller frees with eh_receiver_close. */
ed_code_t eh_receiver_open(eh_client_t *c, const eh_receiver_opts_t *o, eh_receiver_t **out,
                           ed_err_t *err);
/* Detaches, waits until the network thread has let go, and frees rx. No
 * callback for rx runs after it returns. NULL is a no-op. Not from a callback. */
void eh_receiver_close(eh_receiver_t *rx);
/* After on_events took fewer than offered: deliver the rest and grant credit
 * again. Thread-safe, callable from callbacks; a no-op when not paused. */
void eh_receiver_resume(eh_receiver_t *rx);
/* The sequence number of the last event on_events accepted, or -1. */
int64_t eh_receiver_last_seq(eh_receiver_t *rx);
/* The current state; with err, the last error (terminal or retried). */

/* ---- senders (reference §8) ---------------------------------------------- */

/* Outcome of one event (network thread): err NULL when the service accepted
 * it; otherwise the permanent error after retries (ED_E_TOO_LARGE,
 * ED_E_UNAUTHORIZED, ED_E_SERVER_BUSY after max_retries...). */
typedef void (*eh_on_outcome_fn)(void *ctx, eh_sender_t *tx, uint64_t tag, const ed_err_t *err);

typedef struct eh_sender_opts {
  const char *partition;       /* target <hub>/Partitions/<id>; NULL = the hub (service picks) */
  size_t max_in_flight;        /* events queued or unsettled before send blocks; default 1024 */
  eh_on_outcome_fn on_outcome; /* optional */
  void *ctx;
} eh_sender_opts_t;

void eh_sender_opts_init(eh_sender_opts_t *o);

/* One event to send. Borrowed for the duration of eh_sender_send (it is
 * encoded into the sender's queue at once). */
typedef struct eh_send_event {
  const void *body; /* sent as one data section */
  size_t body_len;
  const char *partition_key;    /* x-opt-partition-key, NUL-terminated; NULL = none. Refused with a
                                   partition sender (ED_E_INVALID). */
  const char *const *prop_keys; /* nprops application properties, string values */
  const char *const *prop_values;
  size_t nprops;
  const char *content_type; /* properties.content-type, or NULL */
} eh_send_event_t;

/* Attaches a sender and blocks until attached (max-message-size known) or
 * failed. Borrows o (copied). Caller frees with eh_sender_close. */
ed_code_t eh_sender_open(eh_client_t *c, const eh_sender_opts_t *o, eh_sender_t **out,
                         ed_err_t *err);
/* Encodes ev and queues it; tag comes back in on_outcome. Blocks up to
 * timeout_us while max_in_flight events are outstanding (0: never blocks,
 * ED_E_THROTTLED when full; <0: waits without bound). An event whose encoded
 * size exceeds the link's max-message-size is refused here with ED_E_TOO_LARGE
 * and never sent. One event per transfer (Proton 0.37 cannot send the batch
 * message-format, §13); many transfers are in flight at once. */
ed_code_t eh_sender_send(eh_sender_t *tx, const eh_send_event_t *ev, uint64_t tag,
                         int64_t timeout_us, ed_err_t *err);
/* Waits until every queued event has its outcome (timeout_us <= 0: op_timeout).
 * Returns the first failure since the previous flush (and fills err), ED_OK
 * when all were accepted, ED_E_TIMEOUT when events are still in flight. */
ed_code_t eh_sender_flush(eh_sender_t *tx, int64_t timeout_us, ed_err_t *err);
/* The link's max-message-size as the service announced it (0 = unlimited). */
uint64_t eh_sender_max_message_size(eh_sender_t *tx);

typedef struct eh_sender_stats {
  uint64_t queued, accepted, failed, in_flight;
  uint64_t retried; /* sends repeated: rejected and retried, or unsettled when a link was lost */
} eh_sender_stats_t;
void eh_sender_stats(eh_sender_t *tx, eh_sender_stats_t *out);
/* Flushes (bounded by op_timeout), detaches and frees. NULL is a no-op. Not
 * from a callback. Events still unsettled get an ED_E_STOPPED outcome. */
void eh_sender_close(eh_sender_t *tx);

#endif
