/*
 * unit_alloc.c: the request path when memory runs out, SQLite's way.
 *
 * A normal request is run once to count its allocations; then, for every
 * N up to that count, the same request runs with the N-th allocation
 * failing (malloc, calloc and realloc, whoever calls them: the library,
 * json-c, libc), once with that one alone failing and once with every
 * allocation from the N-th on failing; then with the request's arena
 * capped at every size, 16 bytes apart, up to what the request uses.
 * Every run must answer one well-formed CGI response: the normal answer
 * (the allocation was not needed, or the failure was handled), or a
 * problem+json 413, 500 or 503; and the allocations live before the
 * request must be the same after it, so nothing leaked.  The handlers
 * do what real ones do: parse a JSON body, validate it, build an answer
 * with json-c, add headers.
 *
 * malloc, calloc, realloc and free are defined here and forward to the
 * next definition (libc's, or the sanitizer's or valgrind's in those
 * builds), which dlsym finds; dlsym's own allocations come from a static
 * buffer.  The sanitizers' allocator also serves some functions (strdup)
 * directly, so under them the live count is not checked here: their
 * leak checker checks it at exit.
 *
 * Allocations made inside json-c's tokener are not failed, only counted:
 * json-c 0.16 is not safe there.  It does not check the strdup of an
 * object's key and crashes on it (strlen of NULL in
 * json_object_object_add_ex), and reports other failures as syntax
 * errors.  What it allocates is bounded by the value cap of json.c.
 */
#include "config.h"

#include <dlfcn.h>
#include <execinfo.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "shop.h"
#include "tap.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define LIVE_COUNTED 0
#else
#define LIVE_COUNTED 1
#endif

/* --- the allocator -------------------------------------------------------- */

static void *(*next_malloc)(size_t);
static void *(*next_calloc)(size_t, size_t);
static void *(*next_realloc)(void *, size_t);
static void (*next_free)(void *);

static _Alignas(16) char boot[4096];
static size_t boot_used;

/*
 * Volatile: the compiler takes functions named malloc and free for the
 * standard ones, which touch no variable of the program, and would keep
 * these in registers across them (the build also says -fno-builtin).
 */
static volatile long allocs; /* allocations so far */
static volatile long live; /* allocated and not freed */
static volatile long fail_at; /* the allocation that fails; 0: none */
static volatile int fail_after; /* and every one after it */
static volatile long spared; /* the tokener's allocations to fail */
static int resolving, tracing;

void *malloc(size_t n);
void *calloc(size_t n, size_t size);
void *realloc(void *p, size_t n);
void free(void *p);

/* dlsym may allocate before the next allocator is known. */
static void *
boot_alloc(size_t n)
{
	void *p;

	n = (n + 15) & ~(size_t)15;
	if (n > sizeof(boot) - boot_used)
		return NULL;
	p = boot + boot_used;
	boot_used += n;
	return p;
}

static int
in_boot(const void *p)
{
	return (const char *)p >= boot && (const char *)p < boot + sizeof(boot);
}

static void
resolve(void)
{
	resolving = 1;
	next_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
	next_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
	next_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
	next_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
	resolving = 0;
	if (next_malloc == NULL || next_calloc == NULL ||
	    next_realloc == NULL || next_free == NULL)
		abort();
}

/* Whether json-c's tokener is among the callers of this allocation. */
static int
from_tokener(void)
{
	void *frames[16];
	Dl_info info;
	int n, i, found = 0;

	tracing = 1;
	n = backtrace(frames, (int)AGORA_NELEM(frames));
	for (i = 1; i < n && !found; i++)
		found = dladdr(frames[i], &info) != 0 &&
		    info.dli_sname != NULL &&
		    strcmp(info.dli_sname, "json_tokener_parse_ex") == 0;
	tracing = 0;
	return found;
}

/* Whether this allocation is the one to fail; counts it. */
static int
failing(void)
{
	if (tracing)
		return 0; /* backtrace's own, if any */
	allocs++;
	if (fail_at == 0 || allocs < fail_at ||
	    (allocs > fail_at && !fail_after))
		return 0;
	if (from_tokener()) {
		spared += allocs == fail_at;
		return 0;
	}
	return 1;
}

void *
malloc(size_t n)
{
	void *p;

	if (next_malloc == NULL) {
		if (resolving)
			return boot_alloc(n);
		resolve();
	}
	if (failing())
		return NULL;
	if ((p = next_malloc(n)) != NULL)
		live++;
	return p;
}

void *
calloc(size_t n, size_t size)
{
	void *p;

	if (next_calloc == NULL) {
		if (resolving)
			return n != 0 && size > SIZE_MAX / n
			    ? NULL
			    : boot_alloc(n * size); /* static: zeroed */
		resolve();
	}
	if (failing())
		return NULL;
	if ((p = next_calloc(n, size)) != NULL)
		live++;
	return p;
}

void *
realloc(void *p, size_t n)
{
	void *q;

	if (next_realloc == NULL)
		resolve();
	if (in_boot(p))
		abort(); /* dlsym's buffers are never grown */
	if (p != NULL && n == 0) {
		live--;
		return next_realloc(p, 0);
	}
	if (failing())
		return NULL;
	q = next_realloc(p, n);
	if (q != NULL && p == NULL)
		live++;
	return q;
}

void
free(void *p)
{
	if (p == NULL || in_boot(p))
		return;
	if (next_free == NULL)
		resolve();
	live--;
	next_free(p);
}

/* --- the program ---------------------------------------------------------- */

static const struct agora_field order_fields[] = {
	{ "sku", AGORA_F_STRING, AGORA_F_REQUIRED, 1, 32 },
	{ "quantity", AGORA_F_INT, AGORA_F_REQUIRED, 1, 100 },
	{ "gift", AGORA_F_BOOL, 0, 0, 0 },
	{ "tags", AGORA_F_ARRAY, 0, 0, 8 },
};

/* POST: validate the body, answer 201 with a document made of it. */
static enum agora_err
post_order(struct agora_req *r)
{
	struct agora_value v[AGORA_NELEM(order_fields)];
	struct json_object *o;
	enum agora_err rc;

	if ((rc = agora_valid_body(
	         r, order_fields, AGORA_NELEM(order_fields), v)) != AGORA_OK)
		return rc;
	o = json_object_new_object();
	if (o == NULL)
		return AGORA_E_INTERNAL;
	agora_json_set(o, "sku", json_object_new_string(v[0].s));
	agora_json_set(o, "quantity", json_object_new_int64(v[1].i));
	agora_json_set(o, "tags",
	    v[3].present ? json_object_get(v[3].o) : json_object_new_array());
	agora_resp_header(
	    r, "Location", agora_printf(r, "/api/v1/orders/%s", v[0].s));
	return agora_resp_json(r, 201, o);
}

/* GET: a path parameter, the query, a page, and a tagged document. */
static enum agora_err
get_order(struct agora_req *r)
{
	const char *q, *after, *body;
	long long limit;
	enum agora_err rc;

	if ((rc = agora_query_get(r, "q", &q)) != AGORA_OK ||
	    (rc = agora_page_params(r, &limit, &after)) != AGORA_OK)
		return rc;
	body = agora_printf(
	    r, "{\"id\":\"%s\",\"limit\":%lld}", r->params[0], limit);
	if (body == NULL)
		return AGORA_E_TOO_LARGE;
	return agora_resp_doc(r, body, strlen(body), NULL);
}

static const struct agora_route routes[] = {
	{ "POST", "/api/v1/orders", AGORA_BODY_JSON, post_order, AGORA_ANON },
	{ "GET", "/api/v1/orders/{order_id}", AGORA_BODY_NONE, get_order,
	    AGORA_ANON },
};

static const struct agora_program prog = { "alloc", routes, AGORA_NELEM(routes),
	NULL, 0, NULL };

struct sink {
	const char *in;
	size_t in_len, in_off;
	char out[65536];
	size_t out_len;
	int writes;
};

static long
sink_read(void *arg, char *buf, size_t n)
{
	struct sink *s = arg;

	if (n > s->in_len - s->in_off)
		n = s->in_len - s->in_off;
	memcpy(buf, s->in + s->in_off, n);
	s->in_off += n;
	return (long)n;
}

static int
sink_write(void *arg, const char *buf, size_t n)
{
	struct sink *s = arg;

	s->writes++;
	if (n >= sizeof(s->out) - s->out_len)
		return -1;
	memcpy(s->out + s->out_len, buf, n);
	s->out_len += n;
	s->out[s->out_len] = '\0';
	return 0;
}

struct req {
	const char *what;
	const char *method, *uri, *body;
	int status; /* the normal answer */
};

static const struct req reqs[] = {
	{ "POST, valid body", "POST", "/api/v1/orders",
	    "{\"sku\":\"ab-1\",\"quantity\":3,\"gift\":true,\"tags\":[\"x\","
	    "\"y\"]}",
	    201 },
	{ "POST, invalid body", "POST", "/api/v1/orders",
	    "{\"sku\":\"\",\"quantity\":300,\"colour\":\"red\"}", 422 },
	{ "POST, malformed JSON", "POST", "/api/v1/orders", "{\"sku\":", 400 },
	{ "GET with a query", "GET", "/api/v1/orders/%312?q=a+b&limit=5", NULL,
	    200 },
};

static struct agora_ctx ctx;
static struct sink sink;

/* Run one request; sink holds the answer. */
static void
run(const struct req *q, struct agora_arena *arena)
{
	static char m[64], u[256], cl[64],
	    ct[] = "CONTENT_TYPE=application/json";
	char *env[5] = { m, u, ct, cl, NULL };
	struct agora_io io = { sink_read, sink_write, &sink };

	memset(&sink, 0, sizeof(sink));
	sink.in = q->body != NULL ? q->body : "";
	sink.in_len = strlen(sink.in);
	snprintf(m, sizeof(m), "REQUEST_METHOD=%s", q->method);
	snprintf(u, sizeof(u), "REQUEST_URI=%s", q->uri);
	snprintf(cl, sizeof(cl), "CONTENT_LENGTH=%zu", sink.in_len);
	agora_handle(&ctx, &prog, arena, env, &io);
}

/*
 * The status of the answer when it is one well-formed response: the
 * normal status, or a problem+json 413, 500 or 503 whose body says the
 * same status; 0 when it is not.
 */
static int
answer_ok(int normal)
{
	const char *body = strstr(sink.out, "\r\n\r\n");
	struct json_object *o = NULL, *st;
	const char *why;
	int status, ok;

	if (sink.writes != 1 || strncmp(sink.out, "Status: ", 8) != 0 ||
	    body == NULL)
		return 0;
	status = (int)strtol(sink.out + 8, NULL, 10);
	if (status == normal)
		return status;
	if (status != 413 && status != 500 && status != 503)
		return 0;
	body += 4;
	if (strstr(sink.out, "Content-Type: application/problem+json\r\n") ==
	    NULL)
		return 0;
	/* Parsing may fail for want of memory too: not with none failing. */
	fail_at = 0;
	ok = agora_json_parse(body, strlen(body), &o, &why) == AGORA_OK &&
	    json_object_object_get_ex(o, "status", &st) &&
	    json_object_get_int(st) == status;
	json_object_put(o);
	return ok ? status : 0;
}

/* One failing run: the answer is right and nothing leaked. */
static int
failing_run(const struct req *q, struct agora_arena *arena, long n, int after,
    char *why, size_t whylen)
{
	long before = live;

	allocs = 0;
	fail_at = n;
	fail_after = after;
	run(q, arena);
	fail_at = 0;
	if (!answer_ok(q->status)) {
		snprintf(why, whylen, "allocation %ld%s: %.120s", n,
		    after ? " on" : "", sink.out);
		return 0;
	}
	if (LIVE_COUNTED && live != before) {
		snprintf(why, whylen,
		    "allocation %ld%s: %ld allocations leaked", n,
		    after ? " on" : "", live - before);
		return 0;
	}
	return 1;
}

static void
sweep_malloc(const struct req *q, struct agora_arena *arena)
{
	char why[256] = "";
	long total, n, bad = 0;
	int after;

	allocs = 0;
	spared = 0;
	run(q, arena);
	total = allocs;
	tap_ok(answer_ok(q->status) == q->status,
	    "%s: %d with nothing failing, %ld allocations", q->what, q->status,
	    total);
	for (after = 0; after <= 1; after++)
		for (n = 1; n <= total; n++)
			if (!failing_run(q, arena, n, after, why, sizeof(why)))
				bad++;
	tap_ok(bad == 0,
	    "%s: each of %ld allocations failing, alone and on (%ld of "
	    "json-c's tokener spared): %ld wrong (%s)",
	    q->what, total, spared, bad, why);
}

/*
 * The arena capped at every 16 bytes, up to the first cap that gives the
 * normal answer and 1 KiB past it.
 */
static void
sweep_arena(const struct req *q)
{
	struct agora_arena *a;
	char why[256] = "";
	size_t cap, normal = 0;
	long before, bad = 0;
	int st;

	for (cap = 0; cap <= (normal > 0 ? normal + 1024 : (size_t)1 << 20);
	     cap += 16) {
		if ((a = agora_arena_new(cap)) == NULL)
			abort();
		before = live;
		run(q, a);
		st = answer_ok(q->status);
		if (st == 0 || (LIVE_COUNTED && live != before)) {
			snprintf(why, sizeof(why),
			    "cap %zu, %ld leaked: %.100s", cap, live - before,
			    sink.out);
			bad++;
		} else if (normal == 0 && st == q->status) {
			normal = cap;
		}
		agora_arena_free(a);
	}
	tap_ok(bad == 0 && normal > 0,
	    "%s: the arena capped at every size up to %zu bytes, the "
	    "normal answer's: %ld wrong (%s)",
	    q->what, normal, bad, why);
}

int
main(void)
{
	struct agora_arena *arena;
	void *volatile probe;
	int null, saved;
	size_t i;

	if (sodium_init() < 0)
		return 1;
	/* Under valgrind the allocator is valgrind's, and this one unused. */
	allocs = 0;
	probe = malloc(1); /* volatile: not elided with the free */
	free(probe);
	if (allocs == 0) {
		puts("1..0 # SKIP malloc is not this test's (valgrind?)");
		return 0;
	}
	agora_config_defaults(&ctx.cfg);
	ctx.cfg.log_requests = 0;
	arena = agora_arena_new((size_t)ctx.cfg.request_memory_bytes);
	/* Once, for what libraries set up on first use, backtrace too (it
	 * loads libgcc_s, whose loader memory the leak checker cannot see
	 * the roots of). */
#if defined(__SANITIZE_ADDRESS__)
	__lsan_disable();
#endif
	(void)from_tokener();
#if defined(__SANITIZE_ADDRESS__)
	__lsan_enable();
#endif
	for (i = 0; i < AGORA_NELEM(reqs); i++)
		run(&reqs[i], arena);
	/* Every failed request logs a line: thousands of them. */
	saved = dup(STDERR_FILENO);
	null = open("/dev/null", O_WRONLY);
	dup2(null, STDERR_FILENO);
	/* The time zone libc loads once, for the first log line. */
	agora_log("info", "allocation failures start");
	for (i = 0; i < AGORA_NELEM(reqs); i++) {
		sweep_malloc(&reqs[i], arena);
		sweep_arena(&reqs[i]);
	}
	dup2(saved, STDERR_FILENO);
	close(null);
	close(saved);
	agora_arena_free(arena);
	agora_config_free(&ctx.cfg);
	return tap_done();
}
