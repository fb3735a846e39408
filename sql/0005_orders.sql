-- 0005: carts, orders and their state machine, idempotency keys, the outbox.
--
-- The money and stock rules live here, next to the data, so that every
-- path that changes an order (the programs, the worker, agoractl) goes
-- through the same code:
--   order_place() reserves stock for all lines or none, taking the
--     inventory rows in product order so that two orders over the same
--     products cannot deadlock, and writes the order, its items, its first
--     event and its outbox rows in the caller's transaction;
--   order_transition() is the one way a status changes.  The allowed moves
--     are the rows of order_transitions, which a trigger also enforces on
--     any UPDATE, and a final state releases the stock exactly once.
-- Events of an order are announced with NOTIFY on agora_order_<id>; new
-- outbox rows with NOTIFY on agora_outbox (one per transaction, since
-- PostgreSQL folds identical notifications).

CREATE TABLE order_transitions (
	from_status text NOT NULL,
	to_status text NOT NULL,
	PRIMARY KEY (from_status, to_status)
);
INSERT INTO order_transitions (from_status, to_status) VALUES
	('pending', 'paid'),
	('pending', 'payment_failed'),
	('pending', 'cancelled'),
	('paid', 'completed'),
	('paid', 'cancelled'),
	('completed', 'shipped'),
	('shipped', 'delivered');
REVOKE INSERT, UPDATE, DELETE ON order_transitions FROM agora_app;

CREATE TABLE orders (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	user_id bigint NOT NULL REFERENCES users,
	status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending',
		'paid', 'completed', 'shipped', 'delivered', 'payment_failed',
		'cancelled')),
	payment_status text NOT NULL DEFAULT 'unpaid'
		CHECK (payment_status IN ('unpaid', 'pending', 'paid', 'failed',
			'voided', 'refund_pending', 'refunded')),
	currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
	subtotal_cents bigint NOT NULL CHECK (subtotal_cents >= 0),
	total_cents bigint NOT NULL CHECK (total_cents >= 0),
	shipping_address jsonb CHECK (shipping_address IS NULL
		OR jsonb_typeof(shipping_address) = 'object'),
	tracking_number text CHECK (length(tracking_number) BETWEEN 1 AND 100),
	expires_at timestamptz NOT NULL,
	last_seq integer NOT NULL DEFAULT 1,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_user ON orders (user_id, id DESC);
CREATE INDEX orders_status ON orders (status, id DESC);
-- What the worker's expiry pass reads.
CREATE INDEX orders_expiring ON orders (expires_at) WHERE status = 'pending';

CREATE TABLE order_items (
	order_id bigint NOT NULL REFERENCES orders,
	product_id bigint NOT NULL REFERENCES products,
	sku text NOT NULL,
	name text NOT NULL,
	unit_price_cents bigint NOT NULL CHECK (unit_price_cents >= 0),
	quantity integer NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
	PRIMARY KEY (order_id, product_id)
);
CREATE INDEX order_items_product ON order_items (product_id);

CREATE TABLE order_events (
	order_id bigint NOT NULL REFERENCES orders,
	seq integer NOT NULL CHECK (seq > 0),
	status text NOT NULL,
	detail text,
	at timestamptz NOT NULL DEFAULT clock_timestamp(),
	PRIMARY KEY (order_id, seq)
);
REVOKE UPDATE, DELETE ON order_events FROM agora_app;

CREATE TABLE cart_items (
	user_id bigint NOT NULL REFERENCES users ON DELETE CASCADE,
	product_id bigint NOT NULL REFERENCES products,
	quantity integer NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
	added_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (user_id, product_id)
);

-- A completed request with an Idempotency-Key: what was answered, kept so
-- that a replay gets the same answer.  The key is the user's, across
-- endpoints; the fingerprint (SHA-256 of method, path and body) tells a
-- replay from a reuse.  Written in the transaction of the work itself.
CREATE TABLE idempotency_keys (
	user_id bigint NOT NULL REFERENCES users ON DELETE CASCADE,
	key text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
	fingerprint text NOT NULL,
	status integer NOT NULL CHECK (status BETWEEN 200 AND 299),
	location text,
	body text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- Claim a key for this transaction.  A request still running under the
-- same key holds a transaction-level advisory lock on it, so a second one
-- is told "busy" at once rather than blocking on the first's uncommitted
-- row.  VOLATILE: the lookup takes its snapshot after the lock is held,
-- so it sees a row committed by the request that held it just before.
CREATE FUNCTION idempotency_claim(p_user bigint, p_key text)
RETURNS TABLE (busy boolean, fingerprint text, status integer,
	location text, body text)
LANGUAGE plpgsql VOLATILE AS $$
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
$$;

-- Slow or failure-prone work for agora-worker, written in the same
-- transaction as the change it follows (the transactional outbox).  A row
-- is due when next_attempt_at has passed; the worker claims it by moving
-- next_attempt_at forward by its lease, so a crashed worker's rows come
-- due again.  Finished rows are deleted to keep this table small.
CREATE TABLE outbox (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	topic text NOT NULL CHECK (topic ~ '^[a-z_]+\.[a-z_]+$'),
	aggregate_id text NOT NULL,
	payload jsonb NOT NULL,
	state text NOT NULL DEFAULT 'pending'
		CHECK (state IN ('pending', 'running', 'dead')),
	attempts integer NOT NULL DEFAULT 0,
	max_attempts integer NOT NULL DEFAULT 10 CHECK (max_attempts > 0),
	next_attempt_at timestamptz NOT NULL DEFAULT now(),
	last_error text,
	-- The token of the worker's claim that holds the row ('running').
	claim text,
	created_at timestamptz NOT NULL DEFAULT now()
) WITH (autovacuum_vacuum_scale_factor = 0.01,
	autovacuum_vacuum_threshold = 200);
-- The claim reads only the topics its worker handles, so rows of a topic
-- no worker handles yet cost it nothing.
CREATE INDEX outbox_due ON outbox (topic, next_attempt_at, id)
	WHERE state <> 'dead';
CREATE INDEX outbox_aggregate ON outbox (aggregate_id, id);

-- An order as the API shows it.
CREATE FUNCTION order_doc(p_order bigint) RETURNS json
LANGUAGE sql STABLE AS $$
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
$$;

CREATE FUNCTION outbox_add(p_topic text, p_aggregate text, p_payload jsonb)
RETURNS void LANGUAGE sql AS $$
	INSERT INTO outbox (topic, aggregate_id, payload)
	VALUES (p_topic, p_aggregate, p_payload);
	SELECT pg_notify('agora_outbox', '');
$$;

-- Payments of orders.  A payment is created pending with the order (or by
-- POST /payments) together with a payment.charge outbox row; agora-worker
-- charges it through the provider, with the payment id as the gateway's
-- idempotency key, so that a charge retried after a crash is never made
-- twice.  At most one payment of an order is pending or succeeded.
CREATE TABLE payments (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	order_id bigint NOT NULL REFERENCES orders,
	status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending',
		'succeeded', 'failed', 'refunded')),
	amount_cents bigint NOT NULL CHECK (amount_cents >= 0),
	currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
	method text NOT NULL CHECK (method = 'card'),
	token text NOT NULL CHECK (length(token) BETWEEN 1 AND 255),
	provider text NOT NULL,
	provider_ref text,
	failure_code text,
	attempts integer NOT NULL DEFAULT 0,
	refund_status text CHECK (refund_status IN ('pending', 'succeeded',
		'failed')),
	-- Each refund request is a new gateway idempotency key, so that one
	-- the gateway declined can be asked for again.
	refund_requests integer NOT NULL DEFAULT 0,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX payments_live ON payments (order_id)
	WHERE status IN ('pending', 'succeeded');
CREATE INDEX payments_order ON payments (order_id, id);

CREATE FUNCTION payment_doc(p payments) RETURNS json
LANGUAGE sql STABLE AS $$
	SELECT json_build_object('id', p.id::text,
		'order_id', p.order_id::text, 'status', p.status,
		'amount_cents', p.amount_cents, 'currency', p.currency,
		'method', p.method, 'provider', p.provider,
		'provider_ref', p.provider_ref, 'failure_code', p.failure_code,
		'refund_status', p.refund_status, 'attempts', p.attempts,
		'created_at', agora_time(p.created_at),
		'updated_at', agora_time(p.updated_at))
$$;

-- Ask for a charge of the order's total: {method, token, provider}.  The
-- caller holds the order row (it is being created, or locked).
CREATE FUNCTION payment_create(p_order bigint, p_payment jsonb)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	v_id bigint;
BEGIN
	INSERT INTO payments (order_id, amount_cents, currency, method, token,
		provider)
	SELECT o.id, o.total_cents, o.currency, p_payment->>'method',
		p_payment->>'token', COALESCE(p_payment->>'provider', '')
	FROM orders o WHERE o.id = p_order
	RETURNING id INTO v_id;
	UPDATE orders SET payment_status = 'pending', updated_at = now()
	WHERE id = p_order;
	PERFORM outbox_add('payment.charge', 'order:' || p_order,
		jsonb_build_object('payment_id', v_id::text));
	RETURN v_id;
END
$$;

-- Lock a payment's order, then the payment (the order every path takes,
-- so that none deadlocks with another); NULL when there is none.
CREATE FUNCTION payment_lock(p_payment bigint) RETURNS payments
LANGUAGE plpgsql AS $$
DECLARE
	p payments;
BEGIN
	PERFORM 1 FROM orders WHERE id = (SELECT order_id FROM payments
		WHERE id = p_payment) FOR UPDATE;
	SELECT * INTO p FROM payments WHERE id = p_payment FOR UPDATE;
	RETURN p;
END
$$;

-- Queue the refund of a succeeded payment; false when it is not one.
CREATE FUNCTION payment_refund_request(p_payment bigint)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
	v_order bigint;
BEGIN
	PERFORM payment_lock(p_payment);
	UPDATE payments SET refund_status = 'pending',
		refund_requests = refund_requests + 1, updated_at = now()
	WHERE id = p_payment AND status = 'succeeded'
		AND refund_status IS DISTINCT FROM 'pending'
		AND refund_status IS DISTINCT FROM 'succeeded'
	RETURNING order_id INTO v_order;
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	UPDATE orders SET payment_status = 'refund_pending', updated_at = now()
	WHERE id = v_order;
	PERFORM outbox_add('payment.refund', 'order:' || v_order,
		jsonb_build_object('payment_id', p_payment::text));
	RETURN true;
END
$$;

-- A line of an order as placed: what the product was when it was read.
CREATE TYPE order_line AS (product_id bigint, sku text, name text,
	unit_price_cents bigint, currency text, quantity integer);

-- Place an order for p_user: lines (p_products[i], p_quantities[i]).
-- Returns {"order": {...}, "product_ids": "1,2"} or {"error": code,
-- "products": [...]}; on an
-- error the caller must roll back, since stock of other lines may already
-- be reserved.  Prices, names and currency come from the products table,
-- read once: every statement of a plpgsql function takes a new snapshot,
-- so reading products twice could price the items and the total from two
-- different versions of a product that an admin changed in between.
CREATE FUNCTION order_place(p_user bigint, p_products bigint[],
	p_quantities integer[], p_shipping jsonb, p_payment jsonb,
	p_ttl integer)
RETURNS json LANGUAGE plpgsql AS $$
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
		shipping_address, payment_status, expires_at)
	VALUES (p_user, v_currency, v_subtotal, v_subtotal, p_shipping,
		'unpaid', now() + make_interval(secs => p_ttl))
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
$$;

-- Give back what the order holds: each live reservation once, in product
-- order.  consume: the goods left (shipped), so on_hand drops as well.
CREATE FUNCTION order_release(p_order bigint, p_consume boolean)
RETURNS void LANGUAGE plpgsql AS $$
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
$$;

-- The one way an order's status changes.  Returns 'ok', 'unchanged' (it
-- already has that status), 'invalid' (no such move) or 'not_found'.
-- Stock is released when the order reaches a final state that gives it
-- back and consumed when it ships; a paid order that is cancelled gets a
-- refund queued.  The order row is locked first, so that concurrent moves
-- of one order take turns and each effect happens once.
CREATE FUNCTION order_transition(p_order bigint, p_to text, p_detail text,
	p_tracking text)
RETURNS text LANGUAGE plpgsql AS $$
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
	-- tries, and nothing resets it) is withdrawn.  One that was tried may
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
$$;

-- Whatever changes a status, it must be a row of order_transitions.
CREATE FUNCTION orders_check_transition() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM order_transitions
		WHERE from_status = OLD.status AND to_status = NEW.status) THEN
		RAISE EXCEPTION 'order %: % to % is not a transition',
			OLD.id, OLD.status, NEW.status
			USING ERRCODE = 'check_violation';
	END IF;
	RETURN NEW;
END
$$;
CREATE TRIGGER orders_transition BEFORE UPDATE OF status ON orders
	FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
	EXECUTE FUNCTION orders_check_transition();

-- Turn p_user's cart into an order, as order_place() would, emptying the
-- cart in the same transaction.  The DELETE locks the cart's rows, so two
-- concurrent checkouts cannot both take them.
CREATE FUNCTION cart_checkout(p_user bigint, p_shipping jsonb,
	p_payment jsonb, p_ttl integer)
RETURNS json LANGUAGE plpgsql AS $$
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
	RETURN order_place(p_user, v_ids, v_qty, p_shipping, p_payment, p_ttl);
END
$$;
