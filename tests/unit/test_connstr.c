#include <stdio.h>

#include "eventhubs/connstr.h"
#include "tests/unit/cu.h"

static void test_parses_namespace_and_entity_strings(void) {
  eh_connstr_t cs;
  ed_err_t e = {0};
  CU_ASSERT_EQUAL_FATAL(
      eh_connstr_parse("Endpoint=sb://NS.servicebus.windows.net/;SharedAccessKeyName=Root;"
                       "SharedAccessKey=abc+/=KEY=;EntityPath=hub1",
                       &cs, &e),
      ED_OK);
  CU_ASSERT_STR(cs.host, "ns.servicebus.windows.net");
  CU_ASSERT_STR(cs.key_name, "Root");
  CU_ASSERT_STR(cs.key, "abc+/=KEY="); /* split at the first '=' only */
  CU_ASSERT_STR(cs.entity_path, "hub1");
  CU_ASSERT_FALSE(cs.use_emulator);
  CU_ASSERT_EQUAL(eh_connstr_port(&cs), 5671);
  const char *hub;
  CU_ASSERT_EQUAL(eh_connstr_hub(&cs, NULL, &hub, NULL), ED_OK);
  CU_ASSERT_STR(hub, "hub1");
  CU_ASSERT_EQUAL(eh_connstr_hub(&cs, "other", &hub, &e), ED_E_INVALID);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "does not match"));
  eh_connstr_fini(&cs);
  eh_connstr_fini(&cs);
}

static void test_case_insensitive_keys_and_emulator(void) {
  eh_connstr_t cs;
  CU_ASSERT_EQUAL_FATAL(eh_connstr_parse(" endpoint = sb://localhost:5673 ;sharedaccesskeyname=R;"
                                         "SHAREDACCESSKEY=k;UseDevelopmentEmulator=TRUE;;",
                                         &cs, NULL),
                        ED_OK);
  CU_ASSERT_TRUE(cs.use_emulator);
  CU_ASSERT_EQUAL(eh_connstr_port(&cs), 5673);
  CU_ASSERT_STR(cs.host, "localhost");
  eh_connstr_fini(&cs);
  CU_ASSERT_EQUAL_FATAL(eh_connstr_parse("Endpoint=sb://localhost;SharedAccessKeyName=R;"
                                         "SharedAccessKey=k;UseDevelopmentEmulator=true",
                                         &cs, NULL),
                        ED_OK);
  CU_ASSERT_EQUAL(eh_connstr_port(&cs), 5672);
  eh_connstr_fini(&cs);
  CU_ASSERT_EQUAL_FATAL(
      eh_connstr_parse(
          "Endpoint=sb://h/;SharedAccessSignature=SharedAccessSignature sr=a&sig=b&se=1&skn=c", &cs,
          NULL),
      ED_OK);
  CU_ASSERT_PTR_NOT_NULL(cs.sas);
  CU_ASSERT_PTR_NULL(cs.key);
  eh_connstr_fini(&cs);
}

/* Every refusal names the problem and never echoes the secret. */
static void test_refusals(void) {
  static const struct {
    const char *in;
    const char *why;
  } cases[] = {
      {"SharedAccessKeyName=R;SharedAccessKey=SECRET", "Endpoint is missing"},
      {"Endpoint=sb://h/;SharedAccessKeyName=R", "SharedAccessKey is missing"},
      {"Endpoint=sb://h/;SharedAccessKey=SECRET", "SharedAccessKeyName is missing"},
      {"Endpoint=sb://h/", "no credentials"},
      {"Endpoint=sb://h/;SharedAccessKeyName=R;SharedAccessKey=SECRET;Foo=bar",
       "unknown key 'Foo'"},
      {"Endpoint=sb://h/;SharedAccessKeyName=R;SharedAccessKey=",
       "'SharedAccessKey' has an empty value"},
      {"Endpoint=sb://h/;endpoint=sb://g/;SharedAccessKeyName=R;SharedAccessKey=SECRET",
       "appears twice"},
      {"Endpoint=https://h/;SharedAccessKeyName=R;SharedAccessKey=SECRET", "expected sb://"},
      {"Endpoint=sb://h:99999/;SharedAccessKeyName=R;SharedAccessKey=SECRET", "port 1-65535"},
      {"Endpoint=sb://h/hub;SharedAccessKeyName=R;SharedAccessKey=SECRET", "use EntityPath"},
      {"Endpoint=sb://h/;SharedAccessKeyName=R;SharedAccessKey=SECRET;SharedAccessSignature="
       "SharedAccessSignature sr=x",
       "expected exactly one"},
      {"Endpoint=sb://h/;SharedAccessSignature=SECRET", "must start with"},
      {"Endpoint=sb://h/;SharedAccessKeyName=R;SharedAccessKey=SECRET;UseDevelopmentEmulator=yes",
       "expected true or false"},
      {"Endpoint=sb://h/;SharedAccessKeyName=R;SECRET", "no '='"},
      {"", "Endpoint is missing"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    eh_connstr_t cs;
    ed_err_t e = {0};
    CU_ASSERT_EQUAL(eh_connstr_parse(cases[i].in, &cs, &e), ED_E_PARSE);
    if (!strstr(e.msg, cases[i].why))
      fprintf(stderr, "\n  case %zu: '%s' lacks '%s'\n", i, e.msg, cases[i].why);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, cases[i].why));
    CU_ASSERT_PTR_NULL(strstr(e.msg, "SECRET"));
  }
}

/* Entra ID needs only the endpoint: a key-less string is accepted by the
 * key-less parser and still refused, naming what is missing, by the other. */
static void test_keyless_for_entra(void) {
  eh_connstr_t cs;
  ed_err_t err = {0};
  const char *s = "Endpoint=sb://127.0.0.1:5672;EntityPath=eh1;UseDevelopmentEmulator=true";
  CU_ASSERT_EQUAL_FATAL(eh_connstr_parse_keyless(s, &cs, &err), ED_OK);
  CU_ASSERT_STR(cs.host, "127.0.0.1");
  CU_ASSERT_EQUAL(cs.port, 5672);
  CU_ASSERT_PTR_NULL(cs.key);
  CU_ASSERT(cs.use_emulator);
  eh_connstr_fini(&cs);
  CU_ASSERT_EQUAL(eh_connstr_parse(s, &cs, &err), ED_E_PARSE);
  CU_ASSERT(strstr(err.msg, "no credentials") != NULL);
  /* the other rules still hold */
  CU_ASSERT_EQUAL(eh_connstr_parse_keyless("EntityPath=eh1", &cs, &err), ED_E_PARSE);
  CU_ASSERT(strstr(err.msg, "Endpoint is missing") != NULL);
  CU_ASSERT_EQUAL(eh_connstr_parse_keyless("Endpoint=sb://h/;SharedAccessKeyName=k", &cs, &err),
                  ED_E_PARSE);
}

static const cu_case_t cases[] = {CU_CASE(test_parses_namespace_and_entity_strings),
                                  CU_CASE(test_case_insensitive_keys_and_emulator),
                                  CU_CASE(test_refusals), CU_CASE(test_keyless_for_entra), CU_END};
ED_SUITE(connstr, cases)
