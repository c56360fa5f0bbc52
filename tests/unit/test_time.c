#include <stdio.h>

#include "common/time.h"
#include "tests/unit/cu.h"

/* Expected values checked with Python: datetime.fromisoformat(s).timestamp(). */
static void test_parse_iso_table(void) {
  static const struct {
    const char *in;
    int64_t us;
  } cases[] = {
      {"1970-01-01T00:00:00Z", 0},
      {"2024-02-29T12:34:56.789012Z", INT64_C(1709210096789012)},
      {"2024-02-29T12:34:56.789012", INT64_C(1709210096789012)}, /* no zone = UTC */
      {"2024-02-29 12:34:56.789012", INT64_C(1709210096789012)},
      {"2024-02-29T13:34:56.789012+01:00", INT64_C(1709210096789012)},
      {"2024-02-29T07:04:56.789012-0530", INT64_C(1709210096789012)},
      {"2024-02-29T14:34:56.789012+02", INT64_C(1709210096789012)},
      {"2024-02-29T12:34:56.7890129Z", INT64_C(1709210096789012)}, /* truncated */
      {"2024-02-29T12:34:56.7Z", INT64_C(1709210096700000)},
      {"2024-02-29T12:34Z", INT64_C(1709210040000000)},
      {"2024-02-29", INT64_C(1709164800000000)},
      {"1969-12-31T23:59:59.999999Z", -1},
      {"0001-01-01T00:00:00Z", INT64_C(-62135596800000000)},
      {"9999-12-31T23:59:59.999999Z", INT64_C(253402300799999999)},
      {"2023-11-14T22:13:20z", INT64_C(1700000000000000)},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int64_t us = 42;
    ed_err_t e = {0};
    ed_code_t rc = ed_time_parse_iso(cases[i].in, strlen(cases[i].in), &us, &e);
    CU_ASSERT_EQUAL(rc, ED_OK);
    if (rc || us != cases[i].us)
      fprintf(stderr, "\n  case %s: rc=%d us=%lld msg=%s\n", cases[i].in, rc, (long long)us, e.msg);
    CU_ASSERT_EQUAL(us, cases[i].us);
  }
}

static void test_parse_iso_rejects_with_reason(void) {
  static const struct {
    const char *in;
    const char *why;
  } cases[] = {
      {"", "four-digit year"},
      {"2024/01/01", "'-' after the year"},
      {"2024-13-01", "month 01-12"},
      {"2023-02-29", "day that exists"},
      {"2024-04-31", "day that exists"},
      {"2024-01-01T24:00:00Z", "hour 00-23"},
      {"2024-01-01T12:60Z", "minutes 00-59"},
      {"2024-01-01T12:00:61Z", "seconds 00-59"},
      {"2024-01-01T12:00:00.Z", "fraction digits"},
      {"2024-01-01T12:00:00Zjunk", "'Z', an offset"},
      {"2024-01-01T12:00:00+25:00", "offset hour"},
      {"2024-01-01T12:00:00+01:75", "offset minutes"},
      {"2024-01-01T12", "':' after the hour"},
      {"yesterday", "four-digit year"},
      {"2024-01-01T12:00:00 UTC", "'Z', an offset"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int64_t us;
    ed_err_t e = {0};
    CU_ASSERT_EQUAL(ed_time_parse_iso(cases[i].in, strlen(cases[i].in), &us, &e), ED_E_PARSE);
    if (!strstr(e.msg, cases[i].why))
      fprintf(stderr, "\n  case '%s': message '%s' lacks '%s'\n", cases[i].in, e.msg, cases[i].why);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, cases[i].why));
  }
}

static void test_format_iso(void) {
  char out[ED_TIME_ISO_MAX];
  ed_time_format_iso(INT64_C(1709210096789012), 6, out);
  CU_ASSERT_STR(out, "2024-02-29T12:34:56.789012Z");
  ed_time_format_iso(INT64_C(1709210096789012), 3, out);
  CU_ASSERT_STR(out, "2024-02-29T12:34:56.789Z");
  ed_time_format_iso(INT64_C(1709210096000000), -1, out);
  CU_ASSERT_STR(out, "2024-02-29T12:34:56Z");
  ed_time_format_iso(-1, 6, out);
  CU_ASSERT_STR(out, "1969-12-31T23:59:59.999999Z");
  ed_time_format_iso(0, 0, out);
  CU_ASSERT_STR(out, "1970-01-01T00:00:00Z");
  char d[11];
  ed_time_format_date(INT64_C(1709210096789012), d);
  CU_ASSERT_STR(d, "2024-02-29");
  ed_time_format_date(-1, d);
  CU_ASSERT_STR(d, "1969-12-31");
}

static void test_iso_round_trip_many(void) {
  /* every 7919th day over ~±300 years, at an odd microsecond of the day */
  for (int64_t day = -110000; day < 110000; day += 7919) {
    int64_t us = day * ED_US_PER_DAY + INT64_C(45296789012);
    char out[ED_TIME_ISO_MAX];
    size_t n = ed_time_format_iso(us, 6, out);
    int64_t back;
    CU_ASSERT_EQUAL(ed_time_parse_iso(out, n, &back, NULL), ED_OK);
    CU_ASSERT_EQUAL(back, us);
  }
}

static void test_parse_duration_table(void) {
  static const struct {
    const char *in;
    int64_t us;
  } cases[] = {
      {"10 seconds", 10 * ED_US_PER_SEC},
      {"5 minutes", 5 * ED_US_PER_MIN},
      {"1 hour", ED_US_PER_HOUR},
      {"500ms", 500000},
      {"10s", 10 * ED_US_PER_SEC},
      {"1h30m", 90 * ED_US_PER_MIN},
      {"1 hour 30 minutes", 90 * ED_US_PER_MIN},
      {"1.5s", 1500000},
      {"interval 10 minutes", 10 * ED_US_PER_MIN},
      {"2 days", 2 * ED_US_PER_DAY},
      {"1 week", 7 * ED_US_PER_DAY},
      {" 3 MINUTES ", 3 * ED_US_PER_MIN},
      {"250us", 250},
      {"0s", 0},
      {"0", 0},
      {" 0 ", 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int64_t us = -1;
    ed_err_t e = {0};
    CU_ASSERT_EQUAL(ed_time_parse_duration(cases[i].in, &us, &e), ED_OK);
    CU_ASSERT_EQUAL(us, cases[i].us);
  }
}

static void test_parse_duration_rejects(void) {
  static const struct {
    const char *in;
    ed_code_t code;
    const char *why;
  } cases[] = {
      {"", ED_E_PARSE, "empty"},
      {"ten seconds", ED_E_PARSE, "expected a number"},
      {"10 fortnights", ED_E_PARSE, "unknown unit 'fortnights'"},
      {"10", ED_E_PARSE, "unknown unit ''"},
      {"0 10", ED_E_PARSE, "unknown unit ''"},
      {"-5 minutes", ED_E_INVALID, "negative"},
      {"99999999999999999999 days", ED_E_TOO_LARGE, "too large"},
      {"999999999999 days", ED_E_TOO_LARGE, "too large"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int64_t us;
    ed_err_t e = {0};
    CU_ASSERT_EQUAL(ed_time_parse_duration(cases[i].in, &us, &e), cases[i].code);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, cases[i].why));
  }
}

static void test_format_duration(void) {
  char out[48];
  ed_time_format_duration(5 * ED_US_PER_MIN, out, sizeof out);
  CU_ASSERT_STR(out, "5 minutes");
  ed_time_format_duration(ED_US_PER_HOUR, out, sizeof out);
  CU_ASSERT_STR(out, "1 hour");
  ed_time_format_duration(1500000, out, sizeof out);
  CU_ASSERT_STR(out, "1500 milliseconds");
  ed_time_format_duration(0, out, sizeof out);
  CU_ASSERT_STR(out, "0 seconds");
}

static void test_floordiv_rounds_down(void) {
  CU_ASSERT_EQUAL(ed_floordiv(-1, 300), -1);
  CU_ASSERT_EQUAL(ed_floordiv(-300, 300), -1);
  CU_ASSERT_EQUAL(ed_floordiv(-301, 300), -2);
  CU_ASSERT_EQUAL(ed_floordiv(299, 300), 0);
}

static const cu_case_t cases[] = {CU_CASE(test_parse_iso_table),
                                  CU_CASE(test_parse_iso_rejects_with_reason),
                                  CU_CASE(test_format_iso),
                                  CU_CASE(test_iso_round_trip_many),
                                  CU_CASE(test_parse_duration_table),
                                  CU_CASE(test_parse_duration_rejects),
                                  CU_CASE(test_format_duration),
                                  CU_CASE(test_floordiv_rounds_down),
                                  CU_END};
ED_SUITE(time, cases)
