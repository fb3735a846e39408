/*
 * provider.c: the payment providers behind agora-worker.
 *
 * simulated: no network; the tokens of api.md section 5 (tok_visa
 *   succeeds, tok_chargeDeclined is declined for good, tok_flaky fails
 *   transiently on its first two attempts, any other token is declined).
 * http: a Stripe-like REST gateway at payment_gateway_url, over libcurl:
 *   form-encoded POST /v1/charges and /v1/refunds with the key as a Bearer
 *   token and the payment id in Idempotency-Key, so that a charge retried
 *   after a timeout or a crash is never made twice.  5xx, 409, 429,
 *   timeouts and connection errors are transient; other 4xx are final.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "worker.h"

#define RESPONSE_MAX (64 * 1024)

static const struct agora_config *conf;
static CURL *curl;

int
provider_init(const struct agora_config *cfg)
{
	conf = cfg;
	if (strcmp(cfg->payment_provider, "http") != 0)
		return 0;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -1;
	curl = curl_easy_init();
	return curl != NULL ? 0 : -1;
}

void
provider_free(void)
{
	if (curl != NULL) {
		curl_easy_cleanup(curl);
		curl_global_cleanup();
		curl = NULL;
	}
}

static enum pay_result
simulated(struct pay_call *c, int refund)
{
	if (refund) {
		snprintf(c->ref, sizeof(c->ref), "sim_re_%s", c->payment_id);
		return PAY_OK;
	}
	if (strcmp(c->token, "tok_visa") == 0 ||
	    (strcmp(c->token, "tok_flaky") == 0 && c->attempt > 2)) {
		snprintf(c->ref, sizeof(c->ref), "sim_ch_%s", c->payment_id);
		return PAY_OK;
	}
	if (strcmp(c->token, "tok_flaky") == 0) {
		snprintf(c->error, sizeof(c->error),
		    "simulated transient "
		    "failure");
		return PAY_TRANSIENT;
	}
	snprintf(c->code, sizeof(c->code), "%s",
	    strcmp(c->token, "tok_chargeDeclined") == 0 ? "card_declined"
	                                                : "invalid_token");
	return PAY_DECLINED;
}

struct buf {
	char data[RESPONSE_MAX + 1];
	size_t len;
};

static size_t
collect(char *p, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;
	size_t len = size * n;

	if (len > RESPONSE_MAX - b->len)
		return 0; /* too large: curl fails the transfer */
	memcpy(b->data + b->len, p, len);
	b->len += len;
	b->data[b->len] = '\0';
	return len;
}

/* A string member of the JSON answer, or of its "error" object. */
static void
answer_field(const char *body, const char *outer, const char *name, char *out,
    size_t outlen)
{
	struct json_object *o = json_tokener_parse(body), *e = o, *v;

	if (o != NULL && outer != NULL &&
	    !json_object_object_get_ex(o, outer, &e))
		e = NULL;
	if (e != NULL && json_object_object_get_ex(e, name, &v) &&
	    json_object_is_type(v, json_type_string))
		snprintf(out, outlen, "%s", json_object_get_string(v));
	json_object_put(o);
}

/* Map the gateway's HTTP answer to a result. */
static enum pay_result
http_result(struct pay_call *c, CURLcode cc, long status, struct buf *b)
{
	if (cc != CURLE_OK) {
		snprintf(
		    c->error, sizeof(c->error), "%s", curl_easy_strerror(cc));
		return PAY_TRANSIENT;
	}
	if (status >= 200 && status < 300) {
		answer_field(b->data, NULL, "id", c->ref, sizeof(c->ref));
		return PAY_OK;
	}
	/*
	 * 401, 403 and 404 mean our key or URL is wrong, not the card:
	 * retry (and show in the log) rather than fail the customer's order.
	 */
	if (status >= 500 || status == 409 || status == 429 || status < 200 ||
	    status == 401 || status == 403 || status == 404) {
		snprintf(c->error, sizeof(c->error), "HTTP %ld", status);
		return PAY_TRANSIENT;
	}
	snprintf(c->code, sizeof(c->code), "declined_%ld", status);
	answer_field(b->data, "error", "code", c->code, sizeof(c->code));
	return PAY_DECLINED;
}

static enum pay_result
http_post(
    struct pay_call *c, const char *path, const char *form, const char *key)
{
	struct curl_slist *h = NULL;
	struct buf *b;
	char url[1024], hdr[512];
	enum pay_result pr = PAY_TRANSIENT;
	CURLcode cc;
	long status = 0;

	if ((b = calloc(1, sizeof(*b))) == NULL)
		return PAY_TRANSIENT;
	snprintf(url, sizeof(url), "%s%s", conf->payment_gateway_url, path);
	snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s",
	    conf->payment_gateway_key);
	h = curl_slist_append(h, hdr);
	snprintf(hdr, sizeof(hdr), "Idempotency-Key: %s", key);
	/* Never call the gateway without the idempotency key. */
	if (h == NULL || (h = curl_slist_append(h, hdr)) == NULL) {
		free(b);
		snprintf(c->error, sizeof(c->error), "out of memory");
		return PAY_TRANSIENT;
	}
	curl_easy_reset(curl);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, form);
	curl_easy_setopt(
	    curl, CURLOPT_TIMEOUT_MS, (long)conf->payment_timeout_ms);
	curl_easy_setopt(
	    curl, CURLOPT_CONNECTTIMEOUT_MS, (long)conf->payment_timeout_ms);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, b);
	cc = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	pr = http_result(c, cc, status, b);
	curl_slist_free_all(h);
	free(b);
	return pr;
}

static enum pay_result
http_charge(struct pay_call *c)
{
	char form[1024], key[64], *tok;
	enum pay_result pr;

	tok = curl_easy_escape(curl, c->token, 0);
	if (tok == NULL)
		return PAY_TRANSIENT;
	/* A token is at most 255 bytes (a CHECK), 765 escaped: it fits. */
	snprintf(form, sizeof(form),
	    "amount=%lld&currency=%s&source=%s&metadata%%5Bpayment_id%%5D=%s",
	    c->amount_cents, c->currency, tok, c->payment_id);
	curl_free(tok);
	snprintf(key, sizeof(key), "payment-%s", c->payment_id);
	pr = http_post(c, "/v1/charges", form, key);
	return pr;
}

/*
 * A refund's key names its request (c->attempt counts them), so that a
 * refund the gateway declined can be asked for again.
 */
static enum pay_result
http_refund(struct pay_call *c)
{
	char form[1024], key[64], *ref;
	int n;

	ref = curl_easy_escape(curl, c->charge_ref, 0);
	if (ref == NULL)
		return PAY_TRANSIENT;
	n = snprintf(form, sizeof(form),
	    "charge=%s&amount=%lld&metadata%%5Bpayment_id%%5D=%s", ref,
	    c->amount_cents, c->payment_id);
	curl_free(ref);
	if (n < 0 || (size_t)n >= sizeof(form)) {
		snprintf(c->code, sizeof(c->code), "bad_charge_reference");
		return PAY_DECLINED;
	}
	snprintf(key, sizeof(key), "refund-%s-%lld", c->payment_id, c->attempt);
	return http_post(c, "/v1/refunds", form, key);
}

enum pay_result
provider_charge(struct pay_call *c)
{
	return curl != NULL ? http_charge(c) : simulated(c, 0);
}

enum pay_result
provider_refund(struct pay_call *c)
{
	return curl != NULL ? http_refund(c) : simulated(c, 1);
}
