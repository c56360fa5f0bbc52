# src/parquet: the Parquet writer and reader (prefix pq_), inspect logic, and
# their tests. Depends on common, zstd and snappy only.
noinst_LIBRARIES += src/parquet/libparquet.a
src_parquet_libparquet_a_CPPFLAGS = $(AM_CPPFLAGS) $(ZSTD_CFLAGS) $(SNAPPY_CFLAGS)
src_parquet_libparquet_a_SOURCES = \
	src/parquet/schema.c src/parquet/schema.h \
	src/parquet/thrift.c src/parquet/thrift.h \
	src/parquet/rle.c src/parquet/rle.h src/parquet/schema_int.h \
	src/parquet/writer.c src/parquet/writer.h \
	src/parquet/reader.c src/parquet/reader.h \
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

# Interop: pyarrow, DuckDB, delta-rs against our files; our reader against theirs.
TESTS += tests/interop/parquet.sh
EXTRA_DIST += tests/interop/parquet.sh tests/interop/pqutil.py \
	tests/interop/test_parquet_writer.py tests/interop/test_parquet_reader.py

# bench/parquet_bench.py: our writer beside pyarrow (not run by make check).
noinst_PROGRAMS += bench/parquet_bench
bench_parquet_bench_SOURCES = bench/parquet_bench.c
bench_parquet_bench_LDADD = $(PARQUET_LIBS) $(COMMON_LIBS)
EXTRA_DIST += bench/parquet_bench.py

# ehdelta inspect FILE.parquet: the formatting is inspect.c; the command's
# source is appended to ehdelta_SOURCES in src/cli/local.mk, because this
# fragment is included before ehdelta_SOURCES is first set (automake needs
# '=' before '+=').
dist_man_MANS += man/ehdelta-inspect.1
