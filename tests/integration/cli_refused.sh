#!/usr/bin/env bash
# cli_refused: a connection that is refused is said at once, while the client
# keeps retrying, not only when --timeout runs out: the warning line must be on
# stderr while the command is still running (its --timeout is far away), and
# the command must still be running after it (retrying). No wall-clock bound
# is asserted: the line has to come before the give-up, whatever the machine.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

port=$(free_port)
printf 'Endpoint=sb://127.0.0.1:%s;SharedAccessKeyName=R;SharedAccessKey=a2V5;EntityPath=x;UseDevelopmentEmulator=true\n' \
  "$port" >"$T/cs"
for cmd in status tail send; do
  extra=()
  [[ $cmd == send ]] && extra=(--generate 1)
  "$EHDELTA" "$cmd" --connection-string-file "$T/cs" --timeout 120s "${extra[@]}" </dev/null >/dev/null 2>"$T/$cmd.err" &
  pid=$!
  track "$pid"
  wait_for_line "$T/$cmd.err" 'warn eh_connection_retry attempt=1 .*Connection refused.*127\.0\.0\.1:'"$port"'.* retrying=until-timeout' 60
  seen=$?
  cat "$T/$cmd.err"
  check "ehdelta $cmd: the refusal is logged while it retries" [ $seen -eq 0 ]
  check "ehdelta $cmd: still retrying after saying so" kill -0 "$pid"
  check "ehdelta $cmd: one warning, not one per retry" [ "$(grep -c 'warn eh_connection_retry' "$T/$cmd.err")" -le 1 ]
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
done
finish
