-- 0023: sessions a user can see and end.
--
-- A session is one login: the family of refresh tokens (0003) that it
-- rotates through.  Its row says when it began, when its refresh token
-- was last used, and the user agent and address of that use, for GET
-- /users/me/sessions.  It is live while a token of its family is neither
-- rotated, revoked nor expired; ending it revokes that token.  Access
-- tokens carry their session's id (claim "sid"), so that a client can
-- tell which one of the list is its own.  Families from before this
-- migration get a row each, without user agent or address.

-- Logins of the previous release go on meanwhile: none may store a token
-- between the backfill below and the trigger that takes over from it.
LOCK TABLE refresh_tokens IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE sessions (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	user_id bigint NOT NULL REFERENCES users ON DELETE CASCADE,
	family text NOT NULL UNIQUE,
	created_at timestamptz NOT NULL DEFAULT now(),
	last_used_at timestamptz NOT NULL DEFAULT now(),
	user_agent text NOT NULL DEFAULT '' CHECK (length(user_agent) <= 256),
	ip text NOT NULL DEFAULT '-' CHECK (length(ip) <= 64)
);

CREATE INDEX sessions_user ON sessions (user_id, id);

INSERT INTO sessions (user_id, family, created_at, last_used_at)
SELECT user_id, family, min(created_at), max(created_at)
FROM refresh_tokens GROUP BY user_id, family;

-- No token without its session.  The programs make a login's session
-- before its first token; the previous release's, which know nothing of
-- sessions, go on serving during a rolling upgrade, and a token they
-- store gets its session here (functions/tables.sql has the body).
CREATE FUNCTION refresh_tokens_session() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	-- Looked up first: ON CONFLICT would spend an id on every refresh.
	IF NOT EXISTS (SELECT 1 FROM sessions WHERE family = NEW.family) THEN
		INSERT INTO sessions (user_id, family)
		VALUES (NEW.user_id, NEW.family)
		ON CONFLICT (family) DO NOTHING;
	END IF;
	RETURN NEW;
END
$$;

CREATE TRIGGER refresh_tokens_session BEFORE INSERT ON refresh_tokens
	FOR EACH ROW EXECUTE FUNCTION refresh_tokens_session();

ALTER TABLE refresh_tokens ADD CONSTRAINT refresh_tokens_session
	FOREIGN KEY (family) REFERENCES sessions (family) ON DELETE CASCADE;
