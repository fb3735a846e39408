-- 0006: reviews, one per buyer and product.
--
-- Only a buyer may review: a user with a completed, shipped or delivered
-- order holding the product.  rating_avg and rating_count on products are
-- recounted in the transaction that adds or removes a review, under the
-- product's row lock, so concurrent reviews cannot lose a count.  The lock
-- is FOR NO KEY UPDATE: it does not block orders, whose foreign keys only
-- take KEY SHARE locks on the product.
CREATE TABLE reviews (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	product_id bigint NOT NULL REFERENCES products,
	user_id bigint NOT NULL REFERENCES users ON DELETE CASCADE,
	rating smallint NOT NULL CHECK (rating BETWEEN 1 AND 5),
	title text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
	body text NOT NULL DEFAULT '' CHECK (length(body) <= 5000),
	created_at timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT reviews_one_per_user UNIQUE (product_id, user_id)
);
CREATE INDEX reviews_product ON reviews (product_id, id DESC);

CREATE FUNCTION review_doc(r reviews) RETURNS json
LANGUAGE sql STABLE AS $$
	SELECT json_build_object('id', r.id::text,
		'product_id', r.product_id::text, 'user_id', r.user_id::text,
		'rating', r.rating, 'title', r.title, 'body', r.body,
		'created_at', agora_time(r.created_at))
$$;

CREATE FUNCTION review_recount(p_product bigint) RETURNS void
LANGUAGE sql AS $$
	UPDATE products SET (rating_avg, rating_count) = (
		SELECT COALESCE(round(avg(rating), 2), 0), count(*)
		FROM reviews WHERE product_id = p_product)
	WHERE id = p_product
$$;

-- Returns {"review": {...}} or {"error": not_found | not_a_buyer |
-- already_reviewed}.
CREATE FUNCTION review_add(p_product bigint, p_user bigint, p_rating integer,
	p_title text, p_body text)
RETURNS json LANGUAGE plpgsql AS $$
DECLARE
	v reviews;
BEGIN
	PERFORM 1 FROM products WHERE id = p_product AND archived_at IS NULL
		FOR NO KEY UPDATE;
	IF NOT FOUND THEN
		RETURN json_build_object('error', 'not_found');
	END IF;
	IF NOT EXISTS (SELECT 1 FROM order_items i
		JOIN orders o ON o.id = i.order_id
		WHERE i.product_id = p_product AND o.user_id = p_user
		AND o.status IN ('completed', 'shipped', 'delivered')) THEN
		RETURN json_build_object('error', 'not_a_buyer');
	END IF;
	INSERT INTO reviews (product_id, user_id, rating, title, body)
	VALUES (p_product, p_user, p_rating, p_title, COALESCE(p_body, ''))
	ON CONFLICT (product_id, user_id) DO NOTHING
	RETURNING * INTO v;
	IF NOT FOUND THEN
		RETURN json_build_object('error', 'already_reviewed');
	END IF;
	PERFORM review_recount(p_product);
	RETURN json_build_object('review', review_doc(v));
END
$$;

-- Remove a review of p_user's (any, for an admin); returns its product,
-- or NULL when there is no such review the caller may remove.
CREATE FUNCTION review_delete(p_review bigint, p_user bigint, p_admin boolean)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	v_product bigint;
BEGIN
	SELECT product_id INTO v_product FROM reviews
	WHERE id = p_review AND (p_admin OR user_id = p_user);
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;
	PERFORM 1 FROM products WHERE id = v_product FOR NO KEY UPDATE;
	DELETE FROM reviews WHERE id = p_review;
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;
	PERFORM review_recount(v_product);
	RETURN v_product;
END
$$;
