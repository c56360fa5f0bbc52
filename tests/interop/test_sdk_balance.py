"""ehdelta agents and the official Python SDK in one consumer group (issue 18).

Azurite holds the checkpoint store and the raw table; ehemu the hub. Checked:
  - the SDK's BlobCheckpointStore lists the ownership records of two running
    `ehdelta run` agents (their --owner-id, every partition once), and after
    they read the hub to its end the checkpoints they wrote: per partition the
    sequence number and offset of the last event in the raw table;
  - an SDK EventHubConsumerClient with that checkpoint store, started in the
    same consumer group as two agents, balances with them (every partition
    read by exactly one party, shares 2/2/2 of 6), and the reading intervals of
    all three (the SDK's from its partition initialize/close callbacks, the
    agents' from their logs) never overlap, but for a steal's victim letting
    go: an agent on its stolen link's detach (STEAL_GRACE_MS), the SDK on its
    next balancing round (SDK_GRACE_MS). The raw table holds no event twice.
"""
import os
import subprocess
import threading

import duckdb
import pytest
from azure.eventhub import EventData, EventHubConsumerClient, EventHubProducerClient
from azure.eventhub.extensions.checkpointstoreblob import BlobCheckpointStore
from deltalake import DeltaTable

import agents_util as au
from conftest import EHDELTA, wait_until

NPART = 6
EXPIRY_S, RENEW_S = 10, 1
SDK_INTERVAL_S = 1
STEAL_GRACE_MS = 2000
SDK_GRACE_MS = SDK_INTERVAL_S * 1000 + 3000


@pytest.fixture
def services(tmp_path):
    from agentutil import Emu
    from delta_util import DEV_KEY, Azurite, azurite_bin
    if not azurite_bin():
        pytest.skip("azurite not installed (.tools/node)")
    az = Azurite()
    # delta-rs finds the emulator through this (its default is port 10000)
    os.environ["AZURITE_BLOB_STORAGE_URL"] = f"http://127.0.0.1:{az.port}"
    emu = None
    try:
        emu = Emu(tmp_path, hub="tx", partitions=NPART)
        for c in ("lake", "ckpt"):
            az.create_container(c)
        keyf = tmp_path / "key"
        keyf.write_text(DEV_KEY + "\n")
        keyf.chmod(0o600)
        conf = tmp_path / "raw.conf"
        conf.write_text(f"""[source]
connection_string_file = {emu.cs_file}
starting_position = earliest
checkpoint_store = {az.url("ckpt")}
ownership_expiry = {EXPIRY_S} seconds
ownership_renew = {RENEW_S} second
[storage]
auth = shared-key
account_key_file = {keyf}
[schema]
columns = transaction_id STRING, amount DOUBLE
metadata = sequence_number AS seq, offset, partition
[sink raw]
path = {az.url("lake", "raw")}
trigger = 1 second
""")
        cs = (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DEV_KEY};"
              f"BlobEndpoint=http://127.0.0.1:{az.port}/devstoreaccount1;")
        store = BlobCheckpointStore.from_connection_string(cs, "ckpt")
        env = dict(os.environ, AZURE_STORAGE_ACCOUNT_KEY=DEV_KEY)
        yield az, emu, conf, store, env, tmp_path
    finally:
        if emu is not None:
            emu.stop()
        az.stop()


def send(emu, n, first=0):
    """n events spread evenly over the partitions, by the SDK."""
    with EventHubProducerClient.from_connection_string(emu.conn_str(),
                                                       eventhub_name=emu.hub) as p:
        for q in range(NPART):
            b = p.create_batch(partition_id=str(q))
            for i in range(first + q, first + n, NPART):
                b.add(EventData(f'{{"transaction_id": "T{i:07d}", "amount": {i % 97}.5}}'))
            p.send_batch(b)


def sdk_ns(emu):
    """The SDK's name for the namespace of ehemu's connection string."""
    return f"localhost:{emu.amqp}"


def raw_table(az):
    t = DeltaTable("az://lake/raw", storage_options=az.delta_rs_options()).to_pyarrow_table(
        columns=["partition", "seq", "offset"])
    return t


def raw_count(az):
    from deltalake.exceptions import TableNotFoundError
    try:
        return raw_table(az).num_rows
    except TableNotFoundError:  # no commit yet
        return 0


def test_sdk_store_lists_our_ownership_and_checkpoints(services):
    az, emu, conf, store, env, tmp = services
    agents = [au.Agent(EHDELTA, conf, tmp, n, env=env) for n in ("ehdelta-a", "ehdelta-b")]
    try:
        wait_until(lambda: au.balanced(agents, NPART), timeout=90, interval=0.2,
                   what="6 partitions over two agents")
        recs = wait_until(lambda: (lambda r: r if sorted(o["partition_id"] for o in r) ==
                                   [str(p) for p in range(NPART)] else None)(
            store.list_ownership(sdk_ns(emu), emu.hub, "$Default")), timeout=30,
            what="6 ownership records listed by the SDK")
        owners = {o["partition_id"]: o["owner_id"] for o in recs}
        for a in agents:
            assert {p for p, o in owners.items() if o == a.name} == \
                {str(p) for p in a.reading()}, (owners, a.name)
        assert all(o["etag"] and o["last_modified_time"] for o in recs)

        send(emu, 600)
        wait_until(lambda: raw_count(az) >= 600, timeout=90, interval=0.5,
                   what="600 rows in the raw table")
        db = duckdb.connect()
        t = raw_table(az)  # noqa: F841 - read by DuckDB below
        last = {str(p): (s, o) for p, s, o in db.execute(
            "SELECT partition, max(seq), arg_max(\"offset\", seq) FROM t GROUP BY partition")
            .fetchall()}
        assert len(last) == NPART and db.execute(
            "SELECT count(*) = count(DISTINCT (partition, seq)) FROM t").fetchone()[0]

        # checkpoints follow the commits: wait for the last one of each partition
        def cps():
            c = {x["partition_id"]: (x["sequence_number"], int(x["offset"]))
                 for x in store.list_checkpoints(sdk_ns(emu), emu.hub, "$Default")}
            return c if c == {p: (s, int(o)) for p, (s, o) in last.items()} else None
        wait_until(cps, timeout=30, interval=0.5, what="the SDK checkpoints of the last events")
    finally:
        rcs = [a.term() for a in agents if a.proc.poll() is None]
        for a in agents:
            a.stop_quietly()
    assert rcs == [0, 0], [a.text()[-2000:] for a in agents]
    # released as the SDKs release: every record stays, its owner empty
    assert sorted((o["partition_id"], o["owner_id"] or "") for o in store.list_ownership(
        sdk_ns(emu), emu.hub, "$Default")) == [(str(p), "") for p in range(NPART)]
    for a in agents:
        assert a.sanitizer_report() is None, a.sanitizer_report()


class SdkProcessor:
    """The official SDK's event processor, its reading intervals taken from its
    partition initialize/close callbacks (same clock as the agents' logs)."""

    def __init__(self, emu, store):
        self.name, self.lines, self.dead_at = "sdk", [], None
        self.lock = threading.Lock()
        self.client = EventHubConsumerClient.from_connection_string(
            emu.conn_str(), consumer_group="$Default", eventhub_name=emu.hub,
            checkpoint_store=store, load_balancing_interval=SDK_INTERVAL_S,
            partition_ownership_expiration_interval=EXPIRY_S)
        self.thread = threading.Thread(target=self.client.receive, kwargs=dict(
            on_event=lambda ctx, ev: None, on_partition_initialize=self._init,
            on_partition_close=self._close, starting_position="-1", max_wait_time=1),
            daemon=True)
        self.thread.start()

    def _init(self, ctx):
        with self.lock:
            self.lines.append({"ms": au.now_ms(), "event": "reading_started",
                               "partition": int(ctx.partition_id), "owner": "sdk"})

    def _close(self, ctx, reason):
        # OWNERSHIP_LOST: another party took it (a steal, or a claim we lost)
        why = "stolen" if "OWNERSHIP_LOST" in str(reason) else "stop"
        with self.lock:
            self.lines.append({"ms": au.now_ms(), "event": "reading_stopped",
                               "partition": int(ctx.partition_id), "owner": "sdk", "reason": why})

    def alive(self):
        return self.thread.is_alive()

    def reading(self):
        with self.lock:
            lines = list(self.lines)
        ivs, _ = au.intervals("sdk", lines, end=au.now_ms())
        return {iv.partition for iv in ivs if iv.reason == "running"}

    def intervals(self):
        with self.lock:
            lines = list(self.lines)
        return au.intervals("sdk", lines)

    def close(self):
        self.client.close()
        self.thread.join(30)


def test_sdk_processor_balances_with_agents(services):
    az, emu, conf, store, env, tmp = services
    send(emu, 1200)
    sdk = SdkProcessor(emu, store)
    agents = []
    try:
        wait_until(lambda: len(sdk.reading()) == NPART, timeout=90, interval=0.2,
                   what="the SDK reading all 6 partitions")
        agents = [au.Agent(EHDELTA, conf, tmp, n, env=env) for n in ("ehdelta-a", "ehdelta-b")]
        parties = [sdk, *agents]
        wait_until(lambda: au.balanced(parties, NPART), timeout=180, interval=0.2,
                   what="6 partitions over the SDK and two agents, 2 each")
        recs = {o["partition_id"]: o["owner_id"]
                for o in store.list_ownership(sdk_ns(emu), emu.hub, "$Default")}
        # the SDK's records carry its processor's own id (a uuid)
        sdk_ids = {o for o in recs.values() if o not in {a.name for a in agents}}
        assert len(sdk_ids) == 1, recs
        for x in parties:
            mine = sdk_ids if x is sdk else {x.name}
            assert {p for p, o in recs.items() if o in mine} == \
                {str(p) for p in x.reading()}, (recs, x.name)
        send(emu, 600, first=1200)
    finally:
        rcs = [a.term() for a in agents if a.proc.poll() is None]
        sdk.close()
        for a in agents:
            a.stop_quietly()
    assert rcs == [0, 0], [a.text()[-2000:] for a in agents]
    ivs, problems = sdk.intervals()
    for a in agents:
        i, p = a.intervals()
        ivs += i
        problems += p
    assert not problems, problems
    bad, steals = au.check_intervals(ivs, steal_grace_ms=max(STEAL_GRACE_MS, SDK_GRACE_MS))
    # an agent's stolen link goes at its detach; only the SDK waits for its round
    bad += [f"agent {a!r} let go {over} ms after {b!r} began" for _, a, b, over in steals
            if a.agent != "sdk" and over > STEAL_GRACE_MS]
    assert not bad, "\n".join(bad)
    print(f"{len(ivs)} reading intervals, steals {[(p, a.agent, b.agent, o) for p, a, b, o in steals]}")
    t = raw_table(az)  # noqa: F841 - read by DuckDB below
    n, distinct = duckdb.connect().execute(
        "SELECT count(*), count(DISTINCT (partition, seq)) FROM t").fetchone()
    assert n and n == distinct, f"{n} rows, {distinct} distinct (partition, seq)"
