/*
 * tracking.c: GET /api/v1/orders/{order_id}/events: an order's status history,
 * and real-time tracking by long poll.
 *
 * With ?wait=N the request stays open until an event newer than ?after=
 * exists or N seconds pass.  It waits on LISTEN agora_order_<id>, which
 * order_transition() notifies in the transaction of each change.  A
 * waiting request holds its process (a FastCGI process serves one request
 * at a time), which is why tracking is a program of its own: waiting
 * clients can use up the tracking processes but never the ones that place
 * and change orders.
 *
 * Nor may waiting clients use up the tracking processes themselves: a
 * wait needs a place under three caps, and a request that finds none is
 * answered at once, as with wait=0, instead of queueing behind the
 * waiters.  Per user (order_waits_per_user) and per client address
 * (order_waits_per_ip), counted in memcached across hosts; and per host
 * (order_waiters_max, a few below the tracking processes it runs), as
 * locks on files in run_dir/waiters: the kernel frees one when its process
 * ends, however it ends, and they need no memcached, so the last processes
 * stay free for answers that do not wait even when memcached is down.
 */
#include "config.h"

#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shop.h"

#define EVENTS_JSON                                                            \
	"(SELECT COALESCE(json_agg(json_build_object('seq', e.seq, "           \
	"'status', e.status, 'at', agora_time(e.at), 'detail', e.detail) "     \
	"ORDER BY e.seq), '[]') FROM order_events e WHERE e.order_id = o.id "  \
	"AND e.seq > $2::int)::text"

static const struct agora_stmt stmts[] = {
	{ "order_events",
	    "SELECT o.user_id::text, o.last_seq, " EVENTS_JSON
	    " FROM orders o WHERE o.id = $1::bigint",
	    AGORA_STMT_READ },
};

struct events {
	const char *vals[2];
	const char *json; /* the events after vals[1], a JSON array */
	const char *last_seq;
	int found;
};

/* Read the events after the cursor; 404 for others' orders. */
static enum agora_err
events_read(struct agora_req *r, struct events *ev)
{
	PGresult *res;
	enum agora_err rc;

	rc = agora_db_query(r, "order_events", 2, ev->vals, &res);
	if (rc != AGORA_OK)
		return rc;
	if (PQntuples(res) == 0 ||
	    !agora_owner_or_admin(r, PQgetvalue(res, 0, 0)))
		return agora_not_found(r);
	ev->last_seq = PQgetvalue(res, 0, 1);
	ev->json = PQgetvalue(res, 0, 2);
	ev->found = strcmp(ev->json, "[]") != 0;
	return AGORA_OK;
}

static int
simple_exec(PGconn *conn, const char *sql)
{
	PGresult *res = PQexec(conn, sql);
	int ok = PQresultStatus(res) == PGRES_COMMAND_OK;

	PQclear(res);
	return ok ? 0 : -1;
}

static long long
ms_left(const struct timespec *deadline)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return agora_ts_us(&now, deadline) / 1000;
}

enum woke { W_NOTIFIED, W_TIMEOUT, W_BROKEN };

/*
 * Sleep on the connection's socket until a notification arrives, the
 * deadline passes or SIGTERM comes.  W_BROKEN: the connection failed.
 */
static enum woke
wait_notify(PGconn *conn, const struct timespec *deadline)
{
	struct pollfd pfd;
	PGnotify *n;
	long long left;
	enum woke w = W_TIMEOUT;

	pfd.fd = PQsocket(conn);
	pfd.events = POLLIN;
	while (w == W_TIMEOUT && !agora_stopping() &&
	    (left = ms_left(deadline)) > 0) {
		if (poll(&pfd, 1, (int)(left > 1000 ? 1000 : left)) < 0 &&
		    errno != EINTR)
			return W_BROKEN;
		if (PQconsumeInput(conn) == 0)
			return W_BROKEN;
		while ((n = PQnotifies(conn)) != NULL) {
			w = W_NOTIFIED;
			PQfreemem(n);
		}
	}
	return w;
}

/*
 * Wait up to secs seconds for an event after the cursor.  LISTEN comes
 * before the second read, so an event committed between the two is seen
 * by the read or announced to the wait.  The reads go through
 * agora_db_query; if it had to reconnect, the LISTEN is gone, so a new
 * connection ends the wait with 503.
 */
static enum agora_err
events_wait(struct agora_req *r, struct events *ev, long long secs)
{
	PGconn *conn = agora_db_conn(r->ctx->db);
	unsigned long gen = agora_db_generation(r->ctx->db);
	struct timespec deadline;
	char listen[64];
	PGnotify *n;
	enum agora_err rc;
	enum woke w = W_NOTIFIED;

	if (conn == NULL)
		return AGORA_E_UNAVAILABLE;
	/* The id passed agora_id_ok: digits only, a safe identifier. */
	snprintf(listen, sizeof(listen), "LISTEN agora_order_%s", ev->vals[0]);
	if (simple_exec(conn, listen) != 0)
		return AGORA_E_UNAVAILABLE;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += secs;
	while ((rc = events_read(r, ev)) == AGORA_OK && !ev->found &&
	    w == W_NOTIFIED) {
		if (agora_db_generation(r->ctx->db) != gen)
			w = W_BROKEN;
		else
			w = wait_notify(conn, &deadline);
	}
	if (PQstatus(conn) == CONNECTION_OK)
		simple_exec(conn, "UNLISTEN *");
	while ((n = PQnotifies(conn)) != NULL)
		PQfreemem(n);
	if (rc == AGORA_OK && w == W_BROKEN)
		rc = AGORA_E_UNAVAILABLE;
	return rc;
}

/* Count this request under a cap kept in memcached; 0 when over it. */
static int
count_enter(struct agora_req *r, const char *key, long long max)
{
	uint64_t n;

	/* Without memcached there is no count: the host's slots still cap. */
	if (agora_cache_incr(r->ctx, key, 60, &n) != 0)
		return 1;
	if ((long long)n <= max)
		return 1;
	agora_cache_decr(r->ctx, key);
	return 0;
}

/*
 * Take one of the host's max places: an exclusive lock on one of max files
 * in run_dir/waiters, a directory of the service's user alone.  The kernel
 * drops the lock when the process ends, however it ends.  The file
 * descriptor that holds it, or -1: every place is taken, or the directory
 * cannot be used (logged; waits are then answered at once).
 */
static int
slot_take(const struct agora_config *cfg)
{
	char path[4096];
	long long i, max = cfg->order_waiters_max;
	long long start = getpid() % (max > 0 ? max : 1);
	int fd;

	snprintf(path, sizeof(path), "%s/waiters", cfg->run_dir);
	if (max == 0 || (mkdir(path, 0700) != 0 && errno != EEXIST))
		goto broken;
	for (i = 0; i < max; i++) {
		snprintf(path, sizeof(path), "%s/waiters/%lld", cfg->run_dir,
		    (start + i) % max);
		fd = open(
		    path, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0)
			goto broken;
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return fd;
		close(fd);
	}
	return -1;
broken:
	if (max > 0)
		agora_log("error", "%s: %s (waits are answered at once)", path,
		    strerror(errno));
	return -1;
}

/* The places a wait holds under the three caps. */
struct waiter {
	const char *user_key, *ip_key;
	int slot;
};

/* Take a place under every cap, or none (0). */
static int
waiter_enter(struct agora_req *r, struct waiter *w)
{
	const struct agora_config *cfg = &r->ctx->cfg;
	int user = 0, ip = 0;

	w->user_key = agora_printf(r, "agora:waiters:%s", r->user);
	w->ip_key =
	    agora_printf(r, "agora:waiters:ip:%s", agora_client_addr(r));
	w->slot = -1;
	if (w->user_key == NULL || w->ip_key == NULL)
		goto out;
	if (!(user = count_enter(r, w->user_key, cfg->order_waits_per_user)) ||
	    !(ip = count_enter(r, w->ip_key, cfg->order_waits_per_ip)))
		goto out;
	w->slot = slot_take(cfg);
out:
	if (w->slot < 0 && ip)
		agora_cache_decr(r->ctx, w->ip_key);
	if (w->slot < 0 && user)
		agora_cache_decr(r->ctx, w->user_key);
	return w->slot >= 0;
}

static void
waiter_leave(struct agora_req *r, struct waiter *w)
{
	close(w->slot);
	agora_cache_decr(r->ctx, w->ip_key);
	agora_cache_decr(r->ctx, w->user_key);
}

#define EVENTS_BAD "after must be an event's seq and wait 0 to 30 seconds."

/* The events' query parameters; absent, both are 0. */
enum { F_AFTER, F_WAIT };
static const struct agora_qfield events_fields[] = {
	[F_AFTER] = { "after", AGORA_Q_INT, 0, INT32_MAX, NULL, "bad_parameter",
	    EVENTS_BAD },
	[F_WAIT] = { "wait", AGORA_Q_INT, 0, 30, NULL, "bad_parameter",
	    EVENTS_BAD },
};

static enum agora_err
get_events(struct agora_req *r)
{
	struct agora_qvalue v[AGORA_NELEM(events_fields)];
	struct events ev;
	struct waiter wt;
	const char *body;
	long long w;
	enum agora_err rc;

	rc = agora_query_fields(
	    r, events_fields, AGORA_NELEM(events_fields), 0, v);
	if (rc != AGORA_OK)
		return rc;
	w = v[F_WAIT].n;
	memset(&ev, 0, sizeof(ev));
	ev.vals[0] = r->params[0];
	ev.vals[1] = agora_printf(r, "%lld", v[F_AFTER].n);
	if ((rc = events_read(r, &ev)) != AGORA_OK)
		return rc;
	if (w > r->ctx->cfg.order_wait_max)
		w = r->ctx->cfg.order_wait_max;
	if (!ev.found && w > 0 && waiter_enter(r, &wt)) {
		rc = events_wait(r, &ev, w);
		waiter_leave(r, &wt);
		if (rc != AGORA_OK)
			return rc;
	}
	body = agora_printf(
	    r, "{\"data\":%s,\"last_seq\":%s}", ev.json, ev.last_seq);
	if (body == NULL)
		return AGORA_E_TOO_LARGE;
	return agora_resp_raw(r, 200, "application/json", body, strlen(body));
}

static const struct agora_route routes[] = {
	{ "GET", "/api/v1/orders/{order_id}/events", AGORA_BODY_NONE,
	    get_events, AGORA_USER },
};

static const struct agora_program program = {
	.name = "tracking",
	.routes = routes,
	.nroutes = AGORA_NELEM(routes),
	.stmts = stmts,
	.nstmts = AGORA_NELEM(stmts),
};

AGORA_MAIN(program)
