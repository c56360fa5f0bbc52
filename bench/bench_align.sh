#!/usr/bin/env bash
# Backlog throughput of ehdelta run with aligned reading (source.max_drift) on
# and off, in the same run; see bench/bench_align.py for what is measured.
# usage: make bench-align
#    or: bench/bench_align.sh   (from the build directory, or with
#        EHDELTA_TOP_BUILDDIR set)
# Environment: EHDELTA_BENCH_EVENTS (default 1000000), EHDELTA_BENCH_MBE
# (20000), EHDELTA_BENCH_ROUNDS (3), EHDELTA_BENCH_KEEP=1 keeps the work directory.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=${EHDELTA_TOP_SRCDIR:-$(cd "$here/.." && pwd)}
build=${EHDELTA_TOP_BUILDDIR:-$PWD}
[[ -x $build/ehdelta ]] || build=$src/_build
[[ -x $build/ehdelta && -x $build/ehemu ]] ||
  { echo "bench_align: no ehdelta/ehemu in $build (build first)" >&2; exit 1; }
py=$src/.venv/bin/python
[[ -x $py ]] || { echo "bench_align: no Python environment in $src/.venv (scripts/deps)" >&2; exit 1; }
EHDELTA_TOP_BUILDDIR=$build EHDELTA_TOP_SRCDIR=$src exec "$py" "$here/bench_align.py" "$@"
