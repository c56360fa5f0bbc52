# src/parquet: the Parquet writer and reader (prefix pq_), inspect logic, and
# their tests. Depends on common, zstd and snappy only.
noinst_LIBRARIES += src/parquet/libparquet.a
src_parquet_libparquet_a_CPPFLAGS = $(AM_CPPFLAGS) $(ZSTD_CFLAGS) $(SNAPPY_CFLAGS)
src_parquet_libparquet_a_SOURCES = \
	src/parquet/schema.c src/parquet/schema.h \
	src/parquet/thrift.c src/parquet/thrift.h \
	src/parquet/rle.c src/parquet/rle.h src/parquet/schema_int.h \
	src/parquet/writer.c src/parquet/writer.h \
	src/parquet/reader.c src/parquet/reader.h
noinst_HEADERS += proto/parquet.h
EXTRA_DIST += proto/parquet.def
PARQUET_LIBS += src/parquet/libparquet.a $(ZSTD_LIBS) $(SNAPPY_LIBS)

# The interop tests' bridge: writes files from JSON, dumps files we read.
check_PROGRAMS += tests/tools/pq_tool
tests_tools_pq_tool_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS)
tests_tools_pq_tool_SOURCES = tests/tools/pq_tool.c
tests_tools_pq_tool_LDADD = $(PARQUET_LIBS) $(COMMON_LIBS) $(JSONC_LIBS)
