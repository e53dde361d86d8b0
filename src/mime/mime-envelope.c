/* The envelope of a message from its header block: a bounded scan of the
 * first bytes, with GMime's header utilities for RFC 2047 decoding, dates
 * and addresses. See mime-envelope.h. */
#include "mime-envelope.h"

#include <gmime/gmime.h>
#include <stdlib.h>
#include <string.h>

#include "mime.h"

/* One header field: its name and raw (folded) value. */
struct field {
	const char *name, *value;
	size_t name_len, value_len;
};

/* The next field of the header block in [*p, end): 1 found, 0 end of the
 * header block. Lines that are not fields are skipped. */
static int next_field(const char **pp, const char *end, struct field *f)
{
	const char *p = *pp;
	while (p < end) {
		if (*p == '\n') /* the empty line (LF only) */
			return 0;
		if (*p == '\r' && p + 1 < end && p[1] == '\n')
			return 0;
		const char *line = p;
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *next = eol != NULL ? eol + 1 : end;
		/* Continuation lines belong to this field. */
		while (next < end && (*next == ' ' || *next == '\t')) {
			eol = memchr(next, '\n', (size_t)(end - next));
			next = eol != NULL ? eol + 1 : end;
		}
		*pp = next;
		p = next;
		const char *colon = memchr(line, ':', (size_t)(next - line));
		if (colon == NULL || colon == line)
			continue;
		bool ok = true;
		for (const char *c = line; c < colon; c++)
			if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 127)
				ok = false;
		if (!ok)
			continue;
		f->name = line;
		f->name_len = (size_t)(colon - line);
		f->value = colon + 1;
		f->value_len = (size_t)(next - colon - 1);
		return 1;
	}
	*pp = p;
	return 0;
}

static bool name_is(const struct field *f, const char *name)
{
	return strlen(name) == f->name_len && g_ascii_strncasecmp(f->name, name, f->name_len) == 0;
}

/* Unfold a raw value: CR and LF dropped, NUL turned into a space, leading
 * and trailing white space trimmed. malloc()ed. */
static char *unfold(const struct field *f)
{
	size_t n = f->value_len < MIME_ENVELOPE_VALUE_MAX ? f->value_len : MIME_ENVELOPE_VALUE_MAX;
	char *out = malloc(n + 1);
	if (out == NULL)
		return NULL;
	size_t len = 0;
	for (size_t i = 0; i < n; i++) {
		char c = f->value[i];
		if (c == '\r' || c == '\n')
			continue;
		if (c == '\0')
			c = ' ';
		if (len == 0 && (c == ' ' || c == '\t'))
			continue;
		out[len++] = c;
	}
	while (len > 0 && (out[len - 1] == ' ' || out[len - 1] == '\t'))
		len--;
	out[len] = '\0';
	return out;
}

/* RFC 2047 decoding to valid UTF-8; malloc()ed. */
static char *decode_text(const char *raw)
{
	char *g = g_mime_utils_header_decode_text(NULL, raw);
	char *valid = g_utf8_make_valid(g != NULL ? g : raw, -1);
	g_free(g);
	char *out = strdup(valid);
	g_free(valid);
	return out;
}

char *mime_casemap(const char *text)
{
	char *valid = g_utf8_make_valid(text, -1);
	char *folded = g_utf8_casefold(valid, -1);
	char *norm = g_utf8_normalize(folded, -1, G_NORMALIZE_NFKD);
	char *out = strdup(norm != NULL ? norm : folded);
	g_free(norm);
	g_free(folded);
	g_free(valid);
	return out;
}

static bool wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* Length of a subj-blob "[...]" *WSP at p, or 0. */
static size_t blob_len(const char *p)
{
	if (*p != '[')
		return 0;
	size_t i = 1;
	while (p[i] != '\0' && p[i] != '[' && p[i] != ']')
		i++;
	if (p[i] != ']')
		return 0;
	i++;
	while (wsp(p[i]))
		i++;
	return i;
}

/* Length of a subj-refwd ("re" / "fw" / "fwd") *WSP [subj-blob] ":" at p,
 * or 0. */
static size_t refwd_len(const char *p)
{
	size_t i;
	if (g_ascii_strncasecmp(p, "re", 2) == 0)
		i = 2;
	else if (g_ascii_strncasecmp(p, "fwd", 3) == 0)
		i = 3;
	else if (g_ascii_strncasecmp(p, "fw", 2) == 0)
		i = 2;
	else
		return 0;
	while (wsp(p[i]))
		i++;
	i += blob_len(p + i);
	if (p[i] != ':')
		return 0;
	return i + 1;
}

char *mime_base_subject(const char *subject)
{
	/* (1) White space runs become one space. */
	size_t n = strlen(subject);
	char *s = malloc(n + 1);
	if (s == NULL)
		return NULL;
	size_t len = 0;
	for (size_t i = 0; i < n; i++) {
		char c = subject[i];
		if (c == '\t' || c == '\r' || c == '\n')
			c = ' ';
		if (c == ' ' && (len == 0 || s[len - 1] == ' '))
			continue;
		s[len++] = c;
	}
	s[len] = '\0';
	char *p = s;
	for (;;) {
		/* (2) Trailing "(fwd)" and white space. */
		for (;;) {
			size_t l = strlen(p);
			while (l > 0 && p[l - 1] == ' ')
				p[--l] = '\0';
			if (l >= 5 && g_ascii_strcasecmp(p + l - 5, "(fwd)") == 0)
				p[l - 5] = '\0';
			else
				break;
		}
		/* (3)(4) Leaders and a blob before a non-empty rest. */
		bool changed = true;
		while (changed) {
			changed = false;
			while (*p == ' ')
				p++, changed = true;
			size_t b = 0, k;
			while ((k = blob_len(p + b)) > 0)
				b += k;
			size_t r = refwd_len(p + b);
			if (r > 0) {
				p += b + r;
				changed = true;
				continue;
			}
			size_t one = blob_len(p);
			if (one > 0 && p[one] != '\0') {
				p += one;
				changed = true;
			}
		}
		/* (5) "[fwd: ...]" */
		size_t l = strlen(p);
		if (l >= 6 && g_ascii_strncasecmp(p, "[fwd:", 5) == 0 && p[l - 1] == ']') {
			p[l - 1] = '\0';
			p += 5;
			continue;
		}
		break;
	}
	char *out = strdup(p);
	free(s);
	return out;
}

/* Copy the message ids "<...>" of a value into out (at most max). A value
 * without angle brackets counts as one id when it is a single word. */
static size_t msg_ids(const char *v, char **out, size_t max)
{
	size_t n = 0;
	bool bracketed = false;
	for (const char *p = v; n < max && (p = strchr(p, '<')) != NULL;) {
		const char *e = strchr(p + 1, '>');
		if (e == NULL)
			break;
		bracketed = true;
		char id[MIME_ENVELOPE_MSGID_MAX + 1];
		size_t len = 0;
		bool ok = true;
		for (const char *c = p + 1; c < e; c++) {
			if (*c == ' ' || *c == '\t')
				continue;
			if (len == MIME_ENVELOPE_MSGID_MAX || (unsigned char)*c < ' ') {
				ok = false;
				break;
			}
			id[len++] = *c;
		}
		id[len] = '\0';
		p = e + 1;
		if (!ok || len == 0)
			continue;
		out[n] = strdup(id);
		if (out[n] != NULL)
			n++;
	}
	if (!bracketed && n < max && v[0] != '\0' && strpbrk(v, " \t") == NULL &&
	    strlen(v) <= MIME_ENVELOPE_MSGID_MAX) {
		out[n] = strdup(v);
		if (out[n] != NULL)
			n++;
	}
	return n;
}

/* The first mailbox of an address list: its name, else its address. */
static char *first_address(const char *raw)
{
	InternetAddressList *list = internet_address_list_parse(NULL, raw);
	if (list == NULL)
		return NULL;
	char *out = NULL;
	int count = internet_address_list_length(list);
	for (int i = 0; i < count && out == NULL; i++) {
		InternetAddress *a = internet_address_list_get_address(list, i);
		if (INTERNET_ADDRESS_IS_GROUP(a)) {
			InternetAddressList *members =
			    internet_address_group_get_members(INTERNET_ADDRESS_GROUP(a));
			if (members == NULL || internet_address_list_length(members) == 0)
				continue;
			a = internet_address_list_get_address(members, 0);
		}
		if (!INTERNET_ADDRESS_IS_MAILBOX(a))
			continue;
		const char *name = internet_address_get_name(a);
		const char *email = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a));
		const char *pick = name != NULL && name[0] != '\0' ? name : email;
		if (pick != NULL) {
			char *valid = g_utf8_make_valid(pick, -1);
			out = strdup(valid);
			g_free(valid);
		}
	}
	g_object_unref(list);
	return out;
}

/* Lower-case media type "type/subtype" of a Content-Type value into buf. */
static void media_type(const char *v, char *buf, size_t size)
{
	size_t n = 0;
	while (*v == ' ' || *v == '\t')
		v++;
	for (; *v != '\0' && *v != ';' && *v != ' ' && *v != '\t' && n + 1 < size; v++)
		buf[n++] = g_ascii_tolower(*v);
	buf[n] = '\0';
}

static bool attachment_type(const char *type)
{
	if (strncmp(type, "application/", 12) == 0)
		return strcmp(type, "application/pgp-signature") != 0 &&
		       strcmp(type, "application/pkcs7-signature") != 0 &&
		       strcmp(type, "application/pgp-encrypted") != 0;
	return strncmp(type, "image/", 6) == 0 || strncmp(type, "audio/", 6) == 0 ||
	       strncmp(type, "video/", 6) == 0;
}

/* Does a line in [p, end) look like a part header naming an attachment? */
static bool body_names_attachment(const char *p, const char *end)
{
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *next = eol != NULL ? eol + 1 : end;
		size_t l = (size_t)(next - p);
		if (l > 20 && g_ascii_strncasecmp(p, "content-disposition:", 20) == 0) {
			const char *v = p + 20;
			while (v < next && (*v == ' ' || *v == '\t'))
				v++;
			if ((size_t)(next - v) >= 10 &&
			    g_ascii_strncasecmp(v, "attachment", 10) == 0)
				return true;
		} else if (l > 13 && g_ascii_strncasecmp(p, "content-type:", 13) == 0) {
			char type[64], line[128];
			size_t n = l - 13 < sizeof(line) - 1 ? l - 13 : sizeof(line) - 1;
			memcpy(line, p + 13, n);
			line[n] = '\0';
			media_type(line, type, sizeof(type));
			if (attachment_type(type))
				return true;
		}
		p = next;
	}
	return false;
}

static void free_fields(struct mime_envelope *env)
{
	free(env->subject);
	free(env->base_subject);
	free(env->from);
	free(env->to);
	free(env->message_id);
	for (size_t i = 0; i < env->n_refs; i++)
		free(env->refs[i]);
	memset(env, 0, sizeof(*env));
}

void mime_envelope_free(struct mime_envelope *env)
{
	free_fields(env);
}

/* Add the ids of a References/In-Reply-To value, de-duplicated. Of a long
 * References the first id (the thread's root) and the last ones (the
 * nearest ancestors) are kept. */
static void add_refs(struct mime_envelope *env, const char *value)
{
	enum { SCAN = 1024 };
	char **ids = malloc(SCAN * sizeof(*ids));
	if (ids == NULL)
		return;
	size_t n = msg_ids(value, ids, SCAN);
	size_t room = MIME_ENVELOPE_MAX_REFS - env->n_refs;
	for (size_t i = 0; i < n; i++) {
		bool keep = room > 0 && (i == 0 || n - i < room);
		for (size_t j = 0; keep && j < env->n_refs; j++)
			if (strcmp(env->refs[j], ids[i]) == 0)
				keep = false;
		if (keep) {
			env->refs[env->n_refs++] = ids[i];
			room--;
		} else {
			free(ids[i]);
		}
	}
	free(ids);
}

int mime_envelope_parse(const void *data, size_t len, uint64_t total, struct mime_envelope *env)
{
	memset(env, 0, sizeof(*env));
	mime_init();
	if (len > MIME_ENVELOPE_HEAD_MAX)
		len = MIME_ENVELOPE_HEAD_MAX;
	const char *p = data, *end = p + len;
	struct field f;
	char *raw_irt = NULL, *raw_refs = NULL;
	char ctype[64] = "", disposition[16] = "";
	bool oom = false;
	while (!oom && next_field(&p, end, &f) == 1) {
		char **slot = NULL;
		if (name_is(&f, "subject") && env->subject == NULL)
			slot = &env->subject;
		else if (name_is(&f, "from") && env->from == NULL)
			slot = &env->from;
		else if (name_is(&f, "to") && env->to == NULL)
			slot = &env->to;
		else if (name_is(&f, "message-id") && env->message_id == NULL)
			slot = &env->message_id;
		else if (name_is(&f, "in-reply-to") && raw_irt == NULL)
			slot = &raw_irt;
		else if (name_is(&f, "references") && raw_refs == NULL)
			slot = &raw_refs;
		else if (name_is(&f, "date") && env->sent_at == 0) {
			char *v = unfold(&f);
			GDateTime *dt = v != NULL ? g_mime_utils_header_decode_date(v) : NULL;
			if (dt != NULL) {
				env->sent_at = g_date_time_to_unix(dt);
				g_date_time_unref(dt);
			}
			oom = v == NULL;
			free(v);
			continue;
		} else if (name_is(&f, "content-type") && ctype[0] == '\0') {
			char *v = unfold(&f);
			if (v != NULL)
				media_type(v, ctype, sizeof(ctype));
			oom = v == NULL;
			free(v);
			continue;
		} else if (name_is(&f, "content-disposition") && disposition[0] == '\0') {
			char *v = unfold(&f);
			if (v != NULL)
				media_type(v, disposition, sizeof(disposition));
			oom = v == NULL;
			free(v);
			continue;
		}
		if (slot == NULL)
			continue;
		char *v = unfold(&f);
		if (v == NULL) {
			oom = true;
			break;
		}
		if (slot == &env->subject) {
			*slot = decode_text(v);
			oom = *slot == NULL;
		} else if (slot == &env->from || slot == &env->to) {
			*slot = first_address(v);
		} else if (slot == &env->message_id) {
			char *id = NULL;
			if (msg_ids(v, &id, 1) == 1)
				*slot = id;
		} else {
			*slot = v;
			v = NULL;
		}
		free(v);
	}
	if (raw_irt != NULL)
		add_refs(env, raw_irt);
	if (raw_refs != NULL)
		add_refs(env, raw_refs);
	free(raw_irt);
	free(raw_refs);
	const char *body = p;
	if (body < end && *body == '\r')
		body++;
	if (body < end && *body == '\n')
		body++;
	if (strcmp(disposition, "attachment") == 0 || attachment_type(ctype))
		env->has_attachment = true;
	else if (strcmp(ctype, "multipart/mixed") == 0)
		env->has_attachment = body_names_attachment(body, end) || (uint64_t)len < total;
	env->base_subject = mime_base_subject(env->subject != NULL ? env->subject : "");
	if (oom || env->base_subject == NULL) {
		free_fields(env);
		return -1;
	}
	return 0;
}

int mime_header_match(const void *data, size_t len, const char *name, const char *value)
{
	mime_init();
	if (len > MIME_ENVELOPE_HEAD_MAX)
		len = MIME_ENVELOPE_HEAD_MAX;
	const char *p = data, *end = p + len;
	struct field f;
	char *want = value != NULL && value[0] != '\0' ? mime_casemap(value) : NULL;
	int found = 0;
	while (found == 0 && next_field(&p, end, &f) == 1) {
		if (!name_is(&f, name))
			continue;
		if (value == NULL || value[0] == '\0') {
			found = 1;
			break;
		}
		char *v = unfold(&f);
		char *dec = v != NULL ? decode_text(v) : NULL;
		char *folded = dec != NULL ? mime_casemap(dec) : NULL;
		if (want != NULL && folded != NULL && strstr(folded, want) != NULL)
			found = 1;
		free(folded);
		free(dec);
		free(v);
	}
	free(want);
	return found;
}
