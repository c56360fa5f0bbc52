/* hub: hubs and their partitions: where a partition key or publisher lands
 * (the .NET PartitionResolver hash), events stored (in memory, and in the
 * partition's log with --data-dir before the sender hears Accepted),
 * retention by age and size, the data directory and its lock. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "emu/emu_int.h"

#define ROT(x, k) (((x) << (k)) | ((x) >> (32 - (k))))

static void hashlittle2(const uint8_t *k, size_t length, uint32_t *pc, uint32_t *pb) {
  uint32_t a, b, c;
  a = b = c = 0xdeadbeef + (uint32_t)length + *pc;
  c += *pb;
  while (length > 12) {
    a += k[0] + ((uint32_t)k[1] << 8) + ((uint32_t)k[2] << 16) + ((uint32_t)k[3] << 24);
    b += k[4] + ((uint32_t)k[5] << 8) + ((uint32_t)k[6] << 16) + ((uint32_t)k[7] << 24);
    c += k[8] + ((uint32_t)k[9] << 8) + ((uint32_t)k[10] << 16) + ((uint32_t)k[11] << 24);
    a -= c, a ^= ROT(c, 4), c += b;
    b -= a, b ^= ROT(a, 6), a += c;
    c -= b, c ^= ROT(b, 8), b += a;
    a -= c, a ^= ROT(c, 16), c += b;
    b -= a, b ^= ROT(a, 19), a += c;
    c -= b, c ^= ROT(b, 4), b += a;
    length -= 12, k += 12;
  }
  switch (length) {
  case 12:
    c += (uint32_t)k[11] << 24; /* fall through */
  case 11:
    c += (uint32_t)k[10] << 16; /* fall through */
  case 10:
    c += (uint32_t)k[9] << 8; /* fall through */
  case 9:
    c += k[8]; /* fall through */
  case 8:
    b += (uint32_t)k[7] << 24; /* fall through */
  case 7:
    b += (uint32_t)k[6] << 16; /* fall through */
  case 6:
    b += (uint32_t)k[5] << 8; /* fall through */
  case 5:
    b += k[4]; /* fall through */
  case 4:
    a += (uint32_t)k[3] << 24; /* fall through */
  case 3:
    a += (uint32_t)k[2] << 16; /* fall through */
  case 2:
    a += (uint32_t)k[1] << 8; /* fall through */
  case 1:
    a += k[0];
    break;
  case 0:
    *pc = c, *pb = b;
    return;
  }
  c ^= b, c -= ROT(b, 14);
  a ^= c, a -= ROT(c, 11);
  b ^= a, b -= ROT(a, 25);
  c ^= b, c -= ROT(b, 16);
  a ^= c, a -= ROT(c, 4);
  b ^= a, b -= ROT(a, 14);
  c ^= b, c -= ROT(b, 24);
  *pc = c, *pb = b;
}

int emu_hub_key_partition(const char *key, size_t n, int nparts) {
  uint32_t c = 0, b = 0;
  hashlittle2((const uint8_t *)key, n, &c, &b);
  int16_t h = (int16_t)(uint16_t)(c ^ b);
  int r = h % nparts;
  return r < 0 ? -r : r;
}

/* Rewrites a partition's log once what retention dropped outweighs what it
 * keeps, so the file stays bounded by retention too. */
static void part_compact(emu_part_t *p) {
  size_t live = p->n - p->first;
  int64_t keep = 32 + (int64_t)live * 32 + p->bytes;
  int64_t size = emu_plog_size(p->log);
  if (size - keep < (64 << 10) || size < 2 * keep)
    return;
  emu_rec_t *r = malloc((live ? live : 1) * sizeof *r);
  if (!r)
    return;
  for (size_t i = 0; i < live; i++) {
    const emu_event_t *ev = &p->ev[p->first + i];
    r[i] = (emu_rec_t){ev->seq, ev->offset, ev->enq_ms, ev->bytes, ev->len};
  }
  ed_err_t err;
  if (emu_plog_compact(p->log, r, live, p->next_seq, p->next_off, &err) != ED_OK)
    ED_LOG_WARN("emu_log_compact_failed", "reason=\"%s\"", err.msg);
  free(r);
}

void emu_hub_retain(emu_t *e, emu_part_t *p) {
  int64_t now_ms = ed_time_now_us() / 1000;
  size_t first0 = p->first;
  while (p->first < p->n) {
    emu_event_t *ev = &p->ev[p->first];
    bool old = e->cfg.retention_us > 0 && ev->enq_ms < now_ms - e->cfg.retention_us / 1000;
    bool big = e->cfg.retention_bytes > 0 && p->bytes > e->cfg.retention_bytes;
    if (!old && !big)
      break;
    p->bytes -= ev->len;
    free(ev->bytes);
    ev->bytes = NULL;
    p->first++;
  }
  if (p->log && p->first != first0)
    part_compact(p);
  if (p->first > 1024 && p->first * 2 > p->n) {
    memmove(p->ev, p->ev + p->first, (p->n - p->first) * sizeof *p->ev);
    p->n -= p->first;
    p->first = 0;
  }
}

/* Stores n events (encoded AMQP messages) in one partition, all or none:
 * with --data-dir they are in the log before the sender hears Accepted. */
ed_code_t emu_hub_store(emu_t *e, emu_part_t *p, const emu_span_t *ms, size_t n, const char *pk,
                        size_t pkl, const char *pub) {
  emu_event_t *evs = calloc(n ? n : 1, sizeof *evs);
  emu_rec_t *recs = calloc(n ? n : 1, sizeof *recs);
  ed_code_t rc = evs && recs ? ED_OK : ED_E_NOMEM;
  int64_t seq = p->next_seq, off = p->next_off, enq = ed_time_now_us() / 1000;
  for (size_t i = 0; i < n && rc == ED_OK; i++) {
    evs[i] = (emu_event_t){.seq = seq, .offset = off, .enq_ms = enq};
    seq++;
    rc = emu_event_stamp(ms[i].p, ms[i].n, pk, pkl, pub, &evs[i]);
    off += evs[i].len;
    recs[i] = (emu_rec_t){evs[i].seq, evs[i].offset, evs[i].enq_ms, evs[i].bytes, evs[i].len};
  }
  if (rc == ED_OK && p->n + n > p->cap) {
    size_t nc = p->cap ? p->cap : 1024;
    while (nc < p->n + n)
      nc *= 2;
    emu_event_t *ne = realloc(p->ev, nc * sizeof *ne);
    if (!ne)
      rc = ED_E_NOMEM;
    else
      p->ev = ne, p->cap = nc;
  }
  ed_err_t err;
  if (rc == ED_OK && p->log && emu_plog_append(p->log, recs, n, &err) != ED_OK) {
    ED_LOG_ERR("emu_log_append_failed", "reason=\"%s\"", err.msg);
    rc = ED_E_IO;
  }
  if (rc == ED_OK) {
    memcpy(p->ev + p->n, evs, n * sizeof *evs);
    p->n += n;
    p->next_seq = seq, p->next_off = off;
    for (size_t i = 0; i < n; i++)
      p->bytes += evs[i].len;
  } else
    for (size_t i = 0; evs && i < n; i++)
      free(evs[i].bytes);
  free(evs);
  free(recs);
  if (rc == ED_OK)
    emu_hub_retain(e, p);
  return rc;
}

/* mkdir -p for one path; existing directories are fine. */
static ed_code_t make_dirs(const char *path, ed_err_t *err) {
  char buf[4096];
  if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
    return ed_err_set(err, ED_E_CONFIG, "--data-dir '%s': path too long", path);
  for (char *s = buf + 1;; s++) {
    if (*s == '/' || !*s) {
      char c = *s;
      *s = 0;
      if (mkdir(buf, 0700) != 0 && errno != EEXIST)
        return ed_err_set(err, ED_E_IO, "--data-dir: mkdir %s: %s", buf, strerror(errno));
      *s = c;
      if (!c)
        break;
    }
  }
  return ED_OK;
}

/* Loading callback of emu_plog_open: the record becomes a retained event. */
static ed_code_t part_load(void *ctx, const emu_rec_t *r) {
  emu_part_t *p = ctx;
  if (p->n == p->cap) {
    size_t nc = p->cap ? p->cap * 2 : 1024;
    emu_event_t *ne = realloc(p->ev, nc * sizeof *ne);
    if (!ne)
      return ED_E_NOMEM;
    p->ev = ne, p->cap = nc;
  }
  emu_event_t *ev = &p->ev[p->n];
  *ev = (emu_event_t){malloc(r->len ? r->len : 1), r->len, r->seq, r->offset, r->enq_ms};
  if (!ev->bytes)
    return ED_E_NOMEM;
  memcpy(ev->bytes, r->bytes, r->len);
  p->n++;
  p->bytes += r->len;
  return ED_OK;
}

/* A hub's directory under --data-dir: its name with anything but
 * [A-Za-z0-9._-] percent-encoded, so no name can climb out. */
static void hub_dir(const char *root, const char *name, char *out, size_t n) {
  size_t k = (size_t)snprintf(out, n, "%s/", root);
  for (const char *s = name; *s && k + 4 < n; s++) {
    unsigned char c = (unsigned char)*s;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
        c == '_' || c == '-')
      out[k++] = (char)c;
    else
      k += (size_t)snprintf(out + k, n - k, "%%%02X", c);
  }
  out[k] = 0;
  if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
    snprintf(out, n, "%s/%%2E%s", root, name + 1);
}

/* The hub's creation time survives restarts in DIR/<hub>/created_at. */
static void hub_created(emu_hub_t *h, const char *dir) {
  char path[4200];
  snprintf(path, sizeof path, "%s/created_at", dir);
  FILE *f = fopen(path, "r");
  long long ms = 0;
  if (f) {
    if (fscanf(f, "%lld", &ms) != 1)
      ms = 0;
    fclose(f);
  }
  if (ms > 0) {
    h->created_ms = ms;
    return;
  }
  f = fopen(path, "w");
  if (f) {
    fprintf(f, "%" PRId64 "\n", h->created_ms);
    fclose(f);
  }
}

ed_code_t emu_hub_init(emu_t *e, emu_hub_t *h, const emu_hubspec_t *spec, ed_err_t *err) {
  h->name = strdup(spec->name);
  h->nparts = spec->partitions;
  h->parts = calloc((size_t)h->nparts, sizeof *h->parts);
  int ng = 0;
  while (spec->groups && spec->groups[ng])
    ng++;
  h->groups = calloc((size_t)ng + 1, sizeof *h->groups);
  h->created_ms = ed_time_now_us() / 1000;
  if (!h->name || !h->parts || !h->groups)
    return ed_err_set(err, ED_E_NOMEM, "ehemu: out of memory");
  h->groups[h->ngroups++] = strdup(EHP_DEFAULT_CONSUMER_GROUP);
  for (int i = 0; i < ng; i++)
    if (emu_hub_name_index(h->groups, h->ngroups, spec->groups[i]) < 0)
      h->groups[h->ngroups++] = strdup(spec->groups[i]);
  for (int i = 0; i < h->ngroups; i++)
    if (!h->groups[i])
      return ed_err_set(err, ED_E_NOMEM, "ehemu: out of memory");
  if (!e->cfg.data_dir)
    return ED_OK;
  char dir[4096];
  hub_dir(e->cfg.data_dir, h->name, dir, sizeof dir);
  ed_code_t rc = make_dirs(dir, err);
  if (rc != ED_OK)
    return rc;
  hub_created(h, dir);
  for (int i = 0; i < h->nparts; i++) {
    emu_part_t *p = &h->parts[i];
    char path[4200];
    snprintf(path, sizeof path, "%s/%d.log", dir, i);
    p->next_seq = p->next_off = 0;
    rc = emu_plog_open(path, part_load, p, &p->next_seq, &p->next_off, &p->log, err);
    if (rc != ED_OK)
      return rc;
    emu_hub_retain(e, p);
  }
  return ED_OK;
}

void emu_hub_fini(emu_hub_t *h) {
  for (int p = 0; h->parts && p < h->nparts; p++) {
    emu_part_t *pt = &h->parts[p];
    for (size_t i = pt->first; i < pt->n; i++)
      free(pt->ev[i].bytes);
    free(pt->ev);
    emu_plog_free(pt->log);
  }
  free(h->parts);
  for (int i = 0; i < h->ngroups; i++)
    free(h->groups[i]);
  free(h->groups);
  free(h->name);
}

/* --data-dir/lock: two emulators on one directory would interleave appends. */
ed_code_t emu_hub_lock_dir(emu_t *e, ed_err_t *err) {
  ed_code_t rc = make_dirs(e->cfg.data_dir, err);
  if (rc != ED_OK)
    return rc;
  char path[4200];
  snprintf(path, sizeof path, "%s/lock", e->cfg.data_dir);
  e->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (e->lockfd < 0)
    return ed_err_set(err, ED_E_IO, "--data-dir: %s: %s", path, strerror(errno));
  if (flock(e->lockfd, LOCK_EX | LOCK_NB) != 0)
    return ed_err_set(err, ED_E_CONFIG, "--data-dir '%s': in use by another ehemu",
                      e->cfg.data_dir);
  return ED_OK;
}

int emu_hub_name_index(char **names, int n, const char *s) {
  for (int i = 0; i < n; i++)
    if (strcasecmp(names[i], s) == 0)
      return i;
  return -1;
}

emu_hub_t *emu_hub_find(emu_t *e, const char *name) {
  for (int i = 0; i < e->nhubs; i++)
    if (strcasecmp(e->hubs[i].name, name) == 0)
      return &e->hubs[i];
  return NULL;
}

int emu_hub_partition(const emu_hub_t *h, const char *s) {
  char *end;
  long v = strtol(s, &end, 10);
  if (!*s || *end || v < 0 || v >= h->nparts)
    return -1;
  return (int)v;
}
