/* mailkeep audit: show or verify a user's audit log. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "hub/hub.h"

static void audit_usage(FILE *f)
{
	fprintf(f, "usage: mailkeep --data DIR audit --user NAME [--verify]\n\n"
	           "Shows every entry of NAME's audit log: each decryption of a credential and\n"
	           "what for, each login to a provider and its result, consents, accounts added\n"
	           "and removed, sign-ins and lifecycle warnings. The log is append-only and\n"
	           "hash-chained; --verify checks every entry and that nothing was edited,\n"
	           "reordered or dropped (exit status 1 if anything was).\n");
}

int cmd_audit(struct cli *cli, int argc, char **argv)
{
	const char *user = NULL, *err;
	bool verify = false;
	for (int i = 1; i < argc; i++) {
		if (cli_is_help(argv[i])) {
			audit_usage(stdout);
			return EXIT_OK;
		} else if (strcmp(argv[i], "--user") == 0 && i + 1 < argc) {
			user = argv[++i];
		} else if (strcmp(argv[i], "--verify") == 0) {
			verify = true;
		} else {
			audit_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (user == NULL) {
		cli_error("audit needs --user NAME");
		return EXIT_USAGE;
	}
	struct hub *hub;
	struct hub_user u;
	if (cli_open_hub_user(cli, false, user, &hub, &u) < 0)
		return EXIT_FAIL;
	int ret = EXIT_FAIL;
	if (verify) {
		uint64_t count;
		const char *note;
		if (hub_audit_verify(hub, &u, &count, &note, &err) < 0) {
			cli_error("audit log of %s is NOT intact: %s", user, err);
			goto out;
		}
		if (note != NULL)
			printf("audit log of %s: %s\n", user, note);
		printf("audit log of %s is intact: %llu entries, chain and head verified\n", user,
		       (unsigned long long)count);
		ret = EXIT_OK;
		goto out;
	}
	char path[4200];
	hub_user_path(hub, user, "audit.log", path, sizeof(path));
	struct audit_iter *it;
	struct audit_entry e;
	if (audit_iter_init(path, &it, &err) < 0) {
		cli_error("%s", err);
		goto out;
	}
	while (audit_iter_next(it, &e)) {
		char when[32];
		time_t t = (time_t)e.time;
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%SZ", gmtime(&t));
		printf("%6llu  %s  %-20s", (unsigned long long)e.seq, when, e.event_name);
		if (e.account[0] != '\0')
			printf("  account %s", e.account);
		for (size_t i = 0; i < e.n_details; i++)
			printf("  %s=%s", e.details[i].key, e.details[i].value);
		putchar('\n');
	}
	if (audit_iter_deinit(&it, &err) < 0) {
		cli_error("audit log of %s is damaged: %s", user, err);
		goto out;
	}
	ret = EXIT_OK;
out:
	hub_close(&hub);
	return ret;
}
