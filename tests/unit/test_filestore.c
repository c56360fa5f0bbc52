#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/store.h"
#include "tests/unit/cu.h"

static char root[256];

static int setup(void) {
  snprintf(root, sizeof root, "/tmp/ed-filestore-XXXXXX");
  return mkdtemp(root) ? 0 : 1;
}

static int teardown(void) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
  return system(cmd) == 0 ? 0 : 1;
}

static void test_put_if_absent_refuses_an_existing_key(void) {
  st_store_t *s;
  ed_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(st_open(root, NULL, &s, &err), ED_OK);
  CU_ASSERT_EQUAL(st_put_if_absent(s, "t/_delta_log/00.json", "one\n", 4, &err), ED_OK);
  CU_ASSERT_EQUAL(st_put_if_absent(s, "t/_delta_log/00.json", "two\n", 4, &err), ED_E_EXISTS);
  ed_buf_t b = ED_BUF_INIT;
  CU_ASSERT_EQUAL(st_get(s, "t/_delta_log/00.json", 0, -1, &b, &err), ED_OK);
  CU_ASSERT_STR(b.data, "one\n");
  ed_buf_fini(&b);
  st_free(s);
}

static void test_racing_creators_exactly_one_wins(void) {
  st_store_t *s;
  CU_ASSERT_EQUAL_FATAL(st_open(root, NULL, &s, NULL), ED_OK);
  int wins = 0;
  for (int round = 0; round < 20; round++) {
    char key[64];
    snprintf(key, sizeof key, "race/%02d.json", round);
    pid_t kids[4];
    for (int k = 0; k < 4; k++) {
      if ((kids[k] = fork()) == 0) {
        st_store_t *c;
        char body[32];
        snprintf(body, sizeof body, "writer %d\n", k);
        if (st_open(root, NULL, &c, NULL))
          _exit(2);
        ed_code_t rc = st_put_if_absent(c, key, body, strlen(body), NULL);
        st_free(c);
        _exit(rc == ED_OK ? 0 : rc == ED_E_EXISTS ? 1 : 2);
      }
    }
    int ok = 0, lost = 0;
    for (int k = 0; k < 4; k++) {
      int st;
      waitpid(kids[k], &st, 0);
      ok += WEXITSTATUS(st) == 0;
      lost += WEXITSTATUS(st) == 1;
    }
    CU_ASSERT_EQUAL(ok, 1);
    CU_ASSERT_EQUAL(lost, 3);
    wins += ok;
  }
  CU_ASSERT_EQUAL(wins, 20);
  st_list_t l = {0};
  CU_ASSERT_EQUAL(st_list(s, "race/", &l, NULL), ED_OK);
  CU_ASSERT_EQUAL(l.n, 20); /* no temp files left behind */
  st_list_fini(&l);
  st_free(s);
}

static void test_list_prefix_ranges_and_delete(void) {
  st_store_t *s;
  ed_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(st_open(root, NULL, &s, &err), ED_OK);
  st_put(s, "p/a/x.parquet", "0123456789", 10, &err);
  st_put(s, "p/a/y.parquet", "abc", 3, &err);
  st_put(s, "p/b.json", "{}", 2, &err);
  st_list_t l = {0};
  CU_ASSERT_EQUAL(st_list(s, "p/a", &l, &err), ED_OK);
  CU_ASSERT_EQUAL_FATAL(l.n, 2);
  CU_ASSERT_STR(l.items[0].key, "p/a/x.parquet");
  CU_ASSERT_EQUAL(l.items[0].size, 10);
  st_list_fini(&l);
  ed_buf_t b = ED_BUF_INIT;
  CU_ASSERT_EQUAL(st_get(s, "p/a/x.parquet", 6, 4, &b, &err), ED_OK);
  CU_ASSERT_STR(b.data, "6789");
  ed_buf_fini(&b);
  st_stat_t st;
  CU_ASSERT_EQUAL(st_stat(s, "p/a/y.parquet", &st, &err), ED_OK);
  CU_ASSERT_EQUAL(st.size, 3);
  CU_ASSERT_EQUAL(st_delete(s, "p/a/y.parquet", &err), ED_OK);
  CU_ASSERT_EQUAL(st_delete(s, "p/a/y.parquet", &err), ED_OK);
  CU_ASSERT_EQUAL(st_stat(s, "p/a/y.parquet", &st, &err), ED_E_NOT_FOUND);
  CU_ASSERT_EQUAL(st_get(s, "nope", 0, -1, &b, &err), ED_E_NOT_FOUND);
  CU_ASSERT_EQUAL(st_put(s, "../escape", "x", 1, &err), ED_E_INVALID);
  st_free(s);
}

static const cu_case_t cases[] = {CU_CASE(test_put_if_absent_refuses_an_existing_key),
                                  CU_CASE(test_racing_creators_exactly_one_wins),
                                  CU_CASE(test_list_prefix_ranges_and_delete), CU_END};
ED_SUITE_FULL(filestore, cases, setup, teardown)
