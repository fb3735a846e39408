/*
 * failover.c: agoractl failover [--force] STANDBY, the promotion of a
 * streaming replica when the primary is lost (README, "Running on several
 * hosts").
 *
 * Two primaries would each take orders and sell the same stock, so the
 * replica is promoted only when every other server that database_url and
 * database_admin_url name is either a standby or sends no answer at all
 * (PQping: no response).  A server that answers but cannot be asked (full,
 * refusing the role or the password, starting up) may still take writes:
 * that stops the command too, unless --force says the old primary is
 * fenced.  Then
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

/* The same parameters as connect_with, for PQpingParams. */
static PGPing
ping_with(const char *conninfo, const struct hostport *hp)
{
	const char *keys[6], *vals[6];
	size_t n = 0;

	keys[n] = "dbname", vals[n++] = conninfo;
	keys[n] = "connect_timeout", vals[n++] = "3";
	if (hp->host != NULL)
		keys[n] = "host", vals[n++] = hp->host;
	if (hp->addr != NULL)
		keys[n] = "hostaddr", vals[n++] = hp->addr;
	if (hp->port != NULL)
		keys[n] = "port", vals[n++] = hp->port;
	keys[n] = vals[n] = NULL;
	return PQpingParams(keys, vals, 1);
}

/*
 * What the server of hp says of itself; why it could not be asked, in
 * why, when S_UNKNOWN.  Only PQping's "no response" (nothing answered:
 * refused, timed out, no route) counts as gone: a password refused, a
 * certificate or a message in another language is an answer too.
 */
static enum server
server_state(const char *url, const struct hostport *hp, char *why, size_t len)
{
	PGconn *c;
	enum server s = S_UNKNOWN;
	char v[16], *nl;

	if (ping_with(url, hp) == PQPING_NO_RESPONSE)
		return S_DEAD;
	c = connect_with(url, hp, "any");
	if (PQstatus(c) != CONNECTION_OK)
		snprintf(why, len, "%s", PQerrorMessage(c));
	else if (value_of(c, "SELECT pg_is_in_recovery()", v, sizeof(v)) == 0)
		s = strcmp(v, "t") == 0 ? S_STANDBY : S_PRIMARY;
	else
		snprintf(why, len, "it cannot say whether it is a standby");
	if ((nl = strchr(why, '\n')) != NULL)
		*nl = '\0';
	PQfinish(c);
	return s;
}

/* Split list (commas) into parts, in place; their count, or HOSTS_MAX + 1
 * when there are more. */
static size_t
split(char *list, const char *parts[HOSTS_MAX])
{
	size_t n = 0;
	char *p = list, *c;

	while (*p != '\0') {
		if (n == HOSTS_MAX)
			return HOSTS_MAX + 1;
		c = strchr(p, ',');
		parts[n++] = p;
		if (c == NULL)
			break;
		*c = '\0';
		p = c + 1;
	}
	return n;
}

/* The value of key in opts, copied into buf ("" when unset), split into
 * parts; their count, or HOSTS_MAX + 1 when it does not fit. */
static size_t
option(PQconninfoOption *opts, const char *key, char buf[1024],
    const char *parts[HOSTS_MAX])
{
	PQconninfoOption *o;

	buf[0] = '\0';
	for (o = opts; o->keyword != NULL; o++)
		if (strcmp(o->keyword, key) == 0 && o->val != NULL &&
		    (size_t)snprintf(buf, 1024, "%s", o->val) >= 1024)
			return HOSTS_MAX + 1;
	return split(buf, parts);
}

/* Whether a server of url may still take writes: 1 (said on stderr), 0
 * when each is a standby or silent, -1 when url cannot be used. */
static int
url_writable(const char *url)
{
	char hosts[1024], addrs[1024], ports[1024], why[512] = "";
	const char *h[HOSTS_MAX], *a[HOSTS_MAX], *p[HOSTS_MAX];
	PQconninfoOption *opts = PQconninfoParse(url, NULL);
	struct hostport hp = { NULL, NULL, NULL };
	size_t nh = HOSTS_MAX + 1, na = 0, np = 0, i;
	enum server s = S_DEAD;

	if (opts != NULL) {
		nh = option(opts, "host", hosts, h);
		na = option(opts, "hostaddr", addrs, a);
		np = option(opts, "port", ports, p);
		PQconninfoFree(opts);
	}
	if (nh > HOSTS_MAX || na > HOSTS_MAX || np > HOSTS_MAX) {
		fprintf(stderr,
		    "agoractl: a database URL does not parse, or "
		    "names more than %d hosts\n",
		    HOSTS_MAX);
		return -1;
	}
	for (i = 0;
	     (i < nh || i < na || i == 0) && s != S_PRIMARY && s != S_UNKNOWN;
	     i++) {
		hp.host = i < nh ? h[i] : NULL;
		hp.addr = i < na ? a[i] : NULL;
		hp.port = np == 0 ? NULL : p[np == 1 || i >= np ? 0 : i];
		s = server_state(url, &hp, why, sizeof(why));
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

/*
 * A primary whose commits wait for a synchronous standby that is not
 * there (a promotion whose last steps failed, say): 1, said with the fix,
 * or 0.  A healthy primary's setting is left as it is.
 */
static int
waits_for_nobody(PGconn *c)
{
	char v[16];

	if (value_of(c,
	        "SELECT current_setting('synchronous_standby_names') <> '' "
	        "AND NOT EXISTS (SELECT FROM pg_stat_replication "
	        "WHERE sync_state IN ('sync', 'quorum'))",
	        v, sizeof(v)) != 0 ||
	    strcmp(v, "t") != 0)
		return 0;
	fprintf(stderr,
	    "agoractl: its commits wait for a synchronous standby that is not "
	    "connected; as a superuser: ALTER SYSTEM SET "
	    "synchronous_standby_names = ''; SELECT pg_reload_conf();\n");
	return 1;
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
		rc = waits_for_nobody(c);
	} else if (force || primary_alive() == 0) {
		printf("promoting %s:%s ...\n", PQhost(c), PQport(c));
		fflush(stdout);
		rc = promote(c);
	}
	PQfinish(c);
	return rc;
}
