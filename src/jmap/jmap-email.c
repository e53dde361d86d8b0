/* Email/get and Email/parse (RFC 8621 4.1, 4.2, 4.9); see jmap-email.h. */
#include "jmap-email.h"
#include "jmap-private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../mime/mime-cache.h"
#include "../mime/mime-email.h"

/* --- ids -------------------------------------------------------------------------- */

/* The one place an Email's threadId comes from: the store's thread. */
static json_t *thread_id_json(const struct store_email *e)
{
	return jmap_prefixed('T', e->thread_id);
}

/* A parsed blob id: the stored row and the chain of part paths. */
struct blob_ref {
	int64_t row;
	size_t n;
	char path[JMAP_EMAIL_MAX_NESTING][64]; /* dotted part paths */
};

static bool parse_blob_ref(const char *id, struct blob_ref *r)
{
	memset(r, 0, sizeof(*r));
	if (id == NULL || id[0] != 'B' || id[1] < '1' || id[1] > '9')
		return false;
	char *end;
	errno = 0;
	long long v = strtoll(id + 1, &end, 10);
	if (errno != 0 || v <= 0)
		return false;
	r->row = v;
	for (const char *p = end; *p != '\0';) {
		if (*p != '_' || r->n == JMAP_EMAIL_MAX_NESTING)
			return false;
		p++;
		size_t len = strspn(p, "0123456789-");
		if (len == 0 || len >= sizeof(r->path[0]) || p[0] == '-' || p[len - 1] == '-')
			return false;
		for (size_t i = 0; i < len; i++) {
			if (p[i] == '-' && p[i + 1] == '-')
				return false;
			r->path[r->n][i] = p[i] == '-' ? '.' : p[i];
		}
		r->n++;
		p += len;
	}
	return true;
}

/* "<prefix>_<path with dashes>" */
static json_t *part_blob_id(const char *prefix, const char *part_id)
{
	char buf[JMAP_MAX_ID + 1];
	int n = snprintf(buf, sizeof(buf), "%s_%s", prefix, part_id);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return json_null();
	for (char *c = buf; *c != '\0'; c++)
		if (*c == '.')
			*c = '-';
	return json_string(buf);
}

/* --- message bytes and the parse cache ----------------------------------------- */

/* The bytes of a blob ref (a whole message, or a part's decoded content).
 * 1 found, 0 not, -1 error. With sha_r, the stored blob's hash. */
/* With prefix, a whole message longer than max_len is read up to max_len
 * (enough to parse) instead of refused. Parts are always cut from the
 * whole stored message. */
static int ref_content_sized(struct store *store, const struct blob_ref *ref, uint64_t size,
                             size_t max_len, bool prefix, char **data_r, size_t *len_r,
                             char **type_r, const char **error_r)
{
	int r;
	size_t len;
	if (ref->n == 0 && size > max_len && !prefix) {
		*error_r = "blob too large";
		return -1;
	}
	if (ref->n > 0 && size > JMAP_EMAIL_SOURCE_MAX) {
		*error_r = "message too large to take apart";
		return -1;
	}
	len = ref->n == 0 && size > max_len ? max_len : (size_t)size;
	char *data = malloc(len + 1);
	if (data == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	if (store_blob_read(store, ref->row, 0, data, len, error_r) < 0) {
		free(data);
		return -1;
	}
	data[len] = '\0';
	char *type = strdup("message/rfc822");
	for (size_t i = 0; i < ref->n && type != NULL; i++) {
		char *part = NULL, *ptype = NULL;
		size_t plen = 0;
		bool last = i + 1 == ref->n;
		r = mime_email_part(data, len, ref->path[i], last ? max_len : JMAP_EMAIL_SOURCE_MAX,
		                    &part, &plen, &ptype, error_r);
		free(data);
		data = NULL;
		free(type);
		type = ptype;
		if (r <= 0)
			return r;
		data = part;
		len = plen;
		/* Only message parts have parts of their own. */
		if (!last && strncmp(ptype, "message/", 8) != 0) {
			free(data);
			free(type);
			return 0;
		}
	}
	if (type == NULL) {
		free(data);
		*error_r = "out of memory";
		return -1;
	}
	*data_r = data;
	*len_r = len;
	*type_r = type;
	return 1;
}

static int ref_content(struct store *store, const struct blob_ref *ref, size_t max_len, bool prefix,
                       char **data_r, size_t *len_r, char **type_r, const char **error_r)
{
	uint64_t size;
	uint8_t sha[32];
	int r = store_blob_sha256(store, ref->row, &size, sha, error_r);
	if (r <= 0)
		return r;
	return ref_content_sized(store, ref, size, max_len, prefix, data_r, len_r, type_r, error_r);
}

int jmap_email_blob_content(struct store *store, const char *blob_id, size_t max_len, char **data_r,
                            size_t *len_r, char **type_r, const char **error_r)
{
	struct blob_ref ref;
	if (!parse_blob_ref(blob_id, &ref))
		return 0;
	return ref_content(store, &ref, max_len, false, data_r, len_r, type_r, error_r);
}

/* The parsed tree of the message a blob ref names (a whole message or a
 * message part); 1 found, 0 not found, 2 a part that is not a message,
 * -1 error. */
static int ref_parsed(struct jmap_mail_ctx *ctx, const struct blob_ref *ref, json_t **tree_r,
                      uint64_t *size_r, const char **error_r)
{
	/* The cache key needs the stored blob's hash: cheap, one row. */
	uint64_t size;
	uint8_t sha[32];
	int r = store_blob_sha256(ctx->store, ref->row, &size, sha, error_r);
	if (r <= 0)
		return r;
	char key[512];
	size_t k = (size_t)snprintf(key, sizeof(key), "%s/", ctx->account_id);
	for (size_t i = 0; i < 32 && k + 3 < sizeof(key); i++)
		k += (size_t)snprintf(key + k, sizeof(key) - k, "%02x", sha[i]);
	for (size_t i = 0; i < ref->n && k < sizeof(key); i++)
		k += (size_t)snprintf(key + k, sizeof(key) - k, "/%s", ref->path[i]);
	if (k >= sizeof(key)) {
		*error_r = "key too long";
		return -1;
	}
	json_t *tree = mime_cache_get(ctx->cache, key);
	if (tree != NULL) {
		*tree_r = tree;
		*size_r = (uint64_t)json_integer_value(json_object_get(tree, "_size"));
		return 1;
	}
	char *data, *type;
	size_t len;
	r = ref_content_sized(ctx->store, ref, size, JMAP_EMAIL_PARSE_MAX, true, &data, &len, &type,
	                      error_r);
	if (r <= 0)
		return r;
	bool is_message = strncmp(type, "message/", 8) == 0;
	free(type);
	if (!is_message) {
		free(data);
		return 2;
	}
	/* A whole stored message may be longer than what was read. */
	uint64_t full = ref->n == 0 ? size : len;
	r = mime_email_parse(data, len, &tree, error_r);
	free(data);
	if (r < 0)
		return -1;
	json_object_set_new(tree, "_size", json_integer((json_int_t)full));
	mime_cache_put(ctx->cache, key, tree);
	*tree_r = tree;
	*size_r = full;
	return 1;
}

/* --- arguments ------------------------------------------------------------------- */

static const char *const email_props[] = {
    "id",         "blobId",     "threadId", "mailboxIds",  "keywords",
    "size",       "receivedAt", "headers",  "messageId",   "inReplyTo",
    "references", "sender",     "from",     "to",          "cc",
    "bcc",        "replyTo",    "subject",  "sentAt",      "bodyStructure",
    "bodyValues", "textBody",   "htmlBody", "attachments", "hasAttachment",
    "preview"};
static const char *const default_get_props[] = {
    "id",        "blobId",    "threadId",   "mailboxIds", "keywords",      "size",    "receivedAt",
    "messageId", "inReplyTo", "references", "sender",     "from",          "to",      "cc",
    "bcc",       "replyTo",   "subject",    "sentAt",     "hasAttachment", "preview", "bodyValues",
    "textBody",  "htmlBody",  "attachments"};
static const char *const default_parse_props[] = {
    "messageId", "inReplyTo",  "references", "sender",   "from",       "to",
    "cc",        "bcc",        "replyTo",    "subject",  "sentAt",     "hasAttachment",
    "preview",   "bodyValues", "textBody",   "htmlBody", "attachments"};
static const char *const part_props[] = {"partId", "blobId",   "size",     "headers",
                                         "name",   "type",     "charset",  "disposition",
                                         "cid",    "language", "location", "subParts"};
static const char *const default_part_props[] = {"partId",   "blobId",  "size",        "name",
                                                 "type",     "charset", "disposition", "cid",
                                                 "language", "location"};

/* The convenience properties: a header in a form. */
static const struct {
	const char *prop, *header;
	enum mime_header_form form;
} convenience[] = {
    {"messageId", "Message-ID", MIME_FORM_MESSAGE_IDS},
    {"inReplyTo", "In-Reply-To", MIME_FORM_MESSAGE_IDS},
    {"references", "References", MIME_FORM_MESSAGE_IDS},
    {"sender", "Sender", MIME_FORM_ADDRESSES},
    {"from", "From", MIME_FORM_ADDRESSES},
    {"to", "To", MIME_FORM_ADDRESSES},
    {"cc", "Cc", MIME_FORM_ADDRESSES},
    {"bcc", "Bcc", MIME_FORM_ADDRESSES},
    {"replyTo", "Reply-To", MIME_FORM_ADDRESSES},
    {"subject", "Subject", MIME_FORM_TEXT},
    {"sentAt", "Date", MIME_FORM_DATE},
};

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static bool in_list(const char *const *list, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], s) == 0)
			return true;
	return false;
}

/* A "header:NAME[:FORM][:all]" property. */
struct header_prop {
	char name[128];
	enum mime_header_form form;
	bool all;
};

static bool parse_header_prop(const char *prop, struct header_prop *hp)
{
	if (strncmp(prop, "header:", 7) != 0)
		return false;
	const char *name = prop + 7, *colon = strchr(name, ':');
	size_t nlen = colon != NULL ? (size_t)(colon - name) : strlen(name);
	if (nlen == 0 || nlen >= sizeof(hp->name))
		return false;
	for (size_t i = 0; i < nlen; i++)
		if ((unsigned char)name[i] <= 32 || (unsigned char)name[i] >= 127)
			return false;
	memcpy(hp->name, name, nlen);
	hp->name[nlen] = '\0';
	hp->form = MIME_FORM_RAW;
	hp->all = false;
	if (colon == NULL)
		return true;
	const char *rest = colon + 1;
	if (strcmp(rest, "all") == 0) {
		hp->all = true;
		return true;
	}
	char form[32];
	const char *c2 = strchr(rest, ':');
	size_t flen = c2 != NULL ? (size_t)(c2 - rest) : strlen(rest);
	if (flen >= sizeof(form))
		return false;
	memcpy(form, rest, flen);
	form[flen] = '\0';
	if (!mime_header_form_parse(form, &hp->form))
		return false;
	if (c2 != NULL) {
		if (strcmp(c2 + 1, "all") != 0)
			return false;
		hp->all = true;
	}
	return mime_header_form_allowed(hp->name, hp->form);
}

struct get_args {
	json_t *properties;      /* array of strings (ours) */
	json_t *body_properties; /* array of strings (ours) */
	bool fetch_text, fetch_html, fetch_all;
	size_t max_bytes; /* 0: no truncation */
};

static void get_args_free(struct get_args *a)
{
	json_decref(a->properties);
	json_decref(a->body_properties);
}

static __thread char arg_error[300];

static json_t *prop_list(json_t *args, const char *name, const char *const *defaults,
                         size_t ndefaults, const char *const *known, size_t nknown,
                         const char *what, bool *bad)
{
	json_t *out = json_array(), *given;
	const char *type, *why;
	int r = jmap_arg_strings(args, name, 1000, &given, &type, &why);
	if (r < 0) {
		snprintf(arg_error, sizeof(arg_error), "%s", why);
		*bad = true;
		return out;
	}
	if (r == 0) {
		for (size_t i = 0; i < ndefaults; i++)
			json_array_append_new(out, json_string(defaults[i]));
		return out;
	}
	size_t i;
	json_t *v;
	json_array_foreach(given, i, v)
	{
		const char *s = json_string_value(v);
		struct header_prop hp;
		if (!in_list(known, nknown, s) && !parse_header_prop(s, &hp)) {
			snprintf(arg_error, sizeof(arg_error), "unknown or not allowed %s: %.200s",
			         what, s);
			*bad = true;
			return out;
		}
		json_array_append(out, v);
	}
	return out;
}

static bool get_bool(json_t *args, const char *name, bool *v)
{
	json_t *j = json_object_get(args, name);
	if (j == NULL || json_is_null(j)) {
		*v = false;
		return true;
	}
	if (!json_is_boolean(j))
		return false;
	*v = json_is_true(j);
	return true;
}

static int parse_get_args(json_t *args, bool for_parse, struct get_args *a,
                          const char **description_r)
{
	memset(a, 0, sizeof(*a));
	bool bad = false;
	a->properties =
	    for_parse
	        ? prop_list(args, "properties", default_parse_props, ARRAY_LEN(default_parse_props),
	                    email_props, ARRAY_LEN(email_props), "property", &bad)
	        : prop_list(args, "properties", default_get_props, ARRAY_LEN(default_get_props),
	                    email_props, ARRAY_LEN(email_props), "property", &bad);
	if (!bad)
		a->body_properties = prop_list(args, "bodyProperties", default_part_props,
		                               ARRAY_LEN(default_part_props), part_props,
		                               ARRAY_LEN(part_props), "body property", &bad);
	if (!bad && (!get_bool(args, "fetchTextBodyValues", &a->fetch_text) ||
	             !get_bool(args, "fetchHTMLBodyValues", &a->fetch_html) ||
	             !get_bool(args, "fetchAllBodyValues", &a->fetch_all))) {
		snprintf(arg_error, sizeof(arg_error), "fetch*BodyValues must be booleans");
		bad = true;
	}
	json_t *m = json_object_get(args, "maxBodyValueBytes");
	if (!bad && m != NULL && !json_is_null(m)) {
		if (!json_is_integer(m) || json_integer_value(m) < 0) {
			snprintf(arg_error, sizeof(arg_error),
			         "maxBodyValueBytes must be an unsigned integer");
			bad = true;
		} else {
			a->max_bytes = (size_t)json_integer_value(m);
		}
	}
	if (bad) {
		get_args_free(a);
		*description_r = arg_error;
		return -1;
	}
	return 0;
}

/* --- building objects ----------------------------------------------------------- */

static json_t *header_value(json_t *headers, const struct header_prop *hp)
{
	json_t *all = hp->all ? json_array() : NULL, *last = NULL;
	size_t i;
	json_t *h;
	json_array_foreach(headers, i, h)
	{
		if (strcasecmp(json_string_value(json_object_get(h, "name")), hp->name) != 0)
			continue;
		if (all != NULL)
			json_array_append_new(
			    all, mime_header_value(json_string_value(json_object_get(h, "value")),
			                           hp->form));
		else
			last = h;
	}
	if (all != NULL)
		return all;
	if (last == NULL)
		return json_null();
	return mime_header_value(json_string_value(json_object_get(last, "value")), hp->form);
}

static json_t *find_part(json_t *part, const char *id)
{
	const char *pid = json_string_value(json_object_get(part, "partId"));
	if (pid != NULL && strcmp(pid, id) == 0)
		return part;
	size_t i;
	json_t *sub;
	json_array_foreach(json_object_get(part, "subParts"), i, sub)
	{
		json_t *f = find_part(sub, id);
		if (f != NULL)
			return f;
	}
	return NULL;
}

static json_t *body_part(json_t *part, const char *blob_prefix, json_t *props, int depth)
{
	json_t *o = json_object();
	bool multipart = json_is_array(json_object_get(part, "subParts"));
	size_t i;
	json_t *p;
	json_array_foreach(props, i, p)
	{
		const char *name = json_string_value(p);
		struct header_prop hp;
		if (strcmp(name, "blobId") == 0) {
			const char *pid = json_string_value(json_object_get(part, "partId"));
			json_object_set_new(
			    o, name, pid != NULL ? part_blob_id(blob_prefix, pid) : json_null());
		} else if (strcmp(name, "subParts") == 0) {
			if (!multipart)
				json_object_set_new(o, name, json_null());
		} else if (parse_header_prop(name, &hp)) {
			json_object_set_new(o, name,
			                    header_value(json_object_get(part, "headers"), &hp));
		} else {
			json_t *v = json_object_get(part, name);
			json_object_set_new(o, name, v != NULL ? json_deep_copy(v) : json_null());
		}
	}
	/* A structure without its children would be useless: multiparts always
	 * list them. */
	if (multipart) {
		json_t *subs = json_array();
		json_array_foreach(json_object_get(part, "subParts"), i, p)
		{
			if (depth < MIME_EMAIL_MAX_DEPTH + 1)
				json_array_append_new(subs,
				                      body_part(p, blob_prefix, props, depth + 1));
		}
		json_object_set_new(o, "subParts", subs);
	}
	return o;
}

static json_t *part_list(json_t *tree, const char *list, const char *blob_prefix, json_t *props)
{
	json_t *out = json_array(), *structure = json_object_get(tree, "bodyStructure");
	size_t i;
	json_t *id;
	json_array_foreach(json_object_get(tree, list), i, id)
	{
		json_t *part = find_part(structure, json_string_value(id));
		if (part != NULL)
			json_array_append_new(out, body_part(part, blob_prefix, props, 0));
	}
	return out;
}

static size_t utf8_cut(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return len;
	size_t n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	return n;
}

static void add_body_value(json_t *out, json_t *values, const char *id, size_t max)
{
	json_t *bv = json_object_get(values, id);
	if (bv == NULL || json_object_get(out, id) != NULL)
		return;
	json_t *value = json_object_get(bv, "value");
	const char *s = json_string_value(value);
	size_t len = json_string_length(value);
	size_t keep = max > 0 ? utf8_cut(s, len, max) : len;
	json_object_set_new(out, id,
	                    json_pack("{s:s%,s:b,s:b}", "value", s, keep, "isEncodingProblem",
	                              json_is_true(json_object_get(bv, "isEncodingProblem")),
	                              "isTruncated",
	                              keep < len || json_is_true(json_object_get(bv, "cut"))));
}

static json_t *body_values(json_t *tree, const struct get_args *a)
{
	json_t *out = json_object(), *values = json_object_get(tree, "bodyValues");
	size_t i;
	json_t *id;
	if (a->fetch_text)
		json_array_foreach(json_object_get(tree, "textBody"), i, id)
		    add_body_value(out, values, json_string_value(id), a->max_bytes);
	if (a->fetch_html)
		json_array_foreach(json_object_get(tree, "htmlBody"), i, id)
		    add_body_value(out, values, json_string_value(id), a->max_bytes);
	if (a->fetch_all) {
		const char *key;
		json_t *v;
		json_object_foreach(values, key, v) add_body_value(out, values, key, a->max_bytes);
	}
	return out;
}

/* mailboxIds of an Email: every membership's mailbox (a set), or NULL
 * on a store error. */
static json_t *mailbox_ids_json(struct jmap_mail_ctx *ctx, int64_t email_id)
{
	int64_t *mids = NULL, *boxes = NULL;
	size_t n = 0;
	const char *err;
	if (store_email_members(ctx->store, email_id, &mids, &boxes, &n, &err) < 0)
		return NULL;
	json_t *o = json_object();
	for (size_t i = 0; i < n; i++) {
		char mid[32];
		snprintf(mid, sizeof(mid), "M%lld", (long long)boxes[i]);
		json_object_set_new(o, mid, json_true());
	}
	free(mids);
	free(boxes);
	return o;
}

/* One Email object. e is NULL for Email/parse (metadata then null). tree
 * may be NULL when the message could not be read (metadata only).
 * mailbox_ids: the Email's mailboxIds (borrowed), NULL when not asked. */
static json_t *email_object(const struct get_args *a, const struct store_email *e,
                            json_t *mailbox_ids, json_t *tree, const char *blob_id, uint64_t size)
{
	json_t *o = json_object();
	size_t i;
	json_t *p;
	json_array_foreach(a->properties, i, p)
	{
		const char *name = json_string_value(p);
		json_t *v = NULL;
		struct header_prop hp;
		if (strcmp(name, "id") == 0) {
			v = e != NULL ? jmap_prefixed('E', e->id) : json_null();
		} else if (strcmp(name, "blobId") == 0) {
			v = json_string(blob_id);
		} else if (strcmp(name, "threadId") == 0) {
			v = e != NULL ? thread_id_json(e) : json_null();
		} else if (strcmp(name, "mailboxIds") == 0) {
			if (e != NULL && mailbox_ids != NULL)
				v = json_incref(mailbox_ids);
		} else if (strcmp(name, "keywords") == 0) {
			v = e != NULL ? jmap_keywords_json(e->flags, e->keywords) : NULL;
		} else if (strcmp(name, "size") == 0) {
			v = json_integer((json_int_t)size);
		} else if (strcmp(name, "receivedAt") == 0) {
			v = e != NULL ? jmap_utc_date(e->internaldate) : NULL;
		} else if (tree == NULL) {
			v = NULL; /* unreadable message: metadata only */
		} else if (strcmp(name, "headers") == 0) {
			v = json_deep_copy(json_object_get(tree, "headers"));
		} else if (strcmp(name, "bodyStructure") == 0) {
			v = body_part(json_object_get(tree, "bodyStructure"), blob_id,
			              a->body_properties, 0);
		} else if (strcmp(name, "textBody") == 0 || strcmp(name, "htmlBody") == 0 ||
		           strcmp(name, "attachments") == 0) {
			v = part_list(tree, name, blob_id, a->body_properties);
		} else if (strcmp(name, "bodyValues") == 0) {
			v = body_values(tree, a);
		} else if (strcmp(name, "preview") == 0 || strcmp(name, "hasAttachment") == 0) {
			v = json_deep_copy(json_object_get(tree, name)); /* shared tree */
		} else if (parse_header_prop(name, &hp)) {
			v = header_value(json_object_get(tree, "headers"), &hp);
		} else {
			for (size_t k = 0; k < ARRAY_LEN(convenience); k++) {
				if (strcmp(convenience[k].prop, name) == 0) {
					snprintf(hp.name, sizeof(hp.name), "%s",
					         convenience[k].header);
					hp.form = convenience[k].form;
					hp.all = false;
					v = header_value(json_object_get(tree, "headers"), &hp);
				}
			}
		}
		json_object_set_new(o, name, v != NULL ? v : json_null());
	}
	/* id is always returned by /get (RFC 8620 5.1). */
	if (e != NULL && json_object_get(o, "id") == NULL)
		json_object_set_new(o, "id", jmap_prefixed('E', e->id));
	return o;
}

/* --- methods --------------------------------------------------------------------- */

static int email_get(void *context, struct jmap_call *call, json_t *args, const char **error_type_r,
                     const char **description_r)
{
	struct jmap_mail_ctx *ctx = context;
	const char *err;
	if (jmap_check_account(ctx, args, error_type_r) < 0)
		return -1;
	json_t *ids;
	int r = jmap_arg_strings(args, "ids", JMAP_MAIL_MAX_OBJECTS_IN_GET, &ids, error_type_r,
	                         description_r);
	if (r <= 0) {
		if (r == 0) {
			*error_type_r = "requestTooLarge";
			*description_r =
			    "ids is required (fetching every email at once is not allowed)";
		}
		return -1;
	}
	struct get_args a;
	if (parse_get_args(args, false, &a, description_r) < 0) {
		*error_type_r = "invalidArguments";
		return -1;
	}
	/* Only properties that need the message bytes make us parse them. */
	bool need_tree = false, need_boxes = false;
	size_t i;
	json_t *v;
	json_array_foreach(a.properties, i, v)
	{
		const char *p = json_string_value(v);
		need_boxes |= strcmp(p, "mailboxIds") == 0;
		need_tree |= !(strcmp(p, "id") == 0 || strcmp(p, "blobId") == 0 ||
		               strcmp(p, "threadId") == 0 || strcmp(p, "mailboxIds") == 0 ||
		               strcmp(p, "keywords") == 0 || strcmp(p, "size") == 0 ||
		               strcmp(p, "receivedAt") == 0);
	}
	json_t *list = json_array(), *not_found = json_array();
	json_array_foreach(ids, i, v)
	{
		int64_t row;
		struct store_email e;
		if (!jmap_list_id(call, v, 'E', &row) ||
		    store_email_get(ctx->store, row, &e, &err) != 1 ||
		    (ctx->store_account_id != 0 && e.account_id != ctx->store_account_id)) {
			json_array_append(not_found, v);
			continue;
		}
		json_t *boxes = need_boxes ? mailbox_ids_json(ctx, e.id) : NULL;
		char blob_id[32];
		snprintf(blob_id, sizeof(blob_id), "B%lld", (long long)e.blob_id);
		json_t *tree = NULL;
		uint64_t size;
		if (need_tree) {
			struct blob_ref ref = {.row = e.blob_id, .n = 0};
			/* Unreadable bytes (a store error, a message too large to
			 * take apart): this email gets its metadata, the rest null. */
			if (ref_parsed(ctx, &ref, &tree, &size, &err) != 1)
				tree = NULL;
		}
		json_array_append_new(list, email_object(&a, &e, boxes, tree, blob_id, e.size));
		json_decref(boxes);
		mime_cache_release(ctx->cache, tree);
	}
	get_args_free(&a);
	json_t *resp = json_pack("{s:s,s:s,s:o,s:o}", "accountId", ctx->account_id, "state",
	                         ctx->state, "list", list, "notFound", not_found);
	return jmap_call_respond(call, "Email/get", resp, &err);
}

static int email_parse(void *context, struct jmap_call *call, json_t *args,
                       const char **error_type_r, const char **description_r)
{
	struct jmap_mail_ctx *ctx = context;
	const char *err;
	if (jmap_check_account(ctx, args, error_type_r) < 0)
		return -1;
	json_t *ids;
	int got = jmap_arg_strings(args, "blobIds", JMAP_MAIL_MAX_OBJECTS_IN_GET, &ids,
	                           error_type_r, description_r);
	if (got <= 0) {
		if (got == 0) {
			*error_type_r = "invalidArguments";
			*description_r = "blobIds must be a list";
		}
		return -1;
	}
	struct get_args a;
	if (parse_get_args(args, true, &a, description_r) < 0) {
		*error_type_r = "invalidArguments";
		return -1;
	}
	json_t *parsed = json_object(), *not_parsable = json_array(), *not_found = json_array();
	size_t i;
	json_t *v;
	json_array_foreach(ids, i, v)
	{
		const char *id = json_string_value(v);
		struct blob_ref ref;
		uint64_t size;
		json_t *tree = NULL;
		if (id == NULL || !parse_blob_ref(id, &ref)) {
			json_array_append(not_found, v);
			continue;
		}
		uint8_t sha[32];
		int found = store_blob_sha256(ctx->store, ref.row, &size, sha, &err);
		int r = found == 1 ? ref_parsed(ctx, &ref, &tree, &size, &err) : found;
		if (r < 0 && found == 1) {
			json_array_append(not_parsable, v);
		} else if (r < 0) {
			json_decref(parsed);
			json_decref(not_parsable);
			json_decref(not_found);
			get_args_free(&a);
			*error_type_r = "serverFail";
			return -1;
		} else if (r == 2) {
			json_array_append(not_parsable, v); /* a part, but not a message */
		} else if (r == 0) {
			json_array_append(not_found, v);
		} else {
			json_object_set_new(parsed, id,
			                    email_object(&a, NULL, NULL, tree, id, size));
			mime_cache_release(ctx->cache, tree);
		}
	}
	get_args_free(&a);
	json_t *resp = json_pack("{s:s,s:o,s:o,s:o}", "accountId", ctx->account_id, "parsed",
	                         parsed, "notParsable", not_parsable, "notFound", not_found);
	return jmap_call_respond(call, "Email/parse", resp, &err);
}

int jmap_email_register(struct jmap_registry *registry, const char **error_r)
{
	if (jmap_registry_add_method(registry, "Email/get", JMAP_CAPABILITY_MAIL, email_get,
	                             error_r) < 0 ||
	    jmap_registry_add_method(registry, "Email/parse", JMAP_CAPABILITY_MAIL, email_parse,
	                             error_r) < 0)
		return -1;
	return 0;
}
