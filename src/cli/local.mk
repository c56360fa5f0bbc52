# src/cli: main()s and argument parsing only. Each subcommand is cmd_<name>.c
# plus a row in commands.def.
bin_PROGRAMS += ehdelta
ehdelta_SOURCES = src/cli/ehdelta.c src/cli/cli.c src/cli/cli.h src/cli/commands.def \
	src/cli/cmd_sas.c
ehdelta_SOURCES += src/cli/cli_eh.c src/cli/cli_eh.h src/cli/cmd_send.c src/cli/cmd_tail.c \
	src/cli/cmd_status.c
ehdelta_CPPFLAGS = $(AM_CPPFLAGS) $(JSONC_CFLAGS) $(CURL_CFLAGS)
ehdelta_LDADD = $(AGENT_LIBS) $(DELTA_LIBS) $(STREAM_LIBS) $(PARQUET_LIBS) $(STORE_LIBS) \
	$(EVENTHUBS_LIBS) $(COMMON_LIBS) $(JSONC_LIBS) $(ZSTD_LIBS) $(SNAPPY_LIBS) $(CURL_LIBS)
