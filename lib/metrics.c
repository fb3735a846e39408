/*
 * metrics.c: counters shared by every process of a program, summed at
 * scrape time (doc/metrics.md).
 *
 * The processes of a FastCGI program share nothing, and the web server
 * starts and stops them as it likes.  So each program has one file,
 * run_dir/metrics/PROGRAM.metrics, mapped by every process of it: a
 * header, the descriptors of its series (name and labels, written once
 * when the file is made), and a slot of 64-bit counters per process.  A
 * process takes a free slot at start by locking one byte of the file (an
 * open file description lock, which the kernel drops when the process
 * ends however it ends) and is then the only writer of that slot, so an
 * update is a plain add, with no lock and no system call.  A slot whose
 * process has ended keeps its counts, and the next process to take it
 * adds to them: nothing is lost when a process exits, and a sum never goes
 * backwards while the file lives.  run_dir is emptied at boot, which
 * starts every count again at zero (Prometheus reads that as a reset).
 *
 * The scrape (agora_metrics_scrape) reads every program's file, sums each
 * series over the slots ever used, and prints the Prometheus text format.
 */
#include "config.h"

#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agora.h"

#define MAGIC "agoramt1"
#define HEAD_BYTES 4096
#define DESC_LABELS 248
#define SLOTS 256

/* The bucket bounds of every histogram, in microseconds: 1 ms to 10 s. */
static const long long bounds_us[AGORA_MBUCKETS] = { 1000, 2500, 5000, 10000,
	25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000,
	10000000 };

enum part { P_VALUE, P_BUCKET, P_SUM, P_COUNT };

struct mhead {
	char magic[8];
	uint64_t layout; /* a hash of the descriptors */
	uint32_t ndesc, nslots;
	uint32_t used; /* slots handed out: the scrape reads these */
	uint32_t pad;
	char program[64];
};

struct mdesc {
	uint16_t family;
	uint8_t part, bucket;
	uint8_t pad[4];
	char labels[DESC_LABELS]; /* escaped, without braces */
};

struct agora_mset {
	struct mdesc *d;
	size_t n, cap;
};

static const struct {
	const char *name, *type, *help;
	int us; /* values in microseconds, shown in seconds */
} families[AGORA_MF__MAX] = {
	[AGORA_MF_REQUESTS] = { "agora_http_requests_total", "counter",
	    "Requests answered, by route template, method and status class.",
	    0 },
	[AGORA_MF_DURATION] = { "agora_http_request_duration_seconds",
	    "histogram", "Time from a request's start to its answer.", 1 },
	[AGORA_MF_DB_SECONDS] = { "agora_db_seconds_total", "counter",
	    "Time spent waiting for PostgreSQL, connecting included.", 1 },
	[AGORA_MF_DB_STATEMENTS] = { "agora_db_statements_total", "counter",
	    "Statements sent to PostgreSQL.", 0 },
	[AGORA_MF_CACHE] = { "agora_cache_requests_total", "counter",
	    "memcached reads by result: hit, miss, error (a failed read of "
	    "the catalog cache is a miss too).",
	    0 },
	[AGORA_MF_RATE_LIMITED] = { "agora_rate_limited_total", "counter",
	    "Requests answered 429 by a rate limit.", 0 },
	[AGORA_MF_AUTH_FAILURES] = { "agora_auth_failures_total", "counter",
	    "Requests answered 401: no, a bad or an expired credential.", 0 },
	[AGORA_MF_ERRORS] = { "agora_http_errors_total", "counter",
	    "5xx answers by cause: database, timeout, unavailable, internal.",
	    0 },
	[AGORA_MF_JOBS] = { "agora_worker_jobs_total", "counter",
	    "Outbox jobs finished, by topic and result (done, retried, dead).",
	    0 },
	[AGORA_MF_JOB_DURATION] = { "agora_worker_job_duration_seconds",
	    "histogram", "Time from a job's claim to its end.", 1 },
	[AGORA_MF_CALLS] = { "agora_worker_calls_total", "counter",
	    "Calls to outside services, by service and result (ok, failed).",
	    0 },
	[AGORA_MF_CALL_DURATION] = { "agora_worker_call_duration_seconds",
	    "histogram", "Time of a call to an outside service.", 1 },
	[AGORA_MF_LAST_PASS] = { "agora_worker_last_pass_timestamp_seconds",
	    "gauge", "When a worker last finished a pass over the outbox.", 0 },
};

/* This process's slot, or a private one when there is no file. */
static uint64_t *slot;
static size_t slot_words;
static void *map;
static size_t map_len;
static int map_fd = -1;

struct agora_mset *
agora_mset_new(void)
{
	return calloc(1, sizeof(struct agora_mset));
}

static long
desc_add(struct agora_mset *s, enum agora_mfam f, int part, int bucket,
    const char *labels)
{
	struct mdesc *d;

	if (s == NULL)
		return -1;
	if (s->n == s->cap) {
		d = realloc(s->d, (s->cap * 2 + 64) * sizeof(*d));
		if (d == NULL)
			return -1;
		s->d = d;
		s->cap = s->cap * 2 + 64;
	}
	d = &s->d[s->n];
	memset(d, 0, sizeof(*d));
	d->family = (uint16_t)f;
	d->part = (uint8_t)part;
	d->bucket = (uint8_t)bucket;
	if (snprintf(d->labels, sizeof(d->labels), "%s", labels) >=
	    (int)sizeof(d->labels))
		return -1;
	return (long)s->n++;
}

long
agora_mset_counter(struct agora_mset *s, enum agora_mfam f, const char *labels)
{
	return desc_add(s, f, P_VALUE, 0, labels);
}

/* AGORA_MBUCKETS buckets, +Inf, the sum and the count: the first index. */
long
agora_mset_histogram(
    struct agora_mset *s, enum agora_mfam f, const char *labels)
{
	long first = desc_add(s, f, P_BUCKET, 0, labels);
	int b;

	for (b = 1; b <= AGORA_MBUCKETS && first >= 0; b++)
		if (desc_add(s, f, P_BUCKET, b, labels) < 0)
			first = -1;
	if (first >= 0 &&
	    (desc_add(s, f, P_SUM, 0, labels) < 0 ||
	        desc_add(s, f, P_COUNT, 0, labels) < 0))
		first = -1;
	return first;
}

void
agora_mset_free(struct agora_mset *s)
{
	if (s != NULL)
		free(s->d);
	free(s);
}

/* Label values in the text format escape \, " and newline. */
const char *
agora_mlabel(char *out, size_t len, const char *value)
{
	size_t o = 0;

	for (; *value != '\0' && o + 3 < len; value++) {
		if (*value == '\\' || *value == '"' || *value == '\n')
			out[o++] = '\\';
		out[o++] = *value == '\n' ? 'n' : *value;
	}
	out[o] = '\0';
	return out;
}

static uint64_t
layout_hash(const struct agora_mset *s)
{
	const unsigned char *p = (const unsigned char *)s->d;
	uint64_t h = 1469598103934665603ULL;
	size_t i;

	for (i = 0; i < s->n * sizeof(*s->d); i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

static size_t
words_of(size_t ndesc)
{
	return (ndesc + 7) & ~(size_t)7; /* a slot starts a cache line */
}

static size_t
descs_bytes(size_t ndesc)
{
	size_t b = ndesc * sizeof(struct mdesc);

	return (b + HEAD_BYTES - 1) / HEAD_BYTES * HEAD_BYTES;
}

static size_t
file_bytes(size_t ndesc)
{
	return HEAD_BYTES + descs_bytes(ndesc) +
	    (size_t)SLOTS * words_of(ndesc) * 8;
}

/* Whether fd holds this layout, whole. */
static int
file_matches(int fd, const struct mhead *want)
{
	struct mhead h;
	struct stat st;

	if (fstat(fd, &st) != 0 ||
	    (size_t)st.st_size != file_bytes(want->ndesc) ||
	    pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
		return 0;
	return memcmp(h.magic, MAGIC, 8) == 0 && h.layout == want->layout &&
	    h.ndesc == want->ndesc && h.nslots == want->nslots;
}

/*
 * Make the file under a temporary name and rename it into place, so no
 * process ever maps half of one.  A file of another layout (an upgrade
 * changed the routes) is replaced: its processes keep the old one until
 * they end, and its counts start again.
 */
static int
file_make(const char *path, const struct mhead *h, const struct agora_mset *s)
{
	char tmp[4096];
	int fd;

	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp))
		return -1;
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0)
		return -1;
	if (fchmod(fd, 0640) != 0 ||
	    ftruncate(fd, (off_t)file_bytes(s->n)) != 0 ||
	    pwrite(fd, h, sizeof(*h), 0) != (ssize_t)sizeof(*h) ||
	    pwrite(fd, s->d, s->n * sizeof(*s->d), HEAD_BYTES) !=
	        (ssize_t)(s->n * sizeof(*s->d)) ||
	    rename(tmp, path) != 0) {
		close(fd);
		unlink(tmp);
		return -1;
	}
	return fd;
}

/* Open path, made or remade for this layout, under dir's lock file. */
static int
file_open(const char *dir, const char *path, const struct mhead *h,
    const struct agora_mset *s)
{
	char lpath[4096];
	int lock, fd;

	snprintf(lpath, sizeof(lpath), "%s/.lock", dir);
	lock = open(lpath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (lock < 0 || flock(lock, LOCK_EX) != 0) {
		if (lock >= 0)
			close(lock);
		return -1;
	}
	fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0 && !file_matches(fd, h)) {
		close(fd);
		fd = -1;
	}
	if (fd < 0)
		fd = file_make(path, h, s);
	close(lock); /* drops the flock */
	return fd;
}

/* An open file description's lock: a process's own close() of another
 * descriptor of the file (the scrape's) does not drop it, as it would
 * drop a POSIX lock. */
#ifndef F_OFD_SETLK
#error "metrics need open file description locks (F_OFD_SETLK, Linux 3.15)"
#endif
#define SLOT_LOCK F_OFD_SETLK

/* Take the first slot no living process holds; -1 when all are held. */
static long
slot_take(int fd)
{
	struct flock fl;
	long i;

	for (i = 0; i < SLOTS; i++) {
		memset(&fl, 0, sizeof(fl));
		fl.l_type = F_WRLCK;
		fl.l_whence = SEEK_SET;
		fl.l_start = i;
		fl.l_len = 1;
		if (fcntl(fd, SLOT_LOCK, &fl) == 0)
			return i;
		if (errno != EAGAIN && errno != EACCES)
			return -1;
	}
	return -1;
}

static void
used_raise(struct mhead *h, uint32_t n)
{
	uint32_t cur = __atomic_load_n(&h->used, __ATOMIC_RELAXED);

	while (cur < n &&
	    !__atomic_compare_exchange_n(
	        &h->used, &cur, n, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

static int
attach(const char *dir, const char *program, struct agora_mset *s)
{
	char path[4096];
	struct mhead h;
	long i;

	memset(&h, 0, sizeof(h));
	memcpy(h.magic, MAGIC, 8);
	h.layout = layout_hash(s);
	h.ndesc = (uint32_t)s->n;
	h.nslots = SLOTS;
	snprintf(h.program, sizeof(h.program), "%s", program);
	if ((mkdir(dir, 0750) != 0 && errno != EEXIST) ||
	    snprintf(path, sizeof(path), "%s/%s.metrics", dir, program) >=
	        (int)sizeof(path) ||
	    (map_fd = file_open(dir, path, &h, s)) < 0)
		return -1;
	if ((i = slot_take(map_fd)) < 0) {
		errno = ENOSPC;
		return -1;
	}
	/* The slot's pages now, not at a first write that would die of
	 * SIGBUS on a full /run. */
	if ((errno = posix_fallocate(map_fd,
	         (off_t)(HEAD_BYTES + descs_bytes(s->n) +
	             (size_t)i * words_of(s->n) * 8),
	         (off_t)(words_of(s->n) * 8))) != 0)
		return -1;
	map_len = file_bytes(s->n);
	map =
	    mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, 0);
	if (map == MAP_FAILED) {
		map = NULL;
		return -1;
	}
	used_raise(map, (uint32_t)i + 1);
	slot = (uint64_t *)((char *)map + HEAD_BYTES + descs_bytes(s->n)) +
	    (size_t)i * words_of(s->n);
	return 0;
}

/*
 * Count this process's series, described by s (which this frees), in
 * dir's file for program.  Without a file (dir NULL or empty, or it
 * cannot be used: logged) the counts stay in this process, unseen; the
 * program runs on either way.
 */
int
agora_metrics_open(const char *dir, const char *program, struct agora_mset *s)
{
	int rc = -1;

	agora_metrics_close();
	if (s == NULL)
		return -1;
	slot_words = words_of(s->n);
	if (dir != NULL && *dir != '\0' && (rc = attach(dir, program, s)) != 0)
		agora_log("error", "metrics: %s/%s.metrics: %s (not counted)",
		    dir, program, strerror(errno));
	if (rc != 0) {
		agora_metrics_close();
		slot_words = words_of(s->n);
		slot = calloc(slot_words > 0 ? slot_words : 1, 8);
	}
	agora_mset_free(s);
	return slot != NULL ? rc : -1;
}

void
agora_metrics_close(void)
{
	if (map != NULL)
		munmap(map, map_len);
	else
		free(slot);
	if (map_fd >= 0)
		close(map_fd); /* drops the slot's lock */
	map = NULL;
	map_fd = -1;
	slot = NULL;
	slot_words = 0;
}

/*
 * The one writer of its slot adds with a load and a store; a scrape may
 * read a word while it is written, and sees the old or the new value,
 * never half of one (aligned 64-bit accesses).
 */
void
agora_metric_add(long i, uint64_t v)
{
	if (slot != NULL && i >= 0 && (size_t)i < slot_words)
		__atomic_store_n(&slot[i],
		    __atomic_load_n(&slot[i], __ATOMIC_RELAXED) + v,
		    __ATOMIC_RELAXED);
}

/* A gauge summed as the largest value of any slot (a time). */
void
agora_metric_set(long i, uint64_t v)
{
	if (slot != NULL && i >= 0 && (size_t)i < slot_words)
		__atomic_store_n(&slot[i], v, __ATOMIC_RELAXED);
}

/*
 * A bucket counts the values that fell in it alone; the scrape adds them
 * up, so that a scrape in the middle of an update still shows buckets
 * that never shrink as le grows.
 */
void
agora_metric_observe(long first, long long us)
{
	int b = 0;

	if (first < 0)
		return;
	while (b < AGORA_MBUCKETS && us > bounds_us[b])
		b++;
	agora_metric_add(first + b, 1);
	agora_metric_add(first + AGORA_MBUCKETS + 1, us > 0 ? (uint64_t)us : 0);
	agora_metric_add(first + AGORA_MBUCKETS + 2, 1);
}

/* --- the scrape ---------------------------------------------------------- */

#define FILES_MAX 64

struct mfile {
	void *base;
	const struct mhead *h;
	const struct mdesc *d;
	const uint64_t *slots;
	size_t len, words;
};

static int
mfile_map(int dfd, const char *name, struct mfile *m)
{
	struct stat st;
	const struct mhead *h;
	void *p;
	int fd;

	fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0 || (size_t)st.st_size < HEAD_BYTES) {
		close(fd);
		return -1;
	}
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return -1;
	h = p;
	m->base = p;
	m->h = h;
	m->len = (size_t)st.st_size;
	if (memcmp(h->magic, MAGIC, 8) != 0 || h->nslots != SLOTS ||
	    m->len != file_bytes(h->ndesc) ||
	    memchr(h->program, '\0', sizeof(h->program)) == NULL) {
		munmap(p, m->len);
		return -1;
	}
	m->d = (const struct mdesc *)((const char *)p + HEAD_BYTES);
	m->slots = (const uint64_t *)((const char *)p + HEAD_BYTES +
	    descs_bytes(h->ndesc));
	m->words = words_of(h->ndesc);
	return 0;
}

/* Word i over the slots ever handed out: the sum, or for a gauge the max. */
static uint64_t
mfile_value(const struct mfile *m, size_t i, int gauge)
{
	uint32_t used = __atomic_load_n(&m->h->used, __ATOMIC_RELAXED);
	uint64_t v = 0, w;
	uint32_t s;

	for (s = 0; s < used && s < SLOTS; s++) {
		w = __atomic_load_n(
		    &m->slots[s * m->words + i], __ATOMIC_RELAXED);
		v = gauge ? (w > v ? w : v) : v + w;
	}
	return v;
}

static void
print_value(FILE *out, uint64_t v, int us)
{
	if (us)
		fprintf(out, " %llu.%06llu\n",
		    (unsigned long long)(v / 1000000),
		    (unsigned long long)(v % 1000000));
	else
		fprintf(out, " %llu\n", (unsigned long long)v);
}

static void
print_series(FILE *out, const struct mfile *m, size_t i, uint64_t v)
{
	static const char *const suffix[] = { "", "_bucket", "_sum", "_count" };
	const struct mdesc *d = &m->d[i];
	char prog[sizeof(m->h->program) * 2];
	int f = d->family;

	fprintf(out, "%s%s{program=\"%s\"%s%s", families[f].name,
	    suffix[d->part], agora_mlabel(prog, sizeof(prog), m->h->program),
	    d->labels[0] != '\0' ? "," : "", d->labels);
	if (d->part == P_BUCKET && d->bucket < AGORA_MBUCKETS)
		fprintf(out, ",le=\"%g\"", (double)bounds_us[d->bucket] / 1e6);
	else if (d->part == P_BUCKET)
		fputs(",le=\"+Inf\"", out);
	fputc('}', out);
	print_value(
	    out, v, families[f].us && (d->part == P_VALUE || d->part == P_SUM));
}

/*
 * One file's series of family f.  A series that is still zero is left
 * out (it appears with its first count), and a histogram with it.
 */
static void
print_family(FILE *out, const struct mfile *m, int f)
{
	int gauge = strcmp(families[f].type, "gauge") == 0;
	size_t i, n = m->h->ndesc;
	uint64_t v, cum = 0;

	for (i = 0; i < n; i++) {
		if (m->d[i].family != f)
			continue;
		if (m->d[i].part == P_BUCKET && m->d[i].bucket == 0 &&
		    (i + AGORA_MBUCKETS + 2 >= n ||
		        mfile_value(m, i + AGORA_MBUCKETS + 2, 0) == 0)) {
			i += AGORA_MBUCKETS + 2;
			continue;
		}
		v = mfile_value(m, i, gauge);
		if (m->d[i].part == P_BUCKET)
			v = cum = (m->d[i].bucket == 0 ? 0 : cum) + v;
		else if (m->d[i].part == P_COUNT)
			v = cum; /* the +Inf bucket's, which it must equal */
		if (v != 0 || m->d[i].part != P_VALUE)
			print_series(out, m, i, v);
	}
}

/*
 * Print the sums of every program's file in dir, family by family (the
 * text format wants a family's series together).  Returns the number of
 * files read, or -1 when dir cannot be read.
 */
int
agora_metrics_scrape(const char *dir, FILE *out)
{
	struct mfile m[FILES_MAX];
	struct dirent *e;
	size_t n = 0, i, len;
	DIR *d;
	int f;

	if ((d = opendir(dir)) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL && n < FILES_MAX) {
		len = strlen(e->d_name);
		if (len > 8 && strcmp(e->d_name + len - 8, ".metrics") == 0 &&
		    mfile_map(dirfd(d), e->d_name, &m[n]) == 0)
			n++;
	}
	closedir(d);
	for (f = 0; f < AGORA_MF__MAX; f++) {
		fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", families[f].name,
		    families[f].help, families[f].name, families[f].type);
		for (i = 0; i < n; i++)
			print_family(out, &m[i], f);
	}
	for (i = 0; i < n; i++)
		munmap(m[i].base, m[i].len);
	return (int)n;
}
