/* fuzz_delta_log: commit lines from storage are untrusted input; parsing any
 * bytes must give an action or ED_E_CORRUPT, never a crash or a leak. */
#include <stddef.h>
#include <stdint.h>

#include "delta/actions.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  dl_action_t a;
  if (dl_action_parse((const char *)data, size, &a, NULL) == ED_OK)
    dl_action_fini(&a);
  return 0;
}
