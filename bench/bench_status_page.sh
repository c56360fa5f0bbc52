#!/usr/bin/env bash
# What the agent's status page costs it: the same available-now run with the
# page closed, polled at the page's rate and at ten times that, interleaved;
# see bench/bench_status_page.py for what is measured and how.
# usage: make bench-status-page
#    or: bench/bench_status_page.sh   (from the build directory, or with
#        EHDELTA_TOP_BUILDDIR set)
# Environment: EHDELTA_BENCH_EVENTS (default 1000000), EHDELTA_BENCH_REPEATS (3),
# EHDELTA_BENCH_KEEP=1 keeps the work directory.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=${EHDELTA_TOP_SRCDIR:-$(cd "$here/.." && pwd)}
build=${EHDELTA_TOP_BUILDDIR:-$PWD}
[[ -x $build/ehdelta ]] || build=$src/_build
[[ -x $build/ehdelta && -x $build/ehemu ]] ||
  { echo "bench_status_page: no ehdelta/ehemu in $build (build first)" >&2; exit 1; }
py=$src/.venv/bin/python
[[ -x $py ]] || { echo "bench_status_page: no Python environment in $src/.venv (scripts/deps)" >&2; exit 1; }
EHDELTA_TOP_BUILDDIR=$build EHDELTA_TOP_SRCDIR=$src exec "$py" "$here/bench_status_page.py" "$@"
