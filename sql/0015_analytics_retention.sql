-- 0015: analytics events do not pile up for ever.
--
-- Events were kept without end, and the programs may not delete them (the
-- table is append-only for agora_app, so that no request can rewrite
-- history).  analytics_prune() deletes the oldest ones only: events from
-- before p_before, at most p_limit of them per call, so that a long
-- backlog goes in short transactions.  It runs with the owner's rights,
-- so agora-worker (as agora_app) prunes what analytics_retention_days
-- says is old, and nothing else; agoractl analytics prune does it by hand.
-- Two workers pruning at once skip each other's rows.
CREATE FUNCTION analytics_prune(p_before timestamptz, p_limit integer)
RETURNS bigint LANGUAGE sql SECURITY DEFINER SET search_path = public AS $$
	WITH d AS (DELETE FROM analytics_events WHERE id IN (
			SELECT id FROM analytics_events
			WHERE occurred_at < p_before
			LIMIT p_limit FOR UPDATE SKIP LOCKED)
		RETURNING 1)
	SELECT count(*) FROM d
$$;
REVOKE ALL ON FUNCTION analytics_prune(timestamptz, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION analytics_prune(timestamptz, integer) TO agora_app;
