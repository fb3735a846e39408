-- 0004: the catalog: categories, products, inventory and reservations.
--
-- Products are searched with a weighted tsvector (name above description)
-- under a GIN index; the last word of a query also matches as a prefix, so
-- that partial words find results ("lapt" finds "laptop").  attributes is free-form JSONB, filtered by
-- containment under a jsonb_path_ops index.  DELETE archives: orders keep
-- pointing at an archived product.  Stock lives in inventory, where CHECK
-- constraints keep 0 <= reserved <= on_hand whatever the code does;
-- reservations make manual reserve and release idempotent per (order,
-- product).
CREATE TABLE categories (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
	slug text NOT NULL CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'
		AND length(slug) <= 100),
	parent_id bigint REFERENCES categories,
	created_at timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT categories_slug_key UNIQUE (slug)
);
CREATE INDEX categories_parent ON categories (parent_id);

CREATE TABLE products (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	sku text NOT NULL CHECK (length(sku) BETWEEN 1 AND 64),
	name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
	description text NOT NULL DEFAULT ''
		CHECK (length(description) <= 10000),
	price_cents bigint NOT NULL CHECK (price_cents >= 0),
	currency text NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
	category_id bigint REFERENCES categories,
	attributes jsonb NOT NULL DEFAULT '{}'
		CHECK (jsonb_typeof(attributes) = 'object'),
	rating_avg numeric(3, 2) NOT NULL DEFAULT 0,
	rating_count integer NOT NULL DEFAULT 0,
	archived_at timestamptz,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	search tsvector GENERATED ALWAYS AS (
		setweight(to_tsvector('english', name), 'A') ||
		setweight(to_tsvector('english', description), 'B')) STORED,
	CONSTRAINT products_sku_key UNIQUE (sku)
);
CREATE INDEX products_search ON products USING gin (search);
CREATE INDEX products_attributes ON products USING gin (attributes jsonb_path_ops);
CREATE INDEX products_category ON products (category_id);
CREATE INDEX products_newest ON products (created_at DESC, id DESC)
	WHERE archived_at IS NULL;
CREATE INDEX products_price ON products (price_cents, id)
	WHERE archived_at IS NULL;
CREATE INDEX products_rating ON products (rating_avg DESC, id DESC)
	WHERE archived_at IS NULL;

CREATE TABLE inventory (
	product_id bigint PRIMARY KEY REFERENCES products,
	on_hand integer NOT NULL DEFAULT 0 CHECK (on_hand >= 0),
	reserved integer NOT NULL DEFAULT 0 CHECK (reserved >= 0),
	updated_at timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT inventory_reserved_le_on_hand CHECK (reserved <= on_hand)
);

CREATE TABLE reservations (
	order_id text NOT NULL CHECK (length(order_id) BETWEEN 1 AND 64),
	product_id bigint NOT NULL REFERENCES products,
	quantity integer NOT NULL CHECK (quantity > 0),
	created_at timestamptz NOT NULL DEFAULT now(),
	released_at timestamptz,
	PRIMARY KEY (order_id, product_id)
);

-- A product as the API shows it, built where the data is, so that one
-- round trip gives the JSON and the cache stores it as it is.
CREATE FUNCTION product_doc(p products) RETURNS json
LANGUAGE sql STABLE AS $$
	SELECT json_build_object(
		'id', p.id::text, 'sku', p.sku, 'name', p.name,
		'description', p.description, 'price_cents', p.price_cents,
		'currency', p.currency, 'category_id', p.category_id::text,
		'attributes', p.attributes,
		'stock_available', COALESCE((SELECT i.on_hand - i.reserved
			FROM inventory i WHERE i.product_id = p.id), 0),
		'rating_avg', p.rating_avg, 'rating_count', p.rating_count,
		'created_at', agora_time(p.created_at),
		'updated_at', agora_time(p.updated_at))
$$;

-- The search of q: its words as websearch_to_tsquery reads them, or the
-- words before the last (rest) with the last one (prefix, letters and
-- digits the program extracted) taken as a prefix.
CREATE FUNCTION catalog_query(q text, rest text, prefix text) RETURNS tsquery
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN prefix IS NULL
		THEN websearch_to_tsquery('english', q)
		ELSE websearch_to_tsquery('english', q) ||
			(websearch_to_tsquery('english', rest) &&
			 to_tsquery('simple', prefix || ':*'))
	END
$$;
