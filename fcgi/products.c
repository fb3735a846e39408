/*
 * products.c: /api/v1/products: search, browse, read, and admin writes.
 *
 * A product's JSON is kept by PostgreSQL (products.doc, filled by a
 * trigger; product_doc() appends the stock) and cached in
 * memcached as is, under a per-product version key; lists are cached under
 * a catalog-wide version key.  Writers bump the versions after they
 * commit, so the next read on any process or host sees the write.  The
 * search (catalog_query(): the words, and the last one as a prefix) is
 * one statement per sort order (the ORDER BY cannot be a parameter);
 * every filter is a parameter that may be NULL, and each search is planned
 * with its actual values (AGORA_STMT_CUSTOM_PLAN) so that the indexes are used
 * and the unused filters vanish.  Reading one product keeps its prepared,
 * generic plan: planning it each time cost three quarters of the read.  The
 * in-stock filter is a scalar subquery, so that it costs one index probe per
 * candidate row when asked for, and nothing otherwise (an EXISTS under OR
 * became a scan of all inventory).  A category arrives as the array of it
 * and its descendants (category_tree, run first), so that the planner sees
 * how many products it holds: a subquery there looked like half the
 * catalog, and the newest-first walk of an empty category read all of it.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "shop.h"
#include "reviews.h"

#define Q_MAX 200
#define ATTR_MAX 8
/* A list page lives 20 to 30 s in memcached (agora_cache_vset adds up to
 * half): a change of stock alone leaves it to expire, so that the stock a
 * list shows is at most 30 s old (agora_stock_bump, shop.h). */
#define LIST_TTL 20
#define ITEM_TTL 60

/*
 * The filters of the products p a search may return, after the cursor
 * ($7, $8) of a sort by KEY (OP: "<" going down, ">" up); $9 is the
 * limit, $2 the array of a category and its descendants.
 */
#define MATCHES(KEY, TYPE, OP)                                                 \
	" FROM products p WHERE p.archived_at IS NULL"                         \
	" AND ($1::text IS NULL OR p.search @@ catalog_query($1, $11, $10))"   \
	" AND ($2::bigint[] IS NULL OR p.category_id = ANY ($2::bigint[]))"    \
	" AND ($3::bigint IS NULL OR p.price_cents >= $3)"                     \
	" AND ($4::bigint IS NULL OR p.price_cents <= $4)"                     \
	" AND ($6::jsonb IS NULL OR p.attributes @> $6)"                       \
	" AND ($7::text IS NULL OR (" KEY ", p.id) " OP " ($7::" TYPE          \
	", $8::bigint))"

/* The in-stock filter ($5) of the product T. */
#define IN_STOCK(T)                                                            \
	" (NOT $5::bool OR (SELECT i.on_hand > i.reserved FROM inventory i "   \
	"WHERE i.product_id = " T ".id))"

/*
 * The document D of the product ID with its stock, which the planner
 * computes only for the rows a search returns (after its sort and limit).
 */
#define DOC(D, ID)                                                             \
	"product_doc(" D ", (SELECT i.on_hand - i.reserved FROM "              \
	"inventory i WHERE i.product_id = " ID "))"

#define RANK "ts_rank(p.search, catalog_query($1, $11, $10))::float8"

/*
 * One search by an indexed key: the key's text (for the cursor), the id,
 * the doc.  The planner may walk the key's index and test each product,
 * stock included, until it has the page.
 */
#define SEARCH(KEY, TYPE, OP, ORDER)                                           \
	"SELECT (" KEY ")::text, p.id::text, " DOC("p.doc", "p.id") MATCHES(   \
	    KEY, TYPE, OP) " AND" IN_STOCK("p") " ORDER BY " ORDER " LIMIT $9"

/*
 * The search by relevance, which no index gives in order: every match is
 * ranked (once) and sorted, and only then is the stock of each, best
 * first, looked up until the page is full, rather than before the sort
 * for all of them ("tent", 4,221 matches: 22 ms, then 11).  OFFSET 0 keeps
 * the planner from moving the stock test below the sort; when no stock
 * test is asked for, the limit still reaches the sort, which then keeps
 * only the page's rows.  The documents are read for the page alone, so that
 * the sort holds keys and ids, not every match's document.
 */
#define RANKED                                                                 \
	"SELECT " RANK " AS k, p.id" MATCHES(                                  \
	    RANK, "float8", "<") " ORDER BY k DESC, p.id DESC OFFSET 0"
#define SEARCH_RANKED                                                          \
	"SELECT s.k::text, s.id::text, " DOC(                                  \
	    "(SELECT d.doc FROM products d WHERE d.id = s.id)",                \
	    "s.id") " FROM (" RANKED ") s"                                     \
	            " WHERE" IN_STOCK(                                         \
	                "s") " ORDER BY s.k DESC, s.id DESC LIMIT $9"

enum sort { S_NEWEST, S_PRICE, S_PRICE_DESC, S_RATING, S_RELEVANCE, S__MAX };

/* NULL-terminated: the choices of the query parameter sort. */
static const char *const sort_names[S__MAX + 1] = { "newest", "price", "-price",
	"rating", "relevance", NULL };

static const char *const sort_stmts[S__MAX] = { "search_newest", "search_price",
	"search_price_desc", "search_rating", "search_relevance" };

static const struct agora_stmt stmts[] = {
	REVIEW_STMTS,
	{ "search_newest",
	    SEARCH("p.created_at", "timestamptz", "<",
	        "p.created_at DESC, p.id DESC"),
	    AGORA_STMT_READ | AGORA_STMT_CUSTOM_PLAN |
	        AGORA_STMT_REPLICA_ANON },
	{ "search_price",
	    SEARCH("p.price_cents", "bigint", ">", "p.price_cents, p.id"),
	    AGORA_STMT_READ | AGORA_STMT_CUSTOM_PLAN |
	        AGORA_STMT_REPLICA_ANON },
	{ "search_price_desc",
	    SEARCH("p.price_cents", "bigint", "<",
	        "p.price_cents DESC, p.id DESC"),
	    AGORA_STMT_READ | AGORA_STMT_CUSTOM_PLAN |
	        AGORA_STMT_REPLICA_ANON },
	{ "search_rating",
	    SEARCH(
	        "p.rating_avg", "numeric", "<", "p.rating_avg DESC, p.id DESC"),
	    AGORA_STMT_READ | AGORA_STMT_CUSTOM_PLAN |
	        AGORA_STMT_REPLICA_ANON },
	{ "search_relevance", SEARCH_RANKED,
	    AGORA_STMT_READ | AGORA_STMT_CUSTOM_PLAN |
	        AGORA_STMT_REPLICA_ANON },
	/* A category and its descendants, down to 64 levels, the depth
	 * sql/0012 allows, so that a loop made behind the trigger's back
	 * still ends; no row when there is no such category. */
	{ "category_tree",
	    "WITH RECURSIVE sub(id, depth) AS (SELECT id, 1 FROM categories "
	    "WHERE id = $1::bigint UNION ALL SELECT c.id, sub.depth + 1 FROM "
	    "categories c JOIN sub ON c.parent_id = sub.id WHERE "
	    "sub.depth < 64) SELECT array_agg(id)::text FROM sub "
	    "HAVING count(*) > 0",
	    AGORA_STMT_READ | AGORA_STMT_REPLICA_ANON },
	/* One row: a join reads the stock more cheaply than DOC's
	 * sub-select (pgbench: 6% more reads a second). */
	{ "product_get",
	    "SELECT product_doc(p.doc, i.on_hand - i.reserved) "
	    "FROM products p LEFT JOIN inventory i ON i.product_id = p.id "
	    "WHERE p.id = $1::bigint AND p.archived_at IS NULL",
	    AGORA_STMT_READ | AGORA_STMT_REPLICA_ANON },
	{ "product_insert",
	    "INSERT INTO products (sku, name, description, price_cents, "
	    "currency, category_id, attributes) VALUES ($1, $2, "
	    "COALESCE($3, ''), $4::bigint, COALESCE($5, 'USD'), $6::bigint, "
	    "COALESCE($7::jsonb, '{}')) RETURNING id::text" },
	{ "inventory_insert",
	    "INSERT INTO inventory (product_id, on_hand) "
	    "VALUES ($1::bigint, COALESCE($2::int, 0))" },
	{ "product_update",
	    "UPDATE products SET sku = COALESCE($2, sku), "
	    "name = COALESCE($3, name), "
	    "description = COALESCE($4, description), "
	    "price_cents = COALESCE($5::bigint, price_cents), "
	    "currency = COALESCE($6, currency), "
	    "category_id = COALESCE($7::bigint, category_id), "
	    "attributes = COALESCE($8::jsonb, attributes), updated_at = now() "
	    "WHERE id = $1::bigint AND archived_at IS NULL RETURNING "
	    "id::text" },
	{ "product_archive",
	    "UPDATE products SET archived_at = now(), updated_at = now() "
	    "WHERE id = $1::bigint AND archived_at IS NULL RETURNING id" },
};

/* --- reading ------------------------------------------------------------ */

/* Public caching for anonymous readers, an ETag for everyone. */
static enum agora_err
send_doc(struct agora_req *r, const struct agora_doc *doc)
{
	agora_resp_header(r, "Vary", "Authorization");
	return agora_resp_tagged(r, doc,
	    r->user == NULL ? "public, max-age=30" : "private, no-cache");
}

static enum agora_err
get_product(struct agora_req *r)
{
	const char *vals[1] = { r->params[0] };
	char verkey[AGORA_CATALOG_KEY_MAX], key[AGORA_CATALOG_KEY_MAX], ver[32];
	struct agora_doc doc;
	PGresult *res;
	enum agora_err rc;
	int hit;

	agora_product_keys(r->params[0], strlen(r->params[0]), verkey, key);
	hit = agora_cached_read(r, verkey, key, &doc, ver, sizeof(ver));
	if (hit == AGORA_CACHE_LIMITED)
		return AGORA_E_RATE_LIMITED;
	if (hit == 0)
		return send_doc(r, &doc);
	if ((rc = agora_db_query(r, "product_get", 1, vals, &res)) != AGORA_OK)
		return rc;
	if (PQntuples(res) == 0)
		return agora_not_found(r);
	agora_doc_set(
	    &doc, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
	agora_cache_vset(r, key, ver, &doc, ITEM_TTL);
	return send_doc(r, &doc);
}

struct search {
	const char *vals[11];
	enum sort sort;
	struct json_object *attrs;
};

static enum agora_err
bad_param(struct agora_req *r, const char *name, const char *why)
{
	return agora_problem(r, AGORA_E_BAD_REQUEST, "bad_parameter",
	    agora_printf(r, "Query parameter %s %s.", name, why));
}

static enum agora_err
attr_param(struct agora_req *r, struct search *s, const char *k, const char *v)
{
	if (s->attrs == NULL) {
		s->attrs = json_object_new_object();
		if (agora_defer_json(r, s->attrs) != 0)
			return AGORA_E_TOO_LARGE;
	}
	if (k[5] == '\0' || strlen(k) > 69 || strlen(v) > 200 ||
	    (json_object_object_length(s->attrs) == ATTR_MAX &&
	        !json_object_object_get_ex(s->attrs, k + 5, NULL)))
		return bad_param(r, k, "is too long, empty or one too many");
	/* A repeated key: the first counts, as for every parameter. */
	if (!json_object_object_get_ex(s->attrs, k + 5, NULL))
		json_object_object_add(
		    s->attrs, k + 5, json_object_new_string(v));
	return AGORA_OK;
}

static int
quotes_open(const char *q, const char *upto)
{
	int open = 0;

	for (; q < upto; q++)
		if (*q == '"')
			open = !open;
	return open;
}

/*
 * The last word of q, when it is 2 to 32 ASCII letters and digits, lower
 * case: it is matched as a prefix, and *rest is what comes before it.
 * Anything else gives NULL, so that no client text reaches to_tsquery's
 * own syntax.
 */
static const char *
prefix_word(struct agora_req *r, const char *q, const char **rest)
{
	const char *end = q + strlen(q), *start;
	char *w;
	size_t n, i;

	while (end > q && !isalnum((unsigned char)end[-1]))
		end--;
	for (start = end; start > q && isalnum((unsigned char)start[-1]);
	     start--)
		;
	n = (size_t)(end - start);
	/* Not a word cut from UTF-8, a negated word or one inside quotes. */
	if (n < 2 || n > 32 ||
	    (start > q &&
	        ((unsigned char)start[-1] >= 0x80 || start[-1] == '-')) ||
	    quotes_open(q, start))
		return NULL;
	w = agora_alloc(r, n + 1);
	*rest = agora_printf(r, "%.*s", (int)(start - q), q);
	if (w == NULL || *rest == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		w[i] = (char)tolower((unsigned char)start[i]);
	w[n] = '\0';
	return w;
}

static const char *const booleans[] = { "true", "false", NULL };

/* The search's query parameters; what parse_search reads of each. */
enum {
	SF_Q,
	SF_CATEGORY,
	SF_MIN_PRICE,
	SF_MAX_PRICE,
	SF_IN_STOCK,
	SF_SORT,
	SF_ATTR
};
static const struct agora_qfield search_fields[] = {
	[SF_Q] = { "q", AGORA_Q_TEXT, 0, Q_MAX, NULL, NULL, NULL },
	[SF_CATEGORY] = { "category", AGORA_Q_INT, 1, INT64_MAX, NULL, NULL,
	    NULL },
	[SF_MIN_PRICE] = { "min_price", AGORA_Q_INT, 0, INT64_MAX, NULL, NULL,
	    NULL },
	[SF_MAX_PRICE] = { "max_price", AGORA_Q_INT, 0, INT64_MAX, NULL, NULL,
	    NULL },
	[SF_IN_STOCK] = { "in_stock", AGORA_Q_ONE_OF, 0, 0, booleans, NULL,
	    "Query parameter in_stock must be true or false." },
	[SF_SORT] = { "sort", AGORA_Q_ONE_OF, 0, 0, sort_names, NULL,
	    "Query parameter sort must be relevance, price, -price, newest "
	    "or rating." },
	/* attr_param checks these pairs. */
	[SF_ATTR] = { "attr.", AGORA_Q_TEXT, 0, INT64_MAX, NULL, NULL, NULL },
	AGORA_PAGE_QFIELDS,
};

/* The attr.NAME parameters, the table's prefix field, into s->attrs. */
static enum agora_err
attr_params(struct agora_req *r, struct search *s)
{
	const char *pos = NULL, *k, *v;
	enum agora_err rc;

	for (;;) {
		if ((rc = agora_query_next(r, &pos, &k, &v)) != AGORA_OK ||
		    k == NULL)
			return rc;
		if (strncmp(k, "attr.", 5) == 0 &&
		    (rc = attr_param(r, s, k, v)) != AGORA_OK)
			return rc;
	}
}

static enum agora_err
parse_search(struct agora_req *r, struct search *s)
{
	struct agora_qvalue v[AGORA_NELEM(search_fields)];
	enum agora_err rc;
	int i;

	memset(s, 0, sizeof(*s));
	rc = agora_query_fields(
	    r, search_fields, AGORA_NELEM(search_fields), 1, v);
	if (rc != AGORA_OK || (rc = attr_params(r, s)) != AGORA_OK)
		return rc;
	if (v[SF_Q].s != NULL && *v[SF_Q].s != '\0') {
		s->vals[0] = v[SF_Q].s;
		s->vals[9] = prefix_word(r, v[SF_Q].s, &s->vals[10]);
	}
	for (i = SF_CATEGORY; i <= SF_MAX_PRICE; i++)
		s->vals[i] = v[i].s;
	s->vals[4] = v[SF_IN_STOCK].s != NULL ? v[SF_IN_STOCK].s : "false";
	if (v[SF_SORT].s != NULL)
		s->sort = (enum sort)v[SF_SORT].n;
	else
		s->sort = s->vals[0] != NULL ? S_RELEVANCE : S_NEWEST;
	if (s->sort == S_RELEVANCE && s->vals[0] == NULL)
		s->sort = S_NEWEST;
	if (s->attrs != NULL)
		s->vals[5] = json_object_to_json_string_ext(
		    s->attrs, JSON_C_TO_STRING_PLAIN);
	return AGORA_OK;
}

/* The cursor's key is "<sort>|<sort key>|<id>": another sort's is forged. */
static enum agora_err
apply_cursor(struct agora_req *r, struct search *s, const char *after)
{
	const char *p, *q;
	char *key;
	size_t n = strlen(sort_names[s->sort]);

	if (after == NULL)
		return AGORA_OK;
	p = strncmp(after, sort_names[s->sort], n) == 0 && after[n] == '|'
	    ? after + n + 1
	    : NULL;
	q = p != NULL ? strrchr(p, '|') : NULL;
	if (q == NULL || !agora_id_ok(q + 1) || q == p)
		return agora_problem(r, AGORA_E_BAD_REQUEST, "bad_cursor",
		    "The cursor is not one this API gave out for this sort.");
	key = agora_alloc(r, (size_t)(q - p) + 1);
	if (key == NULL)
		return AGORA_E_TOO_LARGE;
	memcpy(key, p, (size_t)(q - p));
	key[q - p] = '\0';
	s->vals[6] = key;
	s->vals[7] = q + 1;
	return AGORA_OK;
}

/* '{"data":[' doc, doc ... '],' — the docs are JSON already. */
static char *
join_docs(struct agora_req *r, PGresult *res, int n, size_t *len)
{
	size_t total = 16, off;
	char *buf;
	int i;

	for (i = 0; i < n; i++)
		total += (size_t)PQgetlength(res, i, 2) + 1;
	buf = agora_alloc(r, total);
	if (buf == NULL)
		return NULL;
	memcpy(buf, "{\"data\":[", 9);
	off = 9;
	for (i = 0; i < n; i++) {
		if (i > 0)
			buf[off++] = ',';
		memcpy(buf + off, PQgetvalue(res, i, 2),
		    (size_t)PQgetlength(res, i, 2));
		off += (size_t)PQgetlength(res, i, 2);
	}
	buf[off++] = ']';
	*len = off;
	return buf;
}

/* The page's body: the docs, then has_more and next_cursor. */
static enum agora_err
page_body(struct agora_req *r, const struct search *s, PGresult *res,
    long long limit, const char **body, size_t *len)
{
	struct json_object *tail;
	const char *ts, *last = NULL;
	char *docs, *out;
	int n = PQntuples(res), shown = n > limit ? (int)limit : n;
	size_t dl, tl;

	if (n > limit)
		last = agora_printf(r, "%s|%s|%s", sort_names[s->sort],
		    PQgetvalue(res, shown - 1, 0),
		    PQgetvalue(res, shown - 1, 1));
	tail = agora_page(r, json_object_new_array(), n > limit, last);
	json_object_object_del(tail, "data");
	ts = json_object_to_json_string_ext(tail, JSON_C_TO_STRING_PLAIN);
	docs = join_docs(r, res, shown, &dl);
	tl = strlen(ts);
	out = docs != NULL ? agora_alloc(r, dl + tl) : NULL;
	if (out != NULL) {
		memcpy(out, docs, dl);
		out[dl] = ',';
		memcpy(out + dl + 1, ts + 1, tl - 1); /* ts without its '{' */
		*body = out;
		*len = dl + tl;
	}
	json_object_put(tail);
	return out != NULL ? AGORA_OK : AGORA_E_TOO_LARGE;
}

/* The category filter, *cat: the category's id, becomes its tree's array. */
static enum agora_err
category_tree(struct agora_req *r, const char **cat)
{
	const char *vals[1] = { *cat };
	PGresult *res;
	enum agora_err rc;

	if (*cat == NULL)
		return AGORA_OK;
	if ((rc = agora_db_query(r, "category_tree", 1, vals, &res)) !=
	    AGORA_OK)
		return rc;
	if (PQntuples(res) == 0)
		return agora_problem(r, AGORA_E_VALIDATION, "unknown_category",
		    "No such category.");
	*cat = PQgetvalue(res, 0, 0);
	return AGORA_OK;
}

static enum agora_err
list_products(struct agora_req *r)
{
	struct search s;
	struct agora_doc doc;
	const char *after, *body;
	char key[AGORA_CATALOG_KEY_MAX], ver[32];
	long long limit;
	PGresult *res;
	enum agora_err rc;
	size_t len;
	int hit;

	if ((rc = agora_page_params(r, &limit, &after)) != AGORA_OK ||
	    (rc = parse_search(r, &s)) != AGORA_OK ||
	    (rc = apply_cursor(r, &s, after)) != AGORA_OK)
		return rc;
	s.vals[8] = agora_printf(r, "%lld", limit + 1);
	agora_list_key(r->query, key);
	hit = agora_cached_read(
	    r, AGORA_CATALOG_VERKEY, key, &doc, ver, sizeof(ver));
	if (hit == AGORA_CACHE_LIMITED)
		return AGORA_E_RATE_LIMITED;
	/* A page is cached only after its category was found, categories
	 * are never deleted, and any category write makes every cached page
	 * stale: a hit needs no check of the category. */
	if (hit == 0)
		return send_doc(r, &doc);
	if ((rc = category_tree(r, &s.vals[1])) != AGORA_OK)
		return rc;
	rc = agora_db_query(r, sort_stmts[s.sort], 11, s.vals, &res);
	if (rc == AGORA_E_BAD_REQUEST && after != NULL)
		return agora_problem(r, rc, "bad_cursor",
		    "The cursor is not one this API gave out for this sort.");
	if (rc != AGORA_OK)
		return rc;
	if ((rc = page_body(r, &s, res, limit, &body, &len)) != AGORA_OK)
		return rc;
	agora_doc_set(&doc, body, len);
	agora_cache_vset(r, key, ver, &doc, LIST_TTL);
	return send_doc(r, &doc);
}

/* --- writing ------------------------------------------------------------ */

enum {
	F_SKU,
	F_NAME,
	F_DESC,
	F_PRICE,
	F_CURRENCY,
	F_CATEGORY,
	F_ATTRS,
	F_STOCK,
	F__MAX
};

static const struct agora_field create_fields[F__MAX] = {
	[F_SKU] = { "sku", AGORA_F_STRING, AGORA_F_REQUIRED, 1, 64 },
	[F_NAME] = { "name", AGORA_F_STRING, AGORA_F_REQUIRED, 1, 200 },
	[F_DESC] = { "description", AGORA_F_STRING, 0, 0, 10000 },
	[F_PRICE] = { "price_cents", AGORA_F_INT, AGORA_F_REQUIRED, 0,
	    1000000000000LL },
	[F_CURRENCY] = { "currency", AGORA_F_STRING, 0, 3, 3 },
	[F_CATEGORY] = { "category_id", AGORA_F_STRING, 0, 1, 20 },
	[F_ATTRS] = { "attributes", AGORA_F_OBJECT, 0, 0, 0 },
	[F_STOCK] = { "stock", AGORA_F_INT, 0, 0, 1000000000 },
};

/* PATCH takes the same fields, none required, and no stock. */
static const struct agora_field update_fields[F_STOCK] = {
	[F_SKU] = { "sku", AGORA_F_STRING, 0, 1, 64 },
	[F_NAME] = { "name", AGORA_F_STRING, 0, 1, 200 },
	[F_DESC] = { "description", AGORA_F_STRING, 0, 0, 10000 },
	[F_PRICE] = { "price_cents", AGORA_F_INT, 0, 0, 1000000000000LL },
	[F_CURRENCY] = { "currency", AGORA_F_STRING, 0, 3, 3 },
	[F_CATEGORY] = { "category_id", AGORA_F_STRING, 0, 1, 20 },
	[F_ATTRS] = { "attributes", AGORA_F_OBJECT, 0, 0, 0 },
};

/* Validate, then check what the table cannot say in types. */
static enum agora_err
product_fields(struct agora_req *r, const struct agora_field *f, size_t n,
    struct agora_value *v)
{
	enum agora_err rc;
	const char *c;

	if ((rc = agora_valid_body(r, f, n, v)) != AGORA_OK)
		return rc;
	c = v[F_CURRENCY].present ? v[F_CURRENCY].s : "USD";
	if (strspn(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != 3)
		return agora_problem_field(r, AGORA_E_VALIDATION, "currency",
		    "must be an ISO 4217 code");
	if (v[F_CATEGORY].present && !agora_id_ok(v[F_CATEGORY].s))
		return agora_problem_field(r, AGORA_E_VALIDATION, "category_id",
		    "is not a category id");
	return AGORA_OK;
}

static void
fill_vals(const struct agora_value *v, const char **vals, char num[2][24])
{
	vals[0] = v[F_SKU].present ? v[F_SKU].s : NULL;
	vals[1] = v[F_NAME].present ? v[F_NAME].s : NULL;
	vals[2] = v[F_DESC].present ? v[F_DESC].s : NULL;
	snprintf(num[0], 24, "%lld", v[F_PRICE].i);
	vals[3] = v[F_PRICE].present ? num[0] : NULL;
	vals[4] = v[F_CURRENCY].present ? v[F_CURRENCY].s : NULL;
	vals[5] = v[F_CATEGORY].present ? v[F_CATEGORY].s : NULL;
	vals[6] = v[F_ATTRS].present ? json_object_to_json_string_ext(
	                                   v[F_ATTRS].o, JSON_C_TO_STRING_PLAIN)
	                             : NULL;
	snprintf(num[1], 24, "%lld", v[F_STOCK].i);
	vals[7] = v[F_STOCK].present ? num[1] : NULL;
}

struct write {
	const char *vals[8];
	const char *id;
};

static enum agora_err
tx_create(struct agora_req *r, void *arg)
{
	struct write *w = arg;
	const char *inv[2];
	PGresult *res;
	enum agora_err rc;

	rc = agora_db_query(r, "product_insert", 7, w->vals, &res);
	if (rc != AGORA_OK)
		return rc;
	w->id = PQgetvalue(res, 0, 0);
	inv[0] = w->id;
	inv[1] = w->vals[7];
	return agora_db_query(r, "inventory_insert", 2, inv, NULL);
}

/* The answer to a failed write: the constraint says which field. */
static enum agora_err
write_error(struct agora_req *r, enum agora_err rc)
{
	if (rc == AGORA_E_CONFLICT && r->constraint != NULL &&
	    strcmp(r->constraint, "products_sku_key") == 0)
		return agora_problem(
		    r, rc, "sku_taken", "A product with this sku exists.");
	if (rc == AGORA_E_VALIDATION && r->sqlstate != NULL &&
	    strcmp(r->sqlstate, "23503") == 0)
		return agora_problem_field(
		    r, AGORA_E_VALIDATION, "category_id", "is not a category");
	return rc;
}

static enum agora_err
created(struct agora_req *r, const char *id)
{
	const char *vals[1] = { id };
	PGresult *res;
	enum agora_err rc;

	agora_catalog_bump(r, id);
	if ((rc = agora_db_query(r, "product_get", 1, vals, &res)) != AGORA_OK)
		return rc;
	agora_resp_header(
	    r, "Location", agora_printf(r, "/api/v1/products/%s", id));
	return agora_resp_cell(r, 201, res, 0, 0);
}

static enum agora_err
post_product(struct agora_req *r)
{
	struct agora_value v[F__MAX];
	struct write w;
	char num[2][24];
	enum agora_err rc;

	if ((rc = product_fields(r, create_fields, F__MAX, v)) != AGORA_OK)
		return rc;
	memset(&w, 0, sizeof(w));
	fill_vals(v, w.vals, num);
	if ((rc = agora_db_tx(r, tx_create, &w)) != AGORA_OK)
		return write_error(r, rc);
	return created(r, w.id);
}

static enum agora_err
patch_product(struct agora_req *r)
{
	struct agora_value v[F__MAX];
	const char *vals[8], *fv[8];
	char num[2][24];
	PGresult *res;
	enum agora_err rc;

	memset(v, 0, sizeof(v));
	if ((rc = product_fields(r, update_fields, F_STOCK, v)) != AGORA_OK)
		return rc;
	fill_vals(v, fv, num);
	vals[0] = r->params[0];
	memcpy(vals + 1, fv, 7 * sizeof(vals[0]));
	rc = agora_db_write(r, "product_update", 8, vals, &res);
	if (rc != AGORA_OK)
		return write_error(r, rc);
	if (PQntuples(res) == 0)
		return agora_not_found(r);
	agora_catalog_bump(r, r->params[0]);
	if ((rc = agora_db_query(r, "product_get", 1, vals, &res)) != AGORA_OK)
		return rc;
	return agora_resp_cell(r, 200, res, 0, 0);
}

static enum agora_err
delete_product(struct agora_req *r)
{
	const char *vals[1] = { r->params[0] };
	PGresult *res;
	enum agora_err rc;

	rc = agora_db_write(r, "product_archive", 1, vals, &res);
	if (rc != AGORA_OK)
		return rc;
	if (PQntuples(res) == 0)
		return agora_not_found(r);
	agora_catalog_bump(r, r->params[0]);
	return agora_resp_raw(r, 204, NULL, NULL, 0);
}

static const struct agora_route routes[] = {
	{ "GET", "/api/v1/products", AGORA_BODY_NONE, list_products, AGORA_ANON,
	    AGORA_RL_API_READ },
	{ "POST", "/api/v1/products", AGORA_BODY_JSON, post_product,
	    AGORA_ADMIN },
	{ "GET", "/api/v1/products/{product_id}", AGORA_BODY_NONE, get_product,
	    AGORA_ANON, AGORA_RL_API_READ },
	{ "PATCH", "/api/v1/products/{product_id}", AGORA_BODY_JSON,
	    patch_product, AGORA_ADMIN },
	{ "DELETE", "/api/v1/products/{product_id}", AGORA_BODY_NONE,
	    delete_product, AGORA_ADMIN },
	{ "GET", "/api/v1/products/{product_id}/reviews", AGORA_BODY_NONE,
	    review_list, AGORA_ANON },
	{ "POST", "/api/v1/products/{product_id}/reviews", AGORA_BODY_JSON,
	    review_post, AGORA_USER },
	{ "GET", "/api/v1/reviews/{review_id}", AGORA_BODY_NONE, review_get,
	    AGORA_ANON },
	{ "DELETE", "/api/v1/reviews/{review_id}", AGORA_BODY_NONE,
	    review_delete, AGORA_USER },
};

static const struct agora_program program = {
	.name = "products",
	.routes = routes,
	.nroutes = AGORA_NELEM(routes),
	.stmts = stmts,
	.nstmts = AGORA_NELEM(stmts),
};

AGORA_MAIN(program)
