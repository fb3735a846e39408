/*
 * outbox.c: agoractl outbox list|retry|stats.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "ctl.h"

/* agoractl outbox list [--status S]: the rows, oldest first, 100 at most. */
int
ctl_outbox_list(int argc, char **argv)
{
	const char *vals[1] = { NULL };

	if (argc == 2 && strcmp(argv[0], "--status") == 0)
		vals[0] = argv[1];
	else if (argc != 0)
		return ctl_usage();
	return ctl_print("id\ttopic\taggregate\tstate\tattempts\t"
	                 "next_attempt_at\tlast_error",
	    "SELECT id, topic, aggregate_id, state, attempts, "
	    "agora_time(next_attempt_at), COALESCE(last_error, '') "
	    "FROM outbox WHERE $1::text IS NULL OR state = $1 "
	    "ORDER BY id LIMIT 100",
	    1, vals);
}

/* agoractl outbox retry ID|--all-dead: dead rows become due now. */
int
ctl_outbox_retry(int argc, char **argv)
{
	const char *vals[1] = { NULL };
	PGresult *res;
	PGconn *c;
	int rc = 1;

	if (argc != 1)
		return ctl_usage();
	if (strcmp(argv[0], "--all-dead") != 0)
		vals[0] = argv[0];
	if (vals[0] != NULL && !agora_id_ok(vals[0]))
		return ctl_usage();
	if ((c = ctl_connect()) == NULL)
		return 1;
	res = PQexecParams(c,
	    "WITH r AS (UPDATE outbox SET state = 'pending', attempts = 0, "
	    "next_attempt_at = now() WHERE state = 'dead' "
	    "AND ($1::bigint IS NULL OR id = $1::bigint) RETURNING id) "
	    "SELECT count(*), pg_notify('agora_outbox', '') FROM r",
	    1, NULL, vals, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		fprintf(stderr, "agoractl: %s", PQerrorMessage(c));
	else if (vals[0] != NULL && strcmp(PQgetvalue(res, 0, 0), "0") == 0)
		fprintf(stderr, "agoractl: no dead outbox row %s\n", vals[0]);
	else {
		printf("%s rows queued again\n", PQgetvalue(res, 0, 0));
		rc = 0;
	}
	PQclear(res);
	ctl_disconnect();
	return rc;
}

/* agoractl outbox stats: cheap counts, through the partial index. */
int
ctl_outbox_stats(int argc, char **argv)
{
	(void)argv;
	if (argc != 0)
		return ctl_usage();
	return ctl_print("pending\trunning\tdead\toldest_due_seconds\t"
	                 "dead_tuples",
	    "SELECT count(*) FILTER (WHERE state = 'pending'), "
	    "count(*) FILTER (WHERE state = 'running'), "
	    "(SELECT count(*) FROM outbox WHERE state = 'dead'), "
	    "COALESCE(round(extract(epoch FROM now() - min(next_attempt_at) "
	    "FILTER (WHERE state = 'pending')))::text, '-'), "
	    "(SELECT n_dead_tup FROM pg_stat_user_tables "
	    "WHERE relname = 'outbox') "
	    "FROM outbox WHERE state <> 'dead'",
	    0, NULL);
}
