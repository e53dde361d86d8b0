/* libFuzzer target: store_fts_expr() on arbitrary search text for every
 * field. Whatever it returns must run as an FTS5 MATCH on a table like the
 * store's without a syntax error (matching nothing is fine). The first
 * input byte picks the field. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static sqlite3 *db;
static sqlite3_stmt *query;

static void setup(void)
{
	const char *sql =
	    "CREATE VIRTUAL TABLE email_fts USING fts5(subject, \"from\", \"to\", cc, bcc, body,"
	    " tokenize = 'unicode61 remove_diacritics 2');"
	    "INSERT INTO email_fts(rowid, subject, \"from\", \"to\", cc, bcc, body) VALUES"
	    " (1, 'Quarterly résumé', 'Jürgen <jm@example.com>', 'bob', 'carol', 'dave',"
	    "  'near and or not budget \"quoted\" 東京'),"
	    " (2, 'x', 'y', 'z', '', '', 'invoice alpha beta');";
	if (sqlite3_open(":memory:", &db) != SQLITE_OK ||
	    sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT rowid FROM email_fts WHERE email_fts MATCH ?1", -1,
	                       &query, NULL) != SQLITE_OK) {
		fprintf(stderr, "fuzz setup: %s\n", sqlite3_errmsg(db));
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const fields[] = {"text", "subject", "from", "to", "cc", "bcc", "body"};
	if (db == NULL)
		setup();
	if (size == 0)
		return 0;
	const char *field = fields[data[0] % 7];
	char *text = malloc(size);
	if (text == NULL)
		return 0;
	/* A C string: the JSON layer never passes NUL. */
	size_t n = 0;
	for (size_t i = 1; i < size; i++)
		if (data[i] != 0)
			text[n++] = (char)data[i];
	text[n] = '\0';
	char *expr;
	const char *err;
	if (store_fts_expr(field, text, &expr, &err) == 0) {
		sqlite3_reset(query);
		sqlite3_bind_text(query, 1, expr, -1, SQLITE_STATIC);
		int rc;
		while ((rc = sqlite3_step(query)) == SQLITE_ROW)
			;
		if (rc != SQLITE_DONE) {
			fprintf(stderr, "text '%s' gave '%s': %s\n", text, expr,
			        sqlite3_errmsg(db));
			abort();
		}
		sqlite3_reset(query);
		free(expr);
	} else if (n <= 1024 && strstr(err, "too many") == NULL) {
		fprintf(stderr, "text '%s' refused: %s\n", text, err);
		abort();
	}
	free(text);
	return 0;
}
