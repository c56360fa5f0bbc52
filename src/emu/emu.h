/* emu: ehemu, a strict local Event Hubs (reference eventhubs-amqp.md §1-§10).
 * Owns: the listening sockets, every client connection (socket, our own SASL
 * server, a pn_connection_driver, the outgoing-frame normaliser of §17), the
 * in-memory partitions (events stored pre-encoded, annotations included, so a
 * delivery is a copy), the TLS sessions of the AMQPS listener (OpenSSL over
 * memory BIOs, outside Proton, so the normaliser sees plaintext) and the
 * fault-injection control channel. One thread, one poll loop. */
#ifndef ED_EMU_EMU_H
#define ED_EMU_EMU_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

/* One event hub: from --config (emu_conf_load), or from the flags. */
typedef struct emu_hubspec {
  char *name;
  int partitions;
  char **groups; /* NULL-terminated; $Default is always added */
} emu_hubspec_t;

typedef struct emu_config {
  char *host;       /* listen address, default 127.0.0.1 */
  int64_t port;     /* AMQP port; 0 picks a free one */
  int64_t ctl_port; /* control channel port (loopback); 0 picks a free one */
  int64_t tls_port; /* AMQPS port, served when cert and tls_key are set; 0 picks a free one */
  char *cert;       /* PEM server certificate (chain) file, or NULL: no AMQPS */
  char *tls_key;    /* PEM private key file of cert */
  char *hub;        /* default hub name */
  int64_t partitions;
  char **groups; /* extra consumer groups ($Default is always there) */
  char *key_name;
  char *key_file;            /* file holding the SAS key; else $EHEMU_KEY; else random */
  int64_t token_lifetime_us; /* 0: the token's own se */
  char *jwks_file;           /* RS256 keys Entra ID tokens are checked against, or NULL: SAS only */
  char *jwt_issuer;          /* required "iss", or NULL: any */
  char *jwt_audience;        /* required "aud"; NULL: https://eventhubs.azure.net */
  char **roles;              /* "PRINCIPAL=receiver|sender|owner" (oid or appid) */
  bool disable_local_auth;   /* disableLocalAuth: SAS and SASL PLAIN refused */
  int64_t idle_link_us;      /* detach a data link idle this long (0: never) */
  int64_t idle_conn_us;      /* close a connection without links this long (0: never) */
  int64_t idle_first_us;     /* close a connection that opened no link this long (0: never) */
  int64_t retention_us;
  int64_t retention_bytes;
  int64_t max_message_size;  /* largest message a sender may transfer; 0: EHP_MAX_MESSAGE_SIZE */
  char *data_dir;            /* append-only partition logs (plog.h), or NULL: memory only */
  char *config_file;         /* the official emulator's Config.json (conf.h), or NULL */
  const emu_hubspec_t *hubs; /* borrowed; when nhubs > 0 they replace hub/partitions/groups */
  int nhubs;
} emu_config_t;

typedef struct emu emu_t;

/* key: borrowed, copied. *emu freed with emu_free. */
ed_code_t emu_new(const emu_config_t *cfg, const char *key, emu_t **emu, ed_err_t *err);
void emu_free(emu_t *emu);
int emu_amqp_port(const emu_t *emu);
int emu_ctl_port(const emu_t *emu);
int emu_tls_port(const emu_t *emu); /* -1 when AMQPS is not served */
/* Serves until *stop becomes true (signal handler). */
ed_code_t emu_run(emu_t *emu, volatile int *stop, ed_err_t *err);

#endif
