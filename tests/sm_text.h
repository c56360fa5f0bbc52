/* sm_text: one column value as text, the way the decoder's tests compare
 * rows: null, true/false, INT and DATE as %d, BIGINT and TIMESTAMP as
 * integers, FLOAT with 9 and DOUBLE with 17 significant digits (both round
 * trip). Shared by tests/unit/test_sm_decode.c and tests/tools/sm_tool.c (the
 * pytest bridge) so that the CUnit and interop suites print numbers alike;
 * strings and nested values stay with each caller, which quote them
 * differently. Test code only. */
#ifndef ED_TESTS_SM_TEXT_H
#define ED_TESTS_SM_TEXT_H

#include <inttypes.h>
#include <stdbool.h>

#include "common/buf.h"
#include "stream/batch.h"

/* Appends row r of c to o when it is null or a scalar that is not a string;
 * false (nothing written) for STRING, BINARY and nested kinds. */
static inline bool sm_text_scalar(ed_buf_t *o, const sm_col_t *c, size_t r) {
  if (!c->valid[r]) {
    ed_buf_puts(o, "null");
    return true;
  }
  switch (c->type->kind) {
  case SM_BOOLEAN:
    ed_buf_puts(o, c->v.b8[r] ? "true" : "false");
    return true;
  case SM_INT:
  case SM_DATE:
    ed_buf_printf(o, "%d", c->v.i32[r]);
    return true;
  case SM_BIGINT:
  case SM_TIMESTAMP:
    ed_buf_printf(o, "%" PRId64, c->v.i64[r]);
    return true;
  case SM_FLOAT:
    ed_buf_printf(o, "%.9g", c->v.f32[r]);
    return true;
  case SM_DOUBLE:
    ed_buf_printf(o, "%.17g", c->v.f64[r]);
    return true;
  default:
    return false;
  }
}

#endif
