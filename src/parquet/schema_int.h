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
  int def_here, rep_here; /* levels once this node is present (after its own repetition) */
} pq_inode_t;

struct pq_schema {
  pq_inode_t *n;
  size_t nn, cap;
  int *leaves;
  size_t nleaves, lcap;
  bool finished;
};

pq_phys_t pq_type_phys(pq_type_t t);

#endif
