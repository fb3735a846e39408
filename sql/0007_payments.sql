-- 0007: charging and refunding payments (agora-worker), the gateway's
-- webhook events, order expiry and housekeeping.
--
-- A charge is two short transactions around the gateway call, never one
-- held open across it: payment_charge_begin() counts the attempt and says
-- whether to call the gateway; payment_charge_end() records the outcome
-- and moves the order.  Both are no-ops when the payment is no longer
-- pending, so a worker that crashed and was replaced, a second worker on
-- the same row, or a webhook that told us first, cannot apply an outcome
-- twice.  Locks are taken order first, then payment, as order_transition()
-- and its callers do; a batch locks all its orders, then their stock,
-- before it changes any (payments_lock_many()).

-- Gateway events, each applied once.  An event may name a payment this
-- database does not know yet; it waits (applied_at NULL) and the worker
-- applies it once the payment exists.
CREATE TABLE gateway_events (
	event_id text PRIMARY KEY CHECK (length(event_id) BETWEEN 1 AND 255),
	type text NOT NULL,
	payment_id bigint,
	payload jsonb NOT NULL,
	received_at timestamptz NOT NULL DEFAULT now(),
	applied_at timestamptz
);
CREATE INDEX gateway_events_waiting ON gateway_events (payment_id)
	WHERE applied_at IS NULL;

-- Before calling the gateway: 'charge' (with what to charge and the
-- attempt number) or 'skip'.  A payment whose order was cancelled before
-- any attempt fails without a call; one that was tried already is charged
-- again with the same idempotency key, so that a charge the gateway made
-- is found and then refunded.
CREATE FUNCTION payment_charge_begin(p_payment bigint, p_provider text)
RETURNS TABLE (action text, amount_cents bigint, currency text, token text,
	attempts integer)
LANGUAGE plpgsql AS $$
DECLARE
	p payments;
BEGIN
	p := payment_lock(p_payment);
	IF p.id IS NULL OR p.status <> 'pending' THEN
		RETURN QUERY SELECT 'skip', 0::bigint, ''::text, ''::text, 0;
		RETURN;
	END IF;
	IF p.attempts = 0 AND (SELECT o.status FROM orders o
		WHERE o.id = p.order_id) <> 'pending' THEN
		UPDATE payments SET status = 'failed',
			failure_code = 'order_cancelled', updated_at = now()
		WHERE id = p_payment;
		RETURN QUERY SELECT 'skip', 0::bigint, ''::text, ''::text, 0;
		RETURN;
	END IF;
	UPDATE payments SET attempts = payments.attempts + 1,
		provider = p_provider, updated_at = now()
	WHERE id = p_payment RETURNING * INTO p;
	RETURN QUERY SELECT 'charge', p.amount_cents, p.currency, p.token,
		p.attempts;
END
$$;

-- The gateway's final answer: charged (p_ok, with its reference) or
-- declined (p_code).  Returns 'paid', 'refunding' (the order was cancelled
-- meanwhile), 'failed' or 'noop' (already recorded).  A charge that went
-- through for a payment given up as failed (its order cancelled, or a
-- webhook late) is recorded and refunded: money taken is never kept
-- without an order that is paid.
CREATE FUNCTION payment_charge_end(p_payment bigint, p_ok boolean,
	p_ref text, p_code text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	p payments;
	v text;
BEGIN
	p := payment_lock(p_payment);
	IF p.id IS NULL OR NOT (p.status = 'pending'
		OR (p.status = 'failed' AND p_ok)) THEN
		RETURN 'noop';
	END IF;
	IF p_ok THEN
		UPDATE payments SET status = 'succeeded', provider_ref = p_ref,
			failure_code = NULL, updated_at = now()
		WHERE id = p_payment;
		v := order_transition(p.order_id, 'paid',
			'payment ' || p_payment, NULL);
		IF v NOT IN ('ok', 'unchanged') THEN
			PERFORM payment_refund_request(p_payment);
			RETURN 'refunding';
		END IF;
		RETURN 'paid';
	END IF;
	UPDATE payments SET status = 'failed', failure_code = p_code,
		updated_at = now()
	WHERE id = p_payment;
	PERFORM order_transition(p.order_id, 'payment_failed', p_code, NULL);
	RETURN 'failed';
END
$$;

-- Before a refund call: 'refund' with the gateway's reference, or 'skip';
-- attempts is the number of this refund request (its idempotency key).
CREATE FUNCTION payment_refund_begin(p_payment bigint)
RETURNS TABLE (action text, provider_ref text, amount_cents bigint,
	currency text, token text, attempts integer)
LANGUAGE sql AS $$
	SELECT CASE WHEN p.refund_status = 'pending' THEN 'refund'
		ELSE 'skip' END,
		COALESCE(p.provider_ref, ''), p.amount_cents, p.currency,
		p.token, p.refund_requests
	FROM payments p WHERE p.id = p_payment
$$;

-- Lock the orders of the payments, in id order, then the stock their
-- outcomes may give back, in product order: the order in which a cancel
-- and order_place() take them, so that recording many outcomes in one
-- transaction cannot deadlock with either.
CREATE FUNCTION payments_lock_many(p_payments bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM 1 FROM orders WHERE id IN (SELECT order_id FROM payments
		WHERE id = ANY(p_payments)) ORDER BY id FOR UPDATE;
	PERFORM 1 FROM inventory WHERE product_id IN (SELECT r.product_id
		FROM reservations r JOIN payments p
		ON r.order_id = p.order_id::text
		WHERE p.id = ANY(p_payments) AND r.released_at IS NULL)
	ORDER BY product_id FOR UPDATE;
END
$$;

-- The gateway's answers for a batch: [{p, ok, ref, code}].  Returns each
-- payment with what payment_charge_end() said and its order's products.
CREATE FUNCTION payment_charge_end_many(p_outcomes json)
RETURNS TABLE (payment_id bigint, result text, product_ids text)
LANGUAGE plpgsql AS $$
DECLARE
	o record;
BEGIN
	PERFORM payments_lock_many(ARRAY(SELECT (e->>'p')::bigint
		FROM json_array_elements(p_outcomes) e));
	FOR o IN SELECT * FROM json_to_recordset(p_outcomes)
		AS t(p bigint, ok boolean, ref text, code text) ORDER BY p
	LOOP
		payment_id := o.p;
		result := payment_charge_end(o.p, o.ok, o.ref, o.code);
		product_ids := (SELECT string_agg(i.product_id::text, ',')
			FROM order_items i JOIN payments p
			ON p.order_id = i.order_id WHERE p.id = o.p);
		RETURN NEXT;
	END LOOP;
END
$$;

-- The refund's final answer.  Also applies a refund the gateway reports
-- on its own (a webhook), for any succeeded payment.
CREATE FUNCTION payment_refund_end(p_payment bigint, p_ok boolean,
	p_code text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	p payments;
BEGIN
	p := payment_lock(p_payment);
	IF p.id IS NULL OR p.status <> 'succeeded' THEN
		RETURN 'noop';
	END IF;
	IF NOT p_ok THEN
		UPDATE payments SET refund_status = 'failed',
			failure_code = p_code, updated_at = now()
		WHERE id = p_payment;
		RETURN 'failed';
	END IF;
	UPDATE payments SET status = 'refunded', refund_status = 'succeeded',
		updated_at = now()
	WHERE id = p_payment;
	UPDATE orders SET payment_status = 'refunded', updated_at = now()
	WHERE id = p.order_id;
	RETURN 'refunded';
END
$$;

-- Apply a stored gateway event once: 'applied', 'already' or 'waiting'
-- (its payment is not known yet).
CREATE FUNCTION gateway_event_apply(p_event text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	e gateway_events;
BEGIN
	SELECT * INTO e FROM gateway_events WHERE event_id = p_event
		FOR UPDATE;
	IF NOT FOUND OR e.applied_at IS NOT NULL THEN
		RETURN 'already';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM payments WHERE id = e.payment_id) THEN
		RETURN 'waiting';
	END IF;
	IF e.type = 'charge.succeeded' THEN
		PERFORM payment_charge_end(e.payment_id, true,
			e.payload->'data'->>'provider_ref', NULL);
	ELSIF e.type = 'charge.failed' THEN
		PERFORM payment_charge_end(e.payment_id, false, NULL,
			COALESCE(e.payload->'data'->>'failure_code',
				'card_declined'));
	ELSIF e.type = 'charge.refunded' THEN
		PERFORM payment_refund_end(e.payment_id, true, NULL);
	END IF;
	UPDATE gateway_events SET applied_at = now() WHERE event_id = p_event;
	RETURN 'applied';
END
$$;

-- Store an event (a replay of a known id stores nothing) and apply it.
CREATE FUNCTION gateway_event_receive(p_event text, p_type text,
	p_payment bigint, p_payload jsonb)
RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO gateway_events (event_id, type, payment_id, payload)
	VALUES (p_event, p_type, p_payment, p_payload)
	ON CONFLICT (event_id) DO NOTHING;
	IF NOT FOUND THEN
		RETURN 'duplicate';
	END IF;
	RETURN gateway_event_apply(p_event);
END
$$;

-- Cancel up to p_limit unpaid orders whose time is up; returns each one
-- with its products (whose cached documents the caller invalidates).
CREATE FUNCTION orders_expire(p_limit integer)
RETURNS TABLE (order_id bigint, product_ids text)
LANGUAGE plpgsql AS $$
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
$$;

-- Idempotency keys are kept 24 hours; then they go, a batch at a time.
CREATE FUNCTION idempotency_keys_purge(p_limit integer) RETURNS integer
LANGUAGE sql AS $$
	WITH d AS (DELETE FROM idempotency_keys WHERE (user_id, key) IN (
		SELECT user_id, key FROM idempotency_keys
		WHERE created_at < now() - interval '24 hours'
		LIMIT p_limit) RETURNING 1)
	SELECT count(*)::integer FROM d
$$;

-- Events that came before their payment, applied once it exists.
CREATE FUNCTION gateway_events_apply_waiting(p_limit integer)
RETURNS integer LANGUAGE sql AS $$
	SELECT count(*)::integer FROM (
		SELECT gateway_event_apply(e.event_id) AS r
		FROM gateway_events e
		WHERE e.applied_at IS NULL AND EXISTS (SELECT 1 FROM payments p
			WHERE p.id = e.payment_id)
		LIMIT p_limit) s
	WHERE r = 'applied'
$$;

-- POST /payments: a charge for p_user's pending order, when no payment of
-- it is pending or succeeded.  Returns {"payment": {...}} or {"error":
-- not_found | not_awaiting_payment}.
CREATE FUNCTION payment_start(p_order bigint, p_user bigint, p_payment jsonb)
RETURNS json LANGUAGE plpgsql AS $$
DECLARE
	o orders;
	v_id bigint;
BEGIN
	SELECT * INTO o FROM orders WHERE id = p_order FOR UPDATE;
	IF NOT FOUND OR o.user_id <> p_user THEN
		RETURN json_build_object('error', 'not_found');
	END IF;
	IF o.status <> 'pending' OR EXISTS (SELECT 1 FROM payments
		WHERE order_id = p_order
		AND status IN ('pending', 'succeeded')) THEN
		RETURN json_build_object('error', 'not_awaiting_payment');
	END IF;
	v_id := payment_create(p_order, p_payment);
	RETURN json_build_object('payment',
		(SELECT payment_doc(p) FROM payments p WHERE p.id = v_id));
END
$$;
