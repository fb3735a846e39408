-- 0012: a category may not be its own ancestor.
--
-- POST /categories took a parent_id equal to the id the new row was about
-- to get (ids are predictable), and an UPDATE in psql could close a loop
-- of any length; a search by such a category then recursed for ever,
-- holding a program and a PostgreSQL backend.  This trigger walks up from
-- the new parent and refuses a row that would find itself, or a tree
-- deeper than 64 levels (the search's recursion stops there too), as a
-- check_violation naming the constraint, which the programs answer as 422.
-- Moves of existing categories are serialised by a table lock, so that two
-- moves at once cannot close a loop that neither sees; categories change
-- rarely, and inserts (which cannot close a loop but with themselves) do
-- not take it.

DO $$
DECLARE
	c record;
	p bigint;
	depth int;
BEGIN
	FOR c IN SELECT id, parent_id FROM categories LOOP
		p := c.parent_id;
		depth := 0;
		WHILE p IS NOT NULL LOOP
			depth := depth + 1;
			IF p = c.id OR depth > 64 THEN
				RAISE EXCEPTION 'category % is its own ancestor or '
					'lies deeper than 64 levels: set its parent_id '
					'before migrating', c.id;
			END IF;
			SELECT parent_id INTO p FROM categories WHERE id = p;
		END LOOP;
	END LOOP;
END $$;

CREATE FUNCTION categories_acyclic() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	p bigint := NEW.parent_id;
	depth int := 1;
BEGIN
	IF TG_OP = 'UPDATE' THEN
		LOCK TABLE categories IN SHARE ROW EXCLUSIVE MODE;
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

CREATE TRIGGER categories_acyclic
	BEFORE INSERT OR UPDATE OF parent_id ON categories
	FOR EACH ROW EXECUTE FUNCTION categories_acyclic();
