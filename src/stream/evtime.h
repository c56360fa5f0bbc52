/* evtime: event time per partition, for the operators with a watermark
 * (window.c, dedup.c). Owns, per partition named by id: the largest event
 * time seen, whether it is idle, and the rows dropped as late (in the open
 * batch and in all); combines them into the operator's watermark (Flink's
 * per-split watermarks: the minimum over the partitions not idle) and saves
 * and restores them by partition id. Never decides what is idle (the caller
 * does) nor reads rows. Pipeline thread only, embedded in its operator. */
#ifndef ED_STREAM_EVTIME_H
#define ED_STREAM_EVTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

#define ET_PARTS_MAX 4096u

typedef struct et_parts {
  size_t n;
  char **id;
  int64_t *max;     /* largest event time seen (INT64_MIN: none) */
  uint8_t *idle;    /* left out of the watermark's minimum */
  uint64_t *drop_b; /* dropped as late in the open batch */
  uint64_t *drop_t; /* dropped as late since creation (or as restored) */
} et_parts_t;

/* Replaces e's partitions with ids (copied; NULL counts as ""), each without
 * an event time. what ("window", "dedup") names the operator in err;
 * ED_E_INVALID for none or more than ET_PARTS_MAX. On error e is unchanged. */
ed_code_t et_parts_set(et_parts_t *e, const char *const *ids, size_t n, const char *what,
                       ed_err_t *err);
void et_parts_fini(et_parts_t *e);

/* A partition's watermark: max_ts floored to milliseconds (Spark keeps event
 * times in ms, EventTimeStats) - delay; INT64_MIN for none or underflow. */
int64_t et_wm_of(int64_t max_ts, int64_t delay);
/* The minimum over the partitions not idle of their watermarks (all of them
 * when every one is idle); INT64_MIN while one counted has no event time. */
int64_t et_parts_watermark(const et_parts_t *e, int64_t delay);
/* Batch bounds: the open batch's drop counts zeroed / added to the totals. */
void et_parts_begin(et_parts_t *e);
void et_parts_end(et_parts_t *e);

/* Appends u64 count, then per partition u64 id length, id, i64 largest event
 * time, u64 rows dropped in all. */
ed_code_t et_parts_save(const et_parts_t *e, ed_buf_t *out);
/* Reads what et_parts_save wrote at *p (advanced) into max and drop, indexed
 * like e's partitions (caller's arrays, e->n each, left as they are for the
 * partitions the bytes do not name); partitions e does not have are skipped.
 * ED_E_CORRUPT names what in err. */
ed_code_t et_parts_load(const et_parts_t *e, const uint8_t **p, const uint8_t *end,
                        const char *what, int64_t *max, uint64_t *drop, ed_err_t *err);

#endif
