/* schema: logical tree and its Parquet expansion. See schema.h. */
#include "parquet/schema.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "parquet/schema_int.h"

static char *xstrdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  if (p)
    memcpy(p, s, n);
  return p;
}

ed_code_t pq_schema_new(pq_schema_t **out, ed_err_t *err) {
  pq_schema_t *s = calloc(1, sizeof *s);
  if (!s)
    return ed_err_set(err, ED_E_NOMEM, "parquet schema: out of memory");
  s->cap = 16;
  s->n = calloc(s->cap, sizeof *s->n);
  if (!s->n) {
    free(s);
    return ed_err_set(err, ED_E_NOMEM, "parquet schema: out of memory");
  }
  s->nn = 1;
  pq_inode_t *r = &s->n[0];
  r->name = xstrdup("schema");
  if (!r->name) {
    free(s->n);
    free(s);
    return ed_err_set(err, ED_E_NOMEM, "parquet schema: out of memory");
  }
  r->pub.name = r->name;
  r->pub.type = PQ_T_STRUCT;
  r->pub.rep = PQ_REQUIRED;
  r->pub.parent = -1;
  r->pub.leaf = -1;
  r->pub.phys = PQ_P_NONE;
  r->phys_override = -2;
  *out = s;
  return ED_OK;
}

void pq_schema_free(pq_schema_t *s) {
  if (!s)
    return;
  for (size_t i = 0; i < s->nn; i++) {
    free(s->n[i].name);
    free(s->n[i].kids);
    free(s->n[i].path);
    free(s->n[i].mid_name);
  }
  free(s->n);
  free(s->leaves);
  free(s);
}

static bool is_group(pq_type_t t) { return t == PQ_T_STRUCT || t == PQ_T_LIST || t == PQ_T_MAP; }

ed_code_t pq_schema_add(pq_schema_t *s, int parent, const char *name, pq_type_t type,
                        pq_repetition_t rep, int *id, ed_err_t *err) {
  if (parent < 0 || (size_t)parent >= s->nn)
    return ed_err_set(err, ED_E_INVALID, "parquet schema: parent %d does not exist", parent);
  pq_inode_t *p = &s->n[parent];
  if (!is_group(p->pub.type))
    return ed_err_set(err, ED_E_INVALID, "parquet schema: '%s' is a leaf and cannot have children",
                      p->name);
  if (p->pub.type == PQ_T_LIST && p->pub.nchildren >= 1)
    return ed_err_set(err, ED_E_INVALID, "parquet schema: LIST '%s' takes one child", p->name);
  if (p->pub.type == PQ_T_MAP && p->pub.nchildren >= 2)
    return ed_err_set(err, ED_E_INVALID, "parquet schema: MAP '%s' takes two children", p->name);
  if (p->pub.type == PQ_T_MAP && p->pub.nchildren == 0 && rep != PQ_REQUIRED)
    return ed_err_set(err, ED_E_INVALID, "parquet schema: key of MAP '%s' must be REQUIRED",
                      p->name);
  if (rep == PQ_REPEATED && (type == PQ_T_LIST || type == PQ_T_MAP))
    return ed_err_set(err, ED_E_INVALID, "parquet schema: '%s': a LIST or MAP cannot be REPEATED",
                      name ? name : "");
  if (!name || !*name)
    return ed_err_set(err, ED_E_INVALID, "parquet schema: empty field name under '%s'", p->name);
  if (s->nn == s->cap) {
    size_t nc = s->cap * 2;
    pq_inode_t *nn = realloc(s->n, nc * sizeof *nn);
    if (!nn)
      return ed_err_set(err, ED_E_NOMEM, "parquet schema: out of memory");
    s->n = nn;
    s->cap = nc;
    for (size_t i = 0; i < s->nn; i++) {
      s->n[i].pub.children = s->n[i].kids;
      s->n[i].pub.name = s->n[i].name;
      s->n[i].pub.path = s->n[i].path;
    }
    p = &s->n[parent];
  }
  if (p->pub.nchildren == p->kcap) {
    size_t kc = p->kcap ? p->kcap * 2 : 4;
    int *k = realloc(p->kids, kc * sizeof *k);
    if (!k)
      return ed_err_set(err, ED_E_NOMEM, "parquet schema: out of memory");
    p->kids = k;
    p->kcap = kc;
    p->pub.children = k;
  }
  const char *nm = name;
  if (p->pub.type == PQ_T_LIST)
    nm = "element";
  if (p->pub.type == PQ_T_MAP)
    nm = p->pub.nchildren == 0 ? "key" : "value";
  int nid = (int)s->nn;
  pq_inode_t *c = &s->n[nid];
  memset(c, 0, sizeof *c);
  c->name = xstrdup(nm);
  if (!c->name)
    return ed_err_set(err, ED_E_NOMEM, "parquet schema: out of memory");
  c->pub.name = c->name;
  c->pub.type = type;
  c->pub.rep = rep;
  c->pub.parent = parent;
  c->pub.leaf = -1;
  c->pub.phys = PQ_P_NONE;
  c->phys_override = -2;
  s->nn++;
  p->kids[p->pub.nchildren++] = nid;
  s->finished = false;
  if (id)
    *id = nid;
  return ED_OK;
}

const pq_node_t *pq_schema_node(const pq_schema_t *s, int id) {
  if (id < 0 || (size_t)id >= s->nn)
    return NULL;
  return &s->n[id].pub;
}
int pq_schema_find(const pq_schema_t *s, int node, const char *name) {
  const pq_node_t *n = pq_schema_node(s, node);
  if (!n)
    return -1;
  for (size_t i = 0; i < n->nchildren; i++)
    if (strcmp(s->n[n->children[i]].name, name) == 0)
      return n->children[i];
  return -1;
}
size_t pq_schema_num_leaves(const pq_schema_t *s) { return s->nleaves; }
int pq_schema_leaf_node(const pq_schema_t *s, size_t leaf) {
  return leaf < s->nleaves ? s->leaves[leaf] : -1;
}

static pq_phys_t pq_type_phys(pq_type_t t) {
  switch (t) {
  case PQ_T_BOOLEAN:
    return PQ_P_BOOLEAN;
  case PQ_T_INT32:
  case PQ_T_DATE:
    return PQ_P_INT32;
  case PQ_T_INT64:
  case PQ_T_TIMESTAMP:
    return PQ_P_INT64;
  case PQ_T_FLOAT:
    return PQ_P_FLOAT;
  case PQ_T_DOUBLE:
    return PQ_P_DOUBLE;
  case PQ_T_STRING:
  case PQ_T_BINARY:
    return PQ_P_BYTE_ARRAY;
  default:
    return PQ_P_NONE;
  }
}

static ed_code_t walk(pq_schema_t *s, int id, int def, int rep, ed_buf_t *path, ed_err_t *err) {
  pq_inode_t *n = &s->n[id];
  size_t mark = path->len;
  /* The element of a legacy 2-level list is the repeated field already named
   * in the path (LogicalTypes.md, backward-compatibility rules). */
  bool named = id != PQ_ROOT && !s->n[n->pub.parent].two_level;
  if (id != PQ_ROOT) {
    if (named && ((path->len && ed_buf_putc(path, '.')) || ed_buf_puts(path, n->name)))
      return ed_err_set(err, ED_E_NOMEM, "parquet schema: oom");
    if (n->pub.rep == PQ_OPTIONAL)
      def++;
    if (n->pub.rep == PQ_REPEATED)
      def++, rep++;
  }
  n->def_here = def;
  n->rep_here = rep;
  if (n->pub.type == PQ_T_LIST || n->pub.type == PQ_T_MAP) {
    size_t want = n->pub.type == PQ_T_LIST ? 1 : 2;
    if (n->pub.nchildren != want)
      return ed_err_set(err, ED_E_INVALID, "parquet schema: %s '%s' has %zu children, expected %zu",
                        n->pub.type == PQ_T_LIST ? "LIST" : "MAP", n->name, n->pub.nchildren, want);
    if (ed_buf_putc(path, '.') || ed_buf_puts(path, n->mid_name                ? n->mid_name
                                                    : n->pub.type == PQ_T_LIST ? "list"
                                                                               : "key_value"))
      return ed_err_set(err, ED_E_NOMEM, "parquet schema: out of memory");
    def++, rep++;
  } else if (n->pub.type == PQ_T_STRUCT && n->pub.nchildren == 0 && id != PQ_ROOT) {
    return ed_err_set(err, ED_E_INVALID, "parquet schema: group '%s' has no fields", n->name);
  }
  if (is_group(n->pub.type)) {
    for (size_t i = 0; i < n->pub.nchildren; i++) {
      ed_code_t rc = walk(s, n->kids[i], def, rep, path, err);
      if (rc)
        return rc;
    }
  } else {
    if (s->nleaves == s->lcap) {
      size_t c = s->lcap ? s->lcap * 2 : 16;
      int *l = realloc(s->leaves, c * sizeof *l);
      if (!l)
        return ed_err_set(err, ED_E_NOMEM, "parquet schema: out of memory");
      s->leaves = l;
      s->lcap = c;
    }
    n = &s->n[id];
    n->pub.leaf = (int)s->nleaves;
    s->leaves[s->nleaves++] = id;
    n->pub.phys = n->phys_override != -2 ? (pq_phys_t)n->phys_override : pq_type_phys(n->pub.type);
    n->pub.max_def = def;
    n->pub.max_rep = rep;
    free(n->path);
    n->path = xstrdup(path->data ? path->data : "");
    if (!n->path)
      return ed_err_set(err, ED_E_NOMEM, "parquet schema: out of memory");
    n->pub.path = n->path;
  }
  path->len = mark;
  if (path->data)
    path->data[mark] = 0;
  return ED_OK;
}

ed_code_t pq_schema_finish(pq_schema_t *s, ed_err_t *err) {
  if (s->finished)
    return ED_OK;
  if (s->n[0].pub.nchildren == 0)
    return ed_err_set(err, ED_E_INVALID, "parquet schema: no columns");
  s->nleaves = 0;
  ed_buf_t path = ED_BUF_INIT;
  ed_code_t rc = walk(s, PQ_ROOT, 0, 0, &path, err);
  ed_buf_fini(&path);
  if (rc)
    return rc;
  s->finished = true;
  return ED_OK;
}

ed_code_t pq_schema_clone(const pq_schema_t *s, pq_schema_t **out, ed_err_t *err) {
  pq_schema_t *c = calloc(1, sizeof *c);
  if (!c)
    return ed_err_set(err, ED_E_NOMEM, "parquet schema: out of memory");
  c->cap = s->nn;
  c->n = calloc(c->cap, sizeof *c->n);
  if (!c->n)
    goto oom;
  c->nn = s->nn;
  for (size_t i = 0; i < s->nn; i++) {
    const pq_inode_t *a = &s->n[i];
    pq_inode_t *b = &c->n[i];
    *b = *a;
    b->name = NULL;
    b->kids = NULL;
    b->path = NULL;
    b->mid_name = NULL;
    b->kcap = a->pub.nchildren;
    b->name = xstrdup(a->name);
    if (!b->name)
      goto oom;
    b->pub.name = b->name;
    if (a->mid_name && !(b->mid_name = xstrdup(a->mid_name)))
      goto oom;
    if (a->pub.nchildren) {
      b->kids = malloc(a->pub.nchildren * sizeof(int));
      if (!b->kids)
        goto oom;
      memcpy(b->kids, a->kids, a->pub.nchildren * sizeof(int));
    }
    b->pub.children = b->kids;
    b->pub.path = NULL;
    if (a->path) {
      if (!(b->path = xstrdup(a->path)))
        goto oom;
      b->pub.path = b->path;
    }
  }
  if (s->nleaves) {
    c->leaves = malloc(s->nleaves * sizeof(int));
    if (!c->leaves)
      goto oom;
    memcpy(c->leaves, s->leaves, s->nleaves * sizeof(int));
    c->nleaves = c->lcap = s->nleaves;
  }
  c->finished = s->finished;
  *out = c;
  return ED_OK;
oom:
  pq_schema_free(c);
  return ed_err_set(err, ED_E_NOMEM, "parquet schema: out of memory");
}
