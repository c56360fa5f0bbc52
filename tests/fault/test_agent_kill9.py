"""kill -9 at random moments of a live ehdelta run while events keep arriving:
a million tutorial events (EHDELTA_CRASH_EVENTS) reach the hub in slices, one
slice per run, and 20 runs (EHDELTA_CRASH_KILLS) are killed, each while it has
work in hand; a last run drains the rest with --available-now. Afterwards every
event is in the raw table exactly once, the dead letters too, and the window
table (open windows carried in the checkpoints through every crash) equals the
one an uninterrupted run writes, and both equal what Python computes.

Why the kills land whatever the speed of the agent and the machine: the
crashing runs have no --available-now and their interval triggers are an hour,
so they never exit and commit only when a batch reaches its size bound
(max_batch_events, a quarter of a slice). A run is killed after its first or
second commit (chosen by EHDELTA_CRASH_SEED) plus a random moment of up to
0.1 s; what it can read is bounded by what was sent, not by time, so both
commits always come, and the events past its last full batch are still
uncommitted when it dies. Each kill is checked: the process was alive (it dies
of SIGKILL) and the raw table then held fewer rows than the hub had good events
(the run had work in hand). A kill that misses (the run had committed every
event sent, the batch bound falling exactly on the slice's end) is not counted;
a few spare slices make up for it.

Why the windows agree although events arrive in slices: the events cover two
hours of event time and the watermark delay is three hours, so however the
slices, batches and crashes cut them, the watermark never passes an event's
window and no event is late; no window closes until the four events ten hours
later are sent, after both the crashed and the clean run have committed every
other event."""
import datetime
import json
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
from conftest import EHDELTA, wait_until  # noqa: E402

N = int(os.environ.get("EHDELTA_CRASH_EVENTS", "1000000"))
KILLS = int(os.environ.get("EHDELTA_CRASH_KILLS", "20"))
SEED = int(os.environ.get("EHDELTA_CRASH_SEED", "20261202"))
SPARE = max(3, KILLS // 4)  # slices for kills that miss (see the docstring)


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


def job_conf(emu, tmp_path, root, batch):
    """The tutorial's job with every Delta sink bounded to batch events and
    interval triggers of an hour: a run without --available-now commits only
    full batches."""
    extra = f"max_batch_events = {batch}\n"
    c = tutorial_conf(emu, tmp_path, root, watermark="3 hours", raw_trigger="1 hour",
                      extra_raw=extra)
    c = c.rename(tmp_path / f"{root.name}.conf")
    c.write_text(c.read_text().replace("trigger = 1 minute", "trigger = 1 hour\n" + extra))
    return c


def raw_commits(progress):
    if not progress.exists():
        return 0
    # the last line may be half written: only lines with their newline count
    lines = progress.read_text().split("\n")[:-1]
    return sum(json.loads(l)["name"] == "raw" for l in lines)


def committed_rows(table):
    if not (table / "_delta_log").exists():
        return 0
    return DeltaTable(str(table)).to_pyarrow_dataset().count_rows()


def test_kill_9_twenty_times(emu, tmp_path):
    rnd = random.Random(SEED)
    good = transactions(N, seed=9, step_s=7200.0 / N, jitter_s=1.0)
    lines = good[:N // 3] + BAD + good[N // 3:]
    n_slices = KILLS + SPARE + 1  # the last one is read by the final run only
    size = len(lines) // n_slices
    batch = size // 4
    assert batch >= 1000, (f"EHDELTA_CRASH_EVENTS={N} is too few for EHDELTA_CRASH_KILLS={KILLS}: "
                           f"expected at least {4000 * n_slices} events")
    slices = [lines[i * size:(i + 1) * size] for i in range(n_slices - 1)]
    slices.append(lines[(n_slices - 1) * size:])
    crash = job_conf(emu, tmp_path, tmp_path / "crash", batch)
    raw_table = tmp_path / "crash/raw/transactions-streaming"

    kills = misses = sent_good = 0
    in_hand = []  # good events sent but not in the raw table, at each kill
    t_start = time.monotonic()
    while kills < KILLS and slices[:-1]:
        chunk = slices.pop(0)
        attempt = kills + misses
        live = rnd.random() < 0.5  # the slice arrives while the run reads, or before it starts
        if not live:
            send_lines(emu, tmp_path, chunk, name="slice.jsonl")
        progress = tmp_path / f"kill{attempt}.progress"
        err = tmp_path / f"kill{attempt}.err"
        with open(err, "w") as ef:
            p = subprocess.Popen([EHDELTA, "run", "--config", str(crash), "--progress",
                                  str(progress), "--log-level", "warn"],
                                 stdout=subprocess.DEVNULL, stderr=ef)
        try:
            if live:
                send_lines(emu, tmp_path, chunk, name="slice.jsonl")
            sent_good += sum(isinstance(l, dict) for l in chunk)
            want = rnd.randint(1, 2)

            def committed():
                assert p.poll() is None, f"run {attempt} exited {p.returncode}: {err.read_text()}"
                return raw_commits(progress) >= want
            # a deadline against a hang only: the commits come once the events are there
            wait_until(committed, timeout=300, interval=0.005, what=f"commit {want} of run {attempt}")
            time.sleep(rnd.uniform(0, 0.1))
            assert p.poll() is None, f"run {attempt} exited {p.returncode}: {err.read_text()}"
            p.send_signal(signal.SIGKILL)
        finally:
            if p.poll() is None:
                p.kill()
            p.wait()
        assert p.returncode == -signal.SIGKILL, f"run {attempt} exited {p.returncode} before the kill"
        left = sent_good - committed_rows(raw_table)
        if left > 0:
            kills += 1
            in_hand.append(left)
        else:
            misses += 1  # it had committed every event sent: idle, not a kill mid-work
    t_kills = time.monotonic() - t_start
    assert kills == KILLS, (f"only {kills} of {KILLS} kills landed mid-work; {misses} found the "
                            "run with every event sent already committed")
    for chunk in slices:
        send_lines(emu, tmp_path, chunk, name="slice.jsonl")
    r, _ = run_agent(crash, tmp_path, "--available-now", tag="final")
    assert r.returncode == 0, r.stderr
    in_hand.sort()
    print(f"{kills} kills ({misses} missed) in {t_kills:.1f} s, {N} events in batches of {batch}; "
          f"events in hand at a kill: min {in_hand[0]}, median {in_hand[len(in_hand) // 2]}, "
          f"max {in_hand[-1]}")
    # the same job, uninterrupted, over the same events
    clean = job_conf(emu, tmp_path, tmp_path / "clean", batch)
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

    raw = DeltaTable(str(raw_table)).to_pyarrow_table(
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
