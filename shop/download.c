/*
 * download.c: answering with a stored file (uploads and invoices).
 *
 * Files come from users, so the answer must not let a browser run them
 * as a page of this site: they are sent as attachments (invoices inline,
 * being our own PDFs), and every answer carries nosniff and a
 * Content-Security-Policy of default-src 'none' (serve.c), so an uploaded
 * HTML page can run nothing.  The file name is cleaned when it is stored and
 * again when it is sent: no path, no quote, backslash, control character or NUL
 * reaches the header, and non-ASCII names travel in filename* (RFC 6266, 8187).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shop.h"

#define NAME_MAX_BYTES 255

/* Whether the UTF-8 sequence at s (len bytes left) is valid; its length. */
static size_t
utf8_seq(const unsigned char *s, size_t len)
{
	size_t n, i;

	if (s[0] < 0x80)
		return 1;
	n = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 ? 2 : 0;
	if (n == 0 || n > len || s[0] > 0xF4)
		return 0;
	for (i = 1; i < n; i++)
		if ((s[i] & 0xC0) != 0x80)
			return 0;
	return agora_utf8_valid((const char *)s, n) ? n : 0;
}

void
agora_filename_clean(const char *in, size_t inlen, char *out, size_t outlen)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t i, j = 0, n, start = 0, cap;

	/* Only the last path component: no directory survives. */
	for (i = 0; i < inlen; i++)
		if (s[i] == '/' || s[i] == '\\')
			start = i + 1;
	cap = outlen - 1 < NAME_MAX_BYTES ? outlen - 1 : NAME_MAX_BYTES;
	for (i = start; i < inlen && j < cap; i += n) {
		n = utf8_seq(s + i, inlen - i);
		if (n == 0 || s[i] < 0x20 || s[i] == 0x7f || s[i] == '"' ||
		    (j == 0 && (s[i] == '.' || s[i] == ' '))) {
			/* Leading dots would hide the file or mean ".." */
			if (j > 0 || (s[i] != '.' && s[i] != ' '))
				out[j++] = '_';
			n = n == 0 ? 1 : n;
			continue;
		}
		if (j + n > cap)
			break;
		memcpy(out + j, s + i, n);
		j += n;
	}
	out[j] = '\0';
	if (j == 0)
		snprintf(out, outlen, "file");
}

/* RFC 8187 attr-char: what filename* may carry unescaped. */
static int
attr_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || strchr("!#$&+-.^_`|~", c) != NULL;
}

/* kind ("attachment" or "inline") with name, cleaned, in both forms. */
const char *
agora_content_disposition(
    struct agora_req *r, const char *kind, const char *name)
{
	char clean[NAME_MAX_BYTES + 1], ascii[NAME_MAX_BYTES + 1];
	char ext[3 * NAME_MAX_BYTES + 1];
	size_t i, e = 0;

	agora_filename_clean(name, strlen(name), clean, sizeof(clean));
	for (i = 0; clean[i] != '\0'; i++) {
		unsigned char c = (unsigned char)clean[i];

		ascii[i] = c < 0x80 && c != '\\' && c != '"' ? (char)c : '_';
		if (attr_char(c))
			ext[e++] = (char)c;
		else
			e += (size_t)snprintf(
			    ext + e, sizeof(ext) - e, "%%%02X", c);
	}
	ascii[i] = '\0';
	ext[e] = '\0';
	return agora_printf(
	    r, "%s; filename=\"%s\"; filename*=UTF-8''%s", kind, ascii, ext);
}

void
agora_file_of(PGresult *res, int row, int col, struct agora_file *f)
{
	f->filename = PQgetvalue(res, row, col);
	f->content_type = PQgetvalue(res, row, col + 1);
	f->sha256 = PQgetvalue(res, row, col + 2);
	f->storage = PQgetvalue(res, row, col + 3);
	f->key = PQgetvalue(res, row, col + 4);
}

enum agora_err
agora_file_send(struct agora_req *r, const struct agora_file *f, int inline_)
{
	const struct agora_config *cfg = &r->ctx->cfg;
	const char *etag, *inm;
	char err[256];
	char *data = NULL;
	size_t len = 0;
	int rc;

	etag = agora_printf(r, "\"%s\"", f->sha256);
	inm = agora_param(r, "HTTP_IF_NONE_MATCH");
	if (inm != NULL && agora_etag_match(inm, etag)) {
		agora_resp_header(r, "ETag", etag);
		agora_resp_header(r, "Cache-Control", "private, no-cache");
		return agora_resp_raw(r, 304, NULL, NULL, 0);
	}
	rc = agora_storage_get(cfg, f->storage, f->key,
	    (size_t)cfg->file_max_bytes + AGORA_UPLOAD_SLACK_BYTES, &data, &len,
	    err, sizeof(err));
	if (rc == 1) {
		/* A row whose bytes are gone: lost data, not a busy store. */
		agora_log("error", "file %s is missing: %s", f->key, err);
		return agora_problem(r, AGORA_E_INTERNAL, "file_missing",
		    "The file's bytes are missing from storage.");
	}
	if (rc != 0) {
		agora_log("error", "file %s: %s", f->key, err);
		agora_resp_header(r, "Retry-After",
		    agora_printf(r, "%lld", cfg->db_retry_after));
		return agora_problem(r, AGORA_E_UNAVAILABLE,
		    "storage_unavailable",
		    "The file cannot be read from storage right now.");
	}
	if (agora_arena_defer(r->arena, free, data) != 0) {
		free(data);
		return AGORA_E_TOO_LARGE;
	}
	agora_resp_header(r, "ETag", etag);
	agora_resp_header(r, "Cache-Control", "private, no-cache");
	agora_resp_header(r, "Content-Disposition",
	    agora_content_disposition(
	        r, inline_ ? "inline" : "attachment", f->filename));
	return agora_resp_raw(r, 200, f->content_type, data, len);
}
