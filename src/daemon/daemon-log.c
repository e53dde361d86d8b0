/* The daemon's one logging function. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

#include "daemon-internal.h"
#include "service/service.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void daemon_log(enum daemon_log_level level, const char *user, int64_t account, const char *fmt,
                ...)
{
	(void)user;
	(void)account;
	char text[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap); /* a longer line is cut */
	va_end(ap);
	pthread_mutex_lock(&log_lock);
	if (level == DAEMON_LOG_ERROR) {
		fprintf(stderr, "mailkeep: %s\n", text);
		fflush(stderr);
	} else {
		fprintf(stdout, "%s\n", text);
		fflush(stdout);
	}
	pthread_mutex_unlock(&log_lock);
}

void daemon_report(void *ctx, enum svc_level level, const char *text)
{
	daemon_log(level == SVC_WARNING ? DAEMON_LOG_ERROR : DAEMON_LOG_INFO, ctx, 0, "%s", text);
}
