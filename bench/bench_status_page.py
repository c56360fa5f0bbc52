#!/usr/bin/env python3
"""What the status page costs the agent, in the same run.

Run: make bench-status-page   (or bench/bench_status_page.sh from the build directory)

ehemu (8 partitions) preloaded once with EHDELTA_BENCH_EVENTS (default
1,000,000) tutorial transactions; then dist/tutorial.conf as shipped,
`ehdelta run --available-now --metrics-listen`, local Delta tables, repeated
EHDELTA_BENCH_REPEATS (default 3) times in each of three modes, interleaved so
that drift on the machine falls on all of them alike:
  closed  nobody asks the endpoint (the agent still samples its history once a
          second: that is part of the agent, page or not);
  page    what an open page does: GET / and the whole /history once, then
          /history?since=... and /status every 2 seconds;
  page10x the same ten times as often (every 200 ms), an upper bound.
Per run: CPU seconds (user+sys, from wait4) per event, and the CPU of the
metrics server thread ("ag-metrics", sampled from /proc) that does the
sampling and the answering. Printed: the medians, the page's cost as
(page - closed) / closed, and the metrics thread's share of the agent's CPU.
The goal: the page costs under 2% of the CPU per event.
"""
import os
import statistics
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_agent as ba  # noqa: E402  (the emulator, preload, rusage and thread helpers)

EVENTS = int(os.environ.get("EHDELTA_BENCH_EVENTS", "1000000"))
REPEATS = int(os.environ.get("EHDELTA_BENCH_REPEATS", "3"))
GOAL_PCT = 2.0


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Poller(threading.Thread):
    """Does what the page does, every `every` seconds, until the agent exits."""

    def __init__(self, port, every):
        super().__init__(daemon=True)
        self.base, self.every, self.stop, self.requests, self.bytes = (
            f"http://127.0.0.1:{port}", every, threading.Event(), 0, 0)

    def get(self, path):
        with urllib.request.urlopen(self.base + path, timeout=10) as r:
            body = r.read()
        self.requests += 1
        self.bytes += len(body)
        return body

    def run(self):
        while not self.stop.is_set():  # until the agent listens
            try:
                self.get("/")
                break
            except OSError:
                self.stop.wait(0.01)
        last = 0
        try:
            self.get("/history")
            while not self.stop.wait(self.every):
                last = int(time.time() * 1000) - 2000
                self.get(f"/history?since={last}")
                self.get("/status")
        except OSError:
            return  # the agent finished


def one_run(emu, work, tag, every):
    d = os.path.join(work, tag)
    os.makedirs(d)
    conf = ba.tutorial_conf(d)
    port = free_port()
    box = {}
    poller = Poller(port, every) if every else None

    def started(pid):
        box["tc"] = ba.ThreadCpu(pid)
        if poller:
            poller.start()

    rc, wall, ut, st, rss = ba.measured(
        [ba.EHDELTA, "run", "--config", conf, "--available-now", "--progress", "progress.jsonl",
         "--log-level", "warn", "--metrics-listen", f"127.0.0.1:{port}"], cwd=d,
        env=ba.env_for(emu), stderr=open(os.path.join(d, "stderr"), "w"), started=started)
    if poller:
        poller.stop.set()
        poller.join(10)
    if rc:
        sys.exit(f"bench: ehdelta run exited {rc} (see {d}/stderr)")
    events = ba.raw_rows(ba.progress(os.path.join(d, "progress.jsonl")))
    tc = box["tc"]
    tc.t.join()
    metrics_cpu = sum(c for tid, c in tc.cpu.items() if tc.names.get(tid) == "ag-metrics")
    return dict(events=events, wall=wall, cpu=ut + st, rss=rss, metrics_cpu=metrics_cpu,
                requests=poller.requests if poller else 0, bytes=poller.bytes if poller else 0)


def main():
    work = ba.tempfile.mkdtemp(prefix="ehdelta-bench-page-")
    ba.say(f"bench_status_page: work directory {work}; load average {os.getloadavg()[0]:.2f}")
    emu = ba.Emu(work, 8)
    try:
        secs = ba.preload(emu, EVENTS, work)
        ba.say(f"preloaded {EVENTS:,} events in {secs:.1f} s")
        modes = [("closed", 0), ("page", 2.0), ("page10x", 0.2)]
        res = {m: [] for m, _ in modes}
        for i in range(REPEATS):
            for m, every in modes:
                r = one_run(emu, work, f"{m}-{i}", every)
                if r["events"] != EVENTS:
                    sys.exit(f"bench: {m} run {i} wrote {r['events']:,} rows, expected {EVENTS:,}")
                r["us_per_event"] = r["cpu"] / r["events"] * 1e6
                res[m].append(r)
                ba.say(f"  {m:8} run {i}: {r['wall']:.2f} s wall, {r['cpu']:.3f} s CPU, "
                       f"{r['us_per_event']:.3f} us/event, ag-metrics {r['metrics_cpu'] * 1000:.0f} ms, "
                       f"{r['requests']} requests, {r['bytes'] / 1024:.0f} KiB served, "
                       f"RSS {r['rss']:.1f} MiB")
        med = {m: statistics.median(r["us_per_event"] for r in res[m]) for m in res}
        mcpu = {m: statistics.median(r["metrics_cpu"] / r["cpu"] * 100 for r in res[m]) for m in res}
        ba.say(f"CPU per event (median of {REPEATS}), {EVENTS:,} events per run:")
        for m, _ in modes:
            ba.say(f"  {m:8} {med[m]:.3f} us/event; the ag-metrics thread: {mcpu[m]:.3f}% of the agent's CPU")
        for m in ("page", "page10x"):
            ratio = med[m] / med["closed"]
            ba.say(f"  {m} / closed = {ratio:.4f} ({(ratio - 1) * 100:+.2f}%); metrics thread "
                   f"{mcpu[m] - mcpu['closed']:+.3f} points")
        ok = (med["page"] / med["closed"] - 1) * 100 < GOAL_PCT
        ba.say(f"goal: the open page costs < {GOAL_PCT}% CPU per event: {'met' if ok else 'NOT met'}")
    finally:
        emu.stop()
        if not os.environ.get("EHDELTA_BENCH_KEEP"):
            import shutil
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
