"""ehdelta run against Blob storage it cannot take for granted: a SAS scoped
to one container (least privilege: it may list and write blobs, never
create a container), a missing container such a SAS cannot create, and a
storage endpoint that accepts connections and never answers (a request
fails after storage.timeout, each retry logged and counted, the run ends
with status 5 instead of hanging)."""
import datetime
import os
import re
import socket
import subprocess
import threading
import urllib.request

import pytest
from deltalake import DeltaTable

from agentutil import Emu, send_lines, transactions
from conftest import EHDELTA, free_port, wait_until
from delta_util import DEV_KEY, azurite, azurite_bin  # noqa: F401

COLUMNS = ("transaction_id STRING, customer_id STRING, amount DOUBLE, category STRING, "
           "timestamp TIMESTAMP, location STRING, payment_method STRING")


@pytest.fixture
def emu(tmp_path):
    e = Emu(tmp_path, partitions=2)
    yield e
    e.stop()


def conf_for(emu, tmp_path, table, storage):
    conf = tmp_path / "run.conf"
    conf.write_text(f"""
[source]
connection_string_file = {emu.cs_file}
starting_position = earliest
[schema]
columns = {COLUMNS}
[storage]
{storage}
[sink raw]
path = {table}
trigger = available-now
""")
    return conf


def container_sas(container, **perms):
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas
    exp = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    return generate_container_sas("devstoreaccount1", container, account_key=DEV_KEY,
                                  permission=ContainerSasPermissions(**perms), expiry=exp)


ALL = dict(read=True, add=True, create=True, write=True, delete=True, list=True)


def run(conf, *args, timeout=300):
    env = dict(os.environ, AZURE_STORAGE_ACCOUNT_KEY="", AZURE_STORAGE_SAS_TOKEN="")
    return subprocess.run([EHDELTA, "run", "--config", str(conf), *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def test_a_container_sas_writes_to_an_existing_container(azurite, emu, tmp_path):
    azurite.create_container("scoped")
    sas = container_sas("scoped", **ALL)
    (tmp_path / "sas").write_text(sas + "\n")
    conf = conf_for(emu, tmp_path, azurite.url("scoped", "raw"),
                    f"auth = sas\nsas_token_file = {tmp_path / 'sas'}")
    send_lines(emu, tmp_path, transactions(25))
    p = run(conf, "--available-now")
    assert p.returncode == 0, p.stderr
    assert "sig=" not in p.stderr and sas not in p.stderr
    rows = DeltaTable("az://scoped/raw", storage_options=azurite.delta_rs_options()) \
        .to_pyarrow_table().to_pylist()
    assert sorted(r["transaction_id"] for r in rows) == [f"T{i:07d}" for i in range(1, 26)]


def test_a_missing_container_the_sas_cannot_create_is_named(azurite, emu, tmp_path):
    sas = container_sas("notthere", **ALL)
    (tmp_path / "sas").write_text(sas + "\n")
    conf = conf_for(emu, tmp_path, azurite.url("notthere", "raw"),
                    f"auth = sas\nsas_token_file = {tmp_path / 'sas'}")
    p = run(conf, "--available-now")
    last = p.stderr.strip().splitlines()[-1]
    assert p.returncode == 4, p.stderr
    assert "container 'notthere' does not exist in storage account 'devstoreaccount1'" in last
    assert "SAS may not create it (HTTP 403" in last and "create permission" in last, last
    assert "sig=" not in p.stderr and sas not in p.stderr


class Silent:
    """A TCP server on loopback that accepts, reads, and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
                self.conns.append(c)  # held open, never written to
            except socket.timeout:
                pass

    def close(self):
        self.stop.set()
        self.thread.join()
        for c in self.conns:
            c.close()
        self.sock.close()


def test_a_storage_request_that_gets_no_answer_times_out(emu, tmp_path):
    silent = Silent()
    proc = None
    try:
        secret = "sv=2023-11-03&sr=c&sp=racwdl&se=2099-01-01T00%3A00%3A00Z&sig=SECRETSIG%3D"
        (tmp_path / "sas").write_text(secret + "\n")
        conf = conf_for(emu, tmp_path, f"http://127.0.0.1:{silent.port}/devstoreaccount1/c/raw",
                        f"auth = sas\nsas_token_file = {tmp_path / 'sas'}\n"
                        "timeout = 1 second\nconnect_timeout = 1 second\nretries = 2")
        mport = free_port()
        err = open(tmp_path / "err", "w+")
        env = dict(os.environ, AZURE_STORAGE_ACCOUNT_KEY="", AZURE_STORAGE_SAS_TOKEN="")
        proc = subprocess.Popen([EHDELTA, "run", "--config", str(conf), "--available-now",
                                 "--metrics-listen", f"127.0.0.1:{mport}"],
                                stdout=subprocess.DEVNULL, stderr=err, env=env)

        def timeouts_counted():
            if proc.poll() is not None:
                raise AssertionError("the run ended before its retries were scraped")
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics",
                                              timeout=2).read().decode()
            except OSError:
                return None
            m = re.search(r'^ehdelta_storage_retries_total\{reason="timeout"\} (\d+)', body, re.M)
            return m and int(m.group(1)) >= 1

        # each attempt lasts at least the 1 s timeout: the counter is seen while it runs
        wait_until(timeouts_counted, timeout=60, interval=0.05, what="a counted storage retry")
        # Before: 300 s per attempt, 9 attempts. Now: 3 attempts of ~1 s plus backoff.
        rc = proc.wait(timeout=120)
        err.seek(0)
        text = err.read()
    finally:
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait()
        silent.close()
    assert rc == 5, text
    retries = [l for l in text.splitlines() if "storage_retry" in l]
    assert len(retries) == 2, text
    for n, line in enumerate(retries, 1):
        assert "method=GET path=c?restype=container&comp=list&maxresults=1 " in line, line
        assert 'cause="Timeout was reached"' in line and f"attempt={n}/3" in line, line
        assert re.search(r"delay_ms=\d+", line), line
    last = text.strip().splitlines()[-1]
    assert "Timeout was reached (3 attempts)" in last, last
    assert "SECRETSIG" not in text and "sig=" not in text
