/*
 * multipart.c: the "file" part of a multipart/form-data upload.
 *
 * GMime builds an object, with its headers and a stream, for every part
 * it meets, and recurses into nested multipart and message parts: given
 * a whole body it spent ~190 MB on 150,000 empty parts sent in 1.4 MB.
 * So the body is split here first (RFC 2046 section 5.1.1), counting the
 * parts and the bytes and lines of their headers as it goes and stopping
 * at the first one over the limits.  GMime then parses each part's
 * header block alone (with no content, whatever type it claims, there is
 * nothing to recurse into), and decodes the content of the file part
 * only when it has a Content-Transfer-Encoding; other content is used
 * where it lies in the body.  The boundary is taken from the request's
 * Content-Type here too, so that GMime never sees a boundary at all.
 */
#include "config.h"

#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>

#include "agora.h"
#include "multipart.h"

#define FORM_DATA "multipart/form-data"

/* RFC 9110 tchar: the characters of a token. */
static int
is_tchar(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("\"(),/:;<=>?@[\\]{}", c) == NULL;
}

/* RFC 2046 bchars, without the space, which may not end a boundary. */
static int
is_bchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z') || strchr("'()+_,-./:=?", c) != NULL;
}

static const char *
skip_ows(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/*
 * A parameter value at *pp, a token or a quoted-string, unquoted into
 * out when it fits (out holds MULTIPART_BOUNDARY_MAX + 1 bytes); returns
 * its length (past the cap when it does not fit), or -1 on bad syntax.
 */
static long
param_value(const char **pp, char *out)
{
	const char *p = *pp;
	size_t n = 0;
	int quoted = *p == '"';
	unsigned char c;

	if (quoted)
		p++;
	for (;; p++) {
		c = (unsigned char)*p;
		if (!quoted && !is_tchar(c))
			break;
		if (quoted && c == '"') {
			p++;
			break;
		}
		if (quoted && c == '\\')
			c = (unsigned char)*++p;
		/* qdtext and quoted-pair: no control character but HTAB. */
		if (c == '\0' || (c < 0x20 && c != '\t') || c == 0x7f)
			return -1;
		if (n < MULTIPART_BOUNDARY_MAX)
			out[n] = (char)c;
		n++;
	}
	if (n == 0 && !quoted)
		return -1;
	out[n < MULTIPART_BOUNDARY_MAX ? n : MULTIPART_BOUNDARY_MAX] = '\0';
	*pp = p;
	return (long)n;
}

/* One "name=value" parameter at *pp; the boundary's value goes to out. */
static int
param(const char **pp, char *out, int *found)
{
	char value[MULTIPART_BOUNDARY_MAX + 1];
	const char *p = *pp, *name = p;
	size_t nlen;
	long vlen;

	while (is_tchar((unsigned char)*p))
		p++;
	nlen = (size_t)(p - name);
	if (nlen == 0 || *p++ != '=' || (vlen = param_value(&p, value)) < 0)
		return -1;
	*pp = p;
	if (nlen != 8 || strncasecmp(name, "boundary", 8) != 0)
		return 0;
	if ((*found)++ > 0 || vlen < 1 || vlen > MULTIPART_BOUNDARY_MAX)
		return -1;
	memcpy(out, value, (size_t)vlen + 1);
	return 0;
}

static int
boundary_ok(const char *b)
{
	size_t i, n = strlen(b);

	if (n < 1 || n > MULTIPART_BOUNDARY_MAX || b[n - 1] == ' ')
		return 0;
	for (i = 0; i < n; i++)
		if (b[i] != ' ' && !is_bchar((unsigned char)b[i]))
			return 0;
	return 1;
}

int
multipart_boundary(const char *ctype, char *out, size_t outlen)
{
	const char *p = ctype;
	int found = 0;

	if (ctype == NULL || outlen < MULTIPART_BOUNDARY_MAX + 1 ||
	    strncasecmp(p, FORM_DATA, strlen(FORM_DATA)) != 0)
		return -1;
	out[0] = '\0';
	p += strlen(FORM_DATA);
	for (;;) {
		p = skip_ows(p);
		if (*p == '\0')
			break;
		if (*p++ != ';')
			return -1;
		p = skip_ows(p);
		/* RFC 9110 allows empty parameters: "a/b; ; c=d". */
		if (*p == ';' || *p == '\0')
			continue;
		if (param(&p, out, &found) != 0)
			return -1;
	}
	return found == 1 && boundary_ok(out) ? 0 : -1;
}

/* --- splitting ------------------------------------------------------------ */

struct scan {
	const char *end;
	const char *boundary;
	size_t blen;
};

/*
 * Whether the line at p is a delimiter line: "--" boundary, then "--"
 * for the last one, then only transport padding (spaces and tabs) up to
 * the line break (RFC 2046); GMime reads delimiters the same way.
 */
static int
is_delimiter(const struct scan *s, const char *p)
{
	const char *q = p + 2 + s->blen;

	if ((size_t)(s->end - p) < s->blen + 2 || p[0] != '-' || p[1] != '-' ||
	    memcmp(p + 2, s->boundary, s->blen) != 0)
		return 0;
	if (s->end - q >= 2 && q[0] == '-' && q[1] == '-')
		q += 2;
	while (q < s->end && (*q == ' ' || *q == '\t'))
		q++;
	return q == s->end || *q == '\n' ||
	    (*q == '\r' && (q + 1 == s->end || q[1] == '\n'));
}

static const char *
next_line(const struct scan *s, const char *p)
{
	const char *nl = memchr(p, '\n', (size_t)(s->end - p));

	return nl != NULL ? nl + 1 : s->end;
}

/* The first delimiter line at or after p (a line start); end if none. */
static const char *
next_delimiter(const struct scan *s, const char *p)
{
	while (p < s->end && !is_delimiter(s, p))
		p = next_line(s, p);
	return p;
}

/*
 * Split [p, stop) into header block and content at its first empty line,
 * within the header limits; *total adds the header bytes.
 */
static enum multipart_split_err
part_cut(const struct scan *s, const char *p, const char *stop,
    struct multipart_part *part, size_t *total)
{
	const char *line = p;
	size_t lines = 0;

	part->head = p;
	while (line < stop && *line != '\n' &&
	    !(*line == '\r' && line + 1 < stop && line[1] == '\n')) {
		if (++lines > MULTIPART_PART_HEADER_LINES ||
		    (size_t)(line - p) > MULTIPART_PART_HEADER_MAX)
			return MULTIPART_HEADERS_TOO_LARGE;
		line = next_line(s, line);
		if (line > stop)
			line = stop;
	}
	part->head_len = (size_t)(line - p);
	*total += part->head_len;
	if (part->head_len > MULTIPART_PART_HEADER_MAX ||
	    *total > MULTIPART_HEADERS_MAX)
		return MULTIPART_HEADERS_TOO_LARGE;
	if (line < stop)
		line += *line == '\n' ? 1 : 2;
	part->body = line;
	part->body_len = (size_t)(stop - line);
	return MULTIPART_OK;
}

/*
 * The content ends before the line break that precedes the next
 * delimiter: that break belongs to the delimiter (RFC 2046).
 */
static const char *
content_end(const struct scan *s, const char *start, const char *delim)
{
	if (delim == s->end || delim == start)
		return delim;
	delim--; /* the '\n' a delimiter line follows */
	if (delim > start && delim[-1] == '\r')
		delim--;
	return delim;
}

enum multipart_split_err
multipart_split(const char *body, size_t len, const char *boundary,
    struct multipart_part *parts, size_t max, size_t *n)
{
	struct scan s = { body + len, boundary, strlen(boundary) };
	const char *p, *next;
	size_t total = 0;
	enum multipart_split_err rc;

	*n = 0;
	p = next_delimiter(&s, body);
	while (p < s.end) {
		/* "--boundary--" closes the body; the rest is epilogue. */
		if ((size_t)(s.end - p) >= s.blen + 4 &&
		    memcmp(p + 2 + s.blen, "--", 2) == 0)
			break;
		p = next_line(&s, p);
		if (*n == max)
			return MULTIPART_TOO_MANY_PARTS;
		next = next_delimiter(&s, p);
		rc = part_cut(
		    &s, p, content_end(&s, p, next), &parts[*n], &total);
		if (rc != MULTIPART_OK)
			return rc;
		(*n)++;
		p = next;
	}
	return MULTIPART_OK;
}

/* --- GMime ---------------------------------------------------------------- */

void
multipart_init(void)
{
	g_mime_init();
}

/* GMime's reading of a part's header block alone; NULL if none. */
static GMimeObject *
part_head(const struct multipart_part *part)
{
	GMimeStream *in = g_mime_stream_mem_new();
	GMimeParser *parser;
	GMimeObject *o = NULL;

	if (g_mime_stream_write(in, part->head, part->head_len) < 0 ||
	    g_mime_stream_write(in, "\r\n\r\n", 4) < 0)
		goto out;
	g_mime_stream_reset(in);
	parser = g_mime_parser_new_with_stream(in);
	o = g_mime_parser_construct_part(parser, NULL);
	g_object_unref(parser);
out:
	g_object_unref(in);
	return o;
}

static int
is_file_part(GMimeObject *o)
{
	GMimeContentDisposition *d;
	const char *name;

	if (!GMIME_IS_PART(o))
		return 0;
	d = g_mime_object_get_content_disposition(o);
	name = d != NULL ? g_mime_content_disposition_get_parameter(d, "name")
	                 : NULL;
	return name != NULL && strcmp(name, "file") == 0;
}

/* The content of part decoded by GMime, as its encoding says, in f. */
static enum agora_err
decode(struct agora_req *r, GMimePart *gp, const struct multipart_part *part,
    struct multipart_file *f)
{
	GMimeStream *in, *out = g_mime_stream_mem_new();
	GMimeDataWrapper *dw;
	GByteArray *bytes;
	char *copy;
	enum agora_err rc = AGORA_E_TOO_LARGE;

	in = g_mime_stream_mem_new_with_buffer(part->body, part->body_len);
	dw = g_mime_data_wrapper_new_with_stream(
	    in, g_mime_part_get_content_encoding(gp));
	if (g_mime_data_wrapper_write_to_stream(dw, out) < 0) {
		rc = agora_problem(r, AGORA_E_BAD_REQUEST, "bad_multipart",
		    "The file part cannot be decoded.");
		goto out;
	}
	bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(out));
	if ((copy = agora_alloc(r, bytes->len + 1)) == NULL)
		goto out;
	/* An empty array may have no data at all: no memcpy from NULL. */
	if (bytes->len > 0)
		memcpy(copy, bytes->data, bytes->len);
	f->data = copy;
	f->len = bytes->len;
	rc = AGORA_OK;
out:
	g_object_unref(dw);
	g_object_unref(in);
	g_object_unref(out);
	return rc;
}

/* Bytes, name and type of the file part, into the request's arena. */
static enum agora_err
part_read(struct agora_req *r, GMimePart *gp, const struct multipart_part *part,
    struct multipart_file *f)
{
	const char *name = g_mime_part_get_filename(gp);
	char *type;
	enum agora_err rc;

	switch (g_mime_part_get_content_encoding(gp)) {
	case GMIME_CONTENT_ENCODING_DEFAULT:
	case GMIME_CONTENT_ENCODING_7BIT:
	case GMIME_CONTENT_ENCODING_8BIT:
	case GMIME_CONTENT_ENCODING_BINARY:
		/* As sent: the request's body lives as long as the request. */
		f->data = part->body;
		f->len = part->body_len;
		break;
	default:
		if ((rc = decode(r, gp, part, f)) != AGORA_OK)
			return rc;
	}
	type = g_mime_content_type_get_mime_type(
	    g_mime_object_get_content_type(GMIME_OBJECT(gp)));
	f->content_type = type != NULL ? agora_strdup(r, type) : NULL;
	g_free(type);
	f->filename = agora_strdup(r, name != NULL ? name : "upload");
	return f->filename != NULL && f->content_type != NULL
	    ? AGORA_OK
	    : AGORA_E_TOO_LARGE;
}

static enum agora_err
split_problem(struct agora_req *r, enum multipart_split_err e)
{
	if (e == MULTIPART_TOO_MANY_PARTS)
		return agora_problem(r, AGORA_E_TOO_LARGE, "too_many_parts",
		    agora_printf(r,
		        "A multipart/form-data body may have at most %d "
		        "parts.",
		        MULTIPART_MAX_PARTS));
	return agora_problem(r, AGORA_E_TOO_LARGE, "part_headers_too_large",
	    agora_printf(r,
	        "A part's headers may have at most %d lines and %d bytes, "
	        "and all parts' headers %d bytes.",
	        MULTIPART_PART_HEADER_LINES, MULTIPART_PART_HEADER_MAX,
	        MULTIPART_HEADERS_MAX));
}

enum agora_err
multipart_file(struct agora_req *r, const char *ctype, struct multipart_file *f)
{
	struct multipart_part parts[MULTIPART_MAX_PARTS];
	char boundary[MULTIPART_BOUNDARY_MAX + 1];
	GMimeObject *o = NULL;
	enum multipart_split_err e;
	enum agora_err rc;
	size_t n, i;

	memset(f, 0, sizeof(*f));
	if (multipart_boundary(ctype, boundary, sizeof(boundary)) != 0)
		return agora_problem(r, AGORA_E_BAD_REQUEST, "bad_multipart",
		    "multipart/form-data needs one boundary parameter of 1 "
		    "to 70 characters.");
	e = multipart_split(r->body != NULL ? r->body : "", r->body_len,
	    boundary, parts, MULTIPART_MAX_PARTS, &n);
	if (e != MULTIPART_OK)
		return split_problem(r, e);
	for (i = 0; i < n && o == NULL; i++) {
		o = part_head(&parts[i]);
		if (o != NULL && !is_file_part(o)) {
			g_object_unref(o);
			o = NULL;
		}
	}
	if (o == NULL)
		return agora_problem_field(r, AGORA_E_VALIDATION, "file",
		    "A multipart/form-data body needs a part named file.");
	rc = part_read(r, GMIME_PART(o), &parts[i - 1], f);
	g_object_unref(o);
	return rc;
}
