#ifndef MK_JMAP_SET_PRIVATE_H
#define MK_JMAP_SET_PRIVATE_H

/*
 * The writing half of the mail API (jmap-email-set.c, jmap-mailbox-set.c,
 * jmap-identity.c) and the small helpers those files share. Every change
 * goes through store-local (store.h): it stays in the hosted mailbox and is
 * recorded as a pending local change for the later two-way sync.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jmap-mail.h"
#include "jmap-private.h"

#define JMAP_CAPABILITY_SUBMISSION "urn:ietf:params:jmap:submission"
#define JMAP_SET_MAX_OBJECTS 500                    /* maxObjectsInSet */
#define JMAP_SET_MAX_EMAIL_SIZE (50u * 1024 * 1024) /* built or imported message */

/* Methods. */
jmap_method_fn jmap_email_set, jmap_email_import, jmap_mailbox_set, jmap_identity_get,
    jmap_identity_changes, jmap_identity_set;

/* Email/copy and Blob/copy (jmap-copy.c). */
int jmap_copy_register(struct jmap_registry *registry, const char **error_r);

/* Declare the submission capability (if no one has yet) and Identity/get,
 * Identity/changes, Identity/set under it. */
int jmap_identity_register(struct jmap_registry *registry, const char **error_r);

/* Mailbox/get: sortOrder, isSubscribed and myRights of a mailbox object
 * (id "M<row>") from the store's device-only properties; a noselect
 * mailbox gets rights that refuse items. */
void jmap_mailbox_decorate(struct jmap_mail_ctx *ctx, json_t *mailbox, bool noselect);

/* An id argument that may be a creation reference ("#c1"). */
static inline bool set_resolve_id(struct jmap_call *call, const char *text, char prefix,
                                  int64_t *id_r)
{
	const char *id = NULL, *err;
	return text != NULL && jmap_call_resolve_id(call, text, &id, &err) == 0 &&
	       jmap_parse_id(id, prefix, id_r);
}

/*
 * The one /set driver (RFC 8620 5.3; jmap-util.c) of Mailbox/set and
 * Identity/set: it checks the call's account and the arguments (unknown
 * ones, types, maxObjectsInSet), takes the write lock, compares ifInState
 * with the state held then, runs create, update and destroy in that order,
 * records creation ids, commits, and answers. A method gives its object
 * work as callbacks; each returns 0 (with its result or a SetError in
 * *error_r) or -1 when the store failed: then nothing of the call is kept
 * and the answer is serverFail.
 */
struct jmap_set_ops {
	const char *name;              /* "Mailbox/set" */
	char prefix;                   /* of the object ids: 'M' */
	const char *const *extra_args; /* allowed besides the standard ones, or NULL */
	bool empty_as_null;            /* answer null instead of empty maps and lists */
	/* Further argument checks (extra_args) and what the method needs
	 * before the write lock: 0, or -1 with the method error. May be NULL. */
	int (*check_args)(struct jmap_mail_ctx *ctx, json_t *args, const char **error_type_r,
	                  const char **description_r);
	/* The object type's state now (inside the transaction): 0, or -1. */
	int (*state)(struct jmap_mail_ctx *ctx, char *out, size_t size);
	/* *created_r: the created object with its "id". */
	int (*create)(struct jmap_mail_ctx *ctx, struct jmap_call *call, json_t *args, json_t *obj,
	              json_t **created_r, json_t **error_r);
	/* id is an id of this server's shape ("X<digits>"), not necessarily an
	 * existing one (then notFound). */
	int (*update)(struct jmap_mail_ctx *ctx, struct jmap_call *call, json_t *args, int64_t id,
	              json_t *patch, json_t **error_r);
	int (*destroy)(struct jmap_mail_ctx *ctx, struct jmap_call *call, json_t *args, int64_t id,
	               json_t **error_r);
};
int jmap_set_run(struct jmap_mail_ctx *ctx, struct jmap_call *call, json_t *args,
                 const struct jmap_set_ops *ops, const char **error_type_r,
                 const char **description_r);

/* A SetError (RFC 8620 5.3) with an optional list of properties. */
static inline json_t *set_error(const char *type, const char *description, const char *property)
{
	json_t *e = json_pack("{s:s}", "type", type);
	if (description != NULL)
		json_object_set_new(e, "description", json_string(description));
	if (property != NULL)
		json_object_set_new(e, "properties", json_pack("[s]", property));
	return e;
}

/* ifInState: 0 when absent or a string (compared once the write lock is
 * held, against the state then), -1 with invalidArguments otherwise. */
static inline int set_check_state(struct jmap_mail_ctx *ctx, json_t *args,
                                  const char **error_type_r)
{
	(void)ctx;
	json_t *s = json_object_get(args, "ifInState");
	if (s != NULL && !json_is_null(s) && !json_is_string(s)) {
		*error_type_r = "invalidArguments";
		return -1;
	}
	return 0;
}

#endif
