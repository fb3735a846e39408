/*
 * multipart.h: the file of a multipart/form-data upload (multipart.c).
 *
 * The body is split here, with every count and size bounded, before
 * GMime sees any of it; GMime then reads only the header block of each
 * part and decodes the one part named "file".  Linked into the files
 * program, its unit test and its fuzzer; libagora does not use GMime.
 */
#ifndef AGORA_MULTIPART_H
#define AGORA_MULTIPART_H

#include <stddef.h>

#include "agora.h"

/* RFC 2046 section 5.1.1: a boundary is 1 to 70 characters. */
#define MULTIPART_BOUNDARY_MAX 70
/*
 * A form with a file needs a part for it and a few for other fields; a
 * body of more parts is refused before any is parsed (413
 * too_many_parts): 150,000 empty parts in 1.4 MB cost GMime ~190 MB.
 */
#define MULTIPART_MAX_PARTS 16
/* One part's header block, and all of them together (413
 * part_headers_too_large). */
#define MULTIPART_PART_HEADER_MAX 4096
#define MULTIPART_PART_HEADER_LINES 16
#define MULTIPART_HEADERS_MAX 16384

/* One part as it lies in the body: its header block and its content. */
struct multipart_part {
	const char *head;
	size_t head_len;
	const char *body;
	size_t body_len;
};

enum multipart_split_err {
	MULTIPART_OK = 0,
	MULTIPART_TOO_MANY_PARTS,
	MULTIPART_HEADERS_TOO_LARGE
};

/* The uploaded file: arena copies of its bytes, name and type. */
struct multipart_file {
	const char *data;
	size_t len;
	const char *filename;
	const char *content_type;
};

/*
 * The boundary parameter of a multipart/form-data Content-Type, unquoted,
 * into out (at least MULTIPART_BOUNDARY_MAX + 1 bytes): 0, or -1 when the
 * media type is another one, the boundary is missing, given twice,
 * badly quoted or not 1 to 70 of RFC 2046's characters.
 */
int multipart_boundary(const char *ctype, char *out, size_t outlen);

/*
 * Split body at the delimiter lines of boundary into at most max parts
 * (max <= MULTIPART_MAX_PARTS); *n is the number found.  Stops at the
 * first delimiter past max, so its cost is bounded by max, not the body.
 */
enum multipart_split_err multipart_split(const char *body, size_t len,
    const char *boundary, struct multipart_part *parts, size_t max, size_t *n);

/* Once per process, before the first request. */
void multipart_init(void);

/*
 * Read the "file" part of the request's multipart/form-data body, whose
 * Content-Type is ctype.  On failure the problem answer is set.
 */
enum agora_err multipart_file(
    struct agora_req *r, const char *ctype, struct multipart_file *f);

#endif /* AGORA_MULTIPART_H */
