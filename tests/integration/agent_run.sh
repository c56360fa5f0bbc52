#!/usr/bin/env bash
# ehdelta run end to end on loopback: ehemu -> ehdelta run (available-now)
# -> a local Delta table read by delta-rs: every sent transaction exactly
# once, again after a second run (nothing new) and after more events.
. "$(dirname "$0")/../lib.sh"
[[ -x $EHEMU ]] || { echo "SKIP ehemu not built"; exit 77; }

start_ehemu tx 4
check "ehemu is ready" [ -n "$EMU_PORT" ]

cat >"$T/run.conf" <<CONF
[source]
connection_string_file = $T/cs
[schema]
columns = transaction_id STRING, customer_id STRING, amount DOUBLE, category STRING, timestamp TIMESTAMP, location STRING, payment_method STRING
metadata = enqueued_time AS ingestion_time, offset, sequence_number AS sequenceNumber, partition
[sink raw]
path = $T/raw
partition_by = category
trigger = available-now
max_batch_events = 300
CONF
count_rows() { # rows, distinct ids, distinct (partition, sequenceNumber)
  "$VENV/bin/python" -c "
from deltalake import DeltaTable
t = DeltaTable('$T/raw').to_pyarrow_table().to_pylist()
print(len(t), len({r['transaction_id'] for r in t}), len({(r['partition'], r['sequenceNumber']) for r in t}))"
}
"$EHDELTA" send --connection-string-file "$T/cs" --count 1000 >"$T/send1" 2>&1
rc=$?
check "sent 1000 events" [ $rc -eq 0 ]
"$EHDELTA" run --config "$T/run.conf" --progress "$T/p1" >/dev/null 2>"$T/e1"
rc=$?
check "run 1 exits 0 (got $rc: $(tail -c 300 "$T/e1"))" [ $rc -eq 0 ]
check "run 1 printed progress lines" grep -q '"numInputRows"' "$T/p1"
got=$(count_rows)
check "1000 rows, 1000 ids, 1000 positions (got $got)" [ "$got" = "1000 1000 1000" ]
"$EHDELTA" run --config "$T/run.conf" --progress "$T/p2" >/dev/null 2>"$T/e2"
rc=$?
check "run 2 exits 0 (got $rc)" [ $rc -eq 0 ]
got=$(count_rows)
check "run 2 over the same events adds nothing (got $got)" [ "$got" = "1000 1000 1000" ]
"$EHDELTA" send --connection-string-file "$T/cs" --count 500 >"$T/send2" 2>&1
"$EHDELTA" run --config "$T/run.conf" --progress "$T/p3" >/dev/null 2>"$T/e3"
rc=$?
check "run 3 exits 0 (got $rc)" [ $rc -eq 0 ]
got=$(count_rows)
check "run 3 adds the 500 new events once (got $got)" [ "$(echo "$got" | cut -d' ' -f1,3)" = "1500 1500" ]
for lv in 1 19; do
  sed "s|^path = .*|path = $T/raw$lv|; s|^max_batch_events = 300|max_batch_events = 300\nzstd_level = $lv|" \
    "$T/run.conf" >"$T/run$lv.conf"
  "$EHDELTA" run --config "$T/run$lv.conf" --log-level warn >/dev/null 2>"$T/e$lv"
done
bytes() { find "$1" -name '*.parquet' -printf '%s\n' | awk '{n += $1} END {print n + 0}'; }
b1=$(bytes "$T/raw1") b19=$(bytes "$T/raw19")
got=$("$VENV/bin/python" -c "
from deltalake import DeltaTable
a, b = (sorted(DeltaTable(p).to_pyarrow_table().to_pylist(), key=lambda r: r['sequenceNumber'] * 64 + int(r['partition'])) for p in ('$T/raw1', '$T/raw19'))
print(len(a), a == b)")
check "zstd_level 1 and 19 write the same 1500 rows (got $got)" [ "$got" = "1500 True" ]
check "zstd_level 19 writes smaller files than 1 ($b19 < $b1 bytes)" [ "$b19" -lt "$b1" ]
"$EHDELTA" run --connection-string-file "$T/cs" --schema "transaction_id STRING, amount DOUBLE" \
  --metadata "sequence_number AS seq, partition" --derive "big = amount > 250" \
  --table "$T/simple" --trigger available-now --log-level warn 2>"$T/e4"
rc=$?
check "the simple case by flags exits 0 (got $rc: $(tail -c 300 "$T/e4"))" [ $rc -eq 0 ]
got=$("$VENV/bin/python" -c "
from deltalake import DeltaTable
t = DeltaTable('$T/simple').to_pyarrow_table().to_pylist()
print(len(t), len({(r['partition'], r['seq']) for r in t}), all(r['big'] == (r['amount'] > 250) for r in t))")
check "it wrote every event once with its derived column (got $got)" [ "$got" = "1500 1500 True" ]
"$EHDELTA" run --config "$T/run.conf" --table "$T/x" 2>/dev/null
rc=$?
check "--config with simple-case flags is a usage error (got $rc)" [ $rc -eq 2 ]
"$EHDELTA" inspect "$T/raw" >"$T/inspect" 2>&1
check "inspect shows the agent's checkpoint of the last batch" grep -q '^  ehdelta-raw batch=[0-9]* ' "$T/inspect"
"$EHDELTA" inspect --json "$T/raw" >"$T/inspect.json" 2>&1
check "inspect --json: its positions add up to the 1500 events" "$VENV/bin/python" -c "
import json
d = json.load(open('$T/inspect.json'))['agentCheckpoints']['ehdelta-raw']
assert sum(v + 1 for v in d['sequenceNumbers'].values()) == 1500, d"
finish
