#!/usr/bin/env bash
# cli_send_stdin: `ehdelta send` sends what it is given and invents nothing
# unasked: piped standard input one event per line (kcat's producer), blank
# lines skipped, CRLF taken as a line end; -D for another delimiter; generated
# transactions only with --generate N (or --count N); a terminal on standard
# input with nothing else given is refused before anything is sent.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
[[ -x $EHEMU ]] || { echo "SKIP ehemu not built"; exit 77; }

start_ehemu stdin 1
check "ehemu is ready" [ -n "$EMU_PORT" ]
E=(--connection-string-file "$T/cs" --timeout 20s --no-progress)
# bodies: every event on the hub, oldest first, one body per line.
bodies() {
  timeout 60 "$EHDELTA" tail --connection-string-file "$T/cs" --from earliest --to-end --body text |
    python3 -c 'import json, sys; [print(json.loads(l)["body"]) for l in sys.stdin]'
}

printf '{"a":1}\n{"a":2}\n\n{"a":3}\r\n' | "$EHDELTA" send "${E[@]}" >"$T/s1.out" 2>"$T/s1.err"
rc=$?
cat "$T/s1.out" "$T/s1.err"
check "piped lines: exit 0" [ $rc -eq 0 ]
check "piped lines: 3 events sent (blank line skipped)" grep -q '^sent 3 events .* accepted 3, failed 0' "$T/s1.out"
printf '{"a":1}\n{"a":2}\n{"a":3}\n' >"$T/want1"
bodies >"$T/got1"
check "the hub holds exactly the three lines, CR stripped" cmp -s "$T/got1" "$T/want1"

printf 'x y\0second\nline\0' | "$EHDELTA" send "${E[@]}" -D '\0' >"$T/s2.out" 2>&1
check "-D '\\0': 2 events, newline inside the second kept" \
  bash -c '[ $0 -eq 0 ] && grep -q "^sent 2 events" "$1"' $? "$T/s2.out"
bodies >"$T/got2"
check "the hub holds 3 + 3 lines (the second event has two)" [ "$(wc -l <"$T/got2")" -eq 6 ]
check "the -D events arrived whole" bash -c 'tail -3 "$1" | cmp -s - <(printf "x y\nsecond\nline\n")' _ "$T/got2"

"$EHDELTA" send "${E[@]}" --generate 5 --seed 1 </dev/null >"$T/s3.out" 2>&1
check "--generate 5: 5 transactions, stdin ignored" bash -c '[ $0 -eq 0 ] && grep -q "^sent 5 events" "$1"' $? "$T/s3.out"
"$EHDELTA" send "${E[@]}" --count 2 --seed 1 </dev/null >"$T/s4.out" 2>&1
check "--count 2 is --generate 2" bash -c '[ $0 -eq 0 ] && grep -q "^sent 2 events" "$1"' $? "$T/s4.out"
"$EHDELTA" send "${E[@]}" </dev/null >"$T/s5.out" 2>&1
check "empty standard input: nothing sent, exit 0" bash -c '[ $0 -eq 0 ] && grep -q "^sent 0 events" "$1"' $? "$T/s5.out"
n_before=$(bodies | wc -l)

# A terminal on standard input: refused, one line, exit 2, nothing sent.
python3 - "$T/tty.out" "$EHDELTA" send "${E[@]}" <<'PY'
import os, subprocess, sys
master, slave = os.openpty()
r = subprocess.run(sys.argv[2:], stdin=slave, capture_output=True, text=True, timeout=60)
open(sys.argv[1], "w").write("rc=%d\n%s" % (r.returncode, r.stderr))
PY
cat "$T/tty.out"
check "a terminal with nothing piped: exit 2" grep -qx 'rc=2' "$T/tty.out"
check "a terminal with nothing piped: one line saying what to give" \
  bash -c '[ "$(wc -l <"$1")" -eq 2 ] && grep -qx "ehdelta send: nothing to send: pipe events on standard input (one per line), or give --input FILE or --generate N" "$1"' _ "$T/tty.out"
check "a terminal with nothing piped: nothing sent" [ "$(bodies | wc -l)" -eq "$n_before" ]

echo '{}' | "$EHDELTA" send "${E[@]}" --generate 1 --input - >"$T/s6.out" 2>&1
check "--generate with --input: exit 2, says so" bash -c '[ $0 -eq 2 ] && grep -q "not both" "$1"' $? "$T/s6.out"
echo '{}' | "$EHDELTA" send "${E[@]}" -D ab >"$T/s7.out" 2>&1
check "-D of two characters: exit 2, says what is expected" \
  bash -c '[ $0 -eq 2 ] && grep -q "expected one character" "$1"' $? "$T/s7.out"
finish
