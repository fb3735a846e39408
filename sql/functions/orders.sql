-- orders.sql: placing an order (and a cart's checkout), its
-- limits, the status machine, releasing stock, expiry and idempotency
-- keys (the outbox and the transitions' check are tables.sql's).
--
-- Each function's current body, in one place.  agoractl migrate applies
-- this file, after the numbered migrations, into the schema of the
-- release (agora_0_2 for 0.2.x: the programs of a release set their
-- search_path to it, then public), whenever it changed since it was last
-- applied there (schema_functions records its checksum), in one
-- transaction with the other changed files; change a function here, not
-- in a new migration.  The functions the tables call (triggers) are in
-- tables.sql, in public.  CREATE OR REPLACE keeps a function's grants and
-- cannot change its arguments or result type: within a release a new
-- signature is a new function, and the old one goes once no program of
-- the release calls it; a new release starts a schema of its own, so the
-- previous release's programs keep theirs until agoractl prune-functions
-- (doc/architecture.md, "The database").  "From 0005 (this body: 0013)"
-- above a function: where it was created, and which migration last
-- replaced it.

-- From 0013.
-- Turn p_user's cart into an order, as order_place() would, emptying the
-- cart in the same transaction.  The DELETE locks the cart's rows, so two
-- concurrent checkouts cannot both take them.  (0005's form without a
-- policy is release 0.1's, in public.)
CREATE OR REPLACE FUNCTION cart_checkout(p_user bigint, p_shipping jsonb, p_payment jsonb, p_ttl integer, p_policy jsonb)
 RETURNS json
 LANGUAGE plpgsql
AS $function$
DECLARE
	v_ids bigint[];
	v_qty integer[];
BEGIN
	WITH d AS (DELETE FROM cart_items WHERE user_id = p_user
		RETURNING product_id, quantity)
	SELECT array_agg(product_id ORDER BY product_id),
		array_agg(quantity ORDER BY product_id)
	INTO v_ids, v_qty FROM d;
	IF v_ids IS NULL THEN
		RETURN json_build_object('error', 'cart_empty');
	END IF;
	RETURN order_place(p_user, v_ids, v_qty, p_shipping, p_payment, p_ttl,
		p_policy);
END
$function$;

-- From 0005.
-- Claim a key for this transaction.  A request still running under the
-- same key holds a transaction-level advisory lock on it, so a second one
-- is told "busy" at once rather than blocking on the first's uncommitted
-- row.  VOLATILE: the lookup takes its snapshot after the lock is held,
-- so it sees a row committed by the request that held it just before.
CREATE OR REPLACE FUNCTION idempotency_claim(p_user bigint, p_key text)
 RETURNS TABLE(busy boolean, fingerprint text, status integer, location text, body text)
 LANGUAGE plpgsql
AS $function$
BEGIN
	IF NOT pg_try_advisory_xact_lock(
	    hashtextextended(p_user::text || ':' || p_key, 5)) THEN
		RETURN QUERY SELECT true, NULL::text, NULL::integer,
			NULL::text, NULL::text;
		RETURN;
	END IF;
	RETURN QUERY SELECT false, k.fingerprint, k.status, k.location, k.body
		FROM idempotency_keys k
		WHERE k.user_id = p_user AND k.key = p_key;
END
$function$;

-- From 0007.
-- Idempotency keys are kept 24 hours; then they go, a batch at a time.
CREATE OR REPLACE FUNCTION idempotency_keys_purge(p_limit integer)
 RETURNS integer
 LANGUAGE sql
AS $function$
	WITH d AS (DELETE FROM idempotency_keys WHERE (user_id, key) IN (
		SELECT user_id, key FROM idempotency_keys
		WHERE created_at < now() - interval '24 hours'
		LIMIT p_limit) RETURNING 1)
	SELECT count(*)::integer FROM d
$function$;

-- From 0005.
-- An order as the API shows it.
CREATE OR REPLACE FUNCTION order_doc(p_order bigint)
 RETURNS json
 LANGUAGE sql
 STABLE
AS $function$
	SELECT json_build_object(
		'id', o.id::text, 'user_id', o.user_id::text,
		'status', o.status, 'payment_status', o.payment_status,
		'items', (SELECT json_agg(json_build_object(
				'product_id', i.product_id::text, 'sku', i.sku,
				'name', i.name,
				'unit_price_cents', i.unit_price_cents,
				'quantity', i.quantity,
				'line_total_cents',
				i.unit_price_cents * i.quantity)
			ORDER BY i.product_id)
			FROM order_items i WHERE i.order_id = o.id),
		'subtotal_cents', o.subtotal_cents,
		'total_cents', o.total_cents, 'currency', o.currency,
		'shipping_address', o.shipping_address,
		'tracking_number', o.tracking_number,
		'expires_at', agora_time(o.expires_at),
		'created_at', agora_time(o.created_at),
		'updated_at', agora_time(o.updated_at))
	FROM orders o WHERE o.id = p_order
$function$;

-- From 0.2 (0005's order_place, with the client's address).
-- Place an order for p_user from address p_ip (NULL: none known): lines
-- (p_products[i], p_quantities[i]).
-- Returns {"order": {...}, "product_ids": "1,2"} or {"error": code,
-- "products": [...]}; on an
-- error the caller must roll back, since stock of other lines may already
-- be reserved.  Prices, names and currency come from the products table,
-- read once: every statement of a plpgsql function takes a new snapshot,
-- so reading products twice could price the items and the total from two
-- different versions of a product that an admin changed in between.  The
-- address goes into the order's INSERT: 0016 set it with an UPDATE after
-- it, a second version of the row for every order, 9% of the order's
-- time (bench/RESULTS.md, 2026-12-07).
CREATE OR REPLACE FUNCTION order_place_from(p_user bigint, p_products bigint[], p_quantities integer[], p_shipping jsonb, p_payment jsonb, p_ttl integer, p_ip text)
 RETURNS json
 LANGUAGE plpgsql
AS $function$
DECLARE
	v_ids bigint[];
	v_qty integer[];
	v_lines order_line[];
	v_bad json;
	v_currency text;
	v_order bigint;
	v_subtotal bigint;
	i integer;
	v_short integer[] := '{}';
BEGIN
	-- Duplicate lines merged, in product order: the lock order.
	SELECT array_agg(id ORDER BY id), array_agg(q ORDER BY id)
	INTO v_ids, v_qty
	FROM (SELECT w.id, sum(w.q)::integer AS q
		FROM unnest(p_products, p_quantities) AS w(id, q)
		GROUP BY w.id) s;
	IF v_ids IS NULL THEN
		RETURN json_build_object('error', 'no_items');
	END IF;
	SELECT array_agg(ROW(p.id, p.sku, p.name, p.price_cents, p.currency,
		w.q)::order_line ORDER BY p.id)
	INTO v_lines
	FROM unnest(v_ids, v_qty) AS w(id, q)
	JOIN products p ON p.id = w.id AND p.archived_at IS NULL;
	SELECT json_agg(w.id::text ORDER BY w.id) INTO v_bad
	FROM unnest(v_ids) AS w(id)
	WHERE w.id <> ALL (SELECT l.product_id
		FROM unnest(COALESCE(v_lines, '{}')) AS l);
	IF v_bad IS NOT NULL THEN
		RETURN json_build_object('error', 'unknown_product',
			'products', v_bad);
	END IF;
	SELECT min(l.currency), sum(l.unit_price_cents * l.quantity)
	INTO v_currency, v_subtotal
	FROM unnest(v_lines) AS l
	HAVING count(DISTINCT l.currency) = 1;
	IF v_currency IS NULL THEN
		RETURN json_build_object('error', 'mixed_currency');
	END IF;
	FOR i IN 1 .. array_length(v_ids, 1) LOOP
		UPDATE inventory SET reserved = reserved + v_qty[i],
			updated_at = now()
		WHERE product_id = v_ids[i] AND on_hand - reserved >= v_qty[i];
		IF NOT FOUND THEN
			v_short := v_short || i;
		END IF;
	END LOOP;
	IF cardinality(v_short) > 0 THEN
		RETURN json_build_object('error', 'insufficient_stock',
			'products', (SELECT json_agg(json_build_object(
				'product_id', v_ids[s]::text,
				'requested', v_qty[s],
				'available', COALESCE((SELECT iv.on_hand -
					iv.reserved FROM inventory iv
					WHERE iv.product_id = v_ids[s]), 0))
				ORDER BY s)
			FROM unnest(v_short) AS s));
	END IF;
	INSERT INTO orders (user_id, currency, subtotal_cents, total_cents,
		shipping_address, payment_status, expires_at, client_ip)
	VALUES (p_user, v_currency, v_subtotal, v_subtotal, p_shipping,
		'unpaid', now() + make_interval(secs => p_ttl), p_ip)
	RETURNING id INTO v_order;
	INSERT INTO order_items (order_id, product_id, sku, name,
		unit_price_cents, quantity)
	SELECT v_order, l.product_id, l.sku, l.name, l.unit_price_cents,
		l.quantity
	FROM unnest(v_lines) AS l;
	INSERT INTO reservations (order_id, product_id, quantity)
	SELECT v_order::text, w.id, w.q FROM unnest(v_ids, v_qty) AS w(id, q);
	INSERT INTO order_events (order_id, seq, status)
	VALUES (v_order, 1, 'pending');
	PERFORM outbox_add('order.created', 'order:' || v_order,
		jsonb_build_object('order_id', v_order::text,
			'user_id', p_user::text));
	IF p_payment IS NOT NULL THEN
		PERFORM payment_create(v_order, p_payment);
	END IF;
	RETURN json_build_object('order', order_doc(v_order),
		'product_ids', array_to_string(v_ids, ','));
END
$function$;

-- From 0005 (this body: 0.2).
-- 0005's order_place: order_place_from() with no address known.
CREATE OR REPLACE FUNCTION order_place(p_user bigint, p_products bigint[], p_quantities integer[], p_shipping jsonb, p_payment jsonb, p_ttl integer)
 RETURNS json
 LANGUAGE plpgsql
AS $function$
BEGIN
	RETURN order_place_from(p_user, p_products, p_quantities, p_shipping,
		p_payment, p_ttl, NULL);
END
$function$;

-- From 0013 (this body: 0.2).
-- 0013's order_place, recording the client address of the order.
CREATE OR REPLACE FUNCTION order_place(p_user bigint, p_products bigint[], p_quantities integer[], p_shipping jsonb, p_payment jsonb, p_ttl integer, p_policy jsonb)
 RETURNS json
 LANGUAGE plpgsql
AS $function$
DECLARE
	v_refused json;
BEGIN
	PERFORM 1 FROM users WHERE id = p_user FOR NO KEY UPDATE;
	v_refused := order_policy_check(p_user,
		(SELECT COALESCE(sum(q), 0) FROM unnest(p_quantities) AS q),
		p_policy);
	IF v_refused IS NOT NULL THEN
		RETURN v_refused;
	END IF;
	RETURN order_place_from(p_user, p_products, p_quantities, p_shipping,
		p_payment, CASE WHEN p_payment IS NULL
			THEN LEAST(p_ttl, (p_policy->>'unpaid_ttl')::integer)
			ELSE p_ttl END, p_policy->>'ip');
END
$function$;

-- From 0013 (this body: 0016).
-- 0013's check, and the same per client address (p_policy's ip and
-- ip_units_max) when the policy names one.
CREATE OR REPLACE FUNCTION order_policy_check(p_user bigint, p_units bigint, p_policy jsonb)
 RETURNS json
 LANGUAGE plpgsql
AS $function$
DECLARE
	v_orders bigint;
	v_units bigint;
	v_ip text := p_policy->>'ip';
BEGIN
	SELECT count(*), COALESCE(sum((SELECT sum(r.quantity)
		FROM reservations r WHERE r.order_id = o.id::text
		AND r.released_at IS NULL)), 0)
	INTO v_orders, v_units
	FROM orders o WHERE o.user_id = p_user AND o.status = 'pending';
	IF v_orders >= (p_policy->>'unpaid_max')::bigint THEN
		RETURN json_build_object('error', 'unpaid_order_limit',
			'limit', (p_policy->>'unpaid_max')::bigint);
	END IF;
	IF v_units + p_units > (p_policy->>'units_max')::bigint THEN
		RETURN json_build_object('error', 'reserved_units_limit',
			'limit', (p_policy->>'units_max')::bigint);
	END IF;
	IF v_ip IS NULL THEN
		RETURN NULL;
	END IF;
	PERFORM pg_advisory_xact_lock(hashtext('agora:order_ip:' || v_ip));
	SELECT COALESCE(sum((SELECT sum(r.quantity)
		FROM reservations r WHERE r.order_id = o.id::text
		AND r.released_at IS NULL)), 0)
	INTO v_units
	FROM orders o WHERE o.client_ip = v_ip AND o.status = 'pending';
	IF v_units + p_units > (p_policy->>'ip_units_max')::bigint THEN
		RETURN json_build_object('error', 'reserved_units_limit',
			'limit', (p_policy->>'ip_units_max')::bigint);
	END IF;
	RETURN NULL;
END
$function$;

-- From 0005.
-- Give back what the order holds: each live reservation once, in product
-- order.  consume: the goods left (shipped), so on_hand drops as well.
CREATE OR REPLACE FUNCTION order_release(p_order bigint, p_consume boolean)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
DECLARE
	r record;
BEGIN
	FOR r IN SELECT product_id, quantity FROM reservations
		WHERE order_id = p_order::text AND released_at IS NULL
		ORDER BY product_id FOR UPDATE
	LOOP
		UPDATE inventory SET reserved = reserved - r.quantity,
			on_hand = on_hand - CASE WHEN p_consume
				THEN r.quantity ELSE 0 END,
			updated_at = now()
		WHERE product_id = r.product_id;
		UPDATE reservations SET released_at = now()
		WHERE order_id = p_order::text AND product_id = r.product_id;
	END LOOP;
END
$function$;

-- From 0005.
-- The one way an order's status changes.  Returns 'ok', 'unchanged' (it
-- already has that status), 'invalid' (no such move) or 'not_found'.
-- Stock is released when the order reaches a final state that gives it
-- back and consumed when it ships; a paid order that is cancelled gets a
-- refund queued.  The order row is locked first, so that concurrent moves
-- of one order take turns and each effect happens once.
CREATE OR REPLACE FUNCTION order_transition(p_order bigint, p_to text, p_detail text, p_tracking text)
 RETURNS text
 LANGUAGE plpgsql
AS $function$
DECLARE
	o orders;
	v_seq integer;
BEGIN
	SELECT * INTO o FROM orders WHERE id = p_order FOR UPDATE;
	IF NOT FOUND THEN
		RETURN 'not_found';
	END IF;
	IF o.status = p_to THEN
		RETURN 'unchanged';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM order_transitions
		WHERE from_status = o.status AND to_status = p_to) THEN
		RETURN 'invalid';
	END IF;
	UPDATE orders SET status = p_to, last_seq = last_seq + 1,
		updated_at = now(),
		tracking_number = COALESCE(p_tracking, tracking_number),
		payment_status = CASE
			WHEN p_to = 'paid' THEN 'paid'
			WHEN p_to = 'payment_failed' THEN 'failed'
			WHEN p_to = 'cancelled' AND payment_status = 'pending'
				THEN 'voided'
			ELSE payment_status END
	WHERE id = p_order RETURNING last_seq INTO v_seq;
	INSERT INTO order_events (order_id, seq, status, detail)
	VALUES (p_order, v_seq, p_to, p_detail);
	IF p_to IN ('cancelled', 'payment_failed') THEN
		PERFORM order_release(p_order, false);
	ELSIF p_to = 'shipped' THEN
		PERFORM order_release(p_order, true);
	END IF;
	-- A charge no worker has tried yet (payments.attempts counts the
	-- tries; only a worker that then did not call takes its count back,
	-- payment_charge_unbegin()) is withdrawn.  One that was tried may
	-- have reached the gateway: the worker finishes it, finds the order
	-- cancelled and refunds it (payment_charge_end()).
	IF p_to = 'cancelled' AND o.payment_status = 'pending' THEN
		WITH f AS (UPDATE payments SET status = 'failed',
			failure_code = 'order_cancelled', updated_at = now()
			WHERE order_id = p_order AND status = 'pending'
			AND attempts = 0 RETURNING id)
		DELETE FROM outbox WHERE topic = 'payment.charge'
			AND state = 'pending' AND aggregate_id = 'order:' || p_order
			AND (payload->>'payment_id')::bigint IN (SELECT id FROM f);
	END IF;
	IF p_to = 'cancelled' AND o.status = 'paid' THEN
		PERFORM payment_refund_request(p.id) FROM payments p
		WHERE p.order_id = p_order AND p.status = 'succeeded';
	END IF;
	PERFORM pg_notify('agora_order_' || p_order, v_seq::text);
	RETURN 'ok';
END
$function$;

-- From 0007.
-- Cancel up to p_limit unpaid orders whose time is up; returns each one
-- with its products (whose cached documents the caller invalidates).
CREATE OR REPLACE FUNCTION orders_expire(p_limit integer)
 RETURNS TABLE(order_id bigint, product_ids text)
 LANGUAGE plpgsql
AS $function$
DECLARE
	v_ids bigint[];
	v bigint;
BEGIN
	-- All the orders first, then all their stock in product order, as
	-- in payments_lock_many(), before any is released.
	v_ids := ARRAY(SELECT o.id FROM orders o
		WHERE o.status = 'pending' AND o.expires_at <= now()
		ORDER BY o.id LIMIT p_limit FOR UPDATE SKIP LOCKED);
	PERFORM 1 FROM inventory WHERE product_id IN (SELECT r.product_id
		FROM reservations r WHERE r.order_id = ANY(
			SELECT x::text FROM unnest(v_ids) x)
		AND r.released_at IS NULL)
	ORDER BY product_id FOR UPDATE;
	FOREACH v IN ARRAY v_ids
	LOOP
		IF order_transition(v, 'cancelled', 'expired', NULL) = 'ok' THEN
			order_id := v;
			product_ids := (SELECT string_agg(i.product_id::text,
				',') FROM order_items i WHERE i.order_id = v);
			RETURN NEXT;
		END IF;
	END LOOP;
END
$function$;

-- From 0.2 (with sql/0020's index of dead rows).
-- The gauges GET /metrics reads from the database (fcgi/metrics.c), each
-- from an index and bounded however large the tables grow: the outbox's
-- live rows per topic and state (up to p_outbox_cap a topic), its dead
-- rows, the age of each topic's oldest due row; the orders per status (up
-- to p_orders_cap a status); this database's connections.  The topics
-- and statuses are found by skipping from one to the next along
-- outbox_due and orders_status.  Index scans by decree (enable_seqscan
-- off): after a burst of jobs the outbox and its indexes keep their size
-- with few live rows, and the planner, pricing those empty pages as full,
-- would read the whole table for each topic (100 ms where the index takes
-- 2; doc/metrics.md).
CREATE OR REPLACE FUNCTION metrics_gauges(p_outbox_cap integer, p_orders_cap integer)
 RETURNS TABLE(name text, label text, state text, n bigint)
 LANGUAGE sql
 STABLE
 SET enable_seqscan TO 'off'
AS $function$
	WITH RECURSIVE t(topic) AS (
		(SELECT o.topic FROM outbox o WHERE o.state <> 'dead'
		 ORDER BY o.topic LIMIT 1)
		UNION ALL
		SELECT (SELECT o.topic FROM outbox o WHERE o.state <> 'dead'
			AND o.topic > t.topic ORDER BY o.topic LIMIT 1)
		FROM t WHERE t.topic IS NOT NULL),
	s(status) AS (
		(SELECT o.status FROM orders o ORDER BY o.status LIMIT 1)
		UNION ALL
		SELECT (SELECT o.status FROM orders o WHERE o.status > s.status
			ORDER BY o.status LIMIT 1)
		FROM s WHERE s.status IS NOT NULL)
	SELECT 'agora_outbox_rows', t.topic, l.state, count(*)
	FROM t, LATERAL (SELECT o.state FROM outbox o
		WHERE o.topic = t.topic AND o.state <> 'dead'
		ORDER BY o.next_attempt_at LIMIT p_outbox_cap) l
	WHERE t.topic IS NOT NULL GROUP BY 2, 3
	UNION ALL
	SELECT 'agora_outbox_rows', o.topic, 'dead', count(*) FROM outbox o
	WHERE o.state = 'dead' GROUP BY 2
	UNION ALL
	SELECT 'agora_outbox_oldest_due_age_seconds', t.topic, '',
		COALESCE((SELECT extract(epoch FROM now() - o.next_attempt_at)::bigint
			FROM outbox o WHERE o.topic = t.topic AND o.state <> 'dead'
			AND o.next_attempt_at <= now()
			ORDER BY o.next_attempt_at LIMIT 1), 0)
	FROM t WHERE t.topic IS NOT NULL
	UNION ALL
	SELECT 'agora_orders', s.status, '', (SELECT count(*) FROM
		(SELECT 1 FROM orders o WHERE o.status = s.status
		 LIMIT p_orders_cap) c)
	FROM s WHERE s.status IS NOT NULL
	UNION ALL
	SELECT 'agora_db_connections', COALESCE(a.state, 'unknown'), '', count(*)
	FROM pg_stat_activity a WHERE a.datname = current_database() GROUP BY 2
$function$;
