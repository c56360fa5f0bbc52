# src/emu: ehemu, the local Event Hubs emulator (its main is src/cli/ehemu.c).
noinst_LIBRARIES += src/emu/libemu.a
src_emu_libemu_a_CPPFLAGS = $(AM_CPPFLAGS) $(PROTON_CFLAGS) $(OPENSSL_CFLAGS) $(JSONC_CFLAGS)
src_emu_libemu_a_SOURCES = src/emu/emu.c src/emu/emu.h src/emu/emu_int.h src/emu/conn.c src/emu/tls.c \
	src/emu/sasl.c src/emu/norm.c src/emu/links.c src/emu/node.c src/emu/hub.c \
	src/emu/plog.c src/emu/plog.h \
	src/emu/conf.c src/emu/conf.h src/emu/event.c src/emu/event.h src/emu/jwt.c src/emu/jwt.h
EMU_LIBS += src/emu/libemu.a

bin_PROGRAMS += ehemu
ehemu_SOURCES = src/cli/ehemu.c
ehemu_CPPFLAGS = $(AM_CPPFLAGS) $(OPENSSL_CFLAGS)
ehemu_LDADD = $(EMU_LIBS) $(EVENTHUBS_LIBS) $(COMMON_LIBS) $(PROTON_LIBS) $(JSONC_LIBS)
dist_man_MANS += man/ehemu.1

TESTS += tests/interop/test_ehemu.py tests/interop/test_ehemu_tls.py tests/integration/emu_tls.sh \
	tests/interop/test_ehemu_persist.py tests/interop/test_ehemu_config.py \
	tests/interop/test_ehemu_processor.py tests/interop/test_ehemu_service.py \
	tests/interop/test_ehemu_frames.py
EXTRA_DIST += tests/interop/test_ehemu.py tests/interop/test_ehemu_tls.py \
	tests/interop/test_ehemu_persist.py tests/interop/test_ehemu_config.py \
	tests/interop/test_ehemu_processor.py tests/interop/test_ehemu_service.py \
	tests/interop/emu_util.py tests/integration/emu_tls.sh \
	tests/interop/test_ehemu_frames.py tests/interop/amqp_trace.py
# scripts/mkcerts DIR: the throw-away CA and localhost certificate the TLS tests use
dist_noinst_SCRIPTS += scripts/mkcerts

# bench: bench/bench_emu PORT KEY [N] against a running ehemu (see bench/bench_emu.sh)
noinst_PROGRAMS += bench/bench_emu
bench_bench_emu_CPPFLAGS = $(AM_CPPFLAGS) $(PROTON_CFLAGS)
bench_bench_emu_SOURCES = bench/bench_emu.c
bench_bench_emu_LDADD = $(PROTON_LIBS)
dist_noinst_SCRIPTS += bench/bench_emu.sh

check_PROGRAMS += tests/unit/unit_emu
TESTS += tests/unit/unit_emu
tests_unit_unit_emu_CFLAGS = $(UNIT_CFLAGS) $(JSONC_CFLAGS)
tests_unit_unit_emu_SOURCES = $(UNIT_COMMON) tests/unit/test_emu_plog.c tests/unit/test_emu_conf.c
tests_unit_unit_emu_LDADD = src/emu/libemu.a $(AMQP_LIBS) $(COMMON_LIBS) $(JSONC_LIBS) $(CUNIT_LIBS)
