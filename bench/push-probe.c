/* push-probe: drives src/push directly, for tests/push_test.py and the push
 * benchmarks (bench/idle-bench.py). Not a test by itself.
 *
 *   push-probe [--renew S] [--sweep S] [--rate N] [--timeout MS]
 *              [--backoff-min MS] [--backoff-max MS] [--no-notify]
 *
 * Reads accounts on stdin, one per line: "ID URL LOGIN PASSFILE [CAFILE]"
 * (PASSFILE holds the password; it is read at each login, so a test can
 * change it). "-" alone on a line: end of the list (stdin may stay open;
 * "remove ID" lines after it remove an account).
 * Prints one line per event on stdout, flushed:
 *   changed ID FOLDER MS      (MS: CLOCK_REALTIME milliseconds)
 *   report ID stopped|retry MESSAGE
 *   login ID ok|failed
 * and every second (with --stats) "stats connecting=N authenticating=N
 * idle=N backoff=N stopped=N logins=N".
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "push/push.h"

struct acct {
	int64_t id;
	char *passfile;
};
static struct acct *accts;
static size_t naccts;
static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;

static long long real_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int credential(void *ctx, int64_t account, char *buf, size_t size, char *error,
                      size_t error_size)
{
	(void)ctx;
	for (size_t i = 0; i < naccts; i++) {
		if (accts[i].id != account)
			continue;
		FILE *f = fopen(accts[i].passfile, "r");
		if (f == NULL) {
			snprintf(error, error_size, "cannot open the password file");
			return -1;
		}
		size_t n = fread(buf, 1, size - 1, f);
		fclose(f);
		buf[n] = '\0';
		return 0;
	}
	snprintf(error, error_size, "no such account");
	return -2;
}

static void changed(void *ctx, int64_t account, const char *folder)
{
	(void)ctx;
	pthread_mutex_lock(&out_mu);
	printf("changed %lld %s %lld\n", (long long)account, folder, real_ms());
	fflush(stdout);
	pthread_mutex_unlock(&out_mu);
}

static void report(void *ctx, int64_t account, bool stopped, const char *message)
{
	(void)ctx;
	pthread_mutex_lock(&out_mu);
	printf("report %lld %s %s\n", (long long)account, stopped ? "stopped" : "retry", message);
	fflush(stdout);
	pthread_mutex_unlock(&out_mu);
}

static void login(void *ctx, int64_t account, bool ok)
{
	(void)ctx;
	pthread_mutex_lock(&out_mu);
	printf("login %lld %s\n", (long long)account, ok ? "ok" : "failed");
	fflush(stdout);
	pthread_mutex_unlock(&out_mu);
}

static bool tracing;
static void trace(void *ctx, int64_t account, bool in, const char *data, size_t len)
{
	(void)ctx;
	if (!tracing)
		return;
	pthread_mutex_lock(&out_mu);
	fprintf(stderr, "%lld %s %.*s", (long long)account, in ? "S:" : "C:", (int)len, data);
	pthread_mutex_unlock(&out_mu);
}

static void *run(void *arg)
{
	push_loop_run(arg);
	return NULL;
}

static unsigned num(const char *s)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (*s == '\0' || *end != '\0' || v > 1000000000UL) {
		fprintf(stderr, "push-probe: bad number %s\n", s);
		exit(2);
	}
	return (unsigned)v;
}

int main(int argc, char **argv)
{
	struct push_settings set = {0};
	bool stats = false;
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : "";
		if (strcmp(o, "--no-notify") == 0) {
			set.no_notify = true;
			continue;
		}
		if (strcmp(o, "--stats") == 0) {
			stats = true;
			continue;
		}
		if (strcmp(o, "--renew") == 0)
			set.idle_renew_s = num(v);
		else if (strcmp(o, "--sweep") == 0)
			set.status_interval_s = num(v);
		else if (strcmp(o, "--rate") == 0)
			set.connect_rate = num(v);
		else if (strcmp(o, "--timeout") == 0)
			set.timeout_ms = num(v);
		else if (strcmp(o, "--backoff-min") == 0)
			set.backoff_min_ms = num(v);
		else if (strcmp(o, "--backoff-max") == 0)
			set.backoff_max_ms = num(v);
		else if (strcmp(o, "--throttle-min") == 0)
			set.throttle_min_ms = num(v);
		else {
			fprintf(stderr, "push-probe: unknown option %s\n", o);
			return 2;
		}
		i++;
	}
	struct push_callbacks cb = {.credential = credential,
	                            .changed = changed,
	                            .report = report,
	                            .login = login,
	                            .trace = trace};
	tracing = getenv("PUSH_TRACE") != NULL;
	struct push_loop *loop;
	const char *err;
	if (push_loop_new(&set, &cb, &loop, &err) < 0) {
		fprintf(stderr, "push-probe: %s\n", err);
		return 1;
	}
	char line[4096];
	size_t cap = 0;
	struct push_account_config *cfgs = NULL;
	while (fgets(line, sizeof(line), stdin) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if (strcmp(line, "-") == 0)
			break;
		char *save = NULL;
		char *id = strtok_r(line, " ", &save), *url = strtok_r(NULL, " ", &save),
		     *user = strtok_r(NULL, " ", &save), *pf = strtok_r(NULL, " ", &save),
		     *ca = strtok_r(NULL, " ", &save);
		if (id == NULL || url == NULL || user == NULL || pf == NULL)
			continue;
		if (naccts == cap) {
			cap = cap ? cap * 2 : 64;
			accts = realloc(accts, cap * sizeof(*accts));
			cfgs = realloc(cfgs, cap * sizeof(*cfgs));
			if (accts == NULL || cfgs == NULL)
				return 1;
		}
		accts[naccts].id = num(id);
		accts[naccts].passfile = strdup(pf);
		cfgs[naccts] = (struct push_account_config){.id = accts[naccts].id,
		                                            .url = strdup(url),
		                                            .login = strdup(user),
		                                            .ca_file = ca ? strdup(ca) : NULL};
		naccts++;
	}
	for (size_t i = 0; i < naccts; i++)
		if (push_account_add(loop, &cfgs[i], &err) < 0) {
			fprintf(stderr, "push-probe: account %lld: %s\n", (long long)cfgs[i].id,
			        err);
			return 1;
		}
	pthread_t t;
	pthread_create(&t, NULL, run, loop);
	if (stats) {
		for (;;) {
			unsigned c[PUSH_STATE_COUNT];
			uint64_t logins;
			sleep(1);
			push_loop_counts(loop, c, &logins);
			pthread_mutex_lock(&out_mu);
			printf(
			    "stats connecting=%u authenticating=%u idle=%u backoff=%u stopped=%u "
			    "logins=%llu\n",
			    c[0], c[1], c[2], c[3], c[4], (unsigned long long)logins);
			fflush(stdout);
			pthread_mutex_unlock(&out_mu);
		}
	}
	while (fgets(line, sizeof(line), stdin) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if (strncmp(line, "remove ", 7) == 0)
			push_account_remove(loop, num(line + 7));
	}
	push_loop_stop(loop);
	pthread_join(t, NULL);
	push_loop_free(&loop);
	for (size_t i = 0; i < naccts; i++) {
		free(accts[i].passfile);
		free((char *)cfgs[i].url);
		free((char *)cfgs[i].login);
		free((char *)cfgs[i].ca_file);
	}
	free(accts);
	free(cfgs);
	return 0;
}
