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
