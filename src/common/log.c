/* log: structured lines, text or JSON. */
#include "common/log.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/time.h"

static ed_log_level_t g_level = ED_LOG_INFO;
static bool g_json;
static bool g_journal; /* prefix each line with its syslog priority, "<3>" ... */
static FILE *g_out;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
const char *const ed_log_level_names[] = {"error", "warn", "info", "debug", NULL};
#define level_names ed_log_level_names

/* systemd sets JOURNAL_STREAM to "DEV:INODE" of the stream it connected to the
 * journal (systemd.exec(5)); matching the descriptor's own dev:inode tells a
 * journal stream apart from a terminal or a file the variable was inherited past. */
bool ed_log_fd_is_journal(int fd) {
  const char *js = getenv("JOURNAL_STREAM");
  unsigned long long dev, ino;
  char tail;
  struct stat st;
  if (!js || sscanf(js, "%llu:%llu%c", &dev, &ino, &tail) != 2 || fstat(fd, &st))
    return false;
  return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void ed_log_setup(ed_log_level_t level, bool json, FILE *out) {
  g_level = level;
  g_json = json;
  g_out = out;
  g_journal = ed_log_fd_is_journal(fileno(out ? out : stderr));
}

ed_code_t ed_log_parse_level(const char *s, ed_log_level_t *level, ed_err_t *err) {
  for (int i = 0; i <= ED_LOG_DEBUG; i++)
    if (strcasecmp(s, level_names[i]) == 0) {
      *level = (ed_log_level_t)i;
      return ED_OK;
    }
  return ed_err_set(err, ED_E_INVALID, "log level '%s': expected error, warn, info or debug", s);
}

bool ed_log_enabled(ed_log_level_t level) { return level <= g_level; }

static bool is_number(const char *s, size_t n) {
  size_t i = 0;
  if (n && (s[0] == '-'))
    i++;
  if (i == n)
    return false;
  bool dot = false;
  for (; i < n; i++) {
    if (s[i] == '.' && !dot)
      dot = true;
    else if (!isdigit((unsigned char)s[i]))
      return false;
  }
  return !(n > 1 && s[0] == '0' && s[1] != '.') && s[n - 1] != '.';
}

/* Walks "k=v k2="v 2" k3=v3" calling back per pair. Quoted values may contain
 * \" and \\ escapes. */
static void fields_to_json(ed_buf_t *b, const char *f) {
  const char *p = f;
  ed_buf_t val = ED_BUF_INIT;
  while (*p) {
    while (*p == ' ')
      p++;
    if (!*p)
      break;
    const char *k = p;
    while (*p && *p != '=' && *p != ' ')
      p++;
    size_t klen = (size_t)(p - k);
    ed_buf_reset(&val);
    bool quoted = false;
    if (*p == '=') {
      p++;
      if (*p == '"') {
        quoted = true;
        p++;
        while (*p && *p != '"') {
          if (*p == '\\' && p[1])
            p++;
          ed_buf_putc(&val, *p++);
        }
        if (*p == '"')
          p++;
      } else {
        const char *v = p;
        while (*p && *p != ' ')
          p++;
        ed_buf_append(&val, v, (size_t)(p - v));
      }
    }
    ed_buf_putc(b, ',');
    ed_buf_json_str(b, k, klen);
    ed_buf_putc(b, ':');
    if (!quoted && val.len && is_number(val.data, val.len))
      ed_buf_append(b, val.data, val.len);
    else if (!quoted && val.len &&
             (strcmp(val.data, "true") == 0 || strcmp(val.data, "false") == 0))
      ed_buf_append(b, val.data, val.len);
    else
      ed_buf_json_str(b, val.data ? val.data : "", val.len);
  }
  ed_buf_fini(&val);
}

void ed_log_render(struct ed_buf *b, bool json, ed_log_level_t level, const char *event,
                   const char *fields) {
  char ts[ED_TIME_ISO_MAX];
  ed_time_format_iso(ed_time_now_us(), 3, ts);
  if (json) {
    ed_buf_printf(b, "{\"ts\":\"%s\",\"level\":\"%s\",\"event\":", ts, level_names[level]);
    ed_buf_json_str(b, event, strlen(event));
    fields_to_json(b, fields);
    ed_buf_puts(b, "}\n");
  } else {
    ed_buf_printf(b, "%s %s %s%s%s\n", ts, level_names[level], event, *fields ? " " : "", fields);
  }
}

void ed_log(ed_log_level_t level, const char *event, const char *fmt, ...) {
  if (!ed_log_enabled(level))
    return;
  ed_buf_t fields = ED_BUF_INIT, line = ED_BUF_INIT;
  va_list ap;
  va_start(ap, fmt);
  ed_buf_vprintf(&fields, fmt, ap);
  va_end(ap);
  /* sd-daemon(3) priorities: the journal strips the prefix and files the line
   * under it, so `journalctl -p err` finds the errors. */
  static const char *const prio[] = {"<3>", "<4>", "<6>", "<7>"};
  if (g_journal)
    ed_buf_puts(&line, prio[level]);
  ed_log_render(&line, g_json, level, event, fields.data ? fields.data : "");
  pthread_mutex_lock(&g_lock);
  FILE *out = g_out ? g_out : stderr;
  if (line.data)
    fwrite(line.data, 1, line.len, out);
  fflush(out);
  pthread_mutex_unlock(&g_lock);
  ed_buf_fini(&fields);
  ed_buf_fini(&line);
}
