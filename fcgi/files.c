/*
 * files.c: /api/v1/files: uploads and downloads.
 *
 * POST /files takes the file as the raw body (its Content-Type, and the
 * name from ?filename=) or as multipart/form-data with a "file" part
 * (multipart.c, with GMime).  The bytes go to the storage under a random key
 * first and the row is written after, so a row always names stored
 * bytes; a failure between the two leaves an unreferenced object, never a
 * row without its file.  Only the owner or an admin may read a file;
 * anyone else gets 404, as for a file that does not exist.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shop.h"
#include "multipart.h"

static const struct agora_stmt stmts[] = {
	{ "file_add",
	    "INSERT INTO files (user_id, filename, content_type, size, sha256, "
	    "storage, storage_key) VALUES ($1::bigint, $2, $3, $4::bigint, "
	    "$5, $6, $7) RETURNING id::text, file_doc(files)::text" },
	{ "file_get",
	    "SELECT f.user_id::text, file_doc(f)::text, " AGORA_FILE_COLUMNS
	    " FROM files f WHERE f.id = $1::bigint",
	    AGORA_STMT_READ },
};

/* The upload as the handler sees it, whichever way it came. */
struct upload {
	const char *data;
	size_t len;
	const char *filename; /* as sent, before cleaning */
	size_t filename_len;
	const char *content_type;
};

/* A media type as stored: printable ASCII, type/subtype, bounded. */
static int
ctype_ok(const char *s)
{
	const char *p;

	if (s == NULL || strlen(s) < 3 || strlen(s) > 255 ||
	    strchr(s, '/') == NULL)
		return 0;
	for (p = s; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			return 0;
	return 1;
}

static int
is_multipart(const char *ct)
{
	return ct != NULL &&
	    strncasecmp(
	        ct, "multipart/form-data", strlen("multipart/form-data")) == 0;
}

/* --- POST /files ------------------------------------------------------------
 */

static enum agora_err
upload_read(struct agora_req *r, struct upload *up)
{
	const char *ct = agora_param(r, "CONTENT_TYPE"), *name;
	struct multipart_file f;
	enum agora_err rc;

	memset(up, 0, sizeof(*up));
	if (is_multipart(ct)) {
		if ((rc = multipart_file(r, ct, &f)) != AGORA_OK)
			return rc;
		up->data = f.data;
		up->len = f.len;
		up->filename = f.filename;
		up->filename_len = strlen(f.filename);
		up->content_type = f.content_type;
	} else {
		if ((rc = agora_query_get(r, "filename", &name)) != AGORA_OK)
			return rc;
		up->data = r->body;
		up->len = r->body_len;
		up->filename = name != NULL ? name : "upload";
		up->filename_len = strlen(up->filename);
		up->content_type =
		    ct != NULL && *ct != '\0' ? ct : "application/octet-stream";
	}
	if (up->len > (size_t)r->ctx->cfg.file_max_bytes)
		return agora_problem(r, AGORA_E_TOO_LARGE, NULL,
		    agora_printf(r, "The file is larger than %lld bytes.",
		        r->ctx->cfg.file_max_bytes));
	if (up->len == 0)
		return agora_problem_field(
		    r, AGORA_E_VALIDATION, "file", "The file is empty.");
	if (!ctype_ok(up->content_type))
		return agora_problem_field(r, AGORA_E_VALIDATION,
		    "content_type", "The media type is not a valid one.");
	return AGORA_OK;
}

static enum agora_err
post_file(struct agora_req *r)
{
	const struct agora_config *cfg = &r->ctx->cfg;
	char name[256], sha[65], rnd[33], err[256];
	const char *vals[7];
	struct upload up;
	PGresult *res;
	enum agora_err rc;

	if ((rc = upload_read(r, &up)) != AGORA_OK)
		return rc;
	agora_filename_clean(up.filename, up.filename_len, name, sizeof(name));
	agora_sha256_hex(up.data, up.len, sha);
	agora_random_hex(rnd, 16);
	vals[6] = agora_printf(r, "uploads/%s/%s", r->user, rnd);
	if (agora_storage_put(cfg, cfg->storage, vals[6], up.data, up.len,
	        up.content_type, err, sizeof(err)) != 0) {
		agora_log("error", "upload: %s", err);
		agora_resp_header(r, "Retry-After",
		    agora_printf(r, "%lld", cfg->db_retry_after));
		return agora_problem(r, AGORA_E_UNAVAILABLE,
		    "storage_unavailable",
		    "The file cannot be stored right now.");
	}
	vals[0] = r->user;
	vals[1] = name;
	vals[2] = up.content_type;
	vals[3] = agora_printf(r, "%zu", up.len);
	vals[4] = sha;
	vals[5] = cfg->storage;
	if ((rc = agora_db_write(r, "file_add", 7, vals, &res)) != AGORA_OK)
		return rc;
	agora_resp_header(r, "Location",
	    agora_printf(r, "/api/v1/files/%s", PQgetvalue(res, 0, 0)));
	return agora_resp_cell(r, 201, res, 0, 1);
}

/* --- GET -------------------------------------------------------------------
 */

static enum agora_err
get_file(struct agora_req *r)
{
	PGresult *res;
	enum agora_err rc;

	if ((rc = agora_owned_row(r, "file_get", "file", &res)) != AGORA_OK)
		return rc;
	return agora_resp_cell(r, 200, res, 0, 1);
}

static enum agora_err
get_download(struct agora_req *r)
{
	struct agora_file f;
	PGresult *res;
	enum agora_err rc;

	if ((rc = agora_owned_row(r, "file_get", "file", &res)) != AGORA_OK)
		return rc;
	agora_file_of(res, 0, 2, &f);
	return agora_file_send(r, &f, 0);
}

static int
files_init(struct agora_ctx *ctx)
{
	multipart_init();
	return 0;
}

static const struct agora_route routes[] = {
	{ "POST", "/api/v1/files", AGORA_BODY_RAW, post_file, AGORA_USER },
	{ "GET", "/api/v1/files/{file_id}", AGORA_BODY_NONE, get_file,
	    AGORA_USER },
	{ "GET", "/api/v1/files/{file_id}/download", AGORA_BODY_NONE,
	    get_download, AGORA_USER },
};

static const struct agora_program program = {
	.name = "files",
	.routes = routes,
	.nroutes = AGORA_NELEM(routes),
	.stmts = stmts,
	.nstmts = AGORA_NELEM(stmts),
	.init = files_init,
	.needs = AGORA_NEEDS_STORAGE,
};

AGORA_MAIN(program)
