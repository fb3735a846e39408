/*
 * order.c: placing an order, shared by POST /orders and POST /cart/checkout
 * so that both make it exactly the same way.
 *
 * The work is one SQL function (order_place or cart_checkout in
 * sql/0005_orders.sql) called inside a transaction that first claims the
 * Idempotency-Key and last stores the answer.  When the function reports
 * a problem (stock short, a product unknown) the transaction rolls back,
 * taking any stock it had reserved with it.  After the commit, the cached
 * documents of the products involved are invalidated, since their
 * stock_available changed.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "shop.h"

static const struct agora_field payment_fields[] = {
	{ "method", AGORA_F_STRING, AGORA_F_REQUIRED, 1, 16 },
	{ "token", AGORA_F_STRING, AGORA_F_REQUIRED, 1, 255 },
};

enum address_field {
	AD_NAME,
	AD_LINE1,
	AD_LINE2,
	AD_CITY,
	AD_REGION,
	AD_POSTAL,
	AD_COUNTRY,
	AD_PHONE,
	AD__MAX
};

static const struct agora_field address_fields[AD__MAX] = {
	[AD_NAME] = { "name", AGORA_F_STRING, AGORA_F_REQUIRED, 1, 200 },
	[AD_LINE1] = { "line1", AGORA_F_STRING, AGORA_F_REQUIRED, 1, 200 },
	[AD_LINE2] = { "line2", AGORA_F_STRING, 0, 0, 200 },
	[AD_CITY] = { "city", AGORA_F_STRING, AGORA_F_REQUIRED, 1, 100 },
	[AD_REGION] = { "region", AGORA_F_STRING, 0, 0, 100 },
	[AD_POSTAL] = { "postal_code", AGORA_F_STRING, 0, 0, 20 },
	[AD_COUNTRY] = { "country", AGORA_F_STRING, AGORA_F_REQUIRED, 2, 2 },
	/* Where SMS notifications go, when that channel is on. */
	[AD_PHONE] = { "phone", AGORA_F_STRING, 0, 0, 32 },
};

/* E.164: a + and at most 15 digits, the first not 0; the shortest numbers
 * in use (Niue, Tokelau) have 7. */
#define PHONE_DIGITS_MIN 7
#define PHONE_DIGITS_MAX 15

/*
 * A phone number in E.164 (+4930123456), from what people write: spaces,
 * dashes, dots and parentheses between the digits, and 00 for the +.
 * A number without its country code cannot be told apart from another
 * country's and is refused.  out has room for 17 bytes; 0 or -1.
 */
int
agora_phone_e164(const char *in, char out[PHONE_DIGITS_MAX + 2])
{
	size_t n = 0;

	if (*in == '+')
		in++;
	else if (in[0] == '0' && in[1] == '0')
		in += 2;
	else
		return -1;
	out[n++] = '+';
	for (; *in != '\0'; in++) {
		if (*in >= '0' && *in <= '9') {
			if (n > PHONE_DIGITS_MAX)
				return -1;
			out[n++] = *in;
		} else if (strchr(" -.()", *in) == NULL) {
			return -1;
		}
	}
	out[n] = '\0';
	return n - 1 >= PHONE_DIGITS_MIN && out[1] != '0' ? 0 : -1;
}

/* Put the address's phone, when it has one, into E.164. */
static enum agora_err
address_phone(struct agora_req *r, struct json_object *address,
    const struct agora_value *phone)
{
	char e164[PHONE_DIGITS_MAX + 2];

	if (!phone->present || phone->len == 0)
		return AGORA_OK;
	if (agora_phone_e164(phone->s, e164) != 0)
		return agora_problem_field(r, AGORA_E_VALIDATION,
		    "shipping_address.phone",
		    "must be an international number: + (or 00), the country "
		    "code and the number, 7 to 15 digits in all (E.164)");
	json_object_object_add(address, "phone", json_object_new_string(e164));
	return AGORA_OK;
}

static enum agora_err
worse(enum agora_err a, enum agora_err b)
{
	if (a == AGORA_E_BAD_TYPE || b == AGORA_E_BAD_TYPE)
		return AGORA_E_BAD_TYPE;
	return a != AGORA_OK ? a : b;
}

static const char *
json_text(struct agora_req *r, struct json_object *o)
{
	return o == NULL
	    ? NULL
	    : agora_strdup(r,
	          json_object_to_json_string_ext(o,
	              JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
}

/*
 * Check the optional payment and shipping_address objects of an order
 * request (NULL when absent) and give them back as JSON text for the
 * database.  On failure the problem is the answer already.
 */
enum agora_err
agora_order_extras(struct agora_req *r, struct json_object *payment,
    struct json_object *address, const char **payment_json,
    const char **address_json)
{
	struct json_object *errors = json_object_new_array();
	struct agora_value pv[AGORA_NELEM(payment_fields)];
	struct agora_value av[AGORA_NELEM(address_fields)];
	enum agora_err rc = AGORA_OK;

	if (errors == NULL)
		return AGORA_E_INTERNAL;
	if (payment != NULL) {
		rc = agora_valid(payment, "payment", payment_fields,
		    AGORA_NELEM(payment_fields), pv, errors);
		if (rc == AGORA_OK && strcmp(pv[0].s, "card") != 0) {
			json_object_put(errors);
			return agora_problem_field(r, AGORA_E_VALIDATION,
			    "payment.method", "must be \"card\"");
		}
	}
	if (address != NULL)
		rc = worse(rc,
		    agora_valid(address, "shipping_address", address_fields,
		        AGORA_NELEM(address_fields), av, errors));
	if (rc != AGORA_OK)
		return agora_problem_errors(
		    r, rc, "The request has errors.", errors);
	json_object_put(errors);
	if (address != NULL &&
	    (rc = address_phone(r, address, &av[AD_PHONE])) != AGORA_OK)
		return rc;
	/* The worker records the provider that charges; this is its guess. */
	if (payment != NULL)
		agora_json_set(payment, "provider",
		    json_object_new_string(r->ctx->cfg.payment_provider));
	*payment_json = json_text(r, payment);
	*address_json = json_text(r, address);
	return AGORA_OK;
}

struct place {
	const char *stmt;
	int n;
	const char *const *vals;
	const char *products; /* "1,2,3": whose cache to invalidate */
};

/* 409 for an order the policy refused, with the limit it met. */
static enum agora_err
limit_problem(struct agora_req *r, PGresult *res, const char *detail)
{
	long long limit = 0;

	(void)agora_parse_ll(PQgetvalue(res, 0, 5), 0, INT64_MAX, &limit);
	return agora_problem_ext(r, AGORA_E_CONFLICT, PQgetvalue(res, 0, 2),
	    detail, "limit", json_object_new_int64(limit));
}

/* Answer the problem the SQL function reported; the caller rolls back. */
static enum agora_err
place_problem(struct agora_req *r, PGresult *res)
{
	const char *code = PQgetvalue(res, 0, 2);
	struct json_object *products = NULL;

	if (!PQgetisnull(res, 0, 3))
		products = json_tokener_parse(PQgetvalue(res, 0, 3));
	if (strcmp(code, "insufficient_stock") == 0)
		return agora_problem_ext(r, AGORA_E_CONFLICT, code,
		    "Not enough stock for some products.", "products",
		    products);
	if (strcmp(code, "unknown_product") == 0)
		return agora_problem_ext(r, AGORA_E_VALIDATION, code,
		    "Some products do not exist or are no longer sold.",
		    "products", products);
	json_object_put(products);
	if (strcmp(code, "unpaid_order_limit") == 0)
		return limit_problem(r, res,
		    "Too many of your orders await payment: pay for or cancel "
		    "one first.");
	if (strcmp(code, "reserved_units_limit") == 0)
		return limit_problem(r, res,
		    "Your unpaid orders would hold more units than one account "
		    "may: pay for or cancel one first.");
	if (strcmp(code, "mixed_currency") == 0)
		return agora_problem(r, AGORA_E_VALIDATION, code,
		    "An order's products must share one currency.");
	if (strcmp(code, "cart_empty") == 0)
		return agora_problem(
		    r, AGORA_E_VALIDATION, code, "The cart is empty.");
	return agora_problem(
	    r, AGORA_E_VALIDATION, code, "The order has no items.");
}

static enum agora_err
tx_place(struct agora_req *r, void *arg)
{
	struct place *p = arg;
	PGresult *res;
	enum agora_err rc;

	if ((rc = agora_db_query(r, p->stmt, p->n, p->vals, &res)) != AGORA_OK)
		return rc;
	if (PQntuples(res) != 1)
		return AGORA_E_INTERNAL;
	if (!PQgetisnull(res, 0, 2))
		return place_problem(r, res);
	agora_resp_header(r, "Location",
	    agora_printf(r, "/api/v1/orders/%s", PQgetvalue(res, 0, 1)));
	p->products = PQgetvalue(res, 0, 4);
	return agora_resp_cell(r, 201, res, 0, 0);
}

/*
 * Run stmt (agora_order_place or agora_cart_checkout) with vals, and the
 * order policy of agora.conf as the last value (sql/0013), under the
 * request's Idempotency-Key; answer 201 with the order, a replay, or the
 * problem.
 */
enum agora_err
agora_order_submit(
    struct agora_req *r, const char *stmt, int n, const char *const *vals)
{
	const struct agora_config *cfg = &r->ctx->cfg;
	const char *all[AGORA_ORDER_VALS_MAX + 1];
	struct place p = { stmt, n + 1, all, NULL };
	enum agora_err rc;
	int replayed;

	if (n > AGORA_ORDER_VALS_MAX)
		return AGORA_E_INTERNAL;
	memcpy(all, vals, (size_t)n * sizeof(*vals));
	all[n] = agora_printf(r,
	    "{\"unpaid_max\":%lld,\"units_max\":%lld,\"unpaid_ttl\":%lld,"
	    "\"ip\":\"%s\",\"ip_units_max\":%lld}",
	    cfg->order_unpaid_max, cfg->order_reserved_units_max,
	    cfg->order_unpaid_hold_seconds, agora_client_addr(r),
	    cfg->order_reserved_units_per_ip);
	rc = agora_idem_tx(r, tx_place, &p, &replayed);
	if (rc == AGORA_OK && !replayed)
		agora_stock_bump(r, p.products);
	return rc;
}
