-- 0020: an index of the outbox's dead rows, for GET /metrics.
--
-- The scrape counts dead rows per topic on every pass (every 15 seconds
-- or so).  outbox_due leaves dead rows out, so without this the count
-- would read the whole table, backlog and all; dead rows are few, and
-- this index holds only them.
CREATE INDEX outbox_dead ON outbox (topic) WHERE state = 'dead';
