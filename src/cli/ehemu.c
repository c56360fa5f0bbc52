/* ehemu: main() of the local Event Hubs emulator (man/ehemu.1). Parses flags,
 * reads the SAS key (file, then $EHEMU_KEY, else a fresh random one), prints
 * the key and a readiness line on stderr, and serves until SIGINT/SIGTERM. */
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "common/b64.h"
#include "common/opt.h"
#include "emu/conf.h"
#include "emu/emu.h"
#include "config.h"

static const ed_opt_t options[] = {
    {"host", 0, ED_OPT_STRING, "ADDR", "127.0.0.1", offsetof(emu_config_t, host),
     "IPv4 address to listen on", 0, 0, 0, NULL},
    {"port", 'p', ED_OPT_INT, "PORT", "5672", offsetof(emu_config_t, port),
     "plain AMQP port (0 picks a free one)", 0, 0, 65535, NULL},
    {"control-port", 0, ED_OPT_INT, "PORT", "0", offsetof(emu_config_t, ctl_port),
     "fault-injection control port on 127.0.0.1 (0 picks a free one)", 0, 0, 65535, NULL},
    {"tls-port", 0, ED_OPT_INT, "PORT", "5671", offsetof(emu_config_t, tls_port),
     "AMQPS port, served with --cert and --key (0 picks a free one)", 0, 0, 65535, NULL},
    {"cert", 0, ED_OPT_STRING, "FILE", NULL, offsetof(emu_config_t, cert),
     "PEM server certificate (chain) for AMQPS", 0, 0, 0, NULL},
    {"key", 0, ED_OPT_STRING, "FILE", NULL, offsetof(emu_config_t, tls_key),
     "PEM private key of --cert", 0, 0, 0, NULL},
    {"hub", 0, ED_OPT_STRING, "NAME", "eh1", offsetof(emu_config_t, hub), "event hub name", 0, 0, 0,
     NULL},
    {"partitions", 0, ED_OPT_INT, "N", "4", offsetof(emu_config_t, partitions), "partition count",
     0, 1, 32, NULL},
    {"consumer-group", 0, ED_OPT_STRINGS, "NAME", NULL, offsetof(emu_config_t, groups),
     "consumer group besides $Default, repeatable (default: cg1)", 0, 0, 0, NULL},
    {"key-name", 0, ED_OPT_STRING, "NAME", "RootManageSharedAccessKey",
     offsetof(emu_config_t, key_name), "SAS rule name", 0, 0, 0, NULL},
    {"key-file", 0, ED_OPT_STRING, "FILE", NULL, offsetof(emu_config_t, key_file),
     "file holding the SAS key (else $EHEMU_KEY, else random)", 0, 0, 0, NULL},
    {"token-lifetime", 0, ED_OPT_DURATION, "DURATION", "0s",
     offsetof(emu_config_t, token_lifetime_us), "cap on accepted token lifetimes (0: none)", 0, 0,
     0, NULL},
    {"jwks", 0, ED_OPT_STRING, "FILE", NULL, offsetof(emu_config_t, jwks_file),
     "accept Entra ID tokens signed (RS256) by a key of this JWKS file", 0, 0, 0, NULL},
    {"jwt-issuer", 0, ED_OPT_STRING, "ISSUER", NULL, offsetof(emu_config_t, jwt_issuer),
     "with --jwks: the issuer (iss) tokens must carry (default: any)", 0, 0, 0, NULL},
    {"jwt-audience", 0, ED_OPT_STRING, "AUDIENCE", "https://eventhubs.azure.net",
     offsetof(emu_config_t, jwt_audience), "with --jwks: the audience (aud) tokens must carry", 0,
     0, 0, NULL},
    {"role", 0, ED_OPT_STRINGS, "PRINCIPAL=ROLE", NULL, offsetof(emu_config_t, roles),
     "grant receiver, sender or owner to an object id or app id (repeatable)", 0, 0, 0, NULL},
    {"disable-local-auth", 0, ED_OPT_FLAG, NULL, NULL, offsetof(emu_config_t, disable_local_auth),
     "refuse SAS tokens and SASL PLAIN keys: Entra ID only (disableLocalAuth)", 0, 0, 0, NULL},
    {"idle-link", 0, ED_OPT_DURATION, "DURATION", "10m", offsetof(emu_config_t, idle_link_us),
     "detach a sender or receiver idle this long (0: never)", 0, 0, 0, NULL},
    {"idle-connection", 0, ED_OPT_DURATION, "DURATION", "5m", offsetof(emu_config_t, idle_conn_us),
     "close a connection left without links this long (0: never)", 0, 0, 0, NULL},
    {"idle-first-link", 0, ED_OPT_DURATION, "DURATION", "1m", offsetof(emu_config_t, idle_first_us),
     "close a connection that attached no link this long (0: never)", 0, 0, 0, NULL},
    {"retention", 0, ED_OPT_DURATION, "DURATION", "1h", offsetof(emu_config_t, retention_us),
     "drop events older than this (0: keep)", 0, 0, 0, NULL},
    {"retention-bytes", 0, ED_OPT_INT, "BYTES", "0", offsetof(emu_config_t, retention_bytes),
     "drop the oldest events of a partition above this size (0: no limit)", 0, 0, 0, NULL},
    {"max-message-size", 0, ED_OPT_INT, "BYTES", "1048576",
     offsetof(emu_config_t, max_message_size),
     "largest event a sender may send (Standard: 1 MiB; Dedicated: 20 MiB)", 0, 1024,
     INT64_C(268435456), NULL},
    {"config", 0, ED_OPT_STRING, "FILE", NULL, offsetof(emu_config_t, config_file),
     "the official emulator's Config.json (replaces --hub, --partitions, --consumer-group)", 0, 0,
     0, NULL},
    {"data-dir", 0, ED_OPT_STRING, "DIR", NULL, offsetof(emu_config_t, data_dir),
     "keep events in append-only logs under DIR, across restarts", 0, 0, 0, NULL},
    ED_OPT_END,
};

static volatile int stop;
static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

static char *read_key(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f)
    return NULL;
  char buf[512];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
    n--;
  buf[n] = 0;
  return n ? strdup(buf) : NULL;
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--list-options") == 0) {
    ed_opt_list(stdout, options);
    return 0;
  }
  if (argc == 2 && strcmp(argv[1], "--version") == 0) {
    printf("ehemu %s\n", PACKAGE_VERSION);
    return 0;
  }
  emu_config_t cfg = {0};
  ed_err_t err = {0};
  int nops;
  bool help = false;
  if (ed_opt_parse(options, &cfg, argc, argv, &nops, &help, &err) != ED_OK || nops) {
    fprintf(stderr, "ehemu: %s\n", nops ? "no operands expected" : err.msg);
    ed_opt_free(options, &cfg);
    return 2;
  }
  if (help) {
    ed_opt_usage(stdout, "ehemu [OPTIONS]", "A strict local Azure Event Hubs emulator.", options);
    printf("\n'ehemu --version' prints the version.\n");
    ed_opt_free(options, &cfg);
    return 0;
  }
  char *defgroups[] = {"cg1", NULL};
  char **groups = cfg.groups;
  if (!cfg.groups)
    cfg.groups = defgroups;
  emu_hubspec_t *hubs = NULL;
  int nhubs = 0;
  if (cfg.config_file) {
    ed_buf_t problems = ED_BUF_INIT;
    if (emu_conf_load(cfg.config_file, &hubs, &nhubs, &problems, &err) != ED_OK) {
      /* one line per problem, so a user fixes them all in one pass */
      for (char *line = problems.data, *nl; line && *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl)
          break;
        fprintf(stderr, "ehemu: %.*s\n", (int)(nl - line), line);
      }
      if (!problems.len)
        fprintf(stderr, "ehemu: %s\n", err.msg);
      ed_buf_fini(&problems);
      cfg.groups = groups;
      ed_opt_free(options, &cfg);
      return 2;
    }
    ed_buf_fini(&problems);
    cfg.hubs = hubs, cfg.nhubs = nhubs;
  }
  const char *first_hub = nhubs ? hubs[0].name : cfg.hub;
  char *key = NULL;
  emu_t *emu = NULL;
  int status = 0;
  if (cfg.key_file) {
    key = read_key(cfg.key_file);
    if (!key) {
      fprintf(stderr, "ehemu: --key-file %s: expected a readable file holding the key\n",
              cfg.key_file);
      status = 2;
      goto done;
    }
  } else if (getenv("EHEMU_KEY") && *getenv("EHEMU_KEY")) {
    key = strdup(getenv("EHEMU_KEY"));
  } else {
    unsigned char raw[32];
    char text[ED_B64_ENCODED_LEN(32) + 1];
    if (RAND_bytes(raw, sizeof raw) != 1) {
      fprintf(stderr, "ehemu: no random bytes for a key\n");
      status = 1;
      goto done;
    }
    ed_b64_encode(raw, sizeof raw, text);
    key = strdup(text);
  }
  if (emu_new(&cfg, key, &emu, &err) != ED_OK) {
    fprintf(stderr, "ehemu: %s\n", err.msg);
    status = err.code == ED_E_CONFIG ? 2 : 1;
    goto done;
  }
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  signal(SIGPIPE, SIG_IGN);
  /* The key goes to stderr only when the emulator made it up: a key given by
   * file or environment is the caller's secret already. */
  if (!cfg.key_file && !getenv("EHEMU_KEY"))
    fprintf(stderr,
            "ehemu: connection string: Endpoint=sb://localhost:%d;SharedAccessKeyName=%s;"
            "SharedAccessKey=%s;EntityPath=%s;UseDevelopmentEmulator=true\n",
            emu_amqp_port(emu), cfg.key_name, key, first_hub);
  if (!cfg.key_file && !getenv("EHEMU_KEY") && emu_tls_port(emu) >= 0)
    fprintf(stderr,
            "ehemu: connection string (AMQPS): Endpoint=sb://localhost:%d/;SharedAccessKeyName=%s;"
            "SharedAccessKey=%s;EntityPath=%s\n",
            emu_tls_port(emu), cfg.key_name, key, first_hub);
  char tls[32] = "";
  if (emu_tls_port(emu) >= 0)
    snprintf(tls, sizeof tls, " amqps=%d", emu_tls_port(emu));
  fprintf(stderr, "ehemu: ready amqp=%d control=%d%s\n", emu_amqp_port(emu), emu_ctl_port(emu),
          tls);
  fflush(stderr);
  if (emu_run(emu, &stop, &err) != ED_OK) {
    fprintf(stderr, "ehemu: %s\n", err.msg);
    status = 1;
  }
done:
  emu_free(emu);
  free(key);
  emu_conf_free(hubs, nhubs);
  cfg.groups = groups;
  ed_opt_free(options, &cfg);
  return status;
}
