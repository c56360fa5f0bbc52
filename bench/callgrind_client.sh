#!/usr/bin/env bash
# Instructions per event of the client's receive path: `ehdelta tail` over N
# events from one ehemu, under callgrind (deterministic: no timing involved).
# Prints the whole process's Ir/event and eh_amqp_decode's (inclusive).
# usage (from the build directory): bench/callgrind_client.sh [N] [BUILDDIR]
#   two BUILDDIRs in one run compare a change with its baseline.
set -u
N=${1:-20000}
B=${2:-$(pwd)}
command -v valgrind >/dev/null || { echo "callgrind_client: valgrind not installed"; exit 1; }
T=$(mktemp -d)
EP=
trap '[ -n "$EP" ] && kill "$EP" 2>/dev/null; rm -rf "$T"' EXIT
printf 'ZW11LXRlc3Qta2V5LW5vdC1hLXNlY3JldA==\n' >"$T/key"
"$B/ehemu" --port 0 --control-port 0 --key-file "$T/key" 2>"$T/emu.err" &
EP=$!
for _ in $(seq 200); do grep -q 'ready amqp=' "$T/emu.err" && break; sleep 0.1; done
port=$(sed -n 's/.*ehemu: ready amqp=\([0-9]*\).*/\1/p' "$T/emu.err" | head -1)
[ -n "$port" ] || { cat "$T/emu.err"; exit 1; }
printf 'Endpoint=sb://127.0.0.1:%s/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=%s;EntityPath=eh1;UseDevelopmentEmulator=true\n' \
  "$port" "$(cat "$T/key")" >"$T/cs"
chmod 600 "$T/cs"
E=(--connection-string-file "$T/cs" --timeout 60s)
"$B/ehdelta" send "${E[@]}" --count "$N" --seed 7 --no-progress >/dev/null 2>&1 || { echo "send failed"; exit 1; }
valgrind --tool=callgrind --callgrind-out-file="$T/cg.out" "$B/ehdelta" tail "${E[@]}" \
  --from earliest --to-end --body json >"$T/tail.out" 2>"$T/vg.err" || { tail "$T/vg.err"; exit 1; }
got=$(wc -l <"$T/tail.out")
total=$(sed -n 's/^totals: \([0-9]*\).*/\1/p' "$T/cg.out" | head -1)
dec=$(callgrind_annotate --inclusive=yes "$T/cg.out" 2>/dev/null | grep -m1 'eh_amqp_decode ' |
  awk '{gsub(",", "", $1); print $1}')
echo "callgrind_client: events=$got Ir/event=$((total / got)) eh_amqp_decode Ir/event=$((dec / got)) ($B)"
