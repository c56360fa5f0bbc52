/* test_win_agg: aggregate spec parsing, each aggregate's semantics (nulls,
 * NaN, strings), merging, saving, and the group-key table. */
#include <math.h>
#include <stdlib.h>

#include "stream/agg.h"
#include "tests/unit/cu.h"

static void test_spec_parse_table(void) {
  struct {
    const char *text;
    agg_kind_t kind;
    const char *col, *alias;
  } ok[] = {
      {"count(*)", AGG_COUNT_STAR, NULL, NULL},
      {"COUNT(*) AS txn_count", AGG_COUNT_STAR, NULL, "txn_count"},
      {"count(amount)", AGG_COUNT, "amount", NULL},
      {"sum(amount) as total_amount", AGG_SUM, "amount", "total_amount"},
      {" avg( amount ) ", AGG_AVG, "amount", NULL},
      {"max(`odd name`) AS `m x`", AGG_MAX, "odd name", "m x"},
      {"count(DISTINCT customer_id) AS uc", AGG_COUNT_DISTINCT, "customer_id", "uc"},
      {"approx_count_distinct(customer_id, 0.02)", AGG_APPROX_DISTINCT, "customer_id", NULL},
      {"first(x, true)", AGG_FIRST, "x", NULL},
      {"last(x)", AGG_LAST, "x", NULL},
      {"min(a.b)", AGG_MIN, "a.b", NULL},
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    agg_spec_t s;
    ed_err_t e = {0};
    CU_ASSERT_EQUAL_FATAL(agg_spec_parse(ok[i].text, &s, &e), ED_OK);
    CU_ASSERT_EQUAL(s.kind, ok[i].kind);
    if (ok[i].col) {
      CU_ASSERT_STR(s.column, ok[i].col);
    } else {
      CU_ASSERT_PTR_NULL(s.column);
    }
    if (ok[i].alias) {
      CU_ASSERT_STR(s.alias, ok[i].alias);
    } else {
      CU_ASSERT_PTR_NULL(s.alias);
    }
    if (ok[i].kind == AGG_APPROX_DISTINCT) {
      CU_ASSERT_DOUBLE_EQUAL(s.rsd, 0.02, 1e-12);
    }
    if (ok[i].kind == AGG_FIRST) {
      CU_ASSERT_TRUE(s.ignore_nulls);
    }
    agg_spec_fini(&s);
  }
  const char *bad[][2] = {
      {"sum amount", "expected a function call"},
      {"sum(*)", "only count accepts *"},
      {"median(x)", "unknown function 'median'"},
      {"sum(DISTINCT x)", "DISTINCT is supported in count only"},
      {"sum(x", "expected ')'"},
      {"sum(x) AS", "expected an alias"},
      {"sum(x) junk", "unexpected text"},
      {"sum(x, 2)", "takes one argument"},
      {"first(x, maybe)", "expected true or false"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    agg_spec_t s;
    ed_err_t e = {0};
    CU_ASSERT_EQUAL(agg_spec_parse(bad[i][0], &s, &e), ED_E_PARSE);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, bad[i][1]));
  }
}

/* one value column of kind k, rows given as strings ("" = null) */
static void fill(sm_col_t *c, const char *const *vals, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (!vals[i][0]) {
      sm_col_append_null(c);
      continue;
    }
    switch (c->type->kind) {
    case SM_STRING:
      sm_col_append_str(c, vals[i], strlen(vals[i]));
      break;
    case SM_DOUBLE:
      sm_col_append_f64(c, strcmp(vals[i], "nan") == 0 ? NAN : atof(vals[i]));
      break;
    case SM_INT:
      sm_col_append_i32(c, atoi(vals[i]));
      break;
    default:
      sm_col_append_i64(c, atoll(vals[i]));
      break;
    }
  }
}

/* Runs text over vals (all one group) and returns the result column. */
static void run1(const char *text, sm_kind_t k, const char *const *vals, size_t n, sm_col_t *res,
                 sm_type_t **rt_keep) {
  sm_type_t *t = sm_type_new(k);
  sm_col_t c;
  sm_col_init(&c, t);
  fill(&c, vals, n);
  agg_spec_t s;
  CU_ASSERT_EQUAL_FATAL(agg_spec_parse(text, &s, NULL), ED_OK);
  agg_t *a = NULL;
  ed_err_t e = {0};
  CU_ASSERT_EQUAL_FATAL(agg_new(&s, t, &a, &e), ED_OK);
  CU_ASSERT_EQUAL(agg_reserve(a, 1), ED_OK);
  uint32_t *g = calloc(n ? n : 1, 4);
  CU_ASSERT_EQUAL(agg_update(a, &c, NULL, g, n, NULL), ED_OK);
  *rt_keep = sm_type_clone(agg_result_type(a));
  sm_col_init(res, *rt_keep);
  uint32_t g0 = 0;
  CU_ASSERT_EQUAL(agg_emit(a, &g0, 1, res, NULL), ED_OK);
  free(g);
  agg_free(a);
  agg_spec_fini(&s);
  sm_col_fini(&c);
  sm_type_free(t);
}

static void test_aggregate_semantics_table(void) {
  static const char *nums[] = {"3", "", "nan", "-1", "7", ""};
  static const char *strs[] = {"pear", "", "apple", "zoo", "apple"};
  static const char *nulls[] = {"", ""};
  struct {
    const char *text;
    sm_kind_t k;
    const char *const *vals;
    size_t n;
    const char *want; /* "NULL", a number, or a string */
  } t[] = {
      {"count(*)", SM_DOUBLE, nums, 6, "6"},
      {"count(x)", SM_DOUBLE, nums, 6, "4"},
      {"max(x)", SM_DOUBLE, nums, 6, "nan"}, /* Spark: NaN is larger than any value */
      {"min(x)", SM_DOUBLE, nums, 6, "-1"},
      {"sum(x)", SM_BIGINT, (const char *[]){"1", "", "2"}, 3, "3"},
      {"sum(x)", SM_INT, (const char *[]){"2147483647", "1"}, 2, "2147483648"},
      {"avg(x)", SM_INT, (const char *[]){"1", "2", ""}, 3, "1.5"},
      {"sum(x)", SM_DOUBLE, nulls, 2, "NULL"},
      {"avg(x)", SM_DOUBLE, nulls, 2, "NULL"},
      {"max(x)", SM_STRING, strs, 5, "zoo"},
      {"min(x)", SM_STRING, strs, 5, "apple"},
      {"first(x)", SM_STRING, (const char *[]){"", "b"}, 2, "NULL"},
      {"first(x, true)", SM_STRING, (const char *[]){"", "b"}, 2, "b"},
      {"last(x)", SM_STRING, (const char *[]){"a", ""}, 2, "NULL"},
      {"last(x, true)", SM_STRING, (const char *[]){"a", ""}, 2, "a"},
      {"count(DISTINCT x)", SM_STRING, strs, 5, "3"},
      {"count(DISTINCT x)", SM_DOUBLE, (const char *[]){"0", "-0", "nan", "nan", ""}, 5, "2"},
      {"approx_count_distinct(x)", SM_STRING, (const char *[]){"apple", "apple", ""}, 3, "1"},
      {"max(x)", SM_INT, nulls, 2, "NULL"},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    sm_col_t r;
    sm_type_t *rt;
    run1(t[i].text, t[i].k, t[i].vals, t[i].n, &r, &rt);
    char got[64];
    if (!r.valid[0]) {
      snprintf(got, sizeof got, "NULL");
    } else if (rt->kind == SM_STRING) {
      size_t n;
      const char *s = sm_col_str(&r, 0, &n);
      snprintf(got, sizeof got, "%.*s", (int)n, s);
    } else if (rt->kind == SM_DOUBLE) {
      snprintf(got, sizeof got, "%g", r.v.f64[0]);
    } else if (rt->kind == SM_INT) {
      snprintf(got, sizeof got, "%d", r.v.i32[0]);
    } else {
      snprintf(got, sizeof got, "%lld", (long long)r.v.i64[0]);
    }
    if (strcmp(got, t[i].want) != 0)
      fprintf(stderr, "case %zu %s: got %s want %s\n", i, t[i].text, got, t[i].want);
    CU_ASSERT_STR(got, t[i].want);
    sm_col_fini(&r);
    sm_type_free(rt);
  }
}

/* Splitting a stream in two, aggregating each and merging equals one run. */
static void test_merge_equals_single_run_and_save_load_roundtrips(void) {
  const char *texts[] = {"count(*)",
                         "count(x)",
                         "sum(x)",
                         "avg(x)",
                         "min(x)",
                         "max(x)",
                         "first(x)",
                         "last(x)",
                         "count(DISTINCT x)",
                         "approx_count_distinct(x, 0.02)"};
  sm_type_t *t = sm_type_new(SM_BIGINT);
  sm_col_t c;
  sm_col_init(&c, t);
  srand(3);
  enum { N = 20000 };
  static uint32_t g[N];
  for (int i = 0; i < N; i++) {
    if (rand() % 10 == 0)
      sm_col_append_null(&c);
    else
      sm_col_append_i64(&c, rand() % 5000);
    g[i] = (uint32_t)(i % 3);
  }
  for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++) {
    agg_spec_t s;
    CU_ASSERT_EQUAL_FATAL(agg_spec_parse(texts[k], &s, NULL), ED_OK);
    agg_t *whole, *p1, *p2, *re;
    CU_ASSERT_EQUAL_FATAL(agg_new(&s, t, &whole, NULL), ED_OK);
    CU_ASSERT_EQUAL_FATAL(agg_new(&s, t, &p1, NULL), ED_OK);
    CU_ASSERT_EQUAL_FATAL(agg_new(&s, t, &p2, NULL), ED_OK);
    re = agg_new_like(whole);
    CU_ASSERT_PTR_NOT_NULL_FATAL(re);
    agg_reserve(whole, 3);
    agg_reserve(p1, 3);
    agg_reserve(p2, 3);
    agg_reserve(re, 3);
    CU_ASSERT_EQUAL(agg_update(whole, &c, NULL, g, N, NULL), ED_OK);
    static uint32_t rows2[N];
    for (int i = 0; i < N / 2; i++)
      rows2[i] = (uint32_t)(N / 2 + i);
    CU_ASSERT_EQUAL(agg_update(p1, &c, NULL, g, N / 2, NULL), ED_OK);
    CU_ASSERT_EQUAL(agg_update(p2, &c, rows2, g + N / 2, N / 2, NULL), ED_OK);
    ed_buf_t sv = ED_BUF_INIT;
    for (uint32_t grp = 0; grp < 3; grp++) {
      CU_ASSERT_EQUAL(agg_merge(p1, grp, p2, grp, NULL), ED_OK);
      CU_ASSERT_EQUAL(agg_save(p1, grp, &sv), ED_OK);
    }
    const uint8_t *p = (const uint8_t *)sv.data, *end = p + sv.len;
    for (uint32_t grp = 0; grp < 3; grp++)
      CU_ASSERT_EQUAL(agg_load(re, grp, &p, end, NULL), ED_OK);
    CU_ASSERT_PTR_EQUAL(p, end);
    p = (const uint8_t *)sv.data;
    ed_err_t e = {0};
    CU_ASSERT_EQUAL(agg_load(re, 0, &p, p + (sv.len > 3 ? 3 : 0), &e), ED_E_CORRUPT);
    uint32_t gg[3] = {0, 1, 2};
    sm_col_t o1, o2;
    sm_col_init(&o1, agg_result_type(whole));
    sm_col_init(&o2, agg_result_type(whole));
    agg_reserve(re, 3);
    p = (const uint8_t *)sv.data;
    for (uint32_t grp = 0; grp < 3; grp++)
      agg_load(re, grp, &p, end, NULL);
    CU_ASSERT_EQUAL(agg_emit(whole, gg, 3, &o1, NULL), ED_OK);
    CU_ASSERT_EQUAL(agg_emit(re, gg, 3, &o2, NULL), ED_OK);
    for (int i = 0; i < 3; i++) {
      CU_ASSERT_EQUAL(o1.valid[i], o2.valid[i]);
      if (o1.type->kind == SM_DOUBLE) {
        CU_ASSERT_DOUBLE_EQUAL(o1.v.f64[i], o2.v.f64[i], 1e-9);
      } else {
        CU_ASSERT_EQUAL(o1.v.i64[i], o2.v.i64[i]);
      }
    }
    if (s.kind == AGG_APPROX_DISTINCT) {
      /* about 4500 distinct per group; rsd 2%: within 4 sigma */
      sm_col_t ex;
      agg_spec_t ds;
      agg_t *d;
      agg_spec_parse("count(DISTINCT x)", &ds, NULL);
      agg_new(&ds, t, &d, NULL);
      agg_reserve(d, 3);
      agg_update(d, &c, NULL, g, N, NULL);
      sm_col_init(&ex, agg_result_type(d));
      agg_emit(d, gg, 3, &ex, NULL);
      for (int i = 0; i < 3; i++) {
        double rel = fabs((double)o1.v.i64[i] - (double)ex.v.i64[i]) / (double)ex.v.i64[i];
        CU_ASSERT_TRUE(rel < 0.08);
      }
      CU_ASSERT_TRUE(agg_mem_bytes(d) > agg_mem_bytes(whole)); /* HLL is the small one */
      sm_col_fini(&ex);
      agg_free(d);
      agg_spec_fini(&ds);
    }
    sm_col_fini(&o1);
    sm_col_fini(&o2);
    ed_buf_fini(&sv);
    agg_free(whole);
    agg_free(p1);
    agg_free(p2);
    agg_free(re);
    agg_spec_fini(&s);
  }
  sm_col_fini(&c);
  sm_type_free(t);
}

static void test_keys_null_is_a_key_and_compact_renumbers(void) {
  sm_type_t *ts = sm_type_new(SM_STRING), *tf = sm_type_new(SM_DOUBLE);
  const sm_type_t *types[] = {ts, tf};
  agg_keys_t *k;
  CU_ASSERT_EQUAL_FATAL(agg_keys_new(types, NULL, 2, &k, NULL), ED_OK);
  sm_col_t a, b;
  sm_col_init(&a, ts);
  sm_col_init(&b, tf);
  sm_col_append_null(&a);
  sm_col_append_f64(&b, 0.0);
  sm_col_append_null(&a);
  sm_col_append_f64(&b, -0.0); /* same key as row 0 (Spark normalises -0.0) */
  sm_col_append_str(&a, "", 0);
  sm_col_append_f64(&b, 0.0); /* "" is not NULL */
  const sm_col_t *cols[] = {&a, &b};
  uint32_t gid[3];
  bool added;
  for (int r = 0; r < 3; r++) {
    CU_ASSERT_EQUAL(agg_keys_row(k, cols, (size_t)r), ED_OK);
    CU_ASSERT_EQUAL(agg_keys_upsert(k, 100, &gid[r], &added), ED_OK);
  }
  CU_ASSERT_EQUAL(gid[0], gid[1]);
  CU_ASSERT_NOT_EQUAL(gid[0], gid[2]);
  CU_ASSERT_EQUAL(agg_keys_row(k, cols, 0), ED_OK);
  CU_ASSERT_EQUAL(agg_keys_upsert(k, 200, &gid[1], &added), ED_OK); /* other prefix, new group */
  CU_ASSERT_TRUE(added);
  CU_ASSERT_EQUAL(agg_keys_count(k), 3);
  uint8_t keep[3] = {0, 1, 1};
  uint32_t remap[3];
  CU_ASSERT_EQUAL(agg_keys_compact(k, keep, remap), ED_OK);
  CU_ASSERT_EQUAL(remap[0], UINT32_MAX);
  CU_ASSERT_EQUAL(remap[2], 1);
  CU_ASSERT_EQUAL(agg_keys_count(k), 2);
  CU_ASSERT_EQUAL(agg_keys_row(k, cols, 2), ED_OK);
  uint32_t g;
  CU_ASSERT_TRUE(agg_keys_find(k, 100, &g));
  CU_ASSERT_EQUAL(g, 0);
  CU_ASSERT_EQUAL(agg_keys_row(k, cols, 0), ED_OK);
  CU_ASSERT_FALSE(agg_keys_find(k, 100, &g)); /* compacted away */
  /* raw keys are checked on the way in */
  ed_err_t e = {0};
  const uint8_t junk[] = {1, 200, 0, 0, 0};
  CU_ASSERT_EQUAL(agg_keys_add_raw(k, 0, junk, sizeof junk, &g, &e), ED_E_CORRUPT);
  sm_col_fini(&a);
  sm_col_fini(&b);
  agg_keys_free(k);
  sm_type_free(ts);
  sm_type_free(tf);
}

static const cu_case_t cases[] = {
    CU_CASE(test_spec_parse_table),
    CU_CASE(test_aggregate_semantics_table),
    CU_CASE(test_merge_equals_single_run_and_save_load_roundtrips),
    CU_CASE(test_keys_null_is_a_key_and_compact_renumbers),
    CU_END,
};
ED_SUITE(win_agg, cases)
