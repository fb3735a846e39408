/*
 * ratelimit.c: fixed-window rate limits shared by every process and host
 * through memcached.
 *
 * A counter per (class, client, window) is bumped with
 * increment_with_initial, which needs the binary protocol,
 * and expires with its window.  When memcached cannot be reached the
 * limit fails open, except where the caller asks for closed (login, by
 * the rate_limit_login_closed setting).
 *
 * Routes whose handler reads the cache first (AGORA_RL_API_READ) defer the
 * count: the counter is read in the same round trip as the cached entry,
 * so that a cached read costs one round trip, and the decision is made
 * from that count plus the requests this process counted and has not sent
 * yet.  Those are sent without waiting for the answer, in batches: while a
 * client is far below a high limit, a process adds up to 1/1024 of the
 * room left (at most 32) before it sends them; what it has held for a
 * second goes with its next counted read.  Below 2,048 of room every read
 * is sent.  So a busy client costs memcached one write per batch instead
 * of one per read, and P processes together hold back at most P/1024 of
 * the room left, which a client may pass its limit by.  Concurrent
 * requests of one client may also pass together at the edge.  A process
 * sends what it holds when it ends after a request (and a CGI run after
 * its one request); one stopped while it waits for a request loses what it
 * held, less than one batch per client.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agora.h"
#include "internal.h"

#define PENDING_SLOTS 64
#define BATCH_DIVISOR 1024
#define BATCH_MAX 32
#define HOLD_MS 1000
#define KEY_BYTES 192
/* The window of rate_limit_api and rate_limit_auth (agora.conf(5)). */
#define PER_MINUTE 60

/*
 * The deferred count of one AGORA_RL_API_READ request, in its arena: a
 * pointer in struct agora_req that only this file can read.
 */
struct agora_rl_count {
	char key[KEY_BYTES]; /* the counter */
	long long limit, window, reset;
	int pending; /* not counted yet */
};

/* Requests counted by this process and not yet added to memcached. */
struct pending {
	char key[KEY_BYTES];
	long long count;
	long long since_ms; /* when the first of them was counted */
	long long batch; /* send when count reaches it */
	time_t ttl;
};

static struct pending pending[PENDING_SLOTS];

static void
set_headers(
    struct agora_req *r, long long limit, long long remaining, long long reset)
{
	agora_resp_header(r, "RateLimit-Limit", agora_printf(r, "%lld", limit));
	agora_resp_header(r, "RateLimit-Remaining",
	    agora_printf(r, "%lld", remaining < 0 ? 0 : remaining));
	agora_resp_header(r, "RateLimit-Reset", agora_printf(r, "%lld", reset));
}

static void
window_key(char *key, size_t len, const char *klass, const char *who,
    long long window, long long *reset)
{
	time_t now = time(NULL);
	long long slot = (long long)now / window;

	*reset = (slot + 1) * window - (long long)now;
	snprintf(key, len, "rl:%s:%s:%lld", klass, who, slot);
}

/* The answer to a request over its limit, with its headers set. */
static enum agora_err
refuse(struct agora_req *r, long long reset)
{
	agora_resp_header(r, "Retry-After", agora_printf(r, "%lld", reset));
	return agora_problem(r, AGORA_E_RATE_LIMITED, NULL,
	    agora_printf(
	        r, "Too many requests; retry in %lld seconds.", reset));
}

/*
 * Add this request to the counter key now, and answer 429 when over;
 * headers: tell the client the count (RateLimit-*).
 */
static enum agora_err
count_key(struct agora_req *r, const char *key, long long limit,
    long long window, long long reset, int headers)
{
	uint64_t n;

	if (agora_cache_incr(r->ctx, key, (time_t)window + 1, &n) != 0)
		return AGORA_OK;
	if (headers)
		set_headers(r, limit, limit - (long long)n, reset);
	if ((long long)n <= limit)
		return AGORA_OK;
	return refuse(r, reset);
}

static enum agora_err
count_now(struct agora_req *r, const char *key, long long limit,
    long long window, long long reset)
{
	return count_key(r, key, limit, window, reset, 1);
}

/*
 * Count one request of who in class against limit per window seconds.
 * Returns AGORA_E_RATE_LIMITED (answered, with Retry-After) when over.
 * When the cache cannot count, the request goes through: reads fail open.
 * A limit of 0 turns the check off.
 */
static enum agora_err
count_window(struct agora_req *r, const char *klass, const char *who,
    long long limit, long long window, int headers)
{
	char key[256];
	long long reset;

	if (limit <= 0)
		return AGORA_OK;
	window_key(key, sizeof(key), klass, who, window, &reset);
	return count_key(r, key, limit, window, reset, headers);
}

enum agora_err
agora_rate_limit(struct agora_req *r, const char *klass, const char *who,
    long long limit, long long window)
{
	return count_window(r, klass, who, limit, window, 1);
}

/*
 * The same for a second, tighter limit of a route (mails per address):
 * its count stays out of the RateLimit-* headers, which keep telling the
 * client its own limit, and which would tell anyone how often others
 * asked for that address.  Over it, 429 with Retry-After.
 */
enum agora_err
agora_rate_limit_quiet(struct agora_req *r, const char *klass, const char *who,
    long long limit, long long window)
{
	return count_window(r, klass, who, limit, window, 0);
}

/* Note the counter of an AGORA_RL_API_READ request; settle counts it. */
static enum agora_err
defer(struct agora_req *r, const char *klass, const char *who, long long limit,
    long long window)
{
	struct agora_rl_count *rl;

	if (limit <= 0 || r->ctx->cache == NULL)
		return agora_rate_limit(r, klass, who, limit, window);
	if ((rl = agora_alloc(r, sizeof(*rl))) == NULL)
		return AGORA_E_TOO_LARGE;
	window_key(rl->key, sizeof(rl->key), klass, who, window, &rl->reset);
	rl->limit = limit;
	rl->window = window;
	rl->pending = 1;
	r->rl = rl;
	return AGORA_OK;
}

static void
send_pending(struct agora_ctx *ctx, struct pending *p)
{
	if (p->count > 0)
		agora_cache_add_quiet(ctx, p->key, (uint64_t)p->count, p->ttl);
	p->count = 0;
}

/*
 * Send what was held longer than HOLD_MS, for every client.  The table is
 * looked over at most once in HOLD_MS, not on every read (count() looks at
 * its own client's slot every time).
 */
static void
send_old(struct agora_ctx *ctx, long long now)
{
	static long long last;
	size_t i;

	if (now - last < HOLD_MS)
		return;
	last = now;
	for (i = 0; i < PENDING_SLOTS; i++)
		if (pending[i].count > 0 &&
		    now - pending[i].since_ms >= HOLD_MS)
			send_pending(ctx, &pending[i]);
}

/* The slot of key; another client's counts in it are sent first. */
static struct pending *
slot_of(struct agora_ctx *ctx, const char *key, time_t ttl)
{
	struct pending *p;
	uint32_t h = 2166136261u;
	const char *c;

	for (c = key; *c != '\0'; c++)
		h = (h ^ (unsigned char)*c) * 16777619u;
	p = &pending[h % PENDING_SLOTS];
	if (strcmp(p->key, key) != 0) {
		send_pending(ctx, p);
		snprintf(p->key, sizeof(p->key), "%s", key);
		p->batch = 1;
	}
	p->ttl = ttl;
	return p;
}

/*
 * Count one request of r's client in its slot p; send when the batch is
 * full.  seen is the count memcached gave, or -1 when none was read.
 */
static void
count(struct agora_req *r, struct pending *p, long long seen)
{
	long long now = agora_clock_ms(CLOCK_MONOTONIC), room;

	if (p->count > 0 && now - p->since_ms >= HOLD_MS)
		send_pending(r->ctx, p);
	send_old(r->ctx, now);
	if (seen >= 0) {
		room = r->rl->limit - seen;
		p->batch = room / BATCH_DIVISOR;
		if (p->batch > BATCH_MAX)
			p->batch = BATCH_MAX;
		if (p->batch < 1)
			p->batch = 1;
	}
	if (p->count++ == 0)
		p->since_ms = now;
	if (p->count >= p->batch)
		send_pending(r->ctx, p);
}

/*
 * Count a deferred request with seen, the counter's value a cache read
 * brought back (NULL when absent).  Answers 429 when over.
 */
static enum agora_err
settle(struct agora_req *r, const char *seen)
{
	struct agora_rl_count *rl = r->rl;
	struct pending *p;
	long long n = 0;

	rl->pending = 0;
	if (seen == NULL || agora_parse_ll(seen, 0, 1LL << 62, &n) != 0)
		n = 0;
	p = slot_of(r->ctx, rl->key, (time_t)rl->window + 1);
	set_headers(r, rl->limit, rl->limit - (n + p->count + 1), rl->reset);
	if (n + p->count + 1 > rl->limit)
		return refuse(r, rl->reset);
	count(r, p, n);
	return AGORA_OK;
}

/*
 * A handler's versioned cached read (agora_cache_vget), which brings back
 * the request's deferred rate-limit counter in the same round trip and
 * counts the request with it.
 */
int
agora_cached_read(struct agora_req *r, const char *verkey, const char *key,
    struct agora_doc *doc, char *ver, size_t verlen)
{
	struct agora_cache_extra extra;
	int hit;

	if (r->rl == NULL || !r->rl->pending)
		return agora_cache_vget(r, verkey, key, doc, ver, verlen, NULL);
	extra.key = r->rl->key;
	hit = agora_cache_vget(r, verkey, key, doc, ver, verlen, &extra);
	if (extra.read && settle(r, extra.val) != AGORA_OK)
		return AGORA_CACHE_LIMITED;
	return hit;
}

/* Send every held count: before a process ends, and after a CGI run. */
void
agora_rate_limit_drain(struct agora_ctx *ctx)
{
	size_t i;

	for (i = 0; i < PENDING_SLOTS; i++)
		send_pending(ctx, &pending[i]);
}

/*
 * A deferred count that no cache read took (the handler answered before
 * it read, as for a malformed id) is counted at once, as on every other
 * route, and over the limit that answer gives way to the 429.
 */
enum agora_err
agora_rate_limit_flush(struct agora_req *r)
{
	struct agora_rl_count *rl = r->rl;

	if (rl == NULL || !rl->pending)
		return AGORA_OK;
	rl->pending = 0;
	return count_now(r, rl->key, rl->limit, rl->window, rl->reset);
}

/*
 * Count the request against its route's limit: auth routes per IP, the
 * others per user, or per IP when anonymous.
 */
enum agora_err
agora_rate_limit_route(struct agora_req *r, const struct agora_route *route)
{
	const struct agora_config *cfg = &r->ctx->cfg;
	const char *ip, *who;

	ip = agora_client_addr(r);
	if (route->rl == AGORA_RL_NONE)
		return AGORA_OK;
	if (route->rl == AGORA_RL_AUTH)
		return agora_rate_limit(
		    r, "auth", ip, cfg->rate_limit_auth, PER_MINUTE);
	who = r->user != NULL ? agora_printf(r, "u%s", r->user)
	                      : agora_printf(r, "ip%s", ip);
	if (route->rl == AGORA_RL_API_READ)
		return defer(r, "api", who, cfg->rate_limit_api, PER_MINUTE);
	return agora_rate_limit(r, "api", who, cfg->rate_limit_api, PER_MINUTE);
}

/*
 * Guard an attempt that may fail (a password check): count it before it
 * is made, so that concurrent attempts cannot all slip under the limit,
 * and answer 429 once more than max were made in the window.  A
 * successful attempt is taken back with agora_guard_pass(), so that only
 * failures add up.  When the cache is down the guard lets the attempt
 * through, or answers 503 when fail_closed is set.
 */
enum agora_err
agora_guard_enter(struct agora_req *r, const char *klass, const char *who,
    long long max, long long window, int fail_closed)
{
	char key[256];
	long long reset;
	uint64_t n;

	window_key(key, sizeof(key), klass, who, window, &reset);
	if (agora_cache_incr(r->ctx, key, (time_t)window + 1, &n) != 0) {
		if (fail_closed && r->ctx->cache != NULL)
			return agora_problem(r, AGORA_E_UNAVAILABLE, NULL,
			    "Attempts cannot be counted now; try again soon.");
		return AGORA_OK;
	}
	if ((long long)n <= max)
		return AGORA_OK;
	agora_resp_header(r, "Retry-After", agora_printf(r, "%lld", reset));
	return agora_problem(r, AGORA_E_RATE_LIMITED, "too_many_failures",
	    "Too many failed attempts for this account; try again later.");
}

void
agora_guard_pass(
    struct agora_req *r, const char *klass, const char *who, long long window)
{
	char key[256];
	long long reset;

	window_key(key, sizeof(key), klass, who, window, &reset);
	agora_cache_decr(r->ctx, key);
}

/*
 * Forget the failures counted in the current window: the owner proved
 * who they are another way (a password reset through their mail).
 */
void
agora_guard_clear(
    struct agora_req *r, const char *klass, const char *who, long long window)
{
	char key[256];
	long long reset;

	window_key(key, sizeof(key), klass, who, window, &reset);
	agora_cache_delete(r->ctx, key);
}
