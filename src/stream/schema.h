/* schema: Spark schemas as text, in and out.
 * Owns nothing past a call: parses Spark DDL ("id BIGINT NOT NULL, tags
 * ARRAY<STRING>, geo STRUCT<lat: DOUBLE, lon: DOUBLE>") and Spark's StructType
 * JSON (the form Delta's metaData.schemaString uses) into the sm_type_t trees of
 * batch.h, and prints trees back as either. Never decodes events (decode.h).
 * Any layer that has a schema as text calls it: the agent's configuration, the
 * Delta sink (schemaString), the expression parser (CAST targets). */
#ifndef ED_STREAM_SCHEMA_H
#define ED_STREAM_SCHEMA_H

#include <stddef.h>

#include "common/buf.h"
#include "common/err.h"
#include "stream/batch.h"

/* Types accepted in DDL (case-insensitive): STRING (VARCHAR(n), CHAR(n) read
 * as STRING, as Spark reads them), BOOLEAN (BOOL), INT (INTEGER), BIGINT (LONG),
 * FLOAT (REAL), DOUBLE, DATE, TIMESTAMP, BINARY, ARRAY<t>, MAP<STRING, t>,
 * STRUCT<name[:] t [NOT NULL] [COMMENT '...'], ...>. Names may be `quoted`.
 * A field is nullable unless NOT NULL. ARRAY elements and MAP values are
 * nullable (Spark's containsNull/valueContainsNull default).
 * Errors name the position: "schema: at 17: expected a type, got 'DECIMALX'".
 * On success *out is a STRUCT; caller frees with sm_type_free. */
ed_code_t sm_schema_parse_ddl(const char *ddl, sm_type_t **out, ed_err_t *err);
/* One type alone ("ARRAY<STRING>", "timestamp"): CAST targets. Caller frees
 * *out with sm_type_free. */
ed_code_t sm_schema_parse_type(const char *text, size_t len, sm_type_t **out, ed_err_t *err);
/* Spark StructType JSON: {"type":"struct","fields":[{"name":..,"type":..,
 * "nullable":..,"metadata":{}}]} with type names "string", "boolean",
 * "integer", "long", "float", "double", "date", "timestamp", "binary" and
 * nested {"type":"array","elementType":..,"containsNull":..},
 * {"type":"map","keyType":"string","valueType":..,"valueContainsNull":..}.
 * Caller frees *out with sm_type_free. */
ed_code_t sm_schema_parse_json(const char *json, size_t len, sm_type_t **out, ed_err_t *err);
/* Either form: JSON when the first non-blank character is '{'. */
ed_code_t sm_schema_parse(const char *text, sm_type_t **out, ed_err_t *err);

/* Appends the StructType JSON of st (a STRUCT), compact, fields in order,
 * "metadata":{} on each: what Delta writes as schemaString. */
ed_code_t sm_schema_to_json(const sm_type_t *st, ed_buf_t *out);
/* Appends DDL ("a BIGINT NOT NULL, b ARRAY<STRING>"); names are back-quoted
 * when they are not plain identifiers. Parses back to an equal tree. */
ed_code_t sm_schema_to_ddl(const sm_type_t *st, ed_buf_t *out);
/* Appends one type as DDL ("MAP<STRING, BIGINT>"). */
ed_code_t sm_schema_type_to_ddl(const sm_type_t *t, ed_buf_t *out);

#endif
