/*
 * worker.h: agora-worker, the outbox engine, and what its handlers share.
 */
#ifndef AGORA_WORKER_H
#define AGORA_WORKER_H

#include "agora.h"

/* What became of one outbox row. */
enum outcome {
	OUT_DONE, /* finished: the row leaves the table */
	OUT_RETRY, /* a transient failure: try again after a backoff */
	OUT_FAIL /* a final failure: the row is dead now */
};

struct job {
	const char *id;
	const char *topic;
	struct json_object *payload;
	long long attempts;
	char error[256]; /* why it failed, kept in last_error */
};

struct worker {
	struct agora_ctx ctx;
	struct agora_arena *arena;
	struct agora_req req;
	unsigned long listening; /* the connection generation LISTENing */
	long long handled, retried, dead, expired;
};

/* A fresh pseudo-request for database calls; the last one's results go. */
struct agora_req *worker_req(struct worker *w);

/* The topics this build handles, as a PostgreSQL array literal. */
extern const char worker_topics[];
enum outcome worker_handle(struct worker *w, struct job *j);
void worker_housekeeping(struct worker *w);

/* Payment providers (provider.c). */
enum pay_result { PAY_OK, PAY_DECLINED, PAY_TRANSIENT };
struct pay_call {
	const char *payment_id;
	long long amount_cents;
	const char *currency;
	const char *token;
	long long attempt;
	const char *charge_ref; /* refunds: the gateway's charge */
	char ref[128]; /* out: the gateway's reference */
	char code[64]; /* out: why it was declined */
	char error[256]; /* out: what went wrong, for the log */
};
int provider_init(const struct agora_config *cfg);
void provider_free(void);
enum pay_result provider_charge(struct pay_call *c);
enum pay_result provider_refund(struct pay_call *c);

/* The statements handlers use, listed in the worker's table. */
#define WORKER_HANDLER_STMTS                                                   \
	{ "charge_begin",                                                      \
		"SELECT action, amount_cents, currency, token, attempts "      \
		"FROM payment_charge_begin($1::bigint, $2)" },                 \
	    { "charge_end",                                                    \
		    "SELECT payment_charge_end($1::bigint, $2::bool, $3, "     \
		    "$4), "                                                    \
		    "(SELECT string_agg(i.product_id::text, ',') FROM "        \
		    "order_items i JOIN payments p ON p.order_id = "           \
		    "i.order_id "                                              \
		    "WHERE p.id = $1::bigint)" },                              \
	    { "refund_begin",                                                  \
		    "SELECT action, provider_ref, amount_cents, currency, "    \
		    "token, "                                                  \
		    "attempts FROM payment_refund_begin($1::bigint)" },        \
	    { "refund_end",                                                    \
		    "SELECT payment_refund_end($1::bigint, $2::bool, $3)" },   \
	    { "orders_expire",                                                 \
		    "SELECT order_id::text, product_ids FROM "                 \
		    "orders_expire($1::int)" },                                \
	    { "keys_purge", "SELECT idempotency_keys_purge($1::int)" },        \
	{                                                                      \
		"events_waiting",                                              \
		    "SELECT gateway_events_apply_waiting($1::int)"             \
	}

#endif /* AGORA_WORKER_H */
