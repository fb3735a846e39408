-- 0025: signing in with an OpenID Connect or OAuth2 provider.
--
-- user_identities links an account to its identity at a provider: the
-- issuer (an OpenID Connect provider's; the token endpoint of an OAuth2
-- one) and the subject it gives the person, which never changes (an
-- email may): OpenID Connect Core 1.0, 5.7, makes that pair the one
-- stable identifier.  provider is the name of its [provider NAME]
-- section of agora.conf, for the routes; a section pointed at another
-- provider therefore matches none of the old identities.  An account has
-- at most one identity per provider, and an identity belongs to one
-- account.
--
-- oauth_flows holds a sign-in on its way through the provider: from the
-- start route to the callback, at most ten minutes.  Its key is the
-- SHA-256 of the state sent to the provider (the state itself is only in
-- the browser's cookie and the provider's redirect), and the callback
-- deletes the row it uses, so that a state works once.  The nonce binds
-- the ID token to this flow and the PKCE verifier the code; link_user is
-- the account that asked to link the identity, or NULL for a sign-in,
-- and link_gen the token generation (0014) of the token that asked: a
-- link whose account's tokens were ended meanwhile (a reset, a password
-- change, log out everywhere) is refused.

CREATE TABLE user_identities (
	issuer text NOT NULL,
	subject text NOT NULL CHECK (length(subject) BETWEEN 1 AND 255),
	provider text NOT NULL,
	user_id bigint NOT NULL REFERENCES users ON DELETE CASCADE,
	email text,
	created_at timestamptz NOT NULL DEFAULT now(),
	last_login_at timestamptz,
	PRIMARY KEY (issuer, subject),
	UNIQUE (user_id, provider)
);

CREATE TABLE oauth_flows (
	state_sha256 text PRIMARY KEY CHECK (state_sha256 ~ '^[0-9a-f]{64}$'),
	provider text NOT NULL,
	nonce text NOT NULL,
	verifier text NOT NULL,
	link_user bigint REFERENCES users ON DELETE CASCADE,
	link_gen bigint,
	cookie boolean NOT NULL,
	return_to text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	expires_at timestamptz NOT NULL
);

CREATE INDEX oauth_flows_expires ON oauth_flows (expires_at);
