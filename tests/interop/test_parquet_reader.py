"""Our Parquet reader (through tests/tools/pq_tool read) against files nobody
here wrote: delta-rs checkpoints, pyarrow files with v1/v2 pages, dictionary
and plain encodings, snappy/zstd/none; and against damaged files (a clear
error, never a crash)."""
import json
import math
import os
import random
import subprocess

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pqutil import TOOL, arrow_rows, expect_rows, ours_rows, read_ours, same
from test_parquet_writer import rand_field, rand_value


def to_arrow_type(f):
    t = f["type"]
    simple = {"boolean": pa.bool_(), "int32": pa.int32(), "int64": pa.int64(), "float": pa.float32(),
              "double": pa.float64(), "string": pa.string(), "binary": pa.binary(), "date": pa.date32(),
              "timestamp": pa.timestamp("us", tz="UTC")}
    if t in simple:
        return simple[t]
    if t == "struct":
        return pa.struct([pa.field(g["name"], to_arrow_type(g), g.get("nullable", True)) for g in f["fields"]])
    if t == "list":
        e = f["element"]
        return pa.list_(pa.field("element", to_arrow_type(e), e.get("nullable", True)))
    v = f["value"]
    return pa.map_(to_arrow_type(f["key"]), pa.field("value", to_arrow_type(v), v.get("nullable", True)))


def to_py(f, v):
    """JSON spec value -> a value pyarrow accepts for to_arrow_type(f)."""
    if v is None:
        return None
    t = f["type"]
    if t in ("float", "double"):
        return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(v, v) if isinstance(v, str) else v
    if t == "binary":
        return bytes.fromhex(v)
    if t == "timestamp":
        return pa.scalar(v, pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    if t == "date":
        return pa.scalar(v, pa.int32()).cast(pa.date32())
    if t == "struct":
        return {g["name"]: to_py(g, v.get(g["name"])) for g in f["fields"]}
    if t == "list":
        return [to_py(f["element"], e) for e in v]
    if t == "map":
        return [(to_py(f["key"], k), to_py(f["value"], x)) for k, x in v]
    return v


def arrow_table(spec):
    fields = [pa.field(f["name"], to_arrow_type(f), f.get("nullable", True)) for f in spec["schema"]]
    cols = [pa.array([to_py(f, r[i]) for r in spec["rows"]], type=fl.type) for i, (f, fl) in enumerate(zip(spec["schema"], fields))]
    return pa.Table.from_arrays(cols, schema=pa.schema(fields))


def test_reads_pyarrow_files_v1_v2_dictionary_codecs(tmp_path):
    rnd = random.Random(99)
    n = 0
    for case in range(120):
        schema = [rand_field(rnd, 0, f"c{i}") for i in range(rnd.randint(1, 4))]
        rows = [[rand_value(rnd, f) for f in schema] for _ in range(rnd.choice([0, 1, 5, 200]))]
        spec = {"schema": schema, "rows": rows}
        t = arrow_table(spec)
        path = tmp_path / f"pa{case}.parquet"
        pq.write_table(t, path, data_page_version=rnd.choice(["1.0", "2.0"]),
                       compression=rnd.choice(["snappy", "zstd", "none"]), use_dictionary=rnd.random() < 0.6,
                       row_group_size=rnd.choice([7, 1000]), data_page_size=rnd.choice([64, 1 << 20]))
        dump = read_ours(path)
        assert same(ours_rows(spec, dump), expect_rows(spec)), f"case {case}: {json.dumps(spec)[:1500]}"
        n += 1
    assert n == 120


def test_reads_a_delta_rs_checkpoint(tmp_path):
    deltalake = pytest.importorskip("deltalake")
    table = str(tmp_path / "tbl")
    for i in range(4):
        t = pa.table({"id": pa.array([i * 10 + k for k in range(3)], pa.int64()),
                      "region": pa.array(["eu", "us", "eu"]),
                      "name": pa.array([f"n{i}", None, "ü"])})
        deltalake.write_deltalake(table, t, mode="append", partition_by=["region"],
                                  configuration={"delta.appendOnly": "true"} if i == 0 else None)
    dt = deltalake.DeltaTable(table)
    dt.create_checkpoint()
    ver = dt.version()
    cp = os.path.join(table, "_delta_log", f"{ver:020d}.checkpoint.parquet")
    assert os.path.exists(cp)
    dump = read_ours(cp)
    cols = dump["columns"]
    actions = [dict(zip(cols, r)) for r in dump["rows"]]
    adds = [a["add"] for a in actions if a.get("add")]
    # Same files, sizes and partition values as delta-rs reports.
    want = pa.table(dt.get_add_actions(flatten=True)).to_pylist()
    assert sorted(a["path"] for a in adds) == sorted(w["path"] for w in want)
    by_path = {w["path"]: w for w in want}
    for a in adds:
        w = by_path[a["path"]]
        assert a["size"] == w["size_bytes"]
        assert dict(a["partitionValues"]) == {"region": w["partition.region"]}
        assert a["dataChange"] in (True, False)
        stats = json.loads(a["stats"])
        assert stats["numRecords"] == w["num_records"]
    proto = [a["protocol"] for a in actions if a.get("protocol")]
    assert len(proto) == 1
    p = dt.protocol()
    assert proto[0]["minReaderVersion"] == p.min_reader_version
    assert proto[0]["minWriterVersion"] == p.min_writer_version
    meta = [a["metaData"] for a in actions if a.get("metaData")]
    assert len(meta) == 1
    m = dt.metadata()
    assert meta[0]["id"] == m.id
    assert meta[0]["partitionColumns"] == list(m.partition_columns)
    assert dict(meta[0]["configuration"]) == dict(m.configuration)
    assert json.loads(meta[0]["schemaString"])["fields"][0]["name"] == "id"


def run_read(path):
    return subprocess.run([TOOL, "read", str(path)], capture_output=True, text=True, errors="replace", timeout=60)


def good_file(tmp_path):
    rnd = random.Random(5)
    schema = [rand_field(rnd, 0, f"c{i}") for i in range(4)]
    spec = {"schema": schema, "rows": [[rand_value(rnd, f) for f in schema] for _ in range(60)]}
    t = arrow_table(spec)
    p = tmp_path / "good.parquet"
    pq.write_table(t, p, compression="zstd")
    return p.read_bytes()


@pytest.mark.parametrize("name,mutate,msg", [
    ("truncated", lambda b: b[: len(b) // 2], "magic"),
    ("tiny", lambda b: b[:7], "too short"),
    ("bad magic", lambda b: b"PAR0" + b[4:], "magic"),
    ("footer past the file", lambda b: b[:-8] + (len(b)).to_bytes(4, "little") + b"PAR1", "footer length"),
    ("empty footer", lambda b: b"PAR1" + (0).to_bytes(4, "little") + b"PAR1", "footer"),
])
def test_bad_files_give_clear_errors(tmp_path, name, mutate, msg):
    p = tmp_path / "bad.parquet"
    p.write_bytes(mutate(good_file(tmp_path)))
    r = run_read(p)
    assert r.returncode == 3, (r.returncode, r.stderr)
    assert msg in r.stderr


def test_unknown_thrift_type_in_footer(tmp_path):
    b = good_file(tmp_path)
    flen = int.from_bytes(b[-8:-4], "little")
    start = len(b) - 8 - flen
    footer = bytearray(b[start:-8])
    footer[0] = (footer[0] & 0xF0) | 0x0E  # type 14 does not exist
    p = tmp_path / "bad.parquet"
    p.write_bytes(b[:start] + bytes(footer) + b[-8:])
    r = run_read(p)
    assert r.returncode == 3 and "unknown thrift" in r.stderr


def test_random_damage_never_crashes(tmp_path):
    base = good_file(tmp_path)
    rnd = random.Random(1234)
    codes = {}
    for i in range(300):
        b = bytearray(base)
        for _ in range(rnd.randint(1, 8)):
            pos = rnd.randrange(len(b))
            b[pos] = rnd.randrange(256)
        if rnd.random() < 0.2:
            cut = rnd.randrange(len(b))
            b = b[:cut] + b[-8:]
        p = tmp_path / "m.parquet"
        p.write_bytes(bytes(b))
        r = run_read(p)
        assert r.returncode in (0, 3), f"mutation {i}: exit {r.returncode} {r.stderr[-500:]}"
        codes[r.returncode] = codes.get(r.returncode, 0) + 1
    assert codes.get(3, 0) > 0


def test_inspect_json_agrees_with_pyarrow_metadata(tmp_path):
    ehdelta = os.path.join(os.environ.get("EHDELTA_TOP_BUILDDIR", "."), "ehdelta")
    t = pa.table({"id": pa.array([3, None, -7], pa.int64()), "s": pa.array(["b", "a", None]),
                  "l": pa.array([[1.5], [], None], pa.list_(pa.float64()))})
    p = tmp_path / "x.parquet"
    pq.write_table(t, p, compression="snappy", row_group_size=2)
    r = subprocess.run([ehdelta, "inspect", "--json", str(p)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    md = pq.ParquetFile(p).metadata
    assert j["num_rows"] == md.num_rows and j["size"] == p.stat().st_size
    assert j["created_by"] == md.created_by
    assert [s["path"] for s in j["schema"] if "path" in s] == ["id", "s", "l.list.element"]
    assert len(j["row_groups"]) == md.num_row_groups
    for g, rg in enumerate(j["row_groups"]):
        assert rg["num_rows"] == md.row_group(g).num_rows
        for c, col in enumerate(rg["columns"]):
            m = md.row_group(g).column(c)
            assert col["codec"] == m.compression
            assert set(col["encodings"]) == set(m.encodings)
            assert col["num_values"] == m.num_values
            assert col["total_compressed_size"] == m.total_compressed_size
            assert col["data_page_offset"] == m.data_page_offset
            st = col["statistics"]
            assert st["null_count"] == m.statistics.null_count
            if m.statistics.has_min_max:
                assert st["min"] == m.statistics.min and st["max"] == m.statistics.max
    txt = subprocess.run([ehdelta, "inspect", str(p)], capture_output=True, text=True, timeout=60)
    assert txt.returncode == 0 and "row group 1: 1 rows" in txt.stdout
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(p.read_bytes()[:-3])
    r = subprocess.run([ehdelta, "inspect", str(bad)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "bad magic" in r.stderr


def test_delta_rs_loads_a_checkpoint_rewritten_by_our_writer(tmp_path):
    """delta-rs checkpoint -> our reader -> our writer -> delta-rs, with the
    JSON commits it covers deleted, so only our file can supply the state."""
    deltalake = pytest.importorskip("deltalake")
    table = str(tmp_path / "tbl")
    for i in range(5):
        t = pa.table({"id": pa.array([i * 10 + k for k in range(4)], pa.int64()),
                      "region": pa.array(["eu", "us", "eu", "apac"]),
                      "v": pa.array([1.5 * i, None, -0.0, 3.25])})
        deltalake.write_deltalake(table, t, mode="append", partition_by=["region"],
                                  configuration={"delta.checkpointInterval": "100"} if i == 0 else None)
    dt = deltalake.DeltaTable(table)
    want_files = sorted(dt.file_uris())
    want_rows = sorted(pa.table(dt.to_pyarrow_table()).to_pylist(), key=lambda r: (r["id"], r["region"]))
    dt.create_checkpoint()
    ver = dt.version()
    log = os.path.join(table, "_delta_log")
    cp = os.path.join(log, f"{ver:020d}.checkpoint.parquet")
    ours = cp + ".ours"
    r = subprocess.run([TOOL, "copy", cp, ours], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    os.replace(ours, cp)
    assert pq.ParquetFile(cp).metadata.created_by.startswith("ehdelta version ")
    lc = os.path.join(log, "_last_checkpoint")
    if os.path.exists(lc):
        j = json.loads(open(lc).read())
        j["size"] = j.get("size")
        if "sizeInBytes" in j:
            j["sizeInBytes"] = os.path.getsize(cp)
        j.pop("checksum", None)
        open(lc, "w").write(json.dumps(j))
    for v in range(ver + 1):
        os.remove(os.path.join(log, f"{v:020d}.json"))
    dt2 = deltalake.DeltaTable(table)
    assert dt2.version() == ver
    assert sorted(dt2.file_uris()) == want_files
    got_rows = sorted(pa.table(dt2.to_pyarrow_table()).to_pylist(), key=lambda r: (r["id"], r["region"]))
    assert got_rows == want_rows
    assert dict(dt2.metadata().configuration) == {"delta.checkpointInterval": "100"}


C3 = [  # delta-parquet.md C.3, the recommended V1 checkpoint schema
    {"name": "txn", "type": "struct", "fields": [
        {"name": "appId", "type": "string"}, {"name": "version", "type": "int64"},
        {"name": "lastUpdated", "type": "int64"}]},
    {"name": "add", "type": "struct", "fields": [
        {"name": "path", "type": "string"},
        {"name": "partitionValues", "type": "map", "key": {"type": "string", "nullable": False}, "value": {"type": "string"}},
        {"name": "size", "type": "int64"}, {"name": "modificationTime", "type": "int64"},
        {"name": "dataChange", "type": "boolean"},
        {"name": "tags", "type": "map", "key": {"type": "string", "nullable": False}, "value": {"type": "string"}},
        {"name": "stats", "type": "string"}]},
    {"name": "remove", "type": "struct", "fields": [
        {"name": "path", "type": "string"}, {"name": "deletionTimestamp", "type": "int64"},
        {"name": "dataChange", "type": "boolean"}, {"name": "extendedFileMetadata", "type": "boolean"},
        {"name": "partitionValues", "type": "map", "key": {"type": "string", "nullable": False}, "value": {"type": "string"}},
        {"name": "size", "type": "int64"}]},
    {"name": "metaData", "type": "struct", "fields": [
        {"name": "id", "type": "string"}, {"name": "name", "type": "string"}, {"name": "description", "type": "string"},
        {"name": "format", "type": "struct", "fields": [
            {"name": "provider", "type": "string"},
            {"name": "options", "type": "map", "key": {"type": "string", "nullable": False}, "value": {"type": "string"}}]},
        {"name": "schemaString", "type": "string"},
        {"name": "partitionColumns", "type": "list", "element": {"type": "string"}},
        {"name": "configuration", "type": "map", "key": {"type": "string", "nullable": False}, "value": {"type": "string"}},
        {"name": "createdTime", "type": "int64"}]},
    {"name": "protocol", "type": "struct", "fields": [
        {"name": "minReaderVersion", "type": "int32"}, {"name": "minWriterVersion", "type": "int32"}]},
]


def test_checkpoint_schema_levels_and_rows(tmp_path):
    from pqutil import write
    N = None
    rows = [
        [N, N, N, N, {"minReaderVersion": 1, "minWriterVersion": 2}],
        [N, N, N, {"id": "abc", "name": None, "description": None, "format": {"provider": "parquet", "options": []},
                   "schemaString": "{}", "partitionColumns": ["date", "region"],
                   "configuration": [["delta.appendOnly", "true"], ["delta.checkpointInterval", "10"]],
                   "createdTime": 1700000000000}, N],
        [N, {"path": "date=2024-01-01/a.parquet", "partitionValues": [["date", "2024-01-01"]], "size": 10,
             "modificationTime": 5, "dataChange": True, "tags": None, "stats": "{\"numRecords\":3}"}, N, N, N],
        [N, {"path": "b.parquet", "partitionValues": [["date", None]], "size": 11, "modificationTime": 6,
             "dataChange": False, "tags": [], "stats": None}, N, N, N],
        [N, {"path": "c.parquet", "partitionValues": [], "size": 12, "modificationTime": 7,
             "dataChange": True, "tags": [["k", "v"]], "stats": None}, N, N, N],
        [{"appId": "q", "version": 7, "lastUpdated": 9}, N, N, N, N],
        [N, N, {"path": "d.parquet", "deletionTimestamp": 8, "dataChange": True, "extendedFileMetadata": False,
                "partitionValues": [], "size": 3}, N, N],
    ]
    spec = {"schema": C3, "rows": rows}
    path, summary = write(tmp_path, spec, "00000000000000000010.checkpoint.parquet")
    s = pq.ParquetFile(path).schema
    levels = {s.column(i).path: (s.column(i).max_definition_level, s.column(i).max_repetition_level)
              for i in range(len(s))}
    assert len(levels) == 32
    assert levels["txn.appId"] == (2, 0)
    assert levels["add.partitionValues.key_value.key"] == (3, 1)
    assert levels["add.partitionValues.key_value.value"] == (4, 1)
    assert levels["metaData.format.options.key_value.key"] == (4, 1)
    assert levels["metaData.format.options.key_value.value"] == (5, 1)
    assert levels["metaData.partitionColumns.list.element"] == (4, 1)
    assert levels["protocol.minReaderVersion"] == (2, 0)
    assert same(arrow_rows(spec, pq.read_table(path)), expect_rows(spec))
    assert same(ours_rows(spec, read_ours(path)), expect_rows(spec))
    # D.7: null_count counts every entry below max_def, empty maps included.
    leaves = {l["path"]: l for l in summary["leaves"]}
    assert leaves["add.partitionValues.key_value.key"]["num_values"] == 7
    assert leaves["add.partitionValues.key_value.key"]["null_count"] == 5


@pytest.mark.parametrize("version", ["1.0", "2.0"])
def test_reads_delta_and_byte_stream_split_encodings(tmp_path, version):
    """What Spark's v2 writer and Arrow's column_encoding produce."""
    rnd = random.Random(11)
    n = 3000
    t = pa.table({
        "i32": pa.array([rnd.randint(-2**31, 2**31 - 1) if rnd.random() < 0.5 else i for i in range(n)], pa.int32()),
        "i64": pa.array([None if i % 7 == 0 else rnd.randint(-2**63, 2**63 - 1) for i in range(n)], pa.int64()),
        "s": pa.array([None if i % 5 == 0 else "pre%06d-%s" % (i // 3, "é" * (i % 4)) for i in range(n)]),
        "s2": pa.array(["" if i % 3 == 0 else "ü%d" % i for i in range(n)]),
        "f": pa.array([rnd.uniform(-1, 1) for _ in range(n)], pa.float32()),
        "d": pa.array([None if i % 11 == 0 else rnd.uniform(-1e9, 1e9) for i in range(n)], pa.float64()),
    })
    enc = {"i32": "DELTA_BINARY_PACKED", "i64": "DELTA_BINARY_PACKED", "s": "DELTA_BYTE_ARRAY",
           "s2": "DELTA_LENGTH_BYTE_ARRAY", "f": "BYTE_STREAM_SPLIT", "d": "BYTE_STREAM_SPLIT"}
    p = tmp_path / "enc.parquet"
    pq.write_table(t, p, use_dictionary=False, column_encoding=enc, data_page_version=version, data_page_size=4096)
    md = pq.ParquetFile(p).metadata
    assert [md.row_group(0).column(i).encodings[-1] for i in range(6)] == list(enc.values())
    schema = [{"name": "i32", "type": "int32"}, {"name": "i64", "type": "int64"}, {"name": "s", "type": "string"},
              {"name": "s2", "type": "string"}, {"name": "f", "type": "float"}, {"name": "d", "type": "double"}]
    spec = {"schema": schema, "rows": [list(r.values()) for r in t.to_pylist()]}
    assert same(ours_rows(spec, read_ours(p)), arrow_rows(spec, t))
