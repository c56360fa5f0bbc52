/* agg: aggregate states and group keys, the parts windows and deduplication
 * share.
 * Owns: (1) agg_t, one aggregate (count(*), count, sum, avg, min, max,
 * count(DISTINCT), approx_count_distinct, first, last) over many groups, its
 * states laid out column-wise and indexed by group id so an update is a tight
 * loop over a column; every state can be merged into another and saved to
 * bytes and back. (2) agg_keys_t, a hash table from (an int64 prefix such as
 * a window start, the encoded group key) to a dense group id; null is a key
 * like any other, as in Spark's GROUP BY. (3) What window.c and dedup.c
 * would otherwise each write: the state-file frame, spec column lookup and the
 * input-batch check. Reads column batches (batch.h), never decodes events.
 * Not thread-safe; called by window.c and dedup.c. */
#ifndef ED_STREAM_AGG_H
#define ED_STREAM_AGG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "stream/batch.h"

typedef enum {
  AGG_COUNT_STAR, /* count(*): rows, nulls included -> BIGINT */
  AGG_COUNT,      /* count(col): non-null values -> BIGINT */
  AGG_SUM,        /* INT/BIGINT -> BIGINT (wraps, as Spark without ANSI); FLOAT/DOUBLE -> DOUBLE */
  AGG_AVG,        /* numeric -> DOUBLE */
  AGG_MIN,        /* numeric, DATE, TIMESTAMP, BOOLEAN, STRING, BINARY -> same type */
  AGG_MAX,        /* as AGG_MIN */
  AGG_COUNT_DISTINCT,  /* count(DISTINCT col), exact: a set per group -> BIGINT */
  AGG_APPROX_DISTINCT, /* approx_count_distinct(col[, rsd]): HyperLogLog -> BIGINT */
  AGG_FIRST,           /* first(col[, ignoreNulls]) in arrival order -> same type */
  AGG_LAST,            /* last(col[, ignoreNulls]) in arrival order -> same type */
} agg_kind_t;

/* One aggregate as a query names it. Strings are borrowed by agg_new (copied);
 * agg_spec_parse fills an owned spec that agg_spec_fini frees. */
typedef struct agg_spec {
  agg_kind_t kind;
  const char *column; /* input column name; NULL for count(*) or when col_index >= 0 */
  int col_index;      /* >= 0: input column by position; -1: by name */
  const char *alias;  /* output column name; NULL: Spark's default, e.g. "sum(amount)" */
  double rsd;         /* approx_count_distinct relative standard deviation; 0: 0.05 (Spark's) */
  bool ignore_nulls;  /* first/last: skip nulls (Spark's default is false) */
  char *owned_;       /* agg_spec_parse's storage; NULL otherwise */
} agg_spec_t;

/* Parses "count(*)", "count(col)", "sum(col)", "avg(col)", "min(col)",
 * "max(col)", "count(DISTINCT col)", "approx_count_distinct(col[, 0.05])",
 * "first(col[, true])", "last(col[, true])", each optionally followed by
 * "AS alias" (case-insensitive keywords; `back-quoted` names allowed).
 * Caller frees with agg_spec_fini. ED_E_PARSE names the offset and what was
 * expected. */
ed_code_t agg_spec_parse(const char *text, agg_spec_t *out, ed_err_t *err);
void agg_spec_fini(agg_spec_t *spec);

typedef struct agg agg_t;

/* input: the input column's type (NULL for count(*)); borrowed until agg_free.
 * ED_E_CONFIG when the kind does not accept the type ("sum(category): expected
 * a numeric column, got STRING"). Caller frees with agg_free. */
ed_code_t agg_new(const agg_spec_t *spec, const sm_type_t *input, agg_t **out, ed_err_t *err);
void agg_free(agg_t *a);
/* A new aggregate with a's settings and no groups. Caller frees with agg_free. */
agg_t *agg_new_like(const agg_t *a);
const char *agg_name(const agg_t *a);             /* the output column name */
const sm_type_t *agg_result_type(const agg_t *a); /* static or borrowed from input */

/* Makes group ids [0, ngroups) valid; new groups start empty. */
ed_code_t agg_reserve(agg_t *a, size_t ngroups);
/* For i < n: folds row rows[i] of col (rows NULL: row i) into group gids[i].
 * col is NULL for count(*). Rows are taken in order (first/last). */
ed_code_t agg_update(agg_t *a, const sm_col_t *col, const uint32_t *rows, const uint32_t *gids,
                     size_t n, ed_err_t *err);
/* Folds src's group gs into dst's group gd (same spec and input type), as if
 * src's rows had arrived after dst's. */
ed_code_t agg_merge(agg_t *dst, uint32_t gd, const agg_t *src, uint32_t gs, ed_err_t *err);
/* Empties group g (its memory returned). */
void agg_clear(agg_t *a, uint32_t g);
/* Moves group src's state into dst (dst must be empty; src left empty). */
void agg_move(agg_t *a, uint32_t dst, uint32_t src);
/* Appends the results of groups gids[0..n) to out (a column of
 * agg_result_type, built with batch.c's sm_col_ functions). */
ed_code_t agg_emit(const agg_t *a, const uint32_t *gids, size_t n, sm_col_t *out, ed_err_t *err);
/* State of one group to bytes and back (little-endian, self-delimiting). */
ed_code_t agg_save(const agg_t *a, uint32_t g, ed_buf_t *out);
ed_code_t agg_load(agg_t *a, uint32_t g, const uint8_t **p, const uint8_t *end, ed_err_t *err);
/* Heap bytes held by the states (for memoryUsedBytes). */
size_t agg_mem_bytes(const agg_t *a);

/* ---- group keys ---- */
typedef struct agg_keys agg_keys_t;

/* types: the key columns' types (flat kinds only: ED_E_CONFIG for STRUCT,
 * ARRAY, MAP); borrowed until agg_keys_free. nkeys may be 0. */
ed_code_t agg_keys_new(const sm_type_t *const *types, const char *const *names, size_t nkeys,
                       agg_keys_t **out, ed_err_t *err);
void agg_keys_free(agg_keys_t *k);
size_t agg_keys_count(const agg_keys_t *k);
/* Encodes row `row` of the key columns into k's scratch; then find-or-add
 * (prefix, that key). Floats are normalised as Spark does (-0.0 = 0.0, one
 * NaN). *added tells whether the group is new. Ids are dense: 0..count-1. */
ed_code_t agg_keys_row(agg_keys_t *k, const sm_col_t *const *cols, size_t row);
ed_code_t agg_keys_upsert(agg_keys_t *k, int64_t prefix, uint32_t *gid, bool *added);
/* Looks up (prefix, the encoded row) without adding; false when absent. */
bool agg_keys_find(agg_keys_t *k, int64_t prefix, uint32_t *gid);
int64_t agg_keys_prefix(const agg_keys_t *k, uint32_t gid);
/* Appends group gid's key values to out[0..nkeys) (columns of the key types). */
ed_code_t agg_keys_emit(const agg_keys_t *k, const uint32_t *gids, size_t n, sm_col_t *const *out,
                        ed_err_t *err);
/* Keeps the groups with keep[g] != 0, renumbered densely in order;
 * remap[old] = new id or UINT32_MAX (remap may be NULL). */
ed_code_t agg_keys_compact(agg_keys_t *k, const uint8_t *keep, uint32_t *remap);
/* Adds group under a raw encoded key (as serialised), for restoring state. */
ed_code_t agg_keys_add_raw(agg_keys_t *k, int64_t prefix, const uint8_t *key, size_t len,
                           uint32_t *gid, ed_err_t *err);
size_t agg_keys_mem_bytes(const agg_keys_t *k);

/* A 64-bit hash (for HLL, keys and dedup), stable across runs and machines. */
uint64_t agg_hash64(const void *p, size_t n, uint64_t seed);

/* The input column a spec names: index if >= 0, else name. who ("window",
 * "dedup") and what ("key", "event-time") name it in err. */
ed_code_t agg_resolve_col(const sm_type_t *in, const char *who, const char *what, const char *name,
                          int index, int *out, ed_err_t *err);
/* Checks what window.c and dedup.c take on update: b has schema in (borrowed)
 * and each sel[i] (sel may be NULL) is one of its rows. what ("window",
 * "dedup") names the caller in err. */
ed_code_t agg_check_batch(const sm_batch_t *b, const sm_type_t *in, const uint32_t *sel,
                          size_t nsel, const char *what, ed_err_t *err);

/* The state files of window.c and dedup.c share one frame (little-endian): a
 * 4-byte magic, u32 version, nhdr u64 header words, the body, and last a u64
 * agg_hash64 of everything before it. In the body a group key is
 * (u64 tag, u64 length, bytes); the tag is the caller's (window start,
 * expiry). */
/* Appends magic, version and hdr[0..nhdr) to out. */
ed_code_t agg_state_head(ed_buf_t *out, const char *magic, uint32_t version, const uint64_t *hdr,
                         size_t nhdr);
/* Appends group gid's key of k with tag. */
ed_code_t agg_state_put_key(ed_buf_t *out, uint64_t tag, const agg_keys_t *k, uint32_t gid);
/* Closes the frame that starts at out->data + base with its hash. */
ed_code_t agg_state_seal(ed_buf_t *out, size_t base);
/* Checks the frame of the len bytes at bytes (magic, version, hash), reads
 * hdr[0..nhdr) and sets [*body, *end) to the body (borrowed from bytes).
 * what ("window", "dedup") names the state in err. */
ed_code_t agg_state_open(const void *bytes, size_t len, const char *what, const char *magic,
                         uint32_t version, uint64_t *hdr, size_t nhdr, const uint8_t **body,
                         const uint8_t **end, ed_err_t *err);
/* Reads one key at *p (advanced past it); *key borrows from the body. False
 * when it runs past end. */
bool agg_state_get_key(const uint8_t **p, const uint8_t *end, uint64_t *tag, const uint8_t **key,
                       uint64_t *len);

#endif
