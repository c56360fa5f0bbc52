#!/usr/bin/env bash
# trigger = continuous against trigger = 1 second (enqueue-to-visible latency,
# CPU per event) and compaction (files per partition, delta-rs read time
# against a 1-minute trigger), in one run; see bench/bench_continuous.py.
# usage: make bench-continuous
#    or: bench/bench_continuous.sh   (from the build directory, or with
#        EHDELTA_TOP_BUILDDIR set)
# Environment: EHDELTA_BENCH_RATE (10000), EHDELTA_BENCH_SECONDS (20),
# EHDELTA_BENCH_LONG (120).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=${EHDELTA_TOP_SRCDIR:-$(cd "$here/.." && pwd)}
build=${EHDELTA_TOP_BUILDDIR:-$PWD}
[[ -x $build/ehdelta ]] || build=$src/_build
[[ -x $build/ehdelta && -x $build/ehemu ]] ||
  { echo "bench_continuous: no ehdelta/ehemu in $build (build first)" >&2; exit 1; }
py=$src/.venv/bin/python
[[ -x $py ]] || { echo "bench_continuous: no Python environment in $src/.venv (scripts/deps)" >&2; exit 1; }
EHDELTA_TOP_BUILDDIR=$build EHDELTA_TOP_SRCDIR=$src exec "$py" "$here/bench_continuous.py" "$@"
