/* proto/eventhubs.h: the Event Hubs AMQP wire contract, in one place, shared by
 * the client (src/eventhubs) and the emulator (src/emu). Source: reference
 * eventhubs-amqp.md §15 (string constants) and §4-§9. When the client and the
 * emulator disagree with the service, the fix is made here, once. */
#ifndef ED_PROTO_EVENTHUBS_H
#define ED_PROTO_EVENTHUBS_H

/* transport */
#define EHP_PORT_AMQPS     5671
#define EHP_PORT_AMQP      5672
#define EHP_SASL_ANONYMOUS "ANONYMOUS"
#define EHP_SASL_PLAIN     "PLAIN"
#define EHP_SASL_MSSBCBS   "MSSBCBS"
#define EHP_SASL_EXTERNAL  "EXTERNAL"
#define EHP_SASL_WELCOME   "Welcome!"

/* OPEN properties (symbol keys -> string values) */
#define EHP_OPEN_PRODUCT    "product"
#define EHP_OPEN_VERSION    "version"
#define EHP_OPEN_FRAMEWORK  "framework"
#define EHP_OPEN_PLATFORM   "platform"
#define EHP_OPEN_USER_AGENT "user-agent"

/* CBS (claims-based security) node, reference §4 */
#define EHP_CBS_NODE             "$cbs"
#define EHP_CBS_OP_PUT_TOKEN     "put-token"
#define EHP_CBS_KEY_OPERATION    "operation"
#define EHP_CBS_KEY_TYPE         "type"
#define EHP_CBS_KEY_NAME         "name"
#define EHP_CBS_KEY_EXPIRATION   "expiration"
#define EHP_CBS_TYPE_SAS         "servicebus.windows.net:sastoken"
#define EHP_CBS_TYPE_JWT         "jwt"
#define EHP_RESP_STATUS_CODE     "status-code"
#define EHP_RESP_STATUS_DESC     "status-description"
#define EHP_RESP_ERROR_CONDITION "error-condition"

/* management node, reference §5 */
#define EHP_MGMT_NODE               "$management"
#define EHP_MGMT_OP_READ            "READ"
#define EHP_MGMT_KEY_OPERATION      "operation"
#define EHP_MGMT_KEY_TYPE           "type"
#define EHP_MGMT_KEY_NAME           "name"
#define EHP_MGMT_KEY_PARTITION      "partition"
#define EHP_MGMT_KEY_SECURITY_TOKEN "security_token"
#define EHP_MGMT_TYPE_EVENTHUB      "com.microsoft:eventhub"
#define EHP_MGMT_TYPE_PARTITION     "com.microsoft:partition"
/* hub READ response map keys: string, string, timestamp, int, array<string> */
#define EHP_HUB_NAME                  "name"
#define EHP_HUB_TYPE                  "type"
#define EHP_HUB_CREATED_AT            "created_at"
#define EHP_HUB_PARTITION_COUNT       "partition_count"
#define EHP_HUB_PARTITION_IDS         "partition_ids"
#define EHP_HUB_GEOREPLICATION_FACTOR "georeplication_factor"
/* partition READ response map keys: string, string, string, long, long, string,
 * timestamp, boolean */
#define EHP_PART_NAME        "name"
#define EHP_PART_TYPE        "type"
#define EHP_PART_PARTITION   "partition"
#define EHP_PART_BEGIN_SEQ   "begin_sequence_number"
#define EHP_PART_LAST_SEQ    "last_enqueued_sequence_number"
#define EHP_PART_LAST_OFFSET "last_enqueued_offset"
#define EHP_PART_LAST_TIME   "last_enqueued_time_utc"
#define EHP_PART_IS_EMPTY    "is_partition_empty"

/* addresses, reference §6.1 and §8.1 */
#define EHP_DEFAULT_CONSUMER_GROUP    "$Default"
#define EHP_ADDR_RECEIVER_FMT         "%s/ConsumerGroups/%s/Partitions/%s"
#define EHP_ADDR_PARTITION_SENDER_FMT "%s/Partitions/%s"
#define EHP_ADDR_PUBLISHER_FMT        "%s/Publishers/%s"

/* event-position filter, reference §6.3 */
#define EHP_FILTER_KEY        "apache.org:selector-filter:string"
#define EHP_FILTER_DESCRIPTOR UINT64_C(0x0000468C00000004)
#define EHP_FILTER_OFFSET     "amqp.annotation.x-opt-offset"
#define EHP_FILTER_SEQ        "amqp.annotation.x-opt-sequence-number"
#define EHP_FILTER_ENQUEUED   "amqp.annotation.x-opt-enqueued-time"
#define EHP_OFFSET_START      "-1"
#define EHP_OFFSET_LATEST     "@latest"

/* link properties and capabilities, reference §6.4, §7, §8.2 */
#define EHP_LINK_EPOCH         "com.microsoft:epoch"
#define EHP_LINK_RECEIVER_NAME "com.microsoft:receiver-name"
#define EHP_LINK_ENTITY_TYPE   "com.microsoft:entity-type"
#define EHP_LINK_TIMEOUT       "com.microsoft:timeout"
#define EHP_CAP_RUNTIME_METRIC "com.microsoft:enable-receiver-runtime-metric"
#define EHP_CAP_GEOREPLICATION "com.microsoft:georeplication"
#define EHP_CAP_IDEMPOTENT     "com.microsoft:idempotent-producer"

/* message annotations on received events, reference §6.6 */
#define EHP_ANN_SEQUENCE      "x-opt-sequence-number" /* long */
#define EHP_ANN_OFFSET        "x-opt-offset"          /* string (decimal) */
#define EHP_ANN_ENQUEUED      "x-opt-enqueued-time"   /* timestamp */
#define EHP_ANN_PARTITION_KEY "x-opt-partition-key"
#define EHP_ANN_PUBLISHER     "x-opt-publisher"
/* delivery annotations of the runtime metric, reference §6.7 */
#define EHP_RT_LAST_SEQ       "last_enqueued_sequence_number"
#define EHP_RT_LAST_OFFSET    "last_enqueued_offset"
#define EHP_RT_LAST_TIME      "last_enqueued_time_utc"
#define EHP_RT_RETRIEVAL_TIME "runtime_info_retrieval_time_utc"

/* batch message format, reference §8.4 */
#define EHP_BATCH_MESSAGE_FORMAT UINT32_C(0x80013700)
/* the service's max-message-size on Standard (1 MiB), reference §11 */
#define EHP_MAX_MESSAGE_SIZE 1048576
/* The max-frame-size our client announces in OPEN: the service's own 65536
 * (reference §1.3); it bounds only what the peer sends us. Larger events come
 * as multi-frame transfers, which the client reassembles (1 MiB and 20 MiB
 * events are tested end to end). pyamqp announces 1 MiB, but here a larger
 * frame costs CPU on every event, in Proton's input path: the agent's CPU per
 * event, same run, 500k events, medians of 3 (bench_agent's run_agent):
 * 64 KiB 1.487/1.695 us, 256 KiB 1.605 us (+8%), 1 MiB 2.027 us (+20%). */
#define EHP_CLIENT_MAX_FRAME 65536
/* non-epoch receivers per partition and consumer group, reference §7 */
#define EHP_MAX_NON_EPOCH_RECEIVERS 5

/* error-info key */
#define EHP_TRACKING_ID "com.microsoft:tracking-id"

/* Error conditions and how the client classifies each: see conditions.def. */
typedef struct ehp_condition {
  const char *name;
  int code; /* an ed_code_t */
} ehp_condition_t;

/* One id per condition (EHP_COND_SERVER_BUSY, ...), so that code names a
 * condition by id and its spelling lives only in conditions.def. */
typedef enum ehp_cond_id {
#define EHP_COND(id, name, code) EHP_COND_##id,
#include "proto/conditions.def"
#undef EHP_COND
} ehp_cond_id_t;

/* The condition's name on the wire, e.g. "com.microsoft:server-busy". */
static inline const char *ehp_cond_name(ehp_cond_id_t id) {
  switch (id) {
#define EHP_COND(id, name, code)                                                                   \
  case EHP_COND_##id:                                                                              \
    return name;
#include "proto/conditions.def"
#undef EHP_COND
  }
  return "amqp:internal-error";
}

#endif
