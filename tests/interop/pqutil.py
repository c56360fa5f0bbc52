"""Helpers for the Parquet interop tests: run pq_tool, normalise what pyarrow,
DuckDB, delta-rs and our reader return so they compare value by value with
what the test asked pq_tool to write."""
import json
import math
import os
import struct
import subprocess

import pyarrow as pa

BUILD = os.environ.get("EHDELTA_TOP_BUILDDIR") or os.path.join(os.path.dirname(__file__), "..", "..")
TOOL = os.path.join(BUILD, "tests", "tools", "pq_tool")


def write(tmp_path, spec, name="t.parquet"):
    """Writes spec with pq_tool; returns (path, summary dict)."""
    sp = tmp_path / (name + ".json")
    sp.write_text(json.dumps(spec))
    out = tmp_path / name
    r = subprocess.run([TOOL, "write", str(sp), str(out)], capture_output=True, text=True, errors="replace", timeout=60)
    assert r.returncode == 0, r.stderr
    return out, json.loads(r.stdout)


def read_ours(path):
    r = subprocess.run([TOOL, "read", str(path)], capture_output=True, text=True, errors="replace", timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def _fnorm(x):
    if x is None:
        return None
    if isinstance(x, str):
        x = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[x]
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return float(x)


def _elem(field):
    return {k: x for k, x in field.items() if k != "repetition"}


def expect(field, v):
    """The value a reader should return for JSON value v of field."""
    if field.get("repetition") == "repeated":
        return [expect(_elem(field), e) for e in (v or [])]
    if v is None:
        return None
    t = field["type"]
    if t == "float":
        if isinstance(v, str):
            return _fnorm(v)
        return _fnorm(f32(float(v)))
    if t == "double":
        return _fnorm(v if isinstance(v, str) else float(v))
    if t == "binary":
        return v.lower()
    if t == "struct":
        return {f["name"]: expect(f, v.get(f["name"])) for f in field["fields"]}
    if t == "list":
        return [expect(field["element"], e) for e in v]
    if t == "map":
        return [[expect(field["key"], k), expect(field["value"], x)] for k, x in v]
    return v


def expect_rows(spec):
    return [[expect(f, row[i]) for i, f in enumerate(spec["schema"])] for row in spec.get("rows", [])]


def got(field, v):
    """Normalises a value as pyarrow/DuckDB/our reader returned it."""
    if field.get("repetition") == "repeated":
        return [got(_elem(field), e) for e in (v or [])]
    if v is None:
        return None
    t = field["type"]
    if t == "float":
        return _fnorm(v) if isinstance(v, str) else _fnorm(f32(float(v)))
    if t == "double":
        return _fnorm(v)
    if t == "binary":
        return v.hex() if isinstance(v, (bytes, bytearray)) else v.lower()
    if t == "struct":
        return {f["name"]: got(f, v.get(f["name"])) for f in field["fields"]}
    if t == "list":
        return [got(field["element"], e) for e in v]
    if t == "map":
        items = v.items() if isinstance(v, dict) else v
        return [[got(field["key"], k), got(field["value"], x)] for k, x in items]
    return v


def _int_type(t):
    """The arrow type with timestamps/dates turned into their integers."""
    if pa.types.is_timestamp(t):
        return pa.int64()
    if pa.types.is_date32(t):
        return pa.int32()
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _int_type(f.type), f.nullable) for f in t])
    if pa.types.is_map(t):
        return pa.map_(_int_type(t.key_type), pa.field("value", _int_type(t.item_type), t.item_field.nullable))
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return pa.list_(pa.field("element", _int_type(t.value_type), t.value_field.nullable))
    return t


def arrow_rows(spec, table):
    """Rows of an arrow table, normalised, in spec field order."""
    cols = []
    for f in spec["schema"]:
        col = table.column(f["name"])
        col = col.cast(_int_type(col.type))
        cols.append([got(f, v) for v in col.to_pylist()])
    return [list(r) for r in zip(*cols)] if cols else []


def ours_rows(spec, dump):
    return [[got(f, row[i]) for i, f in enumerate(spec["schema"])] for row in dump["rows"]]


def same(a, b):
    """Deep equality where NaN == NaN (values are already normalised)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
