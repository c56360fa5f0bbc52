#include "eventhubs/sas.h"
#include "tests/unit/cu.h"

/* Reference eventhubs-amqp.md §3.2 (computed with openssl). */
static void test_reference_vector(void) {
  ed_buf_t b = ED_BUF_INIT;
  CU_ASSERT_EQUAL(eh_sas_token("sb://ns.servicebus.windows.net/hub", "RootManageSharedAccessKey",
                               "abc+/=KEY", 1700000000, &b, NULL),
                  ED_OK);
  CU_ASSERT_STR(b.data, "SharedAccessSignature sr=sb%3A%2F%2Fns.servicebus.windows.net%2Fhub&sig="
                        "L7D56P2%2FRWuOhr%2B6Fvg9ch1PvhH199QVLylLaSlvz1g%3D&se=1700000000&skn="
                        "RootManageSharedAccessKey");
  ed_buf_fini(&b);
}

static void test_parse_and_verify_round_trip(void) {
  ed_buf_t b = ED_BUF_INIT;
  eh_sas_token("sb://ns.servicebus.windows.net/hub", "Root", "k3y", 2000000000, &b, NULL);
  eh_sas_fields_t f;
  CU_ASSERT_EQUAL_FATAL(eh_sas_parse(b.data, &f, NULL), ED_OK);
  CU_ASSERT_STR(f.resource, "sb://ns.servicebus.windows.net/hub");
  CU_ASSERT_STR(f.skn, "Root");
  CU_ASSERT_EQUAL(f.se, 2000000000);
  CU_ASSERT_EQUAL(eh_sas_verify(&f, "k3y", 1999999999, NULL), ED_OK);
  ed_err_t e = {0};
  CU_ASSERT_EQUAL(eh_sas_verify(&f, "wrong", 1999999999, &e), ED_E_UNAUTHORIZED);
  CU_ASSERT_PTR_NULL(strstr(e.msg, "k3y"));
  CU_ASSERT_EQUAL(eh_sas_verify(&f, "k3y", 2000000000, &e), ED_E_TOKEN_EXPIRED);
  eh_sas_fields_fini(&f);
  ed_buf_fini(&b);
}

/* Go lower-cases the encoded URI: the signature covers sr as received. */
static void test_verify_uses_sr_as_received(void) {
  const char *tok = "SharedAccessSignature skn=RootManageSharedAccessKey&se=1700000000&"
                    "sr=amqps%3a%2f%2fns.servicebus.windows.net%2fhub&"
                    "sig=mdLINkHG%2FfX9g9raOCgdmGmUkUVFBr8W%2FO7lTRTzc3c%3D";
  eh_sas_fields_t f;
  CU_ASSERT_EQUAL_FATAL(eh_sas_parse(tok, &f, NULL), ED_OK);
  CU_ASSERT_EQUAL(eh_sas_verify(&f, "abc+/=KEY", 1600000000, NULL), ED_OK);
  CU_ASSERT_STR(f.resource, "amqps://ns.servicebus.windows.net/hub");
  eh_sas_fields_fini(&f);
}

static void test_parse_rejects(void) {
  static const char *bad[] = {
      "sr=a&sig=b&se=1&skn=c",
      "SharedAccessSignature sr=a&sig=b&skn=c",
      "SharedAccessSignature sr=a&sig=b&se=x&skn=c",
      "SharedAccessSignature sr=a&sig=b&se=1&skn=c&sr=d",
      "SharedAccessSignature sr=a&sig=b&se=1&skn=c&foo=1",
      "SharedAccessSignature sr=a&sig&se=1&skn=c",
      "SharedAccessSignature sr=%zz&sig=b&se=1&skn=c",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    eh_sas_fields_t f;
    ed_err_t e = {0};
    CU_ASSERT_NOT_EQUAL(eh_sas_parse(bad[i], &f, &e), ED_OK);
    CU_ASSERT_TRUE(e.msg[0] != '\0');
  }
}

static void test_token_refuses_empty_inputs(void) {
  ed_buf_t b = ED_BUF_INIT;
  ed_err_t e = {0};
  CU_ASSERT_EQUAL(eh_sas_token("", "n", "k", 1, &b, &e), ED_E_INVALID);
  CU_ASSERT_EQUAL(eh_sas_token("sb://h/x", "", "k", 1, &b, &e), ED_E_INVALID);
  CU_ASSERT_EQUAL(eh_sas_token("sb://h/x", "n", "", 1, &b, &e), ED_E_INVALID);
  CU_ASSERT_EQUAL(eh_sas_token("sb://h/x", "n", "k", 0, &b, &e), ED_E_INVALID);
  ed_buf_fini(&b);
}

static void test_audience_covers(void) {
  static const struct {
    const char *granted, *wanted;
    bool ok;
  } cases[] = {
      {"sb://ns.servicebus.windows.net/hub",
       "amqps://NS.servicebus.windows.net/hub/ConsumerGroups/$Default/Partitions/0", true},
      {"sb://ns.servicebus.windows.net/", "sb://ns.servicebus.windows.net/any", true},
      {"sb://ns.servicebus.windows.net/HUB/", "sb://ns.servicebus.windows.net/hub", true},
      {"sb://ns.servicebus.windows.net/hub", "sb://ns.servicebus.windows.net/hub2", false},
      {"sb://ns.servicebus.windows.net/hub", "sb://other.servicebus.windows.net/hub", false},
      {"sb://ns.servicebus.windows.net/hub/x", "sb://ns.servicebus.windows.net/hub", false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    CU_ASSERT_EQUAL(eh_sas_audience_covers(cases[i].granted, cases[i].wanted), cases[i].ok);
}

static const cu_case_t cases[] = {CU_CASE(test_reference_vector),
                                  CU_CASE(test_parse_and_verify_round_trip),
                                  CU_CASE(test_verify_uses_sr_as_received),
                                  CU_CASE(test_parse_rejects),
                                  CU_CASE(test_token_refuses_empty_inputs),
                                  CU_CASE(test_audience_covers),
                                  CU_END};
ED_SUITE(sas, cases)
