/* The secret anchor: DIR/hub.anchor, outside hub.db, so that restoring or
 * editing hub.db alone cannot bring back a replaced password (see
 * hub-private.h). */
#include "hub-private.h"
#include "lib/crashpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define ANCHOR_MAGIC "mailkeep-anchor 1\n"
#define ANCHOR_MAX_SIZE (16 * 1024 * 1024)

static int anchor_path(const struct hub *hub, char *path, size_t size)
{
	int n = snprintf(path, size, "%s/hub.anchor", hub->dir);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* Parse a decimal number of at most 19 digits ending at a space or the end. */
static int parse_u64(const char **p, const char *end, uint64_t *v_r)
{
	uint64_t v = 0;
	const char *s = *p;
	size_t n = 0;
	while (s < end && *s >= '0' && *s <= '9' && n < 19) {
		v = v * 10 + (uint64_t)(*s - '0');
		s++;
		n++;
	}
	if (n == 0 || (n > 1 && **p == '0') || (s < end && *s != ' '))
		return -1;
	*p = s;
	*v_r = v;
	return 0;
}

int hub_anchor_read(struct hub *hub, int64_t account_id, struct hub_anchor *anchor_r,
                    const char **error_r)
{
	char path[4200];
	struct hub_anchor a = {0, false, false, false};
	if (anchor_path(hub, path, sizeof(path)) < 0)
		return hub_fail(hub, error_r, "path too long");
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT) {
		*anchor_r = a;
		return 0;
	}
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		return hub_fail(hub, error_r, "cannot read %s: %m", path);
	}
	if (!S_ISREG(st.st_mode) || st.st_size > ANCHOR_MAX_SIZE) {
		close(fd);
		return hub_fail(hub, error_r, "%s is not a regular file of at most %d bytes", path,
		                ANCHOR_MAX_SIZE);
	}
	size_t size = (size_t)st.st_size, got = 0;
	char *buf = malloc(size + 1);
	if (buf == NULL) {
		close(fd);
		return hub_fail(hub, error_r, "out of memory");
	}
	while (got < size) {
		ssize_t r = read(fd, buf + got, size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	a.exists = true;
	int ret = 0;
	size_t magic = strlen(ANCHOR_MAGIC);
	if (got < magic && memcmp(buf, ANCHOR_MAGIC, got) == 0)
		goto out; /* a creation cut short: no line yet (the next writer repairs it) */
	if (got < magic || memcmp(buf, ANCHOR_MAGIC, magic) != 0) {
		ret = hub_fail(hub, error_r, "%s is damaged (no header)", path);
		goto out;
	}
	/* Complete lines only: an append cut off by a crash was never
	 * relied on (the hub.db change it follows was committed first). */
	unsigned line_no = 1;
	for (const char *p = buf + magic, *end; p < buf + got; p = end + 1) {
		end = memchr(p, '\n', (size_t)(buf + got - p));
		if (end == NULL)
			break;
		line_no++;
		uint64_t id, version;
		const char *q;
		if (end == p)
			continue; /* an empty line (written by an earlier mailkeep) */
		if ((size_t)(end - p) == strlen("upgraded binding") &&
		    memcmp(p, "upgraded binding", (size_t)(end - p)) == 0) {
			a.binding_upgraded = true;
		} else if (end - p > 7 && memcmp(p, "secret ", 7) == 0) {
			q = p + 7;
			if (parse_u64(&q, end, &id) < 0 || q >= end || *q++ != ' ' ||
			    parse_u64(&q, end, &version) < 0 || q != end)
				goto bad;
			if ((int64_t)id == account_id && version > a.secret_version)
				a.secret_version = version;
		} else if (end - p > 8 && memcmp(p, "removed ", 8) == 0) {
			q = p + 8;
			if (parse_u64(&q, end, &id) < 0 || q != end)
				goto bad;
			if ((int64_t)id == account_id)
				a.removed = true;
		} else {
			goto bad;
		}
		continue;
	bad:
		ret = hub_fail(hub, error_r, "%s is damaged (line %u)", path, line_no);
		goto out;
	}
out:
	free(buf);
	if (ret == 0)
		*anchor_r = a;
	return ret;
}

/* Under the writers' flock: make the file end after its last complete line
 * (cutting off what an append interrupted by a crash or a full disk left;
 * it was never relied on: the hub.db change it follows was committed
 * first), with the header first. Returns the size, or -1 with errno. */
static off_t anchor_repair(int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -1;
	size_t magic = strlen(ANCHOR_MAGIC);
	char tail[256];
	off_t size = st.st_size;
	if (size >= (off_t)magic) {
		size_t n = size < (off_t)sizeof(tail) ? (size_t)size : sizeof(tail);
		if (pread(fd, tail, n, size - (off_t)n) != (ssize_t)n)
			return -1;
		if (tail[n - 1] == '\n')
			return size;
		char *nl = memrchr(tail, '\n', n);
		off_t keep = nl != NULL ? size - (off_t)n + (nl - tail) + 1 : -1;
		if (keep >= (off_t)magic)
			return ftruncate(fd, keep) == 0 ? keep : -1;
	}
	/* Nothing, or not even the whole header: a creation cut short. */
	if (ftruncate(fd, 0) < 0 || write(fd, ANCHOR_MAGIC, magic) != (ssize_t)magic)
		return -1;
	return (off_t)magic;
}

int hub_anchor_note(struct hub *hub, const char *what, int64_t account_id, uint64_t version,
                    const char **error_r)
{
	char path[4200], line[128];
	int n;
	if (anchor_path(hub, path, sizeof(path)) < 0)
		return hub_fail(hub, error_r, "path too long");
	if (strcmp(what, "secret") == 0)
		n = snprintf(line, sizeof(line), "secret %lld %" PRIu64 "\n", (long long)account_id,
		             version);
	else if (strcmp(what, "removed") == 0)
		n = snprintf(line, sizeof(line), "removed %lld\n", (long long)account_id);
	else
		n = snprintf(line, sizeof(line), "upgraded binding\n");
	if (n < 0 || (size_t)n >= sizeof(line))
		return hub_fail(hub, error_r, "anchor line too long");

	bool created = false;
	int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd >= 0)
		created = true;
	else if (errno == EEXIST)
		fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return hub_fail(hub, error_r, "cannot write %s: %m", path);
	/* One writer at a time (processes and threads: flock is per open file
	 * description); a line is either wholly there after fdatasync, or cut
	 * off again before the next one is written. */
	off_t size = -1;
	if (flock(fd, LOCK_EX) < 0 || (size = anchor_repair(fd)) < 0)
		goto fail;
	if (write(fd, line, (size_t)n) != (ssize_t)n || fdatasync(fd) < 0) {
		int err = errno;
		(void)ftruncate(fd, size);
		errno = err;
		goto fail;
	}
	close(fd);
	if (created) {
		/* The name too must survive a crash. */
		int dfd = open(hub->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0 || fsync(dfd) < 0) {
			if (dfd >= 0)
				close(dfd);
			return hub_fail(hub, error_r, "cannot sync %s: %m", hub->dir);
		}
		close(dfd);
	}
	crashpoint_commit();
	return 0;
fail:;
	int err = errno;
	close(fd);
	return hub_fail(hub, error_r, "cannot write %s: %s", path, strerror(err));
}
