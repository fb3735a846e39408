/*
 * analytics.c: agoractl analytics prune.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"

/*
 * analytics prune --before TIME: delete the events from before TIME (a
 * date or an RFC 3339 time), a batch per transaction, with progress on
 * standard error.  agora-worker does the same by itself for the events
 * older than analytics_retention_days.
 */
int
ctl_analytics_prune(int argc, char **argv)
{
	const char *vals[2] = { NULL, AGORA_STR(AGORA_PRUNE_BATCH) };
	long long total = 0, n = 0;
	PGresult *res;
	PGconn *c;
	int rc = 0;

	if (argc != 2 || strcmp(argv[0], "--before") != 0)
		return ctl_usage();
	vals[0] = argv[1];
	if ((c = ctl_connect()) == NULL)
		return 1;
	do {
		res = PQexecParams(c,
		    "SELECT analytics_prune_before($1::timestamptz, $2::int)",
		    2, NULL, vals, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK ||
		    agora_parse_ll(PQgetvalue(res, 0, 0), 0, INT64_MAX, &n)) {
			fprintf(stderr, "agoractl: %s", PQerrorMessage(c));
			rc = 1;
		} else {
			total += n;
			fprintf(
			    stderr, "\ragoractl: %lld events deleted", total);
		}
		PQclear(res);
	} while (rc == 0 && n == AGORA_PRUNE_BATCH);
	fprintf(stderr, "\n");
	if (rc == 0)
		printf("%lld analytics events from before %s deleted\n", total,
		    argv[1]);
	ctl_disconnect();
	return rc;
}
