#ifndef MK_VAULT_H
#define MK_VAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The credential vault's cryptographic core: master key files, key-encryption
 * keys (KEKs), per-account data keys, sealed secrets and hub password hashes.
 * Pure crypto on libsodium; no database. Every blob this module produces is
 * opaque to the caller, who stores it (the hub keeps them in SQLite) and hands
 * it back unchanged.
 *
 * Key hierarchy:
 *
 *   master key (key file, 32 bytes) ──server mode──┐
 *   user passphrase + kdf blob ──Argon2id──────────┴─> KEK
 *   KEK ──wraps──> data key (one per external account, 32 random bytes)
 *   data key ──seals──> secrets (IMAP/SMTP passwords, OAuth tokens)
 *
 * Conventions (STYLE.md): functions return 0 on success and -1 on failure with
 * a human-readable, static or thread-local message in *error_r, valid until
 * the next vault call in the same thread. Error messages never contain key
 * material, passphrases, plaintext or ciphertext. Output parameters (_r) are
 * untouched on failure. Destructors take a pointer to the handle, accept NULL
 * or a NULL handle, wipe and free, and set the handle to NULL.
 *
 * All key material and every opened secret lives in sodium_malloc() memory
 * (guard pages, mlock'd where RLIMIT_MEMLOCK allows; if locking fails the
 * memory still works, it is only swappable) and is wiped when freed. Long-lived
 * keys are made read-only (sodium_mprotect_readonly) after they are set up.
 *
 * Every function initialises libsodium itself (sodium_init() is idempotent and
 * thread-safe); callers may still call vault_init() early to fail fast. Handles
 * are immutable after creation and may be shared between threads.
 */

/* Sizes of fixed-size values handed to and from the caller. */
#define VAULT_KEY_SIZE 32U
#define VAULT_CHECK_VALUE_SIZE 16U
/* kdf blob: format byte | opslimit u32 BE | memlimit KiB u32 BE | salt 16 */
#define VAULT_KDF_BLOB_SIZE 25U
/* wrapped data key: format byte | nonce 24 | ciphertext 32 + tag 16 */
#define VAULT_WRAPPED_KEY_SIZE 73U
/* sealed secret: format byte | nonce 24 | ciphertext (plaintext length) + tag 16 */
#define VAULT_SEALED_OVERHEAD 41U
/* Largest secret vault_seal_secret() accepts (OAuth tokens are a few KiB). */
#define VAULT_SECRET_MAX_SIZE 65536U
/* Largest user, account or kind string bound into associated data. */
#define VAULT_NAME_MAX_SIZE 1024U
/* Buffer size for a password hash string, including the NUL. */
#define VAULT_PASSWORD_HASH_SIZE 128U

/*
 * Argon2id parameters for new passphrase KEKs and new password hashes:
 * libsodium's INTERACTIVE level, opslimit 2 (t=2) and 64 MiB (m=65536 KiB),
 * one lane. That is above the OWASP minimum (m=19 MiB, t=2, p=1), costs about
 * 0.1 s on one core, and keeps several concurrent logins on a small
 * self-hosted box (1 GiB RAM) out of the OOM killer, which MODERATE (256 MiB
 * each) would not. The parameters are recorded in every kdf blob and hash
 * string, so raising them later leaves old blobs readable.
 *
 * Stored parameters are also checked on the way in (a tampered database must
 * not make the hub allocate unbounded memory or silently accept weak ones):
 * opslimit 2..VAULT_KDF_OPSLIMIT_MAX, memory 19 MiB..VAULT_KDF_MEMLIMIT_MAX.
 */
#define VAULT_KDF_OPSLIMIT 2U
#define VAULT_KDF_MEMLIMIT (64U * 1024U * 1024U)
#define VAULT_KDF_OPSLIMIT_MIN 2U
#define VAULT_KDF_MEMLIMIT_MIN (19U * 1024U * 1024U)
#define VAULT_KDF_OPSLIMIT_MAX 16U
#define VAULT_KDF_MEMLIMIT_MAX (1024U * 1024U * 1024U)

struct vault_master;   /* the master key, read-only sodium_malloc memory */
struct vault_kek;      /* a key-encryption key, from the master or a passphrase */
struct vault_data_key; /* one external account's data key, unwrapped */

/* Initialise libsodium. Returns 0, or -1 if it cannot be initialised. */
int vault_init(const char **error_r);

/* Make the process non-dumpable: RLIMIT_CORE 0 (no core files) and
 * PR_SET_DUMPABLE 0 (no ptrace attach or /proc/PID/mem by other processes of
 * the same user). Call first thing in main(). Returns -1 if either call
 * fails; the other has still been attempted. */
int vault_harden_process(const char **error_r);

/* Constant-time comparison of two equal-length buffers (sodium_memcmp). */
bool vault_mem_equal(const void *a, const void *b, size_t size);

/*
 * Master key file. Text, exactly 121 bytes, so it survives copy-and-paste
 * and printing for offline backup:
 *
 *   "mailkeep-master-key v1\n"   magic and format version (23 bytes)
 *   64 lower-case hex digits "\n" the 32-byte key
 *   32 lower-case hex digits "\n" BLAKE2b-128 over the magic line and the
 *                                 32 raw key bytes (detects truncation and
 *                                 bit flips; not a MAC, the file is trusted
 *                                 only as far as its permissions)
 */

/* Create a new master key file at path with mode 0600 and, if master_r is not
 * NULL, return the key in *master_r. Never overwrites: fails if path exists
 * (even as a dangling symlink). The file is written to a temporary name in
 * the same directory, fsync'd and then hard-linked into place, so a crash
 * never leaves a half-written key file at path. */
int vault_master_create(const char *path, struct vault_master **master_r, const char **error_r);

/* Load the master key from the key file at path. Refuses a file that is not
 * a regular file, is accessible by group or others ("master key file X is
 * readable by others (mode 0644); refusing"), has the wrong size, an unknown
 * header or version, or a checksum mismatch ("master key file X is damaged
 * (checksum mismatch)"). Symlinks are followed (the target is checked). */
int vault_master_load(const char *path, struct vault_master **master_r, const char **error_r);

/* Load the master key from a systemd credential: $CREDENTIALS_DIRECTORY/name
 * (LoadCredential= / LoadCredentialEncrypted=), in the key file format above.
 * Fails if CREDENTIALS_DIRECTORY is not set or name is empty, ".", "..", or
 * contains '/'. Group bits are not checked here: systemd grants the service
 * user access through an ACL, which shows as group bits, and the directory
 * is private to the unit; world access is still refused. */
int vault_master_load_credential(const char *name, struct vault_master **master_r,
                                 const char **error_r);

void vault_master_free(struct vault_master **master);

/*
 * Check values: a short public fingerprint of a key, BLAKE2b-128 keyed with
 * the key over a fixed string. It reveals nothing about the key. The hub
 * stores the master's check value at init and compares on every start, so a
 * different (valid) key file is refused instead of failing later on every
 * account; for a passphrase KEK it tells "wrong passphrase" apart from a
 * damaged wrapped key.
 */
void vault_master_check_value(const struct vault_master *master,
                              unsigned char check_r[VAULT_CHECK_VALUE_SIZE]);
/* Returns 0 if stored (stored_size bytes) is master's check value, else -1
 * with "the master key does not match this data directory". */
int vault_master_check_value_verify(const struct vault_master *master, const unsigned char *stored,
                                    size_t stored_size, const char **error_r);

/* A tag (keyed BLAKE2b-256 under a subkey of the master key, crypto_kdf
 * context "mkvault_", subkey 2) over data: lets the hub recognise records it
 * wrote itself. Not for secrecy; data may be anything. */
#define VAULT_TAG_SIZE 32U
int vault_master_tag(const struct vault_master *master, const void *data, size_t size,
                     unsigned char tag_r[VAULT_TAG_SIZE], const char **error_r);

/* Server mode: the KEK is a subkey of the master key (crypto_kdf, context
 * "mkvault_", subkey 1), never the master key itself. */
int vault_kek_from_master(const struct vault_master *master, struct vault_kek **kek_r,
                          const char **error_r);

/* Zero-access mode: make a new kdf blob for a user (random 16-byte salt and
 * the VAULT_KDF_* parameters). The caller stores it next to the user; it is
 * not secret. */
int vault_kdf_blob_new(unsigned char blob_r[VAULT_KDF_BLOB_SIZE], const char **error_r);

/* Derive the user's KEK from passphrase (passphrase_size bytes, any content)
 * with Argon2id and the salt and parameters in blob. Fails on a malformed
 * blob, parameters outside the limits above, or when Argon2id cannot get its
 * memory. A wrong passphrase is NOT detected here (it yields a different KEK);
 * compare vault_kek_check_value() or let unwrapping fail. */
int vault_kek_from_passphrase(const char *passphrase, size_t passphrase_size,
                              const unsigned char *blob, size_t blob_size, struct vault_kek **kek_r,
                              const char **error_r);

void vault_kek_check_value(const struct vault_kek *kek,
                           unsigned char check_r[VAULT_CHECK_VALUE_SIZE]);
/* Returns 0 if stored is kek's check value, else -1 with "wrong passphrase or
 * master key". */
int vault_kek_check_value_verify(const struct vault_kek *kek, const unsigned char *stored,
                                 size_t stored_size, const char **error_r);

/* A copy of kek in its own sodium_malloc() memory (locked, never dumped,
 * read-only), freed on its own: a lease hands each sync its copy, so wiping
 * the lease never pulls the key from under a running sync. */
int vault_kek_dup(const struct vault_kek *kek, struct vault_kek **kek_r, const char **error_r);

void vault_kek_free(struct vault_kek **kek);

/*
 * Data keys. A wrapped data key is VAULT_WRAPPED_KEY_SIZE bytes:
 *
 *   0x01 | nonce (24, random) | XChaCha20-Poly1305-IETF(data key) (32) | tag (16)
 *
 * with associated data (all integers big-endian, strings u32 length-prefixed):
 *
 *   "mailkeep-vault wrapped-key\0" | 0x01 | len user | user | len account |
 *   account | u64 version
 *
 * so a wrapped key only unwraps for the same user, account and version it
 * was wrapped for. version is the caller's counter for the account's key
 * (bump it when the key is rewrapped, e.g. after a passphrase change).
 */

/* A new random data key. */
int vault_data_key_new(struct vault_data_key **key_r, const char **error_r);

int vault_data_key_wrap(const struct vault_kek *kek, const struct vault_data_key *key,
                        const char *user, const char *account, uint64_t version,
                        unsigned char wrapped_r[VAULT_WRAPPED_KEY_SIZE], const char **error_r);

/* Fails with one message for every authentication failure (wrong KEK, wrong
 * user/account/version, any modified byte), and a separate one for a wrong
 * size or unknown format byte. */
int vault_data_key_unwrap(const struct vault_kek *kek, const unsigned char *wrapped,
                          size_t wrapped_size, const char *user, const char *account,
                          uint64_t version, struct vault_data_key **key_r, const char **error_r);

void vault_data_key_free(struct vault_data_key **key);

/*
 * Sealed secrets, format 1 (no binding: kept to open, and re-seal, what was
 * sealed before format 2). A sealed blob is plaintext size +
 * VAULT_SEALED_OVERHEAD bytes:
 *
 *   0x01 | nonce (24, random) | XChaCha20-Poly1305-IETF(secret) | tag (16)
 *
 * with associated data:
 *
 *   "mailkeep-vault secret\0" | 0x01 | len user | user | len account |
 *   account | len kind | kind | u64 version
 *
 * kind names what the secret is ("imap-password", "smtp-password",
 * "oauth-refresh", ...); version is the caller's per-write counter, so an
 * older copy written back into the database (version n-1) does not open as
 * the current one (version n).
 */

/* Seal secret_size bytes (1..VAULT_SECRET_MAX_SIZE). On success *blob_r is a
 * malloc()ed buffer of *blob_size_r bytes owned by the caller (free()); it is
 * ciphertext, not secret. */
int vault_seal_secret(const struct vault_data_key *key, const char *user, const char *account,
                      const char *kind, uint64_t version, const void *secret, size_t secret_size,
                      unsigned char **blob_r, size_t *blob_size_r, const char **error_r);

/* Open a sealed blob. On success *secret_r is sodium_malloc()ed memory
 * holding *secret_size_r bytes plus a terminating NUL (so text secrets are C
 * strings); free it with vault_secret_free(). Every authentication failure
 * gives the same message, "sealed credential does not belong to this account
 * or kind, was replaced by a newer copy, or is damaged", which reveals
 * nothing about which part did not match. */
int vault_open_secret(const struct vault_data_key *key, const char *user, const char *account,
                      const char *kind, uint64_t version, const unsigned char *blob,
                      size_t blob_size, char **secret_r, size_t *secret_size_r,
                      const char **error_r);

/*
 * Sealed secrets bound to where they may go (format 2). The secret is bound,
 * besides user, account, kind and version as above, to a binding digest
 * that the caller makes from everything that decides where the secret will
 * be sent (server URLs, login name, the CA it trusts, later OAuth
 * endpoints), so a secret does not open once any of them has changed: an
 * edit of the database cannot send it somewhere else. The blob is
 *
 *   0x02 | binding digest (32) | nonce (24) | XChaCha20-Poly1305(secret) | tag (16)
 *
 * with associated data
 *
 *   "mailkeep-vault secret\0" | 0x02 | len user | user | len account |
 *   account | len kind | kind | u64 version | binding digest (32)
 *
 * where the digest in the associated data is always the caller's (the one
 * in the blob is only a copy for telling "settings changed" apart from other
 * failures, and authenticated through the caller's).
 *
 * The binding digest is BLAKE2b-256 over
 *   "mailkeep-vault binding\0" | u32 n | n x (len name | name | len value | value)
 * of the caller's fields in the caller's order (names non-empty, values may
 * be empty; a caller that ever changes its field list must include a field
 * naming its layout, so one layout never authenticates as another).
 */
#define VAULT_BINDING_SIZE 32U
#define VAULT_BINDING_MAX_FIELDS 16U
#define VAULT_SEALED_BOUND_OVERHEAD (VAULT_SEALED_OVERHEAD + VAULT_BINDING_SIZE)

struct vault_binding_field {
	const char *name;
	const char *value;
};

int vault_binding_digest(const struct vault_binding_field *fields, size_t n_fields,
                         unsigned char digest_r[VAULT_BINDING_SIZE], const char **error_r);

/* Seal as vault_seal_secret() does, in format 2 bound to binding. */
int vault_seal_bound_secret(const struct vault_data_key *key, const char *user, const char *account,
                            const char *kind, uint64_t version,
                            const unsigned char binding[VAULT_BINDING_SIZE], const void *secret,
                            size_t secret_size, unsigned char **blob_r, size_t *blob_size_r,
                            const char **error_r);

/* The error of vault_open_bound_secret() when the blob was sealed for another
 * binding (a stable string; compare the pointer). */
extern const char vault_binding_changed[];

/* Open a format-2 blob as vault_open_secret() does. An intact blob sealed
 * for another binding (it opens under the binding copied in it, but not
 * under the caller's) fails with the error vault_binding_changed and returns
 * nothing; every other failure as vault_open_secret(). */
int vault_open_bound_secret(const struct vault_data_key *key, const char *user, const char *account,
                            const char *kind, uint64_t version,
                            const unsigned char binding[VAULT_BINDING_SIZE],
                            const unsigned char *blob, size_t blob_size, char **secret_r,
                            size_t *secret_size_r, const char **error_r);

/* The format byte of a sealed blob (1: vault_seal_secret(), 2: bound), or
 * -1 when blob is empty. */
int vault_sealed_format(const unsigned char *blob, size_t blob_size);

/* Wipe and free a secret returned by vault_open_secret(). */
void vault_secret_free(char **secret);

/*
 * Hub user passwords: Argon2id hash strings ("$argon2id$v=19$m=65536,t=2,
 * p=1$salt$hash") with the VAULT_KDF_* parameters. Use a different
 * passphrase for zero-access mode or not: the hash and the KEK use
 * independent random salts, so the stored hash does not reveal the KEK.
 */
int vault_password_hash(const char *password, size_t password_size,
                        char hash_r[VAULT_PASSWORD_HASH_SIZE], const char **error_r);

/* Returns 0 if password matches hash; -1 with "incorrect password" if it
 * does not, or with another message if hash is not a valid Argon2id string
 * or its parameters are outside the VAULT_KDF_* limits. Time is independent
 * of how much of the password matches. */
int vault_password_verify(const char *hash, const char *password, size_t password_size,
                          const char **error_r);

/* 1 if hash was made with other parameters than today's (rehash it after the
 * next successful verify), 0 if not, -1 if it is not a valid hash string. */
int vault_password_needs_rehash(const char *hash);

#endif
