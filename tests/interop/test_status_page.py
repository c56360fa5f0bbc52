"""The agent's status page in a real browser: ehemu with 32 partitions, a
sender that keeps adding transactions, `ehdelta run --metrics-listen` with a
token, and Debian's headless chromium driven by tests/interop/status_page.mjs
(playwright-core, pointed at /usr/bin/chromium; it never fetches a browser).
The page is opened once for the suite; the screenshots land in
$EHDELTA_TOP_BUILDDIR/artifacts/status-page/ for CI to keep."""
import datetime
import json
import os
import random
import shutil
import subprocess
import threading
import urllib.error
import urllib.request

import pytest
from azure.eventhub import EventData, EventHubProducerClient

import agentutil
from conftest import EHDELTA, TOP_BUILDDIR, TOP_SRCDIR, free_port, wait_until

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
NODE_MODULES = os.path.join(TOP_SRCDIR, ".tools", "node", "node_modules")
DRIVER = os.path.join(TOP_SRCDIR, "tests", "interop", "status_page.mjs")
ARTIFACTS = os.path.join(TOP_BUILDDIR, "artifacts", "status-page")
TOKEN = "page-token-7f3a9c"

missing = [what for what, ok in (
    ("chromium (Debian package chromium)", os.access(CHROMIUM, os.X_OK)),
    ("node", shutil.which("node")),
    ("playwright-core in .tools/node (scripts/deps)",
     os.path.isdir(os.path.join(NODE_MODULES, "playwright-core")))) if not ok]
pytestmark = pytest.mark.skipif(bool(missing), reason="missing: " + ", ".join(missing))


class Sender(threading.Thread):
    """Keeps adding transactions stamped with the current time until stopped."""

    def __init__(self, emu):
        super().__init__(daemon=True)
        self.emu, self.stop, self.sent, self.error = emu, threading.Event(), 0, None

    def run(self):
        rnd = random.Random(7)
        try:
            with EventHubProducerClient.from_connection_string(
                    self.emu.conn_str(), eventhub_name=self.emu.hub, **self.emu.client_kw()) as p:
                while not self.stop.is_set():
                    batch = p.create_batch()
                    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
                    for _ in range(40):
                        self.sent += 1
                        batch.add(EventData(json.dumps({
                            "transaction_id": f"T{self.sent:07d}",
                            "customer_id": f"C{rnd.randint(1, 100):03d}",
                            "amount": round(rnd.uniform(10, 500), 2),
                            "category": rnd.choice(agentutil.CATEGORIES),
                            "timestamp": now.isoformat(timespec="milliseconds"),
                            "location": rnd.choice(agentutil.LOCATIONS),
                            "payment_method": rnd.choice(agentutil.PAYMENTS)})))
                    p.send_batch(batch)
                    self.stop.wait(0.2)
        except Exception as e:  # reported by the test, not lost in a thread
            self.error = e


def http(url, token=None):
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("page")
    emu = agentutil.Emu(tmp, partitions=32)
    root = tmp / "lake"
    conf = tmp / "page.conf"
    conf.write_text(f"""
[source]
connection_string_file = {emu.cs_file}
starting_position = earliest
[schema]
columns = transaction_id STRING, customer_id STRING, amount DOUBLE, category STRING, timestamp TIMESTAMP, location STRING, payment_method STRING
[sink raw]
path = {root}/raw
trigger = 2 seconds
[sink by_category]
path = {root}/by-category
window = timestamp, 10 seconds
group_by = category
aggregate = count(*) AS txn_count, sum(amount) AS total_amount
watermark = timestamp, 5 seconds
output_mode = append
trigger = 3 seconds
[dead_letter]
path = {root}/dead-letter
""")
    (tmp / "token").write_text(TOKEN + "\n")
    port = free_port()
    sender = Sender(emu)
    sender.start()
    log = open(tmp / "agent.log", "w+")
    proc = subprocess.Popen([EHDELTA, "run", "--config", str(conf), "--metrics-listen",
                             f"127.0.0.1:{port}", "--metrics-token-file", str(tmp / "token")],
                            stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"

    def status():
        if proc.poll() is not None:
            log.seek(0)
            raise AssertionError("agent exited: " + log.read())
        try:
            code, body = http(base + "/status", TOKEN)
        except urllib.error.URLError:  # not listening yet
            return None
        return json.loads(body) if code == 200 else None

    # some history before the page opens: batches on both sinks, ten seconds of samples
    wait_until(lambda: (s := status()) and (s["sinks"].get("raw") or {}).get("batchId", -1) >= 2
               and s["sinks"].get("by_category") and s["uptimeSeconds"] >= 10,
               timeout=120, interval=0.5, what="the agent's first batches")
    yield {"base": base, "proc": proc, "sender": sender, "status": status, "tmp": tmp}
    sender.stop.set()
    sender.join(30)
    proc.terminate()
    proc.wait(60)
    log.close()
    emu.stop()


def test_every_request_needs_the_token(agent):
    base = agent["base"]
    for path in ("/", "/status", "/history", "/metrics", "/healthz"):
        code, body = http(base + path)
        assert code == 401, (path, code)
        assert TOKEN.encode() not in body
        assert http(base + path, "wrong-" + TOKEN)[0] == 401, path
        assert http(base + path, TOKEN)[0] == 200, path
    assert http(base + "/status?token=" + TOKEN)[0] == 200
    assert http(base + "/status?token=" + TOKEN[:-1])[0] == 401


def test_history_is_bounded_and_shaped(agent):
    code, body = http(agent["base"] + "/history", TOKEN)
    h = json.loads(body)
    assert code == 200 and h["capacity"] == 3600 and h["batchCapacity"] == 1024
    assert h["columns"][0] == "t" and len(h["samples"]) >= 10
    assert all(len(r) == len(h["columns"]) for r in h["samples"])
    raw = h["sinks"]["raw"]
    assert raw and all(len(r) == len(h["batchColumns"]) for r in raw)
    last = dict(zip(h["batchColumns"], raw[-1]))
    assert last["tableVersion"] >= 0 and last["triggerExecution"] >= 0
    later = json.loads(http(agent["base"] + f"/history?since={raw[-1][0]}", TOKEN)[1])
    assert all(r[0] > raw[-1][0] for r in later["sinks"]["raw"])


def test_page_in_chromium(agent):
    assert agent["sender"].error is None, agent["sender"].error
    p = subprocess.run(["node", DRIVER, agent["base"], "raw", ARTIFACTS, TOKEN],
                       capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, EHDELTA_NODE_MODULES=NODE_MODULES, CHROMIUM=CHROMIUM))
    out = p.stdout.strip().splitlines()
    report = json.loads(out[-1]) if out else {}
    print(json.dumps(report, indent=1))
    assert p.returncode == 0, f"{report.get('error')} {p.stderr[-2000:]}"
    for f in report["screenshots"]:
        assert os.path.getsize(f) > 10000, f
    assert report["agreed"]["tableVersion"] >= 0
    assert report["updatedTo"] > report["agreed"]["tableVersion"]
    assert agent["sender"].error is None, agent["sender"].error
