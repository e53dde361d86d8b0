#ifndef MK_JMAP_SUBMISSION_H
#define MK_JMAP_SUBMISSION_H

#include "jmap-mail.h"

/*
 * RFC 8621 section 7, EmailSubmission over the user's outbox
 * (store-outbox.h): /get, /changes, /query, /set. create queues the Email's
 * bytes (prepared as by `mailkeep send`: Bcc removed, Date and Message-ID
 * added) for the identity's account; the outbox worker of serve sends it.
 * Ids "S<outbox id>"; states are the outbox's own change counter.
 * undoStatus: pending while queued or being sent, final once sent or
 * failed. update {undoStatus: "canceled"} of a queued (or failed) one
 * removes it from the outbox (the object is then gone: /changes reports it
 * destroyed). destroy removes the record of a sent or failed one.
 * onSuccessUpdateEmail / onSuccessDestroyEmail are refused
 * (invalidArguments) until Email/set exists to carry them out.
 */

#define JMAP_CAPABILITY_SUBMISSION "urn:ietf:params:jmap:submission"

int jmap_submission_register(struct jmap_registry *registry, const char **error_r);

#endif
