# src/cli: main()s and argument parsing only. Each subcommand is cmd_<name>.c
# plus a row in commands.def, and is listed here (not in the layer it drives),
# so this file alone says what the ehdelta program is built from.
bin_PROGRAMS += ehdelta
ehdelta_SOURCES = src/cli/ehdelta.c src/cli/cli.c src/cli/cli.h src/cli/commands.def \
	src/cli/cli_eh.c src/cli/cli_eh.h
# Event Hubs: sas, send, tail, status
ehdelta_SOURCES += src/cli/cmd_sas.c src/cli/cmd_send.c src/cli/cmd_tail.c src/cli/cmd_status.c
# the agent
ehdelta_SOURCES += src/cli/cmd_run.c
# Delta maintenance, and inspect (Parquet files and Delta tables)
ehdelta_SOURCES += src/cli/cmd_optimize.c src/cli/cmd_vacuum.c src/cli/cmd_inspect.c
ehdelta_CPPFLAGS = $(AM_CPPFLAGS) $(JSONC_CFLAGS) $(CURL_CFLAGS)
ehdelta_LDADD = $(AGENT_LIBS) $(DELTA_LIBS) $(STREAM_LIBS) $(PARQUET_LIBS) $(STORE_LIBS) \
	$(EVENTHUBS_LIBS) $(COMMON_LIBS) $(JSONC_LIBS) $(ZSTD_LIBS) $(SNAPPY_LIBS) $(CURL_LIBS)
