-- pgbench: the transaction POST /api/v1/orders runs, with the same random
-- choice of two products as bench/orders.lua (pgbench -D pmin= pmax= uid=).
\set p1 random(:pmin, :pmax)
\set p2 random(:pmin, :pmax)
BEGIN;
SELECT t.r->'order', t.r->'order'->>'id', t.r->>'error', t.r->'products', t.r->>'product_ids' FROM order_place(:uid, ARRAY[:p1, :p2]::bigint[], ARRAY[1, 1]::int[], NULL, NULL, 1800) AS t(r);
COMMIT;
