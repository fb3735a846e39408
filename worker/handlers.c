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
#include <time.h>

#include "worker.h"

#define EXPIRE_BATCH 100
#define PURGE_BATCH 1000
/* Batches of old analytics events one housekeeping pass deletes, so that
 * a backlog (the first pass after an upgrade) goes over many passes while
 * charges and mails keep moving. */
#define PRUNE_PASS_BATCHES 5
#define EVENTS_BATCH 100
/*
 * Charges are begun and recorded a chunk at a time: one while the gateway
 * is slow, so that a crash loses few answers and the first orders of a
 * batch wait for their own call only; doubled up to 128 while a chunk's
 * calls take under 50 ms, as the simulated gateway's do.  A chunk stops
 * calling once its calls have taken 50 ms: a charge begun is one a
 * cancellation can no longer withdraw (it may have reached the gateway),
 * so the charges begun and not called are taken back (charge_unbegin).
 */
#define CHUNK_MIN 1
#define CHUNK_MAX 128
#define CHUNK_FAST_MS 50

static const char *
payment_of(struct job *j)
{
	return job_id(j, "payment_id");
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

/* A PostgreSQL array literal of the payments of the charge jobs. */
static const char *
charge_ids(struct agora_req *r, struct job **jobs, int n)
{
	size_t cap = (size_t)n * AGORA_PGA_ELEM_MAX + 3;
	char *buf = agora_alloc(r, cap);
	struct agora_pga a;
	int i;

	if (buf == NULL)
		return NULL;
	agora_pga_init(&a, buf, cap);
	for (i = 0; i < n; i++)
		agora_pga_add(&a, payment_of(jobs[i]));
	return agora_pga_end(&a);
}

/* The job of a payment id, in the batch. */
static struct job *
job_of(struct job **jobs, int n, const char *payment)
{
	int i;

	for (i = 0; i < n; i++)
		if (strcmp(payment_of(jobs[i]), payment) == 0)
			return jobs[i];
	return NULL;
}

/* One final answer of the gateway, for charge_end's recordset. */
static void
outcome_add(struct json_object *set, const char *payment, enum pay_result pr,
    const struct pay_call *c)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(
	    o, "p", json_object_new_int64(strtoll(payment, NULL, 10)));
	json_object_object_add(o, "ok", json_object_new_boolean(pr == PAY_OK));
	json_object_object_add(
	    o, "ref", pr == PAY_OK ? json_object_new_string(c->ref) : NULL);
	json_object_object_add(
	    o, "code", pr == PAY_OK ? NULL : json_object_new_string(c->code));
	/* payment_charge_end_many writes the order's rows under it. */
	json_object_object_add(o, "t",
	    agora_trace_id() != NULL ? json_object_new_string(agora_trace_id())
	                             : NULL);
	json_object_array_add(set, o);
}

/*
 * Call the gateway for each payment that charge_begin said to charge;
 * final answers go into set, transient failures are retried later.
 * Returns the first row not reached: the worker must stop, or the
 * chunk's calls have taken CHUNK_FAST_MS (the gateway is slow), and the
 * rest wait for charge_unbegin and a later chunk, their jobs OUT_NONE.
 */
static int
charge_calls(struct worker *w, struct job **jobs, int n, PGresult *begun,
    struct json_object *set)
{
	long long t0 = worker_now_ms();
	struct pay_call c;
	enum pay_result pr;
	struct job *j;
	int i;

	for (i = 0; i < PQntuples(begun); i++) {
		if (worker_tick(w) ||
		    (i > 0 && worker_now_ms() - t0 >= CHUNK_FAST_MS))
			break;
		if ((j = job_of(jobs, n, PQgetvalue(begun, i, 0))) == NULL)
			continue;
		j->outcome = OUT_DONE;
		if (strcmp(PQgetvalue(begun, i, 1), "charge") != 0)
			continue;
		memset(&c, 0, sizeof(c));
		c.payment_id = PQgetvalue(begun, i, 0);
		c.amount_cents = strtoll(PQgetvalue(begun, i, 2), NULL, 10);
		c.currency = PQgetvalue(begun, i, 3);
		c.token = PQgetvalue(begun, i, 4);
		c.attempt = strtoll(PQgetvalue(begun, i, 5), NULL, 10);
		job_trace_begin(j);
		pr = provider_charge(&c);
		if (pr == PAY_TRANSIENT)
			j->outcome = call_failed(j, pr, &c);
		else
			outcome_add(set, c.payment_id, pr, &c);
		agora_trace_end();
	}
	return i;
}

/*
 * Take back the attempt charge_begin counted for each payment from row
 * `from` on, whose gateway call was never made: a cancellation meanwhile
 * then withdraws the charge, as one never tried, instead of leaving it to
 * be made and refunded.  If this fails the attempts stand, which only
 * errs that safe way.
 */
static void
charge_unbegin(struct worker *w, PGresult *begun, int from)
{
	int n = PQntuples(begun) - from, i, k = 0;
	size_t cap = (size_t)(n > 0 ? n : 0) * AGORA_PGA_ELEM_MAX + 3;
	struct agora_req *r = worker_req_reset(w);
	char *ids = agora_alloc(r, cap), *tries = agora_alloc(r, cap);
	struct agora_pga a, b;
	const char *vals[2];

	if (n <= 0 || ids == NULL || tries == NULL)
		return;
	agora_pga_init(&a, ids, cap);
	agora_pga_init(&b, tries, cap);
	for (i = from; i < PQntuples(begun); i++)
		if (strcmp(PQgetvalue(begun, i, 1), "charge") == 0) {
			agora_pga_add(&a, PQgetvalue(begun, i, 0));
			agora_pga_add(&b, PQgetvalue(begun, i, 5));
			k++;
		}
	if (k == 0)
		return;
	vals[0] = agora_pga_end(&a);
	vals[1] = agora_pga_end(&b);
	if (vals[0] == NULL || vals[1] == NULL ||
	    agora_db_query(r, "charge_unbegin", 2, vals, NULL) != AGORA_OK)
		agora_log("warning",
		    "charges not made keep their attempt: a cancellation "
		    "will refund them");
	else
		agora_log(
		    "info", "charges begun and not made, taken back: %d", k);
}

/*
 * Record the final answers in one statement.  If it fails, nothing was
 * recorded (one transaction), and the rows are retried: the gateway
 * answers a repeated charge from its idempotency key.
 */
static void
charge_record(
    struct worker *w, struct job **jobs, int n, struct json_object *set)
{
	const char *vals[1];
	struct agora_req *r = worker_req_reset(w);
	PGresult *res;
	enum agora_err rc;
	long long paid = 0, failed = 0;
	int i;

	vals[0] = json_object_to_json_string(set);
	if ((rc = agora_db_query(r, "charge_end", 1, vals, &res)) != AGORA_OK) {
		for (i = 0; i < n; i++)
			if (jobs[i]->outcome == OUT_DONE)
				jobs[i]->outcome = job_db_failed(jobs[i], rc);
		return;
	}
	for (i = 0; i < PQntuples(res); i++) {
		/* A failed payment gave its order's stock back. */
		if (strcmp(PQgetvalue(res, i, 1), "failed") == 0 &&
		    !PQgetisnull(res, i, 2))
			agora_stock_bump(r, PQgetvalue(res, i, 2));
		paid += strcmp(PQgetvalue(res, i, 1), "paid") == 0;
		failed += strcmp(PQgetvalue(res, i, 1), "failed") == 0;
	}
	agora_log("info", "charges recorded: %d (%lld paid, %lld failed)",
	    PQntuples(res), paid, failed);
}

/*
 * Move the jobs of a chunk that were not reached (OUT_NONE) to its end,
 * in their order; returns how many there are.
 */
static int
chunk_left(struct job **jobs, int n)
{
	struct job *t;
	int i, k, done = 0;

	for (i = 0; i < n; i++)
		if (jobs[i]->outcome != OUT_NONE) {
			t = jobs[i];
			for (k = i; k > done; k--)
				jobs[k] = jobs[k - 1];
			jobs[done++] = t;
		}
	return n - done;
}

/*
 * A chunk of payment.charge jobs: begin them in one statement, call the
 * gateway for each, record the answers in one statement.  Chunks are
 * small so that a crash loses few answers and a slow gateway keeps the
 * first orders of a batch waiting for a few calls only.  Returns how many
 * of its jobs were not reached, now at its end.
 */
static int
charge_chunk(struct worker *w, struct job **jobs, int n)
{
	struct json_object *set = NULL;
	const char *vals[2];
	struct agora_req *r = worker_req_reset(w);
	PGresult *begun = NULL;
	enum agora_err rc = AGORA_E_TOO_LARGE;
	int i, reached;

	vals[0] = charge_ids(r, jobs, n);
	vals[1] = w->ctx.cfg.payment_provider;
	if (vals[0] != NULL)
		rc = agora_db_query(r, "charge_begin", 2, vals, &begun);
	/* The calls and charge_record reset the arena that holds begun. */
	if (rc == AGORA_OK)
		begun =
		    PQcopyResult(begun, PG_COPYRES_TUPLES | PG_COPYRES_ATTRS);
	if (rc != AGORA_OK || begun == NULL ||
	    (set = json_object_new_array()) == NULL) {
		for (i = 0; i < n; i++)
			jobs[i]->outcome = job_db_failed(jobs[i], rc);
		goto out;
	}
	reached = charge_calls(w, jobs, n, begun, set);
	if (json_object_array_length(set) > 0)
		charge_record(w, jobs, n, set);
	charge_unbegin(w, begun, reached);
out:
	json_object_put(set);
	PQclear(begun);
	return chunk_left(jobs, n);
}

static enum outcome
handle_refund(struct worker *w, struct job *j)
{
	const char *payment = payment_of(j), *vals[3];
	struct agora_req *r = worker_req_reset(w);
	struct pay_call c;
	enum pay_result pr;
	PGresult *res;
	enum agora_err rc;

	if (payment == NULL)
		return job_bad(j, "no payment_id");
	vals[0] = payment;
	if ((rc = agora_db_query(r, "refund_begin", 1, vals, &res)) != AGORA_OK)
		return job_db_failed(j, rc);
	if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "refund") != 0)
		return OUT_DONE;
	memset(&c, 0, sizeof(c));
	c.payment_id = payment;
	c.charge_ref = PQgetvalue(res, 0, 1);
	c.amount_cents = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
	c.currency = PQgetvalue(res, 0, 3);
	c.token = PQgetvalue(res, 0, 4);
	c.attempt = strtoll(PQgetvalue(res, 0, 5), NULL, 10);
	pr = provider_refund(&c);
	if (pr == PAY_TRANSIENT)
		return call_failed(j, pr, &c);
	vals[1] = pr == PAY_OK ? "true" : "false";
	vals[2] = pr == PAY_OK ? NULL : c.code;
	r = worker_req_reset(w);
	if ((rc = agora_db_query(r, "refund_end", 3, vals, &res)) != AGORA_OK)
		return job_db_failed(j, rc);
	return pr == PAY_OK ? OUT_DONE : call_failed(j, pr, &c);
}

/*
 * The topics this build handles, and who runs each row.  payment.charge
 * has no one-row handler: its rows run first, in chunks (charge_chunk).
 */
static const struct topic {
	const char *name;
	enum outcome (*run)(struct worker *w, struct job *j);
} topics[] = {
	{ "payment.charge", NULL },
	{ "payment.refund", handle_refund },
	{ "invoice.create", handle_invoice },
	{ "order.created", handle_fanout },
	{ "notify.order", handle_fanout },
	{ "notify.send", handle_notify },
	{ "account.forgot", handle_account_forgot },
	{ "account.mail", handle_account_mail },
};

static const struct topic *
topic_of(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < AGORA_NELEM(topics); i++)
		if (strlen(topics[i].name) == len &&
		    strncmp(topics[i].name, name, len) == 0)
			return &topics[i];
	return NULL;
}

int
worker_topic_known(const char *name, size_t len)
{
	return topic_of(name, len) != NULL;
}

const char *
worker_topic_name(size_t i)
{
	return i < AGORA_NELEM(topics) ? topics[i].name : NULL;
}

/* One row of a topic other than payment.charge. */
static enum outcome
handle_one(struct worker *w, struct job *j)
{
	const struct topic *t = topic_of(j->topic, strlen(j->topic));

	if (t == NULL || t->run == NULL)
		return job_bad(j, "no handler");
	return t->run(w, j);
}

void
worker_handle(struct worker *w, struct job *jobs, int n)
{
	struct job **charges;
	long long t0;
	int i, m = 0, k, size = CHUNK_MIN, left = 0;

	if ((charges = calloc((size_t)n + 1, sizeof(*charges))) == NULL)
		return;
	/* Jobs left OUT_NONE (the worker stopped) are handed back. */
	for (i = 0; i < n; i++)
		if (strcmp(jobs[i].topic, "payment.charge") != 0)
			continue;
		else if (payment_of(&jobs[i]) == NULL)
			jobs[i].outcome = job_bad(&jobs[i], "no payment_id");
		else
			charges[m++] = &jobs[i];
	/* The jobs a chunk did not reach open the next one. */
	for (i = 0; i < m && !worker_tick(w); i += k - left) {
		k = size < m - i ? size : m - i;
		t0 = worker_now_ms();
		if ((left = charge_chunk(w, charges + i, k)) == k)
			break;
		if (worker_now_ms() - t0 < CHUNK_FAST_MS)
			size = size * 2 > CHUNK_MAX ? CHUNK_MAX : size * 2;
		else
			size = CHUNK_MIN;
	}
	free(charges);
	for (i = 0; i < n && !worker_tick(w); i++)
		if (strcmp(jobs[i].topic, "payment.charge") != 0) {
			/* The job continues the trace of the work that
			 * wrote it: its lines, its rows, its calls. */
			job_trace_begin(&jobs[i]);
			jobs[i].outcome = handle_one(w, &jobs[i]);
			agora_trace_end();
		}
}

/* Cancel unpaid orders whose time is up, a batch at a time. */
static void
expire_orders(struct worker *w)
{
	const char *vals[1] = { AGORA_STR(EXPIRE_BATCH) };
	struct agora_req *r;
	PGresult *res;
	int i, n;

	do {
		r = worker_req_reset(w);
		if (agora_db_query(r, "orders_expire", 1, vals, &res) !=
		    AGORA_OK)
			return;
		n = PQntuples(res);
		for (i = 0; i < n; i++) {
			agora_log(
			    "info", "order %s expired", PQgetvalue(res, i, 0));
			if (!PQgetisnull(res, i, 1))
				agora_stock_bump(r, PQgetvalue(res, i, 1));
		}
		w->expired += n;
	} while (n == EXPIRE_BATCH);
}

/*
 * Apply the gateway's events that came before their payments, now that
 * the payments exist; each row names the products whose stock one of them
 * gave back (a failed charge).
 */
static void
apply_waiting(struct worker *w)
{
	const char *vals[1] = { AGORA_STR(EVENTS_BATCH) };
	struct agora_req *r = worker_req_reset(w);
	PGresult *res;
	int i;

	if (agora_db_query(r, "events_waiting", 1, vals, &res) != AGORA_OK)
		return;
	for (i = 0; i < PQntuples(res); i++)
		if (!PQgetisnull(res, i, 0))
			agora_stock_bump(r, PQgetvalue(res, i, 0));
}

/*
 * Delete analytics events older than analytics_retention_days (0 keeps
 * them all), a batch per transaction (sql/0016), at most
 * PRUNE_PASS_BATCHES in one pass.
 */
static void
prune_analytics(struct worker *w)
{
	const struct agora_config *cfg = &w->ctx.cfg;
	const char *vals[2] = { NULL, AGORA_STR(AGORA_PRUNE_BATCH) };
	struct agora_req *r;
	PGresult *res;
	long long n = 0, total = 0;
	int i;

	if (cfg->analytics_retention_days == 0)
		return;
	for (i = 0; i < PRUNE_PASS_BATCHES; i++) {
		r = worker_req_reset(w);
		vals[0] =
		    agora_printf(r, "%lld", cfg->analytics_retention_days);
		if (agora_db_query(r, "analytics_prune", 2, vals, &res) !=
		        AGORA_OK ||
		    agora_parse_ll(
		        PQgetvalue(res, 0, 0), 0, AGORA_PRUNE_BATCH, &n) != 0)
			break;
		total += n;
		if (n < AGORA_PRUNE_BATCH)
			break;
	}
	if (total > 0)
		agora_log("info", "%lld analytics events pruned", total);
}

/*
 * Run stmt (a function of one batch size that answers how many rows it
 * did) up to PRUNE_PASS_BATCHES times, while batches come back full.
 */
static void
batches(struct worker *w, const char *stmt)
{
	const char *vals[1] = { AGORA_STR(AGORA_PRUNE_BATCH) };
	PGresult *res;
	long long n = 0;
	int i;

	for (i = 0; i < PRUNE_PASS_BATCHES; i++)
		if (agora_db_query(worker_req_reset(w), stmt, 1, vals, &res) !=
		        AGORA_OK ||
		    agora_parse_ll(
		        PQgetvalue(res, 0, 0), 0, AGORA_PRUNE_BATCH, &n) != 0 ||
		    n < AGORA_PRUNE_BATCH)
			break;
}

/* The passes that are not outbox rows: expiry and housekeeping. */
void
worker_housekeeping(struct worker *w)
{
	const char *purge[1] = { AGORA_STR(PURGE_BATCH) };
	PGresult *res;

	expire_orders(w);
	while (agora_db_query(worker_req_reset(w), "keys_purge", 1, purge,
	           &res) == AGORA_OK &&
	    strtoll(PQgetvalue(res, 0, 0), NULL, 10) == PURGE_BATCH)
		;
	apply_waiting(w);
	prune_analytics(w);
	/*
	 * The analytics summary's paid orders into its daily rows, and the
	 * sessions it counted on days no event can reach any more (sql/0021,
	 * 0022); whatever analytics_retention_days says.
	 */
	batches(w, "analytics_fold");
	batches(w, "sessions_prune");
	/* Expired refresh and account tokens, and the sessions left empty
	 * (sql/functions/accounts.sql). */
	batches(w, "auth_prune");
	(void)agora_db_query(
	    worker_req_reset(w), "heartbeats_prune", 0, NULL, NULL);
}
