/*
 * wmetrics.c: what the worker adds to the metrics (lib/metrics.c), in its
 * own file, run_dir/metrics/agora-worker.metrics: jobs done, retried and
 * dead per topic, the time from a batch's claim to each job's end, the
 * calls to outside services (the payment gateway, SMTP, the SMS gateway,
 * the file storage) with their durations and failures, and when a pass
 * over the outbox last ended.  A cron run takes a slot for its minute and
 * leaves its counts behind for the next.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "worker.h"

static const char *const results[] = { "done", "retried", "dead" };
static const char *const services[WM__MAX] = { "gateway", "smtp", "sms",
	"storage" };

/* Per topic: jobs[result], then the duration histogram. */
struct topic_row {
	long jobs, duration;
};

static struct topic_row *topics;
static size_t ntopics;
static long calls[WM__MAX], call_duration[WM__MAX], last_pass = -1;

static void
describe_topic(struct agora_mset *s, struct topic_row *t, const char *name)
{
	char esc[96], lab[160];
	size_t i;
	long at;

	agora_mlabel(esc, sizeof(esc), name);
	for (i = 0; i < AGORA_NELEM(results); i++) {
		snprintf(lab, sizeof(lab), "topic=\"%s\",result=\"%s\"", esc,
		    results[i]);
		at = agora_mset_counter(s, AGORA_MF_JOBS, lab);
		if (i == 0)
			t->jobs = at;
	}
	snprintf(lab, sizeof(lab), "topic=\"%s\"", esc);
	t->duration = agora_mset_histogram(s, AGORA_MF_JOB_DURATION, lab);
}

static void
describe_service(struct agora_mset *s, int i)
{
	char lab[64];

	snprintf(lab, sizeof(lab), "service=\"%s\",result=\"ok\"", services[i]);
	calls[i] = agora_mset_counter(s, AGORA_MF_CALLS, lab);
	snprintf(
	    lab, sizeof(lab), "service=\"%s\",result=\"failed\"", services[i]);
	agora_mset_counter(s, AGORA_MF_CALLS, lab);
	snprintf(lab, sizeof(lab), "service=\"%s\"", services[i]);
	call_duration[i] = agora_mset_histogram(s, AGORA_MF_CALL_DURATION, lab);
}

/* Describe the series and open the file; counting goes on without it. */
void
wmetrics_open(const struct agora_config *cfg)
{
	struct agora_mset *s = agora_mset_new();
	char dir[4096];
	size_t i;
	int k;

	for (ntopics = 0; worker_topic_name(ntopics) != NULL; ntopics++)
		;
	free(topics);
	topics = calloc(ntopics + 1, sizeof(*topics));
	if (s == NULL || topics == NULL) {
		agora_mset_free(s);
		ntopics = 0;
		return;
	}
	for (i = 0; i < ntopics; i++)
		describe_topic(s, &topics[i], worker_topic_name(i));
	for (k = 0; k < WM__MAX; k++)
		describe_service(s, k);
	last_pass = agora_mset_counter(s, AGORA_MF_LAST_PASS, "");
	snprintf(dir, sizeof(dir), "%s/metrics", cfg->run_dir);
	agora_metrics_open(dir, "agora-worker", s);
}

/* A job's end: done, retried (0) or dead (1), us after its claim. */
void
wmetrics_job(const char *topic, enum outcome o, int dead, long long us)
{
	size_t i;

	for (i = 0; i < ntopics; i++)
		if (strcmp(worker_topic_name(i), topic) == 0)
			break;
	if (i == ntopics || o == OUT_NONE)
		return;
	agora_metric_add(topics[i].jobs +
	        (o == OUT_DONE ? 0
	                : dead ? 2
	                       : 1),
	    1);
	agora_metric_observe(topics[i].duration, us);
}

/* A call to service that took us; ok 0 when it failed. */
void
wmetrics_call(enum wm_service s, int ok, long long us)
{
	agora_metric_add(calls[s] + (ok ? 0 : 1), 1);
	agora_metric_observe(call_duration[s], us);
}

void
wmetrics_pass(void)
{
	agora_metric_set(last_pass, (uint64_t)time(NULL));
}
