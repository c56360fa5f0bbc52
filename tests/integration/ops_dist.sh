#!/usr/bin/env bash
# ops_dist: the release tarball holds every file of the source tree that the
# build, the tests and the README use: `make distdir` is compared with
# `git ls-files`, so a suite or script added to git but not to the tarball
# (distcheck would find it only by failing) is named here. Only files that no
# release user needs are left out: .gitignore files. Skipped outside a git
# checkout (in an unpacked tarball there is nothing to compare with).
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

[[ -f $TOP_BUILDDIR/Makefile ]] || { echo "SKIP: no configured build tree at $TOP_BUILDDIR"; exit 77; }
# (distcheck unpacks the tarball inside the build tree, itself inside a checkout:
# only a checkout whose top is the source tree counts.)
gtop=$(git -C "$TOP_SRCDIR" rev-parse --show-toplevel 2>/dev/null)
[[ -n $gtop && $gtop -ef $TOP_SRCDIR ]] || { echo "SKIP: $TOP_SRCDIR is not the top of a git checkout"; exit 77; }
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES
make -s -C "$TOP_BUILDDIR" distdir distdir="$T/d" >"$T/distdir.log" 2>&1
rc=$?
tail -5 "$T/distdir.log"
check "make distdir succeeds" [ $rc -eq 0 ]
(cd "$T/d" && find . -type f | sed 's|^\./||' | sort) >"$T/tar.txt"
git -C "$TOP_SRCDIR" ls-files | grep -Ev '(^|/)\.gitignore$' | sort >"$T/git.txt"
missing=$(comm -13 "$T/tar.txt" "$T/git.txt")
[[ -z $missing ]] || printf 'in git, not in the tarball: %s\n' $missing
check "every file git tracks (but .gitignore) is in the tarball" [ -z "$missing" ]
for f in README configure Makefile.in scripts/check scripts/deps scripts/demo tests/lib.sh; do
  check "the tarball has $f" [ -f "$T/d/$f" ]
done
finish
