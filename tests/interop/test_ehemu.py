"""ehemu driven by the official azure-eventhub SDK over plain AMQP
(UseDevelopmentEmulator=true): send batches with and without partition keys and
to fixed partitions, receive from every kind of starting position, hub and
partition properties, a wrong-key SAS refused, an exclusive receiver displacing
a lower one, and the fault controls seen by the SDK."""
import datetime
import socket
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

from conftest import wait_until
from emu_util import Emu, Watch, consumer, producer, receive, send


@pytest.fixture
def emu(tmp_path):
    e = Emu(tmp_path)
    yield e
    e.stop()


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
    # the SDK attaches in its own thread at a moment the test cannot see (a
    # fixed wait is too short on a loaded machine): probes go out until one
    # arrives; @latest means none of e0-e5 and every probe from the first one
    # delivered on
    probes = []

    def probe():
        if not done.is_set():
            probes.append(f"late{len(probes)}")
            send(emu, [probes[-1].encode()], partition_id="0")
        return done.is_set()
    wait_until(probe, timeout=30, interval=0.2, what="a probe sent after the attach")
    wait_until(lambda: got[-1].body_as_str() == probes[-1], timeout=10, what="the last probe")
    c.close()
    t.join(10)
    bodies = [e.body_as_str() for e in got]
    assert bodies[0] in probes and bodies == probes[probes.index(bodies[0]):], bodies


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
    # the send is refused with a Rejected outcome carrying
    # com.microsoft:server-busy; SDK 5.11 surfaces it as EventDataSendError
    # (it does not retry a rejected outcome), and the next send lands
    assert emu.ctl("busy 1") == "ok"
    with producer(emu) as p:
        b = p.create_batch(partition_id="0")
        b.add(EventData(b"busy"))
        with pytest.raises(EventHubError) as ei:
            p.send_batch(b)
        assert "com.microsoft:server-busy" in str(ei.value)
        b = p.create_batch(partition_id="0")
        b.add(EventData(b"after"))
        p.send_batch(b)
        assert p.get_partition_properties("0")["last_enqueued_sequence_number"] == 0


def test_epoch_steals_lower_and_refuses_lower(emu):
    send(emu, [b"one"], partition_id="0")
    low = Watch(emu, owner_level=1)
    wait_until(lambda: low.events, timeout=10, what="low-epoch receiver gets the event")
    high = Watch(emu, owner_level=2)
    wait_until(lambda: high.events, timeout=10, what="high-epoch receiver gets the event")
    wait_until(lambda: "stolen" in low.text(), timeout=10, what="low receiver sees link:stolen")
    lower = Watch(emu, owner_level=1)
    wait_until(lambda: lower.errors, timeout=10, what="a lower epoch is refused")
    assert "epoch" in lower.text()
    for w in (low, high, lower):
        w.close()


def test_fault_detach_receivers(emu):
    w = Watch(emu)
    send(emu, [b"d"], partition_id="0")
    wait_until(lambda: w.events, timeout=10, what="receiver attached")
    assert emu.ctl("detach com.microsoft:entity-disabled") == "ok"
    wait_until(lambda: "entity-disabled" in w.text(), timeout=10, what="SDK sees the detach")
    w.close()


def test_fault_expire_tokens(emu):
    w = Watch(emu)
    send(emu, [b"t"], partition_id="0")
    wait_until(lambda: w.events, timeout=10, what="receiver attached")
    assert emu.ctl("expire") == "ok"
    wait_until(lambda: "unauthorized" in w.text(), timeout=10, what="SDK sees the expired token")
    w.close()


def test_fault_drop_connections(emu):
    w = Watch(emu)
    send(emu, [b"t"], partition_id="0")
    wait_until(lambda: w.events, timeout=10, what="receiver attached")
    assert emu.ctl("drop") == "ok"
    wait_until(lambda: w.errors, timeout=15, what="SDK sees the dropped connection")
    w.close()


def test_fault_delay_frames(emu):
    with producer(emu) as p:
        p.get_eventhub_properties()
        assert emu.ctl("delay 1500") == "ok"
        t0 = time.monotonic()
        p.get_partition_properties("0")
        assert time.monotonic() - t0 >= 1.4
        assert emu.ctl("delay 0") == "ok"


def test_token_lifetime_detaches_links(tmp_path):
    e = Emu(tmp_path, "--token-lifetime", "2s")
    try:
        send(e, [b"x"], partition_id="0")
        w = Watch(e)
        wait_until(lambda: "unauthorized" in w.text(), timeout=20, what="link detached on expiry")
        w.close()
    finally:
        e.stop()


def test_sixth_non_epoch_receiver_refused(emu):
    send(emu, [b"r"], partition_id="0")
    ws = [Watch(emu) for _ in range(5)]
    wait_until(lambda: all(w.events for w in ws), timeout=20, what="five receivers attached")
    sixth = Watch(emu)
    wait_until(lambda: sixth.errors, timeout=10, what="the sixth is refused")
    assert "resource-limit-exceeded" in sixth.text() or "maximum number" in sixth.text()
    for w in ws + [sixth]:
        w.close()


def test_unknown_hub_not_found(emu):
    p = EventHubProducerClient.from_connection_string(emu.conn_str(), eventhub_name="nohub",
                                                      retry_total=0)
    with pytest.raises(EventHubError) as ei:
        with p:
            p.get_eventhub_properties()
    assert "not-found" in repr(ei.value) or "could not be found" in str(ei.value)


def test_garbage_does_not_stop_the_server(emu):
    for junk in (b"HTTP/1.1 GET /\r\n\r\n", b"AMQP\x03\x01\x00\x00" + b"\xff" * 64,
                 b"AMQP\x00\x01\x00\x00" + b"\x00\x00\x00\x10\x02\x00\x00\x00\x00\x53\x10\xd0" * 4):
        with socket.create_connection(("127.0.0.1", emu.amqp)) as s:
            s.sendall(junk)
            s.settimeout(2)
            try:
                while s.recv(4096):
                    pass
            except OSError:
                pass
    assert emu.proc.poll() is None
    send(emu, [b"still"], partition_id="2")
    assert [e.body_as_str() for e in receive(emu, "2", "-1", 1)] == ["still"]


def test_large_sdk_batch(emu):
    # one transfer holding 300 data sections, one event each
    bodies = [f"big-{i}".encode() for i in range(300)]
    send(emu, bodies, partition_id="3")
    got = receive(emu, "3", "-1", 300, timeout=30)
    assert [e.body_as_str() for e in got] == [b.decode() for b in bodies]
    assert [e.sequence_number for e in got] == list(range(300))
