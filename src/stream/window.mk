# src/stream/window.mk: the ring buffer, windows, aggregates, watermarks and
# deduplication (kept apart from local.mk, which holds schema and decoding).
src_stream_libstream_a_SOURCES += \
	src/stream/ring.c src/stream/ring.h \
	src/stream/agg.c src/stream/agg.h src/stream/agg_int.h src/stream/agg_keys.c \
	src/stream/window.c src/stream/window.h \
	src/stream/dedup.c src/stream/dedup.h \
	src/stream/evtime.c src/stream/evtime.h

check_PROGRAMS += tests/unit/unit_window
TESTS += tests/unit/unit_window
tests_unit_unit_window_CFLAGS = $(UNIT_CFLAGS)
tests_unit_unit_window_SOURCES = $(UNIT_COMMON) tests/unit/test_ring.c tests/unit/test_win_window.c \
	tests/unit/test_win_agg.c tests/unit/test_win_dedup.c
tests_unit_unit_window_LDADD = $(STREAM_LIBS) $(COMMON_LIBS) $(CUNIT_LIBS)

# The oracle's bridge (tests/interop/test_window_oracle.py): CSV events in,
# emitted windows as JSON lines out.
check_PROGRAMS += tests/tools/win_tool
tests_tools_win_tool_SOURCES = tests/tools/win_tool.c
tests_tools_win_tool_LDADD = $(STREAM_LIBS) $(COMMON_LIBS)
TESTS += tests/interop/test_window_oracle.py
EXTRA_DIST += tests/interop/test_window_oracle.py

# bench/bench_window: aggregation rows/s for the tutorial's two queries and
# the ring's hand-off rate, each beside a same-run baseline (not run by make check).
noinst_PROGRAMS += bench/bench_window
bench_bench_window_SOURCES = bench/bench_window.c
bench_bench_window_LDADD = $(STREAM_LIBS) $(COMMON_LIBS)

# libFuzzer target over the state loaders (./configure CC=clang --enable-fuzzers;
# `make fuzzers`); the stream sources are compiled in so coverage sees them.
EXTRA_DIST += tests/fuzz/fuzz_win_state.c
if ENABLE_FUZZERS
check_PROGRAMS += tests/fuzz/fuzz_win_state
tests_fuzz_fuzz_win_state_SOURCES = tests/fuzz/fuzz_win_state.c src/stream/batch.c \
	src/stream/agg.c src/stream/agg_keys.c src/stream/window.c src/stream/dedup.c src/stream/evtime.c
tests_fuzz_fuzz_win_state_CPPFLAGS = $(src_stream_libstream_a_CPPFLAGS)
tests_fuzz_fuzz_win_state_CFLAGS = $(FUZZER_CFLAGS)
tests_fuzz_fuzz_win_state_LDFLAGS = $(AM_LDFLAGS) $(FUZZER_LINK_FLAGS)
tests_fuzz_fuzz_win_state_LDADD = $(COMMON_LIBS)
endif

# Allocation failures in windows, aggregates and dedup (tests/unit/torture.c wrapper).
check_PROGRAMS += tests/unit/unit_window_torture
TESTS += tests/unit/unit_window_torture
tests_unit_unit_window_torture_CFLAGS = $(UNIT_CFLAGS)
tests_unit_unit_window_torture_LDFLAGS = $(AM_LDFLAGS) $(ALLOC_WRAP_FLAGS)
tests_unit_unit_window_torture_SOURCES = $(UNIT_COMMON) tests/unit/torture.c tests/unit/torture.h \
	tests/unit/test_win_torture.c
tests_unit_unit_window_torture_LDADD = $(STREAM_LIBS) $(COMMON_LIBS) $(CUNIT_LIBS)
