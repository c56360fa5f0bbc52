# tests: shared harness. Layer-specific tests are declared in each layer's local.mk;
# suites that drive the binaries (integration, interop) are listed here.
EXTRA_DIST += tests/lib.sh tests/interop/conftest.py tests/interop/agentutil.py
# Every script suite that any layer registers ships in the tarball, whether or
# not its local.mk also names it in EXTRA_DIST (distcheck found eight that did not);
# tests/integration/ops_dist.sh compares the tarball with `git ls-files`.
EXTRA_DIST += $(filter %.sh %.py,$(TESTS))
TESTS += tests/integration/cli_sas.sh tests/integration/man_options.sh tests/interop/test_sas.py
TESTS += tests/integration/cli_send_stdin.sh tests/integration/cli_conventions.sh tests/integration/cli_refused.sh
EXTRA_DIST += tests/integration/cli_sas.sh tests/integration/man_options.sh \
	tests/interop/test_sas.py tests/pytest-driver.sh

# Allocation-failure ("torture") runner: the code under test is linked with a
# wrapped allocator that fails the n-th call (tests/unit/torture.c).
ALLOC_WRAP_FLAGS = -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc
check_PROGRAMS += tests/unit/unit_torture
TESTS += tests/unit/unit_torture
tests_unit_unit_torture_CFLAGS = $(UNIT_CFLAGS)
tests_unit_unit_torture_LDFLAGS = $(AM_LDFLAGS) $(ALLOC_WRAP_FLAGS)
tests_unit_unit_torture_SOURCES = $(UNIT_COMMON) tests/unit/torture.c tests/unit/torture.h \
	tests/unit/test_torture_parsers.c
tests_unit_unit_torture_LDADD = $(EVENTHUBS_LIBS) $(COMMON_LIBS) $(CUNIT_LIBS)

# Spark (pyspark + delta-spark, jars through Ivy into .tools/ivy) and ehdelta
# on the same tables, both ways, and the switch from a Spark query.
TESTS += tests/interop/test_spark.py
EXTRA_DIST += tests/interop/test_spark.py

# Several agents on one hub (issue 18): 3-4 agents over 32 partitions with kill
# -9, scale-out and SIGTERM (EHDELTA_SCALE_EVENTS scales it up), and the official
# Python SDK's checkpoint store and event processor beside the agents.
TESTS += tests/interop/test_agents_scale.py tests/interop/test_sdk_balance.py
EXTRA_DIST += tests/interop/agents_util.py
