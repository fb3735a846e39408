/*
 * signature.c: the payment gateway's webhook signature.
 *
 * Agora-Signature is "t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">";
 * several v1 parts let the gateway sign with an old and a new secret
 * while the secret changes.  Compared in constant time; a t more than
 * five minutes away from now is refused, so that a captured request
 * cannot be replayed later.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "agora.h"
#include "signature.h"

#define SIGNATURES_MAX 4

struct signature {
	long long t;
	unsigned char mac[SIGNATURES_MAX][crypto_auth_hmacsha256_BYTES];
	int nmac;
};

/* One "t=<unix>" or "v1=<hex>" part of the header into sig. */
static void
signature_part(const char *p, size_t len, struct signature *sig, int *have_t)
{
	char num[24];
	size_t got = 0;

	if (len > 2 && len - 2 < sizeof(num) && strncmp(p, "t=", 2) == 0) {
		memcpy(num, p + 2, len - 2);
		num[len - 2] = '\0';
		*have_t = agora_parse_ll(num, 0, INT64_MAX / 2, &sig->t) == 0;
	} else if (len == 3 + 2 * crypto_auth_hmacsha256_BYTES &&
	    strncmp(p, "v1=", 3) == 0 && sig->nmac < SIGNATURES_MAX &&
	    sodium_hex2bin(sig->mac[sig->nmac], crypto_auth_hmacsha256_BYTES,
	        p + 3, len - 3, NULL, &got, NULL) == 0 &&
	    got == crypto_auth_hmacsha256_BYTES) {
		sig->nmac++;
	}
}

static int
signature_parse(const char *h, struct signature *sig)
{
	const char *p, *end;
	int have_t = 0;

	memset(sig, 0, sizeof(*sig));
	for (p = h; p != NULL && *p != '\0'; p = *end ? end + 1 : NULL) {
		end = strchr(p, ',');
		if (end == NULL)
			end = p + strlen(p);
		signature_part(p, (size_t)(end - p), sig, &have_t);
	}
	return have_t && sig->nmac > 0 ? 0 : -1;
}

enum signature_result
signature_verify(const char *secret, const char *header, const char *body,
    size_t len, time_t now)
{
	unsigned char want[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_state st;
	struct signature sig;
	char prefix[32];
	int i, match = 0;

	if (header == NULL || signature_parse(header, &sig) != 0)
		return SIGNATURE_MALFORMED;
	if (llabs((long long)now - sig.t) > SIGNATURE_TOLERANCE)
		return SIGNATURE_OLD;
	snprintf(prefix, sizeof(prefix), "%lld.", sig.t);
	crypto_auth_hmacsha256_init(
	    &st, (const unsigned char *)secret, strlen(secret));
	crypto_auth_hmacsha256_update(
	    &st, (const unsigned char *)prefix, strlen(prefix));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, len);
	crypto_auth_hmacsha256_final(&st, want);
	for (i = 0; i < sig.nmac; i++)
		match |= sodium_memcmp(sig.mac[i], want, sizeof(want)) == 0;
	return match ? SIGNATURE_OK : SIGNATURE_MISMATCH;
}
