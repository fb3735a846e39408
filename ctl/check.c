/*
 * check.c: agoractl check, a broken install diagnosed in one command.
 *
 * Each check prints one line: "ok", "warn" or "FAIL", the part looked at,
 * what was found and, when something is wrong, what to do.  The exit
 * status is 1 when a check failed (warnings do not count), 0 otherwise.
 * A check that needs what an earlier one could not get (the rights need
 * a connection) is left out rather than failed twice.
 *
 * Nothing is changed but a short-lived key in each memcached server, and
 * nothing is sent: the worker's part counts the outbox rows it would
 * claim now and reads the settings of the gateway and the mail server.
 *
 * Run as root, files and directories are checked as the programs' user
 * (AGORA_RUN_USER, configure's --with-user; the worker runs as it too): a
 * child process takes that user's ids and calls access(2), so that every
 * directory on the way, and ACLs, count as they will for the programs.
 * Run as anybody else, they are checked as that user.
 */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "agora.h"
#include "ctl.h"

#ifndef AGORA_RUN_USER
#define AGORA_RUN_USER "www-data"
#endif
#ifndef AGORA_LOCALSTATEDIR
#define AGORA_LOCALSTATEDIR "/var"
#endif
/* Where the cron file's workers log (README, "The worker"). */
#define LOG_DIR AGORA_LOCALSTATEDIR "/log/agora"
#define GROUPS_MAX 64
#define LINE_MAX_LEN 1024
/* Seconds a due outbox row may wait before the worker looks absent. */
#define OVERDUE_SECONDS 300

/*
 * PostgreSQL connections of an install with the defaults (README, "The
 * database"): 13 programs of agora-fcgi-pool's 8 processes at most and
 * tracking's 16 (mod_fcgid's FcgidMaxProcesses, 120, is the same sum),
 * the cron file's 2 workers and agoractl.
 */
#define CONN_PROGRAMS 13
#define CONN_PER_PROGRAM 8
#define CONN_TRACKING 16
#define CONN_WORKERS 2
#define CONN_NEEDED                                                            \
	(CONN_PROGRAMS * CONN_PER_PROGRAM + CONN_TRACKING + CONN_WORKERS + 1)

/*
 * What the programs' role must (need) and must not (deny) do to each
 * table, as sql/ grants it: 0001 grants SELECT, INSERT, UPDATE and DELETE
 * on every table, and later migrations revoke what a table keeps as
 * written.  The one place check knows this; a new table or REVOKE in
 * sql/ belongs here too.
 */
#define RW "SELECT,INSERT,UPDATE,DELETE"
static const struct grant {
	const char *table, *need, *deny;
} grants[] = {
	{ "users", RW, "" }, { "refresh_tokens", RW, "" },
	{ "sessions", RW, "" }, /* 0023 */
	{ "account_tokens", RW, "" }, /* 0024 */
	{ "user_identities", RW, "" }, { "oauth_flows", RW, "" }, /* 0025 */
	{ "categories", RW, "" }, { "products", RW, "" },
	{ "inventory", RW, "" }, { "reservations", RW, "" },
	{ "orders", RW, "" }, { "order_items", RW, "" },
	{ "cart_items", RW, "" }, { "idempotency_keys", RW, "" },
	{ "outbox", RW, "" }, { "payments", RW, "" }, { "reviews", RW, "" },
	{ "gateway_events", RW, "" }, { "files", RW, "" },
	{ "notifications", RW, "" },
	/* 0022: INSERT of its columns but occurred_at. */
	{ "analytics_events", "SELECT", "UPDATE,DELETE" }, /* 0002 */
	{ "order_transitions", "SELECT", "INSERT,UPDATE,DELETE" }, /* 0005 */
	{ "order_events", "SELECT,INSERT", "UPDATE,DELETE" }, /* 0005 */
	{ "invoices", "SELECT,INSERT", "UPDATE,DELETE" }, /* 0008 */
	{ "notification_attempts", "SELECT,INSERT",
	    "UPDATE,DELETE" }, /* 0008 */
	{ "analytics_paid", "SELECT", "INSERT,UPDATE,DELETE" }, /* 0021 */
	{ "analytics_sales_daily", "SELECT",
	    "INSERT,UPDATE,DELETE" }, /* 0021 */
	{ "analytics_product_blocks", "SELECT",
	    "INSERT,UPDATE,DELETE" }, /* 0021 */
	{ "analytics_daily", "SELECT", "INSERT,UPDATE,DELETE" }, /* 0022 */
	{ "analytics_session_days", "SELECT",
	    "INSERT,UPDATE,DELETE" }, /* 0022 */
};

enum level { OK, WARN, FAIL, LEVEL__MAX };

static const char *const level_word[LEVEL__MAX] = { "ok", "warn", "FAIL" };

/* The user files are checked as. */
struct who {
	char name[64];
	char group[64];
	uid_t uid;
	gid_t gid;
	gid_t groups[GROUPS_MAX];
	int ngroups;
	int self; /* agoractl's own user: access(2) as is */
	int missing; /* root, and AGORA_RUN_USER does not exist */
};

struct ck {
	const char *sqldir;
	const char *path; /* the configuration file */
	struct agora_config cfg; /* with every secret, once loaded */
	struct who who;
	PGconn *app, *admin;
	int schema; /* every migration applied: the tables can be asked */
	int count[LEVEL__MAX];
};

/* Who may read a secret file: the programs, agoractl alone, or anyone. */
enum reader { READ_PROGRAMS, READ_OWNER, READ_PUBLIC };

/* One line: the level, the part, then what fmt says, on one line. */
static void __attribute__((format(printf, 4, 5)))
say(struct ck *k, enum level lv, const char *part, const char *fmt, ...)
{
	char line[LINE_MAX_LEN];
	va_list ap;
	char *p, *q;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* libpq's messages end with a newline and may hold more: one line,
	 * each run of blanks one space. */
	for (p = q = line; *p != '\0'; p++) {
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
		if (*p != ' ' || (q > line && q[-1] != ' '))
			*q++ = *p;
	}
	while (q > line && q[-1] == ' ')
		q--;
	*q = '\0';
	printf("%-4s %s: %s\n", level_word[lv], part, line);
	k->count[lv]++;
}

/* The programs' user when root, else agoractl's own. */
static void
who_find(struct who *w)
{
	struct passwd *pw = NULL;
	struct group *gr;

	if (geteuid() == 0) {
		pw = getpwnam(AGORA_RUN_USER);
		w->missing = pw == NULL;
	}
	w->self = pw == NULL;
	if (pw == NULL)
		pw = getpwuid(geteuid());
	snprintf(w->name, sizeof(w->name), "%s", pw ? pw->pw_name : "?");
	if (pw == NULL)
		return;
	w->uid = pw->pw_uid;
	w->gid = pw->pw_gid;
	w->ngroups = GROUPS_MAX;
	if (getgrouplist(w->name, w->gid, w->groups, &w->ngroups) < 0)
		w->ngroups = 0; /* more than GROUPS_MAX: the primary alone */
	gr = getgrgid(w->gid);
	snprintf(w->group, sizeof(w->group), "%s", gr ? gr->gr_name : "?");
}

/* 0 when w may access path with mode (access(2)), else the errno. */
static int
who_access(const struct who *w, const char *path, int mode)
{
	pid_t pid;
	int st;

	if (w->self)
		return access(path, mode) == 0 ? 0 : errno;
	fflush(stdout);
	if ((pid = fork()) < 0)
		return errno;
	if (pid == 0) {
		if (setgroups((size_t)w->ngroups, w->groups) != 0 ||
		    setgid(w->gid) != 0 || setuid(w->uid) != 0)
			_exit(EPERM);
		_exit(access(path, mode) == 0 ? 0 : errno);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return errno;
	if (!WIFEXITED(st))
		return ECHILD;
	return WEXITSTATUS(st);
}

/* "root:www-data" for a file's owner and group. */
static const char *
owner(const struct stat *st, char *buf, size_t len)
{
	struct passwd *pw = getpwuid(st->st_uid);
	struct group *gr = getgrgid(st->st_gid);

	if (pw != NULL && gr != NULL)
		snprintf(buf, len, "%s:%s", pw->pw_name, gr->gr_name);
	else
		snprintf(
		    buf, len, "%ld:%ld", (long)st->st_uid, (long)st->st_gid);
	return buf;
}

/* --- 1. config ------------------------------------------------------ */

/*
 * The file parses, with its secrets: every key known, every number in
 * range, the secret files read.  The loader names the file and line.
 */
static int
check_config(struct ck *k)
{
	char err[512];

	k->path = agora_config_path();
	if (agora_config_load_for(&k->cfg, 0, err, sizeof(err)) != 0) {
		say(k, FAIL, "config",
		    "%s (agora.conf(5) lists every key and its range)", err);
		return -1;
	}
	if (access(k->path, F_OK) != 0)
		say(k, WARN, "config",
		    "%s does not exist: the compiled-in defaults are used",
		    k->path);
	else
		say(k, OK, "config", "%s parsed", k->path);
	return 0;
}

/* --- 2. keys and secrets -------------------------------------------- */

/* Whether a database URL carries a password. */
static int
url_has_password(const char *url)
{
	const char *auth = strstr(url, "://"), *at;

	if (strstr(url, "password") != NULL)
		return 1;
	if (auth == NULL)
		return 0;
	/* postgresql://user:password@host/db: the user part ends at the
	 * host's @, which comes before the path and the query. */
	auth += 3;
	at = memchr(auth, '@', strcspn(auth, "/?"));
	return at != NULL && memchr(auth, ':', (size_t)(at - auth)) != NULL;
}

/* Whether the text of the file at path (the file alone) holds a secret. */
static int
file_holds_secret(const char *path)
{
	struct agora_config c;
	char err[256], *text;
	size_t len;
	int holds = 0;

	text = agora_read_file(path, CTL_FILE_MAX, &len, err, sizeof(err));
	if (text == NULL)
		return 0;
	agora_config_defaults(&c);
	if (agora_config_parse(&c, text, path, err, sizeof(err)) == 0)
		holds = url_has_password(c.database_url) ||
		    url_has_password(c.database_admin_url) ||
		    *c.webhook_secret || *c.payment_gateway_key ||
		    *c.s3_access_key || *c.s3_secret_key || *c.smtp_password ||
		    *c.sms_token;
	agora_config_free(&c);
	explicit_bzero(text, len);
	free(text);
	return holds;
}

/* agora.conf: the programs read it; everyone may not, if it holds one. */
static void
check_config_file(struct ck *k)
{
	char own[160];
	struct stat st;
	int e;

	if (stat(k->path, &st) != 0)
		return; /* the defaults: said by check_config */
	if ((e = who_access(&k->who, k->path, R_OK)) != 0)
		say(k, FAIL, "keys",
		    "%s is not readable by %s: %s: chgrp %s %s; chmod 0640 %s",
		    k->path, k->who.name, strerror(e), k->who.group, k->path,
		    k->path);
	else if ((st.st_mode & 0004) && file_holds_secret(k->path))
		say(k, FAIL, "keys",
		    "%s holds a password and everyone may read it (mode "
		    "%04o): chmod %04o %s, or move it to a *_file",
		    k->path, (unsigned)(st.st_mode & 07777),
		    (unsigned)(st.st_mode & 0770), k->path);
	else
		say(k, OK, "keys", "%s: mode %04o %s, read by %s", k->path,
		    (unsigned)(st.st_mode & 07777),
		    owner(&st, own, sizeof(own)), k->who.name);
}

/*
 * One secret file, named by key: there, nobody else's to read, and
 * readable by the programs, or (the owner's database URL) not.  A public
 * key need only be there and readable by the programs.
 */
static void
check_secret(struct ck *k, const char *key, const char *path, enum reader r)
{
	int programs = r != READ_OWNER;
	char own[160];
	struct stat st;
	int e;

	if (stat(path, &st) != 0) {
		say(k, FAIL, "keys", "%s (%s): %s: make it, or fix %s", path,
		    key, strerror(errno), key);
		return;
	}
	e = who_access(&k->who, path, R_OK);
	if ((st.st_mode & 0007) && r != READ_PUBLIC)
		say(k, FAIL, "keys",
		    "%s (%s) is readable by everyone (mode %04o): chmod %04o "
		    "%s",
		    path, key, (unsigned)(st.st_mode & 07777),
		    (unsigned)(st.st_mode & 0770), path);
	else if (programs && e != 0)
		say(k, FAIL, "keys",
		    "%s (%s) is not readable by %s: %s: chgrp %s %s; chmod "
		    "0640 %s",
		    path, key, k->who.name, strerror(e), k->who.group, path,
		    path);
	else if (!programs && !k->who.self && e == 0)
		say(k, FAIL, "keys",
		    "%s (%s) is readable by %s, but the owner's URL is for "
		    "agoractl alone: chown root:root %s; chmod 0600 %s",
		    path, key, k->who.name, path, path);
	else if ((st.st_mode & 0070) && st.st_gid != 0 &&
	    st.st_gid != k->who.gid)
		say(k, WARN, "keys",
		    "%s (%s) is readable by group %s: chgrp %s %s", path, key,
		    owner(&st, own, sizeof(own)), k->who.group, path);
	else
		say(k, OK, "keys", "%s (%s): mode %04o %s", path, key,
		    (unsigned)(st.st_mode & 07777),
		    owner(&st, own, sizeof(own)));
}

/* The JWT key files jwt_alg uses; the programs read them all. */
static void
check_jwt_files(struct ck *k)
{
	const struct agora_config *c = &k->cfg;

	if (strcmp(c->jwt_alg, "HS256") == 0) {
		check_secret(
		    k, "jwt_secret_file", c->jwt_secret_file, READ_PROGRAMS);
		return;
	}
	if (*c->jwt_private_key_file != '\0')
		check_secret(k, "jwt_private_key_file", c->jwt_private_key_file,
		    READ_PROGRAMS);
	if (*c->jwt_public_key_file == '\0')
		say(k, FAIL, "keys",
		    "jwt_alg %s needs jwt_public_key_file (agora.conf(5))",
		    c->jwt_alg);
	else
		check_secret(k, "jwt_public_key_file", c->jwt_public_key_file,
		    READ_PUBLIC);
}

/*
 * Every file a secret comes from, then the configuration again with the
 * secrets read: the rest needs them.  -1 when they cannot be read.
 */
static int
check_secrets(struct ck *k)
{
	char key[96], err[512];
	size_t i;

	check_config_file(k);
	check_jwt_files(k);
	for (i = 0; i < AGORA_SECRET__MAX; i++) {
		if (*k->cfg.secret_file[i] == '\0')
			continue;
		snprintf(key, sizeof(key), "%s_file",
		    agora_config_secret_name((enum agora_secret)i));
		check_secret(k, key, k->cfg.secret_file[i],
		    i == AGORA_SECRET_DATABASE_ADMIN_URL ? READ_OWNER
		                                         : READ_PROGRAMS);
	}
	for (i = 0; i < k->cfg.nproviders; i++) {
		snprintf(key, sizeof(key), "provider %s client_secret_file",
		    k->cfg.providers[i]->name);
		check_secret(k, key, k->cfg.providers[i]->client_secret_file,
		    READ_PROGRAMS);
	}
	agora_config_free(&k->cfg);
	/* The auth program's secrets too: each provider's must read. */
	if (agora_config_load_for(&k->cfg,
	        AGORA_NEEDS_ALL | AGORA_NEEDS_PROVIDERS, err,
	        sizeof(err)) != 0) {
		say(k, FAIL, "keys", "%s", err);
		return -1;
	}
	return 0;
}

/* --- 3. database ---------------------------------------------------- */

/* A connection as who ("the programs (database_url)"), or NULL (said). */
static PGconn *
db_connect(struct ck *k, const char *url, const char *who)
{
	/* A URL without its own connect_timeout would wait for a host that
	 * never answers; the URL's own, expanded after, wins. */
	const char *keys[] = { "connect_timeout", "dbname", NULL };
	const char *vals[] = { "10", url, NULL };
	PGconn *c;

	c = PQconnectdbParams(keys, vals, 1);
	if (PQstatus(c) != CONNECTION_OK) {
		say(k, FAIL, "database",
		    "cannot connect as %s: %s (check the URL and that "
		    "PostgreSQL runs)",
		    who, PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	say(k, OK, "database", "connected as %s: role %s, database %s", who,
	    PQuser(c), PQdb(c));
	return c;
}

/* The one value of a query with params, into out; -1 (said) on error. */
static int
query_value(struct ck *k, PGconn *c, const char *sql, int n,
    const char *const *vals, char *out, size_t len)
{
	PGresult *res;
	int rc = -1;

	res = PQexecParams(c, sql, n, NULL, vals, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		snprintf(out, len, "%s", PQgetvalue(res, 0, 0));
		rc = 0;
	} else {
		say(k, FAIL, "database", "%s", PQerrorMessage(c));
	}
	PQclear(res);
	return rc;
}

/* The states of plan's migrations in c: how many pending and changed. */
static int
plan_states(PGconn *c, const struct plan *p, size_t *pending, size_t *changed,
    const char **first)
{
	size_t i;

	*pending = *changed = 0;
	*first = NULL;
	for (i = 0; i < p->n; i++) {
		switch (ctl_migration_state(c, &p->m[i])) {
		case CTL_MIG_ERROR:
			return -1;
		case CTL_MIG_PENDING:
			if ((*pending)++ == 0)
				*first = p->m[i].name;
			break;
		case CTL_MIG_CHANGED:
			if ((*changed)++ == 0)
				*first = p->m[i].name;
			break;
		case CTL_MIG_APPLIED:
			break;
		}
	}
	return 0;
}

/* Every migration of the release is applied, and none changed since. */
static void
check_migrations(struct ck *k, PGconn *c)
{
	static struct plan plan;
	size_t pending, changed;
	const char *first;
	char have[8];

	if (ctl_plan_load(&plan, k->sqldir) != 0) {
		say(k, FAIL, "migrations", "cannot read %s (said above)",
		    k->sqldir);
	} else if (query_value(k, c,
	               "SELECT to_regclass('schema_migrations') IS NOT NULL", 0,
	               NULL, have, sizeof(have)) != 0) {
		/* said */
	} else if (strcmp(have, "t") != 0) {
		say(k, FAIL, "migrations",
		    "none applied to database %s: run agoractl migrate",
		    PQdb(c));
	} else if (plan_states(c, &plan, &pending, &changed, &first) != 0) {
		say(k, FAIL, "migrations", "%s", PQerrorMessage(c));
	} else if (changed > 0) {
		say(k, FAIL, "migrations",
		    "%s changed after it was applied: put back the file of "
		    "the release that applied it",
		    first);
	} else if (pending > 0) {
		say(k, FAIL, "migrations",
		    "%zu of %zu pending, from %s: run agoractl migrate",
		    pending, plan.n, first);
	} else {
		say(k, OK, "migrations", "all %zu of %s applied", plan.n,
		    k->sqldir);
		k->schema = 1;
	}
	ctl_plan_free(&plan);
}

/* Every functions file is applied as it is now (sql/functions). */
static void
check_functions(struct ck *k, PGconn *c)
{
	static struct plan f;
	size_t i, stale = 0;
	const char *first = NULL;
	int cur = 0;

	if (ctl_functions_load(&f, k->sqldir) != 0) {
		say(k, FAIL, "functions",
		    "cannot read %s/functions (said above)", k->sqldir);
		return;
	}
	for (i = 0; i < f.n && (cur = ctl_functions_current(c, &f.m[i])) >= 0;
	     i++)
		if (!cur && stale++ == 0)
			first = f.m[i].name;
	if (cur < 0)
		say(k, FAIL, "functions", "%s", PQerrorMessage(c));
	else if (f.n == 0)
		say(k, FAIL, "functions", "no functions files in %s/functions",
		    k->sqldir);
	else if (stale > 0)
		say(k, FAIL, "functions",
		    "%zu of %zu files not applied as they are, from %s: run "
		    "agoractl migrate",
		    stale, f.n, first);
	else
		say(k, OK, "functions",
		    "all %zu files of %s/functions applied (this release's "
		    "in schema " AGORA_FUNCTIONS_SCHEMA ")",
		    f.n, k->sqldir);
	ctl_plan_free(&f);
}

/*
 * Of the privileges of list (comma-separated), those the connection's
 * role holds (held "t") or lacks ("f") on table, into out.
 */
static int
privileges(struct ck *k, const char *table, const char *list, const char *held,
    char *out, size_t len)
{
	const char *vals[3] = { table, list, held };

	return query_value(k, k->app,
	    "SELECT COALESCE(string_agg(p, ', '), '') "
	    "FROM unnest(string_to_array($2, ',')) p "
	    "WHERE has_table_privilege($1::text, p) = $3::bool",
	    3, vals, out, len);
}

/*
 * Events are stamped by the database (0022): a role that may write
 * occurred_at could post an event to a day whose counted sessions are
 * gone, and count a session twice.  1 (said) when it may, or -1 on error.
 */
static int
check_dated_events(struct ck *k, const char *role)
{
	char v[8];

	if (query_value(k, k->app,
	        "SELECT has_column_privilege('analytics_events', "
	        "'occurred_at', 'INSERT')::int::text || "
	        "has_column_privilege('analytics_events', 'type', "
	        "'INSERT')::int",
	        0, NULL, v, sizeof(v)) != 0)
		return 1;
	if (strcmp(v, "01") == 0)
		return 0;
	if (v[0] == '1')
		say(k, FAIL, "rights",
		    "%s may set occurred_at on analytics_events, which sql/ "
		    "revokes: REVOKE INSERT ON analytics_events FROM %s, then "
		    "GRANT INSERT (type, session_id, product_id, properties) "
		    "ON analytics_events TO %s",
		    role, role, role);
	else
		say(k, FAIL, "rights",
		    "%s may not post analytics events: run agoractl migrate",
		    role);
	return 1;
}

/* The programs' role has on each table what sql/ grants, no more. */
static void
check_rights(struct ck *k)
{
	const char *role = PQuser(k->app);
	char miss[128], extra[128];
	size_t i;
	int bad = 0;

	for (i = 0; i < AGORA_NELEM(grants); i++) {
		if (privileges(k, grants[i].table, grants[i].need, "f", miss,
		        sizeof(miss)) != 0 ||
		    privileges(k, grants[i].table, grants[i].deny, "t", extra,
		        sizeof(extra)) != 0) {
			bad++;
			continue;
		}
		if (*miss != '\0')
			say(k, FAIL, "rights",
			    "%s may not %s on %s: run agoractl migrate, or "
			    "GRANT %s ON %s TO %s",
			    role, miss, grants[i].table, miss, grants[i].table,
			    role);
		if (*extra != '\0')
			say(k, FAIL, "rights",
			    "%s may %s on %s, which sql/ revokes: REVOKE %s "
			    "ON %s FROM %s",
			    role, extra, grants[i].table, extra,
			    grants[i].table, role);
		bad += *miss != '\0' || *extra != '\0';
	}
	bad += check_dated_events(k, role);
	if (bad == 0)
		say(k, OK, "rights",
		    "%s has what the programs need on %zu tables, and "
		    "nothing sql/ revokes",
		    role, AGORA_NELEM(grants));
}

/* The programs' role owns nothing and may not make roles or bypass. */
static void
check_role(struct ck *k)
{
	const char *role = PQuser(k->app);
	char v[64];

	if (query_value(k, k->app,
	        "SELECT r.rolsuper::int || ' ' || r.rolcreaterole::int || ' '"
	        " || (SELECT count(*) FROM pg_class c WHERE c.relowner = "
	        "r.oid AND c.relkind IN ('r', 'p', 'v', 'm', 'S') AND "
	        "c.relnamespace = 'public'::regnamespace) "
	        "FROM pg_roles r WHERE r.rolname = current_user",
	        0, NULL, v, sizeof(v)) != 0)
		return;
	if (strncmp(v, "1 ", 2) == 0)
		say(k, FAIL, "rights",
		    "%s is a superuser: make database_url another role "
		    "(README, \"The database\")",
		    role);
	else if (strncmp(v + 2, "1 ", 2) == 0)
		say(k, FAIL, "rights",
		    "%s may create roles: ALTER ROLE %s NOCREATEROLE", role,
		    role);
	else if (strcmp(v + 4, "0") != 0)
		say(k, FAIL, "rights",
		    "%s owns %s tables, so no REVOKE binds it: make "
		    "database_url the programs' role, not the owner",
		    role, v + 4);
	else
		say(k, OK, "rights",
		    "%s owns no table, is no superuser, makes no role", role);
}

/* max_connections leaves room for the processes of the defaults. */
static void
check_connections(struct ck *k, PGconn *c)
{
	char v[32];
	long long max, usable;

	if (query_value(k, c,
	        "SELECT current_setting('max_connections')::int - "
	        "current_setting('superuser_reserved_connections')::int",
	        0, NULL, v, sizeof(v)) != 0 ||
	    agora_parse_ll(v, -1000000, 1000000, &usable) != 0 ||
	    query_value(k, c, "SELECT current_setting('max_connections')", 0,
	        NULL, v, sizeof(v)) != 0 ||
	    agora_parse_ll(v, 0, 1000000, &max) != 0)
		return;
	say(k, usable >= CONN_NEEDED ? OK : FAIL, "database",
	    "max_connections %lld, %lld for agora; the defaults need %d: %d "
	    "programs x %d processes, tracking %d, %d workers, agoractl%s",
	    max, usable, CONN_NEEDED, CONN_PROGRAMS, CONN_PER_PROGRAM,
	    CONN_TRACKING, CONN_WORKERS,
	    usable >= CONN_NEEDED
	        ? ""
	        : ": ALTER SYSTEM SET max_connections = 200, and restart "
	          "PostgreSQL");
}

static void
check_database(struct ck *k)
{
	PGconn *c;

	k->app =
	    db_connect(k, k->cfg.database_url, "the programs (database_url)");
	if (*k->cfg.database_admin_url == '\0')
		say(k, WARN, "database",
		    "database_admin_url is empty: agoractl migrates as the "
		    "programs' role, which then owns the tables");
	else
		k->admin = db_connect(k, k->cfg.database_admin_url,
		    "the owner (database_admin_url)");
	/* The migrations are the owner's to read; without an owner's URL,
	 * agoractl's role is the programs'. */
	c = *k->cfg.database_admin_url != '\0' ? k->admin : k->app;
	if (c != NULL) {
		check_migrations(k, c);
		if (k->schema)
			check_functions(k, c);
		check_connections(k, c);
	}
	/* Without the release's schema, each table would fail on its own:
	 * the migrations line says what to do. */
	if (k->app != NULL && k->schema)
		check_rights(k);
	if (k->app != NULL)
		check_role(k);
}

/* --- 4. memcached --------------------------------------------------- */

static void
mc_said(void *arg, const char *server, const char *why)
{
	struct ck *k = arg;

	if (why == NULL)
		say(k, OK, "memcached", "%s answers", server);
	else
		say(k, FAIL, "memcached",
		    "%s does not answer: %s (is memcached running there? "
		    "see memcached_servers)",
		    server, why);
}

static void
check_memcached(struct ck *k)
{
	const char *s = k->cfg.memcached_servers;

	if (strspn(s, " ,") == strlen(s))
		say(k, WARN, "memcached",
		    "memcached_servers is empty: no cache, and no rate limit");
	else if (agora_cache_check(s, mc_said, k) < 0)
		say(k, FAIL, "memcached",
		    "memcached_servers has an entry too long to be a server");
}

/* --- 5. storage ----------------------------------------------------- */

/* The directory dir (of key) is there and writable by the programs. */
static void
check_dir(struct ck *k, const char *part, const char *key, const char *dir)
{
	char own[160];
	struct stat st;
	int e;

	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
		say(k, FAIL, part,
		    "%s (%s) is not a directory: mkdir -p %s; chown %s %s", dir,
		    key, dir, k->who.name, dir);
	else if ((e = who_access(&k->who, dir, W_OK | X_OK)) != 0)
		say(k, FAIL, part,
		    "%s (%s) is not writable by %s: %s: chown %s %s", dir, key,
		    k->who.name, strerror(e), k->who.name, dir);
	else
		say(k, OK, part, "%s (%s) is writable by %s (%s %04o)%s", dir,
		    key, k->who.name, owner(&st, own, sizeof(own)),
		    (unsigned)(st.st_mode & 07777),
		    k->who.self ? "; the worker runs as " AGORA_RUN_USER
		                  " (cron file)"
		                : ", as whom the worker runs");
}

static void
check_storage(struct ck *k)
{
	const struct agora_config *c = &k->cfg;

	if (strcmp(c->storage, "s3") != 0)
		check_dir(k, "storage", "storage_dir", c->storage_dir);
	else if (strcmp(agora_storage_check(c), "ok") == 0)
		say(k, OK, "storage", "bucket %s at %s answers", c->s3_bucket,
		    c->s3_endpoint);
	else
		say(k, FAIL, "storage",
		    "bucket %s at %s does not answer a HEAD: check "
		    "s3_endpoint, s3_bucket and the keys",
		    c->s3_bucket, c->s3_endpoint);
	check_dir(k, "storage", "the workers' log", LOG_DIR);
	check_dir(k, "storage", "run_dir", c->run_dir);
}

/* --- 6. the worker, dry ----------------------------------------------- */

/* One outbox topic's counts: due now, pending, dead, oldest due age. */
static void
outbox_topic(struct ck *k, PGresult *res, int i)
{
	const char *topic = PQgetvalue(res, i, 0), *dead;
	long long wait = 0;

	dead = PQgetvalue(res, i, 3);
	agora_parse_ll(PQgetvalue(res, i, 4), 0, INT64_MAX, &wait);
	say(k, strcmp(dead, "0") != 0 || wait > OVERDUE_SECONDS ? WARN : OK,
	    "outbox",
	    "%s: %s due now, %s pending, %s dead, oldest due waits %lld s%s",
	    topic, PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), dead, wait,
	    strcmp(dead, "0") != 0 ? ": agoractl outbox list --status dead"
	        : wait > OVERDUE_SECONDS ? ": is the worker running (cron)?"
	                                 : "");
}

/* What the worker would claim now, per topic, as the programs' role. */
static void
check_outbox(struct ck *k)
{
	PGresult *res;
	int i;

	res = PQexec(k->app,
	    "SELECT topic, "
	    "count(*) FILTER (WHERE state <> 'dead' AND next_attempt_at <= "
	    "now()), count(*) FILTER (WHERE state = 'pending'), "
	    "count(*) FILTER (WHERE state = 'dead'), COALESCE(round(extract("
	    "epoch FROM now() - min(next_attempt_at) FILTER (WHERE state = "
	    "'pending' AND next_attempt_at <= now())))::bigint, 0) "
	    "FROM outbox GROUP BY topic ORDER BY topic");
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		say(k, FAIL, "outbox", "%s", PQerrorMessage(k->app));
	else if (PQntuples(res) == 0)
		say(k, OK, "outbox", "empty: nothing for the worker to claim");
	for (i = 0;
	     PQresultStatus(res) == PGRES_TUPLES_OK && i < PQntuples(res); i++)
		outbox_topic(k, res, i);
	PQclear(res);
}

/* The payment gateway the worker would call: set, with its key. */
static void
check_payments(struct ck *k)
{
	const struct agora_config *c = &k->cfg;

	if (strcmp(c->payment_provider, "http") != 0)
		say(k, OK, "payments", "provider %s: no gateway to call",
		    c->payment_provider);
	else if (*c->payment_gateway_key == '\0')
		say(k, FAIL, "payments",
		    "provider http at %s, but payment_gateway_key is empty: "
		    "set payment_gateway_key_file",
		    c->payment_gateway_url);
	else
		say(k, *c->webhook_secret ? OK : WARN, "payments",
		    "provider http at %s, key set%s", c->payment_gateway_url,
		    *c->webhook_secret ? ""
		                       : "; webhook_secret is empty, so the "
		                         "gateway's webhooks are refused");
}

/* The mail server and SMS gateway of the channels turned on. */
static void
check_notify(struct ck *k)
{
	const struct agora_config *c = &k->cfg;
	int email = strstr(c->notify_channels, "email") != NULL;
	int sms = strstr(c->notify_channels, "sms") != NULL;

	if (email && strncmp(c->smtp_url, "smtp://", 7) != 0 &&
	    strncmp(c->smtp_url, "smtps://", 8) != 0)
		say(k, FAIL, "notify",
		    "channel email needs smtp_url smtp://host or smtps://host");
	else if (email && *c->smtp_from == '\0')
		say(k, FAIL, "notify", "channel email needs smtp_from");
	else if (sms && *c->sms_token == '\0')
		say(k, FAIL, "notify",
		    "channel sms needs sms_token (sms_token_file)");
	else
		/* smtp_url may carry a password: it is not printed. */
		say(k, OK, "notify", "channels %s%s%s (nothing sent)",
		    *c->notify_channels ? c->notify_channels : "none",
		    email ? "; mail from " : "", email ? c->smtp_from : "");
}

/* --- the command ----------------------------------------------------- */

static void
check_all(struct ck *k)
{
	if (k->who.missing)
		say(k, FAIL, "keys",
		    "user %s does not exist: the files are checked as root "
		    "(make the user, or configure --with-user)",
		    AGORA_RUN_USER);
	if (check_config(k) != 0 || check_secrets(k) != 0)
		return;
	check_database(k);
	check_memcached(k);
	check_storage(k);
	if (k->app != NULL && k->schema)
		check_outbox(k);
	check_payments(k);
	check_notify(k);
}

/* agoractl check [--dir DIR]: 0 when nothing failed, else 1. */
int
ctl_check(int argc, char **argv)
{
	struct ck k;

	memset(&k, 0, sizeof(k));
	k.sqldir = CTL_SQLDIR;
	if (argc == 2 && strcmp(argv[0], "--dir") == 0)
		k.sqldir = argv[1];
	else if (argc != 0)
		return ctl_usage();
	who_find(&k.who);
	check_all(&k);
	PQfinish(k.app);
	PQfinish(k.admin);
	agora_config_free(&k.cfg);
	printf("%d ok, %d warnings, %d failed\n", k.count[OK], k.count[WARN],
	    k.count[FAIL]);
	return k.count[FAIL] > 0 ? 1 : 0;
}
