#!/usr/bin/env bash
# max_batch_events is a bound (issue 19 item 13): no committed batch
# holds more rows than it, whatever the size of the blocks the receiver hands
# over (up to prefetch events each). For several bounds, every Delta commit's
# numOutputRows and the sum of its files' numRecords, and every progress
# line's numInputRows, are <= the bound, and together they hold every event.
. "$(dirname "$0")/../lib.sh"
[[ -x $EHEMU ]] || { echo "SKIP ehemu not built"; exit 77; }

start_ehemu bounded 2
check "ehemu is ready" [ -n "$EMU_PORT" ]
"$EHDELTA" send --connection-string-file "$T/cs" --count 5000 >"$T/send" 2>&1
check "sent 5000 events" [ $? -eq 0 ]

for bound in 333 1000 2000; do
  cat >"$T/b$bound.conf" <<CONF
[source]
connection_string_file = $T/cs
prefetch = 300
[schema]
columns = transaction_id STRING, amount DOUBLE
[sink raw]
path = $T/t$bound
trigger = available-now
max_batch_events = $bound
CONF
  "$EHDELTA" run --config "$T/b$bound.conf" --progress "$T/p$bound" --log-level warn \
    >"$T/out$bound" 2>"$T/err$bound"
  check "max_batch_events = $bound: the run exits 0 ($(head -c 300 "$T/err$bound"))" [ $? -eq 0 ]
  check "max_batch_events = $bound: no batch over the bound" \
    python3 - "$T/t$bound" "$T/p$bound" "$bound" <<'PY'
import glob, json, os, sys
table, progress, bound = sys.argv[1], sys.argv[2], int(sys.argv[3])
total, sizes = 0, []
for f in sorted(glob.glob(os.path.join(table, "_delta_log", "*.json"))):
    rows = out = None
    for line in open(f):
        a = json.loads(line)
        if "add" in a:
            rows = (rows or 0) + json.loads(a["add"]["stats"])["numRecords"]
        if "commitInfo" in a:
            out = a["commitInfo"].get("operationMetrics", {}).get("numOutputRows")
    if rows is None:
        continue
    if out is not None:
        assert int(out) == rows, (f, out, rows)
    sizes.append(rows)
    total += rows
inputs = [json.loads(l)["numInputRows"] for l in open(progress)]
over = [n for n in sizes + inputs if n > bound]
assert not over, f"bound {bound}: commits {sizes}, progress {inputs}"
assert total == 5000, f"bound {bound}: {total} rows in {sizes}"
print(f"bound {bound}: commits {sizes}")
PY
done
finish
