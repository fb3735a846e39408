/*
 * migrate.c: agoractl migrate and agoractl migrations.
 *
 * Migrations are the files NNNN_name.sql, applied in version order, each
 * in its own transaction together with its row in schema_migrations, under
 * an advisory lock so that two administrators cannot apply one twice.
 * They are forward-only: an applied file whose text changed is an error.
 *
 * Then the functions files (sql/functions/NAME.sql): each one that changed
 * since it was applied is applied again, all in one transaction, into the
 * schema of this release (AGORA_FUNCTIONS_SCHEMA, agora_0_2 for 0.2.x),
 * except tables.sql, the functions the tables call, which is public's.
 * Each release's programs put their own schema first on their search_path
 * (lib/db.c), so during a rolling upgrade the previous release's programs
 * keep calling the functions they were built with; prune-functions drops
 * the schemas of earlier releases once none of their programs runs.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

#define LOCK_KEY "7259000001"
/* The functions file that is public's, not the release's. */
#define TABLES_FILE "tables"
#define SCHEMA AGORA_FUNCTIONS_SCHEMA

/* The schema functions file m goes into. */
static const char *
target(const struct migration *m)
{
	return strcmp(m->name, TABLES_FILE) == 0 ? "public" : SCHEMA;
}

/* "0007_orders.sql" -> version 7; -1 for names that are not migrations. */
static long long
file_version(const char *name)
{
	char digits[5];
	long long v;
	size_t n = strlen(name);

	if (n < 10 || strcmp(name + n - 4, ".sql") != 0 || name[4] != '_')
		return -1;
	memcpy(digits, name, 4);
	digits[4] = '\0';
	if (strspn(digits, "0123456789") != 4 ||
	    agora_parse_ll(digits, 1, 9999, &v) != 0)
		return -1;
	return v;
}

static int
by_version(const void *a, const void *b)
{
	const struct migration *x = a, *y = b;

	return (x->version > y->version) - (x->version < y->version);
}

static int
load_one(struct plan *p, const char *dir, const char *name, long long v)
{
	struct migration *m = &p->m[p->n];
	unsigned char h[crypto_hash_sha256_BYTES];
	char path[4096], err[4200];
	size_t len;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	m->sql = agora_read_file(path, CTL_FILE_MAX, &len, err, sizeof(err));
	if (m->sql == NULL) {
		fprintf(stderr, "agoractl: cannot read %s\n", err);
		return -1;
	}
	m->version = v;
	snprintf(m->name, sizeof(m->name), "%.*s", (int)strlen(name) - 4, name);
	crypto_hash_sha256(h, (unsigned char *)m->sql, len);
	sodium_bin2hex(m->sha, sizeof(m->sha), h, sizeof(h));
	p->n++;
	return 0;
}

static int
too_many(const struct plan *p, const char *dir)
{
	if (p->n < MIGRATIONS_MAX)
		return 0;
	fprintf(
	    stderr, "agoractl: %s: more than %d files\n", dir, MIGRATIONS_MAX);
	return 1;
}

/* Name order, but tables.sql first: the lower layer, which area files
 * may call (a LANGUAGE sql body is checked when it is made). */
static int
by_name(const void *a, const void *b)
{
	const struct migration *x = a, *y = b;
	int xt = strcmp(x->name, TABLES_FILE) == 0;
	int yt = strcmp(y->name, TABLES_FILE) == 0;

	return xt != yt ? yt - xt : strcmp(x->name, y->name);
}

/*
 * The functions files of dir (dir/functions/NAME.sql), in name order;
 * -1 (said on stderr).
 */
int
ctl_functions_load(struct plan *p, const char *dir)
{
	char fdir[4096];
	struct dirent *e;
	size_t n;
	DIR *d;
	int rc = -1;

	snprintf(fdir, sizeof(fdir), "%s/functions", dir);
	/* Missing, the functions would silently stop following the
	 * release: an install without them is broken. */
	if ((d = opendir(fdir)) == NULL) {
		fprintf(stderr, "agoractl: %s: %s\n", fdir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		n = strlen(e->d_name);
		if (e->d_name[0] == '.' || n < 5 ||
		    strcmp(e->d_name + n - 4, ".sql") != 0)
			continue;
		if (too_many(p, fdir) || load_one(p, fdir, e->d_name, 0))
			goto out;
	}
	qsort(p->m, p->n, sizeof(p->m[0]), by_name);
	rc = 0;
out:
	closedir(d);
	return rc;
}

/* The migrations of dir, in version order; -1 (said on stderr). */
int
ctl_plan_load(struct plan *p, const char *dir)
{
	DIR *d;
	struct dirent *e;
	long long v;
	size_t i;
	int rc = -1;

	d = opendir(dir);
	if (d == NULL) {
		fprintf(stderr, "agoractl: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		if ((v = file_version(e->d_name)) < 0)
			continue;
		if (too_many(p, dir) || load_one(p, dir, e->d_name, v))
			goto out;
	}
	qsort(p->m, p->n, sizeof(p->m[0]), by_version);
	for (i = 1; i < p->n; i++)
		if (p->m[i].version == p->m[i - 1].version) {
			fprintf(stderr,
			    "agoractl: two migrations numbered %04lld\n",
			    p->m[i].version);
			goto out;
		}
	rc = 0;
out:
	closedir(d);
	return rc;
}

void
ctl_plan_free(struct plan *p)
{
	size_t i;

	for (i = 0; i < p->n; i++) {
		free(p->m[i].sql);
		p->m[i].sql = NULL;
	}
	p->n = 0;
}

static const char create_table[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version integer PRIMARY KEY, name text NOT NULL,"
    " sha256 text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());"
    "CREATE TABLE IF NOT EXISTS schema_functions ("
    " schema text NOT NULL, file text NOT NULL, sha256 text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now(),"
    " PRIMARY KEY (schema, file));"
    /* Made after sql/0001 on an upgrade, it would get the programs' rights
     * on every table (sql/0001's default privileges): the bookkeeping is
     * the owner's alone, as schema_migrations is. */
    /* Development databases of the commits before the schemas kept
     * every file in public, keyed by file alone. */
    "ALTER TABLE schema_functions ADD COLUMN IF NOT EXISTS"
    " schema text NOT NULL DEFAULT 'public';"
    "DO $$ BEGIN IF (SELECT array_length(conkey, 1) FROM pg_constraint"
    " WHERE conname = 'schema_functions_pkey') = 1 THEN"
    " ALTER TABLE schema_functions DROP CONSTRAINT schema_functions_pkey;"
    " ALTER TABLE schema_functions ADD PRIMARY KEY (schema, file);"
    " END IF; END $$;"
    "REVOKE ALL ON schema_functions FROM PUBLIC;"
    "DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = "
    "'agora_app') AND current_user <> 'agora_app' THEN "
    "REVOKE ALL ON schema_functions FROM agora_app; END IF; END $$";

/* The sha256 recorded for version, "" when not applied; NULL on error. */
static const char *
applied_sha(PGconn *c, long long version, char *buf, size_t len)
{
	const char *vals[1];
	char v[24];
	PGresult *res;
	const char *out = NULL;

	snprintf(v, sizeof(v), "%lld", version);
	vals[0] = v;
	res = PQexecParams(c,
	    "SELECT sha256 FROM schema_migrations WHERE version = $1", 1, NULL,
	    vals, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK) {
		snprintf(buf, len, "%s",
		    PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "");
		out = buf;
	} else {
		fprintf(stderr, "agoractl: %s", PQerrorMessage(c));
	}
	PQclear(res);
	return out;
}

/*
 * Whether m is applied, pending, or changed since it was applied; an
 * error (said on stderr) when schema_migrations cannot be read.
 */
enum ctl_mig
ctl_migration_state(PGconn *c, const struct migration *m)
{
	char sha[128];
	const char *have;

	have = applied_sha(c, m->version, sha, sizeof(sha));
	if (have == NULL)
		return CTL_MIG_ERROR;
	if (*have == '\0')
		return CTL_MIG_PENDING;
	return strcmp(have, m->sha) == 0 ? CTL_MIG_APPLIED : CTL_MIG_CHANGED;
}

/*
 * Whether the functions file m is applied as it is now (1) or not (0);
 * -1 (said on stderr) when schema_functions cannot be read.
 */
int
ctl_functions_current(PGconn *c, const struct migration *m)
{
	const char *vals[3] = { target(m), m->name, m->sha };
	PGresult *res;
	int rc = -1;

	res = PQexecParams(c,
	    "SELECT count(*) FROM schema_functions "
	    "WHERE schema = $1 AND file = $2 AND sha256 = $3",
	    3, NULL, vals, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK)
		rc = strcmp(PQgetvalue(res, 0, 0), "1") == 0;
	else
		fprintf(stderr, "agoractl: %s", PQerrorMessage(c));
	PQclear(res);
	return rc;
}

static int
record_functions(PGconn *c, const struct migration *m)
{
	const char *vals[3] = { target(m), m->name, m->sha };

	return ctl_exec_params(c,
	    "INSERT INTO schema_functions (schema, file, sha256) "
	    "VALUES ($1, $2, $3) ON CONFLICT (schema, file) DO UPDATE "
	    "SET sha256 = EXCLUDED.sha256, applied_at = now()",
	    3, vals, 0);
}

/*
 * Apply functions file m, in an open transaction, into its schema: the
 * names it creates go to the first schema of the path, and the names its
 * bodies use are found along it.
 */
static int
apply_functions(PGconn *c, const struct migration *m)
{
	const char *path = strcmp(target(m), "public") == 0
	    ? "SET LOCAL search_path = public"
	    : "SET LOCAL search_path = " SCHEMA ", public";

	printf("applying functions/%s into %s\n", m->name, target(m));
	return ctl_exec(c, path) != 0 || ctl_exec(c, m->sql) != 0 ||
	        record_functions(c, m) != 0
	    ? -1
	    : 0;
}

/* The release's schema, made if need be, with the programs' use of it. */
static const char make_schema[] =
    "CREATE SCHEMA IF NOT EXISTS " SCHEMA ";"
    "GRANT USAGE ON SCHEMA " SCHEMA " TO agora_app";

/*
 * Apply (or, with dry, list) the functions files that changed since they
 * were applied, all in one transaction: a file may call a function another
 * one changes.
 */
static int
run_functions(PGconn *c, const struct plan *f, int dry)
{
	int cur[MIGRATIONS_MAX];
	size_t i, stale = 0;

	for (i = 0; i < f->n; i++) {
		if ((cur[i] = ctl_functions_current(c, &f->m[i])) < 0)
			return -1;
		stale += !cur[i];
		if (dry)
			printf("functions/%-30s %-10s %s\n", f->m[i].name,
			    target(&f->m[i]),
			    cur[i] ? "up to date" : "to apply");
	}
	if (dry || stale == 0)
		return 0;
	if (ctl_exec(c, "BEGIN") != 0)
		return -1;
	if (ctl_exec(c, make_schema) != 0) {
		ctl_exec(c, "ROLLBACK");
		return -1;
	}
	for (i = 0; i < f->n; i++) {
		if (!cur[i] && apply_functions(c, &f->m[i]) != 0) {
			ctl_exec(c, "ROLLBACK");
			return -1;
		}
	}
	if (ctl_exec(c, "COMMIT") != 0)
		return -1;
	printf("%lu functions files applied\n", (unsigned long)stale);
	return 0;
}

static int
record(PGconn *c, const struct migration *m)
{
	const char *vals[3];
	char v[24];
	PGresult *res;
	int ok;

	snprintf(v, sizeof(v), "%lld", m->version);
	vals[0] = v;
	vals[1] = m->name;
	vals[2] = m->sha;
	res = PQexecParams(c,
	    "INSERT INTO schema_migrations (version, name, sha256) "
	    "VALUES ($1, $2, $3)",
	    3, NULL, vals, NULL, NULL, 0);
	ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	if (!ok)
		fprintf(stderr, "agoractl: %s", PQerrorMessage(c));
	PQclear(res);
	return ok ? 0 : -1;
}

static int
apply(PGconn *c, const struct migration *m)
{
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	printf("applying %s ... ", m->name);
	fflush(stdout);
	if (ctl_exec(c, "BEGIN") != 0)
		return -1;
	if (ctl_exec(c, m->sql) != 0 || record(c, m) != 0 ||
	    ctl_exec(c, "COMMIT") != 0) {
		ctl_exec(c, "ROLLBACK");
		printf("failed\n");
		return -1;
	}
	printf("ok (%lld ms)\n", agora_ms_since(&t0));
	return 0;
}

/* Apply (or, with dry, list) each migration of plan in order. */
static int
run(PGconn *c, const struct plan *p, int dry)
{
	enum ctl_mig st;
	size_t i, applied = 0;

	for (i = 0; i < p->n; i++) {
		st = ctl_migration_state(c, &p->m[i]);
		if (st == CTL_MIG_ERROR)
			return -1;
		if (st == CTL_MIG_CHANGED) {
			fprintf(stderr,
			    "agoractl: %s changed after it was applied; "
			    "migrations are forward-only: add a new one\n",
			    p->m[i].name);
			return -1;
		}
		if (dry) {
			printf("%-40s %s\n", p->m[i].name,
			    st == CTL_MIG_APPLIED ? "applied" : "pending");
			continue;
		}
		if (st == CTL_MIG_APPLIED)
			continue;
		if (apply(c, &p->m[i]) != 0)
			return -1;
		applied++;
	}
	if (!dry)
		printf("%lu applied, %lu already up to date\n",
		    (unsigned long)applied, (unsigned long)(p->n - applied));
	return 0;
}

/*
 * The schemas of other releases' functions, each with whether it is an
 * earlier release's (its major and minor version below this one's): only
 * those may go.  A later release's is there while an upgrade rolls out,
 * or after a rollback, and its programs may run.
 */
static const char releases_sql[] =
    "SELECT nspname, (split_part(nspname, '_', 2)::int, "
    "split_part(nspname, '_', 3)::int) < (split_part($1, '_', 2)::int, "
    "split_part($1, '_', 3)::int) FROM pg_namespace "
    "WHERE nspname ~ '^agora_[0-9]{1,6}_[0-9]{1,6}$' AND nspname <> $1 "
    "ORDER BY 1";

/* Say which other releases' functions are there; -1 on error. */
static int
say_earlier(PGconn *c)
{
	const char *vals[1] = { SCHEMA };
	PGresult *res;
	int i, rc = -1;

	res = PQexecParams(c, releases_sql, 1, NULL, vals, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK) {
		for (i = 0; i < PQntuples(res); i++)
			printf(strcmp(PQgetvalue(res, i, 1), "t") == 0
			        ? "functions of an earlier release: %s "
			          "(agoractl prune-functions drops them)\n"
			        : "functions of a later release: %s (kept)\n",
			    PQgetvalue(res, i, 0));
		rc = 0;
	} else {
		fprintf(stderr, "agoractl: %s", PQerrorMessage(c));
	}
	PQclear(res);
	return rc;
}

static int
migrate(int argc, char **argv, int dry)
{
	static struct plan plan, functions;
	const char *dir = CTL_SQLDIR;
	PGconn *c = NULL;
	int rc = 1;

	if (argc == 2 && strcmp(argv[0], "--dir") == 0)
		dir = argv[1];
	else if (argc != 0)
		return ctl_usage();
	if (ctl_plan_load(&plan, dir) != 0 ||
	    ctl_functions_load(&functions, dir) != 0 ||
	    (c = ctl_connect()) == NULL)
		goto out;
	/* A dry run lists what the bookkeeping tables say, made if need be
	 * in a transaction it rolls back: it changes nothing.  The tables,
	 * the bookkeeping's too, are public's, whichever release's schema
	 * exists (CREATE ... IF NOT EXISTS looks only where it creates). */
	if (ctl_exec(c, "SET search_path = public") != 0 ||
	    ctl_exec(c, "SELECT pg_advisory_lock(" LOCK_KEY ")") != 0 ||
	    (dry && ctl_exec(c, "BEGIN") != 0) ||
	    ctl_exec(c, create_table) != 0)
		goto out;
	/* The functions follow the tables they read: after every migration. */
	if (run(c, &plan, dry) == 0 && run_functions(c, &functions, dry) == 0 &&
	    say_earlier(c) == 0)
		rc = 0;
	if (dry)
		(void)ctl_exec(c, "ROLLBACK");
out:
	ctl_disconnect();
	ctl_plan_free(&plan);
	ctl_plan_free(&functions);
	return rc;
}

int
ctl_migrate(int argc, char **argv)
{
	return migrate(argc, argv, 0);
}

int
ctl_migrations(int argc, char **argv)
{
	return migrate(argc, argv, 1);
}

/* Drop schema name, an earlier release's functions, and its records. */
static int
drop_schema(PGconn *c, const char *name)
{
	char *q, sql[256];
	int rc;

	/* The name matched earlier_sql's pattern; quoted all the same. */
	if ((q = PQescapeIdentifier(c, name, strlen(name))) == NULL)
		return -1;
	snprintf(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", q);
	PQfreemem(q);
	rc = ctl_exec(c, sql);
	if (rc == 0)
		rc = ctl_exec_params(c,
		    "DELETE FROM schema_functions WHERE schema = $1", 1, &name,
		    0);
	if (rc == 0)
		printf("dropped %s\n", name);
	return rc;
}

/*
 * agoractl prune-functions: drop the functions of every earlier release,
 * in one transaction.  For when the upgrade is over: a program of an
 * earlier release that still runs would find its functions gone.
 */
int
ctl_prune_functions(int argc, char **argv)
{
	const char *vals[1] = { SCHEMA };
	PGresult *res = NULL;
	PGconn *c;
	int i, dropped = 0, rc = 1;

	(void)argv;
	if (argc != 0)
		return ctl_usage();
	if ((c = ctl_connect()) == NULL)
		return 1;
	if (ctl_exec(c, "SET search_path = public") != 0 ||
	    ctl_exec(c, "SELECT pg_advisory_lock(" LOCK_KEY ")") != 0 ||
	    ctl_exec(c, "BEGIN") != 0)
		goto out;
	res = PQexecParams(c, releases_sql, 1, NULL, vals, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		fprintf(stderr, "agoractl: %s", PQerrorMessage(c));
		goto out;
	}
	for (i = 0; i < PQntuples(res); i++)
		if (strcmp(PQgetvalue(res, i, 1), "t") != 0)
			printf("kept %s, a later release's\n",
			    PQgetvalue(res, i, 0));
		else if (drop_schema(c, PQgetvalue(res, i, 0)) != 0)
			goto out;
		else
			dropped++;
	if (ctl_exec(c, "COMMIT") != 0)
		goto out;
	printf("%d earlier releases' functions dropped; this release's are "
	       "%s\n",
	    dropped, SCHEMA);
	rc = 0;
out:
	PQclear(res);
	ctl_disconnect();
	return rc;
}
