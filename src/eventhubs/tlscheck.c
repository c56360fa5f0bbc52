/* tlscheck: see tlscheck.h. */
#include "eventhubs/tlscheck.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

bool eh_tls_host_is_ip(const char *host) {
  unsigned char a[sizeof(struct in6_addr)];
  return host && (inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1);
}

/* A connected socket with send and receive timeouts, or -1 with err set. */
static int dial(const char *host, int port, int64_t timeout_us, ed_err_t *err) {
  char ps[16];
  snprintf(ps, sizeof ps, "%d", port);
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
  int gai = getaddrinfo(host, ps, &hints, &res);
  if (gai) {
    ed_err_set(err, ED_E_CONNECTION, "TLS check: %s: %s", host, gai_strerror(gai));
    return -1;
  }
  int fd = -1, why = 0;
  int ms = timeout_us > 0 ? (int)(timeout_us / 1000) : 30000;
  for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      why = errno;
      continue;
    }
    /* non-blocking connect, so the wait has the same bound as everything else */
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc < 0 && errno == EINPROGRESS) {
      struct pollfd p = {.fd = fd, .events = POLLOUT};
      socklen_t l = sizeof why;
      rc = poll(&p, 1, ms) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &why, &l) == 0 && !why ? 0
                                                                                               : -1;
      if (rc < 0 && !why)
        why = ETIMEDOUT;
    } else if (rc < 0)
      why = errno;
    if (rc < 0) {
      close(fd);
      fd = -1;
      continue;
    }
    fcntl(fd, F_SETFL, fl);
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  freeaddrinfo(res);
  if (fd < 0)
    ed_err_set(err, ED_E_CONNECTION, "TLS check: %s:%d: %s", host, port, strerror(why));
  return fd;
}

/* "DNS:a, IP:1.2.3.4" from the certificate's SANs, else "CN=…", into out. */
static void cert_names(X509 *cert, char *out, size_t n) {
  size_t at = 0;
  out[0] = 0;
  GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
  for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans) && at < n; i++) {
    const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
    char v[INET6_ADDRSTRLEN + 8] = "";
    const char *kind = NULL;
    if (g->type == GEN_DNS) {
      kind = "DNS";
      int l = ASN1_STRING_length(g->d.dNSName);
      snprintf(v, sizeof v, "%.*s", l, (const char *)ASN1_STRING_get0_data(g->d.dNSName));
    } else if (g->type == GEN_IPADD) {
      kind = "IP";
      int l = ASN1_STRING_length(g->d.iPAddress);
      const unsigned char *b = ASN1_STRING_get0_data(g->d.iPAddress);
      if (l == 4 || l == 16)
        inet_ntop(l == 4 ? AF_INET : AF_INET6, b, v, sizeof v);
    }
    if (kind)
      at += (size_t)snprintf(out + at, n - at, "%s%s:%s", at ? ", " : "", kind, v);
  }
  GENERAL_NAMES_free(sans);
  if (!at) {
    char cn[256] = "";
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
    snprintf(out, n, "no subjectAltName; CN=%s", cn);
  }
}

ed_code_t eh_tls_check(const char *host, int port, const char *ca_file, int64_t timeout_us,
                       char fp[EH_TLS_FP_MAX], ed_err_t *err) {
  bool ip = eh_tls_host_is_ip(host);
  fp[0] = 0;
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  SSL *s = ctx ? SSL_new(ctx) : NULL;
  if (!s) {
    SSL_CTX_free(ctx);
    return ed_err_set(err, ED_E_NOMEM, "TLS check: OpenSSL: out of memory");
  }
  /* the same trust as the Proton connection: the system store plus --ca-file */
  SSL_CTX_set_default_verify_paths(ctx);
  if (ca_file && SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
    ERR_clear_error();
    SSL_free(s);
    SSL_CTX_free(ctx);
    return ed_err_set(err, ED_E_TLS, "--ca-file '%s': not a readable PEM file of CA certificates",
                      ca_file);
  }
  X509_VERIFY_PARAM *vp = SSL_get0_param(s);
  X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  if (ip)
    X509_VERIFY_PARAM_set1_ip_asc(vp, host);
  else {
    X509_VERIFY_PARAM_set1_host(vp, host, 0);
    SSL_set_tlsext_host_name(s, host); /* SNI carries DNS names only (RFC 6066 §3) */
  }
  /* SSL_VERIFY_NONE: OpenSSL still verifies and keeps the result, and the
   * handshake goes on, so a failure can name what the certificate holds */
  SSL_set_verify(s, SSL_VERIFY_NONE, NULL);
  ed_code_t rc = ED_OK;
  int fd = dial(host, port, timeout_us, err);
  if (fd < 0)
    rc = err ? err->code : ED_E_CONNECTION;
  else if (!SSL_set_fd(s, fd) || SSL_connect(s) != 1) {
    char why[256] = "no TLS handshake";
    unsigned long e = ERR_get_error();
    if (e)
      ERR_error_string_n(e, why, sizeof why);
    rc = ed_err_set(err, ED_E_TLS, "TLS check: %s:%d: %s", host, port, why);
  } else {
    X509 *cert = SSL_get1_peer_certificate(s);
    long v = SSL_get_verify_result(s);
    char names[1024] = "";
    if (cert)
      cert_names(cert, names, sizeof names);
    if (!cert)
      rc = ed_err_set(err, ED_E_TLS, "%s:%d sent no certificate", host, port);
    else if (v != X509_V_OK)
      rc = ed_err_set(err, ED_E_TLS,
                      "certificate verify failed for %s:%d: %s (expected %s %s; the "
                      "certificate names %s)",
                      host, port, X509_verify_cert_error_string(v), ip ? "IP address" : "DNS name",
                      host, names);
    else {
      unsigned char md[EVP_MAX_MD_SIZE];
      unsigned int ml = 0;
      X509_digest(cert, EVP_sha256(), md, &ml);
      for (unsigned i = 0; i < ml && 2 * i + 2 < EH_TLS_FP_MAX; i++)
        snprintf(fp + 2 * i, 3, "%02x", md[i]);
    }
    X509_free(cert);
    SSL_shutdown(s);
  }
  ERR_clear_error();
  SSL_free(s);
  SSL_CTX_free(ctx);
  if (fd >= 0)
    close(fd);
  return rc;
}
