#!/usr/bin/env bash
# What the agent's status page costs it: the same available-now run with the
# page closed, polled at the page's rate and at ten times that, interleaved;
# see bench/bench_status_page.py for what is measured and how.
# usage: make bench-status-page
#    or: bench/bench_status_page.sh   (from the build directory, or with
#        EHDELTA_TOP_BUILDDIR set)
# Environment: EHDELTA_BENCH_EVENTS (default 1000000), EHDELTA_BENCH_REPEATS (3),
# EHDELTA_BENCH_KEEP=1 keeps the work directory.
exec bash "$(dirname "$0")/run-py.sh" bench_status_page.py "$@"
