/* Upload and download of blobs (RFC 8620 6.1, 6.2). */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "daemon-internal.h"
#include "http/http.h"
#include "jmap/jmap-email.h"
#include "jmap/jmap-session.h"
#include "jmap/jmap.h"
#include "store/store.h"

/* A media type with optional parameters ("text/plain; charset=utf-8"):
 * printable ASCII, a type and a subtype of token characters. */
static bool media_type_ok(const char *t)
{
	static const char token[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                            "0123456789!#$&^_.+-";
	size_t type_len = strspn(t, token);
	if (type_len == 0 || t[type_len] != '/' || strspn(t + type_len + 1, token) == 0)
		return false;
	for (const char *c = t; *c != '\0'; c++)
		if (*c < 0x20 || *c > 0x7e)
			return false;
	return true;
}

/* Raster images a browser may show in place (never SVG: it can hold
 * script). */
static bool inline_image(const char *type)
{
	static const char *const raster[] = {"image/png",  "image/jpeg", "image/gif",
	                                     "image/webp", "image/avif", "image/bmp"};
	for (size_t i = 0; i < sizeof(raster) / sizeof(raster[0]); i++)
		if (strcasecmp(type, raster[i]) == 0)
			return true;
	return false;
}

/* The blob a /jmap/download/ or /jmap/preview/ path names (`rest`: what
 * follows the route's prefix, "{accountId}/{blobId}/{name}"), when it is a
 * message or body part of one of the user's accounts or an upload of the
 * user. 1 and its bytes (*data_r, *size_r, malloc'd) and the part's media
 * type (*type_r, malloc'd); 0 when there is no such blob (or the path is
 * malformed); -1 when it cannot be read. The name segment is not used: it
 * only gives the browser a file name. */
static int blob_read(struct daemon *sv, const struct principal *p, const char *rest, char **data_r,
                     size_t *size_r, char **type_r)
{
	const char *err;
	char acct[80], blob[JMAP_MAX_ID + 1];
	const char *slash = strchr(rest, '/');
	const char *slash2 = slash != NULL ? strchr(slash + 1, '/') : NULL;
	if (slash == NULL || slash2 == NULL || (size_t)(slash - rest) >= sizeof(acct) ||
	    (size_t)(slash2 - slash - 1) >= sizeof(blob))
		return 0;
	memcpy(acct, rest, (size_t)(slash - rest));
	acct[slash - rest] = '\0';
	memcpy(blob, slash + 1, (size_t)(slash2 - slash - 1));
	blob[slash2 - slash - 1] = '\0';
	if (!jmap_is_id(blob))
		return 0;
	struct daemon_store *us = daemon_store_acquire(sv, p->user.name);
	if (us == NULL)
		return -1;
	int64_t account = 0;
	int found = jmap_account_known(us->store, acct, &account, &err);
	if (found == 1)
		found = jmap_blob_visible(us->store, account, blob, &err);
	if (found == 1)
		found = jmap_email_blob_content(us->store, blob, DAEMON_MAX_DOWNLOAD, data_r,
		                                size_r, type_r, &err);
	pthread_mutex_unlock(&us->lock);
	return found;
}

void daemon_handle_download(struct daemon *sv, const struct principal *p,
                            const struct http_request *req, struct http_response *resp)
{
	const char *err;
	/* /jmap/download/{accountId}/{blobId}/{name} */
	size_t size = 0;
	char *data = NULL, *part_type = NULL;
	int found =
	    blob_read(sv, p, req->path + strlen("/jmap/download/"), &data, &size, &part_type);
	if (found != 1) {
		daemon_respond_problem(resp, found == 0 ? 404 : 500, "about:blank",
		                       found == 0 ? "no such blob" : "cannot read the blob");
		return;
	}
	static const char type_chars[] =
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/.+-";
	char type[128] = "application/octet-stream";
	if (strspn(part_type, type_chars) == strlen(part_type) && strlen(part_type) < sizeof(type))
		snprintf(type, sizeof(type), "%s", part_type);
	free(part_type);
	/* ?type= is percent-encoded by clients ("text%2Fplain"); the media
	 * type the client asks for is what it gets (RFC 8620 6.2). */
	char raw[3 * sizeof(type)], asked[sizeof(type)];
	if (daemon_query_param(req->query, "type", raw, sizeof(raw)) &&
	    daemon_percent_decode(raw, asked, sizeof(asked)) && media_type_ok(asked))
		snprintf(type, sizeof(type), "%s", asked);
	http_response_set_status(resp, 200, &err);
	http_response_add_header(resp, "Cache-Control", "private, immutable, max-age=31536000",
	                         &err);
	/* Mail is the sender's content in the hub's origin: a browser opening
	 * a download never runs it (an HTML or SVG attachment would otherwise
	 * run script with the web app's cookie), never sniffs another type,
	 * and saves anything but a raster image instead of showing it. */
	http_response_add_header(resp, "Content-Security-Policy", "sandbox; default-src 'none'",
	                         &err);
	http_response_add_header(resp, "X-Content-Type-Options", "nosniff", &err);
	http_response_add_header(resp, "Content-Disposition",
	                         inline_image(type) ? "inline" : "attachment", &err);
	http_response_set_body(resp, type, data, (size_t)size, &err);
}

/* GET /jmap/preview/{accountId}/{blobId}/{name}: a PDF shown in place by
 * the browser's own viewer (the web app frames it; "open in a new tab"
 * opens it), same sign-in as a download. Only bytes that start with
 * "%PDF-" are served, whatever the part's declared type or any query says;
 * anything else is refused (415), so this route can never show HTML, SVG
 * or script in the hub's origin. */
void daemon_handle_preview(struct daemon *sv, const struct principal *p,
                           const struct http_request *req, struct http_response *resp)
{
	const char *err;
	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
		daemon_respond_problem(resp, 405, "about:blank", "use GET");
		return;
	}
	size_t size = 0;
	char *data = NULL, *part_type = NULL;
	int found =
	    blob_read(sv, p, req->path + strlen("/jmap/preview/"), &data, &size, &part_type);
	free(part_type);
	if (found != 1) {
		daemon_respond_problem(resp, found == 0 ? 404 : 500, "about:blank",
		                       found == 0 ? "no such blob" : "cannot read the blob");
		return;
	}
	static const char magic[] = "%PDF-";
	if (size < sizeof(magic) - 1 || memcmp(data, magic, sizeof(magic) - 1) != 0) {
		free(data);
		daemon_respond_problem(resp, 415, "about:blank",
		                       "only PDF files can be previewed (this one does not start "
		                       "with %PDF-): download it instead");
		return;
	}
	http_response_set_status(resp, 200, &err);
	/* The tightest headers under which Chromium's built-in viewer still
	 * shows the file (found by trying each with Debian's chromium 156,
	 * tests/preview_test.py and tests/web/preview.test.mjs hold them to
	 * it): the document is sandboxed (an opaque origin, no script,
	 * forms or popups of its own; Chromium 156 still runs its viewer in
	 * it) and loads nothing; only the hub's own pages may frame it;
	 * it is neither cached nor sniffed, and it tells nothing to other
	 * sites (Referer, COOP, CORP). What stops the viewer is
	 * "Content-Disposition: attachment" (the download route's answer)
	 * and a sandbox attribute on the frame, not the CSP sandbox. */
	static const char *const headers[][2] = {
	    {"Content-Disposition", "inline"},
	    {"Content-Security-Policy", "sandbox; default-src 'none'; base-uri 'none'; "
	                                "form-action 'none'; frame-ancestors 'self'"},
	    {"X-Frame-Options", "SAMEORIGIN"},
	    {"X-Content-Type-Options", "nosniff"},
	    {"Cache-Control", "private, no-store"},
	    {"Referrer-Policy", "no-referrer"},
	    {"Cross-Origin-Resource-Policy", "same-origin"},
	    {"Cross-Origin-Opener-Policy", "same-origin"},
	    {"Cross-Origin-Embedder-Policy", "require-corp"},
	    {"Permissions-Policy", "camera=(), microphone=(), geolocation=(), usb=(), payment=(), "
	                           "clipboard-read=()"},
	};
	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++)
		http_response_add_header(resp, headers[i][0], headers[i][1], &err);
	http_response_set_body(resp, "application/pdf", data, size, &err);
}

/* POST /jmap/upload/{accountId}/ (RFC 8620 6.1): the body becomes a blob
 * of the user's store, kept as an upload for STORE_UPLOAD_TTL unless a
 * message uses it. */
void daemon_handle_upload(struct daemon *sv, const struct principal *p,
                          const struct http_request *req, struct http_response *resp)
{
	const char *err;
	const char *rest = req->path + strlen("/jmap/upload/");
	size_t alen = strcspn(rest, "/");
	if (strcmp(req->method, "POST") != 0) {
		daemon_respond_problem(resp, 405, "about:blank", "use POST");
		return;
	}
	char acct[32];
	if (alen == 0 || alen >= sizeof(acct) ||
	    (rest[alen] != '\0' && strcmp(rest + alen, "/") != 0)) {
		daemon_respond_problem(resp, 404, "about:blank", "no such account");
		return;
	}
	memcpy(acct, rest, alen);
	acct[alen] = '\0';
	if (req->body_len > DAEMON_MAX_UPLOAD) {
		json_t *body = json_pack(
		    "{s:s,s:i,s:s,s:s}", "type", "urn:ietf:params:jmap:error:limit", "status", 413,
		    "limit", "maxSizeUpload", "detail", "the upload is larger than maxSizeUpload");
		daemon_respond_json(resp, 413, body);
		return;
	}
	char type[256] = "application/octet-stream";
	const char *ct = req->content_type;
	if (ct != NULL && ct[0] != '\0' && strlen(ct) < sizeof(type)) {
		bool printable = true;
		for (const char *c = ct; *c != '\0'; c++)
			printable &= *c >= 0x20 && *c < 0x7f;
		if (printable)
			snprintf(type, sizeof(type), "%s", ct);
	}
	int64_t blob_id = 0;
	struct store_blob_writer *w = NULL;
	struct daemon_store *us = daemon_store_acquire(sv, p->user.name);
	if (us == NULL) {
		daemon_respond_problem(resp, 500, "about:blank", "cannot open the user's store");
		return;
	}
	/* An upload belongs to the user (any of the user's accounts may use
	 * it); the account must be one of theirs. */
	int64_t account = 0;
	int known = jmap_account_known(us->store, acct, &account, &err);
	if (known != 1) {
		pthread_mutex_unlock(&us->lock);
		daemon_respond_problem(resp, known == 0 ? 404 : 500, "about:blank",
		                       known == 0 ? "no such account"
		                                  : "cannot open the user's store");
		return;
	}
	int r = store_begin(us->store, &err);
	if (r == 0) {
		r = store_blob_begin(us->store, req->body_len, &w, &err);
		if (r == 0 && (store_blob_write(w, req->body, req->body_len, &err) < 0 ||
		               store_blob_finish(&w, &blob_id, &err) < 0)) {
			store_blob_abort(&w);
			r = -1;
		}
		if (r == 0)
			r = store_upload_add(us->store, blob_id, type, (int64_t)time(NULL), &err);
		if (r == 0)
			r = store_commit(us->store, &err);
		else
			store_rollback(us->store);
	}
	pthread_mutex_unlock(&us->lock);
	if (r < 0) {
		daemon_respond_problem(resp, 500, "about:blank", "cannot store the upload");
		return;
	}
	char bid[32];
	snprintf(bid, sizeof(bid), "B%lld", (long long)blob_id);
	daemon_respond_json(resp, 201,
	                    json_pack("{s:s,s:s,s:s,s:I}", "accountId", acct, "blobId", bid, "type",
	                              type, "size", (json_int_t)req->body_len));
}
