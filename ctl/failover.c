/*
 * failover.c: agoractl failover [--force] STANDBY, the promotion of a
 * streaming replica when the primary is lost (README, "Running on several
 * hosts").
 *
 * Two primaries would each take orders and sell the same stock, so the
 * replica is promoted only when every other server that database_url and
 * database_admin_url name is either a standby or silent at the TCP level
 * (refused, timed out).  A server that answers but cannot be asked (full,
 * refusing the role, starting up) may still take writes: that stops the
 * command too, unless --force says the old primary is fenced.  Then
 * pg_promote() on the replica, waiting until it takes writes, its
 * synchronous_standby_names emptied (a copy of the old primary's setting
 * would make every commit wait for a standby that is not there), and a
 * checkpoint.  The programs find the new primary at their next connection
 * when database_url lists both hosts with target_session_attrs=read-write.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "ctl.h"

#define HOSTS_MAX 16

enum server { S_DEAD, S_STANDBY, S_PRIMARY, S_UNKNOWN };

/* One server of a connection string: its host (and hostaddr) and port. */
struct hostport {
	const char *host, *addr, *port;
};

/* A connection to conninfo, with hp's server (if any) in place of its
 * list and target_session_attrs=attrs (if any). */
static PGconn *
connect_with(const char *conninfo, const struct hostport *hp, const char *attrs)
{
	const char *keys[8], *vals[8];
	size_t n = 0;

	keys[n] = "dbname", vals[n++] = conninfo;
	keys[n] = "connect_timeout", vals[n++] = "3";
	keys[n] = "application_name", vals[n++] = "agoractl";
	if (hp != NULL && hp->host != NULL)
		keys[n] = "host", vals[n++] = hp->host;
	if (hp != NULL && hp->addr != NULL)
		keys[n] = "hostaddr", vals[n++] = hp->addr;
	if (hp != NULL && hp->port != NULL)
		keys[n] = "port", vals[n++] = hp->port;
	if (attrs != NULL)
		keys[n] = "target_session_attrs", vals[n++] = attrs;
	keys[n] = vals[n] = NULL;
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

/* What the server of hp says of itself; why it could not be asked, in
 * why, when S_UNKNOWN. */
static enum server
server_state(const char *url, const struct hostport *hp, char *why, size_t len)
{
	PGconn *c = connect_with(url, hp, NULL);
	const char *msg = PQerrorMessage(c);
	enum server s = S_UNKNOWN;
	char v[16];

	if (PQstatus(c) == CONNECTION_OK) {
		if (value_of(c, "SELECT pg_is_in_recovery()", v, sizeof(v)) ==
		    0)
			s = strcmp(v, "t") == 0 ? S_STANDBY : S_PRIMARY;
		else
			snprintf(
			    why, len, "it cannot say whether it is a standby");
	} else if (strstr(msg, "FATAL:") != NULL ||
	    strstr(msg, "ERROR:") != NULL) {
		/* The server answered: it lives, whatever it refused. */
		snprintf(why, len, "%s", msg);
	} else {
		s = S_DEAD; /* refused or timed out: nothing listens */
	}
	PQfinish(c);
	return s;
}

/* Split list (commas) into at most HOSTS_MAX parts, in place; their count. */
static size_t
split(char *list, const char *parts[HOSTS_MAX])
{
	size_t n = 0;
	char *p = list, *c;

	while (p != NULL && *p != '\0' && n < HOSTS_MAX) {
		c = strchr(p, ',');
		if (c != NULL)
			*c++ = '\0';
		parts[n++] = p;
		p = c;
	}
	return n;
}

/* The value of key in opts, copied into buf ("" when unset). */
static char *
option(PQconninfoOption *opts, const char *key, char *buf, size_t len)
{
	PQconninfoOption *o;

	buf[0] = '\0';
	for (o = opts; o != NULL && o->keyword != NULL; o++)
		if (strcmp(o->keyword, key) == 0 && o->val != NULL)
			snprintf(buf, len, "%s", o->val);
	return buf;
}

/*
 * Whether a server of url may still take writes: 1 (said on stderr),
 * 0 when each is a standby or silent, -1 when url cannot be parsed.
 */
static int
url_writable(const char *url)
{
	char hosts[1024], addrs[1024], ports[256], why[512];
	const char *h[HOSTS_MAX], *a[HOSTS_MAX], *p[HOSTS_MAX];
	PQconninfoOption *opts = PQconninfoParse(url, NULL);
	struct hostport hp;
	size_t nh, na, np, i;
	enum server s = S_DEAD;

	if (opts == NULL) {
		fprintf(stderr, "agoractl: a database URL does not parse\n");
		return -1;
	}
	nh = split(option(opts, "host", hosts, sizeof(hosts)), h);
	na = split(option(opts, "hostaddr", addrs, sizeof(addrs)), a);
	np = split(option(opts, "port", ports, sizeof(ports)), p);
	PQconninfoFree(opts);
	for (i = 0; i < (nh > na ? nh : na) || i == 0; i++) {
		hp.host = i < nh ? h[i] : NULL;
		hp.addr = i < na ? a[i] : NULL;
		hp.port = np == 0 ? NULL : p[np == 1 ? 0 : (i < np ? i : 0)];
		why[0] = '\0';
		s = server_state(url, &hp, why, sizeof(why));
		if (s == S_PRIMARY || s == S_UNKNOWN)
			break;
	}
	if (s == S_PRIMARY)
		fprintf(stderr,
		    "agoractl: %s still takes writes: stop it first, or two "
		    "primaries would take orders\n",
		    hp.host != NULL ? hp.host
		        : hp.addr   ? hp.addr
		                    : "localhost");
	else if (s == S_UNKNOWN)
		fprintf(stderr,
		    "agoractl: %s answers but cannot be asked whether it "
		    "takes writes (%s); once it is stopped or cut off, run "
		    "again with --force\n",
		    hp.host != NULL ? hp.host
		        : hp.addr   ? hp.addr
		                    : "localhost",
		    why);
	return s == S_PRIMARY || s == S_UNKNOWN;
}

/* Whether a server of database_url or database_admin_url may take writes:
 * 1 or -1 (said on stderr) stop the failover, 0 lets it go on. */
static int
primary_alive(void)
{
	struct agora_config cfg;
	int rc;

	if (ctl_config_load(&cfg) != 0)
		return -1;
	rc = url_writable(cfg.database_url);
	if (rc == 0 && *cfg.database_admin_url != '\0')
		rc = url_writable(cfg.database_admin_url);
	agora_config_free(&cfg);
	return rc;
}

/* Promote c, wait until it takes writes, stop it waiting for a standby,
 * and checkpoint; 0, or 1 (said on stderr). */
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
	printf(
	    "%s:%s is promoted: it takes writes now\n", PQhost(c), PQport(c));
	/* A promotion ends recovery without a checkpoint: until one, the
	 * control file keeps the old timeline, and a base backup taken now
	 * (pgBackRest) fails on the mismatch. */
	if (ctl_exec(c, "ALTER SYSTEM SET synchronous_standby_names = ''") !=
	        0 ||
	    ctl_exec(c, "SELECT pg_reload_conf()") != 0 ||
	    ctl_exec(c, "CHECKPOINT") != 0) {
		fprintf(stderr,
		    "agoractl: run as a superuser on it: ALTER SYSTEM SET "
		    "synchronous_standby_names = ''; SELECT pg_reload_conf(); "
		    "CHECKPOINT;\n");
		return 1;
	}
	printf("Make the old primary its replica (pg_basebackup) before it "
	       "starts again.\n");
	return 0;
}

int
ctl_failover(int argc, char **argv)
{
	int force = argc == 2 && strcmp(argv[0], "--force") == 0;
	const char *standby = argv[force];
	char v[16];
	PGconn *c;
	int rc = 1;

	if (argc != 1 + force || *standby == '-')
		return ctl_usage();
	c = connect_with(standby, NULL, NULL);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "agoractl: %s", PQerrorMessage(c));
	} else if (value_of(c, "SELECT pg_is_in_recovery()", v, sizeof(v)) !=
	    0) {
		;
	} else if (strcmp(v, "t") != 0) {
		printf("%s:%s is a primary already: nothing to do\n", PQhost(c),
		    PQport(c));
		rc = 0;
	} else if (force || primary_alive() == 0) {
		printf("promoting %s:%s ...\n", PQhost(c), PQport(c));
		fflush(stdout);
		rc = promote(c);
	}
	PQfinish(c);
	return rc;
}
