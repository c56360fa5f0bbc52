#!/usr/bin/env bash
# The metrics endpoint of a real agent: ehemu -> ehdelta run --metrics-listen
# 127.0.0.1:0 (continuous, 1-second trigger). While it runs, /status and
# `ehdelta status --agent` show the sink's committed batch, /metrics counts
# every event per partition, the dead letters, a commit latency, and lag 0
# once everything is committed; after SIGTERM the endpoint is gone (exit 5).
. "$(dirname "$0")/../lib.sh"
[[ -x $EHEMU ]] || { echo "SKIP ehemu not built"; exit 77; }
command -v curl >/dev/null || { echo "SKIP: curl (the command) is not installed"; exit 77; }

start_ehemu tx 4
check "ehemu is ready" [ -n "$EMU_PORT" ]

cat >"$T/run.conf" <<CONF
[source]
connection_string_file = $T/cs
[schema]
columns = transaction_id STRING, customer_id STRING, amount DOUBLE, category STRING, timestamp TIMESTAMP, location STRING, payment_method STRING
[sink raw]
path = $T/raw
trigger = 1 second
CONF
"$EHDELTA" send --connection-string-file "$T/cs" --count 1000 >"$T/send1" 2>&1
check "sent 1000 events" [ $? -eq 0 ]
printf 'not json\n{"amount": "twelve"\n' >"$T/bad"
"$EHDELTA" send --connection-string-file "$T/cs" --input "$T/bad" --partition 2 >"$T/send2" 2>&1
check "sent 2 undecodable events" [ $? -eq 0 ]

"$EHDELTA" run --config "$T/run.conf" --metrics-listen 127.0.0.1:0 --log-level info \
  >"$T/out" 2>"$T/err" &
agent=$!
track "$agent"
wait_for_line "$T/err" 'metrics listening on ' 20
addr=$(grep -o 'metrics listening on [0-9.]*:[0-9]*' "$T/err" | awk '{print $4}')
check "the agent logs the address it bound ($addr)" grep -Eq '^127\.0\.0\.1:[1-9][0-9]*$' <<<"$addr"

# poll until the sink has committed everything and the monitor saw lag 0
metric() { awk -v k="$1" '$1 == k {print $2}' "$T/metrics"; }
for ((i = 0; i < 300; i++)); do
  curl -sf "http://$addr/metrics" >"$T/metrics" 2>/dev/null
  lag=$(grep -c '^ehdelta_consumer_lag_events{partition="[0-3]"} 0$' "$T/metrics")
  [[ $(metric 'ehdelta_rows_written_total{sink="raw"}') == 1000 && $lag == 4 ]] && break
  sleep 0.1
done
check "rows_written_total{sink=raw} reaches 1000" [ "$(metric 'ehdelta_rows_written_total{sink="raw"}')" = 1000 ]
check "lag 0 on each of the 4 partitions (got $lag)" [ "$lag" = 4 ]
total=0
for p in 0 1 2 3; do
  n=$(metric "ehdelta_events_received_total{partition=\"$p\"}")
  total=$((total + ${n:-0}))
done
check "events_received_total sums to 1002 over the partitions (got $total)" [ "$total" = 1002 ]
check "dead_letters_total is 2" [ "$(metric ehdelta_dead_letters_total)" = 2 ]
check "ehdelta_up is 1" [ "$(metric ehdelta_up)" = 1 ]
n=$(metric 'ehdelta_commit_latency_seconds_count{sink="raw"}')
check "at least one commit latency observed (count ${n:-none})" [ "${n:-0}" -ge 1 ]
check "its +Inf bucket equals its count" \
  [ "$(metric 'ehdelta_commit_latency_seconds_bucket{sink="raw",le="+Inf"}')" = "$n" ]
check "committed_sequence_number of partition 2 is its last enqueued" \
  [ "$(metric 'ehdelta_committed_sequence_number{partition="2"}')" = \
    "$(metric 'ehdelta_last_enqueued_sequence_number{partition="2"}')" ]

"$EHDELTA" status --agent "$addr" --json >"$T/status.json" 2>"$T/serr"
check "status --agent --json exits 0 ($(cat "$T/serr"))" [ $? -eq 0 ]
check "the page shows the agent's last progress for raw" python3 - "$T/status.json" "$addr" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
assert s["address"] == sys.argv[2], s["address"]
assert s["agent"].startswith("ehdelta-run-"), s["agent"]
raw = s["sinks"]["raw"]
assert raw["batchId"] >= 0 and raw["name"] == "raw", raw
assert s["metrics"]["rows_written_total"]["raw"] == 1000
assert sum(s["metrics"]["events_received_total"].values()) == 1002
PY
out=$("$EHDELTA" status --agent "$addr" 2>&1)
check "the table has a row for raw with its batch id" grep -Eq '^raw +[0-9]+ +[0-9]+ ' <<<"$out"
check "the table lists the 4 partitions, ready and owned, with lag 0" [ "$(grep -cE '^[0-3] +ready +owned +[0-9]+ +[0-9.]+ +0 +0$' <<<"$out")" = 4 ]
check "and the 2 dead letters" grep -q '^dead letters 2, ' <<<"$out"

kill -TERM "$agent"
for ((i = 0; i < 300; i++)); do kill -0 "$agent" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$agent" 2>/dev/null; then
  kill -KILL "$agent" # still running 30 s after SIGTERM: fail, and do not wait forever
  rc=timeout
else
  wait "$agent"
  rc=$?
fi
check "the agent exits 0 on SIGTERM (rc=$rc)" [ "$rc" = 0 ]
"$EHDELTA" status --agent "$addr" >/dev/null 2>"$T/serr"
rc=$?
check "after it stopped, status --agent exits 5 (rc=$rc)" [ $rc -eq 5 ]
finish
