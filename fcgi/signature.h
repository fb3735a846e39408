/*
 * signature.h: the Agora-Signature header of the payment gateway's
 * webhook (signature.c), apart from the request so that its unit test
 * and its fuzzer can call it.
 */
#ifndef AGORA_SIGNATURE_H
#define AGORA_SIGNATURE_H

#include <stddef.h>
#include <time.h>

/* How old (or how far ahead) a signature's t may be, in seconds. */
#define SIGNATURE_TOLERANCE 300

enum signature_result {
	SIGNATURE_OK = 0,
	SIGNATURE_MALFORMED, /* missing, no t= or no well-formed v1= */
	SIGNATURE_OLD, /* t more than SIGNATURE_TOLERANCE from now */
	SIGNATURE_MISMATCH /* no v1= signs "<t>.<body>" with secret */
};

/*
 * Check header, "t=<unix>,v1=<hex>[,v1=<hex>...]", against body signed
 * with secret (HMAC-SHA256 of "<t>.<body>"), at time now.
 */
enum signature_result signature_verify(const char *secret, const char *header,
    const char *body, size_t len, time_t now);

#endif /* AGORA_SIGNATURE_H */
