-- 0008: stored files, invoices and notifications.
--
-- A file's bytes live in the storage (a local directory or an S3 bucket);
-- its row says where, with the size and SHA-256 the bytes had when they
-- were stored.  An invoice is a file of its order, at most one per order:
-- the worker renders it when the order is paid and records it in the same
-- transaction that moves the order to completed.
--
-- What happens after an order event is queued by a trigger on
-- order_events, so that every path that moves an order (the programs, the
-- worker, the webhook, expiry) queues the same follow-up work in its own
-- transaction: paid queues invoice.create; completed, payment_failed,
-- cancelled and shipped queue a notify.order row, which the worker fans
-- out to one notification and one notify.send row per channel.  Each
-- channel is thus retried on its own, and one failing never holds up or
-- repeats another.

CREATE TABLE files (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	user_id bigint NOT NULL REFERENCES users,
	filename text NOT NULL CHECK (length(filename) BETWEEN 1 AND 255),
	content_type text NOT NULL
		CHECK (length(content_type) BETWEEN 3 AND 255),
	size bigint NOT NULL CHECK (size >= 0),
	sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
	storage text NOT NULL CHECK (storage IN ('local', 's3')),
	storage_key text NOT NULL CHECK (storage_key ~ '^[a-z0-9][a-z0-9/._-]*$'
		AND storage_key NOT LIKE '%..%'),
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX files_user ON files (user_id, id DESC);

CREATE FUNCTION file_doc(f files) RETURNS json
LANGUAGE sql STABLE AS $$
	SELECT json_build_object('id', f.id::text, 'filename', f.filename,
		'content_type', f.content_type, 'size', f.size,
		'sha256', f.sha256, 'created_at', agora_time(f.created_at))
$$;

CREATE TABLE invoices (
	order_id bigint PRIMARY KEY REFERENCES orders,
	file_id bigint NOT NULL UNIQUE REFERENCES files,
	number text NOT NULL UNIQUE,
	created_at timestamptz NOT NULL DEFAULT now()
);
REVOKE UPDATE, DELETE ON invoices FROM agora_app;

CREATE TABLE notifications (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	user_id bigint NOT NULL REFERENCES users,
	order_id bigint NOT NULL REFERENCES orders,
	template text NOT NULL CHECK (template IN ('order_received',
		'payment_succeeded', 'payment_failed', 'order_cancelled',
		'order_shipped')),
	channel text NOT NULL CHECK (channel IN ('log', 'email', 'sms')),
	recipient text,
	subject text NOT NULL,
	-- pending until sent; failed when its outbox row gave up; skipped
	-- when the channel has no address for the customer (no phone).
	status text NOT NULL DEFAULT 'pending'
		CHECK (status IN ('pending', 'sent', 'failed', 'skipped')),
	attempts integer NOT NULL DEFAULT 0,
	last_error text,
	created_at timestamptz NOT NULL DEFAULT now(),
	sent_at timestamptz,
	-- Once per event and channel, however often the fan-out runs.
	UNIQUE (order_id, template, channel)
);
CREATE INDEX notifications_user ON notifications (user_id, id DESC);

-- Every attempt to send, whatever came of it.
CREATE TABLE notification_attempts (
	notification_id bigint NOT NULL REFERENCES notifications,
	attempt integer NOT NULL,
	at timestamptz NOT NULL DEFAULT now(),
	ok boolean NOT NULL,
	error text,
	PRIMARY KEY (notification_id, attempt)
);
REVOKE UPDATE, DELETE ON notification_attempts FROM agora_app;

CREATE FUNCTION notification_doc(n notifications) RETURNS json
LANGUAGE sql STABLE AS $$
	SELECT json_build_object('id', n.id::text, 'order_id', n.order_id::text,
		'channel', n.channel, 'template', n.template,
		'subject', n.subject, 'status', n.status,
		'attempts', n.attempts, 'created_at', agora_time(n.created_at),
		'sent_at', agora_time(n.sent_at))
$$;

-- The subject line of each template; the worker writes the bodies.
CREATE FUNCTION notification_subject(p_template text, p_order bigint)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE p_template
		WHEN 'order_received' THEN 'Order ' || p_order || ' received — thank you'
		WHEN 'payment_succeeded' THEN 'Order ' || p_order || ' is paid — your invoice'
		WHEN 'payment_failed' THEN 'Order ' || p_order || ': the payment failed'
		WHEN 'order_cancelled' THEN 'Order ' || p_order || ' is cancelled'
		WHEN 'order_shipped' THEN 'Order ' || p_order || ' is on its way'
	END
$$;

CREATE FUNCTION order_events_follow() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	v_template text;
BEGIN
	IF NEW.status = 'paid' THEN
		PERFORM outbox_add('invoice.create', 'order:' || NEW.order_id,
			jsonb_build_object('order_id', NEW.order_id::text));
	END IF;
	v_template := CASE NEW.status
		WHEN 'completed' THEN 'payment_succeeded'
		WHEN 'payment_failed' THEN 'payment_failed'
		WHEN 'cancelled' THEN 'order_cancelled'
		WHEN 'shipped' THEN 'order_shipped' END;
	IF v_template IS NOT NULL THEN
		PERFORM outbox_add('notify.order', 'order:' || NEW.order_id,
			jsonb_build_object('order_id', NEW.order_id::text,
				'template', v_template));
	END IF;
	RETURN NULL;
END
$$;
CREATE TRIGGER order_events_follow AFTER INSERT ON order_events
	FOR EACH ROW EXECUTE FUNCTION order_events_follow();

-- One notification per channel for an order event, each with its
-- notify.send row; those that exist already are left alone.  Returns how
-- many were queued.
CREATE FUNCTION notification_fanout(p_order bigint, p_template text,
	p_channels text[])
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
	v_n integer;
BEGIN
	WITH o AS (SELECT o.id, o.user_id, u.email,
			nullif(o.shipping_address->>'phone', '') AS phone
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

-- What the worker needs to send notification p_id: the row, the order
-- as the API shows it, and the customer's name.  No row when it was sent
-- already.
CREATE FUNCTION notification_source(p_id bigint)
RETURNS TABLE (channel text, recipient text, subject text, template text,
	attempts integer, doc json, customer_name text)
LANGUAGE sql STABLE AS $$
	SELECT n.channel, n.recipient, n.subject, n.template, n.attempts,
		order_doc(n.order_id), u.name
	FROM notifications n JOIN users u ON u.id = n.user_id
	WHERE n.id = p_id AND n.status = 'pending'
$$;

-- Record one attempt to send notification p_id.  p_final: the attempt
-- failed and no other will follow.
CREATE FUNCTION notification_attempt(p_id bigint, p_ok boolean,
	p_error text, p_final boolean)
RETURNS void LANGUAGE plpgsql AS $$
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
$$;

-- An invoice's number: INV- and the order id, at least 8 digits.
CREATE FUNCTION invoice_number(p_order bigint) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT 'INV-' || CASE WHEN p_order < 100000000
		THEN lpad(p_order::text, 8, '0') ELSE p_order::text END
$$;

-- What the worker needs to render an order's invoice.  wanted: the order
-- was paid (it is paid, or went on to completed, shipped or delivered, as
-- an admin may move it by hand) and has no invoice yet.
CREATE FUNCTION invoice_source(p_order bigint)
RETURNS TABLE (status text, doc json, customer_name text,
	customer_email text, paid_on text, number text, wanted boolean)
LANGUAGE sql STABLE AS $$
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
$$;

-- Record the stored invoice of a paid order and complete the order, in
-- one transaction.  An order an admin moved on by hand gets its invoice
-- and keeps its status.  Returns the order's status afterwards, or the
-- status that kept it from having an invoice (cancelled meanwhile).
CREATE FUNCTION invoice_record(p_order bigint, p_storage text, p_key text,
	p_size bigint, p_sha256 text)
RETURNS text LANGUAGE plpgsql AS $$
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
$$;

-- Work that was waiting for this migration.  order.created rows had no
-- handler before: they would announce old orders as just received, so
-- they go.  Orders paid (or moved on) before now get their invoices.
DELETE FROM outbox WHERE topic = 'order.created';
SELECT outbox_add('invoice.create', 'order:' || id,
	jsonb_build_object('order_id', id::text))
FROM orders WHERE status IN ('paid', 'completed', 'shipped', 'delivered');
