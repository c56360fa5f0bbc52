/* proto/amqp.h: the AMQP 1.0 encoding constants, in one place, for the shared
 * codec (src/amqp), the client (src/eventhubs) and the emulator (src/emu):
 * the type constructors (part 1 §1.6), the descriptor codes of the
 * performatives (part 2 §2.7), SASL frames (part 5 §5.3.3), delivery states
 * (part 3 §3.4) and message sections (part 3 §3.2), and the frame header
 * (part 2 §2.3). Nothing else in src/ spells these bytes as numbers. */
#ifndef ED_PROTO_AMQP_H
#define ED_PROTO_AMQP_H

/* type constructors, part 1 §1.6 */
enum {
  AMQP_T_DESCRIBED = 0x00,
  AMQP_T_NULL = 0x40,
  AMQP_T_TRUE = 0x41,
  AMQP_T_FALSE = 0x42,
  AMQP_T_UINT0 = 0x43,
  AMQP_T_ULONG0 = 0x44,
  AMQP_T_LIST0 = 0x45,
  AMQP_T_UBYTE = 0x50,
  AMQP_T_BYTE = 0x51,
  AMQP_T_SMALLUINT = 0x52,
  AMQP_T_SMALLULONG = 0x53,
  AMQP_T_SMALLINT = 0x54,
  AMQP_T_SMALLLONG = 0x55,
  AMQP_T_BOOL = 0x56,
  AMQP_T_USHORT = 0x60,
  AMQP_T_SHORT = 0x61,
  AMQP_T_UINT = 0x70,
  AMQP_T_INT = 0x71,
  AMQP_T_FLOAT = 0x72,
  AMQP_T_CHAR = 0x73,
  AMQP_T_DEC32 = 0x74,
  AMQP_T_ULONG = 0x80,
  AMQP_T_LONG = 0x81,
  AMQP_T_DOUBLE = 0x82,
  AMQP_T_TIMESTAMP = 0x83,
  AMQP_T_DEC64 = 0x84,
  AMQP_T_DEC128 = 0x94,
  AMQP_T_UUID = 0x98,
  AMQP_T_VBIN8 = 0xa0,
  AMQP_T_STR8 = 0xa1,
  AMQP_T_SYM8 = 0xa3,
  AMQP_T_VBIN32 = 0xb0,
  AMQP_T_STR32 = 0xb1,
  AMQP_T_SYM32 = 0xb3,
  AMQP_T_LIST8 = 0xc0,
  AMQP_T_MAP8 = 0xc1,
  AMQP_T_LIST32 = 0xd0,
  AMQP_T_MAP32 = 0xd1,
  AMQP_T_ARRAY8 = 0xe0,
  AMQP_T_ARRAY32 = 0xf0,
};

/* descriptor codes (the low 32 bits; the domain, 0x00000000, is AMQP's) */
enum {
  /* performatives, part 2 §2.7 */
  AMQP_D_OPEN = 0x10,
  AMQP_D_BEGIN = 0x11,
  AMQP_D_ATTACH = 0x12,
  AMQP_D_FLOW = 0x13,
  AMQP_D_TRANSFER = 0x14,
  AMQP_D_DISPOSITION = 0x15,
  AMQP_D_DETACH = 0x16,
  AMQP_D_END = 0x17,
  AMQP_D_CLOSE = 0x18,
  AMQP_D_ERROR = 0x1d, /* part 2 §2.8.14 */
  /* delivery states, part 3 §3.4 */
  AMQP_D_RECEIVED = 0x23,
  AMQP_D_ACCEPTED = 0x24,
  AMQP_D_REJECTED = 0x25,
  AMQP_D_RELEASED = 0x26,
  AMQP_D_MODIFIED = 0x27,
  /* terminus, part 3 §3.5 */
  AMQP_D_SOURCE = 0x28,
  AMQP_D_TARGET = 0x29,
  /* SASL frames, part 5 §5.3.3 */
  AMQP_D_SASL_MECHANISMS = 0x40,
  AMQP_D_SASL_INIT = 0x41,
  AMQP_D_SASL_CHALLENGE = 0x42,
  AMQP_D_SASL_RESPONSE = 0x43,
  AMQP_D_SASL_OUTCOME = 0x44,
  /* message sections, part 3 §3.2 */
  AMQP_S_HEADER = 0x70,
  AMQP_S_DELIVERY_ANN = 0x71,
  AMQP_S_MESSAGE_ANN = 0x72,
  AMQP_S_PROPERTIES = 0x73,
  AMQP_S_APP_PROPS = 0x74,
  AMQP_S_DATA = 0x75,
  AMQP_S_SEQUENCE = 0x76,
  AMQP_S_VALUE = 0x77,
  AMQP_S_FOOTER = 0x78,
};

/* field positions the emulator reads or rewrites, part 2 §2.7 */
enum {
  AMQP_OPEN_MAX_FRAME_SIZE = 2,
  AMQP_OPEN_CHANNEL_MAX = 3,
  AMQP_BEGIN_HANDLE_MAX = 4,
  AMQP_TRANSFER_MESSAGE_FORMAT = 3,
  AMQP_ATTACH_SOURCE = 5,
  AMQP_ATTACH_TARGET = 6,
  AMQP_ATTACH_PROPERTIES = 13,
  AMQP_DISPOSITION_STATE = 4,
  AMQP_DETACH_ERROR = 2,
  AMQP_TRANSFER_STATE = 7,
  AMQP_SASL_INIT_MECHANISM = 0,
  AMQP_SASL_INIT_RESPONSE = 1,
  AMQP_SASL_OUTCOME_CODE = 0,
  AMQP_SASL_OUTCOME_DATA = 1,
};

/* frames, part 2 §2.3 and part 5 §5.3 */
#define AMQP_FRAME_HEADER    8
#define AMQP_FRAME_TYPE_AMQP 0
#define AMQP_FRAME_TYPE_SASL 1
#define AMQP_PROTO_HEADER    "AMQP\x00\x01\x00\x00"
#define AMQP_SASL_HEADER     "AMQP\x03\x01\x00\x00"
#define AMQP_MIN_MAX_FRAME   512 /* part 2 §2.7.1 MIN-MAX-FRAME-SIZE */
#define AMQP_SASL_OK         0   /* part 5 §5.3.3.6 sasl-code */
#define AMQP_SASL_AUTH       1

#endif
