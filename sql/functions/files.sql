-- files.sql: files, invoices and notifications: the documents of
-- files, the invoice's number, source and record, and the notifications.
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

-- From 0008.
CREATE OR REPLACE FUNCTION file_doc(f files)
 RETURNS json
 LANGUAGE sql
 STABLE
AS $function$
	SELECT json_build_object('id', f.id::text, 'filename', f.filename,
		'content_type', f.content_type, 'size', f.size,
		'sha256', f.sha256, 'created_at', agora_time(f.created_at))
$function$;

-- From 0008.
-- An invoice's number: INV- and the order id, at least 8 digits.
CREATE OR REPLACE FUNCTION invoice_number(p_order bigint)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
AS $function$
	SELECT 'INV-' || CASE WHEN p_order < 100000000
		THEN lpad(p_order::text, 8, '0') ELSE p_order::text END
$function$;

-- From 0008.
-- Record the stored invoice of a paid order and complete the order, in
-- one transaction.  An order an admin moved on by hand gets its invoice
-- and keeps its status.  Returns the order's status afterwards, or the
-- status that kept it from having an invoice (cancelled meanwhile).
CREATE OR REPLACE FUNCTION invoice_record(p_order bigint, p_storage text, p_key text, p_size bigint, p_sha256 text)
 RETURNS text
 LANGUAGE plpgsql
AS $function$
DECLARE
	o orders;
	v_file bigint;
	v_number text := invoice_number(p_order);
BEGIN
	SELECT * INTO o FROM orders WHERE id = p_order FOR UPDATE;
	IF NOT FOUND THEN
		RETURN 'not_found';
	END IF;
	IF o.status NOT IN ('paid', 'completed', 'shipped', 'delivered') THEN
		RETURN o.status;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM invoices WHERE order_id = p_order) THEN
		INSERT INTO files (user_id, filename, content_type, size,
			sha256, storage, storage_key)
		VALUES (o.user_id, 'invoice-' || v_number || '.pdf',
			'application/pdf', p_size, p_sha256, p_storage, p_key)
		RETURNING id INTO v_file;
		INSERT INTO invoices (order_id, file_id, number)
		VALUES (p_order, v_file, v_number);
	END IF;
	IF o.status = 'paid' THEN
		PERFORM order_transition(p_order, 'completed', v_number, NULL);
		RETURN 'completed';
	END IF;
	RETURN o.status;
END
$function$;

-- From 0008.
-- What the worker needs to render an order's invoice.  wanted: the order
-- was paid (it is paid, or went on to completed, shipped or delivered, as
-- an admin may move it by hand) and has no invoice yet.
CREATE OR REPLACE FUNCTION invoice_source(p_order bigint)
 RETURNS TABLE(status text, doc json, customer_name text, customer_email text, paid_on text, number text, wanted boolean)
 LANGUAGE sql
 STABLE
AS $function$
	SELECT o.status, order_doc(o.id), u.name, u.email,
		coalesce((SELECT to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD')
			FROM order_events e WHERE e.order_id = o.id
			AND e.status = 'paid' ORDER BY e.seq DESC LIMIT 1),
			to_char(o.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')),
		invoice_number(o.id),
		o.status IN ('paid', 'completed', 'shipped', 'delivered')
			AND NOT EXISTS (SELECT 1 FROM invoices i
				WHERE i.order_id = o.id)
	FROM orders o JOIN users u ON u.id = o.user_id
	WHERE o.id = p_order
$function$;

-- From 0008.
-- Record one attempt to send notification p_id.  p_final: the attempt
-- failed and no other will follow.
CREATE OR REPLACE FUNCTION notification_attempt(p_id bigint, p_ok boolean, p_error text, p_final boolean)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
DECLARE
	v_attempt integer;
BEGIN
	UPDATE notifications SET attempts = attempts + 1,
		status = CASE WHEN p_ok THEN 'sent'
			WHEN p_final THEN 'failed' ELSE status END,
		sent_at = CASE WHEN p_ok THEN now() END,
		last_error = CASE WHEN p_ok THEN NULL ELSE p_error END
	WHERE id = p_id AND status = 'pending'
	RETURNING attempts INTO v_attempt;
	IF FOUND THEN
		INSERT INTO notification_attempts (notification_id, attempt,
			ok, error)
		VALUES (p_id, v_attempt, p_ok, p_error);
	END IF;
END
$function$;

-- From 0008.
CREATE OR REPLACE FUNCTION notification_doc(n notifications)
 RETURNS json
 LANGUAGE sql
 STABLE
AS $function$
	SELECT json_build_object('id', n.id::text, 'order_id', n.order_id::text,
		'channel', n.channel, 'template', n.template,
		'subject', n.subject, 'status', n.status,
		'attempts', n.attempts, 'created_at', agora_time(n.created_at),
		'sent_at', agora_time(n.sent_at))
$function$;

-- From 0008 (this body: 0024).
-- 0008's fan-out; a phone that is not E.164 (an order from before 0013)
-- is skipped like a missing one, and so are email and SMS to an account
-- whose email is not verified, unless p_unverified (notify_unverified).
CREATE OR REPLACE FUNCTION notification_fanout(p_order bigint, p_template text, p_channels text[], p_unverified boolean)
 RETURNS integer
 LANGUAGE plpgsql
AS $function$
DECLARE
	v_n integer;
BEGIN
	WITH o AS (SELECT o.id, o.user_id, u.email,
			CASE WHEN o.shipping_address->>'phone' ~ '^\+[1-9][0-9]{6,14}$'
			THEN o.shipping_address->>'phone' END AS phone,
			u.email_verified_at IS NOT NULL OR p_unverified AS may
		FROM orders o JOIN users u ON u.id = o.user_id
		WHERE o.id = p_order),
	ins AS (INSERT INTO notifications (user_id, order_id, template,
			channel, recipient, subject, status, last_error)
		SELECT o.user_id, o.id, p_template, c,
			CASE c WHEN 'sms' THEN o.phone ELSE o.email END,
			notification_subject(p_template, o.id),
			CASE WHEN c = 'sms' AND o.phone IS NULL THEN 'skipped'
				WHEN c <> 'log' AND NOT o.may THEN 'skipped'
				ELSE 'pending' END,
			CASE WHEN c <> 'log' AND NOT o.may
				THEN 'the account''s email is not verified' END
		FROM o, unnest(p_channels) AS c
		ON CONFLICT (order_id, template, channel) DO NOTHING
		RETURNING id, status)
	-- outbox_add() returns void (NULL): count its calls, not its values.
	SELECT count(outbox_add('notify.send', 'notification:' || id,
			jsonb_build_object('notification_id', id::text)) IS NULL)
		INTO v_n FROM ins WHERE status = 'pending';
	RETURN v_n;
END
$function$;

-- 0024 gave the fan-out its policy argument: the earlier overload goes,
-- from this release's schema only.
DO $$ BEGIN EXECUTE format('DROP FUNCTION IF EXISTS %I.notification_fanout(bigint, text, text[])', current_schema()); END $$;

-- From 0008.
-- What the worker needs to send notification p_id: the row, the order
-- as the API shows it, and the customer's name.  No row when it was sent
-- already.
CREATE OR REPLACE FUNCTION notification_source(p_id bigint)
 RETURNS TABLE(channel text, recipient text, subject text, template text, attempts integer, doc json, customer_name text)
 LANGUAGE sql
 STABLE
AS $function$
	SELECT n.channel, n.recipient, n.subject, n.template, n.attempts,
		order_doc(n.order_id), u.name
	FROM notifications n JOIN users u ON u.id = n.user_id
	WHERE n.id = p_id AND n.status = 'pending'
$function$;

-- From 0008.
-- The subject line of each template; the worker writes the bodies.
CREATE OR REPLACE FUNCTION notification_subject(p_template text, p_order bigint)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
AS $function$
	SELECT CASE p_template
		WHEN 'order_received' THEN 'Order ' || p_order || ' received — thank you'
		WHEN 'payment_succeeded' THEN 'Order ' || p_order || ' is paid — your invoice'
		WHEN 'payment_failed' THEN 'Order ' || p_order || ': the payment failed'
		WHEN 'order_cancelled' THEN 'Order ' || p_order || ' is cancelled'
		WHEN 'order_shipped' THEN 'Order ' || p_order || ' is on its way'
	END
$function$;
