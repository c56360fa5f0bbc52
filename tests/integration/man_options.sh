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
finish
