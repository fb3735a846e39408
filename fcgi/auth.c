/*
 * auth.c: the /api/v1/auth routes and /.well-known/jwks.json.
 *
 * Registration, login, refresh and logout.  Login answers an unknown email
 * exactly as a wrong password, after paying for a hash all the same, and
 * counts failures per email in memcached so that guessing one account is
 * cut off across every process and host.  Refresh tokens are 256 random
 * bits, stored as their SHA-256, rotated on every use; a rotated one
 * presented again revokes its whole family (a stolen copy was used).
 *
 * Each login is a session (sql/0023): its row records the user agent and
 * address of the login and of each refresh, for GET /users/me/sessions,
 * and access tokens carry its id (claim "sid").
 *
 * Registration queues a mail that verifies the address, and a forgotten
 * password a mail with a link to set a new one (sql/0024): agora-worker
 * makes each token and sends it, so that the database only ever holds
 * its SHA-256.  POST /auth/password/forgot writes the same outbox row for
 * any address, and the worker looks it up: its answer, its work and its
 * time are the same whether the email has an account or not.
 *
 * A browser asks at login for its refresh token as a cookie instead, one
 * that its scripts cannot read (HttpOnly), sent only over HTTPS (Secure),
 * never with a request another site starts (SameSite=Strict), and only
 * to the refresh and logout routes (one cookie for each path); refresh
 * and logout then take it from there when the body has none.
 */
#include "config.h"

#include <string.h>

#include "auth.h"
#include "shop.h"

#define COOKIE "agora_refresh"
#define AGENT_MAX 256 /* bytes of a User-Agent kept (sql/0023) */

/* The paths the cookie is sent to: one cookie each. */
static const char *const cookie_paths[] = { "/api/v1/auth/refresh",
	"/api/v1/auth/logout" };

static const struct agora_stmt stmts[] = {
	SIGNIN_STMTS,
	{ "user_insert",
	    "INSERT INTO users (email, name, password_hash) "
	    "VALUES (lower($1), $2, $3) RETURNING " AGORA_USER_COLUMNS },
	/* One row, with the email as the lookup folds it, account or not:
	 * columns as enum login_col says. */
	{ "user_by_email",
	    "SELECT lower($1), u.id::text, u.role, u.password_hash, "
	    "u.token_gen, u.disabled_at IS NOT NULL FROM (SELECT 1) x "
	    "LEFT JOIN users u ON u.email = lower($1)",
	    AGORA_STMT_READ },
	{ "user_rehash",
	    "UPDATE users SET password_hash = $2 WHERE id = $1::bigint" },
	{ "token_insert",
	    "INSERT INTO refresh_tokens (user_id, family, token_sha256, "
	    "expires_at) VALUES ($1::bigint, $2, $3, "
	    "now() + make_interval(secs => $4::bigint))" },
	{ "session_insert",
	    "INSERT INTO sessions (user_id, family, user_agent, ip) "
	    "VALUES ($1::bigint, $2, $3, $4) RETURNING id::text" },
	{ "session_touch",
	    "UPDATE sessions SET last_used_at = now(), user_agent = $2, "
	    "ip = $3 WHERE id = $1::bigint" },
	/*
	 * A refresh first locks the token's session, and shares a lock on
	 * its user, so that it is ordered with ending that session, or all
	 * of the user's (users.c), or a change of password or role: these
	 * take the same rows first, and the statement after sees the token
	 * a refresh made, or the refresh sees its token revoked.
	 */
	{ "session_lock",
	    "SELECT s.id FROM refresh_tokens rt "
	    "JOIN sessions s ON s.family = rt.family "
	    "JOIN users u ON u.id = rt.user_id WHERE rt.token_sha256 = $1 "
	    "FOR NO KEY UPDATE OF s FOR SHARE OF u" },
	/* Columns as enum take_col says. */
	{ "token_take",
	    "SELECT rt.id::text, rt.user_id::text, rt.family, "
	    "rt.rotated_at IS NOT NULL OR rt.revoked_at IS NOT NULL, "
	    "rt.expires_at < now(), u.role, u.token_gen, "
	    "u.disabled_at IS NOT NULL, s.id::text, rt.revoked_at IS NULL AND "
	    "rt.rotated_at > now() - make_interval(secs => $2::bigint) "
	    "FROM refresh_tokens rt "
	    "JOIN users u ON u.id = rt.user_id "
	    "JOIN sessions s ON s.family = rt.family "
	    "WHERE rt.token_sha256 = $1 FOR UPDATE OF rt" },
	{ "token_rotate",
	    "UPDATE refresh_tokens SET rotated_at = now() WHERE id = "
	    "$1::bigint" },
	/* Counts the live tokens it revoked: none, when the session was
	 * over already (a cookie that outlived its logout). */
	{ "family_revoke",
	    "WITH v AS (UPDATE refresh_tokens SET revoked_at = now() "
	    "WHERE family = $1 AND revoked_at IS NULL "
	    "RETURNING rotated_at IS NULL AND expires_at > now() AS live) "
	    "SELECT count(*) FILTER (WHERE live) FROM v" },
	/* A use within the grace replaces the token the first use made,
	 * whose answer was lost: one live token per session, so that the
	 * lost one, presented later, is a reuse that ends the session. */
	{ "family_replace",
	    "UPDATE refresh_tokens SET revoked_at = now() WHERE family = $1 "
	    "AND rotated_at IS NULL AND revoked_at IS NULL" },
	{ "logout_lock",
	    "SELECT s.id FROM refresh_tokens rt "
	    "JOIN sessions s ON s.family = rt.family "
	    "WHERE rt.token_sha256 = $1 AND rt.user_id = $2::bigint "
	    "FOR NO KEY UPDATE OF s" },
	{ "email_fold", "SELECT lower($1)", AGORA_STMT_READ },
	/* For any address: the worker looks it up (account.c). */
	{ "forgot_queue",
	    "SELECT outbox_add('account.forgot', 'forgot', "
	    "jsonb_build_object('email', $1::text)) IS NULL" },
	{ "mail_queue",
	    "SELECT account_mail_queue($1::bigint, $2, $3, $4::int, $5::int)" },
	{ "token_use", "SELECT * FROM account_token_use($1, $2, $3)" },
	{ "user_email", "SELECT email FROM users WHERE id = $1::bigint",
	    AGORA_STMT_READ },
	{ "logout",
	    "UPDATE refresh_tokens SET revoked_at = now() WHERE family IN "
	    "(SELECT family FROM refresh_tokens WHERE token_sha256 = $1 "
	    "AND user_id = $2::bigint) AND revoked_at IS NULL" },
};

static void
sha256_hex(const char *s, char out[65])
{
	agora_sha256_hex(s, strlen(s), out);
}

/* --- register ----------------------------------------------------------- */

enum { R_EMAIL, R_PASSWORD, R_NAME, R__MAX };

static const struct agora_field register_fields[R__MAX] = {
	[R_EMAIL] = { "email", AGORA_F_STRING, AGORA_F_REQUIRED, 3, 254 },
	[R_PASSWORD] = { "password", AGORA_F_STRING, AGORA_F_REQUIRED,
	    AGORA_PASSWORD_MIN, AGORA_PASSWORD_MAX },
	[R_NAME] = { "name", AGORA_F_STRING, AGORA_F_REQUIRED, 1, 200 },
};

/* The body against f; a registration's email must look like one too. */
static enum agora_err
valid_body(struct agora_req *r, const struct agora_field *f, size_t n,
    struct agora_value *v)
{
	enum agora_err rc;

	if ((rc = agora_valid_body(r, f, n, v)) != AGORA_OK)
		return rc;
	if (f == register_fields &&
	    !agora_email_valid(v[R_EMAIL].s, v[R_EMAIL].len))
		return agora_problem_field(
		    r, AGORA_E_VALIDATION, "email", "is not an email address");
	return AGORA_OK;
}

/*
 * Queue a mail of purpose for user, or else for the account of email; the
 * database holds it to password_reset_max an hour (account_mail_queue).
 */
static enum agora_err
mail_queue(struct agora_req *r, const char *user, const char *email,
    const char *purpose, PGresult **res)
{
	const struct agora_config *cfg = &r->ctx->cfg;
	const char *vals[5];

	vals[0] = user;
	vals[1] = email;
	vals[2] = purpose;
	vals[3] = agora_printf(r, "%lld",
	    strcmp(purpose, "verify") == 0 ? cfg->email_verify_ttl
	                                   : cfg->password_reset_ttl);
	vals[4] = agora_printf(r, "%lld", cfg->password_reset_max);
	return agora_db_query(r, "mail_queue", 5, vals, res);
}

struct mail {
	const char *user, *email, *purpose;
	PGresult *res; /* how many were queued (0 or 1), or minus a wait */
};

static enum agora_err
tx_mail(struct agora_req *r, void *arg)
{
	struct mail *m = arg;

	return mail_queue(r, m->user, m->email, m->purpose, &m->res);
}

struct registration {
	const char *vals[3]; /* email, name, password hash */
	PGresult *res;
};

/* The account, and the mail that verifies its address, in one go. */
static enum agora_err
tx_register(struct agora_req *r, void *arg)
{
	struct registration *g = arg;
	enum agora_err rc;

	if ((rc = agora_db_query(r, "user_insert", 3, g->vals, &g->res)) !=
	    AGORA_OK)
		return rc;
	return mail_queue(r, PQgetvalue(g->res, 0, 0), NULL, "verify", NULL);
}

static enum agora_err
post_register(struct agora_req *r)
{
	struct agora_value v[R__MAX];
	char hash[AGORA_PASSWORD_HASH_MAX];
	struct registration g;
	enum agora_err rc;

	if ((rc = valid_body(r, register_fields, R__MAX, v)) != AGORA_OK)
		return rc;
	if (agora_password_hash(
	        v[R_PASSWORD].s, v[R_PASSWORD].len, hash, sizeof(hash)) != 0)
		return AGORA_E_INTERNAL;
	g.vals[0] = v[R_EMAIL].s;
	g.vals[1] = v[R_NAME].s;
	g.vals[2] = hash;
	g.res = NULL;
	rc = agora_db_tx(r, tx_register, &g);
	if (rc == AGORA_E_CONFLICT)
		return agora_problem(
		    r, rc, "email_taken", "An account with this email exists.");
	if (rc != AGORA_OK)
		return rc;
	agora_resp_header(r, "Location",
	    agora_printf(r, "/api/v1/users/%s", PQgetvalue(g.res, 0, 0)));
	return agora_resp_json(r, 201, agora_user_json(g.res, 0));
}

/* --- tokens ------------------------------------------------------------- */

/*
 * Set the refresh cookies to token for ttl seconds, or clear them (token
 * NULL): a browser replaces a cookie of the same name and path.
 */
static void
set_cookies(struct agora_req *r, const char *token, long long ttl)
{
	size_t i;

	for (i = 0; i < AGORA_NELEM(cookie_paths); i++)
		agora_resp_header_add(r, "Set-Cookie",
		    agora_printf(r,
		        COOKIE "=%s; Path=%s; Max-Age=%lld; HttpOnly; Secure; "
		               "SameSite=Strict",
		        token ? token : "", cookie_paths[i], token ? ttl : 0));
}

/*
 * The client's User-Agent as a session shows it: its first AGENT_MAX
 * bytes, each outside printable ASCII as '?' (it is the client's text,
 * of any bytes, and goes into a text column and JSON).
 */
static const char *
agent_of(struct agora_req *r)
{
	const char *ua = agora_param(r, "HTTP_USER_AGENT");
	char *out;
	size_t i, n;

	if (ua == NULL)
		return "";
	n = strnlen(ua, AGENT_MAX);
	if ((out = agora_alloc(r, n + 1)) == NULL)
		return "";
	for (i = 0; i < n; i++)
		out[i] = ua[i] >= 0x20 && ua[i] < 0x7f ? ua[i] : '?';
	out[n] = '\0';
	return out;
}

/*
 * g's session: a new one for a login (g->family NULL), else the one
 * being refreshed, which records this use.
 */
static enum agora_err
session_of(struct agora_req *r, struct grant *g)
{
	char fam[33];
	const char *vals[4];
	PGresult *res;
	enum agora_err rc;

	if (g->family != NULL) {
		vals[0] = g->sid;
		vals[1] = agent_of(r);
		vals[2] = agora_client_addr(r);
		return agora_db_query(r, "session_touch", 3, vals, NULL);
	}
	agora_random_hex(fam, 16);
	if ((g->family = agora_strdup(r, fam)) == NULL)
		return AGORA_E_TOO_LARGE;
	vals[0] = g->user;
	vals[1] = g->family;
	vals[2] = agent_of(r);
	vals[3] = agora_client_addr(r);
	if ((rc = agora_db_query(r, "session_insert", 4, vals, &res)) !=
	    AGORA_OK)
		return rc;
	g->sid = PQgetvalue(res, 0, 0);
	return AGORA_OK;
}

/* Store a new refresh token for g->user in g's session. */
static enum agora_err
refresh_new(struct agora_req *r, struct grant *g)
{
	char hash[65];
	const char *vals[4];
	enum agora_err rc;

	agora_secret_new(g->token, hash);
	if ((rc = session_of(r, g)) != AGORA_OK)
		return rc;
	vals[0] = g->user;
	vals[1] = g->family;
	vals[2] = hash;
	vals[3] = agora_printf(r, "%lld", r->ctx->cfg.refresh_token_ttl);
	return agora_db_query(r, "token_insert", 4, vals, NULL);
}

static enum agora_err
send_tokens(struct agora_req *r, const struct grant *g)
{
	struct json_object *o;
	char *access;

	access = agora_token_issue(r, g->user, g->role, g->gen, g->sid);
	if (access == NULL)
		return agora_problem(r, AGORA_E_UNAVAILABLE, NULL,
		    "Access tokens cannot be issued now.");
	o = json_object_new_object();
	json_object_object_add(
	    o, "access_token", json_object_new_string(access));
	json_object_object_add(
	    o, "token_type", json_object_new_string("Bearer"));
	json_object_object_add(o, "expires_in",
	    json_object_new_int64(r->ctx->cfg.access_token_ttl));
	if (g->cookie)
		set_cookies(r, g->token, r->ctx->cfg.refresh_token_ttl);
	else
		json_object_object_add(
		    o, "refresh_token", json_object_new_string(g->token));
	return agora_resp_json(r, 200, o);
}

static enum agora_err
tx_new_login(struct agora_req *r, void *arg)
{
	struct grant *g = arg;

	/* A retry starts anew: the session of a rolled-back try is gone. */
	g->family = NULL;
	g->sid = NULL;
	return refresh_new(r, g);
}

enum agora_err
auth_session_start(struct agora_req *r, struct grant *g, const char *redirect)
{
	enum agora_err rc;

	if ((rc = agora_db_tx(r, tx_new_login, g)) != AGORA_OK)
		return rc;
	r->user = g->user;
	if (redirect == NULL)
		return send_tokens(r, g);
	set_cookies(r, g->token, r->ctx->cfg.refresh_token_ttl);
	agora_resp_header(r, "Location", redirect);
	return agora_resp_raw(r, 303, NULL, NULL, 0);
}

/* --- login -------------------------------------------------------------- */

enum { L_EMAIL, L_PASSWORD, L_COOKIE, L__MAX };

static const struct agora_field login_fields[L__MAX] = {
	[L_EMAIL] = { "email", AGORA_F_STRING, AGORA_F_REQUIRED, 1, 254 },
	[L_PASSWORD] = { "password", AGORA_F_STRING, AGORA_F_REQUIRED, 1,
	    AGORA_PASSWORD_MAX },
	[L_COOKIE] = { "refresh_token_cookie", AGORA_F_BOOL, 0, 0, 0 },
};

static enum agora_err
invalid_credentials(struct agora_req *r)
{
	return agora_problem(r, AGORA_E_UNAUTHORIZED, "invalid_credentials",
	    "The email or the password is wrong.");
}

static void
maybe_rehash(struct agora_req *r, const char *id, const struct agora_value *pw)
{
	char hash[AGORA_PASSWORD_HASH_MAX];
	const char *vals[2] = { id, hash };

	if (agora_password_hash(pw->s, pw->len, hash, sizeof(hash)) == 0)
		(void)agora_db_write(r, "user_rehash", 2, vals, NULL);
}

enum login_col { LC_FOLDED, LC_ID, LC_ROLE, LC_HASH, LC_GEN, LC_DISABLED };

/*
 * Look the account up and count the attempt against its failures.  The
 * counter's key is a digest of the email as PostgreSQL's lower() folds it,
 * the folding the lookup itself uses, so that every spelling of one
 * address (a Kelvin sign for a K, a dotted capital I) counts as one, for
 * an account as for no account (any text makes a valid memcached key).
 */
static enum agora_err
login_lookup(struct agora_req *r, const struct agora_value *v, PGresult **res,
    const char **key)
{
	const struct agora_config *cfg = &r->ctx->cfg;
	const char *vals[1] = { v[L_EMAIL].s };
	char hex[65];
	enum agora_err rc;

	if ((rc = agora_db_query(r, "user_by_email", 1, vals, res)) != AGORA_OK)
		return rc;
	if (PQntuples(*res) != 1)
		return AGORA_E_INTERNAL;
	sha256_hex(PQgetvalue(*res, 0, LC_FOLDED), hex);
	if ((*key = agora_strdup(r, hex)) == NULL)
		return AGORA_E_TOO_LARGE;
	return agora_guard_enter(r, "loginfail", *key, cfg->login_failures_max,
	    cfg->login_failure_window, (int)cfg->rate_limit_login_closed);
}

static enum agora_err
post_login(struct agora_req *r)
{
	struct agora_value v[L__MAX];
	struct grant g;
	const char *key;
	PGresult *res;
	enum agora_err rc;
	int rehash = 0;

	if ((rc = valid_body(r, login_fields, L__MAX, v)) != AGORA_OK)
		return rc;
	if (!agora_auth_can_sign(r->ctx))
		return agora_problem(r, AGORA_E_UNAVAILABLE, NULL,
		    "Access tokens cannot be issued now.");
	if ((rc = login_lookup(r, v, &res, &key)) != AGORA_OK)
		return rc;
	if (PQgetisnull(res, 0, LC_ID)) {
		agora_password_dummy(v[L_PASSWORD].s, v[L_PASSWORD].len);
		return invalid_credentials(r);
	}
	if (!agora_password_verify(PQgetvalue(res, 0, LC_HASH), v[L_PASSWORD].s,
	        v[L_PASSWORD].len, &rehash))
		return invalid_credentials(r);
	agora_guard_pass(r, "loginfail", key, r->ctx->cfg.login_failure_window);
	if (*PQgetvalue(res, 0, LC_DISABLED) == 't')
		return agora_problem(r, AGORA_E_FORBIDDEN, "account_disabled",
		    "This account is disabled.");
	memset(&g, 0, sizeof(g));
	g.user = PQgetvalue(res, 0, LC_ID);
	g.role = PQgetvalue(res, 0, LC_ROLE);
	g.gen = PQgetvalue(res, 0, LC_GEN);
	g.cookie = v[L_COOKIE].present && v[L_COOKIE].b;
	if (rehash)
		maybe_rehash(r, g.user, &v[L_PASSWORD]);
	return auth_session_start(r, &g, NULL);
}

/* --- refresh and logout ------------------------------------------------- */

static const struct agora_field token_fields[] = {
	{ "refresh_token", AGORA_F_STRING, 0, 1, 200 },
};

/*
 * The refresh token of the body, or else of the cookie (*cookie set);
 * 422 when there is neither, as when a required field is missing.
 */
static enum agora_err
token_of(struct agora_req *r, const char **token, int *cookie)
{
	struct agora_value v[1];
	enum agora_err rc;

	if ((rc = valid_body(r, token_fields, 1, v)) != AGORA_OK)
		return rc;
	*cookie = !v[0].present;
	*token = v[0].present ? v[0].s : agora_cookie(r, COOKIE);
	if (*token == NULL)
		return agora_problem_field(r, AGORA_E_VALIDATION,
		    "refresh_token", "is required (or the refresh cookie)");
	return AGORA_OK;
}

enum refresh_outcome { RF_OK, RF_GRACE, RF_INVALID, RF_REUSED };

/* The columns of token_take. */
enum take_col {
	TC_ID,
	TC_USER,
	TC_FAMILY,
	TC_SPENT,
	TC_EXPIRED,
	TC_ROLE,
	TC_GEN,
	TC_DISABLED,
	TC_SESSION,
	TC_GRACE /* rotated within refresh_reuse_grace, not revoked */
};

struct refresh {
	const char *hash;
	struct grant g;
	enum refresh_outcome outcome;
};

/*
 * Take the token under a row lock, so that two uses of one token are
 * ordered: the second sees it rotated and revokes the family, unless it
 * comes within refresh_reuse_grace of the first.  A browser sends its
 * cookie twice that fast when two tabs open at once, or a page reloads
 * while its refresh is on the way and the answer's new cookie is lost:
 * the second use then gets a token of the family too.
 */
static enum agora_err
tx_refresh(struct agora_req *r, void *arg)
{
	struct refresh *rf = arg;
	const char *vals[2] = { rf->hash, NULL };
	PGresult *res;
	enum agora_err rc;

	rf->outcome = RF_INVALID;
	vals[1] = agora_printf(r, "%lld", r->ctx->cfg.refresh_reuse_grace);
	if ((rc = agora_db_query(r, "session_lock", 1, vals, NULL)) !=
	        AGORA_OK ||
	    (rc = agora_db_query(r, "token_take", 2, vals, &res)) != AGORA_OK)
		return rc;
	/* Expired, or its account disabled (whose tokens 0014 revoked). */
	if (PQntuples(res) == 0 || *PQgetvalue(res, 0, TC_EXPIRED) == 't' ||
	    *PQgetvalue(res, 0, TC_DISABLED) == 't')
		return AGORA_OK;
	rf->g.family = PQgetvalue(res, 0, TC_FAMILY);
	vals[0] = rf->g.family;
	if (*PQgetvalue(res, 0, TC_SPENT) == 't' &&
	    *PQgetvalue(res, 0, TC_GRACE) != 't') {
		if ((rc = agora_db_query(r, "family_revoke", 1, vals, &res)) ==
		        AGORA_OK &&
		    strcmp(PQgetvalue(res, 0, 0), "0") != 0)
			rf->outcome = RF_REUSED;
		return rc;
	}
	if (*PQgetvalue(res, 0, TC_SPENT) == 't') {
		rf->outcome = RF_GRACE;
		rc = agora_db_query(r, "family_replace", 1, vals, NULL);
	} else {
		vals[0] = PQgetvalue(res, 0, TC_ID);
		rc = agora_db_query(r, "token_rotate", 1, vals, NULL);
	}
	if (rc != AGORA_OK)
		return rc;
	rf->g.user = PQgetvalue(res, 0, TC_USER);
	rf->g.role = PQgetvalue(res, 0, TC_ROLE);
	rf->g.gen = PQgetvalue(res, 0, TC_GEN);
	rf->g.sid = PQgetvalue(res, 0, TC_SESSION);
	if (rf->outcome != RF_GRACE)
		rf->outcome = RF_OK;
	return refresh_new(r, &rf->g);
}

static enum agora_err
post_refresh(struct agora_req *r)
{
	struct refresh rf;
	char hash[65];
	const char *token;
	enum agora_err rc;

	memset(&rf, 0, sizeof(rf));
	if ((rc = token_of(r, &token, &rf.g.cookie)) != AGORA_OK)
		return rc;
	/* Never spend a refresh token on a pair that cannot be issued. */
	if (!agora_auth_can_sign(r->ctx))
		return agora_problem(r, AGORA_E_UNAVAILABLE, NULL,
		    "Access tokens cannot be issued now.");
	sha256_hex(token, hash);
	rf.hash = hash;
	if ((rc = agora_db_tx(r, tx_refresh, &rf)) != AGORA_OK)
		return rc;
	if (rf.outcome == RF_REUSED)
		agora_log("warning",
		    "a spent refresh token was presented while its session "
		    "was live; the session is revoked");
	if (rf.outcome == RF_GRACE)
		agora_log("info",
		    "a refresh token was presented again within "
		    "refresh_reuse_grace; the token its first use made is "
		    "replaced");
	if (rf.outcome != RF_OK && rf.outcome != RF_GRACE) {
		/* A dead cookie is of no use to the browser: drop it. */
		if (rf.g.cookie)
			set_cookies(r, NULL, 0);
		return agora_problem(r, AGORA_E_UNAUTHORIZED,
		    "invalid_refresh_token",
		    "The refresh token is invalid, expired or revoked.");
	}
	r->user = rf.g.user;
	return send_tokens(r, &rf.g);
}

/*
 * The session's row first, as a refresh takes it: a refresh on the way
 * finishes before, and the revoke sees the token it made.
 */
static enum agora_err
tx_logout(struct agora_req *r, void *arg)
{
	const char **vals = arg;
	enum agora_err rc;

	if ((rc = agora_db_query(r, "logout_lock", 2, vals, NULL)) != AGORA_OK)
		return rc;
	return agora_db_query(r, "logout", 2, vals, NULL);
}

/* The refresh cookies a logout revokes at most (one, and planted ones). */
#define LOGOUT_COOKIES 4

/*
 * The body's token, or every refresh cookie sent: refresh takes none of
 * two, but a logout that did nothing would leave the session live behind
 * a shopper who saw it end.  Each is revoked only if it is the caller's,
 * so a token planted from another account is never touched.
 */
static enum agora_err
post_logout(struct agora_req *r)
{
	struct agora_value v[1];
	char hash[65];
	const char *vals[2], *tokens[LOGOUT_COOKIES];
	enum agora_err rc;
	int n, i;

	if ((rc = valid_body(r, token_fields, 1, v)) != AGORA_OK)
		return rc;
	tokens[0] = v[0].s;
	n = v[0].present ? 1 : agora_cookies(r, COOKIE, tokens, LOGOUT_COOKIES);
	if (n == 0)
		return agora_problem_field(r, AGORA_E_VALIDATION,
		    "refresh_token", "is required (or the refresh cookie)");
	vals[1] = r->user;
	for (i = 0; i < n && i < LOGOUT_COOKIES; i++) {
		if (tokens[i] == NULL)
			continue;
		sha256_hex(tokens[i], hash);
		vals[0] = hash;
		/* 204 whether or not it was the caller's: nothing to probe. */
		if ((rc = agora_db_tx(r, tx_logout, vals)) != AGORA_OK)
			return rc;
	}
	if (!v[0].present)
		set_cookies(r, NULL, 0);
	return agora_resp_raw(r, 204, NULL, NULL, 0);
}

/* --- email verification and password reset ------------------------------ */

enum { T_TOKEN, T_PASSWORD, T__MAX };

static const struct agora_field verify_fields[] = {
	{ "token", AGORA_F_STRING, AGORA_F_REQUIRED, 1, 200 },
};

static const struct agora_field reset_fields[T__MAX] = {
	[T_TOKEN] = { "token", AGORA_F_STRING, AGORA_F_REQUIRED, 1, 200 },
	[T_PASSWORD] = { "password", AGORA_F_STRING, AGORA_F_REQUIRED,
	    AGORA_PASSWORD_MIN, AGORA_PASSWORD_MAX },
};

/*
 * Use the body's token for purpose (with a new password hash for a
 * reset): 422 on the token field when it is unknown, used, expired, of
 * another purpose, or for an address the account no longer has.
 */
/*
 * A reset proves the owner through their mail: the failed logins and
 * password changes counted against the account (an attacker's, often,
 * which locked the owner out) are forgotten, so the new password works
 * at once.  Best effort: the reset stands if the cache cannot say.
 */
static void
failures_forget(struct agora_req *r, const char *user)
{
	const struct agora_config *cfg = &r->ctx->cfg;
	const char *vals[1] = { user };
	PGresult *res;
	char key[65];

	agora_guard_clear(r, "pwfail", agora_printf(r, "u%s", user),
	    cfg->login_failure_window);
	if (agora_db_query(r, "user_email", 1, vals, &res) != AGORA_OK ||
	    PQntuples(res) != 1)
		return;
	sha256_hex(PQgetvalue(res, 0, 0), key);
	agora_guard_clear(r, "loginfail", key, cfg->login_failure_window);
}

static enum agora_err
token_use(struct agora_req *r, const char *token, const char *purpose,
    const char *password)
{
	char hash[65];
	const char *vals[3] = { hash, purpose, password };
	PGresult *res;
	enum agora_err rc;

	sha256_hex(token, hash);
	if ((rc = agora_db_write(r, "token_use", 3, vals, &res)) != AGORA_OK)
		return rc;
	if (PQntuples(res) == 0)
		return agora_problem_field(r, AGORA_E_VALIDATION, "token",
		    "is unknown, used or expired");
	agora_token_gen_set(
	    r->ctx, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
	if (password != NULL)
		failures_forget(r, PQgetvalue(res, 0, 0));
	return agora_resp_raw(r, 204, NULL, NULL, 0);
}

static enum agora_err
post_verify(struct agora_req *r)
{
	struct agora_value v[1];
	enum agora_err rc;

	if ((rc = valid_body(r, verify_fields, 1, v)) != AGORA_OK)
		return rc;
	return token_use(r, v[0].s, "verify", NULL);
}

static enum agora_err
post_verify_resend(struct agora_req *r)
{
	const struct agora_config *cfg = &r->ctx->cfg;
	struct mail m = { r->user, NULL, "verify", NULL };
	enum agora_err rc;

	rc = agora_rate_limit_quiet(r, "verifymail",
	    agora_printf(r, "u%s", r->user), cfg->password_reset_max, 3600);
	if (rc != AGORA_OK || (rc = agora_db_tx(r, tx_mail, &m)) != AGORA_OK)
		return rc;
	/* The database's count, which holds when memcached's could not:
	 * minus the seconds until another mail may go. */
	if (PQgetvalue(m.res, 0, 0)[0] == '-') {
		agora_resp_header(
		    r, "Retry-After", PQgetvalue(m.res, 0, 0) + 1);
		return agora_problem(r, AGORA_E_RATE_LIMITED, NULL,
		    "Too many verification mails this hour; try again later.");
	}
	if (strcmp(PQgetvalue(m.res, 0, 0), "0") == 0)
		return agora_problem(r, AGORA_E_CONFLICT, "already_verified",
		    "The account's email is verified already.");
	return agora_resp_raw(r, 202, NULL, NULL, 0);
}

static const struct agora_field forgot_fields[] = {
	{ "email", AGORA_F_STRING, AGORA_F_REQUIRED, 3, 254 },
};

/*
 * 202 whether or not the email has an account: the same statement runs
 * either way (inserting a row or none), so the answer and its time tell
 * nothing.  Mails to one address are limited per hour, whoever asks.
 */
static enum agora_err
post_forgot(struct agora_req *r)
{
	const struct agora_config *cfg = &r->ctx->cfg;
	char key[65];
	struct agora_value v[1];
	const char *vals[1];
	PGresult *res;
	enum agora_err rc;

	if ((rc = valid_body(r, forgot_fields, 1, v)) != AGORA_OK)
		return rc;
	if (!agora_email_valid(v[0].s, v[0].len))
		return agora_problem_field(
		    r, AGORA_E_VALIDATION, "email", "is not an email address");
	/* As login counts failures: per address as lower() folds it, so
	 * that no spelling of it is a way past the limit. */
	vals[0] = v[0].s;
	if ((rc = agora_db_query(r, "email_fold", 1, vals, &res)) != AGORA_OK)
		return rc;
	sha256_hex(PQgetvalue(res, 0, 0), key);
	rc = agora_rate_limit_quiet(
	    r, "resetmail", key, cfg->password_reset_max, 3600);
	if (rc != AGORA_OK ||
	    (rc = agora_db_write(r, "forgot_queue", 1, vals, NULL)) != AGORA_OK)
		return rc;
	return agora_resp_raw(r, 202, NULL, NULL, 0);
}

static enum agora_err
post_reset(struct agora_req *r)
{
	char hash[AGORA_PASSWORD_HASH_MAX];
	struct agora_value v[T__MAX];
	enum agora_err rc;

	if ((rc = valid_body(r, reset_fields, T__MAX, v)) != AGORA_OK)
		return rc;
	if (agora_password_hash(
	        v[T_PASSWORD].s, v[T_PASSWORD].len, hash, sizeof(hash)) != 0)
		return AGORA_E_INTERNAL;
	return token_use(r, v[T_TOKEN].s, "reset", hash);
}

static enum agora_err
get_jwks(struct agora_req *r)
{
	const char *jwks = agora_auth_jwks(r->ctx);

	if (jwks == NULL)
		return agora_problem(r, AGORA_E_UNAVAILABLE, NULL,
		    "The signing keys are not configured.");
	agora_resp_header(r, "Cache-Control", "public, max-age=300");
	return agora_resp_raw(r, 200, "application/json", jwks, strlen(jwks));
}

static const struct agora_route routes[] = {
	{ "POST", "/api/v1/auth/register", AGORA_BODY_JSON, post_register,
	    AGORA_ANON, AGORA_RL_AUTH },
	{ "POST", "/api/v1/auth/login", AGORA_BODY_JSON, post_login, AGORA_ANON,
	    AGORA_RL_AUTH },
	{ "POST", "/api/v1/auth/refresh", AGORA_BODY_JSON, post_refresh,
	    AGORA_ANON, AGORA_RL_AUTH },
	{ "POST", "/api/v1/auth/logout", AGORA_BODY_JSON, post_logout,
	    AGORA_USER, AGORA_RL_API },
	{ "POST", "/api/v1/auth/verify", AGORA_BODY_JSON, post_verify,
	    AGORA_ANON, AGORA_RL_AUTH },
	{ "POST", "/api/v1/auth/verify/resend", AGORA_BODY_NONE,
	    post_verify_resend, AGORA_USER, AGORA_RL_AUTH },
	{ "POST", "/api/v1/auth/password/forgot", AGORA_BODY_JSON, post_forgot,
	    AGORA_ANON, AGORA_RL_AUTH },
	{ "POST", "/api/v1/auth/password/reset", AGORA_BODY_JSON, post_reset,
	    AGORA_ANON, AGORA_RL_AUTH },
	{ "GET", "/.well-known/jwks.json", AGORA_BODY_NONE, get_jwks,
	    AGORA_ANON, AGORA_RL_NONE },
	{ "GET", "/api/v1/auth/providers", AGORA_BODY_NONE, signin_providers,
	    AGORA_ANON, AGORA_RL_API },
	{ "GET", "/api/v1/auth/providers/{provider_name}/start",
	    AGORA_BODY_NONE, signin_start, AGORA_ANON, AGORA_RL_AUTH },
	{ "GET", "/api/v1/auth/providers/{provider_name}/callback",
	    AGORA_BODY_NONE, signin_callback, AGORA_ANON, AGORA_RL_AUTH },
	{ "GET", "/api/v1/auth/identities", AGORA_BODY_NONE, signin_identities,
	    AGORA_USER, AGORA_RL_API },
	{ "POST", "/api/v1/auth/identities/{provider_name}",
	    AGORA_BODY_JSON_OPTIONAL, signin_link, AGORA_USER, AGORA_RL_AUTH },
	{ "DELETE", "/api/v1/auth/identities/{provider_name}", AGORA_BODY_NONE,
	    signin_unlink, AGORA_USER, AGORA_RL_API },
};

static const struct agora_program program = {
	.name = "auth",
	.routes = routes,
	.nroutes = AGORA_NELEM(routes),
	.stmts = stmts,
	.nstmts = AGORA_NELEM(stmts),
	.needs = AGORA_NEEDS_PROVIDERS,
};

AGORA_MAIN(program)
