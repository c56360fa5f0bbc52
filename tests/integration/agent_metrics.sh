#!/usr/bin/env bash
# The agent's metrics endpoint, served by tests/tools/metrics_tool with known
# values on a free loopback port: `ehdelta status --agent` prints its sinks as
# a table and as the raw JSON page, curl sees the Prometheus text, and an
# address where nothing listens exits 5.
. "$(dirname "$0")/../lib.sh"
TOOL=$TOP_BUILDDIR/tests/tools/metrics_tool
command -v curl >/dev/null || { echo "SKIP: curl (the command) is not installed"; exit 77; }
matches() { [[ $1 =~ $2 ]]; } # matches STRING REGEX

# The tool serves until its stdin closes: hold that open on a FIFO.
mkfifo "$T/in"
"$TOOL" <"$T/in" >"$T/tool.out" 2>"$T/tool.err" &
tool=$!
track "$tool"
exec 3>"$T/in"
if ! wait_for_line "$T/tool.out" '^listening ' 10; then
  not_ok "metrics_tool listens ($(cat "$T/tool.err"))"
  
# a token from a file, required on every request
printf 'tool-secret-42\n' >"$T/token"
mkfifo "$T/in2"
"$TOOL" 127.0.0.1:0 "$T/token" <"$T/in2" >"$T/tool2.out" 2>"$T/tool2.err" &
tool2=$!
track "$tool2"
exec 4>"$T/in2"
if wait_for_line "$T/tool2.out" '^listening ' 10; then
  addr2=$(awk '/^listening /{print $2}' "$T/tool2.out")
  for path in / /status /history /metrics /healthz; do
    code=$(curl -s -o "$T/body" -w '%{http_code}' "http://$addr2$path")
    check "$path without the token is 401 ($code)" [ "$code" = 401 ]
    check "$path with it as a bearer is 200" [ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer tool-secret-42' "http://$addr2$path")" = 200 ]
  done
  check "401 does not echo the token" bash -c '! grep -q tool-secret "$0"' "$T/body"
  check "?token= works (the page's own fetches)" [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$addr2/status?since=1&token=tool-secret-42")" = 200 ]
  check "a wrong token is 401" [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$addr2/status?token=tool-secret-43")" = 401 ]
  check "a prefix of the token is 401" [ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer tool-secret-4' "http://$addr2/status")" = 401 ]
  "$EHDELTA" status --agent "$addr2" >/dev/null 2>"$T/err"
  rc=$?
  check "status --agent without --token-file fails and says why (rc=$rc: $(cat "$T/err"))" \
    bash -c '[ "$0" -eq 1 ] && grep -q "HTTP 401.*--token-file" "$1"' "$rc" "$T/err"
  "$EHDELTA" status --agent "$addr2" --token-file "$T/token" >"$T/out" 2>"$T/err"
  rc=$?
  check "status --agent --token-file reads it (rc=$rc)" \
    bash -c '[ "$0" -eq 0 ] && grep -q "^agent tool-agent" "$1"' "$rc" "$T/out"
  : >"$T/empty"
  "$EHDELTA" status --agent "$addr2" --token-file "$T/empty" >/dev/null 2>"$T/err"
  rc=$?
  check "an empty token file is a usage error naming it (rc=$rc: $(cat "$T/err"))" \
    bash -c '[ "$0" -eq 2 ] && grep -q "token file .$1. is empty" "$2"' "$rc" "$T/empty" "$T/err"
else
  not_ok "metrics_tool with a token listens ($(cat "$T/tool2.err"))"
fi
exec 4>&-
wait "$tool2"
finish
  exit
fi
addr=$(awk '/^listening /{print $2}' "$T/tool.out")
port=${addr##*:}
check "bound on loopback with a real port ($addr)" matches "$addr" '^127\.0\.0\.1:[1-9][0-9]*$'

# the table
out=$("$EHDELTA" status --agent "$addr" 2>"$T/err")
rc=$?
check "status --agent exits 0 (rc=$rc $(cat "$T/err"))" [ "$rc" -eq 0 ]
check "table names the agent and its address" grep -q "^agent tool-agent at $addr, started 20" <<<"$out"
check "table has the column heads" grep -Eq '^SINK +BATCH +INPUT_ROWS +INPUT_ROWS/S +PROCESSED_ROWS/S +WATERMARK +STATE_ROWS +LAST_COMMIT$' <<<"$out"
raw=$(grep -E '^raw ' <<<"$out")
read -r -a f <<<"$raw"
check "raw: batch 41, 997 rows, rates 1234.5 and 4321.25 ($raw)" \
  [ "${f[1]}" = 41 -a "${f[2]}" = 997 -a "${f[3]}" = 1234.5 -a "${f[4]}" = 4321.25 ]
check "raw: watermark and state rows summed over operators (12+3)" \
  [ "${f[5]}" = 2026-12-02T00:00:00.000Z -a "${f[6]}" = 15 ]
check "raw: last commit time is ISO-8601 UTC" matches "${f[7]}" '^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$'
check "a sink without progress shows dashes" grep -Eq '^by_category +- +- +- +- +- +- +-$' <<<"$out"
check "sinks sorted by name, in both sink tables" [ "$(grep -nE '^(by_category|raw) ' <<<"$out" | cut -d: -f2 | cut -c1-3 | tr '\n' ' ')" = "by_ raw by_ raw " ]
check "the agent line has its memory and CPU" grep -Eq "^agent tool-agent at .*, rss [0-9.]+ [KMG]i?B, cpu [0-9.-]+%$" <<<"$out"
check "phase table has its column heads" grep -Eq '^SINK +BATCH_MS +PROCESS +QUEUE +CHECKPOINT +FILES +COMMIT +TABLE_VERSION +STATE_MEMORY +DROPPED_LATE$' <<<"$out"
check "partition table has its column heads" grep -Eq '^PARTITION +STATE +OWNED +EVENTS +EVENTS/S +LAG +LAG_S$' <<<"$out"
check "partition 0: ready, owned, 600 events, lag 17" grep -Eq '^0 +ready +owned +600 +[0-9.]+ +17 +[-0-9.]+$' <<<"$out"
check "partition 1: retrying, owned, 400 events, lag 0 is 0 s" grep -Eq '^1 +retrying +owned +400 +[0-9.]+ +0 +0$' <<<"$out"
check "dead letters and retries" grep -q '^dead letters 3, retries 2$' <<<"$out"
check "receivers ready" grep -q '^receivers ready 1 of 2$' <<<"$out"
check "the last warning, with its time" grep -Eq '^  20[0-9-]+T[0-9:.]+Z warn +partition_retry partition=1 connection reset$' <<<"$out"

# --json: the page as served, parsed by a JSON reader nobody here wrote
"$EHDELTA" status --agent "$addr" --json >"$T/status.json" 2>"$T/err"
rc=$?
check "status --agent --json exits 0 (rc=$rc)" [ "$rc" -eq 0 ]
check "--json is the /status page" python3 - "$T/status.json" "$addr" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
assert s["agent"] == "tool-agent", s
assert s["address"] == sys.argv[2], s
assert s["startedAt"].endswith("Z") and s["uptimeSeconds"] >= 0
assert s["sinks"]["by_category"] is None
raw = s["sinks"]["raw"]
assert raw["batchId"] == 41 and raw["numInputRows"] == 997 and raw["processedRowsPerSecond"] == 4321.25
assert s["lastCommitAt"]["raw"].endswith("Z") and s["lastCommitAt"]["by_category"] is None
m = s["metrics"]
assert m["events_received_total"] == {"0": 600, "1": 400}, m
assert m["consumer_lag_events"] == {"0": 17, "1": 0}
assert m["dead_letters_total"] == 3 and m["retries_total"] == 2 and m["up"] == 1
assert m["commit_latency_seconds"]["raw"] == {"count": 2, "sum": 0.32}
PY
check "an http:// URL and :PORT name the same agent" \
  bash -c '"$0" status --agent "http://$1/" --json | grep -q "\"agent\":\"tool-agent\"" &&
           "$0" status --agent ":$2" --json | grep -q "\"agent\":\"tool-agent\""' "$EHDELTA" "$addr" "$port"

# Prometheus text, as a scraper sees it
curl -sS -D "$T/h" "http://$addr/metrics" >"$T/metrics" 2>"$T/err"
check "curl /metrics ($(cat "$T/err"))" grep -q '^HTTP/1.1 200' "$T/h"
check "Content-Type text/plain; version=0.0.4" grep -qi '^Content-Type: text/plain; version=0.0.4' "$T/h"
for line in \
  '# TYPE ehdelta_events_received_total counter' \
  'ehdelta_events_received_total{partition="0"} 600' \
  'ehdelta_events_received_total{partition="1"} 400' \
  'ehdelta_consumer_lag_events{partition="0"} 17' \
  '# TYPE ehdelta_consumer_lag_events gauge' \
  'ehdelta_dead_letters_total 3' \
  'ehdelta_retries_total 2' \
  'ehdelta_rows_written_total{sink="raw"} 997' \
  '# TYPE ehdelta_commit_latency_seconds histogram' \
  'ehdelta_commit_latency_seconds_bucket{sink="raw",le="0.025"} 1' \
  'ehdelta_commit_latency_seconds_bucket{sink="raw",le="0.5"} 2' \
  'ehdelta_commit_latency_seconds_bucket{sink="raw",le="+Inf"} 2' \
  'ehdelta_commit_latency_seconds_count{sink="raw"} 2' \
  'ehdelta_up 1'; do
  check "/metrics has: $line" grep -qxF "$line" "$T/metrics"
done
helps=$(grep -c '^# HELP ' "$T/metrics")
types=$(grep -c '^# TYPE ' "$T/metrics")
check "one HELP and one TYPE per family ($helps, $types)" [ "$helps" -eq "$types" -a "$helps" -ge 19 ]
check "every sample line is name{labels} value" \
  bash -c '! grep -v "^#" "$0" | grep -vE "^ehdelta_[a-z_]+(\{[a-z_]+=\"[^\"]*\"(,[a-z_]+=\"[^\"]*\")*\})? [-+0-9.e]+(Inf)?$"' "$T/metrics"
# ehdelta-run(1) METRICS documents every family served, and only those
served=$(sed -n 's/^# TYPE \(ehdelta_[a-z_]*\) .*/\1/p' "$T/metrics" | sort -u)
documented=$(sed -n '/^\.SH METRICS/,/^\.SH/p' "$TOP_SRCDIR/man/ehdelta-run.1" |
  sed -n 's/^\.B \(ehdelta_[a-z_]*[a-z]\).*/\1/p' | sort -u)
missing=$(comm -23 <(echo "$served") <(echo "$documented") | tr '\n' ' ')
extra=$(comm -13 <(echo "$served") <(echo "$documented") | tr '\n' ' ')
check "ehdelta-run.1 documents every metric${missing:+ (missing: $missing)}" [ -z "$missing" ]
check "ehdelta-run.1 documents no unknown metric${extra:+ (unknown: $extra)}" [ -z "$extra" ]
check "/healthz is ok" [ "$(curl -sS "http://$addr/healthz")" = ok ]
check "an unknown path is 404" [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$addr/nope")" = 404 ]
check "POST is 405" [ "$(curl -s -o /dev/null -w '%{http_code}' -d x "http://$addr/metrics")" = 405 ]

# a 404 endpoint is not an agent (exit 4), nothing listening is unavailable (exit 5)
"$EHDELTA" status --agent "http://$addr/nope" >/dev/null 2>"$T/err"
rc=$?
check "a 404 page exits 4 (rc=$rc)" [ "$rc" -eq 4 ]
dead=$(free_port)
"$EHDELTA" status --agent "127.0.0.1:$dead" >"$T/out" 2>"$T/err"
rc=$?
check "an unreachable agent exits 5 (rc=$rc)" [ "$rc" -eq 5 ]
check "with one line naming the address ($(cat "$T/err"))" \
  matches "$(cat "$T/err")" "^ehdelta status: cannot reach the agent at 127\\.0\\.0\\.1:$dead: [^
]*$"
check "and nothing on stdout" [ ! -s "$T/out" ]
# an endpoint that accepts and never answers: --timeout bounds the wait
python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(4)
print(s.getsockname()[1], flush=True)
conns = []
while True:
    c, _ = s.accept(); conns.append(c)
' >"$T/mute.port" 3>&- &
track $!
wait_for_line "$T/mute.port" '^[0-9]+$' 10
start=$(date +%s%N)
"$EHDELTA" status --agent "127.0.0.1:$(cat "$T/mute.port")" --timeout 1s >/dev/null 2>"$T/err"
rc=$?
ms=$((($(date +%s%N) - start) / 1000000))
check "a mute endpoint times out with exit 5 (rc=$rc, ${ms} ms: $(cat "$T/err"))" [ "$rc" -eq 5 -a "$ms" -lt 10000 ]
check "and says it timed out" grep -qi 'timed out\|timeout' "$T/err"
"$EHDELTA" status --agent "127.0.0.1:$dead" --partition 0 >/dev/null 2>&1
rc=$?
check "--partition with --agent is a usage error (rc=$rc)" [ "$rc" -eq 2 ]

# the page and its history
curl -sS -D "$T/h" "http://$addr/" >"$T/page.html" 2>"$T/err"
check "GET / is the page ($(head -1 "$T/h"))" grep -q '^HTTP/1.1 200' "$T/h"
check "as HTML" grep -qi '^Content-Type: text/html; charset=utf-8' "$T/h"
check "that may fetch from this agent only" grep -qi "^Content-Security-Policy: default-src 'none';.* connect-src 'self'" "$T/h"
check "the page is the compiled-in file" cmp -s "$T/page.html" "$TOP_SRCDIR/src/agent/page/status.html"
check "and names no other host" bash -c '! grep -Eo "(src|href)=\"(https?:)?//[^\"]+" "$0" | grep -q .' "$T/page.html"
curl -sS "http://$addr/history" >"$T/history.json"
check "GET /history: bounded rings, the batch of raw" python3 - "$T/history.json" <<'PY'
import json, sys
h = json.load(open(sys.argv[1]))
assert h["capacity"] == 3600 and h["batchCapacity"] == 1024, h
assert h["columns"][:2] == ["t", "eventsReceived"], h["columns"]
raw = [dict(zip(h["batchColumns"], r)) for r in h["sinks"]["raw"]]
assert len(raw) == 1 and raw[0]["batchId"] == 41 and raw[0]["inputRowsPerSecond"] == 1234.5, raw
assert raw[0]["stateRows"] == 15 and raw[0]["watermarkMs"] == 1796169600000, raw
PY

# --watch: the same view again and again until interrupted (not a terminal:
# frames follow each other)
"$EHDELTA" status --agent "$addr" --watch --interval 0.1s >"$T/watch" 2>"$T/err" &
w=$!
track "$w"
for ((i = 0; i < 200; i++)); do
  [[ $(grep -c '^agent tool-agent' "$T/watch") -ge 3 ]] && break
  sleep 0.05
done
kill -INT "$w"
wait "$w"
rc=$?
check "--watch redrew the view ($(grep -c '^agent tool-agent' "$T/watch") frames) and exits 0 on SIGINT (rc=$rc)" \
  [ "$(grep -c '^agent tool-agent' "$T/watch")" -ge 3 -a "$rc" -eq 0 ]
"$EHDELTA" status --watch >/dev/null 2>"$T/err"
rc=$?
check "--watch without --agent is a usage error (rc=$rc: $(cat "$T/err"))" [ "$rc" -eq 2 ]

# closing stdin stops the server cleanly
exec 3>&-
for ((i = 0; i < 100; i++)); do kill -0 "$tool" 2>/dev/null || break; sleep 0.05; done
if kill -0 "$tool" 2>/dev/null; then
  kill "$tool" # still serving 5 s after stdin closed: fail, and do not wait forever
  rc=timeout
else
  wait "$tool"
  rc=$?
fi
check "the tool exits 0 when stdin closes (rc=$rc)" [ "$rc" = 0 ]

# a token from a file, required on every request
printf 'tool-secret-42\n' >"$T/token"
mkfifo "$T/in2"
"$TOOL" 127.0.0.1:0 "$T/token" <"$T/in2" >"$T/tool2.out" 2>"$T/tool2.err" &
tool2=$!
track "$tool2"
exec 4>"$T/in2"
if wait_for_line "$T/tool2.out" '^listening ' 10; then
  addr2=$(awk '/^listening /{print $2}' "$T/tool2.out")
  for path in / /status /history /metrics /healthz; do
    code=$(curl -s -o "$T/body" -w '%{http_code}' "http://$addr2$path")
    check "$path without the token is 401 ($code)" [ "$code" = 401 ]
    check "$path with it as a bearer is 200" [ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer tool-secret-42' "http://$addr2$path")" = 200 ]
  done
  check "401 does not echo the token" bash -c '! grep -q tool-secret "$0"' "$T/body"
  check "?token= works (the page's own fetches)" [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$addr2/status?since=1&token=tool-secret-42")" = 200 ]
  check "a wrong token is 401" [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$addr2/status?token=tool-secret-43")" = 401 ]
  check "a prefix of the token is 401" [ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer tool-secret-4' "http://$addr2/status")" = 401 ]
  "$EHDELTA" status --agent "$addr2" >/dev/null 2>"$T/err"
  rc=$?
  check "status --agent without --token-file fails and says why (rc=$rc: $(cat "$T/err"))" \
    bash -c '[ "$0" -eq 1 ] && grep -q "HTTP 401.*--token-file" "$1"' "$rc" "$T/err"
  "$EHDELTA" status --agent "$addr2" --token-file "$T/token" >"$T/out" 2>"$T/err"
  rc=$?
  check "status --agent --token-file reads it (rc=$rc)" \
    bash -c '[ "$0" -eq 0 ] && grep -q "^agent tool-agent" "$1"' "$rc" "$T/out"
  : >"$T/empty"
  "$EHDELTA" status --agent "$addr2" --token-file "$T/empty" >/dev/null 2>"$T/err"
  rc=$?
  check "an empty token file is a usage error naming it (rc=$rc: $(cat "$T/err"))" \
    bash -c '[ "$0" -eq 2 ] && grep -q "token file .$1. is empty" "$2"' "$rc" "$T/empty" "$T/err"
else
  not_ok "metrics_tool with a token listens ($(cat "$T/tool2.err"))"
fi
exec 4>&-
wait "$tool2"
finish
