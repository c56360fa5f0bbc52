/* plog: one partition's append-only log (format in plog.h). */
#include "emu/plog.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"

#define PLOG_MAGIC   "EHEMULOG"
#define PLOG_VERSION 1u
#define PLOG_HDR     32
#define PLOG_RHDR    32
/* A record larger than this is a torn length, not an event: the service's
 * limit is 1 MiB and the stored annotations add little. */
#define PLOG_MAX_REC (4u << 20)

struct emu_plog {
  int fd;
  char *path;
  int64_t size;
};

static uint32_t crc_table[256];
static bool crc_ready;

uint32_t emu_crc32c(uint32_t crc, const void *p, size_t n) {
  if (!crc_ready) {
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++)
        c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
      crc_table[i] = c;
    }
    crc_ready = true;
  }
  const uint8_t *b = p;
  crc = ~crc;
  while (n--)
    crc = crc_table[(crc ^ *b++) & 0xff] ^ (crc >> 8);
  return ~crc;
}

static void put32le(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}
static void put64le(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32le(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64le(const uint8_t *p) {
  return (uint64_t)get32le(p) | (uint64_t)get32le(p + 4) << 32;
}

static void header(uint8_t h[PLOG_HDR], int64_t next_seq, int64_t next_off) {
  memcpy(h, PLOG_MAGIC, 8);
  put32le(h + 8, PLOG_VERSION);
  put64le(h + 16, (uint64_t)next_seq);
  put64le(h + 24, (uint64_t)next_off);
  put32le(h + 12, emu_crc32c(0, h + 16, 16));
}

static ed_code_t encode(ed_buf_t *b, const emu_rec_t *recs, size_t n) {
  for (size_t i = 0; i < n; i++) {
    uint8_t h[PLOG_RHDR];
    put32le(h, recs[i].len);
    put64le(h + 8, (uint64_t)recs[i].seq);
    put64le(h + 16, (uint64_t)recs[i].offset);
    put64le(h + 24, (uint64_t)recs[i].enq_ms);
    uint32_t crc = emu_crc32c(0, h + 8, 24);
    crc = emu_crc32c(crc, recs[i].bytes, recs[i].len);
    put32le(h + 4, crc);
    if (ed_buf_append(b, h, sizeof h) != ED_OK || ed_buf_append(b, recs[i].bytes, recs[i].len))
      return ED_E_NOMEM;
  }
  return ED_OK;
}

static ed_code_t write_all(int fd, const void *p, size_t n, off_t at) {
  const char *c = p;
  while (n) {
    ssize_t w = pwrite(fd, c, n, at);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return ED_E_IO;
    c += w, n -= (size_t)w, at += w;
  }
  return ED_OK;
}

static ed_code_t replay(emu_plog_t *pl, emu_plog_load_fn fn, void *ctx, int64_t *next_seq,
                        int64_t *next_off, ed_err_t *err) {
  int64_t file_size = pl->size;
  int64_t pos = PLOG_HDR;
  uint8_t *buf = NULL;
  size_t cap = 0;
  ed_code_t rc = ED_OK;
  const char *torn = NULL;
  while (pos < file_size) {
    uint8_t h[PLOG_RHDR];
    if (file_size - pos < PLOG_RHDR || pread(pl->fd, h, sizeof h, pos) != (ssize_t)sizeof h) {
      torn = "short record header";
      break;
    }
    uint32_t len = get32le(h);
    if (len > PLOG_MAX_REC || file_size - pos - PLOG_RHDR < (int64_t)len) {
      torn = "short record";
      break;
    }
    if (len > cap) {
      uint8_t *nb = realloc(buf, len);
      if (!nb) {
        rc = ed_err_set(err, ED_E_NOMEM, "%s: out of memory for a record of %" PRIu32 " bytes",
                        pl->path, len);
        break;
      }
      buf = nb, cap = len;
    }
    if (len && pread(pl->fd, buf, len, pos + PLOG_RHDR) != (ssize_t)len) {
      rc = ed_err_set(err, ED_E_IO, "%s: read: %s", pl->path, strerror(errno));
      break;
    }
    uint32_t crc = emu_crc32c(emu_crc32c(0, h + 8, 24), buf, len);
    emu_rec_t r = {(int64_t)get64le(h + 8), (int64_t)get64le(h + 16), (int64_t)get64le(h + 24), buf,
                   len};
    if (crc != get32le(h + 4)) {
      torn = "checksum mismatch";
      break;
    }
    if (r.seq != *next_seq || r.offset < *next_off) {
      torn = "sequence number or offset out of order";
      break;
    }
    rc = fn(ctx, &r);
    if (rc != ED_OK) {
      ed_err_set(err, rc, "%s: record %" PRId64 " could not be loaded", pl->path, r.seq);
      break;
    }
    *next_seq = r.seq + 1;
    *next_off = r.offset + (int64_t)len;
    pos += PLOG_RHDR + (int64_t)len;
  }
  free(buf);
  if (rc == ED_OK && torn) {
    /* a write cut short by kill -9: what follows the last intact record goes */
    ED_LOG_WARN("emu_log_truncated",
                "file=%s at=%" PRId64 " dropped_bytes=%" PRId64 " reason=\"%s\"", pl->path, pos,
                file_size - pos, torn);
    if (ftruncate(pl->fd, pos) != 0)
      return ed_err_set(err, ED_E_IO, "%s: truncate a torn tail: %s", pl->path, strerror(errno));
    pl->size = pos;
  }
  return rc;
}

ed_code_t emu_plog_open(const char *path, emu_plog_load_fn fn, void *ctx, int64_t *next_seq,
                        int64_t *next_off, emu_plog_t **out, ed_err_t *err) {
  emu_plog_t *pl = calloc(1, sizeof *pl);
  if (!pl || !(pl->path = strdup(path))) {
    free(pl);
    return ed_err_set(err, ED_E_NOMEM, "%s: out of memory", path);
  }
  pl->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  struct stat st;
  if (pl->fd < 0 || fstat(pl->fd, &st) != 0) {
    ed_err_set(err, ED_E_IO, "--data-dir: %s: %s", path, strerror(errno));
    emu_plog_free(pl);
    return ED_E_IO;
  }
  pl->size = st.st_size;
  ed_code_t rc = ED_OK;
  if (pl->size < PLOG_HDR) {
    /* new, or its very first write was cut short: nothing was ever accepted */
    uint8_t h[PLOG_HDR];
    header(h, *next_seq, *next_off);
    if (ftruncate(pl->fd, 0) != 0 || write_all(pl->fd, h, sizeof h, 0) != ED_OK)
      rc = ed_err_set(err, ED_E_IO, "--data-dir: %s: write: %s", path, strerror(errno));
    pl->size = PLOG_HDR;
  } else {
    uint8_t h[PLOG_HDR];
    if (pread(pl->fd, h, sizeof h, 0) != (ssize_t)sizeof h)
      rc = ed_err_set(err, ED_E_IO, "--data-dir: %s: read: %s", path, strerror(errno));
    else if (memcmp(h, PLOG_MAGIC, 8) != 0 || get32le(h + 8) != PLOG_VERSION ||
             get32le(h + 12) != emu_crc32c(0, h + 16, 16))
      rc = ed_err_set(err, ED_E_PARSE,
                      "--data-dir: %s: expected an ehemu partition log (version %u), got a bad "
                      "header",
                      path, PLOG_VERSION);
    else {
      *next_seq = (int64_t)get64le(h + 16);
      *next_off = (int64_t)get64le(h + 24);
      rc = replay(pl, fn, ctx, next_seq, next_off, err);
    }
  }
  if (rc != ED_OK) {
    emu_plog_free(pl);
    return rc;
  }
  *out = pl;
  return ED_OK;
}

ed_code_t emu_plog_append(emu_plog_t *pl, const emu_rec_t *recs, size_t n, ed_err_t *err) {
  ed_buf_t b = ED_BUF_INIT;
  if (encode(&b, recs, n) != ED_OK) {
    ed_buf_fini(&b);
    return ed_err_set(err, ED_E_NOMEM, "%s: out of memory", pl->path);
  }
  ed_code_t rc = write_all(pl->fd, b.data, b.len, pl->size);
  if (rc != ED_OK) {
    ed_err_set(err, rc, "%s: write: %s", pl->path, strerror(errno));
    if (ftruncate(pl->fd, pl->size) != 0) {
      /* the torn tail is cut on the next load */
    }
  } else
    pl->size += (int64_t)b.len;
  ed_buf_fini(&b);
  return rc;
}

ed_code_t emu_plog_compact(emu_plog_t *pl, const emu_rec_t *recs, size_t n, int64_t next_seq,
                           int64_t next_off, ed_err_t *err) {
  ed_buf_t b = ED_BUF_INIT, tmp = ED_BUF_INIT;
  uint8_t h[PLOG_HDR];
  header(h, n ? recs[0].seq : next_seq, n ? recs[0].offset : next_off);
  ed_buf_printf(&tmp, "%s.tmp", pl->path);
  if (!tmp.data || ed_buf_append(&b, h, sizeof h) != ED_OK || encode(&b, recs, n) != ED_OK) {
    ed_buf_fini(&b);
    ed_buf_fini(&tmp);
    return ed_err_set(err, ED_E_NOMEM, "%s: out of memory", pl->path);
  }
  int fd = open(tmp.data, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ed_code_t rc = ED_OK;
  if (fd < 0 || write_all(fd, b.data, b.len, 0) != ED_OK || fsync(fd) != 0 ||
      rename(tmp.data, pl->path) != 0) {
    rc = ed_err_set(err, ED_E_IO, "%s: compact: %s", pl->path, strerror(errno));
    if (fd >= 0)
      close(fd);
    unlink(tmp.data);
  } else {
    close(pl->fd);
    pl->fd = fd;
    pl->size = (int64_t)b.len;
  }
  ed_buf_fini(&b);
  ed_buf_fini(&tmp);
  return rc;
}

int64_t emu_plog_size(const emu_plog_t *pl) { return pl->size; }

void emu_plog_free(emu_plog_t *pl) {
  if (!pl)
    return;
  if (pl->fd >= 0)
    close(pl->fd);
  free(pl->path);
  free(pl);
}
