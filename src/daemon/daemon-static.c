/*
 * The web app's files (scripts/build-web.sh's output), served at / and
 * /assets/NAME.
 *
 * The whole web root is read into memory when serve starts: a table of
 * names (paths relative to the root, "index.html", "app-3F2A9C1D.js",
 * "img/logo.svg") to bytes, each with its ETag (a hash of the bytes) and,
 * for text, a gzip copy made once. A request is answered from the table
 * by exact name only: nothing on disk is opened per request, so no path can
 * reach outside the web root (no "..", no symbolic link games, no encoded
 * slashes), and a file changed on disk is served as it was at start (serve
 * restarts with a new build).
 *
 *   GET /, /index.html   index.html, Cache-Control: no-cache
 *   GET /assets/NAME     the file; a hashed name (esbuild's "-[hash]."
 *                        part) is immutable for a year, others no-cache
 *   If-None-Match        304 when it names the file's ETag
 *   Accept-Encoding      the gzip copy (Content-Encoding: gzip) if accepted
 *
 * Every answer here carries the Content-Security-Policy and the other
 * headers of SECURITY_HEADERS. Without a web root, / answers 404 with a
 * page that says how to build the web app.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "daemon-internal.h"
#include "daemon-webparse.h"
#include "http/http.h"

#ifndef MK_WEB_DATADIR
#define MK_WEB_DATADIR "/usr/local/share/mailkeep/web"
#endif

#define STATIC_MAX_FILES 1000
#define STATIC_MAX_BYTES (64u * 1024 * 1024) /* all files together */
#define STATIC_MAX_DEPTH 4
#define STATIC_MAX_NAME 200

static const char csp[] =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob: https: "
    "http:; frame-src 'self' blob: about:; connect-src 'self'; object-src 'none'; base-uri "
    "'none'; form-action 'self'; frame-ancestors 'none'";

static const char *const security_headers[][2] = {
    {"Content-Security-Policy", csp},
    {"X-Content-Type-Options", "nosniff"},
    {"Referrer-Policy", "no-referrer"},
    {"X-Frame-Options", "DENY"},
};

struct static_file {
	char *name;
	unsigned char *data, *gz; /* gz: NULL when not worth it */
	size_t len, gz_len;
	const char *type;
	char etag[40];
	bool hashed; /* immutable: the name changes with the content */
};

struct daemon_static {
	char root[PATH_MAX];
	struct static_file *files;
	size_t n;
	size_t bytes;
};

static const char no_web_app[] =
    "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>mailkeep</title>"
    "</head><body><h1>mailkeep</h1><p>The web app is not installed. Build it with "
    "<code>scripts/build-web.sh</code> (it writes <code>build/web</code>), or give serve "
    "<code>--web-root DIR</code>, then restart serve.</p></body></html>\n";
static const char not_found[] =
    "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>mailkeep</title>"
    "</head><body><p>Not found.</p></body></html>\n";

static const struct {
	const char *ext, *type;
	bool text;
} types[] = {
    {"html", "text/html; charset=utf-8", true},
    {"js", "text/javascript; charset=utf-8", true},
    {"mjs", "text/javascript; charset=utf-8", true},
    {"css", "text/css; charset=utf-8", true},
    {"json", "application/json", true},
    {"map", "application/json", true},
    {"svg", "image/svg+xml", true},
    {"txt", "text/plain; charset=utf-8", true},
    {"webmanifest", "application/manifest+json", true},
    {"png", "image/png", false},
    {"jpg", "image/jpeg", false},
    {"jpeg", "image/jpeg", false},
    {"gif", "image/gif", false},
    {"webp", "image/webp", false},
    {"ico", "image/x-icon", true},
    {"woff", "font/woff", false},
    {"woff2", "font/woff2", false},
    {"wasm", "application/wasm", false},
};

static const char *type_of(const char *name, bool *text_r)
{
	const char *dot = strrchr(name, '.');
	*text_r = false;
	if (dot != NULL)
		for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
			if (strcasecmp(dot + 1, types[i].ext) == 0) {
				*text_r = types[i].text;
				return types[i].type;
			}
	return "application/octet-stream";
}

/* esbuild's "[name]-[hash].ext": a '-' then 8 or more of [A-Z0-9] before
 * the last '.'. */
static bool hashed_name(const char *name)
{
	const char *base = strrchr(name, '/');
	base = base != NULL ? base + 1 : name;
	const char *dot = strrchr(base, '.'), *dash = strrchr(base, '-');
	if (dot == NULL || dash == NULL || dash > dot || dot - dash - 1 < 8)
		return false;
	for (const char *p = dash + 1; p < dot; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= '0' && *p <= '9')))
			return false;
	return true;
}

/* A gzip copy (level 9) of data, or NULL when it does not save a tenth. */
static unsigned char *gzip_copy(const unsigned char *data, size_t len, size_t *gz_len_r)
{
	z_stream z;
	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK)
		return NULL;
	uLong bound = deflateBound(&z, (uLong)len);
	unsigned char *out = malloc(bound);
	if (out == NULL) {
		deflateEnd(&z);
		return NULL;
	}
	z.next_in = (Bytef *)data;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)bound;
	int rc = deflate(&z, Z_FINISH);
	size_t n = z.total_out;
	deflateEnd(&z);
	if (rc != Z_STREAM_END || n >= len - len / 10) {
		free(out);
		return NULL;
	}
	*gz_len_r = n;
	return out;
}

static void files_free(struct daemon_static *st)
{
	for (size_t i = 0; i < st->n; i++) {
		free(st->files[i].name);
		free(st->files[i].data);
		free(st->files[i].gz);
	}
	free(st->files);
	st->files = NULL;
	st->n = 0;
}

void daemon_static_free(struct daemon_static **st)
{
	if (*st == NULL)
		return;
	files_free(*st);
	free(*st);
	*st = NULL;
}

static int read_file(const char *path, size_t size, unsigned char **data_r)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return -1;
	unsigned char *data = malloc(size > 0 ? size : 1);
	size_t got = data != NULL ? fread(data, 1, size, f) : 0;
	int extra = fgetc(f);
	fclose(f);
	if (data == NULL || got != size || extra != EOF) {
		free(data);
		return -1;
	}
	*data_r = data;
	return 0;
}

static int add_file(struct daemon_static *st, const char *name, const char *path, size_t size,
                    char *note, size_t note_size)
{
	if (st->n == STATIC_MAX_FILES || size > STATIC_MAX_BYTES - st->bytes) {
		snprintf(note, note_size, "%s: more than %u files or %u MiB", st->root,
		         STATIC_MAX_FILES, STATIC_MAX_BYTES >> 20);
		return -1;
	}
	struct static_file *grown = realloc(st->files, (st->n + 1) * sizeof(*grown));
	if (grown == NULL) {
		snprintf(note, note_size, "out of memory");
		return -1;
	}
	st->files = grown;
	struct static_file *f = &st->files[st->n];
	memset(f, 0, sizeof(*f));
	if ((f->name = strdup(name)) == NULL || read_file(path, size, &f->data) < 0) {
		free(f->name);
		snprintf(note, note_size, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	f->len = size;
	st->n++;
	st->bytes += size;
	bool text;
	f->type = type_of(name, &text);
	f->hashed = hashed_name(name);
	unsigned char h[12];
	crypto_generichash(h, sizeof(h), f->data, f->len, NULL, 0);
	char hex[sizeof(h) * 2 + 1];
	sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
	snprintf(f->etag, sizeof(f->etag), "\"%s\"", hex);
	if (text && size >= 256)
		f->gz = gzip_copy(f->data, f->len, &f->gz_len);
	return 0;
}

/* Every regular file under dir (rel: its name so far), dot files and
 * anything that is not a file or directory left out. */
static int walk(struct daemon_static *st, const char *dir, const char *rel, unsigned depth,
                char *note, size_t note_size)
{
	DIR *d = opendir(dir);
	if (d == NULL) {
		snprintf(note, note_size, "cannot read %s: %s", dir, strerror(errno));
		return -1;
	}
	struct dirent *e;
	int ret = 0;
	while (ret == 0 && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char path[PATH_MAX], name[STATIC_MAX_NAME + 1];
		int n = snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		int m = snprintf(name, sizeof(name), "%s%s%s", rel, rel[0] != '\0' ? "/" : "",
		                 e->d_name);
		if (n < 0 || (size_t)n >= sizeof(path) || m < 0 || (size_t)m >= sizeof(name))
			continue; /* a name too long is never asked for */
		struct stat sb;
		if (stat(path, &sb) < 0)
			continue;
		if (S_ISDIR(sb.st_mode)) {
			if (depth < STATIC_MAX_DEPTH)
				ret = walk(st, path, name, depth + 1, note, note_size);
		} else if (S_ISREG(sb.st_mode)) {
			ret = add_file(st, name, path, (size_t)sb.st_size, note, note_size);
		}
	}
	closedir(d);
	return ret;
}

static bool has_index(const char *dir)
{
	char path[PATH_MAX];
	int n = snprintf(path, sizeof(path), "%s/index.html", dir);
	return n > 0 && (size_t)n < sizeof(path) && access(path, R_OK) == 0;
}

/* Where the web app is: dir if given, else web/ beside the binary, else
 * the installed one. "" when none has an index.html. */
static void find_root(const char *dir, char *root, size_t size)
{
	root[0] = '\0';
	if (dir != NULL) {
		if (has_index(dir))
			snprintf(root, size, "%s", dir);
		return;
	}
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash != NULL) {
			*slash = '\0';
			char cand[PATH_MAX];
			int m = snprintf(cand, sizeof(cand), "%s/web", exe);
			if (m > 0 && (size_t)m < sizeof(cand) && has_index(cand)) {
				snprintf(root, size, "%s", cand);
				return;
			}
		}
	}
	if (has_index(MK_WEB_DATADIR))
		snprintf(root, size, "%s", MK_WEB_DATADIR);
}

int daemon_static_load(const char *dir, struct daemon_static **static_r, char *note, size_t size)
{
	*static_r = NULL;
	struct daemon_static *st = calloc(1, sizeof(*st));
	if (st == NULL) {
		snprintf(note, size, "out of memory");
		return -1;
	}
	find_root(dir, st->root, sizeof(st->root));
	if (st->root[0] == '\0') {
		free(st);
		if (dir != NULL)
			snprintf(
			    note, size,
			    "none: %s has no index.html (build it with scripts/build-web.sh %s)",
			    dir, dir);
		else
			snprintf(note, size,
			         "none: no web/ beside the binary and none in %s (build it with "
			         "scripts/build-web.sh, or give --web-root DIR)",
			         MK_WEB_DATADIR);
		return 0;
	}
	if (walk(st, st->root, "", 0, note, size) < 0) {
		files_free(st);
		free(st);
		return -1;
	}
	size_t gz = 0;
	for (size_t i = 0; i < st->n; i++)
		gz += st->files[i].gz != NULL ? st->files[i].gz_len : st->files[i].len;
	snprintf(note, size, "%zu files from %s (%zu bytes, %zu gzip)", st->n, st->root, st->bytes,
	         gz);
	*static_r = st;
	return 0;
}

bool daemon_static_path(const char *path)
{
	return strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0 ||
	       strncmp(path, "/assets/", 8) == 0;
}

static const struct static_file *lookup(const struct daemon_static *st, const char *name)
{
	if (st == NULL)
		return NULL;
	for (size_t i = 0; i < st->n; i++)
		if (strcmp(st->files[i].name, name) == 0)
			return &st->files[i];
	return NULL;
}

bool daemon_static_etag_matches(const char *inm, const char *etag)
{
	size_t elen = strlen(etag);
	for (const char *p = inm; *p != '\0';) {
		p += strspn(p, " \t,");
		if (*p == '\0')
			break;
		size_t len = strcspn(p, ",");
		const char *t = p;
		size_t tlen = len;
		while (tlen > 0 && (t[tlen - 1] == ' ' || t[tlen - 1] == '\t'))
			tlen--;
		if (tlen == 1 && t[0] == '*')
			return true;
		if (tlen > 2 && strncmp(t, "W/", 2) == 0) {
			t += 2;
			tlen -= 2;
		}
		if (tlen == elen && memcmp(t, etag, elen) == 0)
			return true;
		p += len;
	}
	return false;
}

bool daemon_static_accepts_gzip(const char *ae)
{
	if (ae == NULL)
		return false;
	for (const char *p = ae; *p != '\0';) {
		p += strspn(p, " \t,");
		size_t len = strcspn(p, ",");
		size_t tok = strcspn(p, " \t;,");
		if ((tok == 4 && strncasecmp(p, "gzip", 4) == 0) || (tok == 1 && p[0] == '*')) {
			const char *q = memchr(p, ';', len);
			if (q == NULL)
				return true;
			q++;
			q += strspn(q, " \t");
			if (strncasecmp(q, "q=", 2) != 0)
				return true;
			q += 2;
			/* q=0, q=0.0, q=0.000: refused */
			bool zero = q[0] == '0';
			for (const char *c = q + 1; zero && c < p + len && *c != ' ' && *c != '\t';
			     c++)
				if (*c != '.' && *c != '0')
					zero = false;
			return !zero;
		}
		p += len;
	}
	return false;
}

static void add_security_headers(struct http_response *resp)
{
	const char *err;
	for (size_t i = 0; i < sizeof(security_headers) / sizeof(security_headers[0]); i++)
		http_response_add_header(resp, security_headers[i][0], security_headers[i][1],
		                         &err);
}

static void respond_page(struct http_response *resp, unsigned status, const char *page, size_t len)
{
	const char *err;
	add_security_headers(resp);
	http_response_add_header(resp, "Cache-Control", "no-cache", &err);
	http_response_set_status(resp, status, &err);
	http_response_set_body_static(resp, "text/html; charset=utf-8", page, len, &err);
}

void daemon_handle_static(struct daemon *sv, const struct http_request *req,
                          struct http_response *resp)
{
	const char *err;
	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
		http_response_add_header(resp, "Allow", "GET, HEAD", &err);
		add_security_headers(resp);
		daemon_respond_problem(resp, 405, "about:blank",
		                       "the web app's files are read-only");
		return;
	}
	if (sv->web == NULL) {
		respond_page(resp, 404, no_web_app, sizeof(no_web_app) - 1);
		return;
	}
	char name[STATIC_MAX_NAME + 1];
	const struct static_file *f = NULL;
	if (strcmp(req->path, "/") == 0 || strcmp(req->path, "/index.html") == 0)
		f = lookup(sv->web, "index.html");
	else if (daemon_percent_decode(req->path + 8, name, sizeof(name)) &&
	         strcmp(name, "index.html") != 0)
		f = lookup(sv->web, name);
	if (f == NULL) {
		respond_page(resp, 404, not_found, sizeof(not_found) - 1);
		return;
	}
	add_security_headers(resp);
	http_response_add_header(resp, "Cache-Control",
	                         f->hashed ? "public, max-age=31536000, immutable" : "no-cache",
	                         &err);
	http_response_add_header(resp, "ETag", f->etag, &err);
	if (f->gz != NULL)
		http_response_add_header(resp, "Vary", "Accept-Encoding", &err);
	const char *inm = http_request_header(req, "If-None-Match");
	if (inm != NULL && daemon_static_etag_matches(inm, f->etag)) {
		http_response_set_status(resp, 304, &err);
		return;
	}
	bool gz = f->gz != NULL &&
	          daemon_static_accepts_gzip(http_request_header(req, "Accept-Encoding"));
	if (gz)
		http_response_add_header(resp, "Content-Encoding", "gzip", &err);
	http_response_set_status(resp, 200, &err);
	/* The table lives until serve has stopped its HTTP server (daemon.c
	 * frees it after http_server_stop), so the bytes go out without a copy. */
	if (http_response_set_body_static(resp, f->type, gz ? f->gz : f->data,
	                                  gz ? f->gz_len : f->len, &err) < 0)
		daemon_respond_problem(resp, 500, "about:blank", err);
}
