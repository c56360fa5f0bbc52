/* console: the console sink's output, a table as Spark's console sink prints
 * it (Dataset.show with truncate = false): a header naming the batch, then
 * +---+ framed rows. Owns nothing; formats values of any batch.h type. */
#ifndef ED_AGENT_CONSOLE_H
#define ED_AGENT_CONSOLE_H

#include <stdint.h>
#include <stdio.h>

#include "common/buf.h"
#include "common/err.h"
#include "stream/batch.h"

/* Prints "Batch: N (sink NAME)" and up to max_rows rows of b (borrowed) to
 * out, then "only showing top N rows" when there were more. b may be NULL. */
void ag_console_print(FILE *out, const char *sink, int64_t batch, const sm_batch_t *b,
                      size_t max_rows);

#endif
