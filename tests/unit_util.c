/*
 * unit_util.c: the array literal builder, the bounded file reader and
 * elapsed time.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agora.h"
#include "tap.h"

struct pga_case {
	const char *elems[4];
	size_t cap;
	const char *want; /* NULL: refused */
};

static const struct pga_case pgas[] = {
	{ { NULL }, 16, "{}" },
	{ { "1", "22", "333", NULL }, 16, "{1,22,333}" },
	{ { "-5", "0", NULL }, 16, "{-5,0}" },
	{ { "1", "22", "333", NULL }, 10, NULL }, /* one byte short */
	{ { "1", "22", "333", NULL }, 11, "{1,22,333}" },
	{ { "1", "2,3", NULL }, 16, NULL },
	{ { "1", "", NULL }, 16, NULL },
	{ { "\"x\"", NULL }, 16, NULL },
	{ { "-", NULL }, 16, NULL },
	{ { "1}", NULL }, 16, NULL },
	{ { NULL }, 2, NULL },
};

static void
pga_tests(void)
{
	struct agora_pga a;
	char buf[64];
	const char *got;
	size_t i, k;

	for (i = 0; i < sizeof(pgas) / sizeof(pgas[0]); i++) {
		agora_pga_init(&a, buf, pgas[i].cap);
		for (k = 0; pgas[i].elems[k] != NULL; k++)
			agora_pga_add(&a, pgas[i].elems[k]);
		got = agora_pga_end(&a);
		tap_ok(pgas[i].want == NULL
		        ? got == NULL
		        : got != NULL && strcmp(got, pgas[i].want) == 0,
		    "array %zu: %s", i, got != NULL ? got : "refused");
	}
	for (k = 0; k < 3; k++) {
		/* The documented size for two, the least, one byte less. */
		agora_pga_init(&a, buf, 2 * AGORA_PGA_ELEM_MAX + 3 - k);
		agora_pga_add_ll(&a, LLONG_MIN);
		agora_pga_add_ll(&a, LLONG_MIN);
		got = agora_pga_end(&a);
		tap_ok(k < 2 ? got != NULL &&
		            strcmp(got,
		                "{-9223372036854775808,"
		                "-9223372036854775808}") == 0
		             : got == NULL,
		    "two of the longest elements in n * AGORA_PGA_ELEM_MAX + 3 "
		    "- %zu bytes: %s",
		    k, got != NULL ? "fit" : "refused");
	}
}

static void
read_tests(void)
{
	char path[] = "/tmp/agora-unit-util-XXXXXX", err[300], *s;
	size_t len;
	FILE *f;
	int fd;

	if ((fd = mkstemp(path)) < 0 || (f = fdopen(fd, "w")) == NULL) {
		tap_ok(0, "mkstemp");
		return;
	}
	fputs("0123456789", f);
	fclose(f);
	s = agora_read_file(path, 10, &len, err, sizeof(err));
	tap_ok(s != NULL && len == 10 && strcmp(s, "0123456789") == 0,
	    "a file of its bound is read whole, NUL-terminated");
	free(s);
	errno = 0;
	s = agora_read_file(path, 9, &len, err, sizeof(err));
	tap_ok(s == NULL && errno == EFBIG && len == 0 &&
	        strstr(err, "larger than 9 bytes") != NULL,
	    "one byte over: refused, EFBIG: %s", err);
	unlink(path);
	s = agora_read_file(path, 10, &len, err, sizeof(err));
	tap_ok(s == NULL && errno == ENOENT && strstr(err, path) != NULL,
	    "a missing file: ENOENT, named: %s", err);
}

static void
time_tests(void)
{
	struct timespec a = { 10, 900000000 }, b = { 12, 100000 };

	tap_ok(agora_ts_us(&a, &b) == 1100100, "1.1001 s apart: %lld us",
	    agora_ts_us(&a, &b));
	tap_ok(agora_ts_us(&b, &a) == -1100100, "and back: negative");
}

int
main(void)
{
	pga_tests();
	read_tests();
	time_tests();
	return tap_done();
}
