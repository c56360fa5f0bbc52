# proto: wire contracts shared by the client and the emulator (headers and .def tables).
noinst_HEADERS += proto/eventhubs.h proto/amqp.h
EXTRA_DIST += proto/conditions.def
