/* time: instants as int64 microseconds since the Unix epoch (UTC), ISO-8601 text
 * (parse and format, to the microsecond), durations as people write them
 * ("10 seconds", "5 minutes", "1 hour", "500ms", "10s", "1h30m"), and clocks.
 * Pure functions; no allocation; never consults the local time zone. */
#ifndef ED_COMMON_TIME_H
#define ED_COMMON_TIME_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define ED_US_PER_SEC   INT64_C(1000000)
#define ED_US_PER_MIN   (60 * ED_US_PER_SEC)
#define ED_US_PER_HOUR  (60 * ED_US_PER_MIN)
#define ED_US_PER_DAY   (24 * ED_US_PER_HOUR)
#define ED_TIME_ISO_MAX 40

/* Parses YYYY-MM-DD, optionally followed by 'T' or ' ' and HH:MM[:SS[.fraction]],
 * then an optional zone: 'Z', +HH:MM, +HHMM or +HH (no zone means UTC, which is
 * what Python's datetime.utcnow().isoformat() produces and what Spark assumes
 * with spark.sql.session.timeZone=UTC). Fractions past microseconds are
 * truncated. ED_E_PARSE names the offending offset and what was expected. */
ed_code_t ed_time_parse_iso(const char *s, size_t n, int64_t *us, ed_err_t *err);
/* YYYY-MM-DDTHH:MM:SS[.ffffff]Z into out (ED_TIME_ISO_MAX bytes). frac_digits:
 * 0, 3 or 6 always writes that many; -1 writes 6 only when not whole seconds. */
size_t ed_time_format_iso(int64_t us, int frac_digits, char out[ED_TIME_ISO_MAX]);
/* YYYY-MM-DD of the UTC day containing us (out: 11 bytes). */
size_t ed_time_format_date(int64_t us, char out[11]);
/* Days since 1970-01-01 <-> civil date (proleptic Gregorian). */
int64_t ed_time_days_from_civil(int64_t y, unsigned m, unsigned d);
void ed_time_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d);
/* floor(a / b) for b > 0: window arithmetic before 1970 must round down. */
static inline int64_t ed_floordiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

/* Parses a duration ("10 seconds", "5 minutes", "1 hour 30 minutes", "500ms",
 * "1.5s", "interval 10 minutes"). Negative values are refused; zero is allowed
 * (callers that need > 0 say so). */
ed_code_t ed_time_parse_duration(const char *s, int64_t *us, ed_err_t *err);
/* "5 minutes", "1 hour", "1500 milliseconds": the largest unit that divides us. */
size_t ed_time_format_duration(int64_t us, char *out, size_t n);

int64_t ed_time_now_us(void);         /* wall clock */
int64_t ed_time_mono_us(void);        /* monotonic, for intervals and deadlines */
int64_t ed_time_thread_cpu_us(void);  /* CPU time of the calling thread */
int64_t ed_time_process_cpu_us(void); /* CPU time of the whole process (every thread) */

#endif
