#ifndef MK_IMAP_UTF7_H
#define MK_IMAP_UTF7_H

#include "buf.h"

/*
 * Mailbox names in modified UTF-7 (RFC 3501 section 5.1.3, RFC 9051 5.1.3),
 * the form every server that has not enabled UTF8=ACCEPT uses on the wire:
 * printable ASCII stands for itself except "&" (written "&-"); everything
 * else is UTF-16 in a modified base64 ("," for "/", no padding) between "&"
 * and "-". "Café" is "Caf&AOk-".
 *
 * A name the hub got from a device (UTF-8) is encoded before CREATE or
 * RENAME; a name from LIST is decoded for display. Both append to out and
 * return 0, or -1 with a static *error_r (out then holds an incomplete
 * result the caller discards): invalid UTF-8 (overlong, surrogate, past
 * U+10FFFF, cut), or modified UTF-7 that is not in its one canonical form
 * (8-bit bytes, a "&" run that is unterminated or empty, encodes printable
 * ASCII or NUL, has bits left over, or holds an unpaired surrogate), or out is
 * full. Decoding the encoding of a valid name gives the name back.
 */
int imap_utf7_encode(const char *utf8, struct buf *out, const char **error_r);
int imap_utf7_decode(const char *mutf7, struct buf *out, const char **error_r);

#endif
