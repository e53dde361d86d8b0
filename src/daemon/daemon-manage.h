#ifndef MK_DAEMON_MANAGE_H
#define MK_DAEMON_MANAGE_H

/*
 * The management capability "urn:mailkeep:manage" (daemon-manage.c): a
 * user's external accounts, consents, receipts, devices, web sessions,
 * audit log and the hub's policy over JMAP, for the web app's trust pages
 * (docs/jmap.md, "The mailkeep management capability"). The methods run the
 * same services as the command line (svc-account.h).
 *
 * daemon-api.c passes a struct daemon_api_ctx to jmap_process(); its first
 * member is the mail methods' context, so the mail methods see theirs.
 */

#include <stdbool.h>

#include "daemon-internal.h"
#include "jmap/jmap-mail.h"
#include "jmap/jmap.h"

#define DAEMON_MANAGE_CAPABILITY "urn:mailkeep:manage"

struct daemon_api_ctx {
	struct jmap_mail_ctx mail; /* first: the mail methods cast ctx to it */
	struct daemon *sv;
	const struct principal *p;
	/* The management calls read and write through serve's shared hub
	 * handle under hub_lock. Only the calls that wait for the network or
	 * hash a password (an account's create or new password with their
	 * login check, a removal, the hub password change), and AuditLog/get
	 * (verifying the whole log), use this handle of the request's own
	 * instead (opened with the master key on first use,
	 * closed by daemon_manage_finish()), so they never hold hub_lock. */
	struct hub *hub;
	bool accounts_changed; /* an account was added or removed: push now */
};

/* A new account's settings (imapUrl, smtpUrl, login) from a method's
 * arguments, checked; NULL, or what is wrong (a static description). The
 * strings point into o. */
struct daemon_new_settings {
	const char *imap, *smtp, *login; /* smtp: NULL when null or absent */
};
const char *daemon_manage_settings(json_t *o, struct daemon_new_settings *s);

/* The call's accountId must be "mailkeep" or the notices account's id:
 * 0, or -1 with a method error. */
int daemon_manage_check_account(struct daemon_api_ctx *c, json_t *args, const char **error_type_r,
                                const char **description_r);

/* Register the capability and its methods. */
int daemon_manage_register(struct jmap_registry *registry, const char **error_r);

/* After jmap_process(): close the request's hub handle, wake the push
 * thread when accounts changed. */
void daemon_manage_finish(struct daemon_api_ctx *ctx);

/* Add the capability to a session object built by jmap_session_json():
 * to "capabilities" and to the accountCapabilities of the notices account
 * ("mailkeep"). */
void daemon_manage_session(struct json_t *session);

#endif
