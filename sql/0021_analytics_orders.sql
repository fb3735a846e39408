-- 0021: the paid orders' daily figures, for GET /analytics/summary.
--
-- The summary of a month must not join a month of orders and their lines
-- on every call; it reads daily rows per currency (analytics_sales_daily)
-- and per product (analytics_product_blocks, below).  They are not written by the
-- payment itself: a transaction that pays several orders (the worker's
-- batches, a webhook) would lock shared counter rows one order after the
-- other, in no common order, and two such transactions could deadlock.
-- Instead order_events' trigger appends one row per order that became
-- paid to analytics_paid, which no one else writes to, in the payment's
-- transaction; agora-worker folds those rows into the daily ones in
-- batches, one worker at a time (analytics_fold(), sql/functions/
-- analytics.sql), and the summary reads the daily rows and whatever is
-- not folded yet, in one snapshot, so it is never behind.  A day is the
-- UTC day of the 'paid' event; an order is paid at most once, and its
-- order_id is the key, so it counts once.  The programs' role may only
-- read these tables: the trigger and the fold run with the owner's
-- rights.

CREATE TABLE analytics_paid (
	order_id bigint PRIMARY KEY,
	day date NOT NULL,
	currency text NOT NULL,
	total_cents bigint NOT NULL
);
CREATE INDEX analytics_paid_day ON analytics_paid (day);

CREATE TABLE analytics_sales_daily (
	day date NOT NULL,
	currency text NOT NULL,
	orders bigint NOT NULL,
	revenue_cents bigint NOT NULL,
	PRIMARY KEY (day, currency)
);

-- The top products of a range must sum every product sold in it: a shop
-- of 10,000 products that sells most of them every day has 10,000 rows a
-- day, 300,000 for a month.  So each product's units and revenue are kept
-- per block of days at eight sizes: a block of level L is 2^L days
-- (1 to 128) starting on a day whose number since 1970-01-01 is a
-- multiple of 2^L.  Two such blocks are either disjoint or one holds the
-- other, so any range is the union of a few disjoint blocks, the largest
-- that fit (about 2 x 7 for a year, 5 to 8 for 30 days), and the summary
-- reads each product once per block instead of once per day.
CREATE TABLE analytics_product_blocks (
	level smallint NOT NULL CHECK (level BETWEEN 0 AND 7),
	start_day date NOT NULL,
	product_id bigint NOT NULL,
	currency text NOT NULL,
	units bigint NOT NULL,
	revenue_cents bigint NOT NULL,
	PRIMARY KEY (level, start_day, product_id, currency)
);

REVOKE INSERT, UPDATE, DELETE ON analytics_paid, analytics_sales_daily,
	analytics_product_blocks FROM agora_app;

-- As first written (tables.sql holds the current body).  Each migration
-- commits on its own, before the functions files are applied, so a
-- trigger made here must work here.
CREATE FUNCTION order_events_rollup() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path TO 'pg_catalog', 'public', 'pg_temp' AS $$
BEGIN
	INSERT INTO analytics_paid (order_id, day, currency, total_cents)
	SELECT n.order_id, (n.at AT TIME ZONE 'UTC')::date, o.currency,
		o.total_cents
	FROM new_rows n JOIN orders o ON o.id = n.order_id
	WHERE n.status = 'paid'
	ON CONFLICT (order_id) DO NOTHING;
	RETURN NULL;
END
$$;

-- CREATE TRIGGER waits for the writers in flight and holds new ones off
-- until this migration commits, so every paid order is appended once: by
-- the backfill below or by the trigger.  The backfill only appends; the
-- worker folds it.
CREATE TRIGGER order_events_rollup AFTER INSERT ON order_events
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION order_events_rollup();

INSERT INTO analytics_paid (order_id, day, currency, total_cents)
SELECT e.order_id, (e.at AT TIME ZONE 'UTC')::date, o.currency, o.total_cents
FROM order_events e JOIN orders o ON o.id = e.order_id
WHERE e.status = 'paid'
ON CONFLICT (order_id) DO NOTHING;
