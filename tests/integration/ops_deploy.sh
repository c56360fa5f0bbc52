#!/usr/bin/env bash
# ops_deploy: ehdelta-deploy(7) followed step by step, from the installed files
# (make install DESTDIR=...), against the fake az (ops_fake_az.py) and ehemu on
# loopback: install; ehdelta-provision; ehdelta-run-agent --check; a
# foreground run of the provisioned pipeline, pointed at ehemu and local
# tables, landing the events; --service staged under the root; managed
# identity's drop-in; ehdelta-teardown; make uninstall.
# shellcheck disable=SC2016 # bash -c '...' bodies take their values as $0 $1 ...
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
[[ -f $TOP_BUILDDIR/Makefile ]] || { echo "SKIP: no configured build tree at $TOP_BUILDDIR"; exit 77; }
[[ -x $EHEMU ]] || { echo "SKIP ehemu not built"; exit 77; }
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES
var() { make -s -C "$TOP_BUILDDIR" -f Makefile -f - print-var <<<"print-var: ; @echo \$($1)"; }
bindir=$(var bindir) unitdir=$(var systemdsystemunitdir) sysconfdir=$(var sysconfdir) mandir=$(var mandir)

# 1. Install.
D=$T/root
make -s -C "$TOP_BUILDDIR" install DESTDIR="$D" >"$T/install.log" 2>&1
check "1. make install" [ $? -eq 0 ]
for s in ehdelta-provision ehdelta-run-agent ehdelta-teardown; do
  check "1. $s is installed, executable" [ -x "$D$bindir/$s" ]
done
check "1. the guide is installed as ehdelta-deploy(7)" [ -f "$D$mandir/man7/ehdelta-deploy.7" ]
mkdir -p "$T/bin"
printf '#!/bin/sh\nexec python3 %q "$@"\n' "$TOP_SRCDIR/tests/integration/ops_fake_az.py" >"$T/bin/az"
chmod +x "$T/bin/az"
export FAKE_AZ_DIR=$T/az PATH=$D$bindir:$T/bin:$PATH
mkdir -p "$FAKE_AZ_DIR" && : >"$FAKE_AZ_DIR/calls.log"
check "1. the installed scripts come first on PATH" [ "$(command -v ehdelta-provision)" = "$D$bindir/ehdelta-provision" ]

# 2. Provision.
cd "$T" || exit 1
ehdelta-provision --resource-group rg-deploy --location westeurope --namespace contoso-tx \
  --storage-account contosotx >"$T/prov.log" 2>&1
rc=$?
cat "$T/prov.log"
conf=$T/ehdelta-contoso-tx/ehdelta.conf
check "2. ehdelta-provision (fake az): exit 0, wrote ehdelta-contoso-tx/ehdelta.conf" bash -c '[ $0 -eq 0 ] && [ -f "$1" ]' $rc "$conf"
check "2. it names the installed next step" grep -q "Run the agent with: ehdelta-run-agent --config" "$T/prov.log"
ehdelta-provision --resource-group rg-deploy --location westeurope --namespace contoso-tx \
  --storage-account contosotx --sku Basic >"$T/basic.log" 2>&1
check "2. a tier limit is refused before any az call" \
  bash -c '[ $0 -eq 2 ] && grep -q "Basic tier has only the" "$1"' $? "$T/basic.log"

# 3. Check, then run in the foreground (pointed at ehemu and local tables).
ehdelta-run-agent --check --config "$conf" >"$T/check.log" 2>&1
rc=$?
cat "$T/check.log"
check "3. ehdelta-run-agent --check: exit 0, through the installed ehdelta's own check" \
  bash -c '[ $0 -eq 0 ] && grep -qx "ehdelta-run-agent: $1: ehdelta run --check: ok" "$2"' $rc "$conf" "$T/check.log"
start_ehemu transactions-stream 2 --consumer-group ehdelta
check "3. ehemu is ready" [ -n "$EMU_PORT" ]
mkdir -p "$T/local/secrets" && chmod 700 "$T/local/secrets"
install -m 600 "$T/cs" "$T/local/secrets/eventhub-connection-string"
sed -e "s|^connection_string_file = .*|connection_string_file = $T/local/secrets/eventhub-connection-string|" \
  -e "s|abfss://[a-z]*@contosotx.dfs.core.windows.net/|$T/lake/|" -e 's/^trigger = .*/trigger = available-now/' \
  -e '/^\[storage\]/,/^$/d' "$conf" >"$T/local/ehdelta.conf"
ehdelta send --connection-string-file "$T/cs" --generate 40 --seed 9 --no-progress >/dev/null 2>&1
ehdelta-run-agent --config "$T/local/ehdelta.conf" >"$T/run.out" 2>"$T/run.err"
rc=$?
tail -3 "$T/run.err"
check "3. ehdelta-run-agent in the foreground: exit 0 (available-now)" [ $rc -eq 0 ]
if [[ -x $VENV/bin/python ]]; then
  n=$("$VENV/bin/python" -c "from deltalake import DeltaTable; print(len(DeltaTable('$T/lake/transactions-streaming').to_pyarrow_table()))" 2>"$T/py.err")
  # stdout alone: a warning on stderr (the sanitizer build's environment) is not the count
  check "3. the raw table holds the 40 events (got $n; $(tail -1 "$T/py.err"))" [ "$n" = 40 ]
else
  check "3. the raw table was committed" [ -f "$T/lake/transactions-streaming/_delta_log/00000000000000000000.json" ]
fi

# 4. Run as a service (staged under the root: no systemctl here).
unit=$unitdir/ehdelta.service
ehdelta-run-agent --service --root "$D" --unit-file "$D$unit" --config "$conf" >"$T/svc.log" 2>&1
rc=$?
cat "$T/svc.log"
check "4. --service --root: exit 0, configuration and credentials staged" \
  bash -c '[ $0 -eq 0 ] && [ -f "$1/ehdelta/ehdelta.conf" ] && [ "$(stat -c %a "$1/ehdelta/credentials/storage-account-key")" = 600 ]' $rc "$D$sysconfdir"
check "4. it prints the systemctl commands" grep -q "systemctl enable ehdelta.service" "$T/svc.log"
check "4. the unit is Type=notify and does not restart on 2 3 4" \
  bash -c 'grep -qx Type=notify "$1" && grep -qx "RestartPreventExitStatus=2 3 4" "$1"' _ "$D$unit"

# 5. Managed identity: a drop-in instead of a key.
ehdelta-provision --resource-group rg-deploy --location westeurope --namespace contoso-tx \
  --storage-account contosotx --identity ehdelta-agent --output-dir "$T/mi" >"$T/mi.log" 2>&1
check "5. provision --identity: exit 0, auth = managed-identity" \
  bash -c '[ $0 -eq 0 ] && grep -qx "auth = managed-identity" "$1"' $? "$T/mi/ehdelta.conf"
rm -f "$D$sysconfdir/ehdelta/credentials/storage-account-key"
ehdelta-run-agent --service --root "$D" --unit-file "$D$unit" --config "$T/mi/ehdelta.conf" >"$T/svc-mi.log" 2>&1
dropin=$D/etc/systemd/system/ehdelta.service.d/50-ehdelta-credentials.conf
rc=$?
cat "$T/svc-mi.log"
printf '%s\n' "[Service]" "LoadCredential=" "UnsetEnvironment=AZURE_STORAGE_KEY_FILE" >"$T/dropin-mi"
check "5. --service writes the drop-in the guide shows: no credential at all" \
  bash -c '[ $0 -eq 0 ] && grep -v "^#" "$1" | diff -u "$2" - && [ ! -e "$3" ]' \
  $rc "$dropin" "$T/dropin-mi" "$D$sysconfdir/ehdelta/credentials/storage-account-key"
check "5. the agent's own check accepted the identity's configuration" grep -q ': ehdelta run --check: ok$' "$T/svc-mi.log"
check "5. the staged configuration names no secret file" \
  bash -c '! grep -E "^[a-z_]+_file *=" "$1"' _ "$D$sysconfdir/ehdelta/ehdelta.conf"
check "5. provision granted both data roles to the identity" \
  bash -c 'grep -q "^az role assignment create .*Storage Blob Data Contributor" "$1" && grep -q "^az role assignment create .*Azure Event Hubs Data Receiver.*/eventhubs/transactions-stream " "$1"' \
  _ "$FAKE_AZ_DIR/calls.log"

# 8. Tear down.
ehdelta-teardown --state-dir "$T/ehdelta-contoso-tx" --yes >"$T/down.log" 2>&1
rc=$?
tail -3 "$T/down.log"
check "8. ehdelta-teardown --yes: exit 0, deletes what provision created" \
  bash -c '[ $0 -eq 0 ] && grep -q "^az group delete .*rg-deploy" "$1"' $rc "$FAKE_AZ_DIR/calls.log"
rm -rf "$D$sysconfdir/ehdelta/credentials" "$D$sysconfdir/ehdelta/ehdelta.conf"* "$D/etc/systemd"
make -s -C "$TOP_BUILDDIR" uninstall DESTDIR="$D" >"$T/uninstall.log" 2>&1
left=$(find "$D" ! -type d)
check "8. make uninstall leaves no file${left:+ (left: $left)}" [ -z "$left" ]
finish
