#!/usr/bin/env bash
# Starts ehemu on a free port, runs bench_emu against it, stops it.
# usage: bench/bench_emu.sh [N]   (from the build directory)
set -eu
b=${EHDELTA_TOP_BUILDDIR:-.}
log=$(mktemp)
EHEMU_KEY=bench-key "$b/ehemu" --port 0 --retention 0s 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 100); do grep -q 'ehemu: ready' "$log" && break; sleep 0.05; done
port=$(grep -o 'amqp=[0-9]*' "$log" | cut -d= -f2)
"$b/bench/bench_emu" "$port" bench-key "${1:-200000}"
