# src/auth: Entra ID credentials (client secret, workload identity, managed
# identity, Azure CLI, default chain) shared by store/ and eventhubs/.
noinst_LIBRARIES += src/auth/libauth.a
src_auth_libauth_a_CPPFLAGS = $(AM_CPPFLAGS) $(CURL_CFLAGS) $(JSONC_CFLAGS)
src_auth_libauth_a_SOURCES = src/auth/cred.c src/auth/cred.h
AUTH_LIBS += src/auth/libauth.a $(CURL_LIBS) $(JSONC_LIBS)

check_PROGRAMS += tests/unit/unit_auth
TESTS += tests/unit/unit_auth
tests_unit_unit_auth_CFLAGS = $(UNIT_CFLAGS) $(JSONC_CFLAGS)
tests_unit_unit_auth_SOURCES = $(UNIT_COMMON) tests/unit/test_au_cred.c
tests_unit_unit_auth_LDADD = $(AUTH_LIBS) $(COMMON_LIBS) $(CUNIT_LIBS) -lpthread

# The loopback Entra ID token service (tests/interop/entra_util.py) and the
# credential forms end to end against it and ehemu.
TESTS += tests/interop/test_entra.py
EXTRA_DIST += tests/interop/test_entra.py tests/interop/entra_util.py
