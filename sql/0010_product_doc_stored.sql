-- 0010: a product's document is built when the product is written, not on
-- every read.
--
-- A read of one product not in the cache ran json_build_object, two
-- to_char calls and the output of a jsonb and a numeric each time.
-- Products are read far more often than they are written, so the
-- document, less its stock, is now kept in products.doc by a trigger, and
-- a read only appends the stock, which changes with every order and so
-- stays in inventory.  pgbench (prepared, four clients, alternating in the
-- same minutes): 27,000-31,000 reads a second before, 32,000-41,000 after.
--
-- The UPDATE below rewrites the table once, holding the lock of the ADD
-- COLUMN: reads of products wait for it (a few seconds for 100,000).
--
-- The trigger runs for every insert and update, whoever makes it (the
-- programs, review_add's rating update, agoractl seed's COPY, an admin's
-- psql), so the stored document cannot fall behind the row.

-- The document of p without its stock: a JSON object, as text.
CREATE FUNCTION product_body(p products) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT json_build_object(
		'id', p.id::text, 'sku', p.sku, 'name', p.name,
		'description', p.description, 'price_cents', p.price_cents,
		'currency', p.currency, 'category_id', p.category_id::text,
		'attributes', p.attributes,
		'rating_avg', p.rating_avg, 'rating_count', p.rating_count,
		'created_at', agora_time(p.created_at),
		'updated_at', agora_time(p.updated_at))::text
$$;

ALTER TABLE products ADD COLUMN doc text;

-- The identity and the defaults are already in NEW here; the generated
-- search column, which the document does not use, comes after.
CREATE FUNCTION products_doc() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	NEW.doc := product_body(NEW);
	RETURN NEW;
END
$$;

CREATE TRIGGER products_doc BEFORE INSERT OR UPDATE ON products
	FOR EACH ROW EXECUTE FUNCTION products_doc();

-- The trigger fills doc for the rows already there.
UPDATE products SET doc = NULL;
ALTER TABLE products ALTER COLUMN doc SET NOT NULL;

-- The document a client reads: the stored one with its stock appended
-- (NULL, no inventory row, counts as 0).  A single immutable expression,
-- so that the planner inlines it.  product_doc(products, bigint) of 0009
-- stays for the programs of the previous release, which may still serve
-- while an upgrade is rolled out; a later migration drops it.
CREATE FUNCTION product_doc(doc text, stock bigint) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT left(doc, -1) || ', "stock_available" : ' ||
		COALESCE(stock, 0)::text || '}'
$$;
