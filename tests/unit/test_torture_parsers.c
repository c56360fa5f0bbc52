/* Allocation failures in the parsers: every failing allocation is reported
 * (ED_E_NOMEM) or survived, never a crash, never a leak. */
#include <stdlib.h>

#include "common/buf.h"
#include "common/opt.h"
#include "eventhubs/connstr.h"
#include "eventhubs/sas.h"
#include "tests/unit/cu.h"
#include "tests/unit/torture.h"

typedef ed_code_t (*op_fn)(void);

/* Runs op with each allocation failing in turn; op must clean up after itself. */
static void torture(op_fn op) {
  torture_fail_at(0);
  CU_ASSERT_EQUAL_FATAL(op(), ED_OK);
  size_t n = torture_count();
  CU_ASSERT_TRUE(n > 0);
  for (size_t i = 1; i <= n; i++) {
    torture_fail_at(i);
    ed_code_t rc = op();
    CU_ASSERT_TRUE(rc == ED_OK || rc == ED_E_NOMEM || !torture_failed());
  }
  torture_fail_at(0);
}

static ed_code_t op_connstr(void) {
  eh_connstr_t cs;
  ed_code_t rc = eh_connstr_parse("Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=R;"
                                  "SharedAccessKey=k;EntityPath=hub;UseDevelopmentEmulator=false",
                                  &cs, NULL);
  eh_connstr_fini(&cs);
  return rc;
}

static ed_code_t op_sas(void) {
  ed_buf_t b = ED_BUF_INIT;
  ed_code_t rc =
      eh_sas_token("sb://ns.servicebus.windows.net/hub", "Root", "key", 1700000000, &b, NULL);
  eh_sas_fields_t f = {0};
  if (!rc)
    rc = eh_sas_parse(b.data, &f, NULL);
  if (!rc)
    rc = eh_sas_verify(&f, "key", 1, NULL);
  eh_sas_fields_fini(&f);
  ed_buf_fini(&b);
  return rc;
}

struct cfg {
  char *name;
  char **tags;
  int64_t n;
};
static const ed_opt_t table[] = {
    {"name", 0, ED_OPT_STRING, "S", "dflt", offsetof(struct cfg, name), "s", 0, 0, 0, NULL},
    {"tag", 0, ED_OPT_STRINGS, "T", NULL, offsetof(struct cfg, tags), "t", 0, 0, 0, NULL},
    {"n", 0, ED_OPT_INT, "N", "3", offsetof(struct cfg, n), "n", 0, 0, 0, NULL},
    ED_OPT_END,
};

static ed_code_t op_opt(void) {
  char *argv[] = {"x", "--name", "a", "--tag", "b", "--tag", "c", "op", NULL};
  struct cfg c = {0};
  int nop;
  bool help;
  ed_code_t rc = ed_opt_parse(table, &c, 8, argv, &nop, &help, NULL);
  ed_opt_free(table, &c);
  return rc;
}

static void test_connstr_survives_allocation_failures(void) { torture(op_connstr); }
static void test_sas_survives_allocation_failures(void) { torture(op_sas); }
static void test_opt_survives_allocation_failures(void) { torture(op_opt); }

static const cu_case_t cases[] = {CU_CASE(test_connstr_survives_allocation_failures),
                                  CU_CASE(test_sas_survives_allocation_failures),
                                  CU_CASE(test_opt_survives_allocation_failures), CU_END};
ED_SUITE(torture_parsers, cases)
