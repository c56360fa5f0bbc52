#!/usr/bin/env bash
# Runs one pytest file with the project's virtual environment (scripts/deps
# makes it). Exit 77 (skipped) only when the venv is absent; pytest's "no tests
# collected" (5) is a failure, so a suite that silently loses its tests fails.
set -u
top=${EHDELTA_TOP_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
venv=${EHDELTA_VENV:-$top/.venv}
if [[ ! -x $venv/bin/python ]]; then
  echo "SKIP: no Python venv at $venv (run scripts/deps)"
  exit 77
fi
export PYTHONDONTWRITEBYTECODE=1
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider --rootdir="$top/tests" "$@"
