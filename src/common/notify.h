/* notify: the service manager's readiness and watchdog protocol (sd_notify(3)),
 * spoken directly: one datagram of "KEY=VALUE\n" lines to the AF_UNIX socket
 * named by $NOTIFY_SOCKET (a path, or an abstract name written with a leading
 * '@'). No libsystemd: the protocol is this one sendto. Without $NOTIFY_SOCKET
 * (not under systemd, or Type= is not notify) every call does nothing.
 * Never prints, never exits; callable from any thread. */
#ifndef ED_COMMON_NOTIFY_H
#define ED_COMMON_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

/* Sends state ("READY=1\nSTATUS=running") when $NOTIFY_SOCKET is set; ED_OK
 * when it is not. A socket that cannot be reached is ED_E_IO naming it. */
ed_code_t ed_notify(const char *state, ed_err_t *err);

/* The watchdog interval the manager asked for ($WATCHDOG_USEC, for this process
 * when $WATCHDOG_PID is set), or 0 when none. */
int64_t ed_notify_watchdog_us(void);

/* Sends WATCHDOG=1 when half the interval has passed since the last one (the
 * margin sd_watchdog_enabled(3) recommends); cheap to call on every loop turn. */
void ed_notify_watchdog_tick(void);

#endif
