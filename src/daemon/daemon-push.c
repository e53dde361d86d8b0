/* The event source (RFC 8620 7.3) and the StateChange push to devices. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon-internal.h"
#include "http/http.h"
#include "store/store-accounts.h"
#include "store/store.h"

/* The data types a StateChange names (RFC 8620 7.1); all of them share the
 * store's change counter as their state. */
static const char *const push_type_names[] = {"Mailbox", "Email", "Thread"};
#define PUSH_TYPES_ALL ((1u << (sizeof(push_type_names) / sizeof(push_type_names[0]))) - 1)

/* "types" of an event source URL (RFC 8620 7.3): "*" or a comma-separated
 * list of type names. Unknown names are ignored (the device may know types
 * this hub does not have); -1 if malformed. */
static int push_types_parse(const char *raw, unsigned *types_r)
{
	char text[256];
	if (!daemon_percent_decode(raw, text, sizeof(text)))
		return -1;
	if (strcmp(text, "*") == 0) {
		*types_r = PUSH_TYPES_ALL;
		return 0;
	}
	unsigned types = 0;
	for (char *save = NULL, *tok = strtok_r(text, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		for (size_t i = 0; i < sizeof(push_type_names) / sizeof(push_type_names[0]); i++)
			if (strcmp(tok, push_type_names[i]) == 0)
				types |= 1u << i;
	}
	*types_r = types;
	return 0;
}
void daemon_handle_events(struct daemon *sv, const struct principal *p,
                          const struct http_request *req, struct http_response *resp)
{
	const char *err;
	char ping_text[16] = "0", types_text[256] = "*", close_text[16] = "no";
	if (!daemon_query_param(req->query, "types", types_text, sizeof(types_text)) &&
	    strstr(req->query != NULL ? req->query : "", "types=") != NULL) {
		daemon_respond_problem(resp, 400, "about:blank", "types is too long");
		return;
	}
	daemon_query_param(req->query, "ping", ping_text, sizeof(ping_text));
	daemon_query_param(req->query, "closeafter", close_text, sizeof(close_text));
	unsigned types;
	if (push_types_parse(types_text, &types) < 0) {
		daemon_respond_problem(resp, 400, "about:blank", "bad types");
		return;
	}
	if (strcmp(close_text, "state") != 0 && strcmp(close_text, "no") != 0) {
		daemon_respond_problem(resp, 400, "about:blank", "closeafter is state or no");
		return;
	}
	char *end;
	long ping = strtol(ping_text, &end, 10);
	if (*end != '\0' || ping < 0 || ping > 3600) {
		daemon_respond_problem(resp, 400, "about:blank", "bad ping");
		return;
	}
	if (ping > 0 && ping < 5)
		ping = 5;
	/* A long poll's baseline is the state when the request came in, so a
	 * change that lands before the push thread's next pass ends it too
	 * (taken before push_lock: the push thread takes push_lock first). */
	bool close_after_state = strcmp(close_text, "state") == 0;
	uint64_t baseline = UINT64_MAX; /* send the current state first */
	if (close_after_state) {
		struct daemon_store *us = daemon_store_acquire(sv, p->user.name);
		if (us != NULL) {
			uint64_t modseq;
			if (store_read_modseq(us->store, &modseq, &err) == 0)
				baseline = modseq;
			pthread_mutex_unlock(&us->lock);
		}
	}
	struct http_stream *stream;
	if (http_stream_create(64 * 1024, NULL, NULL, &stream, &err) < 0) {
		daemon_respond_problem(resp, 500, "about:blank", "cannot create the stream");
		return;
	}
	pthread_mutex_lock(&sv->push_lock);
	struct push_stream *slot = NULL;
	for (size_t i = 0; i < DAEMON_MAX_STREAMS && slot == NULL; i++)
		if (sv->streams[i].stream == NULL)
			slot = &sv->streams[i];
	if (slot != NULL) {
		slot->stream = stream;
		snprintf(slot->user, sizeof(slot->user), "%s", p->user.name);
		slot->device_id = p->device_id;
		slot->web_session_id = p->web_session_id;
		slot->ping = (unsigned)ping;
		slot->types = types;
		slot->close_after_state = close_after_state;
		slot->sent_state = baseline;
		slot->last_ping = time(NULL);
	}
	pthread_mutex_unlock(&sv->push_lock);
	if (slot == NULL) {
		http_stream_unref(&stream);
		daemon_respond_problem(resp, 503, "about:blank", "too many push streams");
		return;
	}
	http_response_add_header(resp, "Cache-Control", "no-cache", &err);
	http_response_set_status(resp, 200, &err);
	http_response_set_stream(resp, "text/event-stream", stream, &err);
}

/* --- push ---------------------------------------------------------------------- */

static void push_event(struct push_stream *ps, const char *event, const char *data)
{
	const char *err;
	size_t size = strlen(event) + strlen(data) + 32;
	char *buf = malloc(size);
	if (buf == NULL)
		return;
	int n = snprintf(buf, size, "event: %s\ndata: %s\n\n", event, data);
	if (n > 0 && (size_t)n < size)
		http_stream_send(ps->stream, buf, (size_t)n, &err);
	free(buf);
}

/* A StateChange naming the types the stream asked for, for each of the
 * user's JMAP accounts ("A<store account id>"); they all share the store's
 * change counter as their state. Sized for the user's accounts (a fixed
 * 4 KB held about 60, and a user with more got no StateChange at all). */
static void push_state_change(struct push_stream *ps, uint64_t modseq,
                              const struct store_account *accounts, size_t n_accounts)
{
	/* Per account at most: "A<20 digits>":{ + 3 x ,"Mailbox":"<20 digits>" + } */
	size_t size = 64 + n_accounts * (32 + 3 * 40);
	char *data = malloc(size);
	if (data == NULL)
		return;
	size_t o = (size_t)snprintf(data, size, "{\"@type\":\"StateChange\",\"changed\":{");
	for (size_t a = 0; a < n_accounts && o < size; a++) {
		o += (size_t)snprintf(data + o, size - o, "%s\"A%lld\":{", a > 0 ? "," : "",
		                      (long long)accounts[a].id);
		bool comma = false;
		for (size_t i = 0; i < sizeof(push_type_names) / sizeof(push_type_names[0]); i++) {
			if ((ps->types & (1u << i)) == 0 || o >= size)
				continue;
			o += (size_t)snprintf(data + o, size - o, "%s\"%s\":\"%llu\"",
			                      comma ? "," : "", push_type_names[i],
			                      (unsigned long long)modseq);
			comma = true;
		}
		if (o < size)
			o += (size_t)snprintf(data + o, size - o, "}");
	}
	if (o < size && (size_t)snprintf(data + o, size - o, "}}") < size - o)
		push_event(ps, "state", data);
	free(data);
}

/* Every half second: drop finished streams, end those whose device was
 * revoked, send a StateChange when a user's change counter moved, ping. */
void *daemon_push_thread(void *context)
{
	struct daemon *sv = context;
	const char *err;
	time_t next_expiry = 0;
	while (!sv->stop) {
		if (time(NULL) >= next_expiry) {
			daemon_expire_uploads(sv);
			next_expiry = time(NULL) + 3600;
		}
		pthread_mutex_lock(&sv->push_lock);
		/* Revocations first, for every stream, before any store lock
		 * (which a long request may hold) is waited for. */
		for (size_t i = 0; i < DAEMON_MAX_STREAMS; i++) {
			struct push_stream *ps = &sv->streams[i];
			if (ps->stream == NULL || (ps->device_id == 0 && ps->web_session_id == 0))
				continue;
			pthread_mutex_lock(&sv->hub_lock);
			int exists = ps->web_session_id > 0
			                 ? hub_web_session_exists(sv->hub, ps->web_session_id,
			                                          time(NULL), &err)
			                 : hub_device_exists(sv->hub, ps->device_id, &err);
			pthread_mutex_unlock(&sv->hub_lock);
			if (exists == 0) {
				/* Revoked: the stream ends now. */
				http_stream_close(ps->stream);
				http_stream_unref(&ps->stream);
			}
		}
		for (size_t i = 0; i < DAEMON_MAX_STREAMS; i++) {
			struct push_stream *ps = &sv->streams[i];
			if (ps->stream == NULL)
				continue;
			if (http_stream_is_closed(ps->stream)) {
				http_stream_unref(&ps->stream);
				continue;
			}
			struct daemon_store *us = daemon_store_acquire(sv, ps->user);
			uint64_t modseq = 0;
			struct store_account *accounts = NULL;
			size_t n_accounts = 0;
			if (us != NULL) {
				store_read_modseq(us->store, &modseq, &err);
				if (modseq != ps->sent_state &&
				    store_accounts_list(us->store, &accounts, &n_accounts, &err) <
				        0)
					n_accounts = 0;
				pthread_mutex_unlock(&us->lock);
			}
			if (modseq != ps->sent_state) {
				bool first = ps->sent_state == UINT64_MAX;
				ps->sent_state = modseq;
				/* closeafter=state (RFC 8620 7.3, for long polling through
				 * buffering proxies): no opening state; the first change
				 * after the request is pushed and ends the stream. The
				 * baseline was taken with the request; "first" is left
				 * only if the store could not be read then. */
				bool skip = ps->close_after_state && first;
				if (!skip && ps->types != 0)
					push_state_change(ps, modseq, accounts, n_accounts);
				store_accounts_free(&accounts, n_accounts);
				if (skip)
					continue;
				if (ps->close_after_state) {
					http_stream_finish(ps->stream);
					http_stream_unref(&ps->stream);
					continue;
				}
			}
			time_t now = time(NULL);
			if (ps->ping > 0 && now - ps->last_ping >= (time_t)ps->ping) {
				char data[64];
				snprintf(data, sizeof(data), "{\"interval\":%u}", ps->ping);
				push_event(ps, "ping", data);
				ps->last_ping = now;
			}
		}
		/* Half a second, or less when woken (daemon_push_wake). */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 500 * 1000 * 1000;
		if (ts.tv_nsec >= 1000 * 1000 * 1000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000 * 1000 * 1000;
		}
		while (!sv->push_woken && !sv->stop &&
		       pthread_cond_timedwait(&sv->push_cond, &sv->push_lock, &ts) == 0)
			;
		sv->push_woken = false;
		pthread_mutex_unlock(&sv->push_lock);
	}
	return NULL;
}

void daemon_push_close_all(struct daemon *sv)
{
	pthread_mutex_lock(&sv->push_lock);
	for (size_t i = 0; i < DAEMON_MAX_STREAMS; i++) {
		if (sv->streams[i].stream != NULL) {
			http_stream_close(sv->streams[i].stream);
			http_stream_unref(&sv->streams[i].stream);
		}
	}
	pthread_mutex_unlock(&sv->push_lock);
}

void daemon_push_wake(struct daemon *sv)
{
	pthread_mutex_lock(&sv->push_lock);
	sv->push_woken = true;
	pthread_cond_signal(&sv->push_cond);
	pthread_mutex_unlock(&sv->push_lock);
}
