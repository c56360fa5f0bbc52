/* inspect: a Parquet file's footer as text or JSON, for `ehdelta inspect
 * FILE.parquet`, for users and for the project's own tests. Owns only the
 * formatting: schema (logical tree with physical types, repetition and
 * levels), row groups, and per column chunk its codec, encodings, sizes,
 * offsets and statistics. Never does I/O; never prints. Called by cli/. */
#ifndef ED_PARQUET_INSPECT_H
#define ED_PARQUET_INSPECT_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "common/err.h"

/* Appends the description of the file in data[0..len) to out: text (one
 * line per fact, indented) or one JSON object (json). Borrows data for the
 * call. ED_E_CORRUPT / ED_E_UNSUPPORTED as the reader reports them. */
ed_code_t pq_inspect(const void *data, size_t len, bool json, ed_buf_t *out, ed_err_t *err);

#endif
