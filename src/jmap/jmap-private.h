#ifndef MK_JMAP_PRIVATE_H
#define MK_JMAP_PRIVATE_H

/*
 * Helpers the JMAP method files share (jmap-util.c): the "X<digits>" ids
 * of this server (M mailbox, E email, B blob, T thread, I identity, S
 * submission), UTCDate, the accountId check and the keywords object.
 */
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

struct jmap_mail_ctx;
struct jmap_call;
struct store_mailbox;

/* A mailbox of the call's account as JMAP shows it (jmap-mail.c): its
 * parent by the server's hierarchy (0: top level; the nearest ancestor the
 * store has), its name below that parent (points into box->name), its role
 * (lower case; unique in the account, NULL for the others) and whether it
 * cannot hold mail. */
struct jmap_mailbox_view {
	const struct store_mailbox *box;
	int64_t parent_id;
	const char *name;
	const char *role;
	bool noselect;
};
/* The mailboxes of ctx's account (sorted by name) and their views, one per
 * mailbox: 0, or -1 with *error_r. Free both with jmap_mailbox_views_free(). */
int jmap_mailbox_views(struct jmap_mail_ctx *ctx, struct store_mailbox **boxes_r, size_t *n_r,
                       struct jmap_mailbox_view **views_r, const char **error_r);
void jmap_mailbox_views_free(struct store_mailbox **boxes, size_t n,
                             struct jmap_mailbox_view **views);

/* "X<digits>" with prefix X -> the positive number; false if not one. */
bool jmap_parse_id(const char *id, char prefix, int64_t *id_r);
/* The id string "X<id>" (a new reference). */
json_t *jmap_prefixed(char prefix, int64_t id);

/* Mailbox names are kept as the server spells them (modified UTF-7, RFC
 * 3501 5.1.3). A level shown to devices is decoded; a level that does not
 * decode (a device's name not yet replayed, or a server that sends UTF-8)
 * is shown as it is. Returns a malloc'ed string or NULL (out of memory). */
char *jmap_mailbox_display(const char *wire);
/* A device's name for one level, as the server will spell it; NULL when
 * the name is not valid UTF-8 (or out of memory). Free with free(). */
char *jmap_mailbox_wire(const char *utf8);
/* The call's accountId "A<store account id>" must name an account of the
 * user's store: 0 with ctx->account_id, store_account_id and hub_account_id
 * set (jmap-mail.h), or -1 with invalidArguments (missing),
 * accountNotFound or serverFail. */
int jmap_check_account(struct jmap_mail_ctx *ctx, json_t *args, const char **error_type_r);
/* The same for an accountId string (Email/copy's fromAccountId, ...). */
int jmap_account_select(struct jmap_mail_ctx *ctx, const char *account_id,
                        const char **error_type_r);
/* The JMAP keywords object of stored flags and keywords (lower case). */
json_t *jmap_keywords_json(unsigned flags, const char *keywords);
/* A JMAP keywords object -> system flags and the sorted keyword string
 * the store keeps (out, size bytes): 0, or -1 when it is not a valid
 * keywords object (lower case, set to true, IMAP atom characters). */
int jmap_keywords_parse(json_t *keywords, unsigned *flags_r, char *out, size_t size);
/* An Email's threadId from the store (null if the email is gone). */
json_t *jmap_thread_id(struct jmap_mail_ctx *ctx, int64_t email_id);

/*
 * The one reader of list arguments from the client (ids, emailIds,
 * blobIds, properties, ...; RFC 8620 5.1: "Id[]|null", "String[]|null").
 * The argument `name` of args must be absent, null or an array of at most
 * max strings. Returns 1 with *list_r the array (borrowed from args), 0
 * with *list_r NULL when absent or null, or -1 with *error_type_r
 * "invalidArguments" (not an array, an entry that is not a string) or
 * "requestTooLarge" (more than max entries) and *description_r naming the
 * argument (valid until the next call on this thread). Entries are only
 * type-checked: whether a string is an Id of ours is the method's business
 * (usually notFound).
 */
/* The first key of args (an object) not in allowed (NULL-terminated), or
 * NULL when every argument is known. */
const char *jmap_unknown_key(json_t *args, const char *const *allowed);
int jmap_arg_strings(json_t *args, const char *name, size_t max, json_t **list_r,
                     const char **error_type_r, const char **description_r);
/* Resolve one entry of a list read with jmap_arg_strings() (a creation
 * reference "#c1" or an Id) and parse it as "X<digits>": true with *id_r,
 * false if it is not one of ours. */
bool jmap_list_id(struct jmap_call *call, json_t *entry, char prefix, int64_t *id_r);
/* Keep only the requested properties of a /get object ("id" always stays,
 * RFC 8620 5.1); properties is a list checked by jmap_arg_strings(), or
 * NULL for all. */
void jmap_keep_properties(json_t *obj, json_t *properties);
/* The key under which a /set "destroy" entry is answered in notDestroyed:
 * the string itself, or for any other JSON value its compact JSON text, so
 * that no entry vanishes (RFC 8620 5.3). malloc'ed; NULL on out of memory. */
char *jmap_destroy_key(json_t *entry);

/*
 * The one reader of /changes and /queryChanges arguments: since_name
 * ("sinceState" or "sinceQueryState") must be a string and maxChanges
 * absent, null or a positive integer (else -1 with invalidArguments).
 * *since_r is the state text (borrowed from args), *limit_r the smaller of
 * maxChanges and server_max. Whether the state is one of ours is for the
 * state's owner: jmap_parse_state() for the store's change counter.
 */
int jmap_changes_args(json_t *args, const char *since_name, size_t server_max, const char **since_r,
                      size_t *limit_r, const char **error_type_r, const char **description_r);
/* A counter state this server gave out ("0", "17"; never above current):
 * true with *since_r; false means cannotCalculateChanges. */
bool jmap_parse_state(const char *text, uint64_t current, uint64_t *since_r);

/* The hub account that the call's JMAP account mirrors, among
 * ctx->hub_accounts (after jmap_mail_accounts()): Identity and
 * EmailSubmission see this one only. NULL (and jmap_scope_n() 0) for the
 * notices account or a hub account that is gone. */
const struct hub_account *jmap_scope_account(const struct jmap_mail_ctx *ctx);
size_t jmap_scope_n(const struct jmap_mail_ctx *ctx);

/* The From of mail the hub writes for the identity of hub account
 * account_id: [{"name": its display name (null when none), "email"}], a new
 * reference; NULL when there is no such identity, its address is not one
 * (a login without a domain) or the store fails. */
json_t *jmap_identity_from(struct jmap_mail_ctx *ctx, int64_t account_id);

#endif
