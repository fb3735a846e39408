-- pgbench: the least an order can be, the reference the issue's goal
-- names: reserve the stock of two products (in product order, as
-- order_place() locks them), insert the order and its two lines.  The
-- same shoppers and products as bench/orders.sql.
\set uid random(:umin, :umax)
\if :spread
\set p1 random_zipfian(:idmin, :idmax, 1.01)
\set p2 random_zipfian(:idmin, :idmax, 1.01)
\else
\set p1 random(:pmin, :pmax)
\set p2 random(:pmin, :pmax)
\endif
\set a least(:p1, :p2)
\set b greatest(:p1, :p2)
BEGIN;
UPDATE inventory SET reserved = reserved + 1 WHERE product_id = :a AND on_hand - reserved >= 1;
UPDATE inventory SET reserved = reserved + 1 WHERE product_id = :b AND on_hand - reserved >= 1;
INSERT INTO orders (user_id, currency, subtotal_cents, total_cents, expires_at) VALUES (:uid, 'USD', 0, 0, now() + interval '30 minutes') RETURNING id AS oid \gset
INSERT INTO order_items (order_id, product_id, sku, name, unit_price_cents, quantity) SELECT :oid, p.id, p.sku, p.name, p.price_cents, 1 FROM products p WHERE p.id IN (:a, :b);
COMMIT;
