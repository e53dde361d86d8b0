/* Per-account provider settings and sync progress (account-provider.h). */
#include "account-provider.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../store/store-accounts.h"
#include "../store/store-outbox.h"
#include "../store/store-provider.h"
#include "../sync/sync.h"

static int parse_budget(const char *s, int64_t *budget_r)
{
	if (strcmp(s, "auto") == 0) {
		*budget_r = -1;
		return 0;
	}
	char *end = NULL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || s[0] == '-')
		return -1;
	unsigned long long mul = 1;
	if (*end == 'K' || *end == 'k')
		mul = 1000ull, end++;
	else if (*end == 'M' || *end == 'm')
		mul = 1000ull * 1000, end++;
	else if (*end == 'G' || *end == 'g')
		mul = 1000ull * 1000 * 1000, end++;
	if (*end == 'B')
		end++;
	if (*end != '\0' || v > (unsigned long long)INT64_MAX / mul)
		return -1;
	*budget_r = (int64_t)(v * mul);
	return 0;
}

int account_provider_take(int *argc, char **argv, struct account_provider_opts *o)
{
	memset(o, 0, sizeof(*o));
	int out = 0;
	for (int i = 0; i < *argc; i++) {
		bool sent = strcmp(argv[i], "--server-files-sent") == 0;
		bool budget = strcmp(argv[i], "--download-budget") == 0;
		if (!sent && !budget) {
			argv[out++] = argv[i];
			continue;
		}
		if (i + 1 >= *argc) {
			cli_error("%s needs a value", argv[i]);
			return -1;
		}
		const char *v = argv[++i];
		if (sent) {
			o->sent_mode = strcmp(v, "yes") == 0    ? "provider"
			               : strcmp(v, "no") == 0   ? "append"
			               : strcmp(v, "auto") == 0 ? "auto"
			                                        : NULL;
			if (o->sent_mode == NULL) {
				cli_error("--server-files-sent takes yes, no or auto");
				return -1;
			}
		} else if (parse_budget(v, &o->budget) < 0) {
			cli_error("--download-budget takes bytes a day (such as 2500M; 0: no "
			          "limit) or auto");
			return -1;
		} else {
			o->set_budget = true;
		}
		o->any = true;
	}
	argv[out] = NULL;
	*argc = out;
	return 0;
}

int account_provider_apply(struct cli *cli, const char *user, int64_t account_id,
                           const struct account_provider_opts *o)
{
	struct store *store = NULL;
	const char *err = NULL;
	char key[64];
	int64_t store_account;
	if (!o->any)
		return EXIT_OK;
	if (cli_open_user_store(cli, user, true, &store) < 0)
		return EXIT_FAIL;
	snprintf(key, sizeof(key), "account:%lld", (long long)account_id);
	int r = -1;
	if (o->sent_mode != NULL &&
	    store_outbox_set_sent_mode(store, account_id, o->sent_mode, &err) < 0)
		goto out;
	if (o->set_budget) {
		if (store_begin(store, &err) < 0)
			goto out;
		if (store_account_ensure(store, key, &store_account, &err) < 0 ||
		    store_provider_set_budget(store, store_account, o->budget, &err) < 0) {
			store_rollback(store);
			goto out;
		}
		if (store_commit(store, &err) < 0)
			goto out;
	}
	r = 0;
out:
	if (r < 0)
		cli_error("%s", err != NULL ? err : "cannot store the account's settings");
	else
		account_provider_show(cli, user, account_id);
	store_close(&store);
	return r < 0 ? EXIT_FAIL : EXIT_OK;
}

/* "12.3 MB", or "45.6 kB" below a megabyte. */
static void human_bytes(char *out, size_t size, uint64_t bytes)
{
	if (bytes < 1000 * 1000)
		snprintf(out, size, "%.1f kB", (double)bytes / 1e3);
	else
		snprintf(out, size, "%.1f MB", (double)bytes / 1e6);
}

void account_provider_show(struct cli *cli, const char *user, int64_t account_id)
{
	struct store *store = NULL;
	const char *err;
	char key[64], mode[16] = "auto", budget[48];
	int64_t store_account = 0;
	struct store_provider_state p;
	memset(&p, 0, sizeof(p));
	p.dl_budget = -1;
	const char *dir = cli_data_dir(cli, true);
	char path[PATH_MAX];
	int n = dir != NULL ? snprintf(path, sizeof(path), "%s/users/%s/store.db", dir, user) : -1;
	if (n < 0 || (size_t)n >= sizeof(path) || access(path, F_OK) < 0) {
		printf("     not synced yet\n");
		return;
	}
	if (cli_open_user_store(cli, user, false, &store) < 0)
		return;
	snprintf(key, sizeof(key), "account:%lld", (long long)account_id);
	if (store_outbox_sent_mode(store, account_id, mode, &err) < 0)
		snprintf(mode, sizeof(mode), "auto");
	if (store_account_find(store, key, &store_account, &err) == 1)
		store_provider_get(store, store_account, &p, &err);
	store_close(&store);
	char amount[32], done[32];
	human_bytes(done, sizeof(done), p.bytes_done);
	if (p.dl_budget > 0) {
		human_bytes(amount, sizeof(amount), (uint64_t)p.dl_budget);
		snprintf(budget, sizeof(budget), "%s a day", amount);
	} else if (p.dl_budget == 0)
		snprintf(budget, sizeof(budget), "no limit");
	else if (p.gm_ext)
		snprintf(budget, sizeof(budget), "auto (Gmail: %.1f MB a day)",
		         (double)SYNC_GMAIL_DAILY_BYTES / 1e6);
	else
		snprintf(budget, sizeof(budget), "auto (no limit)");
	printf("     sent copy: %s; download budget: %s; synced %llu of %llu messages (server "
	       "STATUS), %s downloaded%s\n",
	       strcmp(mode, "provider") == 0 ? "filed by the server"
	       : strcmp(mode, "append") == 0 ? "filed by mailkeep"
	       : p.gm_ext                    ? "auto (filed by the server: X-GM-EXT-1)"
	                                     : "auto",
	       budget, (unsigned long long)p.held_messages, (unsigned long long)p.status_messages,
	       done,
	       p.paced ? "; paced: the daily budget was spent, the next run after midnight UTC "
	                 "goes on"
	               : "");
}
