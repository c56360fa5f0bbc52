#!/usr/bin/env bash
# ops_instances: several agents on one host (issue 18). The template unit
# ehdelta@.service, as built, passes `systemd-analyze verify` silently as an
# instance (ehdelta@raw.service, its ExecStart binary the one built here) and
# rates OK in `systemd-analyze security`; it runs NAME.conf with the owner id
# HOST-NAME. scripts/run-agent --service --instance raw --instances 2 --root
# stages raw-1.conf and raw-2.conf, each pointing at its own instance's
# credential directory, no drop-in, and prints the systemctl commands for both
# instances; --instance raw alone stages raw.conf. Refused: several agents
# without a checkpoint_store, with an owner_id, --service --instances without
# --instance, a bad instance name. (The foreground --instances mode is run for
# real against ehemu and Azurite in tests/interop/test_agents_scale.py.)
# shellcheck disable=SC2016 # bash -c '...' bodies take their values as $0 $1 ...
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

built=$TOP_BUILDDIR/dist/ehdelta@.service
[[ -f $built ]] || make -s -C "$TOP_BUILDDIR" dist/ehdelta@.service >/dev/null
check "the template unit is built" [ -f "$built" ]
check "it has no @...@ left" bash -c '! grep -n "@[a-z]*@" "$1"' _ "$built"
bindir=$(sed -n 's|^ExecStart=\(.*\)/ehdelta run .*|\1|p' "$built")
sysconfdir=$(sed -n 's|^ExecStart=.* --config \(.*\)/ehdelta/%i\.conf .*|\1|p' "$built")
check "it runs NAME.conf with the owner id HOST-NAME" \
  grep -qx "ExecStart=$bindir/ehdelta run --config $sysconfdir/ehdelta/%i.conf --owner-id %H-%i" "$built"
for k in DynamicUser=yes User=ehdelta StateDirectory=ehdelta Type=notify "RestartPreventExitStatus=2 3 4" \
  KillSignal=SIGTERM "LoadCredential=storage-account-key:$sysconfdir/ehdelta/credentials/storage-account-key"; do
  check "the template has $k (as ehdelta.service)" grep -qxF "$k" "$built"
done

if command -v systemd-analyze >/dev/null 2>&1; then
  # an instance of the unit as built, its binary the one in this build tree (the
  # installed path need not exist here; ops_install verifies the installed unit)
  mkdir -p "$T/units"
  sed "s|^ExecStart=$bindir/ehdelta |ExecStart=$EHDELTA |" "$built" >"$T/units/ehdelta@raw.service"
  systemd-analyze verify --man=no "$T/units/ehdelta@raw.service" >"$T/verify.log" 2>&1
  rc=$?
  cat "$T/verify.log"
  check "systemd-analyze verify ehdelta@raw.service: exit 0, no warning" \
    bash -c '[ $0 -eq 0 ] && [ ! -s "$1" ]' $rc "$T/verify.log"
  # the check can fail: a key systemd does not know is reported
  sed 's/^WatchdogSec=.*/&\nNoSuchKey=1/' "$T/units/ehdelta@raw.service" >"$T/units/ehdelta@bad.service"
  systemd-analyze verify --man=no "$T/units/ehdelta@bad.service" >"$T/verify-bad.log" 2>&1
  check "systemd-analyze verify reports a bad key in a copy" grep -q "NoSuchKey" "$T/verify-bad.log"
  if systemd-analyze security --offline=yes "$T/units/ehdelta@raw.service" >"$T/security.log" 2>&1; then
    level=$(grep -o 'Overall exposure level for ehdelta@raw.service: [0-9.]* [A-Z]*' "$T/security.log")
    echo "$level"
    check "systemd-analyze security rates the instance OK (exposure < 2)" \
      awk -v l="$level" 'BEGIN { split(l, a, ": "); split(a[2], b, " "); exit !(b[1] < 2.0) }'
  fi
else
  echo "systemd-analyze not found: the verify checks are skipped"
fi

# --- run-agent --service --instance ... --root: what it stages
mkdir -p "$T/p/secrets" && chmod 700 "$T/p/secrets"
(umask 077 && printf 'Endpoint=sb://x.servicebus.windows.net/;SharedAccessKeyName=l;SharedAccessKey=INSTSECRET1;EntityPath=h' \
  >"$T/p/secrets/eventhub-connection-string" && printf 'INSTSECRET2' >"$T/p/secrets/storage-account-key")
cat >"$T/p/shared.conf" <<CONF
[source]
connection_string_file = $T/p/secrets/eventhub-connection-string
hub = h
checkpoint_store = https://acct.blob.core.windows.net/checkpoints
[storage]
account = acct
auth = shared-key
account_key_file = $T/p/secrets/storage-account-key
[schema]
columns = id STRING
[sink raw]
path = abfss://lake@acct.dfs.core.windows.net/raw
CONF
D=$T/root
"$TOP_SRCDIR/scripts/run-agent" --config "$T/p/shared.conf" --service --instance raw --instances 2 \
  --unit-file "$built" --root "$D" --ehdelta "$EHDELTA" >"$T/stage.log" 2>&1
rc=$?
cat "$T/stage.log"
check "run-agent --service --instance raw --instances 2 --root stages them (exit $rc)" [ $rc -eq 0 ]
for i in 1 2; do
  c=$D$sysconfdir/ehdelta/raw-$i.conf
  check "raw-$i.conf points at ehdelta@raw-$i.service's credentials" \
    bash -c 'grep -qx "connection_string_file = /run/credentials/ehdelta@raw-$0.service/eventhub-connection-string" "$1" &&
             grep -qx "account_key_file = /run/credentials/ehdelta@raw-$0.service/storage-account-key" "$1"' $i "$c"
  check "raw-$i.conf is otherwise the configuration" \
    bash -c 'diff <(grep -v _file "$0") <(grep -v _file "$1")' "$T/p/shared.conf" "$c"
  check "it prints systemctl enable and restart ehdelta@raw-$i.service" \
    bash -c 'grep -q "systemctl enable ehdelta@raw-$0.service" "$1" && grep -q "systemctl restart ehdelta@raw-$0.service" "$1"' $i "$T/stage.log"
  check "no drop-in for ehdelta@raw-$i.service (it loads what the unit loads)" \
    [ ! -e "$D/etc/systemd/system/ehdelta@raw-$i.service.d/50-ehdelta-credentials.conf" ]
done
check "systemctl daemon-reload is printed once" [ "$(grep -c 'systemctl daemon-reload' "$T/stage.log")" -eq 1 ]
check "no secret in the output or the staged configurations" \
  bash -c '! grep -l INSTSECRET "$0" "$1"/raw-*.conf' "$T/stage.log" "$D$sysconfdir/ehdelta"
"$TOP_SRCDIR/scripts/run-agent" --config "$T/p/shared.conf" --service --instance raw \
  --unit-file "$built" --root "$D" --ehdelta "$EHDELTA" >"$T/stage1.log" 2>&1
check "--instance raw alone stages raw.conf for ehdelta@raw.service" \
  bash -c '[ $0 -eq 0 ] && grep -qx "connection_string_file = /run/credentials/ehdelta@raw.service/eventhub-connection-string" "$1"' \
  $? "$D$sysconfdir/ehdelta/raw.conf"
"$TOP_SRCDIR/scripts/run-agent" --config "$T/p/shared.conf" --service --instance raw \
  --unit-file "$TOP_BUILDDIR/dist/ehdelta.service" --root "$D" --ehdelta "$EHDELTA" >"$T/plain.log" 2>&1
check "--instance with the plain unit: refused, says it does not name the instance" \
  bash -c '[ $0 -eq 1 ] && grep -q "does not name the instance" "$1"' $? "$T/plain.log"

# --- refusals
sed '/^checkpoint_store/d' "$T/p/shared.conf" >"$T/p/nostore.conf"
"$TOP_SRCDIR/scripts/run-agent" --config "$T/p/nostore.conf" --instances 2 --check --ehdelta "$EHDELTA" >"$T/ns.log" 2>&1
check "--instances 2 without a checkpoint_store: exit 2, says so" \
  bash -c '[ $0 -eq 2 ] && grep -q "has no checkpoint_store" "$1"' $? "$T/ns.log"
sed 's/^\[source\]$/&\nowner_id = one/' "$T/p/shared.conf" >"$T/p/owner.conf"
"$TOP_SRCDIR/scripts/run-agent" --config "$T/p/owner.conf" --instances 2 --check --ehdelta "$EHDELTA" >"$T/ow.log" 2>&1
check "--instances 2 with an owner_id: exit 2, says each needs its own" \
  bash -c '[ $0 -eq 2 ] && grep -q "owner_id = one: several agents need an owner id each" "$1"' $? "$T/ow.log"
"$TOP_SRCDIR/scripts/run-agent" --config "$T/p/shared.conf" --service --instances 2 --root "$D" \
  --unit-file "$built" >"$T/ni.log" 2>&1
check "--service --instances without --instance: exit 2" \
  bash -c '[ $0 -eq 2 ] && grep -q "needs --instance NAME" "$1"' $? "$T/ni.log"
"$TOP_SRCDIR/scripts/run-agent" --config "$T/p/shared.conf" --service --instance 'a/b' --root "$D" \
  --unit-file "$built" >"$T/bn.log" 2>&1
check "a bad instance name: exit 2" bash -c '[ $0 -eq 2 ] && grep -q "needs a name of letters" "$1"' $? "$T/bn.log"
"$TOP_SRCDIR/scripts/run-agent" --config "$T/p/shared.conf" --instances 0 >"$T/n0.log" 2>&1
check "--instances 0: exit 2" bash -c '[ $0 -eq 2 ] && grep -q "a number from 1 to 64" "$1"' $? "$T/n0.log"
finish
