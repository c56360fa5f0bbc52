# src/parquet: the Parquet writer and reader (prefix pq_), inspect logic, and
# their tests. Depends on common, zstd and snappy only.
noinst_LIBRARIES += src/parquet/libparquet.a
src_parquet_libparquet_a_CPPFLAGS = $(AM_CPPFLAGS) $(ZSTD_CFLAGS) $(SNAPPY_CFLAGS)
src_parquet_libparquet_a_SOURCES = \
	src/parquet/schema.c src/parquet/schema.h \
	src/parquet/thrift.c src/parquet/thrift.h \
	src/parquet/rle.c src/parquet/rle.h src/parquet/schema_int.h \
	src/parquet/writer.c src/parquet/writer.h src/parquet/writer_int.h src/parquet/writer_footer.c \
	src/parquet/reader.c src/parquet/reader.h src/parquet/reader_int.h src/parquet/reader_page.c \
	src/parquet/inspect.c src/parquet/inspect.h
noinst_HEADERS += proto/parquet.h
EXTRA_DIST += proto/parquet.def
PARQUET_LIBS += src/parquet/libparquet.a $(ZSTD_LIBS) $(SNAPPY_LIBS)

# The interop tests' bridge: writes files from JSON, dumps files we read.
check_PROGRAMS += tests/tools/pq_tool
tests_tools_pq_tool_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS)
tests_tools_pq_tool_SOURCES = tests/tools/pq_tool.c
tests_tools_pq_tool_LDADD = $(PARQUET_LIBS) $(COMMON_LIBS) $(JSONC_LIBS)

check_PROGRAMS += tests/unit/unit_parquet
TESTS += tests/unit/unit_parquet
tests_unit_unit_parquet_CFLAGS = $(UNIT_CFLAGS)
tests_unit_unit_parquet_SOURCES = $(UNIT_COMMON) \
	tests/unit/test_pq_codec.c tests/unit/test_pq_writer.c tests/unit/test_pq_reader.c
tests_unit_unit_parquet_LDADD = $(PARQUET_LIBS) $(COMMON_LIBS) $(CUNIT_LIBS)

# Interop (pytest via tests/pytest-driver.sh): pyarrow, DuckDB and delta-rs
# read our files; our reader reads theirs (pyarrow, delta-rs checkpoints).
TESTS += tests/interop/test_parquet_writer.py tests/interop/test_parquet_reader.py
EXTRA_DIST += tests/interop/pqutil.py \
	tests/interop/test_parquet_writer.py tests/interop/test_parquet_reader.py

# bench/bench_parquet.py: our writer beside pyarrow (not run by make check).
noinst_PROGRAMS += bench/bench_parquet
bench_bench_parquet_SOURCES = bench/bench_parquet.c
bench_bench_parquet_LDADD = $(PARQUET_LIBS) $(COMMON_LIBS)
EXTRA_DIST += bench/bench_parquet.py

# ehdelta inspect FILE.parquet: the formatting is inspect.c; the command
# (which also reads Delta tables) is appended in src/delta/local.mk.
dist_man_MANS += man/ehdelta-inspect.1

# libFuzzer target for the reader (./configure CC=clang --enable-fuzzers;
# `make fuzzers`; scripts/check runs it with tests/fuzz/corpus/fuzz_parquet_reader).
EXTRA_DIST += tests/fuzz/fuzz_parquet_reader.c tests/fuzz/corpus/fuzz_parquet_reader
if ENABLE_FUZZERS
check_PROGRAMS += tests/fuzz/fuzz_parquet_reader
# The reader's sources are compiled into the target so libFuzzer's coverage
# instrumentation sees them (an archive built without it would fuzz blind).
tests_fuzz_fuzz_parquet_reader_SOURCES = tests/fuzz/fuzz_parquet_reader.c \
	src/parquet/schema.c src/parquet/thrift.c src/parquet/rle.c src/parquet/reader.c \
	src/parquet/reader_page.c src/parquet/inspect.c
tests_fuzz_fuzz_parquet_reader_CPPFLAGS = $(src_parquet_libparquet_a_CPPFLAGS)
tests_fuzz_fuzz_parquet_reader_CFLAGS = $(FUZZER_CFLAGS)
tests_fuzz_fuzz_parquet_reader_LDFLAGS = $(AM_LDFLAGS) $(FUZZER_LINK_FLAGS)
tests_fuzz_fuzz_parquet_reader_LDADD = $(COMMON_LIBS) $(ZSTD_LIBS) $(SNAPPY_LIBS)
endif

# Allocation failures in the writer and reader (tests/unit/torture.c wrapper).
check_PROGRAMS += tests/unit/unit_parquet_torture
TESTS += tests/unit/unit_parquet_torture
tests_unit_unit_parquet_torture_CFLAGS = $(UNIT_CFLAGS)
tests_unit_unit_parquet_torture_LDFLAGS = $(AM_LDFLAGS) $(ALLOC_WRAP_FLAGS)
tests_unit_unit_parquet_torture_SOURCES = $(UNIT_COMMON) tests/unit/torture.c tests/unit/torture.h \
	tests/unit/test_pq_torture.c
tests_unit_unit_parquet_torture_LDADD = $(PARQUET_LIBS) $(COMMON_LIBS) $(CUNIT_LIBS)
