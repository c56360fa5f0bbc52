/* owner: the SDKs' partition-ownership protocol over store.h (see owner.h).
 * Sources of the rules: azure-eventhub's _eventprocessor/ownership_manager.py
 * (balancing, release by empty owner) and azure-eventhub-checkpointstoreblob's
 * _blobstoragecs.py (blob names, metadata keys, If-Match / If-None-Match). */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "agent/owner.h"
#include "common/log.h"
#include "common/time.h"

typedef struct {
  bool owned;
  bool expired_flag; /* proof ran out; reported once by ag_own_expired */
  bool stolen;       /* the current claim was taken from a live owner */
  char etag[96];
  int64_t sent_mono_us; /* when the last successful claim was sent */
} part_t;

struct ag_own {
  /* guards parts/np/st: the proof is asked from other threads while a round
   * waits on storage, which it does without the lock */
  pthread_mutex_t mu;
  st_store_t *store;
  char *prefix;    /* "<ns>/<hub>/<group>/", lower-cased */
  char folder[64]; /* the records' folder under prefix, lower-cased */
  ag_own_mode_t mode;
  char id[128];
  int64_t expiry_us, renew_us, margin_us;
  part_t *parts;
  size_t np;
  unsigned seed;
  ag_own_stats_t st;
};

static void lower(char *s) {
  for (; *s; s++)
    *s = (char)tolower((unsigned char)*s);
}

static void fresh_id(char *out, size_t cap) {
  /* a UUID v4 shape, as the SDKs' owner ids are */
  unsigned char b[16];
  FILE *f = fopen("/dev/urandom", "rb");
  if (!f || fread(b, 1, sizeof b, f) != sizeof b) {
    unsigned s = (unsigned)ed_time_mono_us() ^ (unsigned)getpid();
    for (size_t i = 0; i < sizeof b; i++)
      b[i] = (unsigned char)rand_r(&s);
  }
  if (f)
    fclose(f);
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
  snprintf(out, cap, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
           b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
           b[15]);
}

/* One path segment the blob name can carry as is; "checkpoint" would mix
 * ownership records with the checkpoints beside them. */
static bool folder_ok(const char *f) {
  size_t n = strlen(f);
  if (n == 0 || n >= sizeof((ag_own_t *)0)->folder || !strcmp(f, ".") || !strcmp(f, "..") ||
      !strcasecmp(f, "checkpoint"))
    return false;
  for (; *f; f++)
    if (!isalnum((unsigned char)*f) && *f != '.' && *f != '_' && *f != '-')
      return false;
  return true;
}

ed_code_t ag_own_new(st_store_t *store, const ag_own_opts_t *opts, ag_own_t **out, ed_err_t *err) {
  *out = NULL;
  const char *folder = opts->folder && *opts->folder ? opts->folder : "ownership";
  if (!folder_ok(folder)) {
    st_free(store);
    return ed_err_set(err, ED_E_CONFIG,
                      "checkpoint store folder '%s': expected one path segment of at most 63 "
                      "letters, digits, '.', '_' or '-', other than 'checkpoint'",
                      folder);
  }
  if (!opts->ns || !*opts->ns || !opts->hub || !*opts->hub || !opts->group || !*opts->group) {
    st_free(store);
    return ed_err_set(err, ED_E_CONFIG,
                      "checkpoint store: namespace, event hub and consumer group are all needed "
                      "to name the ownership blobs");
  }
  /* it travels as an x-ms-meta-ownerid header value: printable ASCII only */
  bool printable = true;
  for (const char *c = opts->owner_id; c && *c; c++)
    printable &= *c >= 0x20 && *c <= 0x7e;
  if (opts->owner_id && (strlen(opts->owner_id) >= sizeof((ag_own_t *)0)->id || !printable)) {
    st_free(store);
    return ed_err_set(err, ED_E_CONFIG,
                      "owner_id '%s': expected at most 127 printable ASCII characters (it is "
                      "stored as blob metadata)",
                      printable ? opts->owner_id : "(not printable)");
  }
  ag_own_t *o = calloc(1, sizeof *o);
  if (!o) {
    st_free(store);
    return ED_E_NOMEM;
  }
  pthread_mutex_init(&o->mu, NULL);
  o->store = store;
  snprintf(o->folder, sizeof o->folder, "%s", folder);
  lower(o->folder);
  o->mode = opts->mode;
  o->expiry_us = opts->expiry_us > 0 ? opts->expiry_us : 60 * ED_US_PER_SEC;
  o->renew_us = opts->renew_us > 0 ? opts->renew_us : o->expiry_us / 6;
  o->margin_us = opts->margin_us > 0 ? opts->margin_us : o->expiry_us / 4;
  if (o->renew_us + o->margin_us >= o->expiry_us) {
    ag_own_free(o);
    return ed_err_set(err, ED_E_CONFIG,
                      "checkpoint store: renewal interval plus safety margin must be below the "
                      "ownership expiry, so a claim is renewed before its proof runs out");
  }
  size_t n = strlen(opts->ns) + strlen(opts->hub) + strlen(opts->group) + 4;
  if (!(o->prefix = malloc(n))) {
    ag_own_free(o);
    return ED_E_NOMEM;
  }
  snprintf(o->prefix, n, "%s/%s/%s/", opts->ns, opts->hub, opts->group);
  lower(o->prefix);
  if (opts->owner_id && *opts->owner_id)
    snprintf(o->id, sizeof o->id, "%s", opts->owner_id);
  else
    fresh_id(o->id, sizeof o->id);
  o->seed = (unsigned)ed_time_mono_us() ^ (unsigned)getpid();
  *out = o;
  return ED_OK;
}

void ag_own_free(ag_own_t *o) {
  if (!o)
    return;
  st_free(o->store);
  free(o->prefix);
  free(o->parts);
  pthread_mutex_destroy(&o->mu);
  free(o);
}

const char *ag_own_id(const ag_own_t *o) { return o->id; }
int64_t ag_own_renew_us(const ag_own_t *o) { return o->renew_us; }

static ed_code_t list_kind(ag_own_t *o, const char *kind, st_blobs_t *b, ed_err_t *err) {
  char pre[1024];
  snprintf(pre, sizeof pre, "%s%s/", o->prefix, kind);
  return st_list_meta(o->store, pre, b, err);
}

static const char *last_seg(const char *key) {
  const char *s = strrchr(key, '/');
  return s ? s + 1 : key;
}

ed_code_t ag_own_list(ag_own_t *o, ag_own_rec_t **out, size_t *n, ed_err_t *err) {
  st_blobs_t b = {0};
  *out = NULL;
  *n = 0;
  ed_code_t rc = list_kind(o, o->folder, &b, err);
  ag_own_rec_t *r = rc ? NULL : calloc(b.n ? b.n : 1, sizeof *r);
  if (!rc && !r)
    rc = ED_E_NOMEM;
  for (size_t i = 0; !rc && i < b.n; i++) {
    const char *owner = st_blob_meta(&b.items[i], "ownerid");
    if (!owner) {
      rc = ed_err_set(err, ED_E_UNSUPPORTED,
                      "checkpoint store: ownership blob '%s' has no 'ownerid' metadata: written in "
                      "another layout (an EventProcessorHost lease, another SDK version?); "
                      "expected the azure-eventhub-checkpointstoreblob layout",
                      b.items[i].key);
      break;
    }
    snprintf(r[i].pid, sizeof r[i].pid, "%s", last_seg(b.items[i].key));
    snprintf(r[i].owner, sizeof r[i].owner, "%s", owner);
    snprintf(r[i].etag, sizeof r[i].etag, "%s", b.items[i].etag);
    r[i].mtime_ms = b.items[i].mtime_ms;
  }
  if (!rc) {
    *out = r;
    *n = b.n;
  } else {
    free(r);
  }
  st_blobs_fini(&b);
  return rc;
}

/* case-insensitive: listed names are lower-cased, callers' ids need not be */
static const ag_own_rec_t *find_rec(const ag_own_rec_t *recs, size_t n, const char *pid) {
  for (size_t i = 0; i < n; i++)
    if (!strcasecmp(recs[i].pid, pid))
      return &recs[i];
  return NULL;
}

/* Last-Modified comes in whole seconds: the write may have landed up to
 * 999 ms after the time listed. Judged from the latest it could have been, a
 * host whose clock is ahead by up to the owner's safety margin still sees a
 * claim live until that owner's proof has ended (ehdelta-run(1), CLOCKS). */
static bool rec_live(const ag_own_rec_t *r, int64_t now_ms, int64_t expiry_ms) {
  return r && r->owner[0] && r->mtime_ms + 999 + expiry_ms >= now_ms;
}

const char *const ag_own_strategy_names[] = {"balanced", "greedy", NULL};

static size_t balance_all(const ag_own_rec_t *recs, size_t nrec, const char *const *pids, size_t np,
                          const char *self, int64_t now_ms, int64_t expiry_ms, size_t *claim) {
  size_t nc = 0;
  for (size_t i = 0; i < np; i++) {
    const ag_own_rec_t *r = find_rec(recs, nrec, pids[i]);
    if (!rec_live(r, now_ms, expiry_ms) || !strcmp(r->owner, self))
      claim[nc++] = i;
  }
  return nc;
}

size_t ag_own_balance(const ag_own_rec_t *recs, size_t nrec, const char *const *pids, size_t np,
                      const char *self, int64_t now_ms, int64_t expiry_ms, ag_own_mode_t mode,
                      unsigned *seed, size_t *claim) {
  if (mode == AG_OWN_CLAIM_ALL)
    return balance_all(recs, nrec, pids, np, self, now_ms, expiry_ms, claim);
  size_t nc = 0, mine = 0, nclaimable = 0;
  /* owners of live claims, with their counts (np bounds the distinct owners) */
  const char **owners = calloc(np + 1, sizeof *owners);
  size_t *counts = calloc(np + 1, sizeof *counts), nowners = 0;
  size_t *claimable = calloc(np + 1, sizeof *claimable);
  if (!owners || !counts || !claimable) {
    free(owners);
    free(counts);
    free(claimable);
    return 0;
  }
  for (size_t i = 0; i < np; i++) {
    const ag_own_rec_t *r = find_rec(recs, nrec, pids[i]);
    if (!rec_live(r, now_ms, expiry_ms)) {
      claimable[nclaimable++] = i;
      continue;
    }
    size_t k = 0;
    while (k < nowners && strcmp(owners[k], r->owner))
      k++;
    if (k == nowners)
      owners[nowners++] = r->owner;
    counts[k]++;
    if (!strcmp(r->owner, self)) {
      claim[nc++] = i; /* renew */
      mine++;
    }
  }
  bool self_known = false;
  for (size_t k = 0; k < nowners; k++)
    self_known |= !strcmp(owners[k], self);
  /* self counts as an owner even before it holds anything */
  size_t nown = nowners > 0 && self_known ? nowners : nowners + 1;
  size_t fair = np / nown, most = (np + nown - 1) / nown;
  if (mine < most) {
    if (nclaimable) {
      /* greedy: up to the share at once, picked at random without repeats */
      size_t want = mode == AG_OWN_GREEDY ? most - mine : 1;
      for (size_t k = 0; k < want && nclaimable; k++) {
        size_t j = (size_t)rand_r(seed) % nclaimable;
        claim[nc++] = claimable[j];
        claimable[j] = claimable[--nclaimable];
      }
    } else {
      /* steal one from the owner holding the most (first such owner) while
       * below the floor of the share, or below the ceiling while that owner
       * is above it (Go's aboveMax): without the second, 12/10/10 over 32
       * partitions would stand for good, which a greedy start (every agent
       * claiming all it saw free) can leave */
      size_t best = 0;
      for (size_t k = 1; k < nowners; k++)
        if (counts[k] > counts[best])
          best = k;
      bool below = mine < fair || (nowners && counts[best] > most);
      if (below && nowners && strcmp(owners[best], self)) {
        size_t pick = (size_t)rand_r(seed) % counts[best], seen = 0;
        for (size_t i = 0; i < np; i++) {
          const ag_own_rec_t *r = find_rec(recs, nrec, pids[i]);
          if (rec_live(r, now_ms, expiry_ms) && !strcmp(r->owner, owners[best]) && seen++ == pick) {
            claim[nc++] = i;
            break;
          }
        }
      }
    }
  }
  free(owners);
  free(counts);
  free(claimable);
  return nc;
}

static ed_code_t put_owner(ag_own_t *o, const char *pid, const char *owner, const char *etag,
                           char *new_etag, ed_err_t *err) {
  char key[1024];
  snprintf(key, sizeof key, "%s%s/%s", o->prefix, o->folder, pid);
  lower(key);
  st_kv_t kv = {"ownerid", (char *)owner};
  return st_put_meta(o->store, key, &kv, 1, etag && *etag ? etag : NULL, !(etag && *etag), new_etag,
                     NULL, err);
}

static void lose(ag_own_t *o, size_t i, const char *pid, const char *why) {
  if (!o->parts[i].owned)
    return;
  o->parts[i].owned = false;
  o->parts[i].expired_flag = true;
  o->st.losses++;
  ED_LOG_WARN("ownership_lost", "partition=%s owner=%s folder=%s reason=\"%s\"", pid, o->id,
              o->folder, why);
}

/* @locality: the one thread that runs rounds (it owns the store). Holds mu
 * only between storage requests. */
ed_code_t ag_own_tick(ag_own_t *o, const char *const *pids, size_t np, ed_err_t *err) {
  for (size_t i = 0; i < np; i++)
    if (strlen(pids[i]) >= AG_OWN_NAME_MAX)
      return ed_err_set(err, ED_E_INVALID,
                        "ownership record name '%.40s...' is %zu bytes; expected at most %d",
                        pids[i], strlen(pids[i]), AG_OWN_NAME_MAX - 1);
  pthread_mutex_lock(&o->mu);
  if (o->np != np) {
    part_t *p = realloc(o->parts, (np ? np : 1) * sizeof *p);
    if (!p) {
      pthread_mutex_unlock(&o->mu);
      return ED_E_NOMEM;
    }
    for (size_t i = o->np; i < np; i++)
      memset(&p[i], 0, sizeof p[i]);
    o->parts = p;
    o->np = np;
  }
  pthread_mutex_unlock(&o->mu);
  ag_own_rec_t *recs = NULL;
  size_t nrec = 0;
  ed_code_t rc = ag_own_list(o, &recs, &nrec, err);
  if (rc) {
    pthread_mutex_lock(&o->mu);
    o->st.errors++;
    pthread_mutex_unlock(&o->mu);
    return rc;
  }
  int64_t now_ms = ed_time_now_us() / 1000, expiry_ms = o->expiry_us / 1000;
  /* a partition the records give to someone else is no longer ours */
  pthread_mutex_lock(&o->mu);
  for (size_t i = 0; i < np; i++) {
    const ag_own_rec_t *r = find_rec(recs, nrec, pids[i]);
    if (o->parts[i].owned && (!r || strcmp(r->owner, o->id)))
      lose(o, i, pids[i], r && r->owner[0] ? "claimed by another owner" : "record released");
  }
  pthread_mutex_unlock(&o->mu);
  size_t *claim = calloc(np ? np : 1, sizeof *claim);
  if (!claim) {
    free(recs);
    return ED_E_NOMEM;
  }
  size_t nc =
      ag_own_balance(recs, nrec, pids, np, o->id, now_ms, expiry_ms, o->mode, &o->seed, claim);
  for (size_t c = 0; c < nc; c++) {
    size_t i = claim[c];
    const ag_own_rec_t *r = find_rec(recs, nrec, pids[i]);
    bool steal = rec_live(r, now_ms, expiry_ms) && strcmp(r->owner, o->id);
    char etag[96] = "";
    ed_err_t e = {0};
    int64_t sent = ed_time_mono_us();
    ed_code_t prc = put_owner(o, pids[i], o->id, r ? r->etag : NULL, etag, &e);
    pthread_mutex_lock(&o->mu);
    part_t *p = &o->parts[i];
    if (prc == ED_OK) {
      snprintf(p->etag, sizeof p->etag, "%s", etag);
      p->sent_mono_us = sent;
      if (r && !strcmp(r->owner, o->id) && p->owned) {
        o->st.renewals++;
      } else {
        /* a pending expired_flag stays: the caller stops first, then sees
         * the new claim (one stop per lost proof, never a silent gap) */
        p->owned = true;
        p->stolen = steal;
        o->st.claims++;
        if (steal)
          o->st.steals++;
        ED_LOG_INFO("ownership_claimed", "partition=%s owner=%s folder=%s from=%s", pids[i], o->id,
                    o->folder, steal ? r->owner : (r && r->owner[0] ? "expired" : "unowned"));
      }
    } else if (prc == ED_E_CONFLICT) {
      /* someone else wrote the record since we listed it */
      lose(o, i, pids[i], "ETag changed: another owner claimed it");
    } else {
      /* storage trouble: keep the claim; ag_own_expired stops it when the
       * proof runs out without a successful renewal */
      o->st.errors++;
      ED_LOG_WARN("ownership_renew_failed", "partition=%s owner=%s folder=%s error=\"%s\"", pids[i],
                  o->id, o->folder, e.msg);
    }
    pthread_mutex_unlock(&o->mu);
  }
  free(claim);
  free(recs);
  return ED_OK;
}

static bool owns_locked(const ag_own_t *o, size_t i) {
  if (i >= o->np || !o->parts[i].owned)
    return false;
  return ed_time_mono_us() - o->parts[i].sent_mono_us < o->expiry_us - o->margin_us;
}

bool ag_own_owns(const ag_own_t *o, size_t i) {
  ag_own_t *m = (ag_own_t *)o; /* the lock, not the state, changes */
  pthread_mutex_lock(&m->mu);
  bool v = owns_locked(o, i);
  pthread_mutex_unlock(&m->mu);
  return v;
}

int64_t ag_own_proof_end(const ag_own_t *o, size_t i) {
  ag_own_t *m = (ag_own_t *)o; /* the lock, not the state, changes */
  pthread_mutex_lock(&m->mu);
  int64_t end = i < o->np && o->parts[i].owned
                    ? o->parts[i].sent_mono_us + o->expiry_us - o->margin_us
                    : INT64_MIN;
  pthread_mutex_unlock(&m->mu);
  return end;
}

size_t ag_own_expired(ag_own_t *o, size_t *out) {
  size_t n = 0;
  pthread_mutex_lock(&o->mu);
  int64_t now = ed_time_mono_us();
  for (size_t i = 0; i < o->np; i++) {
    part_t *p = &o->parts[i];
    if (p->owned && now - p->sent_mono_us >= o->expiry_us - o->margin_us) {
      p->owned = false;
      p->expired_flag = true;
      o->st.losses++;
      ED_LOG_WARN("ownership_unproven",
                  "partition=%zu owner=%s folder=%s age_ms=%lld limit_ms=%lld reason=\"no "
                  "successful renewal: stop reading before another owner may claim it\"",
                  i, o->id, o->folder, (long long)((now - p->sent_mono_us) / 1000),
                  (long long)((o->expiry_us - o->margin_us) / 1000));
    }
    if (p->expired_flag) {
      p->expired_flag = false;
      out[n++] = i;
    }
  }
  pthread_mutex_unlock(&o->mu);
  return n;
}

ed_code_t ag_own_release_all(ag_own_t *o, ed_err_t *err) {
  ag_own_rec_t *recs = NULL;
  size_t nrec = 0;
  ed_code_t rc = ag_own_list(o, &recs, &nrec, err);
  for (size_t k = 0; !rc && k < nrec; k++) {
    if (strcmp(recs[k].owner, o->id))
      continue;
    ed_err_t e = {0};
    ed_code_t prc = put_owner(o, recs[k].pid, "", recs[k].etag, NULL, &e);
    if (prc == ED_OK) {
      pthread_mutex_lock(&o->mu);
      o->st.releases++;
      pthread_mutex_unlock(&o->mu);
      ED_LOG_INFO("ownership_released", "partition=%s owner=%s folder=%s", recs[k].pid, o->id,
                  o->folder);
    } else if (prc != ED_E_CONFLICT) {
      rc = prc;
      if (err)
        *err = e;
    }
  }
  pthread_mutex_lock(&o->mu);
  for (size_t i = 0; i < o->np; i++)
    o->parts[i].owned = false;
  pthread_mutex_unlock(&o->mu);
  free(recs);
  return rc;
}

bool ag_own_stolen(const ag_own_t *o, size_t i) {
  ag_own_t *m = (ag_own_t *)o;
  pthread_mutex_lock(&m->mu);
  bool v = i < o->np && o->parts[i].stolen;
  pthread_mutex_unlock(&m->mu);
  return v;
}

void ag_own_stats(const ag_own_t *o, ag_own_stats_t *out) {
  ag_own_t *m = (ag_own_t *)o;
  pthread_mutex_lock(&m->mu);
  *out = o->st;
  out->owned = 0;
  for (size_t i = 0; i < o->np; i++)
    out->owned += owns_locked(o, i);
  pthread_mutex_unlock(&m->mu);
}

ed_code_t ag_own_checkpoint(ag_own_t *o, const char *pid, int64_t offset, int64_t seq,
                            ed_err_t *err) {
  char key[1024], off[32], sq[32];
  snprintf(key, sizeof key, "%scheckpoint/%s", o->prefix, pid);
  lower(key);
  snprintf(off, sizeof off, "%lld", (long long)offset);
  snprintf(sq, sizeof sq, "%lld", (long long)seq);
  st_kv_t kv[2] = {{"offset", off}, {"sequencenumber", sq}};
  return st_put_meta(o->store, key, kv, 2, NULL, false, NULL, NULL, err);
}

ed_code_t ag_own_list_checkpoints(ag_own_t *o, ag_own_ckpt_t **out, size_t *n, ed_err_t *err) {
  st_blobs_t b = {0};
  *out = NULL;
  *n = 0;
  ed_code_t rc = list_kind(o, "checkpoint", &b, err);
  ag_own_ckpt_t *c = rc ? NULL : calloc(b.n ? b.n : 1, sizeof *c);
  if (!rc && !c)
    rc = ED_E_NOMEM;
  for (size_t i = 0; !rc && i < b.n; i++) {
    const char *off = st_blob_meta(&b.items[i], "offset");
    const char *sq = st_blob_meta(&b.items[i], "sequencenumber");
    if (!off && !sq) {
      rc = ed_err_set(err, ED_E_UNSUPPORTED,
                      "checkpoint store: checkpoint blob '%s' has neither 'offset' nor "
                      "'sequencenumber' metadata; expected the azure-eventhub-checkpointstoreblob "
                      "layout",
                      b.items[i].key);
      break;
    }
    snprintf(c[i].pid, sizeof c[i].pid, "%s", last_seg(b.items[i].key));
    c[i].offset = off && *off ? strtoll(off, NULL, 10) : -1;
    c[i].seq = sq && *sq ? strtoll(sq, NULL, 10) : -1;
  }
  if (!rc) {
    *out = c;
    *n = b.n;
  } else {
    free(c);
  }
  st_blobs_fini(&b);
  return rc;
}
