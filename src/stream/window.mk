# src/stream/window.mk: the ring buffer, windows, aggregates, watermarks and
# deduplication (kept apart from local.mk, which holds schema and decoding).
src_stream_libstream_a_SOURCES += \
	src/stream/ring.c src/stream/ring.h \
	src/stream/agg.c src/stream/agg.h \
	src/stream/window.c src/stream/window.h \
	src/stream/dedup.c src/stream/dedup.h
