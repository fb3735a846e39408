/*
 * users.c: /api/v1/users: the caller's profile, and user administration.
 *
 * Everyone may read and change their own profile (name, or password with
 * the current one); admins list users, change roles and disable accounts.
 * Another user's id answers 404 to a customer, never 403, so ids cannot be
 * probed.  Changing a password revokes every refresh token of the account;
 * changing a role or disabling an account also ends its access tokens at
 * once (the token generation of sql/0014, which every program checks).
 *
 * Each user sees their live sessions (sql/0023), one per login, and ends
 * one of them or all; an admin does the same for any user.  Ending one
 * revokes its refresh token, and its access token lives out its few
 * minutes; ending all also moves the token generation on, so that every
 * access token of the account ends at once.
 *
 * Admins also see the outbox here (/api/v1/outbox), as agoractl outbox
 * does on the host: counts per topic and state, the rows themselves (the
 * dead ones with their last error), and a dead row made due again.  The
 * payloads stay out: they hold customers' addresses and phone numbers.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "shop.h"

/* A live session: one token of its family neither spent nor expired. */
#define SESSION_LIVE                                                           \
	"t.family = s.family AND t.rotated_at IS NULL AND "                    \
	"t.revoked_at IS NULL AND t.expires_at > now()"

#define OUTBOX_COLUMNS                                                         \
	"id::text, topic, aggregate_id, state, attempts, max_attempts, "       \
	"agora_time(next_attempt_at), last_error, agora_time(created_at)"
enum outbox_col {
	OC_ID,
	OC_TOPIC,
	OC_AGGREGATE,
	OC_STATE,
	OC_ATTEMPTS,
	OC_MAX,
	OC_NEXT,
	OC_ERROR,
	OC_CREATED,
	OC__MAX
};

static const struct agora_stmt stmts[] = {
	{ "user_get",
	    "SELECT " AGORA_USER_COLUMNS " FROM users WHERE id = $1::bigint",
	    AGORA_STMT_READ },
	{ "user_hash", "SELECT password_hash FROM users WHERE id = $1::bigint",
	    AGORA_STMT_READ },
	/* A new password ends every session: the token generation moves. */
	{ "user_update",
	    "UPDATE users SET name = COALESCE($2, name), "
	    "password_hash = COALESCE($3, password_hash), token_gen = "
	    "token_gen + CASE WHEN $3 IS NULL THEN 0 ELSE 1 END, "
	    "updated_at = now() WHERE id = $1::bigint "
	    "RETURNING " AGORA_USER_COLUMNS ", user_gen_of(users)::text" },
	{ "user_revoke_tokens",
	    "UPDATE refresh_tokens SET revoked_at = now() "
	    "WHERE user_id = $1::bigint AND revoked_at IS NULL" },
	/* The user's columns as AGORA_USER_COLUMNS has them, then the
	 * generation. */
	{ "user_admin_update",
	    "SELECT a.id, a.email, a.name, a.role, a.created_at, a.disabled, "
	    "u.email_verified_at IS NOT NULL, a.token_gen "
	    "FROM user_admin_update($1::bigint, $2::int, $3::bigint, "
	    "$4, $5::bool) a JOIN users u ON u.id = a.id::bigint" },
	/* users.id, not the id::text column: text would sort "9" above "10". */
	{ "user_list",
	    "SELECT " AGORA_USER_COLUMNS " FROM users "
	    "WHERE $1::bigint IS NULL OR id < $1::bigint "
	    "ORDER BY users.id DESC LIMIT $2::int",
	    AGORA_STMT_READ },
	/* The scrape's gauges (sql/functions/orders.sql): from indexes, and
	 * bounded, however long the backlog. */
	{ "outbox_stats",
	    "SELECT json_build_object('data', COALESCE(json_agg("
	    "json_build_object('topic', g.label, 'pending', g.pending, "
	    "'running', g.running, 'dead', g.dead, 'oldest_due_age_seconds', "
	    "g.age) ORDER BY g.label), '[]'), 'counted_up_to', $1::int) "
	    "FROM (SELECT label, "
	    "COALESCE(sum(n) FILTER (WHERE name = 'agora_outbox_rows' "
	    "AND state = 'pending'), 0) AS pending, "
	    "COALESCE(sum(n) FILTER (WHERE name = 'agora_outbox_rows' "
	    "AND state = 'running'), 0) AS running, "
	    "COALESCE(sum(n) FILTER (WHERE name = 'agora_outbox_rows' "
	    "AND state = 'dead'), 0) AS dead, "
	    "COALESCE(max(n) FILTER (WHERE name = "
	    "'agora_outbox_oldest_due_age_seconds'), 0) AS age "
	    "FROM metrics_gauges($1::int, 1) "
	    "WHERE name LIKE 'agora\\_outbox\\_%' GROUP BY label) g",
	    AGORA_STMT_READ },
	/* Newest first; columns as enum outbox_col says.  Dead rows from
	 * their own index (sql/0020): few, however long the backlog. */
	{ "outbox_list_dead",
	    "SELECT " OUTBOX_COLUMNS " FROM outbox WHERE state = 'dead' "
	    "AND ($1::text IS NULL OR topic = $1) "
	    "AND ($2::bigint IS NULL OR id < $2::bigint) "
	    "ORDER BY id DESC LIMIT $3::int",
	    AGORA_STMT_READ },
	{ "outbox_list",
	    "SELECT " OUTBOX_COLUMNS " FROM outbox "
	    "WHERE ($4::text IS NULL OR state = $4) "
	    "AND ($1::text IS NULL OR topic = $1) "
	    "AND ($2::bigint IS NULL OR id < $2::bigint) "
	    "ORDER BY id DESC LIMIT $3::int",
	    AGORA_STMT_READ },
	/* As agoractl outbox retry: due now, its attempts anew, and the
	 * workers that LISTEN woken. */
	{ "outbox_retry",
	    "WITH r AS (UPDATE outbox SET state = 'pending', attempts = 0, "
	    "next_attempt_at = now() WHERE id = $1::bigint AND state = 'dead' "
	    "RETURNING " OUTBOX_COLUMNS ") "
	    "SELECT r.*, pg_notify('agora_outbox', '') IS NULL FROM r" },
	{ "outbox_state", "SELECT state FROM outbox WHERE id = $1::bigint",
	    AGORA_STMT_READ },
	/* Newest first: the key, then the document.  $4 is the caller's own
	 * session, which no other user's list holds. */
	{ "session_list",
	    "SELECT s.id::text, json_build_object('id', s.id::text, "
	    "'created_at', agora_time(s.created_at), "
	    "'last_used_at', agora_time(s.last_used_at), "
	    "'user_agent', s.user_agent, 'ip', s.ip, "
	    "'expires_at', agora_time(t.expires_at), "
	    "'current', s.id IS NOT DISTINCT FROM $4::bigint) "
	    "FROM sessions s CROSS JOIN LATERAL (SELECT max(t.expires_at) "
	    "AS expires_at FROM refresh_tokens t WHERE " SESSION_LIVE ") t "
	    "WHERE t.expires_at IS NOT NULL AND s.user_id = $1::bigint AND "
	    "($2::bigint IS NULL OR s.id < $2::bigint) "
	    "ORDER BY s.id DESC LIMIT $3::int",
	    AGORA_STMT_READ },
	/* The session's row first, as a refresh locks it (auth.c), then,
	 * in a statement of its own that sees what a refresh that held the
	 * row made, every token of its family. */
	{ "session_lock",
	    "SELECT family FROM sessions WHERE id = $1::bigint "
	    "AND user_id = $2::bigint FOR NO KEY UPDATE" },
	/* Rotated tokens too: one may still refresh for a few seconds
	 * (refresh_reuse_grace, auth.c).  A row per token; ended when one
	 * of them was live. */
	{ "session_end",
	    "UPDATE refresh_tokens t SET revoked_at = now() FROM sessions s "
	    "WHERE s.id = $1::bigint AND s.user_id = $2::bigint AND "
	    "t.family = s.family AND t.revoked_at IS NULL "
	    "RETURNING t.rotated_at IS NULL AND t.expires_at > now()" },
	{ "sessions_end",
	    "SELECT user_sessions_end($1::bigint, $2::int, $3::bigint)::text" },
};

/* Ids are decimal text; anything else cannot name a user. */
static enum agora_err
send_user(
    struct agora_req *r, const char *stmt, int n, const char **vals, int write)
{
	PGresult *res;
	enum agora_err rc;

	rc = write ? agora_db_write(r, stmt, n, vals, &res)
	           : agora_db_query(r, stmt, n, vals, &res);
	if (rc != AGORA_OK)
		return rc;
	if (PQntuples(res) == 0)
		return agora_problem(
		    r, AGORA_E_NOT_FOUND, NULL, "No such user.");
	return agora_resp_json(r, 200, agora_user_json(res, 0));
}

static enum agora_err
get_me(struct agora_req *r)
{
	const char *vals[1] = { r->user };

	return send_user(r, "user_get", 1, vals, 0);
}

static enum agora_err
get_user(struct agora_req *r)
{
	const char *vals[1] = { r->params[0] };

	if (!agora_owner_or_admin(r, r->params[0]))
		return agora_not_found(r);
	return send_user(r, "user_get", 1, vals, 0);
}

enum { P_NAME, P_PASSWORD, P_CURRENT, P__MAX };

static const struct agora_field patch_fields[P__MAX] = {
	[P_NAME] = { "name", AGORA_F_STRING, 0, 1, 200 },
	[P_PASSWORD] = { "password", AGORA_F_STRING, 0, AGORA_PASSWORD_MIN,
	    AGORA_PASSWORD_MAX },
	[P_CURRENT] = { "current_password", AGORA_F_STRING, 0, 1,
	    AGORA_PASSWORD_MAX },
};

/* The new password's hash into hash, once the current one is proven. */
static enum agora_err
new_password(
    struct agora_req *r, const struct agora_value *v, char *hash, size_t len)
{
	const char *vals[1] = { r->user };
	PGresult *res;
	enum agora_err rc;
	int rehash;

	const struct agora_config *cfg = &r->ctx->cfg;
	const char *who = agora_printf(r, "u%s", r->user);

	if (!v[P_CURRENT].present)
		return agora_problem_field(r, AGORA_E_VALIDATION,
		    "current_password", "is required to change the password");
	/* A stolen access token must not turn this into a password oracle:
	 * wrong current passwords count like failed logins. */
	rc = agora_guard_enter(r, "pwfail", who, cfg->login_failures_max,
	    cfg->login_failure_window, (int)cfg->rate_limit_login_closed);
	if (rc != AGORA_OK)
		return rc;
	if ((rc = agora_db_query(r, "user_hash", 1, vals, &res)) != AGORA_OK)
		return rc;
	if (PQntuples(res) == 0 ||
	    !agora_password_verify(PQgetvalue(res, 0, 0), v[P_CURRENT].s,
	        v[P_CURRENT].len, &rehash))
		return agora_problem_field(
		    r, AGORA_E_VALIDATION, "current_password", "is wrong");
	agora_guard_pass(r, "pwfail", who, cfg->login_failure_window);
	return agora_password_hash(
	           v[P_PASSWORD].s, v[P_PASSWORD].len, hash, len) == 0
	    ? AGORA_OK
	    : AGORA_E_INTERNAL;
}

struct patch {
	const char *vals[3];
	PGresult *res;
};

static enum agora_err
tx_patch(struct agora_req *r, void *arg)
{
	struct patch *p = arg;
	enum agora_err rc;

	rc = agora_db_query(r, "user_update", 3, p->vals, &p->res);
	if (rc == AGORA_OK && p->vals[2] != NULL)
		rc = agora_db_query(r, "user_revoke_tokens", 1, p->vals, NULL);
	return rc;
}

static enum agora_err
patch_me(struct agora_req *r)
{
	struct agora_value v[P__MAX];
	char hash[AGORA_PASSWORD_HASH_MAX];
	struct patch p;
	enum agora_err rc;

	if ((rc = agora_valid_body(r, patch_fields, P__MAX, v)) != AGORA_OK)
		return rc;
	if (!v[P_NAME].present && !v[P_PASSWORD].present)
		return agora_problem_field(r, AGORA_E_VALIDATION, "name",
		    "give a name or a password to change");
	memset(&p, 0, sizeof(p));
	p.vals[0] = r->user;
	p.vals[1] = v[P_NAME].present ? v[P_NAME].s : NULL;
	if (v[P_PASSWORD].present) {
		if ((rc = new_password(r, v, hash, sizeof(hash))) != AGORA_OK)
			return rc;
		p.vals[2] = hash;
	}
	if ((rc = agora_db_tx(r, tx_patch, &p)) != AGORA_OK)
		return rc;
	if (PQntuples(p.res) == 0)
		return agora_problem(
		    r, AGORA_E_NOT_FOUND, NULL, "No such user.");
	if (p.vals[2] != NULL)
		agora_token_gen_set(r->ctx, r->user, PQgetvalue(p.res, 0, 7));
	return agora_resp_json(r, 200, agora_user_json(p.res, 0));
}

enum { A_ROLE, A_DISABLED, A__MAX };

static const struct agora_field admin_fields[A__MAX] = {
	[A_ROLE] = { "role", AGORA_F_STRING, 0, 1, 20 },
	[A_DISABLED] = { "disabled", AGORA_F_BOOL, 0, 0, 0 },
};

/*
 * Whether the request would take an admin's rights from the caller: a
 * role other than admin, or disabled, for their own account.  That would
 * end their own access at once, and for the last admin leave the shop
 * with none, which only agoractl could mend; another admin does it.  Two
 * admins who demote each other at once cannot both succeed: each change
 * holds a lock on its caller's row (user_admin_update) while it writes
 * the other's, so one waits for the other or is aborted by it (a
 * deadlock), and then finds its caller no longer an admin.
 */
static int
own_demotion(const struct agora_req *r, const struct agora_value *v)
{
	/* Both are canonical ids (agora_id_ok: no leading zero). */
	if (strcmp(r->params[0], r->user) != 0)
		return 0;
	return (v[A_ROLE].present && strcmp(v[A_ROLE].s, "admin") != 0) ||
	    (v[A_DISABLED].present && v[A_DISABLED].b);
}

/*
 * An admin changes a user's role, or disables or enables the account.
 * Either ends the user's access tokens (and the database revokes their
 * refresh tokens): memcached learns the new generation after the commit.
 * The database checks, in the same statement, that the caller is still
 * an admin with a current token (sql/0016); if not, the answer is 404, as
 * for no such user.
 */
static enum agora_err
patch_user(struct agora_req *r)
{
	struct agora_value v[A__MAX];
	const char *vals[5];
	PGresult *res;
	enum agora_err rc;

	if ((rc = agora_valid_body(r, admin_fields, A__MAX, v)) != AGORA_OK)
		return rc;
	if (!v[A_ROLE].present && !v[A_DISABLED].present)
		return agora_problem_field(r, AGORA_E_VALIDATION, "role",
		    "give role, disabled or both");
	if (v[A_ROLE].present && strcmp(v[A_ROLE].s, "customer") != 0 &&
	    strcmp(v[A_ROLE].s, "admin") != 0)
		return agora_problem_field(
		    r, AGORA_E_VALIDATION, "role", "must be customer or admin");
	if (own_demotion(r, v))
		return agora_problem(r, AGORA_E_CONFLICT, "own_account",
		    "An admin cannot demote or disable their own account; "
		    "another admin can.");
	vals[0] = r->user;
	vals[1] = agora_printf(r, "%lld", r->gen);
	vals[2] = r->params[0];
	vals[3] = v[A_ROLE].present ? v[A_ROLE].s : NULL;
	vals[4] = !v[A_DISABLED].present ? NULL
	    : v[A_DISABLED].b            ? "true"
	                                 : "false";
	rc = agora_db_write(r, "user_admin_update", 5, vals, &res);
	if (rc != AGORA_OK)
		return rc;
	if (PQntuples(res) == 0)
		return agora_problem(r, AGORA_E_NOT_FOUND, NULL,
		    "No such user (or you are no longer an admin).");
	agora_token_gen_set(
	    r->ctx, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 7));
	return agora_resp_json(r, 200, agora_user_json(res, 0));
}

static enum agora_err
list_users(struct agora_req *r)
{
	struct json_object *data;
	const char *vals[2], *after;
	long long limit;
	PGresult *res;
	enum agora_err rc;
	int i, n;

	if ((rc = agora_page_params_id(r, &limit, &after)) != AGORA_OK)
		return rc;
	vals[0] = after;
	vals[1] = agora_printf(r, "%lld", limit + 1);
	if ((rc = agora_db_query(r, "user_list", 2, vals, &res)) != AGORA_OK)
		return rc;
	n = PQntuples(res);
	data = json_object_new_array();
	for (i = 0; i < n && i < limit; i++)
		json_object_array_add(data, agora_user_json(res, i));
	return agora_resp_json(r, 200,
	    agora_page(r, data, n > limit,
	        n > limit ? PQgetvalue(res, (int)limit - 1, 0) : NULL));
}

/* --- sessions ---------------------------------------------------------- */

#define ME_SESSIONS "/api/v1/users/me/sessions"

/*
 * The user a sessions route is about: the caller under /users/me, else
 * the one named, whose sessions only they and admins see (404 for anyone
 * else, as for a user who does not exist).
 */
static enum agora_err
sessions_owner(struct agora_req *r, const char **owner)
{
	if (strncmp(r->route->pattern, ME_SESSIONS, strlen(ME_SESSIONS)) == 0) {
		*owner = r->user;
		return AGORA_OK;
	}
	*owner = r->params[0];
	return agora_owner_or_admin(r, *owner) ? AGORA_OK : agora_not_found(r);
}

static enum agora_err
list_sessions(struct agora_req *r)
{
	const char *vals[4], *after;
	long long limit;
	PGresult *res;
	enum agora_err rc;

	if ((rc = sessions_owner(r, &vals[0])) != AGORA_OK ||
	    (rc = agora_page_params_id(r, &limit, &after)) != AGORA_OK)
		return rc;
	vals[1] = after;
	vals[2] = agora_printf(r, "%lld", limit + 1);
	vals[3] = r->sid;
	if ((rc = agora_db_query(r, "session_list", 4, vals, &res)) != AGORA_OK)
		return rc;
	return agora_page_send(r, res, limit);
}

struct end {
	const char *vals[2]; /* the session, its user */
	int ended; /* it was live, and is no more */
};

static enum agora_err
tx_end_session(struct agora_req *r, void *arg)
{
	struct end *e = arg;
	PGresult *res;
	enum agora_err rc;
	int i;

	e->ended = 0;
	if ((rc = agora_db_query(r, "session_lock", 2, e->vals, NULL)) !=
	        AGORA_OK ||
	    (rc = agora_db_query(r, "session_end", 2, e->vals, &res)) !=
	        AGORA_OK)
		return rc;
	for (i = 0; i < PQntuples(res); i++)
		e->ended |= *PQgetvalue(res, i, 0) == 't';
	return AGORA_OK;
}

static enum agora_err
end_session(struct agora_req *r)
{
	struct end e;
	enum agora_err rc;

	memset(&e, 0, sizeof(e));
	if ((rc = sessions_owner(r, &e.vals[1])) != AGORA_OK)
		return rc;
	e.vals[0] = r->params[r->nparams - 1]; /* the session: last */
	if ((rc = agora_db_tx(r, tx_end_session, &e)) != AGORA_OK)
		return rc;
	if (!e.ended)
		return agora_problem(
		    r, AGORA_E_NOT_FOUND, NULL, "No such live session.");
	return agora_resp_raw(r, 204, NULL, NULL, 0);
}

/*
 * Log out everywhere.  The database checks again, under a lock, that an
 * admin caller still is one (sql/functions/accounts.sql); memcached
 * learns the new generation after the commit.
 */
static enum agora_err
end_sessions(struct agora_req *r)
{
	const char *vals[3];
	PGresult *res;
	enum agora_err rc;

	if ((rc = sessions_owner(r, &vals[2])) != AGORA_OK)
		return rc;
	vals[0] = r->user;
	vals[1] = agora_printf(r, "%lld", r->gen);
	rc = agora_db_write(r, "sessions_end", 3, vals, &res);
	if (rc != AGORA_OK)
		return rc;
	if (PQgetisnull(res, 0, 0))
		return agora_problem(r, AGORA_E_NOT_FOUND, NULL,
		    "No such user (or you are no longer an admin).");
	agora_token_gen_set(r->ctx, vals[2], PQgetvalue(res, 0, 0));
	return agora_resp_raw(r, 204, NULL, NULL, 0);
}

/* --- the outbox (admin) ------------------------------------------------ */

/* The live rows of a topic counted at most, by GET /outbox/stats. */
#define OUTBOX_COUNT_CAP "100000"

static enum agora_err
outbox_stats(struct agora_req *r)
{
	const char *vals[1] = { OUTBOX_COUNT_CAP };
	PGresult *res;
	enum agora_err rc;

	if ((rc = agora_db_query(r, "outbox_stats", 1, vals, &res)) != AGORA_OK)
		return rc;
	return agora_resp_cell(r, 200, res, 0, 0);
}

/* One row of OUTBOX_COLUMNS as the API shows it. */
static struct json_object *
outbox_json(const PGresult *res, int i)
{
	static const char *const names[OC__MAX] = { "id", "topic",
		"aggregate_id", "state", "attempts", "max_attempts",
		"next_attempt_at", "last_error", "created_at" };
	struct json_object *o = json_object_new_object();
	int c;

	for (c = 0; c < OC__MAX; c++)
		agora_json_set(o, names[c],
		    PQgetisnull(res, i, c) ? NULL
		        : c == OC_ATTEMPTS || c == OC_MAX
		        ? json_object_new_int64(atoll(PQgetvalue(res, i, c)))
		        : json_object_new_string(PQgetvalue(res, i, c)));
	return o;
}

static const char *const outbox_states[] = { "pending", "running", "dead",
	NULL };
enum { OF_STATE, OF_TOPIC };
static const struct agora_qfield outbox_fields[] = {
	[OF_STATE] = { "state", AGORA_Q_ONE_OF, 0, 0, outbox_states,
	    "bad_state", "state must be pending, running or dead." },
	[OF_TOPIC] = { "topic", AGORA_Q_TEXT, 0, 64, NULL, "bad_topic",
	    "topic must be at most 64 characters." },
};

static enum agora_err
list_outbox(struct agora_req *r)
{
	struct agora_qvalue v[AGORA_NELEM(outbox_fields)];
	struct json_object *data;
	const char *vals[4], *after;
	long long limit;
	PGresult *res;
	enum agora_err rc;
	int i, n, dead;

	if ((rc = agora_page_params_id(r, &limit, &after)) != AGORA_OK ||
	    (rc = agora_query_fields(r, outbox_fields,
	         AGORA_NELEM(outbox_fields), 0, v)) != AGORA_OK)
		return rc;
	dead = v[OF_STATE].s != NULL && strcmp(v[OF_STATE].s, "dead") == 0;
	vals[0] = v[OF_TOPIC].s;
	vals[1] = after;
	vals[2] = agora_printf(r, "%lld", limit + 1);
	vals[3] = v[OF_STATE].s;
	rc = agora_db_query(r, dead ? "outbox_list_dead" : "outbox_list",
	    dead ? 3 : 4, vals, &res);
	if (rc != AGORA_OK)
		return rc;
	n = PQntuples(res);
	data = json_object_new_array();
	for (i = 0; i < n && i < limit; i++)
		json_object_array_add(data, outbox_json(res, i));
	return agora_resp_json(r, 200,
	    agora_page(r, data, n > limit,
	        n > limit ? PQgetvalue(res, (int)limit - 1, OC_ID) : NULL));
}

static enum agora_err
retry_outbox(struct agora_req *r)
{
	const char *vals[1] = { r->params[0] };
	PGresult *res;
	enum agora_err rc;

	if ((rc = agora_db_write(r, "outbox_retry", 1, vals, &res)) != AGORA_OK)
		return rc;
	if (PQntuples(res) == 1)
		return agora_resp_json(r, 200, outbox_json(res, 0));
	if ((rc = agora_db_query(r, "outbox_state", 1, vals, &res)) != AGORA_OK)
		return rc;
	if (PQntuples(res) == 0)
		return agora_not_found(r);
	return agora_problem(r, AGORA_E_CONFLICT, "not_dead",
	    agora_printf(r,
	        "The row is %s, not dead: only a dead row is retried.",
	        PQgetvalue(res, 0, 0)));
}

static const struct agora_route routes[] = {
	{ "GET", "/api/v1/users/me", AGORA_BODY_NONE, get_me, AGORA_USER },
	{ "PATCH", "/api/v1/users/me", AGORA_BODY_JSON, patch_me, AGORA_USER },
	{ "GET", "/api/v1/users", AGORA_BODY_NONE, list_users, AGORA_ADMIN },
	{ "GET", "/api/v1/users/{user_id}", AGORA_BODY_NONE, get_user,
	    AGORA_USER },
	{ "PATCH", "/api/v1/users/{user_id}", AGORA_BODY_JSON, patch_user,
	    AGORA_ADMIN },
	{ "GET", ME_SESSIONS, AGORA_BODY_NONE, list_sessions, AGORA_USER },
	{ "DELETE", ME_SESSIONS, AGORA_BODY_NONE, end_sessions, AGORA_USER },
	{ "DELETE", ME_SESSIONS "/{session_id}", AGORA_BODY_NONE, end_session,
	    AGORA_USER },
	{ "GET", "/api/v1/users/{user_id}/sessions", AGORA_BODY_NONE,
	    list_sessions, AGORA_USER },
	{ "DELETE", "/api/v1/users/{user_id}/sessions", AGORA_BODY_NONE,
	    end_sessions, AGORA_USER },
	{ "DELETE", "/api/v1/users/{user_id}/sessions/{session_id}",
	    AGORA_BODY_NONE, end_session, AGORA_USER },
	{ "GET", "/api/v1/outbox/stats", AGORA_BODY_NONE, outbox_stats,
	    AGORA_ADMIN },
	{ "GET", "/api/v1/outbox", AGORA_BODY_NONE, list_outbox, AGORA_ADMIN },
	{ "POST", "/api/v1/outbox/{outbox_row_id}/retry", AGORA_BODY_NONE,
	    retry_outbox, AGORA_ADMIN },
};

static const struct agora_program program = {
	.name = "users",
	.routes = routes,
	.nroutes = AGORA_NELEM(routes),
	.stmts = stmts,
	.nstmts = AGORA_NELEM(stmts),
};

AGORA_MAIN(program)
