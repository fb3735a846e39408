-- 0002: analytics events posted by the storefront and API clients.
--
-- Append-only: the programs may insert and read, never change or delete.
-- A BRIN index on the time suits a table that only grows in time order.
CREATE TABLE analytics_events (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	type text NOT NULL CHECK (length(type) BETWEEN 1 AND 64),
	session_id text NOT NULL CHECK (length(session_id) BETWEEN 1 AND 128),
	product_id text CHECK (length(product_id) BETWEEN 1 AND 64),
	properties jsonb NOT NULL DEFAULT '{}'
		CHECK (jsonb_typeof(properties) = 'object'),
	occurred_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX analytics_events_occurred_at
	ON analytics_events USING brin (occurred_at);

REVOKE UPDATE, DELETE ON analytics_events FROM agora_app;
