#!/usr/bin/env python3
"""A recording fake of the Azure CLI for the ops suites (scripts/provision,
scripts/teardown, scripts/run-agent).

It answers the subcommands those scripts use the way az 2.45 does: JSON shaped
like the real resources, `--query` (the JMESPath subset the scripts use) and
`--output json|tsv|none` with knack's tsv rules, exit 3 and the service's error
text for a missing resource, exit 2 for a missing or unknown argument. State is
kept in $FAKE_AZ_DIR/state.json; every call is appended, shell-quoted, to
$FAKE_AZ_DIR/calls.log. Faults, from the environment:
  FAKE_AZ_LOGGED_OUT=1        every command fails as az does before `az login`
  FAKE_AZ_TAKEN=a,b           these namespace/storage names belong to someone else
  FAKE_AZ_NO_QUOTA=kind       creating that kind (namespace, storage, eventhub,
                              identity) fails with the service's quota error
"""
import hashlib
import json
import os
import re
import shlex
import sys

DIR = os.environ["FAKE_AZ_DIR"]
STATE = os.path.join(DIR, "state.json")
SUB = "0b1f6471-1bf0-4dda-aec3-111122223333"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


def load():
    try:
        with open(STATE) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def save(st):
    with open(STATE + ".tmp", "w") as f:
        json.dump(st, f, indent=1, sort_keys=True)
    os.replace(STATE + ".tmp", STATE)


def die(code, msg):
    sys.stderr.write(msg.rstrip("\n") + "\n")
    sys.exit(code)


def arm_error(code, message, rc=1):
    die(rc, "ERROR: (%s) %s\nCode: %s\nMessage: %s" % (code, message, code, message))


# command words -> (required flags, optional flags, boolean flags)
G = ["--query", "--output", "-o", "--only-show-errors", "--subscription"]
COMMANDS = {
    ("account", "show"): ([], [], []),
    ("group", "exists"): (["--name"], [], []),
    ("group", "create"): (["--name", "--location"], ["--tags"], []),
    ("group", "delete"): (["--name"], [], ["--yes", "--no-wait"]),
    ("eventhubs", "namespace", "show"): (["--resource-group", "--name"], [], []),
    ("eventhubs", "namespace", "exists"): (["--name"], [], []),
    ("eventhubs", "namespace", "create"): (
        ["--resource-group", "--name"],
        ["--location", "--sku", "--capacity", "--enable-kafka", "--enable-auto-inflate", "--tags"], []),
    ("eventhubs", "namespace", "delete"): (["--resource-group", "--name"], [], []),
    ("eventhubs", "eventhub", "show"): (["--resource-group", "--namespace-name", "--name"], [], []),
    ("eventhubs", "eventhub", "create"): (
        ["--resource-group", "--namespace-name", "--name"], ["--partition-count", "--message-retention"], []),
    ("eventhubs", "eventhub", "delete"): (["--resource-group", "--namespace-name", "--name"], [], []),
    ("eventhubs", "eventhub", "consumer-group", "show"): (
        ["--resource-group", "--namespace-name", "--eventhub-name", "--name"], [], []),
    ("eventhubs", "eventhub", "consumer-group", "create"): (
        ["--resource-group", "--namespace-name", "--eventhub-name", "--name"], [], []),
    ("eventhubs", "eventhub", "consumer-group", "delete"): (
        ["--resource-group", "--namespace-name", "--eventhub-name", "--name"], [], []),
    ("eventhubs", "eventhub", "authorization-rule", "show"): (
        ["--resource-group", "--namespace-name", "--eventhub-name", "--name"], [], []),
    ("eventhubs", "eventhub", "authorization-rule", "create"): (
        ["--resource-group", "--namespace-name", "--eventhub-name", "--name", "--rights"], [], []),
    ("eventhubs", "eventhub", "authorization-rule", "delete"): (
        ["--resource-group", "--namespace-name", "--eventhub-name", "--name"], [], []),
    ("eventhubs", "eventhub", "authorization-rule", "keys", "list"): (
        ["--resource-group", "--namespace-name", "--eventhub-name", "--name"], [], []),
    ("storage", "account", "show"): (["--name"], ["--resource-group"], []),
    ("storage", "account", "check-name"): (["--name"], [], []),
    ("storage", "account", "create"): (
        ["--resource-group", "--name"],
        ["--location", "--sku", "--kind", "--hns", "--min-tls-version", "--allow-blob-public-access", "--tags"], []),
    ("storage", "account", "delete"): (["--resource-group", "--name"], [], ["--yes"]),
    ("storage", "account", "keys", "list"): (["--account-name"], ["--resource-group"], []),
    ("storage", "container-rm", "show"): (["--storage-account", "--name"], ["--resource-group"], []),
    ("storage", "container-rm", "create"): (["--storage-account", "--name"], ["--resource-group", "--public-access"], []),
    ("storage", "container-rm", "delete"): (["--storage-account", "--name"], ["--resource-group"], ["--yes"]),
    ("identity", "show"): (["--resource-group", "--name"], [], []),
    ("identity", "create"): (["--resource-group", "--name"], ["--location", "--tags"], []),
    ("identity", "delete"): (["--resource-group", "--name"], [], []),
    ("role", "assignment", "list"): ([], ["--assignee", "--role", "--scope"], []),
    ("role", "assignment", "create"): (
        ["--role"], ["--assignee-object-id", "--assignee-principal-type", "--scope"], []),
    ("role", "assignment", "delete"): ([], ["--assignee", "--role", "--scope"], ["--yes"]),
}
ALIASES = {"-g": "--resource-group", "-n": "--name", "-o": "--output", "-l": "--location",
           "--enable-hierarchical-namespace": "--hns", "-y": "--yes"}
MULTI = {"--tags"}  # flags taking several words


def parse(argv):
    words = []
    i = 0
    while i < len(argv) and not argv[i].startswith("-"):
        words.append(argv[i])
        i += 1
    cmd = tuple(words)
    if cmd not in COMMANDS:
        die(2, "ERROR: '%s' is misspelled or not recognized by the system." % " ".join(words))
    req, opt, boolean = COMMANDS[cmd]
    known = set(req) | set(opt) | set(boolean) | set(G)
    opts = {}
    while i < len(argv):
        flag = ALIASES.get(argv[i], argv[i])
        if flag not in known:
            die(2, "ERROR: unrecognized arguments: %s" % argv[i])
        i += 1
        if flag in boolean or flag == "--only-show-errors":
            opts[flag] = True
            continue
        vals = []
        while i < len(argv) and not argv[i].startswith("--"):
            vals.append(argv[i])
            i += 1
            if flag not in MULTI:
                break
        if not vals:
            die(2, "ERROR: argument %s: expected one argument" % flag)
        opts[flag] = vals if flag in MULTI else vals[0]
    missing = [f for f in req if f not in opts]
    if missing:
        die(2, "ERROR: the following arguments are required: %s" % ", ".join(missing))
    return cmd, opts


# --- a JMESPath subset: a.b, a[0], a[].b, [x, y], [0].value ---------------------
def query(expr, data):
    expr = expr.strip()
    if expr.startswith("[") and "," in expr and expr.endswith("]"):
        return [query(part, data) for part in split_top(expr[1:-1])]
    tokens = re.findall(r"\[\]|\[\d+\]|[A-Za-z_][A-Za-z0-9_]*|\.", expr)
    if "".join(tokens) != expr.replace(" ", ""):
        die(2, "fake az: query %r is outside the subset this fake implements" % expr)
    return walk([t for t in tokens if t != "."], data)


def walk(tokens, data):
    for k, t in enumerate(tokens):
        if data is None:
            return None
        if t == "[]":
            return [v for v in (walk(tokens[k + 1:], x) for x in data) if v is not None]
        if t.startswith("["):
            n = int(t[1:-1])
            data = data[n] if isinstance(data, list) and n < len(data) else None
        else:
            data = data.get(t) if isinstance(data, dict) else None
    return data


def split_top(s):
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "["
        depth -= ch == "]"
        cur += ch
    parts.append(cur)
    return parts


def tsv_obj(v):
    if isinstance(v, list):
        return str(len(v))
    if isinstance(v, dict):
        return ""
    return v if isinstance(v, str) else str(v)


def tsv_row(v):
    if isinstance(v, dict):
        return "\t".join(tsv_obj(x) for _, x in sorted(v.items()))
    if isinstance(v, list):
        return "\t".join(tsv_obj(x) for x in v)
    if isinstance(v, bool):
        return str(v).lower()
    return tsv_obj(v)


def emit(opts, result):
    if "--query" in opts:
        result = query(opts["--query"], result)
    fmt = opts.get("--output", "json")
    if fmt == "none" or result is None and fmt == "tsv":
        return
    if fmt == "tsv":
        rows = result if isinstance(result, list) else [result]
        sys.stdout.write("".join(tsv_row(r) + "\n" for r in rows))
    else:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")


# --- resources -------------------------------------------------------------------
def rg_id(rg):
    return "/subscriptions/%s/resourceGroups/%s" % (SUB, rg)


def not_found_group(rg):
    arm_error("ResourceGroupNotFound", "Resource group '%s' could not be found." % rg, 3)


def need_group(st, rg):
    if "group:" + rg not in st:
        not_found_group(rg)


def arm_not_found(type_, name, rg):
    arm_error("ResourceNotFound", "The Resource '%s/%s' under resource group '%s' was not found. For more "
              "details please go to https://aka.ms/ARMResourceNotFoundFix" % (type_, name, rg), 3)


def entity_not_found(what):
    arm_error("NotFound", "The messaging entity '%s' could not be found. To know more visit "
              "https://aka.ms/sbResourceMgrExceptions." % what, 3)


def tags(opts):
    return dict(t.split("=", 1) if "=" in t else (t, "") for t in opts.get("--tags", []))


def taken(name):
    return name in [x for x in os.environ.get("FAKE_AZ_TAKEN", "").split(",") if x]


def no_quota(kind):
    return os.environ.get("FAKE_AZ_NO_QUOTA") == kind


def secret(st, label):
    # Deterministic per resource, so a second run writes the same files, and
    # distinctive, so the tests can look for a leak anywhere.
    return "FAKESECRET" + hashlib.sha256(label.encode()).hexdigest()[:32]


def main(argv):
    with open(os.path.join(DIR, "calls.log"), "a") as log:
        log.write(shlex.join(["az"] + argv) + "\n")
    if os.environ.get("FAKE_AZ_LOGGED_OUT") == "1":
        die(1, "ERROR: Please run 'az login' to setup account.")
    cmd, o = parse(argv)
    st = load()
    rg = o.get("--resource-group")
    name = o.get("--name")

    if cmd == ("account", "show"):
        return emit(o, {"environmentName": "AzureCloud", "homeTenantId": TENANT, "id": SUB, "isDefault": True,
                        "managedByTenants": [], "name": "ehdelta-test-subscription", "state": "Enabled",
                        "tenantId": TENANT, "user": {"name": "operator@example.com", "type": "user"}})

    if cmd[0] == "group":
        if cmd[1] == "exists":
            return emit(o, "group:" + name in st)
        if cmd[1] == "create":
            g = {"id": rg_id(name), "location": o["--location"], "managedBy": None, "name": name,
                 "properties": {"provisioningState": "Succeeded"}, "tags": tags(o),
                 "type": "Microsoft.Resources/resourceGroups"}
            st["group:" + name] = g
            save(st)
            return emit(o, g)
        if cmd[1] == "delete":
            need_group(st, name)
            for k in [k for k in st if k == "group:" + name or k.split(":", 1)[1].startswith(name + "/")]:
                del st[k]
            save(st)
            return

    if cmd[:2] == ("eventhubs", "namespace"):
        key = "namespace:%s/%s" % (rg, name)
        if cmd[2] == "exists":
            mine = any(k.startswith("namespace:") and k.endswith("/" + name) for k in st)
            free = not (mine or taken(name))
            return emit(o, {"message": None if free else "The specified name is not available. For more "
                            "information visit https://aka.ms/eventhubsarmexceptions.",
                            "nameAvailable": free, "reason": "None" if free else "NameInUse"})
        need_group(st, rg)
        if cmd[2] == "show":
            if key not in st:
                arm_not_found("Microsoft.EventHub/namespaces", name, rg)
            return emit(o, st[key])
        if cmd[2] == "create":
            if no_quota("namespace"):
                arm_error("QuotaExceeded", "Operation results in exceeding quota limits of Namespace. Maximum "
                          "allowed: 0, Current in use: 0, Additional requested: 1. To request an increase, visit "
                          "https://aka.ms/ProdportalCRP/?#create/Microsoft.Support.")
            if taken(name):
                arm_error("Conflict", "Namespace name '%s' is already taken." % name)
            n = {"id": rg_id(rg) + "/providers/Microsoft.EventHub/namespaces/" + name,
                 "kafkaEnabled": o.get("--enable-kafka") == "true",
                 "isAutoInflateEnabled": o.get("--enable-auto-inflate") == "true",
                 "location": o.get("--location", st["group:" + rg]["location"]), "name": name,
                 "provisioningState": "Succeeded", "resourceGroup": rg,
                 "serviceBusEndpoint": "https://%s.servicebus.windows.net:443/" % name,
                 "sku": {"capacity": int(o.get("--capacity", "1")), "name": o.get("--sku", "Standard"),
                         "tier": o.get("--sku", "Standard")},
                 "status": "Active", "tags": tags(o), "type": "Microsoft.EventHub/Namespaces"}
            st[key] = n
            save(st)
            return emit(o, n)
        if cmd[2] == "delete":
            for k in [k for k in st if k == key or k.split(":", 1)[1].startswith("%s/%s/" % (rg, name))]:
                del st[k]
            save(st)
            return

    if cmd[:2] == ("eventhubs", "eventhub"):
        ns = o["--namespace-name"]
        need_group(st, rg)
        if "namespace:%s/%s" % (rg, ns) not in st:
            arm_not_found("Microsoft.EventHub/namespaces", ns, rg)
        if len(cmd) == 3:
            key = "eventhub:%s/%s/%s" % (rg, ns, name)
            if cmd[2] == "show":
                if key not in st:
                    entity_not_found("%s:eventhub:%s" % (ns, name))
                return emit(o, st[key])
            if cmd[2] == "create":
                if no_quota("eventhub"):
                    arm_error("QuotaExceeded", "SubscriptionId: %s, Namespace: %s, Current count: 10, Max count: "
                              "10. Event hub count quota exceeded." % (SUB, ns))
                h = {"id": "%s/providers/Microsoft.EventHub/namespaces/%s/eventhubs/%s" % (rg_id(rg), ns, name),
                     "location": st["namespace:%s/%s" % (rg, ns)]["location"],
                     "messageRetentionInDays": int(o.get("--message-retention", "7")), "name": name,
                     "partitionCount": int(o.get("--partition-count", "4")),
                     "partitionIds": [str(i) for i in range(int(o.get("--partition-count", "4")))],
                     "resourceGroup": rg, "status": "Active", "type": "Microsoft.EventHub/Namespaces/EventHubs"}
                st[key] = h
                save(st)
                return emit(o, h)
            if cmd[2] == "delete":
                for k in [k for k in st if k == key or k.split(":", 1)[1].startswith("%s/%s/%s/" % (rg, ns, name))]:
                    del st[k]
                save(st)
                return
        hub = o["--eventhub-name"]
        hkey = "eventhub:%s/%s/%s" % (rg, ns, hub)
        if hkey not in st:
            entity_not_found("%s:eventhub:%s" % (ns, hub))
        kind = {"consumer-group": "cg", "authorization-rule": "rule"}[cmd[2]]
        key = "%s:%s/%s/%s/%s" % (kind, rg, ns, hub, name)
        op = cmd[3:]
        if op == ("show",):
            if key not in st:
                entity_not_found("%s:eventhub:%s|%s" % (ns, hub, name))
            return emit(o, st[key])
        if op == ("create",):
            base = st[hkey]["id"]
            if kind == "cg":
                r = {"id": base + "/consumergroups/" + name, "name": name, "resourceGroup": rg,
                     "type": "Microsoft.EventHub/Namespaces/EventHubs/ConsumerGroups"}
            else:
                r = {"id": base + "/authorizationRules/" + name, "name": name, "resourceGroup": rg,
                     "rights": [o["--rights"]], "type": "Microsoft.EventHub/Namespaces/EventHubs/AuthorizationRules"}
            st[key] = r
            save(st)
            return emit(o, r)
        if op == ("delete",):
            st.pop(key, None)
            save(st)
            return
        if op == ("keys", "list"):
            if key not in st:
                entity_not_found("%s:eventhub:%s|%s" % (ns, hub, name))
            k1, k2 = secret(st, "%s-primary" % key), secret(st, "%s-secondary" % key)
            cs = "Endpoint=sb://%s.servicebus.windows.net/;SharedAccessKeyName=%s;SharedAccessKey=%s;EntityPath=%s"
            return emit(o, {"keyName": name, "primaryConnectionString": cs % (ns, name, k1, hub),
                            "primaryKey": k1, "secondaryConnectionString": cs % (ns, name, k2, hub),
                            "secondaryKey": k2})

    if cmd[:2] == ("storage", "account"):
        key = "storage:%s/%s" % (rg, name or o.get("--account-name"))
        if cmd[2] == "check-name":
            mine = any(k.startswith("storage:") and k.endswith("/" + name) for k in st)
            free = not (mine or taken(name))
            return emit(o, {"message": None if free else "The storage account named %s is already taken." % name,
                            "nameAvailable": free, "reason": None if free else "AlreadyExists"})
        need_group(st, rg)
        if cmd[2] == "show":
            if key not in st:
                arm_not_found("Microsoft.Storage/storageAccounts", name, rg)
            return emit(o, st[key])
        if cmd[2] == "create":
            if no_quota("storage"):
                arm_error("SubscriptionQuotaExceeded", "Subscription %s already contains 0 storage accounts in "
                          "location %s and the maximum allowed is 0." % (SUB, o.get("--location")))
            if taken(name):
                arm_error("StorageAccountAlreadyTaken", "The storage account named %s is already taken." % name)
            a = {"id": rg_id(rg) + "/providers/Microsoft.Storage/storageAccounts/" + name,
                 "isHnsEnabled": o.get("--hns") == "true", "kind": o.get("--kind", "StorageV2"),
                 "location": o.get("--location"), "minimumTlsVersion": o.get("--min-tls-version"),
                 "allowBlobPublicAccess": o.get("--allow-blob-public-access") == "true", "name": name,
                 "primaryEndpoints": {"blob": "https://%s.blob.core.windows.net/" % name,
                                      "dfs": "https://%s.dfs.core.windows.net/" % name},
                 "provisioningState": "Succeeded", "resourceGroup": rg,
                 "sku": {"name": o.get("--sku", "Standard_RAGRS"), "tier": "Standard"}, "tags": tags(o),
                 "type": "Microsoft.Storage/storageAccounts"}
            st[key] = a
            save(st)
            return emit(o, a)
        if cmd[2] == "delete":
            for k in [k for k in st if k == key or k.startswith("container:%s/%s/" % (rg, name))]:
                del st[k]
            save(st)
            return
        if cmd[2:] == ("keys", "list"):
            if key not in st:
                arm_not_found("Microsoft.Storage/storageAccounts", o["--account-name"], rg)
            return emit(o, [{"creationTime": "2026-12-01T21:00:00.000000+00:00", "keyName": "key1",
                             "permissions": "FULL", "value": secret(st, key + "-key1")},
                            {"creationTime": "2026-12-01T21:00:00.000000+00:00", "keyName": "key2",
                             "permissions": "FULL", "value": secret(st, key + "-key2")}])

    if cmd[:2] == ("storage", "container-rm"):
        sa = o["--storage-account"]
        need_group(st, rg)
        if "storage:%s/%s" % (rg, sa) not in st:
            arm_not_found("Microsoft.Storage/storageAccounts", sa, rg)
        key = "container:%s/%s/%s" % (rg, sa, name)
        if cmd[2] == "show":
            if key not in st:
                arm_error("ContainerNotFound", "The specified container does not exist.", 3)
            return emit(o, st[key])
        if cmd[2] == "create":
            c = {"id": "%s/providers/Microsoft.Storage/storageAccounts/%s/blobServices/default/containers/%s"
                 % (rg_id(rg), sa, name), "name": name, "publicAccess": "None", "resourceGroup": rg,
                 "type": "Microsoft.Storage/storageAccounts/blobServices/containers"}
            st[key] = c
            save(st)
            return emit(o, c)
        if cmd[2] == "delete":
            st.pop(key, None)
            save(st)
            return

    if cmd[0] == "identity":
        key = "identity:%s/%s" % (rg, name)
        need_group(st, rg)
        if cmd[1] == "show":
            if key not in st:
                arm_not_found("Microsoft.ManagedIdentity/userAssignedIdentities", name, rg)
            return emit(o, st[key])
        if cmd[1] == "create":
            if no_quota("identity"):
                arm_error("QuotaExceeded", "Quota exceeded for user-assigned identities in location %s."
                          % o.get("--location"))
            n = sum(k.startswith("identity:") for k in st) + 1
            i = {"clientId": "c1d2e3f4-0000-4000-8000-%012d" % n,
                 "id": rg_id(rg) + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/" + name,
                 "location": o.get("--location"), "name": name, "principalId": "9a8b7c6d-0000-4000-8000-%012d" % n,
                 "resourceGroup": rg, "tags": tags(o), "tenantId": TENANT,
                 "type": "Microsoft.ManagedIdentity/userAssignedIdentities"}
            st[key] = i
            save(st)
            return emit(o, i)
        if cmd[1] == "delete":
            st.pop(key, None)
            save(st)
            return

    if cmd[:2] == ("role", "assignment"):
        def match(a, who):
            return (a["principalId"] == who and a["roleDefinitionName"] == o.get("--role")
                    and a["scope"] == o.get("--scope"))
        roles = {k: v for k, v in st.items() if k.startswith("role:")}
        if cmd[2] == "list":
            return emit(o, [v for v in roles.values() if match(v, o.get("--assignee"))])
        if cmd[2] == "create":
            if not o.get("--scope", "").startswith("/subscriptions/"):
                arm_error("InvalidResourceNamespace", "The resource namespace in scope '%s' is invalid."
                          % o.get("--scope"))
            n = len(roles) + 1
            a = {"id": "%s/providers/Microsoft.Authorization/roleAssignments/5e1f0000-0000-4000-8000-%012d"
                 % (o["--scope"], n), "principalId": o["--assignee-object-id"],
                 "principalType": o.get("--assignee-principal-type", "User"),
                 "roleDefinitionName": o["--role"], "scope": o["--scope"],
                 "type": "Microsoft.Authorization/roleAssignments"}
            st["role:%d" % n] = a
            save(st)
            return emit(o, a)
        if cmd[2] == "delete":
            for k in [k for k, v in roles.items() if match(v, o.get("--assignee"))]:
                del st[k]
            save(st)
            return

    die(2, "fake az: %s is declared but not answered" % " ".join(cmd))


if __name__ == "__main__":
    main(sys.argv[1:])
