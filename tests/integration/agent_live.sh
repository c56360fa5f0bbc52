#!/usr/bin/env bash
# ehdelta run as a service: a 1-second trigger while events arrive, the
# metrics endpoint and `ehdelta status --agent` on a running agent, SIGTERM
# (finish the batch, commit, exit 0), a second signal (exit 130 at once), and
# after each stop a run that takes the rest: every event exactly once.
. "$(dirname "$0")/../lib.sh"
[[ -x $EHEMU ]] || { echo "SKIP ehemu not built"; exit 77; }

start_ehemu tx 4
check "ehemu is ready" [ -n "$EMU_PORT" ]
cat >"$T/run.conf" <<CONF
[source]
connection_string_file = $T/cs
[schema]
columns = transaction_id STRING, amount DOUBLE, category STRING, timestamp TIMESTAMP
metadata = sequence_number AS seq, partition
[sink raw]
path = $T/raw
trigger = 1 second
CONF
rows() {
  "$VENV/bin/python" -c "
from deltalake import DeltaTable
t = DeltaTable('$T/raw').to_pyarrow_table().to_pylist()
print(len(t), len({(r['partition'], r['seq']) for r in t}))"
}
sent() { # events the progress lines of FILE say were taken
  "$VENV/bin/python" -c "
import json, sys
try: print(sum(json.loads(l)['numInputRows'] for l in open(sys.argv[1])))
except FileNotFoundError: print(0)" "$1"
}

"$EHDELTA" run --config "$T/run.conf" --metrics-listen 127.0.0.1:0 --progress "$T/p1" \
  >/dev/null 2>"$T/e1" &
agent=$!
track $agent
wait_for_line "$T/e1" 'listening on' 10
addr=$(sed -n 's/.*listening on \([0-9.:]*\).*/\1/p' "$T/e1" | head -1)
check "the agent serves metrics (at '$addr')" [ -n "$addr" ]
"$EHDELTA" send --connection-string-file "$T/cs" --count 300 --no-progress >/dev/null 2>&1
# 60 s: a deadline against a hang, not a speed the machine must reach
for _ in $(seq 600); do [[ $(sent "$T/p1") == 300 ]] && break; sleep 0.1; done
check "the 300 events are committed by 1-second batches (got $(sent "$T/p1"))" [ "$(sent "$T/p1")" = 300 ]
curl -sf "http://$addr/metrics" >"$T/metrics"
total=$(grep '^ehdelta_events_received_total{' "$T/metrics" | awk '{s += $2} END {print s}')
check "events_received_total sums to 300 (got $total)" [ "$total" = 300 ]
check "batches_committed_total{sink=raw} is there" grep -q '^ehdelta_batches_committed_total{sink="raw"} [1-9]' "$T/metrics"
check "consumer lag has a series per partition" [ "$(grep -c '^ehdelta_consumer_lag_events{' "$T/metrics")" = 4 ]
check "the commit latency histogram is there" grep -q '^ehdelta_commit_latency_seconds_count{sink="raw"} [1-9]' "$T/metrics"
"$EHDELTA" status --agent "$addr" >"$T/status" 2>&1
check "status --agent names the sink" grep -q raw "$T/status"
"$EHDELTA" status --agent "$addr" --json >"$T/status.json" 2>&1
check "status --agent --json has the last progress" "$VENV/bin/python" -c "
import json, sys
d = json.load(open('$T/status.json'))
assert d['sinks']['raw']['batchId'] >= 0, d"

"$EHDELTA" send --connection-string-file "$T/cs" --count 200 --no-progress >/dev/null 2>&1
kill -TERM $agent
wait $agent
rc=$?
check "SIGTERM: exit 0 after the last batch (got $rc)" [ $rc -eq 0 ]
check "SIGTERM: no secret in the logs" bash -c "! grep -qF '$(cat "$T/key")' '$T/e1'"
"$EHDELTA" run --config "$T/run.conf" --available-now --progress "$T/p2" >/dev/null 2>"$T/e2"
check "a run after SIGTERM takes the rest: 500 rows, 500 positions (got $(rows))" [ "$(rows)" = "500 500" ]

"$EHDELTA" run --config "$T/run.conf" --progress "$T/p3" >/dev/null 2>"$T/e3" &
agent=$!
track $agent
"$EHDELTA" send --connection-string-file "$T/cs" --count 2000 --no-progress >/dev/null 2>&1
kill -TERM $agent
kill -TERM $agent
wait $agent
rc=$?
check "a second signal exits at once (got $rc, expected 0 or 130)" [ $rc -eq 130 -o $rc -eq 0 ]
"$EHDELTA" run --config "$T/run.conf" --available-now --progress "$T/p4" >/dev/null 2>"$T/e4"
check "and the next run still takes every event once (got $(rows))" [ "$(rows)" = "2500 2500" ]
finish
