#!/usr/bin/env bash
# ops_run_agent: scripts/run-agent checks a configuration before it starts
# anything: syntax (with the line), a hub and a sink, each secret file present,
# non-empty and readable by its owner only; then the agent's own
# `ehdelta run --check`, which must both pass a good file and refuse a bad one.
# shellcheck disable=SC2016 # bash -c '...' bodies take their values as $0 $1 ...
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

RUN=$TOP_SRCDIR/scripts/run-agent
mkdir -p "$T/bin" "$T/p"
printf '#!/bin/sh\nexec python3 %q "$@"\n' "$TOP_SRCDIR/tests/integration/ops_fake_az.py" >"$T/bin/az"
chmod +x "$T/bin/az"
export FAKE_AZ_DIR=$T/az
mkdir -p "$FAKE_AZ_DIR"
# A configuration and secrets exactly as provision writes them (through the fake az).
PATH=$T/bin:$PATH "$TOP_SRCDIR/scripts/provision" --resource-group rg --location westeurope --namespace ehdelta-run-ns \
  --storage-account ehdeltarun --output-dir "$T/p" >"$T/provision.log" 2>&1
check "provision (fake az) wrote a configuration" [ -f "$T/p/ehdelta.conf" ]
conf=$T/p/ehdelta.conf

"$RUN" --check --config "$conf" --ehdelta "$EHDELTA" >"$T/ok.log" 2>&1
rc=$?
cat "$T/ok.log"
check "provision's configuration passes the checks" [ $rc -eq 0 ]
check "the agent's own check was run and passed" grep -qx "run-agent: $conf: ehdelta run --check: ok" "$T/ok.log"
check "no secret in run-agent's output" bash -c '! grep -q FAKESECRET "$1"' _ "$T/ok.log"

# bad CONF-EDIT EXPECTED-MESSAGE: a broken copy is refused (exit 2) with that message.
bad() {
  local what=$1 expect=$2 rc
  "$RUN" --check --config "$T/bad.conf" --ehdelta "$EHDELTA" >"$T/bad.log" 2>&1
  rc=$?
  check "$what: exit 2" [ $rc -eq 2 ]
  check "$what: says '$expect'" grep -qF -- "$expect" "$T/bad.log"
}
sed 's/^hub = .*/hub transactions-stream/' "$conf" >"$T/bad.conf"
n=$(grep -n '^hub transactions-stream' "$T/bad.conf" | cut -d: -f1)
bad "a line without '='" "bad.conf:$n: expected [section], 'key = value' or a # comment"
grep -v '^hub = ' "$conf" >"$T/bad.conf"
bad "no hub" "[source] has no hub"
sed '/^\[sink /,$d' "$conf" >"$T/bad.conf"
bad "no sink" "no [sink NAME] section"
sed "s|secrets/storage-account-key|secrets/missing-key|" "$conf" >"$T/bad.conf"
bad "a missing secret file" "secrets/missing-key: no such file"
chmod 644 "$T/p/secrets/storage-account-key"
cp "$conf" "$T/bad.conf"
bad "a secret others can read" "lets others read a secret: run chmod 600"
chmod 600 "$T/p/secrets/storage-account-key"
: >"$T/p/secrets/empty" && chmod 600 "$T/p/secrets/empty"
sed "s|secrets/storage-account-key|secrets/empty|" "$conf" >"$T/bad.conf"
bad "an empty secret file" "secrets/empty: empty"
# What only the agent knows: a value its option table refuses. run-agent's own
# checks pass this file, so only `ehdelta run --check` can refuse it.
sed 's/^trigger = 10 seconds$/trigger = whenever/' "$conf" >"$T/bad.conf"
n=$(grep -n '^trigger = whenever' "$T/bad.conf" | cut -d: -f1)
check "the bad trigger is in the copy" [ -n "$n" ]
bad "a value the agent refuses" "bad.conf:$n: [sink raw] trigger 'whenever': expected"
check "a value the agent refuses: says the agent refused it" grep -q 'ehdelta run --check refused it' "$T/bad.log"
check "a value the agent refuses: nothing claims ok" bash -c '! grep -q ": ok$" "$1"' _ "$T/bad.log"
# With --identity, provision's [source] names no secret: the namespace alone
# is the endpoint, so run-agent must not ask for a connection string.
unset EVENTHUB_CONNECTION_STRING
PATH=$T/bin:$PATH "$TOP_SRCDIR/scripts/provision" --resource-group rg --location westeurope --namespace ehdelta-run-ns \
  --storage-account ehdeltarun --identity ehdelta-id --output-dir "$T/mi" >"$T/provision-mi.log" 2>&1
check "provision --identity (fake az) wrote a configuration with auth = managed-identity" \
  grep -qx 'auth = managed-identity' "$T/mi/ehdelta.conf"
"$RUN" --check --config "$T/mi/ehdelta.conf" --ehdelta "$EHDELTA" >"$T/mi.log" 2>&1
rc=$?
cat "$T/mi.log"
check "the identity's configuration passes, ehdelta run --check included (exit $rc)" \
  bash -c '[ $0 -eq 0 ] && grep -qx "run-agent: $1: ehdelta run --check: ok" "$2"' $rc "$T/mi/ehdelta.conf" "$T/mi.log"
grep -v '^namespace = ' "$T/mi/ehdelta.conf" >"$T/bad.conf"
bad "managed identity without a namespace" \
  "[source] auth = managed-identity has no namespace (expected namespace = NAME.servicebus.windows.net"
sed '0,/^auth = managed-identity$/{//d}' "$T/mi/ehdelta.conf" >"$T/bad.conf" # [source]'s: sas again
bad "auth sas without a connection string file" "[source] has no connection_string_file"
"$RUN" --check --config "$T/none.conf" >"$T/none.log" 2>&1
check "a missing configuration: exit 2" bash -c '[ $0 -eq 2 ] && grep -q "no such readable file" "$1"' $? "$T/none.log"
"$RUN" --config "$conf" --ehdelta "$T/no-such-ehdelta" >"$T/nobin.log" 2>&1
check "no ehdelta binary: exit 1, says how to get one" bash -c '[ $0 -eq 1 ] && grep -q "build it (make)" "$1"' $? "$T/nobin.log"
finish
