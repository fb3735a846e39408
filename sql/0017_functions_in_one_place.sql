-- 0017: the functions' bodies move to sql/functions/, and two that no
-- program calls go.
--
-- From this migration on, the numbered migrations hold tables, indexes,
-- triggers and data; every function's current body is in one file per
-- area under sql/functions/, which agoractl migrate applies after the
-- migrations whenever a file changed (CREATE OR REPLACE, recorded in
-- schema_functions).  The earlier migrations stay as they were released.
--
-- Dropped here: gateway_events_apply_waiting(integer), replaced in 0011
-- by gateway_events_apply_waiting_stock(), and product_doc(products,
-- bigint) of 0009, replaced in 0010 by product_doc(text, bigint).
-- Neither this release's programs nor the previous release's (0.1) call
-- them, nor does any function.  cart_checkout(bigint, jsonb, jsonb,
-- integer) stays: 0.1's programs call it while a rolling upgrade from
-- 0.1 runs (tests/upgrade.py).

DROP FUNCTION gateway_events_apply_waiting(integer);
DROP FUNCTION product_doc(products, bigint);
