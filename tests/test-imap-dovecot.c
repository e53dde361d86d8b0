/*
 * The replay commands of src/imap/imap-commands.c against a real Dovecot on
 * loopback (tests/fixture/dovecot.sh): what the scripted transcripts of
 * test-imap-client.c assume about a server is checked here on one. Twice:
 * with Dovecot's full capabilities, and with UIDPLUS, MOVE and CONDSTORE
 * hidden (imap_capability), where the client must not use them.
 * Skipped (77) when Dovecot is not installed.
 */
#include "imap/imap-client.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "lib/imap-utf7.h"
#include "test.h"
#include "test-dovecot.h"

#define FAILED(call)                                                                               \
	do {                                                                                       \
		error = NULL;                                                                      \
		CHECK((call) == IMAP_CMD_FAILED);                                                  \
	} while (0)

static void message(char *out, size_t size, int i)
{
	CHECK(snprintf(out, size,
	               "From: a@example.org\r\nTo: b@example.org\r\nSubject: replay %d\r\n"
	               "Message-ID: <replay-%d@example.org>\r\n\r\nbody %d\r\n",
	               i, i, i) < (int)size);
}

static void search(struct imap_client *c, const char *criteria, size_t want_n, uint32_t want_first)
{
	const char *error;
	uint32_t *uids;
	size_t n;
	OK(imap_client_uid_search(c, criteria, &uids, &n, &error));
	if (n != want_n)
		fprintf(stderr, "SEARCH %s: %zu results, want %zu\n", criteria, n, want_n);
	CHECK(n == want_n);
	CHECK(n == 0 || uids[0] == want_first);
	free(uids);
}

/* Every command once, on a server with everything (full) or with UIDPLUS,
 * MOVE and CONDSTORE hidden. */
static void run_commands(bool full)
{
	const char *error;
	struct imap_client *c = dovecot_login();
	CHECK(imap_client_has_cap(c, "UIDPLUS") == full && imap_client_has_cap(c, "MOVE") == full);

	/* Mailboxes: names with a space go quoted; a second CREATE is
	 * ALREADYEXISTS; an unknown one NONEXISTENT. */
	OK(imap_client_create(c, "Replay Test", &error));
	FAILED(imap_client_create(c, "Replay Test", &error));
	CHECK_STR(imap_client_last_code(c), "ALREADYEXISTS");
	OK(imap_client_create(c, "Replay \"Copy\"", &error));
	FAILED(imap_client_delete(c, "No Such Box", &error));
	CHECK_STR(imap_client_last_code(c), "NONEXISTENT");
	/* A device's UTF-8 name goes as modified UTF-7; the server lists it
	 * back in that form. A raw 8-bit name goes as a literal (refused by a
	 * server that has not enabled UTF8=ACCEPT, but the session goes on). */
	struct buf name;
	buf_init(&name, 1024);
	OK(imap_utf7_encode("Caf\xc3\xa9 \xf0\x9f\x98\x80 & Co", &name, &error));
	CHECK_STR(buf_str(&name), "Caf&AOk- &2D3eAA- &- Co");
	OK(imap_client_create(c, buf_str(&name), &error));
	struct imap_select_info info;
	OK(imap_client_examine(c, buf_str(&name), false, &info, &error));
	CHECK(info.exists == 0);
	OK(imap_client_unselect(c, &error));
	OK(imap_client_delete(c, buf_str(&name), &error));
	buf_free(&name);
	int r = imap_client_create(c, "Caf\xc3\xa9 raw", &error);
	CHECK(r == 0 || r == IMAP_CMD_FAILED);
	if (r == 0)
		OK(imap_client_delete(c, "Caf\xc3\xa9 raw", &error));
	CHECK(imap_client_is_open(c));
	OK(imap_client_subscribe(c, "Replay Test", &error));
	OK(imap_client_unsubscribe(c, "Replay Test", &error));

	/* APPEND: APPENDUID with UIDPLUS (Dovecot sends it either way; the
	 * client reads what comes), the date kept. */
	char msg[512];
	uint32_t uidvalidity = 0, uid = 0;
	for (int i = 1; i <= 3; i++) {
		message(msg, sizeof(msg), i);
		OK(imap_client_append_uid(c, "Replay Test", i == 1 ? "(\\Seen $label)" : NULL,
		                          1765000000, msg, strlen(msg), &uidvalidity, &uid,
		                          &error));
		if (full)
			CHECK(uidvalidity != 0 && uid == (uint32_t)i);
	}
	FAILED(imap_client_append(c, "No Such Box", NULL, msg, strlen(msg), &error));
	CHECK_STR(imap_client_last_code(c), "TRYCREATE");

	OK(imap_client_select(c, "Replay Test", true, &info, &error));
	CHECK(info.exists == 3 && info.uidnext == 4 && !info.readonly);
	CHECK(!full || info.uidvalidity == uidvalidity);
	CHECK(full == (info.highestmodseq != 0));

	/* SEARCH: by Message-ID (quoted), by flag. */
	uint32_t *uids;
	size_t n;
	OK(imap_client_uid_search_header(c, "Message-ID", "<replay-2@example.org>", &uids, &n,
	                                 &error));
	CHECK(n == 1 && uids[0] == 2);
	free(uids);
	OK(imap_client_uid_search_header(c, "Subject", "no \"such\" \\ subject", &uids, &n,
	                                 &error));
	CHECK(n == 0);
	search(c, "KEYWORD $label", 1, 1);

	/* STORE, and with CONDSTORE the MODIFIED answer for a stale modseq. */
	struct imap_uidset all = IMAP_UIDSET_INIT, one = IMAP_UIDSET_INIT,
	                   modified = IMAP_UIDSET_INIT;
	CHECK(imap_uidset_add_range(&all, 1, 3) == 0 && imap_uidset_add(&one, 1) == 0);
	OK(imap_client_uid_store(c, &all, "+FLAGS.SILENT", "(\\Flagged)", 0, &modified, &error));
	search(c, "FLAGGED", 3, 1);
	OK(imap_client_uid_store(c, &one, "-FLAGS.SILENT", "(\\Flagged $label)", 0, NULL, &error));
	search(c, "FLAGGED", 2, 2);
	if (full) {
		OK(imap_client_uid_store(c, &all, "+FLAGS.SILENT", "(\\Answered)", 1, &modified,
		                         &error));
		CHECK(imap_uidset_equal(&modified, &all)); /* every one changed since 1 */
		search(c, "ANSWERED", 0, 0);
		/* What a replay does next: read the flags and modseqs. */
		struct imap_uid_flags *m;
		size_t nm;
		OK(imap_client_uid_fetch_flags(c, &modified, true, &m, &nm, &error));
		CHECK(nm == 3 && m[0].uid == 1 && m[0].modseq > 1 && m[2].uid == 3);
		CHECK_STR(m[0].flags, "\\Seen");
		CHECK_STR(m[1].flags, "\\Flagged");
		imap_uid_flags_free(&m, nm);
		OK(imap_client_uid_store(c, &all, "+FLAGS.SILENT", "(\\Answered)",
		                         info.highestmodseq + 100, &modified, &error));
		CHECK(imap_uidset_is_empty(&modified));
		search(c, "ANSWERED", 3, 1);
	} else {
		FAILED(imap_client_uid_store(c, &all, "+FLAGS.SILENT", "(\\Answered)", 1, &modified,
		                             &error));
	}
	/* A set far past the line limit: several commands, all accepted. */
	struct imap_uidset big = IMAP_UIDSET_INIT;
	for (uint32_t u = 1; u < 40000; u += 2)
		CHECK(imap_uidset_add(&big, u) == 0);
	OK(imap_client_uid_store(c, &big, "+FLAGS.SILENT", "(\\Draft)", 0, NULL, &error));
	search(c, "DRAFT", 2, 1);

	/* COPY: COPYUID pairs the UIDs (Dovecot sends it even with UIDPLUS
	 * hidden; the client does not depend on that). */
	struct imap_copyuid cu = {0};
	struct imap_uidset two = IMAP_UIDSET_INIT;
	CHECK(imap_uidset_add_range(&two, 1, 2) == 0);
	OK(imap_client_uid_copy(c, &two, "Replay \"Copy\"", &cu, &error));
	if (full)
		CHECK(cu.valid && cu.count == 2 && imap_copyuid_lookup(&cu, 1) == 1 &&
		      imap_copyuid_lookup(&cu, 2) == 2);
	imap_copyuid_free(&cu);
	FAILED(imap_client_uid_copy(c, &two, "No Such Box", &cu, &error));
	CHECK_STR(imap_client_last_code(c), "TRYCREATE");
	imap_copyuid_free(&cu);

	/* MOVE: COPYUID in the untagged OK, then the EXPUNGE. */
	struct imap_uidset three = IMAP_UIDSET_INIT;
	CHECK(imap_uidset_add(&three, 3) == 0);
	if (full) {
		OK(imap_client_uid_move(c, &three, "Replay \"Copy\"", &cu, &error));
		CHECK(cu.valid && cu.count == 1 && imap_copyuid_lookup(&cu, 3) == 3);
		search(c, "ALL", 2, 1);
	} else {
		FAILED(imap_client_uid_move(c, &three, "Replay \"Copy\"", &cu, &error));
		CHECK(!cu.valid);
	}
	imap_copyuid_free(&cu);

	/* Expunge one message: UID EXPUNGE leaves another \Deleted alone. */
	OK(imap_client_uid_store(c, &two, "+FLAGS.SILENT", "(\\Deleted)", 0, NULL, &error));
	search(c, "DELETED", 2, 1);
	if (full) {
		OK(imap_client_uid_expunge(c, &one, &error));
		search(c, "DELETED", 1, 2);
	} else {
		FAILED(imap_client_uid_expunge(c, &one, &error));
	}
	OK(imap_client_expunge(c, &error));
	search(c, "ALL", full ? 0 : 1, 3);

	/* RENAME, and DELETE of the renamed and the test mailbox. */
	OK(imap_client_rename(c, "Replay \"Copy\"", "Replay Renamed", &error));
	OK(imap_client_examine(c, "Replay Renamed", false, &info, &error));
	CHECK(info.exists == (full ? 3 : 2) && info.readonly);
	FAILED(imap_client_rename(c, "Replay Renamed", "Replay Test", &error));
	CHECK_STR(imap_client_last_code(c), "ALREADYEXISTS");
	/* DELETE of the selected mailbox ends a Dovecot session: leave it. */
	OK(imap_client_unselect(c, &error));
	OK(imap_client_delete(c, "Replay Renamed", &error));
	OK(imap_client_delete(c, "Replay Test", &error));
	CHECK(imap_client_is_open(c));
	imap_client_logout(c);
	imap_client_free(&c);
	imap_uidset_free(&all);
	imap_uidset_free(&one);
	imap_uidset_free(&two);
	imap_uidset_free(&three);
	imap_uidset_free(&big);
	imap_uidset_free(&modified);
}

int main(void)
{
	if (access("/usr/sbin/dovecot", X_OK) != 0) {
		printf("test-imap-dovecot: skipped (no Dovecot installed)\n");
		return 77;
	}
	CHECK(sodium_init() >= 0);
	signal(SIGPIPE, SIG_IGN);
	atexit(dovecot_stop);
	dovecot_start("mk-test-imap-dovecot", NULL);
	run_commands(true);
	dovecot_stop();
	dovecot_start("mk-test-imap-dovecot",
	              "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT LITERAL+ "
	              "NAMESPACE AUTH=PLAIN");
	run_commands(false);
	dovecot_stop();
	TEST_DONE("test-imap-dovecot");
}
