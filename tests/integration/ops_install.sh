#!/usr/bin/env bash
# ops_install: `make install DESTDIR=...` puts the binaries, man pages, the
# systemd unit and the sample configuration under the configured prefix; the
# installed unit passes `systemd-analyze verify` (silently); `make uninstall`
# leaves no file behind. Also stages the service with scripts/run-agent --service
# --root and checks what it wrote.
# shellcheck disable=SC2016 # bash -c '...' bodies take their values as $0 $1 ...
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

[[ -f $TOP_BUILDDIR/Makefile ]] || { echo "SKIP: no configured build tree at $TOP_BUILDDIR"; exit 77; }
# A clean make of our own, not a part of the `make check` that runs this test.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES
mk() { make -s -C "$TOP_BUILDDIR" "$@"; }
var() { make -s -C "$TOP_BUILDDIR" -f Makefile -f - print-var <<<"print-var: ; @echo \$($1)"; }
prefix=$(var prefix) bindir=$(var bindir) sysconfdir=$(var sysconfdir) mandir=$(var mandir)
unitdir=$(var systemdsystemunitdir)
echo "prefix=$prefix bindir=$bindir sysconfdir=$sysconfdir unitdir=$unitdir"
check "the unit directory is under the prefix" [ "${unitdir#"$prefix"/}" != "$unitdir" ]

D=$T/root
mk install DESTDIR="$D" >"$T/install.log" 2>&1
check "make install DESTDIR=... succeeds" [ $? -eq 0 ]
unit=$unitdir/ehdelta.service
check "ehdelta is installed, executable" [ -x "$D$bindir/ehdelta" ]
check "ehdelta(1) is installed" [ -f "$D$mandir/man1/ehdelta.1" ]
check "the unit is installed" [ -f "$D$unit" ]
check "the sample configuration is installed" [ -f "$D$sysconfdir/ehdelta/ehdelta.conf.sample" ]
datadir=$(var datadir)
for c in ehdelta ehemu; do
  check "bash completion for $c is installed where bash-completion loads it" \
    grep -q "^complete -F _$c $c\$" "$D$datadir/bash-completion/completions/$c"
done
check "the unit runs the installed binary with the installed configuration" \
  grep -qx "ExecStart=$bindir/ehdelta run --config $sysconfdir/ehdelta/ehdelta.conf" "$D$unit"
check "the unit has no @...@ left" bash -c '! grep -n "@[a-z]*@" "$1"' _ "$D$unit"
for k in DynamicUser=yes Restart=on-failure NoNewPrivileges=yes ProtectSystem=strict \
  Type=notify NotifyAccess=main WatchdogSec=5min "RestartPreventExitStatus=2 3 4" \
  "LoadCredential=eventhub-connection-string:$sysconfdir/ehdelta/credentials/eventhub-connection-string" \
  "LoadCredential=storage-account-key:$sysconfdir/ehdelta/credentials/storage-account-key"; do
  check "the unit has $k" grep -qxF "$k" "$D$unit"
done
while read -r page; do
  sec=${page##*(} sec=${sec%)} name=${page%(*}
  check "the unit's Documentation=man:$page is installed" [ -f "$D$mandir/man$sec/$name.$sec" ]
done < <(sed -n 's/^Documentation=//p' "$D$unit" | tr ' ' '\n' | sed -n 's/^man://p')

# verify_unit: systemd-analyze verify resolves the unit's dependencies and
# ExecStart inside the root, so give the root the system's own units; it warns
# (exit 0) about unknown or bad settings, so any output is a failure too. It
# finds a unit by name on systemd's search path only, which holds
# $prefix/lib/systemd/system for /usr and /usr/local but not for another --prefix
# (distcheck's, /opt/...): there an operator copies or links the unit into
# /etc/systemd/system, and so does this. Drop-ins under the root's
# /etc/systemd/system/ehdelta.service.d are read as on a real system.
have_sd=0
command -v systemd-analyze >/dev/null 2>&1 && have_sd=1
verify_unit() {
  local what=$1 etc_unit='' rc level
  mkdir -p "$D/usr/lib/systemd" "$D/etc/systemd/system"
  cp -a /usr/lib/systemd/system "$D/usr/lib/systemd/"
  case $unitdir in
    /usr/lib/systemd/system | /usr/local/lib/systemd/system | /etc/systemd/system) ;;
    *) etc_unit=$D/etc/systemd/system/ehdelta.service && cp "$D$unit" "$etc_unit" ;;
  esac
  systemd-analyze verify --root="$D" --man=no "$unit" >"$T/verify.log" 2>&1
  rc=$?
  cat "$T/verify.log"
  check "systemd-analyze verify ($what): exit 0, no warning" bash -c '[ $0 -eq 0 ] && [ ! -s "$1" ]' $rc "$T/verify.log"
  if systemd-analyze security --offline=yes --root="$D" "$unit" >"$T/security.log" 2>&1; then
    level=$(grep -o 'Overall exposure level for ehdelta.service: [0-9.]* [A-Z]*' "$T/security.log")
    echo "$level"
    check "systemd-analyze security rates the unit OK (exposure < 2) ($what)" \
      awk -v l="$level" 'BEGIN { split(l, a, ": "); split(a[2], b, " "); exit !(b[1] < 2.0) }'
  fi
  rm -rf "$D/usr/lib/systemd/system"
  [[ -z $etc_unit ]] || rm -f "$etc_unit"
  rmdir "$D/usr/lib/systemd" "$D/usr/lib" "$D/usr" "$D/etc/systemd/system" "$D/etc/systemd" 2>/dev/null
  return 0
}
if ((have_sd)); then
  verify_unit "as installed"
else
  echo "systemd-analyze not found: the verify checks are skipped"
fi

# run-agent --service --root stages the configuration and the credentials the unit loads.
mkdir -p "$T/prov/secrets" && chmod 700 "$T/prov/secrets"
(umask 077 && printf 'Endpoint=sb://x.servicebus.windows.net/;SharedAccessKeyName=l;SharedAccessKey=STAGEDSECRET1;EntityPath=h' \
  >"$T/prov/secrets/eventhub-connection-string" && printf 'STAGEDSECRET2' >"$T/prov/secrets/storage-account-key")
sed -e "s|/run/credentials/ehdelta.service/|$T/prov/secrets/|" -e 's/NAMESPACE/x/; s/ACCOUNT/acct/g' \
  "$TOP_SRCDIR/dist/ehdelta.conf.sample" >"$T/prov/ehdelta.conf"
"$TOP_SRCDIR/scripts/run-agent" --config "$T/prov/ehdelta.conf" --service --unit-file "$D$unit" --root "$D" \
  --ehdelta "$D$bindir/ehdelta" >"$T/stage.log" 2>&1
rc=$?
cat "$T/stage.log"
check "run-agent --service --root stages the service" [ $rc -eq 0 ]
staged=$D$sysconfdir/ehdelta/ehdelta.conf
check "the staged configuration points at the service's credentials" \
  bash -c 'grep -qx "connection_string_file = /run/credentials/ehdelta.service/eventhub-connection-string" "$1" &&
           grep -qx "account_key_file = /run/credentials/ehdelta.service/storage-account-key" "$1"' _ "$staged"
check "the staged configuration is otherwise the same" \
  bash -c 'diff <(grep -v _file "$1") <(grep -v _file "$2")' _ "$T/prov/ehdelta.conf" "$staged"
for c in eventhub-connection-string storage-account-key; do
  f=$D$sysconfdir/ehdelta/credentials/$c
  check "credential $c staged with mode 0600, same bytes" bash -c '[ "$(stat -c %a "$1")" = 600 ] && cmp -s "$1" "$2"' _ "$f" "$T/prov/secrets/$c"
done
check "no secret in run-agent's output or the staged configuration" bash -c '! grep -l STAGEDSECRET "$1" "$2"' _ "$T/stage.log" "$staged"
check "it prints the systemctl commands to run" grep -q 'systemctl enable ehdelta.service' "$T/stage.log"
check "a configuration that needs what the unit loads gets no drop-in" \
  [ ! -e "$D/etc/systemd/system/ehdelta.service.d/50-ehdelta-credentials.conf" ]

# Managed identity (provision --identity): no storage key exists, so the unit
# must not load one (systemd would refuse to start it): run-agent writes a drop-in.
rm -f "$D$sysconfdir/ehdelta/credentials/storage-account-key"
sed -e 's/^auth = shared-key$/auth = managed-identity\nclient_id = 00000000-0000-0000-0000-0000000000a1/' \
  -e '/^account_key_file/d' "$T/prov/ehdelta.conf" >"$T/prov/mi.conf"
check "the managed-identity copy names no account key" bash -c '! grep -q account_key "$1" && grep -qx "auth = managed-identity" "$1"' _ "$T/prov/mi.conf"
"$TOP_SRCDIR/scripts/run-agent" --config "$T/prov/mi.conf" --service --unit-file "$D$unit" --root "$D" \
  --ehdelta "$D$bindir/ehdelta" >"$T/stage-mi.log" 2>&1
rc=$?
cat "$T/stage-mi.log"
check "run-agent --service stages a managed-identity configuration" [ $rc -eq 0 ]
check "no warning about a missing credential" bash -c '! grep -q "does not exist" "$1"' _ "$T/stage-mi.log"
dropin=$D/etc/systemd/system/ehdelta.service.d/50-ehdelta-credentials.conf
check "a drop-in is written" [ -f "$dropin" ]
printf '%s\n' '[Service]' 'LoadCredential=' \
  "LoadCredential=eventhub-connection-string:$sysconfdir/ehdelta/credentials/eventhub-connection-string" \
  'UnsetEnvironment=AZURE_STORAGE_KEY_FILE' >"$T/dropin.want"
check "the drop-in loads the connection string only, and unsets the key file" \
  bash -c 'diff <(grep -v "^#" "$1") "$2"' _ "$dropin" "$T/dropin.want"
check "no storage key was staged" [ ! -e "$D$sysconfdir/ehdelta/credentials/storage-account-key" ]
((have_sd)) && verify_unit "with the managed-identity drop-in"
# The identity for Event Hubs too (what provision --identity writes): no
# connection string either, so the drop-in loads no credential at all.
sed -e '/^connection_string_file/d' \
  -e 's/^consumer_group = .*/&\nauth = managed-identity\nclient_id = 00000000-0000-0000-0000-0000000000a1/' \
  "$T/prov/mi.conf" >"$T/prov/mi-both.conf"
check "the identity-for-both copy names no secret file" bash -c '! grep -q "_file *=" "$1"' _ "$T/prov/mi-both.conf"
"$TOP_SRCDIR/scripts/run-agent" --config "$T/prov/mi-both.conf" --service --unit-file "$D$unit" --root "$D" \
  --ehdelta "$D$bindir/ehdelta" >"$T/stage-mi2.log" 2>&1
rc=$?
cat "$T/stage-mi2.log"
check "run-agent --service stages the identity-for-both configuration (ehdelta run --check: ok)" \
  bash -c '[ $0 -eq 0 ] && grep -q ": ehdelta run --check: ok$" "$1"' $rc "$T/stage-mi2.log"
printf '%s\n' '[Service]' 'LoadCredential=' 'UnsetEnvironment=AZURE_STORAGE_KEY_FILE' >"$T/dropin2.want"
check "the drop-in loads no credential, and unsets the key file" \
  bash -c 'diff <(grep -v "^#" "$1") "$2"' _ "$dropin" "$T/dropin2.want"
((have_sd)) && verify_unit "with the drop-in that loads no credential"
# Back to shared-key: the drop-in goes, the unit's own list applies again.
"$TOP_SRCDIR/scripts/run-agent" --config "$T/prov/ehdelta.conf" --service --unit-file "$D$unit" --root "$D" \
  --ehdelta "$D$bindir/ehdelta" >"$T/stage2.log" 2>&1
check "restaging shared-key removes the drop-in" bash -c '[ $0 -eq 0 ] && [ ! -e "$1" ]' $? "$dropin"
rmdir "$D/etc/systemd/system/ehdelta.service.d" "$D/etc/systemd/system" "$D/etc/systemd" 2>/dev/null
rm -rf "$D$sysconfdir/ehdelta/credentials" "$staged" "$staged.bak"

mk uninstall DESTDIR="$D" >"$T/uninstall.log" 2>&1
check "make uninstall DESTDIR=... succeeds" [ $? -eq 0 ]
left=$(find "$D" ! -type d)
check "make uninstall leaves no file${left:+ (left: $left)}" [ -z "$left" ]
check "make uninstall removes the configuration directory" [ ! -e "$D$sysconfdir/ehdelta" ]
finish
