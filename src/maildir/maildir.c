#include "maildir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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

/*
 * Maildir++ folder directory name for a server name: ".A.B", every distinct
 * name to a distinct directory. The server's hierarchy delimiter becomes '.';
 * a literal '.', '/' or '\' in a name, and a '~' that starts it, become
 * "\NN" (two lower-case hex digits), which is how Dovecot's listescape plugin
 * (storage escape character '\') stores them, so Dovecot with that plugin
 * reads the directory back to the same name. INBOX is not named here.
 */
static int folder_dir_name(const struct store_mailbox *b, struct buf *out)
{
	buf_reset(out);
	if (buf_append_str(out, ".") < 0)
		return -1;
	for (const char *p = b->name; *p != '\0'; p++) {
		char c = *p;
		int r;
		if (b->delim != 0 && c == b->delim)
			r = buf_append(out, ".", 1);
		else if (c == '.' || c == '/' || c == '\\' || (c == '~' && p == b->name))
			r = buf_printf(out, "\\%02x", (unsigned char)c);
		else
			r = buf_append(out, &c, 1);
		if (r < 0)
			return -1;
	}
	return 0;
}

struct kw_map {
	char *names[MAX_KW_LETTERS];
	unsigned count;
};

/* Letter of a keyword in the folder's map, adding it while there is room.
 * Returns the letter, 0 when all 26 are taken by other keywords, or -1 when
 * memory runs out. */
static int kw_letter(struct kw_map *m, const char *kw, size_t len)
{
	for (unsigned i = 0; i < m->count; i++)
		if (strlen(m->names[i]) == len && memcmp(m->names[i], kw, len) == 0)
			return 'a' + (int)i;
	if (m->count == MAX_KW_LETTERS)
		return 0;
	m->names[m->count] = strndup(kw, len);
	if (m->names[m->count] == NULL)
		return -1;
	return 'a' + (int)m->count++;
}

/* What an export could not write (see maildir.h). */
#define MAX_UNWRITTEN_TEXT (4u * 1024 * 1024)

static void note_unwritten(struct maildir_export_stats *stats, const struct store_mailbox *b,
                           uint32_t uid, const char *file, const char *kw, size_t kw_len)
{
	stats->keywords_unwritten++;
	if (stats->unwritten.max == 0)
		buf_init(&stats->unwritten, MAX_UNWRITTEN_TEXT);
	if (buf_printf(&stats->unwritten, "folder \"%s\" uid %u (%s): keyword \"%.*s\"\n", b->name,
	               uid, file, (int)kw_len, kw) < 0)
		stats->unwritten_truncated = true;
}

/* Info letters for the file name. Keywords that get no letter (the folder's
 * 26 are taken) are returned for the caller to report with the file name:
 * *lost_count_r is their number, the first lost_max of them are in lost_r
 * (pointers into keywords) and lost_len_r. Returns 0, or -1 if out of
 * memory or room. */
static int flag_suffix(unsigned flags, const char *keywords, struct kw_map *kw, char *out,
                       size_t size, const char **lost_r, size_t *lost_len_r, size_t *lost_count_r,
                       size_t lost_max)
{
	/* Maildir info letters must be in ASCII order. */
	size_t n = 0;
	char letters[64];
	*lost_count_r = 0;
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
		if (len > 0) {
			int c = kw_letter(kw, p, len);
			if (c < 0)
				return -1;
			if (c != 0) {
				used[c - 'a'] = true;
			} else {
				if (*lost_count_r < lost_max) {
					lost_r[*lost_count_r] = p;
					lost_len_r[*lost_count_r] = len;
				}
				(*lost_count_r)++;
			}
		}
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
	if ((size_t)snprintf(path, sizeof(path), "%s/dovecot-keywords", dir) >= sizeof(path))
		return export_fail(error_r, "path too long: %s", dir);
	FILE *f = fopen(path, "wx");
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
		const char *lost[256];
		size_t lost_len[256], lost_count;
		if (flag_suffix(m.flags, m.keywords, kw, flags, sizeof(flags), lost, lost_len,
		                &lost_count, 256) < 0) {
			r = export_fail(error_r, "out of memory for the keywords of %s", dir);
			break;
		}
		int n = snprintf(path, sizeof(path), "%s/cur/%lld.M%uP%lld.mailkeep,S=%llu:2,%s",
		                 dir, (long long)m.internaldate, m.uid, (long long)b->id,
		                 (unsigned long long)m.size, flags);
		if (n < 0 || (size_t)n >= sizeof(path))
			r = export_fail(error_r, "path too long in %s", dir);
		else
			r = write_message(s, &m, path, error_r);
		for (size_t i = 0; r == 0 && i < lost_count && i < 256; i++)
			note_unwritten(stats, b, m.uid, path, lost[i], lost_len[i]);
		if (r == 0 && lost_count > 256) {
			stats->keywords_unwritten += lost_count - 256;
			stats->unwritten_truncated = true;
		}
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

/* A mailbox and the directory it goes to ("" for INBOX: the root). */
struct export_slot {
	char *dir;
	size_t box;
	int64_t id;
};

static int slot_cmp(const void *a, const void *b)
{
	const struct export_slot *x = a, *y = b;
	int c = strcmp(x->dir, y->dir);
	if (c != 0)
		return c;
	return x->id < y->id ? -1 : x->id > y->id;
}

void maildir_export_stats_free(struct maildir_export_stats *stats)
{
	buf_free(&stats->unwritten);
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
	/* Mailboxes that cannot hold mail (noselect: a server's \Noselect
	 * folder or unlisted parent) get no directory: Maildir++ needs none
	 * for a parent. */
	size_t kept = 0;
	for (size_t i = 0; i < count; i++) {
		if (boxes[i].noselect) {
			free(boxes[i].name);
			free(boxes[i].role);
			continue;
		}
		boxes[kept++] = boxes[i];
	}
	count = kept;
	struct export_slot *slots = calloc(count > 0 ? count : 1, sizeof(*slots));
	if (slots == NULL) {
		store_mailboxes_free(&boxes, count);
		return export_fail(error_r, "out of memory");
	}
	struct buf name, path, subs;
	buf_init(&name, 4096);
	buf_init(&path, 8192);
	buf_init(&subs, 1024 * 1024);
	int r = 0;
	for (size_t i = 0; i < count && r == 0; i++) {
		slots[i].box = i;
		slots[i].id = boxes[i].id;
		if (strcasecmp(boxes[i].name, "INBOX") == 0)
			slots[i].dir = strdup("");
		else if (folder_dir_name(&boxes[i], &name) == 0)
			slots[i].dir = strdup(buf_str(&name));
		else
			r = export_fail(error_r, "folder name too long: %s", boxes[i].name);
		if (r == 0 && slots[i].dir == NULL)
			r = export_fail(error_r, "out of memory");
	}
	/* Mailboxes that go to the same directory are exported one after the
	 * other, sharing its keyword map: mailboxes of several accounts with the
	 * same name (each account's INBOX, Sent, ...) are one folder, the hub's
	 * one view. Distinct names never share a directory (folder_dir_name). */
	if (r == 0)
		qsort(slots, count, sizeof(*slots), slot_cmp);
	struct kw_map kw = {.count = 0};
	for (size_t i = 0; i < count && r == 0; i++) {
		const struct store_mailbox *b = &boxes[slots[i].box];
		bool inbox = slots[i].dir[0] == '\0';
		bool new_dir = i == 0 || strcmp(slots[i - 1].dir, slots[i].dir) != 0;
		buf_reset(&path);
		if ((inbox ? buf_append_str(&path, out_dir)
		           : buf_printf(&path, "%s/%s", out_dir, slots[i].dir)) < 0) {
			r = export_fail(error_r, "folder name too long: %s", b->name);
			break;
		}
		if (new_dir) {
			kw_map_clear(&kw);
			stats_r->folders++;
			if (!inbox && buf_printf(&subs, "%s\n", slots[i].dir + 1) < 0)
				r = export_fail(error_r, "too many folders");
		}
		if (r == 0)
			r = export_folder(s, b, buf_str(&path), &kw, stats_r, error_r);
		bool last_of_dir = i + 1 == count || strcmp(slots[i + 1].dir, slots[i].dir) != 0;
		if (r == 0 && last_of_dir)
			r = write_keywords(buf_str(&path), &kw, error_r);
	}
	kw_map_clear(&kw);
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
	for (size_t i = 0; i < count; i++)
		free(slots[i].dir);
	free(slots);
	buf_free(&name);
	buf_free(&path);
	buf_free(&subs);
	store_mailboxes_free(&boxes, count);
	if (r < 0)
		maildir_export_stats_free(stats_r);
	return r;
}
