"""trigger = continuous against trigger = 1 second, and compaction, in one run
(issue 24). All phases use dist/tutorial.conf with the raw sink's trigger
replaced, an 8-partition ehemu and `ehdelta send --rate EHDELTA_BENCH_RATE`
(default 10000 events/s), on local disk.

1. Latency, EHDELTA_BENCH_SECONDS (default 20) of sending, trigger = 1 second
   then trigger = continuous: per row, the mtime of the _delta_log JSON that
   added its file (dataChange = true adds only) minus its ingestion_time (the
   enqueued time ehemu stamped); p50, p99, max; also for continuous, min
   100 ms, and continuous with compaction on. CPU per event: the agent's
   user+sys seconds (wait4) over the events sent, the whole job (every sink).
2. Files: EHDELTA_BENCH_LONG seconds (default 120) of sending with trigger =
   continuous, min 100 ms and compaction on (compaction_files = 10, interval
   1 s), then
   the same with trigger = 1 minute and no compaction; active files per
   partition of the raw table at the end, and delta-rs's full read of each
   table (best of 5).

Wall figures depend on what else the machine runs (the load average is
printed)."""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from urllib.parse import unquote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_agent import EHDELTA, Emu, ThreadCpu, env_for, progress, say, tutorial_conf  # noqa: E402

RATE = int(os.environ.get("EHDELTA_BENCH_RATE", "10000"))
SECONDS = int(os.environ.get("EHDELTA_BENCH_SECONDS", "20"))
LONG = int(os.environ.get("EHDELTA_BENCH_LONG", "120"))
COMPACT = "compaction = true\ncompaction_files = 10\ncompaction_interval = 1 second"


def raw_rows(lines):
    """Rows the raw sink committed (compaction's progress lines move none)."""
    return sum(d.get("numInputRows", 0) for d in lines if d["name"] == "raw")


def run(work, tag, trigger, seconds, extra=""):
    """Sends RATE events/s for seconds to a fresh hub while the agent runs;
    returns (table path, agent CPU s, events sent)."""
    emu = Emu(work, 8)
    try:
        d = os.path.join(work, tag)
        os.makedirs(d)
        conf = tutorial_conf(d, raw_trigger=trigger + ("\n" + extra if extra else ""))
        agent = subprocess.Popen(
            [EHDELTA, "run", "--config", conf, "--progress", "progress.jsonl", "--log-level",
             "warn"], cwd=d, env=env_for(emu), stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(d, "stderr"), "w"))
        threads = ThreadCpu(agent.pid)
        time.sleep(2)  # let the agent attach before the first event is sent
        if agent.poll() is not None:
            sys.exit(f"bench: ehdelta run exited {agent.returncode} (see {d}/stderr)")
        n = RATE * seconds
        snd = subprocess.run([EHDELTA, "send", "--count", str(n), "--rate", str(RATE),
                              "--no-progress"], env=env_for(emu), capture_output=True, text=True)
        if snd.returncode:
            sys.exit(f"bench: ehdelta send failed: {snd.stderr.strip()}")
        pfile = os.path.join(d, "progress.jsonl")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if os.path.exists(pfile) and raw_rows(progress(pfile)) >= n:
                break
            time.sleep(0.2)
        agent.send_signal(signal.SIGTERM)
        _, status, ru = os.wait4(agent.pid, 0)
        if os.waitstatus_to_exitcode(status):
            sys.exit(f"bench: ehdelta run failed after SIGTERM (see {d}/stderr)")
        say("    CPU s by thread: " + ", ".join(f"{k} {v:.2f}" for k, v in threads.split().items()))
        return os.path.join(d, "lake/raw/transactions-streaming"), ru.ru_utime + ru.ru_stime, n
    finally:
        emu.stop()


def latency(table):
    import pyarrow.parquet as pq
    log = os.path.join(table, "_delta_log")
    lat = []
    for name in sorted(os.listdir(log)):
        if not re.fullmatch(r"\d{20}\.json", name):
            continue
        visible_us = os.stat(os.path.join(log, name)).st_mtime_ns // 1000
        with open(os.path.join(log, name)) as f:
            acts = [json.loads(x) for x in f if x.strip()]
        for a in acts:
            if "add" in a and a["add"]["dataChange"]:
                col = pq.read_table(os.path.join(table, unquote(a["add"]["path"])),
                                    columns=["ingestion_time"])["ingestion_time"]
                lat += [(visible_us - v) / 1e6 for v in col.cast("int64").to_pylist()]
    lat.sort()
    return dict(rows=len(lat), p50=lat[len(lat) // 2],
                p99=lat[min(len(lat) - 1, int(len(lat) * 0.99))], max=lat[-1])


def files_and_read(table):
    import pyarrow as pa
    from deltalake import DeltaTable
    dt = DeltaTable(table)
    per = {}
    for a in pa.table(dt.get_add_actions(flatten=True)).to_pylist():
        k = a.get("partition.processing_date")
        per[k] = per.get(k, 0) + 1
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        rows = DeltaTable(table).to_pyarrow_table().num_rows
        best = min(best, time.perf_counter() - t0)
    return per, rows, best, dt.version()


def main():
    work = tempfile.mkdtemp(prefix="ehdelta-bench-cont-")
    say(f"bench_continuous: {RATE:,} events/s, latency runs {SECONDS} s, file runs {LONG} s; "
        f"load average {os.getloadavg()[0]:.2f}; work {work}")
    res = {}
    for tag, trig, extra in (("1s", "1 second", ""), ("continuous", "continuous", ""),
                             ("continuous-compact", "continuous", COMPACT),
                             ("continuous-100ms", "continuous, min 100 ms", "")):
        table, cpu, n = run(work, tag, trig, SECONDS, extra)
        lt = latency(table)
        res[tag] = cpu / n
        say(f"  trigger {trig}{' + compaction' if extra else ''}: rows {lt['rows']:,}/{n:,}  "
            f"p50 {lt['p50']:.3f} s  p99 {lt['p99']:.3f} s  max {lt['max']:.3f} s  agent CPU "
            f"{cpu:.2f} s = {cpu / n * 1e6:.1f} us/event ({cpu / n / res['1s']:.2f} of 1 second)")
    if not LONG:
        return
    out = {}
    for tag, trig, extra in (("compact", "continuous, min 100 ms", COMPACT),
                             ("1min", "1 minute", "")):
        table, cpu, n = run(work, tag, trig, LONG, extra)
        per, rows, read_s, version = files_and_read(table)
        out[tag] = read_s
        say(f"  {LONG} s, trigger {trig}{' + compaction' if extra else ''}: {rows:,}/{n:,} rows, "
            f"{version + 1} versions, active files per partition {per}, delta-rs read "
            f"{read_s * 1000:.1f} ms, agent CPU {cpu / n * 1e6:.1f} us/event")
        if extra:
            lines = [d for d in progress(os.path.join(work, tag, "progress.jsonl"))
                     if "compaction" in d]
            say(f"    compactions {len(lines)}: files removed "
                f"{sum(d['compaction']['filesRemoved'] for d in lines)}, added "
                f"{sum(d['compaction']['filesAdded'] for d in lines)}, bytes rewritten "
                f"{sum(d['compaction']['bytesRemoved'] for d in lines):,}, time "
                f"{sum(d['compaction']['durationMs'] for d in lines)} ms, conflicts "
                f"{sum(d['compaction']['conflicts'] for d in lines)}")
    say(f"  delta-rs read, continuous+compaction / 1-minute trigger: "
        f"{out['compact'] / out['1min']:.2f}")


if __name__ == "__main__":
    main()
