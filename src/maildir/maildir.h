#ifndef MK_MAILDIR_H
#define MK_MAILDIR_H

#include "../store/store.h"

/*
 * Export the whole hosted mailbox as a Maildir++ tree that Dovecot can serve
 * as it is: INBOX at the root, other folders as ".Name" with '.' as the
 * hierarchy separator (a server delimiter is turned into '.'; a literal '.'
 * in a name becomes '_' as Maildir++ cannot carry it), messages byte-exact
 * in cur/ named "<date>.M<uid>P<folder>.mailkeep,S=<size>:2,<flags>" with
 * the file's mtime set to the internal date, keywords in dovecot-keywords
 * (letters a-z, the first 26 keywords of each folder), and a
 * "subscriptions" file listing the folders. out_dir must not exist or be
 * empty. Returns 0 / -1 with *error_r (static buffer).
 */
struct maildir_export_stats {
	unsigned folders;
	unsigned long long messages, bytes;
};

int maildir_export(struct store *s, const char *out_dir, struct maildir_export_stats *stats_r,
		   const char **error_r);

#endif
