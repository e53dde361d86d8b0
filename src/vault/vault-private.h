#ifndef MK_VAULT_PRIVATE_H
#define MK_VAULT_PRIVATE_H

#include "vault/vault.h"

/* Shared between vault.c and vault-keyfile.c; not part of the API. */

/* The master key: VAULT_KEY_SIZE bytes of sodium_malloc() memory, read-only
 * once loaded. */
struct vault_master {
	unsigned char *key;
};

/* Format a message into this thread's error buffer and return it. The
 * arguments must never include secret material. */
const char *vault_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* sodium_init(), with a clear message if it fails. */
int vault_sodium_ready(const char **error_r);

/* Allocate a master handle around a fresh sodium_malloc()ed key buffer
 * (writable; the caller fills it and calls vault_master_seal()). */
struct vault_master *vault_master_alloc(const char **error_r);
/* Make the key read-only. */
void vault_master_seal(struct vault_master *master);

#endif
