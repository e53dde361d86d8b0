#ifndef MK_MAILDIR_H
#define MK_MAILDIR_H

#include <stdbool.h>

#include "../lib/buf.h"
#include "../store/store.h"

/*
 * Export the whole hosted mailbox as a Maildir++ tree that Dovecot can serve
 * as it is: INBOX at the root, other folders as ".Name" with '.' as the
 * hierarchy separator (a server delimiter is turned into '.'). Every distinct
 * folder name gets its own directory: a literal '.', '/' or '\' in a name,
 * and a leading '~', are written as "\NN" (hex), the storage escape of
 * Dovecot's listescape plugin, so names without those characters read back
 * the same in any Dovecot and names with them read back the same in a
 * Dovecot with listescape (and a separator other than the character).
 * Mailboxes of several accounts with the same name are one folder.
 * Messages are byte-exact in cur/ named
 * "<date>.M<uid>P<folder>.mailkeep,S=<size>:2,<flags>" with the file's mtime
 * set to the internal date, keywords in dovecot-keywords (letters a-z: 26
 * keywords per folder is all Dovecot's maildir can hold), and a
 * "subscriptions" file lists the folders. out_dir must not exist or be
 * empty. Returns 0 / -1 with *error_r (static buffer).
 *
 * A keyword that finds no letter left in its folder is not written; the
 * export goes on and reports each one in *stats_r: keywords_unwritten counts
 * them, unwritten has one line per keyword ("folder "NAME" uid UID (FILE):
 * keyword "KW"\n"; unwritten_truncated when the list passed 4 MB and was
 * cut). The caller must treat keywords_unwritten > 0 as a partial export and
 * free the stats with maildir_export_stats_free (also after a failure).
 */
struct maildir_export_stats {
	unsigned folders;
	unsigned long long messages, bytes;
	unsigned long long keywords_unwritten;
	struct buf unwritten;
	bool unwritten_truncated;
};

int maildir_export(struct store *s, const char *out_dir, struct maildir_export_stats *stats_r,
                   const char **error_r);
void maildir_export_stats_free(struct maildir_export_stats *stats);

#endif
