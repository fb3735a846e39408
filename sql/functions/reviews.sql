-- reviews.sql: adding and deleting one, and the product's
-- rating.
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

-- From 0006.
-- Returns {"review": {...}} or {"error": not_found | not_a_buyer |
-- already_reviewed}.
CREATE OR REPLACE FUNCTION review_add(p_product bigint, p_user bigint, p_rating integer, p_title text, p_body text)
 RETURNS json
 LANGUAGE plpgsql
AS $function$
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
$function$;

-- From 0006.
-- Remove a review of p_user's (any, for an admin); returns its product,
-- or NULL when there is no such review the caller may remove.
CREATE OR REPLACE FUNCTION review_delete(p_review bigint, p_user bigint, p_admin boolean)
 RETURNS bigint
 LANGUAGE plpgsql
AS $function$
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
$function$;

-- From 0006.
CREATE OR REPLACE FUNCTION review_doc(r reviews)
 RETURNS json
 LANGUAGE sql
 STABLE
AS $function$
	SELECT json_build_object('id', r.id::text,
		'product_id', r.product_id::text, 'user_id', r.user_id::text,
		'rating', r.rating, 'title', r.title, 'body', r.body,
		'created_at', agora_time(r.created_at))
$function$;

-- From 0006.
CREATE OR REPLACE FUNCTION review_recount(p_product bigint)
 RETURNS void
 LANGUAGE sql
AS $function$
	UPDATE products SET (rating_avg, rating_count) = (
		SELECT COALESCE(round(avg(rating), 2), 0), count(*)
		FROM reviews WHERE product_id = p_product)
	WHERE id = p_product
$function$;
