-- 0011: the gateway's events say which products' stock they gave back.
--
-- A charge.failed event fails its order, which releases the order's stock;
-- cached copies of those products must then go.  The webhook guessed from
-- the event's type and ran a query of its own for the products, and the
-- worker, which applies events that came before their payments with
-- gateway_events_apply_waiting (0007), learnt nothing and left them stale
-- until they expired.  These return, for each event applied, the products
-- whose reservations it released; the 0007 functions stay for the
-- programs of the previous release.

-- The products of p_payment's order whose reservations this transaction
-- released (released_at is the transaction's time), comma-separated, or
-- NULL when it released none.
CREATE FUNCTION payment_released_products(p_payment bigint) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT string_agg(r.product_id::text, ',' ORDER BY r.product_id)
	FROM payments p JOIN reservations r ON r.order_id = p.order_id::text
	WHERE p.id = p_payment AND r.released_at = now()
$$;

-- gateway_event_receive, with the products whose stock the event gave back.
CREATE FUNCTION gateway_event_receive_stock(p_event text, p_type text,
	p_payment bigint, p_payload jsonb, OUT result text, OUT product_ids text)
LANGUAGE plpgsql AS $$
BEGIN
	result := gateway_event_receive(p_event, p_type, p_payment, p_payload);
	IF result = 'applied' THEN
		product_ids := payment_released_products(p_payment);
	END IF;
END
$$;

-- gateway_events_apply_waiting, with a row of products for each event
-- applied that gave stock back.
CREATE FUNCTION gateway_events_apply_waiting_stock(p_limit integer)
RETURNS TABLE (product_ids text) LANGUAGE plpgsql AS $$
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
$$;
