"""What ehemu puts on the wire, read by a recording proxy (amqp_trace.py)
between a client and ehemu: no frame larger than the max-frame-size the
client announced, even for events far larger than a frame (ehdelta's client
and the SDK's pyamqp announce different sizes); a $cbs or $management request
settled before its reply goes out (uamqp-transport clients wait for the
request's outcome first); container-ids that differ from run to run."""
import json
import subprocess
import threading

from azure.eventhub import EventData, EventHubConsumerClient, EventHubProducerClient

import amqp_trace
from amqp_trace import ATTACH, C2S, DISPOSITION, OPEN, S2C, TRANSFER
from conftest import EHDELTA
from emu_util import KEY, Emu, producer

BIG = 1 << 20


def proxied_cs(proxy):
    return (f"Endpoint=sb://127.0.0.1:{proxy.port};SharedAccessKeyName=RootManageSharedAccessKey;"
            f"SharedAccessKey={KEY};UseDevelopmentEmulator=true")


def announced_max_frame(proxy):
    opens = proxy.snapshot(C2S, OPEN)
    assert opens, "no OPEN from the client"
    return [o.field(2) for o in opens]


def assert_frames_fit(proxy):
    # one value, however many connections the client opened
    limits = set(announced_max_frame(proxy))
    assert len(limits) == 1 and all(limits), limits
    limit = limits.pop()
    sent = proxy.snapshot(S2C)
    too_big = [f for f in sent if f.size > limit]
    assert not too_big, f"ehemu sent {too_big[:3]} over the client's max-frame-size {limit}"
    return limit, max(f.size for f in sent)


def test_no_frame_over_the_clients_max_frame_size(tmp_path):
    emu = Emu(tmp_path, "--max-message-size", str(4 * BIG))
    bodies = [b"a" * 66000, b"b" * BIG, b"c" * (3 * BIG)]
    try:
        with producer(emu) as p:
            for b in bodies:
                batch = p.create_batch(partition_id="0")
                batch.add(EventData(b))
                p.send_batch(batch)
        # ehdelta tail, through the proxy
        proxy = amqp_trace.Proxy(emu.amqp)
        cs = tmp_path / "cs"
        cs.write_text(proxied_cs(proxy) + ";EntityPath=eh1\n")
        r = subprocess.run([EHDELTA, "tail", "--connection-string-file", str(cs), "--partition",
                            "0", "--from", "earliest", "--count", "3", "--timeout", "20s"],
                           capture_output=True, timeout=120)
        proxy.close()
        assert r.returncode == 0, r.stderr.decode()
        got = [json.loads(l)["body"].encode() for l in r.stdout.decode().splitlines()]
        assert got == bodies
        limit, largest = assert_frames_fit(proxy)
        assert largest > 60000, "the events went out in small frames only; nothing was tested"
        # the SDK's pyamqp (1 MiB max-frame-size), through another proxy
        proxy = amqp_trace.Proxy(emu.amqp)
        c = EventHubConsumerClient.from_connection_string(proxied_cs(proxy),
                                                          consumer_group="$Default",
                                                          eventhub_name="eh1")
        got = []
        with c:
            done = threading.Event()

            def on_event(ctx, ev):
                if ev is not None:
                    got.append(b"".join(ev.body))
                    if len(got) == 3:
                        done.set()
            t = threading.Thread(target=c.receive, kwargs=dict(
                on_event=on_event, partition_id="0", starting_position="-1", max_wait_time=0.5),
                daemon=True)
            t.start()
            done.wait(60)
        t.join(10)
        proxy.close()
        assert got == bodies
        assert_frames_fit(proxy)
    finally:
        emu.stop()


def request_reply_order(proxy, node):
    """For each request on node ($cbs or $management): the index, among the
    frames ehemu sent, of its DISPOSITION and of its reply's TRANSFER."""
    c_attach = proxy.snapshot(C2S, ATTACH)
    s_attach = proxy.snapshot(S2C, ATTACH)
    # the client's request sender (role False, target node) and reply receiver
    req = {(a.channel, a.field(1)) for a in c_attach
           if a.field(2) is False and amqp_trace.address(a.field(6)) == node}
    names = {a.field(0) for a in c_attach
             if a.field(2) is True and amqp_trace.address(a.field(5)) == node}
    # ehemu's handle for the reply link: its attach of the same name, as sender
    reply = {a.field(1) for a in s_attach if a.field(0) in names and a.field(2) is False}
    assert req and reply, f"no {node} links in the trace"
    ids = [t.field(1) for t in proxy.snapshot(C2S, TRANSFER)
           if (t.channel, t.field(0)) in req and t.field(1) is not None]
    sent = proxy.snapshot(S2C)
    replies = [i for i, f in enumerate(sent) if f.code == TRANSFER and f.field(0) in reply]
    out = []
    for n, d in enumerate(ids):
        disp = [i for i, f in enumerate(sent) if f.code == DISPOSITION and f.field(0) is True
                and f.field(1) <= d <= (f.field(2) if f.field(2) is not None else f.field(1))]
        assert disp, f"request {d} on {node} was never settled"
        assert n < len(replies), f"request {d} on {node} got no reply"
        out.append((disp[0], replies[n]))
    return out


def test_requests_settled_before_their_replies(tmp_path):
    emu = Emu(tmp_path)
    proxy = amqp_trace.Proxy(emu.amqp)
    try:
        with EventHubProducerClient.from_connection_string(proxied_cs(proxy),
                                                           eventhub_name="eh1") as p:
            assert p.get_eventhub_properties()["partition_ids"] == ["0", "1", "2", "3"]
            assert p.get_partition_properties("2")["id"] == "2"
        for node in ("$cbs", "$management"):
            order = request_reply_order(proxy, node)
            assert order, node
            for disp, reply in order:
                assert disp < reply, f"{node}: reply (frame {reply}) before the disposition " \
                                     f"(frame {disp}) of its request"
    finally:
        proxy.close()
        emu.stop()


def test_container_ids_differ_between_runs(tmp_path):
    ids = []
    for _ in range(2):
        emu = Emu(tmp_path)
        proxy = amqp_trace.Proxy(emu.amqp)
        try:
            with EventHubProducerClient.from_connection_string(proxied_cs(proxy),
                                                               eventhub_name="eh1") as p:
                p.get_eventhub_properties()
            opens = proxy.snapshot(S2C, OPEN)
            assert opens
            ids.append(opens[0].field(0))
        finally:
            proxy.close()
            emu.stop()
    assert ids[0] != ids[1], f"both runs opened as {ids[0]}"
