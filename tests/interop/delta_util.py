"""Shared helpers for the Delta interop suites: paths of the built tools,
an Azurite started per test module on a free loopback port (polled for
readiness, killed at teardown), and delta-rs storage options for it."""
import json
import os
import re
import signal
import subprocess
import tempfile
import time

import pytest

BUILD = os.environ.get("EHDELTA_TOP_BUILDDIR", os.path.join(os.path.dirname(__file__), "..", ".."))
SRC = os.environ.get("EHDELTA_TOP_SRCDIR", os.path.join(os.path.dirname(__file__), "..", ".."))
DL_TOOL = os.path.join(BUILD, "tests", "tools", "dl_tool")
EHDELTA = os.path.join(BUILD, "ehdelta")
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
ROWS = 5


def azurite_bin():
    for p in (os.environ.get("EHDELTA_AZURITE"),
              os.path.join(SRC, ".tools", "node", "node_modules", ".bin", "azurite-blob"),
              "/work/main/.tools/node/node_modules/.bin/azurite-blob"):
        if p and os.path.exists(p):
            return p
    return None


def run(args, env=None, check=True, timeout=300):
    e = dict(os.environ)
    if env:
        e.update(env)
    p = subprocess.run(args, capture_output=True, text=True, env=e, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"{args[:3]} exited {p.returncode}: {p.stderr.strip()}")
    return p


def tool(*args, env=None, check=True, timeout=300):
    return run([DL_TOOL, *map(str, args)], env=env, check=check, timeout=timeout)


def snapshot(url, env=None):
    return json.loads(tool("snapshot", url, env=env).stdout)


def expected_ids(writer, commits, rows=ROWS):
    return {writer * 10**9 + c * rows + r for c in range(commits) for r in range(rows)}


class Azurite:
    def __init__(self, extra=(), env=None):
        self.dir = tempfile.mkdtemp(prefix="ed-azurite-")
        self.log = open(os.path.join(self.dir, "log"), "w+")
        args = [azurite_bin(), "--blobHost", "127.0.0.1", "--blobPort", "0", "--location", self.dir,
                "--skipApiVersionCheck", "--loose", "--disableTelemetry", *extra]
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.time() + 60
        self.port = None
        while time.time() < deadline and self.port is None:
            self.log.seek(0)
            m = re.search(r"listens on https?://127\.0\.0\.1:(\d+)", self.log.read())
            if m:
                self.port = int(m.group(1))
                break
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        if self.port is None:
            self.stop()
            raise RuntimeError("azurite did not start")
        self.scheme = "https" if "--cert" in extra else "http"

    def url(self, container, path=""):
        u = f"{self.scheme}://127.0.0.1:{self.port}/devstoreaccount1/{container}"
        return u + ("/" + path if path else "")

    def service(self):
        from azure.storage.blob import BlobServiceClient
        cs = (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DEV_KEY};"
              f"BlobEndpoint=http://127.0.0.1:{self.port}/devstoreaccount1;")
        return BlobServiceClient.from_connection_string(cs)

    def create_container(self, name):
        self.service().create_container(name)

    def delta_rs_options(self):
        return {"account_name": "devstoreaccount1", "account_key": DEV_KEY,
                "azure_storage_use_emulator": "true", "allow_http": "true"}

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        subprocess.run(["rm", "-rf", self.dir])


@pytest.fixture(scope="module")
def azurite():
    if not azurite_bin():
        pytest.skip("azurite not installed (.tools/node)")
    a = Azurite()
    os.environ["AZURITE_BLOB_STORAGE_URL"] = f"http://127.0.0.1:{a.port}"
    yield a
    a.stop()
