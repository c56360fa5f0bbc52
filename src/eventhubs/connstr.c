/* connstr: connection-string parsing and validation. */
#include "eventhubs/connstr.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { K_ENDPOINT, K_KEYNAME, K_KEY, K_SAS, K_ENTITY, K_EMU, K__COUNT };
static const char *const key_names[K__COUNT] = {"Endpoint",        "SharedAccessKeyName",
                                                "SharedAccessKey", "SharedAccessSignature",
                                                "EntityPath",      "UseDevelopmentEmulator"};
static const bool key_secret[K__COUNT] = {false, false, true, true, false, false};

static char *dup_trim(const char *s, size_t n) {
  while (n && isspace((unsigned char)*s))
    s++, n--;
  while (n && isspace((unsigned char)s[n - 1]))
    n--;
  char *d = malloc(n + 1);
  if (d) {
    memcpy(d, s, n);
    d[n] = '\0';
  }
  return d;
}

void eh_connstr_fini(eh_connstr_t *cs) {
  if (!cs)
    return;
  free(cs->endpoint);
  free(cs->host);
  free(cs->key_name);
  if (cs->key) {
    explicit_bzero(cs->key, strlen(cs->key));
    free(cs->key);
  }
  if (cs->sas) {
    explicit_bzero(cs->sas, strlen(cs->sas));
    free(cs->sas);
  }
  free(cs->entity_path);
  memset(cs, 0, sizeof *cs);
}

static ed_code_t parse_endpoint(eh_connstr_t *cs, ed_err_t *err) {
  const char *e = cs->endpoint;
  if (strncasecmp(e, "sb://", 5) != 0)
    return ed_err_set(err, ED_E_PARSE,
                      "connection string: Endpoint '%s': expected sb://<namespace host>/", e);
  const char *h = e + 5, *end = h;
  while (*end && *end != '/' && *end != ':')
    end++;
  if (end == h)
    return ed_err_set(err, ED_E_PARSE,
                      "connection string: Endpoint '%s': expected a host after sb://", e);
  cs->host = dup_trim(h, (size_t)(end - h));
  if (!cs->host)
    return ED_E_NOMEM;
  for (char *p = cs->host; *p; p++)
    *p = (char)tolower((unsigned char)*p);
  if (*end == ':') {
    char *pe;
    long port = strtol(end + 1, &pe, 10);
    if (pe == end + 1 || port <= 0 || port > 65535 || (*pe && *pe != '/'))
      return ed_err_set(err, ED_E_PARSE,
                        "connection string: Endpoint '%s': expected a port 1-65535 after ':'", e);
    cs->port = (int)port;
    end = pe;
  }
  /* A path after the host is what EntityPath is for: refuse it rather than
   * silently ignore a hub the user meant. */
  if (*end == '/' && end[1] != '\0')
    return ed_err_set(err, ED_E_PARSE,
                      "connection string: Endpoint '%s': expected no path after the host (use "
                      "EntityPath for the hub)",
                      e);
  return ED_OK;
}

static ed_code_t parse(const char *s, bool need_key, eh_connstr_t *out, ed_err_t *err) {
  memset(out, 0, sizeof *out);
  char *vals[K__COUNT] = {0};
  ed_code_t rc = ED_OK;
  const char *p = s;
  int seg = 0;
  while (*p && rc == ED_OK) {
    const char *end = strchr(p, ';');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    seg++;
    const char *q = p;
    size_t l = len;
    while (l && isspace((unsigned char)*q))
      q++, l--;
    if (l) {
      const char *eq = memchr(q, '=', l);
      if (!eq) {
        rc = ed_err_set(err, ED_E_PARSE,
                        "connection string: segment %d has no '=', expected Key=Value pairs "
                        "separated by ';'",
                        seg);
        break;
      }
      size_t kl = (size_t)(eq - q);
      while (kl && isspace((unsigned char)q[kl - 1]))
        kl--;
      int k = -1;
      for (int i = 0; i < K__COUNT; i++)
        if (strlen(key_names[i]) == kl && strncasecmp(key_names[i], q, kl) == 0)
          k = i;
      if (k < 0) {
        rc = ed_err_set(err, ED_E_PARSE,
                        "connection string: unknown key '%.*s', expected one of Endpoint, "
                        "SharedAccessKeyName, SharedAccessKey, SharedAccessSignature, EntityPath, "
                        "UseDevelopmentEmulator",
                        (int)(kl > 64 ? 64 : kl), q);
        break;
      }
      if (vals[k]) {
        rc = ed_err_set(err, ED_E_PARSE, "connection string: key '%s' appears twice", key_names[k]);
        break;
      }
      vals[k] = dup_trim(eq + 1, l - (size_t)(eq + 1 - q));
      if (!vals[k]) {
        rc = ED_E_NOMEM;
        break;
      }
      if (!vals[k][0]) {
        rc = ed_err_set(err, ED_E_PARSE, "connection string: key '%s' has an empty value",
                        key_names[k]);
        break;
      }
    }
    p = end ? end + 1 : p + len;
  }
  (void)key_secret;
  if (rc == ED_OK && !vals[K_ENDPOINT])
    rc = ed_err_set(
        err, ED_E_PARSE,
        "connection string: Endpoint is missing, expected "
        "Endpoint=sb://<FQDN>/;SharedAccessKeyName=<KeyName>;SharedAccessKey=<KeyValue>");
  if (rc == ED_OK && (!vals[K_KEYNAME]) != (!vals[K_KEY]))
    rc = ed_err_set(err, ED_E_PARSE,
                    "connection string: %s is missing, SharedAccessKeyName and SharedAccessKey go "
                    "together",
                    vals[K_KEYNAME] ? "SharedAccessKey" : "SharedAccessKeyName");
  if (rc == ED_OK && vals[K_KEY] && vals[K_SAS])
    rc = ed_err_set(err, ED_E_PARSE,
                    "connection string: both SharedAccessKey and SharedAccessSignature given, "
                    "expected exactly one");
  if (rc == ED_OK && need_key && !vals[K_KEY] && !vals[K_SAS])
    rc = ed_err_set(err, ED_E_PARSE,
                    "connection string: no credentials, expected SharedAccessKeyName with "
                    "SharedAccessKey, or SharedAccessSignature");
  if (rc == ED_OK && vals[K_SAS] && strncmp(vals[K_SAS], "SharedAccessSignature ", 22) != 0)
    rc = ed_err_set(err, ED_E_PARSE,
                    "connection string: SharedAccessSignature must start with "
                    "'SharedAccessSignature sr='");
  if (rc == ED_OK && vals[K_EMU]) {
    if (!strcasecmp(vals[K_EMU], "true"))
      out->use_emulator = true;
    else if (!strcasecmp(vals[K_EMU], "false"))
      out->use_emulator = false;
    else
      rc = ed_err_set(err, ED_E_PARSE,
                      "connection string: UseDevelopmentEmulator '%s': expected true or false",
                      vals[K_EMU]);
  }
  out->endpoint = vals[K_ENDPOINT];
  out->key_name = vals[K_KEYNAME];
  out->key = vals[K_KEY];
  out->sas = vals[K_SAS];
  out->entity_path = vals[K_ENTITY];
  free(vals[K_EMU]);
  if (rc == ED_OK)
    rc = parse_endpoint(out, err);
  if (rc)
    eh_connstr_fini(out);
  return rc;
}

int eh_connstr_port(const eh_connstr_t *cs) {
  if (cs->port)
    return cs->port;
  return cs->use_emulator ? 5672 : 5671;
}

ed_code_t eh_connstr_hub(const eh_connstr_t *cs, const char *explicit_hub, const char **hub,
                         ed_err_t *err) {
  if (explicit_hub && cs->entity_path && strcmp(explicit_hub, cs->entity_path) != 0)
    return ed_err_set(err, ED_E_INVALID,
                      "event hub '%s' does not match the connection string's EntityPath '%s'",
                      explicit_hub, cs->entity_path);
  *hub = explicit_hub ? explicit_hub : cs->entity_path;
  if (!*hub)
    return ed_err_set(err, ED_E_INVALID,
                      "no event hub named: expected EntityPath in the connection string or --hub");
  return ED_OK;
}

ed_code_t eh_connstr_parse(const char *s, eh_connstr_t *out, ed_err_t *err) {
  return parse(s, true, out, err);
}

ed_code_t eh_connstr_parse_keyless(const char *s, eh_connstr_t *out, ed_err_t *err) {
  return parse(s, false, out, err);
}
