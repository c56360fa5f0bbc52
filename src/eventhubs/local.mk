# src/eventhubs: connection strings, SAS tokens, the AMQP client.
noinst_LIBRARIES += src/eventhubs/libeventhubs.a
src_eventhubs_libeventhubs_a_CPPFLAGS = $(AM_CPPFLAGS) $(PROTON_CFLAGS) $(OPENSSL_CFLAGS)
src_eventhubs_libeventhubs_a_SOURCES = \
	src/eventhubs/connstr.c src/eventhubs/connstr.h \
	src/eventhubs/sas.c src/eventhubs/sas.h \
	src/eventhubs/client.c src/eventhubs/client.h src/eventhubs/client_int.h \
	src/eventhubs/conn.c src/eventhubs/link.c src/eventhubs/cbs.c src/eventhubs/mgmt.c \
	src/eventhubs/receiver.c src/eventhubs/sender.c \
	src/eventhubs/amqp.c src/eventhubs/amqp.h \
	src/eventhubs/tlscheck.c src/eventhubs/tlscheck.h
EVENTHUBS_LIBS += src/eventhubs/libeventhubs.a $(AMQP_LIBS) $(AUTH_LIBS) $(PROTON_LIBS)

check_PROGRAMS += tests/unit/unit_eventhubs
TESTS += tests/unit/unit_eventhubs
tests_unit_unit_eventhubs_CFLAGS = $(UNIT_CFLAGS) $(PROTON_CFLAGS)
tests_unit_unit_eventhubs_SOURCES = $(UNIT_COMMON) \
	tests/unit/test_connstr.c tests/unit/test_sas.c tests/unit/test_eh_amqp.c
tests_unit_unit_eventhubs_LDADD = $(EVENTHUBS_LIBS) $(COMMON_LIBS) $(CUNIT_LIBS) $(OPENSSL_LIBS) -lpthread
# The client's commands against a real ehemu on loopback.
TESTS += tests/integration/client_emu.sh
EXTRA_DIST += tests/integration/client_emu.sh
# Every start position, epochs, drops, token refresh and server-busy against ehemu.
TESTS += tests/integration/client_faults.sh
EXTRA_DIST += tests/integration/client_faults.sh
# ehdelta send / tail against the official Python SDK, through ehemu.
TESTS += tests/interop/test_client_sdk.py
EXTRA_DIST += tests/interop/test_client_sdk.py
# 66,000 B, 1 MiB and 20 MiB events: send, tail, the SDK both ways, run into Delta.
TESTS += tests/interop/test_large_events.py
EXTRA_DIST += tests/interop/test_large_events.py
EXTRA_DIST += bench/bench_client.sh bench/bench_client.py
# libFuzzer target (see src/stream/local.mk): the message decoder on any
# bytes, its inline paths held against the general reader.
EXTRA_DIST += tests/fuzz/fuzz_amqp.c tests/fuzz/corpus/fuzz_amqp
if ENABLE_FUZZERS
check_PROGRAMS += tests/fuzz/fuzz_amqp
tests_fuzz_fuzz_amqp_SOURCES = tests/fuzz/fuzz_amqp.c src/eventhubs/amqp.c src/amqp/value.c \
	src/amqp/write.c src/emu/event.c
tests_fuzz_fuzz_amqp_CPPFLAGS = $(src_eventhubs_libeventhubs_a_CPPFLAGS)
tests_fuzz_fuzz_amqp_CFLAGS = $(FUZZER_CFLAGS)
tests_fuzz_fuzz_amqp_LDFLAGS = $(AM_LDFLAGS) $(FUZZER_LINK_FLAGS)
tests_fuzz_fuzz_amqp_LDADD = $(COMMON_LIBS)
endif
