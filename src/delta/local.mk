# src/delta: the Delta log (actions, snapshot, commits, checkpoints) and
# table maintenance (optimize, vacuum, inspect).
noinst_LIBRARIES += src/delta/libdelta.a
src_delta_libdelta_a_CPPFLAGS = $(AM_CPPFLAGS) $(JSONC_CFLAGS)
src_delta_libdelta_a_SOURCES = \
	src/delta/actions.h src/delta/actions.c \
	src/delta/path.h src/delta/path.c \
	src/delta/table.h src/delta/table_int.h src/delta/table.c \
	src/delta/checkpoint.c \
	src/delta/features.h src/delta/features.c \
	src/delta/stats.h src/delta/stats.c \
	src/delta/datafile.h src/delta/datafile.c \
	src/delta/maint.h src/delta/maint.c
DELTA_LIBS += src/delta/libdelta.a $(JSONC_LIBS)

# The Delta tests' driver (create, concurrent appends, snapshots) and bench tool.
check_PROGRAMS += tests/tools/dl_tool
tests_tools_dl_tool_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS)
tests_tools_dl_tool_SOURCES = tests/tools/dl_tool.c
tests_tools_dl_tool_LDADD = $(DELTA_LIBS) $(PARQUET_LIBS) $(STORE_LIBS) $(COMMON_LIBS) $(JSONC_LIBS)

check_PROGRAMS += tests/unit/unit_delta
TESTS += tests/unit/unit_delta
tests_unit_unit_delta_CFLAGS = $(UNIT_CFLAGS) $(JSONC_CFLAGS)
tests_unit_unit_delta_SOURCES = $(UNIT_COMMON) tests/unit/test_delta.c
tests_unit_unit_delta_LDADD = $(DELTA_LIBS) $(PARQUET_LIBS) $(STORE_LIBS) $(COMMON_LIBS) \
	$(JSONC_LIBS) $(CUNIT_LIBS)

# Table maintenance commands' pages.
dist_man_MANS += man/ehdelta-optimize.1 man/ehdelta-vacuum.1

# Interop: delta-rs reads our tables, we read delta-rs's, on disk and on
# Azurite, with injected storage faults (pytest via tests/pytest-driver.sh).
TESTS += tests/interop/test_delta_local.py tests/interop/test_delta_azure.py \
	tests/interop/test_delta_faults.py
EXTRA_DIST += tests/interop/delta_util.py tests/interop/test_delta_local.py \
	tests/interop/test_delta_azure.py tests/interop/test_delta_faults.py

# bench/delta_bench.py: commit latency and snapshot load vs delta-rs (not a test).
EXTRA_DIST += bench/delta_bench.py

# libFuzzer targets (the tree's convention: check_PROGRAMS, sources compiled
# in so coverage sees them, `make fuzzers`).
EXTRA_DIST += tests/fuzz/fuzz_delta_log.c tests/fuzz/fuzz_blob_list.c
if ENABLE_FUZZERS
check_PROGRAMS += tests/fuzz/fuzz_delta_log tests/fuzz/fuzz_blob_list
tests_fuzz_fuzz_delta_log_SOURCES = tests/fuzz/fuzz_delta_log.c src/delta/actions.c
tests_fuzz_fuzz_delta_log_CPPFLAGS = $(src_delta_libdelta_a_CPPFLAGS)
tests_fuzz_fuzz_delta_log_CFLAGS = $(FUZZER_CFLAGS)
tests_fuzz_fuzz_delta_log_LDFLAGS = $(AM_LDFLAGS) $(FUZZER_LINK_FLAGS)
tests_fuzz_fuzz_delta_log_LDADD = $(COMMON_LIBS) $(JSONC_LIBS)
tests_fuzz_fuzz_blob_list_SOURCES = tests/fuzz/fuzz_blob_list.c src/store/azsign.c \
	src/store/store.c src/store/file.c src/store/azure.c
tests_fuzz_fuzz_blob_list_CPPFLAGS = $(src_store_libstore_a_CPPFLAGS)
tests_fuzz_fuzz_blob_list_CFLAGS = $(FUZZER_CFLAGS)
tests_fuzz_fuzz_blob_list_LDFLAGS = $(AM_LDFLAGS) $(FUZZER_LINK_FLAGS)
tests_fuzz_fuzz_blob_list_LDADD = $(AUTH_LIBS) $(COMMON_LIBS) $(CURL_LIBS) $(JSONC_LIBS)
endif

# Allocation failures in the log reader and snapshot (tests/unit/torture.c).
check_PROGRAMS += tests/unit/unit_delta_torture
TESTS += tests/unit/unit_delta_torture
tests_unit_unit_delta_torture_CFLAGS = $(UNIT_CFLAGS)
tests_unit_unit_delta_torture_LDFLAGS = $(AM_LDFLAGS) $(ALLOC_WRAP_FLAGS)
tests_unit_unit_delta_torture_SOURCES = $(UNIT_COMMON) tests/unit/torture.c tests/unit/torture.h \
	tests/unit/test_torture_delta.c
tests_unit_unit_delta_torture_LDADD = $(DELTA_LIBS) $(PARQUET_LIBS) $(STORE_LIBS) $(COMMON_LIBS) \
	$(JSONC_LIBS) $(CUNIT_LIBS)
