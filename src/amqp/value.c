/* amqp/value: the reader's functions that are not on a per-event path (see
 * value.h). */
#include "amqp/value.h"

#include <string.h>

int amqp_items(const amqp_val_t *v, amqp_val_t *items, int max, uint32_t *count) {
  if (v->code == AMQP_T_LIST0) {
    *count = 0;
    return 0;
  }
  if (v->code != AMQP_T_LIST8 && v->code != AMQP_T_LIST32 && v->code != AMQP_T_MAP8 &&
      v->code != AMQP_T_MAP32)
    return -1;
  const uint8_t *p = v->p, *end = v->p + v->n;
  int got = 0;
  for (uint32_t i = 0; i < v->count; i++) {
    amqp_val_t it;
    if (amqp_read(&p, end, &it, 1))
      return -1;
    if (got < max)
      items[got++] = it;
  }
  *count = v->count;
  return got;
}

bool amqp_val_str_eq(const amqp_val_t *v, const char *s) {
  size_t n = strlen(s);
  return amqp_val_is_str(v) && v->n == n && memcmp(v->p, s, n) == 0;
}

bool amqp_read_exact(const uint8_t *p, size_t n, amqp_val_t *v) {
  const uint8_t *q = p;
  return amqp_read(&q, p + n, v, 0) == 0 && q == p + n;
}

const amqp_val_t *amqp_map_get(const amqp_val_t *items, int n, const char *key) {
  for (int i = 0; i + 1 < n; i += 2)
    if (amqp_val_str_eq(&items[i], key))
      return &items[i + 1];
  return NULL;
}
