/* maint: optimize, vacuum, inspect. */
#include <inttypes.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "common/time.h"
#include "delta/datafile.h"
#include "delta/features.h"
#include "delta/maint.h"
#include "delta/path.h"
#include "delta/stats.h"
#include "delta/table_int.h"
#include "delta/features.h"
#include "parquet/reader.h"

/* The partition of a file as one string key ("d=2024-01-01/" style). */
static char *part_key(const dl_add_t *a) {
  ed_buf_t b = ED_BUF_INIT;
  for (size_t i = 0; i < a->npv; i++)
    ed_buf_printf(&b, "%s=%s%c", a->pv[i].key, a->pv[i].value ? a->pv[i].value : "\x01null", 0x1F);
  ed_buf_puts(&b, "");
  return ed_buf_steal(&b);
}

static int64_t rows_of(const dl_add_t *a) {
  const char *nr = a->stats ? strstr(a->stats, "\"numRecords\":") : NULL;
  return nr ? strtoll(nr + 13, NULL, 10) : -1;
}

typedef struct {
  const dl_add_t *a;
  char *part;
} fref_t;

static int cmp_fref(const void *x, const void *y) {
  const fref_t *a = x, *b = y;
  int c = strcmp(a->part, b->part);
  if (c)
    return c;
  return a->a->size < b->a->size   ? -1
         : a->a->size > b->a->size ? 1
                                   : strcmp(a->a->path, b->a->path);
}

/* Of a partition's small files fs[i..j) (smallest first), where the ones
 * worth rewriting end: each file after the first two must be no larger than
 * all before it together. Files of a like size are merged, and a file made by
 * an earlier compaction waits until the newer ones add up to it, so each byte
 * is rewritten about log2(partition / commit size) times instead of at every
 * look (size-tiered, as LSM stores compact). */
static size_t tier_end(const fref_t *fs, size_t i, size_t j) {
  int64_t sum = fs[i].a->size + fs[i + 1].a->size;
  size_t e = i + 2;
  while (e < j && fs[e].a->size <= sum)
    sum += fs[e++].a->size;
  return e;
}

/* Rewrites files[0..n) (one partition, same schema) into new files of about
 * target bytes. */
static ed_code_t rewrite_bin(dl_table_t *t, fref_t *files, size_t n, int64_t target,
                             dl_add_t **adds, size_t *nadds, size_t *cadds, int64_t *rows,
                             ed_err_t *err) {
  st_store_t *s = dl_table_store(t);
  dl_file_writer_t *w = NULL;
  ed_code_t rc = ED_OK;
  char *schema_json = NULL;
  for (size_t i = 0; i < n && !rc; i++) {
    ed_buf_t key = ED_BUF_INIT, data = ED_BUF_INIT, sj = ED_BUF_INIT;
    pq_reader_t *r = NULL;
    if (!(rc = dl_path_from_uri(&key, files[i].a->path, err)) &&
        !(rc = st_get(s, key.data, 0, -1, &data, err)) &&
        !(rc = pq_reader_open(data.data, data.len, &r, err)) &&
        !(rc = dl_schema_from_pq(pq_reader_schema(r), &sj, err))) {
      if (!schema_json) {
        schema_json = strdup(sj.data);
      } else if (strcmp(schema_json, sj.data)) {
        rc = ed_err_set(err, ED_E_SCHEMA, "optimize: %s has a different schema than its partition",
                        files[i].a->path);
      }
      for (size_t g = 0; !rc && g < pq_reader_num_row_groups(r); g++) {
        if (!w && (rc = dl_file_writer_new(t, pq_reader_schema(r), files[i].a->pv, files[i].a->npv,
                                           NULL, &w, err)))
          break;
        pq_batch_t *b = NULL;
        if (!(rc = pq_reader_read_row_group(r, g, &b, err)))
          rc = dl_file_writer_write(w, b->cols, b->nrows, err);
        if (!rc)
          *rows += (int64_t)b->nrows;
        pq_batch_free(b);
        if (!rc && (int64_t)dl_file_writer_bytes(w) >= target) {
          if (*nadds == *cadds) {
            *cadds = *cadds ? *cadds * 2 : 8;
            *adds = realloc(*adds, *cadds * sizeof **adds);
          }
          rc = dl_file_writer_finish(w, false, &(*adds)[(*nadds)++], err);
          dl_file_writer_free(w);
          w = NULL;
        }
      }
    }
    if (rc)
      ed_err_prefix(err, "optimize %s", files[i].a->path);
    pq_reader_free(r);
    ed_buf_fini(&key);
    ed_buf_fini(&data);
    ed_buf_fini(&sj);
  }
  if (!rc && w && dl_file_writer_rows(w) > 0) {
    if (*nadds == *cadds) {
      *cadds = *cadds ? *cadds * 2 : 8;
      *adds = realloc(*adds, *cadds * sizeof **adds);
    }
    rc = dl_file_writer_finish(w, false, &(*adds)[(*nadds)++], err);
  }
  dl_file_writer_free(w);
  free(schema_json);
  return rc;
}

ed_code_t dl_optimize(dl_table_t *t, const dl_optimize_opts_t *o, dl_optimize_result_t *res,
                      ed_err_t *err) {
  dl_optimize_result_t r0;
  if (!res)
    res = &r0;
  memset(res, 0, sizeof *res);
  res->version = -1;
  ed_code_t frc = dl_feat_check(t, DL_OP_OPTIMIZE, err);
  if (frc)
    return frc; /* before any file is rewritten */
  int64_t target = o && o->target_size > 0
                       ? o->target_size
                       : strtoll(dl_table_config(t, "delta.targetFileSize", "134217728"), NULL, 10);
  if (target <= 0)
    target = 128 << 20;
  size_t n = dl_table_num_files(t);
  fref_t *fs = calloc(n + 1, sizeof *fs);
  if (!fs)
    return ed_err_set(err, ED_E_NOMEM, "out of memory");
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    const dl_add_t *a = dl_table_file(t, i);
    if (a->size >= target || strstr(a->path, "://"))
      continue;
    fs[m].a = a;
    fs[m++].part = part_key(a);
  }
  qsort(fs, m, sizeof *fs, cmp_fref);
  dl_add_t *adds = NULL;
  size_t nadds = 0, cadds = 0;
  dl_remove_t *rms = calloc(m + 1, sizeof *rms);
  size_t nrms = 0;
  ed_code_t rc = rms ? ED_OK : ED_E_NOMEM;
  int64_t now = ed_time_now_us() / 1000;
  for (size_t i = 0; i < m && !rc;) {
    size_t j = i;
    while (j < m && !strcmp(fs[j].part, fs[i].part))
      j++;
    size_t next = j;
    if (o && o->min_files) {
      if (j - i <= o->min_files) {
        i = j;
        continue;
      }
      j = tier_end(fs, i, j);
    }
    /* Bin-pack the partition's small files, smallest first; a bin of one
     * file would only copy it. */
    for (size_t b = i; b < j && !rc;) {
      size_t e = b;
      int64_t sum = 0;
      while (e < j && (sum < target || e == b))
        sum += fs[e++].a->size;
      if (e - b >= 2) {
        if (!o || !o->dry_run)
          rc = rewrite_bin(t, fs + b, e - b, target, &adds, &nadds, &cadds, &res->rows, err);
        for (size_t k = b; k < e && !rc; k++) {
          const dl_add_t *a = fs[k].a;
          dl_remove_t *r = &rms[nrms++];
          r->path = strdup(a->path);
          r->deletion_ts = now;
          r->data_change = false;
          r->size = a->size;
          r->npv = a->npv;
          r->pv = a->npv ? calloc(a->npv, sizeof *r->pv) : NULL;
          for (size_t q = 0; q < a->npv && r->pv; q++) {
            r->pv[q].key = strdup(a->pv[q].key);
            r->pv[q].value = a->pv[q].value ? strdup(a->pv[q].value) : NULL;
          }
          res->bytes_removed += a->size;
          if (o && o->dry_run && rows_of(a) > 0)
            res->rows += rows_of(a);
        }
        if (!rc)
          res->partitions += b == i || res->partitions == 0 ? 1 : 0;
      }
      b = e;
    }
    i = next;
  }
  res->files_removed = nrms;
  for (size_t i = 0; i < nadds; i++)
    res->bytes_added += adds[i].size;
  res->files_added = nadds;
  if (!rc && nrms && (!o || !o->dry_run)) {
    ed_buf_t metrics = ED_BUF_INIT;
    ed_buf_printf(
        &metrics,
        "{\"numRemovedFiles\":\"%zu\",\"numAddedFiles\":\"%zu\",\"numRemovedBytes\":\"%" PRId64
        "\",\"numAddedBytes\":\"%" PRId64 "\"}",
        nrms, nadds, res->bytes_removed, res->bytes_added);
    dl_commit_t c = {.adds = adds,
                     .nadds = nadds,
                     .removes = rms,
                     .nremoves = nrms,
                     .operation = "OPTIMIZE",
                     .params_json = "{\"predicate\":\"[]\",\"zOrderBy\":\"[]\"}",
                     .metrics_json = metrics.data,
                     .op = DL_OP_OPTIMIZE};
    dl_commit_result_t cr;
    rc = dl_table_commit(t, &c, &cr, err);
    ed_buf_fini(&metrics);
    res->attempts = cr.attempts;
    if (!rc)
      res->version = cr.version;
  }
  if (rc) {
    /* the rewritten files never became part of the table */
    for (size_t i = 0; i < nadds; i++) {
      ed_buf_t k = ED_BUF_INIT;
      if (dl_path_from_uri(&k, adds[i].path, NULL) == ED_OK)
        st_delete(dl_table_store(t), k.data, NULL);
      ed_buf_fini(&k);
    }
  }
  for (size_t i = 0; i < nadds; i++)
    dl_add_fini(&adds[i]);
  free(adds);
  for (size_t i = 0; i < nrms; i++)
    dl_remove_fini(&rms[i]);
  free(rms);
  for (size_t i = 0; i < m; i++)
    free(fs[i].part);
  free(fs);
  return rc;
}

/* ---- vacuum ---- */

static bool hidden(const char *key) {
  /* A segment starting with '.' or with '_' but holding no '=' (Spark's
   * VACUUM rule: _delta_log, _checkpoints and temp files are hidden, a
   * partition directory like _2=x is not). */
  for (const char *p = key; *p;) {
    const char *sl = strchr(p, '/');
    size_t n = sl ? (size_t)(sl - p) : strlen(p);
    if (*p == '.' || (*p == '_' && !memchr(p, '=', n)))
      return true;
    if (!sl)
      break;
    p = sl + 1;
  }
  return false;
}

ed_code_t dl_vacuum(dl_table_t *t, const dl_vacuum_opts_t *o, dl_vacuum_result_t *res,
                    ed_err_t *err) {
  memset(res, 0, sizeof *res);
  /* vacuumProtocolCheck: a vacuum honours the writer protocol too */
  ed_code_t frc = dl_feat_check(t, DL_OP_VACUUM, err);
  if (frc)
    return frc;
  int64_t now = o->now_ms ? o->now_ms : ed_time_now_us() / 1000, min_us;
  if (ed_time_parse_duration(
          dl_table_config(t, "delta.deletedFileRetentionDuration", "interval 1 week"), &min_us,
          NULL))
    min_us = 7 * ED_US_PER_DAY;
  if (o->retain_us < min_us && !o->force) {
    char a[64], b[64];
    ed_time_format_duration(o->retain_us, a, sizeof a);
    ed_time_format_duration(min_us, b, sizeof b);
    return ed_err_set(err, ED_E_INVALID,
                      "vacuum %s: retention %s is shorter than the table's "
                      "delta.deletedFileRetentionDuration (%s); readers of older versions may "
                      "still need those files (use --force to proceed)",
                      st_url(dl_table_store(t)), a, b);
  }
  int64_t cutoff = now - o->retain_us / 1000;
  dl_map_t keep = {0};
  ed_code_t rc = ED_OK;
  for (size_t i = 0; i < dl_table_num_files(t) && !rc; i++) {
    ed_buf_t k = ED_BUF_INIT;
    if (!(rc = dl_path_from_uri(&k, dl_table_file(t, i)->path, err)))
      rc = dl_map_put(&keep, k.data, (void *)1);
    ed_buf_fini(&k);
  }
  for (size_t i = 0; i < dl_table_num_tombstones(t) && !rc; i++) {
    const dl_remove_t *r = dl_table_tombstone(t, i);
    if (r->deletion_ts <= cutoff)
      continue;
    ed_buf_t k = ED_BUF_INIT;
    if (!(rc = dl_path_from_uri(&k, r->path, err)))
      rc = dl_map_put(&keep, k.data, (void *)1);
    ed_buf_fini(&k);
  }
  st_list_t l = {0};
  if (!rc)
    rc = st_list(dl_table_store(t), "", &l, err);
  size_t cap = 0;
  for (size_t i = 0; i < l.n && !rc; i++) {
    const st_entry_t *e = &l.items[i];
    if (hidden(e->key) || dl_map_get(&keep, e->key) || e->mtime_ms >= cutoff)
      continue;
    if (!o->dry_run && (rc = st_delete(dl_table_store(t), e->key, err)))
      break;
    if (res->files + 1 >= cap) {
      cap = cap ? cap * 2 : 16;
      res->paths = realloc(res->paths, cap * sizeof *res->paths);
    }
    res->paths[res->files++] = strdup(e->key);
    res->paths[res->files] = NULL;
    res->bytes += e->size;
  }
  st_list_fini(&l);
  dl_map_fini(&keep, NULL);
  return rc;
}

void dl_vacuum_result_fini(dl_vacuum_result_t *r) {
  for (size_t i = 0; r->paths && r->paths[i]; i++)
    free(r->paths[i]);
  free(r->paths);
  memset(r, 0, sizeof *r);
}

/* ---- inspect ---- */

static void schema_lines(json_object *fields, int depth, ed_buf_t *out) {
  size_t n = fields ? json_object_array_length(fields) : 0;
  for (size_t i = 0; i < n; i++) {
    json_object *f = json_object_array_get_idx(fields, i), *nm, *ty, *nl;
    json_object_object_get_ex(f, "name", &nm);
    json_object_object_get_ex(f, "type", &ty);
    json_object_object_get_ex(f, "nullable", &nl);
    ed_buf_printf(out, "%*s%s ", 2 + depth * 2, "", json_object_get_string(nm));
    if (json_object_is_type(ty, json_type_string)) {
      ed_buf_printf(out, "%s%s\n", json_object_get_string(ty),
                    json_object_get_boolean(nl) ? "" : " not null");
      continue;
    }
    json_object *tt, *sub;
    json_object_object_get_ex(ty, "type", &tt);
    if (!strcmp(json_object_get_string(tt), "struct") &&
        json_object_object_get_ex(ty, "fields", &sub)) {
      ed_buf_printf(out, "struct%s\n", json_object_get_boolean(nl) ? "" : " not null");
      schema_lines(sub, depth + 1, out);
    } else {
      ed_buf_printf(out, "%s%s\n", json_object_to_json_string_ext(ty, JSON_C_TO_STRING_PLAIN),
                    json_object_get_boolean(nl) ? "" : " not null");
    }
  }
}

ed_code_t dl_inspect(const dl_table_t *t, bool json, ed_buf_t *out, ed_err_t *err) {
  size_t nf = dl_table_num_files(t);
  int64_t rows = 0, bytes = 0;
  bool rows_known = true;
  json_object *parts = json_object_new_object();
  for (size_t i = 0; i < nf; i++) {
    const dl_add_t *a = dl_table_file(t, i);
    int64_t r = rows_of(a);
    rows_known &= r >= 0;
    rows += r > 0 ? r : 0;
    bytes += a->size;
    ed_buf_t pk = ED_BUF_INIT;
    for (size_t k = 0; k < a->npv; k++)
      ed_buf_printf(&pk, "%s%s=%s", k ? "/" : "", a->pv[k].key,
                    a->pv[k].value ? a->pv[k].value : "null");
    ed_buf_puts(&pk, "");
    json_object *p;
    if (!json_object_object_get_ex(parts, pk.data, &p)) {
      p = json_object_new_object();
      json_object_object_add(p, "files", json_object_new_int64(0));
      json_object_object_add(p, "rows", json_object_new_int64(0));
      json_object_object_add(p, "bytes", json_object_new_int64(0));
      json_object_object_add(parts, pk.data, p);
    }
    json_object *v;
    json_object_object_get_ex(p, "files", &v);
    json_object_set_int64(v, json_object_get_int64(v) + 1);
    json_object_object_get_ex(p, "rows", &v);
    json_object_set_int64(v, json_object_get_int64(v) + (r > 0 ? r : 0));
    json_object_object_get_ex(p, "bytes", &v);
    json_object_set_int64(v, json_object_get_int64(v) + a->size);
    ed_buf_fini(&pk);
  }
  const dl_metadata_t *m = dl_table_metadata(t);
  const dl_protocol_t *pr = dl_table_protocol(t);
  json_object *schema = json_tokener_parse(m->schema_string), *fields = NULL;
  if (schema)
    json_object_object_get_ex(schema, "fields", &fields);
  if (json) {
    json_object *o = json_object_new_object(), *pc = json_object_new_array(),
                *tx = json_object_new_object(), *cf = json_object_new_object();
    json_object_object_add(o, "table", json_object_new_string(st_url(dl_table_store(t))));
    json_object_object_add(o, "version", json_object_new_int64(dl_table_version(t)));
    json_object_object_add(o, "minReaderVersion", json_object_new_int(pr->min_reader));
    json_object_object_add(o, "minWriterVersion", json_object_new_int(pr->min_writer));
    json_object_object_add(o, "files", json_object_new_int64((int64_t)nf));
    json_object_object_add(o, "rows", rows_known ? json_object_new_int64(rows) : NULL);
    json_object_object_add(o, "bytes", json_object_new_int64(bytes));
    for (size_t i = 0; i < m->npart; i++)
      json_object_array_add(pc, json_object_new_string(m->partition_cols[i]));
    json_object_object_add(o, "partitionColumns", pc);
    json_object_object_add(o, "partitions", json_object_get(parts));
    json_object_object_add(o, "schema", schema ? json_object_get(schema) : NULL);
    for (size_t i = 0; i < dl_table_num_txns(t); i++)
      json_object_object_add(tx, dl_table_txn_at(t, i)->app_id,
                             json_object_new_int64(dl_table_txn_at(t, i)->version));
    json_object_object_add(o, "txn", tx);
    for (size_t i = 0; i < m->nconfig; i++)
      json_object_object_add(cf, m->config[i].key,
                             m->config[i].value ? json_object_new_string(m->config[i].value)
                                                : NULL);
    json_object_object_add(o, "configuration", cf);
    json_object_object_add(o, "checkpointVersion",
                           dl_table_checkpoint_version(t) >= 0
                               ? json_object_new_int64(dl_table_checkpoint_version(t))
                               : NULL);
    ed_buf_printf(
        out, "%s\n",
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
  } else {
    ed_buf_printf(out, "table: %s\nversion: %" PRId64 "\nprotocol: %d/%d\n",
                  st_url(dl_table_store(t)), dl_table_version(t), pr->min_reader, pr->min_writer);
    ed_buf_printf(out, "files: %zu\n", nf);
    if (rows_known)
      ed_buf_printf(out, "rows: %" PRId64 "\n", rows);
    else
      ed_buf_printf(out, "rows: at least %" PRId64 " (some files have no stats)\n", rows);
    ed_buf_printf(out, "bytes: %" PRId64 "\n", bytes);
    ed_buf_puts(out, "partitionColumns:");
    for (size_t i = 0; i < m->npart; i++)
      ed_buf_printf(out, " %s", m->partition_cols[i]);
    ed_buf_printf(out, "\npartitions: %d\n", m->npart ? json_object_object_length(parts) : 0);
    if (m->npart) {
      json_object_object_foreach(parts, k, v) {
        json_object *f, *r, *b;
        json_object_object_get_ex(v, "files", &f);
        json_object_object_get_ex(v, "rows", &r);
        json_object_object_get_ex(v, "bytes", &b);
        ed_buf_printf(out, "  %s files=%" PRId64 " rows=%" PRId64 " bytes=%" PRId64 "\n", k,
                      json_object_get_int64(f), json_object_get_int64(r), json_object_get_int64(b));
      }
    }
    ed_buf_puts(out, "schema:\n");
    schema_lines(fields, 0, out);
    ed_buf_printf(out, "txn: %zu\n", dl_table_num_txns(t));
    for (size_t i = 0; i < dl_table_num_txns(t); i++)
      ed_buf_printf(out, "  %s version=%" PRId64 "\n", dl_table_txn_at(t, i)->app_id,
                    dl_table_txn_at(t, i)->version);
    if (m->nconfig) {
      ed_buf_puts(out, "configuration:\n");
      for (size_t i = 0; i < m->nconfig; i++)
        ed_buf_printf(out, "  %s=%s\n", m->config[i].key,
                      m->config[i].value ? m->config[i].value : "null");
    }
    if (dl_table_checkpoint_version(t) >= 0)
      ed_buf_printf(out, "checkpoint: %" PRId64 "\n", dl_table_checkpoint_version(t));
    else
      ed_buf_puts(out, "checkpoint: none\n");
  }
  json_object_put(parts);
  json_object_put(schema);
  (void)err;
  return ED_OK;
}
