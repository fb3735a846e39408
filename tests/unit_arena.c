/*
 * unit_arena.c: the arena's cap, alignment, deferred frees and reset.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "agora.h"
#include "tap.h"

static int freed;

static void
count_free(void *p)
{
	freed += *(int *)p;
}

int
main(void)
{
	struct agora_arena *a;
	char *p, *q;
	int one = 1, ten = 10;
	size_t i;

	a = agora_arena_new(256 * 1024);
	p = agora_arena_alloc(a, 3);
	q = agora_arena_alloc(a, 5);
	tap_ok(p != NULL && q != NULL && ((uintptr_t)q % 16) == 0,
	    "allocations are 16-byte aligned");
	p = agora_arena_alloc(a, 100 * 1024);
	tap_ok(p != NULL, "a block larger than a chunk");
	memset(p, 1, 100 * 1024);
	tap_ok(agora_arena_alloc(a, 200 * 1024) == NULL,
	    "an allocation past the cap fails");
	tap_ok(agora_arena_alloc(a, SIZE_MAX) == NULL,
	    "SIZE_MAX does not wrap around");
	tap_ok(agora_arena_failed(a) && agora_arena_alloc(a, 16) == NULL,
	    "after a failure every allocation fails (sticky)");
	tap_ok(agora_arena_defer(a, count_free, &one) == -1,
	    "and so does a deferred free, which the caller keeps");
	agora_arena_reset(a);
	tap_ok(!agora_arena_failed(a) && agora_arena_alloc(a, 16) != NULL,
	    "reset forgets the failure");
	agora_arena_defer(a, count_free, &one);
	agora_arena_defer(a, count_free, &ten);
	agora_arena_reset(a);
	tap_ok(freed == 11, "deferred frees run at reset");
	tap_ok(agora_arena_used(a) == 0, "reset empties the arena");
	for (i = 0; i < 1000; i++)
		if (agora_arena_alloc(a, 200) == NULL)
			break;
	tap_ok(i == 1000, "the whole cap is usable again after reset");
	agora_arena_reset(a);
	agora_arena_reset(a);
	tap_ok(freed == 11, "deferred frees run once");
	agora_arena_free(a);
	return tap_done();
}
