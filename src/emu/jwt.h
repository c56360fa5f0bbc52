/* jwt: Microsoft Entra ID access tokens as ehemu checks them: RS256
 * signatures against a JWKS file's keys (OpenSSL EVP), issuer, audience,
 * expiry and not-before, and the Event Hubs data roles a configuration maps a
 * token's oid or appid to. Owns the loaded keys and the role table; never
 * fetches anything (the emulator runs offline). Called by emu.c only. */
#ifndef ED_EMU_JWT_H
#define ED_EMU_JWT_H

#include <stdint.h>

#include "common/err.h"

/* What a principal may do (the SAS claims, and the roles' data actions). */
enum {
  EMU_RIGHT_LISTEN = 1u << 0, /* Azure Event Hubs Data Receiver */
  EMU_RIGHT_SEND = 1u << 1,   /* Azure Event Hubs Data Sender */
  EMU_RIGHT_MANAGE = 1u << 2, /* with both above: Azure Event Hubs Data Owner */
  EMU_RIGHT_ALL = EMU_RIGHT_LISTEN | EMU_RIGHT_SEND | EMU_RIGHT_MANAGE,
};

typedef struct emu_jwt emu_jwt_t;

/* Loads the RSA keys of a JWKS file ({"keys":[{"kty":"RSA","kid","n","e"}]});
 * issuer: the required "iss", or NULL for any; audience: the required "aud"
 * (NULL: https://eventhubs.azure.net). roles: "PRINCIPAL=ROLE" strings, ROLE
 * one of receiver, sender, owner (or the Azure role names), PRINCIPAL an
 * object id or app id. Borrowed; copied. Caller frees with emu_jwt_free. */
ed_code_t emu_jwt_new(const char *jwks_file, const char *issuer, const char *audience,
                      char *const *roles, emu_jwt_t **out, ed_err_t *err);
void emu_jwt_free(emu_jwt_t *j);

/* Checks a token at now_s. 0 and *rights, *exp_us (the token's exp) when
 * valid; else 401 and *why, the service's description of the refusal
 * (static). A valid token of a principal with no role gets rights 0: the
 * service accepts the put-token and refuses the links. */
int emu_jwt_check(const emu_jwt_t *j, const char *token, int64_t now_s, unsigned *rights,
                  int64_t *exp_us, const char **why);

#endif
