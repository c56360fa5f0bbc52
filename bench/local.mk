# bench: build rules for this folder (included by the top Makefile.am)

# make bench-agent: ehdelta run against the Python SDK + deltalake baseline
# (bench/bench_agent.py says what is measured). A bench, not a test: not in TESTS.
EXTRA_DIST += bench/bench_agent.sh bench/bench_agent.py
# bench/run-py.sh SCRIPT.py: the launcher every bench_*.sh of a Python bench calls
EXTRA_DIST += bench/run-py.sh
# bench/callgrind_client.sh [N] [BUILDDIR]: Ir per event of the receive path (callgrind)
EXTRA_DIST += bench/callgrind_client.sh
bench-agent: ehdelta$(EXEEXT) ehemu$(EXEEXT)
	EHDELTA_TOP_BUILDDIR=$(abs_top_builddir) EHDELTA_TOP_SRCDIR=$(abs_top_srcdir) \
	  bash $(top_srcdir)/bench/bench_agent.sh
.PHONY: bench-agent

# make bench-continuous: trigger = continuous against 1 second, and compaction
# (bench/bench_continuous.py says what is measured). A bench, not a test.
EXTRA_DIST += bench/bench_continuous.sh bench/bench_continuous.py
bench-continuous: ehdelta$(EXEEXT) ehemu$(EXEEXT)
	EHDELTA_TOP_BUILDDIR=$(abs_top_builddir) EHDELTA_TOP_SRCDIR=$(abs_top_srcdir) \
	  bash $(top_srcdir)/bench/bench_continuous.sh
.PHONY: bench-continuous

# make bench-align: backlog throughput with aligned reading on and off
# (bench/bench_align.py says what is measured). A bench, not a test.
EXTRA_DIST += bench/bench_align.sh bench/bench_align.py
bench-align: ehdelta$(EXEEXT) ehemu$(EXEEXT)
	EHDELTA_TOP_BUILDDIR=$(abs_top_builddir) EHDELTA_TOP_SRCDIR=$(abs_top_srcdir) \
	  bash $(top_srcdir)/bench/bench_align.sh
.PHONY: bench-align

# make bench-status-page: the agent's CPU per event with its status page
# polled and not, in the same run (bench/bench_status_page.py).
EXTRA_DIST += bench/bench_status_page.sh bench/bench_status_page.py
bench-status-page: ehdelta$(EXEEXT) ehemu$(EXEEXT)
	EHDELTA_TOP_BUILDDIR=$(abs_top_builddir) EHDELTA_TOP_SRCDIR=$(abs_top_srcdir) \
	  bash $(top_srcdir)/bench/bench_status_page.sh
.PHONY: bench-status-page

# make bench-agents: throughput and CPU of 1, 2 and 3 agents sharing a
# consumer group through a checkpoint store (bench/bench_agents.py).
EXTRA_DIST += bench/bench_agents.sh bench/bench_agents.py
bench-agents: ehdelta$(EXEEXT) ehemu$(EXEEXT)
	EHDELTA_TOP_BUILDDIR=$(abs_top_builddir) EHDELTA_TOP_SRCDIR=$(abs_top_srcdir) \
	  bash $(top_srcdir)/bench/bench_agents.sh
.PHONY: bench-agents
