/*
 * cache.c: memcached through libmemcached, as a cache that can only miss.
 *
 * The servers ("host:port", or the path of a unix socket, comma-separated)
 * are hashed consistently, with short timeouts, and a failed server is
 * ejected so that its keys move to the others (that takes
 * REMOVE_FAILED_SERVERS and a DEAD_TIMEOUT).  Reads and plain writes use
 * the text protocol: libmemcached sends a multi-key get over it as one
 * packet, where over the binary protocol it sends the keys and then a
 * separate NOOP, which costs the cached read a second packet each way.
 * Counters that must be created when missing (increment_with_initial)
 * need the binary protocol, so those go over a second connection.  Nagle
 * is off: the requests are small and each waits for its answer.
 * Every error is logged at most once a minute and reported as a miss: a
 * request never fails because the cache is down.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libmemcached/memcached.h>
#include <sodium.h>

#include "agora.h"

#define CFG_MAX 4096
#define KEY_MAX 250

struct agora_cache {
	memcached_st *mc; /* text protocol: gets, sets, deletes */
	memcached_st *bin; /* binary protocol: counters made when missing */
	/* bin with NOREPLY, for writes no one waits for: a cache fill, a
	 * rate-limit count (ratelimit.c). */
	memcached_st *quiet;
	/* Reused by every multi-key read, so that a read allocates nothing
	 * in libmemcached once its buffers have grown. */
	memcached_result_st res;
	time_t last_log;
};

static int
build_config(const char *servers, int binary, char *cfg, size_t len)
{
	const char *p, *end, *last;
	size_t used;
	int n;

	n = snprintf(cfg, len,
	    "%s--DISTRIBUTION=consistent --CONNECT-TIMEOUT=100 "
	    "--POLL-TIMEOUT=100 --RETRY-TIMEOUT=2 --REMOVE-FAILED-SERVERS=1 "
	    "--TCP-NODELAY",
	    binary ? "--BINARY-PROTOCOL " : "");
	used = (size_t)n;
	for (p = servers; *p != '\0'; p = *end ? end + 1 : end) {
		end = strchr(p, ',');
		if (end == NULL)
			end = p + strlen(p);
		/* The entry without the spaces around it. */
		for (last = end; last > p && last[-1] == ' '; last--)
			continue;
		while (p < last && *p == ' ')
			p++;
		if (p == last)
			continue;
		/* A path is a unix socket (a single-host install). */
		if (*p == '/' && memchr(p, '"', (size_t)(last - p)) != NULL)
			return -1;
		n = snprintf(cfg + used, len - used,
		    *p == '/' ? " --SOCKET=\"%.*s\"" : " --SERVER=%.*s",
		    (int)(last - p), p);
		if (n < 0 || (size_t)n >= len - used)
			return -1;
		used += (size_t)n;
	}
	return 0;
}

/* A handle over the servers, with the failover settings above. */
static memcached_st *
handle_new(const char *servers, int binary)
{
	memcached_st *m;
	char cfg[CFG_MAX];

	if (build_config(servers, binary, cfg, sizeof(cfg)) != 0) {
		agora_log("error",
		    "memcached_servers is too long, or a socket path in it "
		    "has a quote");
		return NULL;
	}
	m = memcached(cfg, strlen(cfg));
	if (m == NULL) {
		agora_log(
		    "error", "memcached_servers: cannot parse \"%s\"", servers);
		return NULL;
	}
	memcached_behavior_set(m, MEMCACHED_BEHAVIOR_SERVER_FAILURE_LIMIT, 2);
	memcached_behavior_set(m, MEMCACHED_BEHAVIOR_DEAD_TIMEOUT, 10);
	return m;
}

/*
 * A handle for servers, or NULL when the list is empty (caching off) or
 * cannot be parsed (logged).
 */
struct agora_cache *
agora_cache_new(const char *servers)
{
	struct agora_cache *c;

	if (servers == NULL || strspn(servers, " ,") == strlen(servers))
		return NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	if ((c->mc = handle_new(servers, 0)) == NULL) {
		free(c);
		return NULL;
	}
	/* Given the struct, this only sets it up: it cannot fail.  It is
	 * freed with mc (agora_cache_free). */
	(void)memcached_result_create(c->mc, &c->res);
	if ((c->bin = handle_new(servers, 1)) == NULL) {
		agora_cache_free(c);
		return NULL;
	}
	c->quiet = memcached_clone(NULL, c->bin);
	if (c->quiet != NULL)
		memcached_behavior_set(c->quiet, MEMCACHED_BEHAVIOR_NOREPLY, 1);
	/* agora_cache_raise reads and writes with compare-and-swap. */
	memcached_behavior_set(c->bin, MEMCACHED_BEHAVIOR_SUPPORT_CAS, 1);
	return c;
}

void
agora_cache_free(struct agora_cache *c)
{
	if (c == NULL)
		return;
	if (c->mc != NULL)
		memcached_result_free(&c->res);
	memcached_free(c->quiet);
	memcached_free(c->bin);
	memcached_free(c->mc);
	free(c);
}

static void
cache_error(struct agora_cache *c, const char *op, memcached_return_t rc)
{
	time_t now = time(NULL);

	if (now - c->last_log < 60)
		return;
	c->last_log = now;
	agora_log("warning", "memcached %s: %s (treated as a miss)", op,
	    memcached_strerror(c->mc, rc));
}

/*
 * Look key up.  On a hit returns 0 with *val an arena copy (NUL-terminated)
 * and *len its length; -1 when memcached does not have it; -2 when
 * memcached cannot be asked (none configured, down, or an error).
 */
int
agora_cache_get(struct agora_req *r, const char *key, char **val, size_t *len)
{
	struct agora_cache *c = r->ctx->cache;
	memcached_return_t rc;
	struct timespec t0;
	uint32_t flags;
	size_t n;
	char *v;

	if (c == NULL || strlen(key) > KEY_MAX)
		return -2;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	v = memcached_get(c->mc, key, strlen(key), &n, &flags, &rc);
	r->cache_us += agora_us_since(&t0);
	if (v == NULL && rc == MEMCACHED_NOTFOUND) {
		agora_observe_cache(AGORA_CACHE_MISS);
		return -1;
	}
	if (v == NULL) {
		agora_observe_cache(AGORA_CACHE_ERROR);
		cache_error(c, "get", rc);
		return -2;
	}
	agora_observe_cache(AGORA_CACHE_HIT);
	*val = agora_alloc(r, n + 1);
	if (*val != NULL) {
		memcpy(*val, v, n);
		(*val)[n] = '\0';
		*len = n;
	}
	free(v);
	return *val != NULL ? 0 : -2;
}

void
agora_cache_set(struct agora_ctx *ctx, const char *key, const char *val,
    size_t len, time_t ttl)
{
	struct agora_cache *c = ctx->cache;
	memcached_return_t rc;

	if (c == NULL || strlen(key) > KEY_MAX)
		return;
	rc = memcached_set(c->mc, key, strlen(key), val, len, ttl, 0);
	if (rc != MEMCACHED_SUCCESS)
		cache_error(c, "set", rc);
}

#define RAISE_TRIES 4

/*
 * key's number and CAS token, read through the binary handle: 0, or 1
 * when the key is missing, or -1 when memcached cannot say.
 */
static int
cas_get(struct agora_cache *c, const char *key, long long *val, uint64_t *cas)
{
	const char *keys[1] = { key };
	size_t lens[1] = { strlen(key) };
	memcached_result_st res, *got;
	memcached_return_t rc;
	char num[24];
	size_t n;
	int out = 1;

	if (memcached_mget(c->bin, keys, lens, 1) != MEMCACHED_SUCCESS ||
	    memcached_result_create(c->bin, &res) == NULL)
		return -1;
	while ((got = memcached_fetch_result(c->bin, &res, &rc)) != NULL) {
		n = memcached_result_length(got);
		snprintf(num, sizeof(num), "%.*s", (int)(n < 23 ? n : 23),
		    memcached_result_value(got));
		*cas = memcached_result_cas(got);
		out = agora_parse_ll(num, 0, INT64_MAX, val) == 0 ? 0 : -1;
	}
	if (rc != MEMCACHED_END && rc != MEMCACHED_NOTFOUND &&
	    rc != MEMCACHED_SUCCESS)
		out = -1;
	memcached_result_free(&res);
	return out;
}

/*
 * Raise the number under key to value, never lowering it: a value that
 * only goes up (a user's token generation) stays right whatever order
 * concurrent writers come in.  Compare-and-swap, a few times at most.
 */
void
agora_cache_raise(
    struct agora_ctx *ctx, const char *key, long long value, time_t ttl)
{
	struct agora_cache *c = ctx->cache;
	memcached_return_t rc = MEMCACHED_SUCCESS;
	long long cur = 0;
	uint64_t cas = 0;
	char buf[24];
	int i, n, got;

	if (c == NULL || strlen(key) > KEY_MAX)
		return;
	n = snprintf(buf, sizeof(buf), "%lld", value);
	for (i = 0; i < RAISE_TRIES; i++) {
		if ((got = cas_get(c, key, &cur, &cas)) < 0 ||
		    (got == 0 && cur >= value))
			return;
		rc = got == 1 ? memcached_add(c->bin, key, strlen(key), buf,
		                    (size_t)n, ttl, 0)
		              : memcached_cas(c->bin, key, strlen(key), buf,
		                    (size_t)n, ttl, 0, cas);
		if (rc != MEMCACHED_DATA_EXISTS && rc != MEMCACHED_NOTSTORED)
			break;
	}
	if (rc != MEMCACHED_SUCCESS)
		cache_error(c, "raise", rc);
}

/*
 * Add one to the counter key, creating it at 1 with expiry ttl.  Returns
 * 0 with *value the new count, or -1 when the cache cannot say.
 */
int
agora_cache_incr(
    struct agora_ctx *ctx, const char *key, time_t ttl, uint64_t *value)
{
	struct agora_cache *c = ctx->cache;
	memcached_return_t rc;

	if (c == NULL || strlen(key) > KEY_MAX)
		return -1;
	rc = memcached_increment_with_initial(
	    c->bin, key, strlen(key), 1, 1, ttl, value);
	if (rc != MEMCACHED_SUCCESS) {
		cache_error(c, "increment", rc);
		return -1;
	}
	return 0;
}

/*
 * Add n to the counter key (made with n and ttl when missing) without
 * waiting for the answer: the request that counts goes on at once.  The
 * count may land a little after a read on another connection sees it.
 */
void
agora_cache_add_quiet(
    struct agora_ctx *ctx, const char *key, uint64_t n, time_t ttl)
{
	struct agora_cache *c = ctx->cache;
	uint64_t v;

	if (c == NULL || c->quiet == NULL || strlen(key) > KEY_MAX)
		return;
	(void)memcached_increment_with_initial(
	    c->quiet, key, strlen(key), n, n, ttl, &v);
}

/* Take one from the counter key, if it is there. */
void
agora_cache_decr(struct agora_ctx *ctx, const char *key)
{
	uint64_t n;

	if (ctx->cache != NULL)
		(void)memcached_decrement(
		    ctx->cache->mc, key, strlen(key), 1, &n);
}

/* Drop key, if it is there. */
void
agora_cache_delete(struct agora_ctx *ctx, const char *key)
{
	struct agora_cache *c = ctx->cache;
	memcached_return_t rc;

	if (c == NULL || strlen(key) > KEY_MAX)
		return;
	rc = memcached_delete(c->mc, key, strlen(key), 0);
	if (rc != MEMCACHED_SUCCESS && rc != MEMCACHED_NOTFOUND)
		cache_error(c, "delete", rc);
}

/* For health: "ok", "unavailable" or "disabled". */
const char *
agora_cache_ping(struct agora_ctx *ctx)
{
	struct agora_cache *c = ctx->cache;
	memcached_return_t rc;
	char key[64];

	if (c == NULL)
		return "disabled";
	snprintf(key, sizeof(key), "agora:health:%ld", (long)getpid());
	rc = memcached_set(c->mc, key, strlen(key), "1", 1, 10, 0);
	if (rc != MEMCACHED_SUCCESS) {
		cache_error(c, "set", rc);
		return "unavailable";
	}
	return "ok";
}

/* One server of agora_cache_check: 0 when it stored a key, else 1. */
static int
server_check(const char *server, void (*fn)(void *, const char *, const char *),
    void *arg)
{
	memcached_st *m = handle_new(server, 0);
	memcached_return_t rc;
	const char *why;
	char key[64];

	if (m == NULL) {
		fn(arg, server, "cannot parse it");
		return 1;
	}
	snprintf(key, sizeof(key), "agora:check:%ld", (long)getpid());
	rc = memcached_set(m, key, strlen(key), "1", 1, 10, 0);
	why = memcached_last_error_message(m);
	fn(arg, server,
	    rc == MEMCACHED_SUCCESS
	        ? NULL
	        : (why != NULL ? why : memcached_strerror(m, rc)));
	memcached_free(m);
	return rc != MEMCACHED_SUCCESS;
}

/*
 * Ask each server of servers on its own to store a short-lived key, and
 * call fn(arg, server, NULL) when it did, fn(arg, server, why) when not.
 * One handle per server: over the whole list, failover would hide a dead
 * server behind the others.  For agoractl check.  Returns how many did
 * not answer, or -1 when an entry is too long.
 */
int
agora_cache_check(const char *servers,
    void (*fn)(void *, const char *, const char *), void *arg)
{
	char one[CFG_MAX];
	const char *p, *end;
	size_t n;
	int bad = 0;

	for (p = servers; *p != '\0'; p = *end != '\0' ? end + 1 : end) {
		end = p + strcspn(p, ",");
		p += strspn(p, " ");
		n = p < end ? (size_t)(end - p) : 0;
		while (n > 0 && p[n - 1] == ' ')
			n--;
		if (n == 0)
			continue;
		if (n >= sizeof(one))
			return -1;
		memcpy(one, p, n);
		one[n] = '\0';
		bad += server_check(one, fn, arg);
	}
	return bad;
}

/* get_keys' round trip: the answers into vals and lens. */
static void
get_results(struct agora_req *r, size_t n, const char *const *keys,
    const size_t *klens, char **vals, size_t *lens)
{
	struct agora_cache *c = r->ctx->cache;
	memcached_result_st *res;
	memcached_return_t rc;
	const char *key;
	size_t i, kl;

	rc = memcached_mget(c->mc, keys, klens, n);
	if (rc != MEMCACHED_SUCCESS) {
		agora_observe_cache(AGORA_CACHE_ERROR);
		cache_error(c, "mget", rc);
		return;
	}
	while ((res = memcached_fetch_result(c->mc, &c->res, &rc)) != NULL) {
		key = memcached_result_key_value(res);
		kl = memcached_result_key_length(res);
		for (i = 0; i < n; i++)
			if (kl == klens[i] && memcmp(key, keys[i], kl) == 0)
				break;
		if (i < n &&
		    (vals[i] = agora_alloc(
		         r, memcached_result_length(res) + 1)) != NULL) {
			memcpy(vals[i], memcached_result_value(res),
			    memcached_result_length(res));
			vals[i][memcached_result_length(res)] = '\0';
			lens[i] = memcached_result_length(res);
		}
	}
}

/* Look the n keys up in one round trip; vals[i] NULL when missing. */
static void
get_keys(struct agora_req *r, size_t n, const char *const *keys, char **vals,
    size_t *lens)
{
	size_t klens[3], i;
	struct timespec t0;

	for (i = 0; i < n; i++) {
		vals[i] = NULL;
		lens[i] = 0;
		klens[i] = strlen(keys[i]);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	get_results(r, n, keys, klens, vals, lens);
	r->cache_us += agora_us_since(&t0);
}

static uint64_t
random_u64(void)
{
	uint64_t v;

	randombytes_buf(&v, sizeof(v));
	return v;
}

/*
 * A uniform draw in (0, 1] for the decisions below, which need no secrecy:
 * splitmix64 seeded once from libsodium, because libsodium asks the
 * kernel (getrandom) on every call, a system call on every cached read.
 */
static double
draw(void)
{
	static uint64_t state;
	uint64_t z;

	if (state == 0)
		state = random_u64() | 1;
	z = (state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	z ^= z >> 31;
	return ((double)(z >> 11) + 1.0) / 9007199254740992.0;
}

/* Far above any clock in milliseconds or any cost of making an entry. */
#define STAMP_MAX (1LL << 50)

/*
 * Whether a reader should make an entry again before it expires: with a
 * probability that grows as the expiry nears, in proportion to what the
 * entry cost to make (XFetch: Vattani, Chierichetti and Lowenstein,
 * "Optimal probabilistic cache stampede prevention", 2015).  So one reader
 * makes a busy entry again while the others still read the old one, where
 * at expiry every reader would miss at once.
 */
static int
refresh_early(long long now, long long expires, long long cost)
{
	if (cost < 1)
		cost = 1;
	/* Every read draws: skipping the draw far from expiry saved 6 ns
	 * of a 33 us read, which no benchmark could tell (bench/HISTORY.md). */
	return (double)now - (double)cost * log(draw()) >= (double)expires;
}

/*
 * Split an entry "<version>\n<etag>\n<expires_ms> <cost_ms>[ r]\n<body>"
 * of len bytes (a NUL-terminated copy of this request's) into doc; returns
 * 0 when it has that form and version ver.  " r" marks an entry the
 * replica answered (*replica): a program without the mark fails to parse
 * it, a miss.  Entries of this form live under
 * keys of their own (agora:p2: and the like): a program of the earlier
 * "<version>\n<body>" form would serve one's head as its body, and both
 * may run while an upgrade is rolled out.
 */
static int
entry_parse(char *e, size_t len, const char *ver, size_t vl,
    struct agora_doc *doc, long long *expires, long long *cost, int *replica)
{
	char *tag, *nums, *end;

	if (len < vl + 1 + AGORA_ETAG_LEN + 1 || memcmp(e, ver, vl) != 0 ||
	    e[vl] != '\n' || e[vl + 1 + AGORA_ETAG_LEN] != '\n')
		return -1;
	tag = e + vl + 1;
	nums = tag + AGORA_ETAG_LEN + 1;
	*expires = strtoll(nums, &end, 10);
	if (end == nums || *end != ' ')
		return -1;
	*cost = strtoll(end + 1, &end, 10);
	*replica = end[0] == ' ' && end[1] == 'r';
	if (*replica)
		end += 2;
	/* Bounded, so that refresh_early's arithmetic cannot overflow. */
	if (*end != '\n' || *expires < 0 || *expires > STAMP_MAX || *cost < 0 ||
	    *cost > STAMP_MAX)
		return -1;
	tag[AGORA_ETAG_LEN] = '\0';
	memcpy(doc->etag, tag, AGORA_ETAG_LEN + 1);
	doc->body = end + 1;
	doc->len = len - (size_t)(doc->body - e);
	return 0;
}

/* On a missing version key, make one no old entry can carry. */
static void
version_new(struct agora_req *r, const char *verkey, char *ver, size_t verlen)
{
	char fresh[32];

	/* 63 random bits. */
	snprintf(fresh, sizeof(fresh), "%llu",
	    (unsigned long long)(random_u64() >> 1));
	if (memcached_add(r->ctx->cache->mc, verkey, strlen(verkey), fresh,
	        strlen(fresh), 0, 0) == MEMCACHED_SUCCESS)
		snprintf(ver, verlen, "%s", fresh);
}

/*
 * Versioned read-through.  An entry is stored with its version, its ETag,
 * when it expires and what it cost to make; it is a hit only while verkey
 * still holds that version, so a writer that bumps verkey after its commit
 * makes every older entry a miss on every host.  The ETag is computed once,
 * when the entry is stored, rather than on every hit (a page of search
 * results is tens of kilobytes to hash).  Near its expiry an entry may be
 * a miss for one reader (refresh_early).  On a hit doc holds the body and
 * its ETag.  On a miss *ver is the version to store the fresh entry under
 * ("" when none could be had: then do not store).  Returns 0 on a hit.
 * extra, when not NULL, names one more key read in the same round trip
 * (a rate-limit counter: ratelimit.c); its value is handed back.
 */
static int
vget(struct agora_req *r, const char *verkey, const char *key,
    struct agora_doc *doc, char *ver, size_t verlen,
    struct agora_cache_extra *extra)
{
	const char *keys[3] = { verkey, key, extra ? extra->key : NULL };
	char *vals[3];
	size_t lens[3];
	long long expires, cost, now;
	int replica;

	*ver = '\0';
	if (extra != NULL) {
		extra->val = NULL;
		extra->read = 0;
	}
	if (r->ctx->cache == NULL || strlen(key) > KEY_MAX)
		return -1;
	get_keys(r, extra != NULL ? 3 : 2, keys, vals, lens);
	if (extra != NULL) {
		extra->val = vals[2];
		extra->read = 1;
	}
	if (vals[0] == NULL) {
		version_new(r, verkey, ver, verlen);
		return -1;
	}
	snprintf(ver, verlen, "%s", vals[0]);
	if (vals[1] == NULL ||
	    entry_parse(vals[1], lens[1], vals[0], lens[0], doc, &expires,
	        &cost, &replica) != 0)
		return -1;
	/* A signed-in reader may have written what the replica had not yet
	 * replayed: for them it is a miss, and the primary's answer will
	 * take its place (doc/scale-out.md, "Caching"). */
	if (replica && r->user != NULL)
		return -1;
	now = agora_clock_ms(CLOCK_REALTIME);
	if (now >= expires || refresh_early(now, expires, cost))
		return -1;
	return 0;
}

/* Counted as a hit or a miss (a read that failed is a miss too). */
int
agora_cache_vget(struct agora_req *r, const char *verkey, const char *key,
    struct agora_doc *doc, char *ver, size_t verlen,
    struct agora_cache_extra *extra)
{
	int rc = vget(r, verkey, key, doc, ver, verlen, extra);

	if (r->ctx->cache != NULL)
		agora_observe_cache(
		    rc == 0 ? AGORA_CACHE_HIT : AGORA_CACHE_MISS);
	return rc;
}

/*
 * Store doc under key for version ver (from agora_cache_vget), to expire
 * after ttl seconds and up to half as much again, at random, so that
 * entries filled together do not all expire together.  memcached drops it
 * a second after that: no reader takes it then.
 */
static time_t
replica_ttl(const struct agora_req *r, time_t ttl)
{
	time_t bound = (time_t)(r->ctx->cfg.database_read_max_lag_ms / 1000);

	if (bound < 1)
		bound = 1;
	return bound < ttl ? bound : ttl;
}

void
agora_cache_vset(struct agora_req *r, const char *key, const char *ver,
    const struct agora_doc *doc, time_t ttl)
{
	long long cost, life;
	char head[160];
	size_t hl, n;
	char *buf;
	int k;

	if (r->ctx->cache == NULL || *ver == '\0')
		return;
	/* A replica's answer may be older than ver, the version a writer
	 * set after its commit: stored under it for long, it would outlive
	 * the replica's staleness bound.  It is kept for the bound itself
	 * (at least a second) instead, and marked, so that signed-in readers
	 * pass it by (doc/scale-out.md, "Caching"). */
	if (r->from_replica)
		ttl = replica_ttl(r, ttl);
	cost = agora_ms_since(&r->start);
	life = (long long)ttl * 1000;
	life += (long long)(draw() * (double)(life / 2));
	k = snprintf(head, sizeof(head), "%s\n%s\n%lld %lld%s\n", ver,
	    doc->etag, agora_clock_ms(CLOCK_REALTIME) + life, cost,
	    r->from_replica ? " r" : "");
	if (k < 0 || (size_t)k >= sizeof(head))
		return;
	hl = (size_t)k;
	n = hl + doc->len;
	if ((buf = agora_alloc(r, n)) == NULL)
		return;
	memcpy(buf, head, hl);
	memcpy(buf + hl, doc->body, doc->len);
	ttl = (time_t)(life / 1000) + 1;
	/* A fill no reader waits for: sent without waiting for the answer. */
	if (r->ctx->cache->quiet != NULL)
		(void)memcached_set(
		    r->ctx->cache->quiet, key, strlen(key), buf, n, ttl, 0);
	else
		agora_cache_set(r->ctx, key, buf, n, ttl);
}

/*
 * Make every entry stored under verkey stale, and delete key (the entry
 * of the one thing written, may be NULL).  A missing version key is
 * already a new version for readers.  If the server cannot be told, it is
 * tried again and the failure logged as an error: until the entries
 * expire, readers may see the old data.
 */
void
agora_cache_bump(struct agora_ctx *ctx, const char *verkey, const char *key)
{
	memcached_return_t rc = MEMCACHED_FAILURE;
	uint64_t n;
	int i;

	if (ctx->cache == NULL)
		return;
	for (i = 0; i < 2; i++) {
		if (key != NULL)
			(void)memcached_delete(
			    ctx->cache->mc, key, strlen(key), 0);
		rc = memcached_increment(
		    ctx->cache->mc, verkey, strlen(verkey), 1, &n);
		if (rc == MEMCACHED_SUCCESS || rc == MEMCACHED_NOTFOUND)
			return;
		rc =
		    memcached_delete(ctx->cache->mc, verkey, strlen(verkey), 0);
		if (rc == MEMCACHED_SUCCESS || rc == MEMCACHED_NOTFOUND)
			return;
	}
	agora_log("error",
	    "memcached: cannot invalidate %s (%s); cached reads may be stale "
	    "until they expire",
	    verkey, memcached_strerror(ctx->cache->mc, rc));
}
