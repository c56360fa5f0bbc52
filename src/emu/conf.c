/* conf: Config.json of the official emulator (format in conf.h). */
#include "emu/conf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "proto/eventhubs.h"

/* §10.1 and §10.3 */
#define CONF_MAX_HUBS       10
#define CONF_MAX_PARTITIONS 32
#define CONF_MAX_GROUPS     20
#define CONF_MAX_HUB_NAME   256
#define CONF_MAX_GROUP_NAME 50

typedef struct conf_ctx {
  const char *file;
  ed_buf_t *problems;
  int count;
  char first[ED_ERR_MSG_MAX];
} conf_ctx_t;

static void problem(conf_ctx_t *c, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void problem(conf_ctx_t *c, const char *where, const char *fmt, ...) {
  char what[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  char line[ED_ERR_MSG_MAX];
  snprintf(line, sizeof line, "%s: %s: %s", c->file, where, what);
  if (!c->count++)
    snprintf(c->first, sizeof c->first, "%s", line);
  if (c->problems)
    ed_buf_printf(c->problems, "%s\n", line);
}

/* A short rendering of a JSON value for "got ..." */
static const char *shown(json_object *o) {
  if (!o)
    return "null";
  const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
  return s && strlen(s) <= 60 ? s : json_type_to_name(json_object_get_type(o));
}

/* The schema's name pattern ^[A-Za-z0-9]$|^[A-Za-z0-9][\w-\.\/]*[A-Za-z0-9]$ */
static bool name_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0)
    return false;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
    if (!alnum && ((i == 0 || i == n - 1) || (ch != '_' && ch != '-' && ch != '.' && ch != '/')))
      return false;
  }
  return true;
}

/* Key present with the wanted type; reports a problem when required and absent
 * or when the type differs. */
static json_object *member(conf_ctx_t *c, json_object *obj, const char *where, const char *key,
                           json_type type, bool required) {
  json_object *v = NULL;
  char at[300];
  snprintf(at, sizeof at, "%.200s%s%s", where, *where ? "." : "", key);
  if (!json_object_object_get_ex(obj, key, &v) || !v) {
    if (required)
      problem(c, at, "required, missing");
    return NULL;
  }
  if (!json_object_is_type(v, type)) {
    problem(c, at, "expected %s, got %s", json_type_to_name(type), shown(v));
    return NULL;
  }
  return v;
}

static char *dup_name(conf_ctx_t *c, json_object *o, const char *where, size_t max,
                      const char *what) {
  char at[300];
  snprintf(at, sizeof at, "%.200s.Name", where);
  json_object *v = member(c, o, where, "Name", json_type_string, true);
  if (!v)
    return NULL;
  const char *s = json_object_get_string(v);
  if (!name_ok(s) || strlen(s) > max) {
    problem(c, at,
            "expected %s name of 1-%zu letters, digits, '_', '-', '.' or '/' that starts and "
            "ends with a letter or digit, got %s",
            what, max, shown(v));
    return NULL;
  }
  return strdup(s);
}

/* PartitionCount: the schema says string ("2" in the shipped sample); a JSON
 * integer is accepted too. */
static int partition_count(conf_ctx_t *c, json_object *ent, const char *where) {
  char at[300];
  snprintf(at, sizeof at, "%.200s.PartitionCount", where);
  json_object *v = NULL;
  if (!json_object_object_get_ex(ent, "PartitionCount", &v) || !v) {
    problem(c, at, "required, missing");
    return -1;
  }
  long long n = -1;
  if (json_object_is_type(v, json_type_int))
    n = json_object_get_int64(v);
  else if (json_object_is_type(v, json_type_string)) {
    const char *s = json_object_get_string(v);
    char *end;
    errno = 0;
    n = strtoll(s, &end, 10);
    if (!*s || *end || errno || s[0] == '+' || s[0] == '-' || s[0] == ' ')
      n = -1;
  }
  if (n < 1 || n > CONF_MAX_PARTITIONS) {
    problem(c, at,
            "expected a partition count from 1 to %d (a string of digits or an integer), "
            "got %s",
            CONF_MAX_PARTITIONS, shown(v));
    return -1;
  }
  return (int)n;
}

static void groups_of(conf_ctx_t *c, json_object *ent, const char *where, emu_hubspec_t *h) {
  char at[300];
  snprintf(at, sizeof at, "%.200s.ConsumerGroups", where);
  json_object *arr = member(c, ent, where, "ConsumerGroups", json_type_array, false);
  size_t n = arr ? json_object_array_length(arr) : 0;
  h->groups = calloc(n + 1, sizeof *h->groups);
  if (!h->groups) {
    problem(c, at, "out of memory");
    return;
  }
  if (!arr) /* the schema's default is [$default], which every hub has anyway */
    return;
  if (n < 1 || n > CONF_MAX_GROUPS) {
    problem(c, at, "expected 1 to %d consumer groups, got %zu", CONF_MAX_GROUPS, n);
    if (n > CONF_MAX_GROUPS)
      return;
  }
  int k = 0;
  for (size_t i = 0; i < n; i++) {
    char gat[300];
    snprintf(gat, sizeof gat, "%.200s[%zu]", at, i);
    json_object *g = json_object_array_get_idx(arr, i);
    if (!json_object_is_type(g, json_type_object)) {
      problem(c, gat, "expected an object with a Name, got %s", shown(g));
      continue;
    }
    json_object *raw = NULL;
    if (json_object_object_get_ex(g, "Name", &raw) && json_object_is_type(raw, json_type_string) &&
        strcasecmp(json_object_get_string(raw), EHP_DEFAULT_CONSUMER_GROUP) == 0) {
      problem(c, gat, "'%s' is created for every event hub and cannot be declared",
              json_object_get_string(raw));
      continue;
    }
    char *name = dup_name(c, g, gat, CONF_MAX_GROUP_NAME, "a consumer group");
    if (!name)
      continue;
    bool bad = false;
    for (int j = 0; j < k && !bad; j++)
      if (strcasecmp(h->groups[j], name) == 0) {
        problem(c, gat, "consumer group '%s' is declared twice (names ignore case)", name);
        bad = true;
      }
    if (bad)
      free(name);
    else
      h->groups[k++] = name;
  }
}

static void entities(conf_ctx_t *c, json_object *ns, const char *where, emu_hubspec_t **hubs,
                     int *nhubs) {
  char at[300];
  snprintf(at, sizeof at, "%.200s.Entities", where);
  json_object *arr = member(c, ns, where, "Entities", json_type_array, true);
  if (!arr)
    return;
  size_t n = json_object_array_length(arr);
  if (n < 1 || n > CONF_MAX_HUBS) {
    problem(c, at, "expected 1 to %d event hubs, got %zu", CONF_MAX_HUBS, n);
    if (n == 0 || n > CONF_MAX_HUBS)
      return;
  }
  *hubs = calloc(n, sizeof **hubs);
  if (!*hubs) {
    problem(c, at, "out of memory");
    return;
  }
  for (size_t i = 0; i < n; i++) {
    char eat[300];
    snprintf(eat, sizeof eat, "%.200s[%zu]", at, i);
    json_object *ent = json_object_array_get_idx(arr, i);
    if (!json_object_is_type(ent, json_type_object)) {
      problem(c, eat, "expected an object with Name, PartitionCount and ConsumerGroups, got %s",
              shown(ent));
      continue;
    }
    emu_hubspec_t *h = &(*hubs)[(*nhubs)++];
    h->name = dup_name(c, ent, eat, CONF_MAX_HUB_NAME, "an event hub");
    if (h->name && strchr(h->name, '/')) {
      /* the schema allows it, but "<hub>/Partitions/<p>" could not be told
       * apart from a hub called "<hub>/Partitions": refused, strictly */
      problem(c, eat, "event hub name '%s': a '/' cannot be told apart from the address path",
              h->name);
    }
    for (int j = 0; h->name && j < *nhubs - 1; j++)
      if ((*hubs)[j].name && strcasecmp((*hubs)[j].name, h->name) == 0)
        problem(c, eat, "event hub '%s' is declared twice (names ignore case)", h->name);
    h->partitions = partition_count(c, ent, eat);
    groups_of(c, ent, eat, h);
  }
}

void emu_conf_free(emu_hubspec_t *hubs, int nhubs) {
  for (int i = 0; hubs && i < nhubs; i++) {
    for (char **g = hubs[i].groups; g && *g; g++)
      free(*g);
    free(hubs[i].groups);
    free(hubs[i].name);
  }
  free(hubs);
}

ed_code_t emu_conf_load(const char *path, emu_hubspec_t **hubs, int *nhubs, ed_buf_t *problems,
                        ed_err_t *err) {
  *hubs = NULL;
  *nhubs = 0;
  conf_ctx_t c = {.file = path, .problems = problems};
  FILE *f = fopen(path, "r");
  if (!f) {
    problem(&c, "--config", "cannot open: %s", strerror(errno));
    return ed_err_set(err, ED_E_IO, "%s", c.first);
  }
  ed_buf_t text = ED_BUF_INIT;
  char chunk[8192];
  size_t got;
  while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
    ed_buf_append(&text, chunk, got);
  fclose(f);
  json_tokener *tok = json_tokener_new();
  if (tok)
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
  json_object *root =
      tok && text.data ? json_tokener_parse_ex(tok, text.data, (int)text.len) : NULL;
  if (!root) {
    enum json_tokener_error je = tok ? json_tokener_get_error(tok) : json_tokener_continue;
    if (je == json_tokener_continue || !text.len)
      problem(&c, "(file)", "expected a JSON object, got the end of the file");
    else
      problem(&c, "(file)", "expected JSON: %s at byte %zu", json_tokener_error_desc(je),
              tok ? json_tokener_get_parse_end(tok) : 0);
  }
  json_tokener_free(tok);
  ed_buf_fini(&text);
  if (!root)
    return ed_err_set(err, ED_E_CONFIG, "%s", c.first);
  json_object *uc = NULL, *nsa = NULL;
  if (!json_object_is_type(root, json_type_object))
    problem(&c, "(top)", "expected an object with UserConfig, got %s", shown(root));
  else
    uc = member(&c, root, "", "UserConfig", json_type_object, true);
  if (uc)
    nsa = member(&c, uc, "UserConfig", "NamespaceConfig", json_type_array, true);
  if (nsa && json_object_array_length(nsa) != 1)
    problem(&c, "UserConfig.NamespaceConfig", "expected exactly 1 namespace, got %zu",
            json_object_array_length(nsa));
  else if (nsa) {
    const char *where = "UserConfig.NamespaceConfig[0]";
    json_object *ns = json_object_array_get_idx(nsa, 0);
    if (!json_object_is_type(ns, json_type_object))
      problem(&c, where, "expected an object with Entities, got %s", shown(ns));
    else {
      /* Type and Name became optional in the official emulator 1.2.4 */
      json_object *t = member(&c, ns, where, "Type", json_type_string, false);
      if (t && strcmp(json_object_get_string(t), "EventHub") != 0)
        problem(&c, "UserConfig.NamespaceConfig[0].Type", "expected \"EventHub\", got %s",
                shown(t));
      json_object *nm = member(&c, ns, where, "Name", json_type_string, false);
      if (nm && strcmp(json_object_get_string(nm), "emulatorNs1") != 0)
        problem(&c, "UserConfig.NamespaceConfig[0].Name", "expected \"emulatorNs1\", got %s",
                shown(nm));
      entities(&c, ns, where, hubs, nhubs);
    }
  }
  if (uc) {
    json_object *lc = member(&c, uc, "UserConfig", "LoggingConfig", json_type_object, true);
    json_object *lt =
        lc ? member(&c, lc, "UserConfig.LoggingConfig", "Type", json_type_string, true) : NULL;
    static const char *kinds[] = {"File", "Console", "File,Console", "Console,File"};
    bool ok = !lt;
    for (size_t i = 0; lt && i < sizeof kinds / sizeof kinds[0]; i++)
      ok = ok || strcmp(json_object_get_string(lt), kinds[i]) == 0;
    if (!ok)
      problem(&c, "UserConfig.LoggingConfig.Type",
              "expected \"File\", \"Console\", \"File,Console\" or \"Console,File\", got %s",
              shown(lt));
  }
  json_object_put(root);
  if (c.count) {
    emu_conf_free(*hubs, *nhubs);
    *hubs = NULL;
    *nhubs = 0;
    if (c.count == 1)
      return ed_err_set(err, ED_E_CONFIG, "%s", c.first);
    return ed_err_set(err, ED_E_CONFIG, "%s (and %d more problems)", c.first, c.count - 1);
  }
  return ED_OK;
}
