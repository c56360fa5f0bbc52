/* notify: sd_notify without libsystemd (see notify.h). */
#include "common/notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/time.h"

ed_code_t ed_notify(const char *state, ed_err_t *err) {
  const char *path = getenv("NOTIFY_SOCKET");
  if (!path || !*path)
    return ED_OK;
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  size_t n = strlen(path);
  /* sd_notify(3): only absolute paths and abstract names ('@') are valid. */
  if ((path[0] != '/' && path[0] != '@') || n >= sizeof sa.sun_path)
    return ed_err_set(err, ED_E_INVALID,
                      "NOTIFY_SOCKET '%s': expected an absolute path or an @abstract name "
                      "shorter than %zu bytes",
                      path, sizeof sa.sun_path);
  memcpy(sa.sun_path, path, n);
  if (path[0] == '@')
    sa.sun_path[0] = '\0'; /* the abstract namespace: the length, not a NUL, ends the name */
  socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return ed_err_set(err, ED_E_IO, "NOTIFY_SOCKET '%s': socket: %s", path, strerror(errno));
  ssize_t sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, len);
  int e = errno;
  close(fd);
  if (sent < 0)
    return ed_err_set(err, ED_E_IO, "NOTIFY_SOCKET '%s': send: %s", path, strerror(e));
  return ED_OK;
}

int64_t ed_notify_watchdog_us(void) {
  const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
  if (!usec || !*usec)
    return 0;
  /* A manager that set WATCHDOG_PID means that process only (not a child we exec). */
  if (pid && *pid && strtol(pid, NULL, 10) != (long)getpid())
    return 0;
  char *end;
  long long v = strtoll(usec, &end, 10);
  return (*end || v <= 0) ? 0 : (int64_t)v;
}

void ed_notify_watchdog_tick(void) {
  static _Atomic int64_t interval = -1, last;
  int64_t iv = atomic_load(&interval);
  if (iv < 0) {
    iv = ed_notify_watchdog_us();
    atomic_store(&interval, iv);
  }
  if (!iv)
    return;
  int64_t now = ed_time_mono_us(), prev = atomic_load(&last);
  if (prev && now - prev < iv / 2)
    return;
  if (atomic_compare_exchange_strong(&last, &prev, now))
    ed_notify("WATCHDOG=1", NULL);
}
