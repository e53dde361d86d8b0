/* The daemon's one logging function. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "daemon-internal.h"
#include "service/service.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void daemon_log(enum daemon_log_level level, const char *user, int64_t account, const char *fmt,
                ...)
{
	char head[160], text[2048];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	size_t o = strftime(head, sizeof(head), "%Y-%m-%dT%H:%M:%SZ", &tm);
	int n = snprintf(head + o, sizeof(head) - o, " %s", level == DAEMON_LOG_ERROR ? "error" : "info");
	o += n > 0 ? (size_t)n : 0;
	if (user != NULL && o < sizeof(head)) {
		n = snprintf(head + o, sizeof(head) - o, " user=%s", user);
		o += n > 0 ? (size_t)n : 0;
	}
	if (account != 0 && o < sizeof(head))
		snprintf(head + o, sizeof(head) - o, " account=%lld", (long long)account);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap); /* a longer line is cut */
	va_end(ap);
	/* One line each: a newline inside (a server's text) would forge one. */
	for (char *c = text; *c != '\0'; c++)
		if (*c == '\n' || *c == '\r')
			*c = ' ';
	pthread_mutex_lock(&log_lock);
	if (level == DAEMON_LOG_ERROR) {
		fprintf(stderr, "%s mailkeep: %s\n", head, text);
		fflush(stderr);
	} else {
		fprintf(stdout, "%s %s\n", head, text);
		fflush(stdout);
	}
	pthread_mutex_unlock(&log_lock);
}

void daemon_report(void *ctx, enum svc_level level, const char *text)
{
	daemon_log(level == SVC_WARNING ? DAEMON_LOG_ERROR : DAEMON_LOG_INFO, ctx, 0, "%s", text);
}
