"""Two `ehdelta run` agents share one hub through a checkpoint store (Azurite,
started here) in the Event Hubs SDKs' layout: ehemu with 8 partitions, a raw
table and a dead-letter table (stateless: balanced), ownership expiry 6 s and
renewal 1 s.

- A and B split the 8 partitions 4/4 (each agent's last `generation` line
  names 4 partitions, the two disjoint), within a few expiries.
- SIGTERM B: it exits 0 after releasing its claims (`ownership_released`
  lines; the records' owner empty), and A reads all 8.
- C starts, takes its share from A (steals: A's links are stolen by C's higher
  epoch or A's round sees the record), then is killed with SIGKILL: A takes
  C's partitions back once C's claims expire.
- Events are sent throughout; at the end every event is in the raw table
  exactly once (no partition + sequence number twice, every transaction id
  present), and the bad ones in the dead-letter table exactly once.
- No moment with two readers of one partition: for each partition, the
  intervals between an agent's `reading_started` and `reading_stopped` lines
  (for the killed agent, up to its death) never overlap across agents.
  Timestamps are the agents' log times on this one host.
Every wait is on a condition (log lines, table counts, exit), never a sleep."""
import datetime
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))

import pytest  # noqa: E402
from deltalake import DeltaTable  # noqa: E402

from agentutil import BAD, EPOCH, T0, Emu, transactions, windows  # noqa: E402
from conftest import EHDELTA, wait_until  # noqa: E402
from delta_util import DEV_KEY, Azurite, azurite_bin  # noqa: E402

NPART = 8
EXPIRY_S, RENEW_S = 6, 1
SLICE = int(os.environ.get("EHDELTA_SHARED_SLICE", "2000"))
ENV = dict(os.environ, AZURE_STORAGE_ACCOUNT_KEY=DEV_KEY)


@pytest.fixture(scope="module")
def az():
    if not azurite_bin():
        pytest.skip("azurite not installed (.tools/node)")
    a = Azurite()
    yield a
    a.stop()


@pytest.fixture
def emu(tmp_path):
    e = Emu(tmp_path, partitions=NPART, extra=("--retention", "24h"))
    yield e
    e.stop()


class Agent:
    def __init__(self, name, conf, tmp_path):
        self.name = name
        self.log_path = tmp_path / f"{name}.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([EHDELTA, "run", "--config", str(conf), "--owner-id", name,
                                      "--log-json", "--lag-poll-interval", "1s",
                                      "--metrics-listen", "127.0.0.1:0"],
                                     stdout=subprocess.DEVNULL, stderr=self.log, env=ENV)
        self.died = None

    def lines(self):
        out = []
        for l in self.log_path.read_text().splitlines():
            try:
                out.append(json.loads(l))
            except ValueError:
                pass
        return out

    def events(self, name):
        return [l for l in self.lines() if l.get("event") == name]

    def reading(self):
        """The partitions the last generation reads, or None before one."""
        g = self.events("generation")
        if not g:
            return None
        p = str(g[-1]["partitions"])
        return set(p.split(",")) if p else set()

    def get(self, path):
        # "metrics listening on HOST:PORT": in JSON the address is a bare key
        addr = next(k for l in self.events("metrics") for k in l
                    if re.fullmatch(r"127\.0\.0\.1:\d+", k))
        return urllib.request.urlopen(f"http://{addr}{path}", timeout=10).read().decode()

    def alive(self):
        return self.proc.poll() is None

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.died = datetime.datetime.now(datetime.timezone.utc)

    def term(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=120)
        self.died = datetime.datetime.now(datetime.timezone.utc)
        return rc


def conf_for(emu, tmp_path, root, store, name="shared.conf"):
    c = tmp_path / name
    c.write_text(f"""
[source]
connection_string_file = {emu.cs_file}
starting_position = earliest
checkpoint_store = {store}
ownership_expiry = {EXPIRY_S} seconds
ownership_renew = {RENEW_S} second
[schema]
columns = transaction_id STRING, customer_id STRING, amount DOUBLE, category STRING, timestamp TIMESTAMP, location STRING, payment_method STRING
metadata = sequence_number AS sequenceNumber, partition
[sink raw]
path = {root}/raw
trigger = 1 second
[dead_letter]
path = {root}/dead
""")
    return c


def send(emu, tmp_path, events, tag, *where):
    f = tmp_path / f"{tag}.jsonl"
    f.write_bytes(b"".join((e if isinstance(e, bytes) else json.dumps(e).encode()) + b"\n"
                           for e in events))
    p = subprocess.run([EHDELTA, "send", "--connection-string-file", str(emu.cs_file), "--input",
                        str(f), "--no-progress",
                        *(where or ("--partition-key-field", "transaction_id"))],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr


def count(path):
    try:
        return DeltaTable(str(path)).to_pyarrow_dataset().count_rows()
    except Exception:  # not created yet
        return 0


def split(*agents):
    """Each live agent reads its fair share, the shares disjoint and covering."""
    sets = [a.reading() for a in agents]
    if any(s is None for s in sets):
        return False
    total = set().union(*sets)
    return (sum(len(s) for s in sets) == NPART and len(total) == NPART
            and all(NPART // len(agents) <= len(s) <= -(-NPART // len(agents)) for s in sets))


def ts(line):
    return datetime.datetime.fromisoformat(line["ts"].replace("Z", "+00:00"))


def intervals(agent):
    """{partition: [(start, stop, reason)]} from one agent's log; an interval
    still open ends at the agent's death."""
    out, open_ = {}, {}
    for l in agent.lines():
        if l.get("event") == "reading_started":
            p = str(l["partition"])
            assert p not in open_, f"{agent.name}: partition {p} started twice"
            open_[p] = ts(l)
        elif l.get("event") == "reading_stopped":
            p = str(l["partition"])
            assert p in open_, f"{agent.name}: partition {p} stopped without a start"
            out.setdefault(p, []).append((open_.pop(p), ts(l), l["reason"]))
    for p, t in open_.items():
        assert agent.died is not None, f"{agent.name}: partition {p} still read"
        out.setdefault(p, []).append((t, agent.died, "died"))
    return out


GRACE = datetime.timedelta(seconds=1)


def link_taken(victim, p, start, end):
    """The service closed victim's link on partition p for a higher epoch
    between start (the later reader's attach, less a little for the two
    logs' order) and end."""
    return any(str(l.get("partition")) == p and
               start - datetime.timedelta(milliseconds=50) <= ts(l) <= end
               for l in victim.events("eh_rx_stolen"))


def claimed_from(thief, victim, p):
    return any(str(l["partition"]) == p and l.get("from") == victim.name
               for l in thief.events("ownership_claimed"))


def one_reader(agents):
    """No moment with two readers of one partition. Epoch receivers make the
    service close the earlier reader's link when a later one attaches (a
    generation's epoch is its start time: the later reader's is higher), so a
    reading_stopped logged after the other's reading_started is only late
    news when either the earlier reader saw its link stolen then
    (eh_rx_stolen, whoever claimed from whom: a stale owner's generation may
    start after the thief's), or the later one claimed the partition from it
    and it let go (lost, stolen) within GRACE of the attach."""
    per = [intervals(x) for x in agents]
    for p in map(str, range(NPART)):
        spans = sorted((s, e, why, i) for i, iv in enumerate(per) for s, e, why in iv.get(p, []))
        for (s1, e1, why1, i1), (s2, e2, _, i2) in zip(spans, spans[1:]):
            if i1 == i2 or e1 <= s2:
                continue
            taken = link_taken(agents[i1], p, s2, e1)
            let_go = (why1 in ("lost", "stolen") and e1 - s2 <= GRACE and
                      claimed_from(agents[i2], agents[i1], p))
            assert taken or let_go, (
                f"partition {p}: {agents[i1].name} read until {e1} ({why1}) "
                f"but {agents[i2].name} from {s2}")


def test_two_agents_share_and_fail_over(az, emu, tmp_path):
    az.create_container("shared")
    conf = conf_for(emu, tmp_path, tmp_path / "tables", az.url("shared"))
    raw, dead = tmp_path / "tables" / "raw", tmp_path / "tables" / "dead"
    good, bad = [], 0
    agents = []

    def feed(tag):
        nonlocal bad
        evs = transactions(SLICE, seed=len(good) + 1, first_id=len(good) + 1)
        good.extend(evs)
        send(emu, tmp_path, evs + BAD, tag)
        bad += len(BAD)

    def landed():
        return count(raw) == len(good) and count(dead) == bad

    try:
        a = Agent("agent-a", conf, tmp_path)
        b = Agent("agent-b", conf, tmp_path)
        agents += [a, b]
        feed("s1")
        wait_until(lambda: split(a, b), timeout=20 * EXPIRY_S, interval=0.2, what="a 4/4 split")
        feed("s2")
        wait_until(landed, timeout=120, interval=0.5, what="slices 1-2 in the tables")
        # /status and /metrics say who reads what
        for x in (a, b):
            st = json.loads(x.get("/status"))
            assert st["ownerId"] == x.name
            assert set(st["ownedPartitions"]) == x.reading()
            assert {p["id"] for p in st["partitions"] if p["owned"]} == x.reading()
            m = x.get("/metrics")
            assert "ehdelta_owned_partitions 4\n" in m, m
            assert any(l.startswith("ehdelta_ownership_claims_total ") for l in m.splitlines())

        assert b.term() == 0, b.log_path.read_text()[-3000:]
        released = {str(l["partition"]) for l in b.events("ownership_released")}
        assert len(released) >= NPART // 2, released
        wait_until(lambda: a.reading() == {str(p) for p in range(NPART)}, timeout=10 * EXPIRY_S,
                   interval=0.2, what="agent a reading all 8 after b's SIGTERM")
        feed("s3")
        wait_until(landed, timeout=120, interval=0.5, what="slice 3 in the tables")

        c = Agent("agent-c", conf, tmp_path)
        agents.append(c)
        wait_until(lambda: split(a, c), timeout=20 * EXPIRY_S, interval=0.2, what="a 4/4 a/c split")
        feed("s4")
        wait_until(landed, timeout=120, interval=0.5, what="slice 4 in the tables")
        c.kill9()
        wait_until(lambda: a.reading() == {str(p) for p in range(NPART)}, timeout=10 * EXPIRY_S,
                   interval=0.2, what="agent a reading all 8 after c's kill -9")
        feed("s5")
        wait_until(landed, timeout=120, interval=0.5, what="slice 5 in the tables")
        assert a.term() == 0, a.log_path.read_text()[-3000:]
    finally:
        for x in agents:
            if x.alive():
                x.proc.kill()
                x.proc.wait()

    t = DeltaTable(str(raw)).to_pyarrow_table(
        columns=["transaction_id", "partition", "sequenceNumber"]).to_pylist()
    keys = [(r["partition"], r["sequenceNumber"]) for r in t]
    assert len(keys) == len(set(keys)), "an event twice in the raw table"
    assert sorted(r["transaction_id"] for r in t) == sorted(e["transaction_id"] for e in good)
    d = DeltaTable(str(dead)).to_pyarrow_table().to_pylist()
    dkeys = [(r["partition"], r["sequence_number"]) for r in d]
    assert len(d) == bad and len(dkeys) == len(set(dkeys)), "dead letters not exactly once"

    # Never two readers of one partition. One exception, by design (the
    # SDKs' balancing steals): the thief's receiver attaches with a higher
    # epoch and the service closes the victim's link at that moment; the
    # victim logs reading_stopped reason=stolen when its pipeline next turns,
    # a few ms later. Such an overlap is accepted only for a real steal whose
    # victim saw its link stolen.
    one_reader(agents)
    # the fail-overs happened the ways this test means: a took c's partitions
    # as expired claims, and c had taken its share from a
    assert c.events("ownership_claimed"), "agent c never claimed"
    assert any(str(l.get("from")) == "expired" and ts(l) > c.died
               for l in a.events("ownership_claimed")), "a never took an expired claim of c"


def lease_conf(emu, tmp_path, root, store):
    c = tmp_path / "lease.conf"
    c.write_text(conf_for(emu, tmp_path, root, store).read_text() + """
[sink by_category]
path = {root}/by_category
window = timestamp, 5 minutes
group_by = category
aggregate = count(*) AS txn_count, sum(amount) AS total_amount
watermark = timestamp, 3 hours
output_mode = append
trigger = 1 second
""".format(root=root))
    return c


def sdk_checkpoints(emu, store):
    p = subprocess.run([EHDELTA, "status", "--checkpoint-store", store, "--connection-string-file",
                        str(emu.cs_file), "--json"], capture_output=True, text=True, env=ENV,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    return {str(c["partition"]): c["sequence_number"] for c in json.loads(p.stdout)["checkpoints"]}


def raw_tops(path):
    t = DeltaTable(str(path)).to_pyarrow_table(columns=["partition", "sequenceNumber"]).to_pylist()
    out = {}
    for r in t:
        out[str(r["partition"])] = max(out.get(str(r["partition"]), -1), r["sequenceNumber"])
    return out


def test_stateful_query_has_one_holder(az, emu, tmp_path):
    """A window sink makes the query stateful: one agent holds the lease and
    reads all 8 partitions, the other waits on standby naming it; after the
    holder's SIGTERM the standby takes over from the sinks' checkpoints, and
    the window table equals the windows Python computes from the events (no
    window twice, none lost); the SDK checkpoints follow the least advanced
    sink."""
    az.create_container("lease")
    store = az.url("lease")
    root = tmp_path / "tables"
    conf = lease_conf(emu, tmp_path, root, store)
    all8 = {str(p) for p in range(NPART)}
    good = []
    agents = []

    def feed(evs, tag):
        good.extend(evs)
        send(emu, tmp_path, evs, tag)

    def caught_up():
        """Both sinks committed everything sent: the raw table has every
        event, and the SDK checkpoints (the least committed position over
        the sinks) reach the raw table's last sequence numbers."""
        if count(root / "raw") != len(good):
            return False
        tops, cks = raw_tops(root / "raw"), sdk_checkpoints(emu, store)
        return all(cks.get(p, -1) >= s for p, s in tops.items())

    try:
        a = Agent("agent-a", conf, tmp_path)
        b = Agent("agent-b", conf, tmp_path)
        agents += [a, b]
        wait_until(lambda: (a.reading() == all8 and b.reading() is None) or
                   (b.reading() == all8 and a.reading() is None), timeout=20 * EXPIRY_S,
                   interval=0.2, what="one holder reading all 8")
        holder, standby = (a, b) if a.reading() == all8 else (b, a)
        wait_until(lambda: any(l.get("holder") == holder.name for l in standby.events("standby")),
                   timeout=10 * EXPIRY_S, interval=0.2, what="the standby naming the holder")
        feed(transactions(SLICE, seed=1, first_id=1), "l1")
        wait_until(caught_up, timeout=120, interval=0.5, what="slice 1 in both sinks")
        assert holder.term() == 0, holder.log_path.read_text()[-3000:]
        wait_until(lambda: standby.reading() == all8, timeout=10 * EXPIRY_S, interval=0.2,
                   what="the standby reading all 8 after the holder's SIGTERM")
        feed(transactions(SLICE, seed=2, first_id=SLICE + 1), "l2")
        wait_until(caught_up, timeout=120, interval=0.5, what="slice 2 in both sinks")
        # one event ten hours later on every partition (the watermark is the
        # least over the partitions) closes every window of the slices
        late = transactions(NPART, seed=3, start=T0 + datetime.timedelta(hours=10), jitter_s=0,
                            first_id=9000001)
        closed = dict(windows(good, 5, 5, "category"))
        for p, e in enumerate(late):
            good.append(e)
            send(emu, tmp_path, [e], f"late{p}", "--partition", str(p))
        wait_until(caught_up, timeout=120, interval=0.5, what="the late events in both sinks")
        # the watermark they moved applies from the next batch on (as Spark's)
        feed(transactions(1, seed=4, start=T0 + datetime.timedelta(hours=10, minutes=1),
                          jitter_s=0, first_id=9000005), "later")
        wait_until(lambda: caught_up() and
                   DeltaTable(str(root / "by_category")).to_pyarrow_dataset().count_rows() >=
                   len(closed), timeout=120, interval=0.5, what="the windows closed")
        assert standby.term() == 0, standby.log_path.read_text()[-3000:]
    finally:
        for x in agents:
            if x.alive():
                x.proc.kill()
                x.proc.wait()
    t = DeltaTable(str(root / "by_category")).to_pyarrow_table().to_pylist()
    got = {(us(r["window_start"]), us(r["window_end"]), r["category"]):
           (r["txn_count"], r["total_amount"]) for r in t}
    assert len(got) == len(t), "a window emitted twice"
    assert set(got) == set(closed)
    for k, (n, s) in closed.items():
        assert got[k][0] == n and abs(got[k][1] - s) < 1e-6 * s, k
    # only the holder of the moment ever read
    per = [intervals(x) for x in agents]
    for p in all8:
        spans = sorted((s, e, i) for i, iv in enumerate(per) for s, e, _ in iv.get(p, []))
        for (s1, e1, i1), (s2, e2, i2) in zip(spans, spans[1:]):
            assert i1 == i2 or e1 <= s2, f"partition {p}: two readers"


def us(v):
    return (v.replace(tzinfo=None) - EPOCH) // datetime.timedelta(microseconds=1)


def test_store_unreachable_stops_reading(emu, tmp_path):
    """The checkpoint store goes away while an agent reads: its claims can no
    longer be renewed, so it stops reading every partition (reason=expired)
    before another agent could claim them, and keeps running (it reads again
    once a round succeeds); SIGTERM still exits 0."""
    if not azurite_bin():
        pytest.skip("azurite not installed (.tools/node)")
    own = Azurite()
    try:
        own.create_container("gone")
        conf = conf_for(emu, tmp_path, tmp_path / "tables", own.url("gone"))
        a = Agent("agent-a", conf, tmp_path)
        try:
            all8 = {str(p) for p in range(NPART)}
            wait_until(lambda: a.reading() == all8, timeout=20 * EXPIRY_S, interval=0.2,
                       what="the agent reading all 8")
            own.stop()
            wait_until(lambda: {str(l["partition"]) for l in a.events("reading_stopped")
                                if l["reason"] == "expired"} == all8,
                       timeout=10 * EXPIRY_S, interval=0.2, what="every partition stopped")
            # said so at the stop (owner.c's ownership_unproven follows once
            # the proof has actually run out, up to POLL_US after the stop)
            wait_until(lambda: {p for l in a.events("ownership_expired")
                                for p in str(l["partitions"]).split(",")} == all8,
                       timeout=EXPIRY_S, interval=0.2, what="the warning naming all 8")
            assert a.alive()
            assert a.term() == 0, a.log_path.read_text()[-3000:]
        finally:
            if a.alive():
                a.proc.kill()
                a.proc.wait()
    finally:
        own.stop()


def test_partition_held_by_a_higher_epoch_is_refused_not_fatal(az, emu, tmp_path):
    """A reader outside the protocol holds partition 3 with a higher epoch
    (an SDK receiver with owner_level 2**62): the agent owns the record but
    the hub refuses its link at attach. It says so (`reading_refused`), reads
    the other partitions on, and takes 3 once that reader is gone; every
    event lands exactly once. Before, the refusal ended `ehdelta run`
    (status LINK_STOLEN)."""
    from emu_util import Watch
    az.create_container("refused")
    root = tmp_path / "tables"
    conf = conf_for(emu, tmp_path, root, az.url("refused"))
    squatter = Watch(emu, partition="3", owner_level=2 ** 62, hub=emu.hub)
    a = None
    try:
        evs = transactions(SLICE, seed=7, first_id=1)
        send(emu, tmp_path, evs, "r1")
        a = Agent("agent-a", conf, tmp_path)
        wait_until(lambda: a.events("reading_refused") or not a.alive(), timeout=30 * EXPIRY_S,
                   interval=0.2, what="partition 3 refused at attach")
        assert a.alive(), a.log_path.read_text()[-3000:]
        assert {str(l["partition"]) for l in a.events("reading_refused")} == {"3"}
        # the other seven are read and committed meanwhile
        wait_until(lambda: a.reading() is not None and len(a.reading() - {"3"}) == NPART - 1,
                   timeout=30 * EXPIRY_S, interval=0.2, what="the other partitions read")
        squatter.close()
        squatter = None
        wait_until(lambda: count(root / "raw") >= len(evs) or not a.alive(), timeout=30 * EXPIRY_S,
                   interval=0.5, what="every event, partition 3's too")
        assert a.alive(), a.log_path.read_text()[-3000:]
        assert a.term() == 0, a.log_path.read_text()[-3000:]
    finally:
        if squatter:
            squatter.close()
        if a and a.alive():
            a.proc.kill()
            a.proc.wait()
    t = DeltaTable(str(root / "raw")).to_pyarrow_table(columns=["partition", "sequenceNumber"])
    keys = list(zip(t.column("partition").to_pylist(), t.column("sequenceNumber").to_pylist()))
    assert len(keys) == len(set(keys)) == len(evs)
    started = [l for l in a.events("reading_started") if str(l["partition"]) == "3"]
    assert started, "partition 3 never read"
    assert not [l for l in a.events("reading_stopped")
                if str(l["partition"]) == "3" and ts(l) < ts(started[0])], \
        "a refused partition logged as stopped without having started"


class DarkProxy:
    """A TCP relay to Azurite that can go dark: while dark it accepts
    connections and swallows every byte both ways, answering nothing (a
    network partition as a client sees it: requests time out). Bytes read
    while dark are dropped, not delivered late."""

    def __init__(self, port):
        self.up, self.dark, self.socks = port, threading.Event(), []
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.port = self.srv.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(("127.0.0.1", self.up))
            except OSError:
                c.close()
                continue
            self.socks += [c, u]
            threading.Thread(target=self._pump, args=(c, u), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c), daemon=True).start()

    def _pump(self, a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                if not self.dark.is_set():
                    b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def url(self, container, path=""):
        return f"http://127.0.0.1:{self.port}/devstoreaccount1/{container}" + (
            "/" + path if path else "")

    def stop(self):
        self.srv.close()
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass


def iso(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))


def store_dark_for_one(az, emu, tmp_path, container, tables_on_store):
    """Agents A and B share the hub; A reaches the checkpoint store (and, with
    tables_on_store, its tables) through a proxy that goes dark while events
    flow. A's pipeline backs up behind the flush thread (the SDK checkpoint
    writes, or the commits, wait on the dark store), yet A must stop reading
    each of its partitions before the proof of its last successful renewal
    ends (its log names that renewal), B must take them only after, once the
    claims expire, and every event lands exactly once."""
    az.create_container(container)
    proxy = DarkProxy(az.port)
    if tables_on_store:
        os.environ["AZURITE_BLOB_STORAGE_URL"] = f"http://127.0.0.1:{az.port}"
        root_a, root_b = proxy.url(container, "tables"), az.url(container, "tables")
        opts = az.delta_rs_options()

        def table(name):
            return DeltaTable(f"az://{container}/tables/{name}", storage_options=opts)
    else:
        root_a = root_b = tmp_path / "tables"

        def table(name):
            return DeltaTable(str(root_a / name))

    def rows(name):
        try:
            return table(name).to_pyarrow_dataset().count_rows()
        except Exception:  # not created yet
            return 0

    conf_a = conf_for(emu, tmp_path, root_a, proxy.url(container), name="a.conf")
    conf_b = conf_for(emu, tmp_path, root_b, az.url(container), name="b.conf")
    good, bad, agents = [], 0, []
    all8 = {str(p) for p in range(NPART)}

    def feed(tag):
        nonlocal bad
        evs = transactions(SLICE, seed=len(good) + 1, first_id=len(good) + 1)
        good.extend(evs)
        send(emu, tmp_path, evs + BAD, tag)
        bad += len(BAD)

    def landed():
        return rows("raw") == len(good) and rows("dead") == bad

    try:
        a = Agent("agent-a", conf_a, tmp_path)
        b = Agent("agent-b", conf_b, tmp_path)
        agents += [a, b]
        feed("d1")
        wait_until(lambda: split(a, b), timeout=20 * EXPIRY_S, interval=0.2, what="a 4/4 split")
        wait_until(landed, timeout=120, interval=0.5, what="slice 1 in the tables")
        mine = a.reading()
        dark_at = datetime.datetime.now(datetime.timezone.utc)
        proxy.dark.set()
        feed("d2")  # events keep coming: A's batches wait on its flush thread

        def stopped():
            """A's first stop of each partition since the store went dark:
            reason=expired, or generation when another one's expiry ended the
            generation first; with the proof left then (owner.c's clock)."""
            out = {}
            for l in a.events("reading_stopped"):
                if ts(l) > dark_at:
                    out.setdefault(str(l["partition"]), (ts(l), l["reason"],
                                                         l["proof_left_ms"]))
            return out

        def proof_ends():
            """Each proof's end: the last successful renewal plus expiry -
            margin, as the stop's warning names it (ownership_expired) or, for
            one whose expiry the pipeline noticed (it is not blocked), as
            owner.c does (ownership_unproven: the claim's age then)."""
            out = {}
            for l in a.events("ownership_expired"):
                end = iso(l["last_renewal"]) + datetime.timedelta(milliseconds=l["proof_ms"])
                out.update((p, end) for p in str(l["partitions"]).split(","))
            for l in a.events("ownership_unproven"):
                if ts(l) > dark_at:
                    out.setdefault(str(l["partition"]), ts(l) + datetime.timedelta(
                        milliseconds=l["limit_ms"] - l["age_ms"]))
            return out
        def warned_of():
            return {p for l in a.events("ownership_expired") for p in str(l["partitions"]).split(",")}
        # the warning follows the stops it names
        wait_until(lambda: set(stopped()) >= mine and warned_of() >= {
            p for p, s in stopped().items() if s[1] == "expired"}, timeout=10 * EXPIRY_S,
            interval=0.2, what="agent a stopping its partitions, and saying so")
        stops, ends = stopped(), proof_ends()
        for p in mine:
            left = stops[p][2]  # "none": stopped only after owner.c dropped the proof
            assert stops[p][1] in ("expired", "generation") and left != "none" and left > 0, (
                f"partition {p}: stopped {stops[p]} without proof left")
            assert p not in ends or stops[p][0] < ends[p], (
                f"partition {p} stopped at {stops[p]}, its proof ended {ends[p]}")
        # and said so: one warning naming the partitions stopped as expired
        warned = a.events("ownership_expired")
        named = {p for l in warned for p in str(l["partitions"]).split(",")}
        assert named and named == {p for p in mine if stops[p][1] == "expired"}, (warned, stops)
        assert all("no renewal succeeded for" in l["reason"] for l in warned), warned
        wait_until(lambda: b.reading() == all8, timeout=10 * EXPIRY_S, interval=0.2,
                   what="agent b reading all 8 once a's claims expired")
        assert all(any(str(l["partition"]) == p and l.get("from") == "expired"
                       for l in b.events("ownership_claimed")) for p in mine)
        wait_until(landed, timeout=180, interval=0.5, what="slice 2 in the tables (by b)")
        assert a.alive()
        proxy.dark.clear()
        assert a.term() == 0, a.log_path.read_text()[-3000:]
        assert b.term() == 0, b.log_path.read_text()[-3000:]
    finally:
        for x in agents:
            if x.alive():
                x.proc.kill()
                x.proc.wait()
        proxy.stop()
    t = table("raw").to_pyarrow_table(
        columns=["transaction_id", "partition", "sequenceNumber"]).to_pylist()
    keys = [(r["partition"], r["sequenceNumber"]) for r in t]
    assert len(keys) == len(set(keys)), "an event twice in the raw table"
    assert sorted(r["transaction_id"] for r in t) == sorted(e["transaction_id"] for e in good)
    assert rows("dead") == bad
    one_reader(agents)


def test_store_dark_for_one_agent_local_tables(az, emu, tmp_path):
    store_dark_for_one(az, emu, tmp_path, "dark-local", tables_on_store=False)


def test_store_dark_for_one_agent_tables_on_it(az, emu, tmp_path):
    store_dark_for_one(az, emu, tmp_path, "dark-store", tables_on_store=True)
