/*
 * health.c: GET /api/v1/health.
 *
 * Reports the database (one prepared round trip), the cache (a set with a
 * short expiry) and storage (the local directory is writable).  The answer
 * is 503 with Retry-After when PostgreSQL cannot be reached, since then
 * nothing useful works; a missing cache or storage only degrades it.
 */
#include "config.h"

#include <string.h>
#include <unistd.h>

#include "agora.h"

static const struct agora_stmt stmts[] = {
	{ "health_ping", "SELECT 1" },
};

static const char *
storage_check(struct agora_ctx *ctx)
{
	if (strcmp(ctx->cfg.storage, "local") != 0)
		return "unchecked";
	return access(ctx->cfg.storage_dir, W_OK | X_OK) == 0 ? "ok"
	                                                      : "unavailable";
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
	cache = agora_cache_ping(r->ctx);
	storage = storage_check(r->ctx);
	down = strcmp(db, "ok") != 0;
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
	if (down)
		agora_resp_header(r, "Retry-After",
		    agora_printf(r, "%lld", r->ctx->cfg.db_retry_after));
	return agora_resp_json(r, down ? 503 : 200, o);
}

static const struct agora_route routes[] = {
	{ "GET", "/api/v1/health", AGORA_BODY_NONE, health },
};

static const struct agora_program program = {
	.name = "health",
	.routes = routes,
	.nroutes = sizeof(routes) / sizeof(routes[0]),
	.stmts = stmts,
	.nstmts = sizeof(stmts) / sizeof(stmts[0]),
};

int
main(int argc, char **argv)
{
	return agora_main(argc, argv, &program);
}
