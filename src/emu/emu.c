/* emu: the emulator object (see emu.h, and emu_int.h for its modules): the
 * listeners, the poll loop that moves bytes between sockets and connections,
 * the control channel (one command per line, "ok" or "error ..." back), and
 * the idle-connection and token-expiry checks. */
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
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/err.h>

#include "common/log.h"
#include "emu/emu_int.h"

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
  ed_code_t rc = cfg->data_dir ? emu_hub_lock_dir(e, err) : ED_OK;
  for (int i = 0; i < n && rc == ED_OK; i++) {
    e->nhubs++;
    rc = emu_hub_init(e, &e->hubs[i], &specs[i], err);
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
    rc = emu_tls_context(cfg, &e->tls, err);
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
    emu_conn_free(e->conns[i]);
  for (int i = 0; i < e->nctl; i++) {
    close(e->ctls[i].fd);
    ed_buf_fini(&e->ctls[i].in);
    ed_buf_fini(&e->ctls[i].out);
  }
  for (int i = 0; i < e->nhubs; i++)
    emu_hub_fini(&e->hubs[i]);
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

static void ctl_line(emu_t *e, emu_ctl_t *k, char *line) {
  char cmd[32] = "", arg[256] = "";
  sscanf(line, "%31s %255[^\n]", cmd, arg);
  if (strcmp(cmd, "drop") == 0) {
    for (int i = 0; i < EMU_MAX_CONNS; i++)
      if (e->conns[i]) {
        emu_conn_free(e->conns[i]);
        e->conns[i] = NULL;
      }
  } else if (strcmp(cmd, "busy") == 0) {
    e->busy_left = atoll(arg);
  } else if (strcmp(cmd, "detach") == 0) {
    const char *cond = arg[0] ? arg : ehp_cond_name(EHP_COND_DETACH_FORCED);
    for (int i = 0; i < EMU_MAX_CONNS; i++)
      if (e->conns[i])
        for (emu_link_t *l = e->conns[i]->links; l; l = l->next)
          if (l->kind == LK_RECV)
            emu_link_detach(l, cond, "The link was detached by the emulator's control channel.");
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
        emu_link_detach(l, ehp_cond_name(EHP_COND_DETACH_FORCED), msg);
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
    emu_link_cond(pn_connection_condition(pc), ehp_cond_name(EHP_COND_CONNECTION_FORCED), msg);
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
          !emu_node_authorized(c, l->path, l->kind == LK_RECV ? EMU_RIGHT_LISTEN : EMU_RIGHT_SEND))
        emu_link_detach(l, ehp_cond_name(EHP_COND_UNAUTHORIZED),
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
    e->conns[slot] = emu_conn_new(e, fd, tls);
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
            emu_tls_input(c, buf, (size_t)r);
          else
            ed_buf_append(&c->in, buf, (size_t)r);
          emu_conn_input(c);
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
          emu_hub_retain(e, &e->hubs[h].parts[p]);
      last_check = now;
    }
    for (int i = 0; i < EMU_MAX_CONNS; i++) {
      emu_conn_t *c = e->conns[i];
      if (!c)
        continue;
      for (emu_link_t *l = c->links; l; l = l->next)
        emu_link_pump(e, l);
      pn_transport_tick(c->drv.transport, ed_time_mono_us() / 1000);
      emu_conn_flush(c);
      if (c->ssl && c->out.len && ed_time_mono_us() >= c->out_ready_us)
        emu_tls_output(c);
      if (c->ssl && !c->tls_shut && pn_connection_driver_finished(&c->drv) && !c->out.len) {
        c->tls_shut = true; /* close_notify after the AMQP close */
        SSL_shutdown(c->ssl);
        ERR_clear_error();
        emu_tls_drain(c);
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
      if (c->dead && emu_conn_unsent(c) == 0)
        pn_connection_driver_write_close(&c->drv);
      if ((c->dead && (emu_conn_unsent(c) == 0 || c->read_closed)) ||
          (pn_connection_driver_finished(&c->drv) && emu_conn_unsent(c) == 0) ||
          (c->read_closed && pn_connection_driver_finished(&c->drv))) {
        emu_conn_free(c);
        e->conns[i] = NULL;
      }
    }
  }
  return ED_OK;
}
