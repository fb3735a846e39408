-- pgbench: what agora-worker does for a batch of payment.charge rows with
-- the simulated gateway, server-side in four statements: claim 100 rows
-- (the worker's claim), begin and end their charges (the functions its
-- handler calls), and delete the batch (its finish).
WITH c AS (SELECT id FROM outbox WHERE state <> 'dead' AND next_attempt_at <= now() AND topic = ANY('{payment.charge}'::text[]) ORDER BY next_attempt_at, id LIMIT 100 FOR UPDATE SKIP LOCKED), u AS (UPDATE outbox o SET state = 'running', claim = 'pgbench', attempts = o.attempts + 1, next_attempt_at = now() + make_interval(secs => 60) FROM c WHERE o.id = c.id RETURNING o.id, o.payload) SELECT COALESCE(array_agg(id), '{}') AS ids, COALESCE(array_agg((payload->>'payment_id')::bigint), '{}') AS pids FROM u \gset
SELECT count(*) FROM unnest(:pids::bigint[]) p, payment_charge_begin(p, 'simulated');
SELECT count(*) FROM payment_charge_end_many((SELECT COALESCE(json_agg(json_build_object('p', p, 'ok', true, 'ref', 'sim', 'code', NULL)), '[]') FROM unnest(:pids::bigint[]) p));
DELETE FROM outbox WHERE id = ANY(:ids::bigint[]);
