#!/bin/sh
# The Delta interop suites (delta-rs, Azurite) under make check. Skips (77)
# only when the Python venv with deltalake is absent.
top_src=${EHDELTA_TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
top_build=${EHDELTA_TOP_BUILDDIR:-$top_src}
venv=${EHDELTA_VENV:-$top_src/.venv}
if [ ! -x "$venv/bin/python" ]; then
  echo "skip: no Python venv at $venv (see README)"; exit 77
fi
export EHDELTA_TOP_SRCDIR="$top_src" EHDELTA_TOP_BUILDDIR="$top_build"
cd "$top_src/tests/interop" || exit 1
exec timeout 600 "$venv/bin/python" -m pytest -q -p no:cacheprovider \
  test_delta_local.py test_delta_azure.py test_delta_faults.py "$@"
