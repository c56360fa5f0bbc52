/* window: event-time windowed aggregation with a watermark, as Spark's
 * groupBy(window(ts, size, slide, start), keys...).agg(...) over a stream
 * with withWatermark(ts, delay).
 * Owns: the open windows (one state row per window and key), the watermark,
 * the output schema, and the per-batch statistics Spark reports. Consumes
 * column batches (batch.h) and emits one: window_start, window_end (or one
 * `window` STRUCT<start,end>), the keys, then the aggregates by alias.
 * Never reads events, files or clocks other than the one it is given; runs in
 * the pipeline thread only.
 *
 * A micro-batch is: win_update (any number of times), win_end_batch, win_emit.
 * Semantics (Spark 3.x, cited in window.c, with per-partition event time
 * after Flink): windows aligned to the epoch plus the start offset; each
 * partition's watermark is its largest event time so far - delay; a row's
 * window is dropped as late when its end <= the larger of its partition's
 * watermark just before the row and the watermark in effect; the watermark
 * is max(previous, min over the partitions not idle of their watermarks),
 * computed at the end of each micro-batch and used from the next one on;
 * append emits a window once, when the watermark reaches its end; update emits
 * windows changed by this batch; complete emits every window every batch and
 * never drops or evicts (Spark keeps all state in complete mode). */
#ifndef ED_STREAM_WINDOW_H
#define ED_STREAM_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "stream/agg.h"
#include "stream/batch.h"

typedef enum { WIN_APPEND, WIN_UPDATE, WIN_COMPLETE } win_mode_t;
const char *win_mode_name(win_mode_t m);

typedef struct win_spec {
  const char *time_col;    /* event-time column (TIMESTAMP), or... */
  int time_index;          /* ...by position when >= 0 (-1: by name) */
  int64_t size_us;         /* window duration, > 0 */
  int64_t slide_us;        /* 0: tumbling (= size); else > 0 and size % slide == 0 */
  int64_t start_us;        /* start offset, |start| < slide (Spark's rule) */
  bool watermark;          /* withWatermark given (append mode needs it) */
  int64_t delay_us;        /* watermark delay, >= 0 */
  int64_t max_future_us;   /* rows later than now + this are refused; 0: no bound */
  const char *const *keys; /* group key column names (nkeys), or... */
  const int *key_index;    /* ...by position when non-NULL */
  size_t nkeys;
  const agg_spec_t *aggs; /* borrowed during win_new only */
  size_t naggs;
  win_mode_t mode;
  bool window_struct; /* emit `window` STRUCT<start,end> instead of two columns */
} win_spec_t;

typedef struct win win_t;

/* Validates spec against the input schema (a STRUCT; borrowed until win_free):
 * durations > 0, size a multiple of slide, |start| < slide, the time column a
 * TIMESTAMP, key kinds flat, each aggregate's column type, append mode with a
 * watermark. ED_E_CONFIG with a message naming the field. Caller frees with
 * win_free. */
ed_code_t win_new(const win_spec_t *spec, const sm_type_t *input, win_t **out, ed_err_t *err);
void win_free(win_t *w);

/* The schema win_emit fills; borrowed, valid until win_free. */
const sm_type_t *win_output_schema(const win_t *w);

/* The reference instant for max_future_us (the agent passes each batch's
 * trigger time); when never set, the wall clock at each win_update. */
void win_set_now(win_t *w, int64_t now_us);

/* Folds rows of b (sel: row indices, nsel of them; NULL: all rows) into the
 * state. b borrowed for the call; its schema must be the input schema. Null
 * event times and rows beyond the future bound are skipped and counted. */
ed_code_t win_update(win_t *w, const sm_batch_t *b, const uint32_t *sel, size_t nsel,
                     ed_err_t *err);
/* As win_update with a row mask (mask[i] != 0 selects row i; NULL: all), the
 * form sm_expr_filter produces. */
ed_code_t win_update_mask(win_t *w, const sm_batch_t *b, const uint8_t *mask, ed_err_t *err);
/* As win_update_mask for rows of one partition (index into the list
 * win_set_partitions gave; 0 when it was never called). Every row of b with a
 * usable event time advances the partition's event time, selected or not. */
ed_code_t win_update_part(win_t *w, const sm_batch_t *b, const uint8_t *mask, size_t part,
                          ed_err_t *err);
/* Names the partitions rows come from (ids copied), in the order win_update_part
 * indexes them; resets their event times and counts. Call before
 * win_state_load. ED_E_INVALID for none or more than 4096. Without it the
 * window has one unnamed partition. */
ed_code_t win_set_partitions(win_t *w, const char *const *ids, size_t n, ed_err_t *err);
size_t win_partitions(const win_t *w);
/* An idle partition is left out of the watermark's minimum (unless all are);
 * the caller decides when (the agent: caught up and quiet for idle_timeout). */
void win_set_idle(win_t *w, size_t part, bool idle);
/* The partition's largest event time so far; INT64_MIN when none. */
int64_t win_part_time(const win_t *w, size_t part);
/* Rows of the partition dropped as late in the last batch, and since creation
 * (or as restored from the state). */
void win_part_dropped(const win_t *w, size_t part, uint64_t *batch, uint64_t *total);
/* Ends the micro-batch: advances the watermark from the partitions' event times. */
void win_end_batch(win_t *w);
/* Resets out (sm_batch_new(win_output_schema(w))) and fills it with the rows the output mode
 * emits for the batch just ended; then evicts windows the watermark closed
 * (append, update). Call once after win_end_batch. */
ed_code_t win_emit(win_t *w, sm_batch_t *out, ed_err_t *err);

typedef struct win_stats {
  /* state after the last win_emit (Spark's stateOperators[]) */
  uint64_t num_rows_total;   /* windows x keys held */
  uint64_t num_rows_updated; /* state rows changed by the last batch */
  uint64_t num_rows_removed; /* evicted by the watermark in the last batch */
  uint64_t memory_used_bytes;
  /* input of the last batch */
  uint64_t input_rows;
  uint64_t num_rows_dropped_by_watermark; /* rows all of whose windows had closed */
  uint64_t null_event_time;               /* rows skipped: event time null */
  uint64_t future_event_time;             /* rows skipped: beyond now + max_future_us */
  int64_t event_time_min, event_time_max, event_time_avg; /* INT64_MIN when none */
  int64_t watermark_us;                                   /* INT64_MIN before the first */
  /* since creation (or restore) */
  uint64_t total_input_rows, total_dropped_by_watermark, total_emitted;
} win_stats_t;
void win_get_stats(const win_t *w, win_stats_t *out);

int64_t win_watermark(const win_t *w); /* INT64_MIN when none yet */

/* Versioned binary state (watermark, per-partition event times and drop counts
 * by partition id, open windows, aggregate states), checked against the spec
 * when loaded; version 1 (no partitions) is still read. win_state_load replaces w's state; on error
 * w is left empty. ED_E_CORRUPT for truncated or inconsistent bytes, ED_E_UNSUPPORTED for another
 * version, ED_E_CONFIG for another query. */
ed_code_t win_state_save(const win_t *w, ed_buf_t *out, ed_err_t *err);
ed_code_t win_state_load(win_t *w, const void *bytes, size_t len, ed_err_t *err);

/* Spark's alignment: the latest window start <= ts, i.e.
 * ts - ((ts - start) mod slide), mod rounding towards -inf. */
int64_t win_last_start(int64_t ts, int64_t slide_us, int64_t start_us);

#endif
