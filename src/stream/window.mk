# src/stream/window.mk: the ring buffer, windows, aggregates, watermarks and
# deduplication (kept apart from local.mk, which holds schema and decoding).
