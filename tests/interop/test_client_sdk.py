"""ehdelta send / tail against the official azure-eventhub SDK, both through
one ehemu on loopback: what `ehdelta send` sends the SDK consumer reads with
body, properties, content type, partition and partition key intact; what the
SDK producer sends (batches by partition key, to a partition, round robin,
with properties) `ehdelta tail` prints with the sequence numbers, offsets and
enqueued times the SDK consumer reports for the same events; `ehdelta status`
agrees with the SDK's hub and partition properties."""
import datetime
import json
import os
import subprocess
import threading
import time

import pytest
from azure.eventhub import EventData, EventHubConsumerClient, EventHubProducerClient

from conftest import EHDELTA, EHEMU, wait_until

KEY = "Y2xpZW50LXNkay1pbnRlcm9wLWtleS1vbmx5LWZvci10ZXN0cw=="


class Emu:
    def __init__(self, tmp_path):
        self.log = open(tmp_path / "ehemu.log", "w+")
        env = dict(os.environ, EHEMU_KEY=KEY)
        self.proc = subprocess.Popen([EHEMU, "--port", "0", "--partitions", "4"], stderr=self.log,
                                     env=env)
        self.amqp = None

        def ready():
            self.log.seek(0)
            for line in self.log.read().splitlines():
                if line.startswith("ehemu: ready"):
                    kv = dict(p.split("=") for p in line.split()[2:])
                    self.amqp = int(kv["amqp"])
                    return True
            assert self.proc.poll() is None, "ehemu exited"
            return False

        wait_until(ready, timeout=10, what="ehemu ready")
        self.cs = (f"Endpoint=sb://127.0.0.1:{self.amqp}/;SharedAccessKeyName=RootManageSharedAccessKey;"
                   f"SharedAccessKey={KEY};EntityPath=eh1;UseDevelopmentEmulator=true")
        self.cs_file = tmp_path / "cs"
        self.cs_file.write_text(self.cs + "\n")
        os.chmod(self.cs_file, 0o600)

    def ehdelta(self, cmd, *args, stdin=None, timeout=60):
        r = subprocess.run([EHDELTA, cmd, "--connection-string-file", str(self.cs_file),
                            "--timeout", "20s", *args], input=stdin, capture_output=True,
                           timeout=timeout)
        assert r.returncode == 0, f"ehdelta {cmd} {args}: rc={r.returncode}: {r.stderr.decode()}"
        return r.stdout.decode()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


@pytest.fixture
def emu(tmp_path):
    e = Emu(tmp_path)
    yield e
    e.stop()


def sdk_read_all(emu, expect, timeout=20):
    """Every event of every partition from the start, via the SDK consumer (one
    per partition, so no load balancing delays the claim): waits for `expect`
    events, returns [(partition_id, EventData)]."""
    got = []
    lock = threading.Lock()
    done = threading.Event()
    clients, threads = [], []

    def on_event(ctx, ev):
        if ev is None:
            return
        with lock:
            got.append((ctx.partition_id, ev))
            if len(got) >= expect:
                done.set()

    for pid in ("0", "1", "2", "3"):
        c = EventHubConsumerClient.from_connection_string(emu.cs, consumer_group="$Default")
        t = threading.Thread(target=c.receive, kwargs=dict(
            on_event=on_event, partition_id=pid, starting_position="-1", max_wait_time=0.5),
            daemon=True)
        t.start()
        clients.append(c)
        threads.append(t)
    done.wait(timeout)
    for c in clients:
        c.close()
    for t in threads:
        t.join(10)
    assert len(got) == expect, f"SDK consumer read {len(got)} events, expected {expect}"
    return got


def text(v):
    return v.decode() if isinstance(v, bytes) else v


def props_of(ev):
    return {text(k): text(v) for k, v in (ev.properties or {}).items()}


def test_ehdelta_send_read_by_sdk(emu, tmp_path):
    lines = [json.dumps({"n": i, "name": f"event-{i}", "utf8": "żółw ✓"}, ensure_ascii=False)
             for i in range(50)]
    inp = tmp_path / "in.jsonl"
    inp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = emu.ehdelta("send", "--input", str(inp), "--partition-key", "pk-abc",
                      "--property", "source=pos", "--property", "region=eu-west",
                      "--content-type", "application/json", "--no-progress")
    assert "accepted 50, failed 0" in out
    out = emu.ehdelta("send", "--count", "20", "--seed", "4", "--partition", "2",
                      "--property", "kind=generated", "--no-progress")
    assert "accepted 20, failed 0" in out
    out = emu.ehdelta("send", "--count", "40", "--seed", "5", "--partition-key-field",
                      "customer_id", "--no-progress")
    assert "accepted 40, failed 0" in out
    got = sdk_read_all(emu, 110)

    keyed = [(p, e) for p, e in got if text(e.partition_key) == "pk-abc"]
    assert len(keyed) == 50
    assert len({p for p, _ in keyed}) == 1, "one partition key, one partition"
    keyed.sort(key=lambda pe: pe[1].sequence_number)
    assert [e.body_as_str(encoding="UTF-8") for _, e in keyed] == lines
    for _, e in keyed:
        assert props_of(e) == {"source": "pos", "region": "eu-west"}
        assert e.content_type == "application/json"

    fixed = [(p, e) for p, e in got if props_of(e).get("kind") == "generated"]
    assert len(fixed) == 20 and {p for p, _ in fixed} == {"2"}
    for _, e in fixed:
        assert e.partition_key is None
        body = json.loads(e.body_as_str())
        assert set(body) == {"transaction_id", "customer_id", "amount", "category", "timestamp",
                             "location", "payment_method"}

    by_field = [(p, e) for p, e in got if not props_of(e) and e.partition_key is not None]
    assert len(by_field) == 40
    where = {}
    for p, e in by_field:
        key = text(e.partition_key)
        assert key == json.loads(e.body_as_str())["customer_id"]
        assert where.setdefault(key, p) == p, f"key {key} in two partitions"


def iso_ms(dt):
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{dt.microsecond // 1000:03d}Z"


def test_sdk_send_read_by_tail(emu):
    # batches of at most 10: ehemu refuses an envelope of more than 16
    # sections, envelope sections included (decode-error) -- an emulator
    # limit, not the service's
    p = EventHubProducerClient.from_connection_string(emu.cs)
    with p:
        for round_ in range(3):
            for third in range(3):
                b = p.create_batch(partition_key=f"key-{round_}")
                for i in range(third * 10, third * 10 + 10):
                    ev = EventData(f"keyed {round_}/{i}")
                    ev.properties = {"round": round_, "i": i, "label": f"r{round_}", "ok": True}
                    b.add(ev)
                p.send_batch(b)
                time.sleep(0.01)  # distinct enqueued times between batches
        for lo, hi in ((0, 10), (10, 20), (20, 25)):
            b = p.create_batch(partition_id="3")
            for i in range(lo, hi):
                b.add(EventData(json.dumps({"fixed": i})))
            p.send_batch(b)
        for lo in (0, 10):
            b = p.create_batch()
            for i in range(lo, lo + 10):
                b.add(EventData(b"\x00\x01binary" + bytes([i])))
            p.send_batch(b)
    total = 90 + 25 + 20
    sdk = {(pid, e.sequence_number): e for pid, e in sdk_read_all(emu, total)}
    assert len(sdk) == total

    out = emu.ehdelta("tail", "--from", "earliest", "--to-end", "--body", "base64")
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == total
    import base64
    seen = set()
    for r in rows:
        key = (r["partition"], r["sequence_number"])
        assert key not in seen
        seen.add(key)
        e = sdk[key]
        assert r["offset"] == str(e.offset), key
        assert r["enqueued_time"] == iso_ms(e.enqueued_time), key
        assert r["partition_key"] == (text(e.partition_key) if e.partition_key else None), key
        assert base64.b64decode(r["body"]) == b"".join(e.body), key
        want = {text(k): v for k, v in (e.properties or {}).items()}
        want = {k: (text(v) if isinstance(v, bytes) else v) for k, v in want.items()}
        assert r["properties"] == want, key
    assert seen == set(sdk)
    # per partition: the sequence numbers tail printed are 0..n-1, in order
    parts = {}
    for r in rows:
        parts.setdefault(r["partition"], []).append(r["sequence_number"])
    for pid, seqs in parts.items():
        assert seqs == list(range(len(seqs))), pid
    assert len(parts["3"]) >= 25

    # a position taken from the SDK's view: tail from the SDK's offset of
    # event 10 in partition 3 (exclusive) starts at sequence number 11
    off10 = sdk[("3", 10)].offset
    out = emu.ehdelta("tail", "--partition", "3", "--from", f"offset:{off10}", "--count", "1")
    assert json.loads(out)["sequence_number"] == 11


def test_status_matches_sdk_properties(emu):
    with EventHubProducerClient.from_connection_string(emu.cs) as p:
        for pid, n in (("0", 7), ("2", 3)):
            b = p.create_batch(partition_id=pid)
            for i in range(n):
                b.add(EventData(f"s{i}"))
            p.send_batch(b)
        hub = p.get_eventhub_properties()
        parts = {pid: p.get_partition_properties(pid) for pid in hub["partition_ids"]}
    st = json.loads(emu.ehdelta("status", "--json"))
    assert st["hub"] == hub["eventhub_name"]
    assert st["partition_ids"] == hub["partition_ids"]
    assert st["created_at"] == iso_ms(hub["created_at"])
    assert len(st["partitions"]) == len(parts)
    for row in st["partitions"]:
        pp = parts[row["partition"]]
        assert row["begin_sequence_number"] == pp["beginning_sequence_number"]
        assert row["last_enqueued_sequence_number"] == pp["last_enqueued_sequence_number"]
        assert row["is_empty"] == pp["is_empty"]
        if not pp["is_empty"]:
            assert row["last_enqueued_offset"] == str(pp["last_enqueued_offset"])
            assert row["last_enqueued_time"] == iso_ms(pp["last_enqueued_time_utc"])
