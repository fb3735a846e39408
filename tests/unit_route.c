/*
 * unit_route.c: route matching, parameters, 404 and 405 with Allow; and a
 * program with a route that declares no access rule refusing to start.
 */
#include "config.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agora.h"
#include "internal.h"
#include "tap.h"

static enum agora_err
nop(struct agora_req *r)
{
	(void)r;
	return AGORA_OK;
}

static const struct agora_route routes[] = {
	{ "GET", "/api/v1/orders", AGORA_BODY_NONE, nop },
	{ "POST", "/api/v1/orders", AGORA_BODY_JSON, nop },
	{ "GET", "/api/v1/orders/{id}", AGORA_BODY_NONE, nop },
	{ "PUT", "/api/v1/orders/{id}/cancel", AGORA_BODY_NONE, nop },
	{ "GET", "/api/v1/products/{id}/reviews/{rid}", AGORA_BODY_NONE, nop },
};

struct route_case {
	const char *method, *path;
	enum agora_err want;
	int index;
	const char *p0, *p1, *allow;
};

static const struct route_case cases[] = {
	{ "GET", "/api/v1/orders", AGORA_OK, 0, NULL, NULL, NULL },
	{ "POST", "/api/v1/orders", AGORA_OK, 1, NULL, NULL, NULL },
	{ "HEAD", "/api/v1/orders", AGORA_OK, 0, NULL, NULL, NULL },
	{ "GET", "/api/v1/orders/42", AGORA_OK, 2, "42", NULL, NULL },
	{ "PUT", "/api/v1/orders/ab-9/cancel", AGORA_OK, 3, "ab-9", NULL,
	    NULL },
	{ "GET", "/api/v1/products/7/reviews/8", AGORA_OK, 4, "7", "8", NULL },
	{ "DELETE", "/api/v1/orders", AGORA_E_METHOD, -1, NULL, NULL,
	    "GET, HEAD, POST" },
	{ "POST", "/api/v1/orders/42", AGORA_E_METHOD, -1, NULL, NULL,
	    "GET, HEAD" },
	{ "GET", "/api/v1/orders/", AGORA_E_NOT_FOUND, -1, NULL, NULL, NULL },
	{ "GET", "/api/v1/orders/42/", AGORA_E_NOT_FOUND, -1, NULL, NULL,
	    NULL },
	{ "GET", "/api/v1/ordersX", AGORA_E_NOT_FOUND, -1, NULL, NULL, NULL },
	{ "GET", "/api/v1/orders//cancel", AGORA_E_NOT_FOUND, -1, NULL, NULL,
	    NULL },
	{ "GET", "/", AGORA_E_NOT_FOUND, -1, NULL, NULL, NULL },
	{ "GET", "", AGORA_E_NOT_FOUND, -1, NULL, NULL, NULL },
};

static enum agora_err
hello(struct agora_req *r)
{
	return agora_resp_raw(r, 200, "text/plain", "hello", 5);
}

/* Read fd to its end into buf (cut to fit); closes fd. */
static void
drain(int fd, char *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;

	while (got < len - 1 && (n = read(fd, buf + got, len - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = '\0';
	close(fd);
}

/*
 * Run a program whose one route GET pattern has access rule access, as
 * plain CGI for one request in a child process; its exit status, and its
 * standard output and error.
 */
static int
run_program(const char *pattern, enum agora_access access, char *out, char *err,
    size_t len)
{
	static struct agora_route route = { "GET", "/hello", AGORA_BODY_NONE,
		hello, AGORA_ACCESS_UNSET, AGORA_RL_NONE };
	static const struct agora_program prog = {
		.name = "unit_route", .routes = &route, .nroutes = 1
	};
	static char name[] = "unit_route";
	char *argv[] = { name, NULL };
	int o[2], e[2], status = -1;
	pid_t pid;

	route.access = access;
	route.pattern = pattern;
	if (pipe(o) != 0 || pipe(e) != 0)
		return -1;
	fflush(stdout);
	if ((pid = fork()) == 0) {
		dup2(open("/dev/null", O_RDONLY), STDIN_FILENO);
		dup2(o[1], STDOUT_FILENO);
		dup2(e[1], STDERR_FILENO);
		close(o[0]);
		close(e[0]);
		status = agora_main(1, argv, &prog);
		fflush(stdout);
		_exit(status);
	}
	close(o[1]);
	close(e[1]);
	/* The answers are small: a pipe holds them whole. */
	if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status))
		status = WEXITSTATUS(status);
	drain(o[0], out, len);
	drain(e[0], err, len);
	return status;
}

static void
access_rules(void)
{
	char out[4096], err[4096];
	int rc;

	/* No configuration file, database nor cache: a program starts
	 * without them. */
	setenv("AGORA_CONFIG", "/dev/null", 1);
	setenv("AGORA_DATABASE_URL", "host=/nonexistent connect_timeout=1", 1);
	setenv("AGORA_MEMCACHED_SERVERS", "", 1);
	setenv("GATEWAY_INTERFACE", "CGI/1.1", 1);
	setenv("REQUEST_METHOD", "GET", 1);
	setenv("REQUEST_URI", "/hello", 1);
	rc = run_program("/hello", AGORA_ANON, out, err, sizeof(out));
	tap_ok(rc == 0 && strncmp(out, "Status: 200", 11) == 0 &&
	        strstr(out, "hello") != NULL,
	    "a program whose route says who may call it serves it (%d)", rc);
	rc = run_program("/hello", AGORA_ACCESS_UNSET, out, err, sizeof(out));
	tap_ok(rc == 1 && out[0] == '\0' &&
	        strstr(err, "route GET /hello declares no access rule") != NULL,
	    "a program with a route that declares no access rule refuses to "
	    "start: exit %d, nothing served, and it says why",
	    rc);
}

/* What a path parameter names, and a program that names one badly. */
static void
param_names(void)
{
	char noun[16], out[4096], err[4096];
	int rc;

	tap_ok(agora_route_noun("/a/{order_id}", 0, noun, sizeof(noun)) == 0 &&
	        strcmp(noun, "order") == 0,
	    "{order_id} names an order");
	tap_ok(agora_route_noun(
	           "/a/{a_id}/b/{cart_item_id}", 1, noun, sizeof(noun)) == 0 &&
	        strcmp(noun, "cart item") == 0,
	    "the second parameter, {cart_item_id}: a cart item");
	tap_ok(agora_route_noun(
	           "/p/{provider_name}/x", 0, noun, sizeof(noun)) == 0 &&
	        strcmp(noun, "provider") == 0 &&
	        agora_route_noun("/p/{_name}", 0, noun, sizeof(noun)) < 0,
	    "a {..._name} parameter names its thing: %s", noun);
	tap_ok(agora_route_noun("/a/{id}", 0, noun, sizeof(noun)) < 0 &&
	        agora_route_noun("/a/{x}", 0, noun, sizeof(noun)) < 0 &&
	        agora_route_noun("/a/{order_id}", 1, noun, sizeof(noun)) < 0 &&
	        agora_route_noun("/a", 0, noun, sizeof(noun)) < 0,
	    "{id}, {x}, a parameter past the last, none: no noun");
	tap_ok(agora_route_noun(
	           "/a/{a_very_long_name_id}", 0, noun, sizeof(noun)) < 0,
	    "a noun longer than the buffer: none, not cut short");
	setenv("REQUEST_URI", "/hello/1", 1);
	rc = run_program("/hello/{id}", AGORA_ANON, out, err, sizeof(out));
	tap_ok(rc == 1 && out[0] == '\0' &&
	        strstr(err, "a path parameter must be named") != NULL,
	    "a program whose route has a parameter {id} refuses to start "
	    "(exit %d) and says why",
	    rc);
	rc =
	    run_program("/hello/{hello_id}", AGORA_ANON, out, err, sizeof(out));
	tap_ok(rc == 0 && strncmp(out, "Status: 200", 11) == 0,
	    "with {hello_id} it serves (%d)", rc);
}

int
main(void)
{
	const struct agora_route *found;
	const char *params[AGORA_MAX_PARAMS];
	char allow[128], scratch[256];
	size_t i, n;
	enum agora_err rc;
	const struct route_case *c;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		c = &cases[i];
		rc = agora_route_match(routes,
		    sizeof(routes) / sizeof(routes[0]), c->method, c->path,
		    &found, params, &n, allow, sizeof(allow), scratch,
		    sizeof(scratch));
		tap_ok(rc == c->want &&
		        (c->index < 0 || found == &routes[c->index]) &&
		        (c->p0 == NULL ||
		            (n >= 1 && !strcmp(params[0], c->p0))) &&
		        (c->p1 == NULL ||
		            (n == 2 && !strcmp(params[1], c->p1))) &&
		        (c->allow == NULL || !strcmp(allow, c->allow)),
		    "%s %s -> %d (allow \"%s\")", c->method, c->path, rc,
		    rc == AGORA_E_METHOD ? allow : "");
	}
	access_rules();
	param_names();
	return tap_done();
}
