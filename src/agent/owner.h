/* owner: partition ownership and checkpoints in the Blob layout of the Event
 * Hubs SDKs' checkpoint stores (azure-eventhub-checkpointstoreblob and its
 * Java, JavaScript, .NET and Go siblings), so that ehdelta agents and SDK
 * event processors of one consumer group share partitions without two owners.
 * Owns: the blob names ("<namespace>/<hub>/<group>/ownership/<partition>" and
 * ".../checkpoint/<partition>", lower-cased; ehdelta's stateful lease uses the
 * same records in ".../ehdelta-lease/"), the metadata (ownerid; offset,
 * sequencenumber), ETag-conditional claims, the SDKs' balancing rule (or a
 * greedy one that never steals), and the local proof of ownership: a
 * partition counts as owned only while the last successful claim was sent
 * less than expiry minus a safety margin ago.
 * It lives in agent/ (not store/) because it knows Event Hubs concepts; it
 * reaches storage only through store.h. Never opens receivers, never prints:
 * the run loop asks it which partitions to read.
 * Threads: one thread runs rounds (ag_own_tick, ag_own_release_all, the list
 * and checkpoint calls: they share one store); any thread may ask for the
 * proof (ag_own_owns, ag_own_expired, ag_own_stolen, ag_own_stats) meanwhile,
 * including while a round waits on an unreachable store. */
#ifndef ED_AGENT_OWNER_H
#define ED_AGENT_OWNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "store/store.h"

typedef struct ag_own ag_own_t;

/* How a round chooses what to claim besides renewing its own records.
 * BALANCED and GREEDY are the SDKs' load-balancing strategies (Python's
 * LoadBalancingStrategy, Java's, Go's ProcessorStrategy): balanced claims at
 * most one partition a round, greedy as many unowned or expired ones as it
 * needs to reach its fair share at once; both steal at most one a round from
 * the owner holding the most while below their share. CLAIM_ALL is ehdelta's
 * lease holder: every unowned or expired record, never a live one of
 * another owner (it takes all partitions it can without taking any). */
typedef enum { AG_OWN_BALANCED = 0, AG_OWN_GREEDY, AG_OWN_CLAIM_ALL } ag_own_mode_t;
/* The strategies' names as [source] load_balancing takes them (BALANCED,
 * GREEDY), NULL-terminated: an ENUM option row's names. */
extern const char *const ag_own_strategy_names[];

/* The longest record name (a partition id, a lease's query-set id) plus its
 * NUL. ag_own_tick refuses a longer one rather than cut it: a cut name never
 * matches its own record, and the claim would be lost after one round. */
#define AG_OWN_NAME_MAX 128

/* One ownership record as listed. */
typedef struct ag_own_rec {
  char pid[AG_OWN_NAME_MAX];
  char owner[128]; /* "" when released */
  char etag[96];
  int64_t mtime_ms; /* the service's Last-Modified */
} ag_own_rec_t;

typedef struct ag_own_opts {
  const char *ns;       /* fully qualified namespace, e.g. "contoso.servicebus.windows.net" */
  const char *hub;      /* event hub name */
  const char *group;    /* consumer group */
  const char *owner_id; /* NULL: a fresh random id */
  /* a claim not renewed for this long may be taken by anyone (the Python
   * SDK's partition_ownership_expiration_interval; default 60 s) */
  int64_t expiry_us;
  /* how often tick() should run (default expiry / 6, the Python SDK's ratio) */
  int64_t renew_us;
  /* local proof ends at expiry minus this (default expiry / 4): covers the
   * clock skew between hosts and one slow renewal */
  int64_t margin_us;
  /* the records' folder under "<ns>/<hub>/<group>/" (NULL or "": "ownership",
   * the SDKs' one). Another folder ("ehdelta-lease") holds records with the
   * same claim rules that the SDKs never list: they read only ".../ownership/".
   * One path segment of letters, digits, '.', '_', '-'; never "checkpoint". */
  const char *folder;
  ag_own_mode_t mode; /* how a round balances (ag_own_balance); 0: balanced */
} ag_own_opts_t;

/* Takes ownership of store (the container, or a prefix in it). Caller frees
 * with ag_own_free. ED_E_CONFIG when a timing is inconsistent (renew, plus
 * margin, must leave room before expiry) or the folder is not one plain
 * path segment. */
ed_code_t ag_own_new(st_store_t *store, const ag_own_opts_t *opts, ag_own_t **out, ed_err_t *err);
void ag_own_free(ag_own_t *o);
const char *ag_own_id(const ag_own_t *o); /* borrows; valid until ag_own_free */
int64_t ag_own_renew_us(const ag_own_t *o);

/* Every ownership record of the consumer group (in the folder), sorted by
 * partition; pid is the record's name as stored, lower-cased. Caller
 * frees *out with free(). A blob without an ownerid metadata entry was
 * written by another layout (the old EventProcessorHost leases, a future
 * version): ED_E_UNSUPPORTED naming it. */
ed_code_t ag_own_list(ag_own_t *o, ag_own_rec_t **out, size_t *n, ed_err_t *err);

/* The SDKs' rules, as a pure function: given the records, the hub's
 * partitions and the wall clock, which partitions self should claim now (its
 * live ones to renew, plus, balanced, at most one unowned or expired one, or
 * else one stolen from the owner holding the most when self holds less than
 * its fair share; greedy, as many unowned or expired ones as bring it to its
 * fair share, else that one steal; claim-all, every unowned or expired one,
 * never a live one of another owner). Partition ids match records case-insensitively
 * (the blob names are lower-cased). *seed drives the random choices. Writes
 * partition indexes into claim (capacity np) and returns how many. */
size_t ag_own_balance(const ag_own_rec_t *recs, size_t nrec, const char *const *pids, size_t np,
                      const char *self, int64_t now_ms, int64_t expiry_ms, ag_own_mode_t mode,
                      unsigned *seed, size_t *claim);

/* One balancing round: list, balance (by the options' mode), claim
 * (ETag-conditional). Updates the owned set; counts claims, renewals, steals
 * and losses. pids: the hub's partitions, or the names of the records to
 * contend for (a lease: one query-set id), without '/' (borrowed for the
 * call; the set must not change between calls). */
ed_code_t ag_own_tick(ag_own_t *o, const char *const *pids, size_t np, ed_err_t *err);
/* True while partition i is provably ours: claimed, and the last successful
 * claim was sent less than expiry - margin ago (monotonic clock). */
bool ag_own_owns(const ag_own_t *o, size_t i);
/* When partition i's proof ends, on the monotonic clock (ed_time_mono_us):
 * the last successful claim's send plus expiry - margin. INT64_MIN when i is
 * not claimed. Lets a caller stop a little before ag_own_owns turns false. */
int64_t ag_own_proof_end(const ag_own_t *o, size_t i);
/* True when partition i's current claim was taken from a live owner: that
 * owner reads on until its next round sees the record (or until the Event
 * Hubs service closes its link for our higher epoch), so a stolen partition
 * is safe only with epoch receivers and per-partition Delta positions. */
bool ag_own_stolen(const ag_own_t *o, size_t i);
/* Partitions whose proof ran out since the last call (claims that failed to
 * renew in time): the caller must stop reading them now. Clears the flags.
 * Writes indexes into out (capacity np), returns how many. */
size_t ag_own_expired(ag_own_t *o, size_t *out);
/* Gives every owned partition up (owner "" with its ETag), as the SDKs do on
 * close, so others claim it on their next round instead of after expiry. */
ed_code_t ag_own_release_all(ag_own_t *o, ed_err_t *err);

typedef struct ag_own_stats {
  uint64_t claims, renewals, steals, losses, releases, errors;
  size_t owned;
} ag_own_stats_t;
void ag_own_stats(const ag_own_t *o, ag_own_stats_t *out);

/* Checkpoint record of one partition after the Delta commit that covers it:
 * offset and sequence number of the last committed event (unconditional, as
 * the SDKs write them). */
ed_code_t ag_own_checkpoint(ag_own_t *o, const char *pid, int64_t offset, int64_t seq,
                            ed_err_t *err);

typedef struct ag_own_ckpt {
  char pid[AG_OWN_NAME_MAX];
  int64_t offset, seq; /* -1 when absent */
} ag_own_ckpt_t;
/* Every checkpoint record of the consumer group. Caller frees *out with free(). */
ed_code_t ag_own_list_checkpoints(ag_own_t *o, ag_own_ckpt_t **out, size_t *n, ed_err_t *err);

#endif
