#ifndef MK_JMAP_QUERY_H
#define MK_JMAP_QUERY_H

#include "jmap-mail.h"

/*
 * Queries and threads (RFC 8620 5.5/5.6, RFC 8621 2.3/2.4/3/4.4/4.5):
 * Email/query, Email/queryChanges, Mailbox/query, Mailbox/queryChanges
 * (jmap-query.c), Thread/get, Thread/changes (jmap-thread.c). Registered
 * by jmap_mail_register(); the method context is struct jmap_mail_ctx.
 */

#define JMAP_QUERY_MAX_CHANGES 5000 /* ids in one queryChanges/changes answer */

int jmap_query_register(struct jmap_registry *registry, const char **error_r);
int jmap_thread_register(struct jmap_registry *registry, const char **error_r);

#endif
