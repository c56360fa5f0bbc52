"""Shared helpers for the ehemu suites: start ehemu on free ports (plain AMQP,
and AMQPS when given a certificate directory made by scripts/mkcerts), wait for
its readiness line, talk to its control channel, and drive it with the official
azure-eventhub SDK."""
import itertools
import os
import signal
import socket
import subprocess
import threading

from azure.eventhub import EventData, EventHubConsumerClient, EventHubProducerClient, TransportType

from conftest import EHEMU, TOP_SRCDIR, wait_until

KEY = "dGVzdC1rZXktZm9yLWVoZW11LW9ubHk="
_runs = itertools.count()


def make_certs(directory):
    """A throw-away CA and localhost server certificate (scripts/mkcerts)."""
    subprocess.run([os.path.join(TOP_SRCDIR, "scripts", "mkcerts"), str(directory)], check=True,
                   stdout=subprocess.DEVNULL)
    return directory


class Emu:
    """One ehemu process. certs: a mkcerts directory, to serve AMQPS as well;
    tls: make the SDK helpers below connect over AMQPS (verifying with ca.pem)."""

    def __init__(self, tmp_path, *args, certs=None, tls=False):
        self.logpath = tmp_path / f"ehemu{next(_runs)}.log"
        self.log = open(self.logpath, "w+")
        env = dict(os.environ, EHEMU_KEY=KEY)
        argv = [EHEMU, "--port", "0", *args]
        if certs is not None:
            argv += ["--tls-port", "0", "--cert", str(certs / "server.pem"),
                     "--key", str(certs / "server.key")]
        self.certs, self.tls = certs, tls
        self.proc = subprocess.Popen(argv, stderr=self.log, env=env)
        self.amqp = self.control = self.amqps = None

        def ready():
            self.log.seek(0)
            for line in self.log.read().splitlines():
                if line.startswith("ehemu: ready"):
                    kv = dict(p.split("=") for p in line.split()[2:])
                    self.amqp, self.control = int(kv["amqp"]), int(kv["control"])
                    self.amqps = int(kv["amqps"]) if "amqps" in kv else None
                    return True
            assert self.proc.poll() is None, "ehemu exited: " + self.text()
            return False

        wait_until(ready, timeout=10, what="ehemu ready")

    def text(self):
        self.log.seek(0)
        return self.log.read()

    def conn_str(self, key=KEY):
        if self.tls:
            # AMQPS: the SDK dials custom_endpoint_address (client_kw) instead
            return (f"Endpoint=sb://localhost/;SharedAccessKeyName=RootManageSharedAccessKey;"
                    f"SharedAccessKey={key}")
        return (f"Endpoint=sb://localhost:{self.amqp};SharedAccessKeyName=RootManageSharedAccessKey;"
                f"SharedAccessKey={key};UseDevelopmentEmulator=true")

    def client_kw(self, verify=True):
        """SDK keyword arguments: over AMQPS the port comes from
        custom_endpoint_address (the SDK ignores an Endpoint port with TLS) and
        the CA from connection_verify."""
        if not self.tls:
            return {}
        kw = dict(custom_endpoint_address=f"sb://localhost:{self.amqps}",
                  transport_type=TransportType.Amqp)
        if verify:
            kw["connection_verify"] = str(self.certs / "ca.pem")
        return kw

    def ctl(self, line):
        with socket.create_connection(("127.0.0.1", self.control)) as s:
            s.sendall(line.encode() + b"\n")
            return s.makefile().readline().strip()

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(10)
        self.log.close()
        return rc


def producer(emu, **kw):
    return EventHubProducerClient.from_connection_string(emu.conn_str(), eventhub_name="eh1",
                                                         **emu.client_kw(), **kw)


def consumer(emu, group="$Default", hub="eh1", **kw):
    return EventHubConsumerClient.from_connection_string(
        emu.conn_str(), consumer_group=group, eventhub_name=hub, **emu.client_kw(), **kw)


def send(emu, bodies, **batch_kw):
    with producer(emu) as p:
        b = p.create_batch(**batch_kw)
        for body in bodies:
            b.add(EventData(body))
        p.send_batch(b)


def receive(emu, partition, starting_position, n, inclusive=False, timeout=15, group="$Default",
            owner_level=None, hub="eh1"):
    got = []
    done = threading.Event()
    c = consumer(emu, group, hub=hub)

    def on_event(ctx, ev):
        if ev is not None:
            got.append(ev)
            if len(got) >= n:
                done.set()

    kw = {} if owner_level is None else {"owner_level": owner_level}
    t = threading.Thread(target=c.receive, kwargs=dict(
        on_event=on_event, partition_id=partition, starting_position=starting_position,
        starting_position_inclusive=inclusive, max_wait_time=0.5, **kw), daemon=True)
    t.start()
    done.wait(timeout)
    c.close()
    t.join(10)
    return got


class Watch:
    """A receiver in a thread that records events and the error that ended it."""

    def __init__(self, emu, partition="0", owner_level=None, **kw):
        self.events, self.errors = [], []
        self.client = consumer(emu, retry_total=0, **kw)
        args = dict(on_event=self._ev, on_error=self._err, partition_id=partition,
                    starting_position="-1", max_wait_time=0.5)
        if owner_level is not None:
            args["owner_level"] = owner_level
        self.thread = threading.Thread(target=self.client.receive, kwargs=args, daemon=True)
        self.thread.start()

    def _ev(self, ctx, ev):
        if ev is not None:
            self.events.append(ev)

    def _err(self, ctx, err):
        self.errors.append(err)

    def text(self):
        return " ".join(repr(e) + str(e) for e in self.errors)

    def close(self):
        self.client.close()
        self.thread.join(10)


