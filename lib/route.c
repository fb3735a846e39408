/*
 * route.c: matching a method and a decoded path against a route table.
 *
 * A pattern is a path whose "{name}" segments match any one non-empty
 * segment; the matched segments become the request's params, in order.
 * A path that matches some pattern but not with this method answers 405
 * with the methods that would match in Allow; HEAD is served by GET.
 *
 * Every parameter is a row id, named for its row: "{order_id}"; or the
 * name of a thing agora.conf defines, "{provider_name}", 1 to 32 of
 * [a-z0-9_-].  The pipeline answers 404 "No such order." for a segment
 * that is not an id (or a name), before the handler runs, and
 * agora_not_found gives a handler the same answer for an id with no row;
 * a program whose pattern has a parameter of another name does not
 * start.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "agora.h"
#include "internal.h"

/*
 * Match path against pattern, copying parameter segments into scratch.
 * Returns 1 on a match.
 */
static int
pattern_match(const char *pat, const char *path, const char **params,
    size_t *np, char **scratch, size_t *left)
{
	const char *pe, *se;
	size_t n;

	*np = 0;
	while (*pat != '\0' && *path != '\0') {
		if (*pat != '{') {
			if (*pat++ != *path++)
				return 0;
			continue;
		}
		pe = strchr(pat, '}');
		se = strchr(path, '/');
		if (pe == NULL || *np == AGORA_MAX_PARAMS)
			return 0;
		n = se != NULL ? (size_t)(se - path) : strlen(path);
		if (n == 0 || n + 1 > *left)
			return 0;
		memcpy(*scratch, path, n);
		(*scratch)[n] = '\0';
		params[(*np)++] = *scratch;
		*scratch += n + 1;
		*left -= n + 1;
		pat = pe + 1;
		path += n;
	}
	return *pat == '\0' && *path == '\0';
}

static void
allow_add(char *allow, size_t len, const char *method)
{
	size_t used = strlen(allow);

	if (strstr(allow, method) != NULL)
		return;
	snprintf(
	    allow + used, len - used, "%s%s", used > 0 ? ", " : "", method);
}

/*
 * Find the route for method and path.  On AGORA_OK *found is set and the
 * params point into scratch.  AGORA_E_METHOD fills allow; otherwise
 * AGORA_E_NOT_FOUND.
 */
enum agora_err
agora_route_match(const struct agora_route *routes, size_t nroutes,
    const char *method, const char *path, const struct agora_route **found,
    const char **params, size_t *nparams, char *allow, size_t allowlen,
    char *scratch, size_t scratchlen)
{
	size_t i;
	const char *want;
	char *sp;
	size_t left;

	want = strcmp(method, "HEAD") == 0 ? "GET" : method;
	allow[0] = '\0';
	*found = NULL;
	for (i = 0; i < nroutes; i++) {
		sp = scratch;
		left = scratchlen;
		if (!pattern_match(
		        routes[i].pattern, path, params, nparams, &sp, &left))
			continue;
		if (strcmp(routes[i].method, want) == 0) {
			*found = &routes[i];
			return AGORA_OK;
		}
		allow_add(allow, allowlen, routes[i].method);
		if (strcmp(routes[i].method, "GET") == 0)
			allow_add(allow, allowlen, "HEAD");
	}
	*nparams = 0;
	return allow[0] != '\0' ? AGORA_E_METHOD : AGORA_E_NOT_FOUND;
}

/*
 * The i-th parameter of pattern: its name at *name, *len long, and
 * whether it is a name ("..._name") rather than an id ("..._id").  -1
 * when there is no such parameter or it is named neither way.
 */
static int
param_at(
    const char *pattern, size_t i, const char **name, size_t *len, int *is_name)
{
	const char *p = pattern, *end;
	size_t n;

	for (;;) {
		if ((p = strchr(p, '{')) == NULL ||
		    (end = strchr(p, '}')) == NULL)
			return -1;
		p++;
		if (i-- == 0)
			break;
	}
	n = (size_t)(end - p);
	*is_name = n > 5 && strncmp(end - 5, "_name", 5) == 0;
	if (!*is_name && (n <= 3 || strncmp(end - 3, "_id", 3) != 0))
		return -1;
	*name = p;
	*len = n - (*is_name ? 5 : 3);
	return 0;
}

/*
 * What the i-th parameter of pattern names: its name less "_id" (or
 * "_name"), with '_' as ' ' ("order", "cart item").  0, or -1 when there
 * is no such parameter or it is named neither way.
 */
int
agora_route_noun(const char *pattern, size_t i, char *out, size_t len)
{
	const char *p;
	size_t n, k;
	int is_name;

	if (param_at(pattern, i, &p, &n, &is_name) != 0 || n >= len)
		return -1;
	for (k = 0; k < n; k++)
		out[k] = p[k] == '_' ? ' ' : p[k];
	out[k] = '\0';
	return 0;
}

/* A name agora.conf gives a thing: 1 to 32 of [a-z0-9_-]. */
static int
name_ok(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= 32 &&
	    strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

/* 404 for the row the route's first parameter names: "No such order." */
enum agora_err
agora_not_found(struct agora_req *r)
{
	char noun[64];

	if (r->route == NULL ||
	    agora_route_noun(r->route->pattern, 0, noun, sizeof(noun)) != 0)
		return agora_problem(
		    r, AGORA_E_NOT_FOUND, NULL, "No such resource.");
	return agora_problem(
	    r, AGORA_E_NOT_FOUND, NULL, agora_printf(r, "No such %s.", noun));
}

/*
 * Every parameter of the route is a row id (or a name); 404 for the first
 * that is not.
 */
enum agora_err
agora_route_ids(struct agora_req *r)
{
	const char *name;
	char noun[64];
	size_t i, n;
	int is_name;

	for (i = 0; i < r->nparams; i++) {
		if (param_at(r->route->pattern, i, &name, &n, &is_name) == 0 &&
		            is_name
		        ? name_ok(r->params[i])
		        : agora_id_ok(r->params[i]))
			continue;
		/* A route serve.c never checked (a test's) may name its
		 * parameter otherwise: still no such thing. */
		if (agora_route_noun(r->route->pattern, i, noun, sizeof(noun)))
			return agora_problem(
			    r, AGORA_E_NOT_FOUND, NULL, "No such resource.");
		return agora_problem(r, AGORA_E_NOT_FOUND, NULL,
		    agora_printf(r, "No such %s.", noun));
	}
	return AGORA_OK;
}
