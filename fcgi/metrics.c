/*
 * metrics.c: GET /metrics, in Prometheus's text format 0.0.4.
 *
 * Two halves.  What the programs and the workers counted, summed over
 * every process from the files in run_dir/metrics (lib/metrics.c); and
 * what only PostgreSQL knows, read at scrape time with one call of
 * metrics_gauges(), every part of it an index range with a cap (6 ms at
 * 100,000 orders, after a million jobs; doc/metrics.md).  Whether the
 * database is up is a ping of its own, so that a slow gauge never reads
 * as a database that is down.  Who may scrape is the web server's to
 * say: the shipped configurations allow loopback only.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agora.h"

/* Outbox rows counted per topic and state, and orders per status; past
 * it the gauge says "at least".  A backlog that large has fired the
 * alerts long before. */
#define ROWS_CAP 10000

static const struct agora_stmt stmts[] = {
	{ "metrics_ping", "SELECT 1", AGORA_STMT_READ },
	/* Each gauge from an index, bounded however large the tables grow
	 * (sql/functions/orders.sql). */
	{ "metrics_db",
	    "SELECT name, label, state, n FROM metrics_gauges(" AGORA_STR(
	        ROWS_CAP) ", " AGORA_STR(ROWS_CAP) ")",
	    AGORA_STMT_READ },
};

static const struct {
	const char *name, *type, *label, *help;
} gauges[] = {
	{ "agora_outbox_rows", "gauge", "topic",
	    "Outbox rows by topic and state (pending, running, dead); live "
	    "rows are counted up to " AGORA_STR(ROWS_CAP) " per topic." },
	{ "agora_outbox_oldest_due_age_seconds", "gauge", "topic",
	    "How long the oldest row due now has waited for a worker." },
	{ "agora_orders", "gauge", "status",
	    "Orders by status, counted up to " AGORA_STR(ROWS_CAP) " each." },
	{ "agora_db_connections", "gauge", "state",
	    "Connections to this database, by state." },
};

/* Value of a cell as a label, escaped. */
static const char *
cell(char *buf, size_t len, PGresult *res, int row, int col)
{
	return agora_mlabel(buf, len, PQgetvalue(res, row, col));
}

static void
print_db(FILE *out, PGresult *res)
{
	char a[160], b[64];
	size_t g;
	int i;

	for (g = 0; g < AGORA_NELEM(gauges); g++) {
		fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", gauges[g].name,
		    gauges[g].help, gauges[g].name, gauges[g].type);
		for (i = 0; i < PQntuples(res); i++) {
			if (strcmp(PQgetvalue(res, i, 0), gauges[g].name) != 0)
				continue;
			fprintf(out, "%s{%s=\"%s\"", gauges[g].name,
			    gauges[g].label, cell(a, sizeof(a), res, i, 1));
			if (*PQgetvalue(res, i, 2) != '\0')
				fprintf(out, ",state=\"%s\"",
				    cell(b, sizeof(b), res, i, 2));
			fprintf(out, "} %s\n", PQgetvalue(res, i, 3));
		}
	}
}

static void
print_up(FILE *out, const char *name, const char *help, int up)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s gauge\n%s %d\n", name, help, name,
	    name, up);
}

static enum agora_err
scrape(struct agora_req *r, FILE *out)
{
	char dir[4096];
	PGresult *res = NULL;
	const char *cache;
	int db_up, files;

	snprintf(dir, sizeof(dir), "%s/metrics", r->ctx->cfg.run_dir);
	files = agora_metrics_scrape(dir, out);
	db_up = agora_db_query(r, "metrics_ping", 0, NULL, NULL) == AGORA_OK;
	if (db_up && agora_db_query(r, "metrics_db", 0, NULL, &res) == AGORA_OK)
		print_db(out, res);
	print_up(out, "agora_database_up",
	    "Whether PostgreSQL answered this scrape.", db_up);
	cache = agora_cache_ping(r->ctx);
	/* No memcached configured: nothing to be down. */
	if (strcmp(cache, "disabled") != 0)
		print_up(out, "agora_memcached_up",
		    "Whether memcached took a write at this scrape.",
		    strcmp(cache, "ok") == 0);
	print_up(out, "agora_metrics_files",
	    "Programs' metrics files read (run_dir/metrics).",
	    files < 0 ? 0 : files);
	return AGORA_OK;
}

static enum agora_err
metrics(struct agora_req *r)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	enum agora_err rc = AGORA_E_INTERNAL;
	char *copy;

	if (out == NULL)
		return AGORA_E_INTERNAL;
	scrape(r, out);
	if (fclose(out) == 0 && (copy = agora_alloc(r, len + 1)) != NULL) {
		memcpy(copy, buf, len + 1);
		rc = agora_resp_raw(r, 200,
		    "text/plain; version=0.0.4; charset=utf-8", copy, len);
	}
	free(buf);
	return rc;
}

static const struct agora_route routes[] = {
	{ "GET", "/metrics", AGORA_BODY_NONE, metrics, AGORA_ANON,
	    AGORA_RL_NONE },
};

static const struct agora_program program = {
	.name = "metrics",
	.routes = routes,
	.nroutes = AGORA_NELEM(routes),
	.stmts = stmts,
	.nstmts = AGORA_NELEM(stmts),
};

AGORA_MAIN(program)
