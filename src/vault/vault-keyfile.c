/* The master key file: create (never overwriting), load with permission,
 * size, header and checksum checks, and systemd credentials. The format is
 * described in vault.h. */
#include "vault/vault-private.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#define MAGIC_PREFIX "mailkeep-master-key "
#define MAGIC "mailkeep-master-key v1\n"
#define MAGIC_LEN (sizeof(MAGIC) - 1)
#define CHECKSUM_SIZE 16
#define KEY_HEX_LEN (2 * VAULT_KEY_SIZE)
#define CHECKSUM_HEX_LEN (2 * CHECKSUM_SIZE)
#define KEYFILE_SIZE (MAGIC_LEN + KEY_HEX_LEN + 1 + CHECKSUM_HEX_LEN + 1)

_Static_assert(KEYFILE_SIZE == 121, "documented key file size");

/* BLAKE2b-128 over the magic line and the raw key. */
static void keyfile_checksum(const unsigned char *key, unsigned char sum_r[CHECKSUM_SIZE])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, CHECKSUM_SIZE);
	crypto_generichash_update(&st, (const unsigned char *)MAGIC, MAGIC_LEN);
	crypto_generichash_update(&st, key, VAULT_KEY_SIZE);
	crypto_generichash_final(&st, sum_r, CHECKSUM_SIZE);
	sodium_memzero(&st, sizeof(st));
}

/* The whole file text for key into text (KEYFILE_SIZE + 1 bytes, NUL added). */
static void keyfile_format(const unsigned char *key, char *text)
{
	unsigned char sum[CHECKSUM_SIZE];
	char *p = text;

	memcpy(p, MAGIC, MAGIC_LEN);
	p += MAGIC_LEN;
	sodium_bin2hex(p, KEY_HEX_LEN + 1, key, VAULT_KEY_SIZE);
	p += KEY_HEX_LEN;
	*p++ = '\n';
	keyfile_checksum(key, sum);
	sodium_bin2hex(p, CHECKSUM_HEX_LEN + 1, sum, CHECKSUM_SIZE);
	p += CHECKSUM_HEX_LEN;
	*p++ = '\n';
	*p = '\0';
}

/* Decode exactly len hex digits at hex into bin. */
static int hex_exact(const char *hex, size_t len, unsigned char *bin, size_t bin_size)
{
	size_t bin_len = 0;
	const char *end = NULL;

	if (sodium_hex2bin(bin, bin_size, hex, len, NULL, &bin_len, &end) != 0)
		return -1;
	return bin_len == bin_size && end == hex + len ? 0 : -1;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* fsync the directory holding path, so the new name survives a crash. */
static int fsync_parent(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fd, ret;

	if (slash == NULL)
		(void)snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		(void)snprintf(dir, sizeof(dir), "/");
	else
		(void)snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ret = fsync(fd);
	(void)close(fd);
	return ret;
}

/* Write text to a new temporary file next to path and link it to path. */
static int keyfile_write(const char *path, const char *text, const char **error_r)
{
	char tmp[PATH_MAX];
	int fd, n, err;

	n = snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		*error_r = "master key file path is too long";
		return -1;
	}
	fd = mkostemp(tmp, O_CLOEXEC); /* O_CREAT | O_EXCL, mode 0600 */
	if (fd < 0) {
		*error_r =
		    vault_error("cannot create master key file %s: %s", path, strerror(errno));
		return -1;
	}
	if (fchmod(fd, 0600) < 0 || write_all(fd, text, KEYFILE_SIZE) < 0 || fsync(fd) < 0) {
		err = errno;
		(void)close(fd);
		(void)unlink(tmp);
		*error_r = vault_error("cannot write master key file %s: %s", path, strerror(err));
		return -1;
	}
	if (close(fd) < 0) {
		err = errno;
		(void)unlink(tmp);
		*error_r = vault_error("cannot write master key file %s: %s", path, strerror(err));
		return -1;
	}
	/* link() never replaces an existing name, like O_EXCL, and the name
	 * only ever points at a complete file. */
	if (link(tmp, path) < 0) {
		err = errno;
		(void)unlink(tmp);
		if (err == EEXIST)
			*error_r = vault_error("master key file %s already exists; refusing to "
			                       "overwrite it",
			                       path);
		else
			*error_r = vault_error("cannot create master key file %s: %s", path,
			                       strerror(err));
		return -1;
	}
	(void)unlink(tmp);
	if (fsync_parent(path) < 0) {
		*error_r = vault_error("cannot sync the directory of master key file %s: %s", path,
		                       strerror(errno));
		return -1;
	}
	return 0;
}

int vault_master_create(const char *path, struct vault_master **master_r, const char **error_r)
{
	struct vault_master *master;
	char *text;
	int ret;

	if (vault_sodium_ready(error_r) < 0 || (master = vault_master_alloc(error_r)) == NULL)
		return -1;
	text = sodium_malloc(KEYFILE_SIZE + 1);
	if (text == NULL) {
		vault_master_free(&master);
		*error_r = "vault: cannot allocate secure memory for a key";
		return -1;
	}
	randombytes_buf(master->key, VAULT_KEY_SIZE);
	keyfile_format(master->key, text);
	ret = keyfile_write(path, text, error_r);
	sodium_free(text);
	if (ret < 0) {
		vault_master_free(&master);
		return -1;
	}
	vault_master_seal(master);
	if (master_r != NULL)
		*master_r = master;
	else
		vault_master_free(&master);
	return 0;
}

/* Read at most size bytes; returns the count, or -1 with errno. */
static ssize_t read_up_to(int fd, char *buf, size_t size)
{
	size_t got = 0;

	while (got < size) {
		ssize_t r = read(fd, buf + got, size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* Check the file text (len bytes) and decode the key into master. */
static int keyfile_parse(const char *path, const char *text, size_t len,
                         struct vault_master *master, const char **error_r)
{
	const size_t prefix_len = sizeof(MAGIC_PREFIX) - 1;
	unsigned char sum[CHECKSUM_SIZE], want[CHECKSUM_SIZE];
	size_t cmp = len < prefix_len ? len : prefix_len;

	if (len == 0) {
		*error_r = vault_error("master key file %s is empty", path);
		return -1;
	}
	if (memcmp(text, MAGIC_PREFIX, cmp) != 0) {
		*error_r =
		    vault_error("%s is not a mailkeep master key file (unknown header)", path);
		return -1;
	}
	if (len >= MAGIC_LEN && memcmp(text, MAGIC, MAGIC_LEN) != 0) {
		*error_r = vault_error("master key file %s has an unsupported format version "
		                       "(this mailkeep reads v1)",
		                       path);
		return -1;
	}
	if (len != KEYFILE_SIZE) {
		*error_r = vault_error("master key file %s has wrong size (%s%zu bytes, expected "
		                       "%zu); it is truncated or damaged",
		                       path, len > KEYFILE_SIZE ? "more than " : "",
		                       len > KEYFILE_SIZE ? (size_t)KEYFILE_SIZE : len,
		                       (size_t)KEYFILE_SIZE);
		return -1;
	}
	text += MAGIC_LEN;
	if (text[KEY_HEX_LEN] != '\n' || text[KEY_HEX_LEN + 1 + CHECKSUM_HEX_LEN] != '\n' ||
	    hex_exact(text, KEY_HEX_LEN, master->key, VAULT_KEY_SIZE) < 0 ||
	    hex_exact(text + KEY_HEX_LEN + 1, CHECKSUM_HEX_LEN, want, sizeof(want)) < 0) {
		*error_r = vault_error("master key file %s is damaged (malformed key line)", path);
		return -1;
	}
	keyfile_checksum(master->key, sum);
	if (sodium_memcmp(sum, want, sizeof(sum)) != 0) {
		*error_r = vault_error("master key file %s is damaged (checksum mismatch)", path);
		return -1;
	}
	return 0;
}

/* Load from path; perm_mask are the mode bits that must be clear. */
static int keyfile_load(const char *path, mode_t perm_mask, struct vault_master **master_r,
                        const char **error_r)
{
	struct vault_master *master = NULL;
	char *text = NULL;
	struct stat st;
	ssize_t len;
	int fd, ret = -1;

	if (vault_sodium_ready(error_r) < 0)
		return -1;
	/* O_NONBLOCK: a FIFO planted at path must not hang us. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT)
			*error_r = vault_error("master key file %s does not exist", path);
		else
			*error_r = vault_error("cannot open master key file %s: %s", path,
			                       strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		*error_r = vault_error("cannot stat master key file %s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		*error_r = vault_error("master key file %s is not a regular file", path);
		goto out;
	}
	if ((st.st_mode & perm_mask & 0444) != 0) {
		*error_r = vault_error("master key file %s is readable by others (mode %04o); "
		                       "refusing (chmod 600 it)",
		                       path, (unsigned)(st.st_mode & 07777));
		goto out;
	}
	if ((st.st_mode & perm_mask) != 0) {
		*error_r = vault_error("master key file %s is writable by others (mode %04o); "
		                       "refusing (chmod 600 it)",
		                       path, (unsigned)(st.st_mode & 07777));
		goto out;
	}
	text = sodium_malloc(KEYFILE_SIZE + 1);
	if (text == NULL || (master = vault_master_alloc(error_r)) == NULL) {
		*error_r = "vault: cannot allocate secure memory for a key";
		goto out;
	}
	/* One byte more than a valid file, to tell "too long" apart. */
	len = read_up_to(fd, text, KEYFILE_SIZE + 1);
	if (len < 0) {
		*error_r = vault_error("cannot read master key file %s: %s", path, strerror(errno));
		goto out;
	}
	if (keyfile_parse(path, text, (size_t)len, master, error_r) < 0)
		goto out;
	vault_master_seal(master);
	*master_r = master;
	master = NULL;
	ret = 0;
out:
	if (text != NULL)
		sodium_free(text);
	vault_master_free(&master);
	(void)close(fd);
	return ret;
}

int vault_master_load(const char *path, struct vault_master **master_r, const char **error_r)
{
	return keyfile_load(path, 077, master_r, error_r);
}

int vault_master_load_credential(const char *name, struct vault_master **master_r,
                                 const char **error_r)
{
	const char *dir = secure_getenv("CREDENTIALS_DIRECTORY");
	char path[PATH_MAX];
	int n;

	if (name == NULL || name[0] == '\0' || strchr(name, '/') != NULL ||
	    strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
		*error_r = "invalid systemd credential name";
		return -1;
	}
	if (dir == NULL || dir[0] == '\0') {
		*error_r = vault_error("systemd credential %s requested but $CREDENTIALS_DIRECTORY "
		                       "is not set (LoadCredential= missing from the unit?)",
		                       name);
		return -1;
	}
	n = snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		*error_r = "systemd credential path is too long";
		return -1;
	}
	/* systemd grants the service user read access with an ACL, which
	 * stat() reports in the group bits; the directory is private to the
	 * unit. World access is still refused. */
	return keyfile_load(path, 007, master_r, error_r);
}
