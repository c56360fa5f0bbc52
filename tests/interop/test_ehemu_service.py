"""ehemu behaving like the service where the SDK can see it: a pre-built SAS
with its expiry in the past (and one with an unknown key name) refused with 401;
retention by time and by size advancing begin_sequence_number; events sent to
<hub>/Publishers/<name> stamped with x-opt-publisher; the inactivity rules of
reference §1.3 (idle link detached with amqp:link:detach-forced, connections
without links closed with amqp:connection:forced)."""
import base64
import hashlib
import hmac
import time
import urllib.parse

import pytest
from azure.eventhub import EventData, EventHubProducerClient
from azure.eventhub._pyamqp import SendClient
from azure.eventhub._pyamqp._connection import Connection
from azure.eventhub._pyamqp.authentication import SASTokenAuth
from azure.eventhub._pyamqp.constants import ConnectionState, LinkState
from azure.eventhub._pyamqp.message import Message
from azure.eventhub._pyamqp.sasl import SASLAnonymousCredential
from azure.eventhub.exceptions import AuthenticationError, ConnectError, EventHubError

from conftest import wait_until
from emu_util import KEY, Emu, Watch, producer, receive, send


@pytest.fixture
def emu(tmp_path):
    e = Emu(tmp_path)
    yield e
    e.stop()


def sas(resource, key, se, name="RootManageSharedAccessKey"):
    # reference §3.1: HMAC-SHA256 with the key's UTF-8 bytes over sr "\n" se
    sr = urllib.parse.quote_plus(resource)
    mac = hmac.new(key.encode(), f"{sr}\n{se}".encode(), hashlib.sha256).digest()
    sig = urllib.parse.quote_plus(base64.b64encode(mac).decode())
    return f"SharedAccessSignature sr={sr}&sig={sig}&se={se}&skn={name}"


def sas_client(emu, token):
    cs = (f"Endpoint=sb://localhost:{emu.amqp};SharedAccessSignature={token};"
          "UseDevelopmentEmulator=true")
    return EventHubProducerClient.from_connection_string(cs, eventhub_name="eh1", retry_total=0)


def refused(client):
    with pytest.raises((AuthenticationError, ConnectError, EventHubError)) as ei:
        with client:
            client.get_eventhub_properties()
    return str(ei.value)


def test_prebuilt_sas_accepted(emu):
    with sas_client(emu, sas("sb://localhost/eh1", KEY, int(time.time()) + 600)) as p:
        assert p.get_eventhub_properties()["partition_ids"] == ["0", "1", "2", "3"]


def test_expired_sas_refused(emu):
    text = refused(sas_client(emu, sas("sb://localhost/eh1", KEY, int(time.time()) - 60)))
    assert "401" in text and "xpired" in text


def test_unknown_key_name_refused(emu):
    text = refused(sas_client(emu, sas("sb://localhost/eh1", KEY, int(time.time()) + 600,
                                       name="NoSuchRule")))
    assert "401" in text


def test_sas_for_another_hub_refused(emu):
    text = refused(sas_client(emu, sas("sb://localhost/otherhub", KEY, int(time.time()) + 600)))
    assert "401" in text or "404" in text or "not" in text.lower()


def props(emu, pid):
    with producer(emu) as p:
        return p.get_partition_properties(pid)


def test_retention_by_time(tmp_path):
    e = Emu(tmp_path, "--retention", "4s")
    try:
        send(e, [b"old-1", b"old-2"], partition_id="0")
        assert props(e, "0")["beginning_sequence_number"] == 0
        # dropped by the emulator's own clock, with nothing else happening
        wait_until(lambda: props(e, "0")["is_empty"], timeout=15, interval=0.5,
                   what="events older than 4s dropped")
        pp = props(e, "0")
        assert pp["beginning_sequence_number"] == 2
        assert pp["last_enqueued_sequence_number"] == 1
        send(e, [b"new"], partition_id="0")
        # numbering goes on; a position before the window starts at its beginning
        got = receive(e, "0", 0, 1, inclusive=True)
        assert [(x.body_as_str(), x.sequence_number) for x in got] == [("new", 2)]
    finally:
        e.stop()


def test_retention_by_size(tmp_path):
    e = Emu(tmp_path, "--retention-bytes", "5000")
    try:
        with producer(e) as p:
            for _ in range(4):
                b = p.create_batch(partition_id="1")
                for _ in range(5):
                    b.add(EventData(b"s" * 1000))
                p.send_batch(b)
        pp = props(e, "1")
        assert pp["last_enqueued_sequence_number"] == 19
        begin = pp["beginning_sequence_number"]
        assert 14 <= begin <= 16, begin  # about 5 events of ~1.1 kB fit in 5000 bytes
        got = receive(e, "1", "-1", 20 - begin)
        assert [x.sequence_number for x in got] == list(range(begin, 20))
    finally:
        e.stop()


def test_publisher_is_stamped(emu):
    auth = SASTokenAuth("sb://localhost/eh1", "sb://localhost/eh1", "RootManageSharedAccessKey",
                        KEY)
    c = SendClient(f"localhost:{emu.amqp}", f"amqp://localhost:{emu.amqp}/eh1/Publishers/dev-7",
                   auth=auth, use_tls=False)
    c.open()
    try:
        # a publisher's own x-opt-publisher is replaced by the one in the address
        for i in range(3):
            c.send_message(Message(data=[f"pub-{i}".encode()],
                                   message_annotations={b"x-opt-publisher": "forged"}))
    finally:
        c.close()
    found = []
    for pid in ("0", "1", "2", "3"):
        if not props(emu, pid)["is_empty"]:
            found += [(pid, x) for x in receive(emu, pid, "-1", 3)]
    assert len({pid for pid, _ in found}) == 1, "one publisher, one partition"
    assert [b"".join(x.body) for _, x in found] == [b"pub-0", b"pub-1", b"pub-2"]
    for _, x in found:
        pub = x.system_properties[b"x-opt-publisher"]
        assert pub in (b"dev-7", "dev-7")


def wait_closed(conn, timeout=10):
    t0 = time.monotonic()
    while conn.state != ConnectionState.END and time.monotonic() - t0 < timeout:
        try:
            conn.listen(wait=0.1)
        except Exception:  # the close arrives as an exception from listen
            break
    return conn._error, time.monotonic() - t0


def test_connection_without_a_link_is_closed(tmp_path):
    e = Emu(tmp_path, "--idle-first-link", "1s")
    try:
        c = Connection(f"amqp://localhost:{e.amqp}", sasl_credential=SASLAnonymousCredential(),
                       use_tls=False)
        c.open()
        err, _ = wait_closed(c)
        assert err is not None and "amqp:connection:forced" in str(err)
        assert "allowed 1000 milliseconds" in str(err)
    finally:
        e.stop()


def test_connection_left_without_links_is_closed(tmp_path):
    e = Emu(tmp_path, "--idle-connection", "1s", "--idle-first-link", "0s")
    try:
        c = Connection(f"amqp://localhost:{e.amqp}", sasl_credential=SASLAnonymousCredential(),
                       use_tls=False)
        c.open()
        s = c.create_session()
        s.begin()
        link = s.create_sender_link("$cbs")
        link.attach()
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.5:  # longer than the bound: a link keeps it open
            c.listen(wait=0.1)
        assert link.state == LinkState.ATTACHED and c.state == ConnectionState.OPENED
        link.detach(close=True)
        err, _ = wait_closed(c)
        assert err is not None and "amqp:connection:forced" in str(err)
    finally:
        e.stop()


def test_idle_receiver_detached(tmp_path):
    e = Emu(tmp_path, "--idle-link", "2s")
    try:
        w = Watch(e, partition="2")  # an empty partition: nothing flows
        wait_until(lambda: w.errors, timeout=20, what="idle receiver detached")
        assert "detach-forced" in w.text()
        w.close()
    finally:
        e.stop()
