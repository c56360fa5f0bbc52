/* table: snapshot replay and the commit loop. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/time.h"
#include "delta/features.h"
#include "delta/table_int.h"

static char DEAD_[1];
#define DL_MAP_DEAD DEAD_

/* ---- map ---- */

static uint64_t hash(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static ed_code_t map_grow(dl_map_t *m) {
  size_t nc = m->cap ? m->cap * 2 : 64;
  while (m->n * 2 >= nc)
    nc *= 2;
  char **k = calloc(nc, sizeof *k);
  void **v = calloc(nc, sizeof *v);
  if (!k || !v) {
    free(k);
    free(v);
    return ED_E_NOMEM;
  }
  for (size_t i = 0; i < m->cap; i++) {
    if (!m->keys[i] || m->keys[i] == DL_MAP_DEAD)
      continue;
    size_t j = hash(m->keys[i]) & (nc - 1);
    while (k[j])
      j = (j + 1) & (nc - 1);
    k[j] = m->keys[i];
    v[j] = m->vals[i];
  }
  free(m->keys);
  free(m->vals);
  m->keys = k;
  m->vals = v;
  m->cap = nc;
  m->used = m->n;
  return ED_OK;
}

static size_t map_slot(const dl_map_t *m, const char *k, bool *found) {
  size_t j = hash(k) & (m->cap - 1), dead = SIZE_MAX;
  for (;;) {
    if (!m->keys[j]) {
      *found = false;
      return dead != SIZE_MAX ? dead : j;
    }
    if (m->keys[j] == DL_MAP_DEAD) {
      if (dead == SIZE_MAX)
        dead = j;
    } else if (!strcmp(m->keys[j], k)) {
      *found = true;
      return j;
    }
    j = (j + 1) & (m->cap - 1);
  }
}

void *dl_map_get(const dl_map_t *m, const char *k) {
  if (!m->cap)
    return NULL;
  bool f;
  size_t j = map_slot(m, k, &f);
  return f ? m->vals[j] : NULL;
}

ed_code_t dl_map_put(dl_map_t *m, const char *k, void *v) {
  if ((m->used + 1) * 4 >= m->cap * 3 && map_grow(m))
    return ED_E_NOMEM;
  bool f;
  size_t j = map_slot(m, k, &f);
  if (f) {
    m->vals[j] = v; /* caller freed the old value via take */
    return ED_OK;
  }
  char *kk = strdup(k);
  if (!kk)
    return ED_E_NOMEM;
  if (!m->keys[j])
    m->used++;
  m->keys[j] = kk;
  m->vals[j] = v;
  m->n++;
  return ED_OK;
}

static void *dl_map_take(dl_map_t *m, const char *k) {
  if (!m->cap)
    return NULL;
  bool f;
  size_t j = map_slot(m, k, &f);
  if (!f)
    return NULL;
  void *v = m->vals[j];
  free(m->keys[j]);
  m->keys[j] = DL_MAP_DEAD;
  m->vals[j] = NULL;
  m->n--;
  return v;
}

void dl_map_fini(dl_map_t *m, void (*fr)(void *)) {
  for (size_t i = 0; i < m->cap; i++)
    if (m->keys[i] && m->keys[i] != DL_MAP_DEAD) {
      free(m->keys[i]);
      if (fr)
        fr(m->vals[i]);
    }
  free(m->keys);
  free(m->vals);
  memset(m, 0, sizeof *m);
}

static void free_add(void *p) {
  dl_add_fini(p);
  free(p);
}

static void free_remove(void *p) {
  dl_remove_fini(p);
  free(p);
}

/* ---- snapshot ---- */

void dl_log_name(int64_t version, const char *suffix, char out[64]) {
  snprintf(out, 64, "_delta_log/%020" PRId64 "%s", version, suffix);
}

static ed_code_t set_txn(dl_table_t *t, dl_txn_t *x) {
  for (size_t i = 0; i < t->ntxns; i++)
    if (!strcmp(t->txns[i].app_id, x->app_id)) {
      dl_txn_fini(&t->txns[i]);
      t->txns[i] = *x;
      memset(x, 0, sizeof *x);
      return ED_OK;
    }
  if (t->ntxns == t->ctxns) {
    size_t nc = t->ctxns ? t->ctxns * 2 : 8;
    dl_txn_t *n = realloc(t->txns, nc * sizeof *n);
    if (!n)
      return ED_E_NOMEM;
    t->txns = n;
    t->ctxns = nc;
  }
  t->txns[t->ntxns++] = *x;
  memset(x, 0, sizeof *x);
  return ED_OK;
}

ed_code_t dl_snapshot_apply(dl_table_t *t, dl_action_t *a, ed_err_t *err) {
  ed_code_t rc = ED_OK;
  t->views_stale = true;
  if (a->kind == DL_A_ADD || a->kind == DL_A_REMOVE || a->kind == DL_A_TXN)
    t->since_ckpt++;
  switch (a->kind) {
  case DL_A_ADD: {
    dl_add_t *n = malloc(sizeof *n);
    if (!n)
      return ED_E_NOMEM;
    *n = a->u.add;
    memset(&a->u.add, 0, sizeof a->u.add);
    dl_remove_t *ot = dl_map_take(&t->tombstones, n->path);
    if (ot)
      free_remove(ot);
    dl_add_t *old = dl_map_take(&t->files, n->path);
    if (old)
      free_add(old);
    if ((rc = dl_map_put(&t->files, n->path, n)))
      free_add(n);
    break;
  }
  case DL_A_REMOVE: {
    dl_remove_t *n = malloc(sizeof *n);
    if (!n)
      return ED_E_NOMEM;
    *n = a->u.remove;
    memset(&a->u.remove, 0, sizeof a->u.remove);
    dl_add_t *old = dl_map_take(&t->files, n->path);
    if (old) {
      if (n->size < 0 && old->size >= 0) {
        /* keep what a checkpoint's tombstone wants to know */
        n->size = old->size;
      }
      free_add(old);
    }
    dl_remove_t *ot = dl_map_take(&t->tombstones, n->path);
    if (ot)
      free_remove(ot);
    if ((rc = dl_map_put(&t->tombstones, n->path, n)))
      free_remove(n);
    break;
  }
  case DL_A_TXN:
    rc = set_txn(t, &a->u.txn);
    break;
  case DL_A_PROTOCOL:
    dl_protocol_fini(&t->protocol);
    t->protocol = a->u.protocol;
    memset(&a->u.protocol, 0, sizeof a->u.protocol);
    t->have_protocol = true;
    break;
  case DL_A_METADATA:
    dl_metadata_fini(&t->metadata);
    t->metadata = a->u.metadata;
    memset(&a->u.metadata, 0, sizeof a->u.metadata);
    t->have_metadata = true;
    t->cleanup_after_ms = 0; /* the log retention may have changed */
    break;
  default:
    break;
  }
  (void)err;
  return rc;
}

/* Reader side: what reading the log needs. Column mapping changes only the
 * names inside data files and stats, not the log; the rest of the writer's
 * obligations are features.c's (dl_feat_check, on every commit). */
static ed_code_t check_protocol(const dl_table_t *t, ed_err_t *err) {
  const dl_protocol_t *p = &t->protocol;
  static const char *const readable[] = {"columnMapping", "timestampNtz", "vacuumProtocolCheck",
                                         NULL};
  if (p->min_reader > 3 || p->min_reader < 1)
    return ed_err_set(err, ED_E_UNSUPPORTED,
                      "table %s: minReaderVersion %d is not supported; this reader implements "
                      "versions 1 to 3 (see ehdelta-delta(7))",
                      st_url(t->store), p->min_reader);
  for (size_t i = 0; p->reader_features && p->reader_features[i]; i++) {
    bool ok = false;
    for (size_t k = 0; readable[k]; k++)
      ok |= !strcmp(readable[k], p->reader_features[i]);
    if (!ok)
      return ed_err_set(
          err, ED_E_UNSUPPORTED,
          "table %s: reader feature '%s' is not implemented by ehdelta (it reads "
          "columnMapping, timestampNtz and vacuumProtocolCheck; see ehdelta-delta(7))",
          st_url(t->store), p->reader_features[i]);
  }
  return ED_OK;
}

/* Reads version v's commit and hands each action to fn. */
typedef ed_code_t (*action_fn)(dl_table_t *t, dl_action_t *a, void *ctx, ed_err_t *err);

static ed_code_t read_commit(dl_table_t *t, int64_t v, action_fn fn, void *ctx, ed_err_t *err) {
  char name[64];
  dl_log_name(v, ".json", name);
  ed_buf_t b = ED_BUF_INIT;
  ed_code_t rc = st_get(t->store, name, 0, -1, &b, err);
  if (rc) {
    ed_buf_fini(&b);
    return rc;
  }
  const char *p = b.data ? b.data : "", *end = p + b.len;
  int line = 0;
  while (!rc && p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
    line++;
    bool blank = true;
    for (size_t i = 0; i < n; i++)
      blank &= p[i] == ' ' || p[i] == '\r' || p[i] == '\t';
    if (!blank) {
      dl_action_t a;
      if ((rc = dl_action_parse(p, n, &a, err))) {
        ed_err_prefix(err, "%s/%s line %d", st_url(t->store), name, line);
        break;
      }
      rc = fn(t, &a, ctx, err);
      dl_action_fini(&a);
    }
    p += n + (nl ? 1 : 0);
  }
  ed_buf_fini(&b);
  return rc;
}

static ed_code_t apply_fn(dl_table_t *t, dl_action_t *a, void *ctx, ed_err_t *err) {
  (void)ctx;
  return dl_snapshot_apply(t, a, err);
}

ed_code_t dl_table_update(dl_table_t *t, ed_err_t *err) {
  for (;;) {
    ed_err_t e = {0};
    ed_code_t rc = read_commit(t, t->version + 1, apply_fn, NULL, &e);
    if (rc == ED_E_NOT_FOUND)
      return check_protocol(t, err);
    if (rc) {
      if (err)
        *err = e;
      return rc;
    }
    t->version++;
  }
}

static bool parse_log_name(const char *key, int64_t *v, const char **suffix) {
  const char *n = key + strlen("_delta_log/");
  for (int i = 0; i < 20; i++)
    if (n[i] < '0' || n[i] > '9')
      return false;
  *v = strtoll(n, NULL, 10);
  *suffix = n + 20;
  return true;
}

static ed_code_t load(dl_table_t *t, ed_err_t *err) {
  st_list_t l = {0};
  ed_code_t rc = st_list_names(t->store, "_delta_log/", &l, err);
  if (rc)
    return rc;
  int64_t maxv = -1, ckpt = -1, hint = -1;
  /* _last_checkpoint is a hint; the listing decides. */
  ed_buf_t lc = ED_BUF_INIT;
  if (st_get(t->store, "_delta_log/_last_checkpoint", 0, -1, &lc, NULL) == ED_OK && lc.data) {
    const char *vp = strstr(lc.data, "\"version\"");
    if (vp && (vp = strchr(vp, ':')))
      hint = strtoll(vp + 1, NULL, 10);
  }
  ed_buf_fini(&lc);
  bool has_hint_file = false;
  for (size_t i = 0; i < l.n; i++) {
    int64_t v;
    const char *suf;
    if (!parse_log_name(l.items[i].key, &v, &suf))
      continue;
    if (!strcmp(suf, ".json") && v > maxv)
      maxv = v;
    else if (!strcmp(suf, ".checkpoint.parquet")) {
      if (v > ckpt)
        ckpt = v;
      has_hint_file |= v == hint;
    }
  }
  if (has_hint_file && hint > ckpt)
    ckpt = hint;
  if (maxv < 0 && ckpt < 0) {
    st_list_fini(&l);
    return ed_err_set(err, ED_E_NOT_FOUND, "no Delta table at %s (no commits under _delta_log/)",
                      st_url(t->store));
  }
  if (ckpt > maxv)
    maxv = ckpt;
  int64_t from = 0;
  if (ckpt >= 0) {
    if ((rc = dl_checkpoint_load(t, ckpt, err)))
      goto out;
    t->checkpoint_version = ckpt;
    t->since_ckpt = 0;
    from = ckpt + 1;
  }
  /* Commits after the checkpoint must all be there, contiguous. */
  size_t have = 0;
  for (size_t i = 0; i < l.n; i++) {
    int64_t v;
    const char *suf;
    if (parse_log_name(l.items[i].key, &v, &suf) && !strcmp(suf, ".json") && v >= from)
      have++;
  }
  if ((int64_t)have != maxv - from + 1) {
    rc = ed_err_set(err, ED_E_CORRUPT,
                    "table %s: commits %" PRId64 "..%" PRId64 " are not contiguous (%zu present)%s",
                    st_url(t->store), from, maxv, have,
                    ckpt < 0 && from == 0 ? "; version 0 missing and no checkpoint" : "");
    goto out;
  }
  for (int64_t v = from; v <= maxv && !rc; v++) {
    rc = read_commit(t, v, apply_fn, NULL, err);
    t->version = v;
  }
  if (!rc && ckpt >= 0 && maxv == ckpt)
    t->version = ckpt;
  if (!rc && (!t->have_protocol || !t->have_metadata))
    rc = ed_err_set(err, ED_E_CORRUPT, "table %s: no %s action in the log", st_url(t->store),
                    t->have_protocol ? "metaData" : "protocol");
  if (!rc)
    rc = check_protocol(t, err);
out:
  st_list_fini(&l);
  return rc;
}

ed_code_t dl_table_open(st_store_t *store, dl_table_t **out, ed_err_t *err) {
  *out = NULL;
  dl_table_t *t = calloc(1, sizeof *t);
  if (!t)
    return ed_err_set(err, ED_E_NOMEM, "out of memory");
  t->store = store;
  t->version = -1;
  t->checkpoint_version = -1;
  ed_err_t e2 = {0};
  ed_code_t rc = load(t, &e2);
  if (rc) {
    /* the allocation paths return a bare code: still name the table */
    if (!e2.msg[0])
      ed_err_set(&e2, rc, "table %s: %s while loading its snapshot", st_url(store),
                 ed_code_desc(rc));
    if (err)
      *err = e2;
    dl_table_free(t);
    return rc;
  }
  *out = t;
  return ED_OK;
}

void dl_table_free(dl_table_t *t) {
  if (!t)
    return;
  dl_map_fini(&t->files, free_add);
  dl_map_fini(&t->tombstones, free_remove);
  for (size_t i = 0; i < t->ntxns; i++)
    dl_txn_fini(&t->txns[i]);
  free(t->txns);
  dl_protocol_fini(&t->protocol);
  dl_metadata_fini(&t->metadata);
  free(t->file_view);
  free(t->tomb_view);
  free(t);
}

st_store_t *dl_table_store(const dl_table_t *t) { return t->store; }
int64_t dl_table_version(const dl_table_t *t) { return t->version; }
const dl_protocol_t *dl_table_protocol(const dl_table_t *t) { return &t->protocol; }
const dl_metadata_t *dl_table_metadata(const dl_table_t *t) { return &t->metadata; }
int64_t dl_table_checkpoint_version(const dl_table_t *t) { return t->checkpoint_version; }

bool dl_table_txn_version(const dl_table_t *t, const char *app_id, int64_t *version) {
  for (size_t i = 0; i < t->ntxns; i++)
    if (!strcmp(t->txns[i].app_id, app_id)) {
      *version = t->txns[i].version;
      return true;
    }
  return false;
}

size_t dl_table_num_txns(const dl_table_t *t) { return t->ntxns; }
const dl_txn_t *dl_table_txn_at(const dl_table_t *t, size_t i) { return &t->txns[i]; }

static void rebuild_views(const dl_table_t *tc) {
  dl_table_t *t = (dl_table_t *)tc;
  if (!t->views_stale && (t->file_view || !t->files.n))
    return;
  free(t->file_view);
  free(t->tomb_view);
  t->file_view = calloc(t->files.n + 1, sizeof *t->file_view);
  t->tomb_view = calloc(t->tombstones.n + 1, sizeof *t->tomb_view);
  size_t k = 0;
  for (size_t i = 0; t->file_view && i < t->files.cap; i++)
    if (t->files.keys[i] && t->files.keys[i] != DL_MAP_DEAD)
      t->file_view[k++] = t->files.vals[i];
  k = 0;
  for (size_t i = 0; t->tomb_view && i < t->tombstones.cap; i++)
    if (t->tombstones.keys[i] && t->tombstones.keys[i] != DL_MAP_DEAD)
      t->tomb_view[k++] = t->tombstones.vals[i];
  t->views_stale = false;
}

size_t dl_table_num_files(const dl_table_t *t) { return t->files.n; }
const dl_add_t *dl_table_file(const dl_table_t *t, size_t i) {
  rebuild_views(t);
  return i < t->files.n && t->file_view ? t->file_view[i] : NULL;
}
size_t dl_table_num_tombstones(const dl_table_t *t) { return t->tombstones.n; }
const dl_remove_t *dl_table_tombstone(const dl_table_t *t, size_t i) {
  rebuild_views(t);
  return i < t->tombstones.n && t->tomb_view ? t->tomb_view[i] : NULL;
}

const char *dl_table_config(const dl_table_t *t, const char *key, const char *def) {
  const char *v = dl_metadata_config(&t->metadata, key);
  return v ? v : def;
}

/* ---- create ---- */

static bool same_partitions(char *const *a, const char *const *b) {
  size_t i = 0;
  for (; a && a[i] && b && b[i]; i++)
    if (strcmp(a[i], b[i]))
      return false;
  return !(a && a[i]) && !(b && b[i]);
}

static void free_actions(dl_action_t *a, size_t n) {
  for (size_t i = 0; i < n; i++)
    dl_action_fini(&a[i]);
  free(a);
}

/* Parses a commit body we are about to write: whole lines, each one action.
 * It is cheap next to the put, catches a writer that produced a malformed
 * line before the line can reach the log, and gives the actions to apply
 * once the put lands. Caller frees *out with free_actions. */
static ed_code_t parse_body(const char *body, size_t n, dl_action_t **out, size_t *nout,
                            ed_err_t *err) {
  *out = NULL;
  *nout = 0;
  if (!body || !n || body[n - 1] != '\n')
    return ed_err_set(err, ED_E_INTERNAL, "commit body: expected whole lines, got %zu bytes%s", n,
                      n ? " without a final newline" : "");
  size_t lines = 0;
  for (size_t i = 0; i < n; i++)
    lines += body[i] == '\n';
  dl_action_t *a = calloc(lines, sizeof *a);
  if (!a)
    return ED_E_NOMEM;
  const char *p = body, *end = body + n;
  ed_code_t rc = ED_OK;
  size_t k = 0;
  while (!rc && p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t len = (size_t)(nl - p);
    ed_err_t e2 = {0};
    if (!len)
      rc = ed_err_set(err, ED_E_INTERNAL, "commit body: line %zu is empty", k + 1);
    else if ((rc = dl_action_parse(p, len, &a[k], &e2)) == ED_E_NOMEM)
      ;
    else if (rc)
      rc = ed_err_set(err, ED_E_INTERNAL, "commit body: line %zu is not a Delta action (%s): %.*s",
                      k + 1, e2.msg, (int)(len < 120 ? len : 120), p);
    else
      k++;
    p = nl + 1;
  }
  if (rc) {
    free_actions(a, k);
    return rc;
  }
  *out = a;
  *nout = k;
  return ED_OK;
}

ed_code_t dl_table_create(st_store_t *store, const dl_create_opts_t *o, dl_table_t **out,
                          ed_err_t *err) {
  *out = NULL;
  if (!o || !o->schema_string)
    return ed_err_set(err, ED_E_INVALID, "create table: no schema");
  dl_metadata_t m = {0};
  char id[37];
  dl_uuid(id);
  m.id = id;
  m.name = (char *)o->name;
  m.schema_string = (char *)o->schema_string;
  size_t np = 0;
  while (o->partition_cols && o->partition_cols[np])
    np++;
  m.partition_cols = (char **)(o->partition_cols ? o->partition_cols : (const char *const[]){NULL});
  m.npart = np;
  m.config = (dl_kv_t *)o->config;
  m.nconfig = o->nconfig;
  int64_t now = ed_time_now_us() / 1000;
  m.created_ms = now;
  dl_protocol_t p = {1, 2, NULL, NULL};
  ed_buf_t b = ED_BUF_INIT, params = ED_BUF_INIT;
  ed_code_t pb_rc;
  ed_buf_puts(&params, "{\"isManaged\":\"false\",\"description\":null,\"partitionBy\":");
  {
    ed_buf_t pb = ED_BUF_INIT;
    ed_buf_putc(&pb, '[');
    for (size_t i = 0; i < np; i++) {
      if (i)
        ed_buf_putc(&pb, ',');
      ed_buf_json_str(&pb, o->partition_cols[i], strlen(o->partition_cols[i]));
    }
    ed_buf_putc(&pb, ']');
    pb_rc = ed_buf_status(&pb);
    if (!pb_rc)
      ed_buf_json_str(&params, pb.data, pb.len);
    ed_buf_fini(&pb);
  }
  ed_buf_puts(&params, ",\"properties\":\"{}\"}");
  ed_code_t rc = pb_rc ? pb_rc : ed_buf_status(&params);
  if (!rc)
    rc = dl_write_commit_info(&b, now, "CREATE TABLE", params.data, -1, true, NULL, NULL);
  if (!rc)
    rc = dl_write_protocol(&b, &p);
  if (!rc)
    rc = dl_write_metadata(&b, &m);
  ed_buf_fini(&params);
  dl_action_t *acts = NULL;
  size_t nacts = 0;
  if (rc || (rc = parse_body(b.data, b.len, &acts, &nacts, err))) {
    ed_buf_fini(&b);
    return rc == ED_E_NOMEM ? ed_err_set(err, rc, "create table %s: out of memory", st_url(store))
                            : rc;
  }
  free_actions(acts, nacts);
  char name[64];
  dl_log_name(0, ".json", name);
  ed_err_t e2 = {0};
  rc = st_put_if_absent(store, name, b.data, b.len, &e2);
  ed_buf_fini(&b);
  if (rc && rc != ED_E_EXISTS) {
    if (err)
      *err = e2;
    return rc;
  }
  /* Created by us or by someone else first (delta-rs does the same): load. */
  dl_table_t *t;
  if ((rc = dl_table_open(store, &t, err)))
    return rc;
  if (strcmp(t->metadata.schema_string, o->schema_string) ||
      !same_partitions(t->metadata.partition_cols, o->partition_cols)) {
    rc = ed_err_set(err, ED_E_SCHEMA,
                    "table %s exists with a different schema or partition columns: table has %s",
                    st_url(store), t->metadata.schema_string);
    dl_table_free(t);
    return rc;
  }
  *out = t;
  return ED_OK;
}

/* ---- commit ---- */

typedef struct {
  const dl_commit_t *c;
  int64_t version;
  ed_code_t verdict; /* protocol, metadata, remove: ED_OK go on, ED_E_CONFLICT abort */
  char why[256];
  int64_t found_version;
  /* the winner's txn versions for c's appIds (INT64_MIN: it has none),
   * judged once the whole winner is read (winner_verdict) */
  int64_t batch;
  int64_t *ptxn; /* c->nptxns entries */
} winner_ctx_t;

static ed_code_t winner_fn(dl_table_t *t, dl_action_t *a, void *ctx, ed_err_t *err) {
  winner_ctx_t *w = ctx;
  const dl_commit_t *c = w->c;
  if (w->verdict == ED_OK) {
    switch (a->kind) {
    case DL_A_PROTOCOL:
      w->verdict = ED_E_CONFLICT;
      snprintf(w->why, sizeof w->why,
               "a concurrent commit (version %" PRId64 ") changed the protocol", w->version);
      break;
    case DL_A_METADATA:
      w->verdict = ED_E_CONFLICT;
      snprintf(w->why, sizeof w->why,
               "a concurrent commit (version %" PRId64 ") changed the table metadata", w->version);
      break;
    case DL_A_REMOVE:
      for (size_t i = 0; i < c->nremoves; i++)
        if (!strcmp(c->removes[i].path, a->u.remove.path)) {
          w->verdict = ED_E_CONFLICT;
          snprintf(w->why, sizeof w->why,
                   "a concurrent commit (version %" PRId64 ") removed file %s that this commit "
                   "removes",
                   w->version, a->u.remove.path);
          break;
        }
      break;
    default:
      break;
    }
  }
  if (a->kind == DL_A_TXN) {
    if (c->app_id && !strcmp(a->u.txn.app_id, c->app_id))
      w->batch = a->u.txn.version;
    for (size_t i = 0; i < c->nptxns; i++)
      if (!strcmp(a->u.txn.app_id, c->ptxns[i].app_id))
        w->ptxn[i] = a->u.txn.version;
  }
  return dl_snapshot_apply(t, a, err);
}

/* What one whole winner means for c. Our own landed commit carries every one
 * of c's appIds at c's versions (or later), whatever else it holds, so that
 * is judged first; then a partition the winner moved voids c (a stale owner
 * must not write it twice); then the winner's other conflicts. */
static ed_code_t winner_verdict(dl_table_t *t, winner_ctx_t *w, ed_err_t *err) {
  const dl_commit_t *c = w->c;
  bool touched = w->batch != INT64_MIN, all = !c->app_id || w->batch >= c->txn_version;
  size_t moved = SIZE_MAX;
  for (size_t i = 0; i < c->nptxns; i++) {
    bool seen = w->ptxn[i] != INT64_MIN;
    touched |= seen;
    all &= seen && w->ptxn[i] >= c->ptxns[i].version;
    if (seen && moved == SIZE_MAX)
      moved = i;
  }
  if (touched && all) {
    w->found_version = w->version;
    return ED_E_EXISTS;
  }
  if (moved != SIZE_MAX)
    return ed_err_set(err, ED_E_FENCED,
                      "table %s: appId '%s' was moved to version %" PRId64
                      " by a concurrent commit (table version %" PRId64 ") while this commit's "
                      "base was %" PRId64 ": another owner moved the partition; nothing written",
                      st_url(t->store), c->ptxns[moved].app_id, w->ptxn[moved], w->version,
                      c->ptxns[moved].base);
  if (w->batch != INT64_MIN && w->batch >= c->txn_version) {
    /* the batch's txn without its positions: a writer from before them */
    w->found_version = w->version;
    return ED_E_EXISTS;
  }
  if (w->batch != INT64_MIN)
    return ed_err_set(err, ED_E_CONFLICT,
                      "table %s: another writer committed appId '%s' version %" PRId64
                      " at table version %" PRId64 " (two writers share one appId)",
                      st_url(t->store), c->app_id, w->batch, w->version);
  if (w->verdict)
    return ed_err_set(err, w->verdict, "table %s: %s", st_url(t->store), w->why);
  return ED_OK;
}

/* A caller's mistake in c's ptxns, before anything is written. */
static ed_code_t check_ptxns(const dl_table_t *t, const dl_commit_t *c, ed_err_t *err) {
  for (size_t i = 0; i < c->nptxns; i++) {
    const dl_ptxn_t *p = &c->ptxns[i];
    if (!p->app_id || !p->app_id[0] || p->version < 0 || p->base < -1)
      return ed_err_set(err, ED_E_INVALID,
                        "commit to %s: ptxn %zu: expected an appId, a version >= 0 and a base "
                        ">= -1",
                        st_url(t->store), i);
    /* the protocol allows one txn per appId in a commit */
    if (c->app_id && !strcmp(c->app_id, p->app_id))
      return ed_err_set(err, ED_E_INVALID, "commit to %s: ptxn appId '%s' is the commit's appId",
                        st_url(t->store), p->app_id);
    for (size_t k = 0; k < i; k++)
      if (!strcmp(c->ptxns[k].app_id, p->app_id))
        return ed_err_set(err, ED_E_INVALID, "commit to %s: ptxn appId '%s' given twice",
                          st_url(t->store), p->app_id);
  }
  return ED_OK;
}

/* The snapshot's txn version of app_id, -1 when it has none. */
static int64_t txn_or_none(const dl_table_t *t, const char *app_id) {
  int64_t v;
  return dl_table_txn_version(t, app_id, &v) ? v : -1;
}

static ed_code_t build_body(dl_table_t *t, const dl_commit_t *c, int64_t read_version,
                            const char *txn_id, ed_buf_t *b) {
  int64_t now = ed_time_now_us() / 1000;
  bool streaming = c->app_id || c->nptxns;
  const char *op = c->operation ? c->operation : streaming ? "STREAMING UPDATE" : "WRITE";
  bool blind = c->nremoves == 0;
  int64_t rows = 0, bytes = 0, rbytes = 0;
  for (size_t i = 0; i < c->nadds; i++) {
    bytes += c->adds[i].size;
    const char *nr = c->adds[i].stats ? strstr(c->adds[i].stats, "\"numRecords\":") : NULL;
    if (nr)
      rows += strtoll(nr + 13, NULL, 10);
  }
  for (size_t i = 0; i < c->nremoves; i++)
    rbytes += c->removes[i].size > 0 ? c->removes[i].size : 0;
  ed_buf_t params = ED_BUF_INIT, metrics = ED_BUF_INIT;
  if (!c->params_json && c->app_id) {
    ed_buf_puts(&params, "{\"outputMode\":\"Append\",\"queryId\":");
    ed_buf_json_str(&params, c->app_id, strlen(c->app_id));
    ed_buf_printf(&params, ",\"epochId\":\"%" PRId64 "\"}", c->txn_version);
  } else if (!c->params_json && streaming) {
    ed_buf_puts(&params, "{\"outputMode\":\"Append\"}");
  } else if (!c->params_json) {
    ed_buf_puts(&params, "{\"mode\":\"Append\"}");
  }
  if (!c->metrics_json)
    ed_buf_printf(
        &metrics,
        "{\"numAddedFiles\":\"%zu\",\"numRemovedFiles\":\"%zu\",\"numOutputRows\":\"%" PRId64
        "\",\"numOutputBytes\":\"%" PRId64 "\",\"numRemovedBytes\":\"%" PRId64 "\"}",
        c->nadds, c->nremoves, rows, bytes, rbytes);
  /* a failed params or metrics buffer must not pass for "none given" */
  ed_code_t rc = ed_buf_status(&params);
  if (!rc)
    rc = ed_buf_status(&metrics);
  if (!rc)
    rc = dl_write_commit_info(b, now, op, c->params_json ? c->params_json : params.data,
                              read_version, blind, c->metrics_json ? c->metrics_json : metrics.data,
                              txn_id);
  ed_buf_fini(&params);
  ed_buf_fini(&metrics);
  if (!rc && c->metadata)
    rc = dl_write_metadata(b, c->metadata);
  if (!rc && c->app_id) {
    dl_txn_t x = {(char *)c->app_id, c->txn_version, now};
    rc = dl_write_txn(b, &x);
  }
  for (size_t i = 0; !rc && i < c->nptxns; i++) {
    dl_txn_t x = {(char *)c->ptxns[i].app_id, c->ptxns[i].version, now};
    rc = dl_write_txn(b, &x);
  }
  for (size_t i = 0; !rc && i < c->nremoves; i++)
    rc = dl_write_remove(b, &c->removes[i]);
  for (size_t i = 0; !rc && i < c->nadds; i++)
    rc = dl_write_add(b, &c->adds[i]);
  (void)t;
  return rc;
}

ed_code_t dl_table_commit(dl_table_t *t, const dl_commit_t *c, dl_commit_result_t *res,
                          ed_err_t *err) {
  dl_commit_result_t r0 = {0};
  if (!res)
    res = &r0;
  memset(res, 0, sizeof *res);
  ed_code_t rc = dl_feat_check(t, c->op, err);
  if (rc)
    return rc;
  const char *ao = dl_table_config(t, "delta.appendOnly", "false");
  for (size_t i = 0; i < c->nremoves; i++) {
    if (c->removes[i].data_change && !strcmp(ao, "true"))
      return ed_err_set(err, ED_E_INVALID,
                        "table %s is append-only (delta.appendOnly=true): a remove with "
                        "dataChange=true is not allowed",
                        st_url(t->store));
    if (!dl_map_get(&t->files, c->removes[i].path))
      return ed_err_set(err, ED_E_CONFLICT, "table %s: file %s to remove is not live",
                        st_url(t->store), c->removes[i].path);
  }
  if ((rc = check_ptxns(t, c, err)))
    return rc;
  /* Exactly-once: a batch already in the snapshot is never written twice;
   * a partition moved since the writer's base voids the batch. */
  bool landed = c->app_id && txn_or_none(t, c->app_id) >= c->txn_version;
  bool all = c->nptxns ? !c->app_id || landed : landed;
  for (size_t i = 0; all && i < c->nptxns; i++)
    all = txn_or_none(t, c->ptxns[i].app_id) >= c->ptxns[i].version;
  if (all) {
    res->already_committed = true;
    res->version = t->version;
    return ED_OK;
  }
  for (size_t i = 0; i < c->nptxns; i++) {
    int64_t have = txn_or_none(t, c->ptxns[i].app_id);
    if (have != c->ptxns[i].base)
      return ed_err_set(err, ED_E_FENCED,
                        "table %s: appId '%s' is at version %" PRId64 " (table version %" PRId64
                        ") while this commit's base is %" PRId64 ": another owner moved the "
                        "partition; nothing written",
                        st_url(t->store), c->ptxns[i].app_id, have, t->version, c->ptxns[i].base);
  }
  if (landed) {
    /* the batch's txn without its positions: a log written before them */
    res->already_committed = true;
    res->version = t->version;
    return ED_OK;
  }
  char txn_id[37];
  dl_uuid(txn_id);
  int64_t read_version = t->version;
  ed_buf_t body = ED_BUF_INIT;
  dl_action_t *acts = NULL;
  size_t nacts = 0;
  if ((rc = build_body(t, c, read_version, txn_id, &body)) ||
      (rc = parse_body(body.data, body.len, &acts, &nacts, err))) {
    ed_buf_fini(&body);
    return rc == ED_E_NOMEM ? ed_err_set(err, rc, "commit to %s: out of memory, nothing written",
                                         st_url(t->store))
                            : rc;
  }
  int64_t *seen = c->nptxns ? calloc(c->nptxns, sizeof *seen) : NULL;
  if (c->nptxns && !seen) {
    rc = ed_err_set(err, ED_E_NOMEM, "commit to %s: out of memory, nothing written",
                    st_url(t->store));
    goto out;
  }
  int max = c->max_attempts > 0 ? c->max_attempts : 100;
  for (int attempt = 1;; attempt++) {
    int64_t v = t->version + 1;
    char name[64];
    dl_log_name(v, ".json", name);
    res->attempts = attempt;
    ed_err_t e2 = {0};
    rc = st_put_if_absent(t->store, name, body.data, body.len, &e2);
    if (rc == ED_OK) {
      res->version = v;
      for (size_t i = 0; !rc && i < nacts; i++)
        rc = dl_snapshot_apply(t, &acts[i], err);
      if (rc) {
        /* Landed, but the snapshot holds only part of it: leave the version
         * behind so a refresh (or the next commit's race check) reads the
         * commit again; applying an action twice is harmless. */
        ed_err_set(err, rc,
                   "commit version %" PRId64 " of %s landed but the snapshot could not "
                   "take it: out of memory",
                   v, st_url(t->store));
        break;
      }
      t->version = v;
      ED_LOG_DEBUG("delta_commit", "table=%s version=%" PRId64 " attempts=%d adds=%zu removes=%zu",
                   st_url(t->store), v, attempt, c->nadds, c->nremoves);
      break;
    }
    if (rc != ED_E_EXISTS) {
      if (err)
        *err = e2;
      ed_err_prefix(err, "commit version %" PRId64, v);
      break;
    }
    /* Lost the race: read the winners and decide (reference §B.4). */
    for (;;) {
      winner_ctx_t w = {c, t->version + 1, ED_OK, "", -1, INT64_MIN, seen};
      for (size_t i = 0; i < c->nptxns; i++)
        seen[i] = INT64_MIN;
      ed_err_t e3 = {0};
      rc = read_commit(t, w.version, winner_fn, &w, &e3);
      if (rc == ED_E_NOT_FOUND) {
        rc = ED_OK;
        break;
      }
      if (rc) {
        if (err)
          *err = e3;
        goto out;
      }
      t->version = w.version;
      rc = winner_verdict(t, &w, err);
      if (rc == ED_E_EXISTS) {
        res->already_committed = true;
        res->version = w.found_version;
        rc = ED_OK;
        goto out;
      }
      if (rc)
        goto out;
    }
    if (attempt >= max) {
      rc = ed_err_set(err, ED_E_CONFLICT,
                      "table %s: gave up after %d attempts, every version was taken by another "
                      "writer",
                      st_url(t->store), attempt);
      goto out;
    }
  }
  if (!rc && !c->no_checkpoint) {
    int64_t interval = strtoll(dl_table_config(t, "delta.checkpointInterval", "10"), NULL, 10);
    if (interval <= 0)
      interval = 10;
    /* Spark's rule (v % interval == 0), and only once the actions since the
     * last checkpoint number at least its rows over the interval: a
     * checkpoint rewrites every file, tombstone and txn, so on a table that
     * commits many times a second (trigger = continuous) or holds many
     * tombstones (compaction) a fixed cadence costs the writer its whole
     * snapshot again and again; this way each committed action pays for at
     * most `interval` checkpoint rows. A small table keeps Spark's cadence. */
    size_t rows = t->files.n + t->tombstones.n + t->ntxns;
    if (res->version > 0 && res->version % interval == 0 &&
        t->since_ckpt * (uint64_t)interval >= rows) {
      ed_err_t e4 = {0};
      /* a failed checkpoint never fails a landed commit: readers do not need
       * it, only speed */
      if (dl_table_checkpoint(t, &e4) == ED_OK) {
        res->checkpointed = true;
        int64_t now_ms = ed_time_now_us() / 1000;
        if (now_ms >= t->cleanup_after_ms)
          dl_table_cleanup_log(t, now_ms, NULL, NULL);
      } else {
        ED_LOG_WARN("delta_checkpoint_failed", "table=%s version=%" PRId64 " error=\"%s\"",
                    st_url(t->store), res->version, e4.msg);
      }
    }
  }
out:
  free(seen);
  free_actions(acts, nacts);
  ed_buf_fini(&body);
  return rc;
}

ed_code_t dl_table_cleanup_log(dl_table_t *t, int64_t now_ms, size_t *deleted, ed_err_t *err) {
  if (deleted)
    *deleted = 0;
  if (strcmp(dl_table_config(t, "delta.enableExpiredLogCleanup", "true"), "true"))
    return ED_OK;
  int64_t ret_us;
  if (ed_time_parse_duration(dl_table_config(t, "delta.logRetentionDuration", "interval 30 days"),
                             &ret_us, NULL))
    ret_us = 30 * ED_US_PER_DAY;
  int64_t cutoff = now_ms - ret_us / 1000;
  st_list_t l = {0};
  ed_code_t rc = st_list(t->store, "_delta_log/", &l, err);
  if (rc)
    return rc;
  /* The newest checkpoint whose own file is past the cut-off: everything
   * before it is covered and expired. */
  int64_t ck = -1;
  for (size_t i = 0; i < l.n; i++) {
    int64_t v;
    const char *suf;
    if (parse_log_name(l.items[i].key, &v, &suf) && !strcmp(suf, ".checkpoint.parquet") &&
        l.items[i].mtime_ms <= cutoff && v > ck && v <= t->version)
      ck = v;
  }
  /* Nothing kept now can expire before the oldest kept file's mtime plus
   * the retention (files written later are newer than now). */
  int64_t oldest = now_ms;
  for (size_t i = 0; i < l.n && !rc; i++) {
    int64_t v;
    const char *suf;
    if (!parse_log_name(l.items[i].key, &v, &suf) ||
        (strcmp(suf, ".json") && strcmp(suf, ".checkpoint.parquet") && strcmp(suf, ".crc")))
      continue;
    if (ck <= 0 || v >= ck || l.items[i].mtime_ms > cutoff) {
      if (l.items[i].mtime_ms < oldest)
        oldest = l.items[i].mtime_ms;
      continue;
    }
    if (!(rc = st_delete(t->store, l.items[i].key, err)) && deleted)
      (*deleted)++;
  }
  if (!rc)
    t->cleanup_after_ms = oldest + ret_us / 1000;
  st_list_fini(&l);
  return rc;
}
