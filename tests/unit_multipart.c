/*
 * unit_multipart.c: the multipart/form-data reader of POST /files: the
 * boundary parameter, the split with its limits, and the file part as
 * GMime decodes it, without a web server.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agora.h"
#include "multipart.h"
#include "tap.h"

static void
test_boundary(void)
{
	static const struct {
		const char *ctype, *want; /* want NULL: refused */
	} cases[] = {
		{ "multipart/form-data; boundary=abc", "abc" },
		{ "Multipart/Form-Data;BOUNDARY=x-1", "x-1" },
		{ "multipart/form-data; charset=utf-8; boundary=\"a b:c\"",
		    "a b:c" },
		{ "multipart/form-data; boundary=\"q\\=p\"", "q=p" },
		{ "multipart/form-data; boundary=abc;", "abc" },
		{ "multipart/form-data; ; boundary=abc", "abc" },
		{ "multipart/form-data; boundary=abc ; x=\"y;z\"", "abc" },
		{ "multipart/form-data", NULL },
		{ "multipart/form-data; boundary=", NULL },
		{ "multipart/form-data; boundary=\"\"", NULL },
		{ "multipart/form-data; boundary=a; boundary=b", NULL },
		{ "multipart/form-data; boundary=\"abc ", NULL },
		{ "multipart/form-data; boundary=\"abc \"", NULL },
		{ "multipart/form-data; boundary=\"a\\\"b\"", NULL },
		{ "multipart/form-data; boundary=a\"b", NULL },
		{ "multipart/form-data; boundary=a*b", NULL },
		{ "multipart/form-data; boundary=\"a\x01\"", NULL },
		{ "multipart/form-data; boundary=\"\xc3\xa9\"", NULL },
		{ "multipart/form-data; boundary abc", NULL },
		{ "multipart/form-data boundary=abc", NULL },
		{ "multipart/form-datax; boundary=abc", NULL },
		{ "multipart/mixed; boundary=abc", NULL },
	};
	char b[MULTIPART_BOUNDARY_MAX + 1], ct[200];
	size_t i;
	int rc;

	for (i = 0; i < AGORA_NELEM(cases); i++) {
		rc = multipart_boundary(cases[i].ctype, b, sizeof(b));
		tap_ok(cases[i].want != NULL
		        ? rc == 0 && strcmp(b, cases[i].want) == 0
		        : rc == -1,
		    "boundary of [%s]: %s", cases[i].ctype,
		    cases[i].want != NULL ? cases[i].want : "refused");
	}
	snprintf(ct, sizeof(ct), "multipart/form-data; boundary=%070d", 7);
	tap_ok(multipart_boundary(ct, b, sizeof(b)) == 0 && strlen(b) == 70,
	    "a boundary of 70 characters");
	snprintf(ct, sizeof(ct), "multipart/form-data; boundary=\"%071d\"", 7);
	tap_ok(multipart_boundary(ct, b, sizeof(b)) == -1,
	    "a boundary of 71 characters is refused");
}

static enum multipart_split_err
split(const char *body, struct multipart_part *p, size_t *n)
{
	return multipart_split(
	    body, strlen(body), "XyZ", p, MULTIPART_MAX_PARTS, n);
}

static int
part_is(const struct multipart_part *p, const char *head, const char *body)
{
	return p->head_len == strlen(head) &&
	    memcmp(p->head, head, p->head_len) == 0 &&
	    p->body_len == strlen(body) &&
	    memcmp(p->body, body, p->body_len) == 0;
}

/* A body of n parts, each with a header block of hlines lines. */
static char *
parts_body(size_t n, size_t hlines, size_t hline_len)
{
	size_t cap = n * (hlines * (hline_len + 2) + 16) + 16, i, j, used = 0;
	char *b = malloc(cap);

	for (i = 0; i < n; i++) {
		used += (size_t)snprintf(b + used, cap - used, "--XyZ\r\n");
		for (j = 0; j < hlines; j++) {
			memset(b + used, 'h', hline_len);
			used += hline_len;
			used += (size_t)snprintf(b + used, cap - used, "\r\n");
		}
		used += (size_t)snprintf(b + used, cap - used, "\r\nv\r\n");
	}
	snprintf(b + used, cap - used, "--XyZ--\r\n");
	return b;
}

static void
test_split(void)
{
	struct multipart_part p[MULTIPART_MAX_PARTS];
	size_t n;
	char *b;

	tap_ok(split("preamble\r\n--XyZ\r\nA: 1\r\nB: 2\r\n\r\nbody\r\n"
	             "--\r\n--XyZ-not\r\n\r\n--XyZ\r\n\r\n\r\n--XyZ--\r\n"
	             "--XyZ\r\nepilogue",
	           p, &n) == MULTIPART_OK &&
	        n == 2 &&
	        part_is(
	            &p[0], "A: 1\r\nB: 2\r\n", "body\r\n--\r\n--XyZ-not\r\n") &&
	        part_is(&p[1], "", ""),
	    "split: preamble, headers, a line like a delimiter, epilogue");
	tap_ok(split("--XyZ\nA: 1\n\nx\n\n--XyZ--", p, &n) == MULTIPART_OK &&
	        n == 1 && part_is(&p[0], "A: 1\n", "x\n"),
	    "split: bare LF line breaks");
	tap_ok(
	    split("--XyZ\r\nA: 1\r\n--XyZ\r\n\r\nb", p, &n) == MULTIPART_OK &&
	        n == 2 && part_is(&p[0], "A: 1", "") && part_is(&p[1], "", "b"),
	    "split: a part of headers only; a body without a close delimiter");
	tap_ok(split("no delimiter\r\n", p, &n) == MULTIPART_OK && n == 0,
	    "split: no delimiter, no part");
	b = parts_body(MULTIPART_MAX_PARTS, 1, 10);
	tap_ok(split(b, p, &n) == MULTIPART_OK && n == MULTIPART_MAX_PARTS,
	    "split: %d parts are read", MULTIPART_MAX_PARTS);
	free(b);
	b = parts_body(MULTIPART_MAX_PARTS + 1, 1, 10);
	tap_ok(split(b, p, &n) == MULTIPART_TOO_MANY_PARTS,
	    "split: %d parts are refused", MULTIPART_MAX_PARTS + 1);
	free(b);
	b = parts_body(1, MULTIPART_PART_HEADER_LINES, 4);
	tap_ok(split(b, p, &n) == MULTIPART_OK, "split: %d header lines",
	    MULTIPART_PART_HEADER_LINES);
	free(b);
	b = parts_body(1, MULTIPART_PART_HEADER_LINES + 1, 4);
	tap_ok(split(b, p, &n) == MULTIPART_HEADERS_TOO_LARGE,
	    "split: %d header lines are refused",
	    MULTIPART_PART_HEADER_LINES + 1);
	free(b);
	b = parts_body(1, 1, MULTIPART_PART_HEADER_MAX + 1);
	tap_ok(split(b, p, &n) == MULTIPART_HEADERS_TOO_LARGE,
	    "split: a header block over %d bytes is refused",
	    MULTIPART_PART_HEADER_MAX);
	free(b);
	b = parts_body(MULTIPART_HEADERS_MAX / 2000 + 1, 1, 2000);
	tap_ok(split(b, p, &n) == MULTIPART_HEADERS_TOO_LARGE,
	    "split: header blocks over %d bytes in all are refused",
	    MULTIPART_HEADERS_MAX);
	free(b);
}

static struct agora_ctx ctx;
static struct agora_arena *arena;

/* multipart_file on body; the answer's status, 0 when it succeeded. */
static int
file(const char *ctype, const char *body, size_t len, struct multipart_file *f)
{
	static struct agora_req r;

	agora_arena_reset(arena);
	memset(&r, 0, sizeof(r));
	r.ctx = &ctx;
	r.arena = arena;
	r.request_id = "t";
	r.body = body;
	r.body_len = len;
	if (multipart_file(&r, ctype, f) == AGORA_OK)
		return 0;
	return r.status;
}

#define CT "multipart/form-data; boundary=XyZ"
#define FILE_HEAD                                                              \
	"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; "             \
	"filename=\"a.txt\"\r\n"

static int
file_is(const struct multipart_file *f, const char *data, const char *type,
    const char *name)
{
	return f->len == strlen(data) && memcmp(f->data, data, f->len) == 0 &&
	    strcmp(f->content_type, type) == 0 &&
	    strcmp(f->filename, name) == 0;
}

static void
test_file(void)
{
	static const char attack_part[] = "--XyZ\r\n\r\n\r\n";
	static const char with_nul[] =
	    "--XyZ\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n"
	    "1\r\n" FILE_HEAD "Content-Type: image/png\r\n\r\n\x00\r\nz\r\n"
	    "--XyZ--\r\n";
	struct multipart_file f;
	const char *b;
	char *big;
	size_t i, n = 150000;

	tap_ok(file(CT, with_nul, sizeof(with_nul) - 1, &f) == 0 &&
	        f.len == 4 && memcmp(f.data, "\x00\r\nz", 4) == 0 &&
	        strcmp(f.content_type, "image/png") == 0 &&
	        strcmp(f.filename, "a.txt") == 0,
	    "file part: bytes as sent, type and name");
	b = FILE_HEAD "Content-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n"
	              "--XyZ--\r\n";
	tap_ok(file(CT, b, strlen(b), &f) == 0 &&
	        file_is(&f, "hello", "text/plain", "a.txt"),
	    "file part in base64: decoded");
	b = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n"
	    "Content-Type: multipart/mixed; boundary=in\r\n\r\n--in\r\n\r\n"
	    "x\r\n--in--\r\n--XyZ--\r\n";
	tap_ok(file(CT, b, strlen(b), &f) == 422,
	    "a nested multipart is not a file part: 422");
	b = "--XyZ\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\n"
	    "x\r\n--XyZ--\r\n";
	tap_ok(file(CT, b, strlen(b), &f) == 422, "no file part: 422");
	tap_ok(file("multipart/form-data", b, strlen(b), &f) == 400,
	    "no boundary: 400");
	big = malloc(n * strlen(attack_part) + 1);
	for (i = 0; i < n; i++)
		memcpy(big + i * strlen(attack_part), attack_part,
		    strlen(attack_part));
	tap_ok(file(CT, big, n * strlen(attack_part), &f) == 413 &&
	        agora_arena_used(arena) < 64 * 1024,
	    "150,000 empty parts: 413 too_many_parts, %zu arena bytes",
	    agora_arena_used(arena));
	free(big);
}

int
main(void)
{
	agora_config_defaults(&ctx.cfg);
	arena = agora_arena_new((size_t)ctx.cfg.request_memory_bytes);
	multipart_init();
	test_boundary();
	test_split();
	test_file();
	agora_arena_free(arena);
	agora_config_free(&ctx.cfg);
	return tap_done();
}
