/*
 * http.c: reading one request and building its response.
 *
 * The request path comes from REQUEST_URI, which Apache (mod_fcgid and
 * mod_proxy_fcgi) and lighttpd all pass unchanged, so that routing does not
 * depend on how each server splits SCRIPT_NAME and PATH_INFO;
 * it is percent-decoded here, once, and must decode to UTF-8 without NUL.
 * Every size the client controls is capped before it is read.  The
 * response is built whole in the arena and written with one call, with
 * Content-Length and the security headers.
 */
#include "config.h"

#include <arpa/inet.h>

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "agora.h"
#include "internal.h"

#define REQUEST_ID_MAX 128

const char *
agora_param(const struct agora_req *r, const char *name)
{
	size_t n = strlen(name);
	char *const *e;

	for (e = r->envp; e != NULL && *e != NULL; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Percent-decode n bytes of s into a new arena string; plus_space turns
 * '+' into ' ' (query strings).  NULL on a bad escape, a NUL or bad UTF-8.
 */
char *
agora_url_decode(struct agora_req *r, const char *s, size_t n, int plus_space)
{
	char *out, *o;
	size_t i;
	int hi, lo;

	out = o = agora_alloc(r, n + 1);
	if (out == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		if (s[i] == '%') {
			if (i + 2 >= n)
				return NULL;
			hi = hexval((unsigned char)s[i + 1]);
			lo = hexval((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return NULL;
			*o++ = (char)(hi * 16 + lo);
			i += 2;
		} else if (s[i] == '+' && plus_space) {
			*o++ = ' ';
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return agora_utf8_valid(out, (size_t)(o - out)) ? out : NULL;
}

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
 * The client's address as limits count it: an IPv4 address as it is, an
 * IPv6 address by its /64 (one client, or one home, holds a whole /64 and
 * may take a new address from it for every request), "-" when the web
 * server gave none.  Behind a proxy, REMOTE_ADDR must be the client's
 * (mod_remoteip, lighttpd's mod_extforward).
 */
const char *
agora_client_addr(struct agora_req *r)
{
	const char *ip = agora_param(r, "REMOTE_ADDR");
	unsigned char a[16];
	char *out;

	/* Only the characters of an address: it goes into keys and JSON. */
	if (ip == NULL || *ip == '\0' || strlen(ip) >= INET6_ADDRSTRLEN ||
	    strspn(ip, "0123456789abcdefABCDEF:.") != strlen(ip))
		return "-";
	if (strchr(ip, ':') == NULL || inet_pton(AF_INET6, ip, a) != 1)
		return ip;
	memset(a + 8, 0, 8);
	out = agora_alloc(r, INET6_ADDRSTRLEN + 3);
	if (out == NULL ||
	    inet_ntop(AF_INET6, a, out, INET6_ADDRSTRLEN) == NULL)
		return "-";
	memcpy(out + strlen(out), "/64", 4);
	return out;
}

/*
 * Count the request against its route's limit: auth routes per IP, the
 * others per user, or per IP when anonymous.
 */
static enum agora_err
rate_limit(struct agora_req *r, const struct agora_route *route)
{
	const struct agora_config *cfg = &r->ctx->cfg;
	const char *ip, *who;

	ip = agora_client_addr(r);
	if (route->rl == AGORA_RL_NONE)
		return AGORA_OK;
	if (route->rl == AGORA_RL_AUTH)
		return agora_rate_limit(
		    r, "auth", ip, cfg->rate_limit_auth, 60);
	who = r->user != NULL ? agora_printf(r, "u%s", r->user)
	                      : agora_printf(r, "ip%s", ip);
	if (route->rl == AGORA_RL_API_READ)
		return agora_rate_limit_defer(
		    r, "api", who, cfg->rate_limit_api, 60);
	return agora_rate_limit(r, "api", who, cfg->rate_limit_api, 60);
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
	if ((rc = body_limit(r, *route)) != AGORA_OK ||
	    (rc = agora_auth_request(r, (*route)->access)) != AGORA_OK ||
	    (rc = rate_limit(r, *route)) != AGORA_OK)
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

/* The value of query parameter name, decoded; *out NULL when absent. */
enum agora_err
agora_query_get(struct agora_req *r, const char *name, const char **out)
{
	const char *p, *amp, *eq;
	size_t n = strlen(name);

	*out = NULL;
	for (p = r->query; p != NULL && *p != '\0'; p = amp ? amp + 1 : NULL) {
		amp = strchr(p, '&');
		eq = strchr(p, '=');
		if (eq == NULL || (amp != NULL && eq > amp))
			continue;
		if ((size_t)(eq - p) != n || strncmp(p, name, n) != 0)
			continue;
		*out = agora_url_decode(r, eq + 1,
		    amp ? (size_t)(amp - eq - 1) : strlen(eq + 1), 1);
		if (*out == NULL)
			return agora_problem(r, AGORA_E_BAD_REQUEST, NULL,
			    agora_printf(r,
			        "Query parameter %s is badly "
			        "encoded.",
			        name));
		return AGORA_OK;
	}
	return AGORA_OK;
}

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
 * Iterate over the query: start with *pos = NULL; each call decodes the
 * next pair into *key and *val (both NULL at the end).  A pair without
 * '=' has an empty value.
 */
enum agora_err
agora_query_next(
    struct agora_req *r, const char **pos, const char **key, const char **val)
{
	const char *p, *amp, *eq, *end;

	p = *pos == NULL ? r->query : *pos;
	*key = *val = NULL;
	while (p != NULL && *p == '&')
		p++;
	if (p == NULL || *p == '\0')
		return AGORA_OK;
	amp = strchr(p, '&');
	end = amp != NULL ? amp : p + strlen(p);
	eq = memchr(p, '=', (size_t)(end - p));
	*key = agora_url_decode(r, p, (size_t)((eq != NULL ? eq : end) - p), 1);
	*val = eq != NULL
	    ? agora_url_decode(r, eq + 1, (size_t)(end - eq - 1), 1)
	    : agora_strdup(r, "");
	*pos = end;
	if (*key == NULL || *val == NULL)
		return agora_problem(r, AGORA_E_BAD_REQUEST, NULL,
		    "The query string is badly encoded.");
	return AGORA_OK;
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

	if (name == NULL || value == NULL || strpbrk(value, "\r\n") != NULL) {
		agora_log("error", "refusing header %s", name ? name : "?");
		return;
	}
	for (i = 0; i < r->nheaders; i++)
		if (strcasecmp(r->headers[i].name, name) == 0) {
			r->headers[i].value = value;
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
