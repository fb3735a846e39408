-- catalog.sql: the search query, the products' stored documents
-- with their stock, and the check that keeps the category tree a tree.
--
-- Each function's current body, in one place.  agoractl migrate applies
-- this file after the numbered migrations whenever it changed since it
-- was last applied (schema_functions records its checksum), all of it in
-- one transaction; change a function here, not in a new migration.
-- CREATE OR REPLACE keeps a function's grants and cannot change its
-- arguments or result type: a new signature is a new function (or
-- overload), and the old one goes in a migration once no program still
-- running calls it (sql/0017).  "From 0005 (this body: 0013)" above a
-- function: where it was created, and which migration last replaced it.

-- From 0004.
-- The search of q: its words as websearch_to_tsquery reads them, or the
-- words before the last (rest) with the last one (prefix, letters and
-- digits the program extracted) taken as a prefix.
CREATE OR REPLACE FUNCTION catalog_query(q text, rest text, prefix text)
 RETURNS tsquery
 LANGUAGE sql
 IMMUTABLE
AS $function$
	SELECT CASE WHEN prefix IS NULL
		THEN websearch_to_tsquery('english', q)
		ELSE websearch_to_tsquery('english', q) ||
			(websearch_to_tsquery('english', rest) &&
			 to_tsquery('simple', prefix || ':*'))
	END
$function$;

-- From 0012 (this body: 0016).
CREATE OR REPLACE FUNCTION categories_acyclic()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
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
END $function$;

-- From 0010.
-- The document of p without its stock: a JSON object, as text.
CREATE OR REPLACE FUNCTION product_body(p products)
 RETURNS text
 LANGUAGE sql
 STABLE
AS $function$
	SELECT json_build_object(
		'id', p.id::text, 'sku', p.sku, 'name', p.name,
		'description', p.description, 'price_cents', p.price_cents,
		'currency', p.currency, 'category_id', p.category_id::text,
		'attributes', p.attributes,
		'rating_avg', p.rating_avg, 'rating_count', p.rating_count,
		'created_at', agora_time(p.created_at),
		'updated_at', agora_time(p.updated_at))::text
$function$;

-- From 0009 (this body: 0010).
-- The document a client reads: the stored one with its stock appended
-- (NULL, no inventory row, counts as 0).  A single immutable expression,
-- so that the planner inlines it.  product_doc(products, bigint) of 0009
-- stays for the programs of the previous release, which may still serve
-- while an upgrade is rolled out; a later migration drops it.
CREATE OR REPLACE FUNCTION product_doc(doc text, stock bigint)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
AS $function$
	SELECT left(doc, -1) || ', "stock_available" : ' ||
		COALESCE(stock, 0)::text || '}'
$function$;

-- From 0010.
-- The identity and the defaults are already in NEW here; the generated
-- search column, which the document does not use, comes after.
CREATE OR REPLACE FUNCTION products_doc()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
	NEW.doc := product_body(NEW);
	RETURN NEW;
END
$function$;
