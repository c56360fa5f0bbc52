# tests: shared harness. Layer-specific tests are declared in each layer's local.mk;
# suites that drive the binaries (integration, interop) are listed here.
EXTRA_DIST += tests/lib.sh tests/interop/conftest.py
TESTS += tests/integration/cli_sas.sh tests/integration/man_options.sh tests/interop/test_sas.py
EXTRA_DIST += tests/integration/cli_sas.sh tests/integration/man_options.sh \
	tests/interop/test_sas.py tests/pytest-driver.sh
