/* features: writer obligations of the Delta protocol, and ehdelta's answer
 * to each. Source: delta-io/delta PROTOCOL.md, "Writer Version
 * Requirements" and "Valid Feature Names in Table Features"; man page
 * ehdelta-delta(7) holds the same table for users. */
#include "delta/features.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delta/table_int.h"

/* What ehdelta does with a feature for one operation. */
typedef enum {
  DO_NOTHING, /* the feature asks nothing of this operation, or it is done */
  DO_RULES,   /* row rules the appender enforces (dl_feat_rules) */
  DO_REFUSE,  /* not implemented: refuse before writing anything */
  DO_DEPENDS, /* decided by the table's metadata (see decide()) */
} act_t;

typedef struct {
  const char *name;
  int legacy_writer; /* the writer version that implies it; 0: by name only (writer 7) */
  act_t on[3];       /* indexed by dl_op_t */
  const char *duty;  /* what a writer would have to do, for refusals */
} feat_t;

/* Keep in step with man/ehdelta-delta.7. */
static const feat_t FEATS[] = {
    {"appendOnly", 2, {DO_NOTHING, DO_NOTHING, DO_NOTHING}, ""},
    {"invariants", 2, {DO_RULES, DO_NOTHING, DO_NOTHING}, ""},
    {"checkConstraints", 3, {DO_RULES, DO_NOTHING, DO_NOTHING}, ""},
    {"changeDataFeed", 4, {DO_NOTHING, DO_NOTHING, DO_NOTHING}, ""},
    {"generatedColumns", 4, {DO_RULES, DO_NOTHING, DO_NOTHING}, ""},
    {"columnMapping", 5, {DO_DEPENDS, DO_DEPENDS, DO_NOTHING}, "write Parquet field ids"},
    {"identityColumns",
     6,
     {DO_DEPENDS, DO_NOTHING, DO_NOTHING},
     "generate identity values and advance delta.identity.highWaterMark"},
    {"timestampNtz", 0, {DO_NOTHING, DO_NOTHING, DO_NOTHING}, ""},
    {"vacuumProtocolCheck", 0, {DO_NOTHING, DO_NOTHING, DO_NOTHING}, ""},
    {"allowColumnDefaults", 0, {DO_NOTHING, DO_NOTHING, DO_NOTHING}, ""},
    {"inCommitTimestamp",
     0,
     {DO_DEPENDS, DO_DEPENDS, DO_NOTHING},
     "put a monotonic commitInfo.inCommitTimestamp in every commit"},
    {"deletionVectors",
     0,
     {DO_REFUSE, DO_REFUSE, DO_REFUSE},
     "keep deletion vectors in checkpoints, apply them when rewriting and keep their files"},
    {"rowTracking",
     0,
     {DO_REFUSE, DO_REFUSE, DO_NOTHING},
     "assign baseRowId and defaultRowCommitVersion to every added file"},
    {"domainMetadata",
     0,
     {DO_REFUSE, DO_REFUSE, DO_NOTHING},
     "keep domainMetadata actions in checkpoints and check domain conflicts"},
    {"v2Checkpoint",
     0,
     {DO_REFUSE, DO_REFUSE, DO_REFUSE},
     "write V2 checkpoints (a checkpointMetadata action and sidecar files)"},
    {"clustering",
     0,
     {DO_REFUSE, DO_REFUSE, DO_NOTHING},
     "track clustering columns in domainMetadata"},
    {"icebergCompatV1",
     0,
     {DO_REFUSE, DO_REFUSE, DO_NOTHING},
     "keep the table convertible to Iceberg"},
    {"icebergCompatV2",
     0,
     {DO_REFUSE, DO_REFUSE, DO_NOTHING},
     "keep the table convertible to Iceberg"},
    {"typeWidening", 0, {DO_REFUSE, DO_REFUSE, DO_REFUSE}, "read and write widened types"},
    {"typeWidening-preview", 0, {DO_REFUSE, DO_REFUSE, DO_REFUSE}, "read and write widened types"},
    {"variantType", 0, {DO_REFUSE, DO_REFUSE, DO_REFUSE}, "read and write VARIANT columns"},
    {"variantType-preview", 0, {DO_REFUSE, DO_REFUSE, DO_REFUSE}, "read and write VARIANT columns"},
    {"checkpointProtection",
     0,
     {DO_REFUSE, DO_REFUSE, DO_NOTHING},
     "keep the log before delta.requireCheckpointProtectionBeforeVersion"},
    {"catalogManaged", 0, {DO_REFUSE, DO_REFUSE, DO_REFUSE}, "commit through the catalog"},
};

static const char *const OP_NAME[] = {"append to", "optimize", "vacuum"};

static const feat_t *find_feat(const char *name) {
  for (size_t i = 0; i < sizeof FEATS / sizeof FEATS[0]; i++)
    if (!strcmp(FEATS[i].name, name))
      return &FEATS[i];
  return NULL;
}

/* Whether the protocol supports feature name: implied by a legacy writer
 * version, or listed in writerFeatures (writer 7). */
static bool supported(const dl_protocol_t *p, const char *name) {
  if (p->min_writer >= 7) {
    for (size_t i = 0; p->writer_features && p->writer_features[i]; i++)
      if (!strcmp(p->writer_features[i], name))
        return true;
    return false;
  }
  const feat_t *f = find_feat(name);
  return f && f->legacy_writer && p->min_writer >= f->legacy_writer;
}

/* ---- the schema's field metadata ---- */

typedef ed_code_t (*field_fn)(const char *path, json_object *field, void *ctx, ed_err_t *err);

static json_object *get(json_object *o, const char *k) {
  json_object *v = NULL;
  return o && json_object_object_get_ex(o, k, &v) ? v : NULL;
}

/* Calls fn for every struct field, depth first, with its dotted path of
 * back-quoted names (the expression engine's column syntax). */
static ed_code_t walk_type(json_object *type, const char *prefix, field_fn fn, void *ctx,
                           ed_err_t *err) {
  if (!type || !json_object_is_type(type, json_type_object))
    return ED_OK;
  const char *k = json_object_get_string(get(type, "type"));
  if (k && !strcmp(k, "array"))
    return walk_type(get(type, "elementType"), prefix, fn, ctx, err);
  if (k && !strcmp(k, "map")) {
    ed_code_t rc = walk_type(get(type, "keyType"), prefix, fn, ctx, err);
    return rc ? rc : walk_type(get(type, "valueType"), prefix, fn, ctx, err);
  }
  json_object *fields = get(type, "fields");
  if (!fields || !json_object_is_type(fields, json_type_array))
    return ED_OK;
  ed_code_t rc = ED_OK;
  for (size_t i = 0; !rc && i < json_object_array_length(fields); i++) {
    json_object *f = json_object_array_get_idx(fields, i);
    const char *name = json_object_get_string(get(f, "name"));
    if (!name)
      return ed_err_set(err, ED_E_CORRUPT, "schemaString: a field without a name");
    ed_buf_t path = ED_BUF_INIT;
    if (prefix && *prefix)
      ed_buf_printf(&path, "%s.", prefix);
    ed_buf_putc(&path, '`');
    for (const char *c = name; *c; c++)
      (*c == '`' ? ed_buf_puts(&path, "``") : ed_buf_putc(&path, *c));
    if (ed_buf_putc(&path, '`'))
      rc = ed_err_set(err, ED_E_NOMEM, "schema: out of memory");
    rc = rc ? rc : fn(path.data, f, ctx, err);
    rc = rc ? rc : walk_type(get(f, "type"), path.data, fn, ctx, err);
    ed_buf_fini(&path);
  }
  return rc;
}

static ed_code_t parse_schema(const dl_table_t *t, json_object **out, ed_err_t *err) {
  const char *s = t->metadata.schema_string ? t->metadata.schema_string : "";
  *out = json_tokener_parse(s);
  if (!*out || !json_object_is_type(*out, json_type_object)) {
    json_object_put(*out);
    *out = NULL;
    return ed_err_set(err, ED_E_CORRUPT, "table %s: its schemaString is not a JSON object",
                      st_url(t->store));
  }
  return ED_OK;
}

const char *dl_feat_mapping_mode(const dl_table_t *t) {
  const char *m = dl_table_config(t, "delta.columnMapping.mode", "none");
  return !strcmp(m, "name") ? "name" : !strcmp(m, "id") ? "id" : "none";
}

static ed_code_t refuse(const dl_table_t *t, dl_op_t op, const char *feature, const char *why,
                        ed_err_t *err) {
  return ed_err_set(err, ED_E_UNSUPPORTED,
                    "table %s: ehdelta does not %s under table feature '%s'; refusing to %s it "
                    "(see ehdelta-delta(7))",
                    st_url(t->store), why, feature, OP_NAME[op]);
}

/* The DO_DEPENDS cases. */
static ed_code_t decide(const dl_table_t *t, dl_op_t op, const feat_t *f, ed_err_t *err) {
  if (!strcmp(f->name, "columnMapping")) {
    if (!strcmp(dl_feat_mapping_mode(t), "id"))
      return refuse(t, op, "columnMapping (mode id)", f->duty, err);
    return ED_OK; /* none, or name: the sink writes physical names */
  }
  if (!strcmp(f->name, "inCommitTimestamp")) {
    if (!strcmp(dl_table_config(t, "delta.enableInCommitTimestamps", "false"), "true"))
      return refuse(t, op, f->name, f->duty, err);
    return ED_OK; /* supported but not enabled: commits need no inCommitTimestamp */
  }
  return ED_OK;
}

ed_code_t dl_feat_check(const dl_table_t *t, dl_op_t op, ed_err_t *err) {
  const dl_protocol_t *p = &t->protocol;
  if (p->min_writer > 7 || p->min_writer < 1)
    return ed_err_set(err, ED_E_UNSUPPORTED,
                      "table %s: minWriterVersion %d is not a Delta writer version ehdelta knows "
                      "(1 to 7); refusing to %s it",
                      st_url(t->store), p->min_writer, OP_NAME[op]);
  if (p->min_writer >= 7) {
    for (size_t i = 0; p->writer_features && p->writer_features[i]; i++)
      if (!find_feat(p->writer_features[i]))
        return ed_err_set(err, ED_E_UNSUPPORTED,
                          "table %s: writer feature '%s' is unknown to ehdelta; refusing to %s it "
                          "(see ehdelta-delta(7))",
                          st_url(t->store), p->writer_features[i], OP_NAME[op]);
  }
  for (size_t i = 0; i < sizeof FEATS / sizeof FEATS[0]; i++) {
    const feat_t *f = &FEATS[i];
    if (!supported(p, f->name))
      continue;
    ed_code_t rc = ED_OK;
    if (f->on[op] == DO_REFUSE)
      rc = refuse(t, op, f->name, f->duty, err);
    else if (f->on[op] == DO_DEPENDS)
      rc = decide(t, op, f, err);
    if (rc)
      return rc;
  }
  return ED_OK;
}

/* ---- rules ---- */

static ed_code_t add_rule(dl_rules_t *r, dl_rule_kind_t kind, const char *name, const char *expr,
                          const char *source, const char *column, ed_err_t *err) {
  dl_rule_t *n = realloc(r->v, (r->n + 1) * sizeof *n);
  if (!n)
    return ed_err_set(err, ED_E_NOMEM, "rules: out of memory");
  r->v = n;
  dl_rule_t *x = &r->v[r->n];
  x->kind = kind;
  x->name = strdup(name);
  x->expr = strdup(expr);
  x->source = strdup(source);
  x->column = column ? strdup(column) : NULL;
  r->n++;
  if (!x->name || !x->expr || !x->source || (column && !x->column))
    return ed_err_set(err, ED_E_NOMEM, "rules: out of memory");
  return ED_OK;
}

typedef struct {
  const dl_table_t *t;
  dl_rules_t *r;
  bool invariants, generated;
} rules_ctx_t;

/* The field's own name when path is a top-level column ("`name`"). */
static const char *top_name(const char *path, json_object *f) {
  const char *name = json_object_get_string(get(f, "name"));
  size_t n = name ? strlen(name) : 0;
  return name && strlen(path) == n + 2 && !strncmp(path + 1, name, n) ? name : NULL;
}

static ed_code_t field_rules(const char *path, json_object *f, void *vctx, ed_err_t *err) {
  rules_ctx_t *c = vctx;
  json_object *md = get(f, "metadata");
  const char *col = top_name(path, f);
  const char *inv = json_object_get_string(get(md, "delta.invariants"));
  ed_code_t rc = ED_OK;
  if (c->invariants && inv) {
    /* PROTOCOL.md "Column Invariants": a JSON string
     * {"expression": {"expression": "<Spark SQL>"}} */
    json_object *j = json_tokener_parse(inv);
    const char *e = json_object_get_string(get(get(j, "expression"), "expression"));
    if (!e)
      rc = ed_err_set(err, ED_E_CORRUPT,
                      "table %s: column %s: delta.invariants is not "
                      "{\"expression\":{\"expression\":...}}: %.80s",
                      st_url(c->t->store), path, inv);
    else
      rc = add_rule(c->r, DL_RULE_INVARIANT, path, e, e, col, err);
    json_object_put(j);
  }
  const char *gen = json_object_get_string(get(md, "delta.generationExpression"));
  if (!rc && c->generated && gen) {
    /* The column must equal its expression, null-safe (Spark's <=>), which
     * is how Delta checks a generated column a writer provides. */
    ed_buf_t e = ED_BUF_INIT;
    ed_buf_printf(&e, "((%s) IS NULL AND (%s) IS NULL) OR (%s) = (%s)", path, gen, path, gen);
    rc = e.data ? add_rule(c->r, DL_RULE_GENERATED, path, e.data, gen, col, err)
                : ed_err_set(err, ED_E_NOMEM, "rules: out of memory");
    ed_buf_fini(&e);
  }
  return rc;
}

ed_code_t dl_feat_rules(const dl_table_t *t, dl_rules_t *out, ed_err_t *err) {
  memset(out, 0, sizeof *out);
  const dl_protocol_t *p = &t->protocol;
  ed_code_t rc = ED_OK;
  static const char pre[] = "delta.constraints.";
  if (supported(p, "checkConstraints")) {
    const dl_metadata_t *m = &t->metadata;
    for (size_t i = 0; !rc && i < m->nconfig; i++)
      if (!strncmp(m->config[i].key, pre, sizeof pre - 1) && m->config[i].value)
        rc = add_rule(out, DL_RULE_CHECK, m->config[i].key + sizeof pre - 1, m->config[i].value,
                      m->config[i].value, NULL, err);
  }
  rules_ctx_t c = {t, out, supported(p, "invariants"), supported(p, "generatedColumns")};
  if (!rc && (c.invariants || c.generated)) {
    json_object *root = NULL;
    rc = parse_schema(t, &root, err);
    rc = rc ? rc : walk_type(root, "", field_rules, &c, err);
    json_object_put(root);
  }
  if (rc)
    dl_rules_fini(out);
  return rc;
}

void dl_rules_fini(dl_rules_t *r) {
  if (!r)
    return;
  for (size_t i = 0; i < r->n; i++) {
    free(r->v[i].name);
    free(r->v[i].expr);
    free(r->v[i].source);
    free(r->v[i].column);
  }
  free(r->v);
  memset(r, 0, sizeof *r);
}

/* ---- column mapping ---- */

static ed_code_t rename_type(json_object *type, const dl_table_t *t, ed_err_t *err) {
  if (!type || !json_object_is_type(type, json_type_object))
    return ED_OK;
  const char *k = json_object_get_string(get(type, "type"));
  if (k && !strcmp(k, "array"))
    return rename_type(get(type, "elementType"), t, err);
  if (k && !strcmp(k, "map")) {
    ed_code_t rc = rename_type(get(type, "keyType"), t, err);
    return rc ? rc : rename_type(get(type, "valueType"), t, err);
  }
  json_object *fields = get(type, "fields");
  for (size_t i = 0; fields && i < json_object_array_length(fields); i++) {
    json_object *f = json_object_array_get_idx(fields, i);
    const char *phys =
        json_object_get_string(get(get(f, "metadata"), "delta.columnMapping.physicalName"));
    if (!phys)
      return ed_err_set(err, ED_E_CORRUPT,
                        "table %s: column mapping is on but field '%s' has no "
                        "delta.columnMapping.physicalName",
                        st_url(t->store), json_object_get_string(get(f, "name")));
    json_object_object_add(f, "name", json_object_new_string(phys));
    ed_code_t rc = rename_type(get(f, "type"), t, err);
    if (rc)
      return rc;
  }
  return ED_OK;
}

ed_code_t dl_feat_physical_schema(const dl_table_t *t, ed_buf_t *out, ed_err_t *err) {
  json_object *root = NULL;
  ed_code_t rc = parse_schema(t, &root, err);
  rc = rc ? rc : rename_type(root, t, err);
  if (!rc && ed_buf_puts(out, json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN)))
    rc = ed_err_set(err, ED_E_NOMEM, "schema: out of memory");
  json_object_put(root);
  return rc;
}

/* ---- identity columns ---- */

typedef struct {
  const dl_table_t *t;
  dl_identity_t *v;
  size_t n;
} ids_ctx_t;

static bool md_int(json_object *md, const char *k, int64_t *v) {
  json_object *x = get(md, k);
  if (!x)
    return false;
  if (json_object_is_type(x, json_type_string))
    *v = strtoll(json_object_get_string(x), NULL, 10);
  else
    *v = json_object_get_int64(x);
  return true;
}

static ed_code_t field_identity(const char *path, json_object *f, void *vctx, ed_err_t *err) {
  ids_ctx_t *c = vctx;
  json_object *md = get(f, "metadata");
  dl_identity_t x = {0};
  bool has_start = md_int(md, "delta.identity.start", &x.start);
  bool has_step = md_int(md, "delta.identity.step", &x.step);
  if (!has_start && !has_step)
    return ED_OK;
  const char *col = top_name(path, f);
  const char *type = json_object_get_string(get(f, "type"));
  if (!col || !has_start || !has_step || !x.step || !type || strcmp(type, "long"))
    return ed_err_set(err, ED_E_UNSUPPORTED,
                      "table %s: identity column %s: expected a top-level long column with "
                      "delta.identity.start and a non-zero delta.identity.step",
                      st_url(c->t->store), path);
  x.has_hwm = md_int(md, "delta.identity.highWaterMark", &x.hwm);
  json_object *ae = get(md, "delta.identity.allowExplicitInsert");
  x.allow_explicit = ae && json_object_get_boolean(ae);
  dl_identity_t *nv = realloc(c->v, (c->n + 1) * sizeof *nv);
  if (!nv)
    return ed_err_set(err, ED_E_NOMEM, "identity: out of memory");
  c->v = nv;
  if (!(x.column = strdup(col)))
    return ed_err_set(err, ED_E_NOMEM, "identity: out of memory");
  c->v[c->n++] = x;
  return ED_OK;
}

ed_code_t dl_feat_identities(const dl_table_t *t, dl_identity_t **out, size_t *n, ed_err_t *err) {
  *out = NULL;
  *n = 0;
  if (!supported(&t->protocol, "identityColumns"))
    return ED_OK;
  json_object *root = NULL;
  ids_ctx_t c = {t, NULL, 0};
  ed_code_t rc = parse_schema(t, &root, err);
  rc = rc ? rc : walk_type(root, "", field_identity, &c, err);
  json_object_put(root);
  if (rc) {
    dl_identities_free(c.v, c.n);
    return rc;
  }
  *out = c.v;
  *n = c.n;
  return ED_OK;
}

void dl_identities_free(dl_identity_t *v, size_t n) {
  for (size_t i = 0; v && i < n; i++)
    free(v[i].column);
  free(v);
}

ed_code_t dl_feat_identity_advance(const dl_table_t *t, const char *column, int64_t hwm,
                                   dl_metadata_t *out, ed_err_t *err) {
  memset(out, 0, sizeof *out);
  json_object *root = NULL;
  ed_code_t rc = parse_schema(t, &root, err);
  json_object *fields = rc ? NULL : get(root, "fields");
  json_object *md = NULL;
  for (size_t i = 0; fields && i < json_object_array_length(fields); i++) {
    json_object *f = json_object_array_get_idx(fields, i);
    const char *name = json_object_get_string(get(f, "name"));
    if (name && !strcmp(name, column))
      md = get(f, "metadata");
  }
  if (!rc && !md)
    rc =
        ed_err_set(err, ED_E_SCHEMA, "table %s: no identity column '%s'", st_url(t->store), column);
  if (!rc) {
    json_object_object_add(md, "delta.identity.highWaterMark", json_object_new_int64(hwm));
    rc = dl_metadata_copy(out, &t->metadata);
  }
  if (!rc) {
    char *s = strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN |
                                                              JSON_C_TO_STRING_NOSLASHESCAPE));
    if (!s) {
      rc = ed_err_set(err, ED_E_NOMEM, "identity: out of memory");
    } else {
      free(out->schema_string);
      out->schema_string = s;
    }
  }
  json_object_put(root);
  if (rc)
    dl_metadata_fini(out);
  return rc;
}
