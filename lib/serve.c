/*
 * serve.c: the process: configuration, connections, and the accept loop.
 *
 * One binary serves FastCGI (started by mod_fcgid, lighttpd or spawn-fcgi,
 * with the listening socket on fd 0) and plain CGI (one request on stdin
 * and stdout).  We use fcgiapp rather than fcgi_stdio: fcgi_stdio redefines
 * FILE and stdout for every library in the file and replaces environ per
 * request.  Configuration and the database connection are
 * made before the first accept.  SIGTERM while idle exits at once; during
 * a request it lets the request finish first.
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <fcgiapp.h>
#include <sodium.h>

#include "agora.h"
#include "internal.h"

extern char **environ;

#define TRIM_BYTES (256 * 1024)

#ifdef AGORA_COVERAGE
/* gcov writes a process's counters at exit(), which _exit() skips: the
 * coverage build (configure --enable-coverage) writes them first. */
void __gcov_dump(void);
#define coverage_dump() __gcov_dump()
#else
#define coverage_dump() ((void)0)
#endif

static volatile sig_atomic_t busy;
static volatile sig_atomic_t stopping;

/* Whether SIGTERM asked the process to stop: long waits end early. */
int
agora_stopping(void)
{
	return stopping;
}

static void
on_term(int sig)
{
	(void)sig;
	if (!busy) {
		coverage_dump();
		_exit(0);
	}
	stopping = 1;
}

static const char *const security_headers[][2] = {
	{ "X-Content-Type-Options", "nosniff" },
	{ "X-Frame-Options", "DENY" },
	{ "Referrer-Policy", "no-referrer" },
	{ "Content-Security-Policy",
	    "default-src 'none'; frame-ancestors 'none'" },
};

/*
 * Append "name: value\r\n"; returns the bytes written, or left if it does
 * not fit (the caller then sees a full buffer).  Copies rather than
 * formats: this runs a dozen times for every answer.
 */
static size_t
header_line(char *dst, size_t left, const char *name, const char *value)
{
	size_t nl = strlen(name), vl = strlen(value);

	if (nl + vl + 4 >= left)
		return left;
	memcpy(dst, name, nl);
	memcpy(dst + nl, ": ", 2);
	memcpy(dst + nl + 2, value, vl);
	memcpy(dst + nl + 2 + vl, "\r\n", 2);
	return nl + vl + 4;
}

/* Three fields of three 64-bit numbers in milliseconds, with room. */
#define TIMING_MAX 160

/*
 * Where the request's time went (the Server-Timing header, which browsers'
 * developer tools show): waiting for PostgreSQL (connecting included),
 * for memcached's reads, and in all, in milliseconds with three decimals.
 */
static const char *
server_timing(const struct agora_req *r, char out[TIMING_MAX])
{
	long long total = agora_us_since(&r->start);

	snprintf(out, TIMING_MAX,
	    "db;dur=%lld.%03lld, cache;dur=%lld.%03lld, total;dur=%lld.%03lld",
	    r->db_us / 1000, r->db_us % 1000, r->cache_us / 1000,
	    r->cache_us % 1000, total / 1000, total % 1000);
	return out;
}

/* Format the header block into buf; returns its length, 0 on overflow. */
static size_t
format_headers(struct agora_req *r, char *buf, size_t cap, int with_type)
{
	size_t used, i;
	char len[24], trace[AGORA_TRACEPARENT_LEN + 1], timing[TIMING_MAX];

	snprintf(len, sizeof(len), "%lu", (unsigned long)r->out_len);
	used = (size_t)snprintf(buf, cap, "Status: %d %s\r\n", r->status,
	    agora_status_text(r->status));
	if (r->content_type != NULL && with_type)
		used += header_line(
		    buf + used, cap - used, "Content-Type", r->content_type);
	if (r->status != 204 && r->status != 304)
		used +=
		    header_line(buf + used, cap - used, "Content-Length", len);
	used +=
	    header_line(buf + used, cap - used, "X-Request-Id", r->request_id);
	/* The request's span, as W3C Trace Context's traceresponse. */
	if (agora_trace_header(trace, 0) == 0)
		used +=
		    header_line(buf + used, cap - used, "traceresponse", trace);
	used += header_line(
	    buf + used, cap - used, "Server-Timing", server_timing(r, timing));
	for (i = 0; i < sizeof(security_headers) / sizeof(security_headers[0]);
	     i++)
		used += header_line(buf + used, cap - used,
		    security_headers[i][0], security_headers[i][1]);
	if (!agora_resp_has_header(r, "Cache-Control"))
		used += header_line(buf + used, cap - used, "Cache-Control",
		    r->user != NULL ? "private, no-store" : "no-store");
	for (i = 0; i < r->nheaders; i++)
		used += header_line(buf + used, cap - used, r->headers[i].name,
		    r->headers[i].value);
	if (used + 2 >= cap)
		return 0;
	memcpy(buf + used, "\r\n", 2);
	return used + 2;
}

/*
 * The answer when the arena cannot hold the real one: a fixed 500, built
 * on the stack, still with the request id.
 */
static int
emit_fallback(struct agora_req *r, const struct agora_io *io)
{
	char body[256], all[1024];
	int blen, n;

	r->status = 500;
	r->error_code = "internal_error";
	blen = snprintf(body, sizeof(body),
	    "{\"type\":\"about:blank\",\"title\":\"Internal error\","
	    "\"status\":500,\"detail\":\"Internal error\","
	    "\"code\":\"internal_error\",\"request_id\":\"%s\"}",
	    r->request_id != NULL ? r->request_id : "-");
	n = snprintf(all, sizeof(all),
	    "Status: 500 Internal Server Error\r\n"
	    "Content-Type: application/problem+json\r\n"
	    "Content-Length: %d\r\nX-Request-Id: %s\r\n"
	    "Cache-Control: no-store\r\n"
	    "X-Content-Type-Options: nosniff\r\n\r\n%s",
	    blen, r->request_id != NULL ? r->request_id : "-", body);
	return io->write(io->arg, all, (size_t)n);
}

/*
 * Write the whole response with one call.  If the arena cannot hold it,
 * or an error's problem could not be built (json-c out of memory: no
 * status, or no body), a fixed 500 goes out instead.  Returns -1 when the
 * write failed.
 */
int
agora_emit(struct agora_req *r, const struct agora_io *io)
{
	char *buf;
	size_t hlen, cap, blen;
	int with_body;

	if (r->status < 100 || (r->status >= 400 && r->out == NULL))
		return emit_fallback(r, io);

	with_body = !r->head && r->status != 204 && r->status != 304;
	blen = with_body ? r->out_len : 0;
	cap = 2048 + 256 * r->nheaders;
	buf = r->out != NULL || r->out_len == 0 ? agora_alloc(r, cap + blen)
	                                        : NULL;
	hlen =
	    buf != NULL ? format_headers(r, buf, cap, with_body || r->head) : 0;
	if (hlen == 0)
		return emit_fallback(r, io);
	if (blen > 0)
		memcpy(buf + hlen, r->out, blen);
	return io->write(io->arg, buf, hlen + blen);
}

/*
 * Read and drop a body the request did not consume.  Web servers send the
 * whole body before they read the answer (mod_proxy_fcgi, mod_fcgid), so
 * answering without reading it could fail the answer.  The web server's
 * own limit bounds how much this reads.
 */
static void
drain(struct agora_req *r, const struct agora_io *io)
{
	char buf[16384];
	long long left;
	long n;

	left = r->body == NULL ? r->content_length : 0;
	while (left > 0) {
		n = io->read(io->arg, buf,
		    left < (long long)sizeof(buf) ? (size_t)left : sizeof(buf));
		if (n <= 0)
			break;
		left -= n;
	}
}

/*
 * Serve one request from envp and io, with the response and the log line.
 * The arena is reset at the end.
 */
void
agora_handle(struct agora_ctx *ctx, const struct agora_program *prog,
    struct agora_arena *arena, char *const *envp, const struct agora_io *io)
{
	struct agora_req r;
	const struct agora_route *route = NULL;
	enum agora_err rc;
	int big;

	memset(&r, 0, sizeof(r));
	r.ctx = ctx;
	r.arena = arena;
	r.envp = envp;
	clock_gettime(CLOCK_MONOTONIC, &r.start);
	rc = agora_parse_request(&r, prog, io, &route);
	if (rc == AGORA_OK)
		rc = route->handler(&r);
	/* A deferred count the handler's cache read did not take. */
	if (agora_rate_limit_flush(&r) != AGORA_OK)
		rc = AGORA_E_RATE_LIMITED;
	/* The answer of a request that ran out of memory is the fixed 500
	 * (agora_emit), whatever the handler made of the failure. */
	if (agora_arena_failed(arena))
		agora_log("error", "the request used up request_memory_bytes");
	else if (rc != AGORA_OK && r.status < 400)
		agora_problem(&r, rc, NULL, NULL);
	else if (rc == AGORA_OK && r.status == 0)
		agora_problem(&r, AGORA_E_INTERNAL, NULL, NULL);
	drain(&r, io);
	if (agora_emit(&r, io) != 0)
		agora_log("warning", "the client went away before the answer");
	if (ctx->cfg.log_requests || r.status >= 500)
		agora_log_request(&r);
	agora_observe_end(&r, agora_db_ready(ctx->db));
	agora_trace_end();
	big = agora_arena_used(arena) > TRIM_BYTES || r.body_len > TRIM_BYTES;
	agora_arena_reset(arena);
	/* json-c's objects and libpq's results live in malloc's heap; after
	 * a large request, give the memory back rather than keep the peak. */
	if (big)
		malloc_trim(0);
}

/* Plain CGI: the body on fd 0, the response on fd 1. */
static long
cgi_read(void *arg, char *buf, size_t n)
{
	ssize_t got;

	(void)arg;
	do
		got = read(STDIN_FILENO, buf, n);
	while (got < 0 && errno == EINTR);
	return (long)got;
}

static int
cgi_write(void *arg, const char *buf, size_t n)
{
	(void)arg;
	return agora_write_all(STDOUT_FILENO, buf, n);
}

static long
fcgi_read(void *arg, char *buf, size_t n)
{
	FCGX_Request *rq = arg;

	return FCGX_GetStr(buf, (int)n, rq->in);
}

static int
fcgi_write(void *arg, const char *buf, size_t n)
{
	FCGX_Request *rq = arg;

	/* FCGX_PutStr takes a non-const pointer but does not write to it. */
	return FCGX_PutStr(buf, (int)n, rq->out) == (int)n ? 0 : -1;
}

/* Whether the listening socket (fd 0) is a unix socket. */
static int
listens_on_unix(void)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	return getsockname(STDIN_FILENO, (struct sockaddr *)&ss, &len) == 0 &&
	    ss.ss_family == AF_UNIX;
}

/*
 * End the request.  libfcgi half-closes every connection and then waits
 * for the web server to close its end, so that a TCP peer is never reset
 * over bytes it sent that were not read, which could cost it the answer.
 * Over a unix socket no answer is lost that way, so once the rest of the
 * request is read (its end comes with it) the connection is simply
 * closed: three system calls and a sleep fewer for every request.
 */
static void
finish(FCGX_Request *rq, int unix_socket)
{
	char buf[1024];

	if (unix_socket) {
		while (FCGX_GetStr(buf, (int)sizeof(buf), rq->in) > 0)
			continue;
		FCGX_Detach(rq);
	}
	FCGX_Finish_r(rq);
}

static int
serve_fcgi(struct agora_ctx *ctx, const struct agora_program *prog,
    struct agora_arena *arena)
{
	FCGX_Request rq;
	struct agora_io io = { fcgi_read, fcgi_write, &rq };
	int unix_socket = listens_on_unix();

	if (FCGX_Init() != 0 || FCGX_InitRequest(&rq, 0, 0) != 0) {
		agora_log("error", "cannot start FastCGI");
		return 1;
	}
	while (!stopping && FCGX_Accept_r(&rq) >= 0) {
		busy = 1;
		agora_db_check(ctx->db);
		agora_handle(ctx, prog, arena, rq.envp, &io);
		finish(&rq, unix_socket);
		busy = 0;
	}
	agora_rate_limit_drain(ctx);
	return 0;
}

/* "--routes" or "--statements": print the table; anything else is usage. */
static int
print_table(const struct agora_program *prog, const char *what)
{
	size_t i;

	if (strcmp(what, "--statements") == 0) {
		agora_db_print_stmts(prog->stmts, prog->nstmts);
		return 0;
	}
	if (strcmp(what, "--routes") != 0) {
		fprintf(stderr,
		    "usage: %s [--routes | --statements]\n"
		    "A FastCGI program of agora: the web server starts it.\n",
		    prog->name);
		return 2;
	}
	for (i = 0; i < prog->nroutes; i++)
		printf(
		    "%s %s\n", prog->routes[i].method, prog->routes[i].pattern);
	return 0;
}

static int
ctx_open(struct agora_ctx *ctx, const struct agora_program *prog)
{
	char err[512];

	memset(ctx, 0, sizeof(*ctx));
	ctx->program = prog->name;
	if (sodium_init() < 0) {
		agora_log("error", "libsodium cannot start");
		return -1;
	}
	if (agora_config_load_for(&ctx->cfg,
	        AGORA_NEEDS(AGORA_SECRET_DATABASE_URL) |
	            AGORA_NEEDS(AGORA_SECRET_DATABASE_READ_URL) | prog->needs,
	        err, sizeof(err)) != 0) {
		agora_log("error", "configuration: %s", err);
		return -1;
	}
	ctx->db =
	    agora_db_new(ctx->cfg.database_url, prog->stmts, prog->nstmts);
	if (ctx->db == NULL)
		return -1;
	agora_db_timeout(ctx->db, ctx->cfg.db_statement_timeout_ms);
	if (*ctx->cfg.database_read_url != '\0' &&
	    agora_db_replica(ctx->db, ctx->cfg.database_read_url,
	        ctx->cfg.database_read_max_lag_ms) != 0)
		return -1;
	/* A database that is down now is not fatal: requests answer 503. */
	agora_db_connect(ctx->db);
	ctx->cache = agora_cache_new(ctx->cfg.memcached_servers);
	agora_observe_open(ctx, prog);
	agora_auth_init(ctx);
	if (prog->init != NULL && prog->init(ctx) != 0)
		return -1;
	return 0;
}

/* Whether every parameter of the route's pattern is named "..._id". */
static int
params_named(const struct agora_route *route)
{
	const char *p = route->pattern;
	char noun[64];
	size_t i = 0;

	while ((p = strchr(p, '{')) != NULL) {
		if (agora_route_noun(route->pattern, i++, noun, sizeof(noun)))
			return 0;
		p++;
	}
	return 1;
}

/* Default deny: a route that does not say who may call it is a bug. */
static int
routes_ok(const struct agora_program *prog)
{
	size_t i;

	for (i = 0; i < prog->nroutes; i++) {
		if (prog->routes[i].access == AGORA_ACCESS_UNSET ||
		    prog->routes[i].access >= AGORA_ACCESS__MAX) {
			agora_log("error",
			    "route %s %s declares no access rule",
			    prog->routes[i].method, prog->routes[i].pattern);
			return 0;
		}
		if (!params_named(&prog->routes[i])) {
			agora_log("error",
			    "route %s %s: a path parameter must be named "
			    "for its row, as {order_id}, or be a name, as "
			    "{provider_name}",
			    prog->routes[i].method, prog->routes[i].pattern);
			return 0;
		}
		/* A guard runs on the body: without one it would never run. */
		if (prog->routes[i].guard != NULL &&
		    prog->routes[i].body == AGORA_BODY_NONE) {
			agora_log("error",
			    "route %s %s has a guard but no body",
			    prog->routes[i].method, prog->routes[i].pattern);
			return 0;
		}
	}
	return 1;
}

static void
ctx_close(struct agora_ctx *ctx)
{
	agora_metrics_close();
	agora_auth_free(ctx);
	agora_cache_free(ctx->cache);
	agora_db_free(ctx->db);
	agora_config_free(&ctx->cfg);
}

int
agora_main(int argc, char **argv, const struct agora_program *prog)
{
	struct agora_ctx ctx;
	struct agora_arena *arena = NULL;
	struct agora_io cgi = { cgi_read, cgi_write, NULL };
	struct sigaction sa;
	int rc = 1;

	if (argc > 1 && strncmp(argv[1], "--", 2) == 0)
		return print_table(prog, argv[1]);
	agora_log_init(prog->name);
	memset(&ctx, 0, sizeof(ctx));
	if (!routes_ok(prog))
		return 1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (ctx_open(&ctx, prog) != 0)
		goto out;
	arena = agora_arena_new((size_t)ctx.cfg.request_memory_bytes);
	if (arena == NULL)
		goto out;
	if (FCGX_IsCGI()) {
		busy = 1;
		agora_handle(&ctx, prog, arena, environ, &cgi);
		agora_rate_limit_drain(&ctx);
		rc = 0;
	} else {
		rc = serve_fcgi(&ctx, prog, arena);
	}
out:
	agora_arena_free(arena);
	ctx_close(&ctx);
	return rc;
}
