# src/emu: ehemu, the local Event Hubs emulator (its main is src/cli/ehemu.c).
noinst_LIBRARIES += src/emu/libemu.a
src_emu_libemu_a_CPPFLAGS = $(AM_CPPFLAGS) $(PROTON_CFLAGS) $(OPENSSL_CFLAGS)
src_emu_libemu_a_SOURCES = src/emu/emu.c src/emu/emu.h
EMU_LIBS += src/emu/libemu.a

bin_PROGRAMS += ehemu
ehemu_SOURCES = src/cli/ehemu.c
ehemu_CPPFLAGS = $(AM_CPPFLAGS) $(OPENSSL_CFLAGS)
ehemu_LDADD = $(EMU_LIBS) $(EVENTHUBS_LIBS) $(COMMON_LIBS) $(PROTON_LIBS)
dist_man_MANS += man/ehemu.1

TESTS += tests/interop/test_ehemu.py
EXTRA_DIST += tests/interop/test_ehemu.py
