"""ehdelta run end to end: ehemu -> the tutorial's whole configuration ->
Delta tables on local disk and on Azurite, read back by delta-rs and DuckDB
and compared with what Python computes from the events that were sent: the
raw rows (with their derived columns), the dead letters, the 5-minute
tumbling windows by category (append, emitted once the watermark passes,
open windows carried across runs in the checkpoint) and the sliding windows
the console sink prints."""
import datetime
import os
import re
import subprocess

import duckdb
import pytest
from deltalake import DeltaTable

from agentutil import (BAD, EPOCH, T0, Emu, run_agent, send_lines, transactions, ts_us,
                       tutorial_conf, windows)
from conftest import EHDELTA

N = 2000


@pytest.fixture
def emu(tmp_path):
    e = Emu(tmp_path)
    yield e
    e.stop()


def rows_of(path, **kw):
    return DeltaTable(path, **kw).to_pyarrow_table().to_pylist()


def us(v):
    """A pyarrow timestamp (naive datetime, UTC) in µs since the epoch."""
    return (v.replace(tzinfo=None) - EPOCH) // datetime.timedelta(microseconds=1)


def check_raw(rows, good):
    assert len(rows) == len(good), f"{len(rows)} rows for {len(good)} good events"
    by_id = {r["transaction_id"]: r for r in rows}
    assert len(by_id) == len(good), "a transaction twice"
    assert len({(r["partition"], r["sequenceNumber"]) for r in rows}) == len(rows)
    for e in good:
        r = by_id[e["transaction_id"]]
        for k in ("customer_id", "category", "location", "payment_method"):
            assert r[k] == e[k], (k, r, e)
        assert r["amount"] == e["amount"] and r["amount_usd"] == e["amount"]
        assert us(r["timestamp"]) == ts_us(e["timestamp"])
        assert r["processing_date"] == datetime.date.fromisoformat(e["timestamp"][:10])
        assert r["ingestion_time"] is not None and r["processing_time"] is not None


def check_windows(rows, want):
    got = {(us(r["window_start"]), us(r["window_end"]), r["category"]):
           (r["txn_count"], r["total_amount"], r["avg_amount"]) for r in rows}
    assert len(got) == len(rows), "a window emitted twice"
    assert set(got) == set(want), (sorted(set(got) ^ set(want))[:5])
    for k, (n, s) in want.items():
        gn, gs, ga = got[k]
        assert gn == n, k
        assert abs(gs - s) < 1e-6 * max(1.0, s), (k, gs, s)
        assert abs(ga - s / n) < 1e-6 * max(1.0, s / n), (k, ga, s / n)


def last_console_table(stdout):
    """The rows of the last table the console sink printed."""
    blocks = stdout.split("Batch: ")
    assert len(blocks) > 1, "the console sink printed nothing"
    lines = [l for l in blocks[-1].splitlines() if l.startswith("|")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(head, (c.strip() for c in l.strip("|").split("|")))) for l in lines[1:]]


def check_console(stdout, events):
    want = windows(events, 10, 5, "location")
    got = {}
    for r in last_console_table(stdout):
        s = ts_us(r["window_start"].replace(" ", "T"))
        e = ts_us(r["window_end"].replace(" ", "T"))
        got[(s, e, r["location"])] = (int(r["txn_count"]), float(r["revenue"]))
    assert set(got) == set(want)
    for k, (n, s) in want.items():
        assert got[k][0] == n and abs(got[k][1] - s) < 1e-6 * max(1.0, s), k


def test_tutorial_local(emu, tmp_path):
    root = tmp_path / "lake"
    good = transactions(N)
    # A watermark longer than the events' span: nothing is late, no window
    # closes in the first run; the second run's later events close them all.
    conf = tutorial_conf(emu, tmp_path, root, watermark="3 hours")
    send_lines(emu, tmp_path, good[:N // 2] + BAD + good[N // 2:])
    p, prog = run_agent(conf, tmp_path, "--available-now", tag="run1")
    assert p.returncode == 0, p.stderr
    raw = str(root / "raw/transactions-streaming")
    check_raw(rows_of(raw), good)
    # DuckDB over the table's files, as Step 6.3 groups them
    files = DeltaTable(raw).file_uris()
    got = duckdb.connect().execute(
        "SELECT category, location, count(*), sum(amount) FROM read_parquet(?, "
        "hive_partitioning=true) GROUP BY 1, 2", [files]).fetchall()
    want = {}
    for e in good:
        w = want.setdefault((e["category"], e["location"]), [0, 0.0])
        w[0] += 1
        w[1] += e["amount"]
    assert {(c, l): n for c, l, n, _ in got} == {k: v[0] for k, v in want.items()}
    for c, l, _, s in got:
        assert abs(s - want[(c, l)][1]) < 1e-6 * s
    dl = rows_of(str(root / "raw/dead-letter"))
    assert sorted(r["body"] for r in dl) == sorted(BAD)
    assert all(r["reason"] and r["reason_code"] for r in dl)
    cat = str(root / "curated/transaction-analytics/by-category")
    assert rows_of(cat) == [], "a window was emitted before the watermark passed it"
    check_console(p.stdout, good)
    # progress: Spark's StreamingQueryProgress fields, every input event counted once
    names = {l["name"] for l in prog}
    assert names == {"raw", "by_category", "by_location", "dead_letter"}, names
    for l in prog:
        for k in ("id", "runId", "batchId", "numInputRows", "inputRowsPerSecond",
                  "processedRowsPerSecond", "durationMs", "sources", "sink", "stateOperators"):
            assert k in l, (k, l)
        assert "triggerExecution" in l["durationMs"]
    assert sum(l["numInputRows"] for l in prog if l["name"] == "raw") == N + len(BAD)
    w = [l for l in prog if l["name"] == "by_category"][-1]
    assert w["stateOperators"][0]["numRowsTotal"] == len(windows(good, 5, 5, "category"))
    assert w["eventTime"]["watermark"] is not None
    ends = [l["sources"][0]["endOffset"]["tx"] for l in prog if l["name"] == "raw"][-1]
    assert sum(int(v) + 1 for v in ends.values()) == N + len(BAD)

    # second run, nothing new: nothing written
    p2, prog2 = run_agent(conf, tmp_path, "--available-now", tag="run2")
    assert p2.returncode == 0, p2.stderr
    assert len(rows_of(raw)) == N and prog2 == []

    # later events push the watermark past every window of the first run
    late = transactions(4, seed=3, start=T0 + datetime.timedelta(hours=10), jitter_s=0,
                        first_id=900001)
    send_lines(emu, tmp_path, late, name="late.jsonl")
    p3, _ = run_agent(conf, tmp_path, "--available-now", tag="run3")
    assert p3.returncode == 0, p3.stderr
    check_raw(rows_of(raw), good + late)
    check_windows(rows_of(cat), windows(good, 5, 5, "category"))
    dfiles = DeltaTable(cat).file_uris()
    n, = duckdb.connect().execute("SELECT sum(txn_count) FROM read_parquet(?)", [dfiles]).fetchone()
    assert n == N


def test_tutorial_azurite(emu, tmp_path):
    from delta_util import DEV_KEY, Azurite, azurite_bin
    if not azurite_bin():
        pytest.skip("azurite not installed (.tools/node)")
    az = Azurite()
    os.environ["AZURITE_BLOB_STORAGE_URL"] = f"http://127.0.0.1:{az.port}"
    try:
        root = az.url("lake")
        good = transactions(500, seed=5)
        keyf = tmp_path / "key"
        keyf.write_text(DEV_KEY + "\n")
        conf = tutorial_conf(emu, tmp_path, root, watermark="3 hours",
                             storage=f"[storage]\nauth = shared-key\naccount_key_file = {keyf}\n")
        send_lines(emu, tmp_path, good + BAD[:2])
        p, prog = run_agent(conf, tmp_path, "--available-now")
        assert p.returncode == 0, p.stderr
        assert DEV_KEY not in p.stderr and DEV_KEY not in p.stdout
        opts = az.delta_rs_options()
        check_raw(rows_of(f"az://lake/raw/transactions-streaming", storage_options=opts), good)
        dl = rows_of("az://lake/raw/dead-letter", storage_options=opts)
        assert sorted(r["body"] for r in dl) == sorted(BAD[:2])
    finally:
        az.stop()


def test_bad_config_every_problem_at_once(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("[source]\nprefetch = lots\n[sink a]\ntype = parquet\n[sink b]\n"
                    "window = 5 minutes\n")
    p = subprocess.run([EHDELTA, "run", "--config", str(conf)], capture_output=True, text=True)
    assert p.returncode == 2
    lines = [l for l in p.stderr.splitlines() if re.match(r".*bad\.conf:\d+: ", l)]
    assert len(lines) >= 4, p.stderr


def test_schema_mismatch_is_refused(emu, tmp_path):
    root = tmp_path / "lake"
    conf = tutorial_conf(emu, tmp_path, root)
    send_lines(emu, tmp_path, transactions(10))
    p, _ = run_agent(conf, tmp_path, "--available-now")
    assert p.returncode == 0, p.stderr
    text = conf.read_text().replace("derive = amount_usd = amount\n", "")
    conf.write_text(text)
    p2, _ = run_agent(conf, tmp_path, "--available-now", tag="run2")
    assert p2.returncode == 2, p2.stderr
    assert "schema" in p2.stderr and "amount_usd" in p2.stderr
    assert len(p2.stderr.strip().splitlines()[-1]) < 1500


def test_merge_schema_adds_a_nullable_column(emu, tmp_path):
    root = tmp_path / "lake"
    conf = tutorial_conf(emu, tmp_path, root)
    send_lines(emu, tmp_path, transactions(10))
    p, _ = run_agent(conf, tmp_path, "--available-now")
    assert p.returncode == 0, p.stderr
    text = conf.read_text().replace("derive = amount_usd = amount\n",
                                    "derive = amount_usd = amount\nderive = amount_eur = amount * 0.5\n")
    conf.write_text(text)
    send_lines(emu, tmp_path, transactions(5, first_id=101), name="more.jsonl")
    p2, _ = run_agent(conf, tmp_path, "--available-now", tag="refused")
    assert p2.returncode == 2 and "merge_schema = true" in p2.stderr, p2.stderr
    conf.write_text(text.replace("partition_by = processing_date\n",
                                 "partition_by = processing_date\nmerge_schema = true\n"))
    p3, _ = run_agent(conf, tmp_path, "--available-now", tag="merged")
    assert p3.returncode == 0, p3.stderr
    raw = str(root / "raw/transactions-streaming")
    rows = rows_of(raw)
    assert len(rows) == 15
    for r in rows:
        if r["transaction_id"] >= "T0000101":
            assert r["amount_eur"] == r["amount"] * 0.5
        else:
            assert r["amount_eur"] is None
    files = DeltaTable(raw).file_uris()
    n, = duckdb.connect().execute("SELECT count(amount_eur) FROM read_parquet(?, "
                                  "union_by_name=true, hive_partitioning=true)", [files]).fetchone()
    assert n == 5


def test_partitions_and_positions(emu, tmp_path):
    """[source] partitions picks some, partition_position starts one of them
    elsewhere, starting_position the rest."""
    send_lines(emu, tmp_path, transactions(40))
    conf = tmp_path / "pos.conf"
    conf.write_text(f"""[source]
connection_string_file = {emu.cs_file}
partitions = 0, 1, 2
starting_position = earliest
partition_position = 1 = seq:5
partition_position = 2 = seq>7
[schema]
columns = transaction_id STRING, amount DOUBLE
metadata = sequence_number AS seq, partition
[sink raw]
path = {tmp_path}/raw
trigger = available-now
""")
    p, _ = run_agent(conf, tmp_path)
    assert p.returncode == 0, p.stderr
    got = {}
    for r in rows_of(str(tmp_path / "raw")):
        got.setdefault(r["partition"], []).append(r["seq"])
    assert {k: sorted(v) for k, v in got.items()} == {
        "0": list(range(10)), "1": list(range(5, 10)), "2": [8, 9]}, got
