/*
 * util.c: small request-scoped helpers: arena strings, random ids, UTF-8.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "agora.h"

void *
agora_alloc(struct agora_req *r, size_t n)
{
	return agora_arena_alloc(r->arena, n);
}

char *
agora_strdup(struct agora_req *r, const char *s)
{
	size_t n;
	char *p;

	n = strlen(s) + 1;
	p = agora_arena_alloc(r->arena, n);
	if (p != NULL)
		memcpy(p, s, n);
	return p;
}

char *
agora_printf(struct agora_req *r, const char *fmt, ...)
{
	va_list ap;
	char *p;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	p = agora_arena_alloc(r->arena, (size_t)n + 1);
	if (p == NULL)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

static void
put_json(void *p)
{
	json_object_put(p);
}

/* Hand o to the arena; on failure o is released at once and -1 returned. */
int
agora_defer_json(struct agora_req *r, struct json_object *o)
{
	if (agora_arena_defer(r->arena, put_json, o) != 0) {
		json_object_put(o);
		return -1;
	}
	return 0;
}

int
agora_json_set(struct json_object *o, const char *key, struct json_object *v)
{
	if (o != NULL && json_object_object_add(o, key, v) == 0)
		return 0;
	json_object_put(v);
	return -1;
}

int
agora_json_push(struct json_object *a, struct json_object *v)
{
	if (a != NULL && json_object_array_add(a, v) == 0)
		return 0;
	json_object_put(v);
	return -1;
}

/* out must hold 2 * nbytes + 1 characters. */
void
agora_random_hex(char *out, size_t nbytes)
{
	unsigned char b[64];

	if (nbytes > sizeof(b))
		nbytes = sizeof(b);
	randombytes_buf(b, nbytes);
	sodium_bin2hex(out, 2 * nbytes + 1, b, nbytes);
}

/* The SHA-256 of len bytes at data, in hex. */
void
agora_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char h[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(h, data, len);
	sodium_bin2hex(out, 65, h, sizeof(h));
}

/*
 * A secret a client holds and the database knows only by its digest (a
 * refresh token, a mailed link's token): 256 random bits as unpadded
 * base64url into tok (43 characters), and its SHA-256 in hex into hash.
 */
void
agora_secret_new(char tok[AGORA_SECRET_TEXT], char hash[65])
{
	unsigned char raw[32];

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2base64(tok, AGORA_SECRET_TEXT, raw, sizeof(raw),
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof(raw));
	agora_sha256_hex(tok, strlen(tok), hash);
}

/*
 * Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
 * json-c's own check lets overlong forms through.
 */
int
agora_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i, n, k;
	unsigned long cp;

	for (i = 0; i < len; i += n) {
		if (p[i] < 0x80) {
			n = 1;
			continue;
		}
		if (p[i] >= 0xc2 && p[i] <= 0xdf)
			n = 2, cp = p[i] & 0x1f;
		else if (p[i] >= 0xe0 && p[i] <= 0xef)
			n = 3, cp = p[i] & 0x0f;
		else if (p[i] >= 0xf0 && p[i] <= 0xf4)
			n = 4, cp = p[i] & 0x07;
		else
			return 0;
		if (len - i < n)
			return 0;
		for (k = 1; k < n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return 0;
	}
	return 1;
}

/* Code points in valid UTF-8. */
size_t
agora_utf8_len(const char *s, size_t len)
{
	size_t i, n;

	for (i = n = 0; i < len; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			n++;
	return n;
}

/* The time of clock id in milliseconds. */
long long
agora_clock_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Why agora_read_file failed, into err; errno is e again after. */
static char *
read_failed(const char *path, size_t max, int e, char *err, size_t errlen)
{
	if (e == EFBIG)
		snprintf(err, errlen, "%s: larger than %zu bytes", path, max);
	else
		snprintf(err, errlen, "%s: %s", path, strerror(e));
	errno = e;
	return NULL;
}

char *
agora_read_file(
    const char *path, size_t max, size_t *len, char *err, size_t errlen)
{
	FILE *f;
	char *buf;
	size_t n = 0;
	int e = 0;

	*len = 0;
	if ((f = fopen(path, "r")) == NULL)
		return read_failed(path, max, errno, err, errlen);
	setvbuf(f, NULL, _IONBF, 0);
	if ((buf = malloc(max + 1)) == NULL)
		e = ENOMEM;
	else if ((n = fread(buf, 1, max + 1, f)) > max)
		e = EFBIG;
	else if (ferror(f))
		e = EIO;
	fclose(f);
	if (e != 0) {
		if (buf != NULL)
			explicit_bzero(buf, max + 1);
		free(buf);
		return read_failed(path, max, e, err, errlen);
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

void
agora_pga_init(struct agora_pga *a, char *buf, size_t cap)
{
	a->buf = buf;
	a->cap = cap;
	a->len = 1;
	a->bad = cap < 3;
	if (!a->bad)
		buf[0] = '{';
}

void
agora_pga_add(struct agora_pga *a, const char *elem)
{
	const char *d = *elem == '-' ? elem + 1 : elem;
	size_t k = strlen(elem), sep = a->len > 1;

	if (a->bad || *d == '\0' || strspn(d, "0123456789") != strlen(d) ||
	    a->len + sep + k + 2 > a->cap) {
		a->bad = 1;
		return;
	}
	if (sep)
		a->buf[a->len++] = ',';
	memcpy(a->buf + a->len, elem, k);
	a->len += k;
}

void
agora_pga_add_ll(struct agora_pga *a, long long v)
{
	char num[AGORA_PGA_ELEM_MAX];

	snprintf(num, sizeof(num), "%lld", v);
	agora_pga_add(a, num);
}

const char *
agora_pga_end(struct agora_pga *a)
{
	if (a->bad)
		return NULL;
	a->buf[a->len] = '}';
	a->buf[a->len + 1] = '\0';
	return a->buf;
}

long long
agora_ts_us(const struct timespec *a, const struct timespec *b)
{
	return (long long)(b->tv_sec - a->tv_sec) * 1000000 +
	    (b->tv_nsec - a->tv_nsec) / 1000;
}

long long
agora_ms_since(const struct timespec *t)
{
	return agora_us_since(t) / 1000;
}

long long
agora_us_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return agora_ts_us(t, &now);
}

int
agora_write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	ssize_t w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}
