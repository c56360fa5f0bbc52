# src/stream: build rules for this folder (included by the top Makefile.am)
# Schemas, column batches, JSON decoding, expressions (this file); the ring,
# windows, aggregates and dedup append their sources in window.mk.
noinst_LIBRARIES += src/stream/libstream.a
src_stream_libstream_a_CPPFLAGS = $(AM_CPPFLAGS) $(JSONC_CFLAGS) $(SIMDJSON_CFLAGS)
src_stream_libstream_a_SOURCES = \
	src/stream/batch.c src/stream/batch.h \
	src/stream/schema.h src/stream/decode.h src/stream/expr.h
STREAM_LIBS += src/stream/libstream.a $(JSONC_LIBS)

check_PROGRAMS += tests/unit/unit_stream
TESTS += tests/unit/unit_stream
tests_unit_unit_stream_CFLAGS = $(UNIT_CFLAGS) $(JSONC_CFLAGS)
tests_unit_unit_stream_SOURCES = $(UNIT_COMMON) tests/unit/test_sm_batch.c
tests_unit_unit_stream_LDADD = $(STREAM_LIBS) $(COMMON_LIBS) $(JSONC_LIBS) $(CUNIT_LIBS)
