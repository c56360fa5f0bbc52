/* decode: event bodies (JSON) into rows of a column batch, as Spark's
 * from_json with a declared schema, plus event metadata columns.
 * Owns: the decoder (its output schema, parser state, reason counters). Borrows
 * the batch it appends to and the bytes of each event for one call. Never
 * allocates per event once the batch reached its size. Never touches the Event
 * Hubs client: the caller copies what it has into an sm_event_meta_t.
 * One decoder per pipeline thread (not thread-safe).
 *
 * Semantics (each case is a row of the table in tests/unit/test_sm_decode.c):
 *  - the body must be one JSON object (UTF-8; leading/trailing blanks allowed);
 *  - missing field, or JSON null -> null (an error for a NOT NULL field);
 *  - unknown fields are ignored; field names match exactly, then
 *    case-insensitively (Spark's default spark.sql.caseSensitive=false);
 *  - duplicate keys: the last one wins (Spark's JacksonParser overwrites);
 *  - DOUBLE/FLOAT take any JSON number (integers too); a number beyond the
 *    range of DOUBLE (400 digits) or FLOAT is an overflow error;
 *  - INT/BIGINT take integral JSON numbers only; 1.5 is a type error and
 *    values outside the range an overflow error;
 *  - STRING takes JSON strings only (Spark would keep the raw text of a number:
 *    here that is a type error, so a producer bug is seen);
 *  - BOOLEAN takes true/false; BINARY a base64 string (Spark's from_json);
 *  - TIMESTAMP takes ISO-8601 text with 'Z', an offset or no zone (no zone =
 *    UTC, as datetime.utcnow().isoformat() writes), or an integral number of
 *    seconds since the epoch (Spark's reading of a JSON number); DATE takes
 *    "YYYY-MM-DD" (a time part is allowed and dropped); anything else is a
 *    timestamp error;
 *  - nesting deeper than opts.max_depth, strings longer than
 *    opts.max_string, invalid UTF-8 and anything that is not JSON are errors.
 * Errors go by mode: dead-letter (no row; the caller writes the raw event to
 * the dead-letter batch), permissive (a row with null where the value could
 * not be decoded; a body that is not a JSON object gives all-null body
 * fields; a NOT NULL violation still dead-letters, as null is not allowed),
 * fail-fast (the call fails). Every error is counted by reason. */
#ifndef ED_STREAM_DECODE_H
#define ED_STREAM_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "stream/batch.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A borrowed byte string; p == NULL means null (absent). */
typedef struct sm_str {
  const char *p;
  size_t n;
} sm_str_t;

/* What the caller knows about one event, filled from the Event Hubs client's
 * event (x-opt-sequence-number, x-opt-offset, x-opt-enqueued-time,
 * x-opt-partition-key, x-opt-publisher, application properties). Everything is
 * borrowed for the duration of sm_dec_decode / sm_dec_dl_append. */
typedef struct sm_event_meta {
  int64_t sequence_number;
  int64_t offset;
  int64_t enqueued_us; /* microseconds since the epoch, UTC */
  sm_str_t partition;  /* partition id, "0" .. */
  sm_str_t partition_key;
  sm_str_t publisher;
  size_t nprops;
  const sm_str_t *prop_keys;   /* nprops entries; a NULL key skips the entry */
  const sm_str_t *prop_values; /* nprops entries; p == NULL: a null value */
  /* NULL, or why the body is not JSON text before reading it (what the
   * message carries instead of a data section): the event is a bad one with
   * this as its reason, reason code not_json. */
  const char *body_refused;
} sm_event_meta_t;

typedef enum {
  SM_BAD_DEAD_LETTER, /* default */
  SM_BAD_PERMISSIVE,
  SM_BAD_FAIL_FAST,
} sm_bad_mode_t;

/* "dead-letter", "permissive", "fail-fast" (also Spark's PERMISSIVE and
 * FAILFAST spellings, any case). */
ed_code_t sm_bad_mode_parse(const char *s, sm_bad_mode_t *mode, ed_err_t *err);

/* Why an event could not be decoded; stable names for progress reports. */
#define SM_REASONS(X)                                                                              \
  X(NOT_JSON, "not_json")           /* syntax error, truncated, empty */                           \
  X(NOT_OBJECT, "not_object")       /* valid JSON, but not an object */                            \
  X(INVALID_UTF8, "invalid_utf8")   /* */                                                          \
  X(TOO_DEEP, "too_deep")           /* nesting beyond max_depth */                                 \
  X(TOO_LARGE, "too_large")         /* a string beyond max_string, a body beyond max_body */       \
  X(TYPE, "type")                   /* a JSON value of the wrong type */                           \
  X(OVERFLOW, "overflow")           /* a number out of the column's range */                       \
  X(TIMESTAMP, "timestamp")         /* unparsable TIMESTAMP or DATE */                             \
  X(NULL_REQUIRED, "null_required") /* null or missing NOT NULL field */                           \
  X(DUPLICATE_KEY, "duplicate_key") /* a key twice in one MAP value (Spark's EXCEPTION policy) */  \
  X(CONSTRAINT, "constraint")       /* breaks a CHECK constraint of a sink's table (agent) */
typedef enum {
  SM_REASON_NONE = 0,
#define SM_REASON_ENUM(id, name) SM_REASON_##id,
  SM_REASONS(SM_REASON_ENUM)
#undef SM_REASON_ENUM
      SM_REASON__COUNT
} sm_reason_t;
const char *sm_reason_name(sm_reason_t r); /* "type"; "ok" for NONE */

/* Metadata a decoder can add as columns (the Event Hubs connector's names in
 * parentheses are accepted too). */
typedef enum {
  SM_META_ENQUEUED_TIME,   /* enqueued_time (enqueuedTime)     TIMESTAMP NOT NULL */
  SM_META_OFFSET,          /* offset                           BIGINT NOT NULL */
  SM_META_SEQUENCE_NUMBER, /* sequence_number (sequenceNumber) BIGINT NOT NULL */
  SM_META_PARTITION,       /* partition                        STRING */
  SM_META_PARTITION_KEY,   /* partition_key (partitionKey)     STRING */
  SM_META_PUBLISHER,       /* publisher                        STRING */
  SM_META_PROPERTIES,      /* properties                       MAP<STRING, STRING> */
} sm_meta_kind_t;

typedef struct sm_meta_col {
  sm_meta_kind_t kind;
  const char *name; /* output column name; NULL: the metadata's own name */
} sm_meta_col_t;

/* Parses "enqueued_time AS ingestion_time, offset, sequenceNumber" (AS is
 * optional; an empty or NULL spec gives none). *cols: caller frees with
 * sm_meta_cols_free(*cols, *n). Errors point at the character. */
ed_code_t sm_meta_parse(const char *spec, sm_meta_col_t **cols, size_t *n, ed_err_t *err);
void sm_meta_cols_free(sm_meta_col_t *cols, size_t n);

typedef enum {
  SM_DEC_AUTO,     /* simdjson when built with it, else json-c */
  SM_DEC_SIMDJSON, /* ED_E_UNSUPPORTED from sm_dec_new when not built in */
  SM_DEC_JSONC,
} sm_dec_backend_t;

typedef struct sm_dec_opts {
  sm_bad_mode_t mode;
  sm_dec_backend_t backend;
  unsigned max_depth; /* 0: 64 (objects and arrays, the body counts as 1) */
  size_t max_string;  /* 0: 256 KiB per string value */
  size_t max_body;    /* 0: 4 MiB */
} sm_dec_opts_t;

typedef struct sm_dec sm_dec_t;

/* A decoder for bodies of body_schema (a STRUCT; copied) followed by the
 * metadata columns meta[0..nmeta) (copied). ED_E_SCHEMA when a metadata
 * column's name collides with a body field. opts NULL: defaults.
 * Caller frees *out with sm_dec_free. */
ed_code_t sm_dec_new(const sm_type_t *body_schema, const sm_meta_col_t *meta, size_t nmeta,
                     const sm_dec_opts_t *opts, sm_dec_t **out, ed_err_t *err);
void sm_dec_free(sm_dec_t *dec); /* NULL is a no-op */
/* The schema of the rows the decoder appends: body fields, then metadata
 * columns. Borrowed; valid until sm_dec_free. Make batches with sm_batch_new. */
const sm_type_t *sm_dec_schema(const sm_dec_t *dec);
/* "simdjson" or "json-c". */
const char *sm_dec_backend_name(const sm_dec_t *dec);

typedef enum {
  SM_DEC_ROW,     /* one row appended, every value decoded */
  SM_DEC_PARTIAL, /* permissive: one row appended, with nulls where it failed */
  SM_DEC_DEAD,    /* dead-letter: nothing appended; route the event with
                     sm_dec_dl_append(..., err->msg) */
} sm_dec_status_t;

/* Decodes one body (borrowed for the call) into one row of batch (made from
 * sm_dec_schema(dec)); meta may be NULL when no metadata column was asked for.
 * ED_OK with *status saying what happened (ROW, PARTIAL, DEAD: then *reason and
 * err's message say why: "decode: field 'amount': expected DOUBLE, got
 * string at byte 31"). In fail-fast mode a bad event returns ED_E_PARSE (or
 * ED_E_SCHEMA, ED_E_TOO_LARGE) and appends nothing. ED_E_NOMEM leaves the batch
 * as it was. reason may be NULL. */
ed_code_t sm_dec_decode(sm_dec_t *dec, sm_batch_t *batch, const void *body, size_t len,
                        const sm_event_meta_t *meta, sm_dec_status_t *status, sm_reason_t *reason,
                        ed_err_t *err);

/* Events seen, rows appended, and bad events per reason since sm_dec_new (or
 * the last sm_dec_counts_reset). */
typedef struct sm_dec_counts {
  uint64_t events, rows, partial, dead;
  uint64_t reasons[SM_REASON__COUNT];
} sm_dec_counts_t;
const sm_dec_counts_t *sm_dec_counts(const sm_dec_t *dec); /* borrowed */

/* The dead-letter row: body BINARY NOT NULL, partition STRING,
 * sequence_number BIGINT NOT NULL, offset BIGINT NOT NULL, enqueued_time
 * TIMESTAMP NOT NULL, reason STRING NOT NULL, reason_code STRING NOT NULL.
 * A static tree (never freed). */
const sm_type_t *sm_dec_dl_schema(void);
/* Appends one dead-letter row to dl (a batch of sm_dec_dl_schema()); body and
 * meta borrowed for the call; message is the err->msg sm_dec_decode gave. */
ed_code_t sm_dec_dl_append(sm_batch_t *dl, const void *body, size_t len,
                           const sm_event_meta_t *meta, sm_reason_t reason, const char *message);

#ifdef __cplusplus
}
#endif

#endif
