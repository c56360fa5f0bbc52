#!/usr/bin/env bash
# ehdelta_consumer_lag_events is never negative (issue 19 item 12). The hub's
# last sequence number is polled; commits land between polls. Here the poll
# never comes after start (--lag-poll-interval 1h, a hidden flag), so the
# only polled value is the one read at start (4, after 5 events) while the
# agent then receives and commits 10 more: the lag must be 0, not 4 - 14.
. "$(dirname "$0")/../lib.sh"
[[ -x $EHEMU ]] || { echo "SKIP ehemu not built"; exit 77; }
command -v curl >/dev/null || { echo "SKIP: curl (the command) is not installed"; exit 77; }

start_ehemu lagged 1
check "ehemu is ready" [ -n "$EMU_PORT" ]
cat >"$T/run.conf" <<CONF
[source]
connection_string_file = $T/cs
[schema]
columns = transaction_id STRING, amount DOUBLE
[sink raw]
path = $T/raw
trigger = 1 second
CONF
"$EHDELTA" send --connection-string-file "$T/cs" --count 5 >"$T/send1" 2>&1
check "sent 5 events before the start" [ $? -eq 0 ]
"$EHDELTA" run --config "$T/run.conf" --metrics-listen 127.0.0.1:0 --lag-poll-interval 1h \
  --log-level info >"$T/out" 2>"$T/err" &
track $!
agent=$!
wait_for_line "$T/err" ' run source=' 20
addr=$(grep -o 'metrics listening on [0-9.]*:[0-9]*' "$T/err" | awk '{print $4}')
check "the agent started ($addr)" [ -n "$addr" ]
"$EHDELTA" send --connection-string-file "$T/cs" --count 10 >"$T/send2" 2>&1
check "sent 10 events after the start" [ $? -eq 0 ]

metric() { awk -v k="$1" '$1 == k {print $2}' "$T/metrics"; }
lags=()
for ((i = 0; i < 300; i++)); do
  curl -sf "http://$addr/metrics" >"$T/metrics" 2>/dev/null
  lags+=("$(metric 'ehdelta_consumer_lag_events{partition="0"}')")
  [[ $(metric 'ehdelta_committed_sequence_number{partition="0"}') == 14 ]] && break
  sleep 0.1
done
check "all 15 events committed (committed_sequence_number 14)" \
  [ "$(metric 'ehdelta_committed_sequence_number{partition="0"}')" = 14 ]
check "the lag is 0 once they are (got $(metric 'ehdelta_consumer_lag_events{partition="0"}'))" \
  [ "$(metric 'ehdelta_consumer_lag_events{partition="0"}')" = 0 ]
check "last_enqueued covers what was received (got $(metric 'ehdelta_last_enqueued_sequence_number{partition="0"}'))" \
  [ "$(metric 'ehdelta_last_enqueued_sequence_number{partition="0"}')" = 14 ]
neg=$(printf '%s\n' "${lags[@]}" | grep -c '^-' || true)
check "no negative lag was ever reported ($neg of ${#lags[@]} samples)" [ "$neg" = 0 ]
kill -TERM "$agent"
wait "$agent"
check "the agent stops cleanly on SIGTERM" [ $? -eq 0 ]
finish
