/*
 * SearchSnippet/get (RFC 8621 section 5): for each Email id, the subject and
 * a piece of the body with the words of the filter's text conditions marked
 * by <mark></mark>, everything else HTML-escaped.
 *
 * The filter is the Email/query filter tree; its text conditions (text,
 * subject, body, from, to, cc, bcc) become FTS5 expressions
 * (store_fts_expr) joined by OR, so every word any condition looks for is
 * marked where it matched. Conditions under a NOT operator are left out
 * (their words are what the Email must not contain), other conditions are
 * ignored. Emails not indexed yet (the background indexer has a backlog) or
 * without a match get null subject and preview.
 */
#include "jmap-mail.h"
#include "jmap-private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SEARCH_MAX_TEXT_CONDITIONS 64
#define SEARCH_MAX_DEPTH 16
#define SEARCH_PREVIEW_MAX 255 /* octets (RFC 8621 5.1) */
#define SEARCH_SUBJECT_MAX 4096

static bool email_row_id(const char *id, int64_t *id_r)
{
	if (id == NULL || id[0] != 'E' || id[1] < '1' || id[1] > '9')
		return false;
	char *end;
	errno = 0;
	long long v = strtoll(id + 1, &end, 10);
	if (errno != 0 || *end != '\0' || v <= 0)
		return false;
	*id_r = v;
	return true;
}

struct text_exprs {
	char *expr; /* "(e1) OR (e2) ...", NULL while empty */
	unsigned count;
};

/* Walk the filter tree collecting the text conditions: 0 ok, -1 with the
 * error type and description set. */
static int collect_text(json_t *filter, unsigned depth, struct text_exprs *te,
                        const char **error_type_r, const char **description_r)
{
	static const char *const fields[] = {"text", "subject", "body", "from", "to", "cc", "bcc"};
	if (filter == NULL || json_is_null(filter))
		return 0;
	if (!json_is_object(filter) || depth > SEARCH_MAX_DEPTH) {
		*error_type_r = "invalidArguments";
		*description_r =
		    json_is_object(filter) ? "filter nested too deeply" : "filter is not an object";
		return -1;
	}
	json_t *op = json_object_get(filter, "operator");
	if (op != NULL) {
		json_t *conds = json_object_get(filter, "conditions");
		const char *o = json_string_value(op);
		if (o == NULL || !json_is_array(conds) ||
		    (strcmp(o, "AND") != 0 && strcmp(o, "OR") != 0 && strcmp(o, "NOT") != 0)) {
			*error_type_r = "invalidArguments";
			*description_r = "bad filter operator";
			return -1;
		}
		if (strcmp(o, "NOT") == 0)
			return 0;
		size_t i;
		json_t *c;
		json_array_foreach(conds, i, c)
		{
			if (collect_text(c, depth + 1, te, error_type_r, description_r) < 0)
				return -1;
		}
		return 0;
	}
	for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
		json_t *v = json_object_get(filter, fields[f]);
		if (v == NULL || json_is_null(v))
			continue;
		const char *err;
		char *expr;
		if (!json_is_string(v) || ++te->count > SEARCH_MAX_TEXT_CONDITIONS) {
			*error_type_r = "invalidArguments";
			*description_r = json_is_string(v) ? "too many text conditions"
			                                   : "text conditions are strings";
			return -1;
		}
		if (store_fts_expr(fields[f], json_string_value(v), &expr, &err) < 0) {
			*error_type_r = "invalidArguments";
			*description_r = "search text too long or has too many words";
			return -1;
		}
		size_t old = te->expr != NULL ? strlen(te->expr) : 0;
		size_t cap = old + strlen(expr) + 8;
		char *joined = realloc(te->expr, cap);
		if (joined == NULL) {
			free(expr);
			*error_type_r = "serverFail";
			return -1;
		}
		te->expr = joined;
		/* cap fits " OR " + "(" + ")" + NUL. */
		int n = snprintf(joined + old, cap - old, "%s(%s)", old > 0 ? " OR " : "", expr);
		free(expr);
		if (n < 0 || (size_t)n >= cap - old) {
			*error_type_r = "serverFail";
			return -1;
		}
	}
	return 0;
}

/*
 * Highlighted text (matches between \x01 and \x02) to HTML with <mark>,
 * at most max octets: when it would be longer, it is cut at a character
 * boundary, an open <mark> closed and "…" added, all within max.
 */
static json_t *marked_html(const char *text, size_t max)
{
	static const char ellipsis[] = "\xe2\x80\xa6", open_tag[] = "<mark>",
	                  close_tag[] = "</mark>";
	char *out = malloc(max + 1);
	if (out == NULL)
		return json_null();
	size_t len = 0;
	bool open = false, cut = false;
	for (const unsigned char *p = (const unsigned char *)text; *p != '\0';) {
		char one[8];
		const char *piece = one;
		size_t plen, adv = 1;
		switch (*p) {
		case 1:
			piece = open_tag, plen = sizeof(open_tag) - 1;
			break;
		case 2:
			piece = close_tag, plen = sizeof(close_tag) - 1;
			break;
		case '&':
			piece = "&amp;", plen = 5;
			break;
		case '<':
			piece = "&lt;", plen = 4;
			break;
		case '>':
			piece = "&gt;", plen = 4;
			break;
		case '"':
			piece = "&quot;", plen = 6;
			break;
		case '\'':
			piece = "&#39;", plen = 5;
			break;
		case '\n':
		case '\t':
		case '\r':
			piece = " ", plen = 1;
			break;
		default:
			adv = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3 : 4;
			for (plen = 0; plen < adv && p[plen] != '\0'; plen++)
				one[plen] = (char)p[plen];
			adv = plen;
		}
		/* Room for this piece, a closing tag if one is open afterwards,
		 * and the ellipsis should a later piece not fit. */
		bool opens = *p == 1, closes = *p == 2;
		size_t tail =
		    ((open && !closes) || opens ? sizeof(close_tag) - 1 : 0) + sizeof(ellipsis) - 1;
		if (len + plen + tail > max) {
			cut = true;
			break;
		}
		memcpy(out + len, piece, plen);
		len += plen;
		open = opens ? true : closes ? false : open;
		p += adv;
	}
	if (open) {
		memcpy(out + len, close_tag, sizeof(close_tag) - 1);
		len += sizeof(close_tag) - 1;
	}
	if (cut) {
		memcpy(out + len, ellipsis, sizeof(ellipsis) - 1);
		len += sizeof(ellipsis) - 1;
	}
	json_t *s = json_stringn(out, len);
	free(out);
	return s != NULL ? s : json_null();
}

static int search_snippet_get(void *context, struct jmap_call *call, json_t *args,
                              const char **error_type_r, const char **description_r)
{
	struct jmap_mail_ctx *ctx = context;
	const char *err;
	const char *acct = json_string_value(json_object_get(args, "accountId"));
	if (acct == NULL || strcmp(acct, ctx->account_id) != 0) {
		*error_type_r = acct == NULL ? "invalidArguments" : "accountNotFound";
		return -1;
	}
	json_t *ids;
	int r = jmap_arg_strings(args, "emailIds", JMAP_MAIL_MAX_OBJECTS_IN_GET, &ids, error_type_r,
	                         description_r);
	if (r <= 0) {
		if (r == 0) {
			*error_type_r = "invalidArguments";
			*description_r = "emailIds is required";
		}
		return -1;
	}
	struct text_exprs te = {NULL, 0};
	if (collect_text(json_object_get(args, "filter"), 0, &te, error_type_r, description_r) <
	    0) {
		free(te.expr);
		return -1;
	}
	json_t *list = json_array(), *not_found = json_array();
	size_t idx;
	json_t *v;
	int ret = 0;
	json_array_foreach(ids, idx, v)
	{
		const char *id;
		int64_t row;
		struct store_email e;
		if (jmap_call_resolve_id(call, json_string_value(v), &id, &err) < 0 ||
		    !email_row_id(id, &row) || store_email_get(ctx->store, row, &e, &err) != 1 ||
		    (ctx->store_account_id != 0 && e.account_id != ctx->store_account_id)) {
			json_array_append(not_found, v);
			continue;
		}
		char *subject = NULL, *preview = NULL;
		if (te.expr != NULL && store_fts_snippet(ctx->store, e.blob_id, te.expr, &subject,
		                                         &preview, &err) < 0) {
			*error_type_r = "serverFail";
			ret = -1;
			break;
		}
		json_array_append_new(
		    list,
		    json_pack(
		        "{s:s,s:o,s:o}", "emailId", id, "subject",
		        subject != NULL ? marked_html(subject, SEARCH_SUBJECT_MAX) : json_null(),
		        "preview",
		        preview != NULL ? marked_html(preview, SEARCH_PREVIEW_MAX) : json_null()));
		free(subject);
		free(preview);
	}
	free(te.expr);
	if (ret < 0) {
		json_decref(list);
		json_decref(not_found);
		return -1;
	}
	if (json_array_size(not_found) == 0) {
		json_decref(not_found);
		not_found = json_null();
	}
	json_t *resp = json_pack("{s:s,s:o,s:o}", "accountId", ctx->account_id, "list", list,
	                         "notFound", not_found);
	return jmap_call_respond(call, "SearchSnippet/get", resp, &err);
}

int jmap_search_register(struct jmap_registry *registry, const char **error_r)
{
	return jmap_registry_add_method(registry, "SearchSnippet/get", JMAP_CAPABILITY_MAIL,
	                                search_snippet_get, error_r);
}
