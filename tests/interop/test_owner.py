"""Partition ownership in the Event Hubs SDKs' Blob layout, against Azurite
(started here on a free port): the official Python SDK's BlobCheckpointStore
lists the ownership and checkpoint records ehdelta's owner module writes and
the other way round; a blob of another layout is refused by name; and
several owner_tool agents (agent/owner.c with short expiry and renewal)
share 16 partitions, take a kill -9'd agent's partitions once its claims
expire, make room for a newcomer by stealing, take a SIGTERM'd agent's
released partitions on their next round, and never hold one partition at
once except for a steal (bounded by one renewal: the victim sees the record
on its next round; the run loop's epoch receivers close it sooner). The
stateful lease (records in ".../ehdelta-lease/", which the SDK never lists)
has one holder among contenders and passes to exactly one other after the
holder's claim expires; claim-all agents (a lease holder's rule) take every free or expired partition
and never steal."""
import json
import os
import signal
import subprocess
import threading
import time

import pytest
from azure.eventhub.extensions.checkpointstoreblob import BlobCheckpointStore

from conftest import EHDELTA, TOP_BUILDDIR, wait_until
from delta_util import DEV_KEY, Azurite, azurite_bin

TOOL = os.path.join(TOP_BUILDDIR, "tests", "tools", "owner_tool")
NS, HUB, GROUP = "Ns.Example.servicebus.windows.net", "Hub", "$Default"
ENV = dict(os.environ, AZURE_STORAGE_ACCOUNT_KEY=DEV_KEY)
EXPIRY_MS, RENEW_MS, MARGIN_MS = 3000, 400, 900
NPART = 16


@pytest.fixture(scope="module")
def az():
    if not azurite_bin():
        pytest.skip("azurite not installed (.tools/node)")
    a = Azurite()
    yield a
    a.stop()


@pytest.fixture
def container(az, request):
    name = "own" + str(abs(hash(request.node.name)) % 10**8)
    az.create_container(name)
    return az.url(name), name


def sdk_store(az, name):
    cs = (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DEV_KEY};"
          f"BlobEndpoint=http://127.0.0.1:{az.port}/devstoreaccount1;")
    return BlobCheckpointStore.from_connection_string(cs, name)


def tool(url, owner, *args, check=True, opts=()):
    p = subprocess.run([TOOL, *opts, url, NS, HUB, GROUP, owner, *map(str, args)], env=ENV,
                       capture_output=True, text=True, timeout=60)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def test_sdk_lists_our_ownership_and_checkpoints(az, container):
    url, name = container
    agent = subprocess.Popen([TOOL, url, NS, HUB, GROUP, "ehdelta-a", "agent", "4", "60000",
                              "200", "1000"], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    store = sdk_store(az, name)
    try:
        owned = wait_until(lambda: [o for o in store.list_ownership(NS, HUB, GROUP)
                                    if o["owner_id"] == "ehdelta-a"] if len(
            store.list_ownership(NS, HUB, GROUP)) == 4 else None, timeout=30,
                           what="4 ownership records")
        assert sorted(o["partition_id"] for o in owned) == ["0", "1", "2", "3"]
        assert all(o["etag"] and o["last_modified_time"] for o in owned)
    finally:
        agent.send_signal(signal.SIGTERM)
        out, err = agent.communicate(timeout=30)
    assert agent.returncode == 0, err
    # released as the SDKs release: the record stays, its owner is empty
    assert sorted((o["partition_id"], o["owner_id"] or "")
                  for o in store.list_ownership(NS, HUB, GROUP)) == [(p, "") for p in "0123"]
    tool(url, "-", "checkpoint", 2, 4096, 41)
    cps = store.list_checkpoints(NS, HUB, GROUP)
    assert [(c["partition_id"], c["offset"], c["sequence_number"]) for c in cps] == \
        [("2", "4096", 41)]


def test_we_list_what_the_sdk_writes(az, container):
    url, name = container
    store = sdk_store(az, name)
    claimed = store.claim_ownership([{"fully_qualified_namespace": NS, "eventhub_name": HUB,
                                      "consumer_group": GROUP, "partition_id": p,
                                      "owner_id": "sdk-1"} for p in ("0", "1")])
    assert len(claimed) == 2
    store.update_checkpoint({"fully_qualified_namespace": NS, "eventhub_name": HUB,
                             "consumer_group": GROUP, "partition_id": "1", "offset": "777",
                             "sequence_number": 9})
    assert tool(url, "-", "list").stdout.split("\n")[:2] == ["0 sdk-1", "1 sdk-1"]
    assert tool(url, "-", "checkpoints").stdout.strip() == "1 777 9"
    # ehdelta status lists them too, naming the records by the connection string
    cs = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"cs-{os.getpid()}")
    with open(cs, "w") as f:
        f.write(f"Endpoint=sb://{NS}/;SharedAccessKeyName=k;SharedAccessKey=eA==;EntityPath={HUB}\n")
    try:
        st = subprocess.run([EHDELTA, "status", "--connection-string-file", cs,
                             "--checkpoint-store", url, "--json"], env=ENV, capture_output=True,
                            text=True, timeout=60)
        assert st.returncode == 0, st.stderr
        j = json.loads(st.stdout)
        assert [(o["partition"], o["owner_id"]) for o in j["ownership"]] == \
            [("0", "sdk-1"), ("1", "sdk-1")]
        assert j["checkpoints"] == [{"partition": "1", "offset": 777, "sequence_number": 9}]
        st = subprocess.run([EHDELTA, "status", "--connection-string-file", cs,
                             "--checkpoint-store", url, "--consumer-group", "other"], env=ENV,
                            capture_output=True, text=True, timeout=60)
        assert st.returncode == 0 and st.stdout.count("\n") == 1, st.stdout  # header only
    finally:
        os.unlink(cs)
    # an agent balancing with the SDK's live claims takes only the free two
    agent = subprocess.Popen([TOOL, url, NS, HUB, GROUP, "ehdelta-b", "agent", "4", "60000",
                              "200", "1000"], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        wait_until(lambda: sorted(o["owner_id"] for o in store.list_ownership(NS, HUB, GROUP))
                   == ["ehdelta-b", "ehdelta-b", "sdk-1", "sdk-1"], timeout=30,
                   what="the free partitions claimed")
        time.sleep(1.0)  # five more rounds: still no steal at the fair share
        owners = {o["partition_id"]: o["owner_id"] for o in store.list_ownership(NS, HUB, GROUP)}
        assert owners["0"] == owners["1"] == "sdk-1"
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.communicate(timeout=30)


def test_foreign_layout_is_refused_by_name(az, container):
    url, name = container
    blob = f"{NS}/{HUB}/{GROUP}/ownership/0".lower()
    az.service().get_container_client(name).upload_blob(blob, b'{"Owner":"host1","Token":"x"}')
    p = tool(url, "-", "list", check=False)
    assert p.returncode == 1
    assert f"'{blob}' has no 'ownerid' metadata" in p.stderr
    assert "azure-eventhub-checkpointstoreblob layout" in p.stderr


class Agent:
    """One owner_tool agent; its stdout lines collected with their kinds.
    opts: owner_tool's leading options (--folder=, --claim-all, --greedy, --names=)."""

    def __init__(self, url, name, opts=(), npart=NPART):
        self.name = name
        self.proc = subprocess.Popen([TOOL, *opts, url, NS, HUB, GROUP, name, "agent",
                                      *map(str, (npart, EXPIRY_MS, RENEW_MS, MARGIN_MS))],
                                     env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.lines = []
        self.ticks = []
        self.owned = set()
        self.dead_at = None
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in self.proc.stdout:
            f = line.split()
            self.lines.append(f)
            if f[0] == "own":
                self.owned.add(int(f[1]))
            elif f[0] == "drop":
                self.owned.discard(int(f[1]))
            elif f[0] == "tick":
                self.ticks.append(int(f[1]))

    def kill9(self):
        self.dead_at = int(time.time() * 1000)
        self.proc.kill()
        self.proc.wait()
        self.t.join(5)

    def term(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        self.t.join(5)
        assert self.proc.returncode == 0, self.proc.stderr.read()

    def intervals(self):
        """(partition, start_ms, end_ms, kind) of every ownership it held."""
        open_, out = {}, []
        for f in self.lines:
            if f[0] == "own":
                open_[int(f[1])] = (int(f[2]), f[3])
            elif f[0] == "drop" and int(f[1]) in open_:
                s, k = open_.pop(int(f[1]))
                out.append((int(f[1]), s, int(f[2]), k))
        end = self.dead_at if self.dead_at else int(time.time() * 1000)
        out += [(p, s, end, k) for p, (s, k) in open_.items()]
        return out


def handovers(ivs, p):
    """Pairs (previous holder's interval, next holder's interval) of partition
    p, in order of claim. One agent's own consecutive intervals are merged
    first: a round that drops a partition (its proof ran out while the round
    was slow) and claims it again is stamped with the round's start, before
    the drop, and is no second owner."""
    runs = []
    for s, e, k, n in sorted((s, e, k, n) for n, q, s, e, k in ivs if q == p):
        if runs and runs[-1][3] == n:
            s0, e0, k0, _ = runs[-1]
            runs[-1] = (s0, max(e0, e), k0, n)
        else:
            runs.append((s, e, k, n))
    return zip(runs, runs[1:])


def victim_rounds(victim, stolen_at, dropped_at):
    """Rounds the victim began between the steal and its letting go: the round
    under way at the steal may have listed before it, the next one sees it."""
    return sum(stolen_at < t < dropped_at for t in victim.ticks)


def spread(agents):
    return sorted(len(a.owned) for a in agents)


def covered(agents, n=NPART):
    seen = [p for a in agents for p in a.owned]
    return sorted(seen) == list(range(n))


def test_agents_share_fail_over_and_scale_out(container):
    url, _ = container
    a, b, c = (Agent(url, n) for n in ("A", "B", "C"))
    agents = [a, b, c]
    try:
        wait_until(lambda: covered(agents) and spread(agents) == [5, 5, 6], timeout=60,
                   what="16 partitions over 3 agents")
        b.kill9()
        live = [a, c]
        wait_until(lambda: covered(live) and spread(live) == [8, 8], timeout=60,
                   what="the killed agent's partitions taken over")
        # once its claims expired, a survivor claims one a round: rounds are
        # counted, not timed, so a slow machine only makes them slower
        covered_at = int(time.time() * 1000)
        for x in live:
            assert sum(b.dead_at + EXPIRY_MS < t < covered_at for t in x.ticks) <= 8, x.name
        d = Agent(url, "D")
        live = [a, c, d]
        wait_until(lambda: covered(live) and spread(live) == [5, 5, 6], timeout=60,
                   what="the newcomer given its share")
        a.term()
        released_at = int(time.time() * 1000)
        live = [c, d]
        wait_until(lambda: covered(live) and spread(live) == [8, 8], timeout=60,
                   what="the stopped agent's released partitions taken")
        # released records are claimable at once, one a round each (about 3 for
        # A's 5 or 6), not after the expiry (7.5 rounds of 0.4 s)
        covered_at = int(time.time() * 1000)
        for x in live:
            assert sum(released_at < t < covered_at for t in x.ticks) <= 5, x.name
    finally:
        for x in (a, b, c, d) if "d" in locals() else (a, b, c):
            if x.proc.poll() is None:
                x.term()
    everyone = {x.name: x for x in (a, b, c, d)}
    ivs = [(x.name, *iv) for x in everyone.values() for iv in x.intervals()]
    steals = 0
    for p in range(NPART):
        for (s0, e0, k0, n0), (s1, e1, k1, n1) in handovers(ivs, p):
            if k1 == "steal":
                steals += 1
                assert victim_rounds(everyone[n0], s1, e0) <= 2, (p, n0, n1, s0, e0, s1)
            else:
                assert s1 >= e0, f"partition {p}: {n1} from {s1} while {n0} held it until {e0}"
    assert steals >= 1, "the newcomer should have stolen"


class SdkProcessor:
    """The official SDK's event processor in the same consumer group, its
    ownership intervals taken from its partition open/close callbacks."""

    def __init__(self, emu, store):
        from azure.eventhub import EventHubConsumerClient
        self.name, self.owned, self.lines, self.dead_at = "sdk", set(), [], None
        self.lock = threading.Lock()
        self.client = EventHubConsumerClient.from_connection_string(
            emu.conn_str(), consumer_group="$Default", eventhub_name="eh1",
            checkpoint_store=store, load_balancing_interval=1,
            partition_ownership_expiration_interval=SDK_EXPIRY_MS / 1000)
        self.thread = threading.Thread(target=self.client.receive, kwargs=dict(
            on_event=lambda ctx, ev: None, on_partition_initialize=self.on_init,
            on_partition_close=self.on_close, starting_position="-1", max_wait_time=1),
            daemon=True)
        self.thread.start()

    def on_init(self, ctx):
        with self.lock:
            self.owned.add(int(ctx.partition_id))
            self.lines.append(["own", ctx.partition_id, str(int(time.time() * 1000)), "sdk"])

    def on_close(self, ctx, reason):
        with self.lock:
            self.owned.discard(int(ctx.partition_id))
            self.lines.append(["drop", ctx.partition_id, str(int(time.time() * 1000))])

    def intervals(self):
        with self.lock:
            return Agent.intervals(self)

    def close(self):
        self.client.close()
        self.thread.join(20)


SDK_EXPIRY_MS = 15000


def test_sdk_processor_and_agents_share_a_group(az, tmp_path):
    """One SDK EventHubConsumerClient (BlobCheckpointStore) and two owner_tool
    agents over ehemu's 4 partitions: every partition held, spread 1/1/2, and
    no partition held by two of them beyond one balancing round of a steal's
    victim (the SDK's rounds are 1 s here, ours 0.4 s)."""
    from emu_util import Emu
    az.create_container("mixed")
    url = az.url("mixed")
    emu = Emu(tmp_path)
    store = sdk_store(az, "mixed")
    agents = []
    try:
        ns = f"localhost:{emu.amqp}"  # the SDK's name for the namespace: host and port
        sdk = SdkProcessor(emu, store)
        wait_until(lambda: len(sdk.owned) == 4, timeout=60, what="the SDK owning all 4")
        for name in ("E1", "E2"):
            a = Agent.__new__(Agent)
            a.name, a.lines, a.owned, a.dead_at, a.ticks = name, [], set(), None, []
            a.proc = subprocess.Popen([TOOL, url, ns, "eh1", "$Default", name, "agent", "4",
                                       str(SDK_EXPIRY_MS), str(RENEW_MS), "3000"], env=ENV,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            a.t = threading.Thread(target=a._read, daemon=True)
            a.t.start()
            agents.append(a)
        everyone = [sdk, *agents]
        wait_until(lambda: covered(everyone, 4) and spread(everyone) == [1, 1, 2], timeout=90,
                   what="4 partitions over the SDK and two agents")
        balanced_at = int(time.time() * 1000)
        # the records say the same as the parties
        recs = {o["partition_id"]: o["owner_id"] for o in store.list_ownership(ns, "eh1",
                                                                               "$Default")}
        assert sorted(recs.values()).count("E1") == len(agents[0].owned)
        assert sorted(recs.values()).count("E2") == len(agents[1].owned)
    finally:
        for a in agents:
            if a.proc.poll() is None:
                a.term()
        sdk.close()
        emu.stop()
    ivs = [(x.name, *iv) for x in (sdk, *agents) for iv in x.intervals()]
    for p in range(4):
        for (s0, e0, k0, n0), (s1, e1, k1, n1) in handovers(ivs, p):
            if k1 == "free":
                assert s1 >= e0, f"partition {p}: {n1} from {s1} while {n0} held it until {e0}"
            elif n0 == "sdk":
                # the SDK victim let go by the time every partition had one holder
                assert e0 <= balanced_at, (p, n0, n1, s0, e0, s1, balanced_at)
            else:
                # a steal from one of ours: it lets go on its next round
                victims = {x.name: x for x in agents}
                assert victim_rounds(victims[n0], s1, e0) <= 2, (p, n0, n1, s0, e0, s1)


def test_unreachable_store_stops_reading_before_anyone_may_claim(tmp_path):
    """Storage hangs (Azurite stopped with SIGSTOP: connections accepted, never
    answered) while an agent holds 4 partitions: its rounds wait on storage,
    but the proof checked beside them runs out and it stops reading every
    partition before the records could expire for anyone else, and says so."""
    if not azurite_bin():
        pytest.skip("azurite not installed (.tools/node)")
    az = Azurite()
    agent = None
    try:
        az.create_container("hang")
        agent = Agent.__new__(Agent)
        agent.name, agent.lines, agent.owned, agent.dead_at, agent.ticks = "H", [], set(), None, []
        agent.proc = subprocess.Popen([TOOL, az.url("hang"), NS, HUB, GROUP, "H", "agent", "4",
                                       "3000", "400", "1500"], env=ENV, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True)
        agent.t = threading.Thread(target=agent._read, daemon=True)
        agent.t.start()
        wait_until(lambda: len(agent.owned) == 4, timeout=30, what="4 partitions owned")
        n_before = len(agent.ticks)
        wait_until(lambda: len(agent.ticks) > n_before, timeout=30, what="one more round")
        os.killpg(az.proc.pid, signal.SIGSTOP)
        # the last round that completed before the stop renewed every claim no
        # earlier than it began; nobody may claim before that + the expiry
        last_round = agent.ticks[-1]
        wait_until(lambda: not agent.owned, timeout=30, what="every partition dropped")
        drops = [int(f[2]) for f in agent.lines if f[0] == "drop"]
        assert len(drops) == 4
        assert max(drops) < last_round + 3000, (last_round, drops)
    finally:
        if az.proc.poll() is None:
            os.killpg(az.proc.pid, signal.SIGCONT)
        if agent is not None:
            agent.proc.send_signal(signal.SIGTERM)
            agent.proc.wait(timeout=120)  # its round finishes once storage answers again
            agent.t.join(5)
            err = agent.proc.stderr.read()
        az.stop()
    assert err.count("ownership_unproven") == 4, err
    assert "no successful renewal: stop reading before another owner may claim it" in err


# a query-set id as the run names its leases (first query id, then a hash; over
# 31 bytes, which a fixed 32-byte record name once cut, losing the lease after one
# round), in mixed case: blob names are lower-cased
LEASE = "Orders-By_Category-7A137CC9AAAE5009"
LEASE_OPTS = ("--folder=ehdelta-lease", f"--names={LEASE}")


def holders(agents):
    return [x.name for x in agents if 0 in x.owned]


def rounds_since(agents, t_ms):
    return min(sum(t > t_ms for t in x.ticks) for x in agents)


def assert_one_at_a_time(agents, npart):
    """No partition held by two agents at once: each claim began after the
    previous holder let go (no steals happen in these tests)."""
    ivs = [(x.name, *iv) for x in agents for iv in x.intervals()]
    for p in range(npart):
        for (s0, e0, k0, n0), (s1, e1, k1, n1) in handovers(ivs, p):
            assert k1 == "free", (p, n1, "stole it from", n0)
            assert s1 >= e0, f"partition {p}: {n1} from {s1} while {n0} held it until {e0}"


def test_lease_has_one_holder_and_passes_to_one_other_after_expiry(az, container):
    url, name = container
    store = sdk_store(az, name)
    contenders = [Agent(url, n, LEASE_OPTS, npart=1) for n in ("L1", "L2", "L3")]
    try:
        wait_until(lambda: len(holders(contenders)) == 1, timeout=60, what="one lease holder")
        first = next(x for x in contenders if 0 in x.owned)
        # every contender has listed the live lease at least 3 times since
        t0 = int(time.time() * 1000)
        wait_until(lambda: rounds_since(contenders, t0) >= 3, timeout=60, what="3 more rounds")
        assert holders(contenders) == [first.name]
        # the record sits in the lease folder under the lower-cased id; the
        # SDK lists the group's ownership folder only, and does not see it
        assert tool(url, "-", "list", opts=("--folder=ehdelta-lease",)).stdout == \
            f"{LEASE.lower()} {first.name}\n"
        assert tool(url, "-", "list").stdout == ""
        assert list(store.list_ownership(NS, HUB, GROUP)) == []
        store.claim_ownership([{"fully_qualified_namespace": NS, "eventhub_name": HUB,
                                "consumer_group": GROUP, "partition_id": "0",
                                "owner_id": "sdk-1"}])
        assert [(o["partition_id"], o["owner_id"]) for o in
                store.list_ownership(NS, HUB, GROUP)] == [("0", "sdk-1")]
        # the holder stops renewing (kill -9): after its claim expires exactly
        # one other takes the lease; the third stays on standby
        first.kill9()
        rest = [x for x in contenders if x is not first]
        wait_until(lambda: len(holders(rest)) == 1, timeout=60, what="the lease taken over")
        second = next(x for x in rest if 0 in x.owned)
        t1 = int(time.time() * 1000)
        wait_until(lambda: rounds_since(rest, t1) >= 3, timeout=60, what="3 more rounds")
        assert holders(rest) == [second.name]
    finally:
        for x in contenders:
            if x.proc.poll() is None:
                x.term()
    errs = {x.name: x.proc.stderr.read() for x in contenders}
    # taken because it expired (not released, not stolen), and only once
    assert errs[second.name].count("ownership_claimed") == 1, errs[second.name]
    assert f"partition={LEASE} owner={second.name} folder=ehdelta-lease from=expired" in \
        errs[second.name], errs[second.name]
    third = next(x for x in rest if x is not second)
    assert "ownership_claimed" not in errs[third.name], errs[third.name]
    assert [f[0] for f in second.lines if f[0] == "own"] == ["own"]
    own_at = next(int(f[2]) for f in second.lines if f[0] == "own")
    assert own_at >= first.dead_at
    assert_one_at_a_time(contenders, 1)


def test_claim_all_agents_take_every_free_partition_and_never_steal(az, container):
    url, _ = container
    n = 8
    greedy = [Agent(url, x, ("--claim-all",), npart=n) for x in ("G1", "G2", "G3")]
    try:
        wait_until(lambda: covered(greedy, n), timeout=60, what="8 partitions held")
        t0 = int(time.time() * 1000)
        wait_until(lambda: rounds_since(greedy, t0) >= 3, timeout=60, what="3 more rounds")
        assert covered(greedy, n)
        # whoever holds any is killed: the others take all of its partitions
        # once they expire, whatever the spread, without stealing
        victim = max(greedy, key=lambda x: len(x.owned))
        victim.kill9()
        rest = [x for x in greedy if x is not victim]
        wait_until(lambda: covered(rest, n), timeout=60, what="the killed agent's partitions")
        # a newcomer finds nothing free and takes nothing
        late = Agent(url, "G4", ("--claim-all",), npart=n)
        greedy.append(late)
        t1 = int(time.time() * 1000)
        wait_until(lambda: rounds_since(rest + [late], t1) >= 3, timeout=60,
                   what="3 rounds with the newcomer")
        assert not late.owned and covered(rest, n)
    finally:
        for x in greedy:
            if x.proc.poll() is None:
                x.term()
    for x in greedy:
        steals = [f for f in x.lines if f[0] == "tick" and f[4] != "steals=0"]
        assert not steals, (x.name, steals[:1])
    assert_one_at_a_time(greedy, n)
