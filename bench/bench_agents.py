#!/usr/bin/env python3
"""Several agents on one hub (issue 18): throughput and CPU of 1, 2 and 3
agents sharing a consumer group through a checkpoint store, beside one agent
with no checkpoint store, all in the same run.

Run: make bench-agents   (or bench/bench_agents.sh from the build directory)

ehemu (32 partitions, 24h retention) is preloaded with EHDELTA_BENCH_EVENTS
(default 1,000,000) generated transactions (`ehdelta send --generate`).
Each configuration then drains that backlog from the start in a consumer group
of its own, into a fresh local raw Delta table (partition and sequence number
columns kept), with a fresh Azurite container as its checkpoint store
(ownership expiry 10 s, renewal 1 s): k `ehdelta run` processes are started at
once and SIGTERMed once the table holds every event. Printed per
configuration: wall seconds from the start to the last event committed (it
includes the agents balancing the partitions among themselves), events/s over
that time and as a ratio of the 1-agent baseline; the seconds until the agents
had settled (every partition read by one agent, shares within one), the events
left then and the events/s of the rest of the drain (the steady rate) with its
ratio to the baseline's; each agent's user+sys CPU seconds
(wait4 rusage, so it includes balancing and the shutdown) and their sum per
million events, and ehemu's and Azurite's CPU over the same time (they share
the 2 cores). Wall figures depend on what else runs (the load average is
printed); CPU figures much less.

Environment: EHDELTA_BENCH_EVENTS, EHDELTA_BENCH_AGENTS (default "1,2,3"),
EHDELTA_BENCH_KEEP=1 keeps the work directory.
"""
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.environ.get("EHDELTA_TOP_BUILDDIR", os.path.join(HERE, "..", "_build"))
SRC = os.environ.get("EHDELTA_TOP_SRCDIR", os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "interop"))
os.environ.setdefault("EHDELTA_TOP_BUILDDIR", TOP)
os.environ.setdefault("EHDELTA_TOP_SRCDIR", SRC)

import agents_util as au  # noqa: E402
from delta_util import DEV_KEY, Azurite, azurite_bin  # noqa: E402

EHDELTA = os.path.join(TOP, "ehdelta")
EHEMU = os.path.join(TOP, "ehemu")
KEY = "YmVuY2gtYWdlbnRzLWtleS1mb3ItZWhlbXUtb25seSE="
HUB = "tx"
NPART = 32
EVENTS = int(os.environ.get("EHDELTA_BENCH_EVENTS", "1000000"))
COUNTS = [int(x) for x in os.environ.get("EHDELTA_BENCH_AGENTS", "1,2,3").split(",") if x]


def say(*a):
    print(*a, flush=True)


def proc_cpu_s(pid):
    """user+sys seconds a live process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_s(pid):
    """user+sys seconds of a process and its live descendants (Azurite is a
    node process under a launcher)."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            total += proc_cpu_s(p)
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return total


class Emu:
    def __init__(self, work, groups):
        self.log = open(os.path.join(work, "ehemu.log"), "w+")
        argv = [EHEMU, "--port", "0", "--hub", HUB, "--partitions", str(NPART),
                "--retention", "24h"]
        for g in groups:
            argv += ["--consumer-group", g]
        self.proc = subprocess.Popen(argv, stderr=self.log, env=dict(os.environ, EHEMU_KEY=KEY))
        deadline = time.monotonic() + 10
        port = None
        while port is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"bench_agents: ehemu did not get ready (see {self.log.name})")
            self.log.seek(0)
            m = re.search(r"^ehemu: ready amqp=(\d+)", self.log.read(), re.M)
            if m:
                port = int(m.group(1))
            else:
                time.sleep(0.05)
        self.cs_file = os.path.join(work, "cs")
        with open(self.cs_file, "w") as f:
            f.write(f"Endpoint=sb://127.0.0.1:{port};SharedAccessKeyName=RootManageSharedAccessKey;"
                    f"SharedAccessKey={KEY};EntityPath={HUB};UseDevelopmentEmulator=true\n")
        os.chmod(self.cs_file, 0o600)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(20)
        self.log.close()


def rows(path):
    """Rows committed to a local Delta table, from its add actions."""
    from deltalake import DeltaTable
    try:
        dt = DeltaTable(path)
    except Exception:  # noqa: BLE001 - not created yet
        return 0
    return au.delta_rows(dt)


def one(k, group, work, emu, az, keyf):
    """k agents draining the backlog in `group`; None for the one agent with
    no checkpoint store. Returns the figures of that configuration."""
    name = f"{k}-agents" if group else "1-plain"
    d = os.path.join(work, name)
    os.makedirs(d)
    table = os.path.join(d, "raw")
    store = ""
    if group:
        az.create_container(f"ck{k}")
        store = f"""checkpoint_store = {az.url(f"ck{k}")}
ownership_expiry = 10 seconds
ownership_renew = 1 second
[storage]
auth = shared-key
account_key_file = {keyf}
"""
    conf = os.path.join(d, "run.conf")
    with open(conf, "w") as f:
        f.write(f"""[source]
connection_string_file = {emu.cs_file}
consumer_group = {group or "plain"}
starting_position = earliest
{store}
[schema]
columns = transaction_id STRING, customer_id STRING, amount DOUBLE, category STRING, timestamp TIMESTAMP, location STRING, payment_method STRING
metadata = sequence_number AS seq, partition

[sink raw]
path = {table}
trigger = 2 seconds
""")
    env = dict(os.environ, AZURE_STORAGE_ACCOUNT_KEY=DEV_KEY)
    emu0, az0 = proc_cpu_s(emu.proc.pid), tree_cpu_s(az.proc.pid)
    t0 = time.monotonic()
    if group:
        agents = [au.Agent(EHDELTA, conf, d, f"a{i}", env=env) for i in range(k)]
    else:
        agents = [au.Agent(EHDELTA, conf, d, "plain", env=env, owner=False)]
    settled_at = settled_rows = None
    try:
        while True:
            n = rows(table)
            if settled_at is None and (au.balanced(agents, NPART) if group else
                                       agents[0].events("run")):
                settled_at, settled_rows = time.monotonic(), n
            if n >= EVENTS:
                break
            for a in agents:
                if a.proc.poll() is not None:
                    sys.exit(f"bench_agents: {name}/{a.name} exited {a.proc.returncode}: "
                             f"{a.text()[-2000:]}")
            time.sleep(0.2)
        wall = time.monotonic() - t0
    finally:
        cpu = []
        for a in agents:
            if a.proc.poll() is None:
                a.proc.send_signal(signal.SIGTERM)
            _, status, ru = os.wait4(a.proc.pid, 0)
            a.proc.returncode = os.waitstatus_to_exitcode(status)
            a.log.close()
            cpu.append(ru.ru_utime + ru.ru_stime)
    emu_cpu, az_cpu = proc_cpu_s(emu.proc.pid) - emu0, tree_cpu_s(az.proc.pid) - az0
    n = rows(table)
    bad = [a.name for a in agents if a.proc.returncode != 0]
    if bad or n != EVENTS:
        sys.exit(f"bench_agents: {name}: {n} rows for {EVENTS} events; exit codes "
                 f"{[a.proc.returncode for a in agents]}")
    if settled_at is None:  # drained before the last claim: no steady part
        settled_at, settled_rows = t0 + wall, EVENTS
    left, steady = EVENTS - settled_rows, t0 + wall - settled_at
    return {"name": name, "k": k, "wall": wall, "eps": EVENTS / wall,
            "settle": settled_at - t0, "left": left,
            "steady": left / steady if left and steady > 0 else float("nan"),
            "cpu": cpu, "emu": emu_cpu, "az": az_cpu}


def main():
    if not azurite_bin():
        sys.exit("bench_agents: no Azurite in .tools/node (scripts/deps)")
    for b in (EHDELTA, EHEMU):
        if not os.access(b, os.X_OK):
            sys.exit(f"bench_agents: {b} not built")
    work = tempfile.mkdtemp(prefix="bench-agents-")
    groups = [f"g{k}" for k in COUNTS] + ["plain"]
    emu = Emu(work, groups)
    az = Azurite()
    keyf = os.path.join(work, "key")
    with open(keyf, "w") as f:
        f.write(DEV_KEY + "\n")
    os.chmod(keyf, 0o600)
    try:
        t0 = time.monotonic()
        p = subprocess.run([EHDELTA, "send", "--connection-string-file", emu.cs_file,
                            "--generate", str(EVENTS), "--max-in-flight", "4096", "--no-progress"],
                           capture_output=True, text=True)
        if p.returncode:
            sys.exit(f"bench_agents: ehdelta send failed: {p.stderr}")
        say(f"preloaded {EVENTS} events on {NPART} partitions in "
            f"{time.monotonic() - t0:.1f} s; load average {os.getloadavg()[0]:.2f}; "
            f"{os.cpu_count()} cores")
        res = [one(1, None, work, emu, az, keyf)]
        for k in COUNTS:
            res.append(one(k, f"g{k}", work, emu, az, keyf))
            say(f"  {res[-1]['name']} done, load average {os.getloadavg()[0]:.2f}")
    finally:
        emu.stop()
        az.stop()
        if os.environ.get("EHDELTA_BENCH_KEEP") != "1":
            subprocess.run(["rm", "-rf", work])
        else:
            say(f"work directory kept: {work}")
    base = next((r for r in res if r["k"] == 1 and r["name"] != "1-plain"), res[0])
    say("")
    say(f"{'configuration':<14} {'wall s':>7} {'events/s':>9} {'vs 1':>5} {'settle s':>8} "
        f"{'left':>8} {'steady ev/s':>11} {'vs 1':>5} {'agent CPU s (each)':<22} {'CPU s/M':>8} "
        f"{'ehemu s':>8} {'azurite s':>9}")
    for r in res:
        each = " ".join(f"{c:.1f}" for c in r["cpu"])
        say(f"{r['name']:<14} {r['wall']:7.1f} {r['eps']:9.0f} {r['eps'] / base['eps']:5.2f} "
            f"{r['settle']:8.1f} {r['left']:8d} {r['steady']:11.0f} "
            f"{r['steady'] / base['steady']:5.2f} {each:<22} "
            f"{sum(r['cpu']) / EVENTS * 1e6:8.2f} {r['emu']:8.1f} {r['az']:9.1f}")
    say("settle s: from the start until every partition was read by exactly one agent, "
        "shares within one (greedy agents take their share of free partitions in a round, "
        "steal one a round, and every change restarts their generation); left: events not yet committed then; steady ev/s: "
        "those over the rest of the drain")
    say(f"baseline: 1-agents (one agent with the checkpoint store); {EVENTS} events, "
        f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
