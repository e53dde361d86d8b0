/* Tests for the audit log: exact line format and hash, the chain across
 * reopen, detection of every single-byte edit, dropped, swapped, duplicated
 * and replaced lines, a truncated tail, escaping of hostile values, bounds,
 * and file mode. */
#include "audit/audit-private.h"

#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"

#define T0 1795794001 /* 2026-11-27T15:40:01Z */
#define ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"

static char dir[64];
static const char *error;

static time_t test_clock(void *context)
{
	time_t *now = context;
	return (*now)++;
}

static void path_in_dir(char *out, size_t size, const char *name)
{
	CHECK((size_t)snprintf(out, size, "%s/%s", dir, name) < size);
}

static size_t read_file(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "rb");
	CHECK(f != NULL);
	size_t n = fread(buf, 1, size, f);
	CHECK(n < size);
	fclose(f);
	return n;
}

static void write_file(const char *path, const char *buf, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK(write(fd, buf, n) == (ssize_t)n);
	close(fd);
}

/* Split a file into at most 16 lines (pointers into buf, with "\n"). */
static size_t split_lines(char *buf, size_t n, const char *lines[16], size_t lens[16])
{
	size_t count = 0, start = 0;
	for (size_t i = 0; i < n; i++) {
		if (buf[i] == '\n') {
			CHECK(count < 16);
			lines[count] = buf + start;
			lens[count++] = i + 1 - start;
			start = i + 1;
		}
	}
	return count;
}

/* Write the lines of src in the given order (indexes, -1 ends) to dst. */
static void rewrite_lines(const char *src, const char *dst, const int *order)
{
	static char buf[65536], out[65536];
	const char *lines[16];
	size_t lens[16], n = read_file(src, buf, sizeof(buf)), len = 0;
	size_t count = split_lines(buf, n, lines, lens);
	for (; *order >= 0; order++) {
		CHECK((size_t)*order < count);
		memcpy(out + len, lines[*order], lens[*order]);
		len += lens[*order];
	}
	write_file(dst, out, len);
}

static void test_time(void)
{
	char t[21];
	CHECK(audit_format_time(0, t) == 0 && strcmp(t, "1970-01-01T00:00:00Z") == 0);
	CHECK(audit_format_time(-1, t) == 0 && strcmp(t, "1969-12-31T23:59:59Z") == 0);
	CHECK(audit_format_time(951827696, t) == 0 && strcmp(t, "2000-02-29T12:34:56Z") == 0);
	CHECK(audit_format_time(T0, t) == 0 && strcmp(t, "2026-11-27T15:40:01Z") == 0);
	CHECK(audit_format_time(253402300799LL, t) == 0 && strcmp(t, "9999-12-31T23:59:59Z") == 0);
	CHECK(audit_format_time(-62167219200LL, t) == 0 && strcmp(t, "0000-01-01T00:00:00Z") == 0);
	CHECK(audit_format_time(253402300800LL, t) == -1);
	CHECK(audit_format_time(-62167219201LL, t) == -1);
}

/* The first entry, byte for byte, and its hash computed independently. */
static void test_exact_line(const char *path)
{
	static const char canonical[] =
	    "{\"seq\":1,\"time\":\"2026-11-27T15:40:01Z\",\"event\":\"credential.decrypt\","
	    "\"account\":\"3\",\"detail\":{\"purpose\":\"sync\",\"server\":\"imap.example.com\"},"
	    "\"prev\":\"" ZERO_HASH "\"}";
	unsigned char h[32];
	char hex[65], want[1024], buf[65536];
	crypto_hash_sha256(h, (const unsigned char *)canonical, strlen(canonical));
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", h[i]);
	snprintf(want, sizeof(want), "%.*s,\"hash\":\"%s\"}\n", (int)strlen(canonical) - 1,
	         canonical, hex);
	size_t n = read_file(path, buf, sizeof(buf));
	CHECK(n > strlen(want) && memcmp(buf, want, strlen(want)) == 0);

	/* The shell check documented in audit.h gives the same hash. */
	char cmd[512], out[128] = "";
	snprintf(cmd, sizeof(cmd),
	         "head -n 1 '%s' | sed 's/,\"hash\":\"[0-9a-f]*\"}$/}/' | tr -d '\\n' | sha256sum",
	         path);
	FILE *p = popen(cmd, "r");
	CHECK(p != NULL);
	CHECK(fgets(out, sizeof(out), p) != NULL);
	pclose(p);
	CHECK(strncmp(out, hex, 64) == 0);
}

/* Build the five-entry log used by the damage tests: three entries, close,
 * reopen (the chain continues from the tail), two more. */
static void make_log(const char *path, uint64_t *count_r, char head_r[AUDIT_HASH_HEX_SIZE])
{
	struct audit_log *log = NULL;
	time_t now = T0;
	uint64_t count;
	char head[AUDIT_HASH_HEX_SIZE], head2[AUDIT_HASH_HEX_SIZE];
	const struct audit_detail decrypt[] = {{"purpose", "sync"}, {"server", "imap.example.com"}};
	const struct audit_detail login[] = {
	    {"server", "imap.example.com"}, {"mechanism", "PLAIN"}, {"result", "ok"}};

	unlink(path);
	OK(audit_open(path, &log, &error));
	audit_set_clock(log, test_clock, &now);
	audit_head(log, &count, head);
	CHECK(count == 0 && strcmp(head, ZERO_HASH) == 0);
	OK(audit_append(log, AUDIT_CREDENTIAL_DECRYPT, "3", decrypt, 2, &error));
	OK(audit_append(log, AUDIT_PROVIDER_LOGIN, "3", login, 3, &error));
	OK(audit_append(log, AUDIT_USER_SIGNIN, NULL, NULL, 0, &error));
	audit_head(log, &count, head);
	CHECK(count == 3 && strcmp(head, ZERO_HASH) != 0);

	/* One writer at a time: a second one waits, and fails as busy only
	 * when the wait runs out. */
	struct audit_log *other = NULL;
	error = NULL;
	CHECK(audit_open_wait(path, 50, &other, &error) == AUDIT_BUSY);
	CHECK(error != NULL && strstr(error, "busy") != NULL);
	CHECK(other == NULL);
	audit_close(&log);
	CHECK(log == NULL);
	audit_close(&log);

	OK(audit_open(path, &log, &error));
	audit_set_clock(log, test_clock, &now);
	audit_head(log, &count, head2);
	CHECK(count == 3 && strcmp(head, head2) == 0);
	const struct audit_detail warn[] = {{"reason", "inactive"}, {"due", "2027-01-01"}};
	OK(audit_append(log, AUDIT_LIFECYCLE_WARNING, "3", warn, 2, &error));
	OK(audit_append(log, AUDIT_ACCOUNT_REMOVED, "3", NULL, 0, &error));
	audit_head(log, count_r, head_r);
	CHECK(*count_r == 5);
	audit_close(&log);
}

static void test_chain(const char *path, uint64_t count, const char *head)
{
	struct stat st;
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);

	uint64_t n = 0;
	OK(audit_verify(path, NULL, 0, &n, &error));
	CHECK(n == 5);
	OK(audit_verify(path, head, count, NULL, &error));

	struct audit_iter *it;
	struct audit_entry e;
	static const char *const events[] = {"credential.decrypt", "provider.login", "user.signin",
	                                     "lifecycle.warning", "account.removed"};
	OK(audit_iter_init(path, &it, &error));
	for (uint64_t i = 1; i <= 5; i++) {
		CHECK(audit_iter_next(it, &e));
		CHECK(e.seq == i && e.time == (int64_t)(T0 + i - 1));
		CHECK(strcmp(e.event_name, events[i - 1]) == 0);
		CHECK(strcmp(e.account, i == 3 ? "" : "3") == 0);
		if (i == 2) {
			CHECK(e.event == AUDIT_PROVIDER_LOGIN && e.n_details == 3);
			CHECK(strcmp(e.details[1].key, "mechanism") == 0);
			CHECK(strcmp(e.details[1].value, "PLAIN") == 0);
		}
	}
	CHECK(strcmp(e.hash, head) == 0);
	CHECK(!audit_iter_next(it, &e));
	OK(audit_iter_deinit(&it, &error));
	CHECK(it == NULL);
}

/* Every single-byte change anywhere in the file is detected, without any
 * head from the caller. */
static void test_every_byte(const char *path)
{
	static char orig[65536], copy[65536];
	char bad[256];
	static const unsigned char masks[] = {0x01, 0x02, 0x20, 0x80, 0xff};
	size_t n = read_file(path, orig, sizeof(orig)), checked = 0;
	path_in_dir(bad, sizeof(bad), "flipped.log");
	for (size_t pos = 0; pos < n; pos++) {
		for (size_t m = 0; m < sizeof(masks); m++) {
			memcpy(copy, orig, n);
			copy[pos] = (char)(copy[pos] ^ masks[m]);
			write_file(bad, copy, n);
			error = NULL;
			if (audit_verify(bad, NULL, 0, NULL, &error) != -1 || error == NULL) {
				fprintf(stderr, "flip of byte %zu by %#x not detected\n", pos,
				        masks[m]);
				exit(1);
			}
			CHECK(strncmp(error, "line ", 5) == 0);
			checked++;
		}
	}
	CHECK(checked == n * sizeof(masks));
	/* A flipped hash digit is reported as an edit of that entry. */
	memcpy(copy, orig, n);
	char *nl = memchr(copy, '\n', n);
	nl[-3] = nl[-3] == '0' ? '1' : '0';
	write_file(bad, copy, n);
	REFUSED(audit_verify(bad, NULL, 0, NULL, &error), "line 1: hash mismatch (entry edited)");
}

static void test_lines(const char *path, uint64_t count, const char *head)
{
	char bad[256];
	path_in_dir(bad, sizeof(bad), "lines.log");

	static const int dropped[] = {0, 1, 3, 4, -1};
	rewrite_lines(path, bad, dropped);
	REFUSED(audit_verify(bad, NULL, 0, NULL, &error),
	        "line 3: seq 4 expected 3 (entry dropped");

	static const int swapped[] = {0, 2, 1, 3, 4, -1};
	rewrite_lines(path, bad, swapped);
	REFUSED(audit_verify(bad, NULL, 0, NULL, &error), "line 2: seq 3 expected 2");

	static const int duplicated[] = {0, 1, 1, 2, 3, 4, -1};
	rewrite_lines(path, bad, duplicated);
	REFUSED(audit_verify(bad, NULL, 0, NULL, &error), "line 3: seq 2 expected 3");

	static const int first_dropped[] = {1, 2, 3, 4, -1};
	rewrite_lines(path, bad, first_dropped);
	REFUSED(audit_verify(bad, NULL, 0, NULL, &error), "line 1: seq 2 expected 1");

	/* The iterator shows the good entries, then stops with the reason. */
	struct audit_iter *it;
	struct audit_entry e;
	rewrite_lines(path, bad, dropped);
	OK(audit_iter_init(bad, &it, &error));
	CHECK(audit_iter_next(it, &e) && e.seq == 1);
	CHECK(audit_iter_next(it, &e) && e.seq == 2);
	CHECK(!audit_iter_next(it, &e) && e.seq == 2);
	CHECK(!audit_iter_next(it, &e));
	REFUSED(audit_iter_deinit(&it, &error), "line 3: seq 4 expected 3");
	CHECK(it == NULL);

	/* A forged entry with a correct hash of its own breaks the next prev. */
	static char buf[65536], forged[AUDIT_MAX_ENTRY_SIZE], out[65536];
	char storage[AUDIT_PARSE_STORAGE_SIZE], hash[AUDIT_HASH_HEX_SIZE];
	const char *lines[16];
	size_t lens[16], n = read_file(path, buf, sizeof(buf)), flen, len = 0;
	CHECK(split_lines(buf, n, lines, lens) == 5);
	OK(audit_parse_line(lines[1], lens[1] - 1, &e, storage, sizeof(storage), &error));
	e.details[2].value = "failed";
	OK(audit_format_line(&e, forged, sizeof(forged), &flen, hash, &error));
	memcpy(out, lines[0], lens[0]);
	len = lens[0];
	memcpy(out + len, forged, flen);
	len += flen;
	for (int i = 2; i < 5; i++) {
		memcpy(out + len, lines[i], lens[i]);
		len += lens[i];
	}
	write_file(bad, out, len);
	REFUSED(audit_verify(bad, NULL, 0, NULL, &error),
	        "line 3: prev does not match the hash of the entry before");

	/* Tail truncated at a line boundary: only the caller's head shows it. */
	static const int truncated[] = {0, 1, 2, -1};
	rewrite_lines(path, bad, truncated);
	uint64_t got = 0;
	OK(audit_verify(bad, NULL, 0, &got, &error));
	CHECK(got == 3);
	REFUSED(audit_verify(bad, head, count, NULL, &error),
	        "log ends at entry 3 but the hub recorded 5 entries (tail truncated)");
	REFUSED(audit_verify(bad, NULL, count, NULL, &error), "(tail truncated)");
	REFUSED(audit_verify(bad, head, 0, NULL, &error), "tail truncated or log rewritten");
	REFUSED(audit_verify(path, head, 4, NULL, &error), "log has 5 entries");
	write_file(bad, "", 0);
	REFUSED(audit_verify(bad, head, count, NULL, &error), "log ends at entry 0");

	/* Truncated inside the last line: detected, and open refuses it. */
	struct audit_log *log = NULL;
	n = read_file(path, buf, sizeof(buf));
	write_file(bad, buf, n - 10);
	REFUSED(audit_verify(bad, NULL, 0, NULL, &error), "line 5: incomplete");
	error = NULL;
	CHECK(audit_open(bad, &log, &error) == AUDIT_TORN);
	CHECK(error != NULL && strstr(error, "last entry is incomplete") != NULL);
	CHECK(log == NULL);
	/* Edited last line: open checks its hash. */
	buf[n - 5] = buf[n - 5] == 'a' ? 'b' : 'a';
	write_file(bad, buf, n);
	REFUSED(audit_open(bad, &log, &error), "last entry: hash mismatch");
	REFUSED(audit_verify(path, "nothex", 0, NULL, &error), "not in the log");
	REFUSED(audit_verify("/nonexistent/audit.log", NULL, 0, NULL, &error), "open");
}

/* Hostile values stay one entry per line and come back exactly. */
static void test_escaping(void)
{
	char path[256], buf[65536];
	struct audit_log *log = NULL;
	time_t now = T0;
	static const char *const values[] = {
	    "a\"b\\c\nd\x7f",
	    "quote \" backslash \\ \\\" \\u0041 \\n",
	    "\x01\x02\x1b[31mred\x1b[0m\r\n\t\x1f",
	    "{\"seq\":99,\"hash\":\"x\"}\n{\"seq\":100}",
	    "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80 \xef\xbf\xbd",
	    "",
	};
	const size_t nv = sizeof(values) / sizeof(values[0]);

	path_in_dir(path, sizeof(path), "escape.log");
	OK(audit_open(path, &log, &error));
	audit_set_clock(log, test_clock, &now);
	for (size_t i = 0; i < nv; i++) {
		struct audit_detail d[] = {{"purpose", "test"}, {"server", values[i]}};
		OK(audit_append(log, AUDIT_CREDENTIAL_DECRYPT, "acct-1.x_Y", d, 2, &error));
	}
	audit_close(&log);

	size_t n = read_file(path, buf, sizeof(buf)), lines = 0;
	for (size_t i = 0; i < n; i++)
		lines += buf[i] == '\n';
	CHECK(lines == nv);
	CHECK(memchr(buf, '\r', n) == NULL && memchr(buf, '\t', n) == NULL);
	buf[n] = '\0';
	CHECK(strstr(buf, "\"server\":\"a\\\"b\\\\c\\u000ad\\u007f\"") != NULL);
	CHECK(strstr(buf, "\\u001b[31mred") != NULL);

	struct audit_iter *it;
	struct audit_entry e;
	OK(audit_iter_init(path, &it, &error));
	for (size_t i = 0; i < nv; i++) {
		CHECK(audit_iter_next(it, &e));
		CHECK(e.n_details == 2 && strcmp(e.details[1].value, values[i]) == 0);
		CHECK(strcmp(e.account, "acct-1.x_Y") == 0);
	}
	CHECK(!audit_iter_next(it, &e));
	OK(audit_iter_deinit(&it, &error));
	OK(audit_verify(path, NULL, nv, NULL, &error));
}

static void test_bounds(void)
{
	char path[256], big[AUDIT_MAX_VALUE_SIZE + 2], ctl[AUDIT_MAX_VALUE_SIZE + 1];
	struct audit_log *log = NULL;
	struct stat st;

	path_in_dir(path, sizeof(path), "bounds.log");
	OK(audit_open(path, &log, &error));
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memset(ctl, 0x01, sizeof(ctl) - 1);
	ctl[sizeof(ctl) - 1] = '\0';

	struct audit_detail d[AUDIT_MAX_DETAILS + 1] = {{"purpose", "sync"}};
	d[1] = (struct audit_detail){"server", big};
	REFUSED(audit_append(log, AUDIT_CREDENTIAL_DECRYPT, "1", d, 2, &error),
	        "detail value too long");
	big[AUDIT_MAX_VALUE_SIZE] = '\0';
	OK(audit_append(log, AUDIT_CREDENTIAL_DECRYPT, "1", d, 2, &error));

	/* Eight values of 256 control bytes escape to far more than 4 KiB. */
	static const char *const keys[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i"};
	for (int i = 0; i < AUDIT_MAX_DETAILS + 1; i++)
		d[i] = (struct audit_detail){keys[i], ctl};
	REFUSED(audit_append(log, AUDIT_ACCOUNT_ADDED, "1", d, AUDIT_MAX_DETAILS, &error),
	        "entry too large");
	REFUSED(audit_append(log, AUDIT_ACCOUNT_ADDED, "1", d, AUDIT_MAX_DETAILS + 1, &error),
	        "too many detail pairs");

	struct {
		const char *key, *value, *account, *fragment;
	} bad[] = {
	    {"password", "x", "1", "names a secret"},
	    {"api_key", "x", "1", "names a secret"},
	    {"oauth_token", "x", "1", "names a secret"},
	    {"Server", "x", "1", "outside [a-z_]"},
	    {"ser ver", "x", "1", "outside [a-z_]"},
	    {"", "x", "1", "empty"},
	    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "x", "1", "too long"},
	    {"server", "\xff", "1", "not valid UTF-8"},
	    {"server", "\xc0\xaf", "1", "not valid UTF-8"},
	    {"server", "\xed\xa0\x80", "1", "not valid UTF-8"},
	    {"server", "\xf4\x90\x80\x80", "1", "not valid UTF-8"},
	    {"server", "abc\xe2\x9c", "1", "not valid UTF-8"},
	    {"server", "x", "1\"", "account id has a character"},
	    {"server", "x", "a b", "account id has a character"},
	    {"server", "x", "\n", "account id has a character"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct audit_detail one = {bad[i].key, bad[i].value};
		REFUSED(audit_append(log, AUDIT_ACCOUNT_ADDED, bad[i].account, &one, 1, &error),
		        bad[i].fragment);
	}
	struct audit_detail dup[] = {{"server", "a"}, {"server", "b"}};
	REFUSED(audit_append(log, AUDIT_ACCOUNT_ADDED, "1", dup, 2, &error), "duplicate");
	struct audit_detail purpose[] = {{"purpose", "other"}};
	REFUSED(audit_append(log, AUDIT_CREDENTIAL_DECRYPT, "1", purpose, 1, &error),
	        "needs purpose");
	REFUSED(audit_append(log, AUDIT_CREDENTIAL_DECRYPT, "1", NULL, 0, &error), "needs purpose");
	REFUSED(audit_append(log, AUDIT_EVENT_COUNT, "1", NULL, 0, &error), "unknown event");

	time_t far = 253402300800LL;
	audit_set_clock(log, test_clock, &far);
	REFUSED(audit_append(log, AUDIT_USER_CREATED, NULL, NULL, 0, &error), "time outside");
	audit_set_clock(log, NULL, NULL);
	OK(audit_append(log, AUDIT_USER_CREATED, NULL, NULL, 0, &error));

	/* Nothing refused reached the file. */
	uint64_t count;
	char head[AUDIT_HASH_HEX_SIZE];
	audit_head(log, &count, head);
	CHECK(count == 2);
	audit_close(&log);
	OK(audit_verify(path, head, 2, NULL, &error));
	CHECK(stat(path, &st) == 0 && st.st_size < 2 * AUDIT_MAX_ENTRY_SIZE);

	/* A log others can read is refused. */
	CHECK(chmod(path, 0640) == 0);
	REFUSED(audit_open(path, &log, &error), "must be 0600");
	CHECK(log == NULL);
}

/* Spellings JSON allows but the canonical form does not. */
static void test_strict_parser(void)
{
	char path[256], buf[8192], storage[AUDIT_PARSE_STORAGE_SIZE], line[8192];
	struct audit_log *log = NULL;
	struct audit_entry e;
	struct audit_detail d[] = {{"purpose", "send"}, {"server", "a\nb"}};

	path_in_dir(path, sizeof(path), "strict.log");
	time_t now = T0;
	OK(audit_open(path, &log, &error));
	audit_set_clock(log, test_clock, &now);
	OK(audit_append(log, AUDIT_CREDENTIAL_DECRYPT, "7", d, 2, &error));
	audit_close(&log);
	size_t n = read_file(path, buf, sizeof(buf)) - 1;
	buf[n] = '\0';
	OK(audit_parse_line(buf, n, &e, storage, sizeof(storage), &error));
	CHECK(audit_check_line(buf, n, &e, storage, sizeof(storage), &error) == 0);

	static const struct {
		const char *from, *to;
	} edits[] = {
	    {"{\"seq\":1,", "{\"seq\":01,"},
	    {"{\"seq\":1,", "{ \"seq\":1,"},
	    {"{\"seq\":1,", "{\"seq\": 1,"},
	    {"\\u000a", "\\u000A"},
	    {"\\u000a", "\\n"},
	    {"\\u000a", "\\u0000"},
	    {"\\u000a", "\\u0041"},
	    {"\"send\"", "\"s\\/end\""},
	    {"T", "t"},
	    {"Z\"", "+00:00\""},
	    {"\"7\"", "7"},
	    {"\"detail\":{", "\"detail\": {"},
	    {"\"purpose\"", "\"Purpose\""},
	    {"credential.decrypt", "credential.Decrypt"},
	    {"\"prev\":\"0", "\"prev\":\"O"},
	    {"2026-", "20260-"},
	    {"-27T", "-31T"},
	    {"-11-", "-13-"},
	    {"T15:", "T24:"},
	    {":01Z", ":60Z"},
	};
	for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
		const char *at = strstr(buf, edits[i].from);
		CHECK(at != NULL);
		size_t pre = (size_t)(at - buf), flen = strlen(edits[i].from);
		int len =
		    snprintf(line, sizeof(line), "%.*s%s%s", (int)pre, buf, edits[i].to, at + flen);
		CHECK(len > 0 && (size_t)len < sizeof(line));
		if (audit_parse_line(line, (size_t)len, &e, storage, sizeof(storage), &error) !=
		    -1) {
			fprintf(stderr, "accepted non-canonical edit %zu: %s\n", i, line);
			exit(1);
		}
	}
	/* Trailing bytes and a CR are not part of any entry. */
	memcpy(line, buf, n);
	memcpy(line + n, "\r", 1);
	CHECK(audit_parse_line(line, n + 1, &e, storage, sizeof(storage), &error) == -1);
	CHECK(audit_parse_line(buf, n - 1, &e, storage, sizeof(storage), &error) == -1);
	CHECK(audit_parse_line("", 0, &e, storage, sizeof(storage), &error) == -1);

	/* Event names are stable and round-trip. */
	enum audit_event ev;
	for (int i = 0; i < AUDIT_EVENT_COUNT; i++) {
		const char *name = audit_event_name((enum audit_event)i);
		CHECK(name != NULL && audit_event_from_name(name, strlen(name), &ev) == 0);
		CHECK(ev == (enum audit_event)i);
	}
	CHECK(audit_event_name(AUDIT_EVENT_COUNT) == NULL);
	CHECK(strcmp(audit_event_name(AUDIT_CREDENTIAL_DECRYPT), "credential.decrypt") == 0);
	CHECK(strcmp(audit_event_name(AUDIT_USER_CREATED), "user.created") == 0);
}

/* A write that fails half way (file size limit, EFBIG) leaves the log as it
 * was, and the log refuses further appends until reopened. */
static void test_write_failure(void)
{
	char path[256];
	struct audit_log *log = NULL;
	struct rlimit saved, small;
	struct stat st;
	uint64_t count;
	char head[AUDIT_HASH_HEX_SIZE];
	const struct audit_detail d[] = {{"reason", "a fairly long reason to pass the limit"}};

	path_in_dir(path, sizeof(path), "fail.log");
	OK(audit_open(path, &log, &error));
	OK(audit_append(log, AUDIT_LIFECYCLE_PURGE, "2", d, 1, &error));
	CHECK(stat(path, &st) == 0);
	audit_head(log, &count, head);

	CHECK(signal(SIGXFSZ, SIG_IGN) != SIG_ERR);
	CHECK(getrlimit(RLIMIT_FSIZE, &saved) == 0);
	small = saved;
	small.rlim_cur = (rlim_t)st.st_size + 40;
	CHECK(setrlimit(RLIMIT_FSIZE, &small) == 0);
	REFUSED(audit_append(log, AUDIT_LIFECYCLE_PURGE, "2", d, 1, &error), "audit log: write");
	CHECK(setrlimit(RLIMIT_FSIZE, &saved) == 0);

	struct stat after;
	CHECK(stat(path, &after) == 0 && after.st_size == st.st_size);
	REFUSED(audit_append(log, AUDIT_LIFECYCLE_PURGE, "2", d, 1, &error), "reopen");
	audit_close(&log);
	OK(audit_verify(path, head, count, NULL, &error));
	OK(audit_open(path, &log, &error));
	OK(audit_append(log, AUDIT_LIFECYCLE_PURGE, "2", d, 1, &error));
	audit_close(&log);
	OK(audit_verify(path, NULL, 2, NULL, &error));
}

static void cleanup(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

int main(void)
{
	char path[256], head[AUDIT_HASH_HEX_SIZE];
	uint64_t count;

	CHECK(sodium_init() >= 0);
	snprintf(dir, sizeof(dir), "/tmp/mk-audit-XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
	umask(022);
	path_in_dir(path, sizeof(path), "audit.log");

	test_time();
	make_log(path, &count, head);
	test_exact_line(path);
	test_chain(path, count, head);
	test_every_byte(path);
	test_lines(path, count, head);
	test_escaping();
	test_bounds();
	test_strict_parser();
	test_write_failure();
	cleanup();
	printf("test-audit: ok\n");
	return 0;
}
