/* emu: the server. Bytes from a socket go through our own SASL server (Proton
 * 0.37 has no PLAIN/MSSBCBS server without Cyrus) and then, one AMQP frame at a
 * time, into a pn_connection_driver; each incoming TRANSFER's message-format
 * is read from the raw frame on the way (§13: Proton drops it). Proton's
 * output is re-encoded frame by frame with every field written out (§17: the
 * Python SDK indexes performative fields by position). On the AMQPS listener
 * TLS sits between the socket and these byte streams: OpenSSL reads and writes
 * memory BIOs, so everything above it only ever sees plaintext. */
#include "emu/emu.h"
#include "emu/jwt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <proton/condition.h>
#include <proton/connection.h>
#include <proton/connection_driver.h>
#include <proton/delivery.h>
#include <proton/event.h>
#include <proton/link.h>
#include <proton/message.h>
#include <proton/session.h>
#include <proton/terminus.h>
#include <proton/transport.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/buf.h"
#include "common/hmac.h"
#include "common/log.h"
#include "common/time.h"
#include "emu/plog.h"
#include "eventhubs/sas.h"
#include "proto/eventhubs.h"

#define EMU_MAX_CONNS   256
#define EMU_MAX_AUTH    16
#define EMU_SEND_CREDIT 1000
#define EMU_MAX_FRAME   65536
/* What the normaliser may add to a frame Proton sized: a TRANSFER written out
 * in full grows by at most 8 bytes of list32 header over list0 plus 11 nulls
 * for absent fields (19; ehemu's transfers carry no delivery state to pad).
 * Proton is told the peer takes frames this much smaller than it announced,
 * so a padded frame still fits; norm_frames enforces the limit regardless. */
#define EMU_NORM_SLACK 64
/* AMQP 1.0 §2.7.1 MIN-MAX-FRAME-SIZE: every peer takes frames this large */
#define EMU_MIN_MAX_FRAME 512

/* ---- storage ---- */

typedef struct emu_event {
  uint8_t *bytes; /* the whole message as delivered, annotations included */
  uint32_t len;
  int64_t seq, offset, enq_ms;
} emu_event_t;

typedef struct emu_part {
  emu_event_t *ev; /* ring-less: ev[first..n) are retained */
  size_t n, cap, first;
  int64_t next_seq, next_off, bytes;
  emu_plog_t *log; /* --data-dir: the partition's append-only log, else NULL */
  /* control `slow`: at most rate events a second to its receivers, taken in
   * bursts of what accrued since the last pump (0: no limit) */
  int64_t rate, rate_at_us;
  double allowance;
} emu_part_t;

typedef struct emu_hub {
  char *name;
  int nparts;
  emu_part_t *parts;
  char **groups;
  int ngroups;
  int64_t created_ms;
  unsigned rr;
} emu_hub_t;

/* ---- connections and links ---- */

typedef enum { LK_CBS_IN, LK_CBS_OUT, LK_MGMT_IN, LK_MGMT_OUT, LK_SEND, LK_RECV } emu_lkind_t;

typedef struct emu_conn emu_conn_t;

typedef struct emu_link {
  emu_lkind_t kind;
  pn_link_t *link;
  emu_conn_t *conn;
  struct emu_link *next;
  bool closed;
  char *path; /* "/hub/..." the authorization check uses */
  emu_hub_t *hub;
  int part; /* -1: hub sender */
  int group;
  bool has_epoch;
  int64_t epoch;
  int64_t next_seq;
  char *reply_addr;
  char *publisher;   /* <hub>/Publishers/<name> senders: stamped as x-opt-publisher */
  int64_t active_us; /* last transfer or flow, for the idle-link rule (§1.3) */
  ed_buf_t acc;
  pn_delivery_t *cur;
  uint32_t cur_format;
  bool oversize;
  uint64_t tag;
} emu_link_t;

typedef struct emu_auth {
  char *path; /* audience path, "" = namespace */
  int64_t exp_us;
  unsigned rights; /* EMU_RIGHT_*: all for the SAS key; a JWT's roles */
} emu_auth_t;

typedef enum { ST_HDR, ST_SASL, ST_AMQP } emu_state_t;

struct emu_conn {
  int fd;
  emu_t *emu;
  pn_connection_driver_t drv;
  emu_state_t st;
  ed_buf_t in, pout, out;
  SSL *ssl; /* AMQPS only: reads rbio, writes wbio (both owned by ssl) */
  BIO *rbio, *wbio;
  ed_buf_t tout; /* ciphertext waiting for the socket */
  bool tls_shut;
  bool read_closed, dead;
  int64_t out_ready_us;
  uint32_t last_format;
  uint32_t peer_max_frame; /* from the peer's OPEN; 0 until then (no limit yet) */
  emu_auth_t auth[EMU_MAX_AUTH];
  int nauth;
  emu_link_t *links;
  int64_t opened_us, idle_since_us; /* accepted; last moment it had a link */
  bool had_link, forced;
};

typedef struct emu_ctl {
  int fd;
  ed_buf_t in, out;
} emu_ctl_t;

struct emu {
  emu_config_t cfg;
  char *key;
  emu_jwt_t *jwt; /* Entra ID tokens are accepted when set (--jwks) */
  int lfd, cfd, tfd;
  int port, cport, tport;
  SSL_CTX *tls;
  emu_hub_t *hubs;
  int nhubs;
  int lockfd; /* --data-dir/lock, held while serving */
  emu_conn_t *conns[EMU_MAX_CONNS];
  emu_ctl_t ctls[8];
  int nctl;
  /* faults */
  int64_t busy_left;
  int64_t delay_us;
};

/* ---- raw AMQP codec: enough to walk values without trusting them ---- */

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}
static void put64(uint8_t *p, uint64_t v) {
  put32(p, (uint32_t)(v >> 32));
  put32(p + 4, (uint32_t)v);
}

/* Length of the encoded value at p (bounded by n), or 0 when malformed. */
static size_t amqp_skip(const uint8_t *p, size_t n, int depth) {
  if (n < 1 || depth > 16)
    return 0;
  if (p[0] == 0x00) {
    size_t a = amqp_skip(p + 1, n - 1, depth + 1);
    if (!a)
      return 0;
    size_t b = amqp_skip(p + 1 + a, n - 1 - a, depth + 1);
    return b ? 1 + a + b : 0;
  }
  size_t w;
  switch (p[0] >> 4) {
  case 0x4:
    w = 0;
    break;
  case 0x5:
    w = 1;
    break;
  case 0x6:
    w = 2;
    break;
  case 0x7:
    w = 4;
    break;
  case 0x8:
    w = 8;
    break;
  case 0x9:
    w = 16;
    break;
  case 0xa:
  case 0xc:
  case 0xe:
    if (n < 2)
      return 0;
    w = 1 + (size_t)p[1];
    break;
  case 0xb:
  case 0xd:
  case 0xf:
    if (n < 5)
      return 0;
    w = 4 + (size_t)be32(p + 1);
    break;
  default:
    return 0;
  }
  return w <= n - 1 ? 1 + w : 0;
}

typedef struct span {
  const uint8_t *p;
  size_t n;
} span_t;

/* Splits a list (or map) value into its items; returns the count stored (at
 * most max) or -1 when malformed. *total gets the number of items declared. */
static int amqp_items(const uint8_t *p, size_t n, span_t *items, int max, uint32_t *total) {
  size_t hdr;
  uint32_t count;
  if (n < 1)
    return -1;
  if (p[0] == 0x45) {
    *total = 0;
    return 0;
  } else if ((p[0] == 0xc0 || p[0] == 0xc1) && n >= 3) {
    hdr = 3, count = p[2];
    if ((size_t)p[1] + 2 > n)
      return -1;
    n = (size_t)p[1] + 2;
  } else if ((p[0] == 0xd0 || p[0] == 0xd1) && n >= 9) {
    hdr = 9, count = be32(p + 5);
    if ((size_t)be32(p + 1) + 5 > n)
      return -1;
    n = (size_t)be32(p + 1) + 5;
  } else
    return -1;
  size_t pos = hdr;
  int got = 0;
  for (uint32_t i = 0; i < count; i++) {
    size_t w = amqp_skip(p + pos, n - pos, 0);
    if (!w)
      return -1;
    if (got < max)
      items[got++] = (span_t){p + pos, w};
    pos += w;
  }
  *total = count;
  return got;
}

/* The descriptor code of a described value (0x00 0x53 code, or a ulong). */
static int amqp_desc_code(const uint8_t *p, size_t n) {
  if (n >= 3 && p[0] == 0x00 && p[1] == 0x53)
    return p[2];
  if (n >= 10 && p[0] == 0x00 && p[1] == 0x80 && be32(p + 2) == 0)
    return (int)be32(p + 6);
  return -1;
}
static size_t amqp_desc_len(const uint8_t *p, size_t n) { return amqp_skip(p + 1, n - 1, 0) + 1; }

/* ---- the normaliser (§17) ---- */

typedef struct perf_shape {
  int code, arity;
} perf_shape_t;
static const perf_shape_t SHAPES[] = {
    {0x10, 10}, {0x11, 8}, {0x12, 14}, {0x13, 11}, {0x14, 11}, {0x15, 6}, {0x16, 3},
    {0x17, 1},  {0x18, 1}, {0x28, 11}, {0x29, 7},  {0x1d, 3},  {0x40, 1}, {0x41, 3},
    {0x42, 1},  {0x43, 1}, {0x44, 2},  {0x25, 1},  {0x27, 3},
};

static const uint8_t D_MAXFRAME[] = {0x70, 0x00, 0x00, 0xff, 0xff};
static const uint8_t D_CHANMAX[] = {0x60, 0xff, 0xff};
static const uint8_t D_HANDLEMAX[] = {0x70, 0x00, 0x00, 0x00, 0xff};
static const uint8_t D_EMPTYMAP[] = {0xc1, 0x01, 0x00};

static void norm_value(ed_buf_t *o, const uint8_t *p, size_t n, int depth);

static void norm_field(ed_buf_t *o, int code, int i, const span_t *it, int depth) {
  bool null = !it || (it->n == 1 && it->p[0] == 0x40);
  if (!null) {
    bool nested = (code == 0x12 && (i == 5 || i == 6)) || (code == 0x16 && i == 2) ||
                  ((code == 0x17 || code == 0x18 || code == 0x25) && i == 0) ||
                  (code == 0x15 && i == 4) || (code == 0x14 && i == 7);
    if (nested)
      norm_value(o, it->p, it->n, depth + 1);
    else
      ed_buf_append(o, it->p, it->n);
    return;
  }
  if (code == 0x10 && i == 2)
    ed_buf_append(o, D_MAXFRAME, sizeof D_MAXFRAME);
  else if (code == 0x10 && i == 3)
    ed_buf_append(o, D_CHANMAX, sizeof D_CHANMAX);
  else if (code == 0x11 && i == 4)
    ed_buf_append(o, D_HANDLEMAX, sizeof D_HANDLEMAX);
  else if (code == 0x12 && i == 13)
    ed_buf_append(o, D_EMPTYMAP, sizeof D_EMPTYMAP);
  else
    ed_buf_putc(o, 0x40);
}

/* Re-encodes a described list with all its fields; anything else is copied. */
static void norm_value(ed_buf_t *o, const uint8_t *p, size_t n, int depth) {
  int code = amqp_desc_code(p, n);
  int arity = 0;
  for (size_t i = 0; i < sizeof SHAPES / sizeof SHAPES[0]; i++)
    if (SHAPES[i].code == code)
      arity = SHAPES[i].arity;
  span_t items[16];
  uint32_t total = 0;
  size_t dl = arity ? amqp_desc_len(p, n) : 0;
  int got = arity && depth < 4 ? amqp_items(p + dl, n - dl, items, 16, &total) : -1;
  if (got < 0 || (uint32_t)got != total) {
    ed_buf_append(o, p, n);
    return;
  }
  ed_buf_append(o, p, dl);
  size_t at = o->len;
  uint8_t hdr[9] = {0xd0};
  ed_buf_append(o, hdr, 9);
  int count = got > arity ? got : arity;
  for (int i = 0; i < count; i++)
    norm_field(o, code, i, i < got ? &items[i] : NULL, depth);
  put32((uint8_t *)o->data + at + 1, (uint32_t)(o->len - at - 5));
  put32((uint8_t *)o->data + at + 5, (uint32_t)count);
}

/* Moves whole frames from raw (Proton's output) to out, normalised. No frame
 * goes out larger than limit (the peer's max-frame-size, 0: none yet): Proton
 * sized its frames EMU_NORM_SLACK under it, and a frame that padding would
 * still push over goes out as Proton wrote it, which is valid AMQP too. */
static void norm_frames(ed_buf_t *raw, ed_buf_t *out, uint32_t limit) {
  size_t pos = 0;
  while (raw->len - pos >= 8) {
    const uint8_t *f = (const uint8_t *)raw->data + pos;
    if (memcmp(f, "AMQP", 4) == 0) {
      ed_buf_append(out, f, 8);
      pos += 8;
      continue;
    }
    uint32_t size = be32(f);
    if (size < 8 || raw->len - pos < size)
      break;
    size_t doff = (size_t)f[4] * 4;
    if (size == 8 || doff < 8 || doff >= size) {
      ed_buf_append(out, f, size);
      pos += size;
      continue;
    }
    const uint8_t *body = f + doff;
    size_t bn = size - doff;
    size_t pl = amqp_skip(body, bn, 0);
    size_t at = out->len;
    uint8_t h[8] = {0, 0, 0, 0, 2, f[5], f[6], f[7]};
    ed_buf_append(out, h, 8);
    if (pl)
      norm_value(out, body, pl, 0);
    else
      pl = 0;
    ed_buf_append(out, body + pl, bn - pl);
    if (limit && out->len - at > limit) {
      out->len = at;
      ed_buf_append(out, f, size);
    } else
      put32((uint8_t *)out->data + at, (uint32_t)(out->len - at));
    pos += size;
  }
  if (pos) {
    memmove(raw->data, raw->data + pos, raw->len - pos);
    raw->len -= pos;
  }
}

/* ---- small helpers ---- */

static void tracking(char *buf, size_t n) {
  char iso[ED_TIME_ISO_MAX];
  ed_time_format_iso(ed_time_now_us(), 0, iso);
  snprintf(buf, n, " TrackingId:%08lx-ehemu, SystemTracker:localhost, Timestamp:%s",
           (unsigned long)random(), iso);
}

static void set_cond(pn_condition_t *c, const char *name, const char *desc) {
  char t[160], full[1024];
  tracking(t, sizeof t);
  snprintf(full, sizeof full, "%s%s", desc, t);
  pn_condition_set_name(c, name);
  pn_condition_set_description(c, full);
}

/* The path of an audience or address: scheme and host dropped, no trailing '/'. */
static void uri_path(const char *s, char *out, size_t n) {
  const char *p = strstr(s, "://");
  if (p) {
    p += 3;
    p = strchr(p, '/');
    if (!p)
      p = "";
  } else
    p = s;
  while (*p == '/')
    p++;
  snprintf(out, n, "/%s", p);
  size_t l = strlen(out);
  while (l > 1 && out[l - 1] == '/')
    out[--l] = 0;
}

static bool path_covers(const char *granted, const char *wanted) {
  size_t g = strlen(granted);
  if (g <= 1)
    return true;
  return strncasecmp(granted, wanted, g) == 0 && (wanted[g] == 0 || wanted[g] == '/');
}

/* ---- partition hash (.NET PartitionResolver: lookup3 hashlittle2) ---- */

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

static int key_partition(const char *key, size_t n, int nparts) {
  uint32_t c = 0, b = 0;
  hashlittle2((const uint8_t *)key, n, &c, &b);
  int16_t h = (int16_t)(uint16_t)(c ^ b);
  int r = h % nparts;
  return r < 0 ? -r : r;
}

/* ---- storage ---- */

static void put_sym(ed_buf_t *o, const char *s) {
  size_t n = strlen(s);
  uint8_t h[2] = {0xa3, (uint8_t)n};
  ed_buf_append(o, h, 2);
  ed_buf_append(o, s, n);
}
static void put_str(ed_buf_t *o, const char *s, size_t n) {
  uint8_t h[5] = {0xb1};
  put32(h + 1, (uint32_t)n);
  ed_buf_append(o, h, 5);
  ed_buf_append(o, s, n);
}
static void put_i64(ed_buf_t *o, uint8_t ctor, int64_t v) {
  uint8_t h[9] = {ctor};
  put64(h + 1, (uint64_t)v);
  ed_buf_append(o, h, 9);
}

/* Finds a string-valued symbol key in a map's items. */
static bool map_find_str(const span_t *it, int n, const char *key, const char **v, size_t *vl) {
  size_t kl = strlen(key);
  for (int i = 0; i + 1 < n; i += 2) {
    const uint8_t *k = it[i].p;
    size_t klen = 0, off = 0;
    if ((k[0] == 0xa3 || k[0] == 0xa1) && it[i].n >= 2)
      klen = k[1], off = 2;
    else if ((k[0] == 0xb3 || k[0] == 0xb1) && it[i].n >= 5)
      klen = be32(k + 1), off = 5;
    else
      continue;
    if (klen != kl || memcmp(k + off, key, kl) != 0)
      continue;
    const uint8_t *s = it[i + 1].p;
    if (s[0] == 0xa1 && it[i + 1].n >= 2)
      *v = (const char *)s + 2, *vl = s[1];
    else if (s[0] == 0xb1 && it[i + 1].n >= 5)
      *v = (const char *)s + 5, *vl = be32(s + 1);
    else
      return false;
    return true;
  }
  return false;
}

typedef struct msg_view {
  span_t *sec; /* sec_inline, or malloc'd for an SDK batch of many data sections */
  span_t sec_inline[16];
  int nsec, cap;
  int ann; /* index of message-annotations, -1 */
  span_t ann_items[128];
  int nann;
} msg_view_t;

static void msg_view_free(msg_view_t *v) {
  if (v && v->sec != v->sec_inline)
    free(v->sec);
  free(v);
}

/* Splits a message into its sections; v is freed with msg_view_free either way. */
static bool msg_split(const uint8_t *m, size_t n, msg_view_t *v) {
  v->nsec = 0, v->ann = -1, v->nann = 0;
  v->sec = v->sec_inline, v->cap = 16;
  size_t pos = 0;
  while (pos < n) {
    int code = amqp_desc_code(m + pos, n - pos);
    size_t w = amqp_skip(m + pos, n - pos, 0);
    if (code < 0x70 || code > 0x78 || !w)
      return false;
    if (v->nsec == v->cap) {
      span_t *ns = malloc((size_t)v->cap * 2 * sizeof *ns);
      if (!ns)
        return false;
      memcpy(ns, v->sec, (size_t)v->nsec * sizeof *ns);
      if (v->sec != v->sec_inline)
        free(v->sec);
      v->sec = ns, v->cap *= 2;
    }
    v->sec[v->nsec] = (span_t){m + pos, w};
    if (code == 0x72) {
      v->ann = v->nsec;
      size_t dl = amqp_desc_len(m + pos, w);
      uint32_t total;
      int got = amqp_items(m + pos + dl, w - dl, v->ann_items, 128, &total);
      if (got < 0 || (uint32_t)got != total)
        return false;
      v->nann = got;
    }
    v->nsec++;
    pos += w;
  }
  return v->nsec > 0;
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

static void hub_retain(emu_t *e, emu_part_t *p) {
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

/* Encodes one event (an encoded AMQP message) as delivered, with the
 * service's annotations for the numbers in *ev; ev->bytes: caller frees. */
/* Whether an annotation key (an encoded symbol) is one the service stamps
 * itself: a publisher's own value for it is replaced, never duplicated. */
static bool stamped_key(const span_t *k, bool publisher) {
  static const char *keys[] = {EHP_ANN_SEQUENCE, EHP_ANN_OFFSET, EHP_ANN_ENQUEUED,
                               EHP_ANN_PUBLISHER};
  size_t kl, off;
  if (k->p[0] == 0xa3 && k->n >= 2)
    kl = k->p[1], off = 2;
  else if (k->p[0] == 0xb3 && k->n >= 5)
    kl = be32(k->p + 1), off = 5;
  else
    return false;
  for (size_t i = 0; i < (publisher ? 4u : 3u); i++)
    if (kl == strlen(keys[i]) && memcmp(k->p + off, keys[i], kl) == 0)
      return true;
  return false;
}

static ed_code_t encode_event(const uint8_t *m, size_t n, const char *pk, size_t pkl,
                              const char *pub, emu_event_t *ev) {
  msg_view_t *v = malloc(sizeof *v);
  if (!v)
    return ED_E_NOMEM;
  if (!msg_split(m, n, v)) {
    msg_view_free(v);
    return ED_E_PARSE;
  }
  const char *have;
  size_t havel;
  bool add_pk = pk && !(v->ann >= 0 &&
                        map_find_str(v->ann_items, v->nann, EHP_ANN_PARTITION_KEY, &have, &havel));
  ed_buf_t o = ED_BUF_INIT;
  bool done = false;
  for (int i = 0; i <= v->nsec; i++) {
    int code = i < v->nsec ? amqp_desc_code(v->sec[i].p, v->sec[i].n) : 0x100;
    if (code == 0x71)
      continue; /* delivery annotations belong to the hop, not the event */
    if (!done && code >= 0x72) {
      uint8_t h[12] = {0x00, 0x53, 0x72, 0xd1};
      ed_buf_append(&o, h, 12);
      size_t at = o.len - 8;
      uint32_t count = 6;
      for (int j = 0; v->ann >= 0 && j + 1 < v->nann; j += 2) {
        if (stamped_key(&v->ann_items[j], pub != NULL))
          continue;
        ed_buf_append(&o, v->ann_items[j].p, v->ann_items[j].n);
        ed_buf_append(&o, v->ann_items[j + 1].p, v->ann_items[j + 1].n);
        count += 2;
      }
      char offs[24];
      int ol = snprintf(offs, sizeof offs, "%" PRId64, ev->offset);
      put_sym(&o, EHP_ANN_SEQUENCE);
      put_i64(&o, 0x81, ev->seq);
      put_sym(&o, EHP_ANN_OFFSET);
      put_str(&o, offs, (size_t)ol);
      put_sym(&o, EHP_ANN_ENQUEUED);
      put_i64(&o, 0x83, ev->enq_ms);
      if (add_pk) {
        put_sym(&o, EHP_ANN_PARTITION_KEY);
        put_str(&o, pk, pkl);
        count += 2;
      }
      if (pub) {
        put_sym(&o, EHP_ANN_PUBLISHER);
        put_str(&o, pub, strlen(pub));
        count += 2;
      }
      put32((uint8_t *)o.data + at, (uint32_t)(o.len - at - 4));
      put32((uint8_t *)o.data + at + 4, count);
      done = true;
    }
    if (i < v->nsec && code != 0x72)
      ed_buf_append(&o, v->sec[i].p, v->sec[i].n);
  }
  msg_view_free(v);
  if (!o.data)
    return ED_E_NOMEM;
  ev->len = (uint32_t)o.len;
  ev->bytes = (uint8_t *)ed_buf_steal(&o);
  return ED_OK;
}

/* Stores n events (encoded AMQP messages) in one partition, all or none:
 * with --data-dir they are in the log before the sender hears Accepted. */
static ed_code_t store_events(emu_t *e, emu_part_t *p, const span_t *ms, size_t n, const char *pk,
                              size_t pkl, const char *pub) {
  emu_event_t *evs = calloc(n ? n : 1, sizeof *evs);
  emu_rec_t *recs = calloc(n ? n : 1, sizeof *recs);
  ed_code_t rc = evs && recs ? ED_OK : ED_E_NOMEM;
  int64_t seq = p->next_seq, off = p->next_off, enq = ed_time_now_us() / 1000;
  for (size_t i = 0; i < n && rc == ED_OK; i++) {
    evs[i] = (emu_event_t){.seq = seq, .offset = off, .enq_ms = enq};
    seq++;
    rc = encode_event(ms[i].p, ms[i].n, pk, pkl, pub, &evs[i]);
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
    hub_retain(e, p);
  return rc;
}

/* ---- connection plumbing ---- */

static emu_link_t *link_ctx(pn_link_t *l) { return pn_link_get_context(l); }

static void link_fail(pn_link_t *l, bool null_source, const char *cond, const char *desc) {
  if (null_source) {
    pn_terminus_set_type(pn_link_source(l), PN_UNSPECIFIED);
    pn_terminus_copy(pn_link_target(l), pn_link_remote_target(l));
  } else {
    pn_terminus_set_type(pn_link_target(l), PN_UNSPECIFIED);
    pn_terminus_copy(pn_link_source(l), pn_link_remote_source(l));
  }
  set_cond(pn_link_condition(l), cond, desc);
  pn_link_open(l);
  pn_link_close(l);
}

static void link_detach(emu_link_t *el, const char *cond, const char *desc) {
  if (el->closed)
    return;
  set_cond(pn_link_condition(el->link), cond, desc);
  pn_link_close(el->link);
  el->closed = true;
}

/* Whether an unexpired grant covering path has one of the rights in any. */
static bool conn_authorized(emu_conn_t *c, const char *path, unsigned any) {
  int64_t now = ed_time_now_us();
  for (int i = 0; i < c->nauth; i++)
    if (c->auth[i].exp_us > now && path_covers(c->auth[i].path, path) && (c->auth[i].rights & any))
      return true;
  return false;
}

static void conn_grant(emu_conn_t *c, const char *path, int64_t exp_us, unsigned rights) {
  if (c->nauth == EMU_MAX_AUTH) {
    free(c->auth[0].path);
    memmove(c->auth, c->auth + 1, sizeof c->auth[0] * (EMU_MAX_AUTH - 1));
    c->nauth--;
  }
  c->auth[c->nauth].path = strdup(path);
  c->auth[c->nauth].exp_us = exp_us;
  c->auth[c->nauth].rights = rights;
  if (c->auth[c->nauth].path)
    c->nauth++;
}

static int find_ci(char **names, int n, const char *s) {
  for (int i = 0; i < n; i++)
    if (strcasecmp(names[i], s) == 0)
      return i;
  return -1;
}

static emu_hub_t *find_hub(emu_t *e, const char *name) {
  for (int i = 0; i < e->nhubs; i++)
    if (strcasecmp(e->hubs[i].name, name) == 0)
      return &e->hubs[i];
  return NULL;
}

static int parse_partition(const emu_hub_t *h, const char *s) {
  char *end;
  long v = strtol(s, &end, 10);
  if (!*s || *end || v < 0 || v >= h->nparts)
    return -1;
  return (int)v;
}

/* Sends a reply message on the node's reply link (matching reply-to, else any). */
static void node_reply(emu_conn_t *c, emu_lkind_t kind, pn_session_t *ssn, pn_message_t *req,
                       pn_message_t *resp) {
  const char *rt = pn_message_get_reply_to(req);
  emu_link_t *best = NULL;
  for (emu_link_t *l = c->links; l; l = l->next) {
    if (l->kind != kind || l->closed)
      continue;
    if (rt && l->reply_addr && strcmp(rt, l->reply_addr) == 0) {
      best = l;
      break;
    }
    if (!best || pn_link_session(l->link) == ssn)
      best = l;
  }
  if (!best)
    return;
  pn_message_set_correlation_id(resp, pn_message_get_id(req));
  if (rt)
    pn_message_set_address(resp, rt);
  uint64_t tag = ++best->tag;
  pn_delivery_t *d = pn_delivery(best->link, pn_dtag((const char *)&tag, sizeof tag));
  if (pn_message_send(resp, best->link, NULL) >= 0)
    pn_delivery_settle(d);
}

/* Accepts and settles a $cbs or $management request, and hands the DISPOSITION
 * to the normaliser before any reply exists. Proton sends a settled ACCEPTED
 * as a batched disposition after the transfers of the same pass, so a reply
 * made in the same pass overtook it; uamqp-transport clients wait for the
 * request's outcome and fail on a reply that comes first ("Did not receive
 * send confirmation for pending operation"). */
static void node_accept(emu_conn_t *c, pn_delivery_t *d) {
  pn_delivery_update(d, PN_ACCEPTED);
  pn_delivery_settle(d);
  for (;;) {
    pn_bytes_t b = pn_connection_driver_write_buffer(&c->drv);
    if (!b.size)
      break;
    ed_buf_append(&c->pout, b.start, b.size);
    pn_connection_driver_write_done(&c->drv, b.size);
  }
}

static void put_status(pn_message_t *m, int code, const char *desc) {
  pn_data_t *p = pn_message_properties(m);
  pn_data_put_map(p);
  pn_data_enter(p);
  pn_data_put_string(p, pn_bytes(strlen(EHP_RESP_STATUS_CODE), EHP_RESP_STATUS_CODE));
  pn_data_put_int(p, code);
  pn_data_put_string(p, pn_bytes(strlen(EHP_RESP_STATUS_DESC), EHP_RESP_STATUS_DESC));
  pn_data_put_string(p, pn_bytes(strlen(desc), desc));
  pn_data_exit(p);
}

/* String application property, or NULL (copied into buf). */
static const char *app_prop(pn_message_t *m, const char *key, char *buf, size_t n) {
  pn_data_t *p = pn_message_properties(m);
  pn_data_rewind(p);
  if (!pn_data_next(p) || pn_data_type(p) != PN_MAP)
    return NULL;
  pn_data_enter(p);
  while (pn_data_next(p)) {
    bool match = false;
    if (pn_data_type(p) == PN_STRING || pn_data_type(p) == PN_SYMBOL) {
      pn_bytes_t k = pn_data_type(p) == PN_STRING ? pn_data_get_string(p) : pn_data_get_symbol(p);
      match = k.size == strlen(key) && memcmp(k.start, key, k.size) == 0;
    }
    if (!pn_data_next(p))
      break;
    if (match && pn_data_type(p) == PN_STRING) {
      pn_bytes_t v = pn_data_get_string(p);
      snprintf(buf, n, "%.*s", (int)v.size, v.start);
      pn_data_exit(p);
      return buf;
    }
  }
  pn_data_exit(p);
  return NULL;
}

/* Validates a SAS token for the audience; 0 when good, else a status code. */
/* A token's kind comes from its text, not the put-token type (Python sends
 * type jwt for SAS too, reference §3.5). */
static int check_token(emu_t *e, const char *token, const char *audience, int64_t *exp_us,
                       unsigned *rights, const char **why) {
  eh_sas_fields_t f = {0};
  ed_err_t err;
  *rights = EMU_RIGHT_ALL;
  *why = "InvalidSignature: The token has an invalid signature.";
  if (strncmp(token, "SharedAccessSignature ", 22) != 0) {
    if (!e->jwt) {
      *why = "InvalidIssuer: Token issuer is invalid.";
      return 401;
    }
    int code = emu_jwt_check(e->jwt, token, ed_time_now_us() / ED_US_PER_SEC, rights, exp_us, why);
    if (code == 0 && e->cfg.token_lifetime_us > 0 &&
        ed_time_now_us() + e->cfg.token_lifetime_us < *exp_us)
      *exp_us = ed_time_now_us() + e->cfg.token_lifetime_us;
    return code;
  }
  if (e->cfg.disable_local_auth) {
    /* disableLocalAuth: the namespace takes Entra ID tokens only */
    *why = "LocalAuthDisabled: Authorization with a shared access signature is disabled for this "
           "namespace; use Microsoft Entra ID.";
    return 401;
  }
  if (eh_sas_parse(token, &f, &err) != ED_OK)
    return 401;
  int rc = 0;
  char rp[1024], ap[1024];
  uri_path(f.resource, rp, sizeof rp);
  uri_path(audience, ap, sizeof ap);
  if (strcmp(f.skn, e->cfg.key_name) != 0) {
    *why = "Unauthorized: the key name in the token is not known.";
    rc = 401;
  } else {
    ed_code_t vc = eh_sas_verify(&f, e->key, ed_time_now_us() / ED_US_PER_SEC, &err);
    if (vc == ED_E_TOKEN_EXPIRED) {
      *why = "ExpiredToken: The token is expired.";
      rc = 401;
    } else if (vc != ED_OK)
      rc = 401;
    else if (!path_covers(rp, ap)) {
      *why = "InvalidAudience: The token audience does not cover the requested resource.";
      rc = 401;
    }
  }
  int64_t exp = f.se * ED_US_PER_SEC;
  if (e->cfg.token_lifetime_us > 0 && ed_time_now_us() + e->cfg.token_lifetime_us < exp)
    exp = ed_time_now_us() + e->cfg.token_lifetime_us;
  *exp_us = exp;
  eh_sas_fields_fini(&f);
  return rc;
}

static const char *body_string(pn_message_t *m, char *buf, size_t n) {
  pn_data_t *b = pn_message_body(m);
  pn_data_rewind(b);
  if (!pn_data_next(b) || pn_data_type(b) != PN_STRING)
    return NULL;
  pn_bytes_t v = pn_data_get_string(b);
  if (v.size >= n)
    return NULL;
  memcpy(buf, v.start, v.size);
  buf[v.size] = 0;
  return buf;
}

static void handle_cbs(emu_conn_t *c, emu_link_t *el, pn_message_t *req, pn_delivery_t *d) {
  char op[64], name[1024], *tok = malloc(8192);
  pn_message_t *resp = pn_message();
  if (!tok || !resp) {
    free(tok);
    pn_message_free(resp);
    return;
  }
  if (!app_prop(req, EHP_CBS_KEY_OPERATION, op, sizeof op) ||
      strcmp(op, EHP_CBS_OP_PUT_TOKEN) != 0) {
    set_cond(pn_disposition_condition(pn_delivery_local(d)), "amqp:not-allowed",
             "Invalid command.");
    pn_delivery_update(d, PN_REJECTED);
    pn_delivery_settle(d);
  } else {
    node_accept(c, d);
    const char *why = "";
    int64_t exp = 0;
    unsigned rights = 0;
    int code;
    if (!app_prop(req, EHP_CBS_KEY_NAME, name, sizeof name) || !body_string(req, tok, 8192)) {
      code = 400, why = "Bad request: put-token needs a name and a string token.";
    } else {
      code = check_token(c->emu, tok, name, &exp, &rights, &why);
      char np[1024];
      uri_path(name, np, sizeof np);
      bool known = strlen(np) <= 1;
      for (int i = 0; i < c->emu->nhubs && !known; i++) {
        char hp[512];
        snprintf(hp, sizeof hp, "/%s", c->emu->hubs[i].name);
        known = path_covers(np, hp) || path_covers(hp, np);
      }
      if (code == 0 && !known)
        code = 404, why = "The messaging entity could not be found.";
      if (code == 0) {
        conn_grant(c, np, exp, rights);
        code = 202, why = "Accepted";
      }
    }
    put_status(resp, code, why);
    node_reply(c, LK_CBS_OUT, pn_link_session(el->link), req, resp);
  }
  pn_message_free(resp);
  free(tok);
}

static void mgmt_body(emu_t *e, emu_hub_t *h, pn_message_t *resp, int part) {
  pn_data_t *b = pn_message_body(resp);
#define PKEY(s) pn_data_put_string(b, pn_bytes(strlen(s), s))
  pn_data_put_map(b);
  pn_data_enter(b);
  PKEY(EHP_HUB_NAME);
  PKEY(h->name);
  if (part < 0) {
    PKEY(EHP_HUB_TYPE);
    PKEY(EHP_MGMT_TYPE_EVENTHUB);
    PKEY(EHP_HUB_CREATED_AT);
    pn_data_put_timestamp(b, h->created_ms);
    PKEY(EHP_HUB_PARTITION_COUNT);
    pn_data_put_int(b, h->nparts);
    PKEY(EHP_HUB_PARTITION_IDS);
    pn_data_put_array(b, false, PN_STRING);
    pn_data_enter(b);
    for (int i = 0; i < h->nparts; i++) {
      char id[16];
      snprintf(id, sizeof id, "%d", i);
      PKEY(id);
    }
    pn_data_exit(b);
    PKEY(EHP_HUB_GEOREPLICATION_FACTOR);
    pn_data_put_int(b, 1);
  } else {
    emu_part_t *p = &h->parts[part];
    hub_retain(e, p);
    char id[16], off[24];
    snprintf(id, sizeof id, "%d", part);
    bool empty = p->first == p->n;
    const emu_event_t *last = p->n ? &p->ev[p->n - 1] : NULL;
    snprintf(off, sizeof off, "%" PRId64, last && !empty ? last->offset : -1);
    PKEY(EHP_PART_TYPE);
    PKEY(EHP_MGMT_TYPE_PARTITION);
    PKEY(EHP_PART_PARTITION);
    PKEY(id);
    PKEY(EHP_PART_BEGIN_SEQ);
    pn_data_put_long(b, empty ? p->next_seq : p->ev[p->first].seq);
    PKEY(EHP_PART_LAST_SEQ);
    pn_data_put_long(b, p->next_seq - 1);
    PKEY(EHP_PART_LAST_OFFSET);
    PKEY(off);
    PKEY(EHP_PART_LAST_TIME);
    pn_data_put_timestamp(b, last && !empty ? last->enq_ms : 0);
    PKEY(EHP_PART_IS_EMPTY);
    pn_data_put_bool(b, empty);
  }
  pn_data_exit(b);
#undef PKEY
}

static void handle_mgmt(emu_conn_t *c, emu_link_t *el, pn_message_t *req, pn_delivery_t *d) {
  emu_t *e = c->emu;
  char op[64], type[64], name[256], part[32], tok[8192];
  pn_message_t *resp = pn_message();
  if (!resp)
    return;
  node_accept(c, d);
  char hp[300];
  const char *nm = app_prop(req, EHP_MGMT_KEY_NAME, name, sizeof name);
  snprintf(hp, sizeof hp, "/%s", nm ? nm : "");
  /* READ: any data role (the SDKs' producers read partition ids with Sender) */
  bool ok = conn_authorized(c, hp, EMU_RIGHT_ALL);
  if (!ok && app_prop(req, EHP_MGMT_KEY_SECURITY_TOKEN, tok, sizeof tok)) {
    int64_t exp;
    unsigned rights;
    const char *why;
    ok = check_token(e, tok, hp, &exp, &rights, &why) == 0 && rights;
  }
  int p = -1;
  emu_hub_t *h = NULL;
  if (!app_prop(req, EHP_MGMT_KEY_OPERATION, op, sizeof op) || strcmp(op, EHP_MGMT_OP_READ) != 0)
    put_status(resp, 400, "Invalid operation.");
  else if (!ok)
    put_status(resp, 401, "Unauthorized access. 'Listen' claim(s) are required.");
  else if (!nm || !(h = find_hub(e, nm))) {
    char msg[512];
    snprintf(msg, sizeof msg, "The messaging entity 'sb://localhost/%s' could not be found.",
             nm ? nm : "");
    put_status(resp, 404, msg);
  } else if (!app_prop(req, EHP_MGMT_KEY_TYPE, type, sizeof type))
    put_status(resp, 400, "The type is missing.");
  else if (strcmp(type, EHP_MGMT_TYPE_EVENTHUB) == 0) {
    put_status(resp, 200, "OK");
    mgmt_body(e, h, resp, -1);
  } else if (strcmp(type, EHP_MGMT_TYPE_PARTITION) == 0 &&
             app_prop(req, EHP_MGMT_KEY_PARTITION, part, sizeof part) &&
             (p = parse_partition(h, part)) >= 0) {
    put_status(resp, 200, "OK");
    mgmt_body(e, h, resp, p);
  } else
    put_status(resp, 400, "The partition or type is not valid.");
  node_reply(c, LK_MGMT_OUT, pn_link_session(el->link), req, resp);
  pn_message_free(resp);
}

static void reject(pn_delivery_t *d, const char *cond, const char *desc) {
  set_cond(pn_disposition_condition(pn_delivery_local(d)), cond, desc);
  pn_delivery_update(d, PN_REJECTED);
  pn_delivery_settle(d);
}

static void handle_send(emu_conn_t *c, emu_link_t *el, pn_delivery_t *d) {
  emu_t *e = c->emu;
  emu_hub_t *h = el->hub;
  const uint8_t *m = (const uint8_t *)el->acc.data;
  size_t n = el->acc.len;
  if (el->oversize) {
    char msg[256];
    snprintf(msg, sizeof msg,
             "The received message (delivery-id:0, size:%zu bytes) exceeds the limit "
             "(%" PRId64 " bytes) currently allowed on the link.",
             n, c->emu->cfg.max_message_size);
    reject(d, "amqp:link:message-size-exceeded", msg);
    return;
  }
  if (e->busy_left > 0) {
    e->busy_left--;
    reject(d, "com.microsoft:server-busy",
           "The request was terminated because the entity is being throttled. Error code : "
           "50002. Please wait 4 seconds and try again.");
    return;
  }
  msg_view_t *v = malloc(sizeof *v);
  if (!v || !msg_split(m, n, v)) {
    msg_view_free(v);
    reject(d, "amqp:decode-error", "The message could not be decoded.");
    return;
  }
  const char *pk = NULL;
  size_t pkl = 0;
  if (v->ann >= 0)
    map_find_str(v->ann_items, v->nann, EHP_ANN_PARTITION_KEY, &pk, &pkl);
  int part = el->part;
  if ((part >= 0 || el->publisher) && pk) {
    msg_view_free(v);
    reject(d, "com.microsoft:argument-error",
           el->publisher ? "A partition key cannot be set when sending to a publisher."
                         : "A partition key cannot be set when sending to a partition.");
    return;
  }
  /* [U] the service's placement of publisher events is not documented: the
   * publisher name is hashed like a partition key, so one publisher's events
   * stay in order in one partition */
  if (part < 0 && el->publisher)
    part = key_partition(el->publisher, strlen(el->publisher), h->nparts);
  else if (part < 0)
    part = pk ? key_partition(pk, pkl, h->nparts) : (int)(h->rr++ % (unsigned)h->nparts);
  emu_part_t *p = &h->parts[part];
  ed_code_t rc = ED_OK;
  if (el->cur_format == EHP_BATCH_MESSAGE_FORMAT) {
    /* every data section is one encoded event; all or nothing */
    span_t *inner = malloc((size_t)v->nsec * sizeof *inner);
    size_t ni = 0;
    if (!inner)
      rc = ED_E_NOMEM;
    for (int i = 0; i < v->nsec && rc == ED_OK; i++) {
      const span_t *s = &v->sec[i];
      if (amqp_desc_code(s->p, s->n) != 0x75)
        continue;
      size_t dl = amqp_desc_len(s->p, s->n);
      const uint8_t *b = s->p + dl;
      size_t hl = b[0] == 0xa0 ? 2 : 5;
      if (dl + hl > s->n)
        rc = ED_E_PARSE;
      else
        inner[ni++] = (span_t){b + hl, s->n - dl - hl};
    }
    if (rc == ED_OK)
      rc = store_events(e, p, inner, ni, pk, pkl, el->publisher);
    free(inner);
  } else
    rc = store_events(e, p, &(span_t){m, n}, 1, NULL, 0, el->publisher);
  msg_view_free(v);
  if (rc == ED_E_PARSE)
    reject(d, "amqp:decode-error", "The message could not be decoded.");
  else if (rc != ED_OK)
    reject(d, "amqp:internal-error", "The event could not be stored.");
  else {
    pn_delivery_update(d, PN_ACCEPTED);
    pn_delivery_settle(d);
  }
}

static void on_delivery(emu_conn_t *c, pn_delivery_t *d) {
  pn_link_t *l = pn_delivery_link(d);
  emu_link_t *el = link_ctx(l);
  if (!el || el->closed) {
    pn_delivery_settle(d);
    return;
  }
  if (pn_link_is_sender(l)) {
    if (pn_delivery_updated(d))
      pn_delivery_settle(d); /* dispositions from consumers mean nothing to a log */
    return;
  }
  if (!pn_delivery_readable(d))
    return;
  el->active_us = ed_time_mono_us();
  if (el->cur != d) {
    el->cur = d;
    el->cur_format = c->last_format;
    el->oversize = false;
    ed_buf_reset(&el->acc);
  }
  char buf[16384];
  ssize_t r;
  while ((r = pn_link_recv(l, buf, sizeof buf)) > 0) {
    if (el->acc.len + (size_t)r > (uint64_t)c->emu->cfg.max_message_size)
      el->oversize = true;
    if (!el->oversize)
      ed_buf_append(&el->acc, buf, (size_t)r);
    else
      el->acc.len += (size_t)r; /* counted, not kept */
  }
  if (pn_delivery_partial(d))
    return;
  if (el->kind == LK_SEND)
    handle_send(c, el, d);
  else {
    pn_message_t *msg = pn_message();
    if (msg && !el->oversize && pn_message_decode(msg, el->acc.data, el->acc.len) == 0) {
      if (el->kind == LK_CBS_IN)
        handle_cbs(c, el, msg, d);
      else
        handle_mgmt(c, el, msg, d);
    } else
      reject(d, "amqp:decode-error", "The request could not be decoded.");
    pn_message_free(msg);
  }
  el->cur = NULL;
  if (el->acc.cap > (1u << 20))
    ed_buf_fini(&el->acc); /* an oversized buffer is not kept for the next one */
  ed_buf_reset(&el->acc);
  if (pn_link_credit(l) < EMU_SEND_CREDIT / 2)
    pn_link_flow(l, EMU_SEND_CREDIT - pn_link_credit(l));
}

/* Receiver start position from the selector filter; false with an error. */
static bool receiver_position(emu_t *e, emu_link_t *el, pn_link_t *l, char *why, size_t wn,
                              const char **cond) {
  emu_part_t *p = &el->hub->parts[el->part];
  hub_retain(e, p);
  int64_t begin = p->first < p->n ? p->ev[p->first].seq : p->next_seq;
  el->next_seq = begin;
  pn_data_t *f = pn_terminus_filter(pn_link_remote_source(l));
  if (!f)
    return true;
  pn_data_rewind(f);
  if (!pn_data_next(f) || pn_data_type(f) != PN_MAP)
    return true;
  char expr[512] = "";
  pn_data_enter(f);
  while (pn_data_next(f)) {
    bool ours = false;
    if (pn_data_type(f) == PN_SYMBOL) {
      pn_bytes_t k = pn_data_get_symbol(f);
      ours = k.size == strlen(EHP_FILTER_KEY) && memcmp(k.start, EHP_FILTER_KEY, k.size) == 0;
    }
    if (!pn_data_next(f))
      break;
    if (ours && pn_data_type(f) == PN_DESCRIBED) {
      pn_data_enter(f);
      pn_data_next(f);
      pn_data_next(f);
      if (pn_data_type(f) == PN_STRING) {
        pn_bytes_t v = pn_data_get_string(f);
        snprintf(expr, sizeof expr, "%.*s", (int)v.size, v.start);
      }
      pn_data_exit(f);
    }
  }
  pn_data_exit(f);
  if (!expr[0])
    return true;
  const char *lhs[] = {EHP_FILTER_OFFSET, EHP_FILTER_SEQ, EHP_FILTER_ENQUEUED};
  int kind = -1;
  const char *s = expr;
  while (*s == ' ')
    s++;
  for (int i = 0; i < 3; i++)
    if (strncasecmp(s, lhs[i], strlen(lhs[i])) == 0)
      kind = i, s += strlen(lhs[i]);
  while (*s == ' ')
    s++;
  bool incl = false;
  if (*s == '>' && s[1] == '=')
    incl = true, s += 2;
  else if (*s == '>')
    s++;
  else
    kind = -1;
  while (*s == ' ')
    s++;
  char val[64];
  size_t vl = 0;
  if (*s == '\'')
    s++;
  while (*s && *s != '\'' && *s != ' ' && vl < sizeof val - 1)
    val[vl++] = *s++;
  val[vl] = 0;
  if (*s == '\'')
    s++;
  while (*s == ' ')
    s++;
  *cond = "com.microsoft:argument-error";
  if (kind < 0 || *s) {
    snprintf(why, wn, "The filter expression '%s' is not valid.", expr);
    return false;
  }
  if (kind == 0 && strcmp(val, EHP_OFFSET_LATEST) == 0) {
    el->next_seq = p->next_seq;
    return true;
  }
  if (kind == 0 && strcmp(val, EHP_OFFSET_START) == 0)
    return true;
  char *end;
  errno = 0;
  long long v = strtoll(val, &end, 10);
  if (!vl || *end || errno) {
    snprintf(why, wn, "The filter value '%s' is not a number.", val);
    return false;
  }
  int64_t last_seq = p->next_seq - 1;
  int64_t last_off = p->n ? p->ev[p->n - 1].offset : -1;
  *cond = "com.microsoft:argument-out-of-range";
  if (kind == 1 && v > last_seq + (incl ? 1 : 0)) {
    snprintf(why, wn,
             "The supplied sequence number '%lld' is invalid. The last sequence number in the "
             "system is '%" PRId64 "'",
             v, last_seq);
    return false;
  }
  if (kind == 0 && v > last_off && !(incl && v == p->next_off)) {
    snprintf(why, wn,
             "The supplied offset '%lld' is invalid. The last offset in the system is '%" PRId64
             "'",
             v, last_off);
    return false;
  }
  el->next_seq = p->next_seq;
  for (size_t i = p->first; i < p->n; i++) {
    const emu_event_t *ev = &p->ev[i];
    int64_t k = kind == 0 ? ev->offset : kind == 1 ? ev->seq : ev->enq_ms;
    if (k > v || (incl && k == v)) {
      el->next_seq = ev->seq;
      break;
    }
  }
  return true;
}

static void pump(emu_t *e, emu_link_t *el) {
  if (el->closed || el->kind != LK_RECV)
    return;
  pn_link_t *l = el->link;
  emu_part_t *p = &el->hub->parts[el->part];
  int64_t begin = p->first < p->n ? p->ev[p->first].seq : p->next_seq;
  if (el->next_seq < begin)
    el->next_seq = begin;
  if (pn_link_credit(l) > 0 && el->next_seq < p->next_seq)
    el->active_us = ed_time_mono_us();
  if (p->rate > 0) {
    int64_t now = ed_time_mono_us();
    p->allowance += (double)(now - p->rate_at_us) * (double)p->rate / 1e6;
    if (p->allowance > (double)p->rate)
      p->allowance = (double)p->rate; /* at most a second's worth at once */
    p->rate_at_us = now;
  }
  while (pn_link_credit(l) > 0 && el->next_seq < p->next_seq &&
         (p->rate <= 0 || p->allowance >= 1.0)) {
    if (p->rate > 0)
      p->allowance -= 1.0;
    const emu_event_t *ev = &p->ev[p->first + (size_t)(el->next_seq - begin)];
    uint64_t tag = ++el->tag;
    pn_delivery_t *d = pn_delivery(l, pn_dtag((const char *)&tag, sizeof tag));
    pn_link_send(l, (const char *)ev->bytes, ev->len);
    pn_link_advance(l);
    pn_delivery_settle(d);
    el->next_seq++;
  }
  if (pn_link_get_drain(l) && pn_link_credit(l) > 0)
    pn_link_drained(l);
  (void)e;
}

/* Every receiver of (hub, group, partition) across all connections. */
#define FOR_SCOPE(e, el, X)                                                                        \
  for (int ci_ = 0; ci_ < EMU_MAX_CONNS; ci_++)                                                    \
    if ((e)->conns[ci_])                                                                           \
      for (emu_link_t *X = (e)->conns[ci_]->links; X; X = X->next)                                 \
        if (X->kind == LK_RECV && !X->closed && X != (el) && X->hub == (el)->hub &&                \
            X->part == (el)->part && X->group == (el)->group)

static bool epoch_admit(emu_t *e, emu_link_t *el, char *why, size_t wn, const char **cond) {
  int nonepoch = 0;
  bool have_epoch = false;
  int64_t cur = 0;
  FOR_SCOPE(e, el, o) {
    if (o->has_epoch) {
      if (!have_epoch || o->epoch > cur)
        cur = o->epoch;
      have_epoch = true;
    } else
      nonepoch++;
  }
  *cond = "amqp:link:stolen";
  if (el->has_epoch) {
    if (have_epoch && el->epoch < cur) {
      snprintf(why, wn,
               "A receiver with a higher epoch '%" PRId64 "' already exists. A new receiver with "
               "epoch %" PRId64 " cannot be created. Make sure you are creating receiver with "
               "increasing epoch value to ensure connectivity, or ensure all old epoch receivers "
               "are closed or disconnected.",
               cur, el->epoch);
      return false;
    }
    FOR_SCOPE(e, el, o) {
      char msg[512];
      snprintf(msg, sizeof msg,
               "New receiver 'nil' with higher epoch of '%" PRId64 "' is created hence current "
               "receiver 'nil' with epoch '%" PRId64 "' is getting disconnected. If you are "
               "recreating the receiver, make sure a higher epoch is used.",
               el->epoch, o->has_epoch ? o->epoch : 0);
      link_detach(o, "amqp:link:stolen", msg);
    }
    return true;
  }
  if (have_epoch) {
    snprintf(why, wn,
             "At least one receiver for the endpoint is created with epoch of '%" PRId64 "', and "
             "so non-epoch receiver is not allowed. Either reconnect with a higher epoch, or "
             "make sure all epoch receivers are closed or disconnected.",
             cur);
    return false;
  }
  if (nonepoch >= EHP_MAX_NON_EPOCH_RECEIVERS) {
    *cond = "amqp:resource-limit-exceeded";
    snprintf(why, wn,
             "Exceeded the maximum number of allowed receivers per partition in a consumer group "
             "which is %d. List of connected receivers - nil, nil, nil, nil, nil.",
             EHP_MAX_NON_EPOCH_RECEIVERS);
    return false;
  }
  return true;
}

static void on_link_open(emu_conn_t *c, pn_link_t *l) {
  emu_t *e = c->emu;
  bool out = pn_link_is_sender(l); /* we send: the client receives */
  const char *addr =
      pn_terminus_get_address(out ? pn_link_remote_source(l) : pn_link_remote_target(l));
  emu_link_t *el = calloc(1, sizeof *el);
  if (!el) {
    link_fail(l, out, "amqp:internal-error", "Out of memory.");
    return;
  }
  el->link = l, el->conn = c, el->part = -1;
  el->active_us = ed_time_mono_us();
  ed_buf_init(&el->acc);
  el->next = c->links;
  c->links = el;
  pn_link_set_context(l, el);
  char path[1024], why[2400];
  uri_path(addr ? addr : "", path, sizeof path);
  const char *rest = path + 1;
  if (strcasecmp(rest, EHP_CBS_NODE) == 0 || strcasecmp(rest, EHP_MGMT_NODE) == 0) {
    bool cbs = strcasecmp(rest, EHP_CBS_NODE) == 0;
    el->kind = out ? (cbs ? LK_CBS_OUT : LK_MGMT_OUT) : (cbs ? LK_CBS_IN : LK_MGMT_IN);
    const char *ra = pn_terminus_get_address(pn_link_remote_target(l));
    if (out && ra)
      el->reply_addr = strdup(ra);
    pn_terminus_copy(pn_link_source(l), pn_link_remote_source(l));
    pn_terminus_copy(pn_link_target(l), pn_link_remote_target(l));
    pn_link_set_snd_settle_mode(l, pn_link_remote_snd_settle_mode(l));
    pn_link_set_rcv_settle_mode(l, pn_link_remote_rcv_settle_mode(l));
    pn_link_open(l);
    if (!out)
      pn_link_flow(l, 100);
    return;
  }
  /* data link: <hub>[/Partitions/<p>|/Publishers/<n>] or
   * <hub>/ConsumerGroups/<cg>/Partitions/<p> */
  char segs[5][256];
  int ns = 0;
  for (const char *s = rest; *s && ns < 5;) {
    const char *sl = strchr(s, '/');
    size_t n = sl ? (size_t)(sl - s) : strlen(s);
    snprintf(segs[ns++], sizeof segs[0], "%.*s", (int)(n < 255 ? n : 255), s);
    s = sl ? sl + 1 : s + n;
    if (sl && !*s)
      break;
  }
  emu_hub_t *h = ns ? find_hub(e, segs[0]) : NULL;
  el->kind = out ? LK_RECV : LK_SEND;
  el->path = strdup(path);
  if (!h) {
    snprintf(why, sizeof why, "The messaging entity 'sb://localhost%s' could not be found.", path);
    el->closed = true;
    link_fail(l, out, "amqp:not-found", why);
    return;
  }
  el->hub = h;
  bool shape;
  if (out)
    shape = ns == 5 && strcasecmp(segs[1], "ConsumerGroups") == 0 &&
            strcasecmp(segs[3], "Partitions") == 0;
  else
    shape = ns == 1 || (ns == 3 && (strcasecmp(segs[1], "Partitions") == 0 ||
                                    strcasecmp(segs[1], "Publishers") == 0));
  if (!shape) {
    snprintf(why, sizeof why, "The messaging entity 'sb://localhost%s' could not be found.", path);
    el->closed = true;
    link_fail(l, out, "amqp:not-found", why);
    return;
  }
  if (!conn_authorized(c, path, out ? EMU_RIGHT_LISTEN : EMU_RIGHT_SEND)) {
    snprintf(why, sizeof why,
             "Unauthorized access. '%s' claim(s) are required to perform this operation. "
             "Resource: 'sb://localhost%s'.",
             out ? "Listen" : "Send", path);
    el->closed = true;
    link_fail(l, out, "amqp:unauthorized-access", why);
    return;
  }
  if (out) {
    el->group = find_ci(h->groups, h->ngroups, segs[2]);
    el->part = parse_partition(h, segs[4]);
    if (el->group < 0) {
      snprintf(why, sizeof why, "The messaging entity 'sb://localhost%s' could not be found.",
               path);
      el->closed = true;
      link_fail(l, out, "amqp:not-found", why);
      return;
    }
    if (el->part < 0) {
      snprintf(why, sizeof why,
               "The specified partition is invalid for an EventHub partition sender or receiver. "
               "It should be between 0 and %d.",
               h->nparts - 1);
      el->closed = true;
      link_fail(l, out, "com.microsoft:argument-out-of-range", why);
      return;
    }
    pn_data_t *props = pn_link_remote_properties(l);
    if (props)
      pn_data_rewind(props);
    if (props && pn_data_next(props) && pn_data_type(props) == PN_MAP) {
      pn_data_enter(props);
      while (pn_data_next(props)) {
        bool ep = false;
        if (pn_data_type(props) == PN_SYMBOL) {
          pn_bytes_t k = pn_data_get_symbol(props);
          ep = k.size == strlen(EHP_LINK_EPOCH) && memcmp(k.start, EHP_LINK_EPOCH, k.size) == 0;
        }
        if (!pn_data_next(props))
          break;
        if (ep && pn_data_type(props) == PN_LONG)
          el->has_epoch = true, el->epoch = pn_data_get_long(props);
        else if (ep && pn_data_type(props) == PN_INT)
          el->has_epoch = true, el->epoch = pn_data_get_int(props);
      }
      pn_data_exit(props);
    }
    const char *cond = NULL;
    if (!receiver_position(e, el, l, why, sizeof why, &cond) ||
        !epoch_admit(e, el, why, sizeof why, &cond)) {
      el->closed = true;
      link_fail(l, out, cond, why);
      return;
    }
    if (el->has_epoch) {
      pn_data_t *lp = pn_link_properties(l);
      pn_data_put_map(lp);
      pn_data_enter(lp);
      pn_data_put_symbol(lp, pn_bytes(strlen(EHP_LINK_EPOCH), EHP_LINK_EPOCH));
      pn_data_put_long(lp, el->epoch);
      pn_data_exit(lp);
    }
  } else if (ns == 3 && strcasecmp(segs[1], "Publishers") == 0) {
    el->publisher = strdup(segs[2]);
  } else if (ns == 3 && strcasecmp(segs[1], "Partitions") == 0) {
    el->part = parse_partition(h, segs[2]);
    if (el->part < 0) {
      snprintf(why, sizeof why,
               "The specified partition is invalid for an EventHub partition sender or receiver. "
               "It should be between 0 and %d.",
               h->nparts - 1);
      el->closed = true;
      link_fail(l, out, "com.microsoft:argument-out-of-range", why);
      return;
    }
  }
  pn_terminus_copy(pn_link_source(l), pn_link_remote_source(l));
  pn_terminus_copy(pn_link_target(l), pn_link_remote_target(l));
  pn_link_set_snd_settle_mode(l, pn_link_remote_snd_settle_mode(l));
  pn_link_set_rcv_settle_mode(l, pn_link_remote_rcv_settle_mode(l));
  if (!out) {
    pn_link_set_max_message_size(l, (uint64_t)e->cfg.max_message_size);
    pn_link_open(l);
    pn_link_flow(l, EMU_SEND_CREDIT);
  } else {
    pn_link_open(l);
    pump(e, el);
  }
}

static void on_event(emu_conn_t *c, pn_event_t *ev) {
  switch (pn_event_type(ev)) {
  case PN_CONNECTION_REMOTE_OPEN: {
    pn_connection_t *pc = pn_event_connection(ev);
    char id[64];
    snprintf(id, sizeof id, "%08lx%08lx%08lx%08lx_G0", (unsigned long)random(),
             (unsigned long)random(), (unsigned long)random(), (unsigned long)random());
    pn_connection_set_container(pc, id);
    pn_connection_open(pc);
    break;
  }
  case PN_CONNECTION_REMOTE_CLOSE:
    pn_connection_close(pn_event_connection(ev));
    break;
  case PN_SESSION_REMOTE_OPEN: {
    pn_session_t *s = pn_event_session(ev);
    pn_session_set_incoming_capacity(s, 16u << 20);
    pn_session_open(s);
    break;
  }
  case PN_SESSION_REMOTE_CLOSE:
    pn_session_close(pn_event_session(ev));
    break;
  case PN_LINK_REMOTE_OPEN:
    on_link_open(c, pn_event_link(ev));
    break;
  case PN_LINK_REMOTE_CLOSE:
  case PN_LINK_REMOTE_DETACH: {
    pn_link_t *l = pn_event_link(ev);
    emu_link_t *el = link_ctx(l);
    if (el)
      el->closed = true;
    if (!(pn_link_state(l) & PN_LOCAL_CLOSED))
      pn_link_close(l);
    break;
  }
  case PN_LINK_FLOW: {
    emu_link_t *el = link_ctx(pn_event_link(ev));
    if (el) {
      el->active_us = ed_time_mono_us();
      pump(c->emu, el);
    }
    break;
  }
  case PN_DELIVERY:
    on_delivery(c, pn_event_delivery(ev));
    break;
  case PN_LINK_FINAL: {
    pn_link_t *l = pn_event_link(ev);
    emu_link_t *el = link_ctx(l);
    if (!el)
      break;
    for (emu_link_t **pp = &c->links; *pp; pp = &(*pp)->next)
      if (*pp == el) {
        *pp = el->next;
        break;
      }
    pn_link_set_context(l, NULL);
    ed_buf_fini(&el->acc);
    free(el->path);
    free(el->reply_addr);
    free(el->publisher);
    free(el);
    break;
  }
  default:
    break;
  }
}

static void conn_events(emu_conn_t *c) {
  pn_event_t *ev;
  while ((ev = pn_connection_driver_next_event(&c->drv)))
    on_event(c, ev);
}

/* Hands Proton's pending output to the normaliser. */
static void conn_flush(emu_conn_t *c) {
  conn_events(c);
  for (;;) {
    pn_bytes_t b = pn_connection_driver_write_buffer(&c->drv);
    if (!b.size)
      break;
    ed_buf_append(&c->pout, b.start, b.size);
    pn_connection_driver_write_done(&c->drv, b.size);
    conn_events(c);
  }
  size_t before = c->out.len;
  norm_frames(&c->pout, &c->out, c->peer_max_frame);
  if (before == 0 && c->out.len > 0)
    c->out_ready_us = ed_time_mono_us() + c->emu->delay_us;
}

static void sasl_frame(ed_buf_t *o, uint8_t code, const uint8_t *fields, size_t fl) {
  uint8_t h[8] = {0, 0, 0, 0, 2, 1, 0, 0};
  size_t at = o->len;
  ed_buf_append(o, h, 8);
  uint8_t d[3] = {0x00, 0x53, code};
  ed_buf_append(o, d, 3);
  ed_buf_append(o, fields, fl);
  put32((uint8_t *)o->data + at, (uint32_t)(o->len - at));
}

static void sasl_mechs(ed_buf_t *o) {
  static const char *mechs[] = {EHP_SASL_MSSBCBS, EHP_SASL_PLAIN, EHP_SASL_ANONYMOUS};
  ed_buf_t f = ED_BUF_INIT;
  uint8_t lh[9] = {0xd0, 0, 0, 0, 0, 0, 0, 0, 1};
  ed_buf_append(&f, lh, 9);
  uint8_t ah[11] = {0xf0, 0, 0, 0, 0, 0, 0, 0, 3, 0xb3};
  ed_buf_append(&f, ah, 10);
  size_t arr = 1;
  for (int i = 0; i < 3; i++) {
    uint8_t l[4];
    put32(l, (uint32_t)strlen(mechs[i]));
    ed_buf_append(&f, l, 4);
    ed_buf_puts(&f, mechs[i]);
  }
  put32((uint8_t *)f.data + arr + 8 + 1, (uint32_t)(f.len - 9 - 5));
  put32((uint8_t *)f.data + 1, (uint32_t)(f.len - 5));
  sasl_frame(o, 0x40, (const uint8_t *)f.data, f.len);
  ed_buf_fini(&f);
}

static void sasl_outcome(ed_buf_t *o, bool ok) {
  uint8_t f[] = {0xd0, 0, 0,   0,   16,  0,   0,   0,   2,   0x50, 0x00,
                 0xa0, 8, 'W', 'e', 'l', 'c', 'o', 'm', 'e', '!'};
  f[10] = ok ? 0 : 1;
  put32(f + 1, sizeof f - 5);
  sasl_frame(o, 0x44, f, sizeof f);
}

/* Our SASL server: returns bytes consumed, or -1 to drop the connection. */
static ssize_t sasl_input(emu_conn_t *c, const uint8_t *p, size_t n) {
  if (c->st == ST_HDR) {
    if (n < 8)
      return 0;
    if (memcmp(p, "AMQP\x03\x01\x00\x00", 8) == 0) {
      ed_buf_append(&c->out, "AMQP\x03\x01\x00\x00", 8);
      sasl_mechs(&c->out);
      c->st = ST_SASL;
      return 8;
    }
    if (memcmp(p, "AMQP\x00\x01\x00\x00", 8) == 0) {
      c->st = ST_AMQP; /* no SASL: anonymous, as the service allows after the upgrade */
      return 0;
    }
    ed_buf_append(&c->out, "AMQP\x03\x01\x00\x00", 8);
    return -1;
  }
  if (n < 8)
    return 0;
  uint32_t size = be32(p);
  if (size < 8 || size > 65536)
    return -1;
  if (n < size)
    return 0;
  size_t doff = (size_t)p[4] * 4;
  if (doff < 8 || doff > size)
    return -1;
  const uint8_t *b = p + doff;
  size_t bn = size - doff;
  if (amqp_desc_code(b, bn) != 0x41)
    return -1;
  size_t dl = amqp_desc_len(b, bn);
  span_t it[3];
  uint32_t total;
  int got = dl < bn ? amqp_items(b + dl, bn - dl, it, 3, &total) : -1;
  if (got < 1 || (it[0].p[0] != 0xa3 && it[0].p[0] != 0xb3))
    return -1;
  size_t ml = it[0].p[0] == 0xa3 ? it[0].p[1] : be32(it[0].p + 1);
  const char *mech = (const char *)it[0].p + (it[0].p[0] == 0xa3 ? 2 : 5);
  bool ok = false;
  if ((ml == 9 && memcmp(mech, "ANONYMOUS", 9) == 0) ||
      (ml == 7 && memcmp(mech, "MSSBCBS", 7) == 0))
    ok = true; /* authorization follows on $cbs */
  else if (ml == 5 && memcmp(mech, "PLAIN", 5) == 0 && got >= 2 &&
           (it[1].p[0] == 0xa0 || it[1].p[0] == 0xb0)) {
    /* [authzid] NUL authcid NUL password: key name and key */
    size_t rl = it[1].p[0] == 0xa0 ? it[1].p[1] : be32(it[1].p + 1);
    const char *r = (const char *)it[1].p + (it[1].p[0] == 0xa0 ? 2 : 5);
    const char *z1 = memchr(r, 0, rl);
    const char *z2 = z1 ? memchr(z1 + 1, 0, rl - (size_t)(z1 + 1 - r)) : NULL;
    if (z2) {
      size_t ul = (size_t)(z2 - z1 - 1), pl = rl - (size_t)(z2 + 1 - r);
      const char *kn = c->emu->cfg.key_name, *k = c->emu->key;
      if (!c->emu->cfg.disable_local_auth && ul == strlen(kn) && memcmp(z1 + 1, kn, ul) == 0 &&
          pl == strlen(k) && ed_hmac_equal(z2 + 1, k, pl)) {
        ok = true;
        conn_grant(c, "", INT64_MAX, EMU_RIGHT_ALL);
      }
    }
  }
  sasl_outcome(&c->out, ok);
  if (!ok)
    return -1;
  c->st = ST_AMQP;
  return (ssize_t)size;
}

/* The peer's OPEN (at f, size bytes), rewritten into o with a max-frame-size
 * EMU_NORM_SLACK smaller for Proton to frame by; the announced value goes to
 * c->peer_max_frame. False (o untouched) when there is nothing to rewrite. */
static bool open_shrink(emu_conn_t *c, const uint8_t *f, size_t size, ed_buf_t *o) {
  size_t doff = (size_t)f[4] * 4;
  if (doff < 8 || doff >= size)
    return false;
  const uint8_t *b = f + doff;
  size_t bn = size - doff;
  if (amqp_desc_code(b, bn) != 0x10)
    return false;
  size_t dl = amqp_desc_len(b, bn);
  span_t it[16];
  uint32_t total = 0;
  int got = dl < bn ? amqp_items(b + dl, bn - dl, it, 16, &total) : -1;
  if (got < 3 || (uint32_t)got != total)
    return false; /* no max-frame-size (no limit), or malformed: Proton says so */
  uint32_t peer;
  if (it[2].p[0] == 0x70 && it[2].n == 5)
    peer = be32(it[2].p + 1);
  else if (it[2].p[0] == 0x52 && it[2].n == 2)
    peer = it[2].p[1];
  else if (it[2].p[0] == 0x43)
    peer = 0;
  else
    return false; /* null: no limit */
  c->peer_max_frame = peer < EMU_MIN_MAX_FRAME ? EMU_MIN_MAX_FRAME : peer;
  uint32_t framed = c->peer_max_frame - EMU_NORM_SLACK;
  if (framed < EMU_MIN_MAX_FRAME)
    framed = EMU_MIN_MAX_FRAME;
  uint8_t h[8] = {0, 0, 0, 0, 2, 0, f[6], f[7]};
  ed_buf_append(o, h, 8);
  ed_buf_append(o, b, dl);
  uint8_t lh[9] = {0xd0};
  put32(lh + 5, (uint32_t)got);
  size_t at = o->len;
  ed_buf_append(o, lh, 9);
  for (int i = 0; i < got; i++) {
    if (i == 2) {
      uint8_t v[5] = {0x70};
      put32(v + 1, framed);
      ed_buf_append(o, v, 5);
    } else
      ed_buf_append(o, it[i].p, it[i].n);
  }
  put32((uint8_t *)o->data + at + 1, (uint32_t)(o->len - at - 5));
  put32((uint8_t *)o->data, (uint32_t)o->len);
  return true;
}

/* Feeds c->in to SASL, then to Proton one frame at a time. */
static void conn_input(emu_conn_t *c) {
  ed_buf_t open = ED_BUF_INIT;
  size_t pos = 0;
  const uint8_t *p = (const uint8_t *)c->in.data;
  while (!c->dead && pos < c->in.len) {
    if (c->st != ST_AMQP) {
      ssize_t r = sasl_input(c, p + pos, c->in.len - pos);
      if (r < 0) {
        c->read_closed = true;
        pn_connection_driver_close(&c->drv);
        c->dead = true;
        break;
      }
      if (r == 0 && c->st != ST_AMQP)
        break;
      pos += (size_t)r;
      continue;
    }
    size_t avail = c->in.len - pos, take;
    const uint8_t *src = p + pos;
    if (avail >= 8 && memcmp(p + pos, "AMQP", 4) == 0)
      take = 8;
    else {
      if (avail < 8)
        break;
      uint32_t size = be32(p + pos);
      if (size < 8) {
        take = avail; /* let Proton report the framing error */
      } else {
        if (avail < size)
          break;
        take = size;
        size_t doff = (size_t)p[pos + 4] * 4;
        if (!c->peer_max_frame && open_shrink(c, p + pos, size, &open)) {
          src = (const uint8_t *)open.data;
          take = open.len;
        } else if (p[pos + 5] == 0 && doff >= 8 && doff < size) {
          const uint8_t *b = p + pos + doff;
          size_t bn = size - doff;
          if (amqp_desc_code(b, bn) == 0x14) {
            size_t dl = amqp_desc_len(b, bn);
            span_t it[4];
            uint32_t total;
            int got = amqp_items(b + dl, bn - dl, it, 4, &total);
            if (got >= 4) {
              const uint8_t *f = it[3].p;
              if (f[0] == 0x70 && it[3].n == 5)
                c->last_format = be32(f + 1);
              else if (f[0] == 0x52 && it[3].n == 2)
                c->last_format = f[1];
              else if (f[0] == 0x43)
                c->last_format = 0;
            } else if (got >= 0) {
              c->last_format = 0;
            }
          }
        }
      }
    }
    size_t consumed = src == p + pos ? take : (size_t)be32(p + pos);
    while (take > 0) {
      pn_rwbytes_t rb = pn_connection_driver_read_buffer(&c->drv);
      if (!rb.size) {
        c->dead = true;
        break;
      }
      size_t n = take < rb.size ? take : rb.size;
      memcpy(rb.start, src, n);
      pn_connection_driver_read_done(&c->drv, n);
      conn_events(c);
      src += n, take -= n;
    }
    pos += consumed;
  }
  ed_buf_fini(&open);
  if (pos) {
    memmove(c->in.data, c->in.data + pos, c->in.len - pos);
    c->in.len -= pos;
  }
}

static void conn_free(emu_conn_t *c) {
  if (!c)
    return;
  for (emu_link_t *l = c->links, *n; l; l = n) {
    n = l->next;
    if (l->link)
      pn_link_set_context(l->link, NULL);
    ed_buf_fini(&l->acc);
    free(l->path);
    free(l->reply_addr);
    free(l->publisher);
    free(l);
  }
  pn_connection_driver_destroy(&c->drv);
  for (int i = 0; i < c->nauth; i++)
    free(c->auth[i].path);
  ed_buf_fini(&c->in);
  ed_buf_fini(&c->pout);
  ed_buf_fini(&c->out);
  ed_buf_fini(&c->tout);
  SSL_free(c->ssl); /* frees both BIOs */
  if (c->fd >= 0)
    close(c->fd);
  free(c);
}

/* Moves what OpenSSL wrote (handshake records, alerts, application data) to
 * the socket's queue. */
static void tls_drain(emu_conn_t *c) {
  char buf[16384];
  int n;
  while ((n = BIO_read(c->wbio, buf, sizeof buf)) > 0)
    ed_buf_append(&c->tout, buf, (size_t)n);
}

/* Ciphertext from the socket: decrypted into c->in. A failed handshake (for
 * example a client that does not trust our certificate) or a close_notify ends
 * the connection once the alert has been written. */
static void tls_input(emu_conn_t *c, const char *p, size_t n) {
  if (BIO_write(c->rbio, p, (int)n) != (int)n) {
    c->dead = c->read_closed = true;
    return;
  }
  char buf[16384];
  for (;;) {
    int r = SSL_read(c->ssl, buf, sizeof buf);
    if (r > 0) {
      ed_buf_append(&c->in, buf, (size_t)r);
      continue;
    }
    int why = SSL_get_error(c->ssl, r);
    if (why == SSL_ERROR_WANT_READ || why == SSL_ERROR_WANT_WRITE)
      break;
    ERR_clear_error();
    if (why == SSL_ERROR_ZERO_RETURN) {
      c->read_closed = true;
      pn_connection_driver_read_close(&c->drv);
    } else
      c->dead = true; /* its alert is written before the socket closes */
    break;
  }
  tls_drain(c);
}

/* Encrypts the plaintext queue once the handshake lets OpenSSL write. */
static void tls_output(emu_conn_t *c) {
  while (c->out.len) {
    int w = SSL_write(c->ssl, c->out.data, (int)(c->out.len < (1u << 30) ? c->out.len : 1u << 30));
    if (w <= 0) {
      int why = SSL_get_error(c->ssl, w);
      if (why != SSL_ERROR_WANT_READ && why != SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        c->dead = true;
        ed_buf_reset(&c->out);
      }
      break;
    }
    memmove(c->out.data, c->out.data + w, c->out.len - (size_t)w);
    c->out.len -= (size_t)w;
  }
  tls_drain(c);
}

/* Bytes not yet handed to the socket, plaintext or encrypted. */
static size_t conn_unsent(const emu_conn_t *c) { return c->out.len + c->tout.len; }

static emu_conn_t *conn_new(emu_t *e, int fd, bool tls) {
  emu_conn_t *c = calloc(1, sizeof *c);
  if (!c) {
    close(fd);
    return NULL;
  }
  c->fd = fd, c->emu = e;
  c->opened_us = c->idle_since_us = ed_time_mono_us();
  if (tls) {
    c->ssl = SSL_new(e->tls);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    if (!c->ssl || !c->rbio || !c->wbio) {
      BIO_free(c->rbio);
      BIO_free(c->wbio);
      SSL_free(c->ssl);
      close(fd);
      free(c);
      return NULL;
    }
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    SSL_set_accept_state(c->ssl);
  }
  pn_transport_t *t = pn_transport();
  pn_transport_set_server(t);
  pn_transport_require_auth(t, false);
  pn_transport_set_max_frame(t, EMU_MAX_FRAME);
  pn_transport_set_channel_max(t, 4999);
  pn_transport_set_idle_timeout(t, 240000);
  if (pn_connection_driver_init(&c->drv, pn_connection(), t) != 0) {
    SSL_free(c->ssl);
    free(c);
    close(fd);
    return NULL;
  }
  ed_buf_init(&c->in);
  ed_buf_init(&c->pout);
  ed_buf_init(&c->out);
  ed_buf_init(&c->tout);
  return c;
}

/* ---- sockets ---- */

static int listen_on(const char *host, int port, int *bound, ed_err_t *err) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return ed_err_set(err, ED_E_IO, "socket: %s", strerror(errno)), -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
    close(fd);
    return ed_err_set(err, ED_E_CONFIG, "--host '%s': expected an IPv4 address", host), -1;
  }
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 64) != 0) {
    ed_err_set(err, ED_E_IO, "listen on %s:%d: %s", host, port, strerror(errno));
    close(fd);
    return -1;
  }
  socklen_t al = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &al);
  *bound = ntohs(a.sin_port);
  fcntl(fd, F_SETFL, O_NONBLOCK);
  return fd;
}

/* The AMQPS server context: TLS 1.2 or later, the certificate chain and its key. */
static ed_code_t tls_context(const emu_config_t *cfg, SSL_CTX **out, ed_err_t *err) {
  if (!cfg->cert != !cfg->tls_key)
    return ed_err_set(err, ED_E_CONFIG, "--cert and --key: AMQPS needs both, got only --%s",
                      cfg->cert ? "cert" : "key");
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx)
    return ed_err_set(err, ED_E_TLS, "TLS: cannot make an OpenSSL context");
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  const char *flag = "--cert", *file = cfg->cert;
  bool ok = SSL_CTX_use_certificate_chain_file(ctx, cfg->cert) == 1;
  if (ok) {
    flag = "--key", file = cfg->tls_key;
    ok = SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) == 1 &&
         SSL_CTX_check_private_key(ctx) == 1;
  }
  if (!ok) {
    unsigned long e = ERR_get_error();
    const char *why = ERR_reason_error_string(e);
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return ed_err_set(err, ED_E_TLS, "%s '%s': expected a PEM %s (%s)", flag, file,
                      strcmp(flag, "--cert") == 0 ? "certificate" : "private key of the --cert",
                      why ? why : "unreadable");
  }
  *out = ctx;
  return ED_OK;
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

static ed_code_t hub_init(emu_t *e, emu_hub_t *h, const emu_hubspec_t *spec, ed_err_t *err) {
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
    if (find_ci(h->groups, h->ngroups, spec->groups[i]) < 0)
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
    hub_retain(e, p);
  }
  return ED_OK;
}

static void hub_fini(emu_hub_t *h) {
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
static ed_code_t lock_data_dir(emu_t *e, ed_err_t *err) {
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

ed_code_t emu_new(const emu_config_t *cfg, const char *key, emu_t **out, ed_err_t *err) {
  /* TrackingIds and container-ids come from random(): without a seed every
   * run would repeat the last one's */
  unsigned seed;
  if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed)
    return ed_err_set(err, ED_E_IO, "ehemu: getrandom: %s", strerror(errno));
  srandom(seed);
  emu_t *e = calloc(1, sizeof *e);
  if (!e)
    return ed_err_set(err, ED_E_NOMEM, "ehemu: out of memory");
  e->cfg = *cfg;
  if (e->cfg.max_message_size <= 0)
    e->cfg.max_message_size = EHP_MAX_MESSAGE_SIZE;
  e->key = strdup(key);
  e->lfd = e->cfd = e->tfd = e->lockfd = -1;
  if (cfg->jwks_file) {
    ed_code_t jrc =
        emu_jwt_new(cfg->jwks_file, cfg->jwt_issuer, cfg->jwt_audience, cfg->roles, &e->jwt, err);
    if (jrc) {
      free(e->key);
      free(e);
      return jrc;
    }
  } else if (cfg->disable_local_auth || cfg->roles) {
    free(e->key);
    free(e);
    return ed_err_set(err, ED_E_CONFIG,
                      "%s needs --jwks FILE (the keys Entra ID tokens are checked against)",
                      cfg->roles ? "--role" : "--disable-local-auth");
  }
  e->tport = -1;
  emu_hubspec_t one = {cfg->hub, (int)cfg->partitions, cfg->groups};
  const emu_hubspec_t *specs = cfg->nhubs > 0 ? cfg->hubs : &one;
  int n = cfg->nhubs > 0 ? cfg->nhubs : 1;
  e->hubs = calloc((size_t)n, sizeof *e->hubs);
  if (!e->key || !e->hubs) {
    emu_free(e);
    return ed_err_set(err, ED_E_NOMEM, "ehemu: out of memory");
  }
  ed_code_t rc = cfg->data_dir ? lock_data_dir(e, err) : ED_OK;
  for (int i = 0; i < n && rc == ED_OK; i++) {
    e->nhubs++;
    rc = hub_init(e, &e->hubs[i], &specs[i], err);
  }
  if (rc != ED_OK) {
    emu_free(e);
    return rc;
  }
  e->lfd = listen_on(cfg->host, (int)cfg->port, &e->port, err);
  if (e->lfd < 0) {
    emu_free(e);
    return err ? err->code : ED_E_IO;
  }
  e->cfd = listen_on("127.0.0.1", (int)cfg->ctl_port, &e->cport, err);
  if (e->cfd < 0) {
    emu_free(e);
    return err ? err->code : ED_E_IO;
  }
  if (cfg->cert || cfg->tls_key) {
    rc = tls_context(cfg, &e->tls, err);
    if (rc == ED_OK && (e->tfd = listen_on(cfg->host, (int)cfg->tls_port, &e->tport, err)) < 0)
      rc = err ? err->code : ED_E_IO;
    if (rc != ED_OK) {
      emu_free(e);
      return rc;
    }
  }
  *out = e;
  return ED_OK;
}

void emu_free(emu_t *e) {
  if (!e)
    return;
  for (int i = 0; i < EMU_MAX_CONNS; i++)
    conn_free(e->conns[i]);
  for (int i = 0; i < e->nctl; i++) {
    close(e->ctls[i].fd);
    ed_buf_fini(&e->ctls[i].in);
    ed_buf_fini(&e->ctls[i].out);
  }
  for (int i = 0; i < e->nhubs; i++)
    hub_fini(&e->hubs[i]);
  free(e->hubs);
  free(e->key);
  emu_jwt_free(e->jwt);
  if (e->lfd >= 0)
    close(e->lfd);
  if (e->cfd >= 0)
    close(e->cfd);
  if (e->tfd >= 0)
    close(e->tfd);
  if (e->lockfd >= 0)
    close(e->lockfd);
  SSL_CTX_free(e->tls);
  free(e);
}

int emu_amqp_port(const emu_t *e) { return e->port; }
int emu_ctl_port(const emu_t *e) { return e->cport; }
int emu_tls_port(const emu_t *e) { return e->tfd >= 0 ? e->tport : -1; }

/* ---- the control channel: one command per line, "ok" or "error ..." back ---- */

static void ctl_line(emu_t *e, emu_ctl_t *k, char *line) {
  char cmd[32] = "", arg[256] = "";
  sscanf(line, "%31s %255[^\n]", cmd, arg);
  if (strcmp(cmd, "drop") == 0) {
    for (int i = 0; i < EMU_MAX_CONNS; i++)
      if (e->conns[i]) {
        conn_free(e->conns[i]);
        e->conns[i] = NULL;
      }
  } else if (strcmp(cmd, "busy") == 0) {
    e->busy_left = atoll(arg);
  } else if (strcmp(cmd, "detach") == 0) {
    const char *cond = arg[0] ? arg : "amqp:link:detach-forced";
    for (int i = 0; i < EMU_MAX_CONNS; i++)
      if (e->conns[i])
        for (emu_link_t *l = e->conns[i]->links; l; l = l->next)
          if (l->kind == LK_RECV)
            link_detach(l, cond, "The link was detached by the emulator's control channel.");
  } else if (strcmp(cmd, "delay") == 0) {
    e->delay_us = atoll(arg) * 1000;
  } else if (strcmp(cmd, "slow") == 0) {
    /* slow PARTITION RATE: that partition of every hub delivers at most RATE
     * events a second (0: as fast as credit allows), so tests can skew reads */
    int part = -1;
    long long rate = -1;
    if (sscanf(arg, "%d %lld", &part, &rate) != 2 || part < 0 || rate < 0) {
      ed_buf_printf(&k->out, "error slow '%s': expected PARTITION RATE (events/s, 0: no limit)\n",
                    arg);
      return;
    }
    for (int h = 0; h < e->nhubs; h++)
      if (part < e->hubs[h].nparts) {
        emu_part_t *pp = &e->hubs[h].parts[part];
        pp->rate = rate;
        pp->rate_at_us = ed_time_mono_us();
        pp->allowance = 0;
      }
  } else if (strcmp(cmd, "expire") == 0) {
    for (int i = 0; i < EMU_MAX_CONNS; i++)
      if (e->conns[i])
        for (int j = 0; j < e->conns[i]->nauth; j++)
          e->conns[i]->auth[j].exp_us = 0;
  } else if (strcmp(cmd, "ping") != 0) {
    ed_buf_printf(&k->out, "error unknown command '%s'\n", cmd);
    return;
  }
  ed_buf_puts(&k->out, "ok\n");
}

/* The service's inactivity rules (§1.3, from event-hubs-amqp-troubleshoot):
 * a data link idle for 10 minutes is detached with amqp:link:detach-forced; a
 * connection without links for 5 minutes, or that opened none in its first
 * minute, is closed with amqp:connection:forced. Each bound is a flag. */
static void check_idle(emu_t *e) {
  int64_t now = ed_time_mono_us();
  const emu_config_t *k = &e->cfg;
  for (int i = 0; i < EMU_MAX_CONNS; i++) {
    emu_conn_t *c = e->conns[i];
    if (!c || c->forced || c->st != ST_AMQP)
      continue;
    int open = 0;
    for (emu_link_t *l = c->links; l; l = l->next) {
      if (l->closed)
        continue;
      open++;
      if (k->idle_link_us > 0 && (l->kind == LK_SEND || l->kind == LK_RECV) &&
          now - l->active_us > k->idle_link_us) {
        char msg[300];
        snprintf(msg, sizeof msg,
                 "The link '%s' is force detached by the broker because it was idle. Detach "
                 "origin: AmqpMessage%s.IdleTimerExpired: Idle timeout: %" PRId64 " ms.",
                 pn_link_name(l->link), l->kind == LK_SEND ? "Publisher" : "Consumer",
                 k->idle_link_us / 1000);
        link_detach(l, "amqp:link:detach-forced", msg);
      }
    }
    if (open) {
      c->had_link = true;
      c->idle_since_us = now;
      continue;
    }
    int64_t limit = c->had_link ? k->idle_conn_us : k->idle_first_us;
    if (limit <= 0 || now - (c->had_link ? c->idle_since_us : c->opened_us) <= limit)
      continue;
    char msg[300];
    snprintf(msg, sizeof msg,
             "The connection was inactive for more than the allowed %" PRId64
             " milliseconds and is closed by container 'LinkTracker'.",
             limit / 1000);
    pn_connection_t *pc = c->drv.connection;
    set_cond(pn_connection_condition(pc), "amqp:connection:forced", msg);
    pn_connection_close(pc);
    c->forced = true;
  }
}

/* Links whose token expired are detached (§3.4). */
static void check_tokens(emu_t *e) {
  for (int i = 0; i < EMU_MAX_CONNS; i++) {
    emu_conn_t *c = e->conns[i];
    if (!c)
      continue;
    for (emu_link_t *l = c->links; l; l = l->next)
      if ((l->kind == LK_SEND || l->kind == LK_RECV) && !l->closed && l->path &&
          !conn_authorized(c, l->path, l->kind == LK_RECV ? EMU_RIGHT_LISTEN : EMU_RIGHT_SEND))
        link_detach(l, "amqp:unauthorized-access",
                    "Unauthorized access. The token for this link has expired.");
  }
}

static void accept_conn(emu_t *e, int lfd, bool tls) {
  int fd = accept(lfd, NULL, NULL);
  if (fd < 0)
    return;
  int slot = -1;
  for (int i = 0; i < EMU_MAX_CONNS && slot < 0; i++)
    if (!e->conns[i])
      slot = i;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  fcntl(fd, F_SETFL, O_NONBLOCK);
  if (slot < 0)
    close(fd);
  else
    e->conns[slot] = conn_new(e, fd, tls);
}

ed_code_t emu_run(emu_t *e, volatile int *stop, ed_err_t *err) {
  struct pollfd pf[3 + 8 + EMU_MAX_CONNS];
  int64_t last_check = 0;
  while (!*stop) {
    int np = 0;
    pf[np++] = (struct pollfd){.fd = e->lfd, .events = POLLIN};
    pf[np++] = (struct pollfd){.fd = e->cfd, .events = POLLIN};
    pf[np++] = (struct pollfd){.fd = e->tfd, .events = POLLIN}; /* -1: ignored by poll */
    for (int i = 0; i < e->nctl; i++)
      pf[np++] = (struct pollfd){.fd = e->ctls[i].fd,
                                 .events = (short)(POLLIN | (e->ctls[i].out.len ? POLLOUT : 0))};
    int64_t now = ed_time_mono_us();
    int timeout = 100;
    int idx[EMU_MAX_CONNS];
    for (int i = 0; i < EMU_MAX_CONNS; i++) {
      emu_conn_t *c = e->conns[i];
      idx[i] = -1;
      if (!c)
        continue;
      short ev = c->read_closed ? 0 : POLLIN;
      if ((c->out.len && now >= c->out_ready_us) || c->tout.len)
        ev |= POLLOUT;
      else if (c->out.len)
        timeout = 5;
      idx[i] = np;
      pf[np++] = (struct pollfd){.fd = c->fd, .events = ev};
    }
    if (poll(pf, (nfds_t)np, timeout) < 0 && errno != EINTR)
      return ed_err_set(err, ED_E_IO, "poll: %s", strerror(errno));
    if (pf[0].revents & POLLIN)
      accept_conn(e, e->lfd, false);
    if (pf[2].revents & POLLIN)
      accept_conn(e, e->tfd, true);
    int npolled = e->nctl; /* a control client accepted now has no pollfd yet */
    if (pf[1].revents & POLLIN) {
      int fd = accept(e->cfd, NULL, NULL);
      if (fd >= 0 && e->nctl < 8) {
        fcntl(fd, F_SETFL, O_NONBLOCK);
        e->ctls[e->nctl] = (emu_ctl_t){.fd = fd};
        ed_buf_init(&e->ctls[e->nctl].in);
        ed_buf_init(&e->ctls[e->nctl].out);
        e->nctl++;
      } else if (fd >= 0)
        close(fd);
    }
    for (int i = 0; i < npolled; i++) {
      emu_ctl_t *k = &e->ctls[i];
      short re = pf[3 + i].revents;
      bool gone = false;
      if (re & (POLLIN | POLLHUP)) {
        char buf[1024];
        ssize_t r = read(k->fd, buf, sizeof buf);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
          gone = true;
        else if (r < 0) {
        } else {
          ed_buf_append(&k->in, buf, (size_t)r);
          char *nl;
          while ((nl = memchr(k->in.data, '\n', k->in.len))) {
            *nl = 0;
            ctl_line(e, k, k->in.data);
            size_t used = (size_t)(nl - k->in.data) + 1;
            memmove(k->in.data, nl + 1, k->in.len - used);
            k->in.len -= used;
          }
        }
      }
      if (!gone && k->out.len) {
        ssize_t w = write(k->fd, k->out.data, k->out.len);
        if (w > 0) {
          memmove(k->out.data, k->out.data + w, k->out.len - (size_t)w);
          k->out.len -= (size_t)w;
        }
      }
      if (gone) {
        close(k->fd);
        ed_buf_fini(&k->in);
        ed_buf_fini(&k->out);
        e->ctls[i] = e->ctls[--e->nctl];
        i--;
        break; /* pollfd indexes moved: resume next round */
      }
    }
    for (int i = 0; i < EMU_MAX_CONNS; i++) {
      emu_conn_t *c = e->conns[i];
      if (!c || idx[i] < 0)
        continue;
      short re = pf[idx[i]].revents;
      if (re & (POLLIN | POLLHUP | POLLERR)) {
        char buf[65536];
        ssize_t r = read(c->fd, buf, sizeof buf);
        if (r > 0) {
          if (c->ssl)
            tls_input(c, buf, (size_t)r);
          else
            ed_buf_append(&c->in, buf, (size_t)r);
          conn_input(c);
        } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
          c->read_closed = true;
          pn_connection_driver_read_close(&c->drv);
        }
      }
    }
    /* new events anywhere may feed receivers anywhere */
    now = ed_time_mono_us();
    if (now - last_check > 200000) {
      check_tokens(e);
      check_idle(e);
      for (int h = 0; h < e->nhubs; h++) /* time retention runs even when nothing arrives */
        for (int p = 0; p < e->hubs[h].nparts; p++)
          hub_retain(e, &e->hubs[h].parts[p]);
      last_check = now;
    }
    for (int i = 0; i < EMU_MAX_CONNS; i++) {
      emu_conn_t *c = e->conns[i];
      if (!c)
        continue;
      for (emu_link_t *l = c->links; l; l = l->next)
        pump(e, l);
      pn_transport_tick(c->drv.transport, ed_time_mono_us() / 1000);
      conn_flush(c);
      if (c->ssl && c->out.len && ed_time_mono_us() >= c->out_ready_us)
        tls_output(c);
      if (c->ssl && !c->tls_shut && pn_connection_driver_finished(&c->drv) && !c->out.len) {
        c->tls_shut = true; /* close_notify after the AMQP close */
        SSL_shutdown(c->ssl);
        ERR_clear_error();
        tls_drain(c);
      }
      ed_buf_t *q = c->ssl ? &c->tout : &c->out;
      if (q->len && (c->ssl || ed_time_mono_us() >= c->out_ready_us)) {
        ssize_t w = write(c->fd, q->data, q->len);
        if (w > 0) {
          memmove(q->data, q->data + w, q->len - (size_t)w);
          q->len -= (size_t)w;
        } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
          c->dead = true;
          ed_buf_reset(&c->out);
          ed_buf_reset(&c->tout);
        }
      }
      if (c->dead && conn_unsent(c) == 0)
        pn_connection_driver_write_close(&c->drv);
      if ((c->dead && (conn_unsent(c) == 0 || c->read_closed)) ||
          (pn_connection_driver_finished(&c->drv) && conn_unsent(c) == 0) ||
          (c->read_closed && pn_connection_driver_finished(&c->drv))) {
        conn_free(c);
        e->conns[i] = NULL;
      }
    }
  }
  return ED_OK;
}
