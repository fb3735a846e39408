/*
 * unit_request.c: the request path from CGI variables to the bytes sent,
 * without a web server: limits, 404/405/413/415/400/422, headers.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "agora.h"
#include "tap.h"

static enum agora_err
get_thing(struct agora_req *r)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "id", json_object_new_string(r->params[0]));
	return agora_resp_json(r, 200, o);
}

static enum agora_err
post_thing(struct agora_req *r)
{
	static const struct agora_field f[] = {
		{ "n", AGORA_F_INT, AGORA_F_REQUIRED, 1, 10 },
	};
	struct agora_value v[1];
	struct json_object *errors = json_object_new_array();
	enum agora_err rc;

	rc = agora_valid(r->json, "", f, 1, v, errors);
	if (rc != AGORA_OK)
		return agora_problem_errors(r, rc, "bad thing", errors);
	json_object_put(errors);
	agora_resp_header(r, "Location", "/api/v1/things/1");
	return agora_resp_json(r, 201, json_object_get(r->json));
}

static enum agora_err greedy_rc;
static const char *greedy_val = "unset";

/*
 * A handler that runs the arena out, does not look, and goes on: the
 * value it makes next is NULL (the failure is sticky), its query does not
 * run (it would have taken that NULL for SQL NULL: "LIMIT NULL"), and
 * the answer is a 500 whatever the handler says.
 */
static enum agora_err
greedy(struct agora_req *r)
{
	const char *vals[1];

	(void)agora_alloc(r, (size_t)1 << 40);
	vals[0] = greedy_val = agora_strdup(r, "20");
	greedy_rc = agora_db_query(r, "limited", 1, vals, NULL);
	return agora_resp_raw(r, 200, "text/plain", "ok", 2);
}

/* The value of ?limit, as agora_query_get reads it, in brackets. */
static enum agora_err
get_limit(struct agora_req *r)
{
	const char *v, *out;
	enum agora_err rc;

	if ((rc = agora_query_get(r, "limit", &v)) != AGORA_OK)
		return rc;
	out = v != NULL ? agora_printf(r, "[%s]", v) : "absent";
	return agora_resp_raw(r, 200, "text/plain", out, strlen(out));
}

static const char *const colours[] = { "red", "blue", NULL };

/* A route's table: each kind of field, a prefix, and a strict twin. */
static const struct agora_qfield fields[] = {
	{ "n", AGORA_Q_INT, 1, 10, NULL, "bad_n", NULL },
	{ "id", AGORA_Q_ID, 0, 0, NULL, NULL, NULL },
	{ "c", AGORA_Q_ONE_OF, 0, 0, colours, NULL, "c must be red or blue." },
	{ "t", AGORA_Q_TEXT, 0, 3, NULL, NULL, NULL },
	{ "x.", AGORA_Q_TEXT, 0, 1, NULL, NULL, NULL },
};

/* What agora_query_fields read: "n id c t", absent fields as "-". */
static enum agora_err
fields_read(struct agora_req *r, int strict)
{
	struct agora_qvalue v[AGORA_NELEM(fields)];
	const char *out;
	enum agora_err rc;

	rc = agora_query_fields(r, fields, AGORA_NELEM(fields), strict, v);
	if (rc != AGORA_OK)
		return rc;
	out =
	    agora_printf(r, "<%lld %s %lld %s>", v[0].n, v[1].s ? v[1].s : "-",
	        v[2].s ? v[2].n : -1LL, v[3].s ? v[3].s : "-");
	return agora_resp_raw(r, 200, "text/plain", out, strlen(out));
}

static enum agora_err
get_fields(struct agora_req *r)
{
	return fields_read(r, 0);
}

static enum agora_err
get_fields_strict(struct agora_req *r)
{
	return fields_read(r, 1);
}

static const struct agora_route routes[] = {
	{ "GET", "/api/v1/things/{thing_id}", AGORA_BODY_NONE, get_thing,
	    AGORA_ANON },
	{ "POST", "/api/v1/things", AGORA_BODY_JSON, post_thing, AGORA_ANON },
	{ "GET", "/api/v1/greedy", AGORA_BODY_NONE, greedy, AGORA_ANON },
	{ "PUT", "/api/v1/things/{thing_id}", AGORA_BODY_JSON, post_thing,
	    AGORA_ANON },
	{ "GET", "/api/v1/limit", AGORA_BODY_NONE, get_limit, AGORA_ANON },
	{ "GET", "/api/v1/fields", AGORA_BODY_NONE, get_fields, AGORA_ANON },
	{ "GET", "/api/v1/strict", AGORA_BODY_NONE, get_fields_strict,
	    AGORA_ANON },
};

static const struct agora_stmt stmts[] = {
	{ "limited", "SELECT 1 FROM generate_series(1, 1000) LIMIT $1::int" },
};

static const struct agora_program prog = { "test", routes, AGORA_NELEM(routes),
	stmts, 1, NULL };

struct fake {
	const char *in;
	size_t in_len, in_off;
	char out[65536];
	size_t out_len;
};

static long
fake_read(void *arg, char *buf, size_t n)
{
	struct fake *f = arg;

	if (n > f->in_len - f->in_off)
		n = f->in_len - f->in_off;
	memcpy(buf, f->in + f->in_off, n);
	f->in_off += n;
	return (long)n;
}

static int
fake_write(void *arg, const char *buf, size_t n)
{
	struct fake *f = arg;

	if (n >= sizeof(f->out) - f->out_len)
		return -1;
	memcpy(f->out + f->out_len, buf, n);
	f->out_len += n;
	f->out[f->out_len] = '\0';
	return 0;
}

static struct agora_ctx ctx;
static struct agora_arena *arena;
static struct fake fk;

static const char *
run(const char *method, const char *uri, const char *ctype, const char *body,
    const char *extra)
{
	char *env[8];
	static char m[64], u[4096], ct[128], cl[64], x[65536];
	struct agora_io io = { fake_read, fake_write, &fk };
	size_t n = 0;

	memset(&fk, 0, sizeof(fk));
	fk.in = body ? body : "";
	fk.in_len = strlen(fk.in);
	snprintf(m, sizeof(m), "REQUEST_METHOD=%s", method);
	snprintf(u, sizeof(u), "REQUEST_URI=%s", uri);
	env[n++] = m;
	env[n++] = u;
	if (ctype != NULL) {
		snprintf(ct, sizeof(ct), "CONTENT_TYPE=%s", ctype);
		env[n++] = ct;
	}
	if (body != NULL) {
		snprintf(cl, sizeof(cl), "CONTENT_LENGTH=%lu",
		    (unsigned long)fk.in_len);
		env[n++] = cl;
	}
	if (extra != NULL) {
		snprintf(x, sizeof(x), "%s", extra);
		env[n++] = x;
	}
	env[n] = NULL;
	agora_handle(&ctx, &prog, arena, env, &io);
	return fk.out;
}

static int
has(const char *out, const char *s)
{
	return strstr(out, s) != NULL;
}

static void
test_basics(void)
{
	const char *o;

	o = run("GET", "/api/v1/things/%312?x=1", NULL, NULL, NULL);
	tap_ok(has(o, "Status: 200 OK\r\n") && has(o, "{\"id\":\"12\"}") &&
	        has(o, "Content-Length: 11\r\n"),
	    "GET with a decoded path parameter and Content-Length");
	tap_ok(has(o, "X-Content-Type-Options: nosniff\r\n") &&
	        has(o, "Cache-Control: no-store\r\n") &&
	        has(o, "X-Request-Id: "),
	    "security headers and a request id");
	o = run("HEAD", "/api/v1/things/1", NULL, NULL, NULL);
	tap_ok(has(o, "Status: 200") && has(o, "Content-Length: 10\r\n") &&
	        !has(o, "{\"id\""),
	    "HEAD: the length without the body");
	o = run("GET", "/api/v1/things/a%20b", NULL, NULL, NULL);
	tap_ok(
	    has(o, "Status: 404") && has(o, "No such thing.") && !has(o, "a b"),
	    "a path parameter that is not a row id: 404 naming the row");
	o = run("GET", "/api/v1/things/01", NULL, NULL, NULL);
	tap_ok(has(o, "Status: 404"),
	    "an id with a leading zero is not a row id: 404");
	o = run("GET", "/api/v1/nothing", NULL, NULL, NULL);
	tap_ok(has(o, "Status: 404") &&
	        has(o, "Content-Type: application/problem+json") &&
	        has(o, "\"code\":\"not_found\"") && has(o, "\"request_id\":"),
	    "unknown path: 404 problem+json");
	o = run("DELETE", "/api/v1/things/1", NULL, NULL, NULL);
	tap_ok(has(o, "Status: 405") && has(o, "Allow: GET, HEAD, PUT\r\n"),
	    "wrong method: 405 with Allow");
	o = run("GET", "/api/v1/things/a%00b", NULL, NULL, NULL);
	tap_ok(has(o, "Status: 400") && has(o, "bad_path"),
	    "an encoded NUL in the path: 400");
	o = run("GET", "/api/v1/things/%zz", NULL, NULL, NULL);
	tap_ok(has(o, "Status: 400"), "a bad percent-escape: 400");
	o = run("GET", "/api/v1/things/1", NULL, NULL,
	    "HTTP_X_REQUEST_ID=abc-123.X_y");
	tap_ok(has(o, "X-Request-Id: abc-123.X_y\r\n"),
	    "a sane client request id is kept");
	o = run("GET", "/api/v1/things/1", NULL, NULL,
	    "HTTP_X_REQUEST_ID=bad id<script>");
	tap_ok(!has(o, "bad id") && has(o, "X-Request-Id: "),
	    "an insane request id is replaced");
}

static void
test_bodies(void)
{
	static char big[2048], hdr[40000];
	const char *o;

	o = run(
	    "POST", "/api/v1/things", "application/json", "{\"n\":5}", NULL);
	tap_ok(has(o, "Status: 201") && has(o, "Location: /api/v1/things/1"),
	    "POST JSON: 201 with Location");
	o = run("POST", "/api/v1/things", "application/json; charset=UTF-8",
	    "{\"n\":5}", NULL);
	tap_ok(has(o, "Status: 201"), "charset=utf-8 is accepted");
	o = run("POST", "/api/v1/things", "text/plain", "{\"n\":5}", NULL);
	tap_ok(has(o, "Status: 415") && has(o, "unsupported_media_type"),
	    "wrong Content-Type: 415");
	o = run("POST", "/api/v1/things", "application/json", "{\"n\":5", NULL);
	tap_ok(has(o, "Status: 400") && has(o, "malformed_json") &&
	        has(o, "truncated"),
	    "truncated JSON: 400");
	o = run("POST", "/api/v1/things", "application/json", "", NULL);
	tap_ok(has(o, "Status: 400") && has(o, "body_required"),
	    "empty JSON body: 400");
	o = run(
	    "POST", "/api/v1/things", "application/json", "{\"n\":50}", NULL);
	tap_ok(has(o, "Status: 422") && has(o, "\"errors\":[{\"field\":\"n\""),
	    "out of range: 422 with errors[]");
	o = run("POST", "/api/v1/things", "application/json", "{\"n\":\"5\"}",
	    NULL);
	tap_ok(has(o, "Status: 400") && has(o, "invalid_type"),
	    "wrong type: 400 with errors[]");
	memset(big, ' ', sizeof(big) - 1);
	big[0] = '{';
	big[sizeof(big) - 2] = '}';
	ctx.cfg.max_body_bytes = 1024;
	o = run("POST", "/api/v1/things", "application/json", big, NULL);
	tap_ok(has(o, "Status: 413") && has(o, "payload_too_large") &&
	        fk.in_off == fk.in_len,
	    "body over the limit: 413, and the body was drained");
	ctx.cfg.max_body_bytes = 1048576;
	memset(hdr, 'a', sizeof(hdr) - 1);
	memcpy(hdr, "HTTP_X_BIG=", 11);
	o = run("GET", "/api/v1/things/1", NULL, NULL, hdr);
	tap_ok(has(o, "Status: 413") && has(o, "headers_too_large"),
	    "headers over the limit: 413");
}

static void
test_etags(void)
{
	tap_ok(agora_etag_match("\"abc\"", "\"abc\""), "ETag: exact");
	tap_ok(agora_etag_match("\"x\", W/\"abc\"", "\"abc\""),
	    "ETag: weak, in a list");
	tap_ok(agora_etag_match("*", "\"abc\""), "ETag: *");
	tap_ok(
	    !agora_etag_match("\"abcd\"", "\"abc\""), "ETag: no prefix match");
	tap_ok(!agora_etag_match("\"ab\"", "\"abc\""), "ETag: no match");
	tap_ok(!agora_etag_match(NULL, "\"abc\""), "ETag: no header");
}

/* The one SQLSTATE table: what each class of server error becomes. */
static void
test_sqlstates(void)
{
	static const struct {
		const char *state;
		enum agora_err want;
	} cases[] = { { "23505", AGORA_E_CONFLICT },
		{ "23503", AGORA_E_VALIDATION },
		{ "23514", AGORA_E_VALIDATION },
		{ "22P02", AGORA_E_BAD_REQUEST },
		{ "22012", AGORA_E_BAD_REQUEST },
		{ "22P05", AGORA_E_VALIDATION }, { "40001", AGORA_E_RETRY },
		{ "40P01", AGORA_E_RETRY }, { "08006", AGORA_E_CONNLOST },
		{ "57P01", AGORA_E_CONNLOST }, { NULL, AGORA_E_CONNLOST },
		{ "53300", AGORA_E_UNAVAILABLE }, { "XX000", AGORA_E_INTERNAL },
		{ "42601", AGORA_E_INTERNAL } };
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		tap_ok(agora_db_sqlstate_err(cases[i].state) == cases[i].want,
		    "SQLSTATE %s -> %d",
		    cases[i].state ? cases[i].state : "none", cases[i].want);
	tap_ok(agora_err_status(AGORA_E_RETRY) == 503 &&
	        agora_err_status(AGORA_E_CONNLOST) == 503,
	    "retries used up and lost connections reach clients as 503");
}

static void
test_sticky_arena(void)
{
	const char *o;

	o = run("GET", "/api/v1/greedy", NULL, NULL, NULL);
	tap_ok(greedy_val == NULL,
	    "after the arena failed, a small allocation fails too");
	tap_ok(greedy_rc == AGORA_E_INTERNAL,
	    "after the arena failed, no query runs (%d)", greedy_rc);
	tap_ok(has(o, "Status: 500") && has(o, "internal_error") &&
	        !has(o, "\r\n\r\nok"),
	    "after the arena failed, the answer is a 500 problem");
	o = run("GET", "/api/v1/things/1", NULL, NULL, NULL);
	tap_ok(has(o, "Status: 200"), "the next request has its arena back");
}

/* Path ids before bodies; the query as agora_query_get reads it. */
static void
test_params(void)
{
	static const struct {
		const char *uri, *want, *what;
	} q[] = {
		{ "/api/v1/limit?limit=5", "[5]", "a plain pair" },
		{ "/api/v1/limit?a=1", "absent", "an absent name" },
		{ "/api/v1/limit?limit", "[]", "a pair without '=' is empty" },
		{ "/api/v1/limit?li%6Dit=7", "[7]", "keys compare decoded" },
		{ "/api/v1/limit?%zz=1&limit=5", "[5]",
		    "another key badly encoded does not matter" },
		{ "/api/v1/limit?limit=a+b%21", "[a b!]", "values decode" },
	};
	const char *o;
	size_t i;

	o = run("PUT", "/api/v1/things/abc", "application/json", "{", NULL);
	tap_ok(has(o, "Status: 404") && has(o, "No such thing."),
	    "a non-id path with a malformed body: 404 before the body's 400");
	for (i = 0; i < AGORA_NELEM(q); i++) {
		o = run("GET", q[i].uri, NULL, NULL, NULL);
		tap_ok(has(o, "Status: 200") && has(o, q[i].want), "query: %s",
		    q[i].what);
	}
	o = run("GET", "/api/v1/limit?limit=%zz", NULL, NULL, NULL);
	tap_ok(has(o, "Status: 400") &&
	        has(o, "Query parameter limit is badly encoded."),
	    "a bad escape in the value read: 400 naming the parameter");
}

/* A request whose environment is the one variable in env[0]. */
static void
one_var_req(struct agora_req *r, char **env)
{
	memset(r, 0, sizeof(*r));
	r->arena = arena;
	r->envp = env;
	env[0] = NULL;
	env[1] = NULL;
}

/* agora_client_addr(): what the limits count a client by. */
static void
test_client_addr(void)
{
	static const struct {
		const char *addr, *want, *what;
	} c[] = {
		{ "192.0.2.1", "192.0.2.1", "IPv4 as it is" },
		{ "2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64",
		    "IPv6 by its /64" },
		{ "::ffff:192.0.2.1", "192.0.2.1",
		    "IPv4 written as IPv6 by a dual-stack socket: as IPv4" },
		{ "::FFFF:198.51.100.7", "198.51.100.7",
		    "another such: not the same bucket" },
		{ "::1", "::/64", "the IPv6 loopback" },
		{ "", "-", "none" },
		{ "192.0.2.1\r\nX: y", "-", "not an address" },
	};
	struct agora_req r;
	char h[128], *env[2];
	const char *got;
	size_t i;

	one_var_req(&r, env);
	for (i = 0; i < AGORA_NELEM(c); i++) {
		snprintf(h, sizeof(h), "REMOTE_ADDR=%s", c[i].addr);
		env[0] = h;
		got = agora_client_addr(&r);
		tap_ok(got != NULL && strcmp(got, c[i].want) == 0,
		    "client address: %s (%s)", c[i].what, got ? got : "NULL");
	}
	agora_arena_reset(arena);
}

/* agora_cookie() against Cookie headers as browsers send them, and not. */
static void
test_cookies(void)
{
	static const struct {
		const char *header, *want, *what;
	} c[] = {
		{ "a=1; agora_refresh=tok_-1; b=2", "tok_-1", "among others" },
		{ "agora_refresh=x", "x", "alone" },
		{ "agora_refresh=first; agora_refresh=second", NULL,
		    "none of two: a sibling subdomain may have set one" },
		{ "a=1; agora_refresh=x; b=2; agora_refresh=x", NULL,
		    "none of two, even alike" },
		{ "agora_refresh=x; agora_refreshx=y; xagora_refresh=z", "x",
		    "one, beside names that only contain it" },
		{ "  agora_refresh=x  ;b=2", "x", "blanks around" },
		{ "xagora_refresh=x; agora_refreshx=y", NULL,
		    "not a name that only contains it" },
		{ "agora_refresh=\"x\"", NULL,
		    "not a value with characters RFC 6265 refuses" },
		{ "agora_refresh=a b", NULL, "nor with a blank inside" },
		{ "agora_refresh=", "", "an empty value is empty" },
		{ "agora_refresh", NULL, "a name without '=' is none" },
		{ "", NULL, "an empty header" },
	};
	struct agora_req r;
	char h[128], *env[2];
	const char *got, *all[2];
	int n;
	size_t i;

	one_var_req(&r, env);
	for (i = 0; i < AGORA_NELEM(c); i++) {
		snprintf(h, sizeof(h), "HTTP_COOKIE=%s", c[i].header);
		env[0] = h;
		got = agora_cookie(&r, "agora_refresh");
		tap_ok(c[i].want == NULL
		        ? got == NULL
		        : got != NULL && !strcmp(got, c[i].want),
		    "cookie: %s", c[i].what);
	}
	snprintf(h, sizeof(h), "%s",
	    "HTTP_COOKIE=agora_refresh=a; x=1; agora_refresh=\"b\"; "
	    "agora_refresh=c");
	env[0] = h;
	n = agora_cookies(&r, "agora_refresh", all, 2);
	tap_ok(
	    n == 3 && all[0] != NULL && !strcmp(all[0], "a") && all[1] == NULL,
	    "cookies: all three counted, the first two given, the one RFC "
	    "6265 refuses as NULL (%d)",
	    n);
	env[0] = NULL;
	tap_ok(agora_cookie(&r, "agora_refresh") == NULL,
	    "cookie: no Cookie header at all");
	agora_arena_reset(arena);
}

static void
test_fields(void)
{
	static const struct {
		const char *uri, *want, *what;
	} q[] = {
		{ "/api/v1/fields", "Status: 200", "none given" },
		{ "/api/v1/fields?n=7&id=12&c=blue&t=ab%C3%A9",
		    "<7 12 1 ab\xc3\xa9>",
		    "each kind read, text counted in characters" },
		{ "/api/v1/fields?n=3&n=x", "<3 - -1 ->",
		    "the first pair of a name counts" },
		{ "/api/v1/fields?zz=1&x.a=long", "<0 - -1 ->",
		    "an unknown name and a prefix's pair are not read" },
		{ "/api/v1/fields?n=11", "\"code\":\"bad_n\"",
		    "an integer out of bounds: the field's code" },
		{ "/api/v1/fields?n=0",
		    "Query parameter n must be an integer from 1 to 10.",
		    "and a detail naming the bounds" },
		{ "/api/v1/fields?id=012",
		    "Query parameter id is not one it takes.",
		    "an id with a leading zero" },
		{ "/api/v1/fields?c=green", "c must be red or blue.",
		    "a word not among the choices: the field's detail" },
		{ "/api/v1/fields?t=abcd",
		    "Query parameter t is longer than 3 characters.",
		    "text over its length" },
		{ "/api/v1/strict?n=2&x.a=b", "<2 - -1 ->",
		    "strict: known names and a prefix's pair pass" },
		{ "/api/v1/strict?n=2&zz=1", "Unknown query parameter zz.",
		    "strict: an unknown name is refused" },
		{ "/api/v1/strict?n=2&n=99", "\"code\":\"bad_n\"",
		    "strict: every pair of a name is checked" },
		{ "/api/v1/strict?x.a=bb",
		    "Query parameter x.a is longer than 1 characters.",
		    "strict: a prefix's pair is checked" },
		{ "/api/v1/strict?n=2&%zz=1",
		    "The query string is badly encoded.",
		    "strict: a key that does not decode" },
		{ "/api/v1/strict?zz=1&n=99", "Unknown query parameter zz.",
		    "strict: the first problem in the query's order answers" },
		{ "/api/v1/strict?n=99&zz=1", "\"code\":\"bad_n\"",
		    "strict: the first problem, the other way round" },
		{ "/api/v1/fields?n=99&id=%zz",
		    "Query parameter id is badly encoded.",
		    "a bad escape answers before a bad value" },
	};
	const char *o;
	size_t i;

	for (i = 0; i < AGORA_NELEM(q); i++) {
		o = run("GET", q[i].uri, NULL, NULL, NULL);
		tap_ok(has(o, q[i].want), "query fields: %s", q[i].what);
	}
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	agora_config_defaults(&ctx.cfg);
	ctx.cfg.log_requests = 0;
	arena = agora_arena_new((size_t)ctx.cfg.request_memory_bytes);
	test_basics();
	test_bodies();
	test_etags();
	test_sqlstates();
	test_params();
	test_cookies();
	test_client_addr();
	test_fields();
	/* A server that cannot be reached: nothing may try to. */
	ctx.db = agora_db_new("host=/nonexistent connect_timeout=1", stmts, 1);
	test_sticky_arena();
	agora_db_free(ctx.db);
	agora_arena_free(arena);
	agora_config_free(&ctx.cfg);
	return tap_done();
}
