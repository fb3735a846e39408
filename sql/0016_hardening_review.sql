-- 0016: what a review of 0012 to 0015 found.
--
-- analytics_prune() took its cut-off from the caller, so the programs'
-- role could delete every event through it.  The programs' function now
-- takes a number of days, at least 30, and a bounded batch; deleting
-- newer events is the owner's alone (analytics_prune_before, for agoractl).
--
-- The category trigger locked the table inside a row trigger, which two
-- moves at once turn into a deadlock, and counted only the new parent's
-- ancestors, so that moving a deep subtree could nest categories past the
-- 64 levels the search follows.  It now serialises moves with an advisory
-- lock and counts the moved category's own subtree too.
--
-- Admins change users through one function, which checks in the same
-- statement that the caller is still an admin with a current token:
-- an admin demoted while their own request ran cannot undo it.
--
-- Orders awaiting payment are also counted per client address
-- (orders.client_ip), so that fresh accounts made from one address do
-- not add up to a product's whole stock.
--
-- Phone numbers of orders placed before 0013's check are checked again
-- where a notification picks its recipient.

DROP FUNCTION analytics_prune(timestamptz, integer);

CREATE FUNCTION analytics_prune(p_days integer, p_limit integer)
RETURNS bigint LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp AS $$
	WITH d AS (DELETE FROM analytics_events WHERE id IN (
			SELECT id FROM analytics_events
			WHERE occurred_at < now() - make_interval(
				days => GREATEST(p_days, 30))
			LIMIT LEAST(GREATEST(p_limit, 1), 10000)
			FOR UPDATE SKIP LOCKED)
		RETURNING 1)
	SELECT count(*) FROM d
$$;
REVOKE ALL ON FUNCTION analytics_prune(integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION analytics_prune(integer, integer) TO agora_app;

-- The owner's: events from before p_before, whatever their age.
CREATE FUNCTION analytics_prune_before(p_before timestamptz, p_limit integer)
RETURNS bigint LANGUAGE sql SET search_path = pg_catalog, public, pg_temp AS $$
	WITH d AS (DELETE FROM analytics_events WHERE id IN (
			SELECT id FROM analytics_events
			WHERE occurred_at < p_before
			LIMIT LEAST(GREATEST(p_limit, 1), 10000)
			FOR UPDATE SKIP LOCKED)
		RETURNING 1)
	SELECT count(*) FROM d
$$;
REVOKE ALL ON FUNCTION analytics_prune_before(timestamptz, integer)
	FROM PUBLIC, agora_app;

CREATE OR REPLACE FUNCTION categories_acyclic() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	p bigint := NEW.parent_id;
	depth int;
BEGIN
	IF TG_OP = 'UPDATE' THEN
		-- One move at a time, so two cannot close a loop that neither
		-- sees; a constant key of this trigger's own.
		PERFORM pg_advisory_xact_lock(hashtext('agora:categories_acyclic'));
		WITH RECURSIVE sub(id, d) AS (
			SELECT NEW.id, 1
			UNION ALL
			SELECT c.id, sub.d + 1 FROM categories c
			JOIN sub ON c.parent_id = sub.id WHERE sub.d <= 64)
		SELECT max(d) INTO depth FROM sub;
	ELSE
		depth := 1;
	END IF;
	WHILE p IS NOT NULL LOOP
		IF p = NEW.id THEN
			RAISE EXCEPTION 'category % would be its own ancestor', NEW.id
				USING ERRCODE = 'check_violation',
				CONSTRAINT = 'categories_acyclic';
		END IF;
		depth := depth + 1;
		IF depth > 64 THEN
			RAISE EXCEPTION 'categories nest at most 64 levels deep'
				USING ERRCODE = 'check_violation',
				CONSTRAINT = 'categories_depth';
		END IF;
		SELECT parent_id INTO p FROM categories WHERE id = p;
	END LOOP;
	RETURN NEW;
END $$;

-- The generation a user's tokens must have, from the row itself: in a
-- RETURNING list, a function that reads the table would see the row as it
-- was before the statement.
CREATE FUNCTION user_gen_of(u users) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN u.disabled_at IS NULL THEN u.token_gen::bigint
		ELSE 2147483647 END
$$;

CREATE OR REPLACE FUNCTION user_token_gen(p_user bigint) RETURNS bigint
LANGUAGE sql STABLE AS $$
	SELECT user_gen_of(u) FROM users u WHERE u.id = p_user
$$;

-- An admin (p_caller, whose token is of generation p_caller_gen) changes
-- p_user's role or state; NULL leaves one as it is.  p_caller NULL: the
-- system (agoractl).  The caller's row is locked and checked in the same
-- transaction.  Returns the user's row and the generation their tokens
-- must now have, or no row: no such user, or the caller may not.
CREATE FUNCTION user_admin_update(p_caller bigint, p_caller_gen integer,
	p_user bigint, p_role text, p_disabled boolean)
RETURNS TABLE (id text, email text, name text, role text, created_at text,
	disabled boolean, token_gen bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
	IF p_caller IS NOT NULL AND NOT EXISTS (SELECT 1 FROM users c
		WHERE c.id = p_caller AND c.role = 'admin'
		AND c.disabled_at IS NULL AND c.token_gen <= p_caller_gen
		FOR SHARE) THEN
		RETURN;
	END IF;
	RETURN QUERY UPDATE users u SET role = COALESCE(p_role, u.role),
		disabled_at = CASE WHEN p_disabled IS NULL THEN u.disabled_at
			WHEN p_disabled THEN COALESCE(u.disabled_at, now()) END,
		updated_at = now()
	WHERE u.id = p_user
	RETURNING u.id::text, u.email, u.name, u.role,
		agora_time(u.created_at), u.disabled_at IS NOT NULL,
		user_gen_of(u);
END
$$;

ALTER TABLE orders ADD COLUMN client_ip text
	CHECK (length(client_ip) BETWEEN 1 AND 64);
CREATE INDEX orders_ip_pending ON orders (client_ip)
	WHERE status = 'pending' AND client_ip IS NOT NULL;

-- 0013's check, and the same per client address (p_policy's ip and
-- ip_units_max) when the policy names one.
CREATE OR REPLACE FUNCTION order_policy_check(p_user bigint, p_units bigint,
	p_policy jsonb)
RETURNS json LANGUAGE plpgsql AS $$
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
$$;

-- 0013's order_place, recording the client address of the order.
CREATE OR REPLACE FUNCTION order_place(p_user bigint, p_products bigint[],
	p_quantities integer[], p_shipping jsonb, p_payment jsonb,
	p_ttl integer, p_policy jsonb)
RETURNS json LANGUAGE plpgsql AS $$
DECLARE
	v_refused json;
	v_placed json;
BEGIN
	PERFORM 1 FROM users WHERE id = p_user FOR NO KEY UPDATE;
	v_refused := order_policy_check(p_user,
		(SELECT COALESCE(sum(q), 0) FROM unnest(p_quantities) AS q),
		p_policy);
	IF v_refused IS NOT NULL THEN
		RETURN v_refused;
	END IF;
	v_placed := order_place(p_user, p_products, p_quantities, p_shipping,
		p_payment, CASE WHEN p_payment IS NULL
			THEN LEAST(p_ttl, (p_policy->>'unpaid_ttl')::integer)
			ELSE p_ttl END);
	IF v_placed->>'error' IS NULL AND p_policy->>'ip' IS NOT NULL THEN
		UPDATE orders SET client_ip = p_policy->>'ip'
		WHERE id = (v_placed->'order'->>'id')::bigint;
	END IF;
	RETURN v_placed;
END
$$;

-- 0008's fan-out; a phone that is not E.164 (an order from before 0013)
-- is skipped like a missing one.
CREATE OR REPLACE FUNCTION notification_fanout(p_order bigint,
	p_template text, p_channels text[])
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
	v_n integer;
BEGIN
	WITH o AS (SELECT o.id, o.user_id, u.email,
			CASE WHEN o.shipping_address->>'phone' ~ '^\+[1-9][0-9]{6,14}$'
			THEN o.shipping_address->>'phone' END AS phone
		FROM orders o JOIN users u ON u.id = o.user_id
		WHERE o.id = p_order),
	ins AS (INSERT INTO notifications (user_id, order_id, template,
			channel, recipient, subject, status)
		SELECT o.user_id, o.id, p_template, c,
			CASE c WHEN 'sms' THEN o.phone ELSE o.email END,
			notification_subject(p_template, o.id),
			CASE WHEN c = 'sms' AND o.phone IS NULL THEN 'skipped'
				ELSE 'pending' END
		FROM o, unnest(p_channels) AS c
		ON CONFLICT (order_id, template, channel) DO NOTHING
		RETURNING id, status)
	-- outbox_add() returns void (NULL): count its calls, not its values.
	SELECT count(outbox_add('notify.send', 'notification:' || id,
			jsonb_build_object('notification_id', id::text)) IS NULL)
		INTO v_n FROM ins WHERE status = 'pending';
	RETURN v_n;
END
$$;
