"""ehdelta run meeting bad conditions: a resume position that expired from
the hub (retention gap) under both policies, an unreachable hub, a wrong key,
a key revoked while running (ehemu expires every token), a dropped
connection mid-run; each a clear one-line message and the exit status
ehdelta-run(1) documents, and nothing committed lost or doubled."""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))

import pytest  # noqa: E402
from deltalake import DeltaTable  # noqa: E402

from agentutil import Emu, run_agent, send_lines, transactions  # noqa: E402
from conftest import EHDELTA, free_port, wait_until  # noqa: E402


def conf_for(tmp_path, cs_file, policy="fail", trigger="available-now"):
    c = tmp_path / "raw.conf"
    c.write_text(f"""[source]
connection_string_file = {cs_file}
retention_gap_policy = {policy}
[schema]
columns = transaction_id STRING, amount DOUBLE, category STRING, timestamp TIMESTAMP
metadata = sequence_number AS seq, partition
[sink raw]
path = {tmp_path}/raw
trigger = {trigger}
""")
    return c


def raw_rows(tmp_path):
    t = DeltaTable(str(tmp_path / "raw")).to_pyarrow_table().to_pylist()
    assert len({(r["partition"], r["seq"]) for r in t}) == len(t), "an event twice"
    return t


def hub_events(cs_file):
    """Events the hub retains, over its partitions (None if status failed)."""
    out = subprocess.run([EHDELTA, "status", "--connection-string-file", str(cs_file), "--json"],
                         capture_output=True, text=True)
    return sum(p["events"] for p in json.loads(out.stdout)["partitions"]) \
        if out.returncode == 0 else None


@pytest.mark.parametrize("policy", ["fail", "skip-to-earliest"])
def test_retention_gap(tmp_path, policy):
    # 4 s of retention is the time a run has to read what was just sent, even
    # on a loaded machine; that the unread events expired is waited for, not
    # slept for
    emu = Emu(tmp_path, extra=("--retention", "4s"))
    try:
        conf = conf_for(tmp_path, emu.cs_file, policy)
        send_lines(emu, tmp_path, transactions(40))
        p, _ = run_agent(conf, tmp_path, "--available-now", tag="a")
        assert p.returncode == 0, p.stderr
        send_lines(emu, tmp_path, transactions(40, first_id=1001), name="lost.jsonl")
        wait_until(lambda: hub_events(emu.cs_file) == 0, timeout=60, interval=0.2,
                   what="the 40 unread events to expire")
        send_lines(emu, tmp_path, transactions(8, first_id=2001), name="new.jsonl")
        p, _ = run_agent(conf, tmp_path, "--available-now", tag="b")
        if policy == "fail":
            assert p.returncode == 4, p.stderr
            last = p.stderr.strip().splitlines()[-1]
            assert "retention gap" in last and "expired" in last, last
            assert len(raw_rows(tmp_path)) == 40, "nothing may be committed past a gap"
        else:
            assert p.returncode == 0, p.stderr
            assert "retention_gap" in p.stderr and "expired before they were read" in p.stderr
            ids = {r["transaction_id"] for r in raw_rows(tmp_path)}
            assert len(ids) == 48 and all(not i.startswith("T00010") for i in ids)
    finally:
        emu.stop()


def test_unreachable_hub(tmp_path):
    cs = tmp_path / "cs"
    cs.write_text(f"Endpoint=sb://127.0.0.1:{free_port()};SharedAccessKeyName=k;"
                  "SharedAccessKey=a2V5;EntityPath=tx;UseDevelopmentEmulator=true\n")
    p, _ = run_agent(conf_for(tmp_path, cs), tmp_path, "--available-now", "--timeout", "3s")
    assert p.returncode == 5, p.stderr
    last = p.stderr.strip().splitlines()[-1]  # retries are logged before it
    assert last.startswith("ehdelta run: ") and "127.0.0.1" in last, last


def test_wrong_key(tmp_path):
    emu = Emu(tmp_path)
    try:
        bad = tmp_path / "bad_cs"
        bad.write_text(emu.cs_file.read_text().replace("SharedAccessKey=", "SharedAccessKey=x"))
        p, _ = run_agent(conf_for(tmp_path, bad), tmp_path, "--available-now")
        assert p.returncode == 3, p.stderr
        assert "SharedAccessKey=x" not in p.stderr
    finally:
        emu.stop()


def test_drop_and_expire_while_running(tmp_path):
    """Connections dropped and tokens expired under a running agent: it
    reconnects, and the events are each committed once."""
    emu = Emu(tmp_path)
    try:
        conf = conf_for(tmp_path, emu.cs_file, trigger="1 second")
        agent = subprocess.Popen([EHDELTA, "run", "--config", str(conf), "--progress",
                                  str(tmp_path / "p")], stdout=subprocess.DEVNULL,
                                 stderr=open(tmp_path / "agent.err", "w"))
        def rows_in(n):
            try:
                return len(raw_rows(tmp_path)) == n
            except Exception:  # no table yet
                return False
        try:
            # each fault waits for a commit, so it lands on a connected agent
            # however long the agent takes to start on a loaded machine
            send_lines(emu, tmp_path, transactions(300))
            wait_until(lambda: rows_in(300), timeout=60, interval=0.2, what="300 rows")
            assert emu.ctl("drop").startswith("ok")
            send_lines(emu, tmp_path, transactions(300, first_id=301), name="b.jsonl")
            wait_until(lambda: rows_in(600), timeout=60, interval=0.2, what="600 rows")
            assert emu.ctl("expire").startswith("ok")
            send_lines(emu, tmp_path, transactions(300, first_id=601), name="c.jsonl")
            wait_until(lambda: rows_in(900), timeout=60, interval=0.2, what="900 rows")
        finally:
            agent.terminate()
            rc = agent.wait(30)
        err = (tmp_path / "agent.err").read_text()
        assert rc == 0, err
        assert "eh_connection_retry" in err and "token for this link has expired" in err, err
        assert len({r["transaction_id"] for r in raw_rows(tmp_path)}) == 900
    finally:
        emu.stop()


def test_full_disk(tmp_path):
    """The table's disk fills up mid-run: a clear message and exit 1, the
    committed versions intact; with room again the next run takes the rest,
    every event once. Needs a small tmpfs (root); skipped elsewhere."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (not root)")
    emu = Emu(tmp_path)
    try:
        c = tmp_path / "disk.conf"
        c.write_text(f"""[source]
connection_string_file = {emu.cs_file}
[schema]
columns = transaction_id STRING, amount DOUBLE, category STRING, timestamp TIMESTAMP, note STRING
metadata = sequence_number AS seq, partition
[sink raw]
path = {mnt}/raw
trigger = available-now
max_batch_events = 500
""")
        rnd = os.urandom
        lines = [dict(t, note=rnd(300).hex()) for t in transactions(4000)]
        send_lines(emu, tmp_path, lines)
        p, _ = run_agent(c, tmp_path, "--available-now", tag="full")
        assert p.returncode == 1, p.stderr
        last = p.stderr.strip().splitlines()[-1]
        assert "no space" in last.lower() or "space left" in last.lower(), last
        t = DeltaTable(str(mnt / "raw")).to_pyarrow_table().to_pylist()
        assert 0 < len(t) < 4000
        subprocess.run(["mount", "-o", "remount,size=64m", str(mnt)], check=True)
        p, _ = run_agent(c, tmp_path, "--available-now", tag="room")
        assert p.returncode == 0, p.stderr
        t = DeltaTable(str(mnt / "raw")).to_pyarrow_table().to_pylist()
        assert len(t) == 4000 and len({(r["partition"], r["seq"]) for r in t}) == 4000
    finally:
        emu.stop()
        subprocess.run(["umount", str(mnt)])


def test_second_agent_takes_the_partitions_over(tmp_path):
    """One owner per partition: a second agent on the same consumer group
    takes the partitions over by epoch; the first stops with a clear message
    (exit 1) instead of both reading; what it committed stays."""
    emu = Emu(tmp_path)
    try:
        conf = conf_for(tmp_path, emu.cs_file, trigger="1 second")
        send_lines(emu, tmp_path, transactions(100))
        first = subprocess.Popen([EHDELTA, "run", "--config", str(conf)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

        def committed():
            try:
                return len(raw_rows(tmp_path)) == 100
            except Exception:
                return False
        wait_until(committed, timeout=30, interval=0.2, what="the first agent's commit")
        time.sleep(0.01)  # a later epoch (milliseconds) for the second agent
        second = subprocess.Popen([EHDELTA, "run", "--config", str(conf)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            rc = first.wait(30)
            err = first.stderr.read()
            assert rc == 1, err
            assert "stolen" in err.strip().splitlines()[-1].lower(), err
            send_lines(emu, tmp_path, transactions(50, first_id=101), name="b.jsonl")
            wait_until(lambda: len(raw_rows(tmp_path)) == 150, timeout=30, interval=0.2,
                       what="the second agent's commit")
        finally:
            second.terminate()
            assert second.wait(30) == 0, second.stderr.read()
    finally:
        emu.stop()
