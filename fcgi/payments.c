/*
 * payments.c: /api/v1/payments: asking for a charge, reading payments,
 * refunds, and the payment gateway's webhook.
 *
 * Nothing here talks to the gateway: a charge or a refund is a row in
 * payments plus an outbox row, written in one transaction, and
 * agora-worker does the call (202 Accepted).  The webhook is signed with
 * webhook_secret: Agora-Signature "t=<unix>,v1=<hex HMAC-SHA256 of
 * "<t>.<body>">", checked in constant time and refused when more than five
 * minutes old (signature.c); each gateway event id is stored and applied
 * once.
 */
#include "config.h"

#include <string.h>
#include <time.h>

#include "shop.h"
#include "signature.h"

#define IGNORED "{\"received\":true,\"result\":\"ignored\"}"

static const struct agora_stmt stmts[] = {
	AGORA_IDEM_STMTS,
	{ "payment_start",
	    "SELECT t.r->>'error', t.r->'payment', t.r->'payment'->>'id' "
	    "FROM payment_start($1::bigint, $2::bigint, $3::jsonb, $4::int) "
	    "AS t(r)" },
	{ "payment_get",
	    "SELECT o.user_id::text, payment_doc(p)::text FROM payments p "
	    "JOIN orders o ON o.id = p.order_id WHERE p.id = $1::bigint",
	    AGORA_STMT_READ },
	{ "payment_refund", "SELECT payment_refund_request($1::bigint)" },
	{ "payment_doc",
	    "SELECT payment_doc(p)::text FROM payments p "
	    "WHERE p.id = $1::bigint",
	    AGORA_STMT_READ },
	{ "event_receive",
	    "SELECT result, product_ids FROM "
	    "gateway_event_receive_stock($1, $2, $3::bigint, $4::jsonb)" },
};

/* --- POST /payments ----------------------------------------------------- */

static enum agora_err
tx_start(struct agora_req *r, void *arg)
{
	const char *const *vals = arg;
	PGresult *res;
	enum agora_err rc;

	if ((rc = agora_db_query(r, "payment_start", 4, vals, &res)) !=
	    AGORA_OK)
		return rc;
	if (!PQgetisnull(res, 0, 0) &&
	    strcmp(PQgetvalue(res, 0, 0), "not_found") == 0)
		return agora_problem(
		    r, AGORA_E_NOT_FOUND, NULL, "No such order.");
	if (!PQgetisnull(res, 0, 0))
		return agora_problem(r, AGORA_E_CONFLICT,
		    "order_not_awaiting_payment",
		    "The order is not pending, or a payment of it is already "
		    "pending or made.");
	agora_resp_header(r, "Location",
	    agora_printf(r, "/api/v1/payments/%s", PQgetvalue(res, 0, 2)));
	return agora_resp_cell(r, 202, res, 0, 1);
}

static const struct agora_field start_fields[] = {
	{ "order_id", AGORA_F_STRING, AGORA_F_REQUIRED, 1, 20 },
	{ "method", AGORA_F_STRING, AGORA_F_REQUIRED, 1, 16 },
	{ "token", AGORA_F_STRING, AGORA_F_REQUIRED, 1, 255 },
};

static enum agora_err
post_payment(struct agora_req *r)
{
	struct agora_value v[3];
	struct json_object *pay;
	const char *vals[4];
	enum agora_err rc;

	if ((rc = agora_valid_body(r, start_fields, 3, v)) != AGORA_OK)
		return rc;
	if (strcmp(v[1].s, "card") != 0)
		return agora_problem_field(
		    r, AGORA_E_VALIDATION, "method", "must be \"card\"");
	if (!agora_id_ok(v[0].s))
		return agora_problem(
		    r, AGORA_E_NOT_FOUND, NULL, "No such order.");
	pay = json_object_new_object();
	json_object_object_add(pay, "method", json_object_new_string("card"));
	json_object_object_add(pay, "token", json_object_new_string(v[2].s));
	json_object_object_add(pay, "provider",
	    json_object_new_string(r->ctx->cfg.payment_provider));
	vals[0] = v[0].s;
	vals[1] = r->user;
	vals[2] = agora_strdup(r, json_object_to_json_string(pay));
	json_object_put(pay);
	/* A payment given later holds the order as long as one given with
	 * it (sql/0013). */
	vals[3] = agora_printf(r, "%lld", r->ctx->cfg.order_expiry_seconds);
	if (vals[2] == NULL)
		return AGORA_E_TOO_LARGE;
	return agora_idem_tx(r, tx_start, vals, NULL);
}

/* --- reading ------------------------------------------------------------ */

static enum agora_err
get_payment(struct agora_req *r)
{
	PGresult *res;
	enum agora_err rc;

	if ((rc = agora_owned_row(r, "payment_get", "payment", &res)) !=
	    AGORA_OK)
		return rc;
	return agora_resp_cell(r, 200, res, 0, 1);
}

/* --- refunds ------------------------------------------------------------ */

static enum agora_err
tx_refund(struct agora_req *r, void *arg)
{
	const char *const *vals = arg;
	PGresult *res;
	enum agora_err rc;
	int refunding;

	if ((rc = agora_db_query(r, "payment_refund", 1, vals, &res)) !=
	    AGORA_OK)
		return rc;
	refunding = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	/* A statement of its own: it must see what the last one wrote. */
	if ((rc = agora_db_query(r, "payment_doc", 1, vals, &res)) != AGORA_OK)
		return rc;
	if (PQntuples(res) == 0)
		return agora_not_found(r);
	if (!refunding)
		return agora_problem(r, AGORA_E_CONFLICT, "not_refundable",
		    "Only a succeeded payment that is not being refunded can "
		    "be refunded.");
	return agora_resp_cell(r, 202, res, 0, 0);
}

static enum agora_err
post_refund(struct agora_req *r)
{
	const char *vals[1] = { r->params[0] };

	return agora_idem_tx(r, tx_refund, vals, NULL);
}

/* --- the webhook -------------------------------------------------------- */

static enum agora_err
bad_signature(struct agora_req *r, const char *detail)
{
	return agora_problem(r, AGORA_E_BAD_REQUEST, "bad_signature", detail);
}

/* Whether one of the header's signatures signs "<t>.<body>", recently. */
static enum agora_err
signature_check(struct agora_req *r)
{
	const char *secret = r->ctx->cfg.webhook_secret;

	if (secret[0] == '\0')
		return agora_problem(r, AGORA_E_NOT_FOUND, "webhook_disabled",
		    "No webhook_secret is configured.");
	switch (signature_verify(secret, agora_param(r, "HTTP_AGORA_SIGNATURE"),
	    r->body, r->body_len, time(NULL))) {
	case SIGNATURE_OK:
		return AGORA_OK;
	case SIGNATURE_MALFORMED:
		return bad_signature(r,
		    "Agora-Signature is missing or "
		    "malformed.");
	case SIGNATURE_OLD:
		return bad_signature(r, "The signature is too old.");
	default:
		return bad_signature(r, "The signature does not match.");
	}
}

static const struct agora_field event_fields[] = {
	{ "id", AGORA_F_STRING, AGORA_F_REQUIRED, 1, 255 },
	{ "type", AGORA_F_STRING, AGORA_F_REQUIRED, 1, 64 },
	{ "data", AGORA_F_OBJECT, AGORA_F_REQUIRED, 0, 0 },
	{ "created", AGORA_F_INT, 0, 0, INT64_MAX },
};

/* The payment an event is about: data.payment_id, one of our ids. */
static const char *
event_payment(struct json_object *data)
{
	struct json_object *o;
	const char *s;

	if (!json_object_object_get_ex(data, "payment_id", &o) ||
	    !json_object_is_type(o, json_type_string))
		return NULL;
	s = json_object_get_string(o);
	return agora_id_ok(s) ? s : NULL;
}

static enum agora_err
post_webhook(struct agora_req *r)
{
	struct agora_value v[4];
	const char *vals[4], *body;
	PGresult *res;
	enum agora_err rc;

	/* The signature was checked before the body was parsed. */
	if ((rc = agora_valid_body(r, event_fields, 4, v)) != AGORA_OK)
		return rc;
	vals[0] = v[0].s;
	vals[1] = v[1].s;
	vals[2] = event_payment(v[2].o);
	vals[3] = r->body;
	/* Not about one of our payments: acknowledged, so that the
	 * gateway does not send it again and again, and ignored. */
	if (vals[2] == NULL)
		return agora_resp_raw(
		    r, 200, "application/json", IGNORED, sizeof(IGNORED) - 1);
	if ((rc = agora_db_write(r, "event_receive", 4, vals, &res)) !=
	    AGORA_OK)
		return rc;
	/* An event that gave stock back (a failed charge): drop the
	 * cached copies of those products. */
	if (!PQgetisnull(res, 0, 1))
		agora_stock_bump(r, PQgetvalue(res, 0, 1));
	body = agora_printf(
	    r, "{\"received\":true,\"result\":\"%s\"}", PQgetvalue(res, 0, 0));
	if (body == NULL)
		return AGORA_E_TOO_LARGE;
	return agora_resp_raw(r, 200, "application/json", body, strlen(body));
}

static const struct agora_route routes[] = {
	{ "POST", "/api/v1/payments", AGORA_BODY_JSON, post_payment,
	    AGORA_USER },
	{ "GET", "/api/v1/payments/{payment_id}", AGORA_BODY_NONE, get_payment,
	    AGORA_USER },
	{ "POST", "/api/v1/payments/{payment_id}/refund",
	    AGORA_BODY_JSON_OPTIONAL, post_refund, AGORA_ADMIN },
	{ "POST", "/api/v1/payments/webhook", AGORA_BODY_JSON, post_webhook,
	    AGORA_ANON, AGORA_RL_NONE, signature_check },
};

static const struct agora_program program = {
	.name = "payments",
	.routes = routes,
	.nroutes = AGORA_NELEM(routes),
	.stmts = stmts,
	.nstmts = AGORA_NELEM(stmts),
	.needs = AGORA_NEEDS(AGORA_SECRET_WEBHOOK),
};

AGORA_MAIN(program)
