/* mailkeep export: the hosted mailbox as Maildir++. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "maildir/maildir.h"
#include "store/store.h"

static void export_usage(FILE *f)
{
	fprintf(f,
	        "usage: mailkeep --data DIR export --user NAME --maildir OUT\n\n"
	        "Writes NAME's hosted mailbox as a Maildir++ tree at OUT (which must not exist\n"
	        "or be empty): INBOX at the root, other folders as .Name with '.' as the\n"
	        "hierarchy separator, messages byte-exact with their flags in the file names\n"
	        "(:2,DFRST plus keyword letters listed in dovecot-keywords) and the internal\n"
	        "date as the file time. Dovecot can serve OUT as it is. A '.', '/' or '\\' in\n"
	        "a folder name is written as \\NN (hex), as Dovecot's listescape plugin stores\n"
	        "it: serve such folders with that plugin. Dovecot's maildir holds 26 keywords\n"
	        "per folder; any keyword beyond is listed on stderr and the exit status is 1.\n");
}

int cmd_export(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"user", required_argument, NULL, 'u'},
	    {"maildir", required_argument, NULL, 'm'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *user = NULL, *out = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'u':
			user = optarg;
			break;
		case 'm':
			out = optarg;
			break;
		case 'h':
			export_usage(stdout);
			return EXIT_OK;
		default:
			export_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (user == NULL || out == NULL || optind != argc) {
		cli_error("export needs --user NAME and --maildir OUT");
		export_usage(stderr);
		return EXIT_USAGE;
	}
	struct store *store;
	if (cli_open_user_store(cli, user, false, &store) < 0)
		return EXIT_FAIL;
	struct maildir_export_stats st;
	const char *err;
	int r = maildir_export(store, out, &st, &err);
	store_close(&store);
	if (r < 0) {
		maildir_export_stats_free(&st);
		cli_error("export failed: %s", err);
		return EXIT_FAIL;
	}
	printf("exported %u folders, %llu messages, %.1f MB to %s\n", st.folders, st.messages,
	       (double)st.bytes / 1e6, out);
	if (st.keywords_unwritten > 0) {
		/* The export is complete except for these: say exactly which. */
		fputs(buf_str(&st.unwritten), stderr);
		if (st.unwritten_truncated)
			fprintf(stderr, "(list cut short)\n");
		cli_error("export incomplete: %llu keywords not written (Dovecot's maildir holds "
		          "at most 26 keywords per folder); every message and flag was written",
		          st.keywords_unwritten);
		maildir_export_stats_free(&st);
		return EXIT_FAIL;
	}
	maildir_export_stats_free(&st);
	return EXIT_OK;
}
