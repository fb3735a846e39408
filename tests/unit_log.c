/*
 * unit_log.c: every log line is one valid JSON object, whatever the
 * client sent: quotes, control characters, bytes from 0x80, and values
 * far longer than a line holds.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "agora.h"
#include "tap.h"

#define OUT_MAX 65536

static char out[OUT_MAX];

/* Run fn with stderr sent to a pipe; out holds what it wrote. */
static size_t
capture(void (*fn)(const void *), const void *arg)
{
	int fds[2], saved;
	ssize_t n;
	size_t got = 0;

	if (pipe(fds) != 0)
		return 0;
	saved = dup(STDERR_FILENO);
	dup2(fds[1], STDERR_FILENO);
	close(fds[1]);
	fn(arg);
	dup2(saved, STDERR_FILENO);
	close(saved);
	while (got < sizeof(out) - 1 &&
	    (n = read(fds[0], out + got, sizeof(out) - 1 - got)) > 0)
		got += (size_t)n;
	close(fds[0]);
	out[got] = '\0';
	return got;
}

static void
log_request(const void *arg)
{
	agora_log_request(arg);
}

static void
log_msg(const void *arg)
{
	agora_log("warning", "%s", (const char *)arg);
}

/* The one line in out, parsed strictly; NULL unless it is one object. */
static struct json_object *
line(size_t len)
{
	struct json_object *o;
	const char *why;

	if (len < 2 || out[len - 1] != '\n' || memchr(out, '\n', len - 1))
		return NULL;
	if (agora_json_parse(out, len, &o, &why) != 0)
		return NULL;
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static const char *
str(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v)
	                                             : NULL;
}

/* want: the path the line should give back; NULL: path itself. */
static void
request_line(const char *path, const char *want, const char *what)
{
	struct agora_req r;
	struct json_object *o;
	const char *got;
	size_t len, cut;

	memset(&r, 0, sizeof(r));
	r.method = "GET";
	r.path = path;
	r.status = 404;
	r.request_id = "abc-1";
	r.error_code = "not_found";
	clock_gettime(CLOCK_MONOTONIC, &r.start);
	len = capture(log_request, &r);
	o = line(len);
	tap_ok(o != NULL, "request line, %s: one JSON object (%lu bytes)", what,
	    (unsigned long)len);
	if (o == NULL)
		return;
	if (want == NULL)
		want = path;
	got = str(o, "path");
	/* Cut at 512 bytes, or at the start of the character there. */
	cut = strlen(want) <= 512 ? strlen(want) : 512;
	while (cut < strlen(want) && ((unsigned char)want[cut] & 0xc0) == 0x80)
		cut--;
	tap_ok(
	    got != NULL && strlen(got) == cut && strncmp(got, want, cut) == 0,
	    "request line, %s: the path comes back (cut at 512, between "
	    "characters: %lu bytes)",
	    what, (unsigned long)cut);
	tap_ok(
	    json_object_get_int(json_object_object_get(o, "status")) == 404 &&
	        strcmp(str(o, "request_id"), "abc-1") == 0 &&
	        strcmp(str(o, "code"), "not_found") == 0 &&
	        str(o, "user") == NULL &&
	        json_object_is_type(json_object_object_get(o, "duration_ms"),
	            json_type_double) &&
	        strcmp(str(o, "level"), "info") == 0 &&
	        strlen(str(o, "ts")) == 24,
	    "request line, %s: the other fields", what);
	json_object_put(o);
}

/* Whether ts is t's second in UTC, with three digits of milliseconds. */
static time_t
realtime(void)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	return now.tv_sec;
}

static int
time_is(const char *ts, time_t t)
{
	char want[32];
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%S.", &tm);
	return strlen(ts) == 24 && strncmp(ts, want, 20) == 0 &&
	    strspn(ts + 20, "0123456789") == 3 && ts[23] == 'Z';
}

/*
 * The time, status and duration are written digit by digit: the time is
 * now's, in UTC, to the millisecond; the duration, of a request that
 * started ms milliseconds ago, is milliseconds with three decimals.
 */
static void
formats(long ms)
{
	struct agora_req r;
	struct json_object *o;
	const char *ts, *d;
	char *end;
	time_t t0, t1;
	long got;

	memset(&r, 0, sizeof(r));
	r.method = "GET";
	r.path = "/";
	r.status = 201;
	r.request_id = "f";
	clock_gettime(CLOCK_MONOTONIC, &r.start);
	r.start.tv_sec -= ms / 1000 + 1;
	r.start.tv_nsec += 1000000000L - (ms % 1000) * 1000000L;
	if (r.start.tv_nsec >= 1000000000L) {
		r.start.tv_sec++;
		r.start.tv_nsec -= 1000000000L;
	}
	/*
	 * The clock the log reads: time(2) may read a coarser one, which
	 * can still show the second before just after a second begins.
	 */
	t0 = realtime();
	o = line(capture(log_request, &r));
	t1 = realtime();
	ts = o != NULL ? str(o, "ts") : "";
	d = strstr(out, "\"duration_ms\":");
	d = d != NULL ? d + 14 : "0";
	got = strtol(d, &end, 10);
	tap_ok(o != NULL && (time_is(ts, t0) || time_is(ts, t1)) &&
	        json_object_get_int(json_object_object_get(o, "status")) ==
	            201 &&
	        got >= ms && got < ms + 1000 && *end == '.' &&
	        strspn(end + 1, "0123456789") == 3 && end[4] == ',',
	    "time %s, duration %ld ms written as %.*s", ts, ms,
	    (int)strcspn(d, ","), d);
	if (o != NULL)
		json_object_put(o);
}

/* Whether h is "00-<trace>-<16 hex>-<flags>", and its span into span. */
static int
header_of(const char *h, const char *trace, const char *flags, char *span)
{
	size_t i;

	if (strlen(h) != AGORA_TRACEPARENT_LEN || strncmp(h, "00-", 3) != 0 ||
	    strncmp(h + 3, trace, 32) != 0 || h[35] != '-' || h[52] != '-' ||
	    strcmp(h + 53, flags) != 0)
		return 0;
	for (i = 36; i < 52; i++)
		if (strchr("0123456789abcdef", h[i]) == NULL)
			return 0;
	memcpy(span, h + 36, 16);
	span[16] = '\0';
	return 1;
}

/* What trace.c continues, and what it starts anew instead. */
static void
traces(void)
{
	static const char *const bad[] = { NULL, "",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
		"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x" };
	const char *t = "4bf92f3577b34da6a3ce929d0e0e4736";
	char h[AGORA_TRACEPARENT_LEN + 1], span[17], child[17];
	struct json_object *o;
	size_t i, len;

	agora_trace_end();
	tap_ok(agora_trace_id() == NULL && agora_trace_header(h, 0) == -1,
	    "trace: none outside a request or a job");
	agora_trace_begin(
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
	tap_ok(agora_trace_header(h, 0) == 0 && header_of(h, t, "00", span) &&
	        strcmp(span, "00f067aa0ba902b7") != 0,
	    "trace: a traceparent is continued, flags and all, in a new span");
	tap_ok(agora_trace_header(h, 1) == 0 && header_of(h, t, "00", child) &&
	        strcmp(child, span) != 0,
	    "trace: a call's header is a child span of it");
	len = capture(log_msg, "traced");
	o = line(len);
	tap_ok(o != NULL && str(o, "trace_id") != NULL &&
	        strcmp(str(o, "trace_id"), t) == 0,
	    "trace: a log line carries the trace id");
	if (o != NULL)
		json_object_put(o);
	agora_trace_begin(
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-fe");
	tap_ok(agora_trace_header(h, 0) == 0 && header_of(h, t, "00", span),
	    "trace: flags other than the sampled bit are dropped (fe: 00)");
	agora_trace_begin(
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03");
	tap_ok(agora_trace_header(h, 0) == 0 && header_of(h, t, "01", span),
	    "trace: and the sampled bit is kept (03: 01)");
	agora_trace_begin(
	    "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more");
	tap_ok(agora_trace_id() != NULL && strcmp(agora_trace_id(), t) == 0,
	    "trace: a later version's first fields are read");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		agora_trace_begin(bad[i]);
		tap_ok(agora_trace_header(h, 0) == 0 &&
		        strlen(agora_trace_id()) == 32 &&
		        strcmp(agora_trace_id(), t) != 0 &&
		        strspn(agora_trace_id(), "0123456789abcdef") == 32,
		    "trace: %s starts a trace of its own",
		    bad[i] != NULL ? bad[i] : "no header");
	}
	agora_trace_continue(t);
	tap_ok(strcmp(agora_trace_id(), t) == 0,
	    "trace: an outbox row's trace id is continued");
	agora_trace_continue("not a trace id");
	tap_ok(agora_trace_id() != NULL && strcmp(agora_trace_id(), t) != 0,
	    "trace: a malformed one starts a trace");
	agora_trace_end();
	len = capture(log_msg, "untraced");
	o = line(len);
	tap_ok(o != NULL && !json_object_object_get_ex(o, "trace_id", NULL),
	    "trace: after its end, lines carry none");
	if (o != NULL)
		json_object_put(o);
}

int
main(void)
{
	static char longpath[3000], controls[700], msg[3000];
	struct json_object *o, *v;
	size_t i, len;

	agora_log_init("unit_log");
	formats(0);
	formats(45);
	formats(12003);
	request_line("/api/v1/products/1", NULL, "plain");
	request_line("/a\"b\\c\n\r\t\x01\x1f/caf\xc3\xa9 \xe2\x82\xac", NULL,
	    "escapes and UTF-8");
	/* Not UTF-8: every byte from 0x80 is shown as the code point of
	 * that value. */
	request_line(
	    "/x\xff\xc3\xa9", "/x\xc3\xbf\xc3\x83\xc2\xa9", "invalid UTF-8");
	for (i = 0; i < sizeof(controls) - 1; i++)
		controls[i] = (char)(1 + i % 31);
	request_line(controls, NULL, "700 control characters");
	memset(longpath, '"', sizeof(longpath) - 1);
	request_line(longpath, NULL, "2,999 quotes");
	/* 600 two-byte characters: the cut at 512 bytes falls between. */
	for (i = 0; i + 1 < 1201; i += 2)
		memcpy(longpath + i, "\xc3\xa9", 2);
	longpath[1200] = '\0';
	request_line(longpath, NULL, "600 two-byte characters");
	/* 200 three-byte characters: 512 falls inside the 171st. */
	for (i = 0; i < 600; i += 3)
		memcpy(longpath + i, "\xe2\x82\xac", 3);
	longpath[600] = '\0';
	request_line(longpath, NULL, "200 three-byte characters");

	/* A message longer than a line: cut, still one object. */
	for (i = 0; i < sizeof(msg) - 1; i++)
		msg[i] = i % 3 == 0 ? '\x02' : '"';
	len = capture(log_msg, msg);
	o = line(len);
	tap_ok(o != NULL && len <= 4096,
	    "a long message: one line of %lu bytes", (unsigned long)len);
	if (o != NULL) {
		tap_ok(strcmp(str(o, "program"), "unit_log") == 0 &&
		        strcmp(str(o, "level"), "warning") == 0 &&
		        strncmp(str(o, "msg"), msg, strlen(str(o, "msg"))) ==
		            0 &&
		        strlen(str(o, "msg")) > 500,
		    "a long message: a prefix of it, with the program and "
		    "level");
		json_object_put(o);
	}
	len = capture(log_msg, "trailing space and newline \n");
	o = line(len);
	tap_ok(o != NULL &&
	        strcmp(str(o, "msg"), "trailing space and newline") == 0,
	    "trailing blanks are dropped");
	tap_ok(o != NULL && json_object_object_get_ex(o, "pid", &v) &&
	        json_object_is_type(v, json_type_int) &&
	        json_object_get_int64(v) == (int64_t)getpid(),
	    "each line names the process that wrote it (pid)");
	if (o != NULL)
		json_object_put(o);
	traces();
	return tap_done();
}
