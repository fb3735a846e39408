/*
 * auth.h: what the auth program's two files share: auth.c (passwords,
 * tokens, sessions) and signin.c (sign-in providers, doc/sign-in.md).
 */
#ifndef AGORA_FCGI_AUTH_H
#define AGORA_FCGI_AUTH_H

#include "agora.h"

/* A login, or a refresh: whom the tokens are for, and the new ones. */
struct grant {
	const char *user;
	const char *role;
	const char *gen; /* the user's token generation (sql/0014) */
	const char *family; /* NULL: a new login */
	const char *sid; /* its session's id (sql/0023) */
	int cookie; /* the refresh token goes in a cookie, not the body */
	char token[AGORA_SECRET_TEXT];
};

/*
 * A new session for g->user (role, gen and cookie set), answered as a
 * login is; or, with redirect, the refresh cookies and 303 to redirect
 * (a browser back from a provider).
 */
enum agora_err auth_session_start(
    struct agora_req *r, struct grant *g, const char *redirect);

/* signin.c's statements and routes, in the program's tables (auth.c). */
#define SIGNIN_STMTS                                                           \
	{ "flow_insert",                                                       \
		"INSERT INTO oauth_flows (state_sha256, provider, nonce, "     \
		"verifier, link_user, link_gen, cookie, return_to, "           \
		"expires_at) VALUES ($1, $2, $3, $4, $5::bigint, $6::bigint, " \
		"$7::boolean, $8, now() + interval '10 minutes')" },           \
	    { "flow_take",                                                     \
		    "DELETE FROM oauth_flows WHERE state_sha256 = $1 "         \
		    "RETURNING "                                               \
		    "provider, nonce, verifier, link_user::text, cookie, "     \
		    "return_to, expires_at > now(), link_gen::text" },         \
	    { "sign_in",                                                       \
		    "SELECT * FROM oauth_sign_in($1, $2, $3, $4, "             \
		    "$5::boolean, $6, $7, $8::bigint, $9::bigint)" },          \
	    { "identities_list",                                               \
		    "SELECT json_build_object('data', COALESCE(json_agg("      \
		    "json_build_object('provider', provider, 'email', email, " \
		    "'created_at', agora_time(created_at), 'last_login_at', "  \
		    "agora_time(last_login_at)) ORDER BY provider), "          \
		    "'[]'))::text "                                            \
		    "FROM user_identities WHERE user_id = $1::bigint",         \
		    AGORA_STMT_READ },                                         \
	{                                                                      \
		"identity_delete",                                             \
		    "DELETE FROM user_identities WHERE user_id = $1::bigint "  \
		    "AND provider = $2 RETURNING 1"                            \
	}

enum agora_err signin_providers(struct agora_req *r);
enum agora_err signin_start(struct agora_req *r);
enum agora_err signin_callback(struct agora_req *r);
enum agora_err signin_identities(struct agora_req *r);
enum agora_err signin_link(struct agora_req *r);
enum agora_err signin_unlink(struct agora_req *r);

#endif /* AGORA_FCGI_AUTH_H */
