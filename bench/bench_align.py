#!/usr/bin/env python3
"""Backlog throughput with aligned reading on and off, in the same run.

Run: make bench-align   (or bench/bench_align.sh from the build directory)

ehemu (8 partitions) is preloaded with EHDELTA_BENCH_EVENTS (default
1,000,000) tutorial transactions whose event times span 60 hours on every
partition, but unevenly: partition q holds a share proportional to 1 + q mod 4,
so at equal delivery rates the sparse partitions run ahead in event time (the
case alignment is for). Then dist/tutorial.conf (raw table, 5-minute windows
by category, sliding console windows to /dev/null, dead letters) with
max_batch_events = EHDELTA_BENCH_MBE (default 20000) on every sink, local
Delta tables, `ehdelta run --available-now`, EHDELTA_BENCH_ROUNDS (default 3)
times each with source.max_drift = off and = 1 hour (the default), alternated
so both see the same machine. Printed per mode: the median wall events/s, CPU
seconds per million events and peak RSS (rusage), raw batches, rows dropped as
late (0 is required of both), and the largest spread of event time between partitions at
a raw batch's end (from the raw table: each partition's event time at its end
offset). The goal: aligned reading costs at most 10% of the raw sink's rate.
"""
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time

import duckdb
from deltalake import DeltaTable

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_agent import EHDELTA, Emu, env_for, measured, progress, tutorial_conf  # noqa: E402

EVENTS = int(os.environ.get("EHDELTA_BENCH_EVENTS", "1000000"))
MBE = int(os.environ.get("EHDELTA_BENCH_MBE", "20000"))
ROUNDS = int(os.environ.get("EHDELTA_BENCH_ROUNDS", "3"))
PARTS = 8
GOAL_COST = 0.10
CATS = ["Electronics", "Books", "Clothing", "Home", "Sports"]


def say(*a):
    print(*a, flush=True)


def preload(emu, work):
    weights = [1 + q % 4 for q in range(PARTS)]
    t0 = 1_764_460_800  # 2025-11-30T00:00:00Z
    for q in range(PARTS):
        n = EVENTS * weights[q] // sum(weights)
        rnd = random.Random(q)
        path = os.path.join(work, f"p{q}.jsonl")
        with open(path, "w") as f:
            for i in range(n):
                ts = t0 + i * 60 * 3600 / n + rnd.uniform(-60, 60)
                f.write(json.dumps({
                    "transaction_id": f"T{q}-{i}", "customer_id": f"C{rnd.randint(1, 100):03d}",
                    "amount": round(rnd.uniform(10, 500), 2), "category": rnd.choice(CATS),
                    "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts))
                    + f".{int(ts * 1000) % 1000:03d}",
                    "location": "US", "payment_method": "Debit"}) + "\n")
        p = subprocess.run([EHDELTA, "send", "--input", path, "--partition", str(q),
                            "--max-in-flight", "4096", "--no-progress"], env=env_for(emu),
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if p.returncode:
            sys.exit(f"bench: ehdelta send failed: {p.stderr}")


def spread_hours(root, raw_lines):
    """The largest difference of event time between two partitions at the end
    of a raw batch: per partition, the event time of the row at its end offset
    (looked up in the raw table)."""
    files = DeltaTable(os.path.join(root, "lake/raw/transactions-streaming")).file_uris()
    db = duckdb.connect()
    ts = {(int(p[1:]), seq): t for p, seq, t in db.execute(
        "SELECT split_part(transaction_id, '-', 1), sequenceNumber, epoch_us(timestamp) "
        "FROM read_parquet(?)", [files]).fetchall()}
    worst = 0
    for d in raw_lines:
        end = next(iter(d["sources"][0]["endOffset"].values()))
        t = [ts[(int(p), s)] for p, s in end.items() if (int(p), s) in ts]
        if len(t) > 1:
            worst = max(worst, max(t) - min(t))
    return worst / 3.6e9


def one(emu, work, drift, k):
    root = os.path.join(work, f"{drift.replace(' ', '')}-{k}")
    os.makedirs(root)
    conf = tutorial_conf(root, sink_extra=f"max_batch_events = {MBE}")
    with open(conf) as f:
        text = f.read()
    text = text.replace("[source]\n", f"[source]\nmax_drift = {drift}\n", 1)
    with open(conf, "w") as f:
        f.write(text)
    prog = os.path.join(root, "progress")
    rc, wall, us_, sy, rss = measured([EHDELTA, "run", "--config", conf, "--available-now",
                                       "--progress", prog], cwd=root, env=env_for(emu),
                                      stdout=subprocess.DEVNULL)
    if rc:
        sys.exit(f"bench: ehdelta run exited {rc} ({root})")
    lines = progress(prog)
    raw = [d for d in lines if d["name"] == "raw"]
    n = sum(d["numInputRows"] for d in raw)
    late = sum(d["stateOperators"][0]["numRowsDroppedByWatermark"] for d in lines
               if d["name"] == "by_category")
    # In a child: DuckDB and the table would grow this process, and a child
    # forked from a large parent reports the parent's RSS as its peak.
    sp = subprocess.run([sys.executable, __file__, "--spread", root, prog], capture_output=True,
                        text=True, check=True)
    return {"eps": n / wall, "cpu": (us_ + sy) / n * 1e6, "batches": len(raw), "late": late,
            "n": n, "spread": float(sp.stdout), "rss": rss}


def main():
    work = tempfile.mkdtemp(prefix="bench-align-")
    emu = Emu(work, PARTS)
    try:
        say(f"bench_align: {EVENTS} events over {PARTS} partitions (shares 1:2:3:4), 60 h of "
            f"event time each, max_batch_events {MBE}, {ROUNDS} rounds; load "
            f"{os.getloadavg()[0]:.2f}")
        preload(emu, work)
        res = {"off": [], "1 hour": []}
        for k in range(ROUNDS):
            for drift in (("off", "1 hour") if k % 2 == 0 else ("1 hour", "off")):
                r = one(emu, work, drift, k)
                res[drift].append(r)
                say(f"  round {k} max_drift={drift:7s} {r['eps']:10.0f} events/s "
                    f"{r['cpu']:6.2f} CPU s/M  batches {r['batches']:4d}  late {r['late']}  "
                    f"spread {r['spread']:5.1f} h  rss {r['rss']:.0f} MiB")
        med = {d: statistics.median(x["eps"] for x in v) for d, v in res.items()}
        cost = 1 - med["1 hour"] / med["off"]
        for d, v in res.items():
            say(f"max_drift = {d:7s}: median {med[d]:10.0f} events/s, "
                f"{statistics.median(x['cpu'] for x in v):.2f} CPU s per M, largest spread "
                f"{max(x['spread'] for x in v):.1f} h, late {sum(x['late'] for x in v)}")
        say(f"aligned reading costs {cost * 100:.1f}% of the backlog rate (goal <= "
            f"{GOAL_COST * 100:.0f}%): {'met' if cost <= GOAL_COST else 'NOT met'}")
        ok = cost <= GOAL_COST and all(x["late"] == 0 for v in res.values() for x in v)
        return 0 if ok else 1
    finally:
        emu.stop()
        if not os.environ.get("EHDELTA_BENCH_KEEP"):
            subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    if sys.argv[1:2] == ["--spread"]:
        print(spread_hours(sys.argv[2], [d for d in progress(sys.argv[3]) if d["name"] == "raw"]))
        sys.exit(0)
    sys.exit(main())
