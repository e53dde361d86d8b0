/* Blob identity for caches: the content hash of stored message bytes. */
#include <string.h>

#include "store-private.h"

int store_blob_sha256(struct store *s, int64_t blob_id, uint64_t *size_r, uint8_t sha256_r[32],
                      const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(store_db(s), "SELECT size, sha256 FROM blobs WHERE id = ?1", -1, &st,
	                       NULL) != SQLITE_OK) {
		*error_r = store_err(s, "blob hash");
		return -1;
	}
	sqlite3_bind_int64(st, 1, blob_id);
	int rc = sqlite3_step(st);
	int r = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
	if (r == 1) {
		const void *h = sqlite3_column_blob(st, 1);
		if (h == NULL || sqlite3_column_bytes(st, 1) != 32) {
			r = 0; /* an unfinished blob has no hash yet */
		} else {
			*size_r = (uint64_t)sqlite3_column_int64(st, 0);
			memcpy(sha256_r, h, 32);
		}
	}
	sqlite3_finalize(st);
	if (r < 0)
		*error_r = store_err(s, "blob hash");
	return r;
}
