/* err: codes, classifiers and the message buffer. */
#include "common/err.h"

#include <stdio.h>
#include <string.h>

enum { CLS_OK, CLS_INPUT, CLS_RETRY, CLS_FATAL };

static const struct {
  const char *name;
  int cls;
  const char *desc;
} codes[] = {
#define ED_ERR(name, cls, desc) {#name, CLS_##cls, desc},
#include "common/err.def"
#undef ED_ERR
};

ed_code_t ed_err_vset(ed_err_t *err, ed_code_t code, const char *fmt, va_list ap) {
  if (err) {
    err->code = code;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
  }
  return code;
}

ed_code_t ed_err_set(ed_err_t *err, ed_code_t code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ed_err_vset(err, code, fmt, ap);
  va_end(ap);
  return code;
}

ed_code_t ed_err_prefix(ed_err_t *err, const char *fmt, ...) {
  if (!err)
    return ED_E_INTERNAL;
  char prefix[ED_ERR_MSG_MAX], old[ED_ERR_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  memcpy(old, err->msg, sizeof old);
  /* The separator is ours alone: one a caller wrote anyway is dropped, so the
   * message never shows an empty field ("batch 8: : write"). */
  size_t pl = strnlen(prefix, sizeof prefix);
  while (pl && (prefix[pl - 1] == ' ' || prefix[pl - 1] == ':'))
    pl--;
  /* truncation is acceptable: the message stays one bounded line */
  size_t room = sizeof err->msg - 1;
  size_t n = pl < room ? pl : room;
  memcpy(err->msg, prefix, n);
  size_t ol = strnlen(old, sizeof old);
  if (ol && n + 2 <= room) {
    memcpy(err->msg + n, ": ", 2);
    n += 2;
  }
  if (ol > room - n)
    ol = room - n;
  memcpy(err->msg + n, old, ol);
  err->msg[n + ol] = '\0';
  return err->code;
}

void ed_err_clear(ed_err_t *err) {
  if (err) {
    err->code = ED_OK;
    err->msg[0] = '\0';
  }
}

static int cls_of(ed_code_t code) {
  return (unsigned)code < ED_E__COUNT ? codes[code].cls : CLS_FATAL;
}

const char *ed_code_name(ed_code_t code) {
  return (unsigned)code < ED_E__COUNT ? codes[code].name : "UNKNOWN";
}

const char *ed_code_desc(ed_code_t code) {
  return (unsigned)code < ED_E__COUNT ? codes[code].desc : "unknown error";
}

bool ed_code_is_retriable(ed_code_t code) { return cls_of(code) == CLS_RETRY; }
bool ed_code_is_fatal(ed_code_t code) { return cls_of(code) == CLS_FATAL; }
bool ed_code_is_input(ed_code_t code) { return cls_of(code) == CLS_INPUT; }
