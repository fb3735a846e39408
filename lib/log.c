/*
 * log.c: one JSON object per line on stderr.
 *
 * Each line is built whole in a bounded buffer and written with one
 * write(2), so lines from the many processes of a program never interleave
 * in the web server's error log.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agora.h"

#define LINE_MAX_BYTES 4096

static char program[64] = "agora";
/* The process id as JSON text, so that a line says which process wrote it. */
static char pid[24];

/*
 * A line under construction, bounded by its buffer.  A string value that
 * does not fit is cut and a field that does not fit at all is left out,
 * always between fields, so the line stays valid JSON.  (json-c objects
 * cost the request log a dozen allocations per line; this costs none.)
 */
struct line {
	char buf[LINE_MAX_BYTES];
	size_t n;
};

/* Room left before the two bytes kept for the closing "}\n". */
static size_t
avail(const struct line *l)
{
	return LINE_MAX_BYTES - 2 - l->n;
}

/* Callers have checked the room. */
static void
put(struct line *l, const char *s, size_t len)
{
	memcpy(l->buf + l->n, s, len);
	l->n += len;
}

/*
 * A JSON string of at most max bytes of s, escaped as RFC 8259 asks
 * (quote, backslash and control characters).  Bytes from 0x80 pass as they
 * are when s is valid UTF-8; otherwise each is written as \u00XX, so that
 * the line stays valid JSON and still shows what was sent.  Needs 2 bytes
 * of room; cuts s to fit.
 */
static void
put_str(struct line *l, const char *s, size_t max)
{
	static const char hex[] = "0123456789abcdef";
	char esc[6];
	size_t i, n, len;
	unsigned char c;
	int raw_high;

	raw_high = agora_utf8_valid(s, strlen(s));
	n = strnlen(s, max);
	/* A cut inside a character moves back to its start. */
	while (raw_high && n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	put(l, "\"", 1);
	for (i = 0; i < n; i++) {
		c = (unsigned char)s[i];
		len = 2;
		esc[0] = '\\';
		esc[1] = (char)c;
		if (c == '\n')
			esc[1] = 'n';
		else if (c == '\t')
			esc[1] = 't';
		else if (c == '\r')
			esc[1] = 'r';
		else if (c < 0x20 || (c >= 0x80 && !raw_high)) {
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			len = 6;
		} else if (c != '"' && c != '\\') {
			esc[0] = (char)c;
			len = 1;
		}
		/* Room for this, the rest of its character, the quote. */
		if (avail(l) < len + 1 + (c >= 0xc0 && raw_high ? 3 : 0))
			break;
		put(l, esc, len);
	}
	put(l, "\"", 1);
}

/* ,"key": when it and need more bytes fit; returns 0 when they do not. */
static int
field(struct line *l, const char *key, size_t need)
{
	size_t kl = strlen(key);

	if (avail(l) < kl + 4 + need)
		return 0;
	put(l, ",\"", 2);
	put(l, key, kl);
	put(l, "\":", 2);
	return 1;
}

/* A string field, null when s is NULL. */
static void
field_str(struct line *l, const char *key, const char *s, size_t max)
{
	if (!field(l, key, 4))
		return;
	if (s == NULL)
		put(l, "null", 4);
	else
		put_str(l, s, max);
}

/*
 * v in decimal, at least width digits, at p; returns the end.  Every line
 * has a time, a status and a duration: snprintf's format parsing and its
 * floating point cost more than the rest of the line.
 */
static char *
digits(char *p, unsigned long long v, int width)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0 || n < width);
	while (n > 0)
		*p++ = tmp[--n];
	return p;
}

/* A field whose value is already JSON text (a number). */
static void
field_raw(struct line *l, const char *key, const char *json)
{
	if (field(l, key, strlen(json)))
		put(l, json, strlen(json));
}

void
agora_log_init(const char *name)
{
	snprintf(program, sizeof(program), "%s", name);
	*digits(pid, (unsigned long long)getpid(), 1) = '\0';
}

/* Open a line with its time, level and program. */
static void
line_open(struct line *l, const char *level)
{
	struct timespec ts;
	struct tm tm;
	char t[64], *p = t;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	/* 2026-11-22T07:56:46.143Z */
	p = digits(p, (unsigned)(tm.tm_year + 1900), 4);
	*p++ = '-';
	p = digits(p, (unsigned)(tm.tm_mon + 1), 2);
	*p++ = '-';
	p = digits(p, (unsigned)tm.tm_mday, 2);
	*p++ = 'T';
	p = digits(p, (unsigned)tm.tm_hour, 2);
	*p++ = ':';
	p = digits(p, (unsigned)tm.tm_min, 2);
	*p++ = ':';
	p = digits(p, (unsigned)tm.tm_sec, 2);
	*p++ = '.';
	p = digits(p, (unsigned long long)ts.tv_nsec / 1000000, 3);
	memcpy(p, "Z", 2);
	l->n = 0;
	put(l, "{\"ts\":", 6);
	put_str(l, t, sizeof(t)); /* a fresh line has room for all three */
	field_str(l, "level", level, 16);
	field_str(l, "program", program, sizeof(program));
	if (pid[0] != '\0')
		field_raw(l, "pid", pid);
	/* Every line of a request's or a job's work: one trace to follow. */
	if (agora_trace_id() != NULL)
		field_str(l, "trace_id", agora_trace_id(), 33);
}

/* Close the line and write it with one write(2). */
static void
line_emit(struct line *l)
{
	ssize_t w;

	memcpy(l->buf + l->n, "}\n", 2);
	l->n += 2;
	w = write(STDERR_FILENO, l->buf, l->n);
	(void)w; /* nowhere left to report a failed log write */
}

void
agora_log(const char *level, const char *fmt, ...)
{
	struct line l;
	char msg[2048];
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	line_open(&l, level);
	field_str(&l, "msg", msg, sizeof(msg));
	line_emit(&l);
}

/*
 * The access log line: method, path, status, duration, request id, user.
 * Long client-chosen strings are cut at 512 bytes.
 */
void
agora_log_request(const struct agora_req *r)
{
	struct line l;
	struct timespec now;
	char num[32], *p;
	long long us;

	clock_gettime(CLOCK_MONOTONIC, &now);
	us = agora_ts_us(&r->start, &now);
	if (us < 0)
		us = 0;
	line_open(&l, r->status >= 500 ? "error" : "info");
	field_str(&l, "method", r->method, 512);
	field_str(&l, "path", r->path, 512);
	*digits(num, (unsigned)r->status, 1) = '\0';
	field_raw(&l, "status", num);
	/* Milliseconds with three decimals: 12.345. */
	p = digits(num, (unsigned long long)us / 1000, 1);
	*p++ = '.';
	*digits(p, (unsigned long long)us % 1000, 3) = '\0';
	field_raw(&l, "duration_ms", num);
	field_str(&l, "request_id", r->request_id, 512);
	field_str(&l, "user", r->user, 512);
	if (r->error_code != NULL)
		field_str(&l, "code", r->error_code, 512);
	if (r->from_replica)
		field_raw(&l, "replica", "true");
	line_emit(&l);
}
