/*
 * health.c: GET /api/v1/health, /health/live and /health/ready.
 *
 * live answers as long as the process does (a load balancer's or a
 * supervisor's liveness check); ready adds the database's round trip and
 * is 503 without it (the check a load balancer takes a host out on).
 * The full report, below, is for people and monitors.
 *
 * Reports the database (one prepared round trip), the cache (a set with a
 * short expiry) and storage (the local directory is writable, or the S3
 * bucket answers a signed HEAD).  The answer
 * is 503 with Retry-After when PostgreSQL cannot be reached, since then
 * nothing useful works; a missing cache or storage only degrades it.
 * The database is asked on every request; the cache and storage answers,
 * the workers' heartbeat and the outbox's lag are kept for a second per
 * process, so that polling health costs one round trip and not five.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agora.h"

/* The due rows counted per topic at most (health_outbox). */
#define DUE_CAP 1000

static const struct agora_stmt stmts[] = {
	{ "health_ping", "SELECT 1", AGORA_STMT_READ },
	/* The newest pass of any worker (sql/0019), and how many (a host
	 * and its topics) passed within five minutes; housekeeping keeps the
	 * table to the hosts of the last week. */
	{ "health_workers",
	    "SELECT agora_time(max(pass_at)), "
	    "extract(epoch FROM now() - max(pass_at))::bigint, "
	    "count(*) FILTER (WHERE pass_at > now() - interval '5 minutes') "
	    "FROM worker_heartbeats",
	    AGORA_STMT_READ },
	/*
	 * The rows due now and the oldest one's wait: the outbox's lag.
	 * outbox_due (topic, next_attempt_at, id; rows not dead) serves
	 * both halves: the topics by skipping from one to the next, then
	 * each topic's due rows as a range, counted up to DUE_CAP: 10 ms
	 * at a million due rows of four topics, where counting them all
	 * took 60.
	 */
	{ "health_outbox",
	    "WITH RECURSIVE t(topic) AS ("
	    "(SELECT topic FROM outbox WHERE state <> 'dead' ORDER BY topic "
	    "LIMIT 1) UNION ALL SELECT (SELECT o.topic FROM outbox o "
	    "WHERE o.state <> 'dead' AND o.topic > t.topic ORDER BY o.topic "
	    "LIMIT 1) FROM t WHERE t.topic IS NOT NULL) "
	    "SELECT COALESCE(sum(d.n), 0), COALESCE(extract(epoch FROM "
	    "now() - min(d.oldest))::bigint, 0) FROM t, LATERAL ("
	    "SELECT count(*) AS n, min(next_attempt_at) AS oldest FROM ("
	    "SELECT next_attempt_at FROM outbox o WHERE o.topic = t.topic "
	    "AND o.state <> 'dead' AND o.next_attempt_at <= now() "
	    "ORDER BY o.next_attempt_at LIMIT " AGORA_STR(
	        DUE_CAP) ") s) d "
	                 "WHERE t.topic IS NOT NULL",
	    AGORA_STMT_READ },
};

#define SIDE_CHECK_MS 1000

/* What the full report adds to the database's ping, kept for a second. */
struct side {
	struct timespec at;
	const char *cache;
	const char *storage;
	struct json_object *worker; /* NULL: unknown (the database is away) */
	struct json_object *outbox;
};

static struct side side;

static struct json_object *
number_or_null(PGresult *res, int col)
{
	return PQgetisnull(res, 0, col)
	    ? NULL
	    : json_object_new_int64(strtoll(PQgetvalue(res, 0, col), NULL, 10));
}

/* {last_pass_at, seconds_since_last_pass, active}, or NULL. */
static struct json_object *
workers(struct agora_req *r)
{
	struct json_object *o;
	PGresult *res;

	if (agora_db_query(r, "health_workers", 0, NULL, &res) != AGORA_OK ||
	    (o = json_object_new_object()) == NULL)
		return NULL;
	json_object_object_add(o, "last_pass_at",
	    PQgetisnull(res, 0, 0)
	        ? NULL
	        : json_object_new_string(PQgetvalue(res, 0, 0)));
	json_object_object_add(
	    o, "seconds_since_last_pass", number_or_null(res, 1));
	json_object_object_add(o, "active", number_or_null(res, 2));
	return o;
}

/* {due, oldest_due_seconds}, or NULL. */
static struct json_object *
outbox(struct agora_req *r)
{
	struct json_object *o;
	PGresult *res;

	if (agora_db_query(r, "health_outbox", 0, NULL, &res) != AGORA_OK ||
	    (o = json_object_new_object()) == NULL)
		return NULL;
	json_object_object_add(o, "due", number_or_null(res, 0));
	json_object_object_add(o, "oldest_due_seconds", number_or_null(res, 1));
	return o;
}

/* Refresh the side checks when they are older than 1 s. */
static void
side_checks(struct agora_req *r, int db_ok)
{
	struct timespec now;
	long long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = agora_ts_us(&side.at, &now) / 1000;
	if (side.cache != NULL && ms < SIDE_CHECK_MS)
		return;
	side.at = now;
	side.cache = agora_cache_ping(r->ctx);
	side.storage = agora_storage_check(&r->ctx->cfg);
	json_object_put(side.worker);
	json_object_put(side.outbox);
	side.worker = db_ok ? workers(r) : NULL;
	side.outbox = db_ok ? outbox(r) : NULL;
}

static enum agora_err
health(struct agora_req *r)
{
	struct json_object *o, *checks;
	const char *db, *cache, *storage;
	int down;

	db = agora_db_query(r, "health_ping", 0, NULL, NULL) == AGORA_OK
	    ? "ok"
	    : "unavailable";
	down = strcmp(db, "ok") != 0;
	side_checks(r, !down);
	cache = side.cache;
	storage = side.storage;
	checks = json_object_new_object();
	json_object_object_add(checks, "database", json_object_new_string(db));
	json_object_object_add(checks, "cache", json_object_new_string(cache));
	json_object_object_add(
	    checks, "storage", json_object_new_string(storage));
	o = json_object_new_object();
	json_object_object_add(o, "status",
	    json_object_new_string(down ? "unavailable"
	            : strcmp(cache, "unavailable") == 0 ||
	                strcmp(storage, "unavailable") == 0
	            ? "degraded"
	            : "ok"));
	json_object_object_add(o, "checks", checks);
	json_object_object_add(o, "worker", json_object_get(side.worker));
	json_object_object_add(o, "outbox", json_object_get(side.outbox));
	if (down)
		agora_resp_header(r, "Retry-After",
		    agora_printf(r, "%lld", r->ctx->cfg.db_retry_after));
	return agora_resp_json(r, down ? 503 : 200, o);
}

/* Liveness: the process answers; it asks nothing of anyone. */
static enum agora_err
live(struct agora_req *r)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "status", json_object_new_string("ok"));
	return agora_resp_json(r, 200, o);
}

/* Readiness: the database answers (one round trip); else 503. */
static enum agora_err
ready(struct agora_req *r)
{
	struct json_object *o = json_object_new_object();
	int up = agora_db_query(r, "health_ping", 0, NULL, NULL) == AGORA_OK;

	json_object_object_add(
	    o, "status", json_object_new_string(up ? "ok" : "unavailable"));
	if (!up)
		agora_resp_header(r, "Retry-After",
		    agora_printf(r, "%lld", r->ctx->cfg.db_retry_after));
	return agora_resp_json(r, up ? 200 : 503, o);
}

static const struct agora_route routes[] = {
	{ "GET", "/api/v1/health", AGORA_BODY_NONE, health, AGORA_ANON,
	    AGORA_RL_NONE },
	{ "GET", "/api/v1/health/live", AGORA_BODY_NONE, live, AGORA_ANON,
	    AGORA_RL_NONE },
	{ "GET", "/api/v1/health/ready", AGORA_BODY_NONE, ready, AGORA_ANON,
	    AGORA_RL_NONE },
};

static const struct agora_program program = {
	.name = "health",
	.routes = routes,
	.nroutes = AGORA_NELEM(routes),
	.stmts = stmts,
	.nstmts = AGORA_NELEM(stmts),
	.needs = AGORA_NEEDS_STORAGE,
};

AGORA_MAIN(program)
