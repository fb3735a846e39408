/*
 * ratelimit.c: fixed-window rate limits shared by every process and host
 * through memcached.
 *
 * A counter per (class, client, window) is bumped with
 * increment_with_initial, which needs the binary protocol (libfacts §6),
 * and expires with its window.  When memcached cannot be reached the
 * limit fails open, except where the caller asks for closed (login, by
 * the rate_limit_login_closed setting).
 *
 * Routes whose handler reads the cache first (AGORA_RL_API_READ) defer the
 * count: the counter is read in the same round trip as the cached entry
 * and bumped without waiting for the answer, so that a cached read costs
 * one round trip; the decision is made from the count before this request,
 * so concurrent requests of one client may pass together at the edge.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agora.h"

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
 * Count one request of who in class against limit per window seconds.
 * Returns AGORA_E_RATE_LIMITED (answered, with Retry-After) when over.
 * When the cache cannot count, the request goes through: reads fail open.
 * A limit of 0 turns the check off.
 */
enum agora_err
agora_rate_limit(struct agora_req *r, const char *klass, const char *who,
    long long limit, long long window)
{
	char key[256];
	long long reset;
	uint64_t n;

	if (limit <= 0)
		return AGORA_OK;
	window_key(key, sizeof(key), klass, who, window, &reset);
	if (agora_cache_incr(r->ctx, key, (time_t)window + 1, &n) != 0)
		return AGORA_OK;
	set_headers(r, limit, limit - (long long)n, reset);
	if ((long long)n <= limit)
		return AGORA_OK;
	return refuse(r, reset);
}

enum agora_err
agora_rate_limit_defer(struct agora_req *r, const char *klass, const char *who,
    long long limit, long long window)
{
	if (limit <= 0 || r->ctx->cache == NULL)
		return agora_rate_limit(r, klass, who, limit, window);
	window_key(
	    r->rl.key, sizeof(r->rl.key), klass, who, window, &r->rl.reset);
	r->rl.limit = limit;
	r->rl.window = window;
	r->rl.pending = 1;
	return AGORA_OK;
}

enum agora_err
agora_rate_limit_settle(struct agora_req *r, const char *seen)
{
	long long n = 0;

	if (!r->rl.pending)
		return AGORA_OK;
	r->rl.pending = 0;
	if (seen == NULL || agora_parse_ll(seen, 0, 1LL << 62, &n) != 0)
		n = 0;
	n++;
	set_headers(r, r->rl.limit, r->rl.limit - n, r->rl.reset);
	if (n > r->rl.limit)
		return refuse(r, r->rl.reset);
	agora_cache_incr_quiet(r->ctx, r->rl.key, (time_t)r->rl.window + 1);
	return AGORA_OK;
}

void
agora_rate_limit_flush(struct agora_req *r)
{
	if (!r->rl.pending)
		return;
	r->rl.pending = 0;
	agora_cache_incr_quiet(r->ctx, r->rl.key, (time_t)r->rl.window + 1);
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
