# tests/lib.sh: shared helpers for the shell suites (sourced, not run).
# Provides: $TOP_BUILDDIR, $TOP_SRCDIR, $EHDELTA, $EHEMU, a scratch dir $T
# removed on exit, fail/ok counters, free_port, wait_for_line, and a closing
# "N passed, N failed" line.
set -u
TOP_BUILDDIR=${EHDELTA_TOP_BUILDDIR:-$(pwd)}
TOP_SRCDIR=${EHDELTA_TOP_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
EHDELTA=$TOP_BUILDDIR/ehdelta
EHEMU=$TOP_BUILDDIR/ehemu
VENV=${EHDELTA_VENV:-$TOP_SRCDIR/.venv}
T=$(mktemp -d "${TMPDIR:-/tmp}/ehdelta-test.XXXXXX")
_pids=()
_passed=0
_failed=0

_cleanup() {
  local p
  for p in "${_pids[@]+"${_pids[@]}"}"; do kill "$p" 2>/dev/null || true; done
  for p in "${_pids[@]+"${_pids[@]}"}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$T"
}
trap _cleanup EXIT

# track PID: kill it at exit
track() { _pids+=("$1"); }

ok() { _passed=$((_passed + 1)); printf 'ok   %s\n' "$*"; }
not_ok() { _failed=$((_failed + 1)); printf 'FAIL %s\n' "$*"; }
# check "description" command...: passes when the command succeeds
check() { local d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }

# A free TCP port on 127.0.0.1 (bound then released; racy only in theory).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_for_line FILE REGEX SECONDS: poll until FILE has a line matching REGEX.
wait_for_line() {
  local f=$1 re=$2 secs=${3:-10} i
  for ((i = 0; i < secs * 20; i++)); do
    grep -Eq "$re" "$f" 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

# start_ehemu HUB PARTITIONS [ARGS...]: ehemu on free loopback ports with a
# random key (killed at exit). Sets EMU_PORT and EMU_CONTROL and writes the
# hub's connection string to $T/cs; returns 1 when it did not get ready.
start_ehemu() {
  local hub=$1 parts=$2
  shift 2
  head -c 32 /dev/urandom | base64 >"$T/key"
  "$EHEMU" --port 0 --hub "$hub" --partitions "$parts" --key-file "$T/key" "$@" 2>"$T/emu.err" &
  track $!
  wait_for_line "$T/emu.err" 'ehemu: ready' 10 || return 1
  EMU_PORT=$(sed -n 's/^ehemu: ready amqp=\([0-9]*\).*/\1/p' "$T/emu.err")
  EMU_CONTROL=$(sed -n 's/^ehemu: ready .*control=\([0-9]*\).*/\1/p' "$T/emu.err")
  echo "Endpoint=sb://127.0.0.1:$EMU_PORT;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=$(cat "$T/key");EntityPath=$hub;UseDevelopmentEmulator=true" >"$T/cs"
  [[ -n $EMU_PORT ]]
}

# finish: print the closing line and exit with the right status.
finish() {
  printf '%d passed, %d failed\n' "$_passed" "$_failed"
  [[ $_failed -eq 0 ]]
}
