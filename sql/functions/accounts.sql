-- accounts.sql: the token generation that ends a user's tokens, and an
-- admin's change of a user.
--
-- Each function's current body, in one place.  agoractl migrate applies
-- this file, after the numbered migrations, into the schema of the
-- release (agora_0_2 for 0.2.x: the programs of a release set their
-- search_path to it, then public), whenever it changed since it was last
-- applied there (schema_functions records its checksum), in one
-- transaction with the other changed files; change a function here, not
-- in a new migration.  The functions the tables call (triggers) are in
-- tables.sql, in public.  CREATE OR REPLACE keeps a function's grants and
-- cannot change its arguments or result type: within a release a new
-- signature is a new function, and the old one goes once no program of
-- the release calls it; a new release starts a schema of its own, so the
-- previous release's programs keep theirs until agoractl prune-functions
-- (doc/architecture.md, "The database").  "From 0005 (this body: 0013)"
-- above a function: where it was created, and which migration last
-- replaced it.

-- From 0016.
-- An admin (p_caller, whose token is of generation p_caller_gen) changes
-- p_user's role or state; NULL leaves one as it is.  p_caller NULL: the
-- system (agoractl).  The caller's row is locked and checked in the same
-- transaction.  Returns the user's row and the generation their tokens
-- must now have, or no row: no such user, or the caller may not.
CREATE OR REPLACE FUNCTION user_admin_update(p_caller bigint, p_caller_gen integer, p_user bigint, p_role text, p_disabled boolean)
 RETURNS TABLE(id text, email text, name text, role text, created_at text, disabled boolean, token_gen bigint)
 LANGUAGE plpgsql
AS $function$
#variable_conflict use_column
BEGIN
	IF p_caller IS NOT NULL AND NOT EXISTS (SELECT 1 FROM users c
		WHERE c.id = p_caller AND c.role = 'admin'
		AND c.disabled_at IS NULL AND c.token_gen <= p_caller_gen
		FOR SHARE) THEN
		RETURN;
	END IF;
	RETURN QUERY UPDATE users u SET role = COALESCE(p_role, u.role),
		disabled_at = CASE WHEN p_disabled IS NULL THEN u.disabled_at
			WHEN p_disabled THEN COALESCE(u.disabled_at, now()) END,
		updated_at = now()
	WHERE u.id = p_user
	RETURNING u.id::text, u.email, u.name, u.role,
		agora_time(u.created_at), u.disabled_at IS NOT NULL,
		user_gen_of(u);
END
$function$;

-- From 0016.
-- The generation a user's tokens must have, from the row itself: in a
-- RETURNING list, a function that reads the table would see the row as it
-- was before the statement.
CREATE OR REPLACE FUNCTION user_gen_of(u users)
 RETURNS bigint
 LANGUAGE sql
 IMMUTABLE
AS $function$
	SELECT CASE WHEN u.disabled_at IS NULL THEN u.token_gen::bigint
		ELSE 2147483647 END
$function$;

-- From 0014 (this body: 0016).
CREATE OR REPLACE FUNCTION user_token_gen(p_user bigint)
 RETURNS bigint
 LANGUAGE sql
 STABLE
AS $function$
	SELECT user_gen_of(u) FROM users u WHERE u.id = p_user
$function$;

-- From 0023 (this body: 0025).
-- End every session of p_user: its refresh tokens are revoked and its
-- access tokens end with the generation moved on.  p_caller (whose
-- token is of generation p_caller_gen) is p_user, or an admin, checked
-- here under a lock as user_admin_update does.  Returns the generation
-- the user's tokens must now have, or NULL: no such user, or the
-- caller may not.
CREATE OR REPLACE FUNCTION user_sessions_end(p_caller bigint, p_caller_gen integer, p_user bigint)
 RETURNS bigint
 LANGUAGE plpgsql
AS $function$
DECLARE
	v_gen bigint;
BEGIN
	IF p_caller <> p_user AND NOT EXISTS (SELECT 1 FROM users c
		WHERE c.id = p_caller AND c.role = 'admin'
		AND c.disabled_at IS NULL AND c.token_gen <= p_caller_gen
		FOR SHARE) THEN
		RETURN NULL;
	END IF;
	UPDATE users u SET token_gen = u.token_gen + 1
	WHERE u.id = p_user RETURNING user_gen_of(u) INTO v_gen;
	UPDATE refresh_tokens SET revoked_at = now()
	WHERE user_id = p_user AND revoked_at IS NULL;
	-- Links on their way through a provider end with the tokens (0025).
	DELETE FROM oauth_flows WHERE link_user = p_user;
	RETURN v_gen;
END
$function$;

-- From 0024 (this signature: 0.2).
-- Queue a mail of p_purpose ('verify' or 'reset') for the account p_user,
-- or else the one whose email is p_email (NULL: none such), valid for
-- p_ttl seconds from now: the token's row and an account.mail outbox row
-- for the worker.  A disabled account gets none, and an account already
-- verified no verification.  At most p_max mails of a purpose go to one
-- account in an hour (a registration's verification mail among them),
-- counted here from the tokens themselves: the API's own limit is counted
-- in memcached, which lets requests through while it is down, and this
-- one holds whatever the cache does.  The account's advisory lock makes
-- two queueings at once count one after the other.  Returns how many
-- were queued (0 or 1), or, when the account had its p_max this hour,
-- minus the seconds until it may have another (-3600 to -1).
CREATE OR REPLACE FUNCTION account_mail_queue(p_user bigint, p_email text, p_purpose text, p_ttl integer, p_max integer)
 RETURNS integer
 LANGUAGE plpgsql
AS $function$
DECLARE
	v_user bigint;
	v_full timestamptz;
	v_n integer;
BEGIN
	SELECT u.id INTO v_user FROM users u
	WHERE (u.id = p_user OR u.email = lower(p_email))
	AND u.disabled_at IS NULL
	AND (p_purpose <> 'verify' OR u.email_verified_at IS NULL);
	IF v_user IS NULL THEN
		RETURN 0;
	END IF;
	PERFORM pg_advisory_xact_lock(hashtext('account-mail:' || v_user));
	-- Statements of their own, after the lock: they see what a queueing
	-- that held the lock before committed (the account's state too, which
	-- the INSERT checks again).  The p_max-th newest mail of the hour, if
	-- there is one, says when the next may go.
	SELECT t.created_at INTO v_full FROM account_tokens t
	WHERE t.user_id = v_user AND t.purpose = p_purpose
	AND t.created_at > now() - interval '1 hour'
	ORDER BY t.created_at DESC OFFSET p_max - 1 LIMIT 1;
	IF v_full IS NOT NULL THEN
		RETURN -greatest(1, ceil(extract(epoch FROM
			v_full + interval '1 hour' - now())))::integer;
	END IF;
	WITH t AS (INSERT INTO account_tokens (user_id, purpose, email,
			expires_at)
		SELECT u.id, p_purpose, u.email,
			now() + make_interval(secs => p_ttl)
		FROM users u WHERE u.id = v_user
		AND u.disabled_at IS NULL
		AND (p_purpose <> 'verify' OR u.email_verified_at IS NULL)
		RETURNING id)
	SELECT count(outbox_add('account.mail', 'account_token:' || id,
			jsonb_build_object('account_token_id', id::text)) IS NULL)
		INTO v_n FROM t;
	RETURN v_n;
END
$function$;

-- From 0024 (this body: 0.2).
-- The form 0.2.0's programs call, which may still serve while an upgrade
-- within 0.2 is rolled out: bounded at password_reset_max's highest value
-- (agora.conf(5)), since they do not pass theirs.  Goes in 0.3.
CREATE OR REPLACE FUNCTION account_mail_queue(p_user bigint, p_email text, p_purpose text, p_ttl integer)
 RETURNS integer
 LANGUAGE sql
AS $function$
	SELECT account_mail_queue(p_user, p_email, p_purpose, p_ttl, 100)
$function$;

-- From 0024.
-- What the worker needs to send the mail of token p_id, once it stored
-- the hash of the token it made (p_sha256): the purpose, the address and
-- the customer's name.  No row when the token is used or expired, or the
-- account's email or state changed since it was asked for (or it was
-- verified meanwhile): nothing to send then.
CREATE OR REPLACE FUNCTION account_mail_source(p_id bigint, p_sha256 text)
 RETURNS TABLE(purpose text, email text, name text, expires_at text)
 LANGUAGE sql
AS $function$
	UPDATE account_tokens t SET token_sha256 = p_sha256, sent_at = now()
	FROM users u
	WHERE t.id = p_id AND u.id = t.user_id AND t.used_at IS NULL
	AND t.expires_at > now() AND u.email = t.email
	AND u.disabled_at IS NULL
	AND (t.purpose <> 'verify' OR u.email_verified_at IS NULL)
	RETURNING t.purpose, t.email, u.name, agora_time(t.expires_at)
$function$;

-- From 0024 (this body: 0025).
-- Use the token whose SHA-256 is p_sha256 for p_purpose: live, unused,
-- and for the address the account has now.  A reset sets the password
-- hash p_password, ends every session of the account, kills the
-- account's other reset tokens, and unlinks its sign-in providers;
-- either proves the address.  Returns the
-- account and the generation its tokens must now have, or no row.
CREATE OR REPLACE FUNCTION account_token_use(p_sha256 text, p_purpose text, p_password text)
 RETURNS TABLE(user_id text, token_gen bigint)
 LANGUAGE plpgsql
AS $function$
#variable_conflict use_column
DECLARE
	v_user bigint;
BEGIN
	UPDATE account_tokens t SET used_at = now()
	FROM users u
	WHERE t.token_sha256 = p_sha256 AND t.purpose = p_purpose
	AND t.used_at IS NULL AND t.expires_at > now()
	AND u.id = t.user_id AND u.email = t.email AND u.disabled_at IS NULL
	RETURNING t.user_id INTO v_user;
	IF v_user IS NULL THEN
		RETURN;
	END IF;
	-- The account's row first, which a refresh shares a lock on: one on
	-- the way finishes before, and the revoke below, a statement of its
	-- own, sees the token it made (as user_sessions_end does).
	RETURN QUERY UPDATE users u
	SET email_verified_at = COALESCE(u.email_verified_at, now()),
		password_hash = COALESCE(p_password, u.password_hash),
		token_gen = u.token_gen
			+ CASE WHEN p_purpose = 'reset' THEN 1 ELSE 0 END,
		updated_at = now()
	WHERE u.id = v_user
	RETURNING u.id::text, user_gen_of(u);
	IF p_purpose = 'reset' THEN
		UPDATE account_tokens SET used_at = now()
		WHERE account_tokens.user_id = v_user AND purpose = 'reset'
		AND used_at IS NULL;
		UPDATE refresh_tokens SET revoked_at = now()
		WHERE refresh_tokens.user_id = v_user AND revoked_at IS NULL;
		-- A reset takes the account back: whoever linked a provider to
		-- it (with a stolen token) loses that way in too (0025).
		DELETE FROM user_identities WHERE user_identities.user_id = v_user;
		DELETE FROM oauth_flows WHERE link_user = v_user;
	END IF;
END
$function$;

-- From 0024 (this body: 0025).
-- Housekeeping (agora-worker): up to p_limit refresh tokens a day past
-- their expiry (no use any more, not even to tell a stolen copy: an
-- expired token is refused before it is judged), then the sessions they
-- leave without a token, account tokens a week past theirs, and
-- provider sign-ins that expired unfinished.
-- Returns the most rows one step removed, so that the worker calls
-- again while a batch comes back full.
CREATE OR REPLACE FUNCTION auth_prune(p_limit integer)
 RETURNS integer
 LANGUAGE plpgsql
AS $function$
DECLARE
	v_families text[];
	v_n integer;
	v_m integer;
BEGIN
	WITH d AS (DELETE FROM refresh_tokens WHERE id IN (
			SELECT id FROM refresh_tokens
			WHERE expires_at < now() - interval '1 day'
			LIMIT p_limit)
		RETURNING family)
	SELECT array_agg(DISTINCT family), count(*) INTO v_families, v_n
	FROM d;
	-- A statement of its own: it sees the tokens gone.
	DELETE FROM sessions s WHERE s.family = ANY (v_families)
	AND NOT EXISTS (SELECT 1 FROM refresh_tokens t
		WHERE t.family = s.family);
	DELETE FROM account_tokens WHERE id IN (
		SELECT id FROM account_tokens
		WHERE expires_at < now() - interval '7 days' LIMIT p_limit);
	GET DIAGNOSTICS v_m = ROW_COUNT;
	v_n := greatest(v_n, v_m);
	-- Sign-ins through a provider that were never finished (0025).
	DELETE FROM oauth_flows WHERE state_sha256 IN (
		SELECT state_sha256 FROM oauth_flows
		WHERE expires_at < now() LIMIT p_limit);
	GET DIAGNOSTICS v_m = ROW_COUNT;
	RETURN greatest(v_n, v_m);
END
$function$;

-- From 0025.
-- The account that identity (p_issuer, p_subject), of the provider
-- section p_provider, signs in to, or is linked to (p_link: the account
-- that asked to link it; NULL: a sign-in).  An identity seen before signs
-- in to its account.  A link needs the account's email verified (else an
-- account registered with someone else's address could keep a way in
-- after its owner takes it back with a reset).  A new identity signs in
-- to the account of its email only when both sides verified that email
-- (p_verified: the provider says it did), and never to an admin's; with
-- no account of that email and the provider's word that it is verified,
-- it makes one, whose password hash p_hash is of a password nobody knows
-- (a reset sets one); with p_hash NULL it answers 'needs_hash' instead,
-- having changed nothing, so that the caller hashes only for a new
-- account and asks again.  A link is refused once the account's tokens are
-- of a later generation than p_link_gen, the one of the token that
-- asked for it.  Returns the outcome ('login', 'created', 'linked', or
-- 'needs_hash', or the refusal: 'identity_taken', 'provider_linked', 'account_unverified',
-- 'link_expired', 'account_exists', 'email_unverified',
-- 'account_disabled') and the account's row when there is one.
CREATE OR REPLACE FUNCTION oauth_sign_in(p_provider text, p_issuer text, p_subject text, p_email text, p_verified boolean, p_name text, p_hash text, p_link bigint, p_link_gen bigint)
 RETURNS TABLE(outcome text, user_id text, role text, token_gen bigint)
 LANGUAGE plpgsql
AS $function$
#variable_conflict use_column
DECLARE
	v_owner bigint;
	v_user users;
	v_outcome text;
BEGIN
	-- Two callbacks of one new identity at once would both find it new.
	PERFORM pg_advisory_xact_lock(hashtext('oauth:' || p_issuer || ':' || p_subject));
	SELECT i.user_id INTO v_owner FROM user_identities i
	WHERE i.issuer = p_issuer AND i.subject = p_subject;
	IF p_link IS NOT NULL THEN
		SELECT * INTO v_user FROM users u WHERE u.id = p_link FOR UPDATE;
		v_outcome := oauth_link_refusal(v_user, v_owner, p_provider);
		-- Its tokens were ended since the link was asked for.
		IF v_outcome IS NULL
			AND (p_link_gen IS NULL OR user_gen_of(v_user) > p_link_gen) THEN
			v_outcome := 'link_expired';
		END IF;
		IF v_outcome IS NULL AND v_owner IS NULL THEN
			INSERT INTO user_identities (issuer, subject, provider, user_id, email)
			VALUES (p_issuer, p_subject, p_provider, p_link, p_email);
		END IF;
	ELSIF v_owner IS NOT NULL THEN
		UPDATE user_identities i SET last_login_at = now(), email = p_email
		WHERE i.issuer = p_issuer AND i.subject = p_subject;
		SELECT * INTO v_user FROM users u WHERE u.id = v_owner;
	ELSE
		-- Two of one new email at once would both make its account.
		IF p_email IS NOT NULL THEN
			PERFORM pg_advisory_xact_lock(hashtext('oauth-email:' || lower(p_email)));
		END IF;
		SELECT * INTO v_user FROM users u WHERE u.email = lower(p_email) FOR UPDATE;
		IF v_user.id IS NOT NULL AND (NOT p_verified
			OR v_user.email_verified_at IS NULL OR v_user.role = 'admin') THEN
			v_outcome := 'account_exists';
		ELSIF v_user.id IS NULL AND (p_email IS NULL OR NOT p_verified) THEN
			v_outcome := 'email_unverified';
		ELSIF v_user.id IS NULL AND p_hash IS NULL THEN
			v_outcome := 'needs_hash';
		ELSIF v_user.id IS NULL THEN
			INSERT INTO users (email, name, password_hash, email_verified_at)
			VALUES (lower(p_email), left(p_name, 200), p_hash, now())
			RETURNING * INTO v_user;
			v_outcome := 'created';
		ELSE
			v_outcome := oauth_link_refusal(v_user, NULL, p_provider);
		END IF;
		IF v_outcome IS NULL OR v_outcome = 'created' THEN
			INSERT INTO user_identities (issuer, subject, provider, user_id, email,
				last_login_at)
			VALUES (p_issuer, p_subject, p_provider, v_user.id, p_email, now());
		END IF;
	END IF;
	IF v_outcome IS NULL AND v_user.disabled_at IS NOT NULL THEN
		v_outcome := 'account_disabled';
	END IF;
	IF v_outcome IS NOT NULL AND v_outcome <> 'created' THEN
		RETURN QUERY SELECT v_outcome, NULL::text, NULL::text, NULL::bigint;
		RETURN;
	END IF;
	RETURN QUERY SELECT COALESCE(v_outcome,
			CASE WHEN p_link IS NULL THEN 'login' ELSE 'linked' END),
		v_user.id::text, v_user.role, user_gen_of(v_user);
END
$function$;

-- From 0025.
-- Why identity (whose account is p_owner, or NULL when new) cannot be
-- linked to account p_user at provider p_provider, or NULL when it can.
CREATE OR REPLACE FUNCTION oauth_link_refusal(p_user users, p_owner bigint, p_provider text)
 RETURNS text
 LANGUAGE sql
 STABLE
AS $function$
	SELECT CASE
		WHEN p_user.disabled_at IS NOT NULL THEN 'account_disabled'
		WHEN p_owner IS NOT NULL AND p_owner <> p_user.id THEN 'identity_taken'
		WHEN p_owner IS NOT NULL THEN NULL
		WHEN p_user.email_verified_at IS NULL THEN 'account_unverified'
		WHEN EXISTS (SELECT 1 FROM user_identities i
			WHERE i.user_id = p_user.id AND i.provider = p_provider)
			THEN 'provider_linked'
	END
$function$;
