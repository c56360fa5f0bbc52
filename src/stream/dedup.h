/* dedup: drop duplicate events by key columns within the watermark, as
 * Spark's dropDuplicatesWithinWatermark(keys) (3.5) or dropDuplicates(keys)
 * with the event-time column among the keys.
 * Owns: the set of keys seen, each with the event time after which it may be
 * forgotten, and the watermark. Reads column batches; returns the row indices
 * to keep, never copies rows. Pipeline thread only. */
#ifndef ED_STREAM_DEDUP_H
#define ED_STREAM_DEDUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "stream/batch.h"

typedef enum {
  /* dropDuplicatesWithinWatermark: a key is remembered until the watermark
   * passes its first event time + delay; keys need not include the time. */
  DD_WITHIN_WATERMARK,
  /* dropDuplicates(keys): the time column must be one of the keys; a key is
   * forgotten once the watermark reaches its event time. */
  DD_KEYS,
} dd_mode_t;

typedef struct dd_spec {
  const char *time_col;  /* TIMESTAMP column, or by position: */
  int time_index;        /* >= 0 selects by position */
  int64_t delay_us;      /* watermark delay, >= 0 */
  int64_t max_future_us; /* 0: no bound */
  const char *const *keys;
  const int *key_index; /* non-NULL: keys by position */
  size_t nkeys;         /* >= 1 */
  dd_mode_t mode;
} dd_spec_t;

typedef struct dd dd_t;

/* Validates against the input schema (borrowed until dd_free). ED_E_CONFIG
 * names the field. Caller frees with dd_free. */
ed_code_t dd_new(const dd_spec_t *spec, const sm_type_t *input, dd_t **out, ed_err_t *err);
void dd_free(dd_t *d);

/* Writes into keep (room for nsel entries, or b->nrows when sel is NULL) the
 * rows of b to pass on, in order: not late (event time > the watermark and >
 * its partition's watermark just before it), not null-timed, not beyond the
 * future bound, and not seen before. */
ed_code_t dd_update(dd_t *d, const sm_batch_t *b, const uint32_t *sel, size_t nsel, uint32_t *keep,
                    size_t *nkeep, ed_err_t *err);
/* Mask form (what sm_expr_filter produces and sm_batch_append_selected
 * takes): rows with in_mask[i] != 0 (in_mask NULL: all) are considered;
 * keep_mask (b->nrows entries, caller's) gets 1 for the rows to pass on. */
ed_code_t dd_update_mask(dd_t *d, const sm_batch_t *b, const uint8_t *in_mask, uint8_t *keep_mask,
                         size_t *nkeep, ed_err_t *err);
/* As dd_update_mask for rows of one partition (index into the list
 * dd_set_partitions gave; 0 when never called); every row of b with an
 * event time advances the partition's event time, considered or not. */
ed_code_t dd_update_part(dd_t *d, const sm_batch_t *b, const uint8_t *in_mask, size_t part,
                         uint8_t *keep_mask, size_t *nkeep, ed_err_t *err);
/* The partitions, their idleness and drop counts: as win_set_partitions,
 * win_set_idle and win_part_dropped (window.h); the same rule. */
ed_code_t dd_set_partitions(dd_t *d, const char *const *ids, size_t n, ed_err_t *err);
void dd_part_dropped(const dd_t *d, size_t part, uint64_t *batch, uint64_t *total);
/* Ends the micro-batch: advances the watermark (the minimum over the
 * partitions not idle of their largest event time - delay), forgets expired
 * keys. */
void dd_end_batch(dd_t *d);

typedef struct dd_stats {
  uint64_t num_rows_total; /* keys remembered */
  uint64_t memory_used_bytes;
  uint64_t input_rows, kept, duplicates, num_rows_dropped_by_watermark, null_event_time,
      future_event_time, num_rows_removed; /* last batch */
  int64_t watermark_us;                    /* INT64_MIN before the first */
} dd_stats_t;
void dd_get_stats(const dd_t *d, dd_stats_t *out);

ed_code_t dd_state_save(const dd_t *d, ed_buf_t *out, ed_err_t *err);
ed_code_t dd_state_load(dd_t *d, const void *bytes, size_t len, ed_err_t *err);

#endif
