/* writer_int: the writer's state shared by row-group assembly and column
 * encoding (writer.c) and the footer's FileMetaData (writer_footer.c);
 * private to those two. */
#ifndef ED_PARQUET_WRITER_INT_H
#define ED_PARQUET_WRITER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zstd.h>

#include "common/buf.h"
#include "common/err.h"
#include "parquet/schema_int.h"
#include "parquet/writer.h"

typedef struct st {
  int64_t nulls, nvals;
  bool has;
  union {
    int32_t i32;
    int64_t i64;
    float f;
    double d;
    uint8_t b;
  } mn, mx;
  ed_buf_t mnb, mxb;
} st_t;

typedef struct colmeta {
  int64_t num_values, unc, comp, data_off, dict_off;
  uint32_t enc;
  st_t st;
} colmeta_t;

typedef struct rgmeta {
  int64_t nrows, total_byte, total_comp, file_off;
  colmeta_t *cols;
} rgmeta_t;

typedef struct hslot {
  uint64_t key;
  uint32_t idx1; /* dictionary index + 1; 0 = empty */
  uint32_t pad;
} hslot_t;

typedef struct wcol {
  int node;
  const pq_inode_t *leaf;
  int path[64]; /* node ids from the top-level field down to the leaf */
  int cix[64];  /* child index taken at each step (path[0]: top-level index) */
  int depth;
  pq_phys_t phys;
  int max_def, max_rep;
  /* current page */
  uint16_t *def, *rep;
  size_t n, lcap;
  ed_buf_t plain; /* PLAIN values (BOOLEAN: one byte per value, packed at page end) */
  uint32_t *idx;
  size_t nidx, icap;
  bool page_dict; /* current page holds dictionary indices */
  /* dictionary */
  bool dict_failed;
  hslot_t *ht;
  size_t htcap, dcount;
  uint32_t *doff; /* byte arrays: offset of the length prefix in dbuf */
  size_t dvcap;
  ed_buf_t dbuf; /* PLAIN-encoded dictionary */
  bool dict_used;
  /* the trial of a flat column's dictionary: rows tried, values indexed and
   * the bytes they would take PLAIN */
  bool tried;
  size_t trial_rows, trial_vals, trial_plain;
  /* chunk */
  ed_buf_t chunk;
  int64_t num_values, unc, comp;
  uint32_t enc;
  st_t cst, fst;
} wcol_t;

struct pq_writer {
  pq_schema_t *schema;
  pq_writer_opts_t o;
  char *created_by;
  pq_sink_fn sink;
  void *ctx;
  int fd;
  uint64_t off;
  wcol_t *cols;
  size_t ncols;
  int64_t rg_rows, rows;
  rgmeta_t *rgs;
  size_t nrgs, rgcap;
  char **kv;
  size_t nkv;
  ed_buf_t body, cbuf, hbuf;
  ZSTD_CCtx *zc;
  bool closed, failed;
  int bad_null; /* node id of a REQUIRED field found null, or -1 */
  size_t bad_row;
};

/* Serialises the file's FileMetaData (schema, row groups, chunk statistics,
 * key/value metadata) into out; ED_E_NOMEM if out could not grow. */
ed_code_t pq_writer_footer(pq_writer_t *w, ed_buf_t *out);

#endif
