-- 0003: accounts and refresh tokens.
--
-- Emails are stored case-folded, so the unique constraint makes an address
-- taken in any letter case.  Password hashes are Argon2id strings; refresh
-- tokens are stored only as their SHA-256, so a copy of this table cannot
-- be replayed.  A token belongs to a family (one login); presenting a
-- token that was already rotated revokes its whole family.
CREATE TABLE users (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	email text NOT NULL CHECK (email = lower(email)
		AND length(email) BETWEEN 3 AND 254),
	name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
	role text NOT NULL DEFAULT 'customer'
		CHECK (role IN ('customer', 'admin')),
	password_hash text NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT users_email_key UNIQUE (email)
);

CREATE TABLE refresh_tokens (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	user_id bigint NOT NULL REFERENCES users ON DELETE CASCADE,
	family text NOT NULL,
	token_sha256 text NOT NULL UNIQUE,
	created_at timestamptz NOT NULL DEFAULT now(),
	expires_at timestamptz NOT NULL,
	rotated_at timestamptz,
	revoked_at timestamptz
);

CREATE INDEX refresh_tokens_family ON refresh_tokens (family);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

-- RFC 3339 UTC text for timestamps in API answers.
CREATE FUNCTION agora_time(t timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;
