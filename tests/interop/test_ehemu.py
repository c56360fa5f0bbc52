"""ehemu driven by the official azure-eventhub SDK over plain AMQP
(UseDevelopmentEmulator=true): send batches with and without partition keys and
to fixed partitions, receive from every kind of starting position, hub and
partition properties, a wrong-key SAS refused, an exclusive receiver displacing
a lower one, and the fault controls seen by the SDK."""
import datetime
import os
import socket
import subprocess
import threading
import time

import pytest
from azure.eventhub import EventData, EventHubConsumerClient, EventHubProducerClient
from azure.eventhub.exceptions import (
    AuthenticationError,
    ConnectError,
    EventHubError,
    OperationTimeoutError,
)

from conftest import EHEMU, wait_until

KEY = "dGVzdC1rZXktZm9yLWVoZW11LW9ubHk="


class Emu:
    def __init__(self, tmp_path, *args):
        self.log = open(tmp_path / "ehemu.log", "w+")
        env = dict(os.environ, EHEMU_KEY=KEY)
        self.proc = subprocess.Popen([EHEMU, "--port", "0", *args], stderr=self.log, env=env)
        self.amqp = self.control = None

        def ready():
            self.log.seek(0)
            for line in self.log.read().splitlines():
                if line.startswith("ehemu: ready"):
                    kv = dict(p.split("=") for p in line.split()[2:])
                    self.amqp, self.control = int(kv["amqp"]), int(kv["control"])
                    return True
            assert self.proc.poll() is None, "ehemu exited"
            return False

        wait_until(ready, timeout=10, what="ehemu ready")

    def conn_str(self, key=KEY):
        return (f"Endpoint=sb://localhost:{self.amqp};SharedAccessKeyName=RootManageSharedAccessKey;"
                f"SharedAccessKey={key};UseDevelopmentEmulator=true")

    def ctl(self, line):
        with socket.create_connection(("127.0.0.1", self.control)) as s:
            s.sendall(line.encode() + b"\n")
            return s.makefile().readline().strip()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


@pytest.fixture
def emu(tmp_path):
    e = Emu(tmp_path)
    yield e
    e.stop()


def producer(emu, **kw):
    return EventHubProducerClient.from_connection_string(emu.conn_str(), eventhub_name="eh1", **kw)


def consumer(emu, group="$Default", **kw):
    return EventHubConsumerClient.from_connection_string(
        emu.conn_str(), consumer_group=group, eventhub_name="eh1", **kw)


def send(emu, bodies, **batch_kw):
    with producer(emu) as p:
        b = p.create_batch(**batch_kw)
        for body in bodies:
            b.add(EventData(body))
        p.send_batch(b)


def receive(emu, partition, starting_position, n, inclusive=False, timeout=15, group="$Default",
            owner_level=None):
    got = []
    done = threading.Event()
    c = consumer(emu, group)

    def on_event(ctx, ev):
        if ev is not None:
            got.append(ev)
            if len(got) >= n:
                done.set()

    kw = {} if owner_level is None else {"owner_level": owner_level}
    t = threading.Thread(target=c.receive, kwargs=dict(
        on_event=on_event, partition_id=partition, starting_position=starting_position,
        starting_position_inclusive=inclusive, max_wait_time=0.5, **kw), daemon=True)
    t.start()
    done.wait(timeout)
    c.close()
    t.join(10)
    return got


def test_hub_and_partition_properties(emu):
    with producer(emu) as p:
        props = p.get_eventhub_properties()
        assert props["eventhub_name"] == "eh1"
        assert props["partition_ids"] == ["0", "1", "2", "3"]
        assert isinstance(props["created_at"], datetime.datetime)
        pp = p.get_partition_properties("2")
        assert pp["is_empty"] is True
        assert pp["last_enqueued_sequence_number"] == -1
    send(emu, [b"a", b"b"], partition_id="2")
    with producer(emu) as p:
        pp = p.get_partition_properties("2")
        assert pp["is_empty"] is False
        assert pp["beginning_sequence_number"] == 0
        assert pp["last_enqueued_sequence_number"] == 1
        assert int(pp["last_enqueued_offset"]) > 0


def test_batch_to_partition_and_receive_from_start(emu):
    bodies = [f"event-{i}".encode() for i in range(10)]
    send(emu, bodies, partition_id="1")
    got = receive(emu, "1", "-1", 10)
    assert [e.body_as_str() for e in got] == [b.decode() for b in bodies]
    assert [e.sequence_number for e in got] == list(range(10))
    offs = [int(e.offset) for e in got]
    assert offs == sorted(offs) and len(set(offs)) == 10
    assert all(isinstance(e.enqueued_time, datetime.datetime) for e in got)


def test_partition_key_lands_by_service_hash(emu):
    # reference §8.5: 'pk1' over 4 partitions is partition 1
    send(emu, [b"x", b"y", b"z"], partition_key="pk1")
    got = receive(emu, "1", "-1", 3)
    assert [e.body_as_str() for e in got] == ["x", "y", "z"]
    assert all(e.partition_key == b"pk1" or e.partition_key == "pk1" for e in got)
    with producer(emu) as p:
        for pid in ("0", "2", "3"):
            assert p.get_partition_properties(pid)["is_empty"]


def test_round_robin_without_key(emu):
    for i in range(4):
        send(emu, [f"rr{i}".encode()])
    with producer(emu) as p:
        counts = [p.get_partition_properties(str(i))["last_enqueued_sequence_number"] + 1
                  for i in range(4)]
    assert counts == [1, 1, 1, 1]


def test_positions(emu):
    send(emu, [f"e{i}".encode() for i in range(6)], partition_id="0")
    allev = receive(emu, "0", "-1", 6)
    assert len(allev) == 6
    # sequence number, exclusive and inclusive
    assert [e.sequence_number for e in receive(emu, "0", 2, 3)] == [3, 4, 5]
    assert [e.sequence_number for e in receive(emu, "0", 2, 4, inclusive=True)] == [2, 3, 4, 5]
    # offset (a string position)
    off = allev[3].offset
    assert [e.sequence_number for e in receive(emu, "0", str(off), 2)] == [4, 5]
    assert [e.sequence_number for e in receive(emu, "0", str(off), 3, inclusive=True)] == [3, 4, 5]
    # enqueued time: everything is after a time well in the past
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    assert len(receive(emu, "0", past, 6)) == 6
    # @latest: only what arrives after the attach
    got = []
    done = threading.Event()
    c = consumer(emu)

    def on_event(ctx, ev):
        if ev is not None:
            got.append(ev)
            done.set()

    t = threading.Thread(target=c.receive, kwargs=dict(
        on_event=on_event, partition_id="0", starting_position="@latest", max_wait_time=0.5),
        daemon=True)
    t.start()
    time.sleep(1.5)
    send(emu, [b"late"], partition_id="0")
    done.wait(10)
    c.close()
    t.join(10)
    assert [e.body_as_str() for e in got] == ["late"]


def test_consumer_group_cg1(emu):
    send(emu, [b"g"], partition_id="3")
    assert [e.body_as_str() for e in receive(emu, "3", "-1", 1, group="cg1")] == ["g"]


def test_wrong_key_refused(emu):
    p = EventHubProducerClient.from_connection_string(
        emu.conn_str(key="d3Jvbmcta2V5"), eventhub_name="eh1", retry_total=0)
    with pytest.raises((AuthenticationError, ConnectError, EventHubError)) as ei:
        with p:
            p.get_eventhub_properties()
    assert "401" in str(ei.value) or "nauthorized" in str(ei.value) or "uth" in str(ei.value)


def test_message_size_exceeded(emu):
    with producer(emu) as p:
        b = p.create_batch()
        with pytest.raises(ValueError):
            b.add(EventData(b"x" * (1024 * 1024 + 10)))


def test_server_busy_fault(emu):
    assert emu.ctl("busy 10") == "ok"
    with producer(emu, retry_total=0) as p:
        b = p.create_batch()
        b.add(EventData(b"busy"))
        with pytest.raises(EventHubError) as ei:
            p.send_batch(b)
    assert "server-busy" in str(ei.value) or "throttled" in str(ei.value)
