"""What the several-agents suites and bench/bench_agents.py share (issue 18):
`ehdelta run` processes balancing one consumer group through a checkpoint
store, their JSON log lines (--log-json) parsed as they come, the partitions
each one reads now, and the checker of the evidence "no moment with two
owners": per partition, the [reading_started, reading_stopped] intervals of
different agents must not overlap (a killed agent's open intervals end at its
kill time; one stopped cleanly must have closed all of them).

The log events and keys are the run driver's (contract 18, decision 3):
  reading_started partition=P owner=ID from=SEQ
  reading_stopped partition=P owner=ID reason=lost|expired|stolen|released|generation|stop
"""
import datetime
import json
import os
import signal
import subprocess
import threading
import time

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def now_ms():
    return int(time.time() * 1000)


def ts_ms(ts):
    """The log's ISO-8601 UTC time ("2026-12-07T03:24:02.123Z") in epoch ms."""
    d = datetime.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    if d.tzinfo is None:
        d = d.replace(tzinfo=datetime.timezone.utc)
    return (d - EPOCH) // datetime.timedelta(milliseconds=1)


def parse_log(text):
    """The JSON log lines of one agent as dicts with "ms" added; other lines
    (a sanitizer's report, a crash) are kept under event "text"."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("<") and ">" in line[:4]:
            line = line[line.index(">") + 1:]  # a journal priority prefix
        if not line.startswith("{"):
            if line:
                out.append({"event": "text", "text": line})
            continue
        try:
            j = json.loads(line)
        except ValueError:
            out.append({"event": "text", "text": line})
            continue
        if "ts" in j:
            j["ms"] = ts_ms(j["ts"])
        out.append(j)
    return out


class Interval:
    __slots__ = ("agent", "partition", "start", "end", "reason", "from_seq")

    def __init__(self, agent, partition, start, end, reason, from_seq):
        self.agent, self.partition, self.start, self.end = agent, partition, start, end
        self.reason, self.from_seq = reason, from_seq

    def __repr__(self):
        return (f"{self.agent}:p{self.partition}[{self.start},{self.end}]"
                f"({self.reason}, from={self.from_seq})")


def intervals(agent, lines, dead_at=None, end=None):
    """Reading intervals of one agent from its parsed log lines. An interval
    still open at the end closes at dead_at (kill -9: the process cannot read
    after it died) or, for a process still running, at `end`; a process that
    exited by itself with an interval open is reported as reason "unclosed"
    (check_intervals fails on it). Returns (intervals, problems)."""
    open_, out, problems = {}, [], []
    for j in lines:
        ev = j.get("event")
        if ev == "reading_started":
            p = int(j["partition"])
            if p in open_:
                problems.append(f"{agent}: reading_started partition={p} at {j['ms']} while its "
                                f"reading since {open_[p][0]} was not stopped")
                continue
            open_[p] = (j["ms"], j.get("from"))
        elif ev == "reading_stopped":
            p = int(j["partition"])
            if p not in open_:
                problems.append(f"{agent}: reading_stopped partition={p} at {j['ms']} without "
                                f"a reading_started")
                continue
            s, f = open_.pop(p)
            out.append(Interval(agent, p, s, j["ms"], j.get("reason", ""), f))
    for p, (s, f) in open_.items():
        if dead_at is not None:
            out.append(Interval(agent, p, s, dead_at, "killed", f))
        elif end is not None:
            out.append(Interval(agent, p, s, end, "running", f))
        else:
            out.append(Interval(agent, p, s, s, "unclosed", f))
    return out, problems


def check_intervals(ivs, steal_grace_ms=0):
    """The overlaps of different agents' intervals on one partition, as
    messages (empty: never two owners). A partition stolen while its victim
    reads is released by the service's epoch rule the moment the thief's
    receiver attaches; the victim logs reading_stopped reason=stolen once its
    link's detach has arrived. Such an overlap, up to steal_grace_ms, is
    returned apart (the second list), measured, not counted as two owners;
    with steal_grace_ms=0 none is allowed."""
    bad, steals = [], []
    for iv in ivs:
        if iv.reason == "unclosed":
            bad.append(f"{iv.agent} exited with partition {iv.partition} open since {iv.start} "
                       f"(no reading_stopped)")
    byp = {}
    for iv in ivs:
        byp.setdefault(iv.partition, []).append(iv)
    for p, lst in sorted(byp.items()):
        lst.sort(key=lambda iv: (iv.start, iv.end))
        # every pair, not only neighbours: a long interval may cover several
        for i, a in enumerate(lst):
            for b in lst[i + 1:]:
                if b.start >= a.end:
                    break
                if a.agent == b.agent:
                    bad.append(f"partition {p}: {a!r} and {b!r} of one agent overlap")
                    continue
                over = min(a.end, b.end) - b.start
                if a.reason == "stolen" and over <= steal_grace_ms:
                    steals.append((p, a, b, over))
                    continue
                bad.append(f"partition {p}: {b.agent} read from {b.start} while {a.agent} read "
                           f"until {a.end} ({over} ms of two owners: {a!r}, {b!r})")
    return bad, steals


def owned_now(agents):
    """{agent name: set of partitions it reads now} of the live agents."""
    return {a.name: a.reading() for a in agents if a.alive()}


def balanced(agents, npart):
    """Every partition read by exactly one live agent, shares within one."""
    now = owned_now(agents)
    if not now:
        return False
    seen = sorted(p for s in now.values() for p in s)
    sizes = [len(s) for s in now.values()]
    return seen == list(range(npart)) and max(sizes) - min(sizes) <= 1


def all_read_by(agents, npart):
    """Every partition read by exactly one live agent (no share rule: a
    stateful query's lease holder reads them all, its standbys none)."""
    seen = sorted(p for s in owned_now(agents).values() for p in s)
    return seen == list(range(npart))


class Agent:
    """One `ehdelta run --log-json` process; its standard error (the log) goes
    to a file read by a thread, its progress lines to another file."""

    def __init__(self, ehdelta, conf, workdir, name, *args, env=None, owner=True):
        """owner: pass the name as --owner-id (False: a run with no
        checkpoint store, which takes none)."""
        self.name = name
        self.log_path = os.path.join(str(workdir), f"{name}.log")
        self.progress = os.path.join(str(workdir), f"{name}.progress")
        self.argv = [ehdelta, "run", "--config", str(conf), "--log-json",
                     "--progress", self.progress, *args]
        if owner:
            self.argv[4:4] = ["--owner-id", name]
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self.log,
                                     env=env if env is not None else dict(os.environ))
        self.started_at = now_ms()
        self.dead_at = None
        self.lock = threading.Lock()
        self.lines = []
        self._pos = 0

    def alive(self):
        return self.dead_at is None and self.proc.poll() is None

    def poll_log(self):
        """Reads what the agent wrote since the last call."""
        with self.lock:
            with open(self.log_path) as f:
                f.seek(self._pos)
                chunk = f.read()
            # only whole lines: the agent may be half-way through one
            cut = chunk.rfind("\n") + 1
            self._pos += len(chunk[:cut].encode())
            self.lines += parse_log(chunk[:cut])
            return self.lines

    def events(self, name):
        return [j for j in self.poll_log() if j.get("event") == name]

    def reading(self):
        open_ = set()
        for j in self.poll_log():
            if j.get("event") == "reading_started":
                open_.add(int(j["partition"]))
            elif j.get("event") == "reading_stopped":
                open_.discard(int(j["partition"]))
        return open_

    def kill9(self):
        self.proc.kill()
        self.dead_at = now_ms()
        self.proc.wait()
        self.log.close()

    def term(self, timeout=120):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=timeout)
        self.log.close()
        return rc

    def stop_quietly(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if not self.log.closed:
            self.log.close()

    def text(self):
        with open(self.log_path) as f:
            return f.read()

    def intervals(self, end=None):
        lines = self.poll_log()
        return intervals(self.name, lines, dead_at=self.dead_at,
                         end=end if self.proc.poll() is None else None)

    def sanitizer_report(self):
        t = self.text()
        for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
            if bad in t:
                return t[-4000:]
        return None


def delta_rows(dt):
    """Rows committed to a deltalake.DeltaTable, from its add actions' record
    counts (no data file is read). Newer deltalake returns an arro3 table,
    which pyarrow takes through the Arrow C stream interface."""
    import pyarrow as pa
    import pyarrow.compute as pc
    adds = pa.table(dt.get_add_actions(flatten=True))
    return int(pc.sum(adds.column("num_records")).as_py() or 0) if adds.num_rows else 0
