/*
 * ratelimit.c: fixed-window rate limits shared by every process and host
 * through memcached.
 *
 * A counter per (class, client, window) is bumped with
 * increment_with_initial, which needs the binary protocol (libfacts §6),
 * and expires with its window.  When memcached cannot be reached the
 * limit fails open, except where the caller asks for closed (login, by
 * the rate_limit_login_closed setting).
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

/*
 * Count one request of who in class against limit per window seconds.
 * Returns AGORA_E_RATE_LIMITED (answered, with Retry-After) when over;
 * AGORA_E_UNAVAILABLE when the cache is down and fail_closed is set.
 * A limit of 0 turns the check off.
 */
enum agora_err
agora_rate_limit(struct agora_req *r, const char *klass, const char *who,
    long long limit, long long window, int fail_closed)
{
	char key[256];
	long long reset;
	uint64_t n;

	if (limit <= 0)
		return AGORA_OK;
	window_key(key, sizeof(key), klass, who, window, &reset);
	if (agora_cache_incr(r->ctx, key, (time_t)window + 1, &n) != 0)
		return fail_closed ? agora_problem(r, AGORA_E_UNAVAILABLE, NULL,
		                         "Rate limits cannot be checked now.")
		                   : AGORA_OK;
	set_headers(r, limit, limit - (long long)n, reset);
	if ((long long)n <= limit)
		return AGORA_OK;
	agora_resp_header(r, "Retry-After", agora_printf(r, "%lld", reset));
	return agora_problem(r, AGORA_E_RATE_LIMITED, NULL,
	    agora_printf(
	        r, "Too many requests; retry in %lld seconds.", reset));
}

/*
 * How many events of who in class this window has seen, without counting
 * one; 0 when unknown.  *down is set when the cache cannot be reached.
 */
long long
agora_rate_count(struct agora_req *r, const char *klass, const char *who,
    long long window, int *down)
{
	char key[256], *val;
	long long reset, n = 0;
	size_t len;

	window_key(key, sizeof(key), klass, who, window, &reset);
	*down = 0;
	if (agora_cache_get(r, key, &val, &len) != 0) {
		*down = strcmp(agora_cache_ping(r->ctx), "unavailable") == 0;
		return 0;
	}
	if (agora_parse_ll(val, 0, INT64_MAX, &n) != 0)
		n = 0;
	return n;
}

/* Count one event of who in class, with no limit and no headers. */
void
agora_rate_hit(
    struct agora_req *r, const char *klass, const char *who, long long window)
{
	char key[256];
	long long reset;
	uint64_t n;

	window_key(key, sizeof(key), klass, who, window, &reset);
	(void)agora_cache_incr(r->ctx, key, (time_t)window + 1, &n);
}

/* Seconds until the current window of length window ends. */
long long
agora_rate_reset(long long window)
{
	return window - (long long)time(NULL) % window;
}
