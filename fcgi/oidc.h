/*
 * oidc.h: the protocol side of signing in with a provider (oidc.c): the
 * authorization request, the code exchange, and the identity, checked as
 * doc/sign-in.md says.
 */
#ifndef AGORA_OIDC_H
#define AGORA_OIDC_H

#include "agora.h"

/* What one sign-in sends the provider, made at its start. */
struct oidc_flow {
	char state[AGORA_SECRET_TEXT];
	char state_sha256[65];
	char nonce[AGORA_SECRET_TEXT];
	char verifier[AGORA_SECRET_TEXT]; /* PKCE (RFC 7636) */
};

/* Who the provider says signed in. */
struct oidc_identity {
	const char *issuer; /* the issuer, or an OAuth2 token endpoint */
	const char *subject; /* the provider's id of the person, never NULL */
	const char *email; /* NULL: none given, or not an ASCII address */
	int email_verified; /* the provider says the person owns email */
	const char *name; /* NULL: none given */
};

/*
 * Why a step failed: a problem code of the API (doc/sign-in.md), and a
 * detail for the client.  The provider's own words go to the log only.
 */
struct oidc_error {
	const char *code;
	const char *detail;
};

void oidc_flow_new(struct oidc_flow *f);
/* The URL of the provider's authorization request; 0, or -1 with *e. */
int oidc_authorize_url(struct agora_req *r, const struct agora_provider *p,
    const char *redirect_uri, const struct oidc_flow *f, const char **url,
    struct oidc_error *e);
/*
 * Exchange code for the identity: the token request with the PKCE
 * verifier, the ID token checked against nonce (oidc), or the user and
 * email endpoints (oauth2).  0, or -1 with *e.
 */
int oidc_identify(struct agora_req *r, const struct agora_provider *p,
    const char *redirect_uri, const char *code, const char *verifier,
    const char *nonce, struct oidc_identity *id, struct oidc_error *e);

#endif /* AGORA_OIDC_H */
