/* err: the project's one error type.
 * Owns: the error code enum (err.def), its classifiers and the message buffer a
 * callee fills. Every public function below cli/ returns an ed_code_t and, when
 * given a non-NULL ed_err_t, writes one line naming the input and what was
 * expected. Messages never contain secrets. Never prints, never exits. */
#ifndef ED_COMMON_ERR_H
#define ED_COMMON_ERR_H

#include <stdarg.h>
#include <stdbool.h>

typedef enum {
#define ED_ERR(name, cls, desc) ED_E_##name,
#include "common/err.def"
#undef ED_ERR
  ED_E__COUNT
} ed_code_t;

#define ED_OK ED_E_OK

/* A result the caller must look at (a dropped one is a compile error with
 * -Werror; a (void) cast does not silence it in GCC, on purpose). */
#define ED_MUST_CHECK __attribute__((warn_unused_result))

#define ED_ERR_MSG_MAX 512

typedef struct ed_err {
  ed_code_t code;
  char msg[ED_ERR_MSG_MAX];
} ed_err_t;

/* Sets err (if not NULL) and returns code, so callers can `return ed_err_set(...)`. */
ed_code_t ed_err_set(ed_err_t *err, ed_code_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
ed_code_t ed_err_vset(ed_err_t *err, ed_code_t code, const char *fmt, va_list ap);
/* Prefixes the existing message with "prefix: " (context added on the way up).
 * prefix is a bare label ("sink 'raw' batch 8"): the helper writes the one
 * ": " between it and the message (none when the message is empty), and drops
 * any ':' or spaces the label ends with. */
ed_code_t ed_err_prefix(ed_err_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ed_err_clear(ed_err_t *err);

const char *ed_code_name(ed_code_t code); /* "CONFLICT"; static string */
const char *ed_code_desc(ed_code_t code); /* "concurrent modification"; static */
bool ed_code_is_retriable(ed_code_t code);
bool ed_code_is_fatal(ed_code_t code);
bool ed_code_is_input(ed_code_t code);

#endif
