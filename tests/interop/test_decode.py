"""The decoder against Python's json module on the tutorial's events.

The bodies are made by the tutorial's own generator code (event_hub_producer.py:
json.dumps of the transaction dict, timestamp from datetime.utcnow().isoformat());
Python's json.loads of the same bodies is the judge: every row the decoder
produces (through tests/tools/sm_tool, each back end) must equal it, timestamps
read as UTC microseconds.
"""
import json
import os
import random
import subprocess
from datetime import datetime, timedelta, timezone

import pytest

from conftest import TOP_BUILDDIR

SM_TOOL = os.path.join(TOP_BUILDDIR, "tests", "tools", "sm_tool")
SCHEMA = ("transaction_id STRING, customer_id STRING, amount DOUBLE, category STRING, "
          "timestamp TIMESTAMP, location STRING, payment_method STRING")


def tutorial_bodies(seed, n=100):
    """The tutorial's generator loop, with a seeded RNG and a moving clock."""
    rng = random.Random(seed)
    customer_ids = [f"C{str(i).zfill(3)}" for i in range(1, 101)]
    categories = ["Electronics", "Books", "Clothing", "Home", "Sports"]
    t = datetime.now(timezone.utc).replace(tzinfo=None)
    out = []
    for i in range(n):
        t += timedelta(microseconds=rng.randint(0, 2_000_000))
        transaction = {
            "transaction_id": f"T{str(i+1).zfill(6)}",
            "customer_id": rng.choice(customer_ids),
            "amount": round(rng.uniform(10.0, 500.0), 2),
            "category": rng.choice(categories),
            "timestamp": t.isoformat(),
            "location": rng.choice(["US", "UK", "EU", "APAC"]),
            "payment_method": rng.choice(["Credit", "Debit", "PayPal"]),
        }
        out.append(json.dumps(transaction))
    return out


def expected_row(body):
    d = json.loads(body)
    ts = datetime.fromisoformat(d["timestamp"]).replace(tzinfo=timezone.utc)
    d["timestamp"] = (ts - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)
    return d


@pytest.mark.parametrize("backend", ["json-c", "simdjson"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_tutorial_transactions_equal_pythons_reading(backend, seed):
    bodies = tutorial_bodies(seed)
    p = subprocess.run([SM_TOOL, SCHEMA, backend], input="\n".join(bodies) + "\n",
                       capture_output=True, text=True, timeout=60)
    if p.returncode == 2 and "without simdjson" in p.stderr:
        pytest.skip("built without simdjson")
    assert p.returncode == 0, p.stderr
    rows = [json.loads(line) for line in p.stdout.splitlines()]
    assert len(rows) == 100
    for body, row in zip(bodies, rows):
        assert row == expected_row(body), body


@pytest.mark.parametrize("backend", ["json-c", "simdjson"])
def test_bad_bodies_are_counted_dead_letters(backend):
    bad = ['{"transaction_id": 5}', '{"amount": "12,5"}', 'not json', '{"timestamp": "soon"}',
           '[1]', '{"amount": 1e999}']
    p = subprocess.run([SM_TOOL, SCHEMA, backend], input="\n".join(bad) + "\n",
                       capture_output=True, text=True, timeout=60)
    if p.returncode == 2 and "without simdjson" in p.stderr:
        pytest.skip("built without simdjson")
    assert p.returncode == 0, p.stderr
    reasons = [json.loads(line).get("dead") for line in p.stdout.splitlines()]
    assert reasons == ["type", "type", "not_json", "timestamp", "not_object", "overflow"]
