-- analytics.sql: pruning old events, by the worker (a number
-- of days) and by agoractl (any date, the owner's alone).
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

-- From 0015 (this body: 0016).
CREATE OR REPLACE FUNCTION analytics_prune(p_days integer, p_limit integer)
 RETURNS bigint
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'pg_temp'
AS $function$
	WITH d AS (DELETE FROM analytics_events WHERE id IN (
			SELECT id FROM analytics_events
			WHERE occurred_at < now() - make_interval(
				days => GREATEST(p_days, 30))
			LIMIT LEAST(GREATEST(p_limit, 1), 10000)
			FOR UPDATE SKIP LOCKED)
		RETURNING 1)
	SELECT count(*) FROM d
$function$;
REVOKE ALL ON FUNCTION analytics_prune(integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION analytics_prune(integer, integer) TO agora_app;

-- From 0016.
-- The owner's: events from before p_before, whatever their age.
CREATE OR REPLACE FUNCTION analytics_prune_before(p_before timestamp with time zone, p_limit integer)
 RETURNS bigint
 LANGUAGE sql
 SET search_path TO 'pg_catalog', 'public', 'pg_temp'
AS $function$
	WITH d AS (DELETE FROM analytics_events WHERE id IN (
			SELECT id FROM analytics_events
			WHERE occurred_at < p_before
			LIMIT LEAST(GREATEST(p_limit, 1), 10000)
			FOR UPDATE SKIP LOCKED)
		RETURNING 1)
	SELECT count(*) FROM d
$function$;
REVOKE ALL ON FUNCTION analytics_prune_before(timestamptz, integer)
	FROM PUBLIC;

-- From 0.2.
-- agora-worker: the sessions counted on days before yesterday (UTC) are
-- never needed again (sql/0022), p_limit of them per call.
CREATE OR REPLACE FUNCTION analytics_sessions_prune(p_limit integer)
 RETURNS bigint
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'pg_temp'
AS $function$
	WITH d AS (DELETE FROM analytics_session_days WHERE ctid IN (
			SELECT ctid FROM analytics_session_days
			WHERE day < (now() AT TIME ZONE 'UTC')::date - 1
			LIMIT LEAST(GREATEST(p_limit, 1), 10000)
			FOR UPDATE SKIP LOCKED)
		RETURNING 1)
	SELECT count(*) FROM d
$function$;
REVOKE ALL ON FUNCTION analytics_sessions_prune(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION analytics_sessions_prune(integer) TO agora_app;

-- From 0.2.
-- agora-worker: fold up to p_limit paid orders of analytics_paid into the
-- daily rows and the products' blocks of each size (sql/0021), oldest
-- first; one worker at a time (the others
-- find the lock taken and fold nothing), so that the daily rows are
-- written by one transaction at a time, in key order.
CREATE OR REPLACE FUNCTION analytics_fold(p_limit integer)
 RETURNS bigint
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'pg_temp'
AS $function$
DECLARE
	v_n bigint;
BEGIN
	IF NOT pg_try_advisory_xact_lock(7259000021) THEN
		RETURN 0;
	END IF;
	WITH d AS (
		DELETE FROM analytics_paid WHERE order_id IN (
			SELECT p.order_id FROM analytics_paid p ORDER BY p.order_id
			LIMIT LEAST(GREATEST(p_limit, 1), 10000))
		RETURNING *),
	s AS (
		INSERT INTO analytics_sales_daily AS t (day, currency, orders,
			revenue_cents)
		SELECT d.day, d.currency, count(*), sum(d.total_cents)
		FROM d GROUP BY 1, 2 ORDER BY 1, 2
		ON CONFLICT (day, currency) DO UPDATE
		SET orders = t.orders + excluded.orders,
			revenue_cents = t.revenue_cents + excluded.revenue_cents),
	p AS (
		INSERT INTO analytics_product_blocks AS t (level, start_day,
			product_id, currency, units, revenue_cents)
		SELECT l.level, d.day - ((d.day - DATE '1970-01-01')
				& ((1 << l.level) - 1)),
			i.product_id, d.currency, sum(i.quantity),
			sum(i.quantity * i.unit_price_cents)
		FROM d JOIN order_items i ON i.order_id = d.order_id,
			generate_series(0, 7) AS l(level)
		GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
		ON CONFLICT (level, start_day, product_id, currency) DO UPDATE
		SET units = t.units + excluded.units,
			revenue_cents = t.revenue_cents + excluded.revenue_cents)
	SELECT count(*) INTO v_n FROM d;
	RETURN v_n;
END
$function$;
REVOKE ALL ON FUNCTION analytics_fold(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION analytics_fold(integer) TO agora_app;

-- From 0.2.
-- The UTC days p_from to p_to as disjoint blocks of the products' figures
-- (sql/0021): for each day, the largest block that holds it and fits in
-- the range.  Two blocks are either disjoint or one holds the other, so
-- those are disjoint and cover the range: at most 2 of each level, 14
-- for a year.
CREATE OR REPLACE FUNCTION analytics_blocks(p_from date, p_to date)
 RETURNS TABLE(level integer, start_day date)
 LANGUAGE sql
 IMMUTABLE
AS $function$
	SELECT DISTINCT x.level, x.start_day
	FROM (SELECT DISTINCT ON (g.day) l.level, g.day
			- ((g.day - DATE '1970-01-01') & ((1 << l.level) - 1))
			AS start_day
		FROM (SELECT d::date AS day FROM generate_series(
				p_from::timestamp, p_to::timestamp,
				interval '1 day') AS d) g,
			generate_series(0, 7) AS l(level)
		WHERE g.day - ((g.day - DATE '1970-01-01')
			& ((1 << l.level) - 1)) >= p_from
		AND g.day - ((g.day - DATE '1970-01-01')
			& ((1 << l.level) - 1)) + (1 << l.level) - 1 <= p_to
		ORDER BY g.day, l.level DESC) x
$function$;

-- From 0.2.
-- GET /analytics/summary: the figures of the UTC days p_from to p_to
-- (both included) as one JSON document; fcgi/openapi.json
-- ("AnalyticsSummary") defines each.  p_currency: the currency of
-- revenue_cents, average_order_cents and daily's revenue_cents; NULL
-- picks the one with the most paid orders in the range (then the first
-- by code).  It reads the daily rows of sql/0021 and 0022, and the paid
-- orders agora-worker has not folded into them yet, in one snapshot: at
-- most (days x types, 200 a day, x 8) event rows, (days x currencies)
-- sales rows and (blocks x products sold) product rows, whatever the
-- number of events and orders, plus the unfolded orders (a minute's worth
-- while a worker runs).
-- In PL/pgSQL, whose plans are kept for the session: a SQL function's
-- query is planned again on every call, which costs about as much as
-- running it.  No JIT: the planner's row estimates for the blocks are
-- far above what they hold, and compiling would take longer than the
-- query.
CREATE OR REPLACE FUNCTION analytics_summary(p_from date, p_to date, p_currency text, p_top integer, p_types integer)
 RETURNS json
 LANGUAGE plpgsql
 STABLE
 SET jit TO 'off'
AS $function$
BEGIN
	RETURN (WITH unfolded AS (
		SELECT u.order_id, u.day, u.currency, u.total_cents
		FROM analytics_paid u WHERE u.day BETWEEN p_from AND p_to),
	sales AS (
		SELECT x.day, x.currency, sum(x.orders)::bigint AS orders,
			sum(x.revenue)::bigint AS revenue
		FROM (SELECT s.day, s.currency, s.orders,
				s.revenue_cents AS revenue
			FROM analytics_sales_daily s
			WHERE s.day BETWEEN p_from AND p_to
			UNION ALL
			SELECT u.day, u.currency, 1, u.total_cents
			FROM unfolded u) x
		GROUP BY 1, 2),
	by_currency AS (
		SELECT s.currency, sum(s.orders)::bigint AS orders,
			sum(s.revenue)::bigint AS revenue
		FROM sales s GROUP BY 1),
	cur AS (
		SELECT COALESCE(p_currency, (SELECT b.currency FROM by_currency b
			ORDER BY b.orders DESC, b.currency LIMIT 1)) AS code),
	ev AS (
		SELECT a.day, a.type, sum(a.events)::bigint AS events,
			sum(a.sessions)::bigint AS sessions
		FROM analytics_daily a
		WHERE a.day BETWEEN p_from AND p_to GROUP BY 1, 2),
	tot AS (
		SELECT (SELECT COALESCE(sum(b.orders), 0)::bigint
				FROM by_currency b) AS orders,
			(SELECT b.orders FROM by_currency b, cur
				WHERE b.currency = cur.code) AS cur_orders,
			(SELECT b.revenue FROM by_currency b, cur
				WHERE b.currency = cur.code) AS cur_revenue,
			(SELECT COALESCE(sum(e.sessions), 0)::bigint FROM ev e
				WHERE e.type = '') AS visits,
			(SELECT COALESCE(sum(e.events), 0)::bigint FROM ev e
				WHERE e.type = '') AS events),
	days AS (
		SELECT g::date AS day
		FROM generate_series(p_from::timestamp, p_to::timestamp,
			interval '1 day') AS g),
	blocks AS (
		SELECT b.level, b.start_day FROM analytics_blocks(p_from, p_to) b)
	SELECT json_build_object(
		'from', to_char(p_from, 'YYYY-MM-DD'),
		'to', to_char(p_to, 'YYYY-MM-DD'),
		'currency', (SELECT code FROM cur),
		'orders', tot.orders,
		'revenue_cents', COALESCE(tot.cur_revenue, 0),
		'average_order_cents', round(tot.cur_revenue::numeric
			/ NULLIF(tot.cur_orders, 0))::bigint,
		'visits', tot.visits,
		'events', tot.events,
		'conversion_rate', round(tot.orders::numeric
			/ NULLIF(tot.visits, 0), 4),
		'revenue_by_currency', (SELECT COALESCE(json_agg(json_build_object(
				'currency', b.currency, 'orders', b.orders,
				'revenue_cents', b.revenue,
				'average_order_cents',
				round(b.revenue::numeric / NULLIF(b.orders, 0))::bigint)
			ORDER BY b.currency), '[]') FROM by_currency b),
		'top_products', (SELECT COALESCE(json_agg(json_build_object(
				'product_id', t.product_id::text,
				'name', (SELECT p.name FROM products p
					WHERE p.id = t.product_id),
				'currency', t.currency, 'units', t.units,
				'revenue_cents', t.revenue)
			ORDER BY t.units DESC, t.revenue DESC, t.product_id,
				t.currency), '[]')
			FROM (SELECT x.product_id, x.currency,
					sum(x.units)::bigint AS units,
					sum(x.revenue)::bigint AS revenue
				-- Summed as float8, which holds every integer
				-- below 2^53 exactly (90 trillion in cents):
				-- numeric sums cost twice the time here.
				FROM (SELECT a.product_id, a.currency,
						a.units::float8 AS units,
						a.revenue_cents::float8 AS revenue
					-- A lateral subquery that cannot be flattened
					-- (OFFSET 0), so that each block is an index
					-- scan, not a join over the whole table.
					FROM blocks b, LATERAL (
						SELECT a.product_id, a.currency,
							a.units, a.revenue_cents
						FROM analytics_product_blocks a
						WHERE a.level = b.level
						AND a.start_day = b.start_day
						OFFSET 0) a
					UNION ALL
					SELECT i.product_id, u.currency, i.quantity,
						i.quantity::float8 * i.unit_price_cents
					FROM unfolded u
					JOIN order_items i ON i.order_id = u.order_id) x
				GROUP BY 1, 2 ORDER BY 3 DESC, 4 DESC, 1, 2
				LIMIT p_top) t),
		'events_by_type', (SELECT COALESCE(json_object_agg(x.type, x.events
				ORDER BY x.events DESC, x.type), '{}')
			FROM (SELECT e.type, sum(e.events)::bigint AS events
				FROM ev e WHERE e.type <> '' GROUP BY 1
				ORDER BY 2 DESC, 1 LIMIT p_types) x),
		'funnel', json_build_object(
			'product_view', (SELECT COALESCE(sum(e.sessions), 0)::bigint
				FROM ev e WHERE e.type = 'product_view'),
			'add_to_cart', (SELECT COALESCE(sum(e.sessions), 0)::bigint
				FROM ev e WHERE e.type = 'add_to_cart'),
			'checkout', (SELECT COALESCE(sum(e.sessions), 0)::bigint
				FROM ev e WHERE e.type = 'checkout'),
			'paid', tot.orders),
		'daily', (SELECT json_agg(json_build_object(
				'date', to_char(d.day, 'YYYY-MM-DD'),
				'visits', COALESCE(e.sessions, 0),
				'events', COALESCE(e.events, 0),
				'orders', COALESCE(o.orders, 0),
				'revenue_cents', COALESCE(r.revenue, 0))
			ORDER BY d.day)
			FROM days d
			LEFT JOIN ev e ON e.day = d.day AND e.type = ''
			LEFT JOIN (SELECT s.day, sum(s.orders)::bigint AS orders
				FROM sales s GROUP BY 1) o ON o.day = d.day
			LEFT JOIN sales r ON r.day = d.day
				AND r.currency = (SELECT code FROM cur)))
	FROM tot);
END
$function$;

-- From 0.2.
-- GET /analytics/summary.csv: analytics_summary()'s daily rows as CSV
-- (RFC 4180, CRLF), one line a day; no field needs quoting (dates,
-- numbers and a three-letter currency code).
CREATE OR REPLACE FUNCTION analytics_summary_csv(p_from date, p_to date, p_currency text)
 RETURNS text
 LANGUAGE sql
 STABLE
AS $function$
	SELECT 'date,visits,events,orders,currency,revenue_cents' || E'\r\n'
		|| string_agg(concat_ws(',', d->>'date', d->>'visits',
			d->>'events', d->>'orders', COALESCE(x.doc->>'currency', ''),
			d->>'revenue_cents') || E'\r\n', '' ORDER BY d->>'date')
	FROM (SELECT analytics_summary(p_from, p_to, p_currency, 0, 0) AS doc) x,
		json_array_elements(x.doc->'daily') AS d
$function$;
