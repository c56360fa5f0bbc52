"""delta-rs (deltalake) against tables ehdelta writes on local disk, and
ehdelta's snapshot against tables delta-rs writes."""
import json
import os
import subprocess

import pyarrow as pa
import pytest
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake

from delta_util import DL_TOOL, EHDELTA, ROWS, expected_ids, run, snapshot, tool


def ids_of(dt):
    return dt.to_pyarrow_table(columns=["id"]).column("id").to_pylist()


def test_delta_rs_reads_every_version(tmp_path):
    t = str(tmp_path / "t")
    tool("create", t, "--partitioned")
    tool("append", t, "app-a", 1, 25, ROWS)
    dt = DeltaTable(t)
    assert dt.version() == 25
    assert os.path.exists(os.path.join(t, "_delta_log", "00000000000000000020.checkpoint.parquet"))
    names = [f.name for f in dt.schema().fields]
    assert names == ["id", "name", "value", "ts", "flag", "part"]
    assert dt.metadata().partition_columns == ["part"]
    for v in range(26):
        dv = DeltaTable(t, version=v)
        ids = ids_of(dv)
        assert sorted(ids) == sorted(expected_ids(1, v)), f"version {v}"
        if v:
            assert dv.transaction_version("app-a") == v - 1
    hist = dt.history()
    assert len(hist) == 26
    assert [h["operation"] for h in hist][-1] == "CREATE TABLE"
    assert all(h["operation"] == "STREAMING UPDATE" for h in hist[:-1])
    assert sorted(h["version"] for h in hist) == list(range(26))
    # stats: numRecords in every add matches the rows delta-rs reads
    snap = snapshot(t)
    assert sum(json.loads(f["stats"])["numRecords"] for f in snap["files"]) == 25 * ROWS
    assert snap["txn"] == {"app-a": 24}


def test_snapshot_reads_tables_delta_rs_writes_with_checkpoints(tmp_path):
    t = str(tmp_path / "rs")
    for i in range(23):
        data = pa.table({"id": pa.array([i * 10 + k for k in range(10)], pa.int64()),
                         "d": pa.array([f"2024-01-0{i % 3 + 1}"] * 10)})
        cp = CommitProperties(app_transactions=[Transaction("rs-app", i)])
        write_deltalake(t, data, mode="append", partition_by=["d"], commit_properties=cp)
        if i in (9, 17):
            DeltaTable(t).create_checkpoint()
    dt = DeltaTable(t)
    dt.optimize.compact()  # removes in the log after the last checkpoint
    dt = DeltaTable(t)
    snap = snapshot(t)
    assert snap["version"] == dt.version()
    assert snap["checkpoint"] == 17
    assert snap["txn"] == {"rs-app": 22}
    ours = sorted(f["path"] for f in snap["files"])
    theirs = sorted(os.path.relpath(u.replace("file://", ""), t) for u in dt.file_uris())
    assert ours == theirs
    assert sum(json.loads(f["stats"])["numRecords"] for f in snap["files"]) == 230
    assert all(set(f["partitionValues"]) == {"d"} for f in snap["files"])
    # a checkpoint delta-rs wrote at the latest version: read from it alone
    dt.create_checkpoint()
    snap2 = snapshot(t)
    assert snap2["checkpoint"] == dt.version()
    assert sorted(f["path"] for f in snap2["files"]) == theirs
    assert snap2["txn"] == {"rs-app": 22}


def test_several_txns_in_one_commit_for_delta_rs(tmp_path):
    """A sink's commit carries its batch txn and one txn per partition
    (appId QUERY/PARTITION): delta-rs reads every version and every txn,
    from JSON and from ehdelta's checkpoint, appends on top with its own
    transaction and checkpoint, and ehdelta reads all the txns back."""
    t = str(tmp_path / "p")
    tool("create", t, "--partitioned")
    tool("append", t, "q", 1, 23, ROWS, "--ptxns", 4)  # checkpoint at 20
    log = os.path.join(t, "_delta_log")
    with open(os.path.join(log, "00000000000000000005.json")) as f:
        apps = [json.loads(line)["txn"]["appId"] for line in f if line.startswith('{"txn"')]
    assert apps == ["q", "q/0", "q/1", "q/2", "q/3"]
    assert os.path.exists(os.path.join(log, "00000000000000000020.checkpoint.parquet"))
    dt = DeltaTable(t)
    assert dt.version() == 23
    assert sorted(ids_of(dt)) == sorted(expected_ids(1, 23))
    assert dt.transaction_version("q") == 22
    assert [dt.transaction_version(f"q/{p}") for p in range(4)] == [2200, 2201, 2202, 2203]
    for v in (1, 20, 21):
        dv = DeltaTable(t, version=v)
        assert sorted(ids_of(dv)) == sorted(expected_ids(1, v)), f"version {v}"
        assert dv.transaction_version("q/3") == (v - 1) * 100 + 3
    # only the checkpoint may be read for version 20
    for v in range(21):
        os.rename(os.path.join(log, "%020d.json" % v), os.path.join(log, ".%020d.json" % v))
    assert DeltaTable(t).transaction_version("q/2") == 2202
    for v in range(21):
        os.rename(os.path.join(log, ".%020d.json" % v), os.path.join(log, "%020d.json" % v))
    cp = CommitProperties(app_transactions=[Transaction("rs-app", 7)])
    write_deltalake(t, pa.table({"id": pa.array([5, 6], pa.int64()), "part": ["x", "x"]}),
                    mode="append", schema_mode="merge", commit_properties=cp)
    DeltaTable(t).create_checkpoint()
    snap = snapshot(t)
    assert snap["checkpoint"] == 24
    assert snap["txn"] == {"q": 22, "q/0": 2200, "q/1": 2201, "q/2": 2202, "q/3": 2203,
                           "rs-app": 7}
    # and a writer going on from there keeps its bases
    tool("append", t, "q", 1, 25, ROWS, "--ptxns", 4)
    assert snapshot(t)["txn"]["q/1"] == 2401


def test_concurrent_appends_local(tmp_path):
    t = str(tmp_path / "c")
    tool("create", t)
    procs = [subprocess.Popen([DL_TOOL, "append", t, f"w{w}", str(w), "200", str(ROWS)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for w in range(4)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (o, e) in zip(procs, outs):
        assert p.returncode == 0, e
    stats = [json.loads(o) for o, _ in outs]
    assert sum(s["commits"] for s in stats) == 800
    log = sorted(f for f in os.listdir(os.path.join(t, "_delta_log")) if f.endswith(".json"))
    assert log == [f"{v:020d}.json" for v in range(801)]  # contiguous, no gaps
    dt = DeltaTable(t)
    assert dt.version() == 800
    ids = ids_of(dt)
    assert len(ids) == len(set(ids)) == 800 * ROWS
    assert set(ids) == set().union(*(expected_ids(w, 200) for w in range(4)))
    for w in range(4):
        assert dt.transaction_version(f"w{w}") == 199
    assert snapshot(t)["txn"] == {f"w{w}": 199 for w in range(4)}
    print("local concurrency:", stats)


def test_restarted_writer_skips_committed_batches(tmp_path):
    t = str(tmp_path / "r")
    tool("create", t)
    tool("append", t, "sink", 7, 5, ROWS)
    out = json.loads(tool("append", t, "sink", 7, 8, ROWS).stdout)
    assert out["commits"] == 3  # batches 0..4 were already in the table
    ids = ids_of(DeltaTable(t))
    assert sorted(ids) == sorted(expected_ids(7, 8))


def test_optimize_then_vacuum_keeps_rows_with_fewer_files(tmp_path):
    t = str(tmp_path / "o")
    tool("create", t, "--partitioned")
    tool("append", t, "a", 2, 40, ROWS)
    before = DeltaTable(t)
    rows_before = sorted(ids_of(before))
    files_before = len(before.file_uris())
    out = run([EHDELTA, "optimize", t]).stdout
    assert "files_removed=40" in out and "files_added=3" in out
    refused = run([EHDELTA, "vacuum", t, "--retain", "0s"], check=False)
    assert refused.returncode == 2 and "deletedFileRetentionDuration" in refused.stderr
    plan = run([EHDELTA, "vacuum", t, "--retain", "0s", "--force", "--dry-run"]).stdout
    assert "files=40" in plan
    out = run([EHDELTA, "vacuum", t, "--retain", "0s", "--force"]).stdout
    assert "files=40" in out
    after = DeltaTable(t)
    assert sorted(ids_of(after)) == rows_before
    assert len(after.file_uris()) == 3 < files_before
    assert after.history(1)[0]["operation"] == "OPTIMIZE"
    on_disk = [f for r, _, fs in os.walk(t) if "_delta_log" not in r for f in fs
               if f.endswith(".parquet")]
    assert len(on_disk) == 3
    # delta-rs agrees the compaction is not a data change: a streaming reader
    # of version 41 sees only dataChange=false actions
    adds = json.loads(open(os.path.join(t, "_delta_log", f"{41:020d}.json")).read().splitlines()[-1])
    assert adds["add"]["dataChange"] is False


def test_missing_table_is_one_clear_error(tmp_path):
    p = run([EHDELTA, "optimize", str(tmp_path / "nothing")], check=False)
    assert p.returncode == 4
    assert "no Delta table" in p.stderr


def test_inspect_table_agrees_with_delta_rs(tmp_path):
    t = str(tmp_path / "i")
    tool("create", t, "--partitioned")
    tool("append", t, "ins", 9, 13, ROWS)
    info = json.loads(run([EHDELTA, "inspect", "--json", t]).stdout)
    dt = DeltaTable(t)
    assert info["version"] == dt.version() == 13
    assert info["rows"] == dt.count() == 13 * ROWS
    assert info["files"] == len(dt.file_uris())
    assert info["txn"] == {"ins": dt.transaction_version("ins")}
    assert info["partitionColumns"] == ["part"]
    assert sum(p["rows"] for p in info["partitions"].values()) == 13 * ROWS
    assert [f["name"] for f in info["schema"]["fields"]] == [f.name for f in dt.schema().fields]
    assert info["checkpointVersion"] == 10
    text = run([EHDELTA, "inspect", t]).stdout
    assert "txn: 1\n  ins version=12\n" in text and f"rows: {13 * ROWS}\n" in text
