/*
 * pipeline.c: one request read up to its handler, in order: its id, the
 * path, the header and body caps, the route, authentication, the rate
 * limit, then the body.  Each step that fails sets the problem answer and
 * ends the pipeline; every size the client controls is capped before it
 * is read.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "agora.h"
#include "internal.h"

#define REQUEST_ID_MAX 128

static enum agora_err
parse_path(struct agora_req *r)
{
	const char *uri, *q, *sn, *pi;

	uri = agora_param(r, "REQUEST_URI");
	r->query = agora_param(r, "QUERY_STRING");
	if (uri == NULL) {
		/* A plain CGI run may come without REQUEST_URI. */
		sn = agora_param(r, "SCRIPT_NAME");
		pi = agora_param(r, "PATH_INFO");
		uri = agora_printf(r, "%s%s", sn ? sn : "", pi ? pi : "");
		if (uri == NULL)
			return AGORA_E_TOO_LARGE;
	}
	q = strchr(uri, '?');
	if (r->query == NULL)
		r->query = q != NULL ? q + 1 : "";
	r->path = agora_url_decode(
	    r, uri, q != NULL ? (size_t)(q - uri) : strlen(uri), 0);
	if (r->path == NULL)
		return agora_problem(r, AGORA_E_BAD_REQUEST, "bad_path",
		    "The path has a bad percent-escape, a NUL or bad UTF-8.");
	return AGORA_OK;
}

/*
 * A new request id: 64 random bits drawn once per process, then a
 * counter, in 32 hex digits.  Unique across processes and hosts without a
 * system call per request; it is a trace id, not a secret.
 */
static void
next_request_id(char out[33])
{
	static char prefix[17];
	static unsigned long long counter;

	if (prefix[0] == '\0')
		agora_random_hex(prefix, 8);
	snprintf(out, 33, "%s%016llx", prefix, ++counter);
}

static void
request_id(struct agora_req *r)
{
	const char *id;
	char *gen;
	size_t n;

	id = agora_param(r, "HTTP_X_REQUEST_ID");
	if (id != NULL) {
		n = strlen(id);
		if (n > 0 && n <= REQUEST_ID_MAX &&
		    strspn(id,
		        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		        "0123456789._-") == n) {
			r->request_id = id;
			return;
		}
	}
	gen = agora_alloc(r, 33);
	if (gen != NULL)
		next_request_id(gen);
	r->request_id = gen != NULL ? gen : "-";
}

static enum agora_err
check_headers(struct agora_req *r)
{
	char *const *e;
	size_t total = 0;

	for (e = r->envp; e != NULL && *e != NULL; e++)
		if (strncmp(*e, "HTTP_", 5) == 0)
			total += strlen(*e);
	if (total > (size_t)r->ctx->cfg.max_header_bytes)
		return agora_problem(r, AGORA_E_TOO_LARGE, "headers_too_large",
		    "The request headers are too large.");
	return AGORA_OK;
}

static enum agora_err
content_length(struct agora_req *r, long long *len)
{
	const char *cl;

	*len = 0;
	cl = agora_param(r, "CONTENT_LENGTH");
	if (cl == NULL || *cl == '\0')
		return AGORA_OK;
	if (agora_parse_ll(cl, 0, (1LL << 62), len) != 0)
		return agora_problem(r, AGORA_E_BAD_REQUEST, NULL,
		    "Content-Length is not a number.");
	r->content_length = *len;
	return AGORA_OK;
}

/*
 * Uploads (raw bodies) have their own limit, with room for multipart;
 * every other route, and a request that matched none, max_body_bytes.
 */
static enum agora_err
body_limit(struct agora_req *r, const struct agora_route *route)
{
	const struct agora_config *cfg = &r->ctx->cfg;
	long long max = cfg->max_body_bytes, shown = max;

	if (route != NULL && route->body == AGORA_BODY_RAW) {
		shown = cfg->file_max_bytes;
		max = shown + AGORA_UPLOAD_SLACK_BYTES;
	}
	if (r->content_length <= max)
		return AGORA_OK;
	return agora_problem(r, AGORA_E_TOO_LARGE, NULL,
	    agora_printf(r, "The body is larger than %lld bytes.", shown));
}

/* application/json, with at most a charset=utf-8 parameter. */
static int
is_json(const char *ct)
{
	size_t n = strlen("application/json");

	if (ct == NULL || strncasecmp(ct, "application/json", n) != 0)
		return 0;
	ct += n;
	while (*ct == ' ')
		ct++;
	if (*ct == '\0')
		return 1;
	if (*ct++ != ';')
		return 0;
	while (*ct == ' ')
		ct++;
	return strcasecmp(ct, "charset=utf-8") == 0 ||
	    strcasecmp(ct, "charset=\"utf-8\"") == 0;
}

static enum agora_err
read_body(struct agora_req *r, const struct agora_io *io, size_t len)
{
	char *buf;
	size_t got = 0;
	long n;

	buf = agora_alloc(r, len + 1);
	if (buf == NULL)
		return AGORA_E_TOO_LARGE;
	while (got < len) {
		n = io->read(io->arg, buf + got, len - got);
		if (n <= 0)
			return agora_problem(r, AGORA_E_BAD_REQUEST, NULL,
			    "The body is shorter than its Content-Length.");
		got += (size_t)n;
	}
	buf[len] = '\0';
	r->body = buf;
	r->body_len = len;
	return AGORA_OK;
}

static enum agora_err
parse_json_body(struct agora_req *r, enum agora_body kind)
{
	const char *why = NULL;
	enum agora_err rc;

	if (r->body_len == 0 && kind == AGORA_BODY_JSON_OPTIONAL)
		return AGORA_OK;
	if (r->body_len == 0)
		return agora_problem(r, AGORA_E_BAD_JSON, "body_required",
		    "A JSON body is required.");
	if (!is_json(agora_param(r, "CONTENT_TYPE")))
		return agora_problem(r, AGORA_E_MEDIA_TYPE, NULL,
		    "The body must be application/json.");
	rc = agora_json_parse(r->body, r->body_len, &r->json, &why);
	if (rc == AGORA_E_INTERNAL)
		return rc; /* out of memory: not the client's fault */
	if (rc != AGORA_OK)
		return agora_problem(r, rc, NULL,
		    agora_printf(r, "The body is not valid JSON: %s.", why));
	if (agora_defer_json(r, r->json) != 0) {
		r->json = NULL;
		return AGORA_E_TOO_LARGE;
	}
	return AGORA_OK;
}

/*
 * Parse the request up to the handler: id, path, header and body caps,
 * route, body.  On failure the problem answer is already set.
 */
enum agora_err
agora_parse_request(struct agora_req *r, const struct agora_program *prog,
    const struct agora_io *io, const struct agora_route **route)
{
	char allow[128], scratch[1024];
	long long len = 0;
	enum agora_err rc;

	request_id(r);
	agora_trace_begin(agora_param(r, "HTTP_TRACEPARENT"));
	r->method = agora_param(r, "REQUEST_METHOD");
	if (r->method == NULL)
		r->method = "GET";
	r->head = strcmp(r->method, "HEAD") == 0;
	if ((rc = parse_path(r)) != AGORA_OK ||
	    (rc = check_headers(r)) != AGORA_OK ||
	    (rc = content_length(r, &len)) != AGORA_OK)
		return rc;
	rc = agora_route_match(prog->routes, prog->nroutes, r->method, r->path,
	    route, r->params, &r->nparams, allow, sizeof(allow), scratch,
	    sizeof(scratch));
	/* No route: the common limit answers first, as it would for a route. */
	if (rc != AGORA_OK && r->content_length > r->ctx->cfg.max_body_bytes)
		return body_limit(r, NULL);
	if (rc == AGORA_E_METHOD)
		agora_resp_header(r, "Allow", agora_strdup(r, allow));
	if (rc != AGORA_OK)
		return agora_problem(r, rc, NULL,
		    rc == AGORA_E_METHOD
		        ? agora_printf(r, "%s is not allowed here.", r->method)
		        : "No such resource.");
	/* Params point into scratch, which dies with this frame. */
	for (size_t i = 0; i < r->nparams; i++)
		if ((r->params[i] = agora_strdup(r, r->params[i])) == NULL)
			return AGORA_E_TOO_LARGE;
	r->route = *route;
	agora_observe_begin(r);
	if ((rc = body_limit(r, *route)) != AGORA_OK ||
	    (rc = agora_auth_request(r, (*route)->access)) != AGORA_OK ||
	    (rc = agora_rate_limit_route(r, *route)) != AGORA_OK ||
	    (rc = agora_route_ids(r)) != AGORA_OK)
		return rc;
	if ((*route)->body == AGORA_BODY_NONE)
		return AGORA_OK;
	if ((rc = read_body(r, io, (size_t)len)) != AGORA_OK)
		return rc;
	if ((*route)->guard != NULL && (rc = (*route)->guard(r)) != AGORA_OK)
		return rc;
	if ((*route)->body == AGORA_BODY_RAW)
		return AGORA_OK;
	return parse_json_body(r, (*route)->body);
}
