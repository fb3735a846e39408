/*
 * db.c: one PostgreSQL connection per process.
 *
 * The connection is made before the accept loop and its statements are
 * prepared once.  When the server goes away (a restart, a failover), the
 * process finds out before its next request (agora_db_check: the server's
 * goodbye or the end of the stream waits in the idle socket) and connects
 * again for it; a break found only by a statement resets the connection,
 * runs a read again, and retries a transaction whose COMMIT was never
 * sent.  While the server stays down, requests answer 503 with
 * Retry-After, and a process tries to connect at most every RECONNECT_MS:
 * a request that comes sooner waits out the rest of that time and tries,
 * so that the first request after the server is back never fails for an
 * old attempt (doc/scale-out.md, "A database restart").
 * SQLSTATEs become agora_err through one table.  Besides a program's own
 * statements, every connection prepares the library's (internal.h), but
 * agora_db_bare's (agoractl's).  Every session starts with the release's
 * search_path, and carries the id of the process's trace before a write
 * (trace_sync).
 */
#include "config.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agora.h"
#include "internal.h"

#define TX_ATTEMPTS 4
#define RECONNECT_MS 200
#define LAG_CHECK_MS 250
#define REPLICA_RETRY_MS 2000
#define TURN_LOG_MS 60000
/* Marks of the primary's position kept: LAG_CHECK_MS apart, they span
 * the longest useful lag bound (8 s) and more. */
#define LAG_MARKS 40

struct agora_db {
	PGconn *conn;
	char *url;
	const struct agora_stmt *stmts;
	size_t nstmts;
	int ready; /* connected and statements prepared */
	int in_tx; /* inside agora_db_tx: never retry a single statement */
	int bare; /* agora_db_bare: not even the library's statements */
	char trace_set[33]; /* the session's agora.trace_id (trace_sync) */
	long long timeout_ms; /* statement_timeout of each connection */
	struct timespec last_try;
	long long last_try_ms; /* how long that attempt took */
	unsigned long generation; /* counts connections made */
	/* A replica (agora_db_replica): it prepares only the statements it
	 * may answer, never waits to connect, and is read only while its lag,
	 * asked at most every LAG_CHECK_MS, is within max_lag_ms. */
	struct agora_db *replica;
	int is_replica;
	long long max_lag_ms;
	struct timespec lag_checked;
	int fresh, logged_fresh;
	struct timespec turn_logged; /* replica_turn's last line */
	struct lag_mark {
		unsigned long long lsn; /* where the primary's WAL ended */
		struct timespec at; /* then */
	} marks[LAG_MARKS];
	size_t nmarks;
};

struct sqlstate_map {
	const char *state; /* a full code, or a two-character class */
	enum agora_err err;
};

/* PostgREST-style: the one place where SQLSTATEs get their meaning. */
static const struct sqlstate_map sqlstates[] = {
	{ "23505", AGORA_E_CONFLICT }, /* unique_violation */
	{ "23P01", AGORA_E_CONFLICT }, /* exclusion_violation */
	{ "23503", AGORA_E_VALIDATION }, /* foreign_key_violation */
	{ "23502", AGORA_E_VALIDATION }, /* not_null_violation */
	{ "23514", AGORA_E_VALIDATION }, /* check_violation */
	{ "22P02", AGORA_E_BAD_REQUEST }, /* invalid_text_representation */
	{ "22003", AGORA_E_BAD_REQUEST }, /* numeric_value_out_of_range */
	{ "22001", AGORA_E_VALIDATION }, /* string_data_right_truncation */
	{ "22P05", AGORA_E_VALIDATION }, /* untranslatable (\u0000 in jsonb) */
	{ "40001", AGORA_E_RETRY }, /* serialization_failure */
	{ "40P01", AGORA_E_RETRY }, /* deadlock_detected */
	{ "55P03", AGORA_E_CONFLICT }, /* lock_not_available */
	{ "57014", AGORA_E_UNAVAILABLE }, /* query_canceled (timeout) */
	{ "57P01", AGORA_E_CONNLOST }, /* admin_shutdown */
	{ "57P02", AGORA_E_CONNLOST }, /* crash_shutdown */
	{ "57P03", AGORA_E_CONNLOST }, /* cannot_connect_now */
	{ "25006", AGORA_E_UNAVAILABLE }, /* read_only_sql_transaction */
	{ "08", AGORA_E_CONNLOST }, /* connection_exception */
	{ "22", AGORA_E_BAD_REQUEST }, /* other data exceptions */
	{ "53", AGORA_E_UNAVAILABLE }, /* insufficient_resources */
};

enum agora_err
agora_db_sqlstate_err(const char *state)
{
	size_t i, n;

	if (state == NULL)
		return AGORA_E_CONNLOST;
	for (i = 0; i < sizeof(sqlstates) / sizeof(sqlstates[0]); i++) {
		n = strlen(sqlstates[i].state);
		if (strncmp(state, sqlstates[i].state, n) == 0)
			return sqlstates[i].err;
	}
	return AGORA_E_INTERNAL;
}

struct agora_db *
agora_db_new(const char *url, const struct agora_stmt *stmts, size_t nstmts)
{
	struct agora_db *db;

	db = calloc(1, sizeof(*db));
	if (db == NULL)
		return NULL;
	db->url = strdup(url);
	if (db->url == NULL) {
		free(db);
		return NULL;
	}
	db->stmts = stmts;
	db->nstmts = nstmts;
	return db;
}

/*
 * A connection with the programs' session (lib/db.c's session_setup) and
 * no prepared statement, not even the library's: for agoractl, whose
 * migrate runs before the functions those statements call exist.
 */
struct agora_db *
agora_db_bare(const char *url)
{
	struct agora_db *db = agora_db_new(url, NULL, 0);

	if (db != NULL)
		db->bare = 1;
	return db;
}

void
agora_db_free(struct agora_db *db)
{
	if (db == NULL)
		return;
	if (db->conn != NULL)
		PQfinish(db->conn);
	agora_db_free(db->replica);
	free(db->url);
	free(db);
}

/*
 * Give db a replica at url for the statements flagged AGORA_STMT_REPLICA
 * or _ANON, read while it lags at most max_lag_ms.  Connects when first
 * needed.  0, or -1 without memory.
 */
int
agora_db_replica(struct agora_db *db, const char *url, long long max_lag_ms)
{
	struct agora_db *rep = agora_db_new(url, db->stmts, db->nstmts);

	if (rep == NULL)
		return -1;
	rep->is_replica = 1;
	rep->max_lag_ms = max_lag_ms;
	rep->timeout_ms = db->timeout_ms;
	db->replica = rep;
	return 0;
}

PGconn *
agora_db_conn(struct agora_db *db)
{
	return db->ready ? db->conn : NULL;
}

/*
 * Changes whenever the connection is made again, which drops its session
 * state (LISTEN, SET): a caller that relies on it compares before and after.
 */
unsigned long
agora_db_generation(const struct agora_db *db)
{
	return db->generation;
}

/* The i-th statement: the program's, then the library's. */
static const struct agora_stmt *
stmt_at(const struct agora_db *db, size_t i)
{
	if (i < db->nstmts)
		return &db->stmts[i];
	if (!db->bare && i - db->nstmts < agora_auth_nstmts)
		return &agora_auth_stmts[i - db->nstmts];
	return NULL;
}

static const struct agora_stmt *
stmt_find(const struct agora_db *db, const char *name)
{
	const struct agora_stmt *s;
	size_t i;

	for (i = 0; (s = stmt_at(db, i)) != NULL; i++)
		if (strcmp(s->name, name) == 0)
			return s;
	return NULL;
}

/* Whether a replica may answer s, for some request. */
static int
on_replica(const struct agora_stmt *s)
{
	return (s->flags & AGORA_STMT_READ) &&
	    (s->flags & (AGORA_STMT_REPLICA | AGORA_STMT_REPLICA_ANON));
}

/* What the request waited for PostgreSQL: Server-Timing and the metrics. */
static void
waited(struct agora_req *r, const struct timespec *t0, int statements)
{
	long long us = agora_us_since(t0);

	r->db_us += us;
	agora_observe_db(us, statements);
}

static enum agora_err
prepare_all(struct agora_db *db)
{
	const struct agora_stmt *s;
	PGresult *res;
	size_t i;
	enum agora_err rc = AGORA_OK;

	for (i = 0; (s = stmt_at(db, i)) != NULL && rc == AGORA_OK; i++) {
		if (s->flags & AGORA_STMT_CUSTOM_PLAN)
			continue;
		if (db->is_replica && !on_replica(s))
			continue;
		res = PQprepare(db->conn, s->name, s->sql, 0, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			agora_log("error", "prepare %s: %s", s->name,
			    PQerrorMessage(db->conn));
			rc = PQstatus(db->conn) == CONNECTION_OK
			    ? AGORA_E_INTERNAL
			    : AGORA_E_UNAVAILABLE;
		}
		PQclear(res);
	}
	return rc;
}

/*
 * Bound every statement of this connection (0: no bound).  Set on each new
 * connection, since a reset starts a new session.
 */
/* Whether the connection is up and its statements prepared. */
int
agora_db_ready(const struct agora_db *db)
{
	return db != NULL && db->ready && PQstatus(db->conn) == CONNECTION_OK;
}

void
agora_db_timeout(struct agora_db *db, long long ms)
{
	db->timeout_ms = ms;
	if (db->replica != NULL)
		db->replica->timeout_ms = ms;
}

static enum agora_err
session_setup(struct agora_db *db)
{
	char sql[160];
	PGresult *res;
	enum agora_err rc = AGORA_OK;

	/* The functions this build calls are in its release's schema, before
	 * the tables' own in public (doc/architecture.md, "The database"):
	 * set before any statement is prepared, which resolves the
	 * functions it names along it. */
	/* No JIT: a statement whose estimate is far off (the outbox's
	 * skip-scans, on a queue whose statistics lag its churn) passes
	 * jit_above_cost and spends 250 ms compiling what runs in 3 ms
	 * (doc/metrics.md); no statement here runs long enough to gain. */
	snprintf(sql, sizeof(sql),
	    "SET statement_timeout = %lld; SET jit = off; "
	    "SET search_path = " AGORA_FUNCTIONS_SCHEMA ", public",
	    db->timeout_ms);
	res = PQexec(db->conn, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		agora_log("error", "%s: %s", sql, PQerrorMessage(db->conn));
		rc = AGORA_E_UNAVAILABLE;
	}
	PQclear(res);
	return rc;
}

static void
quiet_notice(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

static void
sleep_ms(long long ms)
{
	struct timespec ts;

	if (ms <= 0)
		return;
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	nanosleep(&ts, NULL);
}

/* The connection broke: the next statement connects again at once. */
static void
mark_lost(struct agora_db *db)
{
	db->ready = 0;
	db->last_try.tv_sec = 0;
}

/*
 * Find out, between requests, whether the idle connection broke.  An idle
 * session gets nothing from the server but a late notification; a server
 * that stopped, crashed or was failed away from leaves its goodbye, the
 * end of the stream, or both in the socket.  Reading them now makes the
 * coming request connect again first, instead of spending a statement on
 * a dead session and failing a write that cannot be retried.  One poll()
 * that never waits.
 */
void
agora_db_check(struct agora_db *db)
{
	struct pollfd p = { 0 };
	PGnotify *n;

	if (db == NULL)
		return;
	agora_db_check(db->replica);
	if (!db->ready)
		return;
	p.fd = PQsocket(db->conn);
	p.events = POLLIN;
	if (p.fd < 0 || poll(&p, 1, 0) <= 0)
		return;
	if (PQconsumeInput(db->conn) == 0 ||
	    PQstatus(db->conn) != CONNECTION_OK) {
		mark_lost(db);
		return;
	}
	while ((n = PQnotifies(db->conn)) != NULL)
		PQfreemem(n);
	/* A goodbye read, with the end of the stream behind it. */
	p.revents = 0;
	if (poll(&p, 1, 0) > 0)
		mark_lost(db);
}

/*
 * A connection to url with TCP keepalives and a bound on unacknowledged
 * data, which url's own settings override.  A database host that vanishes
 * without a word (power lost, cut off) sends no FIN for agora_db_check to
 * read: the keepalives find an idle connection dead within 16 s, and a
 * statement sent into the void fails after 5 s instead of TCP's 15
 * minutes (doc/scale-out.md, "A database restart").
 */
static PGconn *
connect_new(const char *url)
{
	static const char *const keys[] = { "keepalives", "keepalives_idle",
		"keepalives_interval", "keepalives_count", "tcp_user_timeout",
		"dbname", NULL };
	const char *vals[] = { "1", "10", "2", "3", "5000", url, NULL };

	return PQconnectdbParams(keys, vals, 1);
}

/*
 * Make sure the connection is usable: connect or reset it and prepare the
 * statements.  Returns AGORA_E_UNAVAILABLE while the server is down.
 */
enum agora_err
agora_db_connect(struct agora_db *db)
{
	struct timespec t0;
	enum agora_err rc;

	if (db->ready && PQstatus(db->conn) == CONNECTION_OK)
		return AGORA_OK;
	db->ready = 0;
	/* A replica never holds a request up: the primary answers.  Its
	 * host may drop packets rather than refuse, and then an attempt
	 * costs the request connect_timeout: try it seldom. */
	if (db->is_replica && db->last_try.tv_sec != 0 &&
	    agora_ms_since(&db->last_try) < REPLICA_RETRY_MS)
		return AGORA_E_UNAVAILABLE;
	/* A server that refused the last attempt may be back in a moment:
	 * wait out the window and try.  One that let it time out (a host
	 * gone without a word) would cost every request its connect_timeout:
	 * answer 503 at once until the window has passed. */
	if (db->last_try.tv_sec != 0 &&
	    agora_ms_since(&db->last_try) < RECONNECT_MS) {
		if (db->last_try_ms >= RECONNECT_MS)
			return AGORA_E_UNAVAILABLE;
		sleep_ms(RECONNECT_MS - agora_ms_since(&db->last_try));
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (db->conn == NULL) {
		db->conn = connect_new(db->url);
		/* NOTICEs ("only stop words") would reach the log raw. */
		if (db->conn != NULL)
			PQsetNoticeProcessor(db->conn, quiet_notice, NULL);
	} else {
		PQreset(db->conn);
	}
	/* The window runs from the attempt's end, and says how long it took. */
	db->last_try_ms = agora_ms_since(&t0);
	clock_gettime(CLOCK_MONOTONIC, &db->last_try);
	if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK) {
		agora_log("error", "database: %s",
		    db->conn != NULL ? PQerrorMessage(db->conn) : "no memory");
		return AGORA_E_UNAVAILABLE;
	}
	db->trace_set[0] = '\0'; /* a new session has none */
	rc = session_setup(db);
	if (rc == AGORA_OK)
		rc = prepare_all(db);
	if (rc == AGORA_OK) {
		db->ready = 1;
		db->last_try.tv_sec = 0;
		db->generation++;
	}
	return rc;
}

static void
clear_result(void *p)
{
	PQclear(p);
}

/* Record and map a failed result; logs the server's message, not clients. */
static enum agora_err
result_err(
    struct agora_req *r, struct agora_db *db, PGresult *res, const char *what)
{
	const char *state, *con;
	enum agora_err e;

	state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	con = res != NULL ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME)
	                  : NULL;
	e = agora_db_sqlstate_err(state);
	/* libpq may keep a connection OK whose write met a closed socket
	 * (EPIPE): without a reset, a retry would use it again. */
	if (PQstatus(db->conn) != CONNECTION_OK)
		e = AGORA_E_CONNLOST;
	if (e == AGORA_E_CONNLOST)
		mark_lost(db);
	r->sqlstate = state != NULL ? agora_strdup(r, state) : NULL;
	r->constraint = con != NULL ? agora_strdup(r, con) : NULL;
	if (e != AGORA_E_CONFLICT && e != AGORA_E_VALIDATION)
		agora_log("error", "%s: %s %s", what, state ? state : "-",
		    PQerrorMessage(db->conn));
	return e;
}

/* Only a statement that reads is safe to run again after its connection
 * broke: one that writes may have committed before the break. */
static int
is_read(const struct agora_db *db, const char *stmt)
{
	const struct agora_stmt *s = stmt_find(db, stmt);

	return s != NULL && (s->flags & AGORA_STMT_READ) != 0;
}

/*
 * Give the session the id of the process's trace (trace.c), or none,
 * when it has another: the outbox's trace_id column takes it as its
 * default (sql/0018), so every row a request or a job writes is its
 * trace's.  Session-wide, set before a transaction begins (a rollback
 * would undo it inside one), and only before writes: reads never pay.
 */
static enum agora_err
trace_sync(struct agora_req *r)
{
	struct agora_db *db = r->ctx->db;
	const char *vals[1] = { agora_trace_id() };
	struct timespec t0;
	PGresult *res;
	enum agora_err rc = AGORA_OK;

	if (vals[0] == NULL)
		vals[0] = "";
	if (strcmp(db->trace_set, vals[0]) == 0)
		return AGORA_OK;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	res = PQexecParams(db->conn,
	    "SELECT set_config('agora.trace_id', $1, false)", 1, NULL, vals,
	    NULL, NULL, 0);
	waited(r, &t0, 1);
	if (PQresultStatus(res) == PGRES_TUPLES_OK)
		snprintf(db->trace_set, sizeof(db->trace_set), "%s", vals[0]);
	else
		rc = result_err(r, db, res, "set_config");
	PQclear(res);
	return rc;
}

/*
 * Run the prepared statement stmt with n text parameters.  On success
 * *out (if not NULL) is a result the arena releases.  Errors are mapped
 * through the SQLSTATE table; r->sqlstate and r->constraint say more.
 */
static enum agora_err
query_once(struct agora_req *r, struct agora_db *db, const char *stmt, int n,
    const char *const *vals, PGresult **out)
{
	const struct agora_stmt *s;
	struct timespec t0;
	const char *sql;
	PGresult *res;
	enum agora_err rc;

	/* A value the arena could not make is NULL, which PostgreSQL would
	 * take for SQL NULL: nothing runs once the arena has failed. */
	if (agora_arena_failed(r->arena))
		return AGORA_E_INTERNAL;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = agora_db_connect(db);
	waited(r, &t0, 0);
	/* One lookup serves both: a write carries the trace, and a
	 * statement planned per execution is sent as text. */
	s = stmt_find(db, stmt);
	if (rc == AGORA_OK && !db->in_tx &&
	    (s == NULL || !(s->flags & AGORA_STMT_READ)))
		rc = trace_sync(r);
	if (rc != AGORA_OK)
		return rc;
	sql = s != NULL && (s->flags & AGORA_STMT_CUSTOM_PLAN) ? s->sql : NULL;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (sql != NULL)
		res = PQexecParams(db->conn, sql, n, NULL, vals, NULL, NULL, 0);
	else
		res = PQexecPrepared(db->conn, stmt, n, vals, NULL, NULL, 0);
	waited(r, &t0, 1);
	if (PQresultStatus(res) != PGRES_TUPLES_OK &&
	    PQresultStatus(res) != PGRES_COMMAND_OK) {
		rc = result_err(r, db, res, stmt);
		PQclear(res);
		return rc;
	}
	if (agora_arena_defer(r->arena, clear_result, res) != 0) {
		PQclear(res);
		return AGORA_E_TOO_LARGE;
	}
	*out = res;
	return AGORA_OK;
}

/* An LSN "X/Y" as a number; 0 when it is not one. */
static unsigned long long
lsn_of(const char *s)
{
	unsigned int hi, lo;

	if (s == NULL || sscanf(s, "%X/%X", &hi, &lo) != 2)
		return 0;
	return ((unsigned long long)hi << 32) | lo;
}

/* The one text value of sql on db's connection, or NULL (the connection
 * marked lost when it broke); free it with PQclear(*res). */
static const char *
value_on(struct agora_db *db, const char *sql, PGresult **res)
{
	*res = PQexec(db->conn, sql);
	if (PQresultStatus(*res) == PGRES_TUPLES_OK && PQntuples(*res) == 1 &&
	    !PQgetisnull(*res, 0, 0))
		return PQgetvalue(*res, 0, 0);
	if (PQstatus(db->conn) != CONNECTION_OK)
		mark_lost(db);
	return NULL;
}

/*
 * Note where the primary's WAL ends now, in the replica's ring of
 * (position, time) marks: the replica is as current as the newest mark
 * it has replayed past.  An idle primary's position does not move, so a
 * replica that has replayed everything is current at the newest mark.
 */
static void
lag_mark(struct agora_db *primary, struct agora_db *rep)
{
	PGresult *res;
	unsigned long long lsn;
	struct lag_mark *m;

	if (agora_db_connect(primary) != AGORA_OK)
		return;
	lsn = lsn_of(value_on(primary, "SELECT pg_current_wal_lsn()", &res));
	PQclear(res);
	if (lsn == 0)
		return;
	m = &rep->marks[rep->nmarks++ % LAG_MARKS];
	m->lsn = lsn;
	clock_gettime(CLOCK_MONOTONIC, &m->at);
}

/*
 * How far the replica's data is behind, in ms, or -1 when it cannot say:
 * the age of the newest mark of the primary's position (lag_mark) that
 * the replica has replayed.  A server that is not in recovery (promoted,
 * or the primary itself) is current.  Exact to the marks' spacing, where
 * the age of the last transaction replayed would count a replica idle
 * for a minute as a minute behind, and "received = replayed" would count
 * one that just started, hours behind, as current.
 */
static long long
replica_lag_ms(struct agora_db *rep)
{
	PGresult *res;
	const char *v = value_on(rep,
	    "SELECT CASE WHEN pg_is_in_recovery() "
	    "THEN COALESCE(pg_last_wal_replay_lsn()::text, '0/0') "
	    "ELSE 'primary' END",
	    &res);
	unsigned long long replayed;
	long long lag = -1, age;
	size_t i;

	if (v != NULL && strcmp(v, "primary") == 0)
		lag = 0;
	replayed = lsn_of(v);
	for (i = 0; replayed != 0 && i < LAG_MARKS && i < rep->nmarks; i++) {
		if (rep->marks[i].lsn > replayed)
			continue;
		age = agora_ms_since(&rep->marks[i].at);
		if (lag < 0 || age < lag)
			lag = age;
	}
	PQclear(res);
	return lag;
}

/*
 * Say when reads move between the replica and the primary, at most once a
 * TURN_LOG_MS: a write after a quiet spell can turn every process away
 * and back within a second.  A turn not said then is said at a later
 * check, if it still holds.
 */
static void
replica_turn(struct agora_db *rep, int fresh, long long lag)
{
	rep->fresh = fresh;
	if (fresh == rep->logged_fresh ||
	    (rep->turn_logged.tv_sec != 0 &&
	        agora_ms_since(&rep->turn_logged) < TURN_LOG_MS))
		return;
	rep->logged_fresh = fresh;
	clock_gettime(CLOCK_MONOTONIC, &rep->turn_logged);
	if (fresh)
		agora_log("info", "replica: reads go to it (lag %lld ms)", lag);
	else if (lag >= 0)
		agora_log("warning",
		    "replica: lag %lld ms past %lld: reads go to the primary",
		    lag, rep->max_lag_ms);
	else
		agora_log("warning",
		    "replica: unavailable or behind: reads go to the primary");
}

/* Whether the replica is current enough, asked at most every LAG_CHECK_MS. */
static int
replica_fresh(struct agora_db *primary, struct agora_db *rep)
{
	long long lag = -1;
	int tries;

	if (rep->lag_checked.tv_sec != 0 &&
	    agora_ms_since(&rep->lag_checked) < LAG_CHECK_MS)
		return rep->fresh;
	clock_gettime(CLOCK_MONOTONIC, &rep->lag_checked);
	lag_mark(primary, rep);
	if (agora_db_connect(rep) == AGORA_OK)
		lag = replica_lag_ms(rep);
	/* A process's first mark is younger than the replication delay (a
	 * millisecond or so): give the replica that, once, rather than send
	 * the reads of its first LAG_CHECK_MS to the primary. */
	for (tries = 0; lag < 0 && rep->nmarks == 1 && rep->ready && tries < 4;
	     tries++) {
		sleep_ms(5);
		lag = replica_lag_ms(rep);
	}
	replica_turn(rep, lag >= 0 && lag <= rep->max_lag_ms, lag);
	return rep->fresh;
}

static void
replica_failed(struct agora_db *rep)
{
	clock_gettime(CLOCK_MONOTONIC, &rep->lag_checked);
	replica_turn(rep, 0, -1);
}

/*
 * Whether an error came from the replica rather than the request: a lost
 * connection, an unavailable server, or a query cancelled for a conflict
 * with recovery (40001), an error of the server's own.  A bad value, a
 * constraint or a statement timeout would fail on the primary too, and
 * must not take the replica out of use.
 */
static int
replica_fault(const struct agora_req *r, enum agora_err rc)
{
	if (r->sqlstate != NULL && strcmp(r->sqlstate, "57014") == 0)
		return 0; /* statement_timeout: the primary would time out */
	return rc == AGORA_E_CONNLOST || rc == AGORA_E_UNAVAILABLE ||
	    rc == AGORA_E_RETRY || rc == AGORA_E_INTERNAL;
}

/*
 * Whether the replica answers this statement: one flagged for it, outside
 * a transaction, for a request that may read it (AGORA_STMT_REPLICA_ANON:
 * no user), while the replica is current enough.
 */
static int
replica_serves(const struct agora_req *r, const char *stmt)
{
	struct agora_db *rep = r->ctx->db->replica;
	const struct agora_stmt *s;

	if (rep == NULL || r->ctx->db->in_tx)
		return 0;
	s = stmt_find(rep, stmt);
	if (s == NULL || !on_replica(s))
		return 0;
	if (!(s->flags & AGORA_STMT_REPLICA) && r->user != NULL)
		return 0;
	return replica_fresh(r->ctx->db, rep);
}

/*
 * Run the prepared statement stmt with n text parameters.  On success
 * *out (if not NULL) is a result the arena releases.  Errors are mapped
 * through the SQLSTATE table; r->sqlstate and r->constraint say more.
 * A statement the replica may answer goes there first (replica_serves).
 * Outside agora_db_tx a statement flagged AGORA_STMT_READ that met a lost
 * connection is tried once more on a new one; any other statement answers 503
 * then, since it might have committed before the connection broke (writes that
 * should survive a reconnect belong in agora_db_tx, where COMMIT was never
 * sent).
 */
enum agora_err
agora_db_query(struct agora_req *r, const char *stmt, int n,
    const char *const *vals, PGresult **out)
{
	PGresult *res = NULL;
	enum agora_err rc;

	if (replica_serves(r, stmt)) {
		r->sqlstate = NULL;
		rc = query_once(r, r->ctx->db->replica, stmt, n, vals, &res);
		if (!replica_fault(r, rc)) {
			if (rc == AGORA_OK)
				r->from_replica = 1;
			if (out != NULL)
				*out = res;
			return rc;
		}
		/* The replica's own trouble: the primary answers, and the
		 * replica is asked again after LAG_CHECK_MS. */
		replica_failed(r->ctx->db->replica);
		r->sqlstate = NULL;
		r->constraint = NULL;
	}
	rc = query_once(r, r->ctx->db, stmt, n, vals, &res);
	if (rc == AGORA_E_CONNLOST && !r->ctx->db->in_tx &&
	    is_read(r->ctx->db, stmt))
		rc = query_once(r, r->ctx->db, stmt, n, vals, &res);
	if (rc == AGORA_E_CONNLOST && !r->ctx->db->in_tx)
		rc = AGORA_E_UNAVAILABLE;
	if (out != NULL)
		*out = res;
	return rc;
}

static enum agora_err
exec_simple(struct agora_req *r, const char *sql)
{
	struct agora_db *db = r->ctx->db;
	struct timespec t0;
	PGresult *res;
	enum agora_err rc = AGORA_OK;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	res = PQexec(db->conn, sql);
	waited(r, &t0, 1);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		rc = result_err(r, db, res, sql);
	PQclear(res);
	return rc;
}

static void
backoff(int attempt)
{
	struct timespec ts;

	ts.tv_sec = 0;
	ts.tv_nsec = (long)(1000000L << attempt) + (rand() % 1000000L);
	nanosleep(&ts, NULL);
}

static enum agora_err
tx_once(struct agora_req *r, enum agora_err (*fn)(struct agora_req *, void *),
    void *arg)
{
	enum agora_err rc;

	/* Said, not assumed: the order policy's count after its row lock
	 * (sql/0013) needs each statement's fresh snapshot. */
	rc = trace_sync(r);
	if (rc == AGORA_OK)
		rc = exec_simple(r, "BEGIN ISOLATION LEVEL READ COMMITTED");
	if (rc == AGORA_OK)
		rc = fn(r, arg);
	if (rc == AGORA_OK && agora_arena_failed(r->arena))
		rc = AGORA_E_INTERNAL;
	if (rc == AGORA_OK) {
		rc = exec_simple(r, "COMMIT");
		/* A COMMIT whose answer was lost may have succeeded. */
		return rc == AGORA_E_CONNLOST ? AGORA_E_UNAVAILABLE : rc;
	}
	if (PQstatus(r->ctx->db->conn) == CONNECTION_OK)
		exec_simple(r, "ROLLBACK");
	return rc;
}

/*
 * Run fn inside a transaction.  A serialization failure or deadlock
 * (40001, 40P01) and a connection lost before COMMIT was sent retry the
 * whole transaction, up to TX_ATTEMPTS times; a lost COMMIT is not
 * retried, because it may have succeeded.  fn must not commit or roll back.
 */
enum agora_err
agora_db_tx(struct agora_req *r,
    enum agora_err (*fn)(struct agora_req *, void *), void *arg)
{
	struct agora_db *db = r->ctx->db;
	enum agora_err rc = AGORA_E_UNAVAILABLE;
	size_t nheaders = r->nheaders;
	struct timespec t0;
	int attempt;

	for (attempt = 0; attempt < TX_ATTEMPTS; attempt++) {
		if (attempt > 0)
			backoff(attempt);
		/* What a failed attempt answered must not leak into the next.
		 */
		r->nheaders = nheaders;
		r->status = 0;
		r->out = NULL;
		r->out_len = 0;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		rc = agora_db_connect(db);
		waited(r, &t0, 0);
		if (rc != AGORA_OK)
			break;
		db->in_tx = 1;
		rc = tx_once(r, fn, arg);
		db->in_tx = 0;
		if (rc != AGORA_E_RETRY && rc != AGORA_E_CONNLOST)
			break;
	}
	/* Retries used up: the client may try again later. */
	if (rc == AGORA_E_RETRY || rc == AGORA_E_CONNLOST)
		rc = AGORA_E_UNAVAILABLE;
	return rc;
}

struct one_write {
	const char *stmt;
	int n;
	const char *const *vals;
	PGresult **out;
};

static enum agora_err
tx_one(struct agora_req *r, void *arg)
{
	struct one_write *w = arg;

	return agora_db_query(r, w->stmt, w->n, w->vals, w->out);
}

/*
 * One writing statement in a transaction of its own, so that a connection
 * lost before COMMIT is retried on a new one (agora_db_tx).
 */
enum agora_err
agora_db_write(struct agora_req *r, const char *stmt, int n,
    const char *const *vals, PGresult **out)
{
	struct one_write w = { stmt, n, vals, out };

	return agora_db_tx(r, tx_one, &w);
}

/* One statement as a line of JSON, {"name", "read", "sql"}. */
static void
print_stmt(const struct agora_stmt *st)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "name", json_object_new_string(st->name));
	json_object_object_add(o, "read",
	    json_object_new_boolean((st->flags & AGORA_STMT_READ) != 0));
	json_object_object_add(o, "replica",
	    json_object_new_boolean(
	        (st->flags & (AGORA_STMT_REPLICA | AGORA_STMT_REPLICA_ANON)) !=
	        0));
	json_object_object_add(o, "sql", json_object_new_string(st->sql));
	printf(
	    "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
}

/*
 * Print a program's statements and the library's, as "--statements"
 * shows them, so that a test can hold the AGORA_STMT_READ flags against
 * what the SQL calls in the database.
 */
void
agora_db_print_stmts(const struct agora_stmt *stmts, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		print_stmt(&stmts[i]);
	for (i = 0; i < agora_auth_nstmts; i++)
		print_stmt(&agora_auth_stmts[i]);
}
