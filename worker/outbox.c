/*
 * outbox.c: the outbox engine of agora-worker: claim a batch, hold its
 * lease, run each row through its topic's handler (handlers.c), and
 * finish the rows.
 *
 * A batch of due rows is claimed with FOR UPDATE SKIP LOCKED and a lease
 * (next_attempt_at moved worker_lease_seconds ahead), committed, and
 * handled outside any transaction; the lease is extended while a long
 * batch runs, and a crashed worker's rows come due again when it ends.
 * Each row then leaves the table (done), comes back after a capped
 * exponential backoff with jitter (retry), or stays as dead, with its
 * last error, after outbox_max_attempts.  Several workers, on one host or
 * many, may run at once: each claim has its own token, and a worker whose
 * lease ran out cannot finish rows another has claimed since.
 */
#include "config.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "worker.h"

/* How often a worker writes its heartbeat row (sql/0019). */
#define HEARTBEAT_MS 10000
#define HOUSEKEEPING_MS 10000
#define IDS_MAX (1000 * AGORA_PGA_ELEM_MAX + 3) /* worker_batch at most */
static volatile sig_atomic_t stop;

/* From a signal handler: finish the current row, hand the rest back. */
void
worker_stop(void)
{
	stop = 1;
}

int
worker_stopping(void)
{
	return stop;
}

static const struct agora_stmt stmts[] = {
	{ "outbox_claim",
	    "WITH c AS (SELECT id FROM outbox WHERE state <> 'dead' "
	    "AND next_attempt_at <= now() AND topic = ANY($1::text[]) "
	    "ORDER BY next_attempt_at, id LIMIT $2::int "
	    "FOR UPDATE SKIP LOCKED) "
	    "UPDATE outbox o SET state = 'running', claim = $4, "
	    "attempts = o.attempts + 1, "
	    "next_attempt_at = now() + make_interval(secs => $3::int) "
	    "FROM c WHERE o.id = c.id RETURNING o.id::text, o.topic, "
	    "o.payload::text, o.attempts, o.max_attempts, o.trace_id" },
	/*
	 * Each statement that finishes rows names the claim: a worker whose
	 * lease ran out cannot touch rows another worker has claimed since.
	 */
	{ "outbox_done",
	    "DELETE FROM outbox WHERE id = ANY($1::bigint[]) AND claim = $2" },
	{ "outbox_retry",
	    "UPDATE outbox SET state = 'pending', next_attempt_at = now() + "
	    "make_interval(secs => $2::float8), last_error = $3 "
	    "WHERE id = $1::bigint AND claim = $4" },
	{ "outbox_dead",
	    "UPDATE outbox SET state = 'dead', last_error = $2 "
	    "WHERE id = $1::bigint AND claim = $3" },
	{ "outbox_extend",
	    "UPDATE outbox SET next_attempt_at = now() + "
	    "make_interval(secs => $2::int) WHERE id = ANY($1::bigint[]) "
	    "AND state = 'running' AND claim = $3" },
	{ "worker_beat",
	    "INSERT INTO worker_heartbeats (worker, topics) VALUES ($1, $2) "
	    "ON CONFLICT (worker) DO UPDATE SET topics = EXCLUDED.topics, "
	    "pass_at = now()" },
	{ "outbox_release",
	    "UPDATE outbox SET state = 'pending', next_attempt_at = now(), "
	    "attempts = attempts - 1 WHERE id = ANY($1::bigint[]) "
	    "AND state = 'running' AND claim = $2" },
	{ "outbox_next",
	    "SELECT COALESCE((extract(epoch FROM min(next_attempt_at) - now()) "
	    "* 1000)::bigint, -1) FROM outbox WHERE state <> 'dead' "
	    "AND topic = ANY($1::text[])",
	    AGORA_STMT_READ },
	WORKER_HANDLER_STMTS,
};

void
worker_print_stmts(void)
{
	agora_db_print_stmts(stmts, AGORA_NELEM(stmts));
}

struct agora_req *
worker_req_reset(struct worker *w)
{
	agora_arena_reset(w->arena);
	memset(&w->req, 0, sizeof(w->req));
	w->req.ctx = &w->ctx;
	w->req.arena = w->arena;
	w->req.request_id = "worker";
	return &w->req;
}

long long
worker_now_ms(void)
{
	return agora_clock_ms(CLOCK_MONOTONIC);
}

/* A PostgreSQL array literal of the ids in the first n rows of res. */
static const char *
id_array(PGresult *res, int n, char *buf, size_t len)
{
	struct agora_pga a;
	int i;

	agora_pga_init(&a, buf, len);
	for (i = 0; i < n; i++)
		agora_pga_add(&a, PQgetvalue(res, i, 0));
	return agora_pga_end(&a);
}

/* Capped exponential backoff with +-25% jitter, in seconds. */
static double
backoff_seconds(const struct agora_config *cfg, long long attempts)
{
	double ms = (double)cfg->outbox_backoff_ms;
	long long i;

	for (i = 1; i < attempts && ms < (double)cfg->outbox_backoff_max_ms;
	     i++)
		ms *= 2;
	if (ms > (double)cfg->outbox_backoff_max_ms)
		ms = (double)cfg->outbox_backoff_max_ms;
	ms *= 0.75 + randombytes_uniform(501) / 1000.0;
	return ms / 1000.0;
}

int
job_last_attempt(const struct worker *w, const struct job *j)
{
	long long limit = w->ctx.cfg.outbox_max_attempts;

	if (j->max_attempts < limit)
		limit = j->max_attempts;
	return j->attempts >= limit;
}

/* Record a row that did not finish: retry later, or dead. */
static void
finish_failed(struct worker *w, struct job *j)
{
	const char *vals[4] = { j->id, NULL, j->error, w->claim };

	/* Its lines are the trace its work ran in. */
	agora_trace_continue(j->trace[0] != '\0' ? j->trace : j->trace_id);
	if (j->outcome == OUT_RETRY && !job_last_attempt(w, j)) {
		vals[1] = agora_printf(worker_req_reset(w), "%.3f",
		    backoff_seconds(&w->ctx.cfg, j->attempts));
		(void)agora_db_query(&w->req, "outbox_retry", 4, vals, NULL);
		w->retried++;
		wmetrics_job(
		    j->topic, j->outcome, 0, agora_us_since(&w->claimed));
		agora_log("warning", "outbox %s (%s) attempt %lld: %s", j->id,
		    j->topic, j->attempts, j->error);
		return;
	}
	vals[1] = j->error;
	vals[2] = w->claim;
	(void)agora_db_query(worker_req_reset(w), "outbox_dead", 3, vals, NULL);
	w->dead++;
	wmetrics_job(j->topic, j->outcome, 1, agora_us_since(&w->claimed));
	agora_log("error", "outbox %s (%s) is dead after %lld attempts: %s",
	    j->id, j->topic, j->attempts, j->error);
}

int
worker_tick(struct worker *w)
{
	const char *vals[3];

	if (stop)
		return 1;
	if (worker_now_ms() - w->tick_ms <
	    w->ctx.cfg.worker_lease_seconds * 1000 / 3)
		return 0;
	if ((vals[0] = w->batch_ids) == NULL)
		return 0;
	vals[1] = agora_printf(
	    worker_req_reset(w), "%lld", w->ctx.cfg.worker_lease_seconds);
	vals[2] = w->claim;
	(void)agora_db_query(&w->req, "outbox_extend", 3, vals, NULL);
	w->tick_ms = worker_now_ms();
	return 0;
}

/* The claimed rows as jobs; the payloads are parsed once. */
static struct job *
jobs_read(PGresult *claim, int n)
{
	struct job *jobs = calloc((size_t)n + 1, sizeof(*jobs));
	int i;

	for (i = 0; jobs != NULL && i < n; i++) {
		jobs[i].id = PQgetvalue(claim, i, 0);
		jobs[i].topic = PQgetvalue(claim, i, 1);
		jobs[i].payload = json_tokener_parse(PQgetvalue(claim, i, 2));
		jobs[i].attempts = strtoll(PQgetvalue(claim, i, 3), NULL, 10);
		jobs[i].max_attempts =
		    strtoll(PQgetvalue(claim, i, 4), NULL, 10);
		jobs[i].trace_id =
		    PQgetisnull(claim, i, 5) ? NULL : PQgetvalue(claim, i, 5);
	}
	return jobs;
}

/* An array literal of the ids of the jobs with outcome o. */
static const char *
ids_with(struct job *jobs, int n, enum outcome o, char *buf, size_t len)
{
	struct agora_pga a;
	int i;

	agora_pga_init(&a, buf, len);
	for (i = 0; i < n; i++)
		if (jobs[i].outcome == o)
			agora_pga_add(&a, jobs[i].id);
	return agora_pga_end(&a);
}

/*
 * Record the batch: the finished rows leave the table in one statement,
 * the failed ones are retried or dead, the ones never run go back.
 */
static void
batch_close(struct worker *w, struct job *jobs, int n)
{
	static char ids[IDS_MAX];
	const char *vals[2] = { NULL, w->claim };
	int i;

	/* Never NULL: IDS_MAX holds worker_batch's largest batch. */
	if ((vals[0] = ids_with(jobs, n, OUT_DONE, ids, sizeof(ids))) != NULL)
		(void)agora_db_query(
		    worker_req_reset(w), "outbox_done", 2, vals, NULL);
	for (i = 0; i < n; i++) {
		if (jobs[i].outcome == OUT_DONE) {
			w->handled++;
			wmetrics_job(jobs[i].topic, OUT_DONE, 0,
			    agora_us_since(&w->claimed));
		} else if (jobs[i].outcome != OUT_NONE)
			finish_failed(w, &jobs[i]);
	}
	agora_trace_end();
	vals[0] = ids_with(jobs, n, OUT_NONE, ids, sizeof(ids));
	if (vals[0] != NULL && strcmp(vals[0], "{}") != 0)
		(void)agora_db_query(
		    worker_req_reset(w), "outbox_release", 2, vals, NULL);
}

/*
 * Claim one batch and run it.  Returns the rows claimed (0: nothing was
 * due), or -1 when the database is unreachable.
 */
static int
drain_batch(struct worker *w)
{
	static char all[IDS_MAX];
	const char *vals[4];
	struct job *jobs;
	PGresult *claim;
	int i, n;

	/* A new token for every claim (see outbox_done). */
	agora_random_hex(w->claim, 16);
	clock_gettime(CLOCK_MONOTONIC, &w->claimed);
	vals[3] = w->claim;
	vals[0] = w->topics;
	vals[1] =
	    agora_printf(worker_req_reset(w), "%lld", w->ctx.cfg.worker_batch);
	vals[2] =
	    agora_printf(&w->req, "%lld", w->ctx.cfg.worker_lease_seconds);
	if (agora_db_query(&w->req, "outbox_claim", 4, vals, &claim) !=
	    AGORA_OK)
		return -1;
	/* The claim must outlive the arena resets of the work it starts. */
	if ((claim = PQcopyResult(
	         claim, PG_COPYRES_TUPLES | PG_COPYRES_ATTRS)) == NULL)
		return -1;
	n = PQntuples(claim);
	if (n > 0 && (jobs = jobs_read(claim, n)) != NULL) {
		w->batch_ids = id_array(claim, n, all, sizeof(all));
		w->tick_ms = worker_now_ms();
		worker_handle(w, jobs, n);
		batch_close(w, jobs, n);
		for (i = 0; i < n; i++)
			json_object_put(jobs[i].payload);
		free(jobs);
	}
	PQclear(claim);
	return n;
}

/* LISTEN on the current connection, again after every reconnect. */
static void
listen_outbox(struct worker *w)
{
	PGconn *c = agora_db_conn(w->ctx.db);
	PGresult *res;

	if (c == NULL || w->listening == agora_db_generation(w->ctx.db))
		return;
	res = PQexec(c, "LISTEN agora_outbox");
	if (PQresultStatus(res) == PGRES_COMMAND_OK)
		w->listening = agora_db_generation(w->ctx.db);
	PQclear(res);
}

/* Milliseconds until the next row is due (-1: none, or unknown). */
static long long
next_due(struct worker *w)
{
	const char *vals[1] = { w->topics };
	PGresult *res;

	if (agora_db_query(worker_req_reset(w), "outbox_next", 1, vals, &res) !=
	    AGORA_OK)
		return -1;
	return strtoll(PQgetvalue(res, 0, 0), NULL, 10);
}

/* Free the notifications libpq holds; whether there were any. */
static int
drain_notifies(PGconn *c)
{
	PGnotify *n;
	int got = 0;

	while ((n = PQnotifies(c)) != NULL) {
		got = 1;
		PQfreemem(n);
	}
	return got;
}

/* Sleep until NOTIFY agora_outbox, ms milliseconds, or a signal. */
static void
wait_work(struct worker *w, long long ms)
{
	PGconn *c = agora_db_conn(w->ctx.db);
	struct pollfd pfd;
	long long end = worker_now_ms() + ms, left;
	int got = 0;

	if (ms <= 0)
		return;
	if (c == NULL || w->listening != agora_db_generation(w->ctx.db)) {
		usleep((useconds_t)(ms > 500 ? 500 : ms) * 1000);
		return;
	}
	pfd.fd = PQsocket(c);
	pfd.events = POLLIN;
	/*
	 * Short slices: a SIGTERM that lands between the check of stop and
	 * poll() would otherwise wait out the whole poll interval.
	 */
	while (!got && !stop && (left = end - worker_now_ms()) > 0) {
		if (PQconsumeInput(c) == 0)
			return;
		got = drain_notifies(c);
		if (!got)
			(void)poll(&pfd, 1, (int)(left > 200 ? 200 : left));
	}
	if (PQconsumeInput(c) != 0)
		(void)drain_notifies(c);
}

/* How long to sleep when nothing is due: at most max milliseconds. */
static long long
idle_ms(struct worker *w, long long left)
{
	long long ms = w->ctx.cfg.worker_poll_ms, due = next_due(w);

	if (due >= 0 && due < ms)
		ms = due + 1;
	return ms < left ? ms : left;
}

/*
 * Record that a pass ended (sql/0019), at most once in HEARTBEAT_MS: the
 * row of this host's workers of these topics, which GET /health reports
 * (housekeeping deletes the rows of hosts gone a week).
 */
static void
heartbeat(struct worker *w)
{
	static long long last;
	static char name[300];
	const char *vals[2];
	char host[128];

	if (last != 0 && worker_now_ms() - last < HEARTBEAT_MS)
		return;
	if (name[0] == '\0') {
		if (gethostname(host, sizeof(host)) != 0)
			snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
		snprintf(name, sizeof(name), "%s %s", host, w->topics);
	}
	vals[0] = name;
	vals[1] = w->topics;
	if (agora_db_query(worker_req_reset(w), "worker_beat", 2, vals, NULL) ==
	    AGORA_OK)
		last = worker_now_ms();
}

int
worker_drain(struct worker *w)
{
	int n;

	listen_outbox(w);
	n = drain_batch(w);
	if (n >= 0)
		heartbeat(w);
	if (n >= 0)
		wmetrics_pass();
	return n;
}

void
worker_wait(struct worker *w, long long max_ms)
{
	wait_work(w, idle_ms(w, max_ms));
}

void
job_trace_begin(struct job *j)
{
	agora_trace_continue(j->trace_id);
	snprintf(j->trace, sizeof(j->trace), "%s", agora_trace_id());
}

const char *
job_string(struct job *j, const char *key)
{
	struct json_object *o;

	if (j->payload == NULL ||
	    !json_object_object_get_ex(j->payload, key, &o) ||
	    !json_object_is_type(o, json_type_string))
		return NULL;
	return json_object_get_string(o);
}

/* A row id from the payload, or NULL. */
const char *
job_id(struct job *j, const char *key)
{
	const char *s = job_string(j, key);

	return s != NULL && agora_id_ok(s) ? s : NULL;
}

enum outcome
job_bad(struct job *j, const char *why)
{
	snprintf(j->error, sizeof(j->error), "%s", why);
	return OUT_FAIL;
}

enum outcome
job_db_failed(struct job *j, enum agora_err rc)
{
	snprintf(
	    j->error, sizeof(j->error), "database: %s", agora_err_code(rc));
	return OUT_RETRY;
}

/*
 * A lease shorter than one call may take would let a second worker make
 * the call again (agora_worker_lease): the worker uses a longer one, and
 * says so, rather than stop charging and sending over a setting.
 */
static void
lease_fit(struct agora_config *cfg)
{
	long long need = agora_worker_lease(cfg);

	if (need == cfg->worker_lease_seconds)
		return;
	agora_log("warning",
	    "worker_lease_seconds %lld is less than twice the longest of "
	    "payment_timeout_ms, notify_timeout_ms and storage_timeout_ms: "
	    "using %lld",
	    cfg->worker_lease_seconds, need);
	cfg->worker_lease_seconds = need;
}

int
worker_open(struct worker *w, const char *topics)
{
	char err[512];

	memset(w, 0, sizeof(*w));
	w->ctx.program = "agora-worker";
	w->topics = topics;
	/* Every secret but the owner's database URL. */
	if (agora_config_load_for(&w->ctx.cfg,
	        AGORA_NEEDS_ALL & ~AGORA_NEEDS(AGORA_SECRET_DATABASE_ADMIN_URL),
	        err, sizeof(err)) != 0) {
		agora_log("error", "configuration: %s", err);
		return -1;
	}
	lease_fit(&w->ctx.cfg);
	w->ctx.db =
	    agora_db_new(w->ctx.cfg.database_url, stmts, AGORA_NELEM(stmts));
	w->arena = agora_arena_new(4 * 1024 * 1024);
	if (w->ctx.db != NULL)
		agora_db_timeout(w->ctx.db, w->ctx.cfg.db_statement_timeout_ms);
	if (w->ctx.db == NULL || w->arena == NULL ||
	    provider_init(&w->ctx.cfg) != 0)
		return -1;
	w->ctx.cache = agora_cache_new(w->ctx.cfg.memcached_servers);
	wmetrics_open(&w->ctx.cfg);
	if (agora_db_connect(w->ctx.db) != AGORA_OK) {
		/* Else a cron run would wait out its deadline and exit 0. */
		agora_log("error",
		    "cannot connect to the database at start: exiting");
		return -1;
	}
	return 0;
}

void
worker_close(struct worker *w)
{
	provider_free();
	agora_metrics_close();
	agora_cache_free(w->ctx.cache);
	agora_db_free(w->ctx.db);
	agora_arena_free(w->arena);
	agora_config_free(&w->ctx.cfg);
}
