/* The audit log file: open (continuing the chain from the last line),
 * durable append, head, the reading iterator and the whole-file verifier.
 * The line format lives in audit-line.c. */
#include "audit/audit-private.h"
#include "lib/crashpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define AUDIT_ERROR_SIZE 512
#define ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"

/* Errors of calls that have no object to own them. */
static _Thread_local char thread_error[AUDIT_ERROR_SIZE];

struct file_lock;

struct audit_log {
	int fd;
	struct file_lock *lock; /* this process's claim on the file */
	off_t size;             /* where the file ends after our last append */
	uint64_t count;         /* seq of the last entry */
	char head[AUDIT_HASH_HEX_SIZE];
	audit_clock_func *clock;
	void *clock_context;
	bool failed;   /* a write or sync failed: refuse further appends */
	bool prepared; /* line[0..line_len) is the next entry, not written yet */
	uint64_t prepared_seq;
	char prepared_hash[AUDIT_HASH_HEX_SIZE];
	size_t line_len;
	char line[AUDIT_MAX_ENTRY_SIZE];
	char error[AUDIT_ERROR_SIZE];
};

struct audit_iter {
	int fd;
	uint64_t line_no; /* of the line last returned */
	uint64_t count;   /* seq of the last good entry */
	char prev[AUDIT_HASH_HEX_SIZE];
	bool eof, done, failed;
	bool torn;         /* failed on an incomplete last line */
	uint64_t offset;   /* bytes up to the end of the line last returned */
	size_t start, len; /* unread bytes: buf[start..len) */
	char buf[4 * AUDIT_MAX_ENTRY_SIZE];
	char storage[AUDIT_PARSE_STORAGE_SIZE];
	char error[AUDIT_ERROR_SIZE];
};

static int fmt_error(char *buf, const char **error_r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Write a message into buf (AUDIT_ERROR_SIZE bytes; a truncated message is
 * acceptable), point *error_r at it and return -1. */
static int fmt_error(char *buf, const char **error_r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(buf, AUDIT_ERROR_SIZE, fmt, ap);
	va_end(ap);
	*error_r = buf;
	return -1;
}

static time_t system_clock(void *context)
{
	(void)context;
	return time(NULL);
}

/* Sync the directory holding path, so a newly created file's name is as
 * durable as its contents. */
static int sync_parent_dir(const char *path, const char **error_r)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	size_t n = slash == NULL ? 1 : (slash == path ? 1 : (size_t)(slash - path));
	if (n >= sizeof(dir))
		return fmt_error(thread_error, error_r, "audit log path too long");
	memcpy(dir, slash == NULL ? "." : path, n);
	dir[n] = '\0';
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) < 0) {
		int err = errno;
		if (dfd >= 0)
			close(dfd);
		return fmt_error(thread_error, error_r, "audit log %s: sync directory: %s", path,
		                 strerror(err));
	}
	close(dfd);
	return 0;
}

/* --- the writer's lock ---------------------------------------------------
 *
 * One writer per log file at a time, and a writer that finds the log busy
 * waits (up to a bound) instead of failing. flock() excludes other processes;
 * it also excludes other open file descriptions in this process, but a
 * thread that polled it would be served in no particular order and might
 * starve. So the threads of this process queue on an in-process lock per
 * file (device and inode) first, and only the one holding it polls flock(),
 * which then waits for other processes only. */

struct file_lock {
	dev_t dev;
	ino_t ino;
	unsigned users; /* threads holding or waiting for it */
	bool held;
	pthread_cond_t cond; /* signalled when held becomes false */
	struct file_lock *next;
};

static pthread_mutex_t file_locks_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct file_lock *file_locks;

static void deadline_after(struct timespec *ts, unsigned timeout_ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += timeout_ms / 1000;
	ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static bool deadline_passed(const struct timespec *deadline)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > deadline->tv_sec ||
	       (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

static void file_lock_release(struct file_lock *lk)
{
	pthread_mutex_lock(&file_locks_mutex);
	lk->held = false;
	if (--lk->users == 0) {
		for (struct file_lock **p = &file_locks; *p != NULL; p = &(*p)->next) {
			if (*p == lk) {
				*p = lk->next;
				break;
			}
		}
		pthread_cond_destroy(&lk->cond);
		free(lk);
	} else {
		pthread_cond_signal(&lk->cond);
	}
	pthread_mutex_unlock(&file_locks_mutex);
}

/* Take this process's lock on the file behind fd, then flock() it, both
 * within timeout_ms. Returns 0 with *lk_r, AUDIT_BUSY when the time ran out,
 * -1 on another error (in thread_error). */
static int file_lock_take(int fd, const char *path, unsigned timeout_ms, struct file_lock **lk_r,
                          const char **error_r)
{
	struct stat st;
	struct timespec deadline;
	struct file_lock *lk;
	int ret = 0;

	if (fstat(fd, &st) < 0)
		return fmt_error(thread_error, error_r, "audit log %s: stat: %s", path,
		                 strerror(errno));
	deadline_after(&deadline, timeout_ms);

	pthread_mutex_lock(&file_locks_mutex);
	for (lk = file_locks; lk != NULL; lk = lk->next)
		if (lk->dev == st.st_dev && lk->ino == st.st_ino)
			break;
	if (lk == NULL) {
		pthread_condattr_t attr;
		lk = calloc(1, sizeof(*lk));
		if (lk == NULL) {
			pthread_mutex_unlock(&file_locks_mutex);
			*error_r = "audit log: out of memory";
			return -1;
		}
		lk->dev = st.st_dev;
		lk->ino = st.st_ino;
		pthread_condattr_init(&attr);
		pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
		pthread_cond_init(&lk->cond, &attr);
		pthread_condattr_destroy(&attr);
		lk->next = file_locks;
		file_locks = lk;
	}
	lk->users++;
	while (lk->held && ret == 0)
		if (pthread_cond_timedwait(&lk->cond, &file_locks_mutex, &deadline) == ETIMEDOUT &&
		    lk->held)
			ret = AUDIT_BUSY;
	if (ret == 0)
		lk->held = true;
	else
		lk->users--; /* another thread holds it, so this is not the last user */
	pthread_mutex_unlock(&file_locks_mutex);
	if (ret != 0)
		goto busy;

	/* Other processes: poll, 1 ms doubling to 32 ms, until the deadline. */
	useconds_t pause = 1000;
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK) {
			int err = errno;
			file_lock_release(lk);
			return fmt_error(thread_error, error_r, "audit log %s: lock: %s", path,
			                 strerror(err));
		}
		if (deadline_passed(&deadline)) {
			file_lock_release(lk);
			ret = AUDIT_BUSY;
			goto busy;
		}
		usleep(pause);
		if (pause < 32000)
			pause *= 2;
	}
	*lk_r = lk;
	return 0;
busy:
	fmt_error(thread_error, error_r,
	          "audit log %s: busy (another writer held it for more than %u ms); try again",
	          path, timeout_ms);
	return AUDIT_BUSY;
}

/* Find the last line by reading backwards from the end; check it and take
 * its seq and hash as the head. */
static int read_tail(struct audit_log *log, const char *path, const char **error_r)
{
	char buf[AUDIT_MAX_ENTRY_SIZE + 1], storage[AUDIT_PARSE_STORAGE_SIZE];
	if (log->size == 0) {
		log->count = 0;
		memcpy(log->head, ZERO_HASH, AUDIT_HASH_HEX_SIZE);
		return 0;
	}
	off_t from = log->size > (off_t)sizeof(buf) ? log->size - (off_t)sizeof(buf) : 0;
	size_t want = (size_t)(log->size - from), got = 0;
	while (got < want) {
		ssize_t r = pread(log->fd, buf + got, want - got, from + (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return fmt_error(thread_error, error_r, "audit log %s: read: %s", path,
			                 r < 0 ? strerror(errno) : "file shrank");
		got += (size_t)r;
	}
	if (buf[want - 1] != '\n') {
		fmt_error(thread_error, error_r,
		          "audit log %s: last entry is incomplete (interrupted write?); "
		          "verify the log",
		          path);
		return AUDIT_TORN;
	}
	size_t start = want - 1;
	while (start > 0 && buf[start - 1] != '\n')
		start--;
	if (start == 0 && from != 0)
		return fmt_error(thread_error, error_r, "audit log %s: last line too long", path);

	struct audit_entry e;
	const char *why;
	int ret =
	    audit_check_line(buf + start, want - 1 - start, &e, storage, sizeof(storage), &why);
	if (ret < 0)
		return fmt_error(thread_error, error_r, "audit log %s: last entry: %s", path, why);
	if (ret > 0)
		return fmt_error(thread_error, error_r,
		                 "audit log %s: last entry: hash mismatch (entry edited)", path);
	log->count = e.seq;
	memcpy(log->head, e.hash, AUDIT_HASH_HEX_SIZE);
	return 0;
}

int audit_open(const char *path, struct audit_log **log_r, const char **error_r)
{
	return audit_open_wait(path, AUDIT_LOCK_TIMEOUT_MS, log_r, error_r);
}

int audit_open_wait(const char *path, unsigned timeout_ms, struct audit_log **log_r,
                    const char **error_r)
{
	int ret = -1;
	bool created = true;
	int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 && errno == EEXIST) {
		created = false;
		fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
	}
	if (fd < 0)
		return fmt_error(thread_error, error_r, "audit log %s: open: %s", path,
		                 strerror(errno));

	struct audit_log *log = calloc(1, sizeof(*log));
	if (log == NULL) {
		close(fd);
		*error_r = "audit log: out of memory";
		return -1;
	}
	log->fd = fd;
	log->clock = system_clock;

	struct stat st;
	ret = file_lock_take(fd, path, timeout_ms, &log->lock, error_r);
	if (ret < 0)
		goto fail;
	ret = -1;
	if (fstat(fd, &st) < 0) {
		fmt_error(thread_error, error_r, "audit log %s: stat: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		fmt_error(thread_error, error_r, "audit log %s: not a regular file", path);
		goto fail;
	}
	if ((st.st_mode & 077) != 0) {
		fmt_error(thread_error, error_r,
		          "audit log %s: mode %03o lets others in (must be 0600)", path,
		          (unsigned)(st.st_mode & 0777));
		goto fail;
	}
	if (created && sync_parent_dir(path, error_r) < 0)
		goto fail;
	log->size = st.st_size;
	ret = read_tail(log, path, error_r);
	if (ret < 0)
		goto fail;
	*log_r = log;
	return 0;
fail:
	audit_close(&log);
	return ret;
}

void audit_close(struct audit_log **log)
{
	if (log == NULL || *log == NULL)
		return;
	if ((*log)->fd >= 0)
		close((*log)->fd); /* also drops the flock */
	if ((*log)->lock != NULL)
		file_lock_release((*log)->lock);
	free(*log);
	*log = NULL;
}

void audit_set_clock(struct audit_log *log, audit_clock_func *clock, void *context)
{
	log->clock = clock != NULL ? clock : system_clock;
	log->clock_context = context;
}

void audit_head(const struct audit_log *log, uint64_t *count_r, char hash_r[AUDIT_HASH_HEX_SIZE])
{
	*count_r = log->count;
	memcpy(hash_r, log->head, AUDIT_HASH_HEX_SIZE);
}

/* Rules of particular events, enforced when writing only (so old logs stay
 * readable if a rule changes). */
static int check_event_rules(enum audit_event event, const struct audit_detail *details,
                             size_t n_details, const char **error_r)
{
	if (event != AUDIT_CREDENTIAL_DECRYPT)
		return 0;
	for (size_t i = 0; i < n_details; i++) {
		if (details[i].key != NULL && strcmp(details[i].key, "purpose") == 0 &&
		    details[i].value != NULL &&
		    (strcmp(details[i].value, "sync") == 0 ||
		     strcmp(details[i].value, "send") == 0 ||
		     strcmp(details[i].value, "test") == 0 ||
		     strcmp(details[i].value, "revoke") == 0))
			return 0;
	}
	*error_r = "credential.decrypt needs purpose sync, send, test or revoke";
	return -1;
}

/* After a failed write or sync: cut the file back to its last good end so
 * the log stays well formed, and refuse to append until reopened. */
static int append_failed(struct audit_log *log, const char *what, int err, const char **error_r)
{
	log->failed = true;
	bool cut = ftruncate(log->fd, log->size) == 0 && fdatasync(log->fd) == 0;
	return fmt_error(log->error, error_r, "audit log: %s: %s%s", what, strerror(err),
	                 cut ? "" : " (and the partial entry could not be removed)");
}

int audit_prepare(struct audit_log *log, enum audit_event event, const char *account,
                  const struct audit_detail *details, size_t n_details,
                  char hash_r[AUDIT_HASH_HEX_SIZE], const char **error_r)
{
	if (log->failed) {
		*error_r = "audit log: an earlier write failed; reopen the log";
		return -1;
	}
	if (n_details > AUDIT_MAX_DETAILS) {
		*error_r = "too many detail pairs";
		return -1;
	}
	if (log->count == UINT64_MAX) {
		*error_r = "audit log: seq exhausted";
		return -1;
	}
	if (check_event_rules(event, details, n_details, error_r) < 0)
		return -1;

	struct audit_entry e;
	memset(&e, 0, sizeof(e));
	e.seq = log->count + 1;
	e.time = (int64_t)log->clock(log->clock_context);
	e.event = event;
	e.account = account;
	e.n_details = n_details;
	for (size_t i = 0; i < n_details; i++)
		e.details[i] = details[i];
	memcpy(e.prev, log->head, AUDIT_HASH_HEX_SIZE);

	char hash[AUDIT_HASH_HEX_SIZE];
	size_t len;
	log->prepared = false;
	if (audit_format_line(&e, log->line, sizeof(log->line), &len, hash, error_r) < 0)
		return -1;
	log->line_len = len;
	log->prepared_seq = e.seq;
	memcpy(log->prepared_hash, hash, AUDIT_HASH_HEX_SIZE);
	log->prepared = true;
	memcpy(hash_r, hash, AUDIT_HASH_HEX_SIZE);
	return 0;
}

int audit_write_prepared(struct audit_log *log, const char **error_r)
{
	if (log->failed) {
		*error_r = "audit log: an earlier write failed; reopen the log";
		return -1;
	}
	if (!log->prepared) {
		*error_r = "audit log: no entry prepared";
		return -1;
	}
	log->prepared = false;

	/* We hold the lock, so the file can only have changed if someone
	 * ignored it; refuse rather than fork the chain. */
	struct stat st;
	if (fstat(log->fd, &st) < 0)
		return fmt_error(log->error, error_r, "audit log: stat: %s", strerror(errno));
	if (st.st_size != log->size) {
		log->failed = true;
		*error_r = "audit log: the file was changed by someone else; reopen the log";
		return -1;
	}

	size_t done = 0, len = log->line_len;
	while (done < len) {
		ssize_t w = write(log->fd, log->line + done, len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return append_failed(log, "write", w < 0 ? errno : EIO, error_r);
		done += (size_t)w;
	}
	if (fdatasync(log->fd) < 0)
		return append_failed(log, "fdatasync", errno, error_r);
	crashpoint_commit();
	log->size += (off_t)len;
	log->count = log->prepared_seq;
	memcpy(log->head, log->prepared_hash, AUDIT_HASH_HEX_SIZE);
	return 0;
}

int audit_append(struct audit_log *log, enum audit_event event, const char *account,
                 const struct audit_detail *details, size_t n_details, const char **error_r)
{
	char hash[AUDIT_HASH_HEX_SIZE];
	if (audit_prepare(log, event, account, details, n_details, hash, error_r) < 0)
		return -1;
	return audit_write_prepared(log, error_r);
}

int audit_iter_init(const char *path, struct audit_iter **it_r, const char **error_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return fmt_error(thread_error, error_r, "audit log %s: open: %s", path,
		                 strerror(errno));
	struct audit_iter *it = malloc(sizeof(*it));
	if (it == NULL) {
		close(fd);
		*error_r = "audit log: out of memory";
		return -1;
	}
	it->fd = fd;
	it->line_no = 0;
	it->count = 0;
	memcpy(it->prev, ZERO_HASH, AUDIT_HASH_HEX_SIZE);
	it->eof = it->done = it->failed = it->torn = false;
	it->offset = 0;
	it->start = it->len = 0;
	it->error[0] = '\0';
	*it_r = it;
	return 0;
}

static bool iter_fail(struct audit_iter *it, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static bool iter_fail(struct audit_iter *it, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(it->error, sizeof(it->error), fmt, ap);
	va_end(ap);
	it->failed = it->done = true;
	return false;
}

/* Find the next complete line in the buffer, reading more as needed.
 * Returns true with *line_r and *len_r (without "\n"), false at the end or on
 * an error (it->failed). */
static bool iter_read_line(struct audit_iter *it, const char **line_r, size_t *len_r)
{
	uint64_t line_no = it->line_no + 1;
	for (;;) {
		char *nl = memchr(it->buf + it->start, '\n', it->len - it->start);
		if (nl != NULL) {
			size_t n = (size_t)(nl - (it->buf + it->start));
			if (n + 1 > AUDIT_MAX_ENTRY_SIZE)
				return iter_fail(it, "line %" PRIu64 ": longer than %d bytes",
				                 line_no, AUDIT_MAX_ENTRY_SIZE);
			*line_r = it->buf + it->start;
			*len_r = n;
			it->start += n + 1;
			it->offset += n + 1;
			it->line_no = line_no;
			return true;
		}
		if (it->len - it->start >= AUDIT_MAX_ENTRY_SIZE)
			return iter_fail(it, "line %" PRIu64 ": longer than %d bytes", line_no,
			                 AUDIT_MAX_ENTRY_SIZE);
		if (it->eof) {
			if (it->len == it->start) {
				it->done = true;
				return false;
			}
			it->torn = true;
			return iter_fail(it,
			                 "line %" PRIu64 ": incomplete, no newline at the end of "
			                 "the file (interrupted write or truncated)",
			                 line_no);
		}
		memmove(it->buf, it->buf + it->start, it->len - it->start);
		it->len -= it->start;
		it->start = 0;
		ssize_t r = read(it->fd, it->buf + it->len, sizeof(it->buf) - it->len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return iter_fail(it, "line %" PRIu64 ": read: %s", line_no,
			                 strerror(errno));
		if (r == 0)
			it->eof = true;
		it->len += (size_t)r;
	}
}

bool audit_iter_next(struct audit_iter *it, struct audit_entry *entry_r)
{
	const char *line = NULL, *why;
	size_t len = 0;
	struct audit_entry e;

	if (it->done || !iter_read_line(it, &line, &len))
		return false;
	uint64_t n = it->line_no;
	int ret = audit_check_line(line, len, &e, it->storage, sizeof(it->storage), &why);
	if (ret < 0)
		return iter_fail(it, "line %" PRIu64 ": %s", n, why);
	if (ret > 0)
		return iter_fail(it, "line %" PRIu64 ": hash mismatch (entry edited)", n);
	if (e.seq != it->count + 1)
		return iter_fail(it,
		                 "line %" PRIu64 ": seq %" PRIu64 " expected %" PRIu64
		                 " (entry dropped, duplicated or reordered)",
		                 n, e.seq, it->count + 1);
	if (strcmp(e.prev, it->prev) != 0)
		return iter_fail(it,
		                 "line %" PRIu64 ": prev does not match the hash of the entry "
		                 "before (entry replaced or inserted)",
		                 n);
	it->count = e.seq;
	memcpy(it->prev, e.hash, AUDIT_HASH_HEX_SIZE);
	*entry_r = e;
	return true;
}

int audit_iter_deinit(struct audit_iter **it, const char **error_r)
{
	if (it == NULL || *it == NULL)
		return 0;
	int ret = 0;
	if ((*it)->failed) {
		ret = fmt_error(thread_error, error_r, "%s", (*it)->error);
	}
	close((*it)->fd);
	free(*it);
	*it = NULL;
	return ret;
}

int audit_verify(const char *path, const char *expected_head_hash, uint64_t expected_count,
                 uint64_t *count_r, const char **error_r)
{
	struct audit_iter *it;
	struct audit_entry e;
	uint64_t head_seen_at = 0;
	char last[AUDIT_HASH_HEX_SIZE] = ZERO_HASH;

	if (audit_iter_init(path, &it, error_r) < 0)
		return -1;
	while (audit_iter_next(it, &e)) {
		if (expected_head_hash != NULL && strcmp(e.hash, expected_head_hash) == 0)
			head_seen_at = e.seq;
		memcpy(last, e.hash, AUDIT_HASH_HEX_SIZE);
	}
	uint64_t count = it->count;
	if (audit_iter_deinit(&it, error_r) < 0)
		return -1;

	if (expected_count != 0 && count < expected_count)
		return fmt_error(thread_error, error_r,
		                 "log ends at entry %" PRIu64 " but the hub recorded %" PRIu64
		                 " entries (tail truncated)",
		                 count, expected_count);
	if (expected_count != 0 && count > expected_count)
		return fmt_error(thread_error, error_r,
		                 "log has %" PRIu64 " entries but the hub recorded %" PRIu64
		                 " (entries added after the recorded head)",
		                 count, expected_count);
	if (expected_head_hash != NULL && strcmp(last, expected_head_hash) != 0) {
		if (head_seen_at != 0)
			return fmt_error(thread_error, error_r,
			                 "the hub's recorded head is entry %" PRIu64
			                 " but the log continues to entry %" PRIu64
			                 " (entries added after the recorded head)",
			                 head_seen_at, count);
		return fmt_error(thread_error, error_r,
		                 "the hub's recorded head hash is not in the log, which ends at "
		                 "entry %" PRIu64 " (tail truncated or log rewritten)",
		                 count);
	}
	if (count_r != NULL)
		*count_r = count;
	return 0;
}

int audit_scan(const char *path, struct audit_state *state_r, const char **error_r)
{
	struct audit_iter *it;
	struct audit_entry e;
	struct audit_state st;

	memset(&st, 0, sizeof(st));
	memcpy(st.head, ZERO_HASH, AUDIT_HASH_HEX_SIZE);
	if (audit_iter_init(path, &it, error_r) < 0)
		return -1;
	while (audit_iter_next(it, &e))
		;
	st.count = it->count;
	memcpy(st.head, it->prev, AUDIT_HASH_HEX_SIZE);
	st.complete_size = it->offset;
	st.torn = it->torn;
	if (it->torn)
		it->failed = false; /* reported in the state, not as an error */
	if (audit_iter_deinit(&it, error_r) < 0)
		return -1;
	*state_r = st;
	return 0;
}

int audit_trim_torn(const char *path, uint64_t expected_count, const char *expected_head_hash,
                    const char **error_r)
{
	struct file_lock *lk = NULL;
	struct audit_state st;
	int ret;
	int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return fmt_error(thread_error, error_r, "audit log %s: open: %s", path,
		                 strerror(errno));
	ret = file_lock_take(fd, path, AUDIT_LOCK_TIMEOUT_MS, &lk, error_r);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	ret = audit_scan(path, &st, error_r);
	if (ret == 0 && !st.torn) {
		ret = 0;
	} else if (ret == 0 &&
	           (st.count != expected_count || strcmp(st.head, expected_head_hash) != 0)) {
		ret = fmt_error(thread_error, error_r,
		                "audit log %s: an incomplete line follows entry %" PRIu64
		                ", which is not the recorded head (entry %" PRIu64 ")",
		                path, st.count, expected_count);
	} else if (ret == 0) {
		if (ftruncate(fd, (off_t)st.complete_size) < 0 || fdatasync(fd) < 0)
			ret = fmt_error(thread_error, error_r,
			                "audit log %s: cannot remove the incomplete line: %s", path,
			                strerror(errno));
		else
			ret = 1;
	}
	close(fd);
	file_lock_release(lk);
	return ret;
}
