/* actions: Delta actions <-> NDJSON lines (json-c for reading, ed_buf for
 * writing so output is compact and stable). */
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/time.h"
#include "config.h"
#include "delta/actions.h"

static char *dupn(const char *s) { return s ? strdup(s) : NULL; }

static void kv_free(dl_kv_t *kv, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(kv[i].key);
    free(kv[i].value);
  }
  free(kv);
}

static ed_code_t kv_copy(dl_kv_t **dst, size_t *nd, const dl_kv_t *src, size_t n) {
  *dst = NULL;
  *nd = 0;
  if (!n)
    return ED_OK;
  dl_kv_t *k = calloc(n, sizeof *k);
  if (!k)
    return ED_E_NOMEM;
  bool ok = true;
  for (size_t i = 0; i < n; i++) {
    k[i].key = dupn(src[i].key);
    k[i].value = dupn(src[i].value);
    ok &= (k[i].key || !src[i].key) && (k[i].value || !src[i].value);
  }
  *dst = k;
  *nd = n;
  return ok ? ED_OK : ED_E_NOMEM;
}

static void strv_free(char **v) {
  for (size_t i = 0; v && v[i]; i++)
    free(v[i]);
  free(v);
}

static char **strv_copy(char *const *v) {
  if (!v)
    return NULL;
  size_t n = 0;
  while (v[n])
    n++;
  char **o = calloc(n + 1, sizeof *o);
  for (size_t i = 0; o && i < n; i++)
    o[i] = strdup(v[i]);
  return o;
}

void dl_add_fini(dl_add_t *a) {
  if (!a)
    return;
  free(a->path);
  kv_free(a->pv, a->npv);
  free(a->stats);
  memset(a, 0, sizeof *a);
}

void dl_remove_fini(dl_remove_t *r) {
  if (!r)
    return;
  free(r->path);
  kv_free(r->pv, r->npv);
  memset(r, 0, sizeof *r);
}

void dl_txn_fini(dl_txn_t *t) {
  if (!t)
    return;
  free(t->app_id);
  memset(t, 0, sizeof *t);
}

void dl_protocol_fini(dl_protocol_t *p) {
  if (!p)
    return;
  strv_free(p->reader_features);
  strv_free(p->writer_features);
  memset(p, 0, sizeof *p);
}

void dl_metadata_fini(dl_metadata_t *m) {
  if (!m)
    return;
  free(m->id);
  free(m->name);
  free(m->schema_string);
  strv_free(m->partition_cols);
  kv_free(m->config, m->nconfig);
  memset(m, 0, sizeof *m);
}

ed_code_t dl_metadata_copy(dl_metadata_t *dst, const dl_metadata_t *src) {
  *dst = *src;
  dst->id = dupn(src->id);
  dst->name = dupn(src->name);
  dst->schema_string = dupn(src->schema_string);
  dst->partition_cols = strv_copy(src->partition_cols);
  if (!dst->partition_cols) {
    dst->partition_cols = calloc(1, sizeof(char *));
    dst->npart = 0;
  }
  return kv_copy(&dst->config, &dst->nconfig, src->config, src->nconfig);
}

const char *dl_metadata_config(const dl_metadata_t *m, const char *key) {
  for (size_t i = 0; i < m->nconfig; i++)
    if (!strcmp(m->config[i].key, key))
      return m->config[i].value;
  return NULL;
}

void dl_action_fini(dl_action_t *a) {
  if (!a)
    return;
  switch (a->kind) {
  case DL_A_ADD:
    dl_add_fini(&a->u.add);
    break;
  case DL_A_REMOVE:
    dl_remove_fini(&a->u.remove);
    break;
  case DL_A_TXN:
    dl_txn_fini(&a->u.txn);
    break;
  case DL_A_PROTOCOL:
    dl_protocol_fini(&a->u.protocol);
    break;
  case DL_A_METADATA:
    dl_metadata_fini(&a->u.metadata);
    break;
  default:
    break;
  }
  free(a->commit_op);
  memset(a, 0, sizeof *a);
}

/* ---- parsing ---- */

static json_object *get(json_object *o, const char *k) {
  json_object *v = NULL;
  return json_object_object_get_ex(o, k, &v) ? v : NULL;
}

static const char *get_str(json_object *o, const char *k) {
  json_object *v = get(o, k);
  return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static bool get_i64(json_object *o, const char *k, int64_t *out) {
  json_object *v = get(o, k);
  if (!v || !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
    return false;
  *out = json_object_get_int64(v);
  return true;
}

static ed_code_t parse_map(json_object *o, dl_kv_t **out, size_t *n) {
  *out = NULL;
  *n = 0;
  if (!o || !json_object_is_type(o, json_type_object))
    return ED_OK;
  size_t cnt = (size_t)json_object_object_length(o);
  if (!cnt)
    return ED_OK;
  dl_kv_t *kv = calloc(cnt, sizeof *kv);
  if (!kv)
    return ED_E_NOMEM;
  size_t i = 0;
  bool ok = true;
  json_object_object_foreach(o, key, val) {
    bool null = !val || json_object_is_type(val, json_type_null);
    kv[i].key = strdup(key);
    kv[i].value = null ? NULL : strdup(json_object_get_string(val));
    ok &= kv[i].key && (null || kv[i].value);
    i++;
  }
  if (!ok) {
    kv_free(kv, i);
    return ED_E_NOMEM;
  }
  *out = kv;
  *n = i;
  return ED_OK;
}

static bool is_array(json_object *a) { return a && json_object_is_type(a, json_type_array); }

/* NULL when a is not an array, or when a copy failed (then is_array(a)). */
static char **parse_strv(json_object *a) {
  if (!is_array(a))
    return NULL;
  size_t n = json_object_array_length(a);
  char **v = calloc(n + 1, sizeof *v);
  for (size_t i = 0; v && i < n; i++)
    if (!(v[i] = strdup(json_object_get_string(json_object_array_get_idx(a, i))))) {
      strv_free(v);
      return NULL;
    }
  return v;
}

static ed_code_t bad(ed_err_t *err, const char *what) {
  return ed_err_set(err, ED_E_CORRUPT, "Delta log: %s", what);
}

ed_code_t dl_action_parse(const char *line, size_t n, dl_action_t *out, ed_err_t *err) {
  memset(out, 0, sizeof *out);
  json_tokener *tok = json_tokener_new();
  if (!tok)
    return ED_E_NOMEM;
  json_object *j = json_tokener_parse_ex(tok, line, (int)n);
  enum json_tokener_error je = json_tokener_get_error(tok);
  json_tokener_free(tok);
  if (!j || je != json_tokener_success) {
    json_object_put(j);
    return ed_err_set(err, ED_E_CORRUPT, "Delta log: malformed JSON line (%s)",
                      json_tokener_error_desc(je));
  }
  ed_code_t rc = ED_OK;
  if (!json_object_is_type(j, json_type_object) || json_object_object_length(j) < 1) {
    rc = bad(err, "expected a JSON object with one action key");
    goto out;
  }
  json_object *v;
  if ((v = get(j, "add"))) {
    dl_add_t *a = &out->u.add;
    out->kind = DL_A_ADD;
    const char *p = get_str(v, "path");
    if (!p || !get_i64(v, "size", &a->size)) {
      rc = bad(err, "add without path or size");
      goto out;
    }
    if (!(a->path = strdup(p))) {
      rc = ED_E_NOMEM;
      goto out;
    }
    get_i64(v, "modificationTime", &a->mtime_ms);
    json_object *dc = get(v, "dataChange");
    a->data_change = dc ? json_object_get_boolean(dc) : true;
    const char *st = get_str(v, "stats");
    a->stats = st ? strdup(st) : NULL;
    rc = parse_map(get(v, "partitionValues"), &a->pv, &a->npv);
  } else if ((v = get(j, "remove"))) {
    dl_remove_t *r = &out->u.remove;
    out->kind = DL_A_REMOVE;
    const char *p = get_str(v, "path");
    if (!p) {
      rc = bad(err, "remove without path");
      goto out;
    }
    if (!(r->path = strdup(p))) {
      rc = ED_E_NOMEM;
      goto out;
    }
    get_i64(v, "deletionTimestamp", &r->deletion_ts);
    json_object *dc = get(v, "dataChange");
    r->data_change = dc ? json_object_get_boolean(dc) : true;
    r->size = -1;
    get_i64(v, "size", &r->size);
    rc = parse_map(get(v, "partitionValues"), &r->pv, &r->npv);
  } else if ((v = get(j, "txn"))) {
    out->kind = DL_A_TXN;
    const char *app = get_str(v, "appId");
    if (!app || !get_i64(v, "version", &out->u.txn.version)) {
      rc = bad(err, "txn without appId or version");
      goto out;
    }
    if (!(out->u.txn.app_id = strdup(app)))
      rc = ED_E_NOMEM;
    get_i64(v, "lastUpdated", &out->u.txn.last_updated);
  } else if ((v = get(j, "protocol"))) {
    out->kind = DL_A_PROTOCOL;
    int64_t r = 0, w = 0;
    if (!get_i64(v, "minReaderVersion", &r) || !get_i64(v, "minWriterVersion", &w)) {
      rc = bad(err, "protocol without minReaderVersion/minWriterVersion");
      goto out;
    }
    out->u.protocol.min_reader = (int)r;
    out->u.protocol.min_writer = (int)w;
    out->u.protocol.reader_features = parse_strv(get(v, "readerFeatures"));
    out->u.protocol.writer_features = parse_strv(get(v, "writerFeatures"));
    if ((!out->u.protocol.reader_features && is_array(get(v, "readerFeatures"))) ||
        (!out->u.protocol.writer_features && is_array(get(v, "writerFeatures"))))
      rc = ED_E_NOMEM;
  } else if ((v = get(j, "metaData"))) {
    dl_metadata_t *m = &out->u.metadata;
    out->kind = DL_A_METADATA;
    const char *id = get_str(v, "id"), *ss = get_str(v, "schemaString");
    if (!id || !ss) {
      rc = bad(err, "metaData without id or schemaString");
      goto out;
    }
    m->id = strdup(id);
    m->schema_string = strdup(ss);
    const char *nm = get_str(v, "name");
    m->name = nm ? strdup(nm) : NULL;
    m->partition_cols = parse_strv(get(v, "partitionColumns"));
    /* a missing list is an empty one; a list we could not copy is not */
    if (!m->partition_cols && !is_array(get(v, "partitionColumns")))
      m->partition_cols = calloc(1, sizeof(char *));
    if (!m->partition_cols || !m->id || !m->schema_string) {
      rc = ED_E_NOMEM;
      goto out;
    }
    while (m->partition_cols && m->partition_cols[m->npart])
      m->npart++;
    get_i64(v, "createdTime", &m->created_ms);
    rc = parse_map(get(v, "configuration"), &m->config, &m->nconfig);
  } else if ((v = get(j, "commitInfo"))) {
    out->kind = DL_A_COMMITINFO;
    get_i64(v, "timestamp", &out->commit_ts);
    const char *op = get_str(v, "operation");
    out->commit_op = op ? strdup(op) : NULL;
  } else {
    out->kind = DL_A_OTHER;
  }
out:
  json_object_put(j);
  if (rc)
    dl_action_fini(out);
  return rc;
}

/* ---- writing ---- */

static ed_code_t jstr(ed_buf_t *b, const char *s) { return ed_buf_json_str(b, s, strlen(s)); }

static void write_pv(ed_buf_t *b, const dl_kv_t *pv, size_t n) {
  ed_buf_putc(b, '{');
  for (size_t i = 0; i < n; i++) {
    if (i)
      ed_buf_putc(b, ',');
    jstr(b, pv[i].key);
    ed_buf_putc(b, ':');
    if (pv[i].value)
      jstr(b, pv[i].value);
    else
      ed_buf_puts(b, "null");
  }
  ed_buf_putc(b, '}');
}

/* Each writer chains appends on the sticky buffer and reports its status
 * once, at the end: a failed append anywhere fails the whole line. */
ed_code_t dl_write_add(ed_buf_t *b, const dl_add_t *a) {
  ed_buf_puts(b, "{\"add\":{\"path\":");
  jstr(b, a->path);
  ed_buf_puts(b, ",\"partitionValues\":");
  write_pv(b, a->pv, a->npv);
  ed_buf_printf(b, ",\"size\":%lld,\"modificationTime\":%lld,\"dataChange\":%s", (long long)a->size,
                (long long)a->mtime_ms, a->data_change ? "true" : "false");
  if (a->stats) {
    ed_buf_puts(b, ",\"stats\":");
    jstr(b, a->stats);
  }
  ed_buf_puts(b, "}}\n");
  return ed_buf_status(b);
}

ed_code_t dl_write_remove(ed_buf_t *b, const dl_remove_t *r) {
  ed_buf_puts(b, "{\"remove\":{\"path\":");
  jstr(b, r->path);
  ed_buf_printf(b, ",\"deletionTimestamp\":%lld,\"dataChange\":%s", (long long)r->deletion_ts,
                r->data_change ? "true" : "false");
  if (r->size >= 0) {
    ed_buf_puts(b, ",\"extendedFileMetadata\":true,\"partitionValues\":");
    write_pv(b, r->pv, r->npv);
    ed_buf_printf(b, ",\"size\":%lld", (long long)r->size);
  }
  ed_buf_puts(b, "}}\n");
  return ed_buf_status(b);
}

ed_code_t dl_write_txn(ed_buf_t *b, const dl_txn_t *t) {
  ed_buf_puts(b, "{\"txn\":{\"appId\":");
  jstr(b, t->app_id);
  ed_buf_printf(b, ",\"version\":%lld,\"lastUpdated\":%lld}}\n", (long long)t->version,
                (long long)t->last_updated);
  return ed_buf_status(b);
}

static void write_strv(ed_buf_t *b, char *const *v) {
  ed_buf_putc(b, '[');
  for (size_t i = 0; v && v[i]; i++) {
    if (i)
      ed_buf_putc(b, ',');
    jstr(b, v[i]);
  }
  ed_buf_putc(b, ']');
}

ed_code_t dl_write_protocol(ed_buf_t *b, const dl_protocol_t *p) {
  ed_buf_printf(b, "{\"protocol\":{\"minReaderVersion\":%d,\"minWriterVersion\":%d", p->min_reader,
                p->min_writer);
  /* Kernel rejects feature lists on (1,2) tables (reference §A.3). */
  if (p->min_reader >= 3 && p->reader_features) {
    ed_buf_puts(b, ",\"readerFeatures\":");
    write_strv(b, p->reader_features);
  }
  if (p->min_writer >= 7 && p->writer_features) {
    ed_buf_puts(b, ",\"writerFeatures\":");
    write_strv(b, p->writer_features);
  }
  ed_buf_puts(b, "}}\n");
  return ed_buf_status(b);
}

ed_code_t dl_write_metadata(ed_buf_t *b, const dl_metadata_t *m) {
  ed_buf_puts(b, "{\"metaData\":{\"id\":");
  jstr(b, m->id);
  if (m->name) {
    ed_buf_puts(b, ",\"name\":");
    jstr(b, m->name);
  }
  ed_buf_puts(b, ",\"format\":{\"provider\":\"parquet\",\"options\":{}},\"schemaString\":");
  jstr(b, m->schema_string);
  ed_buf_puts(b, ",\"partitionColumns\":");
  write_strv(b, m->partition_cols);
  ed_buf_puts(b, ",\"configuration\":");
  write_pv(b, m->config, m->nconfig);
  ed_buf_printf(b, ",\"createdTime\":%lld}}\n", (long long)m->created_ms);
  return ed_buf_status(b);
}

ed_code_t dl_write_commit_info(ed_buf_t *b, int64_t ts_ms, const char *operation,
                               const char *params_json, int64_t read_version, bool blind_append,
                               const char *metrics_json, const char *txn_id) {
  ed_buf_printf(b, "{\"commitInfo\":{\"timestamp\":%lld,\"operation\":", (long long)ts_ms);
  jstr(b, operation);
  ed_buf_printf(b, ",\"operationParameters\":%s", params_json ? params_json : "{}");
  if (read_version >= 0)
    ed_buf_printf(b, ",\"readVersion\":%lld", (long long)read_version);
  ed_buf_printf(b, ",\"isolationLevel\":\"%s\",\"isBlindAppend\":%s",
                blind_append ? "Serializable" : "SnapshotIsolation",
                blind_append ? "true" : "false");
  if (metrics_json)
    ed_buf_printf(b, ",\"operationMetrics\":%s", metrics_json);
  ed_buf_printf(b, ",\"engineInfo\":\"ehdelta/%s\"", PACKAGE_VERSION);
  if (txn_id)
    ed_buf_printf(b, ",\"txnId\":\"%s\"", txn_id);
  ed_buf_puts(b, "}}\n");
  return ed_buf_status(b);
}

void dl_uuid(char out[37]) {
  uint8_t r[16];
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  ssize_t got = fd >= 0 ? read(fd, r, sizeof r) : -1;
  if (fd >= 0)
    close(fd);
  if (got != (ssize_t)sizeof r) {
    /* fall back to clock + pid mixing; uniqueness, not secrecy, is needed */
    uint64_t x = (uint64_t)ed_time_now_us() ^ ((uint64_t)getpid() << 32);
    for (int i = 0; i < 16; i++) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      r[i] = (uint8_t)x;
    }
  }
  r[6] = (uint8_t)((r[6] & 0x0F) | 0x40);
  r[8] = (uint8_t)((r[8] & 0x3F) | 0x80);
  snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0],
           r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14],
           r[15]);
}
