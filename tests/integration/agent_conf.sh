#!/usr/bin/env bash
# ehdelta run --config: the tutorial's configuration and the ops sample pass
# --check; a broken file gets every problem with its line; the key tables and
# ehdelta.conf(5) agree both ways.
. "$(dirname "$0")/../lib.sh"

keys=$("$EHDELTA" run --list-conf-keys | sort -u)
doc=$(grep -A1 '^\.TP' "$TOP_SRCDIR/man/ehdelta.conf.5" | grep -oE '^\.B [a-z_]+\.[a-z_]+$' | sed 's/^\.B //' | sort -u)
missing=$(comm -23 <(echo "$keys") <(echo "$doc") | tr '\n' ' ')
extra=$(comm -13 <(echo "$keys") <(echo "$doc") | tr '\n' ' ')
check "ehdelta.conf.5 documents every key${missing:+ (missing: $missing)}" [ -z "$missing" ]
check "ehdelta.conf.5 documents no unknown key${extra:+ (unknown: $extra)}" [ -z "$extra" ]
check "there are keys at all" [ "$(echo "$keys" | wc -l)" -gt 30 ]

cat >"$T/tutorial.conf" <<CONF
[source]
hub = transactions-stream
connection_string_file = $T/cs
starting_position = earliest
[schema]
columns = transaction_id STRING, customer_id STRING, amount DOUBLE, category STRING, timestamp TIMESTAMP, location STRING, payment_method STRING
metadata = enqueued_time AS ingestion_time, offset, sequence_number AS sequenceNumber
derive = processing_time = current_timestamp()
derive = processing_date = to_date(timestamp)
[sink raw]
path = $T/raw
partition_by = processing_date
trigger = 1 minute
[sink by_category]
path = $T/by-category
window = timestamp, 5 minutes
group_by = category
aggregate = count(*) AS txn_count, sum(amount) AS total_amount, avg(amount) AS avg_amount
watermark = 10 minutes
trigger = 1 minute
[sink sliding]
type = console
window = timestamp, 10 minutes, 5 minutes
group_by = location
aggregate = count(*) AS txn_count, sum(amount) AS revenue
watermark = 10 minutes
[dead_letter]
path = $T/dead
CONF
check "the tutorial's configuration passes --check" "$EHDELTA" run --config "$T/tutorial.conf" --check
"$EHDELTA" run --config "$T/tutorial.conf" --check >"$T/resolved.conf"
check "--check fills in defaults (consumer group)" grep -qx 'consumer_group = \$Default' "$T/resolved.conf"
check "--check fills in defaults (console output mode is complete)" grep -qx 'output_mode = complete' <(sed -n '/^\[sink sliding\]/,$p' "$T/resolved.conf")
check "the resolved file passes --check again" "$EHDELTA" run --config "$T/resolved.conf" --check
sample=$TOP_SRCDIR/dist/ehdelta.conf.sample
if [[ -f $sample ]]; then
  "$EHDELTA" run --config "$sample" --check >"$T/sample.out" 2>&1
  check "dist/ehdelta.conf.sample passes --check$(sed 's/^/ | /' "$T/sample.out" | grep ':' | tr '\n' ' ')" [ $? -eq 0 ]
fi

cat >"$T/broken.conf" <<'CONF'
[source]
hub = h
starting_position = yesterday
colour = blue
[schema]
columns = a INT, b
[sink w]
window = timestamp, five minutes
trigger = often
[sink w]
[sink z]
path = z
zstd_level = 30
CONF
"$EHDELTA" run --config "$T/broken.conf" --check >"$T/out" 2>"$T/err"
rc=$?
check "a broken file exits 2 (got $rc)" [ $rc -eq 2 ]
for want in "broken.conf:3: \[source\] starting_position" "broken.conf:4: unknown key 'colour'" \
  "broken.conf:6: \[schema\] columns" "broken.conf:8: \[sink w\] window" \
  "broken.conf:9: \[sink w\] trigger 'often'" "broken.conf:10: \[sink w\] defined twice" \
  "broken.conf:13: \[sink z\] zstd_level .30.: expected a whole number from 1 to 22"; do
  check "reported: $want" grep -q "$want" "$T/err"
done
check "nothing on stdout for a broken file" [ ! -s "$T/out" ]
"$EHDELTA" run --config "$T/absent.conf" --check 2>/dev/null
rc=$?
check "a missing file exits 4 (got $rc)" [ $rc -eq 4 ]
# --check builds the plan run builds before it connects (issue 19 item 9):
# expressions, aggregates and partition columns are refused here, without a
# hub, with the configuration status and the problem named.
plan_conf() { # DERIVE SINK-LINES...
  local d=$1
  shift
  printf '[source]\nconnection_string_file = %s/cs\n[schema]\ncolumns = id STRING, amount DOUBLE, ts TIMESTAMP\n%s\n[sink s]\npath = %s/plan\n' \
    "$T" "$d" "$T"
  printf '%b\n' "$@"
}
while IFS='|' read -r what derive sinkline want; do
  plan_conf "$derive" "$sinkline" >"$T/plan.conf"
  "$EHDELTA" run --config "$T/plan.conf" --check >"$T/out" 2>"$T/err"
  rc=$?
  check "--check refuses $what with status 2 (got $rc)" [ $rc -eq 2 ]
  check "--check names it for $what: $(head -c 200 "$T/err")" grep -q "$want" "$T/err"
  check "--check prints no configuration for $what" [ ! -s "$T/out" ]
done <<'CASES'
a dangling operator|derive = x = amount +||derive x: .*expected a value, got the end
an unknown column|derive = x = nosuchcol * 2||no column 'nosuchcol'
an unknown function|derive = x = frobnicate(amount)||unknown function 'frobnicate'
an aggregate without a window|derive = x = sum(amount)||unknown function 'sum'
an unknown aggregate function|derive = x = amount|window = 1 minute\nwatermark = 1 minute\naggregate = frob(amount) AS n|unknown function 'frob'
an aggregate over an unknown column|derive = x = amount|window = 1 minute\nwatermark = 1 minute\naggregate = sum(nosuch) AS n|nosuch
a partition column the sink does not write|derive = x = amount|partition_by = nosuch|partition_by 'nosuch': no such column
CASES
plan_conf "derive = x = amount * 2" "partition_by = x" >"$T/plan.conf"
check "a good plan still passes --check" "$EHDELTA" run --config "$T/plan.conf" --check
check "--check touched no storage" [ ! -e "$T/plan" ]
# [source] checkpoint_store (issue 18): the URL's form and the timings are
# checked, the store itself is not reached (unreachable now is no error).
share_conf() { # SOURCE-LINES SINK-LINES
  printf '[source]\nconnection_string_file = %s/cs\n%b\n[schema]\ncolumns = id STRING\n[sink s]\npath = %s/plan\n%b\n' \
    "$T" "$1" "$T" "$2"
}
store=http://127.0.0.1:1/devstoreaccount1/own
while IFS='|' read -r what src sinkline flags want; do
  share_conf "$src" "$sinkline" >"$T/share.conf"
  # shellcheck disable=SC2086
  "$EHDELTA" run --config "$T/share.conf" --check $flags >"$T/out" 2>"$T/err"
  rc=$?
  check "--check refuses $what with status 2 (got $rc)" [ $rc -eq 2 ]
  check "--check names it for $what: $(head -c 300 "$T/err")" grep -q "$want" "$T/err"
done <<CASES
a checkpoint store that is no URL|checkpoint_store = not a url|||checkpoint_store 'not a url': expected the URL of a Blob container
a renewal too close to the expiry|checkpoint_store = $store\nownership_expiry = 8 seconds\nownership_renew = 7 seconds|||ownership_renew 7000 ms with ownership_expiry 8000 ms
an owner id with a space|checkpoint_store = $store\nowner_id = a b|||owner_id: expected 1 to 127 printable
an available-now run|checkpoint_store = $store|trigger = available-now||agents sharing a hub run continuously
--checkpoint-store of another scheme|||--checkpoint-store ftp://x/y|checkpoint_store 'ftp://x/y': expected the URL of a Blob container
a query id with a slash||query_id = q/1||\[sink s\] query id 'q/1': expected no '/'
a query id with a slash and a store|checkpoint_store = $store|query_id = ehdelta-s/0||query id 'ehdelta-s/0': expected no '/'
CASES
share_conf "" "query_id = q-1" >"$T/share.conf"
check "a query id without a slash passes --check" "$EHDELTA" run --config "$T/share.conf" --check
share_conf "checkpoint_store = $store\nownership_expiry = 8 seconds\nownership_renew = 1 second" "" >"$T/share.conf"
check "an unreachable checkpoint store passes --check" "$EHDELTA" run --config "$T/share.conf" --check
check "--owner-id passes --check" "$EHDELTA" run --config "$T/share.conf" --check --owner-id agent-1
rm -f "$T/cs"
"$EHDELTA" run --config "$T/tutorial.conf" 2>"$T/err"
rc=$?
check "running with the connection string file missing exits 4 (got $rc)" [ $rc -eq 4 ]
check "and names the file" grep -q "connection string file '$T/cs'" "$T/err"
check "in one line" [ "$(wc -l <"$T/err")" -eq 1 ]
finish
