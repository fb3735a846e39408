/*
 * cart.c: /api/v1/cart: the caller's cart, kept in PostgreSQL so that it
 * follows the user across devices and hosts, shown with current prices.
 *
 * Checkout is cart_checkout() in the database: it empties the cart and
 * places the order exactly as POST /orders does (shop/order.c), in
 * one transaction, so a failed checkout leaves the cart as it was.
 */
#include "config.h"

#include <string.h>

#include "shop.h"

static const struct agora_stmt stmts[] = {
	AGORA_IDEM_STMTS,
	AGORA_ORDER_STMTS,
	{ "cart_get",
	    "SELECT json_build_object('items', COALESCE(json_agg("
	    "json_build_object('product_id', p.id::text, 'sku', p.sku, "
	    "'name', p.name, 'unit_price_cents', p.price_cents, "
	    "'currency', p.currency, 'quantity', c.quantity, "
	    "'line_total_cents', p.price_cents * c.quantity, "
	    "'stock_available', COALESCE(i.on_hand - i.reserved, 0), "
	    "'available', p.archived_at IS NULL) "
	    "ORDER BY c.added_at, p.id), '[]'), "
	    "'subtotal_cents', COALESCE(sum(p.price_cents * c.quantity) "
	    "FILTER (WHERE p.archived_at IS NULL), 0), "
	    "'currency', COALESCE(min(p.currency), 'USD'), "
	    "'item_count', COALESCE(sum(c.quantity), 0), "
	    "'payment_test_mode', $2::boolean)::text "
	    "FROM cart_items c JOIN products p ON p.id = c.product_id "
	    "LEFT JOIN inventory i ON i.product_id = p.id "
	    "WHERE c.user_id = $1::bigint",
	    AGORA_STMT_READ },
	/* The count keeps a cart to 100 different products. */
	{ "cart_put",
	    "INSERT INTO cart_items (user_id, product_id, quantity) "
	    "SELECT $1::bigint, p.id, $3::int FROM products p "
	    "WHERE p.id = $2::bigint AND p.archived_at IS NULL "
	    "AND (SELECT count(*) FROM cart_items WHERE user_id = $1::bigint "
	    "AND product_id <> $2::bigint) < 100 "
	    "ON CONFLICT (user_id, product_id) DO UPDATE "
	    "SET quantity = EXCLUDED.quantity RETURNING 1" },
	{ "cart_delete",
	    "DELETE FROM cart_items WHERE user_id = $1::bigint "
	    "AND product_id = $2::bigint" },
	{ "product_live",
	    "SELECT 1 FROM products WHERE id = $1::bigint "
	    "AND archived_at IS NULL",
	    AGORA_STMT_READ },
};

/*
 * payment_test_mode tells a checkout form whether the simulated
 * provider's test cards pay here (doc/web-ui.md): a shop on a real
 * gateway must not offer them.
 */
static enum agora_err
get_cart(struct agora_req *r)
{
	const char *vals[2] = { r->user,
		strcmp(r->ctx->cfg.payment_provider, "simulated") == 0
		    ? "true"
		    : "false" };
	PGresult *res;
	enum agora_err rc;

	if ((rc = agora_db_query(r, "cart_get", 2, vals, &res)) != AGORA_OK)
		return rc;
	return agora_resp_doc(
	    r, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0), NULL);
}

/* Nothing was written: the product is unknown, or the cart is full. */
static enum agora_err
put_refused(struct agora_req *r)
{
	const char *vals[1] = { r->params[0] };
	PGresult *res;
	enum agora_err rc;

	if ((rc = agora_db_query(r, "product_live", 1, vals, &res)) != AGORA_OK)
		return rc;
	if (PQntuples(res) == 0)
		return agora_not_found(r);
	return agora_problem(r, AGORA_E_CONFLICT, "cart_full",
	    "A cart holds at most 100 different products.");
}

static const struct agora_field item_fields[] = {
	{ "quantity", AGORA_F_INT, AGORA_F_REQUIRED, 0, 1000 },
};

static enum agora_err
put_item(struct agora_req *r)
{
	struct agora_value v[1];
	const char *vals[3];
	PGresult *res;
	enum agora_err rc;

	if ((rc = agora_valid_body(r, item_fields, 1, v)) != AGORA_OK)
		return rc;
	vals[0] = r->user;
	vals[1] = r->params[0];
	vals[2] = agora_printf(r, "%lld", v[0].i);
	if (v[0].i == 0)
		rc = agora_db_write(r, "cart_delete", 2, vals, NULL);
	else if ((rc = agora_db_write(r, "cart_put", 3, vals, &res)) ==
	        AGORA_OK &&
	    PQntuples(res) == 0)
		return put_refused(r);
	if (rc != AGORA_OK)
		return rc;
	return get_cart(r);
}

static enum agora_err
delete_item(struct agora_req *r)
{
	const char *vals[2] = { r->user, r->params[0] };
	enum agora_err rc;

	if ((rc = agora_db_write(r, "cart_delete", 2, vals, NULL)) != AGORA_OK)
		return rc;
	return agora_resp_raw(r, 204, NULL, NULL, 0);
}

static const struct agora_field checkout_fields[] = {
	{ "payment", AGORA_F_OBJECT, 0, 0, 0 },
	{ "shipping_address", AGORA_F_OBJECT, 0, 0, 0 },
};

static enum agora_err
post_checkout(struct agora_req *r)
{
	struct agora_value v[2];
	const char *vals[4];
	enum agora_err rc;

	/* No body is an empty object here: both members are optional. */
	if (r->json != NULL &&
	    (rc = agora_valid_body(r, checkout_fields, 2, v)) != AGORA_OK)
		return rc;
	if (r->json == NULL)
		memset(v, 0, sizeof(v));
	if ((rc = agora_order_extras(r, v[0].o, v[1].o, &vals[2], &vals[1])) !=
	    AGORA_OK)
		return rc;
	vals[0] = r->user;
	vals[3] = agora_printf(r, "%lld", r->ctx->cfg.order_expiry_seconds);
	return agora_order_submit(r, "agora_cart_checkout", 4, vals);
}

static const struct agora_route routes[] = {
	{ "GET", "/api/v1/cart", AGORA_BODY_NONE, get_cart, AGORA_USER },
	{ "PUT", "/api/v1/cart/items/{product_id}", AGORA_BODY_JSON, put_item,
	    AGORA_USER },
	{ "DELETE", "/api/v1/cart/items/{product_id}", AGORA_BODY_NONE,
	    delete_item, AGORA_USER },
	{ "POST", "/api/v1/cart/checkout", AGORA_BODY_JSON_OPTIONAL,
	    post_checkout, AGORA_USER },
};

static const struct agora_program program = {
	.name = "cart",
	.routes = routes,
	.nroutes = AGORA_NELEM(routes),
	.stmts = stmts,
	.nstmts = AGORA_NELEM(stmts),
};

AGORA_MAIN(program)
