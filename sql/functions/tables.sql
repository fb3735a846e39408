-- tables.sql: the functions the tables themselves call: their triggers,
-- and the functions those call (product_body, outbox_add, agora_time).
--
-- These live in schema public, not in the release's schema as the other
-- files' functions do: a trigger calls whatever program writes the row,
-- of this release or of the one before it during a rolling upgrade, so
-- there is one version of each, and a change here applies to both.
-- agoractl migrate applies this file with search_path public, after the
-- numbered migrations, whenever it changed since it was last applied
-- (schema_functions records its checksum), in the one transaction that
-- applies the other changed files; change a function here, not in a new
-- migration.  No other file may define a function of the same name: a
-- name is resolved along the search path, and must mean one function;
-- and no function here may call one of the other files', which public
-- has not (tests/db_functions.py).  agoractl migrate applies this file
-- first.
-- "From 0005 (this body: 0013)" above a function: where it was created,
-- and which migration last replaced it.

-- From 0003.
-- RFC 3339 UTC text for timestamps in API answers.
CREATE OR REPLACE FUNCTION agora_time(t timestamp with time zone)
 RETURNS text
 LANGUAGE sql
 STABLE
AS $function$
	SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$function$;

-- From 0014.
CREATE OR REPLACE FUNCTION users_token_gen()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
	NEW.token_gen := OLD.token_gen + 1;
	UPDATE refresh_tokens SET revoked_at = now()
	WHERE user_id = NEW.id AND revoked_at IS NULL;
	RETURN NEW;
END
$function$;

-- From 0023.
-- A token stored by a program of the release before sessions (during a
-- rolling upgrade) gets its session: no token without one.
CREATE OR REPLACE FUNCTION refresh_tokens_session()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
	-- Looked up first: ON CONFLICT would spend an id on every refresh.
	IF NOT EXISTS (SELECT 1 FROM sessions WHERE family = NEW.family) THEN
		INSERT INTO sessions (user_id, family)
		VALUES (NEW.user_id, NEW.family)
		ON CONFLICT (family) DO NOTHING;
	END IF;
	RETURN NEW;
END
$function$;

-- From 0012 (this body: 0016).
CREATE OR REPLACE FUNCTION categories_acyclic()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
DECLARE
	p bigint := NEW.parent_id;
	depth int;
BEGIN
	IF TG_OP = 'UPDATE' THEN
		-- One move at a time, so two cannot close a loop that neither
		-- sees; a constant key of this trigger's own.
		PERFORM pg_advisory_xact_lock(hashtext('agora:categories_acyclic'));
		WITH RECURSIVE sub(id, d) AS (
			SELECT NEW.id, 1
			UNION ALL
			SELECT c.id, sub.d + 1 FROM categories c
			JOIN sub ON c.parent_id = sub.id WHERE sub.d <= 64)
		SELECT max(d) INTO depth FROM sub;
	ELSE
		depth := 1;
	END IF;
	WHILE p IS NOT NULL LOOP
		IF p = NEW.id THEN
			RAISE EXCEPTION 'category % would be its own ancestor', NEW.id
				USING ERRCODE = 'check_violation',
				CONSTRAINT = 'categories_acyclic';
		END IF;
		depth := depth + 1;
		IF depth > 64 THEN
			RAISE EXCEPTION 'categories nest at most 64 levels deep'
				USING ERRCODE = 'check_violation',
				CONSTRAINT = 'categories_depth';
		END IF;
		SELECT parent_id INTO p FROM categories WHERE id = p;
	END LOOP;
	RETURN NEW;
END $function$;

-- From 0010.
-- The document of p without its stock: a JSON object, as text.
CREATE OR REPLACE FUNCTION product_body(p products)
 RETURNS text
 LANGUAGE sql
 STABLE
AS $function$
	SELECT json_build_object(
		'id', p.id::text, 'sku', p.sku, 'name', p.name,
		'description', p.description, 'price_cents', p.price_cents,
		'currency', p.currency, 'category_id', p.category_id::text,
		'attributes', p.attributes,
		'rating_avg', p.rating_avg, 'rating_count', p.rating_count,
		'created_at', agora_time(p.created_at),
		'updated_at', agora_time(p.updated_at))::text
$function$;

-- From 0010.
-- The identity and the defaults are already in NEW here; the generated
-- search column, which the document does not use, comes after.
CREATE OR REPLACE FUNCTION products_doc()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
	NEW.doc := product_body(NEW);
	RETURN NEW;
END
$function$;

-- From 0008.
CREATE OR REPLACE FUNCTION order_events_follow()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
DECLARE
	v_template text;
BEGIN
	IF NEW.status = 'paid' THEN
		PERFORM outbox_add('invoice.create', 'order:' || NEW.order_id,
			jsonb_build_object('order_id', NEW.order_id::text));
	END IF;
	v_template := CASE NEW.status
		WHEN 'completed' THEN 'payment_succeeded'
		WHEN 'payment_failed' THEN 'payment_failed'
		WHEN 'cancelled' THEN 'order_cancelled'
		WHEN 'shipped' THEN 'order_shipped' END;
	IF v_template IS NOT NULL THEN
		PERFORM outbox_add('notify.order', 'order:' || NEW.order_id,
			jsonb_build_object('order_id', NEW.order_id::text,
				'template', v_template));
	END IF;
	RETURN NULL;
END
$function$;

-- From 0005.
-- Whatever changes a status, it must be a row of order_transitions.
CREATE OR REPLACE FUNCTION orders_check_transition()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM order_transitions
		WHERE from_status = OLD.status AND to_status = NEW.status) THEN
		RAISE EXCEPTION 'order %: % to % is not a transition',
			OLD.id, OLD.status, NEW.status
			USING ERRCODE = 'check_violation';
	END IF;
	RETURN NEW;
END
$function$;

-- From 0005.
CREATE OR REPLACE FUNCTION outbox_add(p_topic text, p_aggregate text, p_payload jsonb)
 RETURNS void
 LANGUAGE sql
AS $function$
	INSERT INTO outbox (topic, aggregate_id, payload)
	VALUES (p_topic, p_aggregate, p_payload);
	SELECT pg_notify('agora_outbox', '');
$function$;

-- From 0021.
-- order_events' statement trigger: each order that became paid, once, to
-- analytics_paid, for agora-worker to fold into the daily rows
-- (analytics_fold()); nothing shared is locked (sql/0021).
CREATE OR REPLACE FUNCTION order_events_rollup()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'pg_temp'
AS $function$
BEGIN
	INSERT INTO analytics_paid (order_id, day, currency, total_cents)
	SELECT n.order_id, (n.at AT TIME ZONE 'UTC')::date, o.currency,
		o.total_cents
	FROM new_rows n JOIN orders o ON o.id = n.order_id
	WHERE n.status = 'paid'
	ON CONFLICT (order_id) DO NOTHING;
	RETURN NULL;
END
$function$;

-- From 0022.
-- analytics_events' statement trigger: the new rows' events and the
-- sessions not yet counted, per UTC day and type (a day's types past 200,
-- '(other)') and per day (type ''), into the day's shard (sql/0022).
CREATE OR REPLACE FUNCTION analytics_events_rollup()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'pg_temp'
AS $function$
BEGIN
	-- A day's new types are admitted by one transaction at a time (the
	-- others wait for it to commit, then count what it added), so that
	-- concurrent posts cannot each take the last free names.  Days in
	-- order: two posts of several days cannot deadlock.
	PERFORM pg_advisory_xact_lock(hashtext('agora:analytics_types'), x.d)
	FROM (SELECT DISTINCT (r.occurred_at AT TIME ZONE 'UTC')::date
			- DATE '1970-01-01' AS d
		FROM new_rows r
		WHERE r.type NOT IN ('product_view', 'add_to_cart', 'checkout')
		AND NOT EXISTS (SELECT 1 FROM analytics_daily a
			WHERE a.day = (r.occurred_at AT TIME ZONE 'UTC')::date
			AND a.type = r.type)
		ORDER BY 1) x;
	WITH n AS (
		SELECT (r.occurred_at AT TIME ZONE 'UTC')::date AS day,
			r.type, r.session_id
		FROM new_rows r),
	room AS (
		SELECT d.day, 200 - (SELECT count(DISTINCT a.type)
			FROM analytics_daily a WHERE a.day = d.day) AS free
		FROM (SELECT DISTINCT n.day FROM n) d),
	fresh AS (
		SELECT x.day, x.type,
			row_number() OVER (PARTITION BY x.day ORDER BY x.type) AS k
		FROM (SELECT DISTINCT n.day, n.type FROM n) x
		WHERE x.type NOT IN ('product_view', 'add_to_cart', 'checkout')
		AND NOT EXISTS (SELECT 1 FROM analytics_daily a
			WHERE a.day = x.day AND a.type = x.type)),
	e AS (
		SELECT n.day, CASE WHEN f.k IS NULL OR f.k <= r.free
			THEN n.type ELSE '(other)' END AS type, n.session_id
		FROM n JOIN room r ON r.day = n.day
		LEFT JOIN fresh f ON f.day = n.day AND f.type = n.type
		UNION ALL
		SELECT n.day, '', n.session_id FROM n),
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
$function$;
