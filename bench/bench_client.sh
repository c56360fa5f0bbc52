#!/usr/bin/env bash
# ehdelta's Event Hubs client beside the official Python SDK against one
# ehemu, in the same run: send and receive events/s (and their ratio), and
# the RSS of a 32-partition tail whose consumer stalls. See bench_client.py.
# usage (from the build directory):
#   bench/bench_client.sh            # 2,000,000 events
#   BENCH_EVENTS=200000 BENCH_SDK_EVENTS=50000 bench/bench_client.sh
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
export EHDELTA_TOP_BUILDDIR=${EHDELTA_TOP_BUILDDIR:-$(pwd)}
py=${EHDELTA_VENV:-$src/.venv}/bin/python
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$py" "$src/bench/bench_client.py" "$tmp"
