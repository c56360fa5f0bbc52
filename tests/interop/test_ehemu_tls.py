"""ehemu's AMQPS listener (TLS by OpenSSL outside Proton) driven by the official
azure-eventhub SDK: with the throw-away CA of scripts/mkcerts as
connection_verify it sends and receives; without that CA the certificate is
refused; plain AMQP keeps working beside it."""
import pytest
from azure.eventhub import EventData, EventHubProducerClient
from azure.eventhub.exceptions import ConnectError, EventHubError

from emu_util import Emu, make_certs, producer, receive, send


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def emu(tmp_path, certs):
    e = Emu(tmp_path, certs=certs, tls=True)
    yield e
    e.stop()


def test_readiness_line_names_both_ports(emu):
    assert emu.amqps and emu.amqp and emu.amqps != emu.amqp


def test_send_and_receive_over_amqps(emu):
    bodies = [f"tls-{i}".encode() for i in range(5)]
    send(emu, bodies, partition_id="1")
    send(emu, [b"keyed"], partition_key="pk1")  # pk1 hashes to partition 1 of 4
    with producer(emu) as p:
        assert p.get_eventhub_properties()["partition_ids"] == ["0", "1", "2", "3"]
        assert p.get_partition_properties("1")["last_enqueued_sequence_number"] == 5
    got = receive(emu, "1", "-1", 6)
    assert [e.body_as_str() for e in got] == [b.decode() for b in bodies] + ["keyed"]
    assert [e.sequence_number for e in got] == list(range(6))


def test_untrusted_certificate_refused(emu):
    p = EventHubProducerClient.from_connection_string(
        emu.conn_str(), eventhub_name="eh1", retry_total=0, **emu.client_kw(verify=False))
    with pytest.raises((ConnectError, EventHubError)) as ei:
        with p:
            p.get_eventhub_properties()
    assert "CERTIFICATE_VERIFY_FAILED" in str(ei.value) or "certificate" in str(ei.value)
    # the emulator keeps serving after the failed handshake
    send(emu, [b"after"], partition_id="0")
    assert [e.body_as_str() for e in receive(emu, "0", "-1", 1)] == ["after"]


def test_plain_port_beside_tls(emu):
    emu.tls = False
    send(emu, [b"plain"], partition_id="2")
    emu.tls = True
    assert [e.body_as_str() for e in receive(emu, "2", "-1", 1)] == ["plain"]


def test_tls_flags_validated(tmp_path, certs):
    import subprocess
    from conftest import EHEMU
    r = subprocess.run([EHEMU, "--port", "0", "--tls-port", "0", "--cert",
                        str(certs / "server.pem")], capture_output=True, text=True, timeout=10)
    assert r.returncode != 0 and "--key" in r.stderr
    r = subprocess.run([EHEMU, "--port", "0", "--tls-port", "0", "--cert", str(certs / "ca.key"),
                        "--key", str(certs / "server.key")], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode != 0 and "--cert" in r.stderr and len(r.stderr.strip().splitlines()) == 1
