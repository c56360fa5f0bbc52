#!/usr/bin/env bash
# ehdelta sas: tokens, bad input, exit statuses, and no secret on output or argv.
. "$(dirname "$0")/../lib.sh"

key=$T/key
printf 'abc+/=KEY\n' > "$key"
want='SharedAccessSignature sr=sb%3A%2F%2Fns.servicebus.windows.net%2Fhub&sig=L7D56P2%2FRWuOhr%2B6Fvg9ch1PvhH199QVLylLaSlvz1g%3D&se=1700000000&skn=RootManageSharedAccessKey'

got=$("$EHDELTA" sas --resource sb://ns.servicebus.windows.net/hub --key-name RootManageSharedAccessKey \
  --key-file "$key" --expires-at 1700000000)
check "reference vector from a key file" [ "$got" = "$want" ]

got=$(EHDELTA_SAS_KEY='abc+/=KEY' "$EHDELTA" sas -r sb://ns.servicebus.windows.net/hub \
  -n RootManageSharedAccessKey --expires-at=1700000000)
check "key from EHDELTA_SAS_KEY" [ "$got" = "$want" ]

# bounded by the clock before and after the command, not by a guess at how
# long a loaded machine takes to run it
now=$(date +%s)
tok=$(EHDELTA_SAS_KEY=k "$EHDELTA" sas -r sb://h/x -n n --expiry 120)
after=$(date +%s)
se=$(sed -n 's/.*&se=\([0-9]*\)&.*/\1/p' <<<"$tok")
check "--expiry is relative to now ($now + 119 <= $se <= $after + 120)" \
  [ "$se" -ge $((now + 119)) -a "$se" -le $((after + 120)) ]

# expect_fail STATUS PATTERN -- command...: exit status and one-line message
expect_fail() {
  local want_rc=$1 pat=$2 desc=$3
  shift 3
  local out rc
  out=$("$@" 2>&1 >/dev/null)
  rc=$?
  if [[ $rc -eq $want_rc && $out == *"$pat"* && $(wc -l <<<"$out") -eq 1 && $out != *SECRETKEY* ]]; then
    ok "$desc"
  else
    not_ok "$desc (rc=$rc, stderr: $out)"
  fi
}
printf 'SECRETKEY\n' > "$T/secret"
expect_fail 2 "--resource is required" "missing --resource" \
  "$EHDELTA" sas -n n --key-file "$T/secret"
expect_fail 2 "--expiry 'soon': expected a whole number" "non-numeric expiry" \
  "$EHDELTA" sas -r sb://h/x -n n --key-file "$T/secret" --expiry soon
expect_fail 2 "expected a whole number from 1" "zero expiry" \
  "$EHDELTA" sas -r sb://h/x -n n --key-file "$T/secret" --expiry 0
expect_fail 2 "unknown option '--key'" "key on the command line is refused" \
  "$EHDELTA" sas -r sb://h/x -n n --key SECRETKEY
expect_fail 2 "the key is never taken from the command line" "stray operand refused" \
  "$EHDELTA" sas -r sb://h/x -n n SECRETKEY
expect_fail 4 "cannot open" "missing key file" \
  "$EHDELTA" sas -r sb://h/x -n n --key-file "$T/nope"
: > "$T/empty"
expect_fail 2 "is empty" "empty key file" \
  "$EHDELTA" sas -r sb://h/x -n n --key-file "$T/empty"
expect_fail 2 "EHDELTA_SAS_KEY" "no key at all" \
  env -u EHDELTA_SAS_KEY "$EHDELTA" sas -r sb://h/x -n n
expect_fail 2 "unknown command 'bogus'" "unknown subcommand" "$EHDELTA" bogus

check "--help exits 0 and lists --key-file" bash -c "'$EHDELTA' sas --help | grep -q -- '--key-file FILE'"
check "--version" bash -c "'$EHDELTA' --version | grep -Eq '^ehdelta [0-9]+\\.[0-9]+\\.[0-9]+$'"
finish
