/*
 * page.c: list pagination, keyset style.
 *
 * A cursor is the base64url of "k:" and the sort key of the last row sent,
 * so it is opaque to clients and cheap to check: anything else is a
 * forged cursor and answers 400.  New rows never shift a page, because
 * the next page starts strictly after the key.
 */
#include "config.h"

#include <string.h>

#include <sodium.h>

#include "shop.h"

#define KEY_MAX 200

static enum agora_err
bad_cursor(struct agora_req *r)
{
	return agora_problem(r, AGORA_E_BAD_REQUEST, "bad_cursor",
	    "The cursor is not one this API gave out.");
}

static enum agora_err
decode_cursor(struct agora_req *r, const char *c, const char **after)
{
	unsigned char bin[KEY_MAX + 3];
	size_t n;
	char *key;

	if (strlen(c) > 2 * KEY_MAX ||
	    sodium_base642bin(bin, sizeof(bin) - 1, c, strlen(c), NULL, &n,
	        NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    n < 3 || memcmp(bin, "k:", 2) != 0 || memchr(bin, '\0', n) != NULL)
		return bad_cursor(r);
	key = agora_alloc(r, n - 1);
	if (key == NULL)
		return AGORA_E_TOO_LARGE;
	memcpy(key, bin + 2, n - 2);
	key[n - 2] = '\0';
	*after = key;
	return AGORA_OK;
}

static const struct agora_qfield page_fields[] = { AGORA_PAGE_QFIELDS };

/* limit and cursor from the query; *after is NULL for the first page. */
enum agora_err
agora_page_params(struct agora_req *r, long long *limit, const char **after)
{
	struct agora_qvalue v[AGORA_NELEM(page_fields)];
	enum agora_err rc;

	*limit = 20;
	*after = NULL;
	rc = agora_query_fields(r, page_fields, AGORA_NELEM(page_fields), 0, v);
	if (rc != AGORA_OK)
		return rc;
	if (v[0].s != NULL)
		*limit = v[0].n;
	return v[1].s != NULL ? decode_cursor(r, v[1].s, after) : AGORA_OK;
}

/* The same, for a list keyed by row id: a cursor's key must be one. */
enum agora_err
agora_page_params_id(struct agora_req *r, long long *limit, const char **after)
{
	enum agora_err rc = agora_page_params(r, limit, after);

	if (rc == AGORA_OK && *after != NULL && !agora_id_ok(*after))
		return bad_cursor(r);
	return rc;
}

/* {data, has_more, next_cursor}; steals data. */
struct json_object *
agora_page(struct agora_req *r, struct json_object *data, int has_more,
    const char *last_key)
{
	struct json_object *o;
	char raw[KEY_MAX + 3], *enc;
	size_t n, elen;

	if ((o = json_object_new_object()) == NULL) {
		json_object_put(data);
		return NULL;
	}
	agora_json_set(o, "data", data);
	agora_json_set(o, "has_more", json_object_new_boolean(has_more));
	n = last_key != NULL ? strlen(last_key) : 0;
	if (!has_more || n == 0 || n > KEY_MAX) {
		agora_json_set(o, "next_cursor", NULL);
		return o;
	}
	memcpy(raw, "k:", 2);
	memcpy(raw + 2, last_key, n);
	elen = sodium_base64_ENCODED_LEN(
	    n + 2, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	enc = agora_alloc(r, elen);
	if (enc != NULL)
		sodium_bin2base64(enc, elen, (unsigned char *)raw, n + 2,
		    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	agora_json_set(
	    o, "next_cursor", enc != NULL ? json_object_new_string(enc) : NULL);
	return o;
}

/*
 * Answer a page from res, which holds up to limit + 1 rows (the one more
 * says whether there is a next page): column 0 is a row's keyset key,
 * column 1 its JSON document.
 */
enum agora_err
agora_page_send(struct agora_req *r, PGresult *res, long long limit)
{
	struct json_object *data = json_object_new_array();
	int i, n = PQntuples(res);

	if (data == NULL)
		return AGORA_E_TOO_LARGE;
	for (i = 0; i < n && i < limit; i++)
		agora_json_push(
		    data, json_tokener_parse(PQgetvalue(res, i, 1)));
	return agora_resp_json(r, 200,
	    agora_page(r, data, n > limit,
	        n > limit ? PQgetvalue(res, (int)limit - 1, 0) : NULL));
}
