/*
 * signature.c: libFuzzer driver for the webhook's Agora-Signature header
 * (fcgi/signature.c).  The input's first line is the header, the rest
 * the body, checked at a fixed time with a fixed secret.  An answer of
 * "signed" must be right: the header has a t= within the tolerance of
 * that time and a v1= whose hex is the HMAC-SHA256 of "<t>.<body>",
 * both computed here again.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include <sodium.h>

#include "fuzz.h"
#include "signature.h"

#define SECRET "whsec-fuzz"
#define NOW 1700000000

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return sodium_init() < 0 ? -1 : 0;
}

/* Whether a "v1=" of header is the hex HMAC of "<t>.<body>". */
static int
has_mac(const char *header, long long t, const char *body, size_t len)
{
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	char hex[2 * sizeof(mac) + 4], prefix[32], *want;
	crypto_auth_hmacsha256_state st;
	const char *p;

	snprintf(prefix, sizeof(prefix), "%lld.", t);
	crypto_auth_hmacsha256_init(
	    &st, (const unsigned char *)SECRET, strlen(SECRET));
	crypto_auth_hmacsha256_update(
	    &st, (const unsigned char *)prefix, strlen(prefix));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, len);
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_bin2hex(hex + 3, sizeof(hex) - 3, mac, sizeof(mac));
	memcpy(hex, "v1=", 3);
	want = hex;
	for (p = header; (p = strcasestr(p, want)) != NULL; p++)
		if ((p == header || p[-1] == ',') &&
		    (p[strlen(want)] == ',' || p[strlen(want)] == '\0'))
			return 1;
	return 0;
}

/*
 * Whether some "t=" part of header is within the tolerance of NOW and a
 * "v1=" part signs the body with it: what "signed" has to mean.
 */
static int
signed_recently(const char *header, const char *body, size_t len)
{
	const char *p;
	char *end;
	long long t;

	for (p = header; (p = strstr(p, "t=")) != NULL; p += 2) {
		if (p != header && p[-1] != ',')
			continue;
		t = strtoll(p + 2, &end, 10);
		if (end > p + 2 && (*end == ',' || *end == '\0') &&
		    t >= NOW - SIGNATURE_TOLERANCE &&
		    t <= NOW + SIGNATURE_TOLERANCE &&
		    has_mac(header, t, body, len))
			return 1;
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_string(data, size), *nl;
	const char *body;
	size_t len;

	nl = strchr(text, '\n');
	body = nl != NULL ? nl + 1 : "";
	len = nl != NULL ? size - (size_t)(nl + 1 - text) : 0;
	if (nl != NULL)
		*nl = '\0';
	if (signature_verify(SECRET, text, body, len, NOW) == SIGNATURE_OK &&
	    !signed_recently(text, body, len))
		abort();
	free(text);
	return 0;
}
