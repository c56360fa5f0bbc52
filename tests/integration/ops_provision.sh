#!/usr/bin/env bash
# ops_provision: scripts/provision and scripts/teardown against a recording fake
# `az` (tests/integration/ops_fake_az.py) placed first on PATH. Checks the exact
# commands and their order, idempotence of a second run, that secrets land only
# in the 0600 files, the error path of each failing step, and teardown.
# shellcheck disable=SC2016 # bash -c '...' bodies take their values as $0 $1 ...
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

PROVISION=$TOP_SRCDIR/scripts/provision
TEARDOWN=$TOP_SRCDIR/scripts/teardown
mkdir -p "$T/bin"
printf '#!/bin/sh\nexec python3 %q "$@"\n' "$TOP_SRCDIR/tests/integration/ops_fake_az.py" >"$T/bin/az"
chmod +x "$T/bin/az"
# A PATH with the usual tools but no az at all (for the "no az" case).
mkdir -p "$T/path-noaz"
for tool in bash env sh cat grep sed tr mktemp mkdir mv rm chmod cmp dirname basename realpath head pwd printf; do
  p=$(command -v "$tool") && ln -sf "$p" "$T/path-noaz/$tool"
done
export PATH="$T/bin:$PATH"

RG=rg-ehdelta-test NS=ehdelta-test-ns SA=ehdeltatestsa LOC=westeurope HUB=transactions-stream
SUBID=0b1f6471-1bf0-4dda-aec3-111122223333
SCOPE=/subscriptions/$SUBID/resourceGroups/$RG/providers/Microsoft.Storage/storageAccounts/$SA
HUBSCOPE=/subscriptions/$SUBID/resourceGroups/$RG/providers/Microsoft.EventHub/namespaces/$NS/eventhubs/$HUB
PID1=9a8b7c6d-0000-4000-8000-000000000001
args=(--resource-group "$RG" --location "$LOC" --namespace "$NS" --storage-account "$SA")

# fresh NAME: a new fake Azure (empty state) and output dir for one scenario.
fresh() {
  export FAKE_AZ_DIR=$T/$1/az
  OUT=$T/$1/out
  rm -rf "${T:?}/$1" && mkdir -p "$FAKE_AZ_DIR"
  : >"$FAKE_AZ_DIR/calls.log"
}
calls() { cat "$FAKE_AZ_DIR/calls.log"; }
same_calls() { # same_calls EXPECTED-FILE: the fake saw exactly these commands, in order
  if diff -u "$1" "$FAKE_AZ_DIR/calls.log" >"$T/diff"; then return 0; fi
  cat "$T/diff"
  return 1
}

# --- 1. a fresh subscription, with a managed identity -----------------------------
fresh first
"$PROVISION" "${args[@]}" --identity ehdelta-id --output-dir "$OUT" >"$T/first.out" 2>&1
check "provision succeeds on an empty subscription" [ $? -eq 0 ]
cat >"$T/expected1" <<EOF
az account show --query '[name, id]' --output tsv
az group exists --name $RG
az group create --name $RG --location $LOC --tags managed-by=ehdelta-provision --output none
az eventhubs namespace show --resource-group $RG --name $NS --query sku.name --output tsv
az eventhubs namespace exists --name $NS --query nameAvailable --output tsv
az eventhubs namespace create --resource-group $RG --name $NS --location $LOC --sku Standard --capacity 1 --enable-kafka true --enable-auto-inflate false --tags managed-by=ehdelta-provision --output none
az eventhubs eventhub show --resource-group $RG --namespace-name $NS --name $HUB --query '[partitionCount, id]' --output tsv
az eventhubs eventhub create --resource-group $RG --namespace-name $NS --name $HUB --partition-count 4 --message-retention 1 --query id --output tsv
az eventhubs eventhub consumer-group show --resource-group $RG --namespace-name $NS --eventhub-name $HUB --name ehdelta --query name --output tsv
az eventhubs eventhub consumer-group create --resource-group $RG --namespace-name $NS --eventhub-name $HUB --name ehdelta --output none
az eventhubs eventhub authorization-rule show --resource-group $RG --namespace-name $NS --eventhub-name $HUB --name ehdelta-send --query rights --output tsv
az eventhubs eventhub authorization-rule create --resource-group $RG --namespace-name $NS --eventhub-name $HUB --name ehdelta-send --rights Send --output none
az eventhubs eventhub authorization-rule show --resource-group $RG --namespace-name $NS --eventhub-name $HUB --name ehdelta-listen --query rights --output tsv
az eventhubs eventhub authorization-rule create --resource-group $RG --namespace-name $NS --eventhub-name $HUB --name ehdelta-listen --rights Listen --output none
az storage account show --resource-group $RG --name $SA --query '[id, isHnsEnabled]' --output tsv
az storage account check-name --name $SA --query nameAvailable --output tsv
az storage account create --resource-group $RG --name $SA --location $LOC --sku Standard_LRS --kind StorageV2 --hns true --min-tls-version TLS1_2 --allow-blob-public-access false --tags managed-by=ehdelta-provision --query id --output tsv
az storage container-rm show --resource-group $RG --storage-account $SA --name raw --query name --output tsv
az storage container-rm create --resource-group $RG --storage-account $SA --name raw --public-access off --output none
az storage container-rm show --resource-group $RG --storage-account $SA --name curated --query name --output tsv
az storage container-rm create --resource-group $RG --storage-account $SA --name curated --public-access off --output none
az identity show --resource-group $RG --name ehdelta-id --query '[principalId, clientId]' --output tsv
az identity create --resource-group $RG --name ehdelta-id --location $LOC --tags managed-by=ehdelta-provision --query '[principalId, clientId]' --output tsv
az role assignment list --assignee $PID1 --role 'Storage Blob Data Contributor' --scope $SCOPE --query '[].id' --output tsv
az role assignment create --assignee-object-id $PID1 --assignee-principal-type ServicePrincipal --role 'Storage Blob Data Contributor' --scope $SCOPE --output none
az role assignment list --assignee $PID1 --role 'Azure Event Hubs Data Receiver' --scope $HUBSCOPE --query '[].id' --output tsv
az role assignment create --assignee-object-id $PID1 --assignee-principal-type ServicePrincipal --role 'Azure Event Hubs Data Receiver' --scope $HUBSCOPE --output none
az eventhubs eventhub authorization-rule keys list --resource-group $RG --namespace-name $NS --eventhub-name $HUB --name ehdelta-listen --query primaryConnectionString --output tsv
az eventhubs eventhub authorization-rule keys list --resource-group $RG --namespace-name $NS --eventhub-name $HUB --name ehdelta-send --query primaryConnectionString --output tsv
az storage account keys list --resource-group $RG --account-name $SA --query '[0].value' --output tsv
EOF
check "first run: exactly the expected az commands, in order" same_calls "$T/expected1"
cat >"$T/manifest1" <<EOF
# scripts/provision: resources of this deployment, in creation order.
# created = made by provision (scripts/teardown removes it); existing = found.
created group $RG
created namespace $RG $NS
created eventhub $RG $NS $HUB
created consumer-group $RG $NS $HUB ehdelta
created rule $RG $NS $HUB ehdelta-send
created rule $RG $NS $HUB ehdelta-listen
created storage $RG $SA
created container $RG $SA raw
created container $RG $SA curated
created identity $RG ehdelta-id
created role $PID1 $SCOPE Storage Blob Data Contributor
created role $PID1 $HUBSCOPE Azure Event Hubs Data Receiver
EOF
check "the manifest lists every resource as created, in order" cmp -s "$T/manifest1" "$OUT/provisioned"
check "secrets directory is 0700" [ "$(stat -c %a "$OUT/secrets")" = 700 ]
for f in eventhub-connection-string eventhub-send-connection-string storage-account-key; do
  check "secrets/$f is a 0600 file" [ "$(stat -c %a "$OUT/secrets/$f")" = 600 ]
done
check "the agent's connection string is the Listen rule's, for the hub" \
  grep -Eq "^Endpoint=sb://$NS\.servicebus\.windows\.net/;SharedAccessKeyName=ehdelta-listen;SharedAccessKey=FAKESECRET[0-9a-f]{32};EntityPath=$HUB\$" \
  "$OUT/secrets/eventhub-connection-string"
check "the producers' connection string is the Send rule's" \
  grep -q "SharedAccessKeyName=ehdelta-send;" "$OUT/secrets/eventhub-send-connection-string"
check "the storage key file holds just the key (no newline)" \
  grep -Eqx 'FAKESECRET[0-9a-f]{32}' "$OUT/secrets/storage-account-key"
check "the storage key file ends without a newline" [ "$(tail -c1 "$OUT/secrets/storage-account-key" | od -An -c | tr -d ' ')" != '\n' ]
conf=$OUT/ehdelta.conf
# section NAME FILE: the lines of [NAME] in FILE, comments and blank lines left out.
section() { sed -n "/^\[$1\]\$/,/^\[/p" "$2" | grep -v -e '^\[' -e '^#' -e '^$'; }
same_section() { # same_section NAME FILE EXPECTED-FILE
  section "$1" "$2" | diff -u "$3" - >"$T/diff" && return 0
  cat "$T/diff"
  return 1
}
cat >"$T/source-mi" <<EOF
namespace = $NS.servicebus.windows.net
hub = $HUB
consumer_group = ehdelta
auth = managed-identity
client_id = c1d2e3f4-0000-4000-8000-000000000001
starting_position = earliest
EOF
check "ehdelta.conf [source]: the identity, namespace and hub, no connection string file" \
  same_section source "$conf" "$T/source-mi"
check "ehdelta.conf keeps the Listen connection string as a commented fallback" \
  grep -qx "# auth = sas with connection_string_file = $OUT/secrets/eventhub-connection-string" "$conf"
printf '%s\n' "account = $SA" "auth = managed-identity" "client_id = c1d2e3f4-0000-4000-8000-000000000001" >"$T/storage-mi"
check "ehdelta.conf [storage]: the same identity, no key" same_section storage "$conf" "$T/storage-mi"
"$EHDELTA" run --check --config "$conf" >"$T/check-mi.out" 2>"$T/check-mi.err"
rc=$?
check "ehdelta run --check accepts the identity's configuration (exit $rc)" [ $rc -eq 0 ]
check "ehdelta run --check reads [source] with the identity and the namespace" \
  bash -c '[ "$(sed -n "/^\[source\]/,/^\[/p" "$1" | grep -E "^(namespace|auth|client_id) =" | tr "\n" " ")" = "namespace = $2.servicebus.windows.net auth = managed-identity client_id = c1d2e3f4-0000-4000-8000-000000000001 " ]' \
  _ "$T/check-mi.out" "$NS"
check "ehdelta.conf: the raw sink on the raw container of the account" \
  grep -qx "path = abfss://raw@$SA.dfs.core.windows.net/transactions-streaming" "$conf"
check "ehdelta.conf has the tutorial's sections" \
  bash -c '[ "$(grep -E "^\[" "$1" | tr "\n" " ")" = "[source] [schema] [storage] [sink raw] [sink by_category] [dead_letter] " ]' _ "$conf"

# Secrets only in the secret files: not in output, argv, the conf or the manifest.
secret_values() { cat "$OUT/secrets/storage-account-key"; echo; sed -E 's/.*SharedAccessKey=([^;]*);.*/\1/' "$OUT/secrets/"eventhub-*; }
no_secret_in() { # no_secret_in FILE...: none of the secret values appears in them
  local s
  while IFS= read -r s; do
    [[ -n $s ]] || continue
    if grep -qF -- "$s" "$@"; then echo "secret found in: $(grep -lF -- "$s" "$@")"; return 1; fi
  done < <(secret_values)
}
check "no secret in provision's output" no_secret_in "$T/first.out"
check "no secret on any az command line" no_secret_in "$FAKE_AZ_DIR/calls.log"
check "no secret in ehdelta.conf or the manifest" no_secret_in "$conf" "$OUT/provisioned"
check "outside secrets/, no file of the output dir holds a secret" \
  bash -c '! grep -rl FAKESECRET "$1" | grep -v "^$1/secrets/"' _ "$OUT"

# --- 2. idempotence: a second run creates nothing and changes no file ---------------
cp -a "$OUT" "$T/first.copy"
: >"$FAKE_AZ_DIR/calls.log"
"$PROVISION" "${args[@]}" --identity ehdelta-id --output-dir "$OUT" >"$T/second.out" 2>&1
check "second run succeeds" [ $? -eq 0 ]
grep -v -E ' create |namespace exists|check-name' "$T/expected1" >"$T/expected2"
check "second run: only the look-ups and key reads, in the same order" same_calls "$T/expected2"
check "second run changes no file (conf, manifest, secrets, modes)" \
  bash -c 'diff -r "$1" "$2" && [ "$(cd "$1" && stat -c "%n %a" * secrets/*)" = "$(cd "$2" && stat -c "%n %a" * secrets/*)" ]' _ "$T/first.copy" "$OUT"
check "second run says the configuration is up to date" grep -q 'is up to date' "$T/second.out"
check "no secret in the second run's output" no_secret_in "$T/second.out"

# An operator's edit of ehdelta.conf survives a rerun.
echo "# operator's note" >>"$conf"
"$PROVISION" "${args[@]}" --identity ehdelta-id --output-dir "$OUT" >"$T/third.out" 2>&1
check "an edited ehdelta.conf is kept; the new one goes to ehdelta.conf.new" \
  bash -c 'grep -q "operator.s note" "$1/ehdelta.conf" && cmp -s "$1/ehdelta.conf.new" "$2/ehdelta.conf"' _ "$OUT" "$T/first.copy"

# A manifest from before the Event Hubs role: its role line names no role. A rerun
# knows it as the storage role it created, not as a role it found.
sed -i "s|^created role $PID1 $SCOPE Storage Blob Data Contributor\$|created role $PID1 $SCOPE|" "$OUT/provisioned"
check "the older manifest's role line names no role" grep -qx "created role $PID1 $SCOPE" "$OUT/provisioned"
"$PROVISION" "${args[@]}" --identity ehdelta-id --output-dir "$OUT" >"$T/old.out" 2>&1
check "a rerun over an older manifest: the storage role is still created by provision, listed once" \
  bash -c '[ $0 -eq 0 ] && cmp -s "$1" "$2"' $? "$T/manifest1" "$OUT/provisioned"

# --- 3. teardown ------------------------------------------------------------------
: >"$FAKE_AZ_DIR/calls.log"
echo no | "$TEARDOWN" --state-dir "$OUT" >"$T/td-no.out" 2>&1
check "teardown without confirmation: exit 1, no az call" bash -c '[ $0 -eq 1 ] && [ ! -s "$1" ]' $? "$FAKE_AZ_DIR/calls.log"
check "teardown lists what it would remove" grep -q "^  group $RG\$" "$T/td-no.out"
echo yes | "$TEARDOWN" --state-dir "$OUT" >"$T/td.out" 2>&1
check "teardown after 'yes' succeeds" [ $? -eq 0 ]
cat >"$T/expected-td" <<EOF
az role assignment delete --assignee $PID1 --role 'Azure Event Hubs Data Receiver' --scope $HUBSCOPE
az role assignment delete --assignee $PID1 --role 'Storage Blob Data Contributor' --scope $SCOPE
az group delete --name $RG --yes
EOF
check "teardown: the two role assignments, then the resource group (it holds the rest)" same_calls "$T/expected-td"
check "teardown leaves Azure empty" bash -c '[ "$(cat "$1")" = "{}" ]' _ "$FAKE_AZ_DIR/state.json"
check "teardown removes the secrets and the manifest" bash -c '[ ! -e "$1/secrets" ] && [ ! -e "$1/provisioned" ]' _ "$OUT"
"$TEARDOWN" --state-dir "$OUT" --yes >"$T/td2.out" 2>&1
check "a second teardown finds nothing to do (exit 2, says so)" \
  bash -c '[ $0 -eq 2 ] && grep -q "nothing provisioned" "$1"' $? "$T/td2.out"

# A manifest written before provision granted two roles names no role: that was
# the storage one.
fresh oldmanifest
mkdir -p "$OUT"
printf '%s\n' "created group $RG" "created identity $RG ehdelta-id" "created role $PID1 $SCOPE" >"$OUT/provisioned"
"$TEARDOWN" --state-dir "$OUT" --yes >"$T/td-old.out" 2>&1
check "teardown of an older manifest: exit 0" [ $? -eq 0 ]
printf '%s\n' "az role assignment delete --assignee $PID1 --role 'Storage Blob Data Contributor' --scope $SCOPE" \
  "az group delete --name $RG --yes" >"$T/expected-td-old"
check "teardown of an older manifest: its role is the storage one" same_calls "$T/expected-td-old"

# --- 4. a resource group that existed before: teardown leaves it ------------------
fresh existing
printf '{"group:%s": {"id": "/subscriptions/%s/resourceGroups/%s", "location": "%s", "name": "%s"}}\n' \
  "$RG" "$SUBID" "$RG" "$LOC" "$RG" >"$FAKE_AZ_DIR/state.json"
"$PROVISION" "${args[@]}" --output-dir "$OUT" >"$T/ex.out" 2>&1
check "provision into an existing resource group" [ $? -eq 0 ]
check "the group is recorded as existing" grep -qx "existing group $RG" "$OUT/provisioned"
printf '%s\n' "namespace = $NS.servicebus.windows.net" "hub = $HUB" "consumer_group = ehdelta" \
  "connection_string_file = $OUT/secrets/eventhub-connection-string" "starting_position = earliest" >"$T/source-sas"
check "without --identity: [source] reads the Listen rule's connection string file, no auth line" \
  same_section source "$OUT/ehdelta.conf" "$T/source-sas"
check "without --identity: no role assignment" bash -c '! grep -q "^az role" "$1"' _ "$FAKE_AZ_DIR/calls.log"
check "without --identity: shared key auth from the key file" \
  bash -c 'grep -qx "auth = shared-key" "$1/ehdelta.conf" && grep -qx "account_key_file = $1/secrets/storage-account-key" "$1/ehdelta.conf"' _ "$OUT"
check "no group create when it exists" bash -c '! grep -q "^az group create" "$1"' _ "$FAKE_AZ_DIR/calls.log"
: >"$FAKE_AZ_DIR/calls.log"
"$TEARDOWN" --state-dir "$OUT" --yes >"$T/td-ex.out" 2>&1
check "teardown (--yes) succeeds" [ $? -eq 0 ]
cat >"$T/expected-td-ex" <<EOF
az storage account delete --resource-group $RG --name $SA --yes
az eventhubs namespace delete --resource-group $RG --name $NS
EOF
check "teardown removes the account and the namespace (children go with them), not the group" \
  same_calls "$T/expected-td-ex"
check "the existing group is still there" grep -q "\"group:$RG\"" "$FAKE_AZ_DIR/state.json"
check "teardown says it leaves the group" grep -q "^  group $RG\$" "$T/td-ex.out"

# --- 5. failing steps: each stops there, says what to do, lists what it made -------
fresh noaz
PATH=$T/path-noaz "$PROVISION" "${args[@]}" --output-dir "$OUT" >"$T/path-noaz.out" 2>&1
rc=$?
check "no az on PATH: exit 1" [ $rc -eq 1 ]
check "no az on PATH: says how to install it" grep -q 'apt-get install azure-cli' "$T/path-noaz.out"
check "no az on PATH: nothing written" [ ! -e "$OUT" ]

fresh loggedout
FAKE_AZ_LOGGED_OUT=1 "$PROVISION" "${args[@]}" --output-dir "$OUT" >"$T/lo.out" 2>&1
rc=$?
check "not logged in: exit 1" [ $rc -eq 1 ]
check "not logged in: says to run az login" grep -q "not logged in to Azure: run 'az login'" "$T/lo.out"
check "not logged in: stops at the first step" bash -c '[ "$(wc -l <"$1")" -eq 1 ] && grep -q "failed at step: check the Azure CLI login" "$2"' _ "$FAKE_AZ_DIR/calls.log" "$T/lo.out"
check "not logged in: nothing created" grep -q 'nothing was created by this run' "$T/lo.out"

fresh nstaken
FAKE_AZ_TAKEN=$NS "$PROVISION" "${args[@]}" --output-dir "$OUT" >"$T/nst.out" 2>&1
rc=$?
check "namespace name taken: exit 1" [ $rc -eq 1 ]
check "namespace name taken: says to choose another --namespace" grep -q "namespace name '$NS' is taken.*--namespace" "$T/nst.out"
check "namespace name taken: the last command is the availability check" \
  bash -c '[ "$(tail -1 "$1")" = "az eventhubs namespace exists --name $2 --query nameAvailable --output tsv" ]' _ "$FAKE_AZ_DIR/calls.log" "$NS"
check "namespace name taken: lists the group it created" bash -c 'grep -A1 "created by this run" "$1" | grep -q "group $2"' _ "$T/nst.out" "$RG"
check "namespace name taken: the manifest has the group" grep -qx "created group $RG" "$OUT/provisioned"
check "namespace name taken: no secret file written" [ ! -e "$OUT/secrets" ]
"$TEARDOWN" --state-dir "$OUT" --yes >/dev/null 2>&1
check "teardown after the failure removes the group" bash -c '[ "$(cat "$1")" = "{}" ]' _ "$FAKE_AZ_DIR/state.json"

fresh sataken
FAKE_AZ_TAKEN=$SA "$PROVISION" "${args[@]}" --output-dir "$OUT" >"$T/sat.out" 2>&1
rc=$?
check "storage name taken: exit 1, says to choose another --storage-account" \
  bash -c '[ $0 -eq 1 ] && grep -q "storage account name .$1. is taken.*--storage-account" "$2"' $rc "$SA" "$T/sat.out"
check "storage name taken: lists the namespace, hub, consumer group and rules it made" \
  bash -c 'for r in "namespace $1 $2" "eventhub $1 $2 $3" "consumer-group $1 $2 $3 ehdelta" "rule $1 $2 $3 ehdelta-send" "rule $1 $2 $3 ehdelta-listen"; do grep -qx "  $r" "$4" || exit 1; done' _ "$RG" "$NS" "$HUB" "$T/sat.out"
check "storage name taken: no storage create was sent" bash -c '! grep -q "storage account create" "$1"' _ "$FAKE_AZ_DIR/calls.log"

fresh nsquota
FAKE_AZ_NO_QUOTA=namespace "$PROVISION" "${args[@]}" --output-dir "$OUT" >"$T/nsq.out" 2>&1
rc=$?
check "no quota for the namespace: exit 1, advises another region or more quota" \
  bash -c '[ $0 -eq 1 ] && grep -q "region .westeurope. has no quota.*--location" "$1"' $rc "$T/nsq.out"
check "no quota: az's own message is shown" grep -q 'az: ERROR: (QuotaExceeded)' "$T/nsq.out"
check "no quota: stopped at the namespace create" \
  bash -c 'tail -1 "$1" | grep -q "^az eventhubs namespace create "' _ "$FAKE_AZ_DIR/calls.log"
: >"$FAKE_AZ_DIR/calls.log"
"$PROVISION" "${args[@]}" --output-dir "$OUT" >"$T/nsq2.out" 2>&1
check "after the quota is fixed, a rerun completes and keeps the group as created" \
  bash -c '[ $0 -eq 0 ] && grep -qx "created group $1" "$2/provisioned" && ! grep -q "^az group create" "$3"' $? "$RG" "$OUT" "$FAKE_AZ_DIR/calls.log"

fresh saquota
FAKE_AZ_NO_QUOTA=storage "$PROVISION" "${args[@]}" --output-dir "$OUT" >"$T/saq.out" 2>&1
rc=$?
check "no quota for the storage account: exit 1, names the storage account" \
  bash -c '[ $0 -eq 1 ] && grep -q "failed at step: storage account" "$1" && grep -q "no quota" "$1"' $rc "$T/saq.out"

fresh hubquota
FAKE_AZ_NO_QUOTA=eventhub "$PROVISION" "${args[@]}" --output-dir "$OUT" >"$T/hq.out" 2>&1
check "no quota for the hub: exit 1 at the event hub step" \
  bash -c '[ $0 -eq 1 ] && grep -q "failed at step: event hub" "$1" && grep -q "no quota" "$1"' $? "$T/hq.out"

fresh idquota
FAKE_AZ_NO_QUOTA=identity "$PROVISION" "${args[@]}" --identity ehdelta-id --output-dir "$OUT" >"$T/iq.out" 2>&1
check "no quota for the identity: exit 1 at that step, lists the storage account it made" \
  bash -c '[ $0 -eq 1 ] && grep -q "failed at step: managed identity" "$1" && grep -qx "  storage $2 $3" "$1"' $? "$T/iq.out" "$RG" "$SA"

# --- 6. dry run and bad input: no az call, nothing written -------------------------
fresh dry
"$PROVISION" "${args[@]}" --identity ehdelta-id --output-dir "$OUT" --dry-run >"$T/dry.out" 2>&1
check "dry run succeeds" [ $? -eq 0 ]
check "dry run runs no az command and writes nothing" bash -c '[ ! -s "$1" ] && [ ! -e "$2" ]' _ "$FAKE_AZ_DIR/calls.log" "$OUT"
check "dry run prints every create of a first run" \
  bash -c 'grep " create " "$1" | sed "s/--scope [^ ]*/--scope S/; s/--assignee-object-id [^ ]*/--assignee-object-id P/" >"$1.c"; grep "^az .* create " "$2" | sed "s/--scope [^ ]*/--scope S/; s/--assignee-object-id [^ ]*/--assignee-object-id P/" | diff - "$1.c"' _ "$T/expected1" "$T/dry.out"
check "dry run shows the key reads going to files" grep -q "keys list .* > $OUT/secrets/storage-account-key" "$T/dry.out"

fresh bad
"$PROVISION" --resource-group "$RG" --location "$LOC" --namespace "$NS" --storage-account Bad_Name >"$T/bad.out" 2>&1
check "an invalid storage account name: exit 2 before any az call" \
  bash -c '[ $0 -eq 2 ] && [ ! -s "$1" ] && grep -q "3-24 lowercase letters and digits" "$2"' $? "$FAKE_AZ_DIR/calls.log" "$T/bad.out"
"$PROVISION" --location "$LOC" --namespace "$NS" --storage-account "$SA" >"$T/bad2.out" 2>&1
check "a missing --resource-group: exit 2" bash -c '[ $0 -eq 2 ] && grep -q "resource-group is required" "$1"' $? "$T/bad2.out"

# --- 7. tier limits: what Azure would refuse after the namespace exists is refused first
# tier NAME EXPECTED-MESSAGE ARGS...: exit 2, that message, no az call at all.
tier() {
  local what=$1 msg=$2 rc
  shift 2
  fresh "tier-$what"
  "$PROVISION" "${args[@]}" --output-dir "$OUT" "$@" >"$T/tier.out" 2>&1
  rc=$?
  check "$what: exit 2 before any az call, says '$msg'" \
    bash -c '[ $0 -eq 2 ] && [ ! -s "$1" ] && [ ! -e "$3" ] && grep -qF -- "$2" "$4"' $rc "$FAKE_AZ_DIR/calls.log" "$msg" "$OUT" "$T/tier.out"
}
tier "Basic with a consumer group of its own" 'the Basic tier has only the $Default consumer group' --sku Basic
tier "Basic with 2 days of retention" 'the Basic tier keeps events at most 1 day(s)' --sku Basic --consumer-group '$Default' --retention-days 2
tier "Standard with 8 days of retention" 'the Standard tier keeps events at most 7 day(s)' --retention-days 8
tier "Standard with 33 partitions" 'the Standard tier allows at most 32 partitions per hub' --partitions 33
tier "Premium with 3 processing units" 'Premium takes 1, 2, 4, 8 or 16 processing units' --sku Premium --capacity 3
tier "Standard with 41 throughput units" 'the Standard tier takes 1-40 throughput units' --capacity 41
fresh basic-ok
"$PROVISION" "${args[@]}" --output-dir "$OUT" --sku Basic --consumer-group '$Default' >"$T/basic.out" 2>&1
rc=$?
check "Basic with \$Default and 1 day: provisioned (exit $rc)" [ $rc -eq 0 ]
check "Basic: the namespace is created without Kafka" \
  grep -q -- '^az eventhubs namespace create .* --sku Basic .* --enable-kafka false ' "$FAKE_AZ_DIR/calls.log"
check "Basic: no consumer group is created (\$Default exists)" bash -c '! grep -q "consumer-group create" "$1"' _ "$FAKE_AZ_DIR/calls.log"
check "Basic: the configuration reads with \$Default" grep -qx 'consumer_group = $Default' "$OUT/ehdelta.conf"

finish
