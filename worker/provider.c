/*
 * provider.c: the payment providers behind agora-worker.
 *
 * simulated: no network; the test tokens of fcgi/openapi.json (tok_visa
 *   succeeds, tok_chargeDeclined is declined for good, tok_flaky fails
 *   transiently on its first two attempts, any other token is declined).
 * http: a Stripe-like REST gateway at payment_gateway_url, over libcurl:
 *   form-encoded POST /v1/charges and /v1/refunds with the key as a Bearer
 *   token and the payment id in Idempotency-Key, so that a charge retried
 *   after a timeout or a crash is never made twice.  Which answers are
 *   transient and which final is httpc.c's one table.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "httpc.h"
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

/* Map the gateway's answer to a result (httpc.c: which are retried). */
static enum pay_result
http_result(struct pay_call *c, const struct agora_http *h)
{
	const char *body = h->answer != NULL ? h->answer : "";

	switch (agora_http_judge(h->status)) {
	case AGORA_HTTP_DONE:
		answer_field(body, NULL, "id", c->ref, sizeof(c->ref));
		return PAY_OK;
	case AGORA_HTTP_RETRY:
		if (h->status < 0)
			snprintf(c->error, sizeof(c->error), "%s", h->error);
		else
			snprintf(
			    c->error, sizeof(c->error), "HTTP %ld", h->status);
		return PAY_TRANSIENT;
	default:
		snprintf(c->code, sizeof(c->code), "declined_%ld", h->status);
		answer_field(body, "error", "code", c->code, sizeof(c->code));
		return PAY_DECLINED;
	}
}

static enum pay_result
http_post(
    struct pay_call *c, const char *path, const char *form, const char *key)
{
	struct agora_http h = { .method = "POST",
		.body = form,
		.body_len = strlen(form),
		.timeout_ms = conf->payment_timeout_ms,
		.answer_max = RESPONSE_MAX };
	struct curl_slist *hl, *t = NULL;
	char url[1024], auth[512], idem[128];
	enum pay_result pr;
	struct timespec t0;

	snprintf(url, sizeof(url), "%s%s", conf->payment_gateway_url, path);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s",
	    conf->payment_gateway_key);
	snprintf(idem, sizeof(idem), "Idempotency-Key: %s", key);
	/* Never call the gateway without the idempotency key. */
	if ((hl = curl_slist_append(NULL, auth)) == NULL ||
	    (t = curl_slist_append(hl, idem)) == NULL) {
		curl_slist_free_all(hl);
		snprintf(c->error, sizeof(c->error), "out of memory");
		return PAY_TRANSIENT;
	}
	h.url = url;
	h.headers = hl;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	agora_http_call(curl, &h);
	pr = http_result(c, &h);
	/* A decline is an answer; a failure is no answer, or a 5xx. */
	wmetrics_call(WM_GATEWAY, pr != PAY_TRANSIENT, agora_us_since(&t0));
	agora_http_done(&h);
	curl_slist_free_all(hl);
	return pr;
}

static enum pay_result
http_charge(struct pay_call *c)
{
	char form[4096], key[64], *tok;
	int n;

	tok = curl_easy_escape(curl, c->token, 0);
	if (tok == NULL)
		return PAY_TRANSIENT;
	/* A token is at most 255 characters (a CHECK): 1,020 bytes of UTF-8,
	 * 3,060 escaped, so it fits; a form cut short is never sent. */
	n = snprintf(form, sizeof(form),
	    "amount=%lld&currency=%s&source=%s&metadata%%5Bpayment_id%%5D=%s",
	    c->amount_cents, c->currency, tok, c->payment_id);
	curl_free(tok);
	if (n < 0 || (size_t)n >= sizeof(form)) {
		snprintf(c->code, sizeof(c->code), "invalid_token");
		return PAY_DECLINED;
	}
	snprintf(key, sizeof(key), "payment-%s", c->payment_id);
	return http_post(c, "/v1/charges", form, key);
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
