/* test_sm_batch: column vectors, nested appends, rollback and selection. */
#include <stdlib.h>
#include <string.h>

#include "stream/batch.h"
#include "tests/unit/cu.h"

/* STRUCT<id: BIGINT, name: STRING, tags: ARRAY<STRING>, geo: STRUCT<lat: DOUBLE>> */
static sm_type_t *sample_schema(void) {
  sm_type_t *st = sm_type_new(SM_STRUCT);
  sm_type_t *geo = sm_type_new(SM_STRUCT);
  CU_ASSERT_EQUAL(sm_type_add_field(geo, "lat", sm_type_new(SM_DOUBLE), true, NULL), ED_OK);
  CU_ASSERT_EQUAL(sm_type_add_field(st, "id", sm_type_new(SM_BIGINT), false, NULL), ED_OK);
  CU_ASSERT_EQUAL(sm_type_add_field(st, "name", sm_type_new(SM_STRING), true, NULL), ED_OK);
  CU_ASSERT_EQUAL(
      sm_type_add_field(st, "tags", sm_type_new_array(sm_type_new(SM_STRING), true), true, NULL),
      ED_OK);
  CU_ASSERT_EQUAL(sm_type_add_field(st, "geo", geo, true, NULL), ED_OK);
  return st;
}

static void test_type_tree_clone_equal_and_lookup(void) {
  sm_type_t *st = sample_schema();
  sm_type_t *c = sm_type_clone(st);
  CU_ASSERT_TRUE(sm_type_equal(st, c));
  c->fields[0].nullable = true;
  CU_ASSERT_FALSE(sm_type_equal(st, c));
  CU_ASSERT_EQUAL(sm_type_field_index(st, "name"), 1);
  CU_ASSERT_EQUAL(sm_type_field_index(st, "NAME"), 1);
  CU_ASSERT_EQUAL(sm_type_field_index(st, "nope"), -1);
  ed_err_t e = {0};
  CU_ASSERT_EQUAL(sm_type_add_field(st, "Id", sm_type_new(SM_INT), true, &e), ED_E_INVALID);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "duplicate field 'Id'"));
  CU_ASSERT_STR(sm_kind_name(SM_TIMESTAMP), "TIMESTAMP");
  sm_type_free(c);
  sm_type_free(st);
  sm_type_free(NULL);
}

static void append_sample_row(sm_batch_t *b, int64_t id, const char *name, int ntags) {
  CU_ASSERT_EQUAL(sm_col_append_i64(&b->cols[0], id), ED_OK);
  if (name) {
    CU_ASSERT_EQUAL(sm_col_append_str(&b->cols[1], name, strlen(name)), ED_OK);
  } else {
    CU_ASSERT_EQUAL(sm_col_append_null(&b->cols[1]), ED_OK);
  }
  for (int i = 0; i < ntags; i++)
    CU_ASSERT_EQUAL(sm_col_append_str(&b->cols[2].children[0], "t", 1), ED_OK);
  CU_ASSERT_EQUAL(sm_col_append_list_end(&b->cols[2]), ED_OK);
  if (id % 2) {
    CU_ASSERT_EQUAL(sm_col_append_null(&b->cols[3]), ED_OK);
  } else {
    CU_ASSERT_EQUAL(sm_col_append_f64(&b->cols[3].children[0], (double)id / 2), ED_OK);
    CU_ASSERT_EQUAL(sm_col_append_struct(&b->cols[3]), ED_OK);
  }
  b->nrows++;
}

static void test_batch_append_reset_keeps_capacity(void) {
  sm_type_t *st = sample_schema();
  sm_batch_t *b = sm_batch_new(st);
  CU_ASSERT_PTR_NOT_NULL_FATAL(b);
  for (int i = 0; i < 1000; i++)
    append_sample_row(b, i, i % 3 ? "abc" : NULL, i % 4);
  CU_ASSERT_EQUAL(b->nrows, 1000);
  CU_ASSERT_EQUAL(b->cols[1].len, 1000);
  CU_ASSERT_TRUE(sm_col_is_null(&b->cols[1], 0));
  size_t n;
  const char *s = sm_col_str(&b->cols[1], 1, &n);
  CU_ASSERT_EQUAL(n, 3);
  CU_ASSERT_EQUAL(memcmp(s, "abc", 3), 0);
  CU_ASSERT_EQUAL(b->cols[2].off[1000], 1500); /* 0+1+2+3 per 4 rows */
  /* struct children stay row-aligned, null rows included */
  CU_ASSERT_EQUAL(b->cols[3].children[0].len, 1000);
  CU_ASSERT_TRUE(sm_col_is_null(&b->cols[3].children[0], 1));
  CU_ASSERT_EQUAL(b->cols[3].children[0].v.f64[10], 5.0);
  size_t cap = b->cols[1].cap, dcap = b->cols[1].data_cap;
  sm_batch_reset(b);
  CU_ASSERT_EQUAL(b->nrows, 0);
  CU_ASSERT_EQUAL(b->cols[2].children[0].len, 0);
  CU_ASSERT_EQUAL(b->cols[1].cap, cap);
  CU_ASSERT_EQUAL(b->cols[1].data_cap, dcap);
  sm_batch_free(b);
  sm_type_free(st);
}

static void test_batch_rollback_undoes_partial_row(void) {
  sm_type_t *st = sample_schema();
  sm_batch_t *b = sm_batch_new(st);
  append_sample_row(b, 2, "x", 2);
  /* half a row: id, name and two tags, then the decoder gives up */
  sm_col_append_i64(&b->cols[0], 9);
  sm_col_append_str(&b->cols[1], "yy", 2);
  sm_col_append_str(&b->cols[2].children[0], "a", 1);
  sm_col_append_str(&b->cols[2].children[0], "b", 1);
  sm_col_append_f64(&b->cols[3].children[0], 1.0);
  sm_batch_rollback_row(b);
  CU_ASSERT_EQUAL(b->cols[0].len, 1);
  CU_ASSERT_EQUAL(b->cols[1].len, 1);
  CU_ASSERT_EQUAL(b->cols[1].data_len, 1);
  CU_ASSERT_EQUAL(b->cols[2].children[0].len, 2);
  CU_ASSERT_EQUAL(b->cols[3].children[0].len, 1);
  sm_batch_free(b);
  sm_type_free(st);
}

static void test_batch_append_selected_copies_nested_rows(void) {
  sm_type_t *st = sample_schema();
  sm_batch_t *a = sm_batch_new(st), *b = sm_batch_new(st);
  for (int i = 0; i < 10; i++)
    append_sample_row(a, i, i == 4 ? NULL : "nm", i % 4);
  uint8_t sel[10] = {0, 0, 1, 0, 1, 0, 0, 1, 0, 0};
  CU_ASSERT_EQUAL(sm_batch_append_selected(b, a, sel), ED_OK);
  CU_ASSERT_EQUAL(b->nrows, 3);
  CU_ASSERT_EQUAL(b->cols[0].v.i64[2], 7);
  CU_ASSERT_TRUE(sm_col_is_null(&b->cols[1], 1));
  CU_ASSERT_EQUAL(b->cols[2].off[1], 2);
  CU_ASSERT_EQUAL(b->cols[2].off[2], 2);
  CU_ASSERT_EQUAL(b->cols[2].off[3], 5);
  CU_ASSERT_EQUAL(b->cols[3].children[0].v.f64[1], 2.0);
  CU_ASSERT_TRUE(sm_col_is_null(&b->cols[3], 2));
  sm_batch_free(a);
  sm_batch_free(b);
  sm_batch_free(NULL);
  sm_type_free(st);
}

/* Rows of a and b equal, nested values included. */
static void assert_same_rows(const sm_batch_t *a, const sm_batch_t *b) {
  CU_ASSERT_EQUAL_FATAL(a->nrows, b->nrows);
  for (size_t r = 0; r < a->nrows; r++) {
    CU_ASSERT_EQUAL(a->cols[0].v.i64[r], b->cols[0].v.i64[r]);
    CU_ASSERT_EQUAL(sm_col_is_null(&a->cols[1], r), sm_col_is_null(&b->cols[1], r));
    size_t na, nb;
    const char *pa = sm_col_str(&a->cols[1], r, &na), *pb = sm_col_str(&b->cols[1], r, &nb);
    CU_ASSERT_TRUE(na == nb && memcmp(pa, pb, na) == 0);
    CU_ASSERT_EQUAL(a->cols[2].off[r + 1] - a->cols[2].off[r],
                    b->cols[2].off[r + 1] - b->cols[2].off[r]);
    CU_ASSERT_EQUAL(sm_col_is_null(&a->cols[3], r), sm_col_is_null(&b->cols[3], r));
    CU_ASSERT_EQUAL(sm_col_is_null(&a->cols[3].children[0], r),
                    sm_col_is_null(&b->cols[3].children[0], r));
    CU_ASSERT_EQUAL(a->cols[3].children[0].v.f64[r], b->cols[3].children[0].v.f64[r]);
  }
}

/* A view of a batch's tail reads as a copy of those rows would: what the
 * agent hands the windows when it decodes straight into a sink's batch. */
static void test_col_view_tail_reads_as_the_copied_rows(void) {
  sm_type_t *st = sample_schema();
  sm_batch_t *a = sm_batch_new(st), *want = sm_batch_new(st), *got = sm_batch_new(st);
  sm_col_t view[4] = {{0}};
  for (int round = 0; round < 2; round++) {
    size_t from = a->nrows;
    for (int i = 0; i < 300; i++) /* past the first capacity: storage moves between rounds */
      append_sample_row(a, (int64_t)from + i, i % 7 == 3 ? NULL : "name", i % 4);
    for (size_t c = 0; c < 4; c++)
      CU_ASSERT_EQUAL(sm_col_view_tail(&view[c], &a->cols[c], from), ED_OK);
    sm_batch_t vb = {.schema = st, .nrows = a->nrows - from, .cols = view};
    CU_ASSERT_EQUAL(view[3].len, 300);
    CU_ASSERT_EQUAL(view[3].children[0].len, 300);
    CU_ASSERT_EQUAL(view[1].off[0], a->cols[1].off[from]); /* offsets stay absolute */
    uint8_t *sel = calloc(a->nrows, 1);
    memset(sel + from, 1, a->nrows - from);
    sm_batch_reset(want);
    sm_batch_reset(got);
    CU_ASSERT_EQUAL(sm_batch_append_selected(want, a, sel), ED_OK);
    CU_ASSERT_EQUAL(sm_batch_append_selected(got, &vb, NULL), ED_OK);
    assert_same_rows(want, got);
    CU_ASSERT_EQUAL(got->cols[0].v.i64[0], (int64_t)from);
    free(sel);
  }
  for (size_t c = 0; c < 4; c++)
    sm_col_view_fini(&view[c]);
  sm_col_view_fini(NULL);
  sm_batch_free(a);
  sm_batch_free(want);
  sm_batch_free(got);
  sm_type_free(st);
}

static const cu_case_t cases[] = {
    CU_CASE(test_type_tree_clone_equal_and_lookup),
    CU_CASE(test_batch_append_reset_keeps_capacity),
    CU_CASE(test_batch_rollback_undoes_partial_row),
    CU_CASE(test_batch_append_selected_copies_nested_rows),
    CU_CASE(test_col_view_tail_reads_as_the_copied_rows),
    CU_END,
};
ED_SUITE(sm_batch, cases)
