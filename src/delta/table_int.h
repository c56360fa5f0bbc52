/* table_int: the snapshot's insides, shared by table.c and checkpoint.c. */
#ifndef ED_DELTA_TABLE_INT_H
#define ED_DELTA_TABLE_INT_H

#include "delta/table.h"

/* Open-addressing map from path to a heap object (dl_add_t / dl_remove_t). */
typedef struct dl_map {
  char **keys; /* NULL empty, DL_MAP_DEAD removed */
  void **vals;
  size_t cap, n, used;
} dl_map_t;

void *dl_map_get(const dl_map_t *m, const char *k);
ed_code_t dl_map_put(dl_map_t *m, const char *k, void *v); /* takes ownership of v */
void dl_map_fini(dl_map_t *m, void (*fr)(void *));

struct dl_table {
  st_store_t *store;
  int64_t version;
  int64_t checkpoint_version;
  /* add, remove and txn actions applied since checkpoint_version: a
   * checkpoint is written only once they pay for it (dl_table_commit) */
  uint64_t since_ckpt;
  /* no log file can expire before this wall time (ms): commits skip the
   * log listing of dl_table_cleanup_log until then */
  int64_t cleanup_after_ms;
  bool have_protocol, have_metadata;
  dl_protocol_t protocol;
  dl_metadata_t metadata;
  dl_map_t files;      /* path -> dl_add_t* */
  dl_map_t tombstones; /* path -> dl_remove_t* */
  dl_txn_t *txns;
  size_t ntxns, ctxns;
  /* iteration caches, rebuilt lazily */
  const dl_add_t **file_view;
  const dl_remove_t **tomb_view;
  bool views_stale;
};

/* Applies one parsed action to the snapshot; takes ownership of its content. */
ed_code_t dl_snapshot_apply(dl_table_t *t, dl_action_t *a, ed_err_t *err);
/* Loads the checkpoint of version v into an empty snapshot. */
ed_code_t dl_checkpoint_load(dl_table_t *t, int64_t v, ed_err_t *err);

#endif
