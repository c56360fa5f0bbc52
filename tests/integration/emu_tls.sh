#!/usr/bin/env bash
# ehdelta status over AMQPS against ehemu's TLS listener: with the throw-away CA
# of scripts/mkcerts as --ca-file it works (a connection string without
# UseDevelopmentEmulator means TLS); without --ca-file the certificate is
# refused with a TLS error and exit status 1 (man/ehdelta-status.1).
. "$(dirname "$0")/../lib.sh"

"$TOP_SRCDIR/scripts/mkcerts" "$T/certs" >/dev/null
check "mkcerts made a CA and a server certificate" [ -s "$T/certs/ca.pem" ] && [ -s "$T/certs/server.pem" ] && [ -s "$T/certs/server.key" ]
check "the server certificate verifies against the CA" eval 'openssl verify -CAfile "$T/certs/ca.pem" "$T/certs/server.pem" >/dev/null'

printf 'ZW11LXRscy10ZXN0LWtleS1ub3QtYS1zZWNyZXQ=\n' > "$T/key"
"$EHEMU" --port 0 --tls-port 0 --cert "$T/certs/server.pem" --key "$T/certs/server.key" \
  --key-file "$T/key" 2>"$T/emu.err" &
emu_pid=$!
track $emu_pid
wait_for_line "$T/emu.err" 'ehemu: ready .*amqps=[0-9]+' 20 || { cat "$T/emu.err"; not_ok "ehemu ready with amqps"; finish; exit; }
tport=$(sed -n 's/.*ehemu: ready .*amqps=\([0-9]*\).*/\1/p' "$T/emu.err" | head -1)
pport=$(sed -n 's/.*ehemu: ready amqp=\([0-9]*\).*/\1/p' "$T/emu.err" | head -1)
check "readiness line names both ports ($pport, $tport)" [ -n "$tport" ] && [ "$tport" != "$pport" ]

printf 'Endpoint=sb://localhost:%s/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=%s;EntityPath=eh1\n' \
  "$tport" "$(cat "$T/key")" > "$T/cs"
chmod 600 "$T/cs"

"$EHDELTA" status --connection-string-file "$T/cs" --ca-file "$T/certs/ca.pem" --timeout 15s --json >"$T/st.json" 2>"$T/st.err"
rc=$?
check "status --ca-file over AMQPS exits 0 (rc=$rc)" [ $rc -eq 0 ]
n=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(len(d.get("partitions", d)))' "$T/st.json" 2>/dev/null)
check "status lists the 4 partitions (got '$n')" [ "$n" = 4 ]

"$EHDELTA" send --connection-string-file "$T/cs" --ca-file "$T/certs/ca.pem" --timeout 15s --count 20 --seed 3 --no-progress >/dev/null 2>"$T/send.err"
check "send --ca-file over AMQPS exits 0" [ $? -eq 0 ]
timeout 30 "$EHDELTA" tail --connection-string-file "$T/cs" --ca-file "$T/certs/ca.pem" --timeout 15s --from earliest --to-end >"$T/tail.jsonl" 2>"$T/tail.err"
check "tail --ca-file over AMQPS reads the 20 events (got $(wc -l <"$T/tail.jsonl"))" [ "$(wc -l <"$T/tail.jsonl")" -eq 20 ]

out=$("$EHDELTA" status --connection-string-file "$T/cs" --timeout 10s 2>&1 >/dev/null); rc=$?
check "without --ca-file: exit 1 (rc=$rc)" [ $rc -eq 1 ]
check "without --ca-file: the error says the certificate did not verify" grep -q 'certificate verify failed' <<<"$out"
check "without --ca-file: no key in the output" eval '[[ $out != *"$(cat "$T/key")"* ]]'

"$EHDELTA" status --connection-string-file "$T/cs" --ca-file "$T/certs/server.key" --timeout 10s >/dev/null 2>"$T/bad.err"; rc=$?
check "a --ca-file that is not a CA bundle fails (rc=$rc)" [ $rc -ne 0 ]

# By IP address: mkcerts' certificate has IP:127.0.0.1 in its SANs
sed "s|sb://localhost:|sb://127.0.0.1:|" "$T/cs" > "$T/cs-ip"
chmod 600 "$T/cs-ip"
"$EHDELTA" status --connection-string-file "$T/cs-ip" --ca-file "$T/certs/ca.pem" --timeout 15s >/dev/null 2>"$T/ip.err"; rc=$?
check "status to sb://127.0.0.1 verifies the IP SAN and exits 0 (rc=$rc: $(head -c 300 "$T/ip.err"))" [ $rc -eq 0 ]

# A certificate for another name only: each failure says which name was expected and why
"$TOP_SRCDIR/scripts/mkcerts" --san DNS:other.example "$T/other" >/dev/null
"$EHEMU" --port 0 --tls-port 0 --cert "$T/other/server.pem" --key "$T/other/server.key" \
  --key-file "$T/key" 2>"$T/emu2.err" &
emu2_pid=$!
track $emu2_pid
wait_for_line "$T/emu2.err" 'ehemu: ready .*amqps=[0-9]+' 20 || { cat "$T/emu2.err"; not_ok "second ehemu ready"; finish; exit; }
tport2=$(sed -n 's/.*ehemu: ready .*amqps=\([0-9]*\).*/\1/p' "$T/emu2.err" | head -1)
sed "s|sb://localhost:$tport/|sb://127.0.0.1:$tport2/|" "$T/cs" > "$T/cs-ip2"
sed "s|sb://localhost:$tport/|sb://localhost:$tport2/|" "$T/cs" > "$T/cs-dns2"
chmod 600 "$T/cs-ip2" "$T/cs-dns2"
out=$("$EHDELTA" status --connection-string-file "$T/cs-ip2" --ca-file "$T/other/ca.pem" --timeout 10s 2>&1 >/dev/null); rc=$?
check "IP without a matching SAN: exit 1 (rc=$rc)" [ $rc -eq 1 ]
check "IP without a matching SAN: the error names the IP, OpenSSL's reason and the names ($out)" \
  grep -q 'IP address mismatch (expected IP address 127.0.0.1; the certificate names DNS:other.example)' <<<"$out"
out=$("$EHDELTA" status --connection-string-file "$T/cs-dns2" --ca-file "$T/other/ca.pem" --timeout 10s 2>&1 >/dev/null); rc=$?
check "host name not in the certificate: exit 1 (rc=$rc)" [ $rc -eq 1 ]
check "host name not in the certificate: the error names it and OpenSSL's reason ($out)" \
  grep -q 'certificate verify failed for localhost:[0-9]*: [Hh]ostname mismatch (expected DNS name localhost; the certificate names DNS:other.example)' <<<"$out"
kill -TERM "$emu2_pid"
wait "$emu2_pid"

kill -TERM "$emu_pid"
wait "$emu_pid"; rc=$?
check "ehemu exits 0 on SIGTERM after TLS sessions (rc=$rc)" [ $rc -eq 0 ]
check "ehemu reported no sanitizer error" eval '! grep -Eq "Sanitizer|runtime error:" "$T/emu.err"'
finish
