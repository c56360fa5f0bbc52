"""ehemu --config: the official emulator's Config.json. Two hubs with different
partition counts and consumer groups, served to the official SDK; the shipped
sample loads; a bad file gets one clear line per problem and exit status 2."""
import json
import subprocess
import threading

import pytest
from azure.eventhub import EventData, EventHubConsumerClient, EventHubProducerClient
from azure.eventhub.exceptions import EventHubError

from conftest import EHEMU
from emu_util import Emu, receive


def config(entities, **ns):
    nsc = {"Type": "EventHub", "Name": "emulatorNs1", "Entities": entities}
    nsc.update(ns)
    return {"UserConfig": {"NamespaceConfig": [nsc], "LoggingConfig": {"Type": "File"}}}


TWO_HUBS = config([
    {"Name": "orders", "PartitionCount": "2",
     "ConsumerGroups": [{"Name": "billing"}, {"Name": "audit"}]},
    {"Name": "telemetry", "PartitionCount": 6, "ConsumerGroups": [{"Name": "dash"}]},
])


@pytest.fixture
def emu(tmp_path):
    f = tmp_path / "Config.json"
    f.write_text(json.dumps(TWO_HUBS))
    e = Emu(tmp_path, "--config", str(f))
    yield e
    e.stop()


def prod(emu, hub, **kw):
    return EventHubProducerClient.from_connection_string(emu.conn_str(), eventhub_name=hub, **kw)


def test_two_hubs_partition_counts(emu):
    with prod(emu, "orders") as p:
        assert p.get_eventhub_properties()["partition_ids"] == ["0", "1"]
    with prod(emu, "telemetry") as p:
        assert p.get_eventhub_properties()["partition_ids"] == [str(i) for i in range(6)]
        b = p.create_batch(partition_id="5")
        b.add(EventData(b"t5"))
        p.send_batch(b)
    with prod(emu, "orders") as p:
        b = p.create_batch(partition_id="1")
        b.add(EventData(b"o1"))
        p.send_batch(b)
        # partition 5 exists on telemetry only
        with pytest.raises((EventHubError, ValueError, KeyError)):
            p.get_partition_properties("5")
    assert [e.body_as_str() for e in receive(emu, "5", "-1", 1, hub="telemetry")] == ["t5"]
    assert [e.body_as_str() for e in receive(emu, "1", "-1", 1, hub="orders")] == ["o1"]
    # the hubs' partitions are separate logs
    assert receive(emu, "1", "-1", 1, hub="telemetry", timeout=3) == []


def test_consumer_groups_per_hub(emu):
    with prod(emu, "orders") as p:
        b = p.create_batch(partition_id="0")
        b.add(EventData(b"g"))
        p.send_batch(b)
    for group in ("billing", "audit", "$Default"):
        got = receive(emu, "0", "-1", 1, hub="orders", group=group)
        assert [e.body_as_str() for e in got] == ["g"], group
    c = EventHubConsumerClient.from_connection_string(
        emu.conn_str(), consumer_group="dash", eventhub_name="orders", retry_total=0)
    errors = []
    t = threading.Thread(target=c.receive, kwargs=dict(
        on_event=lambda ctx, ev: None, on_error=lambda ctx, err: errors.append(err),
        partition_id="0", starting_position="-1", max_wait_time=0.5), daemon=True)
    t.start()
    t.join(10)
    if t.is_alive():
        c.close()
        t.join(10)
    c.close()
    text = " ".join(repr(e) + str(e) for e in errors)
    assert "not-found" in text or "could not be found" in text


def test_default_hub_absent_with_config(emu):
    p = prod(emu, "eh1", retry_total=0)
    with pytest.raises(EventHubError) as ei:
        with p:
            p.get_eventhub_properties()
    assert "not-found" in repr(ei.value) or "could not be found" in str(ei.value)


def test_shipped_sample_loads(tmp_path):
    # EventHub-Emulator/Config/Config.json of the official installer, verbatim
    sample = """{
    "UserConfig": {
        "NamespaceConfig": [
        {
            "Type": "EventHub",
            "Name": "emulatorNs1",
            "Entities": [
            {
                "Name": "eh1",
                "PartitionCount": "2",
                "ConsumerGroups": [
                {
                    "Name": "cg1"
                }
                ]
            }
            ]
        }
        ],
        "LoggingConfig": {
            "Type": "File"
        }
    }
}"""
    f = tmp_path / "Config.json"
    f.write_text(sample)
    e = Emu(tmp_path, "--config", str(f))
    try:
        with prod(e, "eh1") as p:
            assert p.get_eventhub_properties()["partition_ids"] == ["0", "1"]
        assert receive(e, "1", "-1", 1, group="cg1", timeout=2) == []
    finally:
        e.stop()


def run_bad(tmp_path, doc):
    f = tmp_path / "bad.json"
    f.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    r = subprocess.run([EHEMU, "--port", "0", "--config", str(f)], capture_output=True,
                       text=True, timeout=10)
    return r.returncode, r.stderr.strip().splitlines()


def test_bad_config_one_line_per_problem(tmp_path):
    doc = config([
        {"Name": "orders", "PartitionCount": "40", "ConsumerGroups": [{"Name": "$Default"}]},
        {"Name": "Orders", "PartitionCount": 2},
        {"Name": "-bad", "PartitionCount": "x", "ConsumerGroups": [{"Name": "a"}, {"Name": "A"}]},
    ], Type="Kafka")
    rc, lines = run_bad(tmp_path, doc)
    assert rc == 2
    assert all(l.startswith("ehemu: ") and "bad.json: " in l for l in lines), lines
    text = "\n".join(lines)
    expect = [
        "NamespaceConfig[0].Type: expected \"EventHub\"",
        "Entities[0].PartitionCount: expected a partition count from 1 to 32",
        "Entities[0].ConsumerGroups[0]: '$Default' is created for every event hub",
        "Entities[1]: event hub 'Orders' is declared twice",
        "Entities[2].Name: expected an event hub name",
        "Entities[2].PartitionCount: expected a partition count",
        "Entities[2].ConsumerGroups[1]: consumer group 'A' is declared twice",
    ]
    for want in expect:
        assert sum(want in l for l in lines) == 1, (want, text)
    assert len(lines) == len(expect), text


@pytest.mark.parametrize("doc,want", [
    ("{not json", "expected JSON"),
    ({"UserConfig": {"NamespaceConfig": [], "LoggingConfig": {"Type": "File"}}},
     "expected exactly 1 namespace, got 0"),
    ({"UserConfig": {"NamespaceConfig": [{"Entities": [{"Name": "a", "PartitionCount": 1}]}]}},
     "UserConfig.LoggingConfig: required, missing"),
    (config([]), "expected 1 to 10 event hubs, got 0"),
    (config([{"Name": "h"}]), "Entities[0].PartitionCount: required, missing"),
    (config([{"Name": f"h{i}", "PartitionCount": 1} for i in range(11)]),
     "expected 1 to 10 event hubs, got 11"),
    (config([{"Name": "a/b", "PartitionCount": 1}]), "cannot be told apart"),
    ({"Other": 1}, "UserConfig: required, missing"),
])
def test_bad_config_cases(tmp_path, doc, want):
    rc, lines = run_bad(tmp_path, doc)
    assert rc == 2
    assert any(want in l for l in lines), lines


def test_missing_config_file(tmp_path):
    r = subprocess.run([EHEMU, "--port", "0", "--config", str(tmp_path / "nope.json")],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2
    assert "nope.json" in r.stderr and "cannot open" in r.stderr
