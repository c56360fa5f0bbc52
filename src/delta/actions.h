/* actions: the Delta log's actions as C structs, their NDJSON form (one
 * compact line per action, '\n' after each) and parsing back.
 * Owns: add, remove, txn, protocol, metaData values and the commit-line
 * writer/reader. Never does I/O (table.c does). Called by table.c,
 * checkpoint.c, maint.c, the sink in agent/ (builds dl_add_t) and tests.
 * Field rules: delta-parquet.md §A.2-A.8. */
#ifndef ED_DELTA_ACTIONS_H
#define ED_DELTA_ACTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

/* One partition value: value NULL means null (JSON null). */
typedef struct dl_kv {
  char *key;
  char *value;
} dl_kv_t;

typedef struct dl_add {
  char *path; /* relative URI as written in the log (percent-encoded) */
  dl_kv_t *pv;
  size_t npv;
  int64_t size;
  int64_t mtime_ms;
  bool data_change;
  char *stats; /* JSON text or NULL */
} dl_add_t;

typedef struct dl_remove {
  char *path;
  int64_t deletion_ts; /* ms */
  bool data_change;
  dl_kv_t *pv;
  size_t npv;
  int64_t size; /* -1 unknown */
} dl_remove_t;

typedef struct dl_txn {
  char *app_id;
  int64_t version;
  int64_t last_updated; /* ms, 0 unknown */
} dl_txn_t;

typedef struct dl_protocol {
  int min_reader, min_writer;
  char **reader_features; /* NULL-terminated or NULL */
  char **writer_features;
} dl_protocol_t;

typedef struct dl_metadata {
  char *id;
  char *name;
  char *schema_string;
  char **partition_cols; /* NULL-terminated, maybe empty */
  size_t npart;
  dl_kv_t *config;
  size_t nconfig;
  int64_t created_ms;
} dl_metadata_t;

typedef enum {
  DL_A_NONE = 0,
  DL_A_ADD,
  DL_A_REMOVE,
  DL_A_TXN,
  DL_A_PROTOCOL,
  DL_A_METADATA,
  DL_A_COMMITINFO,
  DL_A_OTHER, /* cdc, domainMetadata, unknown: ignored by readers */
} dl_action_kind_t;

typedef struct dl_action {
  dl_action_kind_t kind;
  union {
    dl_add_t add;
    dl_remove_t remove;
    dl_txn_t txn;
    dl_protocol_t protocol;
    dl_metadata_t metadata;
  } u;
  int64_t commit_ts; /* commitInfo.timestamp (ms) */
  char *commit_op;   /* commitInfo.operation */
} dl_action_t;

/* Parses one NDJSON line. ED_E_CORRUPT names the line's problem. */
ed_code_t dl_action_parse(const char *line, size_t n, dl_action_t *out, ed_err_t *err);
void dl_action_fini(dl_action_t *a);

void dl_add_fini(dl_add_t *a);
void dl_remove_fini(dl_remove_t *r);
void dl_txn_fini(dl_txn_t *t);
void dl_protocol_fini(dl_protocol_t *p);
void dl_metadata_fini(dl_metadata_t *m);
ed_code_t dl_metadata_copy(dl_metadata_t *dst, const dl_metadata_t *src);
/* Value of a configuration key, or NULL. */
const char *dl_metadata_config(const dl_metadata_t *m, const char *key);

/* Appends one line each (with '\n'). A failure (ED_E_NOMEM) leaves b failed
 * (sticky, see buf.h): its bytes must not be written anywhere. */
ed_code_t dl_write_add(ed_buf_t *b, const dl_add_t *a) ED_MUST_CHECK;
ed_code_t dl_write_remove(ed_buf_t *b, const dl_remove_t *r) ED_MUST_CHECK;
ed_code_t dl_write_txn(ed_buf_t *b, const dl_txn_t *t) ED_MUST_CHECK;
ed_code_t dl_write_protocol(ed_buf_t *b, const dl_protocol_t *p) ED_MUST_CHECK;
ed_code_t dl_write_metadata(ed_buf_t *b, const dl_metadata_t *m) ED_MUST_CHECK;
/* params_json / metrics_json: JSON object text or NULL. txn_id: a UUID used to
 * recognise our own commit after an ambiguous failure. */
ed_code_t dl_write_commit_info(ed_buf_t *b, int64_t ts_ms, const char *operation,
                               const char *params_json, int64_t read_version, bool blind_append,
                               const char *metrics_json, const char *txn_id) ED_MUST_CHECK;

/* A random UUID v4 (out: 37 bytes). */
void dl_uuid(char out[37]);

#endif
