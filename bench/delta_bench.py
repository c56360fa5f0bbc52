#!/usr/bin/env python3
"""Delta commit latency and snapshot load time: ehdelta vs delta-rs, same run.

1. Commit latency, local disk and Azurite: EHDELTA_BENCH_COMMITS (default 200)
   append commits of one small data file each (5 rows, txn per commit) by
   tests/tools/dl_tool, against delta-rs write_deltalake appending the same
   5 rows per commit with an app transaction, on the same storage.
   The same appends with 32 per-partition txns per commit (what a sink now
   writes: txn(APPID/p) for each partition the batch moved), beside plain
   appends of the same run as the baseline, interleaved over 3 rounds
   (medians), wall and CPU time (EHDELTA_BENCH_PTXNS, default 32).
2. Snapshot load of a table with EHDELTA_BENCH_LOG (default 10,000) commits and
   checkpoints (every 1000 versions, the last at 10,000, then 5 more commits):
   dl_tool load (open + replay, median of 5) against DeltaTable(path) (median
   of 5) on that very table.
Run: make tests/tools/dl_tool && bench/delta_bench.py (uses the venv's python).
"""
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
top = os.environ.get("EHDELTA_TOP_BUILDDIR", os.path.join(here, ".."))
src = os.environ.get("EHDELTA_TOP_SRCDIR", os.path.join(here, ".."))
DL = os.path.join(top, "tests", "tools", "dl_tool")
COMMITS = int(os.environ.get("EHDELTA_BENCH_COMMITS", "200"))
LOG = int(os.environ.get("EHDELTA_BENCH_LOG", "10000"))
PTXNS = int(os.environ.get("EHDELTA_BENCH_PTXNS", "32"))
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

import pyarrow as pa  # noqa: E402
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake  # noqa: E402


def dl(*a, env=None):
    e = dict(os.environ, **(env or {}))
    p = subprocess.run([DL, *map(str, a)], capture_output=True, text=True, env=e)
    if p.returncode:
        sys.exit(f"dl_tool {a[0]}: {p.stderr.strip()}")
    return p.stdout


def rs_commits(uri, n, so=None):
    schema_rows = lambda c: pa.table({  # noqa: E731
        "id": pa.array([c * 5 + r for r in range(5)], pa.int64()),
        "name": pa.array([f"c{c}-r{r}" for r in range(5)]),
        "value": pa.array([c / 7.0] * 5, pa.float64())})
    write_deltalake(uri, schema_rows(0), mode="append", storage_options=so)
    t0 = time.perf_counter()
    for c in range(1, n + 1):
        cp = CommitProperties(app_transactions=[Transaction("rs", c)])
        write_deltalake(uri, schema_rows(c), mode="append", storage_options=so,
                        commit_properties=cp)
    return (time.perf_counter() - t0) * 1000 / n


def ours_commits(url, n, env=None, ptxns=0, cpu=False):
    dl("create", url, env=env)
    extra = ["--ptxns", ptxns] if ptxns else []
    out = json.loads(dl("append", url, "bench", 1, n, 5, *extra, env=env))
    return (out["ms_per_commit"], out["cpu_ms_per_commit"]) if cpu else out["ms_per_commit"]


def ptxn_lines(where, url_of, n, env=None, rounds=3):
    """Plain appends against appends with PTXNS partition txns each,
    interleaved over rounds (medians): wall and CPU ms per commit."""
    got = {0: [], PTXNS: []}
    for r in range(rounds):
        for p in got:
            got[p].append(ours_commits(url_of(f"r{r}p{p}"), n, env=env, ptxns=p, cpu=True))
    for i, what in enumerate(("wall", "CPU")):
        base = statistics.median(x[i] for x in got[0])
        with_p = statistics.median(x[i] for x in got[PTXNS])
        print(f"{'  %s ms/commit + %d partition txns, %s' % (what, PTXNS, where):<44} "
              f"{with_p:>10.2f} {'':>10} {'':>7}  (baseline without, same run: {base:.2f}; "
              f"{(with_p / base - 1) * 100:+.1f}%)")


def azurite():
    binp = next((p for p in (os.path.join(src, ".tools/node/node_modules/.bin/azurite-blob"),
                             "/work/main/.tools/node/node_modules/.bin/azurite-blob")
                 if os.path.exists(p)), None)
    if not binp:
        return None
    d = tempfile.mkdtemp(prefix="ed-bench-az-")
    log = open(os.path.join(d, "log"), "w+")
    p = subprocess.Popen([binp, "--blobHost", "127.0.0.1", "--blobPort", "0", "--location", d,
                          "--skipApiVersionCheck", "--loose", "--disableTelemetry", "--silent"],
                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        log.seek(0)
        m = re.search(r"listens on http://127\.0\.0\.1:(\d+)", log.read())
        if m:
            return p, int(m.group(1)), d
        time.sleep(0.1)
    os.killpg(p.pid, signal.SIGTERM)
    return None


def main():
    print(f"delta_bench: commit latency ({COMMITS} commits of 5 rows) and snapshot load "
          f"({LOG} commits, checkpoints)")
    print(f"{'figure':<44} {'ehdelta':>10} {'delta-rs':>10} {'ratio':>7}")
    with tempfile.TemporaryDirectory() as d:
        ours = ours_commits(os.path.join(d, "ours"), COMMITS)
        theirs = rs_commits(os.path.join(d, "rs"), COMMITS)
        print(f"{'commit latency, local disk (ms/commit)':<44} {ours:>10.2f} {theirs:>10.2f} "
              f"{theirs / ours:>6.1f}x")
        ptxn_lines("local", lambda k: os.path.join(d, "ours-" + k), COMMITS)
        az = azurite()
        if az:
            proc, port, azdir = az
            try:
                os.environ["AZURITE_BLOB_STORAGE_URL"] = f"http://127.0.0.1:{port}"
                from azure.storage.blob import BlobServiceClient
                BlobServiceClient.from_connection_string(
                    f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={KEY};"
                    f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;").create_container("bench")
                n = max(COMMITS // 2, 10)
                ours = ours_commits(f"http://127.0.0.1:{port}/devstoreaccount1/bench/ours", n,
                                    env={"AZURE_STORAGE_ACCOUNT_KEY": KEY})
                so = {"account_name": "devstoreaccount1", "account_key": KEY,
                      "azure_storage_use_emulator": "true", "allow_http": "true"}
                theirs = rs_commits("az://bench/rs", n, so)
                print(f"{'commit latency, Azurite (ms/commit)':<44} {ours:>10.2f} {theirs:>10.2f} "
                      f"{theirs / ours:>6.1f}x")
                ptxn_lines("Azurite",
                           lambda k: f"http://127.0.0.1:{port}/devstoreaccount1/bench/ours-{k}",
                           n, env={"AZURE_STORAGE_ACCOUNT_KEY": KEY})
            finally:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=10)
                subprocess.run(["rm", "-rf", azdir])
        else:
            print("commit latency, Azurite: skipped (no azurite)")
        big = os.path.join(d, "big")
        t0 = time.perf_counter()
        dl("create", big, "--interval", "1000")
        dl("append", big, "big", 1, LOG + 5, 1)
        build = time.perf_counter() - t0
        runs = [float(line.split()[0]) for line in dl("load", big, 5).splitlines()]
        ver = int(dl("load", big, 1).split()[1])
        rs_runs = []
        for _ in range(5):
            t0 = time.perf_counter()
            dt = DeltaTable(big)
            assert dt.version() == ver
            rs_runs.append((time.perf_counter() - t0) * 1000)
        ours, theirs = statistics.median(runs), statistics.median(rs_runs)
        print(f"{'snapshot load, %d commits + checkpoints (ms)' % (ver):<44} {ours:>10.2f} "
              f"{theirs:>10.2f} {theirs / ours:>6.1f}x")
        # without checkpoints: the JSON replay itself
        for f in os.listdir(os.path.join(big, "_delta_log")):
            if "checkpoint" in f:
                os.rename(os.path.join(big, "_delta_log", f), os.path.join(big, "_delta_log", "." + f))
        runs = [float(line.split()[0]) for line in dl("load", big, 3).splitlines()]
        rs_runs = []
        for _ in range(3):
            t0 = time.perf_counter()
            DeltaTable(big)
            rs_runs.append((time.perf_counter() - t0) * 1000)
        ours, theirs = statistics.median(runs), statistics.median(rs_runs)
        print(f"{'snapshot load, same table, JSON only (ms)':<44} {ours:>10.2f} {theirs:>10.2f} "
              f"{theirs / ours:>6.1f}x")
        print(f"(building the {ver}-commit table took {build:.1f} s; ratio = delta-rs / ehdelta, "
              f">1 means ehdelta is faster)")


if __name__ == "__main__":
    main()
