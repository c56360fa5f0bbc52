# src/stream: build rules for this folder (included by the top Makefile.am)
# Schemas, column batches, JSON decoding, expressions (this file); the ring,
# windows, aggregates and dedup append their sources in window.mk.
noinst_LIBRARIES += src/stream/libstream.a
src_stream_libstream_a_CPPFLAGS = $(AM_CPPFLAGS) $(JSONC_CFLAGS) $(SIMDJSON_CFLAGS)
src_stream_libstream_a_SOURCES = \
	src/stream/batch.c src/stream/batch.h \
	src/stream/schema.c src/stream/schema.h \
	src/stream/decode.c src/stream/decode.h src/stream/decode_int.h \
	src/stream/expr.h
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
tests_unit_unit_stream_SOURCES = $(UNIT_COMMON) tests/unit/test_sm_batch.c
tests_unit_unit_stream_LDADD = $(STREAM_LIBS) $(COMMON_LIBS) $(JSONC_LIBS) $(CUNIT_LIBS)

# bench/bench_decode: decode to columns beside the bare parse (not a test).
noinst_PROGRAMS += bench/bench_decode
bench_bench_decode_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS)
bench_bench_decode_SOURCES = bench/bench_decode.c
bench_bench_decode_LDADD = $(STREAM_LIBS) $(COMMON_LIBS) $(JSONC_LIBS)
