-- 0022: the analytics events' daily figures, for GET /analytics/summary.
--
-- Per UTC day and event type, the events and the sessions that sent at
-- least one of them that day ("session-days"); type '' counts every event
-- and every session that sent any (the visits).  analytics_events'
-- statement trigger keeps them in the transaction of the insert, so they
-- are never behind and never count a row that was rolled back, and they
-- stay when old events are pruned (0015).
--
--   analytics_daily: the counts, split into 8 shards by the backend's
--     process id, so that concurrent posts mostly add to different rows
--     (every post of a day adds to the same (day, type) rows); the summary
--     sums the shards.  A POST of events is one statement in its own
--     transaction, and the trigger takes its rows in key order, so two
--     posts cannot deadlock over them.
--   analytics_session_days: the sessions already counted for a day and
--     type, so that a session counts once a day.  Events are stamped with
--     the time of their insert (the programs' role may not set
--     occurred_at), so only today's and yesterday's rows can still be
--     needed; agora-worker deletes older ones.
--
-- Anyone may post events of any type, so the types a day keeps are
-- bounded: past TYPES_PER_DAY (200) types in a day, a new type is
-- counted as '(other)' (the funnel's types always keep their name).  That
-- bounds this table, which outlives the events, and the summary's work.
--
-- The backfill reads every event kept, while posts of events wait (about
-- two seconds a million events); placing and paying orders do not.

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

REVOKE INSERT, UPDATE, DELETE ON analytics_daily, analytics_session_days
	FROM agora_app;
-- The programs insert events stamped now(): a backdated event could reach
-- a day whose counted sessions are gone, and count a session twice.
REVOKE INSERT ON analytics_events FROM agora_app;
GRANT INSERT (type, session_id, product_id, properties) ON analytics_events
	TO agora_app;

-- As first written (tables.sql holds the current body).
CREATE FUNCTION analytics_events_rollup() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path TO 'pg_catalog', 'public', 'pg_temp' AS $$
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
$$;

-- Before the backfill reads: see 0021.
CREATE TRIGGER analytics_events_rollup AFTER INSERT ON analytics_events
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION analytics_events_rollup();

-- The events there already; a day's types past 200 are '(other)', in the
-- order of their counts.
WITH e AS (
	SELECT (a.occurred_at AT TIME ZONE 'UTC')::date AS day, a.type,
		count(*) AS events, count(DISTINCT a.session_id) AS sessions
	FROM analytics_events a GROUP BY 1, 2),
r AS (
	SELECT e.*, row_number() OVER (PARTITION BY e.day
		ORDER BY e.type IN ('product_view', 'add_to_cart', 'checkout')
			DESC, e.events DESC, e.type) AS k
	FROM e)
INSERT INTO analytics_daily (day, type, shard, events, sessions)
SELECT r.day, CASE WHEN r.k <= 198 THEN r.type ELSE '(other)' END, 0,
	sum(r.events), sum(r.sessions)
FROM r GROUP BY 1, 2;

INSERT INTO analytics_daily (day, type, shard, events, sessions)
SELECT (a.occurred_at AT TIME ZONE 'UTC')::date, '', 0, count(*),
	count(DISTINCT a.session_id)
FROM analytics_events a GROUP BY 1;

-- The sessions of today and yesterday, under the names their types were
-- counted by above, so that later events of theirs are not counted
-- again.  (A day that had more than 200 types may count a session of its
-- '(other)' types more than once: they are summed.)
INSERT INTO analytics_session_days (day, type, session_id)
SELECT DISTINCT x.day, CASE WHEN x.type = '' OR EXISTS (SELECT 1
		FROM analytics_daily d WHERE d.day = x.day AND d.type = x.type)
	THEN x.type ELSE '(other)' END, x.session_id
FROM (SELECT (a.occurred_at AT TIME ZONE 'UTC')::date AS day, k.type,
		a.session_id
	FROM analytics_events a,
		LATERAL (VALUES (a.type), ('')) AS k(type)
	WHERE a.occurred_at >= ((now() AT TIME ZONE 'UTC')::date - 1)::timestamp
		AT TIME ZONE 'UTC') x;
