/* tlscheck: our own TLS handshake to the service, verified by OpenSSL, for
 * what Proton 0.37's pn_ssl cannot do: its name check reads DNS names and the
 * CN only, so a certificate for an IP address (Endpoint=sb://127.0.0.1:…, an
 * IP SAN) never verifies, and a failed check reaches us as a bare
 * "certificate verify failed". Owns one short-lived socket and SSL per call;
 * never sends application data. Called by conn.c on its network thread. */
#ifndef ED_EVENTHUBS_TLSCHECK_H
#define ED_EVENTHUBS_TLSCHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

/* SHA-256 as lower-case hex with its NUL, as pn_ssl_get_cert_fingerprint writes it */
#define EH_TLS_FP_MAX 65

/* True when host is an IPv4 or IPv6 literal (the certificate must name it in
 * an IP SAN, never in a DNS name or the CN: RFC 6125 §1.7.2). */
bool eh_tls_host_is_ip(const char *host);

/* Connects to host:port, shakes hands (bounded by timeout_us per step) and
 * verifies the server's chain against ca_file (extra CAs, may be NULL) and
 * the system store, and its name against host: X509_VERIFY_PARAM_set1_ip_asc
 * for an IP literal, set1_host otherwise. ED_OK fills fp with the verified
 * certificate's SHA-256; else err says which name was expected, what the
 * certificate names and OpenSSL's reason (X509_verify_cert_error_string). */
ed_code_t eh_tls_check(const char *host, int port, const char *ca_file, int64_t timeout_us,
                       char fp[EH_TLS_FP_MAX], ed_err_t *err);

#endif
