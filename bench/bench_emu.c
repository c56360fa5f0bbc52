/* bench_emu: events/s ehemu accepts from one sender and delivers to one
 * counting receiver, 200-byte events, loopback, Proton proactor client with
 * SASL PLAIN. Baseline printed beside: the same client encoding the same
 * events with pn_message_encode (the floor a client pays per event).
 * usage: bench_emu PORT KEY [N] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <proton/connection.h>
#include <proton/delivery.h>
#include <proton/event.h>
#include <proton/link.h>
#include <proton/message.h>
#include <proton/proactor.h>
#include <proton/sasl.h>
#include <proton/session.h>
#include <proton/terminus.h>
#include <proton/transport.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long n_events = 200000, sent, accepted, received;
static char payload[4096];
static size_t payload_len;
static double t0, t_send, t_recv;
static pn_link_t *snd, *rcv;

static void encode_event(void) {
  pn_message_t *m = pn_message();
  char body[200];
  memset(body, 'x', sizeof body);
  pn_data_put_binary(pn_message_body(m), pn_bytes(sizeof body, body));
  payload_len = sizeof payload;
  pn_message_encode(m, payload, &payload_len);
  pn_message_free(m);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: bench_emu PORT KEY [N]\n");
    return 2;
  }
  if (argc > 3)
    n_events = atol(argv[3]);
  /* baseline: encoding the events client-side */
  double b0 = now_s();
  for (long i = 0; i < n_events; i++)
    encode_event();
  double base = (double)n_events / (now_s() - b0);

  pn_proactor_t *p = pn_proactor();
  pn_connection_t *c = pn_connection();
  pn_connection_set_user(c, "RootManageSharedAccessKey");
  pn_connection_set_password(c, argv[2]);
  pn_transport_t *t = pn_transport();
  pn_sasl_t *sasl = pn_sasl(t);
  pn_sasl_allowed_mechs(sasl, "PLAIN");
  pn_sasl_set_allow_insecure_mechs(sasl, true);
  char addr[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%s", argv[1]);
  pn_proactor_connect2(p, c, t, addr);
  bool done = false, failed = false;
  while (!done) {
    pn_event_batch_t *batch = pn_proactor_wait(p);
    pn_event_t *e;
    while ((e = pn_event_batch_next(batch))) {
      switch (pn_event_type(e)) {
      case PN_CONNECTION_INIT: {
        pn_connection_set_container(c, "bench_emu");
        pn_connection_open(c);
        pn_session_t *s = pn_session(c);
        pn_session_set_incoming_capacity(s, 64u << 20);
        pn_session_open(s);
        snd = pn_sender(s, "bench-sender");
        pn_terminus_set_address(pn_link_target(snd), "eh1/Partitions/0");
        pn_link_open(snd);
        encode_event();
        t0 = now_s();
        break;
      }
      case PN_LINK_FLOW:
        if (pn_event_link(e) == snd) {
          while (pn_link_credit(snd) > 0 && sent < n_events) {
            long tag = sent++;
            pn_delivery(snd, pn_dtag((const char *)&tag, sizeof tag));
            pn_link_send(snd, payload, payload_len);
            pn_link_advance(snd);
          }
        }
        break;
      case PN_DELIVERY: {
        pn_delivery_t *d = pn_event_delivery(e);
        if (pn_delivery_link(d) == snd) {
          if (pn_delivery_remote_state(d) != PN_ACCEPTED)
            failed = true;
          pn_delivery_settle(d);
          if (++accepted == n_events) {
            t_send = now_s() - t0;
            pn_session_t *s = pn_link_session(snd);
            rcv = pn_receiver(s, "bench-receiver");
            pn_terminus_set_address(pn_link_source(rcv),
                                    "eh1/ConsumerGroups/$Default/Partitions/0");
            pn_link_open(rcv);
            pn_link_flow(rcv, 1000);
            t0 = now_s();
          }
        } else if (pn_delivery_link(d) == rcv && !pn_delivery_partial(d)) {
          char buf[4096];
          while (pn_link_recv(rcv, buf, sizeof buf) > 0)
            ;
          pn_link_advance(rcv);
          pn_delivery_settle(d);
          if (++received == n_events) {
            t_recv = now_s() - t0;
            pn_connection_close(c);
          } else if (pn_link_credit(rcv) < 500)
            pn_link_flow(rcv, 1000 - pn_link_credit(rcv));
        }
        break;
      }
      case PN_TRANSPORT_CLOSED:
        if (received < n_events)
          failed = true;
        done = true;
        break;
      default:
        break;
      }
    }
    pn_proactor_done(p, batch);
  }
  pn_proactor_free(p);
  if (failed) {
    fprintf(stderr, "bench_emu: failed (accepted %ld, received %ld of %ld)\n", accepted, received,
            n_events);
    return 1;
  }
  printf("bench_emu: %ld events of 200 bytes\n", n_events);
  printf("  accepted from one sender:  %10.0f events/s\n", (double)n_events / t_send);
  printf("  delivered to one receiver: %10.0f events/s\n", (double)n_events / t_recv);
  printf("  baseline (client pn_message_encode of the same event): %10.0f events/s\n", base);
  return 0;
}
