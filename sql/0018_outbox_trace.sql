-- 0018: the trace of the work that wrote each outbox row.
--
-- A program sets agora.trace_id for each write transaction (lib/db.c)
-- to the request's trace (lib/trace.c), and so does the worker for a
-- job's; every outbox row written meanwhile, by a function or a trigger,
-- takes it as its default, and the worker continues that trace when it
-- does the row's work.  A value that is not 32 hex digits is no trace:
-- the default is then NULL, so a setting can never fail a write.
--
-- The default is not volatile: PostgreSQL adds the column without
-- rewriting the table (rows before it have none), and the check is NOT
-- VALID, so nothing scans the table under its lock either.

-- The default is evaluated once here, for the rows already there: with
-- no trace.  A busy outbox is locked only as long as the lock waits.
SET LOCAL agora.trace_id = '';
SET LOCAL lock_timeout = '10s';
ALTER TABLE outbox ADD COLUMN trace_id text
	DEFAULT CASE WHEN current_setting('agora.trace_id', true) ~ '^[0-9a-f]{32}$'
		AND current_setting('agora.trace_id', true) <> repeat('0', 32)
		THEN current_setting('agora.trace_id', true) END;
ALTER TABLE outbox ADD CONSTRAINT outbox_trace_id
	CHECK (trace_id ~ '^[0-9a-f]{32}$') NOT VALID;
