"""The windowing core against an independent oracle.

Random event streams (out of order, late beyond the watermark, null event
times, null keys, many keys) are cut into micro-batches and fed to the core
through tests/tools/win_tool, and the same events, as a table, to DuckDB,
which computes the expected output of every micro-batch in SQL with Spark's
rules written out: windows start at ts - ((ts - start) mod slide) - i*slide;
the watermark in effect during batch b is the running max over batches < b of
floor(max event time / 1 ms) * 1 ms - delay; a row's window is late when its
end <= that watermark or <= the partition's own watermark just before the row
(floor of the largest earlier event time - delay, row by row: the per-partition
rule of window.c, which does not depend on where batches are cut; never in
complete mode); append emits a window in the
first batch whose closing watermark reaches its end; update emits the windows
a batch touched; complete emits every window every batch. The emitted rows
and values must match for every output mode, the per-batch watermark and
dropped-row counts too, and a run whose state is saved and restored into a
new operator mid-stream must print exactly what an uninterrupted run prints.
Deduplication is checked against a plain Python model of Spark's
dropDuplicatesWithinWatermark, with the same own-partition rule.
"""
import json
import math
import os
import random
import subprocess

import duckdb
import pytest

from conftest import TOP_BUILDDIR

TOOL = os.path.join(TOP_BUILDDIR, "tests", "tools", "win_tool")
MIN = 60_000_000

# (name, size, slide, start, delay, keys, aggregates as (ours, DuckDB's), epoch base)
ALL_AGGS = [
    ("count(*) AS c", "count(*)"),
    ("count(v) AS cv", "count(v)"),
    ("sum(v) AS s", "sum(v)"),
    ("avg(v) AS a", "avg(v)"),
    ("min(v) AS mn", "min(v)"),
    ("max(v) AS mx", "max(v)"),
    ("sum(x) AS sx", "sum(x)"),
    ("min(k1) AS mk", "min(k1)"),
    ("max(k1) AS xk", "max(k1)"),
    ("count(DISTINCT x) AS dx", "count(DISTINCT x)"),
    ("approx_count_distinct(x) AS ax", "count(DISTINCT x)"),  # checked within tolerance
    ("first(x) AS fx", "first(x ORDER BY seq)"),
    ("last(x) AS lx", "last(x ORDER BY seq)"),
    ("first(x, true) AS fxn", "first(x ORDER BY seq) FILTER (WHERE x IS NOT NULL)"),
    ("last(k1, true) AS lkn", "last(k1 ORDER BY seq) FILTER (WHERE k1 IS NOT NULL)"),
]
TUTORIAL1 = [ALL_AGGS[0], ALL_AGGS[2], ALL_AGGS[3], ALL_AGGS[5]]
TUTORIAL2 = [ALL_AGGS[0], ALL_AGGS[2]]

CONFIGS = [
    # the tutorial's 5-minute tumbling windows by category, 10-minute watermark
    ("tumbling", 5 * MIN, 0, 0, 10 * MIN, ["k1"], TUTORIAL1, 1_700_000_000_000_000),
    # the tutorial's 10-minute windows sliding every 5 minutes by location
    ("sliding", 10 * MIN, 5 * MIN, 0, 10 * MIN, ["k2"], TUTORIAL2, 1_700_000_000_000_000),
    # every aggregate, two keys, a start offset, a short delay
    ("offset_all", 5 * MIN, 0, 90_000_000, 3 * MIN, ["k1", "k2"], ALL_AGGS, 1_700_000_123_456_789),
    # sliding 15/5 with a negative offset, across the epoch (pre-1970 times)
    ("epoch", 15 * MIN, 5 * MIN, -2 * MIN, 4 * MIN, ["k2", "k1"], ALL_AGGS, -90 * MIN),
]
MODES = ["append", "update", "complete"]


def gen(seed, base, nbatches=14, keyspace=40, grid=None):
    """Batches of (ts, k1, k2, v, x) with None for nulls. grid = (slide,
    start, delay): some batches then end with the watermark exactly on a
    window end E, and the next batch holds rows of the window ending at E,
    where "end <= watermark" (Spark) and "end < watermark" differ."""
    rnd = random.Random(seed)
    clock = base
    batches = []
    edge = None
    for _ in range(nbatches):
        clock += rnd.randint(0, 4) * MIN + rnd.randint(0, MIN - 1)
        rows = []
        for _ in range(rnd.randint(20, 160)):
            r = rnd.random()
            if r < 0.03:
                ts = None
            elif r < 0.18:
                ts = clock - rnd.randint(8 * MIN, 40 * MIN)  # late or nearly
            else:
                ts = clock - rnd.randint(0, 9 * MIN)  # out of order within the delay
            if ts is not None and rnd.random() < 0.25:
                # on a 30 s boundary: watermarks then land exactly on window
                # ends, where "end <= watermark" and "end < watermark" differ
                ts -= ts % (MIN // 2)
            k1 = None if rnd.random() < 0.05 else f"c{rnd.randrange(keyspace):02d}"
            k2 = None if rnd.random() < 0.05 else rnd.randrange(4)
            v = None if rnd.random() < 0.1 else rnd.randint(-4000, 4000) / 4  # exact sums
            x = None if rnd.random() < 0.1 else rnd.randrange(60)
            if edge is not None and rnd.random() < 0.2:
                ts = edge - rnd.randint(1, grid[0])  # in a window ending at edge
            rows.append((ts, k1, k2, v, x))
        edge = None
        if grid and rnd.random() < 0.5:
            slide, start, delay = grid
            e = clock - delay
            e -= (e - start) % slide  # a window end
            top = e + delay  # the batch max: watermark = e
            rows = [(min(r[0], top),) + r[1:] if r[0] is not None else r for r in rows]
            rows.append((top, "edge", 0, 1.0, 1))
            edge = e
        batches.append(rows)
    return batches


def grid_of(cfg):
    return (cfg[2] or cfg[1], cfg[3], cfg[4])


def csv_of(batches):
    out = []
    for rows in batches:
        for ts, k1, k2, v, x in rows:
            f = ["" if a is None else str(a) for a in (ts, k1, k2)]
            f.append("" if v is None else repr(v))
            f.append("" if x is None else str(x))
            out.append(",".join(f))
        out.append("B")
    return "\n".join(out) + "\n"


def run_tool(cfg, mode, batches, restore_at=None, struct=False):
    name, size, slide, start, delay, keys, aggs, _ = cfg
    args = [TOOL, "window", "--size", str(size), "--slide", str(slide), "--start", str(start),
            "--delay", str(delay), "--mode", mode]
    for k in keys:
        args += ["--key", k]
    for ours, _ in aggs:
        args += ["--agg", ours]
    if restore_at is not None:
        args += ["--restore-at", str(restore_at)]
    if struct:
        args.append("--struct")
    p = subprocess.run(args, input=csv_of(batches), capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    rows, stats = [], {}
    for line in p.stdout.splitlines():
        o = json.loads(line)
        if "stats" in o:
            stats[o["b"]] = o["stats"]
        else:
            rows.append(tuple([o["b"], o["ws"], o["we"]] + o["k"] + o["a"]))
    return rows, stats, p.stdout


def oracle(cfg, mode, batches):
    """Expected rows (b, ws, we, keys..., aggs...) and per-batch (watermark, dropped)."""
    name, size, slide, start, delay, keys, aggs, _ = cfg
    slide = slide or size
    nwin = size // slide
    nb = len(batches)
    db = duckdb.connect()
    db.execute("CREATE TABLE ev(seq BIGINT, b INTEGER, ts BIGINT, k1 VARCHAR, k2 BIGINT, "
               "v DOUBLE, x BIGINT)")
    seq = 0
    data = []
    for b, rows in enumerate(batches):
        for r in rows:
            data.append((seq, b) + r)
            seq += 1
    db.executemany("INSERT INTO ev VALUES (?, ?, ?, ?, ?, ?, ?)", data)
    # watermark after each batch: running max of floor(max ts to ms) - delay
    db.execute(f"""
        CREATE TABLE bm AS
        WITH m AS (SELECT b, max(ts) AS mx FROM ev WHERE ts IS NOT NULL GROUP BY b),
             j AS (SELECT r.range::INTEGER AS b,
                          CAST(floor(m.mx / 1000.0) AS BIGINT) * 1000 - {delay} AS cand
                   FROM range(0, {nb}) r LEFT JOIN m ON m.b = r.range)
        SELECT b, max(cand) OVER (ORDER BY b ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
               AS wm_after
        FROM j""")
    # one partition: a row is also late against the partition's own watermark
    # just before it (floor(max of the earlier rows' ts to ms) - delay), row by
    # row, whatever the batches; that is never below the batch watermark
    late_rule = "TRUE" if mode == "complete" else \
        f"""((p.wm_after IS NULL OR w.ws + {size} > p.wm_after)
             AND (w.own IS NULL OR w.ws + {size} > w.own))"""
    db.execute(f"""
        CREATE TABLE pairs AS
        SELECT w.*, w.ws + {size} AS we FROM (
            SELECT e.*, e.ts - ((((e.ts - ({start})) % {slide}) + {slide}) % {slide})
                        - k.range * {slide} AS ws
            FROM (SELECT *, CAST(floor(max(ts) OVER (ORDER BY seq ROWS BETWEEN UNBOUNDED
                          PRECEDING AND 1 PRECEDING) / 1000.0) AS BIGINT) * 1000 - {delay} AS own
                  FROM ev) e
            CROSS JOIN range(0, {nwin}) k WHERE e.ts IS NOT NULL) w
        LEFT JOIN bm p ON p.b = w.b - 1
        WHERE {late_rule}""")
    kc = ", ".join(keys)
    ag = ", ".join(sql for _, sql in aggs)
    same_group = " AND ".join(["p.ws = t.t_ws"] +
                              [f"p.{k} IS NOT DISTINCT FROM t.t_{k}" for k in keys])
    tcols = ", ".join(["b AS t_b", "ws AS t_ws"] + [f"{k} AS t_{k}" for k in keys])
    if mode == "append":
        q = f"""
            WITH g AS (SELECT ws, we, {kc}, min(b) AS fb, {ag} FROM pairs GROUP BY ws, we, {kc})
            SELECT * FROM (
              SELECT (SELECT min(bm.b) FROM bm WHERE bm.b >= g.fb AND bm.wm_after >= g.we) AS eb,
                     g.* EXCLUDE (fb) FROM g) WHERE eb IS NOT NULL"""
    elif mode == "update":
        q = f"""
            SELECT t.t_b AS eb, p.ws, p.we, {", ".join("p." + k for k in keys)}, {ag}
            FROM (SELECT DISTINCT {tcols} FROM pairs) t JOIN pairs p
              ON {same_group} AND p.b <= t.t_b
            GROUP BY t.t_b, p.ws, p.we, {", ".join("p." + k for k in keys)}"""
    else:
        q = f"""
            SELECT bb.range::INTEGER AS eb, p.ws, p.we, {", ".join("p." + k for k in keys)}, {ag}
            FROM range(0, {nb}) bb JOIN pairs p ON p.b <= bb.range
            GROUP BY bb.range, p.ws, p.we, {", ".join("p." + k for k in keys)}"""
    want = [tuple(r) for r in db.execute(q).fetchall()]
    per_batch = {}
    for b, wm, dropped in db.execute(f"""
            SELECT bm.b, bm.wm_after,
                   (SELECT count(*) FROM ev e WHERE e.b = bm.b AND e.ts IS NOT NULL
                      AND e.seq NOT IN (SELECT seq FROM pairs WHERE pairs.b = bm.b))
            FROM bm ORDER BY bm.b""").fetchall():
        per_batch[b] = (wm, dropped)
    return want, per_batch


def sort_key(row):
    return tuple((0, "") if v is None else (1, str(v)) if isinstance(v, str) else (1, v)
                 for v in row[:3]) + tuple(repr(v) for v in row[3:])


def group_key(row, nkeys):
    return tuple(row[: 3 + nkeys])


def close(a, b, approx=False):
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    if approx:  # HLL estimate beside the exact count; Spark's default rsd is 5%
        return abs(a - b) <= max(2, 0.15 * b)
    return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-9)


def compare(cfg, got, want):
    keys, aggs = cfg[5], cfg[6]
    nk = len(keys)
    g = {group_key(r, nk): r for r in got}
    w = {group_key(r, nk): r for r in want}
    assert len(g) == len(got), "the core emitted a window twice in one batch"
    missing = sorted(set(w) - set(g), key=repr)[:5]
    extra = sorted(set(g) - set(w), key=repr)[:5]
    assert not missing and not extra, f"missing {missing} extra {extra}"
    for k in w:
        for i, (ours, _) in enumerate(aggs):
            a, b = g[k][3 + nk + i], w[k][3 + nk + i]
            assert close(a, b, approx=ours.startswith("approx")), \
                f"{ours} of {k}: core {a}, DuckDB {b}"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cfg", CONFIGS, ids=[c[0] for c in CONFIGS])
@pytest.mark.parametrize("seed", [1, 2])
def test_core_matches_duckdb(cfg, mode, seed):
    batches = gen(seed * 100 + CONFIGS.index(cfg), cfg[7], grid=grid_of(cfg))
    got, stats, _ = run_tool(cfg, mode, batches)
    want, per_batch = oracle(cfg, mode, batches)
    assert len(want) > 20  # the stream is big enough to say something
    compare(cfg, got, want)
    late_total = 0
    for b, (wm, dropped) in per_batch.items():
        s = stats[b]
        assert (None if s["watermark"] == -(2**63) else s["watermark"]) == wm, f"batch {b}"
        assert s["dropped"] == dropped, f"batch {b}: dropped rows"
        late_total += dropped
        assert s["memory"] > 0
    if mode == "complete":
        assert late_total == 0
    else:
        assert late_total > 0  # the stream did exercise lateness
    if mode == "append":
        assert len({group_key(r, len(cfg[5]))[1:] for r in got}) == len(got)  # emitted once


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cfg", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_restored_state_continues_like_an_uninterrupted_run(cfg, mode):
    batches = gen(77 + CONFIGS.index(cfg), cfg[7], grid=grid_of(cfg))
    _, _, plain = run_tool(cfg, mode, batches)
    for at in (0, 5, 9):
        _, _, restored = run_tool(cfg, mode, batches, restore_at=at)
        # memory figures may differ (capacities); everything else must not
        strip = [json.loads(line) for line in plain.splitlines()]
        strip2 = [json.loads(line) for line in restored.splitlines()]
        for o in strip + strip2:
            o.get("stats", {}).pop("memory", None)
        assert strip == strip2, f"restored after batch {at}"


@pytest.mark.parametrize("mode", MODES)
def test_window_struct_output_carries_the_same_rows(mode):
    cfg = CONFIGS[1]
    batches = gen(31, cfg[7], grid=grid_of(cfg))
    assert run_tool(cfg, mode, batches, struct=True)[2] == run_tool(cfg, mode, batches)[2]


def dedup_model(batches, delay, nkeys_fn):
    """Spark 3.5 StreamingDeduplicateWithinWatermarkExec, written out, with
    the per-partition rule of window.c/dedup.c (one partition here): a row is
    also late against floor(the largest earlier event time to ms) - delay."""
    wm = None
    state = {}
    out = []
    seq = 0
    pm = None
    for b, rows in enumerate(batches):
        keep = []
        mx = None
        for r in rows:
            ts = r[0]
            if ts is not None:
                mx = ts if mx is None else max(mx, ts)
                own = None if pm is None else (pm // 1000) * 1000 - delay
                pm = ts if pm is None else max(pm, ts)
                if (wm is None or ts > wm) and (own is None or ts > own):
                    k = nkeys_fn(r)
                    if k not in state:
                        state[k] = ts + delay
                        keep.append(seq)
            seq += 1
        if mx is not None:
            cand = (mx // 1000) * 1000 - delay
            wm = cand if wm is None else max(wm, cand)
        if wm is not None:
            state = {k: e for k, e in state.items() if wm < e}
        out.append((keep, wm, len(state)))
    return out


def test_dedup_matches_spark_model_and_survives_restore():
    rnd = random.Random(5)
    batches = gen(9, 1_700_000_000_000_000)
    # many duplicates: reuse earlier rows' keys with fresh times
    for rows in batches:
        for i in range(len(rows)):
            if rnd.random() < 0.4:
                ts, k1, k2, v, x = rows[rnd.randrange(len(rows))]
                rows[i] = (rows[i][0], k1, k2, v, x)
    delay = 5 * MIN
    want = dedup_model(batches, delay, lambda r: (r[1], r[2]))
    outs = []
    for restore in (None, 6):
        args = [TOOL, "dedup", "--delay", str(delay), "--key", "k1", "--key", "k2"]
        if restore is not None:
            args += ["--restore-at", str(restore)]
        p = subprocess.run(args, input=csv_of(batches), capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        outs.append([json.loads(line) for line in p.stdout.splitlines()])
    assert outs[0] == outs[1]
    dups = 0
    for o, (keep, wm, total) in zip(outs[0], want):
        assert o["keep"] == keep, f"batch {o['b']}"
        assert o["watermark"] == wm
        assert o["total"] == total
        dups += 1
    assert sum(len(k) for k, _, _ in want) < sum(len(r) for r in batches) * 0.8
