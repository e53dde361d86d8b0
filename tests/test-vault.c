/* Tests for the credential vault: key files and their damage, check values,
 * wrapping with master and passphrase KEKs, sealing with tamper and mix-up
 * cases, password hashes. Works in a private temporary directory. */
#include "vault/vault.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

static const char *error;
static char tmpdir[] = "/tmp/test-vault-XXXXXX";

static const char *path_in_tmp(const char *name)
{
	static char path[4][256];
	static int next;
	char *p = path[next++ % 4];

	CHECK((size_t)snprintf(p, sizeof(path[0]), "%s/%s", tmpdir, name) < sizeof(path[0]));
	return p;
}

static size_t read_file(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "rb");
	CHECK(f != NULL);
	size_t n = fread(buf, 1, size, f);
	CHECK(fclose(f) == 0);
	return n;
}

/* Write bytes to a new file with the given mode (umask aside). */
static void write_file(const char *path, const void *data, size_t size, mode_t mode)
{
	(void)unlink(path);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
	CHECK(fd >= 0);
	CHECK(write(fd, data, size) == (ssize_t)size);
	CHECK(fchmod(fd, mode) == 0);
	CHECK(close(fd) == 0);
}

/* Some secret-looking bytes that must never appear in an error message. */
static void check_error_clean(const char *key_hex)
{
	CHECK(error != NULL);
	CHECK(strstr(error, key_hex) == NULL);
}

static void test_keyfile(void)
{
	struct vault_master *m1 = NULL, *m2 = NULL, *m3 = NULL;
	unsigned char cv1[VAULT_CHECK_VALUE_SIZE], cv2[VAULT_CHECK_VALUE_SIZE];
	char key[256], other[256], bad[256];
	char text[512], damaged[512], key_hex[65];
	struct stat st;
	size_t len;

	snprintf(key, sizeof(key), "%s", path_in_tmp("master.key"));
	snprintf(other, sizeof(other), "%s", path_in_tmp("other.key"));
	snprintf(bad, sizeof(bad), "%s", path_in_tmp("bad.key"));
	OK(vault_master_create(key, &m1, &error));
	CHECK(stat(key, &st) == 0);
	CHECK((st.st_mode & 07777) == 0600);
	len = read_file(key, text, sizeof(text));
	CHECK(len == 121);
	CHECK(memcmp(text, "mailkeep-master-key v1\n", 23) == 0);
	memcpy(key_hex, text + 23, 64);
	key_hex[64] = '\0';

	/* Round trip: the loaded key is the created one. */
	OK(vault_master_load(key, &m2, &error));
	vault_master_check_value(m1, cv1);
	vault_master_check_value(m2, cv2);
	CHECK(memcmp(cv1, cv2, sizeof(cv1)) == 0);
	OK(vault_master_check_value_verify(m2, cv1, sizeof(cv1), &error));
	vault_master_free(&m2);
	CHECK(m2 == NULL);
	vault_master_free(&m2); /* NULL is fine */

	/* Never overwrite, not even through a dangling symlink. */
	m2 = (struct vault_master *)&m2; /* untouched on failure */
	REFUSED(vault_master_create(key, &m2, &error), "already exists");
	CHECK(m2 == (struct vault_master *)&m2);
	m2 = NULL;
	CHECK(read_file(key, damaged, sizeof(damaged)) == 121 && memcmp(damaged, text, 121) == 0);
	CHECK(symlink(path_in_tmp("nowhere"), path_in_tmp("dangling")) == 0);
	REFUSED(vault_master_create(path_in_tmp("dangling"), NULL, &error), "already exists");
	CHECK(access(path_in_tmp("nowhere"), F_OK) != 0);
	REFUSED(vault_master_create(path_in_tmp("no/such/dir"), NULL, &error),
	        "cannot create master key file");

	/* A different valid key is detected by the check value. */
	OK(vault_master_create(other, NULL, &error));
	OK(vault_master_load(other, &m3, &error));
	REFUSED(vault_master_check_value_verify(m3, cv1, sizeof(cv1), &error),
	        "the master key does not match this data directory");
	REFUSED(vault_master_check_value_verify(m3, cv1, 8, &error), "does not match");
	vault_master_free(&m3);

	/* Permissions. */
	write_file(bad, text, len, 0644);
	REFUSED(vault_master_load(bad, &m2, &error), "is readable by others (mode 0644); refusing");
	check_error_clean(key_hex);
	write_file(bad, text, len, 0640);
	REFUSED(vault_master_load(bad, &m2, &error), "(mode 0640)");
	write_file(bad, text, len, 0620);
	REFUSED(vault_master_load(bad, &m2, &error), "writable by others");
	write_file(bad, text, len, 0400);
	OK(vault_master_load(bad, &m2, &error));
	vault_master_free(&m2);
	REFUSED(vault_master_load(tmpdir, &m2, &error), "not a regular file");
	REFUSED(vault_master_load(path_in_tmp("missing"), &m2, &error), "does not exist");

	/* A flipped bit anywhere: header, key, checksum, line ends. */
	for (size_t i = 0; i < len; i++) {
		memcpy(damaged, text, len);
		damaged[i] ^= 0x01;
		write_file(bad, damaged, len, 0600);
		CHECK(vault_master_load(bad, &m2, &error) == -1);
		CHECK(m2 == NULL);
		check_error_clean(key_hex);
		if (i >= 23 && damaged[i] != '\n' && text[i] != '\n' &&
		    strchr("0123456789abcdef", damaged[i]) != NULL)
			REFUSED(vault_master_load(bad, &m2, &error),
			        "is damaged (checksum mismatch)");
	}
	/* Flip hex digit '0' to '1' in the key: still well-formed hex. */
	memcpy(damaged, text, len);
	for (size_t i = 23; i < 23 + 64; i++)
		if (damaged[i] == '0' || damaged[i] == '1') {
			damaged[i] ^= 0x01;
			break;
		}
	write_file(bad, damaged, len, 0600);
	REFUSED(vault_master_load(bad, &m2, &error), "is damaged (checksum mismatch)");

	/* Truncated, too long, empty. */
	write_file(bad, text, 100, 0600);
	REFUSED(vault_master_load(bad, &m2, &error), "has wrong size (100 bytes, expected 121)");
	write_file(bad, text, 120, 0600);
	REFUSED(vault_master_load(bad, &m2, &error), "has wrong size");
	write_file(bad, text, 10, 0600);
	REFUSED(vault_master_load(bad, &m2, &error), "has wrong size");
	memcpy(damaged, text, len);
	memcpy(damaged + len, "\n", 1);
	write_file(bad, damaged, len + 1, 0600);
	REFUSED(vault_master_load(bad, &m2, &error), "has wrong size (more than 121 bytes");
	write_file(bad, "", 0, 0600);
	REFUSED(vault_master_load(bad, &m2, &error), "is empty");
	/* A raw 32-byte key is not a key file. */
	write_file(bad, cv1, sizeof(cv1), 0600);
	REFUSED(vault_master_load(bad, &m2, &error), "not a mailkeep master key file");

	/* Wrong magic and unknown version. */
	memcpy(damaged, text, len);
	memcpy(damaged, "MAILKEEP", 8);
	write_file(bad, damaged, len, 0600);
	REFUSED(vault_master_load(bad, &m2, &error), "not a mailkeep master key file");
	memcpy(damaged, text, len);
	damaged[21] = '2';
	write_file(bad, damaged, len, 0600);
	REFUSED(vault_master_load(bad, &m2, &error), "unsupported format version");
	CHECK(m2 == NULL);

	/* systemd credential. */
	CHECK(unsetenv("CREDENTIALS_DIRECTORY") == 0);
	REFUSED(vault_master_load_credential("master.key", &m2, &error),
	        "CREDENTIALS_DIRECTORY is not set");
	CHECK(setenv("CREDENTIALS_DIRECTORY", tmpdir, 1) == 0);
	REFUSED(vault_master_load_credential("../master.key", &m2, &error), "invalid");
	REFUSED(vault_master_load_credential("..", &m2, &error), "invalid");
	REFUSED(vault_master_load_credential("", &m2, &error), "invalid");
	OK(vault_master_load_credential("master.key", &m2, &error));
	OK(vault_master_check_value_verify(m2, cv1, sizeof(cv1), &error));
	vault_master_free(&m2);
	/* Group bits come from systemd's ACL there; world bits still refused. */
	write_file(bad, text, len, 0440);
	OK(vault_master_load_credential("bad.key", &m2, &error));
	vault_master_free(&m2);
	write_file(bad, text, len, 0444);
	REFUSED(vault_master_load_credential("bad.key", &m2, &error), "readable by others");
	CHECK(unsetenv("CREDENTIALS_DIRECTORY") == 0);

	vault_master_free(&m1);
}

/* Wrap, unwrap, seal and open with whatever KEK; the shared part. */
static void round_trip(const struct vault_kek *kek)
{
	struct vault_data_key *dk = NULL, *dk2 = NULL;
	unsigned char wrapped[VAULT_WRAPPED_KEY_SIZE], bad[VAULT_WRAPPED_KEY_SIZE];
	unsigned char *blob = NULL;
	size_t blob_size = 0, size = 0;
	char *secret = NULL;

	OK(vault_data_key_new(&dk, &error));
	OK(vault_data_key_wrap(kek, dk, "alice", "7", 3, wrapped, &error));
	CHECK(wrapped[0] == 0x01);
	OK(vault_data_key_unwrap(kek, wrapped, sizeof(wrapped), "alice", "7", 3, &dk2, &error));

	/* The unwrapped key opens what the original sealed. */
	OK(vault_seal_secret(dk, "alice", "7", "imap-password", 1, "hunter2", 7, &blob, &blob_size,
	                     &error));
	CHECK(blob_size == 7 + VAULT_SEALED_OVERHEAD);
	CHECK(memmem(blob, blob_size, "hunter2", 7) == NULL);
	OK(vault_open_secret(dk2, "alice", "7", "imap-password", 1, blob, blob_size, &secret, &size,
	                     &error));
	CHECK(size == 7 && strcmp(secret, "hunter2") == 0);
	vault_secret_free(&secret);
	CHECK(secret == NULL);
	free(blob);

	/* Wrong user, account or version; every byte flipped. */
	REFUSED(vault_data_key_unwrap(kek, wrapped, sizeof(wrapped), "bob", "7", 3, &dk2, &error),
	        "cannot be opened");
	REFUSED(vault_data_key_unwrap(kek, wrapped, sizeof(wrapped), "alice", "8", 3, &dk2, &error),
	        "cannot be opened");
	REFUSED(vault_data_key_unwrap(kek, wrapped, sizeof(wrapped), "alice", "7", 2, &dk2, &error),
	        "cannot be opened");
	for (size_t i = 1; i < sizeof(wrapped); i++) {
		memcpy(bad, wrapped, sizeof(bad));
		bad[i] ^= 0x80;
		REFUSED(vault_data_key_unwrap(kek, bad, sizeof(bad), "alice", "7", 3, &dk2, &error),
		        "cannot be opened");
	}
	memcpy(bad, wrapped, sizeof(bad));
	bad[0] = 0x02;
	REFUSED(vault_data_key_unwrap(kek, bad, sizeof(bad), "alice", "7", 3, &dk2, &error),
	        "unknown format 2");
	REFUSED(
	    vault_data_key_unwrap(kek, wrapped, sizeof(wrapped) - 1, "alice", "7", 3, &dk2, &error),
	    "wrong size (72 bytes, expected 73)");
	REFUSED(vault_data_key_wrap(kek, dk, "", "7", 3, wrapped, &error), "empty user name");

	vault_data_key_free(&dk2);
	CHECK(dk2 == NULL);
	vault_data_key_free(&dk);
	vault_data_key_free(&dk);
}

static void test_master_kek(void)
{
	struct vault_master *m = NULL, *m2 = NULL;
	struct vault_kek *kek = NULL, *kek2 = NULL;
	struct vault_data_key *dk = NULL, *dk2 = NULL;
	unsigned char wrapped[VAULT_WRAPPED_KEY_SIZE];
	unsigned char mcv[VAULT_CHECK_VALUE_SIZE], kcv[VAULT_CHECK_VALUE_SIZE];

	OK(vault_master_load(path_in_tmp("master.key"), &m, &error));
	OK(vault_kek_from_master(m, &kek, &error));
	round_trip(kek);

	/* The KEK is a subkey, not the master itself. */
	vault_master_check_value(m, mcv);
	vault_kek_check_value(kek, kcv);
	CHECK(memcmp(mcv, kcv, sizeof(mcv)) != 0);

	/* A different master cannot unwrap. */
	OK(vault_data_key_new(&dk, &error));
	OK(vault_data_key_wrap(kek, dk, "alice", "7", 1, wrapped, &error));
	OK(vault_master_load(path_in_tmp("other.key"), &m2, &error));
	OK(vault_kek_from_master(m2, &kek2, &error));
	REFUSED(vault_kek_check_value_verify(kek2, kcv, sizeof(kcv), &error), "wrong passphrase");
	REFUSED(
	    vault_data_key_unwrap(kek2, wrapped, sizeof(wrapped), "alice", "7", 1, &dk2, &error),
	    "cannot be opened");
	CHECK(dk2 == NULL);

	vault_data_key_free(&dk);
	vault_kek_free(&kek2);
	vault_kek_free(&kek);
	vault_kek_free(&kek);
	vault_master_free(&m2);
	vault_master_free(&m);
}

static void put_be32(unsigned char *p, unsigned v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static void test_passphrase_kek(void)
{
	unsigned char kdf[VAULT_KDF_BLOB_SIZE], kdf2[VAULT_KDF_BLOB_SIZE], bad[VAULT_KDF_BLOB_SIZE];
	unsigned char kcv[VAULT_CHECK_VALUE_SIZE], wrapped[VAULT_WRAPPED_KEY_SIZE];
	struct vault_kek *kek = NULL, *kek2 = NULL;
	struct vault_data_key *dk = NULL, *dk2 = NULL;
	static const char pass[] = "correct horse battery staple";

	OK(vault_kdf_blob_new(kdf, &error));
	OK(vault_kdf_blob_new(kdf2, &error));
	CHECK(kdf[0] == 0x01);
	CHECK(memcmp(kdf + 9, kdf2 + 9, 16) != 0); /* random salts */
	/* t and m in the blob meet OWASP: t >= 2, m >= 19 MiB. */
	CHECK(((unsigned)kdf[1] << 24 | kdf[2] << 16 | kdf[3] << 8 | kdf[4]) >= 2);
	CHECK(((unsigned)kdf[5] << 24 | kdf[6] << 16 | kdf[7] << 8 | kdf[8]) >= 19456);

	OK(vault_kek_from_passphrase(pass, strlen(pass), kdf, sizeof(kdf), &kek, &error));
	round_trip(kek);
	vault_kek_check_value(kek, kcv);
	OK(vault_data_key_new(&dk, &error));
	OK(vault_data_key_wrap(kek, dk, "alice", "7", 1, wrapped, &error));

	/* The same passphrase and blob give the same KEK. */
	OK(vault_kek_from_passphrase(pass, strlen(pass), kdf, sizeof(kdf), &kek2, &error));
	OK(vault_kek_check_value_verify(kek2, kcv, sizeof(kcv), &error));
	OK(vault_data_key_unwrap(kek2, wrapped, sizeof(wrapped), "alice", "7", 1, &dk2, &error));
	vault_data_key_free(&dk2);
	vault_kek_free(&kek2);

	/* Wrong passphrase, or the right one with another user's salt. */
	OK(vault_kek_from_passphrase("correct horse battery stapler", strlen(pass) + 1, kdf,
	                             sizeof(kdf), &kek2, &error));
	REFUSED(vault_kek_check_value_verify(kek2, kcv, sizeof(kcv), &error), "wrong passphrase");
	REFUSED(
	    vault_data_key_unwrap(kek2, wrapped, sizeof(wrapped), "alice", "7", 1, &dk2, &error),
	    "wrong master key or passphrase");
	CHECK(strstr(error, pass) == NULL);
	vault_kek_free(&kek2);
	OK(vault_kek_from_passphrase(pass, strlen(pass), kdf2, sizeof(kdf2), &kek2, &error));
	REFUSED(
	    vault_data_key_unwrap(kek2, wrapped, sizeof(wrapped), "alice", "7", 1, &dk2, &error),
	    "cannot be opened");
	vault_kek_free(&kek2);

	/* Malformed or out-of-range kdf blobs, refused before Argon2id runs. */
	REFUSED(vault_kek_from_passphrase(pass, strlen(pass), kdf, sizeof(kdf) - 1, &kek2, &error),
	        "wrong size");
	memcpy(bad, kdf, sizeof(bad));
	bad[0] = 9;
	REFUSED(vault_kek_from_passphrase(pass, strlen(pass), bad, sizeof(bad), &kek2, &error),
	        "unknown format 9");
	memcpy(bad, kdf, sizeof(bad));
	put_be32(bad + 1, 1);
	REFUSED(vault_kek_from_passphrase(pass, strlen(pass), bad, sizeof(bad), &kek2, &error),
	        "out of range (t=1");
	memcpy(bad, kdf, sizeof(bad));
	put_be32(bad + 5, 8192);
	REFUSED(vault_kek_from_passphrase(pass, strlen(pass), bad, sizeof(bad), &kek2, &error),
	        "out of range");
	memcpy(bad, kdf, sizeof(bad));
	put_be32(bad + 5, 0xffffffffU);
	REFUSED(vault_kek_from_passphrase(pass, strlen(pass), bad, sizeof(bad), &kek2, &error),
	        "out of range");
	REFUSED(vault_kek_from_passphrase("", 0, kdf, sizeof(kdf), &kek2, &error),
	        "empty passphrase");
	CHECK(kek2 == NULL);

	vault_data_key_free(&dk);
	vault_kek_free(&kek);
}

/* open must fail with the one non-revealing message. */
#define NOT_OPENED(call) REFUSED(call, "sealed credential does not belong to this account")

static void test_seal(void)
{
	struct vault_data_key *dk = NULL, *dk2 = NULL;
	unsigned char *blob = NULL, *blob2 = NULL, *old = NULL, *bad;
	size_t blob_size, blob2_size, old_size, size = 0;
	static const char token[] = "ya29.a0AfH6SMB-refresh-token";
	char *secret = NULL;

	OK(vault_data_key_new(&dk, &error));
	OK(vault_data_key_new(&dk2, &error));
	OK(vault_seal_secret(dk, "alice", "7", "oauth-refresh", 5, token, strlen(token), &blob,
	                     &blob_size, &error));
	CHECK(blob[0] == 0x01 && blob_size == strlen(token) + 1 + 24 + 16);
	OK(vault_open_secret(dk, "alice", "7", "oauth-refresh", 5, blob, blob_size, &secret, &size,
	                     &error));
	CHECK(size == strlen(token) && strcmp(secret, token) == 0);
	vault_secret_free(&secret);
	vault_secret_free(&secret);

	/* Two seals of the same secret differ (random nonce). */
	OK(vault_seal_secret(dk, "alice", "7", "oauth-refresh", 5, token, strlen(token), &blob2,
	                     &blob2_size, &error));
	CHECK(blob2_size == blob_size && memcmp(blob, blob2, blob_size) != 0);
	free(blob2);

	/* One flipped bit in the nonce, the ciphertext or the tag. */
	bad = malloc(blob_size);
	CHECK(bad != NULL);
	size_t spots[] = {1, 12, 24, 25, 25 + strlen(token) - 1, 25 + strlen(token), blob_size - 1};
	for (size_t i = 0; i < sizeof(spots) / sizeof(spots[0]); i++) {
		for (int bit = 0; bit < 8; bit++) {
			memcpy(bad, blob, blob_size);
			bad[spots[i]] ^= (unsigned char)(1U << bit);
			NOT_OPENED(vault_open_secret(dk, "alice", "7", "oauth-refresh", 5, bad,
			                             blob_size, &secret, &size, &error));
			CHECK(secret == NULL);
			CHECK(strstr(error, token) == NULL);
		}
	}
	memcpy(bad, blob, blob_size);
	bad[0] = 0;
	REFUSED(vault_open_secret(dk, "alice", "7", "oauth-refresh", 5, bad, blob_size, &secret,
	                          &size, &error),
	        "unknown format");
	free(bad);

	/* Truncation: any shorter blob fails. */
	for (size_t n = 0; n < blob_size; n++)
		CHECK(vault_open_secret(dk, "alice", "7", "oauth-refresh", 5, blob, n, &secret,
		                        &size, &error) == -1);
	REFUSED(vault_open_secret(dk, "alice", "7", "oauth-refresh", 5, blob, 41, &secret, &size,
	                          &error),
	        "truncated");
	NOT_OPENED(vault_open_secret(dk, "alice", "7", "oauth-refresh", 5, blob, blob_size - 1,
	                             &secret, &size, &error));

	/* Swapped between users, accounts, kinds; another account's key. */
	NOT_OPENED(vault_open_secret(dk, "bob", "7", "oauth-refresh", 5, blob, blob_size, &secret,
	                             &size, &error));
	NOT_OPENED(vault_open_secret(dk, "alice", "8", "oauth-refresh", 5, blob, blob_size, &secret,
	                             &size, &error));
	NOT_OPENED(vault_open_secret(dk, "alice", "7", "imap-password", 5, blob, blob_size, &secret,
	                             &size, &error));
	NOT_OPENED(vault_open_secret(dk2, "alice", "7", "oauth-refresh", 5, blob, blob_size,
	                             &secret, &size, &error));

	/* An older copy (version 4) written back does not open as version 5. */
	OK(vault_seal_secret(dk, "alice", "7", "oauth-refresh", 4, "old-token", 9, &old, &old_size,
	                     &error));
	NOT_OPENED(vault_open_secret(dk, "alice", "7", "oauth-refresh", 5, old, old_size, &secret,
	                             &size, &error));
	NOT_OPENED(vault_open_secret(dk, "alice", "7", "oauth-refresh", 5ULL | 1ULL << 32, blob,
	                             blob_size, &secret, &size, &error));
	OK(vault_open_secret(dk, "alice", "7", "oauth-refresh", 4, old, old_size, &secret, &size,
	                     &error));
	CHECK(strcmp(secret, "old-token") == 0);
	vault_secret_free(&secret);
	free(old);

	/* Length prefixes: ("ab","c") is not ("a","bc"), in every position. */
	OK(vault_seal_secret(dk, "ab", "c", "imap-password", 1, "pw", 2, &old, &old_size, &error));
	NOT_OPENED(vault_open_secret(dk, "a", "bc", "imap-password", 1, old, old_size, &secret,
	                             &size, &error));
	free(old);
	OK(vault_seal_secret(dk, "u", "ab", "c", 1, "pw", 2, &old, &old_size, &error));
	NOT_OPENED(vault_open_secret(dk, "u", "a", "bc", 1, old, old_size, &secret, &size, &error));
	free(old);

	/* Limits. */
	REFUSED(
	    vault_seal_secret(dk, "alice", "7", "imap-password", 1, "", 0, &old, &old_size, &error),
	    "empty secret");
	char *huge = calloc(1, VAULT_SECRET_MAX_SIZE + 1);
	CHECK(huge != NULL);
	REFUSED(vault_seal_secret(dk, "alice", "7", "imap-password", 1, huge,
	                          VAULT_SECRET_MAX_SIZE + 1, &old, &old_size, &error),
	        "too large");
	OK(vault_seal_secret(dk, "alice", "7", "imap-password", 1, huge, VAULT_SECRET_MAX_SIZE,
	                     &old, &old_size, &error));
	OK(vault_open_secret(dk, "alice", "7", "imap-password", 1, old, old_size, &secret, &size,
	                     &error));
	CHECK(size == VAULT_SECRET_MAX_SIZE && secret[size] == '\0');
	vault_secret_free(&secret);
	free(old);
	memset(huge, 'x', VAULT_NAME_MAX_SIZE + 1);
	huge[VAULT_NAME_MAX_SIZE + 1] = '\0';
	REFUSED(
	    vault_seal_secret(dk, huge, "7", "imap-password", 1, "pw", 2, &old, &old_size, &error),
	    "user name is too long");
	huge[VAULT_NAME_MAX_SIZE] = '\0';
	OK(vault_seal_secret(dk, huge, huge, huge, UINT64_MAX, "pw", 2, &old, &old_size, &error));
	OK(vault_open_secret(dk, huge, huge, huge, UINT64_MAX, old, old_size, &secret, &size,
	                     &error));
	vault_secret_free(&secret);
	free(old);
	free(huge);

	free(blob);
	vault_data_key_free(&dk2);
	vault_data_key_free(&dk);
}

/* Secrets bound to server settings (format 2). */
static void test_seal_bound(void)
{
	struct vault_data_key *dk = NULL;
	unsigned char *blob = NULL, *bad, here[VAULT_BINDING_SIZE], there[VAULT_BINDING_SIZE];
	unsigned char split[VAULT_BINDING_SIZE];
	size_t blob_size, size = 0;
	char *secret = NULL;
	const struct vault_binding_field f_here[] = {
	    {"layout", "1"}, {"imap-url", "imaps://imap.example.com"}, {"ca", ""}};
	const struct vault_binding_field f_there[] = {
	    {"layout", "1"}, {"imap-url", "imaps://127.0.0.1:9"}, {"ca", ""}};
	/* Length prefixes: a value moved across the field boundary differs. */
	const struct vault_binding_field f_split[] = {
	    {"layout", "1"}, {"imap-url", "imaps://imap.example.co"}, {"ca", "m"}};

	OK(vault_data_key_new(&dk, &error));
	OK(vault_binding_digest(f_here, 3, here, &error));
	OK(vault_binding_digest(f_there, 3, there, &error));
	OK(vault_binding_digest(f_split, 3, split, &error));
	CHECK(memcmp(here, there, sizeof(here)) != 0 && memcmp(here, split, sizeof(here)) != 0);
	REFUSED(vault_binding_digest(f_here, VAULT_BINDING_MAX_FIELDS + 1, here, &error),
	        "too many");
	OK(vault_seal_bound_secret(dk, "alice", "7", "imap-password", 3, here, "hunter2", 7, &blob,
	                           &blob_size, &error));
	CHECK(blob[0] == 0x02 && blob_size == 7 + VAULT_SEALED_BOUND_OVERHEAD);
	OK(vault_open_bound_secret(dk, "alice", "7", "imap-password", 3, here, blob, blob_size,
	                           &secret, &size, &error));
	CHECK(size == 7 && strcmp(secret, "hunter2") == 0);
	vault_secret_free(&secret);

	/* Other settings: a clear error, and nothing opened. */
	CHECK(vault_open_bound_secret(dk, "alice", "7", "imap-password", 3, there, blob, blob_size,
	                              &secret, &size, &error) == -1);
	CHECK(error == vault_binding_changed && secret == NULL);
	CHECK(vault_open_bound_secret(dk, "alice", "7", "imap-password", 3, split, blob, blob_size,
	                              &secret, &size, &error) == -1);
	CHECK(error == vault_binding_changed);
	/* The copy in the blob is only a diagnosis: made to match other
	 * settings, the blob still does not open under them. */
	bad = malloc(blob_size);
	CHECK(bad != NULL);
	memcpy(bad, blob, blob_size);
	memcpy(bad + 1, there, VAULT_BINDING_SIZE);
	NOT_OPENED(vault_open_bound_secret(dk, "alice", "7", "imap-password", 3, there, bad,
	                                   blob_size, &secret, &size, &error));
	/* A damaged copy is damage, not a change of settings. */
	memcpy(bad, blob, blob_size);
	bad[5] ^= 1;
	NOT_OPENED(vault_open_bound_secret(dk, "alice", "7", "imap-password", 3, here, bad,
	                                   blob_size, &secret, &size, &error));
	free(bad);
	/* Version, kind and format still count. */
	NOT_OPENED(vault_open_bound_secret(dk, "alice", "7", "imap-password", 2, here, blob,
	                                   blob_size, &secret, &size, &error));
	NOT_OPENED(vault_open_bound_secret(dk, "alice", "7", "smtp-password", 3, here, blob,
	                                   blob_size, &secret, &size, &error));
	REFUSED(vault_open_secret(dk, "alice", "7", "imap-password", 3, blob, blob_size, &secret,
	                          &size, &error),
	        "unknown format 2");
	CHECK(vault_sealed_format(blob, blob_size) == 2);
	free(blob);
	vault_data_key_free(&dk);
}

/* The number after "name" in an Argon2 hash string. */
static unsigned long hash_param(const char *hash, const char *name)
{
	const char *p = strstr(hash, name);
	CHECK(p != NULL);
	return strtoul(p + strlen(name), NULL, 10);
}

static void test_password(void)
{
	char hash[VAULT_PASSWORD_HASH_SIZE], hash2[VAULT_PASSWORD_HASH_SIZE], bad[256];

	OK(vault_password_hash("s3cret pass", 11, hash, &error));
	CHECK(strncmp(hash, "$argon2id$", 10) == 0);
	CHECK(hash_param(hash, "$m=") >= 19456);
	CHECK(hash_param(hash, ",t=") >= 2);
	CHECK(strstr(hash, "s3cret") == NULL);
	OK(vault_password_verify(hash, "s3cret pass", 11, &error));
	REFUSED(vault_password_verify(hash, "s3cret pasS", 11, &error), "incorrect password");
	REFUSED(vault_password_verify(hash, "s3cret pass", 10, &error), "incorrect password");
	CHECK(strstr(error, "s3cret") == NULL);
	CHECK(vault_password_needs_rehash(hash) == 0);

	/* Salted: the same password hashes differently. */
	OK(vault_password_hash("s3cret pass", 11, hash2, &error));
	CHECK(strcmp(hash, hash2) != 0);
	OK(vault_password_verify(hash2, "s3cret pass", 11, &error));

	/* Stored hashes are checked before use. */
	REFUSED(vault_password_verify("$argon2i$v=19$m=65536,t=2,p=1$c2FsdHNhbHQ$aGFzaA", "x", 1,
	                              &error),
	        "not an Argon2id hash");
	REFUSED(vault_password_verify("$argon2id$v=19$m=65536,t=2", "x", 1, &error), "malformed");
	REFUSED(vault_password_verify("$argon2id$v=19$m=4096,t=3,p=1$c2FsdHNhbHQ$aGFzaA", "x", 1,
	                              &error),
	        "out of range");
	REFUSED(vault_password_verify("$argon2id$v=19$m=4294967295,t=2,p=1$c2FsdHNhbHQ$aGFzaA", "x",
	                              1, &error),
	        "out of range");
	REFUSED(vault_password_verify("", "x", 1, &error), "not an Argon2id hash");
	memset(bad, 'a', sizeof(bad) - 1);
	bad[sizeof(bad) - 1] = '\0';
	REFUSED(vault_password_verify(bad, "x", 1, &error), "not an Argon2id hash");
	CHECK(vault_password_needs_rehash("garbage") == -1);
	REFUSED(vault_password_hash("", 0, hash2, &error), "empty password");

	CHECK(vault_mem_equal("abc", "abc", 3));
	CHECK(!vault_mem_equal("abc", "abd", 3));
}

/* With no lockable memory at all, everything still works. */
static void test_no_mlock(void)
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct rlimit none = {0, 0};
		CHECK(setrlimit(RLIMIT_MEMLOCK, &none) == 0);
		struct vault_master *m = NULL;
		struct vault_kek *kek = NULL;
		OK(vault_master_load(path_in_tmp("master.key"), &m, &error));
		OK(vault_kek_from_master(m, &kek, &error));
		round_trip(kek);
		vault_kek_free(&kek);
		vault_master_free(&m);
		_exit(0);
	}
	int status;
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_harden(void)
{
	struct rlimit rl;

	OK(vault_harden_process(&error));
	CHECK(getrlimit(RLIMIT_CORE, &rl) == 0 && rl.rlim_cur == 0 && rl.rlim_max == 0);
}

static void cleanup(void)
{
	static const char *const names[] = {"master.key", "other.key", "bad.key", "dangling"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		(void)unlink(path_in_tmp(names[i]));
	(void)rmdir(tmpdir);
}

int main(void)
{
	CHECK(mkdtemp(tmpdir) != NULL);
	OK(vault_init(&error));
	test_keyfile();
	test_master_kek();
	test_passphrase_kek();
	test_seal();
	test_seal_bound();
	test_password();
	test_no_mlock();
	test_harden();
	cleanup();
	struct stat st;
	CHECK(stat(tmpdir, &st) != 0); /* nothing left behind */
	printf("test-vault: ok\n");
	return 0;
}
