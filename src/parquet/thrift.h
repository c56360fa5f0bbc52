/* thrift: the Thrift compact protocol subset Parquet uses (delta-parquet.md
 * D.2). Owns varint/zigzag coding, field headers with the per-struct last-id
 * stack, lists, and a bounds-checked decoder with skip for unknown fields.
 * Never allocates on decode; never reads past the end it is given. Used by
 * writer.c, reader.c and inspect.c only. */
#ifndef ED_PARQUET_THRIFT_H
#define ED_PARQUET_THRIFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define PQ_THRIFT_MAX_DEPTH 32

typedef struct pq_tw {
  ed_buf_t *b;
  int16_t last;
  int depth;
  int16_t stack[PQ_THRIFT_MAX_DEPTH];
  bool oom;
} pq_tw_t;

void pq_tw_init(pq_tw_t *w, ed_buf_t *b);
void pq_tw_i32(pq_tw_t *w, int id, int32_t v);
void pq_tw_i16(pq_tw_t *w, int id, int16_t v);
void pq_tw_i64(pq_tw_t *w, int id, int64_t v);
void pq_tw_bool(pq_tw_t *w, int id, bool v);
void pq_tw_bin(pq_tw_t *w, int id, const void *p, size_t n);
void pq_tw_str(pq_tw_t *w, int id, const char *s);
/* A struct-typed field: header, then its fields, then pq_tw_end. */
void pq_tw_struct(pq_tw_t *w, int id);
void pq_tw_end(pq_tw_t *w);
/* A list field header; elements follow (pq_tw_elem_* / pq_tw_elem_struct). */
void pq_tw_list(pq_tw_t *w, int id, int elem_type, size_t n);
void pq_tw_elem_i32(pq_tw_t *w, int32_t v);
void pq_tw_elem_bin(pq_tw_t *w, const void *p, size_t n);
void pq_tw_elem_struct(pq_tw_t *w); /* begin; close with pq_tw_end */
/* Top-level struct begin (no header); close with pq_tw_end. */
void pq_tw_begin(pq_tw_t *w);

typedef struct pq_tr {
  const uint8_t *p, *end;
  const char *err; /* first error, static string */
} pq_tr_t;

void pq_tr_init(pq_tr_t *r, const void *p, size_t n);
/* Each returns false (and sets r->err) on malformed or truncated input. */
bool pq_tr_i64(pq_tr_t *r, int64_t *v);
bool pq_tr_bin(pq_tr_t *r, const uint8_t **p, size_t *n);
/* Next field header of the current struct: *type 0 means stop. *last is the
 * struct's last id (start at 0 per struct). bool fields: *type TRUE/FALSE. */
bool pq_tr_field(pq_tr_t *r, int16_t *last, int *type, int16_t *id);
/* List header; *n is bounded by the remaining bytes. */
bool pq_tr_list(pq_tr_t *r, int *elem_type, uint32_t *n);
/* Skips a value of the given type (nested up to PQ_THRIFT_MAX_DEPTH). */
bool pq_tr_skip(pq_tr_t *r, int type, int depth);
/* Reads an i32 field value whatever integer type it was sent as. */
bool pq_tr_int(pq_tr_t *r, int type, int64_t *v);

#endif
