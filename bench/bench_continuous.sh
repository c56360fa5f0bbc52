#!/usr/bin/env bash
# trigger = continuous against trigger = 1 second (enqueue-to-visible latency,
# CPU per event) and compaction (files per partition, delta-rs read time
# against a 1-minute trigger), in one run; see bench/bench_continuous.py.
# usage: make bench-continuous
#    or: bench/bench_continuous.sh   (from the build directory, or with
#        EHDELTA_TOP_BUILDDIR set)
# Environment: EHDELTA_BENCH_RATE (10000), EHDELTA_BENCH_SECONDS (20),
# EHDELTA_BENCH_LONG (120).
exec bash "$(dirname "$0")/run-py.sh" bench_continuous.py "$@"
