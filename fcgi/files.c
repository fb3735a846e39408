/*
 * files.c: /api/v1/files: uploads and downloads.
 *
 * POST /files takes the file as the raw body (its Content-Type, and the
 * name from ?filename=) or as multipart/form-data with a "file" part,
 * which GMime parses.  The bytes go to the storage under a random key
 * first and the row is written after, so a row always names stored
 * bytes; a failure between the two leaves an unreferenced object, never a
 * row without its file.  Only the owner or an admin may read a file;
 * anyone else gets 404, as for a file that does not exist.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>

#include "agora.h"

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

/* --- multipart/form-data ------------------------------------------------ */

/* The "file" part of a parsed form, or NULL. */
static GMimePart *
file_part(GMimeObject *form)
{
	GMimeMultipart *mp;
	GMimeObject *p;
	GMimeContentDisposition *d;
	const char *name;
	int i, n;

	if (!GMIME_IS_MULTIPART(form))
		return NULL;
	mp = GMIME_MULTIPART(form);
	n = g_mime_multipart_get_count(mp);
	for (i = 0; i < n; i++) {
		p = g_mime_multipart_get_part(mp, i);
		d = g_mime_object_get_content_disposition(p);
		name = d != NULL
		    ? g_mime_content_disposition_get_parameter(d, "name")
		    : NULL;
		if (GMIME_IS_PART(p) && name != NULL &&
		    strcmp(name, "file") == 0)
			return GMIME_PART(p);
	}
	return NULL;
}

/* Copy the part's decoded bytes, name and type into the request's arena. */
static enum agora_err
part_read(struct agora_req *r, GMimePart *part, struct upload *up)
{
	GMimeDataWrapper *dw = g_mime_part_get_content(part);
	GMimeStream *out = g_mime_stream_mem_new();
	GByteArray *bytes;
	const char *name = g_mime_part_get_filename(part);
	char *type = NULL, *copy;
	enum agora_err rc = AGORA_E_TOO_LARGE;

	if (dw == NULL || g_mime_data_wrapper_write_to_stream(dw, out) < 0) {
		rc = agora_problem(r, AGORA_E_BAD_REQUEST, "bad_multipart",
		    "The file part cannot be read.");
		goto out;
	}
	bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(out));
	if ((copy = agora_alloc(r, bytes->len + 1)) == NULL)
		goto out;
	memcpy(copy, bytes->data, bytes->len);
	up->data = copy;
	up->len = bytes->len;
	up->filename = agora_strdup(r, name != NULL ? name : "upload");
	up->filename_len = up->filename != NULL ? strlen(up->filename) : 0;
	type = g_mime_content_type_get_mime_type(
	    g_mime_object_get_content_type(GMIME_OBJECT(part)));
	up->content_type = agora_strdup(r, type);
	rc = up->filename != NULL && up->content_type != NULL
	    ? AGORA_OK
	    : AGORA_E_TOO_LARGE;
out:
	g_free(type);
	g_object_unref(out);
	return rc;
}

/*
 * GMime parses a MIME entity, headers first: the form gets the request's
 * Content-Type as its header, and the body after it.
 */
static enum agora_err
multipart_read(struct agora_req *r, const char *ctype, struct upload *up)
{
	GMimeStream *in = g_mime_stream_mem_new();
	GMimeParser *parser = NULL;
	GMimeObject *form = NULL;
	GMimePart *part;
	char *head;
	enum agora_err rc;

	head = agora_printf(r, "Content-Type: %s\r\n\r\n", ctype);
	if (head == NULL || g_mime_stream_write(in, head, strlen(head)) < 0 ||
	    g_mime_stream_write(in, r->body, r->body_len) < 0) {
		rc = AGORA_E_TOO_LARGE;
		goto out;
	}
	g_mime_stream_reset(in);
	parser = g_mime_parser_new_with_stream(in);
	form = g_mime_parser_construct_part(parser, NULL);
	if ((part = form != NULL ? file_part(form) : NULL) == NULL) {
		rc = agora_problem_field(r, AGORA_E_VALIDATION, "file",
		    "A multipart/form-data body needs a part named file.");
		goto out;
	}
	rc = part_read(r, part, up);
out:
	if (form != NULL)
		g_object_unref(form);
	if (parser != NULL)
		g_object_unref(parser);
	g_object_unref(in);
	return rc;
}

/* --- POST /files ------------------------------------------------------------
 */

static enum agora_err
upload_read(struct agora_req *r, struct upload *up)
{
	const char *ct = agora_param(r, "CONTENT_TYPE"), *name;
	enum agora_err rc;

	memset(up, 0, sizeof(*up));
	if (is_multipart(ct)) {
		if ((rc = multipart_read(r, ct, up)) != AGORA_OK)
			return rc;
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
	return agora_resp_raw(r, 201, "application/json", PQgetvalue(res, 0, 1),
	    (size_t)PQgetlength(res, 0, 1));
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
	return agora_resp_raw(r, 200, "application/json", PQgetvalue(res, 0, 1),
	    (size_t)PQgetlength(res, 0, 1));
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
	g_mime_init();
	return 0;
}

static const struct agora_route routes[] = {
	{ "POST", "/api/v1/files", AGORA_BODY_RAW, post_file, AGORA_USER },
	{ "GET", "/api/v1/files/{id}", AGORA_BODY_NONE, get_file, AGORA_USER },
	{ "GET", "/api/v1/files/{id}/download", AGORA_BODY_NONE, get_download,
	    AGORA_USER },
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
