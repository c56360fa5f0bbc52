/* log: structured log lines on stderr (or a chosen stream), text or JSON.
 * A line is an event name plus key=value fields:
 *   ed_log(ED_LOG_INFO, "commit", "table=%s version=%lld files=%d", ...)
 * prints  2026-01-02T03:04:05.678Z info commit table=raw version=42 files=3
 * or, with JSON on, {"ts":"…","level":"info","event":"commit","table":"raw",…}.
 * Values containing spaces are written quoted (key="a b"). Thread-safe.
 * Levels mean: error, someone must act; warn, it recovered; info, a state
 * change; debug, the rest. Never pass a secret to it. */
#ifndef ED_COMMON_LOG_H
#define ED_COMMON_LOG_H

#include <stdbool.h>
#include <stdio.h>

#include "common/err.h"

struct ed_buf;

typedef enum { ED_LOG_ERROR = 0, ED_LOG_WARN, ED_LOG_INFO, ED_LOG_DEBUG } ed_log_level_t;
/* The levels' names in their order, NULL-terminated (an ENUM option row's names). */
extern const char *const ed_log_level_names[];

/* out: borrowed, NULL means stderr. Call before starting threads. When out is
 * the journal's stream ($JOURNAL_STREAM names its dev:inode), each line starts
 * with its syslog priority: <3> error, <4> warn, <6> info, <7> debug. */
void ed_log_setup(ed_log_level_t level, bool json, FILE *out);
ed_code_t ed_log_parse_level(const char *s, ed_log_level_t *level, ed_err_t *err);
bool ed_log_enabled(ed_log_level_t level);
bool ed_log_fd_is_journal(int fd);
void ed_log(ed_log_level_t level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define ED_LOG_ERR(ev, ...)  ed_log(ED_LOG_ERROR, ev, __VA_ARGS__)
#define ED_LOG_WARN(ev, ...) ed_log(ED_LOG_WARN, ev, __VA_ARGS__)
#define ED_LOG_INFO(ev, ...) ed_log(ED_LOG_INFO, ev, __VA_ARGS__)
#define ED_LOG_DEBUG(ev, ...)                                                                      \
  do {                                                                                             \
    if (ed_log_enabled(ED_LOG_DEBUG))                                                              \
      ed_log(ED_LOG_DEBUG, ev, __VA_ARGS__);                                                       \
  } while (0)

/* Renders one line into buf without printing (for tests and the JSON check). */
void ed_log_render(struct ed_buf *buf, bool json, ed_log_level_t level, const char *event,
                   const char *fields);

#endif
