/*
 * openapi.c: GET /api/v1/openapi.json, the OpenAPI 3.1 document of the
 * whole API.
 *
 * The document is kept in the source tree (fcgi/openapi.json), installed
 * with the programs, read and checked once at start-up, and served from
 * memory with an ETag, so that clients can cache it.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "agora.h"

#define DOC_MAX (4 * 1024 * 1024)

struct doc {
	char *text;
	size_t len;
	char etag[72];
};

static struct doc doc;

/*
 * Whether the document is one JSON value.  It is our own file, not a
 * client's body, so json-c checks it without the limits agora_json_parse
 * puts on bodies (the document has more objects than a body may).
 */
static int
valid_json(const char *text, size_t len)
{
	json_tokener *tok = json_tokener_new();
	struct json_object *o;
	size_t end;
	int ok;

	if (tok == NULL || len > INT32_MAX)
		return 0;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, text, (int)len);
	end = json_tokener_get_parse_end(tok);
	ok = o != NULL && json_tokener_get_error(tok) == json_tokener_success;
	while (ok && end < len && strchr(" \t\r\n", text[end]) != NULL)
		end++;
	json_object_put(o);
	json_tokener_free(tok);
	return ok && end == len;
}

static int
load(struct agora_ctx *ctx)
{
	unsigned char hash[crypto_hash_sha256_BYTES];
	char hex[2 * crypto_hash_sha256_BYTES + 1];
	char err[300];

	doc.text = agora_read_file(
	    ctx->cfg.openapi_file, DOC_MAX, &doc.len, err, sizeof(err));
	if (doc.text == NULL) {
		agora_log("error", "cannot read %s", err);
		return -1;
	}
	if (!valid_json(doc.text, doc.len)) {
		agora_log(
		    "error", "%s is not valid JSON", ctx->cfg.openapi_file);
		return -1;
	}
	crypto_hash_sha256(hash, (unsigned char *)doc.text, doc.len);
	sodium_bin2hex(hex, sizeof(hex), hash, 16);
	snprintf(doc.etag, sizeof(doc.etag), "\"%s\"", hex);
	return 0;
}

static enum agora_err
openapi(struct agora_req *r)
{
	const char *inm;

	agora_resp_header(r, "ETag", doc.etag);
	agora_resp_header(r, "Cache-Control", "public, max-age=300");
	agora_resp_header(r, "Access-Control-Allow-Origin", "*");
	inm = agora_param(r, "HTTP_IF_NONE_MATCH");
	if (agora_etag_match(inm, doc.etag))
		return agora_resp_raw(r, 304, NULL, NULL, 0);
	return agora_resp_raw(r, 200, "application/json", doc.text, doc.len);
}

static const struct agora_route routes[] = {
	{ "GET", "/api/v1/openapi.json", AGORA_BODY_NONE, openapi, AGORA_ANON,
	    AGORA_RL_NONE },
};

static const struct agora_program program = {
	.name = "openapi",
	.routes = routes,
	.nroutes = AGORA_NELEM(routes),
	.init = load,
};

AGORA_MAIN(program)
