"""The raw sink's two paths give the same table. When one raw sink takes every
row of a block (no filter, no restart skip) the agent decodes straight into
its batch and the other sinks read a view of that batch's tail; otherwise the
rows are decoded into a chunk and copied into each sink. Here the same events
go through: the fast path alone, a filter that keeps every row (the general
path), and a second raw sink added after a first run (the first sink skips
what it already has, then takes the fast path while the second copies from
its view). Nested columns and derived columns that read them go through the
views too. The raw tables must hold the same rows, and the fast and general
paths the same Parquet bytes; the window tables must be the same."""
import hashlib
import json
import os

import pytest
from deltalake import DeltaTable

from agentutil import BAD, Emu, run_agent, send_lines, transactions

N = 3000


@pytest.fixture
def emu(tmp_path):
    e = Emu(tmp_path, partitions=1)  # one partition: rows in one order, files comparable
    yield e
    e.stop()


def events(n, first_id=1, seed=5):
    out = transactions(n, seed=seed, first_id=first_id)
    for i, e in enumerate(out):
        if i % 5:
            e["geo"] = {"city": f"city{i % 13}", "lat": i / 8}
        if i % 3:
            e["tags"] = [f"t{j}" for j in range(i % 4)]
        if i % 17 == 0:
            del e["amount"]  # a null the keep-everything filter must keep
    return out


def conf(emu, tmp_path, name, filt="", raw2=False):
    root = tmp_path / name
    c = tmp_path / f"{name}{'-raw2' if raw2 else ''}.conf"
    second = f"""
[sink raw2]
path = {root}/raw2
trigger = 1 hour
""" if raw2 else ""
    c.write_text(f"""
[source]
connection_string_file = {emu.cs_file}
starting_position = earliest
[schema]
columns = transaction_id STRING, customer_id STRING, amount DOUBLE, category STRING, timestamp TIMESTAMP, location STRING, payment_method STRING, geo STRUCT<city: STRING, lat: DOUBLE>, tags ARRAY<STRING>
metadata = enqueued_time AS ingestion_time, offset, sequence_number AS sequenceNumber, partition
derive = processing_date = to_date(timestamp)
derive = amount_usd = amount
derive = city = upper(geo.city)
{filt}
[sink raw]
path = {root}/raw
partition_by = processing_date
trigger = 1 hour
{second}
[sink by_category]
path = {root}/by-category
window = timestamp, 5 minutes
group_by = category
aggregate = count(*) AS txn_count, sum(amount) AS total_amount, avg(amount) AS avg_amount
watermark = timestamp, 10 minutes
output_mode = append
trigger = 1 hour

[dead_letter]
path = {root}/dead-letter
""")
    return c, root


def rows(path):
    got = DeltaTable(str(path)).to_pyarrow_table().to_pylist()
    return sorted(got, key=lambda r: json.dumps(r, sort_keys=True, default=str))


def file_digests(path):
    return sorted(hashlib.sha256(open(u.removeprefix("file://"), "rb").read()).hexdigest()
                  for u in DeltaTable(str(path)).file_uris())


def run_ok(c, tmp_path, tag):
    p, prog = run_agent(c, tmp_path, "--available-now", tag=tag)
    assert p.returncode == 0, p.stderr
    return prog


def test_fast_and_general_paths_write_the_same_tables(emu, tmp_path):
    first, second = events(N // 2), events(N // 2, first_id=N // 2 + 1, seed=6)
    fast, fast_root = conf(emu, tmp_path, "fast")
    general, general_root = conf(emu, tmp_path, "general",
                                 filt="filter = amount >= 0 OR amount IS NULL")
    two, two_root = conf(emu, tmp_path, "two")
    two_b, _ = conf(emu, tmp_path, "two", raw2=True)

    send_lines(emu, tmp_path, first + BAD[:2], name="first.jsonl")
    for c, tag in ((fast, "fast1"), (general, "general1"), (two, "two1")):
        run_ok(c, tmp_path, tag)
    send_lines(emu, tmp_path, second + BAD[2:], name="second.jsonl")
    for c, tag in ((fast, "fast2"), (general, "general2")):
        run_ok(c, tmp_path, tag)
    prog = run_ok(two_b, tmp_path, "two2")
    # the second run's raw sink counts only what it did not have
    assert sum(l["numInputRows"] for l in prog if l["name"] == "raw") == len(second) + 3
    assert sum(l["numInputRows"] for l in prog if l["name"] == "raw2") == N + len(BAD)

    want = rows(fast_root / "raw")
    assert len(want) == N
    assert sorted(r["transaction_id"] for r in want) == sorted(
        e["transaction_id"] for e in first + second)
    assert sum(r["amount"] is None for r in want) == sum("amount" not in e for e in first + second)
    assert {r["city"] for r in want} >= {"CITY0", "CITY12", None}
    assert any(r["tags"] for r in want) and any(r["tags"] is None for r in want)
    assert rows(general_root / "raw") == want
    assert rows(two_root / "raw") == want
    assert rows(two_root / "raw2") == want
    # the same rows in the same batches: the same files, byte for byte
    assert file_digests(general_root / "raw") == file_digests(fast_root / "raw")
    assert file_digests(two_root / "raw") == file_digests(fast_root / "raw")

    win = rows(fast_root / "by-category")
    assert win and sum(r["txn_count"] for r in win) <= N
    assert rows(general_root / "by-category") == win
    assert rows(two_root / "by-category") == win
    for root in (general_root, two_root):
        assert sorted(r["body"] for r in rows(root / "dead-letter")) == sorted(BAD)
    assert os.path.isdir(two_root / "raw2" / "_delta_log")
