/* datafile: Parquet data file -> store -> add action. */
#include <stdlib.h>
#include <string.h>

#include "common/time.h"
#include "delta/datafile.h"
#include "delta/path.h"
#include "delta/stats.h"

struct dl_file_writer {
  dl_table_t *t;
  pq_writer_t *w;
  ed_buf_t file;
  dl_kv_t *pv;
  size_t npv;
  bool closed;
  bool *nan; /* per leaf: a NaN was written */
};

static ed_code_t sink(void *ctx, const void *data, size_t len, ed_err_t *err) {
  (void)err;
  return ed_buf_append(ctx, data, len);
}

ed_code_t dl_file_writer_new(dl_table_t *t, const pq_schema_t *schema, const dl_kv_t *pv,
                             size_t npv, const pq_writer_opts_t *opts, dl_file_writer_t **out,
                             ed_err_t *err) {
  *out = NULL;
  const dl_metadata_t *m = dl_table_metadata(t);
  if (npv != m->npart)
    return ed_err_set(err, ED_E_SCHEMA,
                      "data file for table %s: %zu partition values given, the table has %zu "
                      "partition columns",
                      st_url(dl_table_store(t)), npv, m->npart);
  for (size_t i = 0; i < npv; i++)
    if (strcmp(pv[i].key, m->partition_cols[i]))
      return ed_err_set(err, ED_E_SCHEMA,
                        "data file for table %s: partition value %zu is for '%s', expected '%s'",
                        st_url(dl_table_store(t)), i, pv[i].key, m->partition_cols[i]);
  dl_file_writer_t *w = calloc(1, sizeof *w);
  if (!w)
    return ed_err_set(err, ED_E_NOMEM, "out of memory");
  w->t = t;
  if (npv) {
    w->pv = calloc(npv, sizeof *w->pv);
    for (size_t i = 0; w->pv && i < npv; i++) {
      w->pv[i].key = strdup(pv[i].key);
      w->pv[i].value = pv[i].value ? strdup(pv[i].value) : NULL;
    }
    w->npv = npv;
  }
  ed_code_t rc = pq_writer_new(schema, opts, sink, &w->file, &w->w, err);
  if (!rc && !(w->nan = calloc(pq_schema_num_leaves(pq_writer_schema(w->w)) + 1, 1)))
    rc = ed_err_set(err, ED_E_NOMEM, "out of memory");
  if (rc) {
    dl_file_writer_free(w);
    return rc;
  }
  *out = w;
  return ED_OK;
}

ed_code_t dl_file_writer_write(dl_file_writer_t *w, const pq_col_t *cols, size_t nrows,
                               ed_err_t *err) {
  ed_code_t rc = pq_writer_write(w->w, cols, nrows, err);
  if (!rc)
    dl_stats_scan_nan(pq_writer_schema(w->w), cols, nrows, w->nan);
  return rc;
}

int64_t dl_file_writer_rows(const dl_file_writer_t *w) { return pq_writer_num_rows(w->w); }
uint64_t dl_file_writer_bytes(const dl_file_writer_t *w) { return pq_writer_bytes(w->w); }

ed_code_t dl_file_writer_finish(dl_file_writer_t *w, bool data_change, dl_add_t *add,
                                ed_err_t *err) {
  memset(add, 0, sizeof *add);
  ed_code_t rc = pq_writer_close(w->w, err);
  if (rc)
    return rc;
  w->closed = true;
  ed_buf_t key = ED_BUF_INIT, uri = ED_BUF_INIT, stats = ED_BUF_INIT;
  char uuid[37];
  dl_uuid(uuid);
  dl_path_partition_dir(&key, w->pv, w->npv);
  ed_buf_printf(&key, "part-00000-%s.c000.zstd.parquet", uuid);
  const char *nic = dl_table_config(w->t, "delta.dataSkippingNumIndexedCols", "32");
  /* a key cut short by a failed append would put the file elsewhere */
  if ((rc = ed_buf_status(&key)))
    ed_err_set(err, rc, "data file: out of memory building its name");
  else if (!(rc = dl_stats_from_writer(w->w, atoi(nic) < 0 ? 1 << 30 : atoi(nic), w->nan, &stats,
                                       err)) &&
           !(rc = st_put(dl_table_store(w->t), key.data, w->file.data, w->file.len, err))) {
    dl_path_to_uri(&uri, key.data, key.len);
    add->path = ed_buf_steal(&uri);
    add->size = (int64_t)w->file.len;
    add->mtime_ms = ed_time_now_us() / 1000;
    add->data_change = data_change;
    add->stats = ed_buf_steal(&stats);
    bool ok = add->path && add->stats;
    if (w->npv) {
      add->pv = calloc(w->npv, sizeof *add->pv);
      ok &= add->pv != NULL;
      for (size_t i = 0; add->pv && i < w->npv; i++) {
        add->pv[i].key = strdup(w->pv[i].key);
        add->pv[i].value = w->pv[i].value ? strdup(w->pv[i].value) : NULL;
        ok &= add->pv[i].key && (!w->pv[i].value || add->pv[i].value);
      }
      add->npv = add->pv ? w->npv : 0;
    }
    if (!ok) {
      /* the file is written but not committed: an orphan vacuum removes */
      dl_add_fini(add);
      rc = ed_err_set(err, ED_E_NOMEM, "data file %s: out of memory describing it", key.data);
    }
  }
  ed_buf_fini(&key);
  ed_buf_fini(&uri);
  ed_buf_fini(&stats);
  return rc;
}

void dl_file_writer_free(dl_file_writer_t *w) {
  if (!w)
    return;
  pq_writer_free(w->w);
  ed_buf_fini(&w->file);
  free(w->nan);
  for (size_t i = 0; i < w->npv; i++) {
    free(w->pv[i].key);
    free(w->pv[i].value);
  }
  free(w->pv);
  free(w);
}
