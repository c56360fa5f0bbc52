"""trigger = continuous against trigger = 1 second, and compaction, in one run
(issue 24). All phases use dist/tutorial.conf with the raw sink's trigger
replaced, an 8-partition ehemu and `ehdelta send --rate RATE` (default
10000 events/s).

usage: bench_continuous.py [--seconds N] [--repeat R] [--long N]
                           [--store local|azurite|both] [--rate N]

1. Latency and CPU, local disk: --seconds (EHDELTA_BENCH_SECONDS, default 20)
   of sending with trigger = continuous, continuous + compaction and
   continuous, min 100 ms, each beside a trigger = 1 second agent on its own
   hub at the same time (so both see the same machine: other work on it
   moves CPU seconds per event by a third from run to run), --repeat rounds
   (default 3). Latency per row: the mtime of the _delta_log JSON that added
   its file (dataChange = true adds only) minus its ingestion_time (the
   enqueued time ehemu stamped); p50, p99, max, the median of each over the
   rounds. CPU per event: the agent's user+sys seconds (wait4) over the
   events sent, the whole job (every sink); the median over the rounds, and
   the median of each pair's ratio to its 1-second agent.
2. Latency against Azurite (--store azurite or both): trigger = continuous
   beside trigger = 1 second as above, the tables in one Azurite (the
   project's .tools/node azurite-blob, shared-key), one round. A blob's
   Last-Modified has whole seconds, so a version is visible when the agent's
   progress line for it appears (the line is written once the commit's put
   returned; the file is polled every 2 ms): per row, that time minus its
   ingestion_time.
3. Files (--long N, EHDELTA_BENCH_LONG, default 120; 0 skips): N seconds of
   sending with trigger = continuous and compaction on (compaction_files =
   10, interval 1 s) and, at the same time on a second hub, trigger = 1
   minute without compaction; the most active files per partition of the raw
   table seen during the run (sampled every 30 s) and at the end, and
   delta-rs's full read of each table (log and data; best of 5, the two
   tables in turn once both agents stopped), with their ratio.

Wall figures depend on what else the machine runs (the load average is
printed)."""
import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from urllib.parse import unquote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_agent import EHDELTA, SRC, Emu, ThreadCpu, env_for, progress, say, tutorial_conf  # noqa: E402

COMPACT = "compaction = true\ncompaction_files = 10\ncompaction_interval = 1 second"
# The bound stated for active files per partition with compaction (files = 10,
# interval 1 s): the 10 small files that start a compaction, the commits
# that land during one interval and the rewrite itself (~12-15 at ~12
# commits/s), and the size tiers' outputs (a handful: each tier holds files
# no larger than all smaller ones together).
FILES_BOUND = 30
# Azurite's well-known development account key (public, in Microsoft's docs)
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
RAW = "raw/transactions-streaming"


def raw_rows(lines):
    """Rows the raw sink committed (compaction's progress lines move none)."""
    return sum(d.get("numInputRows", 0) for d in lines if d["name"] == "raw")


class Azurite:
    """azurite-blob on a free loopback port, in a fresh directory."""

    def __init__(self, work):
        binp = next((p for p in (os.environ.get("EHDELTA_AZURITE"),
                                 os.path.join(SRC, ".tools/node/node_modules/.bin/azurite-blob"))
                     if p and os.path.exists(p)), None)
        if not binp:
            sys.exit("bench: no azurite-blob in .tools/node (scripts/deps)")
        self.dir = os.path.join(work, "azurite")
        os.makedirs(self.dir)
        self.log = open(os.path.join(self.dir, "log"), "w+")
        self.proc = subprocess.Popen(
            [binp, "--blobHost", "127.0.0.1", "--blobPort", "0", "--location", self.dir,
             "--skipApiVersionCheck", "--loose", "--disableTelemetry", "--silent"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        self.port = None
        while self.port is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                sys.exit(f"bench: azurite did not start (see {self.dir}/log)")
            self.log.seek(0)
            m = re.search(r"listens on http://127\.0\.0\.1:(\d+)", self.log.read())
            if m:
                self.port = int(m.group(1))
            else:
                time.sleep(0.1)
        self.keyf = os.path.join(work, "azurite-key")
        with open(self.keyf, "w") as f:
            f.write(DEV_KEY + "\n")
        os.chmod(self.keyf, 0o600)

    def url(self, container):
        return f"http://127.0.0.1:{self.port}/devstoreaccount1/{container}"

    def container(self, name):
        from azure.storage.blob import BlobServiceClient
        return BlobServiceClient.from_connection_string(
            f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DEV_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{self.port}/devstoreaccount1;").get_container_client(name)

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass


class Seen(threading.Thread):
    """Polls a progress file every 2 ms; seen[version] is when the raw sink's
    line for that table version first appeared (time.time())."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path, self.seen, self.stop = path, {}, threading.Event()
        self.start()

    def run(self):
        buf, pos = "", 0
        while not self.stop.is_set():
            try:
                with open(self.path) as f:
                    f.seek(pos)
                    chunk = f.read()
                    pos = f.tell()
            except FileNotFoundError:
                chunk = ""
            now = time.time()
            buf += chunk
            *done, buf = buf.split("\n")
            for line in done:
                if not line.strip():
                    continue
                d = json.loads(line)
                if d["name"] == "raw" and not d["sink"].get("alreadyCommitted"):
                    self.seen.setdefault(d["sink"]["tableVersion"], now)
            time.sleep(0.002)


class Agent:
    """An ehemu hub and `ehdelta run` on it; send() then finish()."""

    def __init__(self, work, tag, trigger, extra="", az=None):
        self.emu = Emu(work, 8)
        self.d = os.path.join(work, tag)
        os.makedirs(self.d)
        conf = tutorial_conf(self.d, raw_trigger=trigger + ("\n" + extra if extra else ""))
        self.table = os.path.join(self.d, "lake", RAW)
        self.az = az
        if az:
            with open(conf) as f:
                text = f.read()
            text = text.replace("path = lake/", f"path = {az.url(tag)}/")
            text += f"\n[storage]\nauth = shared-key\naccount_key_file = {az.keyf}\n"
            with open(conf, "w") as f:
                f.write(text)
            self.table = tag  # the container
        self.pfile = os.path.join(self.d, "progress.jsonl")
        self.seen = Seen(self.pfile) if az else None
        self.proc = subprocess.Popen(
            [EHDELTA, "run", "--config", conf, "--progress", "progress.jsonl", "--log-level",
             "warn"], cwd=self.d, env=env_for(self.emu), stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.d, "stderr"), "w"))
        self.threads = ThreadCpu(self.proc.pid)

    def send(self, rate, seconds):
        """Starts `ehdelta send` (returns at once); see send_all."""
        if self.proc.poll() is not None:
            sys.exit(f"bench: ehdelta run exited {self.proc.returncode} (see {self.d}/stderr)")
        self.n = rate * seconds
        self.snd = subprocess.Popen([EHDELTA, "send", "--count", str(self.n), "--rate", str(rate),
                                     "--no-progress"], env=env_for(self.emu),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def finish(self):
        """Waits for the send and for every event to be committed, stops the
        agent; returns (agent CPU s, events sent)."""
        _, serr = self.snd.communicate()
        if self.snd.returncode:
            sys.exit(f"bench: ehdelta send failed: {serr.strip()}")
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if os.path.exists(self.pfile) and raw_rows(progress(self.pfile)) >= self.n:
                break
            time.sleep(0.2)
        self.proc.send_signal(signal.SIGTERM)
        _, status, ru = os.wait4(self.proc.pid, 0)
        if self.seen:
            self.seen.stop.set()
            self.seen.join()
        self.emu.stop()
        if os.waitstatus_to_exitcode(status):
            sys.exit(f"bench: ehdelta run failed after SIGTERM (see {self.d}/stderr)")
        say(f"    {os.path.basename(self.d)}: CPU s by thread: " +
            ", ".join(f"{k} {v:.2f}" for k, v in self.threads.split().items()))
        return ru.ru_utime + ru.ru_stime, self.n


def send_all(agents, rate, seconds):
    time.sleep(2)  # let the agents attach before the first event is sent
    for ag in agents:
        ag.send(rate, seconds)


def stats(lat):
    lat.sort()
    return dict(rows=len(lat), p50=lat[len(lat) // 2],
                p99=lat[min(len(lat) - 1, int(len(lat) * 0.99))], max=lat[-1])


def ingestion_us(data):
    import pyarrow as pa
    import pyarrow.parquet as pq
    col = pq.read_table(pa.BufferReader(data) if isinstance(data, bytes) else data,
                        columns=["ingestion_time"])["ingestion_time"]
    return col.cast("int64").to_pylist()


def latency_local(table):
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
                lat += [(visible_us - v) / 1e6 for v in
                        ingestion_us(os.path.join(table, unquote(a["add"]["path"])))]
    return stats(lat)


def latency_azurite(agent):
    cc = agent.az.container(agent.table)
    lat = []
    for v, seen in sorted(agent.seen.seen.items()):
        body = cc.download_blob(f"{RAW}/_delta_log/{v:020d}.json").readall().decode()
        for a in (json.loads(x) for x in body.splitlines() if x.strip()):
            if "add" in a and a["add"]["dataChange"]:
                data = cc.download_blob(f"{RAW}/{unquote(a['add']['path'])}").readall()
                lat += [seen - us / 1e6 for us in ingestion_us(data)]
    return stats(lat)


def files_per_partition(table):
    import pyarrow as pa
    from deltalake import DeltaTable
    dt = DeltaTable(table)
    per = {}
    for a in pa.table(dt.get_add_actions(flatten=True)).to_pylist():
        k = a.get("partition.processing_date")
        per[k] = per.get(k, 0) + 1
    return per, dt.version()


def read_once(table):
    from deltalake import DeltaTable
    t0 = time.perf_counter()
    rows = DeltaTable(table).to_pyarrow_table().num_rows
    return rows, time.perf_counter() - t0


def line(trig, lt, cpu, n):
    return (f"rows {lt['rows']:,}/{n:,}  p50 {lt['p50']:.3f} s  p99 {lt['p99']:.3f} s  max "
            f"{lt['max']:.3f} s  agent CPU {cpu:.2f} s = {cpu / n * 1e6:.1f} us/event")


PAIRED = (("continuous", "continuous", ""), ("continuous-compact", "continuous", COMPACT),
          ("continuous-100ms", "continuous, min 100 ms", ""))


def label(trig, extra):
    return trig + (" + compaction" if extra else "")


def phase_local(work, a):
    cpu, ratio, lat = {}, {}, {}
    for r in range(a.repeat):
        say(f"  round {r + 1}/{a.repeat}, local disk")
        for tag, trig, extra in PAIRED:
            pair = [Agent(work, f"1s-{tag}-{r}", "1 second"), Agent(work, f"{tag}-{r}", trig, extra)]
            send_all(pair, a.rate, a.seconds)
            res = []
            for ag, k, (t, e) in zip(pair, ("1s", tag), (("1 second", ""), (trig, extra))):
                c, n = ag.finish()
                lt = latency_local(ag.table)
                cpu.setdefault(k, []).append(c / n)
                lat.setdefault(k, []).append(lt)
                res.append(c / n)
                say(f"  trigger {label(t, e)}: {line(t, lt, c, n)}")
            ratio.setdefault(tag, []).append(res[1] / res[0])
            say(f"    {label(trig, extra)} / 1 second beside it: {res[1] / res[0]:.2f}")
    med = statistics.median
    say(f"  local disk, {a.rate:,} events/s, medians of {a.repeat} rounds (the 1-second trigger: "
        f"of its {len(cpu['1s'])} runs):")
    for tag, trig, extra in (("1s", "1 second", ""),) + PAIRED:
        ls = lat[tag]
        say(f"    {label(trig, extra):<34} p50/p99/max {med([x['p50'] for x in ls]):.3f}/"
            f"{med([x['p99'] for x in ls]):.3f}/{med([x['max'] for x in ls]):.3f} s  CPU "
            f"{med(cpu[tag]) * 1e6:5.1f} us/event" +
            (f" = {med(ratio[tag]):.2f} of the 1 s trigger beside it (pairs: "
             f"{', '.join(f'{x:.2f}' for x in ratio[tag])})" if tag in ratio else ""))


def phase_azurite(work, a):
    az = Azurite(work)
    try:
        pair = [Agent(work, "az-1s", "1 second", az=az),
                Agent(work, "az-continuous", "continuous", az=az)]
        send_all(pair, a.rate, a.seconds)
        res = []
        for ag, trig in zip(pair, ("1 second", "continuous")):
            c, n = ag.finish()
            lt = latency_azurite(ag)
            res.append(c / n)
            say(f"  Azurite, trigger {trig}: {line(trig, lt, c, n)}")
        say(f"    continuous / 1 second beside it: {res[1] / res[0]:.2f}")
    finally:
        az.stop()


def phase_long(work, a):
    runs = [("compact", "continuous", COMPACT), ("1min", "1 minute", "")]
    agents = [Agent(work, tag, trig, extra) for tag, trig, extra in runs]
    send_all(agents, a.rate, a.long)
    peak = 0
    t_end = time.monotonic() + a.long
    while time.monotonic() < t_end:
        time.sleep(min(30, max(0.0, t_end - time.monotonic())))
        if os.path.isdir(os.path.join(agents[0].table, "_delta_log")):
            per, v = files_per_partition(agents[0].table)
            peak = max([peak] + list(per.values()))
            say(f"    at {a.long - max(0, int(t_end - time.monotonic()))} s: continuous + "
                f"compaction, version {v}, active files per partition {per}")
    done = [ag.finish() for ag in agents]
    # the reads alternate, once both agents have stopped, so that both tables
    # see the same machine
    best = {tag: (0, float("inf")) for tag, _, _ in runs}
    for _ in range(5):
        for (tag, _, _), ag in zip(runs, agents):
            rows, s = read_once(ag.table)
            best[tag] = (rows, min(best[tag][1], s))
    for (tag, trig, extra), ag, (c, n) in zip(runs, agents, done):
        per, v = files_per_partition(ag.table)
        rows, read_s = best[tag]
        nck = sum(1 for x in os.listdir(os.path.join(ag.table, "_delta_log"))
                  if x.endswith(".checkpoint.parquet"))
        say(f"  {a.long} s, trigger {label(trig, extra)}: {rows:,}/{n:,} rows, {v + 1} versions, "
            f"{nck} log checkpoints on disk, active files per partition {per}, delta-rs read "
            f"{read_s * 1000:.1f} ms (best of 5), agent CPU {c / n * 1e6:.1f} us/event")
        if extra:
            peak = max([peak] + list(per.values()))
            lines = [d for d in progress(ag.pfile) if "compaction" in d]
            say(f"    compactions {len(lines)}: files removed "
                f"{sum(d['compaction']['filesRemoved'] for d in lines)}, added "
                f"{sum(d['compaction']['filesAdded'] for d in lines)}, bytes rewritten "
                f"{sum(d['compaction']['bytesRemoved'] for d in lines):,}, time "
                f"{sum(d['compaction']['durationMs'] for d in lines)} ms, conflicts "
                f"{sum(d['compaction']['conflicts'] for d in lines)}")
            say(f"    most active files in a partition, sampled every 30 s and at the end: {peak} "
                f"(bound {FILES_BOUND}: {'within' if peak <= FILES_BOUND else 'OVER'})")
    say(f"  delta-rs read, continuous+compaction / 1-minute trigger: "
        f"{best['compact'][1] / best['1min'][1]:.2f}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=int, default=int(os.environ.get("EHDELTA_BENCH_SECONDS", "20")))
    p.add_argument("--repeat", type=int, default=int(os.environ.get("EHDELTA_BENCH_REPEAT", "3")))
    p.add_argument("--long", type=int, default=int(os.environ.get("EHDELTA_BENCH_LONG", "120")))
    p.add_argument("--rate", type=int, default=int(os.environ.get("EHDELTA_BENCH_RATE", "10000")))
    p.add_argument("--store", choices=("local", "azurite", "both"),
                   default=os.environ.get("EHDELTA_BENCH_STORE", "local"))
    a = p.parse_args()
    work = tempfile.mkdtemp(prefix="ehdelta-bench-cont-")
    say(f"bench_continuous: {a.rate:,} events/s, latency runs {a.seconds} s x {a.repeat}, store "
        f"{a.store}, file runs {a.long} s; load average {os.getloadavg()[0]:.2f}; work {work}")
    if a.store in ("local", "both") and a.seconds:
        phase_local(work, a)
    if a.store in ("azurite", "both") and a.seconds:
        phase_azurite(work, a)
    if a.long:
        phase_long(work, a)


if __name__ == "__main__":
    main()
