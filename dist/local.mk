# dist: what an operator installs besides the binaries and man pages: the systemd
# unit and a sample configuration, under the configured prefix. Override the
# unit's directory with `make install systemdsystemunitdir=/etc/systemd/system`.
systemdsystemunitdir = $(prefix)/lib/systemd/system
ehdeltaconfdir = $(sysconfdir)/ehdelta
systemdsystemunit_DATA = dist/ehdelta.service dist/ehdelta@.service
dist_ehdeltaconf_DATA = dist/ehdelta.conf.sample dist/tutorial.conf
EXTRA_DIST += dist/ehdelta.service.in dist/ehdelta@.service.in
CLEANFILES += dist/ehdelta.service dist/ehdelta@.service

# Bash completion, where bash-completion looks for it under the prefix.
# Override with `make install bashcompletiondir=...`.
bashcompletiondir = $(datadir)/bash-completion/completions
dist_bashcompletion_DATA = dist/completion/ehdelta dist/completion/ehemu

# The unit names the installed paths, so it is made at build time from the .in.
dist/ehdelta.service: $(srcdir)/dist/ehdelta.service.in Makefile
	$(AM_V_GEN)mkdir -p dist && \
	sed -e 's|@bindir[@]|$(bindir)|g' -e 's|@sysconfdir[@]|$(sysconfdir)|g' \
	  $(srcdir)/dist/ehdelta.service.in >$@.tmp && mv -f $@.tmp $@
# The template unit: several agents on one host (ehdelta@NAME.service).
dist/ehdelta@.service: $(srcdir)/dist/ehdelta@.service.in Makefile
	$(AM_V_GEN)mkdir -p dist && \
	sed -e 's|@bindir[@]|$(bindir)|g' -e 's|@sysconfdir[@]|$(sysconfdir)|g' \
	  $(srcdir)/dist/ehdelta@.service.in >$@.tmp && mv -f $@.tmp $@

# make uninstall also removes the directory it made for the configuration (when
# empty: an operator's ehdelta.conf and credentials stay).
uninstall-hook:
	rmdir $(DESTDIR)$(ehdeltaconfdir) 2>/dev/null || :

# The operator-surface suites: provision/teardown against a recording fake az,
# every az command and flag against the real CLI's help, install and uninstall,
# the tarball against git.
TESTS += tests/integration/ops_dist.sh tests/integration/ops_service.sh tests/integration/ops_deploy.sh
EXTRA_DIST += tests/integration/ops_notify.py
TESTS += tests/integration/ops_provision.sh tests/integration/ops_az_help.sh \
	tests/integration/ops_install.sh tests/integration/ops_run_agent.sh \
	tests/integration/ops_instances.sh
EXTRA_DIST += tests/integration/ops_provision.sh tests/integration/ops_az_help.sh \
	tests/integration/ops_install.sh tests/integration/ops_run_agent.sh \
	tests/integration/ops_fake_az.py
