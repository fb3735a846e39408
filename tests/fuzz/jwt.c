/*
 * jwt.c: libFuzzer driver for access token verification (lib/auth.c over
 * libjwt): the input, as a Bearer token, is checked by three processes'
 * keys, HS256, RS256 and ES256.  A token accepted must really be signed:
 * its signature, checked here with libsodium or OpenSSL directly over
 * the token's first two parts, verifies with the key of the algorithm
 * that accepted it, and it names a user and a known role (accepted: the
 * answer is OK, or 503 from the token generation check, which has no
 * database here).  The seeds
 * were signed with the private halves of these keys, which are not kept.
 */
#include "config.h"

#include <stdio.h>

#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>

#include "fuzz.h"

static const char rs256_public[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA47YatxtzWlTOJR2k2kY3\n"
    "ClB4185W6pSIp9XleyOIlf0GoVnv1NUChitD/KmfRv938b4HsuCuDlQgE7ZNvmNB\n"
    "H0lsgmCKkFis3UJGrJnNXtWMxmcRkauPAbEvShnVrxOBFpc6ewMbCwQ4xCKhfXAG\n"
    "c8lK6BH0ybp0sTQWTJl654cSrUXw1c3w2b8w7R7VFUhoUq0DB9P34kGDab0x6w51\n"
    "PHrG8DhDpHZICGPTTKxF920bdHAsjIqgIvjKDuvl+a51F4k0sl+FKLgaOQFtP4nR\n"
    "RT85bjIKhleCd89k1T4b2iZnUdmUTJPCJqXiWHXpt9yfB2CfHUvGY/ZupZx5dz1h\n"
    "oQIDAQAB\n"
    "-----END PUBLIC KEY-----\n";

static const char es256_public[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEn4UNqCsf8Wj3eJJh54r7ubxfAfCb\n"
    "lPTuck11yz/HBEtYCNHj0VOM9Z8hD+nYGryw7sEwXhPzBvXYkwZx0jxoVg==\n"
    "-----END PUBLIC KEY-----\n";

static const struct {
	const char *alg, *key;
} algs[] = {
	{ "HS256", FUZZ_HS256_SECRET },
	{ "RS256", rs256_public },
	{ "ES256", es256_public },
};

static struct agora_ctx ctx[3];
static EVP_PKEY *pkeys[3];
static struct agora_arena *arena;

static EVP_PKEY *
pem_key(const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k =
	    bio != NULL ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;

	BIO_free(bio);
	if (k == NULL)
		abort();
	return k;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	size_t i;

	(void)argc;
	(void)argv;
	if (sodium_init() < 0)
		abort();
	for (i = 0; i < AGORA_NELEM(algs); i++) {
		agora_config_defaults(&ctx[i].cfg);
		free(ctx[i].cfg.jwt_alg);
		ctx[i].cfg.jwt_alg = strdup(algs[i].alg);
		if (i == 0) {
			free(ctx[i].cfg.jwt_secret_file);
			ctx[i].cfg.jwt_secret_file = fuzz_file(algs[i].key);
		} else {
			free(ctx[i].cfg.jwt_public_key_file);
			ctx[i].cfg.jwt_public_key_file = fuzz_file(algs[i].key);
			pkeys[i] = pem_key(algs[i].key);
		}
		agora_auth_init(&ctx[i]);
		if (ctx[i].auth == NULL)
			abort();
		ctx[i].db = fuzz_db();
	}
	arena = agora_arena_new((size_t)ctx[0].cfg.request_memory_bytes);
	return arena != NULL ? 0 : -1;
}

/* An ES256 signature (R || S) in DER, as OpenSSL verifies it. */
static size_t
es_der(const unsigned char *raw, unsigned char *der, size_t cap)
{
	ECDSA_SIG *sig = ECDSA_SIG_new();
	unsigned char *p = der;
	int n;

	if (sig == NULL ||
	    !ECDSA_SIG_set0(
	        sig, BN_bin2bn(raw, 32, NULL), BN_bin2bn(raw + 32, 32, NULL)))
		abort();
	n = i2d_ECDSA_SIG(sig, NULL);
	if (n <= 0 || (size_t)n > cap)
		abort();
	n = i2d_ECDSA_SIG(sig, &p);
	ECDSA_SIG_free(sig);
	return (size_t)n;
}

static int
pkey_verify(EVP_PKEY *k, const char *msg, size_t len, const unsigned char *sig,
    size_t slen)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok;

	ok = md != NULL &&
	    EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k) == 1 &&
	    EVP_DigestVerify(md, sig, slen, (const unsigned char *)msg, len) ==
	        1;
	EVP_MD_CTX_free(md);
	return ok;
}

/* Whether tok's signature signs its first two parts with key i. */
static int
really_signed(size_t i, const char *tok)
{
	unsigned char sig[1024], mac[crypto_auth_hmacsha256_BYTES], der[128];
	const char *dot1 = strchr(tok, '.'), *dot2;
	size_t slen = 0;

	if (dot1 == NULL || (dot2 = strchr(dot1 + 1, '.')) == NULL ||
	    sodium_base642bin(sig, sizeof(sig), dot2 + 1, strlen(dot2 + 1),
	        NULL, &slen, NULL,
	        sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
		return 0;
	if (i == 0) {
		crypto_auth_hmacsha256_state st;

		crypto_auth_hmacsha256_init(&st,
		    (const unsigned char *)FUZZ_HS256_SECRET,
		    strlen(FUZZ_HS256_SECRET));
		crypto_auth_hmacsha256_update(
		    &st, (const unsigned char *)tok, (size_t)(dot2 - tok));
		crypto_auth_hmacsha256_final(&st, mac);
		return slen == sizeof(mac) &&
		    sodium_memcmp(mac, sig, slen) == 0;
	}
	if (i == 2) {
		if (slen != 64)
			return 0;
		slen = es_der(sig, der, sizeof(der));
		return pkey_verify(
		    pkeys[i], tok, (size_t)(dot2 - tok), der, slen);
	}
	return pkey_verify(pkeys[i], tok, (size_t)(dot2 - tok), sig, slen);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *tok = fuzz_string(data, size), *env[2], *hdr;
	struct agora_req r;
	enum agora_err rc;
	size_t i;

	hdr = malloc(size + 32);
	snprintf(hdr, size + 32, "HTTP_AUTHORIZATION=Bearer %s", tok);
	env[0] = hdr;
	env[1] = NULL;
	for (i = 0; i < AGORA_NELEM(algs); i++) {
		fuzz_req(&r, &ctx[i], arena);
		r.envp = env;
		rc = agora_auth_request(&r, AGORA_USER);
		/* 503: the signature and claims passed, the database is not
		 * there to say the token's generation is the user's. */
		if ((rc == AGORA_OK || rc == AGORA_E_UNAVAILABLE) &&
		    (!really_signed(i,
		         hdr + strlen("HTTP_AUTHORIZATION=Bearer ") +
		             strspn(tok, " ")) ||
		        r.user == NULL || *r.user == '\0' || r.role == NULL ||
		        (strcmp(r.role, "customer") != 0 &&
		            strcmp(r.role, "admin") != 0)))
			abort();
		agora_arena_reset(arena);
	}
	free(hdr);
	free(tok);
	return 0;
}
