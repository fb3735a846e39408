/*
 * metrics_cost.c: what the metrics add to one request, in nanoseconds.
 *
 * A request's part in the metrics (lib/observe.c) is a few dozen adds to
 * a shared file plus one clock read: far too little for wrk to tell apart
 * from its own noise.  So this times it directly, on a real metrics file
 * in a scratch directory (argv[1]), for a program of twelve routes: per
 * request, the route is set, three statements and two cache reads are
 * reported, and the request is counted with its latency.  bench/bench.sh
 * sets the result beside the do-nothing program's time per request from
 * the same run.  Prints "ns_per_request N".
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agora.h"

#define ROUTES 12
#define ROUNDS 2000000

static enum agora_err
none(struct agora_req *r)
{
	(void)r;
	return AGORA_OK;
}

int
main(int argc, char **argv)
{
	static struct agora_route routes[ROUTES];
	static char patterns[ROUTES][64];
	struct agora_program prog = {
		.name = "bench", .routes = routes, .nroutes = ROUTES
	};
	struct agora_ctx ctx;
	struct agora_req r;
	struct timespec t0;
	long i;

	if (argc != 2)
		return 2;
	memset(&ctx, 0, sizeof(ctx));
	agora_config_defaults(&ctx.cfg);
	ctx.cfg.run_dir = argv[1];
	for (i = 0; i < ROUTES; i++) {
		snprintf(
		    patterns[i], sizeof(patterns[i]), "/api/v1/r%ld/{x_id}", i);
		routes[i] =
		    (struct agora_route){ "GET", patterns[i], AGORA_BODY_NONE,
			    none, AGORA_ANON, AGORA_RL_NONE, NULL };
	}
	if (agora_observe_open(&ctx, &prog) != 0)
		return 1;
	memset(&r, 0, sizeof(r));
	r.ctx = &ctx;
	r.method = "GET";
	r.status = 200;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < ROUNDS; i++) {
		r.route = &routes[i % ROUTES];
		r.start = t0;
		agora_observe_begin(&r);
		agora_observe_db(300, 1);
		agora_observe_db(200, 1);
		agora_observe_db(100, 1);
		agora_observe_cache(AGORA_CACHE_HIT);
		agora_observe_cache(AGORA_CACHE_MISS);
		agora_observe_end(&r, 1);
	}
	printf("ns_per_request %.1f\n",
	    (double)agora_us_since(&t0) * 1000.0 / ROUNDS);
	agora_metrics_close();
	return 0;
}
