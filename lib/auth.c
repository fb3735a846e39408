/*
 * auth.c: access tokens (libjwt 1.10) and who may call a route.
 *
 * Tokens are HS256 with a secret read from jwt_secret_file by default, or
 * RS256/ES256 with PEM files, whose public key the JWKS publishes under a
 * kid (its RFC 7638 thumbprint).  libjwt 1.10 has three holes: with a NULL key
 * it verifies nothing, it accepts an HS256 token signed with our RSA public PEM
 * as the secret, and it checks no claims. So verification always passes the
 * key, pins the algorithm with jwt_get_alg(), and checks exp, nbf, iss, sub and
 * role here; and a failed jwt_set_alg() (which would yield an unsigned token)
 * fails the issue. Keys are loaded once per process; a program whose keys are
 * missing still serves anonymous routes and answers 503 where a token is
 * needed.
 *
 * A token also carries the user's token generation ("gen", sql/0014),
 * which moves on when the user's role changes or the account is disabled:
 * a token of an older generation is refused, on the next request and on
 * every host.  The current generation is read from memcached, or from the
 * database when memcached misses or is down (so a memcached outage costs
 * a query per request, never a revoked token let through).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jwt.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>

#include "agora.h"

#define KEY_FILE_MAX (64 * 1024)
#define SECRET_MIN 32

struct agora_auth {
	jwt_alg_t alg;
	unsigned char *sign;
	size_t sign_len;
	unsigned char *verify;
	size_t verify_len;
	char *jwks; /* the JSON served at /.well-known/jwks.json */
	char kid[64];
};

static unsigned char *
read_key(const char *path, size_t *len)
{
	char *buf, err[300];

	*len = 0;
	if (path == NULL || *path == '\0' ||
	    (buf = agora_read_file(
	         path, KEY_FILE_MAX, len, err, sizeof(err))) == NULL)
		return NULL;
	if (*len == 0) {
		free(buf);
		return NULL;
	}
	return (unsigned char *)buf;
}

static void
b64url(char *out, size_t outlen, const unsigned char *in, size_t len)
{
	sodium_bin2base64(
	    out, outlen, in, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* A big-number parameter of pkey, base64url-encoded; NULL on failure. */
static struct json_object *
bn_param(EVP_PKEY *pkey, const char *name, size_t pad)
{
	unsigned char buf[1024];
	char out[1400];
	BIGNUM *bn = NULL;
	int n;

	if (!EVP_PKEY_get_bn_param(pkey, name, &bn))
		return NULL;
	if ((size_t)BN_num_bytes(bn) > sizeof(buf) || pad > sizeof(buf)) {
		BN_free(bn);
		return NULL;
	}
	n = pad > 0 ? BN_bn2binpad(bn, buf, (int)pad) : BN_bn2bin(bn, buf);
	BN_free(bn);
	if (n <= 0 || (size_t)n > sizeof(buf))
		return NULL;
	b64url(out, sizeof(out), buf, (size_t)n);
	return json_object_new_string(out);
}

/*
 * The JWK of a public PEM key, with its RFC 7638 thumbprint as kid: the
 * SHA-256 of the required members in lexical order, without spaces.
 */
static struct json_object *
make_jwk(struct agora_auth *a, const char *algname)
{
	struct json_object *k = NULL, *x = NULL, *y = NULL;
	unsigned char h[crypto_hash_sha256_BYTES];
	char canon[2048];
	BIO *bio;
	EVP_PKEY *pkey;
	int rsa = a->alg == JWT_ALG_RS256;

	bio = BIO_new_mem_buf(a->verify, (int)a->verify_len);
	pkey = bio != NULL ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	if (pkey == NULL)
		return NULL;
	x = bn_param(pkey,
	    rsa ? OSSL_PKEY_PARAM_RSA_N : OSSL_PKEY_PARAM_EC_PUB_X,
	    rsa ? 0 : 32);
	y = bn_param(pkey,
	    rsa ? OSSL_PKEY_PARAM_RSA_E : OSSL_PKEY_PARAM_EC_PUB_Y,
	    rsa ? 0 : 32);
	EVP_PKEY_free(pkey);
	if (x == NULL || y == NULL)
		goto out;
	if (rsa)
		snprintf(canon, sizeof(canon),
		    "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}",
		    json_object_get_string(y), json_object_get_string(x));
	else
		snprintf(canon, sizeof(canon),
		    "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%"
		    "s\"}",
		    json_object_get_string(x), json_object_get_string(y));
	crypto_hash_sha256(h, (unsigned char *)canon, strlen(canon));
	b64url(a->kid, sizeof(a->kid), h, sizeof(h));
	k = json_object_new_object();
	json_object_object_add(
	    k, "kty", json_object_new_string(rsa ? "RSA" : "EC"));
	if (!rsa)
		json_object_object_add(
		    k, "crv", json_object_new_string("P-256"));
	json_object_object_add(k, rsa ? "n" : "x", json_object_get(x));
	json_object_object_add(k, rsa ? "e" : "y", json_object_get(y));
	json_object_object_add(k, "use", json_object_new_string("sig"));
	json_object_object_add(k, "alg", json_object_new_string(algname));
	json_object_object_add(k, "kid", json_object_new_string(a->kid));
out:
	json_object_put(x);
	json_object_put(y);
	return k;
}

static int
load_keys(struct agora_auth *a, const struct agora_config *cfg)
{
	if (a->alg == JWT_ALG_HS256) {
		a->sign = read_key(cfg->jwt_secret_file, &a->sign_len);
		if (a->sign == NULL || a->sign_len < SECRET_MIN) {
			agora_log("error",
			    "jwt_secret_file %s: missing, "
			    "unreadable or under %d bytes",
			    cfg->jwt_secret_file, SECRET_MIN);
			return -1;
		}
		a->verify = malloc(a->sign_len);
		if (a->verify == NULL)
			return -1;
		memcpy(a->verify, a->sign, a->sign_len);
		a->verify_len = a->sign_len;
		return 0;
	}
	/* Verifying needs only the public key; signing (auth) the private. */
	a->sign = read_key(cfg->jwt_private_key_file, &a->sign_len);
	a->verify = read_key(cfg->jwt_public_key_file, &a->verify_len);
	if (a->verify == NULL) {
		agora_log("error",
		    "jwt_public_key_file %s: missing or unreadable",
		    cfg->jwt_public_key_file);
		return -1;
	}
	return 0;
}

static int
build_jwks(struct agora_auth *a, const char *algname)
{
	struct json_object *o, *keys, *k;

	keys = json_object_new_array();
	if (a->alg != JWT_ALG_HS256) {
		k = make_jwk(a, algname);
		if (k == NULL) {
			agora_log("error",
			    "jwt_public_key_file is not a %s "
			    "public key in PEM",
			    algname);
			json_object_put(keys);
			return -1;
		}
		json_object_array_add(keys, k);
	}
	o = json_object_new_object();
	json_object_object_add(o, "keys", keys);
	a->jwks = strdup(json_object_to_json_string_ext(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return a->jwks != NULL ? 0 : -1;
}

static void
auth_free(struct agora_auth *a)
{
	if (a == NULL)
		return;
	/* For HS256 both hold the secret. */
	if (a->sign != NULL)
		sodium_memzero(a->sign, a->sign_len);
	if (a->verify != NULL)
		sodium_memzero(a->verify, a->verify_len);
	free(a->sign);
	free(a->verify);
	free(a->jwks);
	free(a);
}

void
agora_auth_free(struct agora_ctx *ctx)
{
	auth_free(ctx->auth);
	ctx->auth = NULL;
}

/* Load the keys the configuration names; ctx->auth stays NULL on failure. */
void
agora_auth_init(struct agora_ctx *ctx)
{
	struct agora_auth *a;
	const char *alg = ctx->cfg.jwt_alg;

	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return;
	a->alg = strcmp(alg, "RS256") == 0 ? JWT_ALG_RS256
	    : strcmp(alg, "ES256") == 0    ? JWT_ALG_ES256
	                                   : JWT_ALG_HS256;
	if (load_keys(a, &ctx->cfg) != 0 || build_jwks(a, alg) != 0) {
		agora_log("error",
		    "access tokens are disabled until the keys "
		    "are fixed");
		auth_free(a);
		return;
	}
	ctx->auth = a;
}

/* Whether this process can issue access tokens (has a signing key). */
int
agora_auth_can_sign(struct agora_ctx *ctx)
{
	return ctx->auth != NULL && ctx->auth->sign != NULL;
}

const char *
agora_auth_jwks(struct agora_ctx *ctx)
{
	return ctx->auth != NULL ? ctx->auth->jwks : NULL;
}

#define GEN_KEY "agora:tg:"
#define GEN_TTL 60
#define GEN_MAX 2147483647LL

/* The statement every program prepares for the generation (db.c). */
const struct agora_stmt agora_auth_stmts[] = {
	{ "agora_token_gen", "SELECT user_token_gen($1::bigint)",
	    AGORA_STMT_READ },
};
const size_t agora_auth_nstmts = AGORA_NELEM(agora_auth_stmts);

static int
add_claims(jwt_t *j, const struct agora_config *cfg, const char *sub,
    const char *role, long long gen, const char *sid, time_t now)
{
	char jti[33];

	agora_random_hex(jti, 16);
	if (sid != NULL && jwt_add_grant(j, "sid", sid) != 0)
		return -1;
	return jwt_add_grant(j, "sub", sub) || jwt_add_grant(j, "role", role) ||
	    jwt_add_grant(j, "iss", cfg->jwt_issuer) ||
	    jwt_add_grant(j, "jti", jti) ||
	    jwt_add_grant_int(j, "gen", (long)gen) ||
	    jwt_add_grant_int(j, "iat", (long)now) ||
	    jwt_add_grant_int(j, "exp", (long)(now + cfg->access_token_ttl));
}

/*
 * Issue an access token for sub with role, under the user's token
 * generation gen (decimal text, as the database gives it), for the
 * session sid (NULL: none); an arena string, or NULL (and logged) when
 * the keys cannot sign.
 */
char *
agora_token_issue(struct agora_req *r, const char *sub, const char *role,
    const char *gen, const char *sid)
{
	struct agora_auth *a = r->ctx->auth;
	jwt_t *j = NULL;
	char *tok = NULL, *out = NULL;
	long long g;

	if (a == NULL || a->sign == NULL || jwt_new(&j) != 0 ||
	    agora_parse_ll(gen, 0, GEN_MAX, &g) != 0)
		goto out;
	if (add_claims(j, &r->ctx->cfg, sub, role, g, sid, time(NULL)) != 0)
		goto out;
	if (a->alg != JWT_ALG_HS256 && jwt_add_header(j, "kid", a->kid) != 0)
		goto out;
	/* A failed jwt_set_alg leaves alg none: never encode then. */
	if (jwt_set_alg(j, a->alg, a->sign, (int)a->sign_len) != 0 ||
	    jwt_get_alg(j) != a->alg)
		goto out;
	tok = jwt_encode_str(j);
	if (tok != NULL)
		out = agora_strdup(r, tok);
out:
	if (out == NULL)
		agora_log("error", "cannot issue an access token");
	free(tok);
	jwt_free(j);
	return out;
}

/* The claims libjwt 1.10 does not check. */
static int
claims_ok(jwt_t *j, const struct agora_config *cfg, time_t now)
{
	const char *iss, *sub, *role;
	long exp, nbf;

	errno = 0;
	exp = jwt_get_grant_int(j, "exp");
	if (errno != 0 || exp <= (long)now)
		return 0;
	errno = 0;
	nbf = jwt_get_grant_int(j, "nbf");
	if (errno == 0 && nbf > (long)now)
		return 0;
	iss = jwt_get_grant(j, "iss");
	sub = jwt_get_grant(j, "sub");
	role = jwt_get_grant(j, "role");
	return iss != NULL && strcmp(iss, cfg->jwt_issuer) == 0 &&
	    sub != NULL && *sub != '\0' && strlen(sub) < 64 && role != NULL &&
	    (strcmp(role, "customer") == 0 || strcmp(role, "admin") == 0);
}

static enum agora_err
unauthorized(struct agora_req *r, const char *detail)
{
	agora_resp_header(
	    r, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
	return agora_problem(r, AGORA_E_UNAUTHORIZED, "invalid_token", detail);
}

/*
 * Tell every program at once that user's tokens must now be of generation
 * gen or later (after a change that moved it, committed).  If memcached is
 * down, the entry other programs hold ends within GEN_TTL.
 */
void
agora_token_gen_set(struct agora_ctx *ctx, const char *user, const char *gen)
{
	char key[64];
	long long g;

	if (agora_parse_ll(gen, 0, GEN_MAX, &g) != 0)
		return;
	snprintf(key, sizeof(key), GEN_KEY "%s", user);
	agora_cache_raise(ctx, key, g, GEN_TTL);
}

/*
 * The user's token generation from the database, and into memcached,
 * raised there but never lowered: a change committed meanwhile has
 * raised it already.
 */
static enum agora_err
gen_from_db(struct agora_req *r, const char *key, long long *gen)
{
	const char *vals[1] = { r->user };
	PGresult *res;
	enum agora_err rc;

	if ((rc = agora_db_query(r, "agora_token_gen", 1, vals, &res)) !=
	    AGORA_OK)
		return rc;
	*gen = GEN_MAX; /* no such user: no token of theirs is good */
	if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
		(void)agora_parse_ll(PQgetvalue(res, 0, 0), 0, GEN_MAX, gen);
	agora_cache_raise(r->ctx, key, *gen, GEN_TTL);
	return AGORA_OK;
}

/*
 * Whether the token's generation is the user's current one.  An admin's
 * token is always held against the database: memcached could hold an
 * older generation for a while (a server that comes back with its old
 * data, a write anyone on its network may make), and admin requests are
 * few.
 */
static enum agora_err
gen_check(struct agora_req *r, long long token_gen)
{
	char key[64], *val;
	size_t len;
	long long gen = GEN_MAX;
	enum agora_err rc = AGORA_OK;
	int got = -2;

	if (!agora_id_ok(r->user))
		return unauthorized(
		    r, "The access token is invalid or expired.");
	snprintf(key, sizeof(key), GEN_KEY "%s", r->user);
	if (strcmp(r->role, "admin") != 0)
		got = agora_cache_get(r, key, &val, &len);
	if (got == 0)
		(void)agora_parse_ll(val, 0, GEN_MAX, &gen);
	else
		rc = gen_from_db(r, key, &gen);
	if (rc != AGORA_OK)
		return rc;
	if (token_gen < gen)
		return unauthorized(r,
		    "The access token was revoked: the account's sessions "
		    "were ended, or its password, role or status changed. "
		    "Log in again.");
	return AGORA_OK;
}

/* Verify tok and set r->user and r->role from it. */
static enum agora_err
verify(struct agora_req *r, const char *tok)
{
	struct agora_auth *a = r->ctx->auth;
	jwt_t *j = NULL;
	const char *sid;
	enum agora_err rc;
	long gen;

	if (a == NULL)
		return agora_problem(r, AGORA_E_UNAVAILABLE, NULL,
		    "Access tokens cannot be checked now.");
	if (jwt_decode(&j, tok, a->verify, (int)a->verify_len) != 0 ||
	    jwt_get_alg(j) != a->alg ||
	    !claims_ok(j, &r->ctx->cfg, time(NULL))) {
		rc = unauthorized(r, "The access token is invalid or expired.");
		goto out;
	}
	r->user = agora_strdup(r, jwt_get_grant(j, "sub"));
	r->role = agora_strdup(r, jwt_get_grant(j, "role"));
	errno = 0;
	gen = jwt_get_grant_int(j, "gen"); /* tokens of 0013: none, 0 */
	r->gen = errno == 0 ? gen : 0;
	/* Tokens of before 0023 have no session: a client cannot tell it. */
	sid = jwt_get_grant(j, "sid");
	r->sid = sid != NULL && agora_id_ok(sid) ? agora_strdup(r, sid) : NULL;
	rc = r->user != NULL && r->role != NULL ? gen_check(r, r->gen)
	                                        : AGORA_E_TOO_LARGE;
out:
	jwt_free(j);
	return rc;
}

static const char b64url_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/*
 * Whether the n characters at s are canonical unpadded base64url: not
 * 4k+1 of them, and the bits the last character has past the last byte
 * are zero (else several spellings decode to the same bytes).
 */
static int
segment_ok(const char *s, size_t n)
{
	const char *c;
	size_t v;

	if (n == 0 || n % 4 == 1 || strspn(s, b64url_chars) < n)
		return 0;
	if (n % 4 == 0)
		return 1;
	c = strchr(b64url_chars, s[n - 1]);
	v = (size_t)(c - b64url_chars);
	return (v & (n % 4 == 2 ? 0x0f : 0x03)) == 0;
}

/*
 * Whether tok is three canonical base64url segments.  libjwt 1.10 skips
 * bytes outside that alphabet when it decodes the signature, and ignores
 * the unused bits of its last character: one signed token could be sent
 * in countless spellings.
 */
static int
token_shape_ok(const char *tok)
{
	const char *d1, *d2;
	size_t n = strlen(tok);

	if (n == 0 || n > 4096 || (d1 = strchr(tok, '.')) == NULL ||
	    (d2 = strchr(d1 + 1, '.')) == NULL || strchr(d2 + 1, '.') != NULL)
		return 0;
	return segment_ok(tok, (size_t)(d1 - tok)) &&
	    segment_ok(d1 + 1, (size_t)(d2 - d1 - 1)) &&
	    segment_ok(d2 + 1, strlen(d2 + 1));
}

/*
 * Authenticate from the Authorization header (Bearer only), then apply the
 * route's access rule.  Anonymous routes accept a missing header; a header
 * that is present must be valid everywhere.
 */
enum agora_err
agora_auth_request(struct agora_req *r, enum agora_access access)
{
	const char *h, *tok;
	enum agora_err rc;

	h = agora_param(r, "HTTP_AUTHORIZATION");
	if (h == NULL || *h == '\0') {
		if (access == AGORA_ANON)
			return AGORA_OK;
		return unauthorized(r, "This needs an access token.");
	}
	if (strncasecmp(h, "Bearer ", 7) != 0)
		return unauthorized(r, "Use Authorization: Bearer <token>.");
	tok = h + 7;
	while (*tok == ' ')
		tok++;
	if (!token_shape_ok(tok))
		return unauthorized(r, "The access token is malformed.");
	if ((rc = verify(r, tok)) != AGORA_OK)
		return rc;
	if (access == AGORA_ADMIN && strcmp(r->role, "admin") != 0)
		return agora_problem(
		    r, AGORA_E_FORBIDDEN, NULL, "This needs the admin role.");
	return AGORA_OK;
}

/* Whether the caller owns a resource of owner, or is an admin. */
int
agora_owner_or_admin(const struct agora_req *r, const char *owner)
{
	if (r->user == NULL)
		return 0;
	return strcmp(r->role, "admin") == 0 ||
	    (owner != NULL && strcmp(owner, r->user) == 0);
}

enum agora_err
agora_owned_row(
    struct agora_req *r, const char *stmt, const char *what, PGresult **res)
{
	const char *vals[1] = { r->nparams > 0 ? r->params[0] : NULL };
	enum agora_err rc;

	if (vals[0] == NULL || !agora_id_ok(vals[0]))
		goto missing;
	if ((rc = agora_db_query(r, stmt, 1, vals, res)) != AGORA_OK)
		return rc;
	if (PQntuples(*res) > 0 &&
	    agora_owner_or_admin(r, PQgetvalue(*res, 0, 0)))
		return AGORA_OK;
missing:
	return agora_problem(
	    r, AGORA_E_NOT_FOUND, NULL, agora_printf(r, "No such %s.", what));
}
