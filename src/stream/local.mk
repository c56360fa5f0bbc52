# src/stream: build rules for this folder (included by the top Makefile.am)
# Schemas, column batches, JSON decoding, expressions (this file); the ring,
# windows, aggregates and dedup append their sources in window.mk.
noinst_LIBRARIES += src/stream/libstream.a
EXTRA_DIST += src/stream/README
src_stream_libstream_a_CPPFLAGS = $(AM_CPPFLAGS) $(JSONC_CFLAGS) $(SIMDJSON_CFLAGS)
src_stream_libstream_a_SOURCES = \
	src/stream/batch.c src/stream/batch.h \
	src/stream/schema.c src/stream/schema.h \
	src/stream/decode.c src/stream/decode.h src/stream/decode_int.h \
	src/stream/expr.c src/stream/expr.h src/stream/expr_int.h \
	src/stream/expr_parse.c src/stream/expr_eval.c
STREAM_LIBS += src/stream/libstream.a $(JSONC_LIBS)
# The per-event hot path on simdjson On-Demand (bench/bench_decode measured
# why); a C++ file behind a C interface, so programs also link libstdc++.
if HAVE_SIMDJSON
src_stream_libstream_a_SOURCES += src/stream/decode_simd.cpp
STREAM_LIBS += $(SIMDJSON_LIBS) -lstdc++
endif

check_PROGRAMS += tests/unit/unit_stream
TESTS += tests/unit/unit_stream
tests_unit_unit_stream_CFLAGS = $(UNIT_CFLAGS) $(JSONC_CFLAGS)
tests_unit_unit_stream_SOURCES = $(UNIT_COMMON) tests/unit/test_sm_batch.c \
	tests/unit/test_sm_decode.c tests/sm_text.h tests/unit/test_sm_schema.c tests/unit/test_sm_expr.c
tests_unit_unit_stream_LDADD = $(STREAM_LIBS) $(COMMON_LIBS) $(JSONC_LIBS) $(CUNIT_LIBS)

# bench/bench_decode: decode to columns beside the bare parse (not a test).
noinst_PROGRAMS += bench/bench_decode
bench_bench_decode_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS)
bench_bench_decode_SOURCES = bench/bench_decode.c
bench_bench_decode_LDADD = $(STREAM_LIBS) $(COMMON_LIBS) $(JSONC_LIBS)

# libFuzzer targets: the decoder and the expression parser (./configure
# CC=clang CXX=clang++ --enable-fuzzers; `make fuzzers`; scripts/check runs
# them with tests/fuzz/corpus/<target>). Sources are compiled into the
# targets so the coverage instrumentation sees them.
EXTRA_DIST += tests/fuzz/fuzz_decode.c tests/fuzz/fuzz_expr.c \
	tests/fuzz/corpus/fuzz_decode tests/fuzz/corpus/fuzz_expr
if ENABLE_FUZZERS
STREAM_FUZZ_SOURCES = src/stream/batch.c src/stream/schema.c src/stream/decode.c src/stream/expr.c \
	src/stream/expr_parse.c src/stream/expr_eval.c
if HAVE_SIMDJSON
STREAM_FUZZ_SOURCES += src/stream/decode_simd.cpp
endif
check_PROGRAMS += tests/fuzz/fuzz_decode tests/fuzz/fuzz_expr
tests_fuzz_fuzz_decode_SOURCES = tests/fuzz/fuzz_decode.c $(STREAM_FUZZ_SOURCES)
tests_fuzz_fuzz_decode_CPPFLAGS = $(src_stream_libstream_a_CPPFLAGS)
tests_fuzz_fuzz_decode_CFLAGS = $(FUZZER_CFLAGS)
tests_fuzz_fuzz_decode_CXXFLAGS = $(AM_CXXFLAGS) -g -O1 -fsanitize=fuzzer,address,undefined
tests_fuzz_fuzz_decode_LDFLAGS = $(AM_LDFLAGS) $(FUZZER_LINK_FLAGS)
tests_fuzz_fuzz_decode_LDADD = $(COMMON_LIBS) $(JSONC_LIBS) $(SIMDJSON_LIBS)
tests_fuzz_fuzz_expr_SOURCES = tests/fuzz/fuzz_expr.c $(STREAM_FUZZ_SOURCES)
tests_fuzz_fuzz_expr_CPPFLAGS = $(src_stream_libstream_a_CPPFLAGS)
tests_fuzz_fuzz_expr_CFLAGS = $(FUZZER_CFLAGS)
tests_fuzz_fuzz_expr_CXXFLAGS = $(AM_CXXFLAGS) -g -O1 -fsanitize=fuzzer,address,undefined
tests_fuzz_fuzz_expr_LDFLAGS = $(AM_LDFLAGS) $(FUZZER_LINK_FLAGS)
tests_fuzz_fuzz_expr_LDADD = $(COMMON_LIBS) $(JSONC_LIBS) $(SIMDJSON_LIBS)
endif

# Interop: the decoder against Python's json module on the tutorial's events,
# through the sm_tool bridge (pytest via tests/pytest-driver.sh).
check_PROGRAMS += tests/tools/sm_tool
tests_tools_sm_tool_SOURCES = tests/tools/sm_tool.c tests/sm_text.h
tests_tools_sm_tool_LDADD = $(STREAM_LIBS) $(COMMON_LIBS) $(JSONC_LIBS)
TESTS += tests/interop/test_decode.py
EXTRA_DIST += tests/interop/test_decode.py
