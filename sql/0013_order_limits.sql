-- 0013: what one account may hold without paying.
--
-- An unpaid order reserves its stock until it expires, so a fresh account
-- could reserve a product's whole stock with one order and keep everyone
-- else out for order_expiry_seconds, again and again.  Orders are now
-- placed under a policy the programs pass from agora.conf (p_policy, a
-- JSON object):
--   unpaid_max  orders of the user that may await payment at once;
--   units_max   units those orders may reserve together, the new one
--               included;
--   unpaid_ttl  how long an order placed without a payment holds its
--               stock (order_unpaid_hold_seconds); one placed with a
--               payment, or paid for later with POST /payments, holds it
--               for p_ttl (order_expiry_seconds) from its placement.
-- A user's orders are placed one at a time (their user row is locked), so
-- that two orders at once cannot both pass the count.  The functions of
-- 0005 and 0007 stay for the programs of the previous release.

-- The policy's refusal for p_user placing p_units more, or NULL.
CREATE FUNCTION order_policy_check(p_user bigint, p_units bigint,
	p_policy jsonb)
RETURNS json LANGUAGE plpgsql AS $$
DECLARE
	v_orders bigint;
	v_units bigint;
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
			'limit', (p_policy->>'units_max')::bigint,
			'reserved', v_units);
	END IF;
	RETURN NULL;
END
$$;

CREATE FUNCTION order_place(p_user bigint, p_products bigint[],
	p_quantities integer[], p_shipping jsonb, p_payment jsonb,
	p_ttl integer, p_policy jsonb)
RETURNS json LANGUAGE plpgsql AS $$
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
	RETURN order_place(p_user, p_products, p_quantities, p_shipping,
		p_payment, CASE WHEN p_payment IS NULL
			THEN LEAST(p_ttl, (p_policy->>'unpaid_ttl')::integer)
			ELSE p_ttl END);
END
$$;

-- cart_checkout of 0005, under a policy.
CREATE FUNCTION cart_checkout(p_user bigint, p_shipping jsonb,
	p_payment jsonb, p_ttl integer, p_policy jsonb)
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
	RETURN order_place(p_user, v_ids, v_qty, p_shipping, p_payment, p_ttl,
		p_policy);
END
$$;

-- payment_start of 0007; a payment given to an order placed without one
-- extends its hold to p_ttl from its placement.
CREATE FUNCTION payment_start(p_order bigint, p_user bigint, p_payment jsonb,
	p_ttl integer)
RETURNS json LANGUAGE plpgsql AS $$
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
$$;

-- What the policy counts: a user's orders awaiting payment.
CREATE INDEX orders_user_pending ON orders (user_id) WHERE status = 'pending';
