/*
 * unit_route.c: route matching, parameters, 404 and 405 with Allow.
 */
#include "config.h"

#include <string.h>

#include "agora.h"
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
	return tap_done();
}
