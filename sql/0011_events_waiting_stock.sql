-- 0011: a charge.failed that came before its payment gives its stock back
-- visibly when it is applied at last.
--
-- The worker applies such waiting events with gateway_events_apply_waiting
-- (0007), which returns only how many it applied, so the worker could not
-- tell the products whose stock a failed charge gave back, and cached reads
-- showed the old stock until their entries expired.  This one returns the
-- products of each failed charge it applies, as orders_expire does; the
-- 0007 function stays for the workers of the previous release.
CREATE FUNCTION gateway_events_apply_waiting_stock(p_limit integer)
RETURNS TABLE (product_ids text) LANGUAGE plpgsql AS $$
DECLARE
	e record;
BEGIN
	FOR e IN SELECT g.event_id, g.type, g.payment_id
		FROM gateway_events g
		WHERE g.applied_at IS NULL AND EXISTS (SELECT 1 FROM payments p
			WHERE p.id = g.payment_id)
		ORDER BY g.received_at, g.event_id
		LIMIT p_limit
	LOOP
		IF gateway_event_apply(e.event_id) = 'applied' AND
			e.type = 'charge.failed' THEN
			product_ids := (SELECT string_agg(i.product_id::text, ',')
				FROM order_items i JOIN payments p
					ON p.order_id = i.order_id
				WHERE p.id = e.payment_id);
			RETURN NEXT;
		END IF;
	END LOOP;
END
$$;
