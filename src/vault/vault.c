/* The credential vault: KEKs, data keys, sealed secrets, password hashes and
 * process hardening. The master key file lives in vault-keyfile.c. */
#include "vault/vault-private.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <sodium.h>

/* Version byte at the start of every kdf blob, wrapped key and sealed blob.
 * A new layout or algorithm gets a new value; old values stay readable. */
#define VAULT_FORMAT_V1 0x01
/* Sealed secrets bound to a binding digest. */
#define VAULT_FORMAT_V2 0x02

#define NONCE_SIZE crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_SIZE crypto_aead_xchacha20poly1305_ietf_ABYTES
#define SALT_SIZE crypto_pwhash_SALTBYTES

_Static_assert(VAULT_KEY_SIZE == crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "key size");
_Static_assert(VAULT_KEY_SIZE == crypto_kdf_KEYBYTES, "kdf key size");
_Static_assert(VAULT_KDF_BLOB_SIZE == 1 + 4 + 4 + SALT_SIZE, "kdf blob layout");
_Static_assert(VAULT_WRAPPED_KEY_SIZE == 1 + NONCE_SIZE + VAULT_KEY_SIZE + TAG_SIZE,
               "wrapped key layout");
_Static_assert(VAULT_SEALED_OVERHEAD == 1 + NONCE_SIZE + TAG_SIZE, "sealed blob layout");
_Static_assert(VAULT_PASSWORD_HASH_SIZE == crypto_pwhash_STRBYTES, "hash string size");
_Static_assert(VAULT_KDF_OPSLIMIT >= VAULT_KDF_OPSLIMIT_MIN &&
                   VAULT_KDF_MEMLIMIT >= VAULT_KDF_MEMLIMIT_MIN,
               "defaults below the OWASP minimum");

/* Domain separation: the first bytes of the associated data of each kind of
 * ciphertext, NUL included, so no wrapped key authenticates as a secret. */
static const char aad_wrapped_key[] = "mailkeep-vault wrapped-key";
static const char aad_secret[] = "mailkeep-vault secret";
static const char binding_label[] = "mailkeep-vault binding";
static const char check_value_label[] = "mailkeep-vault check value v1";
static const char kek_context[crypto_kdf_CONTEXTBYTES + 1] = "mkvault_";
#define KEK_SUBKEY_ID 1
#define TAG_SUBKEY_ID 2

static const char unwrap_failed[] =
    "wrapped data key cannot be opened: wrong master key or passphrase, "
    "it belongs to another account or key version, or it is damaged";
const char vault_binding_changed[] =
    "sealed credential was stored for other server settings (URL, login or CA)";
static const char open_failed[] = "sealed credential does not belong to this account or kind, "
                                  "was replaced by a newer copy, or is damaged";

struct vault_kek {
	unsigned char *key; /* VAULT_KEY_SIZE, sodium_malloc, read-only */
};

struct vault_data_key {
	unsigned char *key; /* VAULT_KEY_SIZE, sodium_malloc, read-only */
};

static _Thread_local char error_buf[512];

const char *vault_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	/* Truncating a long path in a message is acceptable. */
	(void)vsnprintf(error_buf, sizeof(error_buf), fmt, ap);
	va_end(ap);
	return error_buf;
}

int vault_sodium_ready(const char **error_r)
{
	if (sodium_init() < 0) {
		*error_r = "vault: cannot initialise libsodium";
		return -1;
	}
	return 0;
}

int vault_init(const char **error_r)
{
	return vault_sodium_ready(error_r);
}

int vault_harden_process(const char **error_r)
{
	struct rlimit no_core = {0, 0};
	int core_err = 0, dump_err = 0;

	if (setrlimit(RLIMIT_CORE, &no_core) < 0)
		core_err = errno;
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		dump_err = errno;
	if (core_err != 0 || dump_err != 0) {
		*error_r = vault_error("cannot disable core dumps: %s",
		                       strerror(core_err != 0 ? core_err : dump_err));
		return -1;
	}
	return 0;
}

bool vault_mem_equal(const void *a, const void *b, size_t size)
{
	return sodium_memcmp(a, b, size) == 0;
}

/* A fresh writable sodium_malloc()ed key buffer. */
static unsigned char *key_alloc(const char **error_r)
{
	unsigned char *key = sodium_malloc(VAULT_KEY_SIZE);

	if (key == NULL)
		*error_r = "vault: cannot allocate secure memory for a key";
	return key;
}

struct vault_master *vault_master_alloc(const char **error_r)
{
	struct vault_master *master = calloc(1, sizeof(*master));

	if (master == NULL) {
		*error_r = "vault: out of memory";
		return NULL;
	}
	master->key = key_alloc(error_r);
	if (master->key == NULL) {
		free(master);
		return NULL;
	}
	return master;
}

void vault_master_seal(struct vault_master *master)
{
	(void)sodium_mprotect_readonly(master->key);
}

void vault_master_free(struct vault_master **master)
{
	if (*master == NULL)
		return;
	if ((*master)->key != NULL)
		sodium_free((*master)->key); /* wipes, also when read-only */
	free(*master);
	*master = NULL;
}

/* ---- check values ---- */

static void check_value(const unsigned char *key, unsigned char check_r[VAULT_CHECK_VALUE_SIZE])
{
	crypto_generichash(check_r, VAULT_CHECK_VALUE_SIZE,
	                   (const unsigned char *)check_value_label, sizeof(check_value_label) - 1,
	                   key, VAULT_KEY_SIZE);
}

static bool check_value_matches(const unsigned char *key, const unsigned char *stored,
                                size_t stored_size)
{
	unsigned char mine[VAULT_CHECK_VALUE_SIZE];

	if (stored == NULL || stored_size != sizeof(mine))
		return false;
	check_value(key, mine);
	return sodium_memcmp(mine, stored, sizeof(mine)) == 0;
}

void vault_master_check_value(const struct vault_master *master,
                              unsigned char check_r[VAULT_CHECK_VALUE_SIZE])
{
	check_value(master->key, check_r);
}

int vault_master_tag(const struct vault_master *master, const void *data, size_t size,
                     unsigned char tag_r[VAULT_TAG_SIZE], const char **error_r)
{
	unsigned char *sub;

	if (vault_sodium_ready(error_r) < 0)
		return -1;
	sub = sodium_malloc(VAULT_KEY_SIZE);
	if (sub == NULL) {
		*error_r = "vault: cannot allocate secure memory for a key";
		return -1;
	}
	if (crypto_kdf_derive_from_key(sub, VAULT_KEY_SIZE, TAG_SUBKEY_ID, kek_context,
	                               master->key) != 0) {
		sodium_free(sub);
		*error_r = "vault: cannot derive the tag key";
		return -1;
	}
	crypto_generichash(tag_r, VAULT_TAG_SIZE, data, size, sub, VAULT_KEY_SIZE);
	sodium_free(sub);
	return 0;
}

int vault_master_check_value_verify(const struct vault_master *master, const unsigned char *stored,
                                    size_t stored_size, const char **error_r)
{
	if (!check_value_matches(master->key, stored, stored_size)) {
		*error_r = "the master key does not match this data directory";
		return -1;
	}
	return 0;
}

void vault_kek_check_value(const struct vault_kek *kek,
                           unsigned char check_r[VAULT_CHECK_VALUE_SIZE])
{
	check_value(kek->key, check_r);
}

int vault_kek_check_value_verify(const struct vault_kek *kek, const unsigned char *stored,
                                 size_t stored_size, const char **error_r)
{
	if (!check_value_matches(kek->key, stored, stored_size)) {
		*error_r = "wrong passphrase or master key";
		return -1;
	}
	return 0;
}

/* ---- KEKs ---- */

static struct vault_kek *kek_alloc(const char **error_r)
{
	struct vault_kek *kek = calloc(1, sizeof(*kek));

	if (kek == NULL) {
		*error_r = "vault: out of memory";
		return NULL;
	}
	kek->key = key_alloc(error_r);
	if (kek->key == NULL) {
		free(kek);
		return NULL;
	}
	return kek;
}

void vault_kek_free(struct vault_kek **kek)
{
	if (*kek == NULL)
		return;
	if ((*kek)->key != NULL)
		sodium_free((*kek)->key);
	free(*kek);
	*kek = NULL;
}

int vault_kek_dup(const struct vault_kek *kek, struct vault_kek **kek_r, const char **error_r)
{
	struct vault_kek *copy;

	if (vault_sodium_ready(error_r) < 0 || (copy = kek_alloc(error_r)) == NULL)
		return -1;
	memcpy(copy->key, kek->key, VAULT_KEY_SIZE);
	(void)sodium_mprotect_readonly(copy->key);
	*kek_r = copy;
	return 0;
}

int vault_kek_from_master(const struct vault_master *master, struct vault_kek **kek_r,
                          const char **error_r)
{
	struct vault_kek *kek;

	if (vault_sodium_ready(error_r) < 0 || (kek = kek_alloc(error_r)) == NULL)
		return -1;
	if (crypto_kdf_derive_from_key(kek->key, VAULT_KEY_SIZE, KEK_SUBKEY_ID, kek_context,
	                               master->key) != 0) {
		vault_kek_free(&kek);
		*error_r = "vault: cannot derive the key-encryption key";
		return -1;
	}
	(void)sodium_mprotect_readonly(kek->key);
	*kek_r = kek;
	return 0;
}

static void put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static uint32_t get_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

int vault_kdf_blob_new(unsigned char blob_r[VAULT_KDF_BLOB_SIZE], const char **error_r)
{
	if (vault_sodium_ready(error_r) < 0)
		return -1;
	blob_r[0] = VAULT_FORMAT_V1;
	put_be32(blob_r + 1, VAULT_KDF_OPSLIMIT);
	put_be32(blob_r + 5, VAULT_KDF_MEMLIMIT / 1024);
	randombytes_buf(blob_r + 9, SALT_SIZE);
	return 0;
}

int vault_kek_from_passphrase(const char *passphrase, size_t passphrase_size,
                              const unsigned char *blob, size_t blob_size, struct vault_kek **kek_r,
                              const char **error_r)
{
	struct vault_kek *kek;

	if (blob == NULL || blob_size != VAULT_KDF_BLOB_SIZE) {
		*error_r = vault_error("key derivation parameters have wrong size (%zu bytes, "
		                       "expected %u)",
		                       blob == NULL ? (size_t)0 : blob_size, VAULT_KDF_BLOB_SIZE);
		return -1;
	}
	if (blob[0] != VAULT_FORMAT_V1) {
		*error_r = vault_error("key derivation parameters have unknown format %u", blob[0]);
		return -1;
	}
	uint32_t ops = get_be32(blob + 1), mem_kib = get_be32(blob + 5);
	size_t mem = (size_t)mem_kib * 1024;
	if (ops < VAULT_KDF_OPSLIMIT_MIN || ops > VAULT_KDF_OPSLIMIT_MAX ||
	    mem_kib < VAULT_KDF_MEMLIMIT_MIN / 1024 || mem_kib > VAULT_KDF_MEMLIMIT_MAX / 1024) {
		*error_r = vault_error("key derivation parameters out of range (t=%u, m=%u KiB)",
		                       ops, mem_kib);
		return -1;
	}
	if (passphrase == NULL || passphrase_size == 0) {
		*error_r = "empty passphrase";
		return -1;
	}
	if (passphrase_size > crypto_pwhash_PASSWD_MAX) {
		*error_r = "passphrase is too long";
		return -1;
	}
	if (vault_sodium_ready(error_r) < 0 || (kek = kek_alloc(error_r)) == NULL)
		return -1;
	if (crypto_pwhash(kek->key, VAULT_KEY_SIZE, passphrase, passphrase_size, blob + 9, ops, mem,
	                  crypto_pwhash_ALG_ARGON2ID13) != 0) {
		vault_kek_free(&kek);
		*error_r = vault_error("cannot derive key from passphrase: out of memory "
		                       "(Argon2id needs %u MiB)",
		                       mem_kib / 1024);
		return -1;
	}
	(void)sodium_mprotect_readonly(kek->key);
	*kek_r = kek;
	return 0;
}

/* ---- associated data ---- */

/* Three names, their length prefixes, the label, format, version and a
 * binding digest. */
#define AAD_MAX_SIZE (64 + 3 * (4 + VAULT_NAME_MAX_SIZE) + 8 + VAULT_BINDING_SIZE)

struct aad {
	unsigned char data[AAD_MAX_SIZE];
	size_t len;
};

static void aad_put(struct aad *a, const void *p, size_t n)
{
	assert(n <= sizeof(a->data) - a->len);
	memcpy(a->data + a->len, p, n);
	a->len += n;
}

static void aad_put_u64(struct aad *a, uint64_t v)
{
	unsigned char b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (56 - 8 * i));
	aad_put(a, b, sizeof(b));
}

/* A u32 length prefix and the bytes: "ab"+"c" and "a"+"bc" differ. */
static int aad_put_name(struct aad *a, const char *what, const char *name, const char **error_r)
{
	unsigned char len_be[4];
	size_t len;

	if (name == NULL || name[0] == '\0') {
		*error_r = vault_error("vault: empty %s name", what);
		return -1;
	}
	len = strnlen(name, VAULT_NAME_MAX_SIZE + 1);
	if (len > VAULT_NAME_MAX_SIZE) {
		*error_r = vault_error("vault: %s name is too long (more than %u bytes)", what,
		                       VAULT_NAME_MAX_SIZE);
		return -1;
	}
	put_be32(len_be, (uint32_t)len);
	aad_put(a, len_be, sizeof(len_be));
	aad_put(a, name, len);
	return 0;
}

static void aad_begin(struct aad *a, const char *label, size_t label_size)
{
	const unsigned char format = VAULT_FORMAT_V1;

	a->len = 0;
	aad_put(a, label, label_size); /* with its NUL */
	aad_put(a, &format, 1);
}

static int wrapped_key_aad(struct aad *a, const char *user, const char *account, uint64_t version,
                           const char **error_r)
{
	aad_begin(a, aad_wrapped_key, sizeof(aad_wrapped_key));
	if (aad_put_name(a, "user", user, error_r) < 0 ||
	    aad_put_name(a, "account", account, error_r) < 0)
		return -1;
	aad_put_u64(a, version);
	return 0;
}

static int secret_aad(struct aad *a, const char *user, const char *account, const char *kind,
                      uint64_t version, const char **error_r)
{
	aad_begin(a, aad_secret, sizeof(aad_secret));
	if (aad_put_name(a, "user", user, error_r) < 0 ||
	    aad_put_name(a, "account", account, error_r) < 0 ||
	    aad_put_name(a, "secret kind", kind, error_r) < 0)
		return -1;
	aad_put_u64(a, version);
	return 0;
}

static int secret_aad_bound(struct aad *a, const char *user, const char *account, const char *kind,
                            uint64_t version, const unsigned char binding[VAULT_BINDING_SIZE],
                            const char **error_r)
{
	const unsigned char format = VAULT_FORMAT_V2;

	a->len = 0;
	aad_put(a, aad_secret, sizeof(aad_secret));
	aad_put(a, &format, 1);
	if (aad_put_name(a, "user", user, error_r) < 0 ||
	    aad_put_name(a, "account", account, error_r) < 0 ||
	    aad_put_name(a, "secret kind", kind, error_r) < 0)
		return -1;
	aad_put_u64(a, version);
	aad_put(a, binding, VAULT_BINDING_SIZE);
	return 0;
}

int vault_binding_digest(const struct vault_binding_field *fields, size_t n_fields,
                         unsigned char digest_r[VAULT_BINDING_SIZE], const char **error_r)
{
	crypto_generichash_state st;
	unsigned char be[4];

	if (n_fields > VAULT_BINDING_MAX_FIELDS) {
		*error_r = "vault: too many binding fields";
		return -1;
	}
	if (vault_sodium_ready(error_r) < 0)
		return -1;
	crypto_generichash_init(&st, NULL, 0, VAULT_BINDING_SIZE);
	crypto_generichash_update(&st, (const unsigned char *)binding_label, sizeof(binding_label));
	put_be32(be, (uint32_t)n_fields);
	crypto_generichash_update(&st, be, sizeof(be));
	for (size_t i = 0; i < n_fields; i++) {
		const char *parts[2] = {fields[i].name,
		                        fields[i].value != NULL ? fields[i].value : ""};
		if (fields[i].name == NULL || fields[i].name[0] == '\0') {
			*error_r = "vault: binding field without a name";
			return -1;
		}
		for (int j = 0; j < 2; j++) {
			size_t len = strlen(parts[j]);
			if (len > UINT32_MAX) {
				*error_r = "vault: binding field too long";
				return -1;
			}
			put_be32(be, (uint32_t)len);
			crypto_generichash_update(&st, be, sizeof(be));
			crypto_generichash_update(&st, (const unsigned char *)parts[j], len);
		}
	}
	crypto_generichash_final(&st, digest_r, VAULT_BINDING_SIZE);
	return 0;
}

int vault_sealed_format(const unsigned char *blob, size_t blob_size)
{
	return blob == NULL || blob_size == 0 ? -1 : blob[0];
}

/* ---- data keys ---- */

static struct vault_data_key *data_key_alloc(const char **error_r)
{
	struct vault_data_key *key = calloc(1, sizeof(*key));

	if (key == NULL) {
		*error_r = "vault: out of memory";
		return NULL;
	}
	key->key = key_alloc(error_r);
	if (key->key == NULL) {
		free(key);
		return NULL;
	}
	return key;
}

void vault_data_key_free(struct vault_data_key **key)
{
	if (*key == NULL)
		return;
	if ((*key)->key != NULL)
		sodium_free((*key)->key);
	free(*key);
	*key = NULL;
}

int vault_data_key_new(struct vault_data_key **key_r, const char **error_r)
{
	struct vault_data_key *key;

	if (vault_sodium_ready(error_r) < 0 || (key = data_key_alloc(error_r)) == NULL)
		return -1;
	crypto_aead_xchacha20poly1305_ietf_keygen(key->key);
	(void)sodium_mprotect_readonly(key->key);
	*key_r = key;
	return 0;
}

int vault_data_key_wrap(const struct vault_kek *kek, const struct vault_data_key *key,
                        const char *user, const char *account, uint64_t version,
                        unsigned char wrapped_r[VAULT_WRAPPED_KEY_SIZE], const char **error_r)
{
	unsigned char out[VAULT_WRAPPED_KEY_SIZE];
	struct aad a;

	if (vault_sodium_ready(error_r) < 0 ||
	    wrapped_key_aad(&a, user, account, version, error_r) < 0)
		return -1;
	out[0] = VAULT_FORMAT_V1;
	randombytes_buf(out + 1, NONCE_SIZE);
	(void)crypto_aead_xchacha20poly1305_ietf_encrypt(out + 1 + NONCE_SIZE, NULL, key->key,
	                                                 VAULT_KEY_SIZE, a.data, a.len, NULL,
	                                                 out + 1, kek->key);
	memcpy(wrapped_r, out, sizeof(out));
	return 0;
}

int vault_data_key_unwrap(const struct vault_kek *kek, const unsigned char *wrapped,
                          size_t wrapped_size, const char *user, const char *account,
                          uint64_t version, struct vault_data_key **key_r, const char **error_r)
{
	struct vault_data_key *key;
	struct aad a;

	if (wrapped == NULL || wrapped_size != VAULT_WRAPPED_KEY_SIZE) {
		*error_r =
		    vault_error("wrapped data key has wrong size (%zu bytes, expected %u)",
		                wrapped == NULL ? (size_t)0 : wrapped_size, VAULT_WRAPPED_KEY_SIZE);
		return -1;
	}
	if (wrapped[0] != VAULT_FORMAT_V1) {
		*error_r = vault_error("wrapped data key has unknown format %u", wrapped[0]);
		return -1;
	}
	if (wrapped_key_aad(&a, user, account, version, error_r) < 0 ||
	    vault_sodium_ready(error_r) < 0 || (key = data_key_alloc(error_r)) == NULL)
		return -1;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(
	        key->key, NULL, NULL, wrapped + 1 + NONCE_SIZE, VAULT_KEY_SIZE + TAG_SIZE, a.data,
	        a.len, wrapped + 1, kek->key) != 0) {
		vault_data_key_free(&key);
		*error_r = unwrap_failed;
		return -1;
	}
	(void)sodium_mprotect_readonly(key->key);
	*key_r = key;
	return 0;
}

/* ---- sealed secrets ---- */

int vault_seal_secret(const struct vault_data_key *key, const char *user, const char *account,
                      const char *kind, uint64_t version, const void *secret, size_t secret_size,
                      unsigned char **blob_r, size_t *blob_size_r, const char **error_r)
{
	unsigned char *blob;
	struct aad a;

	if (secret == NULL || secret_size == 0) {
		*error_r = "vault: empty secret";
		return -1;
	}
	if (secret_size > VAULT_SECRET_MAX_SIZE) {
		*error_r = vault_error("vault: secret is too large (more than %u bytes)",
		                       VAULT_SECRET_MAX_SIZE);
		return -1;
	}
	if (vault_sodium_ready(error_r) < 0 ||
	    secret_aad(&a, user, account, kind, version, error_r) < 0)
		return -1;
	blob = malloc(secret_size + VAULT_SEALED_OVERHEAD);
	if (blob == NULL) {
		*error_r = "vault: out of memory";
		return -1;
	}
	blob[0] = VAULT_FORMAT_V1;
	randombytes_buf(blob + 1, NONCE_SIZE);
	(void)crypto_aead_xchacha20poly1305_ietf_encrypt(blob + 1 + NONCE_SIZE, NULL, secret,
	                                                 secret_size, a.data, a.len, NULL, blob + 1,
	                                                 key->key);
	*blob_r = blob;
	*blob_size_r = secret_size + VAULT_SEALED_OVERHEAD;
	return 0;
}

int vault_open_secret(const struct vault_data_key *key, const char *user, const char *account,
                      const char *kind, uint64_t version, const unsigned char *blob,
                      size_t blob_size, char **secret_r, size_t *secret_size_r,
                      const char **error_r)
{
	struct aad a;
	size_t size;
	char *secret;

	if (blob == NULL || blob_size <= VAULT_SEALED_OVERHEAD) {
		*error_r = "sealed credential is truncated";
		return -1;
	}
	if (blob[0] != VAULT_FORMAT_V1) {
		*error_r = vault_error("sealed credential has unknown format %u", blob[0]);
		return -1;
	}
	size = blob_size - VAULT_SEALED_OVERHEAD;
	if (size > VAULT_SECRET_MAX_SIZE) {
		*error_r = "sealed credential is too large";
		return -1;
	}
	if (vault_sodium_ready(error_r) < 0 ||
	    secret_aad(&a, user, account, kind, version, error_r) < 0)
		return -1;
	secret = sodium_malloc(size + 1);
	if (secret == NULL) {
		*error_r = "vault: cannot allocate secure memory for a secret";
		return -1;
	}
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(
	        (unsigned char *)secret, NULL, NULL, blob + 1 + NONCE_SIZE,
	        blob_size - 1 - NONCE_SIZE, a.data, a.len, blob + 1, key->key) != 0) {
		sodium_free(secret);
		*error_r = open_failed;
		return -1;
	}
	secret[size] = '\0';
	*secret_r = secret;
	*secret_size_r = size;
	return 0;
}

int vault_seal_bound_secret(const struct vault_data_key *key, const char *user, const char *account,
                            const char *kind, uint64_t version,
                            const unsigned char binding[VAULT_BINDING_SIZE], const void *secret,
                            size_t secret_size, unsigned char **blob_r, size_t *blob_size_r,
                            const char **error_r)
{
	unsigned char *blob;
	struct aad a;
	const size_t head = 1 + VAULT_BINDING_SIZE;

	if (secret == NULL || secret_size == 0) {
		*error_r = "vault: empty secret";
		return -1;
	}
	if (secret_size > VAULT_SECRET_MAX_SIZE) {
		*error_r = vault_error("vault: secret is too large (more than %u bytes)",
		                       VAULT_SECRET_MAX_SIZE);
		return -1;
	}
	if (vault_sodium_ready(error_r) < 0 ||
	    secret_aad_bound(&a, user, account, kind, version, binding, error_r) < 0)
		return -1;
	blob = malloc(secret_size + VAULT_SEALED_BOUND_OVERHEAD);
	if (blob == NULL) {
		*error_r = "vault: out of memory";
		return -1;
	}
	blob[0] = VAULT_FORMAT_V2;
	memcpy(blob + 1, binding, VAULT_BINDING_SIZE);
	randombytes_buf(blob + head, NONCE_SIZE);
	(void)crypto_aead_xchacha20poly1305_ietf_encrypt(blob + head + NONCE_SIZE, NULL, secret,
	                                                 secret_size, a.data, a.len, NULL,
	                                                 blob + head, key->key);
	*blob_r = blob;
	*blob_size_r = secret_size + VAULT_SEALED_BOUND_OVERHEAD;
	return 0;
}

int vault_open_bound_secret(const struct vault_data_key *key, const char *user, const char *account,
                            const char *kind, uint64_t version,
                            const unsigned char binding[VAULT_BINDING_SIZE],
                            const unsigned char *blob, size_t blob_size, char **secret_r,
                            size_t *secret_size_r, const char **error_r)
{
	struct aad a;
	size_t size;
	char *secret;
	const size_t head = 1 + VAULT_BINDING_SIZE;

	if (blob == NULL || blob_size <= VAULT_SEALED_BOUND_OVERHEAD) {
		*error_r = "sealed credential is truncated";
		return -1;
	}
	if (blob[0] != VAULT_FORMAT_V2) {
		*error_r = vault_error("sealed credential has unknown format %u", blob[0]);
		return -1;
	}
	size = blob_size - VAULT_SEALED_BOUND_OVERHEAD;
	if (size > VAULT_SECRET_MAX_SIZE) {
		*error_r = "sealed credential is too large";
		return -1;
	}
	/* The digest that counts is the caller's, in the associated data. The
	 * copy in the blob only tells why a blob does not open: when it differs
	 * and the blob opens under the copy, the blob is intact and was sealed
	 * for other settings (what was opened is wiped, never returned). */
	bool other_binding = sodium_memcmp(blob + 1, binding, VAULT_BINDING_SIZE) != 0;
	if (vault_sodium_ready(error_r) < 0 ||
	    secret_aad_bound(&a, user, account, kind, version, other_binding ? blob + 1 : binding,
	                     error_r) < 0)
		return -1;
	secret = sodium_malloc(size + 1);
	if (secret == NULL) {
		*error_r = "vault: cannot allocate secure memory for a secret";
		return -1;
	}
	int dr = crypto_aead_xchacha20poly1305_ietf_decrypt(
	    (unsigned char *)secret, NULL, NULL, blob + head + NONCE_SIZE,
	    blob_size - head - NONCE_SIZE, a.data, a.len, blob + head, key->key);
	if (dr != 0 || other_binding) {
		sodium_free(secret); /* wipes */
		*error_r = dr == 0 ? vault_binding_changed : open_failed;
		return -1;
	}
	secret[size] = '\0';
	*secret_r = secret;
	*secret_size_r = size;
	return 0;
}

void vault_secret_free(char **secret)
{
	if (*secret != NULL)
		sodium_free(*secret); /* wipes */
	*secret = NULL;
}

/* ---- hub user passwords ---- */

/* Parse "NAME<digits>" at *p, advancing past it. */
static int parse_field(const char **p, const char *name, unsigned long *value_r)
{
	size_t n = strlen(name);
	unsigned long v = 0;

	if (strncmp(*p, name, n) != 0)
		return -1;
	*p += n;
	if (**p < '0' || **p > '9')
		return -1;
	for (; **p >= '0' && **p <= '9'; (*p)++) {
		if (v > (ULONG_MAX - 9) / 10)
			return -1;
		v = v * 10 + (unsigned long)(**p - '0');
	}
	*value_r = v;
	return 0;
}

/* Check that hash is "$argon2id$v=N$m=M,t=T,p=P$..." with M and T inside
 * our limits, before libsodium allocates M KiB for it. */
static int check_hash_string(const char *hash, const char **error_r)
{
	unsigned long version, m, t, lanes;
	const char *p = hash;

	if (hash == NULL || strnlen(hash, VAULT_PASSWORD_HASH_SIZE) >= VAULT_PASSWORD_HASH_SIZE ||
	    strncmp(p, "$argon2id$", 10) != 0) {
		*error_r = "stored password hash is not an Argon2id hash";
		return -1;
	}
	p += 10;
	if (parse_field(&p, "v=", &version) < 0 || *p++ != '$' || parse_field(&p, "m=", &m) < 0 ||
	    *p++ != ',' || parse_field(&p, "t=", &t) < 0 || *p++ != ',' ||
	    parse_field(&p, "p=", &lanes) < 0 || *p != '$') {
		*error_r = "stored password hash is malformed";
		return -1;
	}
	if (t < VAULT_KDF_OPSLIMIT_MIN || t > VAULT_KDF_OPSLIMIT_MAX ||
	    m < VAULT_KDF_MEMLIMIT_MIN / 1024 || m > VAULT_KDF_MEMLIMIT_MAX / 1024) {
		*error_r = vault_error("stored password hash has parameters out of range "
		                       "(t=%lu, m=%lu KiB)",
		                       t, m);
		return -1;
	}
	return 0;
}

int vault_password_hash(const char *password, size_t password_size,
                        char hash_r[VAULT_PASSWORD_HASH_SIZE], const char **error_r)
{
	char hash[VAULT_PASSWORD_HASH_SIZE];

	if (password == NULL || password_size == 0) {
		*error_r = "empty password";
		return -1;
	}
	if (vault_sodium_ready(error_r) < 0)
		return -1;
	if (crypto_pwhash_str(hash, password, password_size, VAULT_KDF_OPSLIMIT,
	                      VAULT_KDF_MEMLIMIT) != 0) {
		*error_r = "cannot hash password: out of memory";
		return -1;
	}
	memcpy(hash_r, hash, sizeof(hash));
	return 0;
}

int vault_password_verify(const char *hash, const char *password, size_t password_size,
                          const char **error_r)
{
	if (check_hash_string(hash, error_r) < 0 || vault_sodium_ready(error_r) < 0)
		return -1;
	if (password == NULL || crypto_pwhash_str_verify(hash, password, password_size) != 0) {
		*error_r = "incorrect password";
		return -1;
	}
	return 0;
}

int vault_password_needs_rehash(const char *hash)
{
	const char *error;

	if (check_hash_string(hash, &error) < 0 || sodium_init() < 0)
		return -1;
	return crypto_pwhash_str_needs_rehash(hash, VAULT_KDF_OPSLIMIT, VAULT_KDF_MEMLIMIT);
}
