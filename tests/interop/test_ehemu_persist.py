"""ehemu --data-dir: events sent with the official SDK survive a restart
(SIGTERM and SIGKILL) with their bodies, properties, sequence numbers, offsets
and enqueued times intact; new sends continue the numbering; a torn tail is
cut on load; retention still applies; one directory serves one emulator."""
import signal
import subprocess
import time

from azure.eventhub import EventData

from conftest import EHEMU, wait_until
from emu_util import Emu, producer, receive, send


def snapshot(emu, parts=("0", "1", "2", "3")):
    """Every retained event per partition, as comparable tuples."""
    out = {}
    with producer(emu) as p:
        counts = {pid: p.get_partition_properties(pid) for pid in parts}
    for pid in parts:
        pp = counts[pid]
        n = 0 if pp["is_empty"] else (pp["last_enqueued_sequence_number"]
                                      - pp["beginning_sequence_number"] + 1)
        evs = receive(emu, pid, "-1", n) if n else []
        assert len(evs) == n
        out[pid] = [(e.body_as_str(), e.sequence_number, e.offset, e.enqueued_time,
                     dict(e.properties or {}), e.partition_key) for e in evs]
    return out


def fill(emu):
    with producer(emu) as p:
        b = p.create_batch(partition_id="0")
        for i in range(5):
            ev = EventData(f"p0-{i}")
            ev.properties = {"i": i, "tag": "persist"}
            b.add(ev)
        p.send_batch(b)
        b = p.create_batch(partition_key="pk1")
        b.add(EventData("keyed"))
        p.send_batch(b)
        for i in range(4):
            b = p.create_batch()
            b.add(EventData(f"rr-{i}"))
            p.send_batch(b)


def restart_keeps_events(tmp_path, sig):
    d = tmp_path / "data"
    e = Emu(tmp_path, "--data-dir", str(d))
    fill(e)
    before = snapshot(e)
    with producer(e) as p:
        created = p.get_eventhub_properties()["created_at"]
    assert sum(len(v) for v in before.values()) == 10
    e.stop(sig)
    e = Emu(tmp_path, "--data-dir", str(d))
    try:
        assert snapshot(e) == before
        with producer(e) as p:
            assert p.get_eventhub_properties()["created_at"] == created
        send(e, [b"next"], partition_id="0")
        after = receive(e, "0", "-1", 7)
        last, new = before["0"][-1], after[-1]
        assert new.body_as_str() == "next"
        assert new.sequence_number == last[1] + 1
        assert int(new.offset) > int(last[2])
        assert new.enqueued_time >= last[3]
    finally:
        e.stop()
    return d


def test_restart_after_sigterm(tmp_path):
    restart_keeps_events(tmp_path, signal.SIGTERM)


def test_restart_after_sigkill(tmp_path):
    restart_keeps_events(tmp_path, signal.SIGKILL)


def test_torn_tail_is_cut(tmp_path):
    d = tmp_path / "data"
    e = Emu(tmp_path, "--data-dir", str(d))
    send(e, [b"a", b"b", b"c"], partition_id="2")
    before = snapshot(e, ("2",))
    e.stop(signal.SIGKILL)
    log = d / "eh1" / "2.log"
    size = log.stat().st_size
    # a record cut short: a header announcing 100 bytes, then only 10 of them
    with open(log, "ab") as f:
        f.write((100).to_bytes(4, "little") + b"\x00" * 28 + b"x" * 10)
    e = Emu(tmp_path, "--data-dir", str(d))
    try:
        assert snapshot(e, ("2",)) == before
        assert log.stat().st_size == size
        assert "emu_log_truncated" in e.text()
        send(e, [b"d"], partition_id="2")
        assert [x.sequence_number for x in receive(e, "2", "-1", 4)] == [0, 1, 2, 3]
    finally:
        e.stop()
    # a flipped byte inside the last record: its checksum fails, it is dropped
    data = bytearray(log.read_bytes())
    data[-3] ^= 0xFF
    log.write_bytes(bytes(data))
    e = Emu(tmp_path, "--data-dir", str(d))
    try:
        assert [x.body_as_str() for x in receive(e, "2", "-1", 3)] == ["a", "b", "c"]
        with producer(e) as p:
            assert p.get_partition_properties("2")["last_enqueued_sequence_number"] == 2
    finally:
        e.stop()


def test_retention_applies_after_restart(tmp_path):
    d = tmp_path / "data"
    e = Emu(tmp_path, "--data-dir", str(d), "--retention", "2s")
    send(e, [b"old1", b"old2"], partition_id="1")
    e.stop()
    time.sleep(2.5)  # the retention window itself is what is under test
    e = Emu(tmp_path, "--data-dir", str(d), "--retention", "2s")
    try:
        with producer(e) as p:
            pp = p.get_partition_properties("1")
        assert pp["is_empty"] is True
        assert pp["beginning_sequence_number"] == 2
        assert pp["last_enqueued_sequence_number"] == 1
        send(e, [b"new"], partition_id="1")
        got = receive(e, "1", "-1", 1)
        assert [(x.body_as_str(), x.sequence_number) for x in got] == [("new", 2)]
    finally:
        e.stop()


def test_size_retention_compacts_the_log(tmp_path):
    d = tmp_path / "data"
    args = ("--data-dir", str(d), "--retention-bytes", "20000")
    e = Emu(tmp_path, *args)
    body = b"z" * 1000
    with producer(e) as p:
        for _ in range(20):
            b = p.create_batch(partition_id="3")
            for _ in range(10):
                b.add(EventData(body))
            p.send_batch(b)
    with producer(e) as p:
        pp = p.get_partition_properties("3")
    assert pp["last_enqueued_sequence_number"] == 199
    assert pp["beginning_sequence_number"] > 150
    # what retention dropped does not stay on disk for ever
    assert (d / "eh1" / "3.log").stat().st_size < 200 * 1000
    e.stop(signal.SIGKILL)
    e = Emu(tmp_path, *args)
    try:
        with producer(e) as p:
            again = p.get_partition_properties("3")
        assert again["beginning_sequence_number"] == pp["beginning_sequence_number"]
        assert again["last_enqueued_sequence_number"] == 199
        assert again["last_enqueued_offset"] == pp["last_enqueued_offset"]
        n = 200 - pp["beginning_sequence_number"]
        got = receive(e, "3", "-1", n)
        assert [x.sequence_number for x in got] == list(range(pp["beginning_sequence_number"], 200))
    finally:
        e.stop()


def test_one_directory_one_emulator(tmp_path):
    d = tmp_path / "data"
    e = Emu(tmp_path, "--data-dir", str(d))
    try:
        r = subprocess.run([EHEMU, "--port", "0", "--data-dir", str(d)], capture_output=True,
                           text=True, timeout=10)
        assert r.returncode != 0
        assert "in use by another ehemu" in r.stderr
    finally:
        e.stop()
    wait_until(lambda: e.proc.poll() is not None, what="ehemu stopped")
