"""kill -9 at random moments: ehdelta run over a million tutorial events
(EHDELTA_CRASH_EVENTS to change it) is killed 20 times (EHDELTA_CRASH_KILLS)
and restarted each time. Afterwards every event is in the raw table exactly
once, the dead letters too, and the window table (open windows carried in the
checkpoints through every crash) equals the one an uninterrupted run writes,
and both equal what Python computes from the events."""
import datetime
import os
import random
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))

import pyarrow.compute as pc  # noqa: E402
import pytest  # noqa: E402
from deltalake import DeltaTable  # noqa: E402

from agentutil import (BAD, EPOCH, T0, Emu, run_agent, send_lines, transactions,  # noqa: E402
                       tutorial_conf, windows)
from conftest import EHDELTA  # noqa: E402

N = int(os.environ.get("EHDELTA_CRASH_EVENTS", "1000000"))
KILLS = int(os.environ.get("EHDELTA_CRASH_KILLS", "20"))


@pytest.fixture
def emu(tmp_path):
    e = Emu(tmp_path, extra=("--retention", "24h"))
    yield e
    e.stop()


def us(v):
    return (v.replace(tzinfo=None) - EPOCH) // datetime.timedelta(microseconds=1)


def window_rows(path):
    t = DeltaTable(path).to_pyarrow_table()
    return {(us(r["window_start"]), us(r["window_end"]), r["category"]):
            (r["txn_count"], r["total_amount"]) for r in t.to_pylist()}, t.num_rows


def test_kill_9_twenty_times(emu, tmp_path):
    rnd = random.Random(int(os.environ.get("EHDELTA_CRASH_SEED", "20261202")))
    # two hours of event time; a watermark longer than that: no event is late
    # whatever the batches were, so the crashed and the clean run must agree
    good = transactions(N, seed=9, step_s=7200.0 / N, jitter_s=1.0)
    lines = good[:N // 3] + BAD + good[N // 3:]
    send_lines(emu, tmp_path, lines)
    extra = "max_batch_events = 20000\n"
    crash = tutorial_conf(emu, tmp_path, tmp_path / "crash", watermark="3 hours",
                          extra_raw=extra)
    crash.rename(tmp_path / "crash.conf")
    crash = tmp_path / "crash.conf"
    text = crash.read_text().replace("trigger = 1 minute", "trigger = 1 minute\n" + extra)
    crash.write_text(text)
    kills = 0
    t_start = time.monotonic()
    while kills < KILLS:
        p = subprocess.Popen([EHDELTA, "run", "--config", str(crash), "--available-now",
                              "--log-level", "warn"], stdout=subprocess.DEVNULL,
                             stderr=open(tmp_path / f"kill{kills}.err", "w"))
        time.sleep(rnd.uniform(0.05, 0.4))
        if p.poll() is not None:
            assert p.returncode == 0, (tmp_path / f"kill{kills}.err").read_text()
            break  # finished before the kill: the rest of the kills have nothing to hit
        p.send_signal(signal.SIGKILL)
        p.wait()
        kills += 1
    r, _ = run_agent(crash, tmp_path, "--available-now", tag="final")
    assert r.returncode == 0, r.stderr
    print(f"{kills} kills in {time.monotonic() - t_start:.1f} s")
    assert kills == KILLS, f"only {kills} kills landed: the run is too short"
    # the same job, uninterrupted, over the same events
    clean = tutorial_conf(emu, tmp_path, tmp_path / "clean", watermark="3 hours",
                          extra_raw=extra)
    r, _ = run_agent(clean, tmp_path, "--available-now", tag="clean")
    assert r.returncode == 0, r.stderr
    # later events close every window of the first two hours, for both (sent
    # only now: read in the same batch as the early events of a partition not
    # yet drained, they would move the watermark past those)
    late = transactions(4, seed=3, start=T0 + datetime.timedelta(hours=10), jitter_s=0,
                        first_id=9000001)
    send_lines(emu, tmp_path, late, name="late.jsonl")
    for conf, tag in ((crash, "late"), (clean, "clean-late")):
        r, _ = run_agent(conf, tmp_path, "--available-now", tag=tag)
        assert r.returncode == 0, r.stderr

    raw = DeltaTable(str(tmp_path / "crash/raw/transactions-streaming")).to_pyarrow_table(
        columns=["transaction_id", "partition", "sequenceNumber", "amount"])
    assert raw.num_rows == N + len(late), f"{raw.num_rows} rows for {N + len(late)} events"
    ids = raw.column("transaction_id")
    assert pc.count_distinct(ids).as_py() == raw.num_rows, "a transaction twice"
    pos = pc.binary_join_element_wise(raw.column("partition"),
                                      pc.cast(raw.column("sequenceNumber"), "string"), ":")
    assert pc.count_distinct(pos).as_py() == raw.num_rows, "a position twice"
    dl = DeltaTable(str(tmp_path / "crash/raw/dead-letter")).to_pyarrow_table().to_pylist()
    assert sorted(r["body"] for r in dl) == sorted(BAD)

    got, n_got = window_rows(str(tmp_path / "crash/curated/transaction-analytics/by-category"))
    ref, n_ref = window_rows(str(tmp_path / "clean/curated/transaction-analytics/by-category"))
    assert n_got == len(got) and n_ref == len(ref), "a window emitted twice"
    assert set(got) == set(ref)
    for k in ref:
        assert got[k][0] == ref[k][0] and abs(got[k][1] - ref[k][1]) < 1e-9 * ref[k][1], k
    want = windows(good, 5, 5, "category")
    assert set(got) == set(want)
    for k, (n, s) in want.items():
        assert got[k][0] == n and abs(got[k][1] - s) < 1e-6 * s, k
