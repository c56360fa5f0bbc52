#!/usr/bin/env bash
# Every option of every command is documented in its man page, and every
# option a page documents exists: the table in the code is the truth.
. "$(dirname "$0")/../lib.sh"

page_flags() { # the --flags a roff page defines in its OPTIONS items
  grep -E '^\.(B|BI|BR|IP|TP)( |$)' "$1" | sed 's/\\-/-/g' | grep -oE -- '--[a-z0-9-]+' | sed 's/^--//' | sort -u
}
for cmd in $("$EHDELTA" --list-options); do
  page=$TOP_SRCDIR/man/ehdelta-$cmd.1
  if [[ ! -f $page ]]; then
    not_ok "man page for 'ehdelta $cmd' exists ($page)"
    continue
  fi
  code=$("$EHDELTA" --list-options "$cmd" | sed 's/^--//' | sort -u)
  doc=$(page_flags "$page")
  missing=$(comm -23 <(echo "$code") <(echo "$doc") | tr '\n' ' ')
  extra=$(comm -13 <(echo "$code") <(echo "$doc") | grep -vx help | tr '\n' ' ')
  check "ehdelta-$cmd.1 documents every flag${missing:+ (missing: $missing)}" [ -z "$missing" ]
  check "ehdelta-$cmd.1 documents no unknown flag${extra:+ (unknown: $extra)}" [ -z "$extra" ]
  check "ehdelta.1 refers to ehdelta-$cmd(1)" grep -q "ehdelta\\\\-$cmd" "$TOP_SRCDIR/man/ehdelta.1"
done
if [[ -x $EHEMU ]]; then
  code=$("$EHEMU" --list-options | sed 's/^--//' | sort -u)
  doc=$(page_flags "$TOP_SRCDIR/man/ehemu.1")
  missing=$(comm -23 <(echo "$code") <(echo "$doc") | tr '\n' ' ')
  check "ehemu.1 documents every flag${missing:+ (missing: $missing)}" [ -z "$missing" ]
fi

# Every page: the same header form (an ISO date) and footer; EXAMPLES, EXIT STATUS and
# SEE ALSO sections; every ehdelta page SEE ALSO names exists here.
version=$("$EHDELTA" --version | sed 's/^ehdelta //')
for page in "$TOP_SRCDIR"/man/*.[1-9]; do
  p=$(basename "$page")
  check "$p: .TH NAME SECTION DATE \"ehdelta $version\" \"ehdelta manual\"" \
    grep -qE "^\.TH [A-Z.-]+ [0-9] \"[0-9]{4}-[0-9]{2}-[0-9]{2}\" \"ehdelta $version\" \"ehdelta manual\"$" "$page"
  for sec in EXAMPLES '"EXIT STATUS"|EXIT STATUS' '"SEE ALSO"|SEE ALSO'; do
    check "$p has a section ${sec##*|}" grep -qE "^\.SH ($sec)\$" "$page"
  done
  for ref in $(sed -n '/^\.SH "*SEE ALSO/,$p' "$page" | sed -n 's/^\.BR \(ehdelta[^ ]*\|ehemu\) (\([0-9]\)).*/\1.\2/p' | sed 's/\\-/-/g'); do
    check "$p: SEE ALSO $ref exists" [ -f "$TOP_SRCDIR/man/$ref" ]
  done
done
finish
