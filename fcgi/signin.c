/*
 * signin.c: signing in with a provider, the auth program's routes for it
 * (doc/sign-in.md); oidc.c speaks to the provider.
 *
 * The start route makes a flow (sql/0025): a state, a nonce and a PKCE
 * verifier, stored with the SHA-256 of the state as key, and sends the
 * browser to the provider with the state also in a cookie of its own
 * (HttpOnly, SameSite=Lax so that the provider's redirect brings it
 * back).  The callback takes the flow only when the state of the redirect
 * is the browser's: a sign-in that another site started in this browser
 * (login CSRF) has no such cookie.  A flow works once and for ten
 * minutes.  The identity then signs in to its account, is linked to the
 * signed-in account that asked, or makes an account (oauth_sign_in,
 * sql/functions/accounts.sql); an unverified email is never trusted.
 *
 * A browser's sign-in ends as a redirect: 303 to its return_to page with
 * the refresh cookie set, or to the login (or account) page with
 * ?sign_in_error=CODE.  A client that asked for response=json gets the
 * token pair of a login, or the problem.  Linking is a browser's (the
 * account page's): it ends as a redirect too.
 */
#include "config.h"

#include <string.h>

#include <sodium.h>

#include "auth.h"
#include "oidc.h"
#include "shop.h"

/* __Host-: only this host, over HTTPS, at Path=/, can set it (no
 * sibling subdomain can plant one). */
#define FLOW_COOKIE "__Host-agora_signin"
#define FLOW_PATH "/api/v1/auth/providers/"
#define FLOW_TTL_S 600
#define RETURN_MAX 512

/* The status of each problem a sign-in can end with (doc/sign-in.md). */
static const struct {
	const char *code;
	enum agora_err e;
} outcomes[] = {
	{ "provider_unavailable", AGORA_E_UNAVAILABLE },
	{ "bad_provider_answer", AGORA_E_BAD_GATEWAY },
	{ "provider_refused", AGORA_E_BAD_REQUEST },
	{ "provider_denied", AGORA_E_FORBIDDEN },
	{ "invalid_id_token", AGORA_E_UNAUTHORIZED },
	{ "email_unverified", AGORA_E_FORBIDDEN },
	{ "account_exists", AGORA_E_CONFLICT },
	{ "identity_taken", AGORA_E_CONFLICT },
	{ "provider_linked", AGORA_E_CONFLICT },
	{ "account_disabled", AGORA_E_FORBIDDEN },
	{ "account_unverified", AGORA_E_FORBIDDEN },
	{ "link_expired", AGORA_E_FORBIDDEN },
};

/* What the callback knows of its flow (the row flow_take returned). */
struct flow {
	const char *nonce, *verifier, *link_user, *link_gen, *return_to;
	int cookie;
};

static const struct agora_provider *
provider_of(struct agora_req *r)
{
	return agora_provider_find(&r->ctx->cfg, r->params[0]);
}

static const char *
redirect_uri(struct agora_req *r, const struct agora_provider *p)
{
	const char *base = r->ctx->cfg.public_url;
	size_t n = strlen(base);

	if (n > 0 && base[n - 1] == '/')
		n--;
	return agora_printf(
	    r, "%.*s" FLOW_PATH "%s/callback", (int)n, base, p->name);
}

static void
flow_cookie(struct agora_req *r, const char *state)
{
	agora_resp_header_add(r, "Set-Cookie",
	    agora_printf(r,
	        FLOW_COOKIE "=%s; Path=/; Max-Age=%d; HttpOnly; Secure; "
	                    "SameSite=Lax",
	        state ? state : "", state ? FLOW_TTL_S : 0));
}

/*
 * The end of a sign-in that failed with code: a redirect for a browser
 * (to the page it came from), else the problem.
 */
static enum agora_err
refuse(struct agora_req *r, const struct flow *f, const char *code,
    const char *detail)
{
	enum agora_err e = AGORA_E_BAD_REQUEST;
	size_t i;

	for (i = 0; i < AGORA_NELEM(outcomes); i++)
		if (strcmp(outcomes[i].code, code) == 0)
			e = outcomes[i].e;
	if (f == NULL || !f->cookie)
		return agora_problem(r, e, code, detail);
	agora_resp_header(r, "Location",
	    agora_printf(r, "%s?sign_in_error=%s",
	        f->link_user ? "/account" : "/login", code));
	return agora_resp_raw(r, 303, NULL, NULL, 0);
}

/* --- the providers ------------------------------------------------------ */

enum agora_err
signin_providers(struct agora_req *r)
{
	const struct agora_config *cfg = &r->ctx->cfg;
	struct json_object *list = json_object_new_array(), *o;
	const struct agora_provider *p;
	size_t i;

	for (i = 0; i < cfg->nproviders; i++) {
		p = cfg->providers[i];
		o = json_object_new_object();
		json_object_object_add(
		    o, "name", json_object_new_string(p->name));
		json_object_object_add(o, "display_name",
		    json_object_new_string(
		        *p->display_name ? p->display_name : p->name));
		json_object_object_add(
		    o, "type", json_object_new_string(p->type));
		json_object_array_add(list, o);
	}
	o = json_object_new_object();
	json_object_object_add(o, "data", list);
	agora_resp_header(r, "Cache-Control", "public, max-age=300");
	return agora_resp_json(r, 200, o);
}

/* --- the start ----------------------------------------------------------- */

/*
 * A page of this site to return to: a path of printable ASCII, which
 * "//" or "/\" would turn into another host.
 */
static int
local_path(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > RETURN_MAX || s[0] != '/' || s[1] == '/' ||
	    s[1] == '\\')
		return 0;
	for (i = 0; i < n; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f || s[i] == '\\')
			return 0;
	return 1;
}

/*
 * A new flow for p: stored, its state in the browser's cookie, and the
 * provider's URL, as a redirect (a sign-in) or in a body (a link, asked
 * for with a token from a script).
 */
static enum agora_err
flow_begin(struct agora_req *r, const struct agora_provider *p,
    const char *link_user, const char *return_to, int cookie)
{
	struct oidc_flow f;
	struct oidc_error e;
	struct json_object *o;
	const char *url, *vals[8];
	enum agora_err rc;

	oidc_flow_new(&f);
	if (oidc_authorize_url(r, p, redirect_uri(r, p), &f, &url, &e) != 0)
		return refuse(r, NULL, e.code, e.detail);
	vals[0] = f.state_sha256;
	vals[1] = p->name;
	vals[2] = f.nonce;
	vals[3] = f.verifier;
	vals[4] = link_user;
	vals[5] = link_user ? agora_printf(r, "%lld", r->gen) : NULL;
	if (link_user != NULL && vals[5] == NULL)
		return AGORA_E_INTERNAL; /* a link is never without its gen */
	vals[6] = cookie ? "true" : "false";
	vals[7] = return_to;
	if ((rc = agora_db_write(r, "flow_insert", 8, vals, NULL)) != AGORA_OK)
		return rc;
	flow_cookie(r, f.state);
	sodium_memzero(&f, sizeof(f));
	if (link_user == NULL) {
		agora_resp_header(r, "Location", url);
		return agora_resp_raw(r, 302, NULL, NULL, 0);
	}
	o = json_object_new_object();
	json_object_object_add(
	    o, "authorization_url", json_object_new_string(url));
	return agora_resp_json(r, 200, o);
}

static const char *const responses[] = { "cookie", "json", NULL };

static const struct agora_qfield start_fields[] = {
	{ "return_to", AGORA_Q_TEXT, 0, RETURN_MAX, NULL, "bad_request",
	    "Query parameter return_to must be a path of this site." },
	{ "response", AGORA_Q_ONE_OF, 0, 0, responses, "bad_request",
	    "Query parameter response must be cookie or json." },
};

enum agora_err
signin_start(struct agora_req *r)
{
	const struct agora_provider *p = provider_of(r);
	struct agora_qvalue v[2];
	enum agora_err rc;

	if (p == NULL)
		return agora_not_found(r);
	rc = agora_query_fields(r, start_fields, 2, 0, v);
	if (rc != AGORA_OK)
		return rc;
	if (v[0].s != NULL && !local_path(v[0].s))
		return agora_problem(r, AGORA_E_BAD_REQUEST, "bad_request",
		    start_fields[0].detail);
	return flow_begin(
	    r, p, NULL, v[0].s ? v[0].s : "/", v[1].s == NULL || v[1].n == 0);
}

/* --- the callback -------------------------------------------------------- */

/*
 * The flow of the redirect's state, taken (deleted) from the database:
 * only when the browser's cookie holds the same state, for this
 * provider, within its time.
 */
static enum agora_err
flow_take(struct agora_req *r, const struct agora_provider *p, struct flow *f)
{
	const char *state, *mine = agora_cookie(r, FLOW_COOKIE);
	char hash[65];
	const char *vals[1] = { hash };
	PGresult *res;
	enum agora_err rc;

	if ((rc = agora_query_get(r, "state", &state)) != AGORA_OK)
		return rc;
	if (state == NULL || mine == NULL || strlen(state) != strlen(mine) ||
	    sodium_memcmp(state, mine, strlen(mine)) != 0)
		return agora_problem(r, AGORA_E_BAD_REQUEST, "invalid_state",
		    "This sign-in was not started in this browser, or is "
		    "over; start again.");
	agora_sha256_hex(state, strlen(state), hash);
	if ((rc = agora_db_write(r, "flow_take", 1, vals, &res)) != AGORA_OK)
		return rc;
	flow_cookie(r, NULL);
	if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), p->name) ||
	    *PQgetvalue(res, 0, 6) != 't')
		return agora_problem(r, AGORA_E_BAD_REQUEST, "invalid_state",
		    "This sign-in is unknown, used or expired; start again.");
	f->nonce = PQgetvalue(res, 0, 1);
	f->verifier = PQgetvalue(res, 0, 2);
	f->link_user = PQgetisnull(res, 0, 3) ? NULL : PQgetvalue(res, 0, 3);
	f->cookie = *PQgetvalue(res, 0, 4) == 't';
	f->return_to = PQgetvalue(res, 0, 5);
	f->link_gen = PQgetisnull(res, 0, 7) ? NULL : PQgetvalue(res, 0, 7);
	return AGORA_OK;
}

/* The name a new account gets: the provider's, or the email's local part. */
static const char *
name_of(struct agora_req *r, const struct oidc_identity *id)
{
	const char *at;

	if (id->name != NULL)
		return id->name;
	at = strchr(id->email, '@');
	return agora_printf(r, "%.*s", (int)(at - id->email), id->email);
}

/* One call of oauth_sign_in for the identity, with hash or NULL. */
static enum agora_err
sign_in_call(struct agora_req *r, const struct agora_provider *p,
    const struct flow *f, const struct oidc_identity *id, const char *hash,
    PGresult **res)
{
	const char *vals[9];

	vals[0] = p->name;
	vals[1] = id->issuer;
	vals[2] = id->subject;
	vals[3] = id->email;
	vals[4] = id->email_verified ? "true" : "false";
	vals[5] = id->email ? name_of(r, id) : NULL;
	vals[6] = hash;
	vals[7] = f->link_user;
	vals[8] = f->link_gen;
	return agora_db_write(r, "sign_in", 9, vals, res);
}

/*
 * oauth_sign_in, asked first without a password hash: an identity seen
 * before, a link or a refusal needs none, and Argon2 costs a core tens of
 * milliseconds.  Only when it would make an account does it answer
 * "needs_hash" (having changed nothing), and is asked again with one.
 * A new account's password is one nobody knows (a reset sets one), as a
 * real hash, so that a login with it takes a password check's time, as
 * any other does.
 */
static enum agora_err
sign_in_row(struct agora_req *r, const struct agora_provider *p,
    const struct flow *f, const struct oidc_identity *id, PGresult **res)
{
	char hash[AGORA_PASSWORD_HASH_MAX], secret[AGORA_SECRET_TEXT], h[65];
	enum agora_err rc;

	if ((rc = sign_in_call(r, p, f, id, NULL, res)) != AGORA_OK)
		return rc;
	if (PQntuples(*res) != 1)
		return AGORA_E_INTERNAL;
	if (strcmp(PQgetvalue(*res, 0, 0), "needs_hash") != 0)
		return AGORA_OK;
	agora_secret_new(secret, h);
	if (agora_password_hash(secret, strlen(secret), hash, sizeof(hash)))
		return AGORA_E_INTERNAL;
	if ((rc = sign_in_call(r, p, f, id, hash, res)) != AGORA_OK)
		return rc;
	return PQntuples(*res) == 1 ? AGORA_OK : AGORA_E_INTERNAL;
}

/*
 * The account the identity signs in to or is linked to; the answer then:
 * tokens (or the cookie and a redirect), or the linked identities.
 */
static enum agora_err
sign_in(struct agora_req *r, const struct agora_provider *p,
    const struct flow *f, const struct oidc_identity *id)
{
	struct grant g;
	PGresult *res;
	enum agora_err rc;

	if ((rc = sign_in_row(r, p, f, id, &res)) != AGORA_OK)
		return rc;
	if (PQgetisnull(res, 0, 1))
		return refuse(r, f, PQgetvalue(res, 0, 0),
		    "The provider's identity cannot sign in here; see the "
		    "code.");
	if (f->link_user != NULL) {
		agora_resp_header(r, "Location", f->return_to);
		return agora_resp_raw(r, 303, NULL, NULL, 0);
	}
	memset(&g, 0, sizeof(g));
	g.user = PQgetvalue(res, 0, 1);
	g.role = PQgetvalue(res, 0, 2);
	g.gen = PQgetvalue(res, 0, 3);
	g.cookie = f->cookie;
	if (strcmp(PQgetvalue(res, 0, 0), "created") == 0)
		agora_resp_header(r, "Agora-Account-Created", "true");
	return auth_session_start(r, &g, f->cookie ? f->return_to : NULL);
}

enum agora_err
signin_callback(struct agora_req *r)
{
	const struct agora_provider *p = provider_of(r);
	struct oidc_identity id;
	struct oidc_error e;
	const char *code, *denied;
	struct flow f;
	enum agora_err rc;

	if (p == NULL)
		return agora_not_found(r);
	if ((rc = flow_take(r, p, &f)) != AGORA_OK ||
	    (rc = agora_query_get(r, "error", &denied)) != AGORA_OK ||
	    (rc = agora_query_get(r, "code", &code)) != AGORA_OK)
		return rc;
	if (denied != NULL)
		return refuse(r, &f, "provider_denied",
		    "The sign-in was refused at the provider.");
	if (code == NULL || *code == '\0' || strlen(code) > 2048)
		return refuse(r, &f, "provider_refused",
		    "The provider's redirect carries no code.");
	if (oidc_identify(r, p, redirect_uri(r, p), code, f.verifier, f.nonce,
	        &id, &e) != 0)
		return refuse(r, &f, e.code, e.detail);
	return sign_in(r, p, &f, &id);
}

/* --- the caller's identities --------------------------------------------- */

enum agora_err
signin_identities(struct agora_req *r)
{
	const char *vals[1] = { r->user };
	PGresult *res;
	enum agora_err rc;

	if ((rc = agora_db_query(r, "identities_list", 1, vals, &res)) !=
	    AGORA_OK)
		return rc;
	return agora_resp_raw(r, 200, "application/json", PQgetvalue(res, 0, 0),
	    (size_t)PQgetlength(res, 0, 0));
}

static const struct agora_field link_fields[] = {
	{ "return_to", AGORA_F_STRING, 0, 1, RETURN_MAX },
};

/*
 * Link p's identity to the caller: a flow like a sign-in's, which the
 * page follows to the provider and back (to return_to, default
 * /account).
 */
enum agora_err
signin_link(struct agora_req *r)
{
	const struct agora_provider *p = provider_of(r);
	struct agora_value v[1];
	enum agora_err rc;

	if (p == NULL)
		return agora_not_found(r);
	memset(v, 0, sizeof(v));
	if (r->json != NULL &&
	    (rc = agora_valid_body(r, link_fields, 1, v)) != AGORA_OK)
		return rc;
	if (v[0].present && !local_path(v[0].s))
		return agora_problem_field(r, AGORA_E_VALIDATION, "return_to",
		    "must be a path of this site");
	return flow_begin(r, p, r->user, v[0].present ? v[0].s : "/account", 1);
}

enum agora_err
signin_unlink(struct agora_req *r)
{
	const char *vals[2] = { r->user, r->params[0] };
	PGresult *res;
	enum agora_err rc;

	if ((rc = agora_db_write(r, "identity_delete", 2, vals, &res)) !=
	    AGORA_OK)
		return rc;
	if (PQntuples(res) == 0)
		return agora_not_found(r);
	return agora_resp_raw(r, 204, NULL, NULL, 0);
}
