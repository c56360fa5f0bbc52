#!/usr/bin/env bash
# Throughput and CPU of 1, 2 and 3 agents sharing a consumer group through a
# checkpoint store (issue 18), beside one agent without one, in the same run;
# see bench/bench_agents.py for what is measured and how.
# usage: make bench-agents
#    or: bench/bench_agents.sh   (from the build directory, or with
#        EHDELTA_TOP_BUILDDIR set)
# Environment: EHDELTA_BENCH_EVENTS (default 1000000), EHDELTA_BENCH_AGENTS
# (default 1,2,3), EHDELTA_BENCH_KEEP=1 keeps the work directory.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=${EHDELTA_TOP_SRCDIR:-$(cd "$here/.." && pwd)}
build=${EHDELTA_TOP_BUILDDIR:-$PWD}
[[ -x $build/ehdelta ]] || build=$src/_build
[[ -x $build/ehdelta && -x $build/ehemu ]] ||
  { echo "bench_agents: no ehdelta/ehemu in $build (build first)" >&2; exit 1; }
py=$src/.venv/bin/python
[[ -x $py ]] || { echo "bench_agents: no Python environment in $src/.venv (scripts/deps)" >&2; exit 1; }
EHDELTA_TOP_BUILDDIR=$build EHDELTA_TOP_SRCDIR=$src exec "$py" "$here/bench_agents.py" "$@"
