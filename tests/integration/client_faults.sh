#!/usr/bin/env bash
# The client against ehemu's faults and every start position: earliest,
# latest (also across a drop before the first event), offset and sequence
# number inclusive and exclusive, enqueued time; --to-end past the end;
# epochs both ways; a connection dropped mid-stream (no loss, no duplicate);
# tokens refreshed across several lifetimes and re-put after `expire`; an
# unanswered put-token retried; server-busy on send retried exactly once.
. "$(dirname "$0")/../lib.sh"

printf 'ZW11LWZhdWx0cy10ZXN0LWtleS1ub3QtYS1zZWNyZXQ=\n' > "$T/key"
"$EHEMU" --port 0 --control-port 0 --key-file "$T/key" --partitions 4 2>"$T/emu.err" &
track $!
wait_for_line "$T/emu.err" 'ehemu: ready amqp=[0-9]+' 20 || { cat "$T/emu.err"; not_ok "ehemu ready"; finish; exit; }
port=$(sed -n 's/.*ehemu: ready amqp=\([0-9]*\).*/\1/p' "$T/emu.err" | head -1)
cport=$(sed -n 's/.*ehemu: ready .*control=\([0-9]*\).*/\1/p' "$T/emu.err" | head -1)
printf 'Endpoint=sb://127.0.0.1:%s/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=%s;EntityPath=eh1;UseDevelopmentEmulator=true\n' \
  "$port" "$(cat "$T/key")" > "$T/cs"
chmod 600 "$T/cs"
E=(--connection-string-file "$T/cs" --timeout 20s)

# ctl CMD...: one control command; prints the answer ("ok")
ctl() {
  python3 - "$cport" "$*" <<'PY'
import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1]))) as s:
    s.sendall(sys.argv[2].encode() + b"\n")
    print(s.makefile().readline().strip())
PY
}
# seqs FILE: the sequence numbers of a tail output, space separated
seqs() { python3 -c 'import json,sys; print(" ".join(str(json.loads(l)["sequence_number"]) for l in open(sys.argv[1])))' "$1"; }
# field FILE SEQ NAME: one field of the event with sequence number SEQ
field() { python3 -c 'import json,sys
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e["sequence_number"] == int(sys.argv[2]): print(e[sys.argv[3]])' "$1" "$2" "$3"; }
# check_stream FILE N: N events, N distinct transaction ids, contiguous
# sequence numbers per partition from the first one seen
check_stream() {
  python3 - "$1" <<'PY'
import json, sys, collections
seqs = collections.defaultdict(list); ids = []
for line in open(sys.argv[1]):
    e = json.loads(line)
    seqs[e["partition"]].append(e["sequence_number"])
    ids.append(json.loads(e["body"])["transaction_id"])
contig = all(s == list(range(s[0], s[0] + len(s))) for s in seqs.values())
print(len(ids), len(set(ids)), "contiguous" if contig else "gaps")
PY
}
# slowcat FILE [LINES_PER_S]: copies stdin to FILE line by line, slowly
slowcat() {
  python3 -u -c 'import sys, time
out = open(sys.argv[1], "w", buffering=1)
pause = 10 / float(sys.argv[2])
for i, line in enumerate(sys.stdin):
    out.write(line)
    if i % 10 == 0: time.sleep(pause)' "$1" "${2:-10000}"
}
ready_rx() { wait_for_line "$1" 'eh_rx_ready' 20; }

# ---- positions on partition 0: 40 events ~5 ms apart (distinct enqueued times)
"$EHDELTA" send "${E[@]}" --partition 0 --count 40 --rate 200 --seed 1 --no-progress >/dev/null 2>"$T/s0.err"
check "send 40 to partition 0" [ $? -eq 0 ]
timeout 30 "$EHDELTA" tail "${E[@]}" -p 0 --from earliest --to-end >"$T/p0.jsonl" 2>/dev/null
check "earliest --to-end: sequence numbers 0..39" [ "$(seqs "$T/p0.jsonl")" = "$(seq -s ' ' 0 39)" ]
off9=$(field "$T/p0.jsonl" 9 offset)
timeout 30 "$EHDELTA" tail "${E[@]}" -p 0 --from "offset:$off9" --count 2 >"$T/o.jsonl" 2>/dev/null
check "offset:N is exclusive (after seq 9's offset: 10 11; got '$(seqs "$T/o.jsonl")')" [ "$(seqs "$T/o.jsonl")" = "10 11" ]
timeout 30 "$EHDELTA" tail "${E[@]}" -p 0 --from "offset>=$off9" --count 2 >"$T/o.jsonl" 2>/dev/null
check "offset>=N is inclusive (9 10; got '$(seqs "$T/o.jsonl")')" [ "$(seqs "$T/o.jsonl")" = "9 10" ]
timeout 30 "$EHDELTA" tail "${E[@]}" -p 0 --from 'seq:12' --count 2 >"$T/q.jsonl" 2>/dev/null
check "seq:N inclusive (12 13; got '$(seqs "$T/q.jsonl")')" [ "$(seqs "$T/q.jsonl")" = "12 13" ]
timeout 30 "$EHDELTA" tail "${E[@]}" -p 0 --from 'seq>12' --count 2 >"$T/q.jsonl" 2>/dev/null
check "seq>N exclusive (13 14; got '$(seqs "$T/q.jsonl")')" [ "$(seqs "$T/q.jsonl")" = "13 14" ]
# enqueued time: the first event returned is the first whose time is >= (or >) T
t20=$(field "$T/p0.jsonl" 20 enqueued_time)
expect=$(python3 - "$T/p0.jsonl" "$t20" <<'PY'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
t = sys.argv[2]
print(min(e["sequence_number"] for e in ev if e["enqueued_time"] >= t),
      min(e["sequence_number"] for e in ev if e["enqueued_time"] > t))
PY
)
timeout 30 "$EHDELTA" tail "${E[@]}" -p 0 --from "time>=$t20" --count 1 >"$T/t.jsonl" 2>/dev/null
got_incl=$(seqs "$T/t.jsonl")
timeout 30 "$EHDELTA" tail "${E[@]}" -p 0 --from "time:$t20" --count 1 >"$T/t.jsonl" 2>/dev/null
got_excl=$(seqs "$T/t.jsonl")
check "time>=T / time:T start at the first event enqueued at or after / after T (want '$expect', got '$got_incl $got_excl')" [ "$got_incl $got_excl" = "$expect" ]

# latest: only what is enqueued after the attach
timeout 30 "$EHDELTA" tail "${E[@]}" -p 0 --from latest --count 3 --log-level debug >"$T/l.jsonl" 2>"$T/l.err" &
lpid=$!
ready_rx "$T/l.err"
"$EHDELTA" send "${E[@]}" --partition 0 --count 3 --no-progress >/dev/null 2>&1
wait $lpid
check "latest: exactly the 3 events sent after the attach (40 41 42; got '$(seqs "$T/l.jsonl")')" [ "$(seqs "$T/l.jsonl")" = "40 41 42" ]
# latest, connection dropped before the first event: it resumes after the
# partition's last event at the first attach, not at "latest" again
timeout 40 "$EHDELTA" tail "${E[@]}" -p 0 --from latest --count 5 --log-level debug >"$T/l.jsonl" 2>"$T/l.err" &
lpid=$!
ready_rx "$T/l.err"
ctl drop >/dev/null
"$EHDELTA" send "${E[@]}" --partition 0 --count 5 --no-progress >/dev/null 2>&1
wait $lpid
check "latest across a drop: the 5 events sent while reconnecting (43..47; got '$(seqs "$T/l.jsonl")')" [ "$(seqs "$T/l.jsonl")" = "43 44 45 46 47" ]
check "latest was pinned to after seq 42 before the first attach" grep -q 'eh_rx_latest partition=0 after_seq=42' "$T/l.err"
check "the drop was seen and retried" grep -q 'eh_connection_retry' "$T/l.err"

# --to-end stops at once when there is nothing up to the end
last_off=$(field "$T/l.jsonl" 47 offset)
for from in 'seq:48' 'seq>47' "offset:$last_off" 'time:2099-01-01T00:00:00Z' latest; do
  timeout 15 "$EHDELTA" tail "${E[@]}" -p 0 --from "$from" --to-end >"$T/e.jsonl" 2>"$T/e.err"
  rc=$?
  check "--to-end --from $from past the end: exits 0 with nothing (rc=$rc)" eval '[ $rc -eq 0 ] && [ ! -s "$T/e.jsonl" ]'
done
timeout 15 "$EHDELTA" tail "${E[@]}" -p 0 --from 'seq:47' --to-end >"$T/e.jsonl" 2>/dev/null
check "--to-end --from seq:47 gives just the last event" [ "$(seqs "$T/e.jsonl")" = "47" ]
timeout 15 "$EHDELTA" tail "${E[@]}" -p 3 --from earliest --to-end >"$T/e.jsonl" 2>/dev/null
rc=$?
check "--to-end on an empty partition exits 0 at once (rc=$rc)" eval '[ $rc -eq 0 ] && [ ! -s "$T/e.jsonl" ]'

# ---- epochs on partition 1
"$EHDELTA" send "${E[@]}" --partition 1 --count 10 --no-progress >/dev/null 2>&1
timeout 60 "$EHDELTA" tail "${E[@]}" -p 1 --from earliest --epoch 1 --log-level debug >"$T/ep1.jsonl" 2>"$T/ep1.err" &
e1=$!
ready_rx "$T/ep1.err"
timeout 30 "$EHDELTA" tail "${E[@]}" -p 1 --from earliest --epoch 2 --count 10 >"$T/ep2.jsonl" 2>"$T/ep2.err"
rc=$?
check "epoch 2 takes the partition and reads it (rc=$rc)" eval '[ $rc -eq 0 ] && [ "$(wc -l <"$T/ep2.jsonl")" -eq 10 ]'
wait $e1
rc=$?
msg=$(grep 'ehdelta tail:' "$T/ep1.err")
check "epoch 1 is displaced: exit 1, one line naming the partition and link:stolen (rc=$rc: $msg)" 
  eval '[ $rc -eq 1 ] && [[ $msg == *Partitions/1*amqp:link:stolen* ]]'
timeout 60 "$EHDELTA" tail "${E[@]}" -p 1 --from earliest --epoch 5 --log-level debug >/dev/null 2>"$T/ep5.err" &
e5=$!
ready_rx "$T/ep5.err"
out=$(timeout 30 "$EHDELTA" tail "${E[@]}" -p 1 --from earliest --epoch 4 --count 1 2>&1 >/dev/null)
rc=$?
check "a lower epoch (4 < 5) is refused: exit 1, one line (rc=$rc: $out)" 
  eval '[ $rc -eq 1 ] && [ "$(wc -l <<<"$out")" -eq 1 ] && [[ $out == *stolen* ]]'
out=$(timeout 30 "$EHDELTA" tail "${E[@]}" -p 1 --from earliest --count 1 2>&1 >/dev/null)
rc=$?
check "a non-epoch receiver is refused beside an epoch one (rc=$rc: $out)" eval '[ $rc -eq 1 ] && [ "$(wc -l <<<"$out")" -eq 1 ]'
kill -INT $e5
wait $e5
check "the epoch 5 follower ends with status 0 on SIGINT" [ $? -eq 0 ]

# ---- a drop mid-stream: 20000 events over 4 partitions, read with drops
"$EHDELTA" send "${E[@]}" --count 20000 --seed 3 --no-progress >"$T/big.out" 2>&1
check "send 20000" grep -q 'accepted 20000, failed 0' "$T/big.out"
# what the hub holds now (partitions 0 and 1 already had events)
base=$(timeout 60 "$EHDELTA" tail "${E[@]}" --from earliest --to-end | wc -l)
touch "$T/d.jsonl"
# the reader is slowed down (credit then stops) so the drops land mid-stream
{ timeout 120 "$EHDELTA" tail "${E[@]}" --from earliest --to-end --prefetch 50 2>"$T/d.err"; echo $? >"$T/d.rc"; } | slowcat "$T/d.jsonl" &
dpid=$!
for n in 3000 9000 15000; do
  for ((i = 0; i < 400; i++)); do [ "$(wc -l <"$T/d.jsonl")" -ge $n ] && break; sleep 0.05; done
  ctl drop >/dev/null
done
wait $dpid
rc=$(cat "$T/d.rc")
drops=$(grep -c eh_connection_retry "$T/d.err")
check "tail across 3 drops exits 0 (rc=$rc, $drops reconnects logged)" eval '[ $rc -eq 0 ] && [ "$drops" -ge 3 ]'
res=$(python3 - "$T/d.jsonl" <<'PY'
import json, sys, collections
seqs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    e = json.loads(line)
    seqs[e["partition"]].append(e["sequence_number"])
ok = all(s == list(range(0, len(s))) for s in seqs.values())
print(sum(map(len, seqs.values())), "contiguous" if ok else "gaps")
PY
)
check "every event once across the drops, sequence numbers 0..n per partition (want '$base contiguous', got '$res')" [ "$res" = "$base contiguous" ]

# offset and time starts re-attach after the last event taken too (partition 2
# holds ~5000 events from the send above)
timeout 30 "$EHDELTA" tail "${E[@]}" -p 2 --from earliest --count 400 >"$T/p2.jsonl" 2>/dev/null
off=$(field "$T/p2.jsonl" 100 offset)
tm=$(field "$T/p2.jsonl" 300 enqueued_time)
tfirst=$(python3 -c 'import json,sys
print(min(e["sequence_number"] for e in map(json.loads, open(sys.argv[1])) if e["enqueued_time"] >= sys.argv[2]))' "$T/p2.jsonl" "$tm")
for pos in "offset>=$off:100" "time>=$tm:$tfirst"; do
  from=${pos%:*} first=${pos##*:}
  : >"$T/pd.jsonl"
  { timeout 60 "$EHDELTA" tail "${E[@]}" -p 2 --from "$from" --count 3000 --prefetch 50 2>"$T/pd.err"; echo $? >"$T/pd.rc"; } | slowcat "$T/pd.jsonl" 2000 &
  dpid=$!
  for ((i = 0; i < 400; i++)); do [ "$(wc -l <"$T/pd.jsonl")" -ge 500 ] && break; sleep 0.05; done
  ctl drop >/dev/null
  wait $dpid
  got=$(python3 -c 'import json,sys
s = [json.loads(l)["sequence_number"] for l in open(sys.argv[1])]
print(len(s), s[0], "contiguous" if s == list(range(s[0], s[0] + len(s))) else "gaps")' "$T/pd.jsonl")
  check "--from $from across a drop: 3000 events from $first, contiguous (got '$got', rc $(cat "$T/pd.rc"))" \
    eval '[ "$got" = "3000 $first contiguous" ] && grep -q eh_connection_retry "$T/pd.err"'
done

# ---- a drop mid-send: nothing lost; what was unsettled is sent again (at
# least once: Proton 0.37 cannot ask for the idempotent producer, so a
# duplicate is possible and counted, not failed)
# the partition's size from management (reading it all back with tail could
# time out on a loaded machine and make the drop land before the send)
n1=$(( $("$EHDELTA" status "${E[@]}" --partition 1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["partitions"][0]["last_enqueued_sequence_number"])') + 1 ))
"$EHDELTA" send "${E[@]}" --partition 1 --count 20000 --rate 5000 --seed 21 --no-progress >"$T/sd.out" 2>"$T/sd.err" &
spid=$!
for ((i = 0; i < 200; i++)); do
  last=$("$EHDELTA" status "${E[@]}" --partition 1 --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["partitions"][0]["last_enqueued_sequence_number"])' 2>/dev/null)
  [ "${last:-0}" -ge $((n1 + 1000)) ] && break
  sleep 0.05
done
ctl drop >/dev/null
wait $spid
rc=$?
check "send across a drop (at seq ${last:-?}, after $i polls): exit 0, all 20000 accepted (rc=$rc: $(cat "$T/sd.out"))" eval '[ $rc -eq 0 ] && grep -q "accepted 20000, failed 0" "$T/sd.out" && grep -qE "eh_tx_retry|eh_connection_retry" "$T/sd.err"'
timeout 30 "$EHDELTA" tail "${E[@]}" -p 1 --from "seq:$n1" --to-end >"$T/sd.jsonl" 2>/dev/null
res=$(python3 - "$T/sd.jsonl" <<'PY'
import json, sys
ids = [json.loads(json.loads(l)["body"])["transaction_id"] for l in open(sys.argv[1])]
want = {f"T{i:06d}" for i in range(1, 20001)}
print("lost", len(want - set(ids)), "duplicates", len(ids) - len(set(ids)))
PY
)
check "no event lost across the drop ($res)" [ "${res%% duplicates*}" = "lost 0" ]

# ---- tokens: 2 s lifetimes, refreshed at 80%, for ~8 s of following
timeout 60 "$EHDELTA" tail "${E[@]}" -p 2 --from latest --count 400 --token-lifetime 2s --log-level debug >"$T/k.jsonl" 2>"$T/k.err" &
kpid=$!
ready_rx "$T/k.err"
"$EHDELTA" send "${E[@]}" --partition 2 --count 400 --rate 50 --seed 9 --token-lifetime 2s --no-progress >"$T/ks.out" 2>"$T/ks.err"
check "sender with 2 s tokens over 8 s: all 400 accepted" grep -q 'accepted 400, failed 0' "$T/ks.out"
wait $kpid
check "receiver with 2 s tokens over 8 s: exit 0" [ $? -eq 0 ]
check "receiver got all 400, once, in order ($(check_stream "$T/k.jsonl"))" [ "$(check_stream "$T/k.jsonl")" = "400 400 contiguous" ]
puts=$(grep -c eh_put_token "$T/k.err")
check "the token was put again on the same connection at least 4 times ($puts puts, no reconnect, no re-attach)" 
  eval '[ "$puts" -ge 5 ] && ! grep -q "eh_connection_retry\|eh_rx_retry" "$T/k.err"'

# `expire`: the links the tokens authorized are detached; the client puts a
# fresh token and re-attaches after the last event it printed
n2=$(timeout 30 "$EHDELTA" tail "${E[@]}" -p 2 --from earliest --to-end | wc -l)
timeout 60 "$EHDELTA" tail "${E[@]}" -p 2 --from "seq:$n2" --count 400 --prefetch 20 >"$T/x.jsonl" 2>"$T/x.err" &
xpid=$!
"$EHDELTA" send "${E[@]}" --partition 2 --count 400 --rate 100 --seed 11 --no-progress >/dev/null 2>&1 &
spid=$!
for ((i = 0; i < 200; i++)); do [ "$(wc -l <"$T/x.jsonl")" -ge 50 ] && break; sleep 0.05; done
echo "expire after $(wc -l <"$T/x.jsonl") events: $(ctl expire)"
wait $spid
wait $xpid
rc=$?
check "after expire: the receiver continues (rc=$rc; $(check_stream "$T/x.jsonl"))" eval '[ $rc -eq 0 ] && [ "$(check_stream "$T/x.jsonl")" = "400 400 contiguous" ]'
grep -q 'eh_rx_retry.*expired' "$T/x.err"
x=$?
check "the expiry was retried, not fatal" eval '[ $x -eq 0 ] || { cat "$T/x.err"; false; }'

# an unanswered put-token: answers held back longer than --timeout
timeout 60 "$EHDELTA" tail "${E[@]}" -p 2 --from latest --count 5 --timeout 2s --token-lifetime 3s --log-level debug >"$T/u.jsonl" 2>"$T/u.err" &
upid=$!
ready_rx "$T/u.err"
ctl delay 2500 >/dev/null
wait_for_line "$T/u.err" 'eh_put_token_timeout' 15
check "an unanswered put-token times out and is put again" [ $? -eq 0 ]
ctl delay 0 >/dev/null
"$EHDELTA" send "${E[@]}" --partition 2 --count 5 --no-progress >/dev/null 2>&1
wait $upid
check "the receiver carries on afterwards (rc=$?, $(wc -l <"$T/u.jsonl") events)" [ "$(wc -l <"$T/u.jsonl")" -eq 5 ]

# ---- server-busy on send: every rejected event retried, each accepted once
p3=$(timeout 30 "$EHDELTA" tail "${E[@]}" -p 3 --from earliest --to-end | wc -l)
check "busy 50" [ "$(ctl busy 50)" = ok ]
"$EHDELTA" send "${E[@]}" --partition 3 --count 500 --seed 5 --no-progress >"$T/b.out" 2>"$T/b.err"
rc=$?
check "send through 50 server-busy rejections: exit 0, accepted 500, retried 50 (rc=$rc: $(cat "$T/b.out"))" 
  eval '[ $rc -eq 0 ] && grep -q "accepted 500, failed 0, retried 50" "$T/b.out"'
timeout 30 "$EHDELTA" tail "${E[@]}" -p 3 --from "seq:$p3" --to-end >"$T/b.jsonl" 2>/dev/null
check "partition 3 holds each of the 500 exactly once ($(check_stream "$T/b.jsonl"))" [ "$(check_stream "$T/b.jsonl")" = "500 500 contiguous" ]
# ---- --idle-exit: a bare 0 parses (never), a duration ends an idle follow
timeout 20 "$EHDELTA" tail "${E[@]}" -p 0 --from 'seq:0' --count 1 --idle-exit 0 >/dev/null 2>"$T/i.err"
rc=$?
check "--idle-exit 0 parses (rc=$rc $(cat "$T/i.err"))" [ $rc -eq 0 ]
t0=$(date +%s%N)
timeout 20 "$EHDELTA" tail "${E[@]}" -p 0 --from latest --idle-exit 1s >"$T/i.jsonl" 2>"$T/i.err"
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
check "--idle-exit 1s with nothing arriving: exit 0 after about a second (rc=$rc, ${ms} ms)" eval '[ $rc -eq 0 ] && [ $ms -ge 1000 ] && [ $ms -lt 10000 ] && [ ! -s "$T/i.jsonl" ]'

# ---- bad input: one line each, the documented status
oneline() { # WANT_RC DESC CMD...: runs CMD, checks its status and a one-line stderr
  local want=$1 d=$2 out rc
  shift 2
  out=$("$@" 2>&1 >/dev/null)
  rc=$?
  check "$d: exit $want, one line (rc=$rc: $out)" eval '[ $rc -eq $want ] && [ "$(wc -l <<<"$out")" -eq 1 ]'
}
oneline 2 "tail of a partition the hub does not have" timeout 30 "$EHDELTA" tail "${E[@]}" -p 9 --from earliest --count 1
oneline 2 "send to a partition the hub does not have" timeout 30 "$EHDELTA" send "${E[@]}" -p 9 --count 1 --no-progress
oneline 4 "tail of an unknown consumer group" timeout 30 "$EHDELTA" tail "${E[@]}" -g nosuch --from earliest --count 1
sed "s/127.0.0.1:$port/127.0.0.1:$(free_port)/" "$T/cs" >"$T/cs-closed"
# An unreachable namespace: the refusal is said at once (one warning) while it
# retries, then one error line when --timeout runs out.
out=$(timeout 30 "$EHDELTA" status --connection-string-file "$T/cs-closed" --timeout 3s 2>&1 >/dev/null)
rc=$?
check "an unreachable namespace: exit 5, one warning then one error line (rc=$rc: $out)" \
  eval '[ $rc -eq 5 ] && [ "$(wc -l <<<"$out")" -eq 2 ] && head -1 <<<"$out" | grep -q " warn eh_connection_retry attempt=1 " && tail -1 <<<"$out" | grep -q "^ehdelta status: .*(still failing after 3 s)"'

# ---- standard output: a reader that leaves, a reader that stalls
timeout 20 "$EHDELTA" tail "${E[@]}" --from earliest | head -2 >"$T/h.jsonl"
rc=${PIPESTATUS[0]}
check "tail | head -2: tail ends by itself once head is gone (rc=$rc)" eval '[ $rc -eq 0 ] && [ "$(wc -l <"$T/h.jsonl")" -eq 2 ]'
python3 - "$EHDELTA" "$T/cs" >"$T/stall.out" <<'PY'
import fcntl, glob, subprocess, sys, termios, time
p = subprocess.Popen([sys.argv[1], "tail", "--connection-string-file", sys.argv[2], "--from",
                      "earliest"], stdout=subprocess.PIPE)  # never read
# The pipe is shrunk to one page, so that the hub's events (about 60 KB)
# overfill it however few they are; then wait until tail is stuck: the pipe
# holds bytes that stay unread for half a second while a thread of tail waits
# to write them (write_out polls for POLLOUT: poll(2), number 7, or write(2),
# number 1, in /proc/PID/task/*/syscall), however long tail takes to get there.
fcntl.fcntl(p.stdout, 1031, 4096)  # F_SETPIPE_SZ
held = lambda: int.from_bytes(fcntl.ioctl(p.stdout, termios.FIONREAD, bytes(4)), "little")
def waiting():
    for t in glob.glob(f"/proc/{p.pid}/task/*/syscall"):
        try:
            with open(t) as f:
                if f.read().split()[:1] in (["1"], ["7"]):
                    return True
        except OSError:
            pass
    return False
def stuck():
    n = held()
    time.sleep(0.5)
    return n > 0 and held() == n and waiting()
deadline = time.monotonic() + 60
while not stuck() and time.monotonic() < deadline:
    pass
print("stalled" if stuck() else f"never stuck writing ({held()} bytes held)")
p.terminate()
try:
    print(p.wait(5))
except subprocess.TimeoutExpired:
    p.kill()
    print("hung")
PY
check "a tail whose reader stalls still ends on SIGTERM (got '$(echo $(cat "$T/stall.out"))')" [ "$(echo $(cat "$T/stall.out"))" = "stalled 0" ]
finish
