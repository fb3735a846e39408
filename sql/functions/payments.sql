-- payments.sql: starting and charging, refunds, and the
-- gateway's events, which may come before their payments.
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

-- From 0007.
-- Apply a stored gateway event once: 'applied', 'already' or 'waiting'
-- (its payment is not known yet).
CREATE OR REPLACE FUNCTION gateway_event_apply(p_event text)
 RETURNS text
 LANGUAGE plpgsql
AS $function$
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
$function$;

-- From 0007.
-- Store an event (a replay of a known id stores nothing) and apply it.
CREATE OR REPLACE FUNCTION gateway_event_receive(p_event text, p_type text, p_payment bigint, p_payload jsonb)
 RETURNS text
 LANGUAGE plpgsql
AS $function$
BEGIN
	INSERT INTO gateway_events (event_id, type, payment_id, payload)
	VALUES (p_event, p_type, p_payment, p_payload)
	ON CONFLICT (event_id) DO NOTHING;
	IF NOT FOUND THEN
		RETURN 'duplicate';
	END IF;
	RETURN gateway_event_apply(p_event);
END
$function$;

-- From 0011.
-- gateway_event_receive, with the products whose stock the event gave back.
CREATE OR REPLACE FUNCTION gateway_event_receive_stock(p_event text, p_type text, p_payment bigint, p_payload jsonb, OUT result text, OUT product_ids text)
 RETURNS record
 LANGUAGE plpgsql
AS $function$
BEGIN
	result := gateway_event_receive(p_event, p_type, p_payment, p_payload);
	IF result = 'applied' THEN
		product_ids := payment_released_products(p_payment);
	END IF;
END
$function$;

-- From 0011.
-- gateway_events_apply_waiting, with a row of products for each event
-- applied that gave stock back.
CREATE OR REPLACE FUNCTION gateway_events_apply_waiting_stock(p_limit integer)
 RETURNS TABLE(product_ids text)
 LANGUAGE plpgsql
AS $function$
DECLARE
	e record;
BEGIN
	FOR e IN SELECT g.event_id, g.payment_id
		FROM gateway_events g
		WHERE g.applied_at IS NULL AND EXISTS (SELECT 1 FROM payments p
			WHERE p.id = g.payment_id)
		ORDER BY g.received_at, g.event_id
		LIMIT p_limit
	LOOP
		IF gateway_event_apply(e.event_id) = 'applied' THEN
			product_ids := payment_released_products(e.payment_id);
			IF product_ids IS NOT NULL THEN
				RETURN NEXT;
			END IF;
		END IF;
	END LOOP;
END
$function$;

-- From 0007.
-- Before calling the gateway: 'charge' (with what to charge and the
-- attempt number) or 'skip'.  A payment whose order was cancelled before
-- any attempt fails without a call; one that was tried already is charged
-- again with the same idempotency key, so that a charge the gateway made
-- is found and then refunded.
CREATE OR REPLACE FUNCTION payment_charge_begin(p_payment bigint, p_provider text)
 RETURNS TABLE(action text, amount_cents bigint, currency text, token text, attempts integer)
 LANGUAGE plpgsql
AS $function$
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
$function$;

-- A charge payment_charge_begin counted as tried (p_attempts: the count
-- it returned) whose gateway call the worker then did not make (its chunk
-- ran out of time, or it was stopping): the attempt is taken back, so
-- that a cancellation meanwhile withdraws it, as one never tried.
-- Returns whether it was.
CREATE OR REPLACE FUNCTION payment_charge_unbegin(p_payment bigint, p_attempts integer)
 RETURNS boolean
 LANGUAGE sql
AS $function$
	UPDATE payments SET attempts = attempts - 1, updated_at = now()
	WHERE id = p_payment AND status = 'pending' AND attempts = p_attempts
	RETURNING true
$function$;

-- From 0007.
-- The gateway's final answer: charged (p_ok, with its reference) or
-- declined (p_code).  Returns 'paid', 'refunding' (the order was cancelled
-- meanwhile), 'failed' or 'noop' (already recorded).  A charge that went
-- through for a payment given up as failed (its order cancelled, or a
-- webhook late) is recorded and refunded: money taken is never kept
-- without an order that is paid.
CREATE OR REPLACE FUNCTION payment_charge_end(p_payment bigint, p_ok boolean, p_ref text, p_code text)
 RETURNS text
 LANGUAGE plpgsql
AS $function$
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
$function$;

-- From 0007 (this body: 0.2, with the traces of sql/0018).
-- The gateway's answers for a batch: [{p, ok, ref, code, t}], t the trace
-- id of the payment's job, if any.  Returns each
-- payment with what payment_charge_end() said and its order's products.
CREATE OR REPLACE FUNCTION payment_charge_end_many(p_outcomes json)
 RETURNS TABLE(payment_id bigint, result text, product_ids text)
 LANGUAGE plpgsql
AS $function$
DECLARE
	o record;
BEGIN
	PERFORM payments_lock_many(ARRAY(SELECT (e->>'p')::bigint
		FROM json_array_elements(p_outcomes) e));
	FOR o IN SELECT * FROM json_to_recordset(p_outcomes)
		AS t(p bigint, ok boolean, ref text, code text, t text) ORDER BY p
	LOOP
		-- The rows this payment's end writes are its job's trace's
		-- (sql/0018): t, its id, or none.
		PERFORM set_config('agora.trace_id', coalesce(o.t, ''), true);
		payment_id := o.p;
		result := payment_charge_end(o.p, o.ok, o.ref, o.code);
		product_ids := (SELECT string_agg(i.product_id::text, ',')
			FROM order_items i JOIN payments p
			ON p.order_id = i.order_id WHERE p.id = o.p);
		RETURN NEXT;
	END LOOP;
END
$function$;

-- From 0005.
-- Ask for a charge of the order's total: {method, token, provider}.  The
-- caller holds the order row (it is being created, or locked).
CREATE OR REPLACE FUNCTION payment_create(p_order bigint, p_payment jsonb)
 RETURNS bigint
 LANGUAGE plpgsql
AS $function$
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
$function$;

-- From 0005.
CREATE OR REPLACE FUNCTION payment_doc(p payments)
 RETURNS json
 LANGUAGE sql
 STABLE
AS $function$
	SELECT json_build_object('id', p.id::text,
		'order_id', p.order_id::text, 'status', p.status,
		'amount_cents', p.amount_cents, 'currency', p.currency,
		'method', p.method, 'provider', p.provider,
		'provider_ref', p.provider_ref, 'failure_code', p.failure_code,
		'refund_status', p.refund_status, 'attempts', p.attempts,
		'created_at', agora_time(p.created_at),
		'updated_at', agora_time(p.updated_at))
$function$;

-- From 0005.
-- Lock a payment's order, then the payment (the order every path takes,
-- so that none deadlocks with another); NULL when there is none.
CREATE OR REPLACE FUNCTION payment_lock(p_payment bigint)
 RETURNS payments
 LANGUAGE plpgsql
AS $function$
DECLARE
	p payments;
BEGIN
	PERFORM 1 FROM orders WHERE id = (SELECT order_id FROM payments
		WHERE id = p_payment) FOR UPDATE;
	SELECT * INTO p FROM payments WHERE id = p_payment FOR UPDATE;
	RETURN p;
END
$function$;

-- From 0007.
-- Before a refund call: 'refund' with the gateway's reference, or 'skip';
-- attempts is the number of this refund request (its idempotency key).
CREATE OR REPLACE FUNCTION payment_refund_begin(p_payment bigint)
 RETURNS TABLE(action text, provider_ref text, amount_cents bigint, currency text, token text, attempts integer)
 LANGUAGE sql
AS $function$
	SELECT CASE WHEN p.refund_status = 'pending' THEN 'refund'
		ELSE 'skip' END,
		COALESCE(p.provider_ref, ''), p.amount_cents, p.currency,
		p.token, p.refund_requests
	FROM payments p WHERE p.id = p_payment
$function$;

-- From 0007.
-- The refund's final answer.  Also applies a refund the gateway reports
-- on its own (a webhook), for any succeeded payment.
CREATE OR REPLACE FUNCTION payment_refund_end(p_payment bigint, p_ok boolean, p_code text)
 RETURNS text
 LANGUAGE plpgsql
AS $function$
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
$function$;

-- From 0005.
-- Queue the refund of a succeeded payment; false when it is not one.
CREATE OR REPLACE FUNCTION payment_refund_request(p_payment bigint)
 RETURNS boolean
 LANGUAGE plpgsql
AS $function$
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
$function$;

-- From 0011.
-- The products of p_payment's order whose reservations this transaction
-- released (released_at is the transaction's time), comma-separated, or
-- NULL when it released none.
CREATE OR REPLACE FUNCTION payment_released_products(p_payment bigint)
 RETURNS text
 LANGUAGE sql
 STABLE
AS $function$
	SELECT string_agg(r.product_id::text, ',' ORDER BY r.product_id)
	FROM payments p JOIN reservations r ON r.order_id = p.order_id::text
	WHERE p.id = p_payment AND r.released_at = now()
$function$;

-- From 0007.
-- POST /payments: a charge for p_user's pending order, when no payment of
-- it is pending or succeeded.  Returns {"payment": {...}} or {"error":
-- not_found | not_awaiting_payment}.
CREATE OR REPLACE FUNCTION payment_start(p_order bigint, p_user bigint, p_payment jsonb)
 RETURNS json
 LANGUAGE plpgsql
AS $function$
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
$function$;

-- From 0013.
-- payment_start of 0007; a payment given to an order placed without one
-- extends its hold to p_ttl from its placement.
CREATE OR REPLACE FUNCTION payment_start(p_order bigint, p_user bigint, p_payment jsonb, p_ttl integer)
 RETURNS json
 LANGUAGE plpgsql
AS $function$
DECLARE
	v_result json;
BEGIN
	v_result := payment_start(p_order, p_user, p_payment);
	IF v_result->>'error' IS NULL THEN
		UPDATE orders SET expires_at = GREATEST(expires_at,
			created_at + make_interval(secs => p_ttl))
		WHERE id = p_order;
	END IF;
	RETURN v_result;
END
$function$;

-- From 0007.
-- Lock the orders of the payments, in id order, then the stock their
-- outcomes may give back, in product order: the order in which a cancel
-- and order_place() take them, so that recording many outcomes in one
-- transaction cannot deadlock with either.
CREATE OR REPLACE FUNCTION payments_lock_many(p_payments bigint[])
 RETURNS void
 LANGUAGE plpgsql
AS $function$
BEGIN
	PERFORM 1 FROM orders WHERE id IN (SELECT order_id FROM payments
		WHERE id = ANY(p_payments)) ORDER BY id FOR UPDATE;
	PERFORM 1 FROM inventory WHERE product_id IN (SELECT r.product_id
		FROM reservations r JOIN payments p
		ON r.order_id = p.order_id::text
		WHERE p.id = ANY(p_payments) AND r.released_at IS NULL)
	ORDER BY product_id FOR UPDATE;
END
$function$;
