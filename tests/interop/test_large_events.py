"""Events as large as Event Hubs allows (1 MB on Standard, 20 MB on
Dedicated), end to end through ehemu (--max-message-size): `ehdelta send`
sends 66,000 B, 1 MiB and 20 MiB events between small ones, `ehdelta tail`
and the official SDK read them back byte-exact; the SDK sends 1 MiB and
20 MiB events that `ehdelta tail` reads byte-exact; `ehdelta run` commits
every one of them to Delta tables (the raw table, or the dead-letter table,
naming the limit, for a string beyond 256 KiB or a body beyond 4 MiB) and
the events behind them too."""
import json
import subprocess

from azure.eventhub import EventData
from deltalake import DeltaTable

import agentutil
import emu_util
from conftest import EHDELTA

MIB = 1 << 20


def event(tag, size):
    """A JSON object of exactly size bytes: {"transaction_id":tag,"note":"xx…"}."""
    head = '{"transaction_id":"%s","note":"' % tag
    return (head + "x" * (size - len(head) - 2) + '"}').encode()


def tail(emu, partition, count):
    r = subprocess.run([EHDELTA, "tail", "--connection-string-file", str(emu.cs_file),
                        "--partition", partition, "--from", "earliest", "--count", str(count),
                        "--timeout", "60s"], capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode()
    return [json.loads(l)["body"].encode() for l in r.stdout.decode().splitlines()]


def test_large_events_end_to_end(tmp_path):
    emu = agentutil.Emu(tmp_path, hub="tx", partitions=2,
                        extra=("--max-message-size", str(21 * MIB)))
    ours = [event("S1", 100), event("L66000", 66000), event("L1MiB", MIB), event("S2", 120),
            event("L20MiB", 20 * MIB), event("S3", 140)]
    sdks = [event("K1MiB", MIB), event("K20MiB", 20 * MIB), event("S4", 160)]
    try:
        agentutil.send_lines(emu, tmp_path, ours, extra=("--partition", "0"))
        assert tail(emu, "0", len(ours)) == ours

        got = emu_util.receive(emu, "0", "-1", len(ours), inclusive=True, timeout=120, hub="tx")
        assert [b"".join(e.body) for e in got] == ours

        with emu_util.EventHubProducerClient.from_connection_string(
                emu.conn_str(), eventhub_name="tx") as p:
            for b in sdks:
                batch = p.create_batch(partition_id="1")
                batch.add(EventData(b))
                p.send_batch(batch)
        assert tail(emu, "1", len(sdks)) == sdks

        root = tmp_path / "lake"
        conf = tmp_path / "large.conf"
        conf.write_text(f"""
[source]
connection_string_file = {emu.cs_file}
starting_position = earliest
[schema]
columns = transaction_id STRING, note STRING
metadata = partition, sequence_number
[sink raw]
path = {root}/raw
[dead_letter]
path = {root}/dead
""")
        p, _ = agentutil.run_agent(conf, tmp_path, "--available-now", timeout=600)
        assert p.returncode == 0, p.stderr
        raw = DeltaTable(str(root / "raw")).to_pyarrow_table().to_pylist()
        dead = DeltaTable(str(root / "dead")).to_pyarrow_table().to_pylist()
        by_id = {r["transaction_id"]: r for r in raw}
        for b in ours + sdks:
            tag = json.loads(b)["transaction_id"]
            if len(b) < 256 * 1024:
                assert tag in by_id, f"{tag} not in the raw table"
                assert len(by_id[tag]["note"]) == len(b) - len(tag) - 31
        big = [b for b in ours + sdks if len(b) >= 256 * 1024]
        assert len(raw) == len(ours) + len(sdks) - len(big)
        assert sorted(bytes(d["body"]) for d in dead) == sorted(big), \
            [(d["reason"], len(d["body"])) for d in dead]
        assert all(" than the limit " in d["reason"] for d in dead), [d["reason"] for d in dead]
    finally:
        emu.stop()
