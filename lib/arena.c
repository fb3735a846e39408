/*
 * arena.c: the per-request arena.
 *
 * Allocations are carved from chunks; the first chunk is kept across
 * requests, larger ones are freed at reset.  The total is capped so that no
 * request, however hostile, can make a process grow without bound: an
 * allocation past the cap returns NULL.  The failure is sticky, as SQLite's
 * accError is: once one allocation failed, every later one fails too until
 * the reset, so no code runs on with half of what it built (a NULL that
 * reaches PostgreSQL is SQL NULL, and "LIMIT NULL" means no limit), no
 * query runs (db.c asks agora_arena_failed()), and the answer is the fixed
 * 500 that serve.c builds without the arena.
 * Foreign objects (PGresult, json_object) are registered with
 * agora_arena_defer() and released at reset, in reverse order.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "agora.h"

#define CHUNK_MIN (64 * 1024)
#define ALIGN 16

struct chunk {
	struct chunk *next;
	size_t size;
	size_t used;
	/* Data follows, aligned. */
};

struct defer {
	struct defer *next;
	void (*fn)(void *);
	void *p;
};

struct agora_arena {
	struct chunk *head; /* newest first; the last one is kept */
	size_t cap;
	size_t total; /* bytes handed out, for the cap */
	struct defer *defers; /* newest first, so released in reverse */
	int failed; /* an allocation failed since the last reset */
};

static size_t
hdr_size(void)
{
	return (sizeof(struct chunk) + ALIGN - 1) & ~(size_t)(ALIGN - 1);
}

static struct chunk *
chunk_new(size_t size)
{
	struct chunk *c;

	c = malloc(hdr_size() + size);
	if (c == NULL)
		return NULL;
	c->next = NULL;
	c->size = size;
	c->used = 0;
	return c;
}

struct agora_arena *
agora_arena_new(size_t cap)
{
	struct agora_arena *a;

	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return NULL;
	a->cap = cap;
	a->head = chunk_new(CHUNK_MIN);
	if (a->head == NULL) {
		free(a);
		return NULL;
	}
	return a;
}

void *
agora_arena_alloc(struct agora_arena *a, size_t n)
{
	struct chunk *c;
	size_t need;

	need = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
	if (a->failed || need < n || need > a->cap - a->total) {
		a->failed = 1;
		return NULL;
	}
	c = a->head;
	if (c->size - c->used < need) {
		c = chunk_new(need > CHUNK_MIN ? need : CHUNK_MIN);
		if (c == NULL) {
			a->failed = 1;
			return NULL;
		}
		c->next = a->head;
		a->head = c;
	}
	a->total += need;
	c->used += need;
	return (char *)c + hdr_size() + c->used - need;
}

/*
 * Register fn(p) to run at reset.  Returns -1 when the arena is full; the
 * caller still owns p then and must release it itself.
 */
int
agora_arena_defer(struct agora_arena *a, void (*fn)(void *), void *p)
{
	struct defer *d;

	d = agora_arena_alloc(a, sizeof(*d));
	if (d == NULL)
		return -1;
	d->fn = fn;
	d->p = p;
	d->next = a->defers;
	a->defers = d;
	return 0;
}

void
agora_arena_reset(struct agora_arena *a)
{
	struct chunk *c;
	struct defer *d;

	for (d = a->defers; d != NULL; d = d->next)
		d->fn(d->p);
	a->defers = NULL;
	while (a->head->next != NULL) {
		c = a->head;
		a->head = c->next;
		free(c);
	}
	a->head->used = 0;
	a->total = 0;
	a->failed = 0;
}

/* Whether an allocation failed since the last reset. */
int
agora_arena_failed(const struct agora_arena *a)
{
	return a->failed;
}

void
agora_arena_free(struct agora_arena *a)
{
	if (a == NULL)
		return;
	agora_arena_reset(a);
	free(a->head);
	free(a);
}

size_t
agora_arena_used(const struct agora_arena *a)
{
	return a->total;
}
