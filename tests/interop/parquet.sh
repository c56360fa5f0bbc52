#!/bin/sh
# Parquet interop suite: pyarrow, DuckDB and delta-rs read what our writer
# wrote; our reader reads what delta-rs wrote. Skips (77) only without the venv.
top=${EHDELTA_TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
venv=${EHDELTA_VENV:-$top/.venv}
if [ ! -x "$venv/bin/python" ]; then
  echo "parquet interop: no Python venv at $venv (set EHDELTA_VENV): skipped"
  exit 77
fi
EHDELTA_TOP_BUILDDIR=${EHDELTA_TOP_BUILDDIR:-$top}
export EHDELTA_TOP_BUILDDIR
cd "$top/tests/interop" || exit 1
exec timeout 300 "$venv/bin/python" -m pytest -q -p no:cacheprovider \
  test_parquet_writer.py test_parquet_reader.py
