/*
 * log.c: one JSON object per line on stderr.
 *
 * Each line is built whole and written with one write(2), so lines from
 * the many processes of a program never interleave in the web server's
 * error log.  json-c does the escaping.
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

void
agora_log_init(const char *name)
{
	snprintf(program, sizeof(program), "%s", name);
}

static void
add_time(struct json_object *o)
{
	struct timespec ts;
	struct tm tm;
	char buf[40], frac[8];
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, sizeof(buf) - sizeof(frac), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(frac, sizeof(frac), ".%03dZ", (int)(ts.tv_nsec / 1000000));
	memcpy(buf + n, frac, strlen(frac) + 1);
	json_object_object_add(o, "ts", json_object_new_string(buf));
}

static void
emit(struct json_object *o)
{
	const char *s;
	char line[LINE_MAX_BYTES];
	size_t n;
	ssize_t w;

	s = json_object_to_json_string_ext(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	n = strlen(s);
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	memcpy(line, s, n);
	line[n++] = '\n';
	w = write(STDERR_FILENO, line, n);
	(void)w; /* nowhere left to report a failed log write */
	json_object_put(o);
}

static struct json_object *
line_new(const char *level)
{
	struct json_object *o;

	o = json_object_new_object();
	if (o == NULL)
		return NULL;
	add_time(o);
	json_object_object_add(o, "level", json_object_new_string(level));
	json_object_object_add(o, "program", json_object_new_string(program));
	return o;
}

void
agora_log(const char *level, const char *fmt, ...)
{
	struct json_object *o;
	char msg[2048];
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	o = line_new(level);
	if (o == NULL)
		return;
	json_object_object_add(o, "msg", json_object_new_string(msg));
	emit(o);
}

/* Long client-chosen strings are cut so that a line stays whole. */
static struct json_object *
str_or_null(const char *s)
{
	size_t n;

	if (s == NULL)
		return NULL;
	n = strlen(s);
	return json_object_new_string_len(s, n > 512 ? 512 : (int)n);
}

/* The access log line: method, path, status, duration, request id, user. */
void
agora_log_request(const struct agora_req *r)
{
	struct json_object *o;
	struct timespec now;
	char dur[32];
	double ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (double)(now.tv_sec - r->start.tv_sec) * 1e3 +
	    (double)(now.tv_nsec - r->start.tv_nsec) / 1e6;
	o = line_new(r->status >= 500 ? "error" : "info");
	if (o == NULL)
		return;
	json_object_object_add(o, "method", str_or_null(r->method));
	json_object_object_add(o, "path", str_or_null(r->path));
	json_object_object_add(o, "status", json_object_new_int(r->status));
	snprintf(dur, sizeof(dur), "%.3f", ms);
	json_object_object_add(
	    o, "duration_ms", json_object_new_double_s(ms, dur));
	json_object_object_add(o, "request_id", str_or_null(r->request_id));
	json_object_object_add(o, "user", str_or_null(r->user));
	if (r->error_code != NULL)
		json_object_object_add(
		    o, "code", json_object_new_string(r->error_code));
	emit(o);
}
