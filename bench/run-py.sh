#!/usr/bin/env bash
# The Python benches' one launcher: finds the build (EHDELTA_TOP_BUILDDIR, the
# current directory, or the source tree's _build) with ehdelta and ehemu in
# it and the project's virtual environment, then runs bench/SCRIPT.py there.
# usage: bench/run-py.sh SCRIPT.py [ARGS...]   (the bench_*.sh scripts call it)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
script=${1:?usage: run-py.sh SCRIPT.py [ARGS...]}
shift
name=${script%.py}
[[ -f $here/$script ]] || { echo "$name: no $here/$script" >&2; exit 1; }
src=${EHDELTA_TOP_SRCDIR:-$(cd "$here/.." && pwd)}
build=${EHDELTA_TOP_BUILDDIR:-$PWD}
[[ -x $build/ehdelta ]] || build=$src/_build
[[ -x $build/ehdelta && -x $build/ehemu ]] ||
  { echo "$name: no ehdelta/ehemu in $build (build first)" >&2; exit 1; }
py=$src/.venv/bin/python
[[ -x $py ]] || { echo "$name: no Python environment in $src/.venv (scripts/deps)" >&2; exit 1; }
EHDELTA_TOP_BUILDDIR=$build EHDELTA_TOP_SRCDIR=$src exec "$py" "$here/$script" "$@"
