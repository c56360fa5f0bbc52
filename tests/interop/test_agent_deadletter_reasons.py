"""Dead letters say what was wrong with the event (issue 19 item 14): a body
the official SDK sent as an AMQP map or list (AmqpAnnotatedMessage
value_body) is "body is an AMQP map, expected a data section with JSON", not
"invalid UTF-8"; a JSON object followed by more text names the first byte
after it and its offset, not "ended early"."""
import pytest
from azure.eventhub import EventData, EventHubProducerClient
from azure.eventhub.amqp import AmqpAnnotatedMessage
from deltalake import DeltaTable

from agentutil import Emu, run_agent


@pytest.fixture
def emu(tmp_path):
    e = Emu(tmp_path, partitions=1)
    yield e
    e.stop()


def test_dead_letter_reasons_name_what_was_wrong(emu, tmp_path):
    with EventHubProducerClient.from_connection_string(emu.conn_str(), eventhub_name=emu.hub,
                                                       **emu.client_kw()) as p:
        batch = p.create_batch()
        batch.add(EventData(b'{"id": "good", "amount": 1.5}'))
        batch.add(AmqpAnnotatedMessage(value_body={"id": "map", "amount": 2.5}))
        batch.add(AmqpAnnotatedMessage(value_body=["list", 3.5]))
        batch.add(EventData(b'{"id": "trailing", "amount": 4.5} x'))
        batch.add(EventData(b'{"id": "twice", "amount": 5.5}{"id": "again"}'))
        p.send_batch(batch)
    conf = tmp_path / "run.conf"
    conf.write_text(f"""[source]
connection_string_file = {emu.cs_file}
[schema]
columns = id STRING, amount DOUBLE
[sink raw]
path = {tmp_path}/raw
trigger = available-now
[dead_letter]
path = {tmp_path}/dead
""")
    p, _ = run_agent(conf, tmp_path)
    assert p.returncode == 0, p.stderr
    raw = DeltaTable(str(tmp_path / "raw")).to_pyarrow_table().to_pylist()
    assert [r["id"] for r in raw] == ["good"]
    dead = DeltaTable(str(tmp_path / "dead")).to_pyarrow_table().to_pylist()
    reasons = {r["sequence_number"]: (r["reason_code"], r["reason"]) for r in dead}
    assert len(reasons) == 4, dead
    want = {1: "body is an AMQP map, expected a data section with JSON",
            2: "body is an AMQP list, expected a data section with JSON",
            3: "unexpected 'x' after the JSON value at byte 34",
            4: "unexpected '{' after the JSON value at byte 30"}
    for seq, text in want.items():
        code, reason = reasons[seq]
        assert code == "not_json", (seq, code, reason)
        assert text in reason, (seq, reason)
        assert "UTF-8" not in reason and "ended early" not in reason, (seq, reason)
