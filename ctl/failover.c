/*
 * failover.c: agoractl failover STANDBY, the promotion of a streaming
 * replica when the primary is lost (README, "Running on several hosts").
 *
 * Two primaries would each take orders and sell the same stock, so the
 * replica is promoted only when no server that database_url names takes
 * writes: the old primary must be stopped, or cut off, first.  Then
 * pg_promote() on the replica, waiting until it takes writes, its
 * synchronous_standby_names emptied (a copy of the old primary's setting
 * would make every commit wait for a standby that is not there), and a
 * checkpoint.  The
 * programs find the new primary at their next connection when
 * database_url lists both hosts with target_session_attrs=read-write.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "ctl.h"

/* A connection to conninfo (a URI or key=value pairs) with keys added. */
static PGconn *
connect_with(const char *conninfo, const char *attrs)
{
	const char *keys[] = { "dbname", "connect_timeout",
		"target_session_attrs", "application_name", NULL };
	const char *vals[] = { conninfo, "3", attrs, "agoractl", NULL };

	if (attrs == NULL)
		keys[2] = NULL;
	return PQconnectdbParams(keys, vals, 1);
}

/* The one value of sql on c, into out; 0, or -1 (said on stderr). */
static int
value_of(PGconn *c, const char *sql, char *out, size_t len)
{
	PGresult *res = PQexec(c, sql);
	int rc = -1;

	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		snprintf(out, len, "%s", PQgetvalue(res, 0, 0));
		rc = 0;
	} else {
		fprintf(stderr, "agoractl: %s: %s", sql, PQerrorMessage(c));
	}
	PQclear(res);
	return rc;
}

/*
 * Whether a server of database_url (and database_admin_url) still takes
 * writes: 1 (said on stderr), 0 when none answers as a primary, -1 when
 * the configuration cannot be read.
 */
static int
primary_alive(void)
{
	struct agora_config cfg;
	char err[512];
	const char *urls[2];
	PGconn *c;
	int i, alive = 0;

	if (agora_config_load_for(&cfg,
	        AGORA_NEEDS(AGORA_SECRET_DATABASE_URL) |
	            AGORA_NEEDS(AGORA_SECRET_DATABASE_ADMIN_URL),
	        err, sizeof(err)) != 0) {
		fprintf(stderr, "agoractl: configuration: %s\n", err);
		agora_config_free(&cfg);
		return -1;
	}
	urls[0] = cfg.database_url;
	urls[1] = cfg.database_admin_url;
	for (i = 0; i < 2 && !alive; i++) {
		if (*urls[i] == '\0')
			continue;
		c = connect_with(urls[i], "read-write");
		if (PQstatus(c) == CONNECTION_OK) {
			fprintf(stderr,
			    "agoractl: %s:%s still takes writes: stop it "
			    "first, or two primaries would take orders\n",
			    PQhost(c), PQport(c));
			alive = 1;
		}
		PQfinish(c);
	}
	agora_config_free(&cfg);
	return alive;
}

/* Promote c, wait until it takes writes, and stop it waiting for a
 * standby; 0, or 1 (said on stderr). */
static int
promote(PGconn *c)
{
	char v[16];

	if (value_of(c, "SELECT pg_promote(true, 60)", v, sizeof(v)) != 0)
		return 1;
	if (strcmp(v, "t") != 0) {
		fprintf(stderr,
		    "agoractl: the promotion did not end within "
		    "60 s (see the server's log)\n");
		return 1;
	}
	/* A promotion ends recovery without a checkpoint: until one, the
	 * control file keeps the old timeline, and a base backup taken now
	 * (pgBackRest) fails on the mismatch. */
	if (ctl_exec(c, "ALTER SYSTEM SET synchronous_standby_names = ''") !=
	        0 ||
	    ctl_exec(c, "SELECT pg_reload_conf()") != 0 ||
	    ctl_exec(c, "CHECKPOINT") != 0)
		return 1;
	return 0;
}

int
ctl_failover(int argc, char **argv)
{
	char v[16];
	PGconn *c;
	int rc = 1;

	if (argc != 1 || *argv[0] == '-')
		return ctl_usage();
	c = connect_with(argv[0], NULL);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "agoractl: %s", PQerrorMessage(c));
	} else if (value_of(c, "SELECT pg_is_in_recovery()", v, sizeof(v)) !=
	    0) {
		;
	} else if (strcmp(v, "t") != 0) {
		printf("%s:%s is a primary already: nothing to do\n", PQhost(c),
		    PQport(c));
		rc = 0;
	} else if (primary_alive() == 0) {
		printf("promoting %s:%s ...\n", PQhost(c), PQport(c));
		fflush(stdout);
		rc = promote(c);
		if (rc == 0)
			printf(
			    "%s:%s is the primary: it takes writes now. Make "
			    "the old primary its replica (pg_basebackup) "
			    "before it starts again.\n",
			    PQhost(c), PQport(c));
	}
	PQfinish(c);
	return rc;
}
