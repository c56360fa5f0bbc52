/* Entra ID credentials against a scripted token endpoint on loopback: the
 * request shapes, retries, the default chain's order, and messages that name
 * the endpoint and status but never a secret. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth/cred.h"
#include "common/time.h"
#include "cu.h"

#define MAX_ANS 8

typedef struct {
  int fd, port;
  int nans;
  struct {
    int status;
    const char *body;
  } ans[MAX_ANS];
  int served;
  char req[MAX_ANS][8192];
  pthread_t th;
} srv_t;

static void *serve(void *ud) {
  srv_t *s = ud;
  for (int i = 0; i < s->nans; i++) {
    int c = accept(s->fd, NULL, NULL);
    if (c < 0)
      break;
    size_t n = 0;
    char *r = s->req[i];
    for (;;) {
      ssize_t k = recv(c, r + n, sizeof s->req[i] - 1 - n, 0);
      if (k <= 0)
        break;
      n += (size_t)k;
      r[n] = 0;
      char *he = strstr(r, "\r\n\r\n");
      if (!he)
        continue;
      const char *cl = strcasestr(r, "Content-Length:");
      size_t want = cl ? strtoul(cl + 15, NULL, 10) : 0;
      if ((size_t)(r + n - (he + 4)) >= want)
        break;
    }
    char out[4096];
    int len = snprintf(out, sizeof out,
                       "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: "
                       "%zu\r\nConnection: close\r\n\r\n%s",
                       s->ans[i].status, strlen(s->ans[i].body), s->ans[i].body);
    if (send(c, out, (size_t)len, 0) < 0)
      perror("send");
    close(c);
    s->served++;
  }
  return NULL;
}

static void srv_start(srv_t *s) {
  s->fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  CU_ASSERT_FATAL(bind(s->fd, (struct sockaddr *)&a, sizeof a) == 0);
  CU_ASSERT_FATAL(listen(s->fd, 8) == 0);
  getsockname(s->fd, (struct sockaddr *)&a, &al);
  s->port = ntohs(a.sin_port);
  pthread_create(&s->th, NULL, serve, s);
}

static void srv_stop(srv_t *s) {
  shutdown(s->fd, SHUT_RDWR);
  pthread_join(s->th, NULL);
  close(s->fd);
}

/* A port nothing listens on: bound, then closed. */
static int dead_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  bind(fd, (struct sockaddr *)&a, sizeof a);
  getsockname(fd, (struct sockaddr *)&a, &al);
  close(fd);
  return ntohs(a.sin_port);
}

static void clear_env(void) {
  static const char *const vars[] = {"AZURE_TENANT_ID",      "AZURE_CLIENT_ID",
                                     "AZURE_CLIENT_SECRET",  "AZURE_FEDERATED_TOKEN_FILE",
                                     "AZURE_AUTHORITY_HOST", "IDENTITY_ENDPOINT",
                                     "IDENTITY_HEADER",      "MSI_ENDPOINT",
                                     "MSI_SECRET",           "AZURE_POD_IDENTITY_AUTHORITY_HOST"};
  for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
    unsetenv(vars[i]);
}

#define OK_BODY "{\"token_type\":\"Bearer\",\"expires_in\":3599,\"access_token\":\"tok-1\"}"
#define SECRET  "s3cr3t+/="

static void test_client_secret_posts_form_and_parses_token(void) {
  clear_env();
  srv_t s = {.nans = 1, .ans = {{200, OK_BODY}}};
  srv_start(&s);
  char auth[64];
  snprintf(auth, sizeof auth, "http://127.0.0.1:%d/", s.port);
  au_cred_opts_t o = {.kind = AU_CRED_CLIENT_SECRET,
                      .scope = AU_SCOPE_EVENTHUBS,
                      .tenant = "t1",
                      .client_id = "app1",
                      .client_secret = SECRET,
                      .authority = auth};
  au_cred_t *c = NULL;
  ed_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(au_cred_new(&o, &c, &err), ED_OK);
  const char *tok = NULL;
  int64_t exp = 0, before = ed_time_now_us();
  CU_ASSERT_EQUAL(au_cred_token(c, false, &tok, &exp, &err), ED_OK);
  CU_ASSERT_STR(tok, "tok-1");
  CU_ASSERT(exp >= before + INT64_C(3500) * ED_US_PER_SEC);
  srv_stop(&s);
  CU_ASSERT(strstr(s.req[0], "POST /t1/oauth2/v2.0/token ") != NULL);
  CU_ASSERT(strstr(s.req[0], "client_id=app1") != NULL);
  CU_ASSERT(strstr(s.req[0], "client_secret=s3cr3t%2B%2F%3D") != NULL);
  CU_ASSERT(strstr(s.req[0], "scope=https%3A%2F%2Feventhubs.azure.net%2F.default") != NULL);
  CU_ASSERT(strstr(s.req[0], "grant_type=client_credentials") != NULL);
  /* cached: a second call sends nothing */
  CU_ASSERT_EQUAL(au_cred_token(c, false, &tok, NULL, &err), ED_OK);
  CU_ASSERT_EQUAL(au_cred_requests(c), 1);
  au_cred_free(c);
}

static void test_transient_failures_retried_then_succeed(void) {
  clear_env();
  srv_t s = {.nans = 3, .ans = {{503, "{}"}, {429, "{}"}, {200, OK_BODY}}};
  srv_start(&s);
  char auth[64];
  snprintf(auth, sizeof auth, "http://127.0.0.1:%d", s.port);
  au_cred_opts_t o = {.kind = AU_CRED_CLIENT_SECRET,
                      .scope = AU_SCOPE_STORAGE,
                      .tenant = "t1",
                      .client_id = "app1",
                      .client_secret = SECRET,
                      .authority = auth,
                      .max_backoff_us = 1000};
  au_cred_t *c = NULL;
  ed_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(au_cred_new(&o, &c, &err), ED_OK);
  const char *tok = NULL;
  CU_ASSERT_EQUAL(au_cred_token(c, false, &tok, NULL, &err), ED_OK);
  CU_ASSERT_STR(tok, "tok-1");
  CU_ASSERT_EQUAL(au_cred_requests(c), 3);
  srv_stop(&s);
  au_cred_free(c);
}

/* After au_cred_set_limits(-1, ...) a refresh is one try (the Event Hubs
 * network thread's setting): a 503 is not retried. */
static void test_limits_make_one_try(void) {
  clear_env();
  srv_t s = {.nans = 2, .ans = {{200, OK_BODY}, {503, "{}"}}};
  srv_start(&s);
  char auth[64];
  snprintf(auth, sizeof auth, "http://127.0.0.1:%d", s.port);
  au_cred_opts_t o = {.kind = AU_CRED_CLIENT_SECRET,
                      .scope = AU_SCOPE_STORAGE,
                      .tenant = "t1",
                      .client_id = "app1",
                      .client_secret = SECRET,
                      .authority = auth,
                      .max_backoff_us = 1000};
  au_cred_t *c = NULL;
  ed_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(au_cred_new(&o, &c, &err), ED_OK);
  CU_ASSERT_EQUAL(au_cred_token(c, false, NULL, NULL, &err), ED_OK);
  au_cred_set_limits(c, -1, 2 * ED_US_PER_SEC);
  CU_ASSERT_EQUAL(au_cred_token(c, true, NULL, NULL, &err), ED_E_UNAVAILABLE);
  CU_ASSERT_EQUAL(au_cred_requests(c), 2);
  CU_ASSERT(strstr(err.msg, "answered HTTP 503") != NULL);
  srv_stop(&s);
  au_cred_free(c);
}

static void test_refusal_names_endpoint_and_status_not_secret(void) {
  clear_env();
  srv_t s = {.nans = 1,
             .ans = {{401, "{\"error\":\"invalid_client\",\"error_description\":\"AADSTS7000215: "
                           "Invalid client secret provided.\\r\\nTrace ID: x\"}"}}};
  srv_start(&s);
  char auth[64];
  snprintf(auth, sizeof auth, "http://127.0.0.1:%d", s.port);
  au_cred_opts_t o = {.kind = AU_CRED_CLIENT_SECRET,
                      .scope = AU_SCOPE_STORAGE,
                      .tenant = "t1",
                      .client_id = "app1",
                      .client_secret = SECRET,
                      .authority = auth,
                      .max_backoff_us = 1000};
  au_cred_t *c = NULL;
  ed_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(au_cred_new(&o, &c, &err), ED_OK);
  const char *tok = NULL;
  CU_ASSERT_EQUAL(au_cred_token(c, false, &tok, NULL, &err), ED_E_UNAUTHORIZED);
  CU_ASSERT_EQUAL(au_cred_requests(c), 1); /* a refusal is not retried */
  char want[160];
  snprintf(want, sizeof want,
           "client secret: token endpoint http://127.0.0.1:%d/t1/oauth2/v2.0/token answered HTTP "
           "401 (invalid_client: AADSTS7000215: Invalid client secret provided.)",
           s.port);
  CU_ASSERT_STR(err.msg, want);
  CU_ASSERT(strstr(err.msg, "s3cr3t") == NULL);
  srv_stop(&s);
  au_cred_free(c);
}

static void test_unreachable_endpoint_retried_and_named(void) {
  clear_env();
  char auth[64];
  int port = dead_port();
  snprintf(auth, sizeof auth, "http://127.0.0.1:%d", port);
  au_cred_opts_t o = {.kind = AU_CRED_CLIENT_SECRET,
                      .scope = AU_SCOPE_STORAGE,
                      .tenant = "t1",
                      .client_id = "app1",
                      .client_secret = SECRET,
                      .authority = auth,
                      .max_retries = 2,
                      .max_backoff_us = 1000};
  au_cred_t *c = NULL;
  ed_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(au_cred_new(&o, &c, &err), ED_OK);
  CU_ASSERT_EQUAL(au_cred_token(c, false, NULL, NULL, &err), ED_E_CONNECTION);
  CU_ASSERT_EQUAL(au_cred_requests(c), 3);
  char want[128];
  snprintf(want, sizeof want,
           "token endpoint http://127.0.0.1:%d/t1/oauth2/v2.0/token unreachable after 3 attempts",
           port);
  CU_ASSERT(strstr(err.msg, want) != NULL);
  au_cred_free(c);
}

static char *write_tmp(const char *text) {
  static char path[64];
  snprintf(path, sizeof path, "/tmp/au_cred_test_XXXXXX");
  int fd = mkstemp(path);
  if (write(fd, text, strlen(text)) < 0)
    perror("write");
  close(fd);
  return path;
}

static void test_workload_identity_sends_assertion_from_file(void) {
  clear_env();
  srv_t s = {.nans = 1, .ans = {{200, OK_BODY}}};
  srv_start(&s);
  char auth[64];
  snprintf(auth, sizeof auth, "http://127.0.0.1:%d", s.port);
  char *f = write_tmp("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln\n");
  setenv("AZURE_TENANT_ID", "t2", 1);
  setenv("AZURE_CLIENT_ID", "app2", 1);
  setenv("AZURE_FEDERATED_TOKEN_FILE", f, 1);
  setenv("AZURE_AUTHORITY_HOST", auth, 1);
  au_cred_opts_t o = {.kind = AU_CRED_WORKLOAD_ID, .scope = AU_SCOPE_EVENTHUBS};
  au_cred_t *c = NULL;
  ed_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(au_cred_new(&o, &c, &err), ED_OK);
  CU_ASSERT_EQUAL(au_cred_token(c, false, NULL, NULL, &err), ED_OK);
  srv_stop(&s);
  CU_ASSERT(strstr(s.req[0], "POST /t2/oauth2/v2.0/token ") != NULL);
  CU_ASSERT(strstr(s.req[0], "client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-"
                             "assertion-type%3Ajwt-bearer") != NULL);
  CU_ASSERT(strstr(s.req[0], "client_assertion=eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln&") !=
            NULL);
  CU_ASSERT(strstr(s.req[0], "client_secret") == NULL);
  au_cred_free(c);
  unlink(f);
  clear_env();
}

static void test_malformed_federated_file_refused_without_content(void) {
  clear_env();
  static const char *const bad[] = {"",     "not a jwt at all",     "a.b", "a.b.c.d",
                                    ".b.c", "secret-looking-text\n"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char *f = write_tmp(bad[i]);
    au_cred_opts_t o = {.kind = AU_CRED_WORKLOAD_ID,
                        .scope = AU_SCOPE_STORAGE,
                        .tenant = "t",
                        .client_id = "c",
                        .federated_token_file = f,
                        .authority = "http://127.0.0.1:9"};
    au_cred_t *c = NULL;
    ed_err_t err = {0};
    CU_ASSERT_EQUAL_FATAL(au_cred_new(&o, &c, &err), ED_OK);
    CU_ASSERT_EQUAL(au_cred_token(c, false, NULL, NULL, &err), ED_E_CONFIG);
    CU_ASSERT(strstr(err.msg, "federated token file") != NULL);
    CU_ASSERT(strstr(err.msg, f) != NULL);
    CU_ASSERT(strstr(err.msg, "expected a JWT") != NULL);
    CU_ASSERT(strstr(err.msg, "secret-looking") == NULL);
    CU_ASSERT_EQUAL(au_cred_requests(c), 0);
    au_cred_free(c);
    unlink(f);
  }
  au_cred_opts_t o = {.kind = AU_CRED_WORKLOAD_ID,
                      .scope = AU_SCOPE_STORAGE,
                      .tenant = "t",
                      .client_id = "c",
                      .federated_token_file = "/nonexistent/token"};
  au_cred_t *c = NULL;
  ed_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(au_cred_new(&o, &c, &err), ED_OK);
  CU_ASSERT_EQUAL(au_cred_token(c, false, NULL, NULL, &err), ED_E_CONFIG);
  CU_ASSERT_STR(err.msg,
                "workload identity: cannot read federated token file '/nonexistent/token'");
  au_cred_free(c);
}

static void test_missing_settings_named(void) {
  clear_env();
  au_cred_opts_t o = {.kind = AU_CRED_CLIENT_SECRET, .scope = AU_SCOPE_STORAGE, .tenant = "t"};
  au_cred_t *c = NULL;
  ed_err_t err = {0};
  CU_ASSERT_EQUAL(au_cred_new(&o, &c, &err), ED_E_CONFIG);
  CU_ASSERT(strstr(err.msg, "AZURE_CLIENT_SECRET") != NULL);
  o.kind = AU_CRED_WORKLOAD_ID;
  CU_ASSERT_EQUAL(au_cred_new(&o, &c, &err), ED_E_CONFIG);
  CU_ASSERT(strstr(err.msg, "AZURE_FEDERATED_TOKEN_FILE") != NULL);
  CU_ASSERT_PTR_NULL(c);
}

static void test_managed_identity_app_service_shape(void) {
  clear_env();
  srv_t s = {.nans = 1,
             .ans = {{200, "{\"access_token\":\"mi-tok\",\"expires_on\":\"4102444800\","
                           "\"resource\":\"https://eventhubs.azure.net\"}"}}};
  srv_start(&s);
  char ep[64];
  snprintf(ep, sizeof ep, "http://127.0.0.1:%d/msi/token", s.port);
  setenv("IDENTITY_ENDPOINT", ep, 1);
  setenv("IDENTITY_HEADER", "hdr-secret", 1);
  au_cred_opts_t o = {.kind = AU_CRED_MANAGED_ID, .scope = AU_SCOPE_EVENTHUBS, .client_id = "uami"};
  au_cred_t *c = NULL;
  ed_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(au_cred_new(&o, &c, &err), ED_OK);
  const char *tok = NULL;
  int64_t exp = 0;
  CU_ASSERT_EQUAL(au_cred_token(c, false, &tok, &exp, &err), ED_OK);
  CU_ASSERT_STR(tok, "mi-tok");
  CU_ASSERT_EQUAL(exp, INT64_C(4102444800) * ED_US_PER_SEC);
  srv_stop(&s);
  CU_ASSERT(strstr(s.req[0], "GET /msi/token?api-version=2019-08-01&resource=https%3A%2F%2F"
                             "eventhubs.azure.net&client_id=uami ") != NULL);
  CU_ASSERT(strstr(s.req[0], "X-IDENTITY-HEADER: hdr-secret") != NULL);
  au_cred_free(c);
  clear_env();
}

static void test_imds_shape(void) {
  clear_env();
  srv_t s = {.nans = 1, .ans = {{200, OK_BODY}}};
  srv_start(&s);
  char host[64];
  snprintf(host, sizeof host, "http://127.0.0.1:%d", s.port);
  setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", host, 1);
  au_cred_opts_t o = {.kind = AU_CRED_MANAGED_ID, .scope = AU_SCOPE_STORAGE};
  au_cred_t *c = NULL;
  ed_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(au_cred_new(&o, &c, &err), ED_OK);
  CU_ASSERT_EQUAL(au_cred_token(c, false, NULL, NULL, &err), ED_OK);
  srv_stop(&s);
  CU_ASSERT(strstr(s.req[0], "GET /metadata/identity/oauth2/token?api-version=2018-02-01&"
                             "resource=https%3A%2F%2Fstorage.azure.com ") != NULL);
  CU_ASSERT(strstr(s.req[0], "Metadata: true") != NULL);
  au_cred_free(c);
  clear_env();
}

/* DefaultAzureCredential's order: environment before workload identity
 * before managed identity; the first that answers sticks. */
static void test_default_chain_order(void) {
  clear_env();
  srv_t s = {.nans = 2, .ans = {{200, OK_BODY}, {200, OK_BODY}}};
  srv_start(&s);
  char auth[64], ep[64];
  snprintf(auth, sizeof auth, "http://127.0.0.1:%d", s.port);
  snprintf(ep, sizeof ep, "http://127.0.0.1:%d/msi", s.port);
  char *f = write_tmp("aaa.bbb.ccc");
  setenv("IDENTITY_ENDPOINT", ep, 1);
  setenv("IDENTITY_HEADER", "h", 1);
  au_cred_opts_t o = {.kind = AU_CRED_DEFAULT,
                      .scope = AU_SCOPE_STORAGE,
                      .tenant = "t",
                      .client_id = "c",
                      .client_secret = SECRET,
                      .federated_token_file = f,
                      .authority = auth};
  au_cred_t *c = NULL;
  ed_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(au_cred_new(&o, &c, &err), ED_OK);
  CU_ASSERT_EQUAL(au_cred_token(c, false, NULL, NULL, &err), ED_OK);
  CU_ASSERT_STR(au_cred_name(c), "client secret");
  au_cred_free(c);
  o.client_secret = NULL; /* no secret: workload identity is next */
  CU_ASSERT_EQUAL_FATAL(au_cred_new(&o, &c, &err), ED_OK);
  CU_ASSERT_EQUAL(au_cred_token(c, false, NULL, NULL, &err), ED_OK);
  CU_ASSERT_STR(au_cred_name(c), "workload identity");
  au_cred_free(c);
  srv_stop(&s);
  CU_ASSERT(strstr(s.req[0], "client_secret=") != NULL);
  CU_ASSERT(strstr(s.req[1], "client_assertion=aaa.bbb.ccc") != NULL);
  /* no tenant: managed identity answers */
  srv_t m = {.nans = 1, .ans = {{200, OK_BODY}}};
  srv_start(&m);
  snprintf(ep, sizeof ep, "http://127.0.0.1:%d/msi", m.port);
  setenv("IDENTITY_ENDPOINT", ep, 1);
  o.tenant = NULL;
  CU_ASSERT_EQUAL_FATAL(au_cred_new(&o, &c, &err), ED_OK);
  CU_ASSERT_EQUAL(au_cred_token(c, false, NULL, NULL, &err), ED_OK);
  CU_ASSERT_STR(au_cred_name(c), "managed identity");
  srv_stop(&m);
  CU_ASSERT(strstr(m.req[0], "GET /msi?api-version=2019-08-01") != NULL);
  au_cred_free(c);
  unlink(f);
  clear_env();
}

static void test_default_chain_reports_each_member(void) {
  clear_env();
  char host[64];
  snprintf(host, sizeof host, "http://127.0.0.1:%d", dead_port());
  setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", host, 1);
  const char *path = getenv("PATH");
  char *saved = path ? strdup(path) : NULL;
  setenv("PATH", "/nonexistent", 1); /* no az */
  au_cred_opts_t o = {.kind = AU_CRED_DEFAULT, .scope = AU_SCOPE_STORAGE};
  au_cred_t *c = NULL;
  ed_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(au_cred_new(&o, &c, &err), ED_OK);
  CU_ASSERT_EQUAL(au_cred_token(c, false, NULL, NULL, &err), ED_E_UNAUTHORIZED);
  if (saved)
    setenv("PATH", saved, 1);
  free(saved);
  const char *e = strstr(err.msg, "environment:"), *w = strstr(err.msg, "workload identity:"),
             *m = strstr(err.msg, "managed identity: token endpoint"),
             *z = strstr(err.msg, "Azure CLI:");
  CU_ASSERT(e && w && m && z && e < w && w < m && m < z);
  CU_ASSERT(strncmp(err.msg, "default credential: no source gave a token: ", 44) == 0);
  au_cred_free(c);
  clear_env();
}

static void test_token_answers_parsed(void) {
  au_token_t t = {0};
  CU_ASSERT_EQUAL(au_parse_token(OK_BODY, 1000000, &t, NULL), ED_OK);
  CU_ASSERT_STR(t.value, "tok-1");
  CU_ASSERT_EQUAL(t.expires_us, 1000000 + INT64_C(3599000000));
  free(t.value);
  CU_ASSERT_EQUAL(
      au_parse_token("{\"access_token\":\"x\",\"expires_on\":\"1700000000\"}", 0, &t, NULL), ED_OK);
  CU_ASSERT_EQUAL(t.expires_us, INT64_C(1700000000000000));
  free(t.value);
  /* App Service 2017-09-01 */
  CU_ASSERT_EQUAL(au_parse_token("{\"access_token\":\"x\",\"expires_on\":\"11/14/2023 "
                                 "22:13:20 +00:00\"}",
                                 0, &t, NULL),
                  ED_OK);
  CU_ASSERT_EQUAL(t.expires_us, INT64_C(1700000000000000));
  free(t.value);
  ed_err_t err = {0};
  CU_ASSERT_EQUAL(au_parse_token("{\"error\":\"invalid_client\"}", 0, &t, &err), ED_E_UNAUTHORIZED);
  CU_ASSERT(strstr(err.msg, "invalid_client") != NULL);
  CU_ASSERT_EQUAL(au_parse_token("<html>", 0, &t, &err), ED_E_PROTOCOL);
}

static const cu_case_t cases[] = {CU_CASE(test_client_secret_posts_form_and_parses_token),
                                  CU_CASE(test_transient_failures_retried_then_succeed),
                                  CU_CASE(test_limits_make_one_try),
                                  CU_CASE(test_refusal_names_endpoint_and_status_not_secret),
                                  CU_CASE(test_unreachable_endpoint_retried_and_named),
                                  CU_CASE(test_workload_identity_sends_assertion_from_file),
                                  CU_CASE(test_malformed_federated_file_refused_without_content),
                                  CU_CASE(test_missing_settings_named),
                                  CU_CASE(test_managed_identity_app_service_shape),
                                  CU_CASE(test_imds_shape),
                                  CU_CASE(test_default_chain_order),
                                  CU_CASE(test_default_chain_reports_each_member),
                                  CU_CASE(test_token_answers_parsed),
                                  CU_END};
ED_SUITE(au_cred, cases)
