#!/usr/bin/env bash
# ehdelta send / tail / status against a real ehemu on loopback: every event
# sent is read back once, with contiguous sequence numbers per partition;
# positions, consumer groups, a wrong key and an unknown hub.
. "$(dirname "$0")/../lib.sh"

printf 'ZW11LXRlc3Qta2V5LW5vdC1hLXNlY3JldA==\n' > "$T/key"
"$EHEMU" --port 0 --control-port 0 --key-file "$T/key" 2>"$T/emu.err" &
track $!
wait_for_line "$T/emu.err" 'ehemu: ready amqp=[0-9]+' 20 || { cat "$T/emu.err"; not_ok "ehemu ready"; finish; exit; }
port=$(sed -n 's/.*ehemu: ready amqp=\([0-9]*\).*/\1/p' "$T/emu.err" | head -1)
cs="Endpoint=sb://127.0.0.1:$port/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=$(cat "$T/key");EntityPath=eh1;UseDevelopmentEmulator=true"
printf '%s\n' "$cs" > "$T/cs"
chmod 600 "$T/cs"
E=(--connection-string-file "$T/cs" --timeout 20s)

"$EHDELTA" send "${E[@]}" --count 1000 --seed 7 --no-progress >"$T/send.out" 2>"$T/send.err"
check "send 1000 generated transactions" [ $? -eq 0 ]

"$EHDELTA" status "${E[@]}" --json >"$T/status.json" 2>"$T/status.err"
check "status --json" [ $? -eq 0 ]
total=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); ps=d.get("partitions", d)
print(sum(p["last_enqueued_sequence_number"]-p["begin_sequence_number"]+1 for p in ps if not p.get("is_partition_empty")))' "$T/status.json" 2>"$T/py.err")
check "status counts 1000 events over the partitions (got '$total')" [ "$total" = 1000 ]

timeout 60 "$EHDELTA" tail "${E[@]}" --from earliest --to-end --body json >"$T/tail.jsonl" 2>"$T/tail.err"
check "tail --from earliest --to-end exits 0" [ $? -eq 0 ]
res=$(python3 - "$T/tail.jsonl" <<'PY'
import json, sys, collections
seqs = collections.defaultdict(list); ids = []
for line in open(sys.argv[1]):
    e = json.loads(line)
    seqs[str(e["partition"])].append(int(e["sequence_number"]))
    b = e["body"]
    ids.append((b if isinstance(b, dict) else json.loads(b))["transaction_id"])
contig = all(s == list(range(s[0], s[0] + len(s))) for s in seqs.values())
print(len(ids), len(set(ids)), "contiguous" if contig else "gaps")
PY
)
check "tail read every event once, sequence numbers contiguous (got '$res')" [ "$res" = "1000 1000 contiguous" ]

timeout 30 "$EHDELTA" tail "${E[@]}" --partition 0 --from seq:5 --count 2 >"$T/seq.jsonl" 2>"$T/seq.err"
got=$(python3 -c 'import json,sys; print(" ".join(str(json.loads(l)["sequence_number"]) for l in open(sys.argv[1])))' "$T/seq.jsonl")
check "--from seq:5 --count 2 gives 5 and 6 (got '$got')" [ "$got" = "5 6" ]

timeout 30 "$EHDELTA" tail "${E[@]}" --partition 0 --from 'seq>5' --count 1 >"$T/seqx.jsonl" 2>/dev/null
got=$(python3 -c 'import json,sys; print(" ".join(str(json.loads(l)["sequence_number"]) for l in open(sys.argv[1])))' "$T/seqx.jsonl")
check "--from seq>5 is exclusive (got '$got')" [ "$got" = "6" ]

timeout 30 "$EHDELTA" tail "${E[@]}" --consumer-group cg1 --partition 1 --from earliest --count 3 >"$T/cg.jsonl" 2>/dev/null
check "consumer group cg1 reads too" [ "$(wc -l <"$T/cg.jsonl")" -eq 3 ]

sed 's/SharedAccessKey=[^;]*/SharedAccessKey=d3Jvbmcta2V5/' "$T/cs" >"$T/bad"
out=$("$EHDELTA" status --connection-string-file "$T/bad" --timeout 10s 2>&1 >/dev/null); rc=$?
# one check of all three: `check d [ a ] && [ b ]` would check only [ a ]
wrong_key_ok() { [ $rc -eq 3 ] && [ "$(wc -l <<<"$out")" -eq 1 ] && [[ $out != *d3Jvbmcta2V5* ]]; }
check "wrong key: exit 3, one line, no key echoed (rc=$rc)" wrong_key_ok
sed 's/;EntityPath=eh1//' "$T/cs" >"$T/nohub"
out=$("$EHDELTA" status --connection-string-file "$T/nohub" --timeout 10s --hub nosuchhub 2>&1 >/dev/null); rc=$?
check "unknown hub: exit 4 (rc=$rc)" [ $rc -eq 4 ]
finish
