/* fuzz_parquet_reader: libFuzzer target for the Parquet reader's footer and
 * page decoding. Any input must give ED_OK or an error, never a crash, a
 * leak or an unbounded allocation; on success every row group is decoded,
 * assembled and inspected (text and JSON). Seeds: tests/fuzz/corpus/fuzz_parquet_reader. */
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "parquet/inspect.h"
#include "parquet/reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  pq_reader_t *r;
  ed_err_t err = {0};
  if (pq_reader_open(data, size, &r, &err) != ED_OK)
    return 0;
  for (size_t g = 0; g < pq_reader_num_row_groups(r) && g < 8; g++) {
    pq_batch_t *b = NULL;
    if (pq_reader_read_row_group(r, g, &b, &err) == ED_OK)
      pq_batch_free(b);
    const pq_schema_t *s = pq_reader_schema(r);
    for (size_t i = 0; i < pq_schema_num_leaves(s) && i < 64; i++) {
      pq_leaf_data_t d;
      if (pq_reader_read_leaf(r, g, i, &d, &err) == ED_OK)
        pq_leaf_data_fini(&d);
    }
  }
  pq_reader_free(r);
  ed_buf_t out = ED_BUF_INIT;
  (void)pq_inspect(data, size, true, &out, &err);
  ed_buf_reset(&out);
  (void)pq_inspect(data, size, false, &out, &err);
  ed_buf_fini(&out);
  return 0;
}
