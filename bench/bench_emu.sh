#!/usr/bin/env bash
# Starts ehemu on a free port, runs bench_emu against it, stops it.
# usage: bench/bench_emu.sh [N] [--data-dir]   (from the build directory)
# --data-dir: the same run with every partition in an append-only log (a
# scratch directory, removed afterwards), to show what persistence costs.
set -eu
b=${EHDELTA_TOP_BUILDDIR:-.}
log=$(mktemp)
dd=$(mktemp -d)
extra=()
[[ ${2:-} == --data-dir ]] && extra=(--data-dir "$dd/data")
EHEMU_KEY=bench-key "$b/ehemu" --port 0 --retention 0s "${extra[@]}" 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$log" "$dd"' EXIT
for _ in $(seq 100); do grep -q 'ehemu: ready' "$log" && break; sleep 0.05; done
port=$(grep -o 'amqp=[0-9]*' "$log" | cut -d= -f2)
"$b/bench/bench_emu" "$port" bench-key "${1:-200000}"
