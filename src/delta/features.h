/* features: what a Delta table obliges its writers to do, and whether
 * ehdelta does it. Owns the table of writer protocol versions and table
 * features (Delta PROTOCOL.md "Writer Version Requirements", "Table
 * Features") with ehdelta's answer for each of append, optimize and vacuum,
 * and the reading of the obligations that live in metaData: CHECK
 * constraints (delta.constraints.*), column invariants (delta.invariants),
 * generated columns (delta.generationExpression), identity columns and
 * column mapping (physical names). Never evaluates an expression: the rules
 * are handed up as text for the agent's expression engine. Called by
 * table.c (every commit), maint.c (optimize, vacuum) and the Delta sink. */
#ifndef ED_DELTA_FEATURES_H
#define ED_DELTA_FEATURES_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "common/err.h"
#include "delta/table.h"

/* Refuses (ED_E_UNSUPPORTED, one line naming the table, the feature and what
 * ehdelta would have had to do) an operation on a table whose protocol asks
 * for something ehdelta does not do for that operation; ED_OK when every
 * obligation is honoured (or, for rules, handed to dl_feat_rules' caller). */
ed_code_t dl_feat_check(const dl_table_t *t, dl_op_t op, ed_err_t *err);

typedef enum dl_rule_kind {
  DL_RULE_CHECK,     /* delta.constraints.<name> */
  DL_RULE_INVARIANT, /* delta.invariants on a column */
  DL_RULE_GENERATED, /* the column must equal its delta.generationExpression */
} dl_rule_kind_t;

/* A row-level rule every appended row must satisfy: expr is TRUE for the row
 * (NULL or FALSE is a violation, as Delta's CheckDeltaInvariant has it). */
typedef struct dl_rule {
  dl_rule_kind_t kind;
  char *name;   /* the constraint's name; for the others the column's path */
  char *expr;   /* Spark SQL over the table's logical column names */
  char *source; /* the expression as the table states it (for messages) */
} dl_rule_t;

typedef struct dl_rules {
  dl_rule_t *v;
  size_t n;
} dl_rules_t;

/* The row-level rules of the table's protocol (constraints from writer 3 or
 * checkConstraints, invariants from writer 2 or invariants, generated columns
 * from writer 4 or generatedColumns). ED_E_CORRUPT for a malformed
 * schemaString or invariant. Caller frees with dl_rules_fini. */
ed_code_t dl_feat_rules(const dl_table_t *t, dl_rules_t *out, ed_err_t *err);
void dl_rules_fini(dl_rules_t *r);

/* The column mapping mode in force: "none", "name" or "id" (borrowed). */
const char *dl_feat_mapping_mode(const dl_table_t *t);
/* The table's schemaString with every field (nested ones too) renamed to its
 * physical name (delta.columnMapping.physicalName): the names a writer puts
 * in Parquet files, stats and partitionValues under name mapping. Appends to
 * out. ED_E_CORRUPT for a field without a physical name. */
ed_code_t dl_feat_physical_schema(const dl_table_t *t, ed_buf_t *out, ed_err_t *err);

#endif
