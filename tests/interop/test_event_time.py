"""Event time that does not depend on how events arrive (issue 16).

A 60-hour backlog is read by `ehdelta run` into a raw table and the tutorial's
5-minute tumbling window table (append, 10-minute watermark). DuckDB then
computes the windows from the raw table with the documented rule
(ehdelta.conf(5), "EVENT TIME"): per partition, in sequence-number order, a
row is late when its window ends at or before floor(largest earlier event time
of its partition to ms) - delay; the window table must hold exactly the groups
of the rows not late whose window ends at or before the final watermark, which
is the minimum over the partitions of (largest event time - delay). Checked
for 4 and 32 partitions and max_batch_events 500, 2,000 and unbounded; with
one partition held back by ehemu's `slow` control command until the others
are read (hours of event time behind); with 20 kill -9s, each landing after
the run has committed a batch of its own; and with rows really late on one
partition, dropped and counted on that partition only.
"""
import datetime
import json
import math
import random
import signal
import subprocess

import duckdb
import pytest
from deltalake import DeltaTable

from agentutil import CATEGORIES, EPOCH, Emu, send_lines
from conftest import EHDELTA, wait_until

MIN_US = 60_000_000
SIZE = 5 * MIN_US
DELAY = 10 * MIN_US
HOURS = 60
T0 = datetime.datetime(2026, 11, 30, 0, 0, 0)


def events(n, seed=3, first=0, total=None):
    """Events first..first+n of a 60-hour timeline of `total` events, each
    within 2 minutes of its place on it (well inside the 10-minute delay)."""
    total = total or n
    rnd = random.Random(seed * 1_000_003 + first)
    out = []
    for i in range(first, first + n):
        t = T0 + datetime.timedelta(seconds=i * HOURS * 3600 / total + rnd.uniform(-120, 120))
        t = t.replace(microsecond=(t.microsecond // 1000) * 1000)
        out.append({"transaction_id": f"T{i:07d}", "customer_id": "C001",
                    "amount": round(rnd.uniform(10, 500), 2),
                    "category": rnd.choice(CATEGORIES),
                    "timestamp": t.isoformat(timespec="milliseconds"),
                    "location": "US", "payment_method": "Debit"})
    return out


def conf_for(emu, tmp_path, root, mbe, trigger="available-now", source=""):
    conf = tmp_path / f"et-{root.name}.conf"
    conf.write_text(f"""
[source]
connection_string_file = {emu.cs_file}
starting_position = earliest
{source}
[schema]
columns = transaction_id STRING, customer_id STRING, amount DOUBLE, category STRING, timestamp TIMESTAMP, location STRING, payment_method STRING
metadata = sequence_number AS sequenceNumber, partition
bad_event_mode = fail-fast

[sink raw]
path = {root}/raw
trigger = {trigger}
max_batch_events = {mbe}

[sink by_category]
path = {root}/by_category
window = timestamp, 5 minutes
group_by = category
aggregate = count(*) AS txn_count, sum(amount) AS total_amount
watermark = timestamp, 10 minutes
output_mode = append
trigger = {trigger}
max_batch_events = {mbe}
""")
    return conf


def start(conf, progress, *args):
    return subprocess.Popen([EHDELTA, "run", "--config", str(conf), "--progress", str(progress),
                             *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def run(conf, progress, *args):
    p = start(conf, progress, *args)
    _, err = p.communicate(timeout=900)
    assert p.returncode == 0, err
    return progress_lines(progress)


def progress_lines(path):
    if not path.exists():
        return []
    return [json.loads(l) for l in path.read_text().splitlines() if l.endswith("}")]


def oracle(root, wm_final):
    """From the raw table: the expected window rows {(ws, category): (n, sum)}
    of the rows not late whose window ends at or before wm_final, the late
    rows per partition, the minimum over the partitions of their watermarks."""
    files = DeltaTable(str(root / "raw")).file_uris()
    db = duckdb.connect()
    db.execute(f"""
        CREATE TABLE r AS
        SELECT partition, sequenceNumber AS seq, category, amount, epoch_us(timestamp) AS ts,
               CAST(floor(max(epoch_us(timestamp)) OVER (PARTITION BY partition
                      ORDER BY sequenceNumber ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
                    / 1000.0) AS BIGINT) * 1000 - {DELAY} AS own
        FROM read_parquet(?)""", [files])
    db.execute(f"""CREATE TABLE k AS SELECT *, ts - (ts % {SIZE}) AS ws,
                   (own IS NOT NULL AND ts - (ts % {SIZE}) + {SIZE} <= own) AS late FROM r""")
    wm, = db.execute(f"""SELECT min(CAST(floor(mx / 1000.0) AS BIGINT) * 1000 - {DELAY})
                        FROM (SELECT max(ts) AS mx FROM r GROUP BY partition)""").fetchone()
    want = {(ws, c): (n, s) for ws, c, n, s in db.execute(f"""
        SELECT ws, category, count(*), sum(amount) FROM k
        WHERE NOT late AND ws + {SIZE} <= {wm_final} GROUP BY ws, category""").fetchall()}
    late = dict(db.execute("SELECT partition, count(*) FROM k WHERE late GROUP BY partition")
                .fetchall())
    nraw, ndistinct = db.execute("SELECT count(*), count(DISTINCT (partition, seq)) FROM r") \
        .fetchone()
    assert nraw == ndistinct, "a raw row written twice"
    return want, late, wm, nraw


def us(v):
    return (v.replace(tzinfo=None) - EPOCH) // datetime.timedelta(microseconds=1)


def check(root, lines, nsent, late_want=None):
    """The window table against the oracle. The final watermark is the
    minimum over the partitions when they all end together; one that finished
    its available-now range earlier stopped holding it (it is idle: nothing
    more can come from it in this run), so it may be higher, never lower."""
    cat = [l for l in lines if l["name"] == "by_category"]
    final = cat[-1]
    wm_final = us(datetime.datetime.fromisoformat(final["eventTime"]["watermark"]))
    want, late, wm, nraw = oracle(root, wm_final)
    assert wm_final >= wm
    assert nraw == nsent
    assert late == (late_want or {}), late
    rows = DeltaTable(str(root / "by_category")).to_pyarrow_table().to_pylist()
    got = {(us(r["window_start"]), r["category"]): (r["txn_count"], r["total_amount"])
           for r in rows}
    assert len(got) == len(rows), "a window written twice"
    assert set(got) == set(want), sorted(set(got) ^ set(want))[:5]
    for k, (n, s) in want.items():
        assert got[k][0] == n, (k, got[k], n)
        assert math.isclose(got[k][1], s, rel_tol=1e-9), (k, got[k], s)
    dropped = {p: v["total"] for p, v in final["droppedByWatermark"].items() if v["total"]}
    assert dropped == {str(p): n for p, n in (late_want or {}).items()}
    assert sum(l["stateOperators"][0]["numRowsDroppedByWatermark"] for l in cat) == \
        sum((late_want or {}).values())
    return len(want)


def send_spread(emu, tmp, evs, parts):
    """Event i to partition i mod parts, in order (one `ehdelta send` each)."""
    for q in range(parts):
        send_lines(emu, tmp, evs[q::parts], name=f"p{q}-{evs[0]['transaction_id']}.jsonl",
                   extra=("--partition", str(q)))


@pytest.fixture(scope="module", params=[4, 32])
def backlog(request, tmp_path_factory):
    parts = request.param
    tmp = tmp_path_factory.mktemp(f"backlog{parts}")
    emu = Emu(tmp, partitions=parts)
    n = 6000
    send_spread(emu, tmp, events(n), parts)
    yield emu, tmp, n
    emu.stop()


@pytest.mark.parametrize("mbe", [500, 2000, 1000000])
def test_backlog_windows_equal_batch_windows(backlog, mbe):
    emu, tmp, n = backlog
    root = tmp / f"mbe{mbe}"
    lines = run(conf_for(emu, tmp, root, mbe), tmp / f"mbe{mbe}.progress")
    nwin = check(root, lines, n)
    assert nwin > 3000  # 60 h of 5-minute windows by 5 categories, nearly all closed
    if mbe == 500:
        # a batch closes at the first whole block past the bound: a few fewer
        assert len([l for l in lines if l["name"] == "raw"]) >= n // 1000


def ends(lines, name="raw"):
    return [{int(p): s for p, s in next(iter(l["sources"][0]["endOffset"].values())).items()}
            for l in lines if l["name"] == name]


def test_one_partition_hours_behind(tmp_path):
    """ehemu holds partition 0 to one event a second until the other three are
    read to the end (max_drift = off lets them run ahead), then lets it go:
    partition 0 is then most of 60 hours of event time behind."""
    emu = Emu(tmp_path, partitions=4)
    try:
        n = 4000
        send_spread(emu, tmp_path, events(n, seed=5), 4)
        assert emu.ctl("slow 0") == "error slow '0': expected PARTITION RATE (events/s, 0: no limit)"
        assert emu.ctl("slow 0 1") == "ok"
        root = tmp_path / "skew"
        progress = tmp_path / "skew.progress"
        p = start(conf_for(emu, tmp_path, root, 200, source="max_drift = off"), progress)

        def others_read():
            assert p.poll() is None, p.stderr.read()
            e = ends(progress_lines(progress))
            return e and all(e[-1].get(q, -1) == n // 4 - 1 for q in (1, 2, 3)) and e[-1]

        last = wait_until(others_read, timeout=300, what="partitions 1-3 read")
        assert last.get(0, -1) < n // 4 // 4  # partition 0 under a quarter: > 45 h behind
        assert emu.ctl("slow 0 0") == "ok"
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        check(root, progress_lines(progress), n)
    finally:
        emu.stop()


def test_twenty_kill9_then_same_windows(tmp_path):
    """Each of 20 runs is killed with SIGKILL as soon as it has committed a
    batch of its own (it still has a backlog then); a last run, given one more
    slice so that it has batches of its own to report its watermark in (a
    killed run may have committed everything sent before it died), finishes.
    The window table still equals the batch computation and nothing is late."""
    emu = Emu(tmp_path, partitions=4)
    try:
        total, first = 13000, 8000
        send_spread(emu, tmp_path, events(first, seed=7, total=total), 4)
        sent = first
        root = tmp_path / "k9"
        conf = conf_for(emu, tmp_path, root, 100)
        kills = 0
        rnd = random.Random(9)
        for i in range(40):
            if kills == 20:
                break
            progress = tmp_path / f"k9-{i}.progress"
            p = start(conf, progress)
            need = rnd.randint(1, 4)
            wait_until(lambda: p.poll() is not None or len(progress_lines(progress)) >= need,
                       timeout=300, what="a committed batch")
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait(30)
                kills += 1
            else:
                assert p.returncode == 0, p.stderr.read()
                assert sent < total - 1000, "the backlog ran out before 20 kills"
                send_spread(emu, tmp_path, events(1000, seed=7, first=sent, total=total), 4)
                sent += 1000
        assert kills == 20
        send_spread(emu, tmp_path, events(1000, seed=7, first=sent, total=total), 4)
        sent += 1000
        lines = run(conf, tmp_path / "k9-final.progress")
        check(root, lines, sent)
    finally:
        emu.stop()


def test_really_late_rows_dropped_and_counted_on_their_partition(tmp_path):
    """Partition 1 receives, after 30 hours of its events, 7 events 3 hours
    older: their windows end before partition 1's own watermark, so they are
    dropped and counted on partition 1 alone, whatever the batches. 5 events on
    partition 2 only 8 minutes older than its latest are not late."""
    emu = Emu(tmp_path, partitions=4)
    try:
        n = 2000
        ev = events(n, seed=13)
        per = {q: ev[q::4] for q in range(4)}
        half = len(per[1]) // 2
        top = datetime.datetime.fromisoformat(per[1][half - 1]["timestamp"])
        old = [dict(per[1][i], transaction_id=f"L{i}",
                    timestamp=(top - datetime.timedelta(hours=3, minutes=i))
                    .isoformat(timespec="milliseconds")) for i in range(7)]
        per[1] = per[1][:half] + old + per[1][half:]
        top2 = max(datetime.datetime.fromisoformat(e["timestamp"]) for e in per[2][:half])
        near = [dict(per[2][i], transaction_id=f"N{i}",
                     timestamp=(top2 - datetime.timedelta(minutes=8))
                     .isoformat(timespec="milliseconds")) for i in range(5)]
        per[2] = per[2][:half] + near + per[2][half:]
        for q in range(4):
            send_lines(emu, tmp_path, per[q], name=f"p{q}.jsonl", extra=("--partition", str(q)))
        for mbe in (100, 1000000):
            root = tmp_path / f"late{mbe}"
            lines = run(conf_for(emu, tmp_path, root, mbe), tmp_path / f"late{mbe}.progress")
            check(root, lines, n + 12, late_want={"1": 7})
    finally:
        emu.stop()


def test_until_reads_a_bounded_range_and_the_next_run_goes_on(tmp_path):
    """--until ID:SEQ stops the partitions named there (the others read what
    the hub holds); --until TIME stops each partition before its first event
    enqueued after TIME; a last run reads the rest. Across the three runs the
    window state (watermark, per-partition event times) comes back from the
    checkpoint, and the window table still equals the batch computation."""
    emu = Emu(tmp_path, partitions=4)
    try:
        total = 2400
        send_spread(emu, tmp_path, events(2000, seed=17, total=total), 4)
        root = tmp_path / "until"
        conf = conf_for(emu, tmp_path, root, 300, trigger="10 seconds")
        run(conf, tmp_path / "u1.progress", "--until", "0:99,2:9")
        db = duckdb.connect()

        def last_seqs():
            files = DeltaTable(str(root / "raw")).file_uris()
            return dict(db.execute("SELECT partition, max(sequenceNumber) FROM read_parquet(?) "
                                   "GROUP BY partition", [files]).fetchall())

        assert last_seqs() == {"0": 99, "1": 499, "2": 9, "3": 499}
        cut = datetime.datetime.now(datetime.timezone.utc)
        send_spread(emu, tmp_path, events(400, seed=17, first=2000, total=total), 4)
        run(conf, tmp_path / "u2.progress", "--until", cut.isoformat(timespec="milliseconds"))
        assert last_seqs() == {str(q): 499 for q in range(4)}
        lines = run(conf, tmp_path / "u3.progress", "--available-now")
        assert last_seqs() == {str(q): 599 for q in range(4)}
        check(root, lines, total)
        p = subprocess.run([EHDELTA, "run", "--config", str(conf), "--until", "7:5"],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 2, p.stderr
        assert "--until '7:5': partition '7' is not read" in p.stderr
    finally:
        emu.stop()


def test_idle_partition_stops_holding_and_rejoins(tmp_path):
    """Continuous run, idle_timeout = 1 second. Both partitions read 10 hours;
    then only partition 0 gets 10 more: partition 1, caught up and quiet, is
    idle and the watermark follows partition 0 alone (without idleness it
    would stay near 10 h). Partition 1 then comes back with an event at 12 h:
    behind the watermark (though not behind its own), so it is dropped and
    counted on partition 1, and its window holds only the others' rows."""
    emu = Emu(tmp_path, partitions=2)
    p = None
    try:
        first = events(400, seed=23, total=800)  # hours 0..30 of a 60-hour timeline
        send_spread(emu, tmp_path, first, 2)
        root = tmp_path / "idle"
        conf = conf_for(emu, tmp_path, root, 1000000, trigger="1 second",
                        source="idle_timeout = 1 second")
        progress = tmp_path / "idle.progress"
        p = start(conf, progress)

        def wm_after(hours):
            assert p.poll() is None, p.stderr.read()
            cat = [l for l in progress_lines(progress) if l["name"] == "by_category"]
            w = cat and cat[-1]["eventTime"]["watermark"]
            return w and datetime.datetime.fromisoformat(w).replace(tzinfo=None) >= \
                T0 + datetime.timedelta(hours=hours)

        wait_until(lambda: wm_after(29), timeout=120, what="the watermark near 30 h")
        more = events(200, seed=23, first=400, total=800)  # hours 30..45
        send_lines(emu, tmp_path, more, name="p0-more.jsonl", extra=("--partition", "0"))
        wait_until(lambda: wm_after(44), timeout=120, what="the watermark past 44 h (1 idle)")
        back = dict(first[1], transaction_id="BACK",
                    timestamp=(T0 + datetime.timedelta(hours=32, minutes=2))
                    .isoformat(timespec="milliseconds"))
        send_lines(emu, tmp_path, [back], name="p1-back.jsonl", extra=("--partition", "1"))

        def dropped_on_1():
            assert p.poll() is None, p.stderr.read()
            cat = [l for l in progress_lines(progress) if l["name"] == "by_category"]
            return cat and cat[-1]["droppedByWatermark"]["1"]["total"] == 1

        wait_until(dropped_on_1, timeout=120, what="the event at 32 h counted on partition 1")
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        lines = progress_lines(progress)
        final = [l for l in lines if l["name"] == "by_category"][-1]
        assert final["droppedByWatermark"]["0"]["total"] == 0
        ws = us(T0 + datetime.timedelta(hours=32))
        rows = DeltaTable(str(root / "by_category")).to_pyarrow_table().to_pylist()
        got = sum(r["txn_count"] for r in rows if us(r["window_start"]) == ws)
        files = DeltaTable(str(root / "raw")).file_uris()
        n_raw, n_back = duckdb.connect().execute(
            f"SELECT count(*), count(*) FILTER (WHERE transaction_id = 'BACK') "
            f"FROM read_parquet(?) WHERE epoch_us(timestamp) - epoch_us(timestamp) % {SIZE} "
            f"= {ws}", [files]).fetchone()
        assert n_back == 1 and got == n_raw - 1, (got, n_raw)
    finally:
        if p and p.poll() is None:
            p.kill()
        emu.stop()
