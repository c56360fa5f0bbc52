# src/agent: the agent behind `ehdelta run` (configuration, sinks, exactly-once).
noinst_LIBRARIES += src/agent/libagent.a
src_agent_libagent_a_CPPFLAGS = $(AM_CPPFLAGS) $(JSONC_CFLAGS) $(PROTON_CFLAGS)
src_agent_libagent_a_SOURCES = src/agent/conf.c src/agent/conf.h src/agent/sink.c src/agent/sink.h
src_agent_libagent_a_SOURCES += src/agent/spark.c src/agent/spark.h
src_agent_libagent_a_SOURCES += src/agent/metrics.c src/agent/metrics.h src/agent/run.c src/agent/run.h \
	src/agent/run_int.h src/agent/plan.c src/agent/source.c src/agent/slice.c src/agent/flush.c \
	src/agent/console.c src/agent/console.h src/agent/page.h src/agent/owner.c src/agent/owner.h src/agent/shared.c \
	src/agent/compact.c src/agent/compact.h
# The status page, compiled in: its bytes become a C array at build time.
nodist_src_agent_libagent_a_SOURCES = src/agent/page_html.c
src/agent/page_html.c: $(top_srcdir)/src/agent/page/status.html $(top_srcdir)/scripts/embed.sh
	@$(MKDIR_P) src/agent
	$(AM_V_GEN)$(SHELL) $(top_srcdir)/scripts/embed.sh ag_page_html $(top_srcdir)/src/agent/page/status.html >$@.tmp && mv $@.tmp $@
CLEANFILES += src/agent/page_html.c
EXTRA_DIST += src/agent/page/status.html scripts/embed.sh
AGENT_LIBS += src/agent/libagent.a

check_PROGRAMS += tests/unit/unit_agent
TESTS += tests/unit/unit_agent
tests_unit_unit_agent_CFLAGS = $(UNIT_CFLAGS) $(JSONC_CFLAGS)
tests_unit_unit_agent_SOURCES = $(UNIT_COMMON) tests/unit/test_ag_conf.c tests/unit/test_ag_sink.c
tests_unit_unit_agent_SOURCES += tests/unit/test_ag_metrics.c tests/unit/test_ag_spark.c tests/unit/test_ag_owner.c
tests_unit_unit_agent_LDADD = src/agent/libagent.a $(DELTA_LIBS) $(STREAM_LIBS) $(PARQUET_LIBS) \
	$(STORE_LIBS) $(EVENTHUBS_LIBS) $(COMMON_LIBS) $(JSONC_LIBS) $(ZSTD_LIBS) $(SNAPPY_LIBS) $(CURL_LIBS) $(OPENSSL_LIBS) $(CUNIT_LIBS) -lpthread
TESTS += tests/integration/agent_conf.sh tests/integration/agent_run.sh tests/integration/agent_live.sh

# The decode -> sink driver of the crash and interop suites.
check_PROGRAMS += tests/tools/ag_sink_tool
tests_tools_ag_sink_tool_CFLAGS = $(AM_CFLAGS)
tests_tools_ag_sink_tool_SOURCES = tests/tools/ag_sink_tool.c
tests_tools_ag_sink_tool_LDADD = $(tests_unit_unit_agent_LDADD)
TESTS += tests/interop/test_agent_sink.py tests/interop/test_agent_e2e.py tests/interop/test_agent_rawpath.py tests/interop/test_agent_deadletter_reasons.py tests/fault/test_agent_kill9.py tests/fault/test_agent_faults.py \
	tests/fault/test_agent_compaction.py
# Event time per partition: window tables equal to DuckDB's batch windows over
# the raw table for any batch size, partition count, skew and kill -9 schedule.
TESTS += tests/interop/test_event_time.py

# The metrics endpoint: a registry filled with known values, served on a free
# loopback port until stdin closes, for `ehdelta status --agent` and curl.
check_PROGRAMS += tests/tools/metrics_tool
tests_tools_metrics_tool_CFLAGS = $(AM_CFLAGS)
tests_tools_metrics_tool_SOURCES = tests/tools/metrics_tool.c
tests_tools_metrics_tool_LDADD = src/agent/libagent.a $(COMMON_LIBS) $(JSONC_LIBS) -lpthread
TESTS += tests/integration/agent_metrics.sh
EXTRA_DIST += tests/integration/agent_metrics.sh
TESTS += tests/integration/agent_metrics_run.sh
TESTS += tests/integration/agent_lag.sh
TESTS += tests/integration/agent_batch_bound.sh
EXTRA_DIST += tests/integration/agent_batch_bound.sh
EXTRA_DIST += tests/integration/agent_lag.sh
EXTRA_DIST += tests/integration/agent_metrics_run.sh
# The status page in Debian's chromium (scripts/deps installs it and playwright-core).
TESTS += tests/interop/test_status_page.py
EXTRA_DIST += tests/interop/test_status_page.py tests/interop/status_page.mjs

# Partition ownership in the SDKs' Blob layout: owner_tool plays agents against
# Azurite; the official Python SDK's BlobCheckpointStore reads what they write.
check_PROGRAMS += tests/tools/owner_tool
tests_tools_owner_tool_CFLAGS = $(AM_CFLAGS)
tests_tools_owner_tool_SOURCES = tests/tools/owner_tool.c
tests_tools_owner_tool_LDADD = src/agent/libagent.a $(STORE_LIBS) $(COMMON_LIBS) $(JSONC_LIBS) $(CURL_LIBS) $(OPENSSL_LIBS) -lpthread
TESTS += tests/interop/test_owner.py
EXTRA_DIST += tests/interop/test_owner.py
# Two `ehdelta run` agents sharing 8 partitions through Azurite: balance,
# SIGTERM and kill -9 fail-over, exactly once, never two readers at once.
TESTS += tests/fault/test_agent_shared.py
