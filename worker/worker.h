/*
 * worker.h: agora-worker, the outbox engine, and what its handlers share.
 */
#ifndef AGORA_WORKER_H
#define AGORA_WORKER_H

#include "shop.h"

/* What became of one outbox row. */
enum outcome {
	OUT_NONE = 0, /* not run (the worker is stopping): hand it back */
	OUT_DONE, /* finished: the row leaves the table */
	OUT_RETRY, /* a transient failure: try again after a backoff */
	OUT_FAIL /* a final failure: the row is dead now */
};

struct job {
	const char *id;
	const char *topic;
	const char *trace_id; /* the trace that wrote the row; NULL: none */
	char trace[33]; /* the trace its work ran in (a new one for none) */
	struct json_object *payload;
	long long attempts;
	long long max_attempts;
	enum outcome outcome;
	char error[256]; /* why it failed, kept in last_error */
};

struct worker {
	struct agora_ctx ctx;
	struct agora_arena *arena;
	struct agora_req req;
	unsigned long listening; /* the connection generation LISTENing */
	long long handled, retried, dead, expired;
	const char *batch_ids; /* the claimed batch, for lease extensions */
	long long tick_ms; /* when the lease was last extended */
	int unreachable; /* --once could not reach the database */
	char claim[33]; /* the token of the batch's claim */
	struct timespec claimed; /* when the batch was claimed */
	const char *topics; /* what it claims: all, or --topics */
};

/*
 * The outbox engine (outbox.c).  open reads the configuration and
 * connects (topics: the array literal of the topics to claim); drain
 * claims one batch and runs it (the rows claimed, 0 when none was due, -1
 * when the database is away); wait sleeps until NOTIFY agora_outbox, the
 * next row is due, or max_ms.  stop may be called from a signal handler.
 */
int worker_open(struct worker *w, const char *topics);
void worker_close(struct worker *w);
int worker_drain(struct worker *w);
/* Continue the trace of the work that wrote j's row (a new one for a row
 * without), and keep its id in j->trace for the lines that close it. */
void job_trace_begin(struct job *j);
void worker_wait(struct worker *w, long long max_ms);
void worker_stop(void);
int worker_stopping(void);
void worker_print_stmts(void);

/* Milliseconds on the monotonic clock. */
long long worker_now_ms(void);

/*
 * Reset the worker's arena and pseudo-request for the next database call:
 * every result and string the previous one held is gone.  A handler copies
 * (PQcopyResult) what must outlive it.
 */
struct agora_req *worker_req_reset(struct worker *w);

/*
 * Between two slow steps of a batch: extends the batch's lease when a
 * third of it has passed, and says whether the worker must stop (1).
 */
int worker_tick(struct worker *w);

/* Whether this build handles the topic of len bytes at name. */
int worker_topic_known(const char *name, size_t len);
/* The i-th topic this build handles; NULL past the last. */
const char *worker_topic_name(size_t i);
/* Run the n claimed jobs; each gets its outcome (OUT_NONE: not run). */
void worker_handle(struct worker *w, struct job *jobs, int n);
void worker_housekeeping(struct worker *w);

/* Payload members (outbox.c): a string, or a row id (NULL if absent or
 * not one). */
const char *job_string(struct job *j, const char *key);
const char *job_id(struct job *j, const char *key);
/* A row that can never succeed: dead at once, with why. */
enum outcome job_bad(struct job *j, const char *why);
/* A database failure: retried later, with the error's code. */
enum outcome job_db_failed(struct job *j, enum agora_err rc);
/* Whether this is the job's last attempt before it is dead. */
int job_last_attempt(const struct worker *w, const struct job *j);

/* Members of an API document (an order): "" or 0 when absent. */
const char *doc_str(struct json_object *o, const char *key);
long long doc_int(struct json_object *o, const char *key);
/* The JSON document in a result's cell, or NULL; the caller puts it. */
struct json_object *doc_parse(PGresult *res, int row, int col);
/* "1234.50 EUR" from cents. */
void doc_money(char *out, size_t len, long long cents, const char *currency);

/* Invoices (invoice.c). */
struct invoice {
	const struct agora_config *cfg;
	struct json_object *doc; /* the order, as order_doc() writes it */
	const char *number, *date, *customer_name, *customer_email;
};
int invoice_render(const struct invoice *inv, char **pdf, size_t *len,
    char *err, size_t errlen);
enum outcome handle_invoice(struct worker *w, struct job *j);

/* Notifications (notify.c). */
enum outcome handle_fanout(struct worker *w, struct job *j);
enum outcome handle_notify(struct worker *w, struct job *j);
void html_put(FILE *f, const char *s);
int mail_open(FILE **t, char **text, size_t *text_len, FILE **h, char **html,
    size_t *html_len);
int mail_close(FILE *t, FILE *h);
int notify_mail(const struct agora_config *cfg, const char *id, const char *to,
    const char *subject, char *text, size_t text_len, char *html,
    size_t html_len, char *err, size_t errlen);

/* Mails about the account itself: verification, password reset
 * (account.c). */
enum outcome handle_account_mail(struct worker *w, struct job *j);
enum outcome handle_account_forgot(struct worker *w, struct job *j);

/* The worker's metrics (wmetrics.c). */
enum wm_service { WM_GATEWAY, WM_SMTP, WM_SMS, WM_STORAGE, WM__MAX };
void wmetrics_open(const struct agora_config *cfg);
void wmetrics_job(const char *topic, enum outcome o, int dead, long long us);
void wmetrics_call(enum wm_service s, int ok, long long us);
void wmetrics_pass(void);

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

/*
 * The statements handlers use, listed in the worker's table.  A batch of
 * charges begins in one statement and ends in one: the functions run once
 * per payment, server-side, with one round trip for the batch.
 */
#define CHARGE_BEGIN_SQL                                                       \
	"SELECT b.p::text, r.action, r.amount_cents, r.currency, r.token, "    \
	"r.attempts FROM unnest($1::bigint[]) WITH ORDINALITY AS b(p, i), "    \
	"payment_charge_begin(b.p, $2) r ORDER BY b.p"
#define CHARGE_UNBEGIN_SQL                                                     \
	"SELECT count(*) FROM unnest($1::bigint[], $2::int[]) AS u(p, a), "    \
	"payment_charge_unbegin(u.p, u.a)"
#define CHARGE_END_SQL                                                         \
	"SELECT payment_id::text, result, product_ids "                        \
	"FROM payment_charge_end_many($1::json)"
#define REFUND_BEGIN_SQL                                                       \
	"SELECT action, provider_ref, amount_cents, currency, token, "         \
	"attempts FROM payment_refund_begin($1::bigint)"
#define REFUND_END_SQL "SELECT payment_refund_end($1::bigint, $2::bool, $3)"
#define EXPIRE_SQL                                                             \
	"SELECT order_id::text, product_ids FROM orders_expire($1::int)"

#define WORKER_HANDLER_STMTS                                                   \
	{ "invoice_source", "SELECT * FROM invoice_source($1::bigint)",        \
		AGORA_STMT_READ },                                             \
	    { "invoice_record",                                                \
		    "SELECT invoice_record($1::bigint, $2, $3, $4::bigint, "   \
		    "$5)" },                                                   \
	    { "notify_fanout",                                                 \
		    "SELECT notification_fanout($1::bigint, $2, "              \
		    "$3::text[], $4::bool)" },                                 \
	    { "notify_source",                                                 \
		    "SELECT * FROM notification_source($1::bigint)",           \
		    AGORA_STMT_READ },                                         \
	    { "account_forgot",                                                \
		    "SELECT account_mail_queue(NULL, $1, 'reset', $2::int, "   \
		    "$3::int)" },                                              \
	    { "account_mail_source",                                           \
		    "SELECT * FROM account_mail_source($1::bigint, $2)" },     \
	    { "notify_attempt",                                                \
		    "SELECT notification_attempt($1::bigint, $2::bool, $3, "   \
		    "$4::bool)" },                                             \
	    { "charge_begin", CHARGE_BEGIN_SQL },                              \
	    { "charge_unbegin", CHARGE_UNBEGIN_SQL },                          \
	    { "charge_end", CHARGE_END_SQL },                                  \
	    { "refund_begin", REFUND_BEGIN_SQL },                              \
	    { "refund_end", REFUND_END_SQL }, { "orders_expire", EXPIRE_SQL }, \
	    { "keys_purge", "SELECT idempotency_keys_purge($1::int)" },        \
	    { "analytics_prune", "SELECT analytics_prune($1::int, $2::int)" }, \
	    { "sessions_prune", "SELECT analytics_sessions_prune($1::int)" },  \
	    { "auth_prune", "SELECT auth_prune($1::int)" },                    \
	    { "analytics_fold", "SELECT analytics_fold($1::int)" },            \
	    { "heartbeats_prune",                                              \
		    "DELETE FROM worker_heartbeats "                           \
		    "WHERE pass_at < now() - interval '7 days'" },             \
	{                                                                      \
		"events_waiting",                                              \
		    "SELECT product_ids FROM "                                 \
		    "gateway_events_apply_waiting_stock($1::int)"              \
	}

#endif /* AGORA_WORKER_H */
