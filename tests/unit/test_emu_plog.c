#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "emu/plog.h"
#include "tests/unit/cu.h"

/* Records seen while loading, copied out. */
typedef struct seen {
  int n;
  emu_rec_t r[64];
  char body[64][32];
} seen_t;

static ed_code_t collect(void *ctx, const emu_rec_t *r) {
  seen_t *s = ctx;
  if (s->n == 64 || r->len >= 32)
    return ED_E_INTERNAL;
  memcpy(s->body[s->n], r->bytes, r->len);
  s->body[s->n][r->len] = 0;
  s->r[s->n] = *r;
  s->r[s->n].bytes = NULL;
  s->n++;
  return ED_OK;
}

static char dir[64];
static int mk(void) {
  snprintf(dir, sizeof dir, "/tmp/ed-plog-XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}
static int rm(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd) == 0 ? 0 : -1;
}

static void path_of(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

static emu_plog_t *open_log(const char *path, seen_t *s, int64_t *seq, int64_t *off) {
  emu_plog_t *pl = NULL;
  ed_err_t err = {0};
  memset(s, 0, sizeof *s);
  CU_ASSERT_EQUAL(emu_plog_open(path, collect, s, seq, off, &pl, &err), ED_OK);
  return pl;
}

static void append3(emu_plog_t *pl, int64_t seq, int64_t off) {
  static const char *b[] = {"alpha", "beta", "gamma"};
  emu_rec_t r[3];
  for (int i = 0; i < 3; i++) {
    r[i] =
        (emu_rec_t){seq + i, off, 1700000000000 + i, (const uint8_t *)b[i], (uint32_t)strlen(b[i])};
    off += (int64_t)strlen(b[i]);
  }
  CU_ASSERT_EQUAL(emu_plog_append(pl, r, 3, NULL), ED_OK);
}

static void test_crc32c_known_vector(void) {
  /* the CRC-32C check value of "123456789" (RFC 3720 B.4) */
  CU_ASSERT_EQUAL(emu_crc32c(0, "123456789", 9), 0xE3069283u);
  CU_ASSERT_EQUAL(emu_crc32c(emu_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
}

static void test_round_trip_keeps_numbers(void) {
  char p[128];
  path_of(p, sizeof p, "rt.log");
  seen_t s;
  int64_t seq = 0, off = 0;
  emu_plog_t *pl = open_log(p, &s, &seq, &off);
  CU_ASSERT_EQUAL(s.n, 0);
  append3(pl, 0, 0);
  emu_plog_free(pl);
  seq = 99, off = 99; /* ignored: the file's numbers win */
  pl = open_log(p, &s, &seq, &off);
  CU_ASSERT_EQUAL(s.n, 3);
  CU_ASSERT_STR(s.body[1], "beta");
  CU_ASSERT_EQUAL(s.r[2].seq, 2);
  CU_ASSERT_EQUAL(s.r[2].offset, 9);
  CU_ASSERT_EQUAL(s.r[2].enq_ms, 1700000000002);
  CU_ASSERT_EQUAL(seq, 3);
  CU_ASSERT_EQUAL(off, 14);
  emu_plog_free(pl);
}

static void test_torn_tail_truncated(void) {
  char p[128];
  path_of(p, sizeof p, "torn.log");
  seen_t s;
  int64_t seq = 0, off = 0;
  emu_plog_t *pl = open_log(p, &s, &seq, &off);
  append3(pl, 0, 0);
  int64_t good = emu_plog_size(pl);
  emu_plog_free(pl);
  /* cut the last record in half: kill -9 during its write */
  CU_ASSERT_EQUAL(truncate(p, good - 3), 0);
  pl = open_log(p, &s, &seq, &off);
  CU_ASSERT_EQUAL(s.n, 2);
  CU_ASSERT_EQUAL(seq, 2);
  CU_ASSERT_EQUAL(off, 9);
  CU_ASSERT_EQUAL(emu_plog_size(pl), good - (32 + 5));
  append3(pl, seq, off); /* appends go where the intact records end */
  emu_plog_free(pl);
  pl = open_log(p, &s, &seq, &off);
  CU_ASSERT_EQUAL(s.n, 5);
  CU_ASSERT_STR(s.body[2], "alpha");
  CU_ASSERT_EQUAL(s.r[4].seq, 4);
  emu_plog_free(pl);
}

static void test_checksum_mismatch_truncated(void) {
  char p[128];
  path_of(p, sizeof p, "crc.log");
  seen_t s;
  int64_t seq = 0, off = 0;
  emu_plog_t *pl = open_log(p, &s, &seq, &off);
  append3(pl, 0, 0);
  int64_t size = emu_plog_size(pl);
  emu_plog_free(pl);
  FILE *f = fopen(p, "r+b");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fseek(f, (long)(size - 2), SEEK_SET);
  fputc('X', f); /* inside "gamma" */
  fclose(f);
  pl = open_log(p, &s, &seq, &off);
  CU_ASSERT_EQUAL(s.n, 2);
  CU_ASSERT_EQUAL(seq, 2);
  emu_plog_free(pl);
}

static void test_bad_header_refused(void) {
  char p[128];
  path_of(p, sizeof p, "bad.log");
  FILE *f = fopen(p, "wb");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputs("this is not an ehemu partition log at all", f);
  fclose(f);
  emu_plog_t *pl = NULL;
  ed_err_t err = {0};
  seen_t s = {0};
  int64_t seq = 0, off = 0;
  CU_ASSERT_EQUAL(emu_plog_open(p, collect, &s, &seq, &off, &pl, &err), ED_E_PARSE);
  CU_ASSERT_PTR_NULL(pl);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "bad.log"));
}

static void test_compact_keeps_next_numbers(void) {
  char p[128];
  path_of(p, sizeof p, "compact.log");
  seen_t s;
  int64_t seq = 0, off = 0;
  emu_plog_t *pl = open_log(p, &s, &seq, &off);
  append3(pl, 0, 0);
  /* retention dropped everything: the file keeps only where numbering goes on */
  CU_ASSERT_EQUAL(emu_plog_compact(pl, NULL, 0, 3, 14, NULL), ED_OK);
  CU_ASSERT_EQUAL(emu_plog_size(pl), 32);
  emu_plog_free(pl);
  seq = off = 0;
  pl = open_log(p, &s, &seq, &off);
  CU_ASSERT_EQUAL(s.n, 0);
  CU_ASSERT_EQUAL(seq, 3);
  CU_ASSERT_EQUAL(off, 14);
  append3(pl, seq, off);
  emu_plog_free(pl);
  pl = open_log(p, &s, &seq, &off);
  CU_ASSERT_EQUAL(s.n, 3);
  CU_ASSERT_EQUAL(s.r[0].seq, 3);
  CU_ASSERT_EQUAL(s.r[0].offset, 14);
  emu_plog_free(pl);
}

static void test_out_of_order_record_stops_loading(void) {
  char p[128];
  path_of(p, sizeof p, "order.log");
  seen_t s;
  int64_t seq = 0, off = 0;
  emu_plog_t *pl = open_log(p, &s, &seq, &off);
  append3(pl, 0, 0);
  emu_rec_t r = {7, 100, 1, (const uint8_t *)"x", 1}; /* a gap in the numbering */
  CU_ASSERT_EQUAL(emu_plog_append(pl, &r, 1, NULL), ED_OK);
  emu_plog_free(pl);
  pl = open_log(p, &s, &seq, &off);
  CU_ASSERT_EQUAL(s.n, 3);
  CU_ASSERT_EQUAL(seq, 3);
  emu_plog_free(pl);
}

static const cu_case_t cases[] = {CU_CASE(test_crc32c_known_vector),
                                  CU_CASE(test_round_trip_keeps_numbers),
                                  CU_CASE(test_torn_tail_truncated),
                                  CU_CASE(test_checksum_mismatch_truncated),
                                  CU_CASE(test_bad_header_refused),
                                  CU_CASE(test_compact_keeps_next_numbers),
                                  CU_CASE(test_out_of_order_record_stops_loading),
                                  CU_END};
ED_SUITE_FULL(emu_plog, cases, mk, rm)
