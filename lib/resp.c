/*
 * resp.c: building the response: status, headers, body, ETags.
 *
 * The response is built whole in the arena; serve.c writes it with one
 * call, with Content-Length and the security headers.  The last call
 * wins, so a handler may answer, and a later step (a rate limit, a
 * problem) replace that answer.
 */
#include "config.h"

#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "agora.h"

static const char *
etag_opaque(const char *t, size_t *len)
{
	if (strncmp(t, "W/", 2) == 0)
		t += 2;
	*len = strcspn(t, ", \t");
	return t;
}

int
agora_etag_match(const char *inm, const char *etag)
{
	const char *want, *have;
	size_t wlen, hlen;

	if (inm == NULL || etag == NULL)
		return 0;
	want = etag_opaque(etag, &wlen);
	while (*inm != '\0') {
		inm += strspn(inm, ", \t");
		if (*inm == '*')
			return 1;
		if (*inm == '\0')
			break;
		have = etag_opaque(inm, &hlen);
		if (hlen == wlen && strncmp(have, want, wlen) == 0)
			return 1;
		inm = have + hlen;
	}
	return 0;
}

/*
 * Add a response header.  Names and values are kept as given (they must
 * live as long as the request); a value with CR or LF is refused, so that
 * nothing a client sent can split the header block.
 */
void
agora_resp_header(struct agora_req *r, const char *name, const char *value)
{
	size_t i;

	if (name != NULL && value != NULL)
		for (i = 0; i < r->nheaders; i++)
			if (strcasecmp(r->headers[i].name, name) == 0) {
				if (strpbrk(value, "\r\n") == NULL)
					r->headers[i].value = value;
				else
					agora_log("error", "refusing header %s",
					    name);
				return;
			}
	agora_resp_header_add(r, name, value);
}

/*
 * One more header of that name, beside any before it: for Set-Cookie,
 * whose values cannot be joined into one line (RFC 6265, section 3).
 */
void
agora_resp_header_add(struct agora_req *r, const char *name, const char *value)
{
	if (name == NULL || value == NULL || strpbrk(value, "\r\n") != NULL) {
		agora_log("error", "refusing header %s", name ? name : "?");
		return;
	}
	if (r->nheaders == AGORA_MAX_HEADERS) {
		agora_log("error", "too many headers, dropping %s", name);
		return;
	}
	r->headers[r->nheaders].name = name;
	r->headers[r->nheaders].value = value;
	r->nheaders++;
}

int
agora_resp_has_header(const struct agora_req *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->nheaders; i++)
		if (strcasecmp(r->headers[i].name, name) == 0)
			return 1;
	return 0;
}

enum agora_err
agora_resp_raw(struct agora_req *r, int status, const char *content_type,
    const char *body, size_t len)
{
	r->status = status;
	r->content_type = content_type;
	r->out = body;
	r->out_len = len;
	r->error_code = NULL;
	return AGORA_OK;
}

enum agora_err
agora_resp_cell(
    struct agora_req *r, int status, const PGresult *res, int row, int col)
{
	return agora_resp_raw(r, status, "application/json",
	    PQgetvalue(res, row, col), (size_t)PQgetlength(res, row, col));
}

/* Serialize o as the response body and release it. */
enum agora_err
agora_resp_json(struct agora_req *r, int status, struct json_object *o)
{
	const char *s;
	size_t n;
	char *copy;

	/* No object (a constructor ran out of memory) is no answer, not
	 * the "null" json-c would write for it. */
	s = o == NULL
	    ? NULL
	    : json_object_to_json_string_length(o,
	          JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
	copy = s != NULL ? agora_alloc(r, n + 1) : NULL;
	if (copy != NULL)
		memcpy(copy, s, n + 1);
	json_object_put(o);
	if (copy == NULL) {
		r->status = 500;
		r->out = NULL;
		return AGORA_E_TOO_LARGE;
	}
	return agora_resp_raw(r, status, "application/json", copy, n);
}

/* Point doc at body and compute its ETag. */
void
agora_doc_set(struct agora_doc *doc, const char *body, size_t len)
{
	unsigned char h[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(h, (const unsigned char *)body, len);
	doc->etag[0] = '"';
	sodium_bin2hex(doc->etag + 1, AGORA_ETAG_LEN - 1, h, 16);
	doc->etag[AGORA_ETAG_LEN - 1] = '"';
	doc->etag[AGORA_ETAG_LEN] = '\0';
	doc->body = body;
	doc->len = len;
}

/*
 * Answer 200 with the JSON document and its ETag, or 304 when
 * If-None-Match names that tag.  cache_control, when not NULL, replaces
 * the default Cache-Control.
 */
enum agora_err
agora_resp_tagged(
    struct agora_req *r, const struct agora_doc *doc, const char *cache_control)
{
	const char *etag = agora_strdup(r, doc->etag);

	if (etag == NULL)
		return AGORA_E_TOO_LARGE;
	agora_resp_header(r, "ETag", etag);
	if (cache_control != NULL)
		agora_resp_header(r, "Cache-Control", cache_control);
	if (agora_etag_match(agora_param(r, "HTTP_IF_NONE_MATCH"), etag))
		return agora_resp_raw(r, 304, NULL, NULL, 0);
	return agora_resp_raw(r, 200, "application/json", doc->body, doc->len);
}

/* agora_resp_tagged for a body whose ETag is not known yet. */
enum agora_err
agora_resp_doc(struct agora_req *r, const char *body, size_t len,
    const char *cache_control)
{
	struct agora_doc doc;

	agora_doc_set(&doc, body, len);
	return agora_resp_tagged(r, &doc, cache_control);
}
