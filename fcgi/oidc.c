/*
 * oidc.c: signing in with an OpenID Connect provider, or an OAuth2 one of
 * the GitHub kind (doc/sign-in.md).
 *
 * The authorization code flow with PKCE (RFC 7636, S256), state and
 * nonce.  An OpenID Connect provider is found from its issuer: its
 * discovery document and its keys (JWKS) are fetched with libcurl and kept
 * by the process for an hour, and the keys again at once when an ID token
 * names one they lack (a provider rotated its keys), at most every
 * JWKS_REFETCH_S seconds.  An ID token is verified with libcjose, with the
 * one algorithm the provider's section pins (never the token's say-so:
 * that is how "none" and HMAC-with-the-public-key forgeries pass), then
 * its iss, aud (and azp), exp, iat and nonce are checked.  An OAuth2
 * provider gives an access token for its user and email endpoints; an
 * email counts as verified only where its emails endpoint says so.
 *
 * Every answer of a provider is bounded (ANSWER_MAX) and parsed as strict
 * JSON; a provider that cannot be reached, or answers 5xx, is
 * provider_unavailable; a refusal of the code is provider_refused; an
 * answer that is not what the specifications say is bad_provider_answer;
 * an ID token that fails a check is invalid_id_token.
 */
#include "config.h"

#include <string.h>
#include <time.h>

#include <cjose/cjose.h>
#include <json-c/json.h>
#include <sodium.h>

#include "httpc.h"
#include "oidc.h"
#include "shop.h"

#define ANSWER_MAX (256 * 1024)
#define DISCOVERY_TTL_S 3600
#define DISCOVERY_RETRY_S 10 /* after a failed fetch, no other before */
#define JWKS_REFETCH_S 2
#define LEEWAY_S 60 /* clock skew allowed on exp and iat */
#define IAT_MAX_AGE_S 600 /* an ID token issued longer ago is refused */

/* What the process keeps of one provider: found once an hour. */
struct disco {
	const struct agora_provider *p;
	char *issuer, *authorize, *token, *userinfo, *jwks_uri;
	char *jwks; /* the key set's text */
	time_t fetched, jwks_fetched;
	time_t tried; /* the last fetch of the document that failed */
};

static struct disco discos[AGORA_PROVIDERS_MAX];

static int
fail(struct oidc_error *e, const char *code, const char *detail)
{
	e->code = code;
	e->detail = detail;
	return -1;
}

void
oidc_flow_new(struct oidc_flow *f)
{
	char hash[65];

	agora_secret_new(f->state, f->state_sha256);
	agora_secret_new(f->nonce, hash);
	agora_secret_new(f->verifier, hash);
}

/* The PKCE challenge of verifier: base64url(SHA-256(verifier)). */
static void
challenge_of(const char *verifier, char out[AGORA_SECRET_TEXT])
{
	unsigned char h[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(
	    h, (const unsigned char *)verifier, strlen(verifier));
	sodium_bin2base64(out, AGORA_SECRET_TEXT, h, sizeof(h),
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* s percent-encoded for a query string or a form, in the arena. */
static const char *
esc(struct agora_req *r, const char *s)
{
	char *e = curl_easy_escape(NULL, s, 0);
	const char *out;

	if (e == NULL)
		return NULL;
	out = agora_strdup(r, e);
	curl_free(e);
	return out;
}

/* --- calls to the provider ---------------------------------------------- */

/*
 * One call whose answer is JSON: *out, which the caller puts.  A 4xx
 * answer is provider_refused (the token endpoint's way to refuse a code),
 * logged with the provider's error.
 */
static int
call_json(struct agora_req *r, struct agora_http *h, struct json_object **out,
    struct oidc_error *e)
{
	const char *why = NULL;
	int rc = -1;

	h->timeout_ms = (long)r->ctx->cfg.provider_timeout_ms;
	h->answer_max = ANSWER_MAX;
	agora_http_call(NULL, h);
	if (h->status < 0 || h->status >= 500) {
		agora_log("warning", "sign-in provider %s %s: %s", h->method,
		    h->url, h->status < 0 ? h->error : "a 5xx answer");
		fail(e, "provider_unavailable",
		    "The sign-in provider cannot be reached now.");
	} else if (h->status >= 400) {
		agora_log("warning", "sign-in provider %s %s: %ld %.200s",
		    h->method, h->url, h->status, h->answer ? h->answer : "");
		fail(e, "provider_refused",
		    "The sign-in provider refused the sign-in.");
	} else if (h->status != 200 ||
	    agora_json_parse(h->answer ? h->answer : "", h->answer_len, out,
	        &why) != AGORA_OK) {
		agora_log("warning", "sign-in provider %s %s: %ld, not JSON",
		    h->method, h->url, h->status);
		fail(e, "bad_provider_answer",
		    "The sign-in provider's answer is not what it should be.");
	} else {
		rc = 0;
	}
	agora_http_done(h);
	return rc;
}

/*
 * Append each of the n lines to *list; -1, the list freed, when one is
 * NULL or memory ran out: a call never goes out without a header it
 * needs (the client's credentials among them).
 */
static int
headers_add(struct curl_slist **list, const char *const *lines, size_t n)
{
	struct curl_slist *t;
	size_t i;

	for (i = 0; i < n; i++) {
		if (lines[i] == NULL ||
		    (t = curl_slist_append(*list, lines[i])) == NULL) {
			curl_slist_free_all(*list);
			*list = NULL;
			return -1;
		}
		*list = t;
	}
	return 0;
}

static int
get_json(struct agora_req *r, const char *url, const char *bearer,
    struct json_object **out, struct oidc_error *e)
{
	struct agora_http h = { .method = "GET", .url = url };
	/* GitHub's API refuses requests without a User-Agent. */
	const char *lines[3] = { "Accept: application/json",
		"User-Agent: agora",
		bearer ? agora_printf(r, "Authorization: Bearer %s", bearer)
		       : NULL };
	struct curl_slist *hdr = NULL;
	int rc;

	if (url == NULL || headers_add(&hdr, lines, bearer ? 3 : 2) != 0)
		return fail(e, "provider_unavailable", "No memory.");
	h.headers = hdr;
	rc = call_json(r, &h, out, e);
	curl_slist_free_all(hdr);
	return rc;
}

/* A string member of o, or NULL. */
static const char *
str_of(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    strlen(json_object_get_string(v)) !=
	        (size_t)json_object_get_string_len(v))
		return NULL; /* not a string, or one with a NUL in it */
	return json_object_get_string(v);
}

/*
 * An endpoint agora may call: HTTPS, or plain HTTP on this host alone
 * (over plain HTTP elsewhere, anyone on the way could swap the keys).
 */
static int
is_url(const char *s)
{
	return s != NULL && agora_url_safe(s);
}

static void
replace(char **slot, const char *v)
{
	free(*slot);
	*slot = v != NULL ? strdup(v) : NULL;
}

/* --- discovery and keys ------------------------------------------------- */

static struct disco *
disco_of(const struct agora_provider *p)
{
	size_t i;

	for (i = 0; i < AGORA_PROVIDERS_MAX; i++)
		if (discos[i].p == p || discos[i].p == NULL) {
			discos[i].p = p;
			return &discos[i];
		}
	return NULL; /* not reached: one slot per section */
}

/*
 * Keep what the discovery document doc says, once its issuer is the one
 * configured (OpenID Connect Discovery 1.0, 4.3: a document that names
 * another issuer is not this provider's).
 */
static int
disco_keep(struct disco *d, struct json_object *doc, struct oidc_error *e)
{
	const char *iss = str_of(doc, "issuer");

	if (iss == NULL || strcmp(iss, d->p->issuer) != 0 ||
	    !is_url(str_of(doc, "authorization_endpoint")) ||
	    !is_url(str_of(doc, "token_endpoint")) ||
	    !is_url(str_of(doc, "jwks_uri"))) {
		agora_log("warning",
		    "sign-in provider %s: its discovery document names "
		    "issuer %.200s, or lacks an endpoint",
		    d->p->name, iss ? iss : "none");
		return fail(e, "bad_provider_answer",
		    "The sign-in provider's answer is not what it should be.");
	}
	replace(&d->issuer, iss);
	replace(&d->authorize, str_of(doc, "authorization_endpoint"));
	replace(&d->token, str_of(doc, "token_endpoint"));
	replace(&d->jwks_uri, str_of(doc, "jwks_uri"));
	replace(&d->userinfo,
	    is_url(str_of(doc, "userinfo_endpoint"))
	        ? str_of(doc, "userinfo_endpoint")
	        : NULL);
	d->fetched = time(NULL);
	return d->issuer && d->authorize && d->token && d->jwks_uri
	    ? 0
	    : fail(e, "provider_unavailable", "Out of memory.");
}

/*
 * The provider's endpoints: an oauth2 section's own, or an OpenID Connect
 * provider's discovery document, fetched when older than an hour (a copy
 * that fails to refresh is used on).
 */
static struct disco *
discover(
    struct agora_req *r, const struct agora_provider *p, struct oidc_error *e)
{
	struct disco *d = disco_of(p);
	struct json_object *doc = NULL;
	size_t n = strlen(p->issuer);
	int rc;

	if (strcmp(p->type, "oauth2") == 0) {
		d->authorize = p->authorization_endpoint;
		d->token = p->token_endpoint;
		d->userinfo = p->userinfo_endpoint;
		return d;
	}
	if (d->authorize != NULL && time(NULL) - d->fetched < DISCOVERY_TTL_S)
		return d;
	/* A provider that is down is not asked again by every request. */
	if (time(NULL) - d->tried < DISCOVERY_RETRY_S) {
		if (d->authorize != NULL)
			return d;
		fail(e, "provider_unavailable",
		    "The sign-in provider cannot be reached now.");
		return NULL;
	}
	rc = get_json(r,
	    agora_printf(r, "%.*s/.well-known/openid-configuration",
	        (int)(n > 0 && p->issuer[n - 1] == '/' ? n - 1 : n), p->issuer),
	    NULL, &doc, e);
	if (rc == 0)
		rc = disco_keep(d, doc, e);
	if (rc != 0)
		d->tried = time(NULL);
	json_object_put(doc);
	return rc == 0 || d->authorize != NULL ? d : NULL;
}

/* Fetch the key set again. */
static int
jwks_fetch(struct agora_req *r, struct disco *d, struct oidc_error *e)
{
	struct json_object *set = NULL, *keys;
	int rc;

	d->jwks_fetched = time(NULL);
	if ((rc = get_json(r, d->jwks_uri, NULL, &set, e)) == 0 &&
	    (!json_object_object_get_ex(set, "keys", &keys) ||
	        !json_object_is_type(keys, json_type_array)))
		rc = fail(e, "bad_provider_answer",
		    "The sign-in provider's answer is not what it should be.");
	if (rc == 0)
		replace(&d->jwks, json_object_to_json_string(set));
	json_object_put(set);
	return rc;
}

/*
 * The key of d's set that kid names (with no kid: the set's one signing
 * key of the pinned algorithm's type), imported; NULL when none is.
 */
static cjose_jwk_t *
key_in(struct disco *d, const char *kid)
{
	struct json_object *set, *keys, *k;
	const char *kty = d->p->alg[0] == 'E' ? "EC" : "RSA", *use, *text;
	cjose_jwk_t *jwk = NULL;
	const char *why;
	size_t i, n;

	if (d->jwks == NULL ||
	    agora_json_parse(d->jwks, strlen(d->jwks), &set, &why) != AGORA_OK)
		return NULL;
	json_object_object_get_ex(set, "keys", &keys);
	n = json_object_array_length(keys);
	for (i = 0; i < n && jwk == NULL; i++) {
		k = json_object_array_get_idx(keys, i);
		use = str_of(k, "use");
		if ((use != NULL && strcmp(use, "sig") != 0) ||
		    str_of(k, "kty") == NULL ||
		    strcmp(str_of(k, "kty"), kty) != 0 ||
		    (kid != NULL &&
		        (str_of(k, "kid") == NULL ||
		            strcmp(str_of(k, "kid"), kid) != 0)))
			continue;
		text = json_object_to_json_string(k);
		jwk = cjose_jwk_import(text, strlen(text), NULL);
	}
	json_object_put(set);
	return jwk;
}

/*
 * The key of kid: from the set kept, fetched again once an hour, and at
 * once when it lacks kid (at most every JWKS_REFETCH_S seconds: only the
 * provider's own answers name a kid, but each costs it a call).
 */
static cjose_jwk_t *
key_find(
    struct agora_req *r, struct disco *d, const char *kid, struct oidc_error *e)
{
	time_t age = time(NULL) - d->jwks_fetched;
	cjose_jwk_t *jwk;

	/* No key set yet, and its last fetch failed a moment ago: a
	 * provider that is down is not asked again by every request. */
	if (d->jwks == NULL && d->jwks_fetched != 0 &&
	    age < DISCOVERY_RETRY_S) {
		fail(e, "provider_unavailable",
		    "The sign-in provider cannot be reached now.");
		return NULL;
	}
	if (d->jwks == NULL || age >= DISCOVERY_TTL_S) {
		if (jwks_fetch(r, d, e) != 0 && d->jwks == NULL)
			return NULL;
		age = 0;
	}
	jwk = key_in(d, kid);
	if (jwk == NULL && age >= JWKS_REFETCH_S) {
		if (jwks_fetch(r, d, e) != 0)
			return NULL;
		jwk = key_in(d, kid);
	}
	if (jwk == NULL)
		fail(e, "invalid_id_token",
		    "The ID token is signed with a key the provider does not "
		    "publish.");
	return jwk;
}

/* --- the authorization request ------------------------------------------ */

static const char *
scopes_of(const struct agora_provider *p)
{
	if (*p->scopes != '\0')
		return p->scopes;
	return strcmp(p->type, "oidc") == 0 ? "openid email profile"
	                                    : "read:user user:email";
}

int
oidc_authorize_url(struct agora_req *r, const struct agora_provider *p,
    const char *redirect_uri, const struct oidc_flow *f, const char **url,
    struct oidc_error *e)
{
	char challenge[AGORA_SECRET_TEXT];
	struct disco *d = discover(r, p, e);
	const char *v[3];

	if (d == NULL)
		return -1;
	v[0] = esc(r, p->client_id);
	v[1] = esc(r, redirect_uri);
	v[2] = esc(r, scopes_of(p));
	if (!v[0] || !v[1] || !v[2])
		return fail(e, "provider_unavailable", "No memory.");
	challenge_of(f->verifier, challenge);
	*url = agora_printf(r,
	    "%s%cresponse_type=code&client_id=%s&redirect_uri=%s&scope=%s"
	    "&state=%s&code_challenge=%s&code_challenge_method=S256%s%s",
	    d->authorize, strchr(d->authorize, '?') ? '&' : '?', v[0], v[1],
	    v[2], f->state, challenge,
	    strcmp(p->type, "oidc") == 0 ? "&nonce=" : "",
	    strcmp(p->type, "oidc") == 0 ? f->nonce : "");
	return *url != NULL ? 0 : fail(e, "provider_unavailable", "No memory.");
}

/* --- the code exchange ---------------------------------------------------- */

/*
 * The token request (RFC 6749, 4.1.3), with the PKCE verifier.  An
 * OpenID Connect provider gets the client's credentials as HTTP Basic
 * (client_secret_basic, the default of OpenID Connect Discovery); an
 * OAuth2 one in the form, as GitHub takes them.
 */
static int
token_request(struct agora_req *r, const struct agora_provider *p,
    struct disco *d, const char *redirect_uri, const char *code,
    const char *verifier, struct json_object **out, struct oidc_error *e)
{
	struct agora_http h = { .method = "POST", .url = d->token };
	int oidc = strcmp(p->type, "oidc") == 0;
	const char *lines[4] = { "Accept: application/json",
		"Content-Type: application/x-www-form-urlencoded",
		"User-Agent: agora", NULL };
	struct curl_slist *hdr = NULL;
	const char *body, *pair;
	char *basic;
	size_t n;
	int rc;
	const char *v[5] = { esc(r, code), esc(r, redirect_uri),
		esc(r, verifier), esc(r, p->client_id),
		esc(r, p->client_secret ? p->client_secret : "") };

	if (!v[0] || !v[1] || !v[2] || !v[3] || !v[4])
		return fail(e, "provider_unavailable", "No memory.");
	body = agora_printf(r,
	    "grant_type=authorization_code&code=%s&redirect_uri=%s"
	    "&code_verifier=%s&client_id=%s%s%s",
	    v[0], v[1], v[2], v[3],
	    oidc ? "" : "&client_secret=", oidc ? "" : v[4]);
	pair = agora_printf(r, "%s:%s", v[3], v[4]);
	if (body == NULL || pair == NULL)
		return fail(e, "provider_unavailable", "No memory.");
	n = sodium_base64_ENCODED_LEN(
	    strlen(pair), sodium_base64_VARIANT_ORIGINAL);
	if ((basic = agora_alloc(r, n)) == NULL)
		return fail(e, "provider_unavailable", "No memory.");
	sodium_bin2base64(basic, n, (const unsigned char *)pair, strlen(pair),
	    sodium_base64_VARIANT_ORIGINAL);
	lines[3] =
	    oidc ? agora_printf(r, "Authorization: Basic %s", basic) : NULL;
	if (headers_add(&hdr, lines, oidc ? 4 : 3) != 0)
		return fail(e, "provider_unavailable", "No memory.");
	h.headers = hdr;
	h.body = body;
	h.body_len = strlen(body);
	rc = call_json(r, &h, out, e);
	curl_slist_free_all(hdr);
	return rc;
}

/* --- the ID token --------------------------------------------------------- */

static int
bad_token(struct oidc_error *e, const char *detail)
{
	return fail(e, "invalid_id_token", detail);
}

/*
 * aud is client_id, or a list that holds it; when the list holds others,
 * azp must be there and name the client (azp, when there, always must).
 */
static int
audience_ok(struct json_object *claims, const char *client_id)
{
	struct json_object *aud, *v;
	const char *azp = str_of(claims, "azp");
	size_t i, n;
	int found = 0;

	/* An azp that is there must be a clean string: none other passes. */
	if (azp == NULL && json_object_object_get_ex(claims, "azp", &v))
		return 0;
	if (!json_object_object_get_ex(claims, "aud", &aud))
		return 0;
	if (azp != NULL && strcmp(azp, client_id) != 0)
		return 0;
	if (json_object_is_type(aud, json_type_string))
		return strcmp(json_object_get_string(aud), client_id) == 0;
	if (!json_object_is_type(aud, json_type_array))
		return 0;
	n = json_object_array_length(aud);
	for (i = 0; i < n; i++) {
		v = json_object_array_get_idx(aud, i);
		if (json_object_is_type(v, json_type_string) &&
		    strcmp(json_object_get_string(v), client_id) == 0)
			found = 1;
	}
	return found && (n == 1 || azp != NULL);
}

/* A whole-number claim, or -1. */
static long long
time_claim(struct json_object *claims, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(claims, key, &v) ||
	    !json_object_is_type(v, json_type_int))
		return -1;
	return json_object_get_int64(v);
}

/* The claims of a verified ID token (OpenID Connect Core 1.0, 3.1.3.7). */
static int
claims_check(struct disco *d, struct json_object *claims, const char *nonce,
    struct oidc_error *e)
{
	long long now = (long long)time(NULL), exp, iat;
	const char *sub = str_of(claims, "sub"), *iss = str_of(claims, "iss");
	const char *n = str_of(claims, "nonce");

	exp = time_claim(claims, "exp");
	iat = time_claim(claims, "iat");
	if (iss == NULL || strcmp(iss, d->issuer) != 0)
		return bad_token(e, "The ID token is from another issuer.");
	if (!audience_ok(claims, d->p->client_id))
		return bad_token(e, "The ID token is for another client.");
	if (exp < 0 || exp <= now - LEEWAY_S)
		return bad_token(e, "The ID token has expired.");
	if (iat < 0 || iat > now + LEEWAY_S || iat < now - IAT_MAX_AGE_S)
		return bad_token(e, "The ID token's issue time is not now.");
	if (n == NULL || strlen(n) != strlen(nonce) ||
	    sodium_memcmp(n, nonce, strlen(nonce)) != 0)
		return bad_token(
		    e, "The ID token is not of this sign-in (its nonce).");
	if (sub == NULL || *sub == '\0' || strlen(sub) > 255)
		return bad_token(e, "The ID token names no subject.");
	return 0;
}

/*
 * Verify jwt with the provider's key of its kid and the pinned
 * algorithm; *claims (put by the caller) once it is.
 */
static int
id_token_verify(struct agora_req *r, struct disco *d, const char *jwt,
    struct json_object **claims, struct oidc_error *e)
{
	cjose_jws_t *jws = cjose_jws_import(jwt, strlen(jwt), NULL);
	cjose_jwk_t *jwk = NULL;
	const char *alg, *why;
	uint8_t *plain;
	size_t len;
	int rc = -1;

	if (jws == NULL)
		return bad_token(e, "The ID token is not a signed JWT.");
	alg = cjose_header_get(cjose_jws_get_protected(jws), "alg", NULL);
	if (alg == NULL || strcmp(alg, d->p->alg) != 0)
		bad_token(e,
		    "The ID token is not signed with the provider's "
		    "algorithm.");
	else if ((jwk = key_find(r, d,
	              cjose_header_get(
	                  cjose_jws_get_protected(jws), "kid", NULL),
	              e)) == NULL)
		; /* e says why */
	else if (!cjose_jws_verify(jws, jwk, NULL) ||
	    !cjose_jws_get_plaintext(jws, &plain, &len, NULL))
		bad_token(e, "The ID token's signature is wrong.");
	else if (agora_json_parse((const char *)plain, len, claims, &why) !=
	        AGORA_OK ||
	    !json_object_is_type(*claims, json_type_object))
		bad_token(e, "The ID token's claims are not a JSON object.");
	else
		rc = 0;
	cjose_jwk_release(jwk);
	cjose_jws_release(jws);
	return rc;
}

/* --- the identity --------------------------------------------------------- */

/* email_verified as a boolean, or the string some providers send. */
static int
verified_of(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	if (json_object_is_type(v, json_type_boolean))
		return json_object_get_boolean(v);
	return str_of(o, key) != NULL && strcmp(str_of(o, key), "true") == 0;
}

/*
 * An address of printable ASCII only: lower() folds some other letters
 * to ASCII ones (a dotted capital I, a Kelvin sign), so that a provider's
 * address in them could match another account's.
 */
static int
ascii_email(const char *s)
{
	size_t i, n;

	if (s == NULL || !agora_email_valid(s, (n = strlen(s))))
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return 0;
	return 1;
}

/* Copy o's email and name into id, in the arena; a name o lacks is kept. */
static void
person_of(struct agora_req *r, struct json_object *o, const char *email_key,
    const char *verified_key, struct oidc_identity *id)
{
	const char *email = str_of(o, email_key), *name = str_of(o, "name");

	if (name == NULL || *name == '\0')
		name = str_of(o, "preferred_username");
	if (name == NULL || *name == '\0')
		name = str_of(o, "login");
	if (name != NULL && *name != '\0')
		id->name = agora_strdup(r, name);
	id->email = ascii_email(email) ? agora_strdup(r, email) : NULL;
	id->email_verified = id->email != NULL && verified_key != NULL &&
	    verified_of(o, verified_key);
}

/*
 * OpenID Connect: the ID token's claims; its email from the userinfo
 * endpoint when the token has none (the same subject's, or nothing).
 */
static int
oidc_person(struct agora_req *r, struct disco *d, struct json_object *tokens,
    const char *nonce, struct oidc_identity *id, struct oidc_error *e)
{
	struct json_object *claims = NULL, *info = NULL;
	const char *jwt = str_of(tokens, "id_token");
	const char *access = str_of(tokens, "access_token");
	int rc;

	if (jwt == NULL)
		return bad_token(e, "The provider gave no ID token.");
	if ((rc = id_token_verify(r, d, jwt, &claims, e)) == 0)
		rc = claims_check(d, claims, nonce, e);
	if (rc == 0) {
		id->subject = agora_strdup(r, str_of(claims, "sub"));
		id->issuer = d->issuer;
		person_of(r, claims, "email", "email_verified", id);
	}
	if (rc == 0 && id->email == NULL && d->userinfo != NULL &&
	    access != NULL && get_json(r, d->userinfo, access, &info, e) == 0 &&
	    str_of(info, "sub") != NULL &&
	    strcmp(str_of(info, "sub"), id->subject) == 0)
		person_of(r, info, "email", "email_verified", id);
	json_object_put(info);
	json_object_put(claims);
	return rc;
}

/* The address the emails endpoint marks primary and verified, or NULL. */
static const char *
primary_verified(struct json_object *list)
{
	struct json_object *m;
	size_t i, n;

	if (!json_object_is_type(list, json_type_array))
		return NULL;
	n = json_object_array_length(list);
	for (i = 0; i < n; i++) {
		m = json_object_array_get_idx(list, i);
		if (verified_of(m, "primary") && verified_of(m, "verified") &&
		    str_of(m, "email") != NULL)
			return str_of(m, "email");
	}
	return NULL;
}

/* OAuth2 of the GitHub kind: the user endpoint, then the emails one. */
static int
oauth2_person(struct agora_req *r, const struct agora_provider *p,
    struct json_object *tokens, struct oidc_identity *id, struct oidc_error *e)
{
	struct json_object *user = NULL, *emails = NULL, *v;
	const char *access = str_of(tokens, "access_token"), *email;
	int rc = -1;

	if (access == NULL)
		return fail(e, "bad_provider_answer",
		    "The sign-in provider gave no access token.");
	if (get_json(r, p->userinfo_endpoint, access, &user, e) != 0)
		return -1;
	if (!json_object_object_get_ex(user, "id", &v) ||
	    (!json_object_is_type(v, json_type_int) &&
	        str_of(user, "id") == NULL) ||
	    *json_object_get_string(v) == '\0' ||
	    strlen(json_object_get_string(v)) > 255) {
		fail(e, "bad_provider_answer",
		    "The sign-in provider names no user.");
		goto out;
	}
	id->subject = agora_strdup(r, json_object_get_string(v));
	id->issuer = p->token_endpoint;
	person_of(r, user, "email", NULL, id);
	if (*p->emails_endpoint != '\0' &&
	    get_json(r, p->emails_endpoint, access, &emails, e) != 0)
		goto out;
	if ((email = primary_verified(emails)) != NULL && ascii_email(email)) {
		id->email = agora_strdup(r, email);
		id->email_verified = 1;
	}
	rc = 0;
out:
	json_object_put(emails);
	json_object_put(user);
	return rc;
}

int
oidc_identify(struct agora_req *r, const struct agora_provider *p,
    const char *redirect_uri, const char *code, const char *verifier,
    const char *nonce, struct oidc_identity *id, struct oidc_error *e)
{
	struct json_object *tokens = NULL;
	struct disco *d;
	int rc;

	memset(id, 0, sizeof(*id));
	if ((d = discover(r, p, e)) == NULL)
		return -1;
	rc = token_request(r, p, d, redirect_uri, code, verifier, &tokens, e);
	/* GitHub refuses a code with a 200 that holds an error. */
	if (rc == 0 && str_of(tokens, "error") != NULL) {
		agora_log("warning", "sign-in provider %s: %.100s", p->name,
		    str_of(tokens, "error"));
		rc = fail(e, "provider_refused",
		    "The sign-in provider refused the sign-in.");
	}
	if (rc == 0)
		rc = strcmp(p->type, "oidc") == 0
		    ? oidc_person(r, d, tokens, nonce, id, e)
		    : oauth2_person(r, p, tokens, id, e);
	json_object_put(tokens);
	if (rc == 0 && id->subject == NULL)
		rc = fail(e, "provider_unavailable", "No memory.");
	return rc;
}
