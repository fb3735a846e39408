/*
 * catalog.c: the catalog's cache keys, spelled out once (shop.h says the
 * scheme).  The products and categories programs read through them, and
 * every program, the worker and agoractl bump them after a write.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "shop.h"

/* Bytes of SHA-256 a list key keeps: 160 bits, no collision in practice. */
#define LIST_HASH_BYTES 20

void
agora_product_keys(const char *id, size_t n, char verkey[AGORA_CATALOG_KEY_MAX],
    char key[AGORA_CATALOG_KEY_MAX])
{
	snprintf(verkey, AGORA_CATALOG_KEY_MAX, "agora:pv:%.*s", (int)n, id);
	snprintf(key, AGORA_CATALOG_KEY_MAX, "agora:p2:%.*s", (int)n, id);
}

void
agora_list_key(const char *query, char key[AGORA_CATALOG_KEY_MAX])
{
	unsigned char h[crypto_hash_sha256_BYTES];
	char hex[LIST_HASH_BYTES * 2 + 1];

	crypto_hash_sha256(h, (const unsigned char *)query, strlen(query));
	sodium_bin2hex(hex, sizeof(hex), h, LIST_HASH_BYTES);
	snprintf(key, AGORA_CATALOG_KEY_MAX, "agora:l2:%s", hex);
}

void
agora_stock_bump(struct agora_req *r, const char *products)
{
	char verkey[AGORA_CATALOG_KEY_MAX], key[AGORA_CATALOG_KEY_MAX];
	const char *s, *e;

	for (s = products; s != NULL && *s != '\0'; s = *e ? e + 1 : e) {
		e = strchr(s, ',');
		if (e == NULL)
			e = s + strlen(s);
		agora_product_keys(s, (size_t)(e - s), verkey, key);
		agora_cache_bump(r->ctx, verkey, key);
	}
}

void
agora_catalog_bump(struct agora_req *r, const char *products)
{
	agora_stock_bump(r, products);
	agora_cache_bump(r->ctx, AGORA_CATALOG_VERKEY, NULL);
}
