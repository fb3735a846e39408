/*
 * handlers.c: what agora-worker does with each outbox topic, and the
 * periodic passes (order expiry, idempotency keys, early webhook events).
 *
 * Delivery is at least once: a row may run again after a crash or an
 * expired lease.  Each handler is idempotent: the payment id is the
 * gateway's idempotency key, and payment_charge_end() and
 * payment_refund_end() record an outcome only once.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker.h"

#define EXPIRE_BATCH 100
#define PURGE_BATCH 1000
#define EVENTS_BATCH 100
#define STR(x) #x
#define XSTR(x) STR(x)

const char worker_topics[] = "{payment.charge,payment.refund}";

static const char *
payment_of(struct job *j)
{
	struct json_object *o;
	const char *s;

	if (j->payload == NULL ||
	    !json_object_object_get_ex(j->payload, "payment_id", &o))
		return NULL;
	s = json_object_get_string(o);
	return s != NULL && agora_id_ok(s) ? s : NULL;
}

static enum outcome
db_failed(struct job *j, enum agora_err rc)
{
	snprintf(
	    j->error, sizeof(j->error), "database: %s", agora_err_code(rc));
	return OUT_RETRY;
}

static enum outcome
call_failed(struct job *j, enum pay_result pr, const struct pay_call *c)
{
	if (pr == PAY_TRANSIENT) {
		snprintf(
		    j->error, sizeof(j->error), "gateway: %.200s", c->error);
		return OUT_RETRY;
	}
	snprintf(j->error, sizeof(j->error), "declined: %s", c->code);
	return OUT_FAIL;
}

/* Record the gateway's final answer to a charge. */
static enum outcome
charge_record(struct worker *w, struct job *j, const char *payment,
    enum pay_result pr, struct pay_call *c)
{
	const char *vals[4] = { payment, pr == PAY_OK ? "true" : "false",
		pr == PAY_OK ? c->ref : NULL, pr == PAY_OK ? NULL : c->code };
	struct agora_req *r = worker_req(w);
	PGresult *res;
	enum agora_err rc;

	if ((rc = agora_db_query(r, "charge_end", 4, vals, &res)) != AGORA_OK)
		return db_failed(j, rc);
	/* A failed payment gave its order's stock back. */
	if (strcmp(PQgetvalue(res, 0, 0), "failed") == 0 &&
	    !PQgetisnull(res, 0, 1))
		agora_catalog_bump(r, PQgetvalue(res, 0, 1));
	agora_log("info", "payment %s: %s", payment, PQgetvalue(res, 0, 0));
	return OUT_DONE;
}

static enum outcome
handle_charge(struct worker *w, struct job *j)
{
	const char *payment = payment_of(j), *vals[2];
	struct agora_req *r = worker_req(w);
	struct pay_call c;
	enum pay_result pr;
	PGresult *res;
	enum agora_err rc;

	if (payment == NULL) {
		snprintf(j->error, sizeof(j->error), "no payment_id");
		return OUT_FAIL;
	}
	vals[0] = payment;
	vals[1] = w->ctx.cfg.payment_provider;
	if ((rc = agora_db_query(r, "charge_begin", 2, vals, &res)) != AGORA_OK)
		return db_failed(j, rc);
	if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "charge") != 0)
		return OUT_DONE;
	memset(&c, 0, sizeof(c));
	c.payment_id = payment;
	c.amount_cents = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	c.currency = PQgetvalue(res, 0, 2);
	c.token = PQgetvalue(res, 0, 3);
	c.attempt = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
	pr = provider_charge(&c);
	if (pr == PAY_TRANSIENT)
		return call_failed(j, pr, &c);
	return charge_record(w, j, payment, pr, &c);
}

static enum outcome
handle_refund(struct worker *w, struct job *j)
{
	const char *payment = payment_of(j), *vals[3];
	struct agora_req *r = worker_req(w);
	struct pay_call c;
	enum pay_result pr;
	PGresult *res;
	enum agora_err rc;

	if (payment == NULL) {
		snprintf(j->error, sizeof(j->error), "no payment_id");
		return OUT_FAIL;
	}
	vals[0] = payment;
	if ((rc = agora_db_query(r, "refund_begin", 1, vals, &res)) != AGORA_OK)
		return db_failed(j, rc);
	if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "refund") != 0)
		return OUT_DONE;
	memset(&c, 0, sizeof(c));
	c.payment_id = payment;
	c.charge_ref = PQgetvalue(res, 0, 1);
	c.amount_cents = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
	c.currency = PQgetvalue(res, 0, 3);
	c.token = PQgetvalue(res, 0, 4);
	pr = provider_refund(&c);
	if (pr == PAY_TRANSIENT)
		return call_failed(j, pr, &c);
	vals[1] = pr == PAY_OK ? "true" : "false";
	vals[2] = pr == PAY_OK ? NULL : c.code;
	r = worker_req(w);
	if ((rc = agora_db_query(r, "refund_end", 3, vals, &res)) != AGORA_OK)
		return db_failed(j, rc);
	return pr == PAY_OK ? OUT_DONE : call_failed(j, pr, &c);
}

enum outcome
worker_handle(struct worker *w, struct job *j)
{
	if (strcmp(j->topic, "payment.charge") == 0)
		return handle_charge(w, j);
	if (strcmp(j->topic, "payment.refund") == 0)
		return handle_refund(w, j);
	snprintf(j->error, sizeof(j->error), "no handler for %s", j->topic);
	return OUT_FAIL;
}

/* Cancel unpaid orders whose time is up, a batch at a time. */
static void
expire_orders(struct worker *w)
{
	const char *vals[1] = { XSTR(EXPIRE_BATCH) };
	struct agora_req *r;
	PGresult *res;
	int i, n;

	do {
		r = worker_req(w);
		if (agora_db_query(r, "orders_expire", 1, vals, &res) !=
		    AGORA_OK)
			return;
		n = PQntuples(res);
		for (i = 0; i < n; i++) {
			agora_log(
			    "info", "order %s expired", PQgetvalue(res, i, 0));
			if (!PQgetisnull(res, i, 1))
				agora_catalog_bump(r, PQgetvalue(res, i, 1));
		}
		w->expired += n;
	} while (n == EXPIRE_BATCH);
}

/* The passes that are not outbox rows: expiry and housekeeping. */
void
worker_housekeeping(struct worker *w)
{
	const char *purge[1] = { XSTR(PURGE_BATCH) };
	const char *events[1] = { XSTR(EVENTS_BATCH) };
	PGresult *res;

	expire_orders(w);
	while (agora_db_query(worker_req(w), "keys_purge", 1, purge, &res) ==
	        AGORA_OK &&
	    strtoll(PQgetvalue(res, 0, 0), NULL, 10) == PURGE_BATCH)
		;
	(void)agora_db_query(worker_req(w), "events_waiting", 1, events, NULL);
}
