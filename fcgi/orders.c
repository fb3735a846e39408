/*
 * orders.c: /api/v1/orders: placing, reading, cancelling, tracking and
 * fulfilling orders.
 *
 * Placing is order_place() in the database, run by the shop's order.c (shop/)
 * under the Idempotency-Key (the cart's checkout shares it).  Every status
 * change goes through order_transition(), whose table of allowed moves is
 * the order state machine; it releases stock exactly once and announces
 * the change with NOTIFY agora_order_<id>, which the tracking program
 * (GET .../events?wait=) listens for.  Other users' orders answer 404.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shop.h"

#define ITEMS_MAX 100
#define LINE_QTY_MAX 1000

static const struct agora_stmt stmts[] = {
	AGORA_IDEM_STMTS,
	AGORA_ORDER_STMTS,
	{ "order_get",
	    "SELECT o.user_id::text, order_doc(o.id)::text FROM orders o "
	    "WHERE o.id = $1::bigint",
	    AGORA_STMT_READ },
	{ "order_list_user",
	    "SELECT o.id::text, order_doc(o.id)::text FROM orders o "
	    "WHERE o.user_id = $1::bigint "
	    "AND ($2::text IS NULL OR o.status = $2) "
	    "AND ($3::bigint IS NULL OR o.id < $3::bigint) "
	    "ORDER BY o.id DESC LIMIT $4::int",
	    AGORA_STMT_READ },
	/* $1 is the absent user filter: both lists take the same values. */
	{ "order_list_all",
	    "SELECT o.id::text, order_doc(o.id)::text FROM orders o "
	    "WHERE ($2::text IS NULL OR o.status = $2) "
	    "AND ($3::bigint IS NULL OR o.id < $3::bigint) "
	    "AND $1::text IS NULL ORDER BY o.id DESC LIMIT $4::int",
	    AGORA_STMT_READ },
	{ "order_transition",
	    "SELECT order_transition($1::bigint, $2, $3, $4)" },
	{ "order_payments",
	    "SELECT o.user_id::text, (SELECT COALESCE(json_agg(payment_doc(p) "
	    "ORDER BY p.id), '[]') FROM payments p "
	    "WHERE p.order_id = o.id)::text FROM orders o "
	    "WHERE o.id = $1::bigint",
	    AGORA_STMT_READ },
	/* After a move: the order and the products whose stock moved. */
	{ "order_moved",
	    "SELECT order_doc(o.id)::text, (SELECT string_agg("
	    "i.product_id::text, ',') FROM order_items i "
	    "WHERE i.order_id = o.id) FROM orders o WHERE o.id = $1::bigint",
	    AGORA_STMT_READ },
	/* The invoice's file; no file (NULL) before the order completes. */
	{ "order_invoice",
	    "SELECT o.user_id::text, f.id::text, " AGORA_FILE_COLUMNS
	    " FROM orders o LEFT JOIN invoices i ON i.order_id = o.id "
	    "LEFT JOIN files f ON f.id = i.file_id WHERE o.id = $1::bigint",
	    AGORA_STMT_READ },
	/* Whose the order is, without building its document. */
	{ "order_owner",
	    "SELECT user_id::text FROM orders WHERE id = $1::bigint",
	    AGORA_STMT_READ },
};

/* --- placing ------------------------------------------------------------ */

struct line {
	long long product;
	long long quantity;
};

static int
line_cmp(const void *a, const void *b)
{
	const struct line *x = a, *y = b;

	return (x->product > y->product) - (x->product < y->product);
}

static const struct agora_field item_fields[] = {
	{ "product_id", AGORA_F_STRING, AGORA_F_REQUIRED, 1, 20 },
	{ "quantity", AGORA_F_INT, AGORA_F_REQUIRED, 1, LINE_QTY_MAX },
};

/* Check one line into *l; adds to errors and returns the error kind. */
static enum agora_err
line_get(struct json_object *item, size_t i, struct line *l,
    struct json_object *errors)
{
	struct agora_value v[2];
	char prefix[32];
	enum agora_err rc;

	snprintf(prefix, sizeof(prefix), "items[%zu]", i);
	rc = agora_valid(item, prefix, item_fields, 2, v, errors);
	if (rc != AGORA_OK)
		return rc;
	if (!agora_id_ok(v[0].s) ||
	    agora_parse_ll(v[0].s, 1, INT64_MAX, &l->product) != 0) {
		agora_error_add(
		    errors, prefix, "product_id", "is not a product's id");
		return AGORA_E_VALIDATION;
	}
	l->quantity = v[1].i;
	return AGORA_OK;
}

/* Sort the lines by product and merge repeats; returns the new count. */
static size_t
lines_merge(struct line *l, size_t n)
{
	size_t i, out = 0;

	qsort(l, n, sizeof(*l), line_cmp);
	for (i = 0; i < n; i++) {
		if (out > 0 && l[out - 1].product == l[i].product)
			l[out - 1].quantity += l[i].quantity;
		else
			l[out++] = l[i];
	}
	return out;
}

/* Postgres array literals "{1,2,3}" of the products and quantities. */
static enum agora_err
lines_arrays(struct agora_req *r, const struct line *l, size_t n,
    const char **products, const char **quantities)
{
	size_t cap = n * AGORA_PGA_ELEM_MAX + 3, i;
	struct agora_pga p, q;
	char *pb, *qb;

	pb = agora_alloc(r, cap);
	qb = agora_alloc(r, cap);
	if (pb == NULL || qb == NULL)
		return AGORA_E_TOO_LARGE;
	agora_pga_init(&p, pb, cap);
	agora_pga_init(&q, qb, cap);
	for (i = 0; i < n; i++) {
		agora_pga_add_ll(&p, l[i].product);
		agora_pga_add_ll(&q, l[i].quantity);
	}
	*products = agora_pga_end(&p);
	*quantities = agora_pga_end(&q);
	return *products != NULL && *quantities != NULL ? AGORA_OK
	                                                : AGORA_E_TOO_LARGE;
}

/* Read items[] into sorted, merged lines; the problem is sent on error. */
static enum agora_err
items_get(struct agora_req *r, struct json_object *items, struct line **out,
    size_t *nout)
{
	struct json_object *errors = json_object_new_array();
	size_t i, n = json_object_array_length(items);
	struct line *l;
	enum agora_err rc = AGORA_OK, e;

	l = agora_alloc(r, (n + 1) * sizeof(*l));
	if (l == NULL) {
		json_object_put(errors);
		return AGORA_E_TOO_LARGE;
	}
	for (i = 0; i < n; i++) {
		e = line_get(
		    json_object_array_get_idx(items, i), i, &l[i], errors);
		if (e == AGORA_E_BAD_TYPE || rc == AGORA_OK)
			rc = e != AGORA_OK ? e : rc;
	}
	if (rc != AGORA_OK)
		return agora_problem_errors(
		    r, rc, "The request has errors.", errors);
	json_object_put(errors);
	n = lines_merge(l, n);
	for (i = 0; i < n; i++)
		if (l[i].quantity > LINE_QTY_MAX)
			return agora_problem_field(r, AGORA_E_VALIDATION,
			    "items",
			    "a product's quantities add up to more "
			    "than 1000");
	*out = l;
	*nout = n;
	return AGORA_OK;
}

static const struct agora_field order_fields[] = {
	{ "items", AGORA_F_ARRAY, AGORA_F_REQUIRED, 1, ITEMS_MAX },
	{ "payment", AGORA_F_OBJECT, 0, 0, 0 },
	{ "shipping_address", AGORA_F_OBJECT, 0, 0, 0 },
};

static enum agora_err
post_order(struct agora_req *r)
{
	struct agora_value v[3];
	const char *vals[6];
	struct line *lines = NULL;
	size_t n = 0;
	enum agora_err rc;

	if ((rc = agora_valid_body(r, order_fields, 3, v)) != AGORA_OK)
		return rc;
	if ((rc = items_get(r, v[0].o, &lines, &n)) != AGORA_OK)
		return rc;
	if ((rc = agora_order_extras(r, v[1].o, v[2].o, &vals[4], &vals[3])) !=
	    AGORA_OK)
		return rc;
	if ((rc = lines_arrays(r, lines, n, &vals[1], &vals[2])) != AGORA_OK)
		return rc;
	vals[0] = r->user;
	vals[5] = agora_printf(r, "%lld", r->ctx->cfg.order_expiry_seconds);
	return agora_order_submit(r, "agora_order_place", 6, vals);
}

/* --- reading ------------------------------------------------------------ */

/* Run stmt for the order in the path (agora_owned_row()). */
static enum agora_err
owned(struct agora_req *r, const char *stmt, PGresult **res)
{
	return agora_owned_row(r, stmt, "order", res);
}

static enum agora_err
get_order(struct agora_req *r)
{
	PGresult *res;
	enum agora_err rc;

	if ((rc = owned(r, "order_get", &res)) != AGORA_OK)
		return rc;
	return agora_resp_doc(
	    r, PQgetvalue(res, 0, 1), (size_t)PQgetlength(res, 0, 1), NULL);
}

static const char *const statuses[] = { "pending", "paid", "completed",
	"shipped", "delivered", "payment_failed", "cancelled", NULL };

enum { F_STATUS, F_USER };
static const struct agora_qfield list_fields[] = {
	[F_STATUS] = { "status", AGORA_Q_ONE_OF, 0, 0, statuses, "bad_status",
	    "status must be one of pending, paid, completed, shipped, "
	    "delivered, payment_failed, cancelled." },
	[F_USER] = { "user_id", AGORA_Q_ID, 0, 0, NULL, "bad_user_id",
	    "user_id must be a user's id." },
};

/* status and user_id filters; only an admin may name another user. */
static enum agora_err
list_filters(struct agora_req *r, const char **status, const char **user)
{
	struct agora_qvalue v[AGORA_NELEM(list_fields)];
	enum agora_err rc;

	rc = agora_query_fields(r, list_fields, AGORA_NELEM(list_fields), 0, v);
	if (rc != AGORA_OK)
		return rc;
	*status = v[F_STATUS].s;
	*user = v[F_USER].s;
	if (strcmp(r->role, "admin") != 0) {
		if (*user != NULL && strcmp(*user, r->user) != 0)
			return agora_problem(r, AGORA_E_FORBIDDEN, NULL,
			    "Only an admin may list other users' orders.");
		*user = r->user;
	}
	return AGORA_OK;
}

static enum agora_err
list_orders(struct agora_req *r)
{
	const char *vals[4], *after;
	long long limit;
	PGresult *res;
	enum agora_err rc;

	if ((rc = list_filters(r, &vals[1], &vals[0])) != AGORA_OK ||
	    (rc = agora_page_params_id(r, &limit, &after)) != AGORA_OK)
		return rc;
	vals[2] = after;
	vals[3] = agora_printf(r, "%lld", limit + 1);
	rc = agora_db_query(r,
	    vals[0] != NULL ? "order_list_user" : "order_list_all", 4, vals,
	    &res);
	if (rc != AGORA_OK)
		return rc;
	return agora_page_send(r, res, limit);
}

/* --- status changes ----------------------------------------------------- */

struct move {
	const char *vals[4];
	const char *outcome; /* ok, unchanged, invalid, not_found */
	const char *doc;
	size_t doclen;
	const char *products;
};

static enum agora_err
tx_move(struct agora_req *r, void *arg)
{
	struct move *m = arg;
	PGresult *res;
	enum agora_err rc;

	rc = agora_db_query(r, "order_transition", 4, m->vals, &res);
	if (rc != AGORA_OK)
		return rc;
	m->outcome = PQgetvalue(res, 0, 0);
	if (strcmp(m->outcome, "not_found") == 0)
		return AGORA_OK;
	if ((rc = agora_db_query(r, "order_moved", 1, m->vals, &res)) !=
	    AGORA_OK)
		return rc;
	m->doc = PQgetvalue(res, 0, 0);
	m->doclen = (size_t)PQgetlength(res, 0, 0);
	m->products = PQgetvalue(res, 0, 1);
	return AGORA_OK;
}

/*
 * Move the order in r->params[0], whose owner the caller has checked, to
 * status; answers the order, or 409 with bad_code when the machine has no
 * such move.
 */
static enum agora_err
move(struct agora_req *r, struct move *m, const char *bad_code,
    const char *bad_detail)
{
	enum agora_err rc;

	m->vals[0] = r->params[0];
	if ((rc = agora_db_tx(r, tx_move, m)) != AGORA_OK)
		return rc;
	if (strcmp(m->outcome, "not_found") == 0)
		return agora_not_found(r);
	if (strcmp(m->outcome, "invalid") == 0)
		return agora_problem(r, AGORA_E_CONFLICT, bad_code, bad_detail);
	if (strcmp(m->outcome, "ok") == 0 &&
	    strcmp(m->vals[1], "cancelled") == 0)
		agora_stock_bump(r, m->products);
	return agora_resp_raw(r, 200, "application/json", m->doc, m->doclen);
}

static enum agora_err
put_cancel(struct agora_req *r)
{
	struct move m;
	PGresult *res;
	enum agora_err rc;

	if ((rc = owned(r, "order_owner", &res)) != AGORA_OK)
		return rc;
	memset(&m, 0, sizeof(m));
	m.vals[1] = "cancelled";
	m.vals[2] = strcmp(r->role, "admin") == 0 ? "cancelled by an admin"
	                                          : "cancelled by the customer";
	return move(r, &m, "not_cancellable",
	    "Only a pending or paid order can be cancelled.");
}

static const struct agora_field status_fields[] = {
	{ "status", AGORA_F_STRING, AGORA_F_REQUIRED, 1, 20 },
	{ "tracking_number", AGORA_F_STRING, 0, 1, 100 },
};

static enum agora_err
put_status(struct agora_req *r)
{
	struct agora_value v[2];
	struct move m;
	enum agora_err rc;

	if ((rc = agora_valid_body(r, status_fields, 2, v)) != AGORA_OK)
		return rc;
	if (strcmp(v[0].s, "shipped") != 0 && strcmp(v[0].s, "delivered") != 0)
		return agora_problem_field(r, AGORA_E_VALIDATION, "status",
		    "must be \"shipped\" or \"delivered\"");
	memset(&m, 0, sizeof(m));
	m.vals[1] = v[0].s;
	m.vals[3] = v[1].present ? v[1].s : NULL;
	return move(r, &m, "invalid_transition",
	    "Orders go completed, then shipped, then delivered.");
}

static enum agora_err
get_payments(struct agora_req *r)
{
	const char *body;
	PGresult *res;
	enum agora_err rc;

	if ((rc = owned(r, "order_payments", &res)) != AGORA_OK)
		return rc;
	body = agora_printf(r, "{\"data\":%s}", PQgetvalue(res, 0, 1));
	if (body == NULL)
		return AGORA_E_TOO_LARGE;
	return agora_resp_raw(r, 200, "application/json", body, strlen(body));
}

static enum agora_err
get_invoice(struct agora_req *r)
{
	struct agora_file f;
	PGresult *res;
	enum agora_err rc;

	if ((rc = owned(r, "order_invoice", &res)) != AGORA_OK)
		return rc;
	if (PQgetisnull(res, 0, 1))
		return agora_problem(r, AGORA_E_NOT_FOUND, "invoice_not_ready",
		    "The order has no invoice yet: it comes when the order "
		    "is completed.");
	agora_file_of(res, 0, 2, &f);
	return agora_file_send(r, &f, 1);
}

static const struct agora_route routes[] = {
	{ "POST", "/api/v1/orders", AGORA_BODY_JSON, post_order, AGORA_USER },
	{ "GET", "/api/v1/orders", AGORA_BODY_NONE, list_orders, AGORA_USER },
	{ "GET", "/api/v1/orders/{order_id}", AGORA_BODY_NONE, get_order,
	    AGORA_USER },
	{ "PUT", "/api/v1/orders/{order_id}/cancel", AGORA_BODY_NONE,
	    put_cancel, AGORA_USER },
	{ "PUT", "/api/v1/orders/{order_id}/status", AGORA_BODY_JSON,
	    put_status, AGORA_ADMIN },
	{ "GET", "/api/v1/orders/{order_id}/payments", AGORA_BODY_NONE,
	    get_payments, AGORA_USER },
	{ "GET", "/api/v1/orders/{order_id}/invoice", AGORA_BODY_NONE,
	    get_invoice, AGORA_USER },
};

static const struct agora_program program = {
	.name = "orders",
	.routes = routes,
	.nroutes = AGORA_NELEM(routes),
	.stmts = stmts,
	.nstmts = AGORA_NELEM(stmts),
	.needs = AGORA_NEEDS_STORAGE,
};

AGORA_MAIN(program)
