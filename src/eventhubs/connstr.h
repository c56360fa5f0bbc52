/* connstr: Event Hubs connection strings, validated the way the official SDKs
 * validate them (reference eventhubs-amqp.md §2). Owns the parsed copy; never
 * puts a key or signature into an error message. Used by the client, the CLI
 * and the emulator's tests. */
#ifndef ED_EVENTHUBS_CONNSTR_H
#define ED_EVENTHUBS_CONNSTR_H

#include <stdbool.h>

#include "common/err.h"

typedef struct eh_connstr {
  char *endpoint;    /* as given, e.g. "sb://ns.servicebus.windows.net/" */
  char *host;        /* "ns.servicebus.windows.net" (no port) */
  int port;          /* from the endpoint, 0 when absent */
  char *key_name;    /* SharedAccessKeyName, or NULL */
  char *key;         /* SharedAccessKey (secret), or NULL */
  char *sas;         /* SharedAccessSignature (secret), or NULL */
  char *entity_path; /* EntityPath (the hub), or NULL */
  bool use_emulator; /* UseDevelopmentEmulator=true: plain AMQP, no TLS */
} eh_connstr_t;

/* Parses s into out (zeroed first; caller frees with eh_connstr_fini).
 * Keys are case-insensitive and split at the first '='; values are trimmed;
 * empty segments are allowed. Refused: unknown, duplicate or empty keys, a
 * missing or non-sb:// Endpoint, a key name without a key (or the reverse),
 * both a key and a SharedAccessSignature, neither, a non-boolean
 * UseDevelopmentEmulator. */
ed_code_t eh_connstr_parse(const char *s, eh_connstr_t *out, ed_err_t *err);
/* The same, but credentials are optional (Microsoft Entra ID supplies them):
 * "Endpoint=sb://ns.servicebus.windows.net/;EntityPath=hub" is accepted. */
ed_code_t eh_connstr_parse_keyless(const char *s, eh_connstr_t *out, ed_err_t *err);
void eh_connstr_fini(eh_connstr_t *cs);
/* The port to dial: the endpoint's, else 5672 (emulator) or 5671 (TLS). */
int eh_connstr_port(const eh_connstr_t *cs);
/* Resolves the hub: EntityPath and an explicit name must agree when both are
 * given. *hub borrows from cs or from explicit. */
ed_code_t eh_connstr_hub(const eh_connstr_t *cs, const char *explicit_hub, const char **hub,
                         ed_err_t *err);

#endif
