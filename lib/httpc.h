/*
 * httpc.h: agora's one HTTP client (httpc.c), for the peers the worker
 * and the programs call: the payment gateway, the SMS gateway and
 * S3-compatible storage; and the limits every libcurl handle gets, SMTP's
 * too.
 */
#ifndef AGORA_HTTPC_H
#define AGORA_HTTPC_H

#include <stddef.h>

#include <curl/curl.h>

/* The protocols each kind of peer may be reached with. */
#define AGORA_HTTP_PROTOCOLS "http,https"
#define AGORA_SMTP_PROTOCOLS "smtp,smtps"

struct agora_http {
	/* what to ask */
	const char *method; /* "GET", "HEAD", "POST" or "PUT" */
	const char *url;
	struct curl_slist *headers;
	const void *body; /* POST and PUT */
	size_t body_len;
	long timeout_ms; /* to connect, and for the whole call */
	size_t answer_max; /* bytes of the answer kept; past them, fail */
	int discard; /* read the answer and keep none of it */
	const char *sigv4; /* AWS SigV4 "provider:region:service", or NULL */
	const char *user; /* with sigv4: the access key */
	const char *password; /* with sigv4: the secret key */
	/* what came back */
	long status; /* the HTTP status; -1: no answer (error says why) */
	char *answer; /* NUL-terminated; agora_http_done frees it */
	size_t answer_len;
	int overflow; /* the answer was longer than answer_max */
	char error[160];
};

/* What to do about an answer of an HTTP peer (httpc.c says which is which). */
enum agora_http_verdict { AGORA_HTTP_DONE, AGORA_HTTP_RETRY, AGORA_HTTP_FINAL };

/* The deadline and the protocols of a handle, and no signals. */
void agora_curl_limits(CURL *c, long timeout_ms, const char *protocols);
/*
 * One call on handle c (reset first), or on a handle of its own when c is
 * NULL.  Returns h->status.
 */
long agora_http_call(CURL *c, struct agora_http *h);
/* Frees what a call kept. */
void agora_http_done(struct agora_http *h);
enum agora_http_verdict agora_http_judge(long status);

#endif /* AGORA_HTTPC_H */
