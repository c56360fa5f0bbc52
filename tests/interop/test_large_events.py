"""Events as large as Event Hubs allows (1 MB on Standard, 20 MB on
Dedicated), end to end through ehemu (--max-message-size): `ehdelta send`
sends 66,000 B, 1 MiB and 20 MiB events between small ones, `ehdelta tail`
and the official SDK read them back byte-exact; the SDK sends 1 MiB and
20 MiB events that `ehdelta tail` reads byte-exact; `ehdelta run` commits
every one of them, and the events behind them, to the raw table (the default
[schema] max_event_size is the largest event any tier accepts); with
max_event_size lowered to 1 MiB the 20 MiB events go to the dead-letter table,
whole, with a reason naming the limit, and the rest still to the raw table."""
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

        def run(tag, extra=""):
            root = tmp_path / tag
            conf = tmp_path / f"{tag}.conf"
            conf.write_text(f"""
[source]
connection_string_file = {emu.cs_file}
starting_position = earliest
[schema]
columns = transaction_id STRING, note STRING
metadata = partition, sequence_number
{extra}
[sink raw]
path = {root}/raw
[dead_letter]
path = {root}/dead
""")
            p, _ = agentutil.run_agent(conf, tmp_path, "--available-now", tag=tag, timeout=600)
            assert p.returncode == 0, p.stderr
            raw = DeltaTable(str(root / "raw")).to_pyarrow_table().to_pylist()
            dead_path = root / "dead"
            dead = (DeltaTable(str(dead_path)).to_pyarrow_table().to_pylist()
                    if (dead_path / "_delta_log").exists() else [])
            return {r["transaction_id"]: r for r in raw}, len(raw), dead

        def check(limit, by_id, n_raw, dead):
            small = [b for b in ours + sdks if len(b) <= limit]
            for b in small:
                tag = json.loads(b)["transaction_id"]
                assert tag in by_id, f"{tag} not in the raw table"
                assert len(by_id[tag]["note"]) == len(b) - len(tag) - 31
            assert n_raw == len(small)
            big = [b for b in ours + sdks if len(b) > limit]
            assert sorted(bytes(d["body"]) for d in dead) == sorted(big), \
                [(d["reason"], len(d["body"])) for d in dead]
            assert all(f"than the limit {limit}" in d["reason"] for d in dead), \
                [d["reason"] for d in dead]

        check(20 * MIB, *run("default"))
        check(MIB, *run("bounded", "max_event_size = 1048576"))
    finally:
        emu.stop()
