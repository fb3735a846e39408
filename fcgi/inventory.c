/*
 * inventory.c: /api/v1/inventory: stock counts and manual reservations.
 *
 * The database keeps 0 <= reserved <= on_hand with CHECK constraints, so
 * no code path can oversell; setting on_hand under what is reserved is
 * refused (409 stock_below_reserved).  Manual reserve and release are
 * idempotent per (order, product): the reservations row says whether the
 * work was done, and it is written in the same transaction as the count.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "shop.h"

#define INVENTORY_JSON                                                         \
	"json_build_object('product_id', product_id::text, 'on_hand', "        \
	"on_hand, 'reserved', reserved, 'available', on_hand - reserved)"

static const struct agora_stmt stmts[] = {
	{ "inv_get",
	    "SELECT " INVENTORY_JSON "::text FROM inventory i JOIN products p "
	    "ON p.id = i.product_id WHERE i.product_id = $1::bigint "
	    "AND p.archived_at IS NULL",
	    AGORA_STMT_READ },
	/* $3: the on_hand the caller last saw, or NULL to set it blind. */
	{ "inv_set",
	    "UPDATE inventory i SET on_hand = $2::int, updated_at = now() "
	    "FROM products p WHERE p.id = i.product_id AND p.archived_at IS "
	    "NULL "
	    "AND i.product_id = $1::bigint "
	    "AND ($3::int IS NULL OR i.on_hand = $3::int) "
	    "RETURNING " INVENTORY_JSON "::text" },
	{ "product_live",
	    "SELECT 1 FROM products WHERE id = $1::bigint "
	    "AND archived_at IS NULL",
	    AGORA_STMT_READ },
	{ "res_insert",
	    "INSERT INTO reservations (order_id, product_id, quantity) "
	    "VALUES ($2, $1::bigint, $3::int) ON CONFLICT DO NOTHING "
	    "RETURNING quantity" },
	{ "inv_reserve",
	    "UPDATE inventory SET reserved = reserved + $2::int, "
	    "updated_at = now() WHERE product_id = $1::bigint "
	    "AND on_hand - reserved >= $2::int RETURNING product_id" },
	{ "res_release",
	    "UPDATE reservations SET released_at = now() "
	    "WHERE product_id = $1::bigint AND order_id = $2 "
	    "AND released_at IS NULL RETURNING quantity::text" },
	{ "res_exists",
	    "SELECT 1 FROM reservations WHERE product_id = $1::bigint "
	    "AND order_id = $2",
	    AGORA_STMT_READ },
	/* $1 names one of agora's orders (the reservations' order_id of
	 * an order is its id as text). */
	{ "order_named",
	    "SELECT 1 FROM orders WHERE id = CASE WHEN $1 ~ "
	    "'^[1-9][0-9]{0,17}$' "
	    "THEN $1::bigint END",
	    AGORA_STMT_READ },
	{ "inv_release",
	    "UPDATE inventory SET reserved = reserved - $2::int, "
	    "updated_at = now() WHERE product_id = $1::bigint" },
};

/* Answer with the product's current counts. */
static enum agora_err
send_inventory(struct agora_req *r)
{
	const char *vals[1] = { r->params[0] };
	PGresult *res;
	enum agora_err rc;

	if ((rc = agora_db_query(r, "inv_get", 1, vals, &res)) != AGORA_OK)
		return rc;
	if (PQntuples(res) == 0)
		return agora_not_found(r);
	return agora_resp_cell(r, 200, res, 0, 0);
}

static enum agora_err
get_inventory(struct agora_req *r)
{
	return send_inventory(r);
}

static enum agora_err
body_values(struct agora_req *r, const struct agora_field *f, size_t n,
    struct agora_value *v)
{
	return agora_valid_body(r, f, n, v);
}

/*
 * expected_on_hand makes the set a compare-and-set: stock counted against
 * a figure read earlier must not overwrite units that shipped (or were
 * set by someone else) since.
 */
static const struct agora_field set_fields[] = {
	{ "on_hand", AGORA_F_INT, AGORA_F_REQUIRED, 0, 1000000000 },
	{ "expected_on_hand", AGORA_F_INT, 0, 0, 1000000000 },
};

/* Why a set changed no row: the product is gone, or on_hand moved. */
static enum agora_err
set_refused(struct agora_req *r)
{
	PGresult *res;
	enum agora_err rc;

	if ((rc = agora_db_query(r, "inv_get", 1, r->params, &res)) != AGORA_OK)
		return rc;
	if (PQntuples(res) == 0)
		return agora_not_found(r);
	return agora_problem(r, AGORA_E_CONFLICT, "on_hand_changed",
	    "on_hand is no longer expected_on_hand: read it again, then "
	    "set it.");
}

static enum agora_err
put_inventory(struct agora_req *r)
{
	struct agora_value v[2];
	const char *vals[3];
	PGresult *res;
	enum agora_err rc;

	if ((rc = body_values(r, set_fields, 2, v)) != AGORA_OK)
		return rc;
	vals[0] = r->params[0];
	vals[1] = agora_printf(r, "%lld", v[0].i);
	vals[2] = v[1].present ? agora_printf(r, "%lld", v[1].i) : NULL;
	rc = agora_db_write(r, "inv_set", 3, vals, &res);
	if (rc == AGORA_E_VALIDATION && r->constraint != NULL &&
	    strcmp(r->constraint, "inventory_reserved_le_on_hand") == 0)
		return agora_problem(r, AGORA_E_CONFLICT,
		    "stock_below_reserved",
		    "on_hand cannot fall under what is reserved.");
	if (rc != AGORA_OK)
		return rc;
	if (PQntuples(res) == 0)
		return v[1].present ? set_refused(r) : agora_not_found(r);
	agora_catalog_bump(r, r->params[0]);
	return agora_resp_cell(r, 200, res, 0, 0);
}

enum outcome { DONE, ALREADY, SHORT, MISSING, MISSING_PRODUCT, ORDER };

struct move {
	const char *vals[3];
	enum outcome outcome;
};

static enum agora_err
tx_reserve(struct agora_req *r, void *arg)
{
	struct move *m = arg;
	const char *inv[2] = { m->vals[0], m->vals[2] };
	PGresult *res;
	enum agora_err rc;

	m->outcome = MISSING;
	if ((rc = agora_db_query(r, "product_live", 1, m->vals, &res)) !=
	        AGORA_OK ||
	    PQntuples(res) == 0)
		return rc;
	m->outcome = ALREADY;
	if ((rc = agora_db_query(r, "res_insert", 3, m->vals, &res)) !=
	    AGORA_OK)
		return rc;
	if (PQntuples(res) == 0)
		return AGORA_OK;
	if ((rc = agora_db_query(r, "inv_reserve", 2, inv, &res)) != AGORA_OK)
		return rc;
	m->outcome = PQntuples(res) == 1 ? DONE : SHORT;
	/* Short: undo the reservation row with the transaction. */
	return m->outcome == SHORT ? AGORA_E_CONFLICT : AGORA_OK;
}

static const struct agora_field reserve_fields[] = {
	{ "order_id", AGORA_F_STRING, AGORA_F_REQUIRED, 1, 64 },
	{ "quantity", AGORA_F_INT, AGORA_F_REQUIRED, 1, 1000 },
};

/*
 * The manual tools hold stock for orders kept outside agora.  A bare
 * number is, or may become, the id of one of agora's orders, whose
 * reservations are its own: one made by hand under it would make that
 * order's placement fail, and a release by hand would let its shipping
 * leave on_hand uncounted.
 */
static int
order_like(const char *id)
{
	return *id != '\0' && strspn(id, "0123456789") == strlen(id);
}

static enum agora_err
put_reserve(struct agora_req *r)
{
	struct agora_value v[2];
	struct move m;
	enum agora_err rc;

	if ((rc = body_values(r, reserve_fields, 2, v)) != AGORA_OK)
		return rc;
	if (order_like(v[0].s))
		return agora_problem_field(r, AGORA_E_VALIDATION, "order_id",
		    "must not be a bare number: those name agora's orders");
	memset(&m, 0, sizeof(m));
	m.vals[0] = r->params[0];
	m.vals[1] = v[0].s;
	m.vals[2] = agora_printf(r, "%lld", v[1].i);
	rc = agora_db_tx(r, tx_reserve, &m);
	if (rc == AGORA_OK && m.outcome == MISSING)
		return agora_not_found(r);
	if (m.outcome == SHORT)
		return agora_problem(r, AGORA_E_CONFLICT, "insufficient_stock",
		    "Not enough stock is available.");
	if (rc == AGORA_E_VALIDATION)
		return agora_not_found(r);
	if (rc != AGORA_OK)
		return rc;
	if (m.outcome == DONE)
		agora_catalog_bump(r, r->params[0]);
	return send_inventory(r);
}

static enum agora_err
tx_release(struct agora_req *r, void *arg)
{
	struct move *m = arg;
	const char *inv[2];
	PGresult *res;
	enum agora_err rc;

	m->outcome = MISSING_PRODUCT;
	if ((rc = agora_db_query(r, "product_live", 1, m->vals, &res)) !=
	        AGORA_OK ||
	    PQntuples(res) == 0)
		return rc;
	m->outcome = ORDER;
	if ((rc = agora_db_query(r, "order_named", 1, m->vals + 1, &res)) !=
	        AGORA_OK ||
	    PQntuples(res) == 1)
		return rc;
	if ((rc = agora_db_query(r, "res_release", 2, m->vals, &res)) !=
	    AGORA_OK)
		return rc;
	if (PQntuples(res) == 1) {
		m->outcome = DONE;
		inv[0] = m->vals[0];
		inv[1] = PQgetvalue(res, 0, 0);
		return agora_db_query(r, "inv_release", 2, inv, NULL);
	}
	if ((rc = agora_db_query(r, "res_exists", 2, m->vals, &res)) !=
	    AGORA_OK)
		return rc;
	m->outcome = PQntuples(res) == 1 ? ALREADY : MISSING;
	return AGORA_OK;
}

static const struct agora_field release_fields[] = {
	{ "order_id", AGORA_F_STRING, AGORA_F_REQUIRED, 1, 64 },
};

static enum agora_err
put_release(struct agora_req *r)
{
	struct agora_value v[1];
	struct move m;
	enum agora_err rc;

	if ((rc = body_values(r, release_fields, 1, v)) != AGORA_OK)
		return rc;
	memset(&m, 0, sizeof(m));
	m.vals[0] = r->params[0];
	m.vals[1] = v[0].s;
	if ((rc = agora_db_tx(r, tx_release, &m)) != AGORA_OK)
		return rc;
	if (m.outcome == MISSING_PRODUCT)
		return agora_not_found(r);
	if (m.outcome == ORDER)
		return agora_problem(r, AGORA_E_CONFLICT, "order_managed",
		    "This is one of the shop's orders: its stock is released "
		    "when it is cancelled, and consumed when it ships.");
	if (m.outcome == MISSING)
		return agora_problem(r, AGORA_E_NOT_FOUND, "no_reservation",
		    "This order holds no reservation of this product.");
	if (m.outcome == DONE)
		agora_catalog_bump(r, r->params[0]);
	return send_inventory(r);
}

static const struct agora_route routes[] = {
	{ "GET", "/api/v1/inventory/{product_id}", AGORA_BODY_NONE,
	    get_inventory, AGORA_ANON },
	{ "PUT", "/api/v1/inventory/{product_id}", AGORA_BODY_JSON,
	    put_inventory, AGORA_ADMIN },
	{ "PUT", "/api/v1/inventory/{product_id}/reserve", AGORA_BODY_JSON,
	    put_reserve, AGORA_ADMIN },
	{ "PUT", "/api/v1/inventory/{product_id}/release", AGORA_BODY_JSON,
	    put_release, AGORA_ADMIN },
};

static const struct agora_program program = {
	.name = "inventory",
	.routes = routes,
	.nroutes = AGORA_NELEM(routes),
	.stmts = stmts,
	.nstmts = AGORA_NELEM(stmts),
};

AGORA_MAIN(program)
