"""ops_notify: stands in for systemd's notify socket (sd_notify(3)) and journal
stream. Binds an abstract AF_UNIX datagram socket, runs CMD with NOTIFY_SOCKET
naming it, WATCHDOG_USEC=300000 and JOURNAL_STREAM naming CMD's stderr file;
records every datagram (newlines as |) in OUTDIR/msgs and what stderr held when
READY=1 arrived in OUTDIR/ready_log. Stops CMD with SIGTERM after READY=1 and two
WATCHDOG=1 (or when CMD exits, or after 60 s), and prints rc=STATUS.
usage: ops_notify.py OUTDIR CMD..."""
import os, socket, subprocess, sys, time, signal
out = sys.argv[1]; cmd = sys.argv[2:]
name = "@ehdelta-notify-test-%d" % os.getpid()
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + name[1:])
err = open(os.path.join(out, "stderr"), "wb")
st = os.fstat(err.fileno())
env = dict(os.environ, NOTIFY_SOCKET=name, WATCHDOG_USEC="300000", JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))
p = subprocess.Popen(cmd, stderr=err, stdout=subprocess.DEVNULL, env=env)
s.settimeout(0.2)
msgs = []
deadline = time.monotonic() + 60
ready_log = None
while time.monotonic() < deadline and p.poll() is None:
    try:
        m = s.recv(4096).decode()
    except socket.timeout:
        continue
    if m.startswith("READY=1") and ready_log is None:
        ready_log = open(os.path.join(out, "stderr"), "rb").read().decode()
    msgs.append(m)
    if ready_log is not None and sum(x == "WATCHDOG=1" for x in msgs) >= 2:
        break
if p.poll() is None:
    p.send_signal(signal.SIGTERM)
rc = p.wait(timeout=60)
with open(os.path.join(out, "msgs"), "w") as f:
    for m in msgs: f.write(m.replace("\n", "|") + "\n")
with open(os.path.join(out, "ready_log"), "w") as f:
    f.write(ready_log or "")
print("rc=%d" % rc)
