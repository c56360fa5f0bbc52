/* time: ISO-8601, durations, clocks. */
#include "common/time.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Howard Hinnant's days_from_civil: exact for the proleptic Gregorian calendar. */
int64_t ed_time_days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = (unsigned)(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

void ed_time_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = (unsigned)(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static bool is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static unsigned days_in_month(int64_t y, unsigned m) {
  static const unsigned dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : dm[m - 1];
}

/* Reads exactly `digits` decimal digits at s[*i]. */
static bool digits_at(const char *s, size_t n, size_t *i, int digits, int *out) {
  int v = 0;
  for (int k = 0; k < digits; k++) {
    if (*i >= n || !isdigit((unsigned char)s[*i]))
      return false;
    v = v * 10 + (s[(*i)++] - '0');
  }
  *out = v;
  return true;
}

#define ISO_FAIL(off, what)                                                                        \
  ed_err_set(err, ED_E_PARSE, "timestamp '%.*s': %s at offset %zu", (int)(n > 64 ? 64 : n), s,     \
             what, (size_t)(off))

/* The digit at s[k] as 0-9, or a value > 9 when s[k] is not a digit. */
static inline unsigned dig(const char *s, size_t k) { return (unsigned)(unsigned char)s[k] - '0'; }

/* The layout nearly every event carries, YYYY-MM-DDTHH:MM:SS[.f{1,9}][Z|+hh:mm],
 * read with fixed offsets and no per-digit calls (decoding reads one per
 * event). False leaves everything else, errors included, to the general
 * parser below; what it accepts, that parser accepts with the same value. */
static bool parse_iso_fast(const char *s, size_t n, int64_t *us) {
  if (n < 19 || s[4] != '-' || s[7] != '-' || s[13] != ':' || s[16] != ':' ||
      (s[10] != 'T' && s[10] != 't' && s[10] != ' '))
    return false;
  /* all fourteen digits checked with one branch (a loop with an early exit
   * costs more than the rest of the parse) */
  unsigned y0 = dig(s, 0), y1 = dig(s, 1), y2 = dig(s, 2), y3 = dig(s, 3), m0 = dig(s, 5),
           m1 = dig(s, 6), d0 = dig(s, 8), d1 = dig(s, 9), h0 = dig(s, 11), h1 = dig(s, 12),
           i0 = dig(s, 14), i1 = dig(s, 15), s0 = dig(s, 17), s1 = dig(s, 18);
  if ((y0 > 9) | (y1 > 9) | (y2 > 9) | (y3 > 9) | (m0 > 9) | (m1 > 9) | (d0 > 9) | (d1 > 9) |
      (h0 > 9) | (h1 > 9) | (i0 > 9) | (i1 > 9) | (s0 > 9) | (s1 > 9))
    return false;
  unsigned Y = y0 * 1000 + y1 * 100 + y2 * 10 + y3, M = m0 * 10 + m1, D = d0 * 10 + d1,
           h = h0 * 10 + h1, mi = i0 * 10 + i1, sec = s0 * 10 + s1;
  if ((M - 1 > 11) | (h > 23) | (mi > 59) | (sec > 59) || D < 1 || D > days_in_month(Y, M))
    return false;
  size_t i = 19;
  int64_t frac = 0;
  if (i < n && s[i] == '.') {
    size_t start = ++i;
    while (i < n && i - start < 9 && dig(s, i) <= 9) {
      if (i - start < 6)
        frac = frac * 10 + dig(s, i);
      i++;
    }
    size_t nd = i - start;
    if (nd == 0 || (i < n && dig(s, i) <= 9))
      return false;
    for (; nd < 6; nd++)
      frac *= 10;
  }
  int64_t offset_s = 0;
  if (i < n) {
    if (s[i] == 'Z' && i + 1 == n) {
      i++;
    } else if ((s[i] == '+' || s[i] == '-') && i + 6 == n && s[i + 3] == ':') {
      unsigned a = dig(s, i + 1), b = dig(s, i + 2), c = dig(s, i + 4), e = dig(s, i + 5);
      if (a > 9 || b > 9 || c > 9 || e > 9 || a * 10 + b > 18 || c * 10 + e > 59)
        return false;
      offset_s = (s[i] == '-' ? -1 : 1) * (int64_t)((a * 10 + b) * 3600 + (c * 10 + e) * 60);
      i = n;
    } else {
      return false;
    }
  }
  int64_t days = ed_time_days_from_civil(Y, M, D);
  *us = (days * 86400 + h * 3600 + mi * 60 + sec - offset_s) * ED_US_PER_SEC + frac;
  return true;
}

ed_code_t ed_time_parse_iso(const char *s, size_t n, int64_t *us, ed_err_t *err) {
  if (parse_iso_fast(s, n, us))
    return ED_OK;
  size_t i = 0;
  int Y, M, D, h = 0, mi = 0, sec = 0;
  int64_t frac = 0;
  if (!digits_at(s, n, &i, 4, &Y))
    return ISO_FAIL(i, "expected a four-digit year");
  if (i >= n || s[i] != '-')
    return ISO_FAIL(i, "expected '-' after the year");
  i++;
  if (!digits_at(s, n, &i, 2, &M) || M < 1 || M > 12)
    return ISO_FAIL(i, "expected a month 01-12");
  if (i >= n || s[i] != '-')
    return ISO_FAIL(i, "expected '-' after the month");
  i++;
  if (!digits_at(s, n, &i, 2, &D) || D < 1 || (unsigned)D > days_in_month(Y, (unsigned)M))
    return ISO_FAIL(i, "expected a day that exists in that month");
  if (i < n && (s[i] == 'T' || s[i] == 't' || s[i] == ' ')) {
    i++;
    if (!digits_at(s, n, &i, 2, &h) || h > 23)
      return ISO_FAIL(i, "expected an hour 00-23");
    if (i >= n || s[i] != ':')
      return ISO_FAIL(i, "expected ':' after the hour");
    i++;
    if (!digits_at(s, n, &i, 2, &mi) || mi > 59)
      return ISO_FAIL(i, "expected minutes 00-59");
    if (i < n && s[i] == ':') {
      i++;
      if (!digits_at(s, n, &i, 2, &sec) || sec > 59)
        return ISO_FAIL(i, "expected seconds 00-59");
      if (i < n && (s[i] == '.' || s[i] == ',')) {
        i++;
        int nd = 0;
        while (i < n && isdigit((unsigned char)s[i])) {
          if (nd < 6)
            frac = frac * 10 + (s[i] - '0');
          nd++;
          i++;
        }
        if (nd == 0 || nd > 9)
          return ISO_FAIL(i, "expected 1 to 9 fraction digits");
        for (; nd < 6; nd++)
          frac *= 10;
      }
    }
  }
  int64_t offset_s = 0;
  if (i < n) {
    if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == n) {
      i++;
    } else if (s[i] == '+' || s[i] == '-') {
      int sign = s[i] == '-' ? -1 : 1, oh, om = 0;
      i++;
      if (!digits_at(s, n, &i, 2, &oh) || oh > 18)
        return ISO_FAIL(i, "expected a zone offset hour 00-18");
      if (i < n && s[i] == ':')
        i++;
      if (i < n && !digits_at(s, n, &i, 2, &om))
        return ISO_FAIL(i, "expected zone offset minutes");
      if (om > 59)
        return ISO_FAIL(i, "expected zone offset minutes 00-59");
      offset_s = sign * (oh * 3600 + om * 60);
    }
    if (i != n)
      return ISO_FAIL(i, "expected 'Z', an offset like +01:00, or the end");
  }
  int64_t days = ed_time_days_from_civil(Y, (unsigned)M, (unsigned)D);
  int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - offset_s;
  *us = secs * ED_US_PER_SEC + frac;
  return ED_OK;
}

size_t ed_time_format_iso(int64_t us, int frac_digits, char out[ED_TIME_ISO_MAX]) {
  int64_t secs = ed_floordiv(us, ED_US_PER_SEC);
  int64_t frac = us - secs * ED_US_PER_SEC;
  int64_t days = ed_floordiv(secs, 86400);
  int64_t sod = secs - days * 86400;
  int64_t y;
  unsigned m, d;
  ed_time_civil_from_days(days, &y, &m, &d);
  int len = snprintf(out, ED_TIME_ISO_MAX, "%04lld-%02u-%02uT%02d:%02d:%02d", (long long)y, m, d,
                     (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60));
  if (frac_digits < 0)
    frac_digits = frac ? 6 : 0;
  if (frac_digits == 3)
    len += snprintf(out + len, (size_t)(ED_TIME_ISO_MAX - len), ".%03d", (int)(frac / 1000));
  else if (frac_digits == 6)
    len += snprintf(out + len, (size_t)(ED_TIME_ISO_MAX - len), ".%06d", (int)frac);
  out[len++] = 'Z';
  out[len] = '\0';
  return (size_t)len;
}

size_t ed_time_format_date(int64_t us, char out[11]) {
  int64_t y;
  unsigned m, d;
  ed_time_civil_from_days(ed_floordiv(us, ED_US_PER_DAY), &y, &m, &d);
  return (size_t)snprintf(out, 11, "%04lld-%02u-%02u", (long long)y % 10000, m, d);
}

static const struct {
  const char *name;
  int64_t us;
} units[] = {
    {"us", 1},
    {"microsecond", 1},
    {"microseconds", 1},
    {"ms", 1000},
    {"milli", 1000},
    {"millis", 1000},
    {"millisecond", 1000},
    {"milliseconds", 1000},
    {"s", ED_US_PER_SEC},
    {"sec", ED_US_PER_SEC},
    {"secs", ED_US_PER_SEC},
    {"second", ED_US_PER_SEC},
    {"seconds", ED_US_PER_SEC},
    {"m", ED_US_PER_MIN},
    {"min", ED_US_PER_MIN},
    {"mins", ED_US_PER_MIN},
    {"minute", ED_US_PER_MIN},
    {"minutes", ED_US_PER_MIN},
    {"h", ED_US_PER_HOUR},
    {"hr", ED_US_PER_HOUR},
    {"hrs", ED_US_PER_HOUR},
    {"hour", ED_US_PER_HOUR},
    {"hours", ED_US_PER_HOUR},
    {"d", ED_US_PER_DAY},
    {"day", ED_US_PER_DAY},
    {"days", ED_US_PER_DAY},
    {"w", 7 * ED_US_PER_DAY},
    {"week", 7 * ED_US_PER_DAY},
    {"weeks", 7 * ED_US_PER_DAY},
};

ed_code_t ed_time_parse_duration(const char *s, int64_t *us, ed_err_t *err) {
  const char *p = s;
  int64_t total = 0;
  int parts = 0;
  while (isspace((unsigned char)*p))
    p++;
  if (strncasecmp(p, "interval", 8) == 0 && isspace((unsigned char)p[8]))
    p += 9;
  for (;;) {
    while (isspace((unsigned char)*p))
      p++;
    if (!*p)
      break;
    if (*p == '-')
      return ed_err_set(err, ED_E_INVALID, "duration '%s': negative durations are not allowed", s);
    if (!isdigit((unsigned char)*p) && *p != '.')
      return ed_err_set(err, ED_E_PARSE,
                        "duration '%s': expected a number at offset %zu (like '10 seconds', "
                        "'5 minutes', '500ms')",
                        s, (size_t)(p - s));
    int64_t whole = 0, frac_num = 0, frac_den = 1;
    int nd = 0;
    while (isdigit((unsigned char)*p)) {
      if (whole > INT64_MAX / 10 - 10)
        return ed_err_set(err, ED_E_TOO_LARGE, "duration '%s': number too large", s);
      whole = whole * 10 + (*p++ - '0');
      nd++;
    }
    if (*p == '.') {
      p++;
      while (isdigit((unsigned char)*p)) {
        if (frac_den < INT64_C(1000000000)) {
          frac_num = frac_num * 10 + (*p - '0');
          frac_den *= 10;
        }
        p++;
        nd++;
      }
    }
    if (nd == 0)
      return ed_err_set(err, ED_E_PARSE, "duration '%s': expected digits at offset %zu", s,
                        (size_t)(p - s));
    while (isspace((unsigned char)*p))
      p++;
    const char *u = p;
    while (isalpha((unsigned char)*p))
      p++;
    size_t ulen = (size_t)(p - u);
    int64_t mult = 0;
    for (size_t k = 0; k < sizeof units / sizeof units[0]; k++)
      if (strlen(units[k].name) == ulen && strncasecmp(units[k].name, u, ulen) == 0)
        mult = units[k].us;
    if (!mult && ulen == 0 && whole == 0 && frac_num == 0 && parts == 0) {
      /* a bare 0 means the same in every unit ("--idle-exit 0": never) */
      while (isspace((unsigned char)*p))
        p++;
      if (!*p) {
        *us = 0;
        return ED_OK;
      }
    }
    if (!mult)
      return ed_err_set(err, ED_E_PARSE,
                        "duration '%s': unknown unit '%.*s' at offset %zu, expected one of ms, s, "
                        "seconds, m, minutes, h, hours, d, days, w, weeks",
                        s, (int)ulen, u, (size_t)(u - s));
    if (whole > INT64_MAX / mult)
      return ed_err_set(err, ED_E_TOO_LARGE, "duration '%s': too large", s);
    int64_t v = whole * mult + (frac_num * mult) / frac_den;
    if (v > INT64_MAX - total)
      return ed_err_set(err, ED_E_TOO_LARGE, "duration '%s': too large", s);
    total += v;
    parts++;
  }
  if (!parts)
    return ed_err_set(err, ED_E_PARSE, "duration '%s': empty, expected like '10 seconds'", s);
  *us = total;
  return ED_OK;
}

size_t ed_time_format_duration(int64_t us, char *out, size_t n) {
  static const struct {
    int64_t us;
    const char *one, *many;
  } f[] = {{ED_US_PER_DAY, "day", "days"},        {ED_US_PER_HOUR, "hour", "hours"},
           {ED_US_PER_MIN, "minute", "minutes"},  {ED_US_PER_SEC, "second", "seconds"},
           {1000, "millisecond", "milliseconds"}, {1, "microsecond", "microseconds"}};
  for (size_t k = 0; k < sizeof f / sizeof f[0]; k++)
    if (us != 0 && us % f[k].us == 0) {
      long long q = (long long)(us / f[k].us);
      return (size_t)snprintf(out, n, "%lld %s", q, q == 1 ? f[k].one : f[k].many);
    }
  return (size_t)snprintf(out, n, "0 seconds");
}

int64_t ed_time_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * ED_US_PER_SEC + ts.tv_nsec / 1000;
}

int64_t ed_time_mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * ED_US_PER_SEC + ts.tv_nsec / 1000;
}

static int64_t cpu_us(clockid_t c) {
  struct timespec ts;
  if (clock_gettime(c, &ts))
    return 0;
  return (int64_t)ts.tv_sec * ED_US_PER_SEC + ts.tv_nsec / 1000;
}

int64_t ed_time_thread_cpu_us(void) { return cpu_us(CLOCK_THREAD_CPUTIME_ID); }
int64_t ed_time_process_cpu_us(void) { return cpu_us(CLOCK_PROCESS_CPUTIME_ID); }
