"""bench_client: the ehdelta client beside the official azure-eventhub SDK,
same ehemu, same run (run through bench/bench_client.sh).

  send:    ehdelta send of N 200-byte events (this is also the preload) vs the
           SDK producer sending batches of 200-byte events; events/s and ratio
  receive: ehdelta tail --from earliest --count N > /dev/null vs the SDK
           consumer (receive_batch, one client per partition); events/s, ratio
  memory:  ehdelta tail over 32 partitions with a backlog, its stdout never
           read (a stalled consumer) and then read slowly; VmRSS sampled

Sizes from the environment: BENCH_EVENTS (2000000), BENCH_SDK_EVENTS
(200000), BENCH_RSS_EVENTS (320000), BENCH_RSS_SECONDS (15). Figures are
printed, never asserted."""
import os
import socket
import subprocess
import sys
import threading
import time

from azure.eventhub import EventData, EventHubConsumerClient, EventHubProducerClient

BUILD = os.environ.get("EHDELTA_TOP_BUILDDIR", ".")
EHDELTA = os.path.join(BUILD, "ehdelta")
EHEMU = os.path.join(BUILD, "ehemu")
KEY = "YmVuY2gtY2xpZW50LWtleS1ub3QtYS1zZWNyZXQ="
N = int(os.environ.get("BENCH_EVENTS", "2000000"))
N_SDK = min(N, int(os.environ.get("BENCH_SDK_EVENTS", "200000")))
N_RSS = int(os.environ.get("BENCH_RSS_EVENTS", "320000"))
RSS_SECONDS = float(os.environ.get("BENCH_RSS_SECONDS", "15"))
# ehemu refuses a batch envelope of more than 16 sections: 10 events a batch
SDK_BATCH = int(os.environ.get("BENCH_SDK_BATCH", "10"))


class Emu:
    def __init__(self, tmp, partitions):
        self.logpath = os.path.join(tmp, f"ehemu-{partitions}.log")
        self.log = open(self.logpath, "w+")
        self.proc = subprocess.Popen(
            [EHEMU, "--port", "0", "--partitions", str(partitions), "--retention", "0s"],
            stderr=self.log, env=dict(os.environ, EHEMU_KEY=KEY))
        deadline = time.monotonic() + 20
        self.amqp = None
        while self.amqp is None:
            assert self.proc.poll() is None and time.monotonic() < deadline, "ehemu not ready"
            self.log.seek(0)
            for line in self.log.read().splitlines():
                if line.startswith("ehemu: ready"):
                    self.amqp = int(dict(p.split("=") for p in line.split()[2:])["amqp"])
            time.sleep(0.05)
        self.cs = (f"Endpoint=sb://127.0.0.1:{self.amqp}/;SharedAccessKeyName="
                   f"RootManageSharedAccessKey;SharedAccessKey={KEY};EntityPath=eh1;"
                   "UseDevelopmentEmulator=true")
        self.cs_file = os.path.join(tmp, f"cs-{partitions}")
        with open(self.cs_file, "w") as f:
            f.write(self.cs + "\n")
        os.chmod(self.cs_file, 0o600)
        self.partitions = [str(i) for i in range(partitions)]

    def args(self):
        return ["--connection-string-file", self.cs_file, "--timeout", "60s"]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(20)
        self.log.close()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def ehdelta_send(emu, n):
    t0 = time.monotonic()
    r = subprocess.run([EHDELTA, "send", *emu.args(), "--count", str(n), "--body-size", "200",
                        "--seed", "1", "--no-progress"], capture_output=True, text=True)
    dt = time.monotonic() - t0
    if r.returncode != 0 or f"accepted {n}," not in r.stdout:
        sys.exit(f"ehdelta send failed: {r.stdout} {r.stderr}")
    return n / dt


def sdk_send(emu, n):
    body = b"x" * 200
    p = EventHubProducerClient.from_connection_string(emu.cs)
    with p:
        p.get_eventhub_properties()  # connected and authorized before the clock
        t0 = time.monotonic()
        sent = 0
        while sent < n:
            b = p.create_batch()
            k = min(SDK_BATCH, n - sent)
            for _ in range(k):
                b.add(EventData(body))
            p.send_batch(b)
            sent += k
        return n / (time.monotonic() - t0)


def ehdelta_tail(emu, n):
    t0 = time.monotonic()
    with open(os.devnull, "w") as null:
        r = subprocess.run([EHDELTA, "tail", *emu.args(), "--from", "earliest", "--count", str(n)],
                           stdout=null, stderr=subprocess.PIPE, text=True)
    dt = time.monotonic() - t0
    if r.returncode != 0:
        sys.exit(f"ehdelta tail failed: {r.stderr}")
    return n / dt


def sdk_receive(emu, n):
    got = [0]
    lock = threading.Lock()
    done = threading.Event()
    clients = []

    def on_batch(ctx, evs):
        with lock:
            got[0] += len(evs)
            if got[0] >= n:
                done.set()

    for pid in emu.partitions:
        c = EventHubConsumerClient.from_connection_string(emu.cs, consumer_group="$Default",
                                                          prefetch=300)
        clients.append(c)
    t0 = time.monotonic()
    threads = []
    for c, pid in zip(clients, emu.partitions):
        t = threading.Thread(target=c.receive_batch, daemon=True, kwargs=dict(
            on_event_batch=on_batch, partition_id=pid, starting_position="-1",
            max_batch_size=300, max_wait_time=1))
        t.start()
        threads.append(t)
    done.wait(600)
    dt = time.monotonic() - t0
    for c in clients:
        c.close()
    for t in threads:
        t.join(10)
    return got[0] / dt


def rss_run(tmp):
    emu = Emu(tmp, 32)
    try:
        r = subprocess.run([EHDELTA, "send", *emu.args(), "--count", str(N_RSS), "--body-size",
                            "200", "--no-progress"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        # the stalled consumer: tail's stdout is a pipe nobody reads
        p = subprocess.Popen([EHDELTA, "tail", *emu.args(), "--from", "earliest", "--prefetch",
                              "300"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        samples = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < RSS_SECONDS:
            samples.append(rss_kib(p.pid))
            time.sleep(0.25)
        stalled = samples
        # then read it slowly: ~20000 lines/s
        samples = []
        read = 0
        t0 = time.monotonic()
        last = t0
        while time.monotonic() - t0 < RSS_SECONDS:
            # never past the backlog: a following tail has no more to give
            for _ in range(min(1000, N_RSS - read)):
                if p.stdout.readline():
                    read += 1
            time.sleep(0.05)
            if time.monotonic() - last >= 0.25:
                samples.append(rss_kib(p.pid))
                last = time.monotonic()
        p.terminate()
        p.wait(10)
        return stalled, samples, read
    finally:
        emu.stop()


def main():
    tmp = sys.argv[1] if len(sys.argv) > 1 else "/tmp"
    emu = Emu(tmp, 4)
    try:
        print(f"bench_client: {N} 200-byte events preloaded by ehdelta send, SDK share {N_SDK}, "
              f"4 partitions, loopback ehemu")
        eh_send = ehdelta_send(emu, N)
        sdk_tx = sdk_send(emu, N_SDK)
        print(f"send     ehdelta send  {eh_send:10.0f} events/s   SDK producer (batches of "
              f"{SDK_BATCH}) {sdk_tx:10.0f} events/s   ratio {eh_send / sdk_tx:6.2f}")
        eh_rx = ehdelta_tail(emu, N)
        sdk_rx = sdk_receive(emu, N_SDK)
        print(f"receive  ehdelta tail  {eh_rx:10.0f} events/s   SDK consumer (receive_batch)   "
              f"{sdk_rx:10.0f} events/s   ratio {eh_rx / sdk_rx:6.2f}")
        ehemu_rss = rss_kib(emu.proc.pid)
        print(f"         (ehemu holding {N + N_SDK} events: VmRSS {ehemu_rss / 1024:.0f} MiB)")
    finally:
        emu.stop()
    stalled, slow, read = rss_run(tmp)

    def halves(xs):
        h = len(xs) // 2
        return max(xs[:h] or xs), max(xs[h:] or xs)

    print(f"memory   ehdelta tail, 32 partitions, {N_RSS} events backlog, prefetch 300 "
          f"(VmRSS KiB, one sample per 0.25 s):")
    a, b = halves(stalled)
    print(f"         stalled {RSS_SECONDS:.0f} s: first {stalled[0]}, max of 1st half {a}, "
          f"of 2nd half {b} ({b - a:+d})")
    a, b = halves(slow)
    print(f"         then read slowly {RSS_SECONDS:.0f} s ({read} lines): max of 1st half {a}, "
          f"of 2nd half {b} ({b - a:+d})")
    print(f"         samples (every 1 s) stalled: {' '.join(map(str, stalled[::4]))}")
    print(f"         samples (every 1 s) reading: {' '.join(map(str, slow[::4]))}")

if __name__ == "__main__":
    main()
