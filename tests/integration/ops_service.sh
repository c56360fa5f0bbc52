#!/usr/bin/env bash
# ops_service: what the systemd unit relies on, with a Python AF_UNIX datagram
# socket standing in for systemd's $NOTIFY_SOCKET (ops_notify.py): `ehdelta run`
# sends READY=1 once connected (after its "run" log line, never before), then
# WATCHDOG=1 at the WATCHDOG_USEC/2 pace; with JOURNAL_STREAM naming its stderr
# every log line starts with a syslog priority and the closing error with <3>; a
# hub that does not exist exits 4 (which the unit does not restart) without
# READY=1; the unit's RestartPreventExitStatus= names every status of ehdelta(1)
# that needs an operator.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
[[ -x $EHEMU ]] || { echo "SKIP ehemu not built"; exit 77; }
NOTIFY=$TOP_SRCDIR/tests/integration/ops_notify.py

start_ehemu tx 2
check "ehemu is ready" [ -n "$EMU_PORT" ]
cat >"$T/run.conf" <<CONF
[source]
connection_string_file = $T/cs
[schema]
columns = id STRING
[sink raw]
path = $T/raw
trigger = 10 seconds
CONF

mkdir -p "$T/ok"
out=$(python3 "$NOTIFY" "$T/ok" "$EHDELTA" run --config "$T/run.conf")
cat "$T/ok/msgs"
check "ehdelta run stopped cleanly on SIGTERM ($out)" [ "$out" = "rc=0" ]
check "the first datagram is READY=1 with a status" bash -c '[ "$(head -1 "$1")" = "READY=1|STATUS=receiving" ]' _ "$T/ok/msgs"
check "READY=1 came after the agent connected and attached (its run line)" grep -q ' info run source=' "$T/ok/ready_log"
check "WATCHDOG=1 followed, twice" bash -c '[ "$(grep -cx WATCHDOG=1 "$1")" -ge 2 ]' _ "$T/ok/msgs"
check "every log line carries a syslog priority" bash -c '[ -s "$1" ] && ! grep -v "^<[3467]>" "$1"' _ "$T/ok/stderr"
check "info lines are <6>" grep -q '^<6>.* info run source=' "$T/ok/stderr"

sed 's/EntityPath=tx/EntityPath=nohub/' "$T/cs" >"$T/cs-nohub"
sed "s|^connection_string_file = .*|connection_string_file = $T/cs-nohub|" "$T/run.conf" >"$T/nohub.conf"
mkdir -p "$T/nohub"
out=$(python3 "$NOTIFY" "$T/nohub" "$EHDELTA" run --config "$T/nohub.conf")
cat "$T/nohub/stderr"
check "a hub that does not exist: exit 4 ($out)" [ "$out" = "rc=4" ]
check "a hub that does not exist: no READY=1" bash -c '! grep -q READY "$1"' _ "$T/nohub/msgs"
check "the closing error line is <3> and names the hub" grep -q '^<3>ehdelta run: .*nohub' "$T/nohub/stderr"

# Without JOURNAL_STREAM (a terminal, a file): no prefixes.
"$EHDELTA" run --config "$T/nohub.conf" 2>"$T/plain.err"
check "without the journal, no priority prefix" bash -c '! grep -q "^<" "$1" && grep -q "^ehdelta run: " "$1"' _ "$T/plain.err"

unit=$TOP_SRCDIR/dist/ehdelta.service.in
check "the unit waits for READY=1 (Type=notify)" grep -qx 'Type=notify' "$unit"
for st in 2 3 4; do
  check "the unit does not restart on exit $st" grep -qE "^RestartPreventExitStatus=.*\\b$st\\b" "$unit"
done
finish
