/* emu/event: an event as ehemu stores it, and the message reading and
 * stamping that turn what a sender sent into it: the message split into its
 * sections (reference eventhubs-amqp.md §8.4, a batch is one data section per
 * event) and re-encoded with the annotations the service adds (§6.6).
 * Owns nothing beyond what it returns; no I/O. Used by the emulator's
 * partitions and by tests/fuzz/fuzz_amqp.c, which reads what it writes back
 * through the client's decoder. */
#ifndef ED_EMU_EVENT_H
#define ED_EMU_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "amqp/value.h"
#include "common/err.h"

/* A run of bytes: an encoded message or a section of one. */
typedef struct emu_span {
  const uint8_t *p;
  size_t n;
} emu_span_t;

typedef struct emu_event {
  uint8_t *bytes; /* the whole message as delivered, annotations included */
  uint32_t len;
  int64_t seq, offset, enq_ms;
} emu_event_t;

/* A message read into its sections; borrows from the message bytes. */
typedef struct emu_msg {
  amqp_val_t *sec; /* sec_inline, or malloc'd for an SDK batch of many data sections */
  amqp_val_t sec_inline[16];
  int nsec, cap;
  int ann; /* index of message-annotations, -1 */
  amqp_val_t ann_items[128];
  int nann;
} emu_msg_t;

/* Splits the message m (n bytes) into v (caller-allocated); false when it is
 * not a sequence of well-formed sections or has more than 128 annotation
 * items. Free v with emu_msg_free either way. */
bool emu_msg_split(const uint8_t *m, size_t n, emu_msg_t *v);
/* Frees what emu_msg_split allocated in v, and v itself (malloc'd). */
void emu_msg_free(emu_msg_t *v);
/* The string value of key in a map's items (as amqp_items read them). */
bool emu_msg_find_str(const amqp_val_t *it, int n, const char *key, const char **v, size_t *vl);

/* Encodes the message m (n bytes) as delivered: its delivery annotations
 * dropped, message annotations with ev->seq, ev->offset, ev->enq_ms, the
 * partition key pk (pkl bytes; unless the message has its own) and the
 * publisher pub (both may be NULL) stamped. ev->bytes: caller frees.
 * ED_E_PARSE when m does not split, ED_E_NOMEM. */
ed_code_t emu_event_stamp(const uint8_t *m, size_t n, const char *pk, size_t pkl, const char *pub,
                          emu_event_t *ev);

#endif
