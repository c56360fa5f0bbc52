#!/usr/bin/env python3
"""Parquet write speed and size: our writer vs pyarrow on the same rows.

The tutorial's transaction rows (7 columns; seed/streaming-ingestion-tutorial.md),
EHDELTA_BENCH_ROWS rows (default 10,000,000), zstd level 1 and 3, each write timed
EHDELTA_BENCH_REPEAT times (default 3), best kept, for both writers. bench/bench_parquet
generates the rows, writes them with our writer (timed) and dumps them uncompressed;
pyarrow loads that dump (untimed) and writes the same table (timed). Prints each
figure beside pyarrow's and the ratio. Run: make bench/bench_parquet && bench/bench_parquet.py
"""
import json
import os
import subprocess
import sys
import tempfile
import time

top = os.environ.get("EHDELTA_TOP_BUILDDIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
tool = os.path.join(top, "bench", "bench_parquet")
rows = int(os.environ.get("EHDELTA_BENCH_ROWS", "10000000"))
repeat = max(1, int(os.environ.get("EHDELTA_BENCH_REPEAT", "3")))

import pyarrow.parquet as pq  # noqa: E402

with tempfile.TemporaryDirectory() as d:
    dump = os.path.join(d, "dump.parquet")
    print(f"bench_parquet: {rows} rows, 7 columns (transaction rows), 1 thread each, best of {repeat}")
    print(f"{'zstd':>5} {'ours rows/s':>12} {'pyarrow rows/s':>15} {'speed ratio':>12} "
          f"{'ours bytes':>12} {'pyarrow bytes':>14} {'size ratio':>11}")
    for level in (1, 3):
        ours = os.path.join(d, f"ours{level}.parquet")
        r = subprocess.run([tool, str(rows), str(level), ours] + ([dump] if level == 1 else []),
                           capture_output=True, text=True, check=True)
        o = json.loads(r.stdout)
        table = pq.read_table(dump)
        theirs = os.path.join(d, f"pa{level}.parquet")
        pa_secs = 1e30
        for _ in range(repeat):
            t0 = time.perf_counter()
            pq.write_table(table, theirs, compression="zstd", compression_level=level)
            pa_secs = min(pa_secs, time.perf_counter() - t0)
        pa_bytes = os.path.getsize(theirs)
        # Sanity: pyarrow reads our file back with the same rows.
        back = pq.read_table(ours)
        assert back.num_rows == rows and back.equals(table), "our file differs from the data"
        ours_rps, pa_rps = rows / o["seconds"], rows / pa_secs
        print(f"{level:>5} {ours_rps:>12,.0f} {pa_rps:>15,.0f} {ours_rps / pa_rps:>11.2f}x "
              f"{o['bytes']:>12,} {pa_bytes:>14,} {o['bytes'] / pa_bytes:>10.3f}x")
        del table, back
sys.exit(0)
