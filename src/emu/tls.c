/* tls: the AMQPS listener's TLS. OpenSSL reads and writes memory BIOs, so
 * everything above it only ever sees plaintext (and the normaliser can
 * rewrite frames). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>

#include "common/log.h"
#include "emu/emu_int.h"

/* The AMQPS server context: TLS 1.2 or later, the certificate chain and its key. */
ed_code_t emu_tls_context(const emu_config_t *cfg, SSL_CTX **out, ed_err_t *err) {
  if (!cfg->cert != !cfg->tls_key)
    return ed_err_set(err, ED_E_CONFIG, "--cert and --key: AMQPS needs both, got only --%s",
                      cfg->cert ? "cert" : "key");
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx)
    return ed_err_set(err, ED_E_TLS, "TLS: cannot make an OpenSSL context");
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  const char *flag = "--cert", *file = cfg->cert;
  bool ok = SSL_CTX_use_certificate_chain_file(ctx, cfg->cert) == 1;
  if (ok) {
    flag = "--key", file = cfg->tls_key;
    ok = SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) == 1 &&
         SSL_CTX_check_private_key(ctx) == 1;
  }
  if (!ok) {
    unsigned long e = ERR_get_error();
    const char *why = ERR_reason_error_string(e);
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return ed_err_set(err, ED_E_TLS, "%s '%s': expected a PEM %s (%s)", flag, file,
                      strcmp(flag, "--cert") == 0 ? "certificate" : "private key of the --cert",
                      why ? why : "unreadable");
  }
  *out = ctx;
  return ED_OK;
}

/* Moves what OpenSSL wrote (handshake records, alerts, application data) to
 * the socket's queue. */
void emu_tls_drain(emu_conn_t *c) {
  char buf[16384];
  int n;
  while ((n = BIO_read(c->wbio, buf, sizeof buf)) > 0)
    ed_buf_append(&c->tout, buf, (size_t)n);
}

/* Ciphertext from the socket: decrypted into c->in. A failed handshake (for
 * example a client that does not trust our certificate) or a close_notify ends
 * the connection once the alert has been written. */
void emu_tls_input(emu_conn_t *c, const char *p, size_t n) {
  if (BIO_write(c->rbio, p, (int)n) != (int)n) {
    c->dead = c->read_closed = true;
    return;
  }
  char buf[16384];
  for (;;) {
    int r = SSL_read(c->ssl, buf, sizeof buf);
    if (r > 0) {
      ed_buf_append(&c->in, buf, (size_t)r);
      continue;
    }
    int why = SSL_get_error(c->ssl, r);
    if (why == SSL_ERROR_WANT_READ || why == SSL_ERROR_WANT_WRITE)
      break;
    ERR_clear_error();
    if (why == SSL_ERROR_ZERO_RETURN) {
      c->read_closed = true;
      pn_connection_driver_read_close(&c->drv);
    } else
      c->dead = true; /* its alert is written before the socket closes */
    break;
  }
  emu_tls_drain(c);
}

/* Encrypts the plaintext queue once the handshake lets OpenSSL write. */
void emu_tls_output(emu_conn_t *c) {
  while (c->out.len) {
    int w = SSL_write(c->ssl, c->out.data, (int)(c->out.len < (1u << 30) ? c->out.len : 1u << 30));
    if (w <= 0) {
      int why = SSL_get_error(c->ssl, w);
      if (why != SSL_ERROR_WANT_READ && why != SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        c->dead = true;
        ed_buf_reset(&c->out);
      }
      break;
    }
    memmove(c->out.data, c->out.data + w, c->out.len - (size_t)w);
    c->out.len -= (size_t)w;
  }
  emu_tls_drain(c);
}
