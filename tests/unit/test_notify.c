/* test_notify: the sd_notify datagram, received on a socket of our own as
 * systemd's would (a path socket and an abstract '@' one), and the watchdog
 * interval read from the environment. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/notify.h"
#include "tests/unit/cu.h"

/* Binds a datagram socket at name (a path, or '@' + abstract name). */
static int bind_dgram(const char *name) {
  int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  size_t n = strlen(name);
  memcpy(sa.sun_path, name, n);
  if (name[0] == '@')
    sa.sun_path[0] = '\0';
  if (fd >= 0 &&
      bind(fd, (struct sockaddr *)&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n))) {
    close(fd);
    return -1;
  }
  return fd;
}

static void expect_datagram(int fd, const char *want) {
  char got[256];
  ssize_t n = recv(fd, got, sizeof got - 1, MSG_DONTWAIT);
  CU_ASSERT_FATAL(n >= 0);
  got[n] = '\0';
  CU_ASSERT_STR(got, want);
}

static void test_ready_reaches_a_path_socket(void) {
  char path[64];
  snprintf(path, sizeof path, "/tmp/test_notify.%d", (int)getpid());
  unlink(path);
  int fd = bind_dgram(path);
  CU_ASSERT_FATAL(fd >= 0);
  setenv("NOTIFY_SOCKET", path, 1);
  CU_ASSERT_EQUAL(ed_notify("READY=1\nSTATUS=running", NULL), ED_OK);
  expect_datagram(fd, "READY=1\nSTATUS=running");
  unsetenv("NOTIFY_SOCKET");
  close(fd);
  unlink(path);
}

static void test_abstract_socket_name_starts_with_at(void) {
  char name[64];
  snprintf(name, sizeof name, "@test_notify/%d", (int)getpid());
  int fd = bind_dgram(name);
  CU_ASSERT_FATAL(fd >= 0);
  setenv("NOTIFY_SOCKET", name, 1);
  CU_ASSERT_EQUAL(ed_notify("WATCHDOG=1", NULL), ED_OK);
  expect_datagram(fd, "WATCHDOG=1");
  unsetenv("NOTIFY_SOCKET");
  close(fd);
}

static void test_no_socket_is_a_no_op_and_bad_ones_are_named(void) {
  unsetenv("NOTIFY_SOCKET");
  CU_ASSERT_EQUAL(ed_notify("READY=1", NULL), ED_OK);
  ed_err_t e = {0};
  setenv("NOTIFY_SOCKET", "relative/path", 1);
  CU_ASSERT_EQUAL(ed_notify("READY=1", &e), ED_E_INVALID);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "NOTIFY_SOCKET 'relative/path': expected an absolute path"));
  setenv("NOTIFY_SOCKET", "/nonexistent/notify.sock", 1);
  CU_ASSERT_EQUAL(ed_notify("READY=1", &e), ED_E_IO);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "/nonexistent/notify.sock"));
  unsetenv("NOTIFY_SOCKET");
}

static void test_watchdog_interval_is_for_this_process_only(void) {
  char pid[32];
  unsetenv("WATCHDOG_PID");
  unsetenv("WATCHDOG_USEC");
  CU_ASSERT_EQUAL(ed_notify_watchdog_us(), 0);
  setenv("WATCHDOG_USEC", "30000000", 1);
  CU_ASSERT_EQUAL(ed_notify_watchdog_us(), 30000000);
  snprintf(pid, sizeof pid, "%d", (int)getpid());
  setenv("WATCHDOG_PID", pid, 1);
  CU_ASSERT_EQUAL(ed_notify_watchdog_us(), 30000000);
  snprintf(pid, sizeof pid, "%d", (int)getpid() + 1);
  setenv("WATCHDOG_PID", pid, 1);
  CU_ASSERT_EQUAL(ed_notify_watchdog_us(), 0);
  unsetenv("WATCHDOG_PID");
  setenv("WATCHDOG_USEC", "30s", 1);
  CU_ASSERT_EQUAL(ed_notify_watchdog_us(), 0);
  unsetenv("WATCHDOG_USEC");
}

static const cu_case_t cases[] = {CU_CASE(test_ready_reaches_a_path_socket),
                                  CU_CASE(test_abstract_socket_name_starts_with_at),
                                  CU_CASE(test_no_socket_is_a_no_op_and_bad_ones_are_named),
                                  CU_CASE(test_watchdog_interval_is_for_this_process_only), CU_END};
ED_SUITE(notify, cases)
