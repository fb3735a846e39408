-- pgbench: the SQL of POST /api/v1/orders with an Idempotency-Key, as
-- shop/order.c and shop/idem.c run it: claim the key, order_place() with
-- the order policy (the check stack's limits, tests/stack.sh, and the
-- shopper's address), store the answer under the key.  The shopper is one
-- of the bench users [umin, umax] with an address of its own (as
-- bench/orders.lua sends it); the two products come from the workload
-- (-D spread=0: uniform over the 50 bench products [pmin, pmax]; 1:
-- Zipf-like, s = 1.01, over the seeded products [idmin, idmax]).
\set uid random(:umin, :umax)
\if :spread
\set p1 random_zipfian(:idmin, :idmax, 1.01)
\set p2 random_zipfian(:idmin, :idmax, 1.01)
\else
\set p1 random(:pmin, :pmax)
\set p2 random(:pmin, :pmax)
\endif
\set key random(1, 1000000000000000)
BEGIN;
SELECT busy, fingerprint, status, location, body FROM idempotency_claim(:uid, 'pgb-' || :key);
SELECT t.r->'order' AS o, t.r->'order'->>'id' AS oid, t.r->>'error' AS err, t.r->'products' AS bad, t.r->>'product_ids' AS pids FROM order_place(:uid, ARRAY[:p1, :p2]::bigint[], ARRAY[1, 1]::int[], NULL, NULL, 1800, json_build_object('unpaid_max', 100000, 'units_max', 100000000, 'unpaid_ttl', 600, 'ip', '10.0.' || (:uid / 250) % 250 || '.' || (:uid % 250 + 1), 'ip_units_max', 100000000)::jsonb) AS t(r) \gset
INSERT INTO idempotency_keys (user_id, key, fingerprint, status, location, body) VALUES (:uid, 'pgb-' || :key, 'f', 201, '/api/v1/orders/' || :oid, 'x');
COMMIT;
