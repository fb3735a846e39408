-- 0014: role changes and disabled accounts take effect at once.
--
-- An access token is a signed statement of a user's role that the
-- programs check without the database, so a demoted admin kept the admin
-- role, and nothing could shut an account out, until the token expired.
-- Each user now has a token generation: access tokens carry the one they
-- were issued under (claim "gen"), and a token of an older generation is
-- refused.  The programs read the generation from memcached (key
-- agora:tg:<id>, kept a minute), and from here when it is missing or
-- memcached is down, so a change is seen by the next request on every
-- host.  Changing a role or disabling an account moves the generation on
-- and revokes the user's refresh tokens, whoever makes the change: the
-- programs, agoractl or psql (after psql, other programs may take up to a
-- minute to see it, since nothing tells memcached).

ALTER TABLE users ADD COLUMN token_gen integer NOT NULL DEFAULT 0,
	ADD COLUMN disabled_at timestamptz;

CREATE FUNCTION users_token_gen() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	NEW.token_gen := OLD.token_gen + 1;
	UPDATE refresh_tokens SET revoked_at = now()
	WHERE user_id = NEW.id AND revoked_at IS NULL;
	RETURN NEW;
END
$$;

CREATE TRIGGER users_token_gen BEFORE UPDATE OF role, disabled_at ON users
	FOR EACH ROW WHEN (OLD.role IS DISTINCT FROM NEW.role
		OR (OLD.disabled_at IS NULL) <> (NEW.disabled_at IS NULL))
	EXECUTE FUNCTION users_token_gen();

-- The generation a user's tokens must have now; a disabled account's is
-- beyond any token's.  No row: no such user.
CREATE FUNCTION user_token_gen(p_user bigint) RETURNS bigint
LANGUAGE sql STABLE AS $$
	SELECT CASE WHEN disabled_at IS NULL THEN token_gen
		ELSE 2147483647 END
	FROM users WHERE id = p_user
$$;
