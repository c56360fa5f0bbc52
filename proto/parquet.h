/* parquet: Parquet Thrift field ids and enum values as C enums, generated
 * from proto/parquet.def. Used by src/parquet (writer, reader, inspect) only;
 * literal field ids never appear in code. */
#ifndef ED_PROTO_PARQUET_H
#define ED_PROTO_PARQUET_H

enum {
#define PQ_FIELD(s, f, id) PQF_##s##_##f = id,
#include "proto/parquet.def"
#undef PQ_FIELD
};
enum {
#define PQ_ENUM(e, n, v) PQ_##e##_##n = v,
#include "proto/parquet.def"
#undef PQ_ENUM
};

#endif
