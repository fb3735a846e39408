/*
 * observe.c: what each request adds to its program's metrics (metrics.c).
 *
 * A program's series are one row per route, and one more for requests
 * that matched none (and work outside any request): requests by method
 * and status class, a latency histogram, PostgreSQL time and statements,
 * memcached results, 429s, 401s and 5xx answers by cause.  The row is the
 * route's template, never the raw path, so a client cannot make series.
 * The database and cache layers report to the row of the request being
 * served, which pipeline.c sets as soon as the route is known.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agora.h"

static const char *const methods[] = { "GET", "HEAD", "POST", "PUT", "PATCH",
	"DELETE", "OTHER" };
#define NMETHODS AGORA_NELEM(methods)
#define NCLASSES 5
static const char *const causes[] = { "database", "timeout", "unavailable",
	"internal" };
enum { CAUSE_DATABASE, CAUSE_TIMEOUT, CAUSE_UNAVAILABLE, CAUSE_INTERNAL };
static const char *const cache_results[] = { "hit", "miss", "error" };

/* The first index of each of a row's series. */
struct row {
	long requests; /* [method][class] */
	long duration;
	long db_seconds, db_statements;
	long cache; /* [hit, miss, error] */
	long rate_limited, auth_failures;
	long errors; /* [cause] */
};

static struct row *rows;
/* Each route's row: routes of one pattern (GET and POST /orders) share
 * it, since the pattern is the label; the last is "(none)". */
static struct row **row_of;
static size_t nroutes;
static const struct agora_route *routes;
static const struct row *cur;

static void
row_describe(struct agora_mset *s, struct row *w, const char *route)
{
	char esc[160], lab[224];
	size_t m, c;

	agora_mlabel(esc, sizeof(esc), route);
	for (m = 0; m < NMETHODS; m++)
		for (c = 0; c < NCLASSES; c++) {
			snprintf(lab, sizeof(lab),
			    "route=\"%s\",method=\"%s\",code=\"%zuxx\"", esc,
			    methods[m], c + 1);
			if (m == 0 && c == 0)
				w->requests = agora_mset_counter(
				    s, AGORA_MF_REQUESTS, lab);
			else
				agora_mset_counter(s, AGORA_MF_REQUESTS, lab);
		}
	snprintf(lab, sizeof(lab), "route=\"%s\"", esc);
	w->duration = agora_mset_histogram(s, AGORA_MF_DURATION, lab);
	w->db_seconds = agora_mset_counter(s, AGORA_MF_DB_SECONDS, lab);
	w->db_statements = agora_mset_counter(s, AGORA_MF_DB_STATEMENTS, lab);
	w->rate_limited = agora_mset_counter(s, AGORA_MF_RATE_LIMITED, lab);
	w->auth_failures = agora_mset_counter(s, AGORA_MF_AUTH_FAILURES, lab);
	for (c = 0; c < AGORA_NELEM(cache_results); c++) {
		snprintf(lab, sizeof(lab), "route=\"%s\",result=\"%s\"", esc,
		    cache_results[c]);
		if (c == 0)
			w->cache = agora_mset_counter(s, AGORA_MF_CACHE, lab);
		else
			agora_mset_counter(s, AGORA_MF_CACHE, lab);
	}
	for (c = 0; c < AGORA_NELEM(causes); c++) {
		snprintf(lab, sizeof(lab), "route=\"%s\",cause=\"%s\"", esc,
		    causes[c]);
		if (c == 0)
			w->errors = agora_mset_counter(s, AGORA_MF_ERRORS, lab);
		else
			agora_mset_counter(s, AGORA_MF_ERRORS, lab);
	}
}

/*
 * Describe the program's rows and open its file in run_dir/metrics.  A
 * failure is logged and leaves the counts in the process: requests are
 * served all the same.
 */
int
agora_observe_open(struct agora_ctx *ctx, const struct agora_program *p)
{
	struct agora_mset *s = agora_mset_new();
	char dir[4096];
	size_t i, j, n = 0;

	free(rows);
	free(row_of);
	nroutes = p->nroutes;
	rows = calloc(nroutes + 1, sizeof(*rows));
	row_of = calloc(nroutes + 1, sizeof(*row_of));
	if (s == NULL || rows == NULL || row_of == NULL) {
		agora_mset_free(s);
		free(rows);
		free(row_of);
		rows = NULL;
		row_of = NULL;
		cur = NULL;
		return -1;
	}
	for (i = 0; i <= nroutes; i++) {
		for (j = 0; i < nroutes && j < i; j++)
			if (strcmp(p->routes[j].pattern,
			        p->routes[i].pattern) == 0)
				break;
		if (i < nroutes && j < i) {
			row_of[i] = row_of[j];
			continue;
		}
		row_of[i] = &rows[n++];
		row_describe(s, row_of[i],
		    i < nroutes ? p->routes[i].pattern : "(none)");
	}
	routes = p->routes;
	cur = row_of[nroutes];
	snprintf(dir, sizeof(dir), "%s/metrics", ctx->cfg.run_dir);
	return agora_metrics_open(dir, p->name, s);
}

/* From now on, what the database and cache report is this route's. */
void
agora_observe_begin(const struct agora_req *r)
{
	if (rows != NULL)
		cur = row_of[r->route != NULL ? (size_t)(r->route - routes)
		                              : nroutes];
}

static size_t
method_index(const char *m)
{
	size_t i;

	for (i = 0; m != NULL && i + 1 < NMETHODS; i++)
		if (strcmp(m, methods[i]) == 0)
			return i;
	return NMETHODS - 1;
}

/*
 * Why a 5xx: a statement that ran out of time, PostgreSQL unreachable, any
 * other 503 (memcached down where it is needed, a busy server), or a bug.
 */
static int
cause_of(const struct agora_req *r, int db_up)
{
	if (r->sqlstate != NULL && strcmp(r->sqlstate, "57014") == 0)
		return CAUSE_TIMEOUT;
	if (r->status == 503 && !db_up)
		return CAUSE_DATABASE;
	return r->status == 503 ? CAUSE_UNAVAILABLE : CAUSE_INTERNAL;
}

/* The request's counts; db_up: whether its database connection is up. */
void
agora_observe_end(const struct agora_req *r, int db_up)
{
	int cls = r->status / 100;

	if (rows == NULL)
		return;
	agora_observe_begin(r);
	if (cls < 1 || cls > NCLASSES)
		cls = 5;
	agora_metric_add(cur->requests +
	        (long)(method_index(r->method) * NCLASSES) + cls - 1,
	    1);
	agora_metric_observe(cur->duration, agora_us_since(&r->start));
	if (r->status == 429)
		agora_metric_add(cur->rate_limited, 1);
	if (r->status == 401)
		agora_metric_add(cur->auth_failures, 1);
	if (cls == 5)
		agora_metric_add(cur->errors + cause_of(r, db_up), 1);
	cur = row_of[nroutes];
}

void
agora_observe_db(long long us, int statements)
{
	if (cur == NULL)
		return;
	agora_metric_add(cur->db_seconds, us > 0 ? (uint64_t)us : 0);
	agora_metric_add(cur->db_statements, (uint64_t)statements);
}

void
agora_observe_cache(enum agora_cache_result res)
{
	if (cur != NULL)
		agora_metric_add(cur->cache + (long)res, 1);
}
