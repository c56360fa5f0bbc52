"""Files written by our Parquet writer (through tests/tools/pq_tool), read back
value by value by pyarrow, DuckDB, delta-rs (DataFusion over a one-file Delta
table) and our own reader."""
import json
import math
import random
import string

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pqutil import arrow_rows, expect_rows, ours_rows, read_ours, same, write

I64_MIN, I64_MAX = -(2**63), 2**63 - 1
I32_MIN, I32_MAX = -(2**31), 2**31 - 1

FLAT = [
    {"name": "b", "type": "boolean"},
    {"name": "i", "type": "int32"},
    {"name": "l", "type": "int64"},
    {"name": "f", "type": "float"},
    {"name": "d", "type": "double"},
    {"name": "s", "type": "string"},
    {"name": "bin", "type": "binary"},
    {"name": "dt", "type": "date"},
    {"name": "ts", "type": "timestamp"},
]


def one_field_repeated_group(fields):
    """DuckDB reads `repeated group g { one field }` by the legacy LIST rule
    (the group is the list, its field the element), pyarrow and our reader as
    a list of one-field structs; the file is valid either way."""
    for f in fields:
        sub = f.get("fields", []) + [f[k] for k in ("element", "key", "value") if k in f]
        if f.get("repetition") == "repeated" and f["type"] == "struct" and len(f["fields"]) == 1:
            return True
        if one_field_repeated_group(sub):
            return True
    return False


def check_all(tmp_path, spec, name="t.parquet", duck=True):
    """Writes spec, then checks every reader returns exactly its rows."""
    duck = duck and not one_field_repeated_group(spec["schema"])
    path, summary = write(tmp_path, spec, name)
    want = expect_rows(spec)
    assert summary["rows"] == len(want)
    t = pq.read_table(path)
    assert t.num_rows == len(want)
    assert same(arrow_rows(spec, t), want), "pyarrow"
    if duck:
        d = duckdb.connect().sql(f"select * from read_parquet('{path}')").to_arrow_table()
        assert same(arrow_rows(spec, d), want), "duckdb"
    assert same(ours_rows(spec, read_ours(path)), want), "our reader"
    return path, summary


def test_every_flat_type_with_edge_values(tmp_path):
    rows = [
        [True, I32_MIN, I64_MIN, "NaN", "NaN", "", "", -719162, I64_MIN],
        [False, I32_MAX, I64_MAX, "Infinity", "Infinity", "héllo wörld ✓ 漢字 🎉", "00ff10", 2932896, I64_MAX],
        [None] * 9,
        [True, 0, 0, "-Infinity", "-Infinity", "a\u0000b", "00", 0, 0],
        [False, -1, -1, -0.0, -0.0, " ", "ffffffff", -1, -1],
        [True, 7, 1 << 53, 3.4028234663852886e38, 1.7976931348623157e308, "x" * 1000, "ab" * 500, 19000, 1700000000000000],
    ]
    spec = {"schema": FLAT, "rows": rows}
    path, summary = check_all(tmp_path, spec)
    md = pq.ParquetFile(path).metadata
    assert md.created_by.startswith("ehdelta version ")
    ts = pq.ParquetFile(path).schema_arrow.field("ts").type
    assert ts == pa.timestamp("us", tz="UTC")


def test_nulls_everywhere_and_required(tmp_path):
    schema = [dict(f, nullable=True) for f in FLAT] + [{"name": "req", "type": "int64", "nullable": False}]
    rows = [[None] * 9 + [i] for i in range(100)]
    path, summary = check_all(tmp_path, {"schema": schema, "rows": rows})
    md = pq.ParquetFile(path).metadata
    for j in range(9):
        st = md.row_group(0).column(j).statistics
        assert st.null_count == 100 and not st.has_min_max
    assert pq.ParquetFile(path).schema_arrow.field("req").nullable is False


def test_zero_rows(tmp_path):
    path, summary = check_all(tmp_path, {"schema": FLAT, "rows": []})
    assert pq.ParquetFile(path).metadata.num_rows == 0


@pytest.mark.parametrize("codec", ["none", "snappy", "zstd"])
def test_codecs(tmp_path, codec):
    rows = [[i % 2 == 0, i, i * 3, i / 3, i / 7, f"s{i % 17}", "%02x" % (i % 256), i, i * 1000] for i in range(3000)]
    path, _ = check_all(tmp_path, {"schema": FLAT, "rows": rows, "options": {"codec": codec}})
    want = {"none": "UNCOMPRESSED", "snappy": "SNAPPY", "zstd": "ZSTD"}[codec]
    assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == want


def test_many_row_groups_and_pages(tmp_path):
    rows = [[i % 3 == 0, i, -i, i * 0.5, i * 0.25, f"v{i}", None, i, i] for i in range(20000)]
    opts = {"row_group_bytes": 20000, "page_bytes": 2000, "batch_rows": 777}
    path, summary = check_all(tmp_path, {"schema": FLAT, "rows": rows, "options": opts})
    md = pq.ParquetFile(path).metadata
    assert md.num_row_groups > 5 and summary["row_groups"] == md.num_row_groups
    assert sum(md.row_group(g).num_rows for g in range(md.num_row_groups)) == 20000


def test_large_dictionary_falls_back_to_plain(tmp_path):
    rows = [[None, i, i, None, None, "k%07d" % i, None, None, None] for i in range(50000)]
    opts = {"dict_max_bytes": 65536}
    path, _ = check_all(tmp_path, {"schema": FLAT, "rows": rows, "options": opts})
    col = pq.ParquetFile(path).metadata.row_group(0).column(5)
    assert "RLE_DICTIONARY" in col.encodings and "PLAIN" in col.encodings
    assert col.dictionary_page_offset is not None


def test_repeated_values_use_dictionary(tmp_path):
    rows = [[None, None, None, None, None, ["alpha", "beta", "gamma"][i % 3], None, None, None] for i in range(10000)]
    path, _ = check_all(tmp_path, {"schema": FLAT, "rows": rows})
    col = pq.ParquetFile(path).metadata.row_group(0).column(5)
    assert "RLE_DICTIONARY" in col.encodings
    assert col.total_compressed_size < 2000


def chunk_sizes(path):
    md = pq.ParquetFile(path).metadata.row_group(0)
    return [md.column(j).total_compressed_size for j in range(md.num_columns)]


def test_unique_values_leave_the_dictionary_after_the_trial(tmp_path):
    """Ids, amounts and times are mostly distinct: after the trial (4096
    values) the rest of the chunk is PLAIN, and the file is smaller than one
    dictionary-encoded all the way; values with few distinct ones stay in the
    dictionary. Every reader sees the same rows either way."""
    rnd = random.Random(7)
    rows = [[None, i % 5, rnd.getrandbits(62), None, rnd.random() * 1000, "t-%012x" % rnd.getrandbits(48),
             None, None, (i % 4) * 1000] for i in range(30000)]
    rows[5000][4] = None  # a null past the trial
    rows[10][2] = None  # and one inside it
    tried, _ = check_all(tmp_path, {"schema": FLAT, "rows": rows}, "tried.parquet")
    whole, _ = check_all(tmp_path, {"schema": FLAT, "rows": rows, "options": {"dict_trial": 0}}, "whole.parquet")
    a, b = chunk_sizes(tried), chunk_sizes(whole)
    for j in (2, 4, 5):  # the distinct l, d and s: PLAIN after the trial, and smaller
        col = pq.ParquetFile(tried).metadata.row_group(0).column(j)
        assert "RLE_DICTIONARY" in col.encodings and "PLAIN" in col.encodings
        assert a[j] < b[j], (FLAT[j]["name"], a[j], b[j])
    for j in (1, 8):  # i and ts repeat: dictionary all the way, the same bytes
        assert a[j] == b[j], (FLAT[j]["name"], a[j], b[j])


def test_trial_shorter_than_the_chunk_keeps_the_dictionary(tmp_path):
    rows = [[None, i, i, None, None, "k%d" % i, None, None, None] for i in range(1000)]
    path, _ = check_all(tmp_path, {"schema": FLAT, "rows": rows})
    col = pq.ParquetFile(path).metadata.row_group(0).column(2)
    assert "RLE_DICTIONARY" in col.encodings


NESTED = [
    {"name": "st", "type": "struct", "fields": [
        {"name": "a", "type": "string"},
        {"name": "b", "type": "int64", "nullable": False},
        {"name": "inner", "type": "struct", "fields": [{"name": "x", "type": "double"}]},
    ]},
    {"name": "tags", "type": "list", "element": {"type": "string"}},
    {"name": "req_list", "type": "list", "nullable": False, "element": {"type": "int32", "nullable": False}},
    {"name": "m", "type": "map", "key": {"type": "string", "nullable": False}, "value": {"type": "string"}},
    {"name": "lol", "type": "list", "element": {"type": "list", "element": {"type": "int64"}}},
    {"name": "los", "type": "list", "element": {"type": "struct", "fields": [
        {"name": "k", "type": "string"}, {"name": "v", "type": "map",
                                          "key": {"type": "string", "nullable": False},
                                          "value": {"type": "boolean"}}]}},
]


def test_nested_structs_lists_maps_with_empty_and_null(tmp_path):
    rows = [
        [{"a": "x", "b": 1, "inner": {"x": 1.5}}, ["t1", None, "t3"], [1, 2], [["k", "v"], ["n", None]],
         [[1, 2], [], None, [None]], [{"k": "a", "v": [["p", True]]}, None, {"k": None, "v": []}]],
        [None, None, [], None, None, None],
        [{"a": None, "b": 2, "inner": None}, [], [3], [], [], []],
        [{"a": "", "b": -1, "inner": {"x": None}}, [None], [], [["ü", "é"]], [None, []], [None]],
    ]
    rows = rows * 50
    check_all(tmp_path, {"schema": NESTED, "rows": rows, "options": {"page_bytes": 500, "batch_rows": 33}})


def test_statistics_match_the_data(tmp_path):
    rnd = random.Random(7)
    rows = []
    for i in range(5000):
        rows.append([rnd.choice([True, False, None]), rnd.randint(I32_MIN, I32_MAX), rnd.randint(I64_MIN, I64_MAX),
                     rnd.choice([rnd.uniform(-1e30, 1e30), "NaN", None, 0.0, -0.0]),
                     rnd.choice([rnd.uniform(-1e300, 1e300), "NaN", None]),
                     rnd.choice(["", "zz", "ä", "a" * rnd.randint(0, 40), None, "\U0001F600"]),
                     rnd.choice(["", "ff", "00", None]), rnd.randint(-100000, 100000), rnd.randint(I64_MIN, I64_MAX)])
    spec = {"schema": FLAT, "rows": rows, "options": {"row_group_bytes": 40000}}
    path, summary = check_all(tmp_path, spec)
    t = pq.read_table(path)
    md = pq.ParquetFile(path).metadata
    for j, f in enumerate(FLAT):
        name = f["name"]
        col = t.column(name)
        if f["type"] in ("date", "timestamp"):
            col = col.cast(pa.int32() if f["type"] == "date" else pa.int64())
        vals = [v for v in col.to_pylist() if v is not None and not (isinstance(v, float) and math.isnan(v))]
        leaf = summary["leaves"][j]
        assert leaf["null_count"] == col.null_count
        # Chunk statistics: each row group's min/max bound its values, and DuckDB's
        # filter pushdown (which trusts them) gives the same counts as a scan.
        if f["type"] in ("binary", "float", "double"):
            continue
        if f["type"] == "string":
            key = lambda s: s.encode()
            assert leaf["min"] == min(vals, key=key) and leaf["max"] == max(vals, key=key)
        elif f["type"] == "boolean":
            assert leaf["min"] == min(vals) and leaf["max"] == max(vals)
        else:
            assert leaf["min"] == min(vals) and leaf["max"] == max(vals)
    con = duckdb.connect()
    for probe in (0, 1000, -5):
        full = con.execute(f"select count(*) from (select dt from read_parquet('{path}') limit 100000000) where dt - DATE '1970-01-01' = {probe}").fetchone()
        filt = con.execute(f"select count(*) from read_parquet('{path}') where dt = DATE '1970-01-01' + {probe}").fetchone()
        assert full == filt
    for g in range(md.num_row_groups):
        st = md.row_group(g).column(5).statistics
        rg = pq.ParquetFile(path).read_row_group(g).column("s").to_pylist()
        vs = [v for v in rg if v is not None]
        assert st.min == min(vs, key=lambda s: s.encode()) and st.max == max(vs, key=lambda s: s.encode())


def test_float_statistics_sign_of_zero_and_nan(tmp_path):
    rows = [[None, None, None, 0.0, 0.0, None, None, None, None],
            [None, None, None, "NaN", "NaN", None, None, None, None]]
    path, summary = check_all(tmp_path, {"schema": FLAT, "rows": rows})
    st = pq.ParquetFile(path).metadata.row_group(0).column(4).statistics
    assert math.copysign(1, st.min) == -1 and math.copysign(1, st.max) == 1
    rows = [[None, None, None, "NaN", "NaN", None, None, None, None]]
    path, _ = check_all(tmp_path, {"schema": FLAT, "rows": rows}, "nan.parquet")
    assert not pq.ParquetFile(path).metadata.row_group(0).column(4).statistics.has_min_max


def test_key_value_metadata_and_column_orders(tmp_path):
    spec = {"schema": FLAT[:2], "rows": [[True, 1]], "kv": {"delta.note": "hello", "other": "✓"}}
    path, _ = check_all(tmp_path, spec)
    md = pq.ParquetFile(path).metadata
    assert md.metadata[b"delta.note"] == b"hello" and md.metadata[b"other"] == "✓".encode()
    fm = duckdb.connect().execute(f"select column_orders, created_by from parquet_file_metadata('{path}')").fetchone()
    assert str(fm[0]).upper().count("TYPEDEFINEDORDER") == 2


DELTA_TYPES = {"boolean": "boolean", "int32": "integer", "int64": "long", "float": "float", "double": "double",
               "string": "string", "binary": "binary", "date": "date", "timestamp": "timestamp"}


def delta_type(f):
    t = f["type"]
    if t == "struct":
        return {"type": "struct", "fields": [delta_field(g) for g in f["fields"]]}
    if t == "list":
        return {"type": "array", "elementType": delta_type(f["element"]),
                "containsNull": f["element"].get("nullable", True)}
    if t == "map":
        return {"type": "map", "keyType": delta_type(f["key"]), "valueType": delta_type(f["value"]),
                "valueContainsNull": f["value"].get("nullable", True)}
    return DELTA_TYPES[t]


def delta_field(f):
    return {"name": f["name"], "type": delta_type(f), "nullable": f.get("nullable", True), "metadata": {}}


def delta_rs_rows(tmp_path, spec, name="tbl"):
    """Rows as delta-rs (DataFusion over arrow-rs) reads our file, through a
    one-file Delta table whose log we write by hand."""
    deltalake = pytest.importorskip("deltalake")
    table = tmp_path / name
    (table / "_delta_log").mkdir(parents=True)
    path, _ = write(table, spec, "part-0.parquet")
    (table / "part-0.parquet.json").unlink()
    schema = {"type": "struct", "fields": [delta_field(f) for f in spec["schema"]]}
    log = [
        {"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}},
        {"metaData": {"id": "00000000-0000-0000-0000-000000000001", "format": {"provider": "parquet", "options": {}},
                      "schemaString": json.dumps(schema), "partitionColumns": [], "configuration": {}, "createdTime": 0}},
        {"add": {"path": "part-0.parquet", "partitionValues": {}, "size": path.stat().st_size,
                 "modificationTime": 0, "dataChange": True}},
    ]
    (table / "_delta_log" / "00000000000000000000.json").write_text("\n".join(json.dumps(a) for a in log) + "\n")
    dt = deltalake.DeltaTable(str(table))
    res = pa.table(deltalake.QueryBuilder().register("t", dt).execute("select * from t").read_all())
    # SQL gives no order (DataFusion scans row groups in parallel): compare as
    # multisets, rows in a canonical order.
    return sorted(arrow_rows(spec, res), key=lambda r: json.dumps(r, sort_keys=True))


def sorted_rows(rows):
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))


def test_delta_rs_reads_our_files(tmp_path):
    rows = [[True, 1, 2, 1.5, 2.5, "é", "00", 19000, 1700000000000000], [None] * 9,
            [False, I32_MIN, I64_MIN, "NaN", "-Infinity", "", "", -1, -1]]
    spec = {"schema": FLAT, "rows": rows}
    assert same(delta_rs_rows(tmp_path, spec, "flat"), sorted_rows(expect_rows(spec)))
    nested = [
        [{"a": "x", "b": 1, "inner": {"x": 1.5}}, ["t1", None, "t3"], [1, 2], [["k", "v"], ["n", None]],
         [[1, 2], [], None, [None]], [{"k": "a", "v": [["p", True]]}, None, {"k": None, "v": []}]],
        [None, None, [], None, None, None],
        [{"a": None, "b": 2, "inner": None}, [], [3], [], [], []],
    ]
    spec = {"schema": NESTED, "rows": nested * 10}
    assert same(delta_rs_rows(tmp_path, spec, "nested"), sorted_rows(expect_rows(spec)))


# ---- randomized round trip ----

LEAVES = ["boolean", "int32", "int64", "float", "double", "string", "binary", "date", "timestamp"]


def rand_field(rnd, depth, name, repeated_ok=False):
    kinds = LEAVES + (["struct", "list", "map"] if depth < 3 else [])
    t = rnd.choice(kinds)
    f = {"name": name, "type": t, "nullable": rnd.random() < 0.7}
    if repeated_ok and t not in ("list", "map") and name not in ("element", "key", "value") and rnd.random() < 0.15:
        f["repetition"] = "repeated"
    if t == "struct":
        f["fields"] = [rand_field(rnd, depth + 1, f"f{i}", repeated_ok) for i in range(rnd.randint(1, 3))]
    elif t == "list":
        f["element"] = rand_field(rnd, depth + 1, "element", repeated_ok)
    elif t == "map":
        f["key"] = {"name": "key", "type": rnd.choice(["string", "int64", "int32"]), "nullable": False}
        f["value"] = rand_field(rnd, depth + 1, "value", repeated_ok)
    return f


def rand_value(rnd, f, allow_null=True):
    if f.get("repetition") == "repeated":
        e = {k: x for k, x in f.items() if k != "repetition"}
        e["nullable"] = False
        return [rand_value(rnd, e) for _ in range(rnd.choice([0, 1, 3]))]
    if f.get("nullable", True) and allow_null and rnd.random() < 0.2:
        return None
    t = f["type"]
    if t == "boolean":
        return rnd.random() < 0.5
    if t == "int32":
        return rnd.choice([rnd.randint(I32_MIN, I32_MAX), rnd.randint(-3, 3)])
    if t in ("int64", "timestamp"):
        return rnd.choice([rnd.randint(I64_MIN, I64_MAX), rnd.randint(-3, 3)])
    if t == "date":
        return rnd.randint(-100000, 100000)
    if t in ("float", "double"):
        return rnd.choice([rnd.uniform(-1e6, 1e6), "NaN", "Infinity", "-Infinity", 0.0, -0.0, float(rnd.randint(0, 5))])
    if t == "string":
        alphabet = string.ascii_letters + "äöüß漢字🎉\u0000 "
        return "".join(rnd.choice(alphabet) for _ in range(rnd.choice([0, 1, 3, 10])))
    if t == "binary":
        return "".join("%02x" % rnd.randint(0, 255) for _ in range(rnd.choice([0, 1, 4])))
    if t == "struct":
        return {g["name"]: rand_value(rnd, g) for g in f["fields"]}
    if t == "list":
        return [rand_value(rnd, f["element"]) for _ in range(rnd.choice([0, 0, 1, 2, 5]))]
    if t == "map":
        n = rnd.choice([0, 1, 2, 4])
        keys = []
        while len(keys) < n:
            k = rand_value(rnd, f["key"], False)
            if k not in keys:
                keys.append(k)
        return [[k, rand_value(rnd, f["value"])] for k in keys]
    raise AssertionError(t)


def test_randomized_round_trip(tmp_path):
    rnd = random.Random(20261124)
    for case in range(300):
        schema = [rand_field(rnd, 0, f"c{i}", True) for i in range(rnd.randint(1, 5))]
        nrows = rnd.choice([0, 1, 2, 10, 50, 300])
        rows = [[rand_value(rnd, f) for f in schema] for _ in range(nrows)]
        opts = {"codec": rnd.choice(["zstd", "none", "snappy"]), "dictionary": rnd.random() < 0.7,
                "page_bytes": rnd.choice([64, 1000, 1 << 20]), "row_group_bytes": rnd.choice([300, 5000, 1 << 27]),
                "batch_rows": rnd.choice([1, 7, 1000])}
        spec = {"schema": schema, "rows": rows, "options": opts}
        try:
            check_all(tmp_path, spec, f"r{case}.parquet", duck=case % 10 == 0)
            if case % 10 == 5 and '"repeated"' not in json.dumps(schema):
                assert same(delta_rs_rows(tmp_path, spec, f"t{case}"), sorted_rows(expect_rows(spec))), "delta-rs"
        except AssertionError:
            (tmp_path / "failing.json").write_text(json.dumps(spec))
            raise AssertionError(f"case {case}: {json.dumps(spec)[:2000]}")


def test_bare_repeated_fields(tmp_path):
    schema = [
        {"name": "ids", "type": "int64", "repetition": "repeated"},
        {"name": "pts", "type": "struct", "repetition": "repeated",
         "fields": [{"name": "x", "type": "double"}, {"name": "tag", "type": "string", "repetition": "repeated"}]},
        {"name": "s", "type": "struct", "fields": [{"name": "r", "type": "string", "repetition": "repeated"}]},
    ]
    rows = [[[1, 2], [{"x": 1.0, "tag": ["a", "b"]}, {"x": None, "tag": []}], {"r": ["é"]}],
            [[], [], None],
            [[I64_MIN], [{"x": "NaN", "tag": [""]}], {"r": []}]] * 20
    path, _ = check_all(tmp_path, {"schema": schema, "rows": rows, "options": {"page_bytes": 100}})
    s = pq.ParquetFile(path).schema
    assert s.column(0).max_repetition_level == 1 and s.column(2).max_repetition_level == 2


def test_long_strings_and_small_pages(tmp_path):
    """Values larger than a page, and pages cut inside a batch by byte count."""
    rows = [[None, i, None, None, None, ("%d" % i) * (1000 * (i % 50)) if i % 9 else None, None, None, None]
            for i in range(300)]
    rows.append([None, 1, None, None, None, "z" * 3_000_000, None, None, None])
    path, _ = check_all(tmp_path, {"schema": FLAT, "rows": rows, "options": {"page_bytes": 65536}}, duck=False)
    assert pq.ParquetFile(path).metadata.row_group(0).column(5).total_uncompressed_size > 3_000_000
