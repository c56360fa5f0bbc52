/* node: the $cbs node (put-token: SAS tokens checked against the key, grants
 * per audience path) and the $management node (READ of a hub or partition),
 * and what a connection's grants let it attach to. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventhubs/sas.h"
#include "common/log.h"
#include "emu/emu_int.h"

/* The path of an audience or address: scheme and host dropped, no trailing '/'. */
void emu_node_path(const char *s, char *out, size_t n) {
  const char *p = strstr(s, "://");
  if (p) {
    p += 3;
    p = strchr(p, '/');
    if (!p)
      p = "";
  } else
    p = s;
  while (*p == '/')
    p++;
  snprintf(out, n, "/%s", p);
  size_t l = strlen(out);
  while (l > 1 && out[l - 1] == '/')
    out[--l] = 0;
}

static bool path_covers(const char *granted, const char *wanted) {
  size_t g = strlen(granted);
  if (g <= 1)
    return true;
  return strncasecmp(granted, wanted, g) == 0 && (wanted[g] == 0 || wanted[g] == '/');
}

bool emu_node_authorized(emu_conn_t *c, const char *path, unsigned any) {
  int64_t now = ed_time_now_us();
  for (int i = 0; i < c->nauth; i++)
    if (c->auth[i].exp_us > now && path_covers(c->auth[i].path, path) && (c->auth[i].rights & any))
      return true;
  return false;
}

void emu_node_grant(emu_conn_t *c, const char *path, int64_t exp_us, unsigned rights) {
  if (c->nauth == EMU_MAX_AUTH) {
    free(c->auth[0].path);
    memmove(c->auth, c->auth + 1, sizeof c->auth[0] * (EMU_MAX_AUTH - 1));
    c->nauth--;
  }
  c->auth[c->nauth].path = strdup(path);
  c->auth[c->nauth].exp_us = exp_us;
  c->auth[c->nauth].rights = rights;
  if (c->auth[c->nauth].path)
    c->nauth++;
}

/* Sends a reply message on the node's reply link (matching reply-to, else any). */
static void node_reply(emu_conn_t *c, emu_lkind_t kind, pn_session_t *ssn, pn_message_t *req,
                       pn_message_t *resp) {
  const char *rt = pn_message_get_reply_to(req);
  emu_link_t *best = NULL;
  for (emu_link_t *l = c->links; l; l = l->next) {
    if (l->kind != kind || l->closed)
      continue;
    if (rt && l->reply_addr && strcmp(rt, l->reply_addr) == 0) {
      best = l;
      break;
    }
    if (!best || pn_link_session(l->link) == ssn)
      best = l;
  }
  if (!best)
    return;
  pn_message_set_correlation_id(resp, pn_message_get_id(req));
  if (rt)
    pn_message_set_address(resp, rt);
  uint64_t tag = ++best->tag;
  pn_delivery_t *d = pn_delivery(best->link, pn_dtag((const char *)&tag, sizeof tag));
  if (pn_message_send(resp, best->link, NULL) >= 0)
    pn_delivery_settle(d);
}

/* Accepts and settles a $cbs or $management request, and hands the DISPOSITION
 * to the normaliser before any reply exists. Proton sends a settled ACCEPTED
 * as a batched disposition after the transfers of the same pass, so a reply
 * made in the same pass overtook it; uamqp-transport clients wait for the
 * request's outcome and fail on a reply that comes first ("Did not receive
 * send confirmation for pending operation"). */
static void node_accept(emu_conn_t *c, pn_delivery_t *d) {
  pn_delivery_update(d, PN_ACCEPTED);
  pn_delivery_settle(d);
  while (emu_conn_pull(c))
    ;
}

static void put_status(pn_message_t *m, int code, const char *desc) {
  pn_data_t *p = pn_message_properties(m);
  pn_data_put_map(p);
  pn_data_enter(p);
  pn_data_put_string(p, pn_bytes(strlen(EHP_RESP_STATUS_CODE), EHP_RESP_STATUS_CODE));
  pn_data_put_int(p, code);
  pn_data_put_string(p, pn_bytes(strlen(EHP_RESP_STATUS_DESC), EHP_RESP_STATUS_DESC));
  pn_data_put_string(p, pn_bytes(strlen(desc), desc));
  pn_data_exit(p);
}

/* String application property, or NULL (copied into buf). */
static const char *app_prop(pn_message_t *m, const char *key, char *buf, size_t n) {
  pn_data_t *p = pn_message_properties(m);
  pn_data_rewind(p);
  if (!pn_data_next(p) || pn_data_type(p) != PN_MAP)
    return NULL;
  pn_data_enter(p);
  while (pn_data_next(p)) {
    bool match = false;
    if (pn_data_type(p) == PN_STRING || pn_data_type(p) == PN_SYMBOL) {
      pn_bytes_t k = pn_data_type(p) == PN_STRING ? pn_data_get_string(p) : pn_data_get_symbol(p);
      match = k.size == strlen(key) && memcmp(k.start, key, k.size) == 0;
    }
    if (!pn_data_next(p))
      break;
    if (match && pn_data_type(p) == PN_STRING) {
      pn_bytes_t v = pn_data_get_string(p);
      snprintf(buf, n, "%.*s", (int)v.size, v.start);
      pn_data_exit(p);
      return buf;
    }
  }
  pn_data_exit(p);
  return NULL;
}

/* Validates a SAS token or (with --jwks) an Entra ID JWT for the audience;
 * 0 and *rights when good, else a status code. A token's kind comes from its
 * text, not the put-token type (Python sends type jwt for SAS too, §3.5). */
static int check_token(emu_t *e, const char *token, const char *audience, int64_t *exp_us,
                       unsigned *rights, const char **why) {
  eh_sas_fields_t f = {0};
  ed_err_t err;
  *rights = EMU_RIGHT_ALL;
  *why = "InvalidSignature: The token has an invalid signature.";
  if (strncmp(token, "SharedAccessSignature ", 22) != 0) {
    if (!e->jwt) {
      *why = "InvalidIssuer: Token issuer is invalid.";
      return 401;
    }
    int code = emu_jwt_check(e->jwt, token, ed_time_now_us() / ED_US_PER_SEC, rights, exp_us, why);
    if (code == 0 && e->cfg.token_lifetime_us > 0 &&
        ed_time_now_us() + e->cfg.token_lifetime_us < *exp_us)
      *exp_us = ed_time_now_us() + e->cfg.token_lifetime_us;
    return code;
  }
  if (e->cfg.disable_local_auth) {
    /* disableLocalAuth: the namespace takes Entra ID tokens only */
    *why = "LocalAuthDisabled: Authorization with a shared access signature is disabled for this "
           "namespace; use Microsoft Entra ID.";
    return 401;
  }
  if (eh_sas_parse(token, &f, &err) != ED_OK)
    return 401;
  int rc = 0;
  char rp[1024], ap[1024];
  emu_node_path(f.resource, rp, sizeof rp);
  emu_node_path(audience, ap, sizeof ap);
  if (strcmp(f.skn, e->cfg.key_name) != 0) {
    *why = "Unauthorized: the key name in the token is not known.";
    rc = 401;
  } else {
    ed_code_t vc = eh_sas_verify(&f, e->key, ed_time_now_us() / ED_US_PER_SEC, &err);
    if (vc == ED_E_TOKEN_EXPIRED) {
      *why = "ExpiredToken: The token is expired.";
      rc = 401;
    } else if (vc != ED_OK)
      rc = 401;
    else if (!path_covers(rp, ap)) {
      *why = "InvalidAudience: The token audience does not cover the requested resource.";
      rc = 401;
    }
  }
  int64_t exp = f.se * ED_US_PER_SEC;
  if (e->cfg.token_lifetime_us > 0 && ed_time_now_us() + e->cfg.token_lifetime_us < exp)
    exp = ed_time_now_us() + e->cfg.token_lifetime_us;
  *exp_us = exp;
  eh_sas_fields_fini(&f);
  return rc;
}

static const char *body_string(pn_message_t *m, char *buf, size_t n) {
  pn_data_t *b = pn_message_body(m);
  pn_data_rewind(b);
  if (!pn_data_next(b) || pn_data_type(b) != PN_STRING)
    return NULL;
  pn_bytes_t v = pn_data_get_string(b);
  if (v.size >= n)
    return NULL;
  memcpy(buf, v.start, v.size);
  buf[v.size] = 0;
  return buf;
}

void emu_node_cbs(emu_conn_t *c, emu_link_t *el, pn_message_t *req, pn_delivery_t *d) {
  char op[64], name[1024], *tok = malloc(8192);
  pn_message_t *resp = pn_message();
  if (!tok || !resp) {
    free(tok);
    pn_message_free(resp);
    return;
  }
  if (!app_prop(req, EHP_CBS_KEY_OPERATION, op, sizeof op) ||
      strcmp(op, EHP_CBS_OP_PUT_TOKEN) != 0) {
    emu_link_cond(pn_disposition_condition(pn_delivery_local(d)),
                  ehp_cond_name(EHP_COND_NOT_ALLOWED), "Invalid command.");
    pn_delivery_update(d, PN_REJECTED);
    pn_delivery_settle(d);
  } else {
    node_accept(c, d);
    const char *why = "";
    int64_t exp = 0;
    unsigned rights = 0;
    int code;
    if (!app_prop(req, EHP_CBS_KEY_NAME, name, sizeof name) || !body_string(req, tok, 8192)) {
      code = 400, why = "Bad request: put-token needs a name and a string token.";
    } else {
      code = check_token(c->emu, tok, name, &exp, &rights, &why);
      char np[1024];
      emu_node_path(name, np, sizeof np);
      bool known = strlen(np) <= 1;
      for (int i = 0; i < c->emu->nhubs && !known; i++) {
        char hp[512];
        snprintf(hp, sizeof hp, "/%s", c->emu->hubs[i].name);
        known = path_covers(np, hp) || path_covers(hp, np);
      }
      if (code == 0 && !known)
        code = 404, why = "The messaging entity could not be found.";
      if (code == 0) {
        emu_node_grant(c, np, exp, rights);
        code = 202, why = "Accepted";
      }
    }
    put_status(resp, code, why);
    node_reply(c, LK_CBS_OUT, pn_link_session(el->link), req, resp);
  }
  pn_message_free(resp);
  free(tok);
}

static void mgmt_body(emu_t *e, emu_hub_t *h, pn_message_t *resp, int part) {
  pn_data_t *b = pn_message_body(resp);
#define PKEY(s) pn_data_put_string(b, pn_bytes(strlen(s), s))
  pn_data_put_map(b);
  pn_data_enter(b);
  PKEY(EHP_HUB_NAME);
  PKEY(h->name);
  if (part < 0) {
    PKEY(EHP_HUB_TYPE);
    PKEY(EHP_MGMT_TYPE_EVENTHUB);
    PKEY(EHP_HUB_CREATED_AT);
    pn_data_put_timestamp(b, h->created_ms);
    PKEY(EHP_HUB_PARTITION_COUNT);
    pn_data_put_int(b, h->nparts);
    PKEY(EHP_HUB_PARTITION_IDS);
    pn_data_put_array(b, false, PN_STRING);
    pn_data_enter(b);
    for (int i = 0; i < h->nparts; i++) {
      char id[16];
      snprintf(id, sizeof id, "%d", i);
      PKEY(id);
    }
    pn_data_exit(b);
    PKEY(EHP_HUB_GEOREPLICATION_FACTOR);
    pn_data_put_int(b, 1);
  } else {
    emu_part_t *p = &h->parts[part];
    emu_hub_retain(e, p);
    char id[16], off[24];
    snprintf(id, sizeof id, "%d", part);
    bool empty = p->first == p->n;
    const emu_event_t *last = p->n ? &p->ev[p->n - 1] : NULL;
    snprintf(off, sizeof off, "%" PRId64, last && !empty ? last->offset : -1);
    PKEY(EHP_PART_TYPE);
    PKEY(EHP_MGMT_TYPE_PARTITION);
    PKEY(EHP_PART_PARTITION);
    PKEY(id);
    PKEY(EHP_PART_BEGIN_SEQ);
    pn_data_put_long(b, empty ? p->next_seq : p->ev[p->first].seq);
    PKEY(EHP_PART_LAST_SEQ);
    pn_data_put_long(b, p->next_seq - 1);
    PKEY(EHP_PART_LAST_OFFSET);
    PKEY(off);
    PKEY(EHP_PART_LAST_TIME);
    pn_data_put_timestamp(b, last && !empty ? last->enq_ms : 0);
    PKEY(EHP_PART_IS_EMPTY);
    pn_data_put_bool(b, empty);
  }
  pn_data_exit(b);
#undef PKEY
}

void emu_node_mgmt(emu_conn_t *c, emu_link_t *el, pn_message_t *req, pn_delivery_t *d) {
  emu_t *e = c->emu;
  char op[64], type[64], name[256], part[32], tok[8192];
  pn_message_t *resp = pn_message();
  if (!resp)
    return;
  node_accept(c, d);
  char hp[300];
  const char *nm = app_prop(req, EHP_MGMT_KEY_NAME, name, sizeof name);
  snprintf(hp, sizeof hp, "/%s", nm ? nm : "");
  /* READ: any data role (the SDKs' producers read partition ids with Sender) */
  bool ok = emu_node_authorized(c, hp, EMU_RIGHT_ALL);
  if (!ok && app_prop(req, EHP_MGMT_KEY_SECURITY_TOKEN, tok, sizeof tok)) {
    int64_t exp;
    unsigned rights;
    const char *why;
    ok = check_token(e, tok, hp, &exp, &rights, &why) == 0 && rights;
  }
  int p = -1;
  emu_hub_t *h = NULL;
  if (!app_prop(req, EHP_MGMT_KEY_OPERATION, op, sizeof op) || strcmp(op, EHP_MGMT_OP_READ) != 0)
    put_status(resp, 400, "Invalid operation.");
  else if (!ok)
    put_status(resp, 401, "Unauthorized access. 'Listen' claim(s) are required.");
  else if (!nm || !(h = emu_hub_find(e, nm))) {
    char msg[512];
    snprintf(msg, sizeof msg, "The messaging entity 'sb://localhost/%s' could not be found.",
             nm ? nm : "");
    put_status(resp, 404, msg);
  } else if (!app_prop(req, EHP_MGMT_KEY_TYPE, type, sizeof type))
    put_status(resp, 400, "The type is missing.");
  else if (strcmp(type, EHP_MGMT_TYPE_EVENTHUB) == 0) {
    put_status(resp, 200, "OK");
    mgmt_body(e, h, resp, -1);
  } else if (strcmp(type, EHP_MGMT_TYPE_PARTITION) == 0 &&
             app_prop(req, EHP_MGMT_KEY_PARTITION, part, sizeof part) &&
             (p = emu_hub_partition(h, part)) >= 0) {
    put_status(resp, 200, "OK");
    mgmt_body(e, h, resp, p);
  } else
    put_status(resp, 400, "The partition or type is not valid.");
  node_reply(c, LK_MGMT_OUT, pn_link_session(el->link), req, resp);
  pn_message_free(resp);
}
