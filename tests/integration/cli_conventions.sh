#!/usr/bin/env bash
# cli_conventions: what an az or kcat user expects of the command line.
# "did you mean" for a mistyped command or option; `ehdelta help CMD`;
# `ehemu --version`; --help in aligned columns with at most one default per
# option; tail's kcat aliases (-o beginning|end|N, -e, --format payload) against
# ehemu; bash completion from the option tables.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
[[ -x $EHEMU ]] || { echo "SKIP ehemu not built"; exit 77; }

# expect STATUS PATTERN DESCRIPTION CMD...: CMD exits STATUS and its stderr matches PATTERN.
expect() {
  local want=$1 pat=$2 what=$3 rc
  shift 3
  "$@" >"$T/out" 2>"$T/err"
  rc=$?
  check "$what (exit $rc: $(head -c 200 "$T/err"))" bash -c '[ $0 -eq $1 ] && grep -qE -- "$2" "$3"' $rc "$want" "$pat" "$T/err"
}
expect 2 "^ehdelta: unknown command 'tali': did you mean 'tail'\\?" "a mistyped command is named, with a guess" "$EHDELTA" tali
expect 2 "^ehdelta: unknown command 'frobnicate', expected one of: sas .* run" "a far-off command lists the commands" "$EHDELTA" frobnicate
expect 2 "unknown option '--partiton': did you mean --partition\\?" "a mistyped option, with a guess" "$EHDELTA" tail --partiton 1
expect 2 "unknown option '--to-nd': did you mean --to-end\\?" "a dropped letter, with a guess" "$EHDELTA" tail --to-nd
expect 2 "unknown option '--zzzzzz' \\(see --help\\)$" "a far-off option: no guess" "$EHDELTA" tail --zzzzzz
expect 2 "^ehemu: unknown option '--partitons': did you mean --partitions\\?" "ehemu guesses too" "$EHEMU" --partitons 2

"$EHDELTA" help send >"$T/help1" 2>&1
rc=$?
"$EHDELTA" send --help >"$T/help2" 2>&1
check "ehdelta help send is ehdelta send --help" bash -c '[ $0 -eq 0 ] && [ -s "$1" ] && cmp -s "$1" "$2"' $rc "$T/help1" "$T/help2"
expect 2 "did you mean 'tail'" "ehdelta help of a mistyped command guesses" "$EHDELTA" help tial
"$EHDELTA" help >"$T/help3" 2>&1
check "ehdelta help alone lists the commands" grep -q "^  send " "$T/help3"
v=$("$EHEMU" --version)
check "ehemu --version prints 'ehemu VERSION' ($v), as ehdelta --version does" \
  [ "${v#ehemu }" = "$("$EHDELTA" --version | sed 's/^ehdelta //')" ]

# --help: the help text of every option starts in one column; at most one default.
helpcheck() {
  local who=$1
  shift
  "$@" --help >"$T/h" 2>&1
  local cols
  cols=$(grep -E '^  (-[a-zA-Z], |    )--' "$T/h" | awk '{ match($0, /^  (-., |    )--[^ ]+( [^ ]+)? +/); print RLENGTH }' | sort -u | wc -l)
  check "$who --help: help text in one column" [ "$cols" -eq 1 ]
  # "(default: X)" at most once per line; the word alone may be a value's name (--auth default)
  check "$who --help: at most one default per option" bash -c '! grep -E "\(default: .*\(default: " "$1"' _ "$T/h"
}
for c in $("$EHDELTA" --list-options); do helpcheck "ehdelta $c" "$EHDELTA" "$c"; done
helpcheck ehemu "$EHEMU"

# tail's kcat aliases, against events sent from standard input.
start_ehemu conv 1
check "ehemu is ready" [ -n "$EMU_PORT" ]
E=(--connection-string-file "$T/cs" --timeout 20s)
printf 'one\ntwo\nthree\n' | "$EHDELTA" send "${E[@]}" --no-progress >/dev/null 2>&1
timeout 60 "$EHDELTA" tail "${E[@]}" -o beginning -e --format payload >"$T/t1" 2>"$T/t1.err"
check "tail -o beginning -e --format payload: the bodies alone, then exit 0" \
  bash -c '[ $0 -eq 0 ] && cmp -s "$1" <(printf "one\ntwo\nthree\n")' $? "$T/t1"
timeout 60 "$EHDELTA" tail "${E[@]}" -o 1 -e --format payload >"$T/t2" 2>&1
check "tail -o 1: from sequence number 1" bash -c '[ $0 -eq 0 ] && cmp -s "$1" <(printf "two\nthree\n")' $? "$T/t2"
timeout 60 "$EHDELTA" tail "${E[@]}" -o end -e >"$T/t3" 2>&1
check "tail -o end -e: nothing, exit 0" bash -c '[ $0 -eq 0 ] && [ ! -s "$1" ]' $? "$T/t3"
timeout 60 "$EHDELTA" tail "${E[@]}" -o beginning -e >"$T/t4" 2>&1
check "tail's default format is still one JSON line per event" \
  bash -c '[ "$(wc -l <"$1")" -eq 3 ] && head -1 "$1" | grep -q "^{\"partition\":\"0\",\"sequence_number\":0,"' _ "$T/t4"
expect 2 "--offset 'soon': expected beginning, end or a sequence number" "tail -o of another word is refused" \
  "$EHDELTA" tail "${E[@]}" -o soon
expect 2 "--format 'avro': expected json or payload" "tail --format of another name is refused" \
  "$EHDELTA" tail "${E[@]}" --format avro

# Completion, from the option tables: the built programs first on PATH.
comp() { # comp WORDS...: the completions of the last word
  PATH=$TOP_BUILDDIR:$PATH bash -c '
    . "$0"/dist/completion/ehdelta; . "$0"/dist/completion/ehemu
    COMP_WORDS=("${@}"); COMP_CWORD=$(($# - 1))
    _"$1"; printf "%s\n" "${COMPREPLY[@]}"' "$TOP_SRCDIR" "$@"
}
check "completion: ehdelta ta -> tail" [ "$(comp ehdelta ta)" = tail ]
check "completion: ehdelta help se -> send" [ "$(comp ehdelta help se)" = send ]
check "completion: ehdelta tail --to-e -> --to-end" [ "$(comp ehdelta tail --to-e)" = --to-end ]
check "completion: ehdelta send --gen -> --generate" [ "$(comp ehdelta send --gen)" = --generate ]
check "completion: ehemu --vers -> --version" [ "$(comp ehemu --vers)" = --version ]
check "completion: every ehdelta run option is offered" \
  bash -c 'diff <(printf "%s\n" $1 | sort) <("$2" --list-options run | sort)' _ "$(comp ehdelta run -- | grep -vx -- --help)" "$EHDELTA"
finish
