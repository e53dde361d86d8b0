/* mailkeep lifecycle run: warn, then purge users inactive past the period. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "hub/hub.h"
#include "lib/buf.h"
#include "store/store.h"

#define DAY 86400

static void lifecycle_usage(FILE *f)
{
	fprintf(f, "usage: mailkeep --data DIR lifecycle run [--dry-run] [--now EPOCH]\n\n"
	           "Users inactive for inactive_purge_days (mailkeep.conf, default 365) are\n"
	           "purged with everything they have on the hub. 30 and 7 days before, they are\n"
	           "warned: an entry in their audit log and a message in their hosted inbox.\n"
	           "Any activity (a sync, adding an account, a device signing in or using the\n"
	           "API of 'serve') restarts the period. --dry-run only lists what would\n"
	           "happen; --now evaluates at another time (for tests and what-if). 'serve'\n"
	           "runs this when it starts and once a day.\n");
}

static int warn_user(struct cli *cli, struct hub *hub, const struct hub_user *u, int days_left,
                     int64_t purge_at)
{
	const char *err;
	char when[32], days[16];
	time_t t = (time_t)purge_at;
	strftime(when, sizeof(when), "%Y-%m-%d", gmtime(&t));
	snprintf(days, sizeof(days), "%d", days_left);
	struct audit_detail d[] = {{"days_left", days}, {"purge_date", when}};
	if (hub_audit(hub, u, AUDIT_LIFECYCLE_WARNING, 0, d, 2, &err) < 0) {
		cli_error("%s", err);
		return -1;
	}
	/* The notice in the hosted inbox, so every device shows it. */
	struct buf msg;
	buf_init(&msg, 8192);
	char date[64];
	time_t now = time(NULL);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", gmtime(&now));
	buf_printf(&msg,
	           "From: mailkeep hub <postmaster@localhost>\r\n"
	           "To: %s\r\n"
	           "Date: %s\r\n"
	           "Message-ID: <lifecycle-%s-%d-%lld@mailkeep.invalid>\r\n"
	           "Subject: Your mail hub account will be deleted in %d days\r\n"
	           "MIME-Version: 1.0\r\n"
	           "Content-Type: text/plain; charset=utf-8\r\n\r\n"
	           "Your account %s on this mail hub has not been used for a long time.\r\n"
	           "Unless it is used before %s, it will be deleted with every mail\r\n"
	           "account, stored password and hosted message it holds.\r\n\r\n"
	           "Any use keeps it: a sync, or signing in on a device.\r\n",
	           u->name, date, u->name, days_left, (long long)purge_at, days_left, u->name,
	           when);
	struct store *store;
	int r = cli_open_user_store(cli, u->name, true, &store);
	if (r == 0) {
		if (store_begin(store, &err) < 0 ||
		    store_local_deliver(store, msg.data, msg.len, now, &err) < 0 ||
		    store_commit(store, &err) < 0) {
			cli_error("%s", err);
			r = -1;
		}
		store_close(&store);
	}
	buf_free(&msg);
	if (r == 0 && hub_user_set_warned(hub, u->id, days_left <= 7 ? 7 : 30, &err) < 0) {
		cli_error("%s", err);
		r = -1;
	}
	return r;
}

int cli_lifecycle_run(struct cli *cli, struct hub *hub, int64_t now, bool dry_run)
{
	const char *err;
	struct hub_user *users;
	size_t n;
	int ret = EXIT_OK;
	if (hub_user_list(hub, &users, &n, &err) < 0) {
		cli_error("%s", err);
		return EXIT_FAIL;
	}
	if (!dry_run && cli_purge_leftovers(hub) < 0)
		cli_error("cannot remove what an earlier purge left in %s/users: %s",
		          hub_data_dir(hub), strerror(errno));
	int64_t period = (int64_t)hub_get_settings(hub)->inactive_purge_days * DAY;
	unsigned warned = 0, purged = 0;
	for (size_t i = 0; i < n; i++) {
		const struct hub_user *u = &users[i];
		int64_t purge_at = u->last_active + period;
		int64_t left = purge_at - now;
		int days_left = left <= 0 ? 0 : (int)((left + DAY - 1) / DAY);
		if (left <= 0) {
			printf("%s %s: inactive for %lld days, past %u\n",
			       dry_run ? "would purge" : "purging", u->name,
			       (long long)((now - u->last_active) / DAY),
			       hub_get_settings(hub)->inactive_purge_days);
			if (!dry_run &&
			    cli_purge_user(hub, u, "inactive past the purge period") < 0)
				ret = EXIT_FAIL;
			purged++;
		} else if ((days_left <= 7 && (u->warned_days == 0 || u->warned_days > 7)) ||
		           (days_left <= 30 && u->warned_days == 0)) {
			printf("%s %s: %d days before purge\n", dry_run ? "would warn" : "warning",
			       u->name, days_left);
			if (!dry_run && warn_user(cli, hub, u, days_left, purge_at) < 0)
				ret = EXIT_FAIL;
			warned++;
		}
	}
	printf("lifecycle%s: %zu users, %u %swarned, %u %spurged\n", dry_run ? " (dry run)" : "", n,
	       warned, dry_run ? "to be " : "", purged, dry_run ? "to be " : "");
	fflush(stdout);
	free(users);
	return ret;
}

void *cli_lifecycle_thread(void *context)
{
	struct lifecycle_worker *w = context;
	time_t next = time(NULL) + (time_t)w->interval_s;
	while (!*w->stop) {
		if (time(NULL) >= next) {
			struct hub *hub;
			if (cli_open_hub(w->cli, false, &hub) == 0) {
				cli_lifecycle_run(w->cli, hub, time(NULL), false);
				hub_close(&hub);
			}
			next = time(NULL) + (time_t)w->interval_s;
		}
		sleep(1);
	}
	return NULL;
}

int cmd_lifecycle(struct cli *cli, int argc, char **argv)
{
	bool dry_run = false;
	int64_t now = time(NULL);
	if (argc < 2 || cli_is_help(argv[1]) || strcmp(argv[1], "run") != 0) {
		lifecycle_usage(argc >= 2 && cli_is_help(argv[1]) ? stdout : stderr);
		return argc >= 2 && cli_is_help(argv[1]) ? EXIT_OK : EXIT_USAGE;
	}
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--dry-run") == 0) {
			dry_run = true;
		} else if (strcmp(argv[i], "--now") == 0 && i + 1 < argc) {
			char *end;
			now = strtoll(argv[++i], &end, 10);
			if (*end != '\0' || now <= 0) {
				cli_error("--now takes seconds since the epoch");
				return EXIT_USAGE;
			}
		} else {
			lifecycle_usage(stderr);
			return EXIT_USAGE;
		}
	}
	struct hub *hub;
	if (cli_open_hub(cli, false, &hub) < 0)
		return EXIT_FAIL;
	int ret = cli_lifecycle_run(cli, hub, now, dry_run);
	hub_close(&hub);
	return ret;
}
