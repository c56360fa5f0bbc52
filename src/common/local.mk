# src/common: buffers, errors, logging, codecs, time, options.
noinst_LIBRARIES += src/common/libcommon.a
src_common_libcommon_a_CPPFLAGS = $(AM_CPPFLAGS) $(OPENSSL_CFLAGS)
src_common_libcommon_a_SOURCES = \
	src/common/err.c src/common/err.h src/common/err.def \
	src/common/buf.c src/common/buf.h \
	src/common/b64.c src/common/b64.h \
	src/common/pct.c src/common/pct.h \
	src/common/hmac.c src/common/hmac.h \
	src/common/time.c src/common/time.h \
	src/common/log.c src/common/log.h \
	src/common/notify.c src/common/notify.h \
	src/common/opt.c src/common/opt.h \
	src/common/backoff.c src/common/backoff.h
COMMON_LIBS += src/common/libcommon.a $(OPENSSL_LIBS) -lm

check_PROGRAMS += tests/unit/unit_common
TESTS += tests/unit/unit_common
tests_unit_unit_common_CFLAGS = $(UNIT_CFLAGS) $(JSONC_CFLAGS)
tests_unit_unit_common_SOURCES = $(UNIT_COMMON) \
	tests/unit/test_err.c tests/unit/test_buf.c tests/unit/test_b64.c tests/unit/test_pct.c \
	tests/unit/test_hmac.c tests/unit/test_time.c tests/unit/test_log.c tests/unit/test_opt.c \
	tests/unit/test_notify.c tests/unit/test_backoff.c
tests_unit_unit_common_LDADD = $(COMMON_LIBS) $(JSONC_LIBS) $(CUNIT_LIBS)
