"""The official SDK's event processor against ehemu: two EventHubConsumerClients
sharing a BlobCheckpointStore on Azurite (started here on a free port) balance
the 4 partitions two and two (epoch 0 receivers stealing with link:stolen),
every event sent afterwards is received exactly once by the partition's owner,
and the checkpoints land in the store."""
import threading

import pytest
from azure.eventhub import EventData, EventHubConsumerClient
from azure.eventhub.extensions.checkpointstoreblob import BlobCheckpointStore

from conftest import wait_until
from delta_util import DEV_KEY, Azurite, azurite_bin
from emu_util import Emu, producer

PARTS = ["0", "1", "2", "3"]
PER_PART = 10


@pytest.fixture(scope="module")
def azurite():
    if not azurite_bin():
        pytest.skip("azurite not installed (.tools/node)")
    a = Azurite()
    yield a
    a.stop()


@pytest.fixture
def emu(tmp_path):
    e = Emu(tmp_path)
    yield e
    e.stop()


def fqns(emu):
    # the processor names its blobs after the Endpoint's host, port included
    return f"localhost:{emu.amqp}"


def storage_cs(az):
    return (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DEV_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{az.port}/devstoreaccount1;")


class Processor:
    def __init__(self, name, emu, store):
        self.name, self.events, self.owned, self.lost = name, [], set(), []
        self.lock = threading.Lock()
        self.client = EventHubConsumerClient.from_connection_string(
            emu.conn_str(), consumer_group="$Default", eventhub_name="eh1",
            checkpoint_store=store, load_balancing_interval=1,
            partition_ownership_expiration_interval=15)
        self.thread = threading.Thread(target=self.client.receive, kwargs=dict(
            on_event=self.on_event, on_partition_initialize=self.on_init,
            on_partition_close=self.on_close, starting_position="-1", max_wait_time=1),
            daemon=True)
        self.thread.start()

    def on_init(self, ctx):
        with self.lock:
            self.owned.add(ctx.partition_id)

    def on_close(self, ctx, reason):
        with self.lock:
            self.owned.discard(ctx.partition_id)
            self.lost.append((ctx.partition_id, str(reason)))

    def on_event(self, ctx, ev):
        if ev is None:
            return
        with self.lock:
            self.events.append((ctx.partition_id, ev.sequence_number, ev.body_as_str()))
        ctx.update_checkpoint(ev)

    def close(self):
        self.client.close()
        self.thread.join(20)


def test_two_processors_balance_and_checkpoint(emu, azurite):
    azurite.create_container("ckpt")
    store = BlobCheckpointStore.from_connection_string(storage_cs(azurite), "ckpt")
    a = Processor("a", emu, store)
    try:
        wait_until(lambda: a.owned == set(PARTS), timeout=60, what="first processor owns all 4")
        b = Processor("b", emu, store)
        try:
            def balanced():
                return (len(a.owned) == 2 and len(b.owned) == 2 and not (a.owned & b.owned))
            wait_until(balanced, timeout=90, what="two partitions each")
            # B took its two by stealing A's epoch-0 links (or claiming released ones)
            assert a.lost, "the first processor gave up partitions"
            # balance must hold over several load-balancing rounds: a round
            # renews each owned partition's ownership (a new etag), so rounds
            # are counted, not timed, and a slow machine waits for them
            renewals, last = {pid: 0 for pid in PARTS}, {}

            def held():
                assert balanced(), (a.owned, b.owned)
                for o in store.list_ownership(fqns(emu), "eh1", "$Default"):
                    pid = o["partition_id"]
                    renewals[pid] += pid in last and last[pid] != o["etag"]
                    last[pid] = o["etag"]
                return min(renewals.values()) >= 3
            wait_until(held, timeout=90, interval=0.2, what="three renewals of every ownership")
            owner = {p: ("a" if p in a.owned else "b") for p in PARTS}

            sent = set()
            with producer(emu) as p:
                for pid in PARTS:
                    batch = p.create_batch(partition_id=pid)
                    for i in range(PER_PART):
                        body = f"p{pid}-e{i}"
                        batch.add(EventData(body))
                        sent.add((pid, i, body))
                    p.send_batch(batch)
                # one more per partition, after the others: once it is in, a
                # duplicate of any of them would have come before it
                for pid in PARTS:
                    p.send_batch([EventData("end")], partition_id=pid)
            total = len(PARTS) * PER_PART
            wait_until(lambda: sum(e[2] == "end" for e in a.events + b.events) >= len(PARTS),
                       timeout=60, what="the end marker of every partition")
            got = [e for e in a.events + b.events if e[2] != "end"]
            assert len(a.events) + len(b.events) == total + len(PARTS), "a marker twice"
            assert len(got) == total, "each event exactly once"
            assert set(got) == sent
            for name, proc in (("a", a), ("b", b)):
                assert all(owner[pid] == name for pid, _, _ in proc.events)
            # checkpoints landed: one per partition at its last event
            def landed():
                cps = store.list_checkpoints(fqns(emu), "eh1", "$Default")
                return {c["partition_id"]: c["sequence_number"] for c in cps}
            wait_until(lambda: landed() == {pid: PER_PART for pid in PARTS}, timeout=20,
                       what="checkpoints at the end marker (10) of every partition")
            names = [b.name for b in azurite.service().get_container_client("ckpt").list_blobs()]
            assert f"{fqns(emu)}/eh1/$default/checkpoint/0" in names, names
            own = store.list_ownership(fqns(emu), "eh1", "$Default")
            owners = {}
            for o in own:
                owners.setdefault(o["owner_id"], set()).add(o["partition_id"])
            assert sorted(len(v) for v in owners.values() if v) == [2, 2]
        finally:
            b.close()
    finally:
        a.close()


def test_processor_resumes_from_checkpoint(emu, azurite):
    azurite.create_container("resume")
    store = BlobCheckpointStore.from_connection_string(storage_cs(azurite), "resume")
    with producer(emu) as p:
        batch = p.create_batch(partition_id="0")
        for i in range(5):
            batch.add(EventData(f"first-{i}"))
        p.send_batch(batch)
    a = Processor("a", emu, store)
    try:
        wait_until(lambda: len(a.events) >= 5, timeout=60, what="first run reads 5")
        wait_until(lambda: any(c["partition_id"] == "0" and c["sequence_number"] == 4
                               for c in store.list_checkpoints(fqns(emu), "eh1", "$Default")),
                   timeout=20, what="checkpoint at 4")
    finally:
        a.close()
    with producer(emu) as p:
        batch = p.create_batch(partition_id="0")
        for i in range(3):
            batch.add(EventData(f"second-{i}"))
        p.send_batch(batch)
    b = Processor("b", emu, store)
    try:
        wait_until(lambda: len(b.events) >= 3, timeout=90, what="second run reads the new 3")
        # an end marker after them: anything read twice would come before it
        with producer(emu) as p:
            p.send_batch([EventData("end")], partition_id="0")
        wait_until(lambda: b.events[-1][2] == "end", timeout=60, what="the end marker")
        assert [e[2] for e in b.events] == [f"second-{i}" for i in range(3)] + ["end"]
        assert [e[1] for e in b.events] == [5, 6, 7, 8]
    finally:
        b.close()
