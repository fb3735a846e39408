/*
 * common.c: what agoractl's commands share: the configuration's
 * connection as the owner, running SQL with its errors on stderr, and
 * telling the caches of a change.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

int
ctl_exec(PGconn *c, const char *sql)
{
	PGresult *res;
	int ok;

	res = PQexec(c, sql);
	ok = PQresultStatus(res) == PGRES_COMMAND_OK ||
	    PQresultStatus(res) == PGRES_TUPLES_OK;
	if (!ok)
		fprintf(stderr, "agoractl: %s", PQerrorMessage(c));
	PQclear(res);
	return ok ? 0 : -1;
}

/* agoractl's one connection, made by libagora's db layer as the programs'
 * are: the same session (the release's search_path) and the same log. */
static struct agora_db *db;

int
ctl_config_load(struct agora_config *cfg)
{
	char err[512];

	if (agora_config_load_for(cfg,
	        AGORA_NEEDS(AGORA_SECRET_DATABASE_URL) |
	            AGORA_NEEDS(AGORA_SECRET_DATABASE_ADMIN_URL),
	        err, sizeof(err)) != 0) {
		fprintf(stderr, "agoractl: configuration: %s\n", err);
		agora_config_free(cfg);
		return -1;
	}
	return 0;
}

PGconn *
ctl_connect(void)
{
	struct agora_config cfg;

	if (ctl_config_load(&cfg) != 0)
		return NULL;
	db = agora_db_bare(cfg.database_admin_url[0] != '\0'
	        ? cfg.database_admin_url
	        : cfg.database_url);
	agora_config_free(&cfg);
	if (db == NULL) {
		fprintf(stderr, "agoractl: out of memory\n");
		return NULL;
	}
	/* Migrations and seeds take their time: no statement_timeout. */
	agora_db_timeout(db, 0);
	if (agora_db_connect(db) != AGORA_OK) {
		fprintf(stderr,
		    "agoractl: cannot connect to the database "
		    "(the line above says why)\n");
		ctl_disconnect();
		return NULL;
	}
	return agora_db_conn(db);
}

void
ctl_disconnect(void)
{
	agora_db_free(db);
	db = NULL;
}

int
ctl_exec_params(
    PGconn *c, const char *sql, int n, const char *const *vals, int print)
{
	PGresult *res;
	int ok, i, j;

	res = PQexecParams(c, sql, n, NULL, vals, NULL, NULL, 0);
	ok = PQresultStatus(res) == PGRES_TUPLES_OK ||
	    PQresultStatus(res) == PGRES_COMMAND_OK;
	if (!ok) {
		const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		fprintf(stderr, "agoractl: %s\n",
		    st != NULL && strcmp(st, "23505") == 0
		        ? "an account with this email exists"
		        : PQerrorMessage(c));
	}
	for (i = 0; ok && print && i < PQntuples(res); i++) {
		for (j = 0; j < PQnfields(res); j++)
			printf("%s%s", j ? "\t" : "", PQgetvalue(res, i, j));
		printf("\n");
	}
	PQclear(res);
	return ok ? 0 : 1;
}

/*
 * Run fn with a memcached handle for the configured servers: what the
 * programs cache must learn of a change agoractl made.
 */
void
ctl_with_cache(void (*fn)(struct agora_ctx *, const char *, const char *),
    const char *a, const char *b)
{
	struct agora_ctx ctx;
	char err[256];

	memset(&ctx, 0, sizeof(ctx));
	if (agora_config_load_for(&ctx.cfg, 0, err, sizeof(err)) == 0) {
		ctx.cache = agora_cache_new(ctx.cfg.memcached_servers);
		fn(&ctx, a, b);
		agora_cache_free(ctx.cache);
	}
	agora_config_free(&ctx.cfg);
}

/* Cached catalog reads are stale now: bump the catalog version. */
void
ctl_catalog_changed(void)
{
	ctl_with_cache(agora_cache_bump, AGORA_CATALOG_VERKEY, NULL);
}

int
ctl_print(const char *header, const char *sql, int n, const char *const *vals)
{
	PGconn *c;
	int rc;

	if ((c = ctl_connect()) == NULL)
		return 1;
	if (header != NULL)
		printf("%s\n", header);
	rc = ctl_exec_params(c, sql, n, vals, 1);
	ctl_disconnect();
	return rc;
}
