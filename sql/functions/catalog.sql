-- catalog.sql: the search query, and a product's stored document with
-- its stock (the document itself and the category tree's check are
-- tables.sql's).
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

-- From 0009 (this body: 0010).
-- The document a client reads: the stored one with its stock appended
-- (NULL, no inventory row, counts as 0).  A single immutable expression,
-- so that the planner inlines it.
CREATE OR REPLACE FUNCTION product_doc(doc text, stock bigint)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
AS $function$
	SELECT left(doc, -1) || ', "stock_available" : ' ||
		COALESCE(stock, 0)::text || '}'
$function$;
