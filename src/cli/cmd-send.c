/* mailkeep send and mailkeep outbox: submission through each account's
 * own SMTP server, with the durable outbox. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "hub/hub.h"
#include "mime/mime-submit.h"
#include "service/svc-outbox.h"
#include "store/store-outbox.h"
#include "store/store.h"

#define SEND_MAX_TO 100

static void send_usage(FILE *f)
{
	fprintf(f,
	        "usage: mailkeep --data DIR send --user NAME --account ID [--to ADDR ...]\n"
	        "                [--queue-only] [--passphrase-file P] [--retry-base S] < "
	        "message.eml\n\n"
	        "Sends the message on stdin (RFC 5322) through the SMTP server of the account,\n"
	        "as that account: the envelope sender is the account's login when it is an\n"
	        "address, else the message's From address. The recipients are the --to\n"
	        "addresses, or else every To, Cc and Bcc address of the message. Bcc fields\n"
	        "are removed from the bytes sent; Date and Message-ID are added when missing.\n\n"
	        "The message is first committed to the user's outbox, then sent at once\n"
	        "(unless --queue-only; 'serve' sends queued mail). Temporary failures (4xx,\n"
	        "network, timeouts) are retried with exponential backoff starting at\n"
	        "--retry-base seconds (default 60), %d attempts in all; a permanent failure\n"
	        "(5xx, refused TLS) leaves the message in the outbox as failed and a notice in\n"
	        "the user's hosted inbox. See 'mailkeep outbox'.\n\n"
	        "Exit status: 0 sent, or queued for a retry (it is safe in the outbox);\n"
	        "1 failed or refused (invalid input is refused before anything is queued);\n"
	        "2 bad command line.\n",
	        SVC_OUTBOX_MAX_ATTEMPTS);
}

static void outbox_usage(FILE *f)
{
	fprintf(f, "usage: mailkeep --data DIR outbox --user NAME [list]\n"
	           "       mailkeep --data DIR outbox --user NAME run [--retry-base S] "
	           "[--passphrase-file P]\n"
	           "       mailkeep --data DIR outbox --user NAME retry ID | cancel ID\n"
	           "       mailkeep --data DIR outbox --user NAME sent-copy ACCOUNT "
	           "auto|append|provider\n\n"
	           "list: every message of the outbox with its state (queued, sending, sent,\n"
	           "failed), attempts, the next attempt, the server's last reply and what became\n"
	           "of the Sent copy. run: send what is due now. retry: a failed message is\n"
	           "queued again, due now, its attempts reset. cancel: a queued or failed message\n"
	           "is deleted (never one being sent or already sent). sent-copy: who files the\n"
	           "Sent copy for an account: 'append' (the hub APPENDs it to the provider's Sent\n"
	           "folder), 'provider' (the provider does it itself), 'auto' (provider for\n"
	           "Gmail and Microsoft 365, else append; the default).\n");
}

/* How send and outbox run send, unless --retry-base says otherwise. */
static struct svc_outbox_options outbox_options(void)
{
	struct svc_outbox_options opt = {.retry_base = SVC_OUTBOX_RETRY_BASE,
	                                 .max_attempts = SVC_OUTBOX_MAX_ATTEMPTS,
	                                 .reporter = {.report = cli_report}};
	return opt;
}

static int parse_id(const char *s, int64_t *id_r)
{
	char *end;
	long long v = strtoll(s, &end, 10);
	if (*end != '\0' || v <= 0)
		return -1;
	*id_r = v;
	return 0;
}

/* Read all of stdin, at most max bytes. */
static char *read_stdin(size_t max, size_t *len_r)
{
	size_t cap = 65536, len = 0;
	char *b = malloc(cap);
	if (b == NULL)
		return NULL;
	for (;;) {
		if (len == cap) {
			if (cap > max) {
				free(b);
				cli_error("the message is larger than %zu bytes", max);
				return NULL;
			}
			char *nb = realloc(b, cap * 2);
			if (nb == NULL) {
				free(b);
				return NULL;
			}
			b = nb;
			cap *= 2;
		}
		ssize_t n = read(STDIN_FILENO, b + len, cap - len);
		if (n < 0) {
			free(b);
			cli_error("cannot read the message from stdin");
			return NULL;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > max) {
		free(b);
		cli_error("the message is larger than %zu bytes", max);
		return NULL;
	}
	*len_r = len;
	return b;
}

static int parse_retry_base(const char *s, int64_t *base_r)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (*end != '\0' || v < 1 || v > 86400) {
		cli_error("--retry-base takes 1 to 86400 seconds");
		return -1;
	}
	*base_r = v;
	return 0;
}

int cmd_send(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"user", required_argument, NULL, 'u'},
	    {"account", required_argument, NULL, 'a'},
	    {"to", required_argument, NULL, 't'},
	    {"queue-only", no_argument, NULL, 'Q'},
	    {"passphrase-file", required_argument, NULL, 'P'},
	    {"retry-base", required_argument, NULL, 'r'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *user = NULL, *account = NULL, *ppfile = NULL, *to[SEND_MAX_TO];
	size_t n_to = 0;
	bool queue_only = false;
	struct svc_outbox_options opt = outbox_options();
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'u':
			user = optarg;
			break;
		case 'a':
			account = optarg;
			break;
		case 't':
			if (n_to == SEND_MAX_TO) {
				cli_error("at most %d --to", SEND_MAX_TO);
				return EXIT_USAGE;
			}
			to[n_to++] = optarg;
			break;
		case 'Q':
			queue_only = true;
			break;
		case 'P':
			ppfile = optarg;
			break;
		case 'r':
			if (parse_retry_base(optarg, &opt.retry_base) < 0)
				return EXIT_USAGE;
			break;
		case 'h':
			send_usage(stdout);
			return EXIT_OK;
		default:
			send_usage(stderr);
			return EXIT_USAGE;
		}
	}
	int64_t account_id;
	if (optind != argc || user == NULL || account == NULL ||
	    parse_id(account, &account_id) < 0) {
		cli_error(optind != argc ? "unexpected argument '%s'"
		                         : "send needs --user NAME and --account ID%s",
		          optind != argc ? argv[optind] : "");
		send_usage(stderr);
		return EXIT_USAGE;
	}
	for (size_t i = 0; i < n_to; i++) {
		if (strpbrk(to[i], "\r\n") != NULL || !mime_submit_valid_address(to[i])) {
			cli_error("bad --to address (a plain local@domain, no line breaks)");
			return EXIT_USAGE;
		}
	}
	if (cli_data_dir(cli, true) == NULL || !cli_valid_user(user))
		return EXIT_USAGE;
	struct hub *hub = NULL;
	struct hub_user u;
	struct hub_account *accts = NULL, *a = NULL;
	size_t n = 0;
	struct store *store = NULL;
	struct mime_submission sub = {0};
	char *msg = NULL;
	const char *err;
	int ret = EXIT_FAIL;
	if (cli_open_hub(cli, true, &hub) < 0)
		return EXIT_FAIL;
	if (hub_user_get(hub, user, &u, &err) < 0 ||
	    hub_account_list(hub, u.id, &accts, &n, &err) < 0) {
		cli_error("%s", err);
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (accts[i].id == account_id)
			a = &accts[i];
	if (a == NULL) {
		cli_error("%s has no account %lld", user, (long long)account_id);
		goto out;
	}
	if (a->smtp_url == NULL) {
		cli_error("account %lld has no SMTP server (add it with --smtp)",
		          (long long)account_id);
		goto out;
	}
	size_t len;
	if ((msg = read_stdin(MIME_SUBMIT_MAX_SIZE, &len)) == NULL)
		goto out;
	const char *identity = mime_submit_valid_address(a->login) ? a->login : NULL;
	if (mime_submit_prepare(msg, len, to, n_to, identity, time(NULL), &sub, &err) < 0) {
		cli_error("message refused, nothing queued: %s", err);
		goto out;
	}
	const char *sender = identity != NULL ? identity : sub.from_header;
	if (sender == NULL) {
		cli_error("message refused, nothing queued: the account's login is not an "
		          "address and the message has no valid From address");
		goto out;
	}
	if (cli_open_user_store(cli, user, true, &store) < 0)
		goto out;
	int64_t id;
	if (store_outbox_add(store, account_id, 0, sender, (const char *const *)sub.rcpts,
	                     sub.n_rcpts, sub.data, sub.len, time(NULL), &id, &err) < 0) {
		cli_error("%s", err);
		goto out;
	}
	printf("queued %lld: %zu bytes from %s to %zu recipient%s\n", (long long)id, sub.len,
	       sender, sub.n_rcpts, sub.n_rcpts == 1 ? "" : "s");
	fflush(stdout);
	if (queue_only) {
		ret = EXIT_OK;
		goto out;
	}
	struct svc_outbox_result st;
	opt.only_id = id;
	opt.passphrase = cli_passphrase(ppfile);
	if (svc_outbox_run(hub, &u, store, &opt, &st) < 0) {
		cli_error("%s", st.error);
		goto out;
	}
	ret = st.failed == 0 ? EXIT_OK : EXIT_FAIL;
	if (hub_user_touch(hub, u.id, time(NULL), &err) < 0)
		cli_error("%s", err);
out:
	free(msg);
	mime_submission_free(&sub);
	store_close(&store);
	hub_accounts_free(&accts, n);
	hub_close(&hub);
	return ret;
}

static void fmt_time(int64_t t, char *out, size_t size)
{
	if (t <= 0) {
		snprintf(out, size, "-");
		return;
	}
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int outbox_list(struct store *store)
{
	struct store_outbox_item *items = NULL;
	size_t n = 0;
	const char *err;
	if (store_outbox_list(store, &items, &n, &err) < 0) {
		cli_error("%s", err);
		return EXIT_FAIL;
	}
	if (n == 0)
		printf("the outbox is empty\n");
	for (size_t i = 0; i < n; i++) {
		const struct store_outbox_item *it = &items[i];
		char created[32], next[32];
		fmt_time(it->created, created, sizeof(created));
		fmt_time(it->state == STORE_OUTBOX_QUEUED ? it->next_attempt : 0, next,
		         sizeof(next));
		printf("%lld %s account=%lld attempts=%u created=%s next=%s size=%llu from=%s "
		       "to=",
		       (long long)it->id, store_outbox_state_name(it->state),
		       (long long)it->account_id, it->attempts, created, next,
		       (unsigned long long)it->size, it->mail_from);
		for (size_t j = 0; j < it->n_rcpts; j++)
			printf("%s%s", j > 0 ? "," : "", it->rcpts[j]);
		if (it->state == STORE_OUTBOX_SENT && it->sent_copy[0] == '\0') {
			char when[32];
			fmt_time(it->copy_next, when, sizeof(when));
			printf(" sent-copy=pending copy-attempts=%u copy-next=%s",
			       it->copy_attempts, when);
			if (it->copy_error[0] != '\0')
				printf(" copy-error=\"%s\"", it->copy_error);
		} else {
			printf(" sent-copy=%s", it->sent_copy[0] != '\0' ? it->sent_copy : "-");
		}
		if (it->last_reply[0] != '\0')
			printf(" reply=\"%s\"", it->last_reply);
		printf("\n");
	}
	store_outbox_items_free(&items, n);
	return EXIT_OK;
}

int cmd_outbox(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"user", required_argument, NULL, 'u'},
	    {"passphrase-file", required_argument, NULL, 'P'},
	    {"retry-base", required_argument, NULL, 'r'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *user = NULL, *ppfile = NULL, *err;
	struct svc_outbox_options opt = outbox_options();
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case 'u':
			user = optarg;
			break;
		case 'P':
			ppfile = optarg;
			break;
		case 'r':
			if (parse_retry_base(optarg, &opt.retry_base) < 0)
				return EXIT_USAGE;
			break;
		case 'h':
			outbox_usage(stdout);
			return EXIT_OK;
		default:
			outbox_usage(stderr);
			return EXIT_USAGE;
		}
	}
	const char *verb = optind < argc ? argv[optind++] : "list";
	if (user == NULL) {
		cli_error("outbox needs --user NAME");
		outbox_usage(stderr);
		return EXIT_USAGE;
	}
	int64_t id = 0, account_id = 0;
	const char *mode = NULL;
	bool ok;
	if (strcmp(verb, "list") == 0 || strcmp(verb, "run") == 0)
		ok = optind == argc;
	else if (strcmp(verb, "retry") == 0 || strcmp(verb, "cancel") == 0)
		ok = optind + 1 == argc && parse_id(argv[optind], &id) == 0;
	else if (strcmp(verb, "sent-copy") == 0)
		ok = optind + 2 == argc && parse_id(argv[optind], &account_id) == 0 &&
		     ((mode = argv[optind + 1]), strcmp(mode, "auto") == 0 ||
		                                     strcmp(mode, "append") == 0 ||
		                                     strcmp(mode, "provider") == 0);
	else
		ok = false;
	if (!ok) {
		outbox_usage(stderr);
		return EXIT_USAGE;
	}
	if (cli_data_dir(cli, true) == NULL || !cli_valid_user(user))
		return EXIT_USAGE;
	struct store *store = NULL;
	int ret = EXIT_FAIL;
	if (strcmp(verb, "run") == 0) {
		struct hub *hub = NULL;
		struct hub_user u;
		struct svc_outbox_result st;
		if (cli_open_hub_user(cli, true, user, &hub, &u) < 0)
			return EXIT_FAIL;
		opt.passphrase = cli_passphrase(ppfile);
		int r = -1;
		if (cli_open_user_store(cli, user, false, &store) == 0 &&
		    (r = svc_outbox_run(hub, &u, store, &opt, &st)) < 0) {
			cli_error("%s", st.error);
		} else if (r == 0) {
			printf("outbox %s: %u sent, %u to retry, %u failed; Sent copies: %u filed, "
			       "%u to retry, %u failed\n",
			       user, st.sent, st.retry, st.failed, st.filed, st.copy_retry,
			       st.copy_failed);
			ret = st.failed == 0 ? EXIT_OK : EXIT_FAIL;
		}
		store_close(&store);
		hub_close(&hub);
		return ret;
	}
	if (cli_open_user_store(cli, user, false, &store) < 0)
		return EXIT_FAIL;
	if (strcmp(verb, "list") == 0) {
		ret = outbox_list(store);
	} else if (strcmp(verb, "sent-copy") == 0) {
		if (store_outbox_set_sent_mode(store, account_id, mode, &err) < 0)
			cli_error("%s", err);
		else
			ret = EXIT_OK;
	} else {
		bool retry = strcmp(verb, "retry") == 0;
		int r = retry ? store_outbox_retry(store, id, time(NULL), &err)
		              : store_outbox_cancel(store, id, &err);
		if (r < 0)
			cli_error("%s", err);
		else if (r == 0)
			cli_error("no %s message %lld in the outbox",
			          retry ? "failed or queued" : "queued or failed", (long long)id);
		else {
			printf("%s %lld\n", retry ? "queued again" : "cancelled", (long long)id);
			ret = EXIT_OK;
		}
	}
	store_close(&store);
	return ret;
}
