/*
 * shop.h: the shop built on libagora: accounts, stored files and their
 * downloads, lists and their cursors, idempotency keys, placing orders,
 * and the catalog's cache keys.  libagora (lib/) is the FastCGI framework
 * and knows nothing of these; the programs, the worker and agoractl use
 * both.  tests/lib_graph.py checks that no file of lib/ calls into shop/.
 */
#ifndef AGORA_SHOP_H
#define AGORA_SHOP_H

#include "agora.h"

/* A stored file as its row describes it (download.c). */
struct agora_file {
	const char *filename, *content_type, *sha256, *storage, *key;
};
/* The file of a row: filename, content_type, sha256, storage and
 * storage_key in this order from column col. */
#define AGORA_FILE_COLUMNS                                                     \
	"f.filename, f.content_type, f.sha256, f.storage, f.storage_key"
void agora_file_of(PGresult *res, int row, int col, struct agora_file *f);
/*
 * Answer with the file's bytes (200) or 304 for a matching If-None-Match;
 * inline_ for our own documents (invoices), attachment otherwise.
 */
enum agora_err agora_file_send(
    struct agora_req *r, const struct agora_file *f, int inline_);
/* A file name safe to store and send: the last path component, valid
 * UTF-8, no control characters or quotes, at most 255 bytes. */
void agora_filename_clean(
    const char *in, size_t inlen, char *out, size_t outlen);

/* Accounts shared by the auth and users programs and agoractl. */
#define AGORA_USER_COLUMNS                                                     \
	"id::text, email, name, role, agora_time(created_at), "                \
	"disabled_at IS NOT NULL, email_verified_at IS NOT NULL"
struct json_object *agora_user_json(PGresult *res, int row);
int agora_email_valid(const char *s, size_t len);
#define AGORA_PASSWORD_MIN 10
#define AGORA_PASSWORD_MAX 1024

/* The query parameters of a list page, for a route's table of its own
 * (agora_query_fields): the cursor is checked by agora_page_params. */
#define AGORA_PAGE_QFIELDS                                                     \
	{ "limit", AGORA_Q_INT, 1, 100, NULL, "bad_limit",                     \
		"limit must be an integer from 1 to 100." },                   \
	{                                                                      \
		"cursor", AGORA_Q_TEXT, 0, INT64_MAX, NULL, NULL, NULL         \
	}

/* Lists: limit (1..100, default 20) and an opaque keyset cursor. */
enum agora_err agora_page_params(
    struct agora_req *r, long long *limit, const char **after);
/* The same for a list keyed by row id: a cursor's key that is not one
 * is 400 bad_cursor. */
enum agora_err agora_page_params_id(
    struct agora_req *r, long long *limit, const char **after);
struct json_object *agora_page(struct agora_req *r, struct json_object *data,
    int has_more, const char *last_key);
enum agora_err agora_page_send(
    struct agora_req *r, PGresult *res, long long limit);

/*
 * Idempotency keys (README, "Behaviour every endpoint shares").  A route that
 * honours the Idempotency-Key header lists AGORA_IDEM_STMTS among its
 * statements and runs its work with agora_idem_tx() instead of agora_db_tx():
 * the key is claimed first in the transaction and fn's 2xx answer stored last.
 * A claimed key with a stored answer replays it without calling fn (and sets
 * *replayed); one that another request holds answers 409
 * idempotency_key_in_use; one used with another method, path or body
 * answers 422 idempotency_key_reused.  Nothing is stored when the
 * transaction rolls back, so a failed request may be retried.
 */
#define AGORA_IDEM_STMTS                                                       \
	{ "agora_idem_claim",                                                  \
		"SELECT busy, fingerprint, status, location, body "            \
		"FROM idempotency_claim($1::bigint, $2)" },                    \
	{                                                                      \
		"agora_idem_store",                                            \
		    "INSERT INTO idempotency_keys (user_id, key, "             \
		    "fingerprint, status, location, body) VALUES "             \
		    "($1::bigint, $2, $3, $4::int, $5, $6)"                    \
	}
#define AGORA_IDEM_KEY_MAX 255
enum agora_err agora_idem_tx(struct agora_req *r,
    enum agora_err (*fn)(struct agora_req *, void *), void *arg, int *replayed);

/*
 * Placing orders (order.c), shared by the orders and cart programs: both
 * list AGORA_ORDER_STMTS and AGORA_IDEM_STMTS among their statements.
 */
#define AGORA_ORDER_RESULT                                                     \
	"SELECT t.r->'order', t.r->'order'->>'id', t.r->>'error', "            \
	"t.r->'products', t.r->>'product_ids', t.r->>'limit' FROM "
#define AGORA_ORDER_STMTS                                                      \
	{ "agora_order_place",                                                 \
		AGORA_ORDER_RESULT                                             \
		"order_place($1::bigint, $2::bigint[], "                       \
		"$3::int[], $4::jsonb, $5::jsonb, $6::int, $7::jsonb) "        \
		"AS t(r)" },                                                   \
	{                                                                      \
		"agora_cart_checkout",                                         \
		    AGORA_ORDER_RESULT "cart_checkout($1::bigint, $2::jsonb, " \
		                       "$3::jsonb, $4::int, $5::jsonb) "       \
		                       "AS t(r)"                               \
	}
enum agora_err agora_order_extras(struct agora_req *r,
    struct json_object *payment, struct json_object *address,
    const char **payment_json, const char **address_json);
int agora_phone_e164(const char *in, char out[17]);
/* Analytics events deleted per statement: what sql/0016 allows a call. */
#define AGORA_PRUNE_BATCH 10000
#define AGORA_ORDER_VALS_MAX 6
enum agora_err agora_order_submit(
    struct agora_req *r, const char *stmt, int n, const char *const *vals);

/*
 * The catalog's cache keys (catalog.c), one scheme for every reader and
 * writer.  A product's document lives under its own version key, so that
 * a write to one product makes only its entry stale; every list, search
 * page and the category tree live under the one catalog version, which
 * any catalog write bumps.  The "2" in the entry keys is the entry format
 * of agora_cache_vset (version, ETag, expiry and cost before the body):
 * entries of the older format lived under other keys, and both programs
 * may run while an upgrade is rolled out.
 */
#define AGORA_CATALOG_VERKEY "agora:cv"
#define AGORA_CATEGORIES_KEY "agora:categories2"
#define AGORA_CATALOG_KEY_MAX 64
/* The version key and the entry key of the product id (n bytes). */
void agora_product_keys(const char *id, size_t n,
    char verkey[AGORA_CATALOG_KEY_MAX], char key[AGORA_CATALOG_KEY_MAX]);
/* The entry key of a search or list page: a hash of its query string. */
void agora_list_key(const char *query, char key[AGORA_CATALOG_KEY_MAX]);
/* Products (a comma-separated id list) changed: drop their cached copies
 * and make every cached list stale. */
void agora_catalog_bump(struct agora_req *r, const char *products);
/*
 * The stock of products changed, and nothing else of them (an order
 * placed or cancelled, an order expired, a charge failed): drop their
 * cached copies, and leave the lists to expire (LIST_TTL, fcgi/products.c),
 * so that a list may show a product's stock up to 30 s old in memcached
 * (fcgi/openapi.json, GET /products, "Caching"); its own read is current.
 * Making every list stale on every order made every search miss the cache
 * under any order traffic, and the searches then took the machine
 * (bench/RESULTS.md, "2026-12-07, later").
 */
void agora_stock_bump(struct agora_req *r, const char *products);

/* Exposed for the fuzzers (tests/fuzz/filename.c). */
const char *agora_content_disposition(
    struct agora_req *r, const char *kind, const char *name);

#endif /* AGORA_SHOP_H */
