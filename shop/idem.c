/*
 * idem.c: the Idempotency-Key layer (README, "Behaviour every endpoint
 * shares").
 *
 * A key belongs to a user.  Its row in idempotency_keys is written in the
 * same transaction as the work, so the work and the record of it commit
 * together or not at all: a request that fails, or whose transaction rolls
 * back, leaves nothing and may be retried with the same key.  While a
 * request runs, a transaction-level advisory lock on (user, key) tells a
 * concurrent twin to back off with 409 instead of queueing behind it
 * (idempotency_claim() in sql/0005_orders.sql).  The fingerprint is the
 * SHA-256 of method, path and body, so the same key on another endpoint
 * or with another body is a reuse (422), not a replay.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "shop.h"

struct agora_idem {
	const char *key; /* NULL: the request carried no key */
	char fingerprint[65];
	int replayed;
	enum agora_err (*fn)(struct agora_req *, void *);
	void *arg;
};

static int
key_ok(const char *s)
{
	size_t n;

	for (n = 0; s[n] != '\0'; n++)
		if ((unsigned char)s[n] < 0x20 || (unsigned char)s[n] > 0x7e)
			return 0;
	return n >= 1 && n <= AGORA_IDEM_KEY_MAX;
}

static void
fingerprint(struct agora_req *r, char *out, size_t outlen)
{
	crypto_hash_sha256_state st;
	unsigned char h[crypto_hash_sha256_BYTES];

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(
	    &st, (const unsigned char *)r->method, strlen(r->method) + 1);
	crypto_hash_sha256_update(
	    &st, (const unsigned char *)r->path, strlen(r->path) + 1);
	if (r->body_len > 0)
		crypto_hash_sha256_update(
		    &st, (const unsigned char *)r->body, r->body_len);
	crypto_hash_sha256_final(&st, h);
	sodium_bin2hex(out, outlen, h, sizeof(h));
}

/* Read the Idempotency-Key header; 400 when it is not 1..255 printable. */
static enum agora_err
idem_init(struct agora_req *r, struct agora_idem *k)
{
	memset(k, 0, sizeof(*k));
	k->key = agora_param(r, "HTTP_IDEMPOTENCY_KEY");
	if (k->key == NULL)
		return AGORA_OK;
	if (!key_ok(k->key))
		return agora_problem(r, AGORA_E_BAD_REQUEST,
		    "invalid_idempotency_key",
		    "Idempotency-Key must be 1 to 255 printable ASCII "
		    "characters.");
	fingerprint(r, k->fingerprint, sizeof(k->fingerprint));
	return AGORA_OK;
}

/* Answer again what was answered the first time. */
static enum agora_err
replay(struct agora_req *r, struct agora_idem *k, PGresult *res)
{
	long long status;

	if (agora_parse_ll(PQgetvalue(res, 0, 2), 200, 299, &status) != 0)
		return AGORA_E_INTERNAL;
	if (!PQgetisnull(res, 0, 3))
		agora_resp_header(r, "Location", PQgetvalue(res, 0, 3));
	agora_resp_header(r, "Idempotent-Replayed", "true");
	k->replayed = 1;
	return agora_resp_cell(r, (int)status, res, 0, 4);
}

/*
 * First thing in the transaction.  AGORA_OK with k->replayed clear: do the
 * work.  AGORA_OK with k->replayed set: the stored answer is the response;
 * commit and do nothing else.  Anything else is an error already answered.
 */
static enum agora_err
idem_claim(struct agora_req *r, struct agora_idem *k)
{
	const char *vals[2];
	PGresult *res;
	enum agora_err rc;

	k->replayed = 0;
	if (k->key == NULL)
		return AGORA_OK;
	vals[0] = r->user;
	vals[1] = k->key;
	if ((rc = agora_db_query(r, "agora_idem_claim", 2, vals, &res)) !=
	    AGORA_OK)
		return rc;
	if (PQntuples(res) == 0)
		return AGORA_OK;
	if (strcmp(PQgetvalue(res, 0, 0), "t") == 0)
		return agora_problem(r, AGORA_E_CONFLICT,
		    "idempotency_key_in_use",
		    "A request with this Idempotency-Key is still running.");
	if (strcmp(PQgetvalue(res, 0, 1), k->fingerprint) != 0)
		return agora_problem(r, AGORA_E_VALIDATION,
		    "idempotency_key_reused",
		    "This Idempotency-Key was used for another request.");
	return replay(r, k, res);
}

static const char *
location(const struct agora_req *r)
{
	size_t i;

	for (i = 0; i < r->nheaders; i++)
		if (strcmp(r->headers[i].name, "Location") == 0)
			return r->headers[i].value;
	return NULL;
}

/* Last thing in the transaction: keep the response about to be sent. */
static enum agora_err
idem_store(struct agora_req *r, struct agora_idem *k)
{
	const char *vals[6];
	char *body;

	if (k->key == NULL || k->replayed)
		return AGORA_OK;
	if (r->status < 200 || r->status > 299 || r->out == NULL)
		return AGORA_E_INTERNAL;
	vals[0] = r->user;
	vals[1] = k->key;
	vals[2] = k->fingerprint;
	vals[3] = agora_printf(r, "%d", r->status);
	vals[4] = location(r);
	/* The body need not end in NUL where the response ends. */
	if ((body = agora_alloc(r, r->out_len + 1)) == NULL || vals[3] == NULL)
		return AGORA_E_TOO_LARGE;
	memcpy(body, r->out, r->out_len);
	body[r->out_len] = '\0';
	vals[5] = body;
	return agora_db_query(r, "agora_idem_store", 6, vals, NULL);
}

static enum agora_err
tx_idem(struct agora_req *r, void *arg)
{
	struct agora_idem *k = arg;
	enum agora_err rc;

	rc = idem_claim(r, k);
	if (rc != AGORA_OK || k->replayed)
		return rc;
	if ((rc = k->fn(r, k->arg)) != AGORA_OK)
		return rc;
	return idem_store(r, k);
}

/* Run fn in a transaction under the request's Idempotency-Key, if any. */
enum agora_err
agora_idem_tx(struct agora_req *r,
    enum agora_err (*fn)(struct agora_req *, void *), void *arg, int *replayed)
{
	struct agora_idem k;
	enum agora_err rc;

	if ((rc = idem_init(r, &k)) != AGORA_OK)
		return rc;
	k.fn = fn;
	k.arg = arg;
	rc = agora_db_tx(r, tx_idem, &k);
	if (replayed != NULL)
		*replayed = k.replayed;
	return rc;
}
