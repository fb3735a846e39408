/*
 * httpc.c: agora's one HTTP client, over libcurl.
 *
 * Every call has a deadline (to connect, and for the whole call), speaks
 * only the protocols its kind of peer needs (never file:// or the like
 * from a mistyped URL; redirects are not followed), raises no signal
 * (NOSIGNAL: libcurl's name-lookup alarm would interrupt the FastCGI
 * loop) and keeps at most answer_max bytes of the answer: a longer one
 * fails the call, so a peer cannot make a process grow.
 *
 * Which answers of an HTTP peer are worth another try is decided here
 * alone, for the payment gateway and the SMS gateway alike:
 *
 *   2xx                  done
 *   no answer, 1xx, 3xx, retry: the peer, or the way to it, is down; or
 *   5xx                  the URL is wrong (no redirect is followed)
 *   401, 403, 404        retry: our key or our URL is wrong, not the
 *                        request; the outbox row waits, its error in the
 *                        log, until an operator mends the configuration
 *   408, 429             retry: the peer asks for it
 *   409                  retry: a request with the same Idempotency-Key
 *                        is still in flight (Stripe's meaning)
 *   any other 4xx        final: the peer refused this request for good
 *
 * A retried call repeats its Idempotency-Key, so a retry never charges or
 * sends twice.  S3 storage needs no verdict: every failure there is
 * retried by the outbox row that asked.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agora.h"
#include "httpc.h"

struct io {
	struct agora_http *h;
	size_t sent;
};

static int
ready(void)
{
	static int done;

	if (!done && curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK)
		done = 1;
	return done ? 0 : -1;
}

void
agora_curl_limits(CURL *c, long timeout_ms, const char *protocols)
{
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, protocols);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
}

static size_t
on_read(char *p, size_t size, size_t n, void *arg)
{
	struct io *io = arg;
	size_t k = size * n;

	if (k > io->h->body_len - io->sent)
		k = io->h->body_len - io->sent;
	memcpy(p, (const char *)io->h->body + io->sent, k);
	io->sent += k;
	return k;
}

static size_t
on_write(char *p, size_t size, size_t n, void *arg)
{
	struct agora_http *h = ((struct io *)arg)->h;
	size_t k = size * n;
	char *grown;

	if (h->discard)
		return k; /* not wanted; the deadline bounds it */
	if (k > h->answer_max - h->answer_len) {
		h->overflow = 1;
		return 0; /* curl fails the call */
	}
	if ((grown = realloc(h->answer, h->answer_len + k + 1)) == NULL)
		return 0;
	h->answer = grown;
	memcpy(h->answer + h->answer_len, p, k);
	h->answer_len += k;
	h->answer[h->answer_len] = '\0';
	return k;
}

/* The method and its body. */
static void
set_method(CURL *c, struct io *io)
{
	struct agora_http *h = io->h;

	if (strcmp(h->method, "PUT") == 0) {
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(c, CURLOPT_READDATA, io);
		curl_easy_setopt(
		    c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)h->body_len);
	} else if (strcmp(h->method, "POST") == 0) {
		curl_easy_setopt(
		    c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)h->body_len);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, h->body);
	} else if (strcmp(h->method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
}

static void
set_options(CURL *c, struct io *io, struct curl_slist *headers)
{
	struct agora_http *h = io->h;

	agora_curl_limits(c, h->timeout_ms, AGORA_HTTP_PROTOCOLS);
	curl_easy_setopt(c, CURLOPT_URL, h->url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, io);
	if (h->sigv4 != NULL) {
		curl_easy_setopt(c, CURLOPT_AWS_SIGV4, h->sigv4);
		curl_easy_setopt(c, CURLOPT_USERNAME, h->user);
		curl_easy_setopt(c, CURLOPT_PASSWORD, h->password);
	}
	set_method(c, io);
}

long
agora_http_call(CURL *c, struct agora_http *h)
{
	struct io io = { h, 0 };
	/* The call is a child span of the process's trace (trace.c): a node
	 * in front of the caller's headers, which curl only reads. */
	char line[sizeof("traceparent: ") + AGORA_TRACEPARENT_LEN];
	struct curl_slist tp = { line, h->headers };
	CURL *own = NULL;
	CURLcode cc;

	h->status = -1;
	h->answer = NULL;
	h->answer_len = 0;
	h->overflow = 0;
	h->error[0] = '\0';
	if (c == NULL &&
	    (ready() != 0 || (c = own = curl_easy_init()) == NULL)) {
		snprintf(h->error, sizeof(h->error), "out of memory");
		return -1;
	}
	curl_easy_reset(c);
	memcpy(line, "traceparent: ", sizeof("traceparent: ") - 1);
	set_options(c, &io,
	    agora_trace_header(line + sizeof("traceparent: ") - 1, 1) == 0
	        ? &tp
	        : h->headers);
	if ((cc = curl_easy_perform(c)) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &h->status);
	else
		snprintf(h->error, sizeof(h->error), "%s",
		    h->overflow ? "answer too large" : curl_easy_strerror(cc));
	curl_easy_cleanup(own);
	return h->status;
}

void
agora_http_done(struct agora_http *h)
{
	free(h->answer);
	h->answer = NULL;
	h->answer_len = 0;
}

enum agora_http_verdict
agora_http_judge(long status)
{
	if (status >= 200 && status < 300)
		return AGORA_HTTP_DONE;
	if (status < 400 || status >= 500)
		return AGORA_HTTP_RETRY;
	switch (status) {
	case 401:
	case 403:
	case 404:
	case 408:
	case 409:
	case 429:
		return AGORA_HTTP_RETRY;
	default:
		return AGORA_HTTP_FINAL;
	}
}
