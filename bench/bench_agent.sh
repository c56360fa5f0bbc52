#!/usr/bin/env bash
# ehdelta run (dist/tutorial.conf, available-now, local Delta tables) against
# the Python SDK + deltalake script a user would write instead, the memory at
# 32 partitions and the enqueue-to-commit latency at a steady rate; see
# bench/bench_agent.py for what is measured and how.
# usage: make bench-agent
#    or: bench/bench_agent.sh   (from the build directory, or with
#        EHDELTA_TOP_BUILDDIR set)
# Environment: EHDELTA_BENCH_EVENTS (default 5000000), EHDELTA_BENCH_PY_EVENTS
# (500000), EHDELTA_BENCH_EVENTS32 (1000000), EHDELTA_BENCH_RATE (10000),
# EHDELTA_BENCH_SECONDS (30), EHDELTA_BENCH_KEEP=1 keeps the work directory.
exec bash "$(dirname "$0")/run-py.sh" bench_agent.py "$@"
