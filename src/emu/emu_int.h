/* emu_int: what the emulator's modules share, and nothing else includes.
 * ehemu (emu.h) is one thread and one poll loop; its modules are:
 *   emu.c    the emulator object, its listeners, the poll loop, the control
 *            channel, idle and token checks
 *   conn.c   one client connection: socket bytes through TLS and SASL into
 *            a pn_connection_driver, Proton's output back out
 *   tls.c    OpenSSL over memory BIOs for the AMQPS listener
 *   sasl.c   the SASL server (PLAIN, MSSBCBS, ANONYMOUS)
 *   norm.c   frames read and rewritten on the way in (OPEN's max-frame-size,
 *            TRANSFER's message-format) and out (every field written, §17)
 *   links.c  Proton events: attaches (receivers with epochs and positions,
 *            senders), incoming transfers, deliveries to receivers
 *   node.c   the $cbs and $management nodes and what a connection may access
 *   hub.c    hubs and partitions: placement, retention, storage (memory and
 *            the --data-dir logs)
 *   event.c  messages split and stamped as the service stamps them
 * Every function runs on the one thread; nothing here locks. */
#ifndef ED_EMU_EMU_INT_H
#define ED_EMU_EMU_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <proton/condition.h>
#include <proton/connection_driver.h>
#include <proton/delivery.h>
#include <proton/event.h>
#include <proton/connection.h>
#include <proton/link.h>
#include <proton/message.h>
#include <proton/session.h>
#include <proton/terminus.h>
#include <proton/transport.h>

#include <openssl/ssl.h>

#include "amqp/value.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/time.h"
#include "emu/emu.h"
#include "emu/jwt.h"
#include "emu/event.h"
#include "emu/plog.h"
#include "proto/amqp.h"
#include "proto/eventhubs.h"

#define EMU_MAX_CONNS   256
#define EMU_MAX_AUTH    16
#define EMU_SEND_CREDIT 1000
#define EMU_MAX_FRAME   65536
/* What the normaliser may add to a frame Proton sized: a TRANSFER written out
 * in full grows by at most 8 bytes of list32 header over list0 plus 11 nulls
 * for absent fields (19; ehemu's transfers carry no delivery state to pad).
 * Proton is told the peer takes frames this much smaller than it announced,
 * so a padded frame still fits; norm_frames enforces the limit regardless. */
#define EMU_NORM_SLACK 64
/* AMQP 1.0 §2.7.1 MIN-MAX-FRAME-SIZE: every peer takes frames this large */
#define EMU_MIN_MAX_FRAME AMQP_MIN_MAX_FRAME

typedef struct emu_part {
  emu_event_t *ev; /* ring-less: ev[first..n) are retained */
  size_t n, cap, first;
  int64_t next_seq, next_off, bytes;
  emu_plog_t *log; /* --data-dir: the partition's append-only log, else NULL */
  /* control `slow`: at most rate events a second to its receivers, taken in
   * bursts of what accrued since the last pump (0: no limit) */
  int64_t rate, rate_at_us;
  double allowance;
} emu_part_t;

typedef struct emu_hub {
  char *name;
  int nparts;
  emu_part_t *parts;
  char **groups;
  int ngroups;
  int64_t created_ms;
  unsigned rr;
} emu_hub_t;

typedef enum { LK_CBS_IN, LK_CBS_OUT, LK_MGMT_IN, LK_MGMT_OUT, LK_SEND, LK_RECV } emu_lkind_t;

typedef struct emu_conn emu_conn_t;

typedef struct emu_link {
  emu_lkind_t kind;
  pn_link_t *link;
  emu_conn_t *conn;
  struct emu_link *next;
  bool closed;
  char *path; /* "/hub/..." the authorization check uses */
  emu_hub_t *hub;
  int part; /* -1: hub sender */
  int group;
  bool has_epoch;
  int64_t epoch;
  int64_t next_seq;
  char *reply_addr;
  char *publisher;   /* <hub>/Publishers/<name> senders: stamped as x-opt-publisher */
  int64_t active_us; /* last transfer or flow, for the idle-link rule (§1.3) */
  ed_buf_t acc;
  pn_delivery_t *cur;
  uint32_t cur_format;
  bool oversize;
  uint64_t tag;
} emu_link_t;

typedef struct emu_auth {
  char *path; /* audience path, "" = namespace */
  int64_t exp_us;
  unsigned rights; /* EMU_RIGHT_*: all for the SAS key; a JWT's roles */
} emu_auth_t;

typedef enum { ST_HDR, ST_SASL, ST_AMQP } emu_state_t;

struct emu_conn {
  int fd;
  emu_t *emu;
  pn_connection_driver_t drv;
  emu_state_t st;
  ed_buf_t in, pout, out;
  SSL *ssl; /* AMQPS only: reads rbio, writes wbio (both owned by ssl) */
  BIO *rbio, *wbio;
  ed_buf_t tout; /* ciphertext waiting for the socket */
  bool tls_shut;
  bool read_closed, dead;
  int64_t out_ready_us;
  uint32_t last_format;
  uint32_t peer_max_frame; /* from the peer's OPEN; 0 until then (no limit yet) */
  emu_auth_t auth[EMU_MAX_AUTH];
  int nauth;
  emu_link_t *links;
  int64_t opened_us, idle_since_us; /* accepted; last moment it had a link */
  bool had_link, forced;
};

typedef struct emu_ctl {
  int fd;
  ed_buf_t in, out;
} emu_ctl_t;

struct emu {
  emu_config_t cfg;
  char *key;
  emu_jwt_t *jwt; /* Entra ID tokens are accepted when set (--jwks) */
  int lfd, cfd, tfd;
  int port, cport, tport;
  SSL_CTX *tls;
  emu_hub_t *hubs;
  int nhubs;
  int lockfd; /* --data-dir/lock, held while serving */
  emu_conn_t *conns[EMU_MAX_CONNS];
  emu_ctl_t ctls[8];
  int nctl;
  /* faults */
  int64_t busy_left;
  int64_t delay_us;
};

/* ---- the normaliser (§17) ---- */

/* ---- conn.c: one client connection: socket bytes in and out ------------ */

/* A connection on the accepted socket fd (owned from now on); NULL when out
 * of memory (fd closed). Free with emu_conn_free. */
emu_conn_t *emu_conn_new(emu_t *e, int fd, bool tls);
/* Closes the socket and frees c with its links. */
void emu_conn_free(emu_conn_t *c);
/* Feeds c->in to SASL, then to Proton one frame at a time. */
void emu_conn_input(emu_conn_t *c);
/* Runs Proton's events and moves its output, normalised, to c->out. */
void emu_conn_flush(emu_conn_t *c);
/* Moves one buffer of Proton's output to c->pout, running no events (so
 * event handlers may call it); false when there was none. */
bool emu_conn_pull(emu_conn_t *c);
/* Bytes waiting for the socket (plaintext and ciphertext). */
size_t emu_conn_unsent(const emu_conn_t *c);

/* ---- tls.c: OpenSSL over memory BIOs on the AMQPS listener --------------- */

/* The server context from the certificate and key files of cfg; *out: free
 * with SSL_CTX_free. */
ed_code_t emu_tls_context(const emu_config_t *cfg, SSL_CTX **out, ed_err_t *err);
/* Ciphertext OpenSSL wrote goes to c->tout. */
void emu_tls_drain(emu_conn_t *c);
/* Ciphertext from the socket in; the plaintext it yields to c->in. */
void emu_tls_input(emu_conn_t *c, const char *p, size_t n);
/* c->out (plaintext) through OpenSSL to c->tout. */
void emu_tls_output(emu_conn_t *c);

/* ---- sasl.c: our SASL server --------------------------------------------- */

/* Returns bytes consumed, 0 for more, or -1 to drop the connection. */
ssize_t emu_sasl_input(emu_conn_t *c, const uint8_t *p, size_t n);

/* ---- norm.c: frames read and rewritten on the way in and out (§17) ------- */

/* Moves whole frames from raw (Proton's output) to out, normalised, none
 * larger than limit (0: no limit yet). ED_E_NOMEM: out as before the frame
 * that did not fit. */
ed_code_t emu_norm_frames(ed_buf_t *raw, ed_buf_t *out, uint32_t limit);
/* The body of the frame at p (size bytes) as one described value. */
bool emu_norm_frame_body(const uint8_t *p, size_t size, amqp_val_t *v);
/* The peer's OPEN rewritten into o for Proton; false (o untouched) when
 * there is nothing to rewrite. */
bool emu_norm_open(emu_conn_t *c, const uint8_t *f, size_t size, ed_buf_t *o);
/* A TRANSFER's message-format (§13: Proton drops it) into c->last_format. */
void emu_norm_transfer_format(emu_conn_t *c, const uint8_t *f, size_t size);

/* ---- links.c: Proton events, attaches, transfers in, deliveries out ------ */

/* Sets a condition as the service words it (with a TrackingId). */
void emu_link_cond(pn_condition_t *c, const char *name, const char *desc);
/* Detaches el with the condition cond. */
void emu_link_detach(emu_link_t *el, const char *cond, const char *desc);
/* Delivers what el's partition holds past el->next_seq, within its credit. */
void emu_link_pump(emu_t *e, emu_link_t *el);
/* One Proton event of connection c. */
void emu_link_event(emu_conn_t *c, pn_event_t *ev);

/* ---- node.c: the $cbs and $management nodes, authorization --------------- */

/* The path of an audience or address: scheme and host dropped, no trailing '/'. */
void emu_node_path(const char *s, char *out, size_t n);
/* Whether c holds a live grant covering path with one of the rights in any
 * (EMU_RIGHT_*). */
bool emu_node_authorized(emu_conn_t *c, const char *path, unsigned any);
/* Grants c rights on path (and below) until exp_us. */
void emu_node_grant(emu_conn_t *c, const char *path, int64_t exp_us, unsigned rights);
/* A put-token request on $cbs: answered on its reply link. */
void emu_node_cbs(emu_conn_t *c, emu_link_t *el, pn_message_t *req, pn_delivery_t *d);
/* A READ request on $management: answered on its reply link. */
void emu_node_mgmt(emu_conn_t *c, emu_link_t *el, pn_message_t *req, pn_delivery_t *d);

/* ---- hub.c: hubs, partitions and their storage ---------------------------- */

/* The partition a key (or publisher) lands in (.NET PartitionResolver). */
int emu_hub_key_partition(const char *key, size_t n, int nparts);
/* Drops what retention no longer keeps from p (and compacts its log). */
void emu_hub_retain(emu_t *e, emu_part_t *p);
/* Stores n events (encoded AMQP messages) in p, all or none: with --data-dir
 * they are in the log before the sender hears Accepted. */
ed_code_t emu_hub_store(emu_t *e, emu_part_t *p, const emu_span_t *ms, size_t n, const char *pk,
                        size_t pkl, const char *pub);
/* Sets h up from spec (and loads its logs with --data-dir); emu_hub_fini frees. */
ed_code_t emu_hub_init(emu_t *e, emu_hub_t *h, const emu_hubspec_t *spec, ed_err_t *err);
void emu_hub_fini(emu_hub_t *h);
/* --data-dir/lock: two emulators on one directory would interleave appends. */
ed_code_t emu_hub_lock_dir(emu_t *e, ed_err_t *err);
/* The index of s among names (case-insensitive, as the service), or -1. */
int emu_hub_name_index(char **names, int n, const char *s);
/* The hub called name, or NULL. */
emu_hub_t *emu_hub_find(emu_t *e, const char *name);
/* The partition index s names in h, or -1. */
int emu_hub_partition(const emu_hub_t *h, const char *s);

#endif
