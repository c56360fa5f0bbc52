/* fuzz_blob_list: List Blobs pages come from the network; the XML reader must
 * take any bytes, in both listings (plain, and with include=metadata: the
 * ownership records' ETags and metadata pairs). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/azure.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (!s)
    return 0;
  memcpy(s, data, size);
  s[size] = 0;
  st_list_t l = {0};
  ed_buf_t m = ED_BUF_INIT;
  st_az_parse_list(s, size, size % 7, &l, &m, NULL);
  st_list_fini(&l);
  ed_buf_fini(&m);
  st_blobs_t bl = {0};
  ed_buf_t m2 = ED_BUF_INIT;
  st_az_parse_list_meta(s, size, size % 5, &bl, &m2, NULL);
  st_blobs_fini(&bl);
  ed_buf_fini(&m2);
  free(s);
  return 0;
}
