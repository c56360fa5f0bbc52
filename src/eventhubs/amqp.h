/* amqp: the AMQP 1.0 message codec of the data path (AMQP 1.0 part 3,
 * "Messaging" §3.2, and part 1 "Types"). Decodes a received delivery's bytes
 * in place, without copying: the body and string annotations point into the
 * delivery buffer. Encodes an event to send as one message (message
 * annotations, properties, application properties, one data section).
 * Owns nothing; pure functions over caller buffers. Values are read and
 * written through the shared src/amqp reader and writer. Used by receiver.c
 * and sender.c, and by the tests, which check it against Proton's own
 * pn_message codec. */
#ifndef ED_EVENTHUBS_AMQP_H
#define ED_EVENTHUBS_AMQP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "eventhubs/client.h"

/* What eh_amqp_decode found. Pointers borrow from the decoded bytes. */
typedef struct eh_amqp_msg {
  eh_body_kind_t body_kind;
  const uint8_t *body; /* first data section (or the amqp-value payload) */
  size_t body_len;
  unsigned ndata;               /* data sections seen; > 1 means body holds only the first */
  const uint8_t *body_sections; /* all body sections, encoded (for OTHER and ndata > 1) */
  size_t body_sections_len;
  bool has_seq, has_offset, has_enqueued;
  int64_t seq;
  int64_t offset;
  int64_t enqueued_ms;
  const char *partition_key;
  size_t partition_key_len;
  const char *publisher;
  size_t publisher_len;
  const char *content_type;
  size_t content_type_len;
  const uint8_t *app_props; /* the application-properties map value, encoded; NULL if absent */
  size_t app_props_len;
} eh_amqp_msg_t;

/* Decodes one message (all sections). ED_E_PARSE names what was malformed. */
ed_code_t eh_amqp_decode(const uint8_t *p, size_t n, eh_amqp_msg_t *m, ed_err_t *err);
/* The same decoding with every value through the general reader, none of the
 * inline paths for the service's usual encodings: what eh_amqp_decode must
 * agree with, byte for byte (the unit tests hold them side by side). */
ed_code_t eh_amqp_decode_general(const uint8_t *p, size_t n, eh_amqp_msg_t *m, ed_err_t *err);

/* Concatenates the payloads of every data section in sections into out. */
ed_code_t eh_amqp_data_concat(const uint8_t *sections, size_t n, ed_buf_t *out);

/* One rendered application property, as offsets into the arena or the wire:
 * text_in_arena says which. */
typedef struct eh_amqp_prop {
  const char *key;
  size_t key_len;
  size_t text_off;       /* offset in arena when text_in_arena, else ignored */
  const char *text_wire; /* the wire bytes when !text_in_arena */
  size_t text_len;
  bool text_in_arena;
  eh_val_kind_t kind;
} eh_amqp_prop_t;

/* Walks the application-properties map (m->app_props) and appends one entry
 * per key to *props (a growing array the caller frees with free()), rendering
 * non-string values as text into arena. *nprops gets the count appended. */
ed_code_t eh_amqp_props(const uint8_t *map, size_t n, ed_buf_t *arena, eh_amqp_prop_t **props,
                        size_t *cap, size_t *nprops, ed_err_t *err);

/* Appends the encoded message for ev to out. */
ed_code_t eh_amqp_encode_event(const eh_send_event_t *ev, ed_buf_t *out);

#endif
