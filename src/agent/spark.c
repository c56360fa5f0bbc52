/* spark: a Spark Structured Streaming checkpoint of the Event Hubs connector.
 *
 * Layout (Spark's HDFSMetadataLog; OffsetSeqLog and CommitLog): offsets/<n>
 * is written when batch n is planned, commits/<n> when it has finished; both
 * are text, first line "v1". offsets/<n>: line 2 the batch metadata JSON,
 * then one line per source, in the query's source order ("-" for none).
 * The connector's line (org.apache.spark.sql.eventhubs.JsonUtils) is, in
 * releases up to 2.3.22, {"<hub>":{"<partition>":<seqNo>,...}}, and in later
 * ones {"endpoint":..,"consumerGroup":..,"partitionToSeqNos":{"<hub>":{..}}};
 * seqNo is the end of batch n, exclusive: the next sequence number to read.
 * The last n with a commits/<n> is the last batch whose output landed. */
#include "agent/spark.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_object *get(json_object *o, const char *k) {
  json_object *v = NULL;
  return o && json_object_object_get_ex(o, k, &v) ? v : NULL;
}

/* What one offsets line fills. */
static void free_source(ag_spark_pos_t *p) {
  for (size_t i = 0; i < p->n; i++)
    free(p->partition[i]);
  free(p->partition);
  free(p->next);
  free(p->hub);
  free(p->consumer_group);
  p->partition = NULL, p->next = NULL, p->hub = p->consumer_group = NULL, p->n = 0;
}

void ag_spark_pos_fini(ag_spark_pos_t *p) {
  if (!p)
    return;
  free_source(p);
  free(p->url);
  free(p->query_id);
  memset(p, 0, sizeof *p);
}

/* {"<hub>":{"<partition>":<seqNo>,...}}: exactly one hub with integers. */
static bool parse_hub_map(json_object *m, ag_spark_pos_t *out) {
  if (!m || !json_object_is_type(m, json_type_object) || json_object_object_length(m) != 1)
    return false;
  json_object_object_foreach(m, hub, parts) {
    if (!json_object_is_type(parts, json_type_object))
      return false;
    size_t n = (size_t)json_object_object_length(parts);
    out->partition = calloc(n + 1, sizeof *out->partition);
    out->next = calloc(n + 1, sizeof *out->next);
    out->hub = strdup(hub);
    if (!out->partition || !out->next || !out->hub)
      return false;
    json_object_object_foreach(parts, id, seq) {
      if (!json_object_is_type(seq, json_type_int))
        return false;
      if (!(out->partition[out->n] = strdup(id)))
        return false;
      out->next[out->n++] = json_object_get_int64(seq);
    }
  }
  return true;
}

ed_code_t ag_spark_parse_offsets(const char *name, const char *text, size_t len,
                                 ag_spark_pos_t *out, ed_err_t *err) {
  const char *p = text, *end = text + len;
  int line = 0, found = 0;
  ed_code_t rc = ED_OK;
  while (!rc && p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
    line++;
    if (line == 1 && (n < 2 || p[0] != 'v' || p[1] < '1' || p[1] > '9'))
      return ed_err_set(err, ED_E_CORRUPT,
                        "Spark checkpoint file %s: line 1 is not a log version (expected \"v1\")",
                        name);
    if (line >= 3 && n && !(n == 1 && *p == '-')) {
      char *s = strndup(p, n);
      json_object *j = s ? json_tokener_parse(s) : NULL;
      free(s);
      json_object *map = get(j, "partitionToSeqNos");
      ag_spark_pos_t one = {0};
      bool ok = parse_hub_map(map ? map : j, &one);
      if (ok && map) {
        const char *cg = json_object_get_string(get(j, "consumerGroup"));
        if (cg && !(one.consumer_group = strdup(cg)))
          ok = false;
      }
      json_object_put(j);
      if (ok && found++) {
        rc = ed_err_set(err, ED_E_CONFIG,
                        "Spark checkpoint file %s: more than one Event Hubs source (line %d); "
                        "expected a query reading one hub",
                        name, line);
      } else if (ok) {
        free_source(out);
        out->hub = one.hub, out->consumer_group = one.consumer_group;
        out->partition = one.partition, out->next = one.next, out->n = one.n;
        memset(&one, 0, sizeof one);
      }
      ag_spark_pos_fini(&one);
    }
    p += n + (nl ? 1 : 0);
  }
  if (!rc && !found)
    rc = ed_err_set(err, ED_E_CONFIG,
                    "Spark checkpoint file %s: no Event Hubs source offset (expected a line "
                    "{\"<hub>\":{\"<partition>\":<sequence number>,...}} after the batch "
                    "metadata)",
                    name);
  return rc;
}

/* The largest n among keys "<dir>/<n>" (Spark's .crc and temp files have
 * other names); -1 when none. */
static int64_t last_batch(const st_list_t *l, size_t dirlen) {
  int64_t best = -1;
  for (size_t i = 0; i < l->n; i++) {
    const char *k = l->items[i].key + dirlen;
    if (!*k || strspn(k, "0123456789") != strlen(k))
      continue;
    int64_t v = strtoll(k, NULL, 10);
    if (v > best)
      best = v;
  }
  return best;
}

ed_code_t ag_spark_read(const char *url, const st_opts_t *store, int64_t batch, ag_spark_pos_t *out,
                        ed_err_t *err) {
  memset(out, 0, sizeof *out);
  out->batch_id = -1;
  st_store_t *s = NULL;
  st_list_t l = {0};
  ed_buf_t b = ED_BUF_INIT;
  ed_code_t rc = st_open(url, store, &s, err);
  if (!rc && !(out->url = strdup(url)))
    rc = ed_err_set(err, ED_E_NOMEM, "out of memory");
  if (!rc && (rc = st_list_names(s, "commits/", &l, err)) == ED_E_NOT_FOUND)
    rc = ED_OK, l.n = 0;
  if (!rc)
    out->committed = last_batch(&l, strlen("commits/"));
  out->batch_id = batch >= 0 ? batch : out->committed;
  if (!rc && out->committed < 0)
    rc = ed_err_set(err, ED_E_CONFIG,
                    "Spark checkpoint %s has no commits/<n> file: the query never finished a "
                    "batch, so there is no position to take over (expected the folder given to "
                    "writeStream's checkpointLocation)",
                    url);
  /* metadata: {"id":"<uuid>"}, the id Spark's Delta sink writes as txn appId */
  if (!rc && st_get(s, "metadata", 0, -1, &b, NULL) == ED_OK && b.data) {
    char *txt = strndup(b.data, b.len);
    json_object *j = txt ? json_tokener_parse(txt) : NULL;
    const char *id = json_object_get_string(get(j, "id"));
    if (id && !(out->query_id = strdup(id)))
      rc = ed_err_set(err, ED_E_NOMEM, "out of memory");
    json_object_put(j);
    free(txt);
  }
  b.len = 0;
  char key[48];
  snprintf(key, sizeof key, "offsets/%lld", (long long)out->batch_id);
  if (!rc && (rc = st_get(s, key, 0, -1, &b, err)) == ED_E_NOT_FOUND)
    rc = ed_err_set(err, ED_E_CORRUPT, "Spark checkpoint %s: batch %lld has no %s", url,
                    (long long)out->batch_id, key);
  if (!rc) {
    char name[600];
    snprintf(name, sizeof name, "%s/%s", url, key);
    rc = ag_spark_parse_offsets(name, b.data ? b.data : "", b.len, out, err);
  }
  ed_buf_fini(&b);
  st_list_fini(&l);
  st_free(s);
  if (rc)
    ag_spark_pos_fini(out);
  return rc;
}

bool ag_spark_next(const ag_spark_pos_t *pos, const char *id, int64_t *next) {
  for (size_t i = 0; i < pos->n; i++)
    if (!strcmp(pos->partition[i], id)) {
      *next = pos->next[i];
      return true;
    }
  return false;
}

ed_code_t ag_spark_match(const ag_spark_pos_t *pos, const char *hub, char *const *ids, size_t n,
                         ed_err_t *err) {
  if (hub && strcmp(pos->hub, hub))
    return ed_err_set(err, ED_E_CONFIG,
                      "Spark checkpoint %s read event hub '%s', but ehdelta reads '%s': expected "
                      "the checkpoint of a query on the same hub",
                      pos->url, pos->hub, hub);
  int64_t x;
  for (size_t i = 0; i < n; i++)
    if (!ag_spark_next(pos, ids[i], &x))
      return ed_err_set(err, ED_E_CONFIG,
                        "Spark checkpoint %s has no position for partition %s of hub '%s' (it "
                        "has %zu partitions): expected the same partitions as ehdelta reads",
                        pos->url, ids[i], pos->hub, pos->n);
  if (pos->n != n)
    return ed_err_set(err, ED_E_CONFIG,
                      "Spark checkpoint %s has %zu partitions of hub '%s', ehdelta reads %zu: "
                      "expected the same partitions ([source] partitions)",
                      pos->url, pos->n, pos->hub, n);
  return ED_OK;
}
