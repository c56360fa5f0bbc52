"""What the agent suites share: an ehemu started on free loopback ports, the
tutorial's configuration written for a test, transactions with known event
times, `ehdelta send` and `ehdelta run`, and the oracle: the raw rows and the
window aggregates computed here, in Python, from the events that were sent."""
import datetime
import json
import os
import random
import subprocess

import emu_util
from conftest import EHDELTA

CATEGORIES = ["Electronics", "Books", "Clothing", "Home", "Sports"]
LOCATIONS = ["US", "UK", "EU", "APAC"]
PAYMENTS = ["Credit", "Debit", "PayPal"]
T0 = datetime.datetime(2026, 11, 30, 10, 0, 0)
EPOCH = datetime.datetime(1970, 1, 1)


class Emu(emu_util.Emu):
    """emu_util's ehemu with one hub, and its connection string (with
    EntityPath) in a file, the way the agent takes it."""

    def __init__(self, tmp_path, hub="tx", partitions=4, extra=()):
        super().__init__(tmp_path, "--hub", hub, "--partitions", str(partitions), *extra)
        self.hub = hub
        self.cs_file = tmp_path / "cs"
        self.cs_file.write_text(f"{self.conn_str()};EntityPath={hub}\n")


def transactions(n, seed=11, start=T0, step_s=1.5, jitter_s=20.0, first_id=1):
    """n tutorial transactions whose event times advance step_s per event
    (with jitter), as the tutorial's producer writes them (no zone)."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        ts = start + datetime.timedelta(seconds=i * step_s + rnd.uniform(-jitter_s, jitter_s))
        ts = ts.replace(microsecond=(ts.microsecond // 1000) * 1000)
        out.append({"transaction_id": f"T{first_id + i:07d}",
                    "customer_id": f"C{rnd.randint(1, 100):03d}",
                    "amount": round(rnd.uniform(10, 500), 2),
                    "category": rnd.choice(CATEGORIES),
                    "timestamp": ts.isoformat(timespec="milliseconds"),
                    "location": rnd.choice(LOCATIONS),
                    "payment_method": rnd.choice(PAYMENTS)})
    return out


BAD = [b"not json at all", b'{"transaction_id": "B1", "amount": "twelve"}', b"[1, 2, 3]",
       b'{"transaction_id": "B2", "timestamp": "yesterday"}', b'{"truncated": ']


def send_lines(emu, tmp_path, lines, name="events.jsonl", extra=()):
    f = tmp_path / name
    f.write_bytes(b"".join((l if isinstance(l, bytes) else json.dumps(l).encode()) + b"\n"
                           for l in lines))
    p = subprocess.run([EHDELTA, "send", "--connection-string-file", str(emu.cs_file), "--input",
                        str(f), "--no-progress", *extra], capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stderr
    return p


def tutorial_conf(emu, tmp_path, root, watermark="10 minutes", raw_trigger="10 seconds",
                  extra_source="", extra_raw="", storage=""):
    """The tutorial's whole job: Steps 3.3-3.4 (schema, metadata, derived
    columns), 4.1 (raw table by processing_date), 7.1 (5-minute tumbling by
    category, append), 7.2 (10/5-minute sliding by location to the console,
    complete) and a dead-letter table."""
    conf = tmp_path / "tutorial.conf"
    conf.write_text(f"""
[source]
connection_string_file = {emu.cs_file}
starting_position = earliest
{extra_source}
[schema]
columns = transaction_id STRING, customer_id STRING, amount DOUBLE, category STRING, timestamp TIMESTAMP, location STRING, payment_method STRING
metadata = enqueued_time AS ingestion_time, offset, sequence_number AS sequenceNumber, partition
derive = processing_time = current_timestamp()
derive = processing_date = to_date(timestamp)
derive = amount_usd = amount
{storage}
[sink raw]
path = {root}/raw/transactions-streaming
partition_by = processing_date
trigger = {raw_trigger}
{extra_raw}
[sink by_category]
path = {root}/curated/transaction-analytics/by-category
window = timestamp, 5 minutes
group_by = category
aggregate = count(*) AS txn_count, sum(amount) AS total_amount, avg(amount) AS avg_amount
watermark = timestamp, {watermark}
output_mode = append
trigger = 1 minute

[sink by_location]
type = console
window = timestamp, 10 minutes, 5 minutes
group_by = location
aggregate = count(*) AS txn_count, sum(amount) AS revenue
watermark = timestamp, {watermark}
output_mode = complete
trigger = 30 seconds
num_rows = 1000

[dead_letter]
path = {root}/raw/dead-letter
""")
    return conf


def run_agent(conf, tmp_path, *args, env=None, timeout=600, tag="run"):
    progress = tmp_path / f"{tag}.progress"
    e = dict(os.environ)
    if env:
        e.update(env)
    p = subprocess.run([EHDELTA, "run", "--config", str(conf), "--progress", str(progress),
                        *args], capture_output=True, text=True, timeout=timeout, env=e)
    lines = [json.loads(l) for l in progress.read_text().splitlines()] if progress.exists() else []
    return p, lines


def ts_us(s):
    d = datetime.datetime.fromisoformat(s)
    return (d - EPOCH) // datetime.timedelta(microseconds=1)


def windows(events, size_min, slide_min, key):
    """Spark's window(timestamp, size, slide) groups: {(start_us, end_us, key):
    [count, sum]}. A row belongs to every window [s, s + size) containing it,
    starts aligned to the epoch on the slide."""
    size, slide = size_min * 60_000_000, slide_min * 60_000_000
    out = {}
    for e in events:
        t = ts_us(e["timestamp"])
        last = t - (t % slide)
        s = last
        while s > t - size:
            agg = out.setdefault((s, s + size, e[key]), [0, 0.0])
            agg[0] += 1
            agg[1] += e["amount"]
            s -= slide
    return out
