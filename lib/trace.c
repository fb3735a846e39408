/*
 * trace.c: the trace of what the process does now, as W3C Trace Context
 * (https://www.w3.org/TR/trace-context/) spells it: a 32-hex-digit trace
 * id shared by every part of the work, this process's span (16 hex
 * digits) in it, and the flags.  A program takes the trace from the
 * request's traceparent header, or starts one; the database keeps its id
 * on the outbox rows the request writes; the worker continues it for the
 * job, and each HTTP call it makes is a child span (httpc.c).  Every log
 * line written meanwhile carries the id (log.c).
 *
 * One trace at a time per process: a program serves one request, the
 * worker does one job.  A new id is a counter hashed with keys drawn once
 * per process (SipHash, libsodium's crypto_shorthash): random in every
 * digit, as samplers that read the low half expect, unpredictable to
 * other clients, unique across processes and hosts, and no system call
 * per request.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "agora.h"

#define TRACE_HEX 32
#define SPAN_HEX 16

static struct {
	int on;
	char trace[TRACE_HEX + 1];
	char span[SPAN_HEX + 1];
	char flags[3];
} cur;

/* A new id of n hex digits (16 or 32), never all zero. */
static void
new_id(char *out, size_t n)
{
	static unsigned char key[2][crypto_shorthash_KEYBYTES];
	static unsigned long long counter;
	static int keyed;
	unsigned char h[2 * crypto_shorthash_BYTES], in[sizeof(counter)];
	size_t i;

	if (!keyed) {
		randombytes_buf(key, sizeof(key));
		keyed = 1;
	}
	do {
		++counter;
		memcpy(in, &counter, sizeof(in));
		for (i = 0; i < n / 16; i++)
			crypto_shorthash(h + i * crypto_shorthash_BYTES, in,
			    sizeof(in), key[i]);
		sodium_bin2hex(out, n + 1, h, n / 2);
	} while (strspn(out, "0") == n);
}

/* n lowercase hex digits at s, not all zero (the spec's invalid id). */
static int
hex_id(const char *s, size_t n)
{
	size_t i;
	int nonzero = 0;

	for (i = 0; i < n; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') ||
		        (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
		nonzero |= s[i] != '0';
	}
	return nonzero || n == 2;
}

/*
 * Whether h is a traceparent this process can continue: version 00 of
 * exactly 55 characters, or a later version (not ff) whose first 55
 * characters have that form and end there or at a '-'.
 */
static int
parse(const char *h)
{
	size_t n = h != NULL ? strlen(h) : 0;

	if (n < 55 || !hex_id(h, 2) || strncmp(h, "ff", 2) == 0 ||
	    h[2] != '-' || !hex_id(h + 3, TRACE_HEX) || h[35] != '-' ||
	    !hex_id(h + 36, SPAN_HEX) || h[52] != '-' || !hex_id(h + 53, 2))
		return 0;
	if (strncmp(h, "00", 2) == 0 ? n != 55 : n > 55 && h[55] != '-')
		return 0;
	memcpy(cur.trace, h + 3, TRACE_HEX);
	cur.trace[TRACE_HEX] = '\0';
	/* Only the sampled bit is version 00's; the others go. */
	memcpy(cur.flags, strchr("13579bdf", h[54]) != NULL ? "01" : "00", 3);
	return 1;
}

void
agora_trace_begin(const char *traceparent)
{
	if (!parse(traceparent)) {
		new_id(cur.trace, TRACE_HEX);
		memcpy(cur.flags, "01", 3);
	}
	new_id(cur.span, SPAN_HEX);
	cur.on = 1;
}

void
agora_trace_continue(const char *trace_id)
{
	if (trace_id != NULL && strlen(trace_id) == TRACE_HEX &&
	    hex_id(trace_id, TRACE_HEX)) {
		memcpy(cur.trace, trace_id, TRACE_HEX + 1);
		memcpy(cur.flags, "01", 3);
		new_id(cur.span, SPAN_HEX);
		cur.on = 1;
	} else {
		agora_trace_begin(NULL);
	}
}

void
agora_trace_end(void)
{
	cur.on = 0;
}

const char *
agora_trace_id(void)
{
	return cur.on ? cur.trace : NULL;
}

int
agora_trace_header(char out[AGORA_TRACEPARENT_LEN + 1], int child)
{
	char span[SPAN_HEX + 1];

	if (!cur.on)
		return -1;
	if (child)
		new_id(span, SPAN_HEX);
	snprintf(out, AGORA_TRACEPARENT_LEN + 1, "00-%s-%s-%s", cur.trace,
	    child ? span : cur.span, cur.flags);
	return 0;
}
