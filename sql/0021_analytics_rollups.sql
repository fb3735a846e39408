-- 0021: daily rollups for GET /analytics/summary.
--
-- The summary of a month must not read a month of events and orders on
-- every call (a million events take seconds); it reads these counters,
-- kept by triggers in the transaction that writes the rows they count, so
-- they are never behind and never count a row that was rolled back.  A
-- day is a UTC calendar day.  The rollups outlive the rows: pruning old
-- analytics events (0015) leaves their days' counts as they were.
--
--   analytics_daily: per day and event type, the events and the sessions
--     that sent at least one of them that day ("session-days"); type ''
--     counts every event and every session that sent any (the visits).
--   analytics_session_days: the sessions already counted for a day and
--     type, so that a session counts once a day.  Events are stamped with
--     the time of their insert, so only today's and yesterday's rows can
--     still be needed; agora-worker deletes older ones.
--   analytics_sales_daily: per day and currency, the orders that became
--     paid that day and their totals (never summed across currencies).
--   analytics_product_daily: per day, product and currency, the units and
--     revenue of those orders' lines.
--
-- Hot rows: every event insert adds to the same (day, type) rows, and
-- every payment to the same (day, currency) row.  Those two tables are
-- split into 8 shards by the backend's process id, so that concurrent
-- writers mostly take different rows; the summary sums the shards.  Each
-- trigger takes its rows in key order, and nothing a transaction locks
-- after them is shared (an order's own rows), so two writers cannot
-- deadlock over them.  The programs' role may only read these tables: the
-- triggers run with the owner's rights.

CREATE TABLE analytics_daily (
	day date NOT NULL,
	type text NOT NULL,
	shard smallint NOT NULL,
	events bigint NOT NULL DEFAULT 0,
	sessions bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (day, type, shard)
);

CREATE TABLE analytics_session_days (
	day date NOT NULL,
	type text NOT NULL,
	session_id text NOT NULL,
	PRIMARY KEY (day, type, session_id)
);

CREATE TABLE analytics_sales_daily (
	day date NOT NULL,
	currency text NOT NULL,
	shard smallint NOT NULL,
	orders bigint NOT NULL DEFAULT 0,
	revenue_cents bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (day, currency, shard)
);

CREATE TABLE analytics_product_daily (
	day date NOT NULL,
	product_id bigint NOT NULL,
	currency text NOT NULL,
	units bigint NOT NULL DEFAULT 0,
	revenue_cents bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (day, product_id, currency)
);

REVOKE INSERT, UPDATE, DELETE ON analytics_daily, analytics_session_days,
	analytics_sales_daily, analytics_product_daily FROM agora_app;

-- The triggers' functions, as first written (tables.sql holds their
-- current bodies).  Each migration commits on its own, before the
-- functions files are applied, so a trigger made here must work here.
CREATE FUNCTION analytics_events_rollup() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path TO 'pg_catalog', 'public', 'pg_temp' AS $$
BEGIN
	WITH e AS (
		SELECT (n.occurred_at AT TIME ZONE 'UTC')::date AS day, k.type,
			n.session_id
		FROM new_rows n, LATERAL (VALUES (n.type), ('')) AS k(type)),
	s AS (
		INSERT INTO analytics_session_days (day, type, session_id)
		SELECT DISTINCT e.day, e.type, e.session_id FROM e
		ORDER BY 1, 2, 3
		ON CONFLICT DO NOTHING
		RETURNING day, type),
	c AS (
		SELECT e.day, e.type, count(*) AS events, 0 AS sessions
		FROM e GROUP BY 1, 2
		UNION ALL
		SELECT s.day, s.type, 0, count(*) FROM s GROUP BY 1, 2)
	INSERT INTO analytics_daily AS d (day, type, shard, events, sessions)
	SELECT c.day, c.type, pg_backend_pid() % 8, sum(c.events),
		sum(c.sessions)
	FROM c GROUP BY 1, 2 ORDER BY 1, 2
	ON CONFLICT (day, type, shard) DO UPDATE
	SET events = d.events + excluded.events,
		sessions = d.sessions + excluded.sessions;
	RETURN NULL;
END
$$;

CREATE FUNCTION order_events_rollup() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path TO 'pg_catalog', 'public', 'pg_temp' AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM new_rows WHERE status = 'paid') THEN
		RETURN NULL;
	END IF;
	WITH p AS (
		SELECT (n.at AT TIME ZONE 'UTC')::date AS day, n.order_id
		FROM new_rows n WHERE n.status = 'paid'),
	s AS (
		INSERT INTO analytics_sales_daily AS d (day, currency, shard,
			orders, revenue_cents)
		SELECT p.day, o.currency, pg_backend_pid() % 8, count(*),
			sum(o.total_cents)
		FROM p JOIN orders o ON o.id = p.order_id
		GROUP BY 1, 2 ORDER BY 1, 2
		ON CONFLICT (day, currency, shard) DO UPDATE
		SET orders = d.orders + excluded.orders,
			revenue_cents = d.revenue_cents + excluded.revenue_cents)
	INSERT INTO analytics_product_daily AS d (day, product_id, currency,
		units, revenue_cents)
	SELECT p.day, i.product_id, o.currency, sum(i.quantity),
		sum(i.unit_price_cents * i.quantity)
	FROM p JOIN orders o ON o.id = p.order_id
	JOIN order_items i ON i.order_id = p.order_id
	GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
	ON CONFLICT (day, product_id, currency) DO UPDATE
	SET units = d.units + excluded.units,
		revenue_cents = d.revenue_cents + excluded.revenue_cents;
	RETURN NULL;
END
$$;

-- Taken before the backfill below reads: CREATE TRIGGER waits for the
-- writers in flight and holds new ones off until this migration commits,
-- so every row is counted once, by the backfill or by the trigger.
CREATE TRIGGER analytics_events_rollup AFTER INSERT ON analytics_events
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION analytics_events_rollup();
CREATE TRIGGER order_events_rollup AFTER INSERT ON order_events
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION order_events_rollup();

-- The rows there already.
WITH e AS (
	SELECT (a.occurred_at AT TIME ZONE 'UTC')::date AS day, k.type,
		a.session_id
	FROM analytics_events a,
		LATERAL (VALUES (a.type), ('')) AS k(type))
INSERT INTO analytics_daily (day, type, shard, events, sessions)
SELECT day, type, 0, count(*), count(DISTINCT session_id)
FROM e GROUP BY 1, 2;

INSERT INTO analytics_session_days (day, type, session_id)
SELECT DISTINCT (a.occurred_at AT TIME ZONE 'UTC')::date, k.type,
	a.session_id
FROM analytics_events a, LATERAL (VALUES (a.type), ('')) AS k(type)
WHERE a.occurred_at >= (now() AT TIME ZONE 'UTC')::date - 1;

INSERT INTO analytics_sales_daily (day, currency, shard, orders,
	revenue_cents)
SELECT (e.at AT TIME ZONE 'UTC')::date, o.currency, 0, count(*),
	sum(o.total_cents)
FROM order_events e JOIN orders o ON o.id = e.order_id
WHERE e.status = 'paid' GROUP BY 1, 2;

INSERT INTO analytics_product_daily (day, product_id, currency, units,
	revenue_cents)
SELECT (e.at AT TIME ZONE 'UTC')::date, i.product_id, o.currency,
	sum(i.quantity), sum(i.unit_price_cents * i.quantity)
FROM order_events e JOIN orders o ON o.id = e.order_id
JOIN order_items i ON i.order_id = e.order_id
WHERE e.status = 'paid' GROUP BY 1, 2, 3;
