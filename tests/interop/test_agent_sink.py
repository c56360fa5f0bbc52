"""The agent's decode -> Delta sink path (tests/tools/ag_sink_tool) against
delta-rs and DuckDB: the table holds exactly the good events sent, with the
per-category totals computed here in Python; and after repeated kill -9 at
random moments, each restarted from the table, every event is there exactly
once."""
import json
import os
import random
import select
import signal
import subprocess
import time

import duckdb
import pytest
from deltalake import DeltaTable

BUILD = os.environ.get("EHDELTA_TOP_BUILDDIR", os.path.join(os.path.dirname(__file__), "..", ".."))
TOOL = os.path.join(BUILD, "tests", "tools", "ag_sink_tool")
DDL = ("transaction_id STRING, customer_id STRING, amount DOUBLE, category STRING, "
       "timestamp TIMESTAMP, location STRING, payment_method STRING")
CATS = ["Electronics", "Clothing", "Food", "Books", "Home"]


def events(n, parts=4, seed=7):
    """Tutorial-shaped transactions over partitions; every 97th body is bad."""
    rnd = random.Random(seed)
    seqs = [0] * parts
    lines, good = [], []
    for i in range(n):
        p = rnd.randrange(parts)
        seq = seqs[p]
        seqs[p] += 1
        ev = {"transaction_id": f"TXN-{i:06d}", "customer_id": f"C{rnd.randrange(100):03d}",
              "amount": round(rnd.uniform(5, 500), 2), "category": rnd.choice(CATS),
              "timestamp": f"2024-11-24T{10 + i * 4 // n:02d}:{rnd.randrange(60):02d}:{rnd.randrange(60):02d}Z",
              "location": rnd.choice(["Seattle", "Boston", "Austin"]),
              "payment_method": rnd.choice(["card", "cash"])}
        body = json.dumps(ev)
        if i % 97 == 13:
            body = body.replace('"amount": ', '"amount": "x')  # a string where a DOUBLE goes: dead
        else:
            good.append(ev)
        lines.append(f"{p}\t{seq}\t{body}\n")
    return "".join(lines), good


def run(table, data, batch, pause_ms=0, stdin=subprocess.PIPE):
    env = dict(os.environ, AG_TOOL_PAUSE_MS=str(pause_ms))
    return subprocess.Popen([TOOL, table, DDL, "category", str(batch)], stdin=stdin,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def check_table(table, good):
    dt = DeltaTable(table)
    t = dt.to_pyarrow_table().to_pylist()
    ids = [r["transaction_id"] for r in t]
    assert len(ids) == len(good), f"{len(ids)} rows, {len(good)} good events sent"
    assert sorted(ids) == sorted(e["transaction_id"] for e in good)
    want = {}
    for e in good:
        c = want.setdefault(e["category"], [0, 0.0])
        c[0] += 1
        c[1] += e["amount"]
    files = dt.file_uris()
    con = duckdb.connect()
    got = con.execute(
        "SELECT category, count(*), sum(amount) FROM read_parquet(?, hive_partitioning=true) "
        "GROUP BY category", [files]).fetchall()
    assert {c: n for c, n, _ in got} == {c: v[0] for c, v in want.items()}
    for c, _, s in got:
        assert abs(s - want[c][1]) < 1e-6 * max(1.0, abs(s))
    assert dt.metadata().partition_columns == ["category"]
    return dt


def test_table_equals_events(tmp_path):
    data, good = events(3000)
    table = str(tmp_path / "raw")
    p = run(table, data, 400)
    out, err = p.communicate(data, timeout=120)
    assert p.returncode == 0, err
    assert "resume batch=-1" in out
    assert f"bad={3000 - len(good)}" in out
    check_table(table, good)
    # a rerun over the same input finds every partition done: nothing new
    p = run(table, data, 400)
    out, err = p.communicate(data, timeout=120)
    assert p.returncode == 0, err
    assert "skipped=3000" in out
    check_table(table, good)


def batches_seen(p, want, timeout=120):
    """Reads p's standard output until its want-th batch line; returns what it
    read. The deadline is against a hang only: the batches come once the input
    is there."""
    fd, buf, deadline = p.stdout.fileno(), b"", time.monotonic() + timeout
    while buf.count(b"\nbatch=") < want:
        left = deadline - time.monotonic()
        assert left > 0, f"no batch {want} within {timeout} s: {buf.decode()}"
        if select.select([fd], [], [], left)[0]:
            chunk = os.read(fd, 65536)
            assert chunk, f"the run ended before its batch {want} ({p.wait()}): {buf.decode()}"
            buf += chunk
    return buf.decode()


def test_kill_9_at_random_moments(tmp_path):
    """Each run is killed after its 1st to 3rd commit plus up to 50 ms: the
    kill point follows the run's progress, not the clock, so however fast or
    loaded the machine, every run commits, resumes past the last one, and is
    still running when killed (the 30 ms pause after each commit keeps a run
    to a few of the 120 batches; the test checks that none read all)."""
    data, good = events(6000, seed=11)
    table = str(tmp_path / "raw")
    rnd = random.Random(5)
    src = tmp_path / "events.tsv"
    src.write_text(data)
    resumed = set()
    for i in range(12):
        with open(src) as f:
            p = run(table, data, 50, pause_ms=30, stdin=f)
            out = batches_seen(p, rnd.randint(1, 3))
            time.sleep(rnd.uniform(0, 0.05))
            assert p.poll() is None, f"run {i} ended ({p.returncode}) before the kill"
            p.send_signal(signal.SIGKILL)
            rest, _ = p.communicate()
        assert p.returncode == -signal.SIGKILL, f"run {i} exited {p.returncode}"
        assert "done" not in out + rest, f"run {i} read all its input before the kill"
        resumed.update(l for l in (out + rest).splitlines() if l.startswith("resume "))
    assert len(resumed) == 12, f"a restart did not resume from a later batch: {resumed}"
    p = run(table, data, 150)
    out, err = p.communicate(data, timeout=300)
    assert p.returncode == 0, err
    check_table(table, good)
