/* conn: one client connection. Bytes from its socket go (through TLS on the
 * AMQPS listener) to our SASL server, then one AMQP frame at a time into a
 * pn_connection_driver; each incoming TRANSFER's message-format is read from
 * the raw frame on the way (§13: Proton drops it). Proton's output goes back
 * through the normaliser. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "emu/emu_int.h"

static void conn_events(emu_conn_t *c) {
  pn_event_t *ev;
  while ((ev = pn_connection_driver_next_event(&c->drv)))
    emu_link_event(c, ev);
}

bool emu_conn_pull(emu_conn_t *c) {
  pn_bytes_t b = pn_connection_driver_write_buffer(&c->drv);
  if (!b.size)
    return false;
  ed_buf_append(&c->pout, b.start, b.size);
  pn_connection_driver_write_done(&c->drv, b.size);
  return true;
}

/* Hands Proton's pending output to the normaliser. */
void emu_conn_flush(emu_conn_t *c) {
  conn_events(c);
  while (emu_conn_pull(c))
    conn_events(c);
  size_t before = c->out.len;
  if (emu_norm_frames(&c->pout, &c->out, c->peer_max_frame) != ED_OK) {
    ED_LOG_ERR("emu_conn_dropped", "reason=\"out of memory writing frames\"");
    c->dead = true;
  }
  if (before == 0 && c->out.len > 0)
    c->out_ready_us = ed_time_mono_us() + c->emu->delay_us;
}

/* Feeds c->in to SASL, then to Proton one frame at a time. */
void emu_conn_input(emu_conn_t *c) {
  ed_buf_t open = ED_BUF_INIT;
  size_t pos = 0;
  const uint8_t *p = (const uint8_t *)c->in.data;
  while (!c->dead && pos < c->in.len) {
    if (c->st != ST_AMQP) {
      ssize_t r = emu_sasl_input(c, p + pos, c->in.len - pos);
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
    if (avail >= AMQP_FRAME_HEADER && memcmp(p + pos, "AMQP", 4) == 0)
      take = AMQP_FRAME_HEADER;
    else {
      if (avail < AMQP_FRAME_HEADER)
        break;
      uint32_t size = amqp_be32(p + pos);
      if (size < AMQP_FRAME_HEADER) {
        take = avail; /* let Proton report the framing error */
      } else {
        if (avail < size)
          break;
        take = size;
        if (!c->peer_max_frame && emu_norm_open(c, p + pos, size, &open)) {
          src = (const uint8_t *)open.data;
          take = open.len;
        } else if (p[pos + 5] == AMQP_FRAME_TYPE_AMQP) {
          emu_norm_transfer_format(c, p + pos, size);
        }
      }
    }
    size_t consumed = src == p + pos ? take : (size_t)amqp_be32(p + pos);
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

void emu_conn_free(emu_conn_t *c) {
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

/* Bytes not yet handed to the socket, plaintext or encrypted. */
size_t emu_conn_unsent(const emu_conn_t *c) { return c->out.len + c->tout.len; }

emu_conn_t *emu_conn_new(emu_t *e, int fd, bool tls) {
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
