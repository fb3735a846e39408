-- pgbench: the statement GET /api/v1/products/{id} runs on a cache miss
-- (fcgi/products.c, product_get), on a random seeded product
-- (pgbench -D idmin= idmax=).
\set id random(:idmin, :idmax)
SELECT product_doc(p.doc, i.on_hand - i.reserved) FROM products p LEFT JOIN inventory i ON i.product_id = p.id WHERE p.id = :id AND p.archived_at IS NULL;
