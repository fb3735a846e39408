-- 0024: verified email addresses and password resets.
--
-- An account's email is verified when its owner follows the link of a
-- verification mail (or of a password reset, which proves the same).
-- Each mail is a row of account_tokens, queued with an account.mail row
-- of the outbox in the transaction that asks for it.  The worker makes
-- the token when it sends the mail and stores only its SHA-256, so the
-- token itself is never in the database; a mail sent again (a retry)
-- carries a new token, and the earlier one is dead.  A token is bound
-- to the address it was sent to: it verifies nothing once the account's
-- email is another.  It is used at most once, and expires.

ALTER TABLE users ADD COLUMN email_verified_at timestamptz;

CREATE TABLE account_tokens (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	user_id bigint NOT NULL REFERENCES users ON DELETE CASCADE,
	purpose text NOT NULL CHECK (purpose IN ('verify', 'reset')),
	email text NOT NULL,
	token_sha256 text UNIQUE CHECK (token_sha256 ~ '^[0-9a-f]{64}$'),
	created_at timestamptz NOT NULL DEFAULT now(),
	expires_at timestamptz NOT NULL,
	sent_at timestamptz,
	used_at timestamptz
);

CREATE INDEX account_tokens_user ON account_tokens (user_id, purpose, id);
CREATE INDEX account_tokens_expires ON account_tokens (expires_at);

-- agora-worker deletes refresh tokens a day past their expiry (and the
-- sessions they leave empty): found by this index.  Building it holds
-- off logins and refreshes for as long as it takes on a large table.
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);
