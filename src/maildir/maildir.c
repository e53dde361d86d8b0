#include "maildir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "../lib/buf.h"

#define MAX_KW_LETTERS 26

static char export_error[1024];

static int export_fail(const char **error_r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int export_fail(const char **error_r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(export_error, sizeof(export_error), fmt, ap);
	va_end(ap);
	*error_r = export_error;
	return -1;
}

static int mkdir_p(const char *path, const char **error_r)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return export_fail(error_r, "cannot create %s: %m", path);
	return 0;
}

static int make_maildir(const char *dir, const char **error_r)
{
	char sub[4096];
	if (mkdir_p(dir, error_r) < 0)
		return -1;
	static const char *const subs[] = {"cur", "new", "tmp"};
	for (int i = 0; i < 3; i++) {
		if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", dir, subs[i]) >= sizeof(sub))
			return export_fail(error_r, "path too long: %s", dir);
		if (mkdir_p(sub, error_r) < 0)
			return -1;
	}
	return 0;
}

/* Maildir++ folder directory name for a server name: ".A.B". */
static int folder_dir_name(const struct store_mailbox *b, struct buf *out)
{
	buf_reset(out);
	if (buf_append_str(out, ".") < 0)
		return -1;
	for (const char *p = b->name; *p != '\0'; p++) {
		char c = *p;
		if (b->delim != 0 && c == b->delim)
			c = '.';
		else if (c == '.' || c == '/')
			c = '_';
		if (buf_append(out, &c, 1) < 0)
			return -1;
	}
	return 0;
}

struct kw_map {
	char *names[MAX_KW_LETTERS];
	unsigned count;
};

static char kw_letter(struct kw_map *m, const char *kw, size_t len)
{
	for (unsigned i = 0; i < m->count; i++)
		if (strlen(m->names[i]) == len && memcmp(m->names[i], kw, len) == 0)
			return (char)('a' + i);
	if (m->count == MAX_KW_LETTERS)
		return 0;
	m->names[m->count] = strndup(kw, len);
	if (m->names[m->count] == NULL)
		return 0;
	return (char)('a' + m->count++);
}

static int flag_suffix(unsigned flags, const char *keywords, struct kw_map *kw, char *out,
		       size_t size)
{
	/* Maildir info letters must be in ASCII order. */
	size_t n = 0;
	char letters[64];
	if (flags & STORE_FLAG_DRAFT)
		letters[n++] = 'D';
	if (flags & STORE_FLAG_FLAGGED)
		letters[n++] = 'F';
	if (flags & STORE_FLAG_ANSWERED)
		letters[n++] = 'R';
	if (flags & STORE_FLAG_SEEN)
		letters[n++] = 'S';
	if (flags & STORE_FLAG_DELETED)
		letters[n++] = 'T';
	bool used[MAX_KW_LETTERS] = {false};
	for (const char *p = keywords; *p != '\0';) {
		size_t len = strcspn(p, " ");
		char c = len > 0 ? kw_letter(kw, p, len) : 0;
		if (c != 0)
			used[c - 'a'] = true;
		p += len;
		while (*p == ' ')
			p++;
	}
	for (int i = 0; i < MAX_KW_LETTERS; i++)
		if (used[i])
			letters[n++] = (char)('a' + i);
	if (n + 1 > size)
		return -1;
	memcpy(out, letters, n);
	out[n] = '\0';
	return 0;
}

static int write_message(struct store *s, const struct store_msg *m, const char *path,
			 const char **error_r)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return export_fail(error_r, "cannot create %s: %m", path);
	char chunk[65536];
	const char *err;
	for (uint64_t off = 0; off < m->size;) {
		size_t n = m->size - off < sizeof(chunk) ? (size_t)(m->size - off) : sizeof(chunk);
		if (store_blob_read(s, m->blob_id, off, chunk, n, &err) < 0) {
			close(fd);
			return export_fail(error_r, "%s", err);
		}
		for (size_t done = 0; done < n;) {
			ssize_t w = write(fd, chunk + done, n - done);
			if (w < 0) {
				close(fd);
				return export_fail(error_r, "cannot write %s: %m", path);
			}
			done += (size_t)w;
		}
		off += n;
	}
	struct timespec times[2] = {{m->internaldate, 0}, {m->internaldate, 0}};
	futimens(fd, times);
	if (close(fd) < 0)
		return export_fail(error_r, "cannot write %s: %m", path);
	return 0;
}

static int write_keywords(const char *dir, const struct kw_map *kw, const char **error_r)
{
	if (kw->count == 0)
		return 0;
	char path[4096];
	snprintf(path, sizeof(path), "%s/dovecot-keywords", dir);
	FILE *f = fopen(path, "w");
	if (f == NULL)
		return export_fail(error_r, "cannot create %s: %m", path);
	for (unsigned i = 0; i < kw->count; i++)
		fprintf(f, "%u %s\n", i, kw->names[i]);
	if (fclose(f) != 0)
		return export_fail(error_r, "cannot write %s: %m", path);
	return 0;
}

/* Write one mailbox's messages into dir. kw is the keyword letter map of
 * that directory, shared by every mailbox exported into it. */
static int export_folder(struct store *s, const struct store_mailbox *b, const char *dir,
			 struct kw_map *kw, struct maildir_export_stats *stats,
			 const char **error_r)
{
	const char *err;
	struct store_iter *it;
	struct store_msg m;
	int r = 0;
	if (make_maildir(dir, error_r) < 0)
		return -1;
	if (store_iter_init(s, b->id, &it, &err) < 0)
		return export_fail(error_r, "%s", err);
	while (r == 0 && store_iter_next(it, &m)) {
		char flags[64], path[4200];
		if (flag_suffix(m.flags, m.keywords, kw, flags, sizeof(flags)) < 0) {
			r = export_fail(error_r, "too many flags");
			break;
		}
		int n = snprintf(path, sizeof(path), "%s/cur/%lld.M%uP%lld.mailkeep,S=%llu:2,%s",
				 dir, (long long)m.internaldate, m.uid, (long long)b->id,
				 (unsigned long long)m.size, flags);
		if (n < 0 || (size_t)n >= sizeof(path))
			r = export_fail(error_r, "path too long in %s", dir);
		else
			r = write_message(s, &m, path, error_r);
		stats->messages++;
		stats->bytes += m.size;
	}
	if (store_iter_deinit(&it, &err) < 0 && r == 0)
		r = export_fail(error_r, "%s", err);
	return r;
}

static void kw_map_clear(struct kw_map *kw)
{
	for (unsigned i = 0; i < kw->count; i++)
		free(kw->names[i]);
	kw->count = 0;
}

static bool dir_is_empty_or_missing(const char *path)
{
	DIR *d = opendir(path);
	if (d == NULL)
		return errno == ENOENT;
	struct dirent *e;
	bool empty = true;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			empty = false;
	closedir(d);
	return empty;
}

int maildir_export(struct store *s, const char *out_dir, struct maildir_export_stats *stats_r,
		   const char **error_r)
{
	const char *err;
	struct store_mailbox *boxes = NULL;
	size_t count = 0;
	memset(stats_r, 0, sizeof(*stats_r));
	if (!dir_is_empty_or_missing(out_dir))
		return export_fail(error_r, "%s exists and is not empty; refusing to mix exports",
				   out_dir);
	if (make_maildir(out_dir, error_r) < 0)
		return -1;
	if (store_mailboxes_all(s, &boxes, &count, &err) < 0)
		return export_fail(error_r, "%s", err);
	struct buf name, path, subs;
	buf_init(&name, 4096);
	buf_init(&path, 8192);
	buf_init(&subs, 1024 * 1024);
	/* Mailboxes of several accounts with the same name (each account's
	 * INBOX, Sent, ...) are merged into one folder: the hub's one view. */
	struct buf prev;
	buf_init(&prev, 8192);
	struct kw_map kw = {.count = 0};
	int r = 0;
	for (size_t i = 0; i < count && r == 0; i++) {
		buf_reset(&path);
		bool inbox = strcmp(boxes[i].name, "INBOX") == 0;
		if (inbox) {
			r = buf_append_str(&path, out_dir);
		} else {
			r = folder_dir_name(&boxes[i], &name);
			if (r == 0)
				r = buf_printf(&path, "%s/%s", out_dir, buf_str(&name));
		}
		if (r < 0) {
			r = export_fail(error_r, "folder name too long: %s", boxes[i].name);
			break;
		}
		bool same_dir = prev.len > 0 && strcmp(buf_str(&prev), buf_str(&path)) == 0;
		if (!same_dir) {
			if (prev.len > 0 && (r = write_keywords(buf_str(&prev), &kw, error_r)) < 0)
				break;
			kw_map_clear(&kw);
			buf_reset(&prev);
			buf_append_str(&prev, buf_str(&path));
			stats_r->folders++;
			if (!inbox && buf_printf(&subs, "%s\n", buf_str(&name) + 1) < 0)
				r = export_fail(error_r, "too many folders");
		}
		if (r == 0)
			r = export_folder(s, &boxes[i], buf_str(&path), &kw, stats_r, error_r);
	}
	if (r == 0 && prev.len > 0)
		r = write_keywords(buf_str(&prev), &kw, error_r);
	kw_map_clear(&kw);
	buf_free(&prev);
	if (r == 0) {
		buf_reset(&path);
		buf_printf(&path, "%s/subscriptions", out_dir);
		FILE *f = fopen(buf_str(&path), "w");
		if (f == NULL || fwrite(subs.data != NULL ? subs.data : (unsigned char *)"", 1,
					subs.len, f) != subs.len) {
			r = export_fail(error_r, "cannot write %s: %m", buf_str(&path));
		}
		if (f != NULL && fclose(f) != 0 && r == 0)
			r = export_fail(error_r, "cannot write %s: %m", buf_str(&path));
	}
	buf_free(&name);
	buf_free(&path);
	buf_free(&subs);
	store_mailboxes_free(&boxes, count);
	return r;
}
