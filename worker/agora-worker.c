/*
 * agora-worker: drains the outbox table (doc/architecture.md, agora-worker(8)).
 *
 *   agora-worker --once            one pass: drain what is due, then exit
 *   agora-worker --loop [--deadline S]
 *                                  drain, then wait on LISTEN agora_outbox
 *                                  (polling every worker_poll_ms as a
 *                                  fallback) until S seconds (55) passed
 *   --topics T,...                 claim only these topics, so that slow
 *                                  work (mail, invoices) runs in a worker
 *                                  of its own and never delays charges
 *   --statements                   print the statements it prepares
 *   -h, --help                     what each option does
 *
 * A worker that cannot reach the database when it starts exits 1 at once,
 * in either mode, so that cron's mail or systemd's status shows it; one
 * that loses the database later waits for it until its deadline.
 *
 * cron starts it every minute (flock keeps one per host); several hosts
 * may run it at once.  This file reads the arguments and loops; the
 * outbox engine (claims, leases, retries) is outbox.c, and what each
 * topic does is handlers.c's table.  After a pass that found work, the
 * next starts at once; the worker sleeps only when nothing is due.
 * SIGTERM finishes the current row, hands the rest of the batch back, and
 * exits.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "worker.h"

#define HOUSEKEEPING_MS 10000
/* The topics claimed, comma-separated, with room for "{" "}" and NUL. */
#define TOPICS_MAX 256
/* How long a loop waits for a database that went away before it asks
 * again (the db layer reconnects). */
#define DB_AWAY_US 500000

static void
on_signal(int sig)
{
	(void)sig;
	worker_stop();
}

struct run {
	int loop;
	long long deadline_ms; /* absolute, on the monotonic clock */
	char topics[TOPICS_MAX]; /* what it claims, as an array literal */
};

static void
work(struct worker *w, const struct run *run)
{
	long long last_house = 0;
	int n;

	while (!worker_stopping() && worker_now_ms() < run->deadline_ms) {
		if (worker_now_ms() - last_house >= HOUSEKEEPING_MS ||
		    last_house == 0) {
			worker_housekeeping(w);
			last_house = worker_now_ms();
		}
		n = worker_drain(w);
		if (n > 0)
			continue;
		/* --once with the database away: say so to cron. */
		if (!run->loop) {
			w->unreachable = n < 0;
			break;
		}
		if (n < 0) {
			usleep(DB_AWAY_US);
			continue;
		}
		worker_wait(w, run->deadline_ms - worker_now_ms());
	}
}

#ifndef AGORA_SYSCONFDIR
#define AGORA_SYSCONFDIR "/etc"
#endif

static void
synopsis(FILE *f)
{
	fprintf(f,
	    "usage: agora-worker --once | --loop [--deadline SECONDS] "
	    "[--topics TOPIC,...]\n"
	    "       agora-worker --statements\n"
	    "       agora-worker -h|--help\n");
}

/* The topics, comma-separated, into out: for --help and PostgreSQL. */
static void
topic_list(char *out, size_t len)
{
	const char *t;
	size_t i, n = 0;

	out[0] = '\0';
	for (i = 0; (t = worker_topic_name(i)) != NULL && n < len; i++)
		n += (size_t)snprintf(
		    out + n, len - n, "%s%s", i > 0 ? "," : "", t);
}

static int
usage(void)
{
	char all[TOPICS_MAX - 2];

	topic_list(all, sizeof(all));
	synopsis(stderr);
	fprintf(stderr, "topics: %s\n", all);
	return 2;
}

static int
help(void)
{
	char all[TOPICS_MAX - 2];

	topic_list(all, sizeof(all));
	printf("agora-worker: runs the work agora queues in its outbox "
	       "table.\n\n");
	synopsis(stdout);
	printf("\noptions:\n"
	       "  --once               one pass: do what is due, then exit\n"
	       "  --loop               do what is due, then wait for more "
	       "(LISTEN)\n"
	       "                       until the deadline\n"
	       "  --deadline SECONDS   how long --loop runs (55)\n"
	       "  --topics TOPIC,...   claim only these topics (all of them)\n"
	       "  --statements         print the statements it prepares, and "
	       "exit\n"
	       "  -h, --help           print this help and exit\n"
	       "\ntopics: %s\n"
	       "\nconfiguration: the file AGORA_CONFIG names, else %s;\n"
	       "AGORA_<KEY> variables override its keys.  Exits 1 when the "
	       "database\ncannot be reached at start.\n",
	    all, AGORA_SYSCONFDIR "/agora/agora.conf");
	return 0;
}

/* Whether every item of the comma list is a topic this build handles. */
static int
topics_ok(const char *list)
{
	const char *p = list, *end;
	size_t len = strlen(list);

	if (len == 0 || len > TOPICS_MAX - 3 || list[len - 1] == ',')
		return 0;
	for (; *p != '\0'; p = *end == ',' ? end + 1 : end) {
		end = p + strcspn(p, ",");
		if (!worker_topic_known(p, (size_t)(end - p)))
			return 0;
	}
	return 1;
}

static int
parse_args(int argc, char **argv, struct run *run)
{
	char all[TOPICS_MAX - 2];
	long long secs = 55;
	int i, mode = 0;

	topic_list(all, sizeof(all));
	snprintf(run->topics, sizeof(run->topics), "{%s}", all);
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--once") == 0)
			mode = 1;
		else if (strcmp(argv[i], "--loop") == 0)
			mode = 2;
		else if (strcmp(argv[i], "--deadline") == 0 && i + 1 < argc &&
		    agora_parse_ll(argv[++i], 1, 86400, &secs) == 0)
			;
		else if (strcmp(argv[i], "--topics") == 0 && i + 1 < argc &&
		    topics_ok(argv[i + 1]))
			snprintf(run->topics, sizeof(run->topics), "{%s}",
			    argv[++i]);
		else
			return -1;
	}
	if (mode == 0)
		return -1;
	run->loop = mode == 2;
	run->deadline_ms = worker_now_ms() + secs * 1000;
	return 0;
}

int
main(int argc, char **argv)
{
	struct worker w;
	struct run run;
	struct sigaction sa;
	int rc = 1;

	if (argc == 2 &&
	    (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))
		return help();
	if (argc == 2 && strcmp(argv[1], "--statements") == 0) {
		worker_print_stmts();
		return 0;
	}
	if (parse_args(argc, argv, &run) != 0)
		return usage();
	agora_log_init("agora-worker");
	if (sodium_init() < 0)
		return 1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (worker_open(&w, run.topics) == 0) {
		work(&w, &run);
		agora_log("info",
		    "done: %lld handled, %lld retried, %lld dead, %lld "
		    "orders expired",
		    w.handled, w.retried, w.dead, w.expired);
		rc = w.unreachable ? 1 : 0;
	}
	worker_close(&w);
	return rc;
}
