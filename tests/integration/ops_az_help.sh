#!/usr/bin/env bash
# ops_az_help: every az subcommand and flag that scripts/provision and
# scripts/teardown can run exists in the installed Azure CLI (Debian's azure-cli),
# and every value they pass to an argument with "Allowed values" is one of them.
# The commands come from the scripts' own --dry-run output (provision with
# --identity prints every look-up, create and key read; teardown of a manifest
# naming every kind prints every delete); `az SUB --help` works offline.
# shellcheck disable=SC2016 # bash -c '...' bodies take their values as $0 $1 ...
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

if ! command -v az >/dev/null 2>&1; then
  echo "SKIP: no az on PATH (Debian: apt-get install azure-cli; scripts/deps installs it)"
  exit 77
fi
export AZURE_CONFIG_DIR=$T/azure AZURE_CORE_COLLECT_TELEMETRY=0 AZURE_CORE_NO_COLOR=1 AZURE_CORE_ONLY_SHOW_ERRORS=1
if ! az version --output json >"$T/version" 2>"$T/version.err"; then
  echo "SKIP: az is on PATH but 'az version' fails: $(head -1 "$T/version.err")"
  exit 77
fi
echo "azure-cli $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["azure-cli"])' "$T/version")"

SRC=$TOP_SRCDIR/scripts
"$SRC/provision" --resource-group rg-x --location westeurope --namespace ehdelta-help-ns --storage-account ehdeltahelp \
  --identity ehdelta-id --output-dir "$T/out" --dry-run >"$T/provision.dry" 2>&1
check "provision --dry-run succeeds" [ $? -eq 0 ]
mkdir -p "$T/state"
scope=/subscriptions/S/resourceGroups/rg-x/providers/Microsoft.Storage/storageAccounts/ehdeltahelp
hubscope=/subscriptions/S/resourceGroups/rg-x/providers/Microsoft.EventHub/namespaces/ns/eventhubs/hub
cat >"$T/state/provisioned" <<EOF
existing group rg-x
created namespace rg-x ns
created eventhub rg-x ns2 hub
created consumer-group rg-x ns2 hub2 cg
created rule rg-x ns2 hub2 rule
created storage rg-x sa
created container rg-x sa2 raw
created identity rg-x id
created role 9a8b7c6d-0000-4000-8000-000000000001 $scope
created role 9a8b7c6d-0000-4000-8000-000000000001 $hubscope Azure Event Hubs Data Receiver
EOF
"$SRC/teardown" --state-dir "$T/state" --dry-run >"$T/teardown.dry" 2>&1
check "teardown --dry-run succeeds" [ $? -eq 0 ]
grep -h '^az ' "$T/provision.dry" "$T/teardown.dry" >"$T/commands"
check "the dry runs printed the commands ($(wc -l <"$T/commands") lines)" [ "$(wc -l <"$T/commands")" -ge 30 ]
for kind in "role assignment delete" "identity delete" "storage container-rm delete" "storage account delete" \
  "eventhubs eventhub authorization-rule delete" "eventhubs eventhub consumer-group delete" "eventhubs eventhub delete" \
  "eventhubs namespace delete"; do
  check "teardown's commands include az $kind" grep -q "^az $kind " "$T/commands"
done

# One line per problem; the python prints "ok ..." / "FAIL ..." lines that we count.
python3 - "$T/commands" >"$T/report" 2>&1 <<'EOF'
import collections, re, shlex, subprocess, sys

uses = collections.OrderedDict()  # subcommand -> {flag: set(values)}
for line in open(sys.argv[1]):
    words = shlex.split(line)
    if ">" in words:
        words = words[:words.index(">")]
    words = words[1:]
    i = 0
    while i < len(words) and not words[i].startswith("-"):
        i += 1
    sub = " ".join(words[:i])
    flags = uses.setdefault(sub, {})
    cur = None
    for w in words[i:]:
        if w.startswith("-"):
            cur = w
            flags.setdefault(cur, set())
        elif cur:
            flags[cur].add(w)

for sub, flags in uses.items():
    p = subprocess.run(["az"] + sub.split() + ["--help"], capture_output=True, text=True, timeout=120)
    text = p.stdout
    if p.returncode != 0 or not re.search(r"^Command\n\s+az %s :" % re.escape(sub), text, re.M):
        print("FAIL az %s: not a command of this az (exit %d): %s" % (sub, p.returncode, (p.stderr or text)[:200]))
        continue
    print("ok   az %s exists" % sub)
    # Argument lines sit at four spaces: "    --name -n  [Required] : text"; the
    # text may wrap onto deeper-indented lines, which belong to the same argument.
    args, cur = {}, None
    for l in text.splitlines():
        m = re.match(r"^    (-[^:\[]*?)\s*(\[[^\]]*\]\s*)*:\s?(.*)$", l)
        if m:
            names = m.group(1).split()
            cur = {"names": names, "text": m.group(3)}
            for n in names:
                args[n] = cur
        elif cur is not None and l.startswith("      "):
            cur["text"] += " " + l.strip()
        elif not l.strip() or not l.startswith(" "):
            cur = None
    for flag, values in flags.items():
        if flag not in args:
            print("FAIL az %s %s: no such argument" % (sub, flag))
            continue
        allowed = re.search(r"Allowed values: ([^.]*(?:\.\d[^.]*)*)\.", args[flag]["text"])
        if allowed and values:
            ok = {v.strip() for v in allowed.group(1).split(",")}
            wrong = sorted(v for v in values if v not in ok)
            if wrong:
                print("FAIL az %s %s %s: allowed values are %s" % (sub, flag, " ".join(wrong), ", ".join(sorted(ok))))
                continue
        print("ok   az %s %s%s" % (sub, flag, " (%s)" % ", ".join(sorted(values)) if allowed and values else ""))
EOF
check "the help checker ran" [ $? -eq 0 ]
cat "$T/report"
_passed=$((_passed + $(grep -c '^ok ' "$T/report")))
_failed=$((_failed + $(grep -c '^FAIL ' "$T/report")))
finish
