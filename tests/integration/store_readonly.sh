#!/usr/bin/env bash
# A table folder the agent may not write (EACCES) is a storage error, not a
# refused credential: ehdelta run exits 1 (ehdelta(1) EXIT STATUS) with one
# line naming the path and the system's reason, and no empty fields.
. "$(dirname "$0")/../lib.sh"
[[ -x $EHEMU ]] || { echo "SKIP ehemu not built"; exit 77; }
# root writes through mode bits: drop the capabilities that let it, or run
# as is when not root.
as_user=()
if [[ $(id -u) -eq 0 ]]; then
  command -v capsh >/dev/null || { echo "SKIP root without capsh"; exit 77; }
  as_user=(capsh --drop=cap_dac_override,cap_dac_read_search,cap_fowner --)
fi
run_as() {
  if [[ ${#as_user[@]} -gt 0 ]]; then "${as_user[@]}" -c "$(printf '%q ' "$@")"; else "$@"; fi
}

start_ehemu ro 2
check "ehemu is ready" [ -n "$EMU_PORT" ]
"$EHDELTA" send --connection-string-file "$T/cs" --count 10 >"$T/send" 2>&1
mkdir -p "$T/ro"
chmod 555 "$T/ro"
run_as touch "$T/ro/probe" 2>/dev/null && { echo "SKIP cannot make a folder read-only here"; exit 77; }

conf() { # conf TABLE
  cat <<CONF
[source]
connection_string_file = $T/cs
[schema]
columns = transaction_id STRING, amount DOUBLE
[sink raw]
path = $1
trigger = available-now
CONF
}
last_line() { grep -v '^{\|level=' "$1" | tail -n 1; }

# a new table in a folder that cannot be written
conf "$T/ro/raw" >"$T/ro.conf"
run_as "$EHDELTA" run --config "$T/ro.conf" >/dev/null 2>"$T/err1"
rc=$?
msg=$(last_line "$T/err1")
check "a read-only folder for a new table exits 1, a storage error (got $rc: $msg)" [ $rc -eq 1 ]
check "the message names the folder and the reason (got: $msg)" \
  grep -q "create directory '$T/ro/raw': Permission denied" <<<"$msg"

# a table that became read-only: the next batch fails to land
conf "$T/rw" >"$T/rw.conf"
run_as "$EHDELTA" run --config "$T/rw.conf" >/dev/null 2>"$T/err2"
rc=$?
check "a writable table takes the first batch (got $rc: $(last_line "$T/err2"))" [ $rc -eq 0 ]
"$EHDELTA" send --connection-string-file "$T/cs" --count 10 >"$T/send2" 2>&1
chmod -R a-w "$T/rw"
run_as "$EHDELTA" run --config "$T/rw.conf" >/dev/null 2>"$T/err3"
rc=$?
msg=$(last_line "$T/err3")
chmod -R u+w "$T/rw" "$T/ro"
check "a batch into a read-only table exits 1 (got $rc: $msg)" [ $rc -eq 1 ]
check "the message names the sink, batch, path and reason (got: $msg)" \
  grep -q "^ehdelta run: sink 'raw' batch 1: .*'$T/rw/.*': Permission denied$" <<<"$msg"
check "the message has no empty field (got: $msg)" bash -c '! grep -q ": :" <<<"$1"' _ "$msg"
finish
