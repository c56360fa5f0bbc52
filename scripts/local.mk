# scripts: build rules for this folder (included by the top Makefile.am)
# Operator scripts (az CLI provisioning, running the agent, teardown); shipped in
# the distribution, run from the source tree.
dist_noinst_SCRIPTS += scripts/provision scripts/run-agent scripts/teardown
# The README's two commands and what they call: a release user runs them too.
dist_noinst_SCRIPTS += scripts/check scripts/deps scripts/demo
EXTRA_DIST += scripts/tutorial-queries.py

# The operator scripts are also installed, as ehdelta-provision,
# ehdelta-run-agent and ehdelta-teardown (see ehdelta-deploy(7)): the same
# files, with the names they print for each other changed to the installed ones.
bin_SCRIPTS = ehdelta-provision ehdelta-run-agent ehdelta-teardown
CLEANFILES += ehdelta-provision ehdelta-run-agent ehdelta-teardown
ops_script_sed = sed -e 's,scripts/\(provision\|run-agent\|teardown\),ehdelta-\1,g'
ehdelta-provision: $(srcdir)/scripts/provision Makefile
	$(AM_V_GEN)$(ops_script_sed) $(srcdir)/scripts/provision >$@.tmp && chmod +x $@.tmp && mv -f $@.tmp $@
ehdelta-run-agent: $(srcdir)/scripts/run-agent Makefile
	$(AM_V_GEN)$(ops_script_sed) $(srcdir)/scripts/run-agent >$@.tmp && chmod +x $@.tmp && mv -f $@.tmp $@
ehdelta-teardown: $(srcdir)/scripts/teardown Makefile
	$(AM_V_GEN)$(ops_script_sed) $(srcdir)/scripts/teardown >$@.tmp && chmod +x $@.tmp && mv -f $@.tmp $@
