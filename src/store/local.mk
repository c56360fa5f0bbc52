# src/store: one storage interface; local files and Azure Blob / ADLS Gen2.
noinst_LIBRARIES += src/store/libstore.a
src_store_libstore_a_CPPFLAGS = $(AM_CPPFLAGS) $(CURL_CFLAGS) $(OPENSSL_CFLAGS) $(JSONC_CFLAGS)
src_store_libstore_a_SOURCES = \
	src/store/store.h src/store/store_int.h src/store/store.c src/store/file.c \
	src/store/azure.h src/store/azsign.c src/store/azure.c
STORE_LIBS += src/store/libstore.a $(AUTH_LIBS) $(CURL_LIBS) $(JSONC_LIBS)

check_PROGRAMS += tests/unit/unit_store
TESTS += tests/unit/unit_store
tests_unit_unit_store_CFLAGS = $(UNIT_CFLAGS) $(JSONC_CFLAGS)
tests_unit_unit_store_SOURCES = $(UNIT_COMMON) \
	tests/unit/test_azsign.c tests/unit/test_filestore.c
tests_unit_unit_store_LDADD = $(STORE_LIBS) $(COMMON_LIBS) $(CUNIT_LIBS)

TESTS += tests/integration/store_readonly.sh
EXTRA_DIST += tests/integration/store_readonly.sh
TESTS += tests/interop/test_store_azure.py
EXTRA_DIST += tests/interop/test_store_azure.py
