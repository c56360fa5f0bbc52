/* plog: ehemu's append-only log of one partition (--data-dir), so events keep
 * their sequence numbers, offsets and enqueued times across a restart.
 * Owns: the open file and its format (below). Never decodes the events: a
 * record's bytes are the message exactly as delivered. Called only by hub.c,
 * from the emulator's one thread.
 *
 * Format (all integers little-endian):
 *   header, 32 bytes: "EHEMULOG" | u32 version (1) | u32 crc32c of the next 16
 *     bytes | i64 next sequence number | i64 next offset
 *     (what the first record carries, or what the partition continues
 *     with when the file holds no record: kept when retention empties it)
 *   records, each: u32 length of bytes | u32 crc32c of the next 24+length bytes
 *     | i64 sequence number | i64 offset | i64 enqueued time (ms since the
 *     epoch) | bytes
 * A record must carry the next sequence number (previous + 1) and a larger
 * offset. Loading stops at the first record that is short, fails its checksum
 * or breaks the numbering (a torn write after kill -9), and the file is
 * truncated there. Appends are written with write(2) before the sender gets
 * its Accepted outcome, without fsync: a killed process loses nothing, a lost
 * machine may. */
#ifndef ED_EMU_PLOG_H
#define ED_EMU_PLOG_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef struct emu_rec {
  int64_t seq, offset, enq_ms;
  const uint8_t *bytes; /* borrowed */
  uint32_t len;
} emu_rec_t;

typedef struct emu_plog emu_plog_t;

/* Called for each intact record in order while loading; bytes are valid only
 * during the call. A non-OK return stops loading with that code. */
typedef ed_code_t (*emu_plog_load_fn)(void *ctx, const emu_rec_t *rec);

/* Opens path (creating it with the given starting numbers when absent),
 * replays its records through fn, truncates a torn tail, and returns the
 * numbers the next append must carry. *out freed with emu_plog_free. */
ed_code_t emu_plog_open(const char *path, emu_plog_load_fn fn, void *ctx, int64_t *next_seq,
                        int64_t *next_off, emu_plog_t **out, ed_err_t *err);
/* Appends n records in one write; on failure none of them stays in the file.
 * Borrows recs. */
ed_code_t emu_plog_append(emu_plog_t *pl, const emu_rec_t *recs, size_t n, ed_err_t *err);
/* Rewrites the file with only recs (the retained events) and the given next
 * numbers, through a temporary file and rename(2). Borrows recs. */
ed_code_t emu_plog_compact(emu_plog_t *pl, const emu_rec_t *recs, size_t n, int64_t next_seq,
                           int64_t next_off, ed_err_t *err);
/* Bytes in the file (header included). */
int64_t emu_plog_size(const emu_plog_t *pl);
void emu_plog_free(emu_plog_t *pl);

/* CRC-32C (Castagnoli) of n bytes, continuing from crc (0 to start). */
uint32_t emu_crc32c(uint32_t crc, const void *p, size_t n);

#endif
