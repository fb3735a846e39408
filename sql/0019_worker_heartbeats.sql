-- 0019: each worker's last completed pass, for GET /health.
--
-- A worker (one per host and topic list, as cron starts them) writes its
-- row when a pass over the outbox ends, at most once a second; GET
-- /health reports the newest and how long ago it was, so that a shop
-- whose workers stopped (cron off, a crash loop) sees it there.  The
-- programs' role reads and writes it (sql/0001's default privileges).

CREATE TABLE worker_heartbeats (
	worker text PRIMARY KEY CHECK (length(worker) <= 300),
	topics text NOT NULL,
	pass_at timestamptz NOT NULL DEFAULT now()
);
