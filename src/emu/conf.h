/* conf: the official Event Hubs emulator's Config.json (reference §10.1), read
 * with json-c and held to its schema (EventHub-Emulator/Schema/Config-schema.json)
 * and documented limits: one namespace, 1-10 event hubs, 1-32 partitions,
 * 1-20 consumer groups besides $Default, which may not be declared.
 * Owns: nothing after it returns; the hub table it builds goes to the caller.
 * Never prints: every problem becomes one line in the caller's buffer. */
#ifndef ED_EMU_CONF_H
#define ED_EMU_CONF_H

#include "common/buf.h"
#include "common/err.h"
#include "emu/emu.h"

/* Reads path. On success *hubs (caller frees with emu_conf_free) holds
 * *nhubs hubs. On failure returns ED_E_CONFIG (or ED_E_IO), appends to
 * problems one "FILE: WHERE: what was expected, got what" line per problem
 * found, and puts the first one and the count in err. */
ed_code_t emu_conf_load(const char *path, emu_hubspec_t **hubs, int *nhubs, ed_buf_t *problems,
                        ed_err_t *err);
void emu_conf_free(emu_hubspec_t *hubs, int nhubs);

#endif
