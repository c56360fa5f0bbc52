/* schema: Spark DDL and StructType JSON <-> sm_type_t trees (see schema.h).
 * DDL is read by a small recursive-descent parser over the text; JSON with
 * json-c (schemas are configuration, not the per-event hot path). */
#include "stream/schema.h"

#include <ctype.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- DDL ---- */

typedef struct ddl {
  const char *s;
  size_t n, i;
  ed_err_t *err;
} ddl_t;

static void ddl_blank(ddl_t *p) {
  while (p->i < p->n && isspace((unsigned char)p->s[p->i]))
    p->i++;
}

static ed_code_t ddl_fail(ddl_t *p, const char *what) {
  ddl_blank(p);
  if (p->i >= p->n)
    return ed_err_set(p->err, ED_E_PARSE, "schema: at %zu: expected %s, got the end", p->i + 1,
                      what);
  size_t j = p->i;
  while (j < p->n && j - p->i < 20 && (isalnum((unsigned char)p->s[j]) || p->s[j] == '_'))
    j++;
  if (j == p->i)
    j++;
  return ed_err_set(p->err, ED_E_PARSE, "schema: at %zu: expected %s, got '%.*s'", p->i + 1, what,
                    (int)(j - p->i), p->s + p->i);
}

static bool ddl_char(ddl_t *p, char c) {
  ddl_blank(p);
  if (p->i < p->n && p->s[p->i] == c) {
    p->i++;
    return true;
  }
  return false;
}

/* A bare word (letters, digits, '_') at the cursor, not consumed. */
static size_t ddl_word_len(ddl_t *p) {
  ddl_blank(p);
  size_t j = p->i;
  while (j < p->n && (isalnum((unsigned char)p->s[j]) || p->s[j] == '_'))
    j++;
  return j - p->i;
}

static bool ddl_keyword(ddl_t *p, const char *kw) {
  size_t l = ddl_word_len(p);
  if (l == strlen(kw) && strncasecmp(p->s + p->i, kw, l) == 0) {
    p->i += l;
    return true;
  }
  return false;
}

/* A field name: a word or a `back-quoted` name (`` is a quote inside). */
static ed_code_t ddl_name(ddl_t *p, ed_buf_t *out) {
  ed_buf_reset(out);
  ddl_blank(p);
  if (p->i < p->n && p->s[p->i] == '`') {
    size_t start = p->i++;
    for (;;) {
      if (p->i >= p->n) {
        p->i = start;
        return ed_err_set(p->err, ED_E_PARSE, "schema: at %zu: unterminated `name`", start + 1);
      }
      char c = p->s[p->i++];
      if (c == '`') {
        if (p->i < p->n && p->s[p->i] == '`')
          p->i++;
        else
          break;
      }
      if (ed_buf_putc(out, c))
        return ed_err_set(p->err, ED_E_NOMEM, "schema: out of memory");
    }
    if (!out->len)
      return ed_err_set(p->err, ED_E_PARSE, "schema: at %zu: empty name", start + 1);
    return ED_OK;
  }
  size_t l = ddl_word_len(p);
  if (!l)
    return ddl_fail(p, "a field name");
  if (ed_buf_append(out, p->s + p->i, l))
    return ed_err_set(p->err, ED_E_NOMEM, "schema: out of memory");
  p->i += l;
  return ED_OK;
}

static ed_code_t ddl_fields(ddl_t *p, sm_type_t *st, char close, unsigned depth);

static ed_code_t ddl_type(ddl_t *p, sm_type_t **out, unsigned depth) {
  static const struct {
    const char *name;
    sm_kind_t kind;
  } names[] = {
      {"STRING", SM_STRING},   {"VARCHAR", SM_STRING},      {"CHAR", SM_STRING},
      {"BOOLEAN", SM_BOOLEAN}, {"BOOL", SM_BOOLEAN},        {"INT", SM_INT},
      {"INTEGER", SM_INT},     {"BIGINT", SM_BIGINT},       {"LONG", SM_BIGINT},
      {"FLOAT", SM_FLOAT},     {"REAL", SM_FLOAT},          {"DOUBLE", SM_DOUBLE},
      {"DATE", SM_DATE},       {"TIMESTAMP", SM_TIMESTAMP}, {"BINARY", SM_BINARY},
      {"STRUCT", SM_STRUCT},   {"ARRAY", SM_ARRAY},         {"MAP", SM_MAP},
  };
  *out = NULL;
  if (depth > 64)
    return ed_err_set(p->err, ED_E_PARSE, "schema: at %zu: types nested deeper than 64", p->i + 1);
  size_t l = ddl_word_len(p), at = p->i;
  sm_kind_t k = SM_STRING;
  bool found = false;
  for (size_t j = 0; j < sizeof names / sizeof names[0] && !found; j++)
    if (strlen(names[j].name) == l && strncasecmp(p->s + at, names[j].name, l) == 0) {
      k = names[j].kind;
      found = true;
      if (names[j].name[0] == 'V' || names[j].name[0] == 'C') { /* VARCHAR(n), CHAR(n) */
        p->i += l;
        if (!ddl_char(p, '('))
          return ddl_fail(p, "'(' and a length");
        while (p->i < p->n && isdigit((unsigned char)p->s[p->i]))
          p->i++;
        if (!ddl_char(p, ')'))
          return ddl_fail(p, "')'");
        l = 0; /* consumed */
      }
    }
  if (!found)
    return ddl_fail(p, "a type (STRING, BOOLEAN, INT, BIGINT, FLOAT, DOUBLE, DATE, TIMESTAMP, "
                       "BINARY, ARRAY, MAP, STRUCT)");
  p->i += l;
  ed_code_t rc = ED_OK;
  if (k == SM_STRUCT) {
    if (!ddl_char(p, '<'))
      return ddl_fail(p, "'<' after STRUCT");
    sm_type_t *st = sm_type_new(SM_STRUCT);
    if (!st)
      return ed_err_set(p->err, ED_E_NOMEM, "schema: out of memory");
    if ((rc = ddl_fields(p, st, '>', depth + 1)) != ED_OK) {
      sm_type_free(st);
      return rc;
    }
    *out = st;
    return ED_OK;
  }
  if (k == SM_ARRAY || k == SM_MAP) {
    if (!ddl_char(p, '<'))
      return ddl_fail(p, k == SM_ARRAY ? "'<' after ARRAY" : "'<' after MAP");
    if (k == SM_MAP) {
      size_t kat = p->i;
      sm_type_t *kt = NULL;
      if ((rc = ddl_type(p, &kt, depth + 1)) != ED_OK)
        return rc;
      bool is_str = kt->kind == SM_STRING;
      sm_type_free(kt);
      if (!is_str) {
        p->i = kat;
        ddl_blank(p);
        return ed_err_set(p->err, ED_E_UNSUPPORTED, "schema: at %zu: MAP keys must be STRING",
                          p->i + 1);
      }
      if (!ddl_char(p, ','))
        return ddl_fail(p, "',' after the MAP key type");
    }
    sm_type_t *elem = NULL;
    if ((rc = ddl_type(p, &elem, depth + 1)) != ED_OK)
      return rc;
    if (!ddl_char(p, '>')) {
      sm_type_free(elem);
      return ddl_fail(p, "'>'");
    }
    *out = k == SM_ARRAY ? sm_type_new_array(elem, true) : sm_type_new_map(elem, true);
    return *out ? ED_OK : ed_err_set(p->err, ED_E_NOMEM, "schema: out of memory");
  }
  *out = sm_type_new(k);
  return *out ? ED_OK : ed_err_set(p->err, ED_E_NOMEM, "schema: out of memory");
}

/* name [:] type [NOT NULL] [COMMENT 'text'] (, ...)* then close (or the end). */
static ed_code_t ddl_fields(ddl_t *p, sm_type_t *st, char close, unsigned depth) {
  ed_buf_t name = ED_BUF_INIT;
  ed_code_t rc = ED_OK;
  if (close && ddl_char(p, close))
    return ED_OK; /* STRUCT<> */
  for (;;) {
    size_t at = p->i;
    if ((rc = ddl_name(p, &name)) != ED_OK)
      break;
    ddl_char(p, ':');
    sm_type_t *t = NULL;
    if ((rc = ddl_type(p, &t, depth)) != ED_OK)
      break;
    bool nullable = true;
    if (ddl_keyword(p, "NOT")) {
      if (!ddl_keyword(p, "NULL")) {
        sm_type_free(t);
        rc = ddl_fail(p, "NULL after NOT");
        break;
      }
      nullable = false;
    }
    if (ddl_keyword(p, "COMMENT")) {
      ddl_blank(p);
      char q = p->i < p->n ? p->s[p->i] : 0;
      if (q != '\'' && q != '"') {
        sm_type_free(t);
        rc = ddl_fail(p, "a quoted comment");
        break;
      }
      size_t j = p->i + 1;
      while (j < p->n && p->s[j] != q)
        j += p->s[j] == '\\' ? 2 : 1;
      if (j >= p->n) {
        sm_type_free(t);
        rc = ed_err_set(p->err, ED_E_PARSE, "schema: at %zu: unterminated comment", p->i + 1);
        break;
      }
      p->i = j + 1;
    }
    ed_err_t e2 = {0};
    if ((rc = sm_type_add_field(st, name.data, t, nullable, &e2)) != ED_OK) {
      ed_err_set(p->err, rc, "schema: at %zu: %s", at + 1,
                 strncmp(e2.msg, "schema: ", 8) == 0 ? e2.msg + 8 : e2.msg);
      break;
    }
    if (ddl_char(p, ','))
      continue;
    if (close) {
      if (!ddl_char(p, close))
        rc = ddl_fail(p, close == '>' ? "',' or '>'" : "','");
    } else {
      ddl_blank(p);
      if (p->i < p->n)
        rc = ddl_fail(p, "',' or the end");
    }
    break;
  }
  ed_buf_fini(&name);
  return rc;
}

ed_code_t sm_schema_parse_ddl(const char *ddl, sm_type_t **out, ed_err_t *err) {
  *out = NULL;
  ddl_t p = {ddl, strlen(ddl), 0, err};
  sm_type_t *st = sm_type_new(SM_STRUCT);
  if (!st)
    return ed_err_set(err, ED_E_NOMEM, "schema: out of memory");
  /* Spark also accepts the whole schema written as STRUCT<...> */
  size_t save = p.i;
  ed_code_t rc;
  if (ddl_keyword(&p, "STRUCT") && ddl_char(&p, '<')) {
    rc = ddl_fields(&p, st, '>', 1);
    ddl_blank(&p);
    if (!rc && p.i < p.n)
      rc = ddl_fail(&p, "the end");
  } else {
    p.i = save;
    ddl_blank(&p);
    rc =
        p.i >= p.n ? ed_err_set(err, ED_E_PARSE, "schema: empty schema") : ddl_fields(&p, st, 0, 1);
  }
  if (rc) {
    sm_type_free(st);
    return rc;
  }
  *out = st;
  return ED_OK;
}

ed_code_t sm_schema_parse_type(const char *text, size_t len, sm_type_t **out, ed_err_t *err) {
  ddl_t p = {text, len, 0, err};
  ed_code_t rc = ddl_type(&p, out, 0);
  if (rc)
    return rc;
  ddl_blank(&p);
  if (p.i < p.n) {
    sm_type_free(*out);
    *out = NULL;
    return ddl_fail(&p, "the end of the type");
  }
  return ED_OK;
}

/* ---- StructType JSON ---- */

static const struct {
  const char *json;
  sm_kind_t kind;
} json_names[] = {
    {"string", SM_STRING}, {"binary", SM_BINARY}, {"boolean", SM_BOOLEAN},
    {"integer", SM_INT},   {"long", SM_BIGINT},   {"float", SM_FLOAT},
    {"double", SM_DOUBLE}, {"date", SM_DATE},     {"timestamp", SM_TIMESTAMP},
};

static ed_code_t jtype(json_object *j, const char *where, sm_type_t **out, ed_err_t *err,
                       unsigned depth);

static bool json_bool_field(json_object *o, const char *key, bool dflt) {
  json_object *v;
  return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_boolean)
             ? json_object_get_boolean(v)
             : dflt;
}

static ed_code_t json_struct(json_object *o, const char *where, sm_type_t **out, ed_err_t *err,
                             unsigned depth) {
  json_object *fields;
  if (!json_object_object_get_ex(o, "fields", &fields) ||
      !json_object_is_type(fields, json_type_array))
    return ed_err_set(err, ED_E_PARSE, "schema: %s: expected \"fields\": [...]", where);
  sm_type_t *st = sm_type_new(SM_STRUCT);
  if (!st)
    return ed_err_set(err, ED_E_NOMEM, "schema: out of memory");
  size_t n = json_object_array_length(fields);
  for (size_t i = 0; i < n; i++) {
    json_object *f = json_object_array_get_idx(fields, i), *jn, *jt;
    if (!json_object_is_type(f, json_type_object) || !json_object_object_get_ex(f, "name", &jn) ||
        !json_object_is_type(jn, json_type_string) || !json_object_object_get_ex(f, "type", &jt)) {
      sm_type_free(st);
      return ed_err_set(err, ED_E_PARSE,
                        "schema: %s: field %zu: expected {\"name\": .., \"type\": ..}", where, i);
    }
    const char *name = json_object_get_string(jn);
    char sub[160];
    snprintf(sub, sizeof sub, "field '%.100s'", name);
    sm_type_t *ft = NULL;
    ed_code_t rc = jtype(jt, sub, &ft, err, depth + 1);
    if (rc || (rc = sm_type_add_field(st, name, ft, json_bool_field(f, "nullable", true), err))) {
      sm_type_free(st);
      return rc;
    }
  }
  *out = st;
  return ED_OK;
}

static ed_code_t jtype(json_object *j, const char *where, sm_type_t **out, ed_err_t *err,
                       unsigned depth) {
  *out = NULL;
  if (depth > 64)
    return ed_err_set(err, ED_E_PARSE, "schema: %s: types nested deeper than 64", where);
  if (json_object_is_type(j, json_type_string)) {
    const char *s = json_object_get_string(j);
    for (size_t i = 0; i < sizeof json_names / sizeof json_names[0]; i++)
      if (strcmp(s, json_names[i].json) == 0) {
        *out = sm_type_new(json_names[i].kind);
        return *out ? ED_OK : ed_err_set(err, ED_E_NOMEM, "schema: out of memory");
      }
    return ed_err_set(err, ED_E_UNSUPPORTED,
                      "schema: %s: unsupported type \"%.60s\" (expected string, binary, boolean, "
                      "integer, long, float, double, date, timestamp or a struct/array/map)",
                      where, s);
  }
  json_object *jt;
  if (!json_object_is_type(j, json_type_object) || !json_object_object_get_ex(j, "type", &jt) ||
      !json_object_is_type(jt, json_type_string))
    return ed_err_set(err, ED_E_PARSE, "schema: %s: expected a type name or {\"type\": ..}", where);
  const char *t = json_object_get_string(jt);
  if (strcmp(t, "struct") == 0)
    return json_struct(j, where, out, err, depth);
  json_object *je;
  ed_code_t rc;
  sm_type_t *elem = NULL;
  if (strcmp(t, "array") == 0) {
    if (!json_object_object_get_ex(j, "elementType", &je))
      return ed_err_set(err, ED_E_PARSE, "schema: %s: array without \"elementType\"", where);
    if ((rc = jtype(je, where, &elem, err, depth + 1)) != ED_OK)
      return rc;
    *out = sm_type_new_array(elem, json_bool_field(j, "containsNull", true));
  } else if (strcmp(t, "map") == 0) {
    json_object *jk;
    if (!json_object_object_get_ex(j, "keyType", &jk) ||
        !json_object_is_type(jk, json_type_string) ||
        strcmp(json_object_get_string(jk), "string") != 0)
      return ed_err_set(err, ED_E_UNSUPPORTED, "schema: %s: MAP keys must be \"string\"", where);
    if (!json_object_object_get_ex(j, "valueType", &je))
      return ed_err_set(err, ED_E_PARSE, "schema: %s: map without \"valueType\"", where);
    if ((rc = jtype(je, where, &elem, err, depth + 1)) != ED_OK)
      return rc;
    *out = sm_type_new_map(elem, json_bool_field(j, "valueContainsNull", true));
  } else {
    return ed_err_set(err, ED_E_UNSUPPORTED, "schema: %s: unsupported type \"%.60s\"", where, t);
  }
  return *out ? ED_OK : ed_err_set(err, ED_E_NOMEM, "schema: out of memory");
}

ed_code_t sm_schema_parse_json(const char *json, size_t len, sm_type_t **out, ed_err_t *err) {
  *out = NULL;
  json_tokener *tok = json_tokener_new();
  if (!tok)
    return ed_err_set(err, ED_E_NOMEM, "schema: out of memory");
  json_object *j = json_tokener_parse_ex(tok, json, (int)len);
  enum json_tokener_error je = json_tokener_get_error(tok);
  size_t at = json_tokener_get_parse_end(tok);
  json_tokener_free(tok);
  if (!j || je != json_tokener_success) {
    json_object_put(j);
    return ed_err_set(err, ED_E_PARSE, "schema: StructType JSON: at %zu: %s", at + 1,
                      je == json_tokener_continue ? "unexpected end" : json_tokener_error_desc(je));
  }
  ed_code_t rc;
  json_object *jt;
  if (!json_object_object_get_ex(j, "type", &jt) || !json_object_is_type(jt, json_type_string) ||
      strcmp(json_object_get_string(jt), "struct") != 0)
    rc =
        ed_err_set(err, ED_E_PARSE, "schema: StructType JSON: expected {\"type\": \"struct\", ..}");
  else
    rc = json_struct(j, "StructType JSON", out, err, 0);
  json_object_put(j);
  return rc;
}

ed_code_t sm_schema_parse(const char *text, sm_type_t **out, ed_err_t *err) {
  const char *p = text;
  while (isspace((unsigned char)*p))
    p++;
  return *p == '{' ? sm_schema_parse_json(text, strlen(text), out, err)
                   : sm_schema_parse_ddl(text, out, err);
}

/* ---- printing ---- */

static ed_code_t type_json(const sm_type_t *t, ed_buf_t *o) {
  ed_code_t rc = ED_OK;
  switch (t->kind) {
  case SM_STRUCT:
    rc = ed_buf_puts(o, "{\"type\":\"struct\",\"fields\":[");
    for (size_t i = 0; i < t->nfields && !rc; i++) {
      const sm_field_t *f = &t->fields[i];
      if (i)
        rc = ed_buf_putc(o, ',');
      if (!rc)
        rc = ed_buf_puts(o, "{\"name\":");
      if (!rc)
        rc = ed_buf_json_str(o, f->name, strlen(f->name));
      if (!rc)
        rc = ed_buf_puts(o, ",\"type\":");
      if (!rc)
        rc = type_json(f->type, o);
      if (!rc)
        rc = ed_buf_printf(o, ",\"nullable\":%s,\"metadata\":{}}", f->nullable ? "true" : "false");
    }
    return rc ? rc : ed_buf_puts(o, "]}");
  case SM_ARRAY:
    rc = ed_buf_puts(o, "{\"type\":\"array\",\"elementType\":");
    if (!rc)
      rc = type_json(t->elem, o);
    return rc ? rc : ed_buf_printf(o, ",\"containsNull\":%s}", t->elem_nullable ? "true" : "false");
  case SM_MAP:
    rc = ed_buf_puts(o, "{\"type\":\"map\",\"keyType\":\"string\",\"valueType\":");
    if (!rc)
      rc = type_json(t->elem, o);
    return rc ? rc
              : ed_buf_printf(o, ",\"valueContainsNull\":%s}", t->elem_nullable ? "true" : "false");
  default:
    for (size_t i = 0; i < sizeof json_names / sizeof json_names[0]; i++)
      if (json_names[i].kind == t->kind)
        return ed_buf_printf(o, "\"%s\"", json_names[i].json);
    return ED_E_INVALID;
  }
}

ed_code_t sm_schema_to_json(const sm_type_t *st, ed_buf_t *out) {
  if (!st || st->kind != SM_STRUCT)
    return ED_E_INVALID;
  return type_json(st, out);
}

static bool plain_name(const char *s) {
  if (!*s || isdigit((unsigned char)*s))
    return false;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && *s != '_')
      return false;
  return true;
}

static ed_code_t name_ddl(const char *name, ed_buf_t *o) {
  if (plain_name(name))
    return ed_buf_puts(o, name);
  ed_code_t rc = ed_buf_putc(o, '`');
  for (const char *s = name; *s && !rc; s++)
    rc = *s == '`' ? ed_buf_puts(o, "``") : ed_buf_putc(o, *s);
  return rc ? rc : ed_buf_putc(o, '`');
}

static ed_code_t fields_ddl(const sm_type_t *st, ed_buf_t *o, const char *sep) {
  ed_code_t rc = ED_OK;
  for (size_t i = 0; i < st->nfields && !rc; i++) {
    if (i)
      rc = ed_buf_puts(o, ", ");
    if (!rc)
      rc = name_ddl(st->fields[i].name, o);
    if (!rc)
      rc = ed_buf_puts(o, sep);
    if (!rc)
      rc = sm_schema_type_to_ddl(st->fields[i].type, o);
    if (!rc && !st->fields[i].nullable)
      rc = ed_buf_puts(o, " NOT NULL");
  }
  return rc;
}

ed_code_t sm_schema_type_to_ddl(const sm_type_t *t, ed_buf_t *o) {
  ed_code_t rc;
  switch (t->kind) {
  case SM_STRUCT:
    rc = ed_buf_puts(o, "STRUCT<");
    if (!rc)
      rc = fields_ddl(t, o, ": ");
    return rc ? rc : ed_buf_putc(o, '>');
  case SM_ARRAY:
  case SM_MAP:
    rc = ed_buf_puts(o, t->kind == SM_ARRAY ? "ARRAY<" : "MAP<STRING, ");
    if (!rc)
      rc = sm_schema_type_to_ddl(t->elem, o);
    return rc ? rc : ed_buf_putc(o, '>');
  default:
    return ed_buf_puts(o, sm_kind_name(t->kind));
  }
}

ed_code_t sm_schema_to_ddl(const sm_type_t *st, ed_buf_t *out) {
  if (!st || st->kind != SM_STRUCT)
    return ED_E_INVALID;
  return fields_ddl(st, out, " ");
}
