/* batch: schema trees and column vectors (see batch.h).
 * Columns grow geometrically and keep their capacity across resets, so a batch
 * reused for every micro-batch stops allocating once it reached its size. */
#include "stream/batch.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

const sm_type_t sm_type_map_key = {SM_STRING, 0, NULL, NULL, false};

const char *sm_kind_name(sm_kind_t k) {
  static const char *const names[] = {
      "STRING", "BINARY", "BOOLEAN",   "INT",    "BIGINT", "FLOAT",
      "DOUBLE", "DATE",   "TIMESTAMP", "STRUCT", "ARRAY",  "MAP",
  };
  return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

/* ---- types ---- */

sm_type_t *sm_type_new(sm_kind_t k) {
  sm_type_t *t = calloc(1, sizeof *t);
  if (t)
    t->kind = k;
  return t;
}

static sm_type_t *type_new_nested(sm_kind_t k, sm_type_t *elem, bool elem_nullable) {
  if (!elem)
    return NULL;
  sm_type_t *t = sm_type_new(k);
  if (!t) {
    sm_type_free(elem);
    return NULL;
  }
  t->elem = elem;
  t->elem_nullable = elem_nullable;
  return t;
}

sm_type_t *sm_type_new_array(sm_type_t *elem, bool contains_null) {
  return type_new_nested(SM_ARRAY, elem, contains_null);
}

sm_type_t *sm_type_new_map(sm_type_t *value, bool value_contains_null) {
  return type_new_nested(SM_MAP, value, value_contains_null);
}

ed_code_t sm_type_add_field(sm_type_t *st, const char *name, sm_type_t *type, bool nullable,
                            ed_err_t *err) {
  if (!st || st->kind != SM_STRUCT || !type || !name || !*name) {
    sm_type_free(type);
    return ed_err_set(err, ED_E_INVALID, "schema: a field needs a name and a type in a STRUCT");
  }
  for (size_t i = 0; i < st->nfields; i++)
    if (strcasecmp(st->fields[i].name, name) == 0) {
      sm_type_free(type);
      return ed_err_set(err, ED_E_INVALID, "schema: duplicate field '%s'", name);
    }
  sm_field_t *f = realloc(st->fields, (st->nfields + 1) * sizeof *f);
  char *nm = strdup(name);
  if (!f || !nm) {
    if (f)
      st->fields = f;
    free(nm);
    sm_type_free(type);
    return ed_err_set(err, ED_E_NOMEM, "schema: out of memory");
  }
  st->fields = f;
  f[st->nfields].name = nm;
  f[st->nfields].type = type;
  f[st->nfields].nullable = nullable;
  st->nfields++;
  return ED_OK;
}

void sm_type_free(sm_type_t *t) {
  if (!t)
    return;
  for (size_t i = 0; i < t->nfields; i++) {
    free(t->fields[i].name);
    sm_type_free(t->fields[i].type);
  }
  free(t->fields);
  sm_type_free(t->elem);
  free(t);
}

sm_type_t *sm_type_clone(const sm_type_t *t) {
  if (!t)
    return NULL;
  if (t->kind == SM_ARRAY || t->kind == SM_MAP)
    return type_new_nested(t->kind, sm_type_clone(t->elem), t->elem_nullable);
  sm_type_t *c = sm_type_new(t->kind);
  if (!c)
    return NULL;
  for (size_t i = 0; i < t->nfields; i++) {
    sm_type_t *ft = sm_type_clone(t->fields[i].type);
    if (!ft || sm_type_add_field(c, t->fields[i].name, ft, t->fields[i].nullable, NULL)) {
      sm_type_free(c);
      return NULL;
    }
  }
  return c;
}

bool sm_type_equal(const sm_type_t *a, const sm_type_t *b) {
  if (a == b)
    return true;
  if (!a || !b || a->kind != b->kind || a->nfields != b->nfields)
    return false;
  if (a->kind == SM_ARRAY || a->kind == SM_MAP)
    return a->elem_nullable == b->elem_nullable && sm_type_equal(a->elem, b->elem);
  for (size_t i = 0; i < a->nfields; i++)
    if (strcmp(a->fields[i].name, b->fields[i].name) != 0 ||
        a->fields[i].nullable != b->fields[i].nullable ||
        !sm_type_equal(a->fields[i].type, b->fields[i].type))
      return false;
  return true;
}

int sm_type_field_index(const sm_type_t *st, const char *name) {
  if (!st || st->kind != SM_STRUCT)
    return -1;
  for (size_t i = 0; i < st->nfields; i++)
    if (strcmp(st->fields[i].name, name) == 0)
      return (int)i;
  for (size_t i = 0; i < st->nfields; i++)
    if (strcasecmp(st->fields[i].name, name) == 0)
      return (int)i;
  return -1;
}

/* ---- columns ---- */

size_t sm_kind_value_size(sm_kind_t k) {
  switch (k) {
  case SM_INT:
  case SM_DATE:
  case SM_FLOAT:
    return 4;
  case SM_BIGINT:
  case SM_TIMESTAMP:
  case SM_DOUBLE:
    return 8;
  case SM_BOOLEAN:
    return 1;
  default:
    return 0;
  }
}

static bool has_offsets(sm_kind_t k) {
  return k == SM_STRING || k == SM_BINARY || k == SM_ARRAY || k == SM_MAP;
}

void sm_col_init(sm_col_t *c, const sm_type_t *t) {
  memset(c, 0, sizeof *c);
  c->type = t;
  size_t n = t->kind == SM_STRUCT  ? t->nfields
             : t->kind == SM_ARRAY ? 1
             : t->kind == SM_MAP   ? 2
                                   : 0;
  if (!n)
    return;
  c->children = calloc(n, sizeof *c->children);
  if (!c->children)
    return; /* sm_col_grow reports the failure on first use */
  c->nchildren = n;
  if (t->kind == SM_STRUCT)
    for (size_t i = 0; i < n; i++)
      sm_col_init(&c->children[i], t->fields[i].type);
  else if (t->kind == SM_ARRAY)
    sm_col_init(&c->children[0], t->elem);
  else {
    sm_col_init(&c->children[0], &sm_type_map_key);
    sm_col_init(&c->children[1], t->elem);
  }
}

void sm_col_fini(sm_col_t *c) {
  if (!c)
    return;
  for (size_t i = 0; i < c->nchildren; i++)
    sm_col_fini(&c->children[i]);
  free(c->children);
  free(c->valid);
  free(c->v.i64);
  free(c->off);
  free(c->data);
  memset(c, 0, sizeof *c);
}

void sm_col_reset(sm_col_t *c) {
  c->len = 0;
  c->data_len = 0;
  for (size_t i = 0; i < c->nchildren; i++)
    sm_col_reset(&c->children[i]);
}

void sm_col_truncate(sm_col_t *c, size_t rows) {
  /* even when len == rows, children may hold elements of an unfinished row */
  if (rows > c->len)
    rows = c->len;
  c->len = rows;
  sm_kind_t k = c->type->kind;
  size_t base = c->off ? c->off[rows] : 0;
  if (k == SM_STRING || k == SM_BINARY)
    c->data_len = base;
  else if (k == SM_ARRAY || k == SM_MAP)
    for (size_t i = 0; i < c->nchildren; i++)
      sm_col_truncate(&c->children[i], base);
  else if (k == SM_STRUCT)
    for (size_t i = 0; i < c->nchildren; i++)
      sm_col_truncate(&c->children[i], rows);
}

ed_code_t sm_col_grow(sm_col_t *c, size_t extra) {
  sm_kind_t k = c->type->kind;
  size_t expect_children = k == SM_STRUCT  ? c->type->nfields
                           : k == SM_ARRAY ? 1
                           : k == SM_MAP   ? 2
                                           : 0;
  if (c->nchildren != expect_children)
    return ED_E_NOMEM; /* sm_col_init could not allocate them */
  if (c->len + extra <= c->cap && c->valid)
    return ED_OK;
  size_t cap = c->cap ? c->cap : 64;
  while (cap < c->len + extra)
    cap *= 2;
  uint8_t *valid = realloc(c->valid, cap);
  if (!valid)
    return ED_E_NOMEM;
  c->valid = valid;
  size_t vs = sm_kind_value_size(k);
  if (vs) {
    void *v = realloc(c->v.i64, cap * vs);
    if (!v)
      return ED_E_NOMEM;
    c->v.i64 = v;
  }
  if (has_offsets(k)) {
    uint32_t *off = realloc(c->off, (cap + 1) * sizeof *off);
    if (!off)
      return ED_E_NOMEM;
    if (!c->off)
      off[0] = 0;
    c->off = off;
  }
  c->cap = cap;
  return ED_OK;
}

/* Room for `extra` more bytes of STRING/BINARY data. ED_E_NOMEM; ED_E_TOO_LARGE
 * past 4 GiB per column (offsets are 32-bit, as Arrow's). */
static ed_code_t sm_col_grow_data(sm_col_t *c, size_t extra) {
  if (extra > UINT32_MAX - c->data_len)
    return ED_E_TOO_LARGE;
  size_t need = c->data_len + extra;
  if (need <= c->data_cap && c->data)
    return ED_OK;
  size_t cap = c->data_cap ? c->data_cap : 1024;
  while (cap < need)
    cap *= 2;
  char *d = realloc(c->data, cap);
  if (!d)
    return ED_E_NOMEM;
  c->data = d;
  c->data_cap = cap;
  return ED_OK;
}

ed_code_t sm_col_append_null(sm_col_t *c) {
  ed_code_t rc = sm_col_grow(c, 1);
  if (rc)
    return rc;
  sm_kind_t k = c->type->kind;
  if (k == SM_STRUCT)
    for (size_t i = 0; i < c->nchildren; i++)
      if ((rc = sm_col_append_null(&c->children[i])) != ED_OK) {
        for (size_t j = 0; j < i; j++)
          sm_col_truncate(&c->children[j], c->len);
        return rc;
      }
  size_t vs = sm_kind_value_size(k);
  if (vs)
    memset((char *)c->v.i64 + c->len * vs, 0, vs);
  if (k == SM_STRING || k == SM_BINARY)
    c->off[c->len + 1] = (uint32_t)c->data_len;
  else if (k == SM_ARRAY || k == SM_MAP)
    c->off[c->len + 1] = c->off[c->len];
  c->valid[c->len++] = 0;
  return ED_OK;
}

#define APPEND_SCALAR(fn, ctype, member)                                                           \
  ed_code_t fn(sm_col_t *c, ctype v) {                                                             \
    if (c->len >= c->cap || !c->valid) {                                                           \
      ed_code_t rc = sm_col_grow(c, 1);                                                            \
      if (rc)                                                                                      \
        return rc;                                                                                 \
    }                                                                                              \
    c->v.member[c->len] = v;                                                                       \
    c->valid[c->len++] = 1;                                                                        \
    return ED_OK;                                                                                  \
  }
APPEND_SCALAR(sm_col_append_i32, int32_t, i32)
APPEND_SCALAR(sm_col_append_i64, int64_t, i64)
APPEND_SCALAR(sm_col_append_f32, float, f32)
APPEND_SCALAR(sm_col_append_f64, double, f64)
#undef APPEND_SCALAR

ed_code_t sm_col_append_bool(sm_col_t *c, bool v) {
  ed_code_t rc = sm_col_grow(c, 1);
  if (rc)
    return rc;
  c->v.b8[c->len] = v ? 1 : 0;
  c->valid[c->len++] = 1;
  return ED_OK;
}

ed_code_t sm_col_append_str(sm_col_t *c, const char *p, size_t n) {
  ed_code_t rc = sm_col_grow(c, 1);
  if (rc || (rc = sm_col_grow_data(c, n)) != ED_OK)
    return rc;
  if (n)
    memcpy(c->data + c->data_len, p, n);
  c->data_len += n;
  c->off[c->len + 1] = (uint32_t)c->data_len;
  c->valid[c->len++] = 1;
  return ED_OK;
}

ed_code_t sm_col_append_struct(sm_col_t *c) {
  ed_code_t rc = sm_col_grow(c, 1);
  if (rc)
    return rc;
  c->valid[c->len++] = 1;
  return ED_OK;
}

ed_code_t sm_col_append_list_end(sm_col_t *c) {
  ed_code_t rc = sm_col_grow(c, 1);
  if (rc)
    return rc;
  size_t n = c->children[0].len;
  if (n > UINT32_MAX)
    return ED_E_TOO_LARGE;
  c->off[c->len + 1] = (uint32_t)n;
  c->valid[c->len++] = 1;
  return ED_OK;
}

ed_code_t sm_col_append_from(sm_col_t *dst, const sm_col_t *src, size_t row) {
  if (!src->valid[row])
    return sm_col_append_null(dst);
  size_t before = dst->len;
  ed_code_t rc = ED_OK;
  switch (src->type->kind) {
  case SM_STRING:
  case SM_BINARY: {
    size_t n;
    const char *p = sm_col_str(src, row, &n);
    return sm_col_append_str(dst, p, n);
  }
  case SM_BOOLEAN:
    return sm_col_append_bool(dst, src->v.b8[row]);
  case SM_INT:
  case SM_DATE:
    return sm_col_append_i32(dst, src->v.i32[row]);
  case SM_BIGINT:
  case SM_TIMESTAMP:
    return sm_col_append_i64(dst, src->v.i64[row]);
  case SM_FLOAT:
    return sm_col_append_f32(dst, src->v.f32[row]);
  case SM_DOUBLE:
    return sm_col_append_f64(dst, src->v.f64[row]);
  case SM_STRUCT:
    for (size_t i = 0; i < src->nchildren && !rc; i++)
      rc = sm_col_append_from(&dst->children[i], &src->children[i], row);
    if (!rc)
      rc = sm_col_append_struct(dst);
    break;
  case SM_ARRAY:
  case SM_MAP:
    for (size_t e = src->off[row]; e < src->off[row + 1] && !rc; e++)
      for (size_t i = 0; i < src->nchildren && !rc; i++)
        rc = sm_col_append_from(&dst->children[i], &src->children[i], e);
    if (!rc)
      rc = sm_col_append_list_end(dst);
    break;
  }
  if (rc) {
    /* children may be ahead of dst: cut them back to where this row began */
    dst->len = before;
    if (dst->type->kind == SM_STRUCT)
      for (size_t i = 0; i < dst->nchildren; i++)
        sm_col_truncate(&dst->children[i], before);
    else if (dst->off)
      for (size_t i = 0; i < dst->nchildren; i++)
        sm_col_truncate(&dst->children[i], dst->off[before]);
  }
  return rc;
}

ed_code_t sm_col_view_tail(sm_col_t *view, const sm_col_t *src, size_t from) {
  sm_kind_t k = src->type->kind;
  /* a STRUCT's child views from the previous call are reused */
  sm_col_t *kids = NULL;
  if (k == SM_STRUCT && view->type == src->type && view->nchildren == src->nchildren)
    kids = view->children;
  else
    sm_col_view_fini(view);
  *view = *src;
  view->children = kids;
  view->len = view->cap = src->len - from;
  view->valid = src->valid ? src->valid + from : NULL;
  size_t vs = sm_kind_value_size(k);
  if (vs && src->v.i64)
    view->v.i64 = (int64_t *)(void *)((char *)src->v.i64 + from * vs);
  if (src->off)
    view->off = src->off + from;
  view->data_cap = view->data_len;
  if (k != SM_STRUCT) {
    view->children = src->children; /* ARRAY/MAP: offsets index src's own children */
    return ED_OK;
  }
  if (!view->children && src->nchildren &&
      !(view->children = calloc(src->nchildren, sizeof *view->children))) {
    memset(view, 0, sizeof *view);
    return ED_E_NOMEM;
  }
  for (size_t i = 0; i < src->nchildren; i++) {
    ed_code_t rc = sm_col_view_tail(&view->children[i], &src->children[i], from);
    if (rc) {
      sm_col_view_fini(view);
      return rc;
    }
  }
  return ED_OK;
}

void sm_col_view_fini(sm_col_t *view) {
  if (!view)
    return;
  if (view->type && view->type->kind == SM_STRUCT) {
    for (size_t i = 0; i < view->nchildren; i++)
      sm_col_view_fini(&view->children[i]);
    free(view->children);
  }
  memset(view, 0, sizeof *view);
}

/* ---- batches ---- */

sm_batch_t *sm_batch_new(const sm_type_t *schema) {
  if (!schema || schema->kind != SM_STRUCT)
    return NULL;
  sm_batch_t *b = calloc(1, sizeof *b);
  if (!b)
    return NULL;
  b->schema = schema;
  b->cols = calloc(schema->nfields ? schema->nfields : 1, sizeof *b->cols);
  if (!b->cols) {
    free(b);
    return NULL;
  }
  for (size_t i = 0; i < schema->nfields; i++) {
    sm_col_init(&b->cols[i], schema->fields[i].type);
    if (sm_col_grow(&b->cols[i], 1) != ED_OK) { /* children allocated? */
      for (size_t j = 0; j <= i; j++)
        sm_col_fini(&b->cols[j]);
      free(b->cols);
      free(b);
      return NULL;
    }
  }
  return b;
}

void sm_batch_free(sm_batch_t *b) {
  if (!b)
    return;
  for (size_t i = 0; i < b->schema->nfields; i++)
    sm_col_fini(&b->cols[i]);
  free(b->cols);
  free(b);
}

void sm_batch_reset(sm_batch_t *b) {
  b->nrows = 0;
  for (size_t i = 0; i < b->schema->nfields; i++)
    sm_col_reset(&b->cols[i]);
}

void sm_batch_rollback_row(sm_batch_t *b) {
  for (size_t i = 0; i < b->schema->nfields; i++)
    sm_col_truncate(&b->cols[i], b->nrows);
}

ed_code_t sm_batch_append_selected(sm_batch_t *dst, const sm_batch_t *src, const uint8_t *sel) {
  size_t nf = dst->schema->nfields;
  if (src->schema->nfields != nf)
    return ED_E_SCHEMA;
  for (size_t r = 0; r < src->nrows; r++) {
    if (sel && !sel[r])
      continue;
    for (size_t i = 0; i < nf; i++) {
      ed_code_t rc = sm_col_append_from(&dst->cols[i], &src->cols[i], r);
      if (rc) {
        sm_batch_rollback_row(dst);
        return rc;
      }
    }
    dst->nrows++;
  }
  return ED_OK;
}
