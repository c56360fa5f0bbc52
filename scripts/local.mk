# scripts: build rules for this folder (included by the top Makefile.am)
# Operator scripts (az CLI provisioning, running the agent, teardown); shipped in
# the distribution, run from the source tree.
dist_noinst_SCRIPTS += scripts/provision scripts/run-agent scripts/teardown
# The README's two commands and what they call: a release user runs them too.
dist_noinst_SCRIPTS += scripts/check scripts/deps scripts/demo
EXTRA_DIST += scripts/tutorial-queries.py
