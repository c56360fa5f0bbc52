#!/usr/bin/env bash
# Backlog throughput of ehdelta run with aligned reading (source.max_drift) on
# and off, in the same run; see bench/bench_align.py for what is measured.
# usage: make bench-align
#    or: bench/bench_align.sh   (from the build directory, or with
#        EHDELTA_TOP_BUILDDIR set)
# Environment: EHDELTA_BENCH_EVENTS (default 1000000), EHDELTA_BENCH_MBE
# (20000), EHDELTA_BENCH_ROUNDS (3), EHDELTA_BENCH_KEEP=1 keeps the work directory.
exec bash "$(dirname "$0")/run-py.sh" bench_align.py "$@"
