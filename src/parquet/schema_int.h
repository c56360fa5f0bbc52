/* schema_int: the schema's inside, shared by schema.c, writer.c, reader.c and
 * inspect.c only. Not part of the public API. */
#ifndef ED_PARQUET_SCHEMA_INT_H
#define ED_PARQUET_SCHEMA_INT_H

#include "parquet/schema.h"

typedef struct pq_inode {
  pq_node_t pub;
  char *name;
  int *kids;
  size_t kcap;
  char *path;
  char *mid_name;         /* reader: actual name of a LIST/MAP's repeated group */
  int phys_override;      /* reader: physical type when it differs from the type's; -2 = none */
  int ts_unit;            /* reader, TIMESTAMP leaves: PQ_TS_* (how the file stores it) */
  bool two_level;         /* reader: legacy LIST whose repeated field is the element itself */
  int def_here, rep_here; /* levels once this node is present (after its own repetition) */
} pq_inode_t;

struct pq_schema {
  pq_inode_t *n;
  size_t nn, cap;
  int *leaves;
  size_t nleaves, lcap;
  bool finished;
};

/* How a TIMESTAMP leaf is stored; the reader converts to microseconds. */
enum { PQ_TS_MICROS = 0, PQ_TS_MILLIS, PQ_TS_NANOS, PQ_TS_INT96 };

#endif
