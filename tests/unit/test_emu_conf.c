#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "emu/conf.h"
#include "tests/unit/cu.h"

static char path[64];

static void write_conf(const char *text) {
  snprintf(path, sizeof path, "/tmp/ed-conf-XXXXXX");
  int fd = mkstemp(path);
  CU_ASSERT_FATAL(fd >= 0);
  CU_ASSERT_EQUAL(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
}

#define NS(entities)                                                                               \
  "{\"UserConfig\":{\"NamespaceConfig\":[{\"Type\":\"EventHub\",\"Name\":\"emulatorNs1\","         \
  "\"Entities\":[" entities "]}],\"LoggingConfig\":{\"Type\":\"Console\"}}}"

static int count_lines(const ed_buf_t *b) {
  int n = 0;
  for (size_t i = 0; i < b->len; i++)
    n += b->data[i] == '\n';
  return n;
}

static void test_two_hubs_load(void) {
  write_conf(NS("{\"Name\":\"a\",\"PartitionCount\":\"2\",\"ConsumerGroups\":[{\"Name\":\"g1\"},"
                "{\"Name\":\"g2\"}]},{\"Name\":\"b.c-d_e\",\"PartitionCount\":32}"));
  emu_hubspec_t *h = NULL;
  int n = 0;
  ed_buf_t pr = ED_BUF_INIT;
  CU_ASSERT_EQUAL_FATAL(emu_conf_load(path, &h, &n, &pr, NULL), ED_OK);
  CU_ASSERT_EQUAL(n, 2);
  CU_ASSERT_STR(h[0].name, "a");
  CU_ASSERT_EQUAL(h[0].partitions, 2);
  CU_ASSERT_STR(h[0].groups[1], "g2");
  CU_ASSERT_PTR_NULL(h[0].groups[2]);
  CU_ASSERT_STR(h[1].name, "b.c-d_e");
  CU_ASSERT_EQUAL(h[1].partitions, 32);
  CU_ASSERT_PTR_NULL(h[1].groups[0]);
  CU_ASSERT_EQUAL(pr.len, 0);
  emu_conf_free(h, n);
  ed_buf_fini(&pr);
  unlink(path);
}

static const struct {
  const char *doc;
  int problems;
  const char *want;
} bad[] = {
    {NS("{\"Name\":\"a\",\"PartitionCount\":\"0\"}"), 1, "PartitionCount: expected"},
    {NS("{\"Name\":\"a\",\"PartitionCount\":\"33\"}"), 1, "from 1 to 32"},
    {NS("{\"Name\":\"a\",\"PartitionCount\":\" 2\"}"), 1, "PartitionCount"},
    {NS("{\"Name\":\"a_\",\"PartitionCount\":1}"), 1, "Entities[0].Name"},
    {NS("{\"Name\":\"a\",\"PartitionCount\":1,\"ConsumerGroups\":[]}"), 1, "1 to 20"},
    {NS("{\"Name\":\"a\",\"PartitionCount\":1,\"ConsumerGroups\":[{\"Name\":\"$DEFAULT\"}]}"), 1,
     "cannot be declared"},
    {NS("{\"Name\":\"a\"},{\"Name\":\"A\",\"PartitionCount\":1},7"), 3, "declared twice"},
    {"{\"UserConfig\":{\"NamespaceConfig\":{},\"LoggingConfig\":{\"Type\":\"Disk\"}}}", 2,
     "expected array"},
    {"[1]", 1, "expected an object with UserConfig"},
};

static void test_problems_one_line_each(void) {
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    write_conf(bad[i].doc);
    emu_hubspec_t *h = NULL;
    int n = 0;
    ed_buf_t pr = ED_BUF_INIT;
    ed_err_t err = {0};
    CU_ASSERT_EQUAL(emu_conf_load(path, &h, &n, &pr, &err), ED_E_CONFIG);
    CU_ASSERT_PTR_NULL(h);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(count_lines(&pr), bad[i].problems);
    CU_assertImplementation(pr.data && strstr(pr.data, bad[i].want) != NULL, __LINE__,
                            cu_fmt2("problems '%s' lack '%s'", pr.data ? pr.data : "", bad[i].want),
                            __FILE__, "", CU_FALSE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, path));
    ed_buf_fini(&pr);
    unlink(path);
  }
}

static const cu_case_t cases[] = {CU_CASE(test_two_hubs_load), CU_CASE(test_problems_one_line_each),
                                  CU_END};
ED_SUITE(emu_conf, cases)
