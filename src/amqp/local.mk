# src/amqp: the AMQP 1.0 value reader and writer shared by the client and the emulator.
noinst_LIBRARIES += src/amqp/libamqp.a
src_amqp_libamqp_a_SOURCES = \
	src/amqp/value.c src/amqp/value.h \
	src/amqp/write.c src/amqp/write.h
AMQP_LIBS += src/amqp/libamqp.a

check_PROGRAMS += tests/unit/unit_amqp
TESTS += tests/unit/unit_amqp
tests_unit_unit_amqp_CFLAGS = $(UNIT_CFLAGS)
tests_unit_unit_amqp_SOURCES = $(UNIT_COMMON) tests/unit/test_amqp.c
tests_unit_unit_amqp_LDADD = $(AMQP_LIBS) $(COMMON_LIBS) $(CUNIT_LIBS)
