/*
 * problem.c: the one table from agora_err to HTTP, and RFC 9457
 * problem+json answers.
 *
 * Clients get a fixed title, a stable snake_case code to switch on and a
 * detail meant for people; SQL, paths and library messages go to the log
 * only.
 */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "agora.h"

struct problem {
	int status;
	const char *code;
	const char *title;
};

static const struct problem problems[AGORA_E__MAX] = {
	[AGORA_OK] = { 200, "ok", "OK" },
	[AGORA_E_BAD_REQUEST] = { 400, "bad_request", "Bad request" },
	[AGORA_E_BAD_JSON] = { 400, "malformed_json", "Malformed JSON" },
	[AGORA_E_BAD_TYPE] = { 400, "invalid_type", "Wrong JSON type" },
	[AGORA_E_UNAUTHORIZED] = { 401, "unauthorized",
	    "Authentication required" },
	[AGORA_E_FORBIDDEN] = { 403, "forbidden", "Forbidden" },
	[AGORA_E_NOT_FOUND] = { 404, "not_found", "Not found" },
	[AGORA_E_METHOD] = { 405, "method_not_allowed", "Method not allowed" },
	[AGORA_E_CONFLICT] = { 409, "conflict", "Conflict" },
	[AGORA_E_TOO_LARGE] = { 413, "payload_too_large", "Payload too large" },
	[AGORA_E_MEDIA_TYPE] = { 415, "unsupported_media_type",
	    "Unsupported media type" },
	[AGORA_E_VALIDATION] = { 422, "validation_failed",
	    "Validation failed" },
	[AGORA_E_RATE_LIMITED] = { 429, "rate_limited", "Too many requests" },
	[AGORA_E_INTERNAL] = { 500, "internal_error", "Internal error" },
	[AGORA_E_BAD_GATEWAY] = { 502, "bad_gateway", "Bad gateway" },
	[AGORA_E_UNAVAILABLE] = { 503, "service_unavailable",
	    "Service unavailable" },
	/* The two internal errors reach clients only as 503. */
	[AGORA_E_RETRY] = { 503, "service_unavailable", "Service unavailable" },
	[AGORA_E_CONNLOST] = { 503, "service_unavailable",
	    "Service unavailable" },
};

int
agora_err_status(enum agora_err e)
{
	if ((unsigned)e >= AGORA_E__MAX)
		e = AGORA_E_INTERNAL;
	return problems[e].status;
}

const char *
agora_err_code(enum agora_err e)
{
	if ((unsigned)e >= AGORA_E__MAX)
		e = AGORA_E_INTERNAL;
	return problems[e].code;
}

const char *
agora_status_text(int status)
{
	static const struct {
		int status;
		const char *text;
	} texts[] = { { 200, "OK" }, { 201, "Created" }, { 202, "Accepted" },
		{ 204, "No Content" }, { 302, "Found" }, { 303, "See Other" },
		{ 304, "Not Modified" }, { 400, "Bad Request" },
		{ 401, "Unauthorized" }, { 403, "Forbidden" },
		{ 404, "Not Found" }, { 405, "Method Not Allowed" },
		{ 409, "Conflict" }, { 412, "Precondition Failed" },
		{ 413, "Content Too Large" }, { 415, "Unsupported Media Type" },
		{ 422, "Unprocessable Content" }, { 429, "Too Many Requests" },
		{ 500, "Internal Server Error" }, { 502, "Bad Gateway" },
		{ 503, "Service Unavailable" } };
	size_t i;

	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		if (texts[i].status == status)
			return texts[i].text;
	return "Unknown";
}

static struct json_object *
problem_object(
    struct agora_req *r, enum agora_err e, const char *code, const char *detail)
{
	struct json_object *o;
	const struct problem *p;

	if ((unsigned)e >= AGORA_E__MAX || e == AGORA_OK)
		e = AGORA_E_INTERNAL;
	p = &problems[e];
	o = json_object_new_object();
	if (o == NULL)
		return NULL;
	agora_json_set(o, "type", json_object_new_string("about:blank"));
	agora_json_set(o, "title", json_object_new_string(p->title));
	agora_json_set(o, "status", json_object_new_int(p->status));
	agora_json_set(o, "detail",
	    json_object_new_string(detail != NULL ? detail : p->title));
	agora_json_set(
	    o, "code", json_object_new_string(code != NULL ? code : p->code));
	agora_json_set(o, "request_id",
	    json_object_new_string(r->request_id != NULL ? r->request_id : ""));
	return o;
}

static enum agora_err
problem_send(struct agora_req *r, enum agora_err e, const char *code,
    struct json_object *o)
{
	enum agora_err rc;

	if (o == NULL)
		return AGORA_E_INTERNAL;
	rc = agora_resp_json(r, agora_err_status(e), o);
	r->content_type = "application/problem+json";
	/* An error is never cacheable, whatever the route had set. */
	agora_resp_header(r, "Cache-Control",
	    r->user != NULL ? "private, no-store" : "no-store");
	r->error_code = code != NULL ? code : agora_err_code(e);
	if (agora_err_status(e) == 503)
		agora_resp_header(r, "Retry-After",
		    agora_printf(r, "%lld", r->ctx->cfg.db_retry_after));
	if (agora_err_status(e) == 401 &&
	    !agora_resp_has_header(r, "WWW-Authenticate"))
		agora_resp_header(r, "WWW-Authenticate", "Bearer");
	return rc;
}

/*
 * Answer with a problem: e picks the status and title, code overrides the
 * default code when not NULL, detail is for people.  Returns e so that
 * handlers can "return agora_problem(...)".
 */
enum agora_err
agora_problem(
    struct agora_req *r, enum agora_err e, const char *code, const char *detail)
{
	problem_send(r, e, code, problem_object(r, e, code, detail));
	return e;
}

/*
 * As agora_problem, with one more member name: value (RFC 9457 allows
 * extension members); steals value.
 */
enum agora_err
agora_problem_ext(struct agora_req *r, enum agora_err e, const char *code,
    const char *detail, const char *name, struct json_object *value)
{
	struct json_object *o;

	o = problem_object(r, e, code, detail);
	if (o == NULL) {
		json_object_put(value);
		return AGORA_E_INTERNAL;
	}
	agora_json_set(o, name, value);
	problem_send(r, e, code, o);
	return e;
}

/* As agora_problem, with an "errors" array of {field, message}; steals it. */
enum agora_err
agora_problem_errors(struct agora_req *r, enum agora_err e, const char *detail,
    struct json_object *errors)
{
	return agora_problem_ext(r, e, NULL, detail, "errors", errors);
}
