/*
 * notifications.c: /api/v1/notifications: what agora told the caller,
 * newest first, on every channel, with each one's delivery status.  The
 * worker writes them (worker/notify.c); this program only reads.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "shop.h"

static const struct agora_stmt stmts[] = {
	{ "notification_list",
	    "SELECT n.id::text, notification_doc(n)::text FROM notifications n "
	    "WHERE n.user_id = $1::bigint "
	    "AND ($2::bigint IS NULL OR n.id < $2::bigint) "
	    "ORDER BY n.id DESC LIMIT $3::int",
	    AGORA_STMT_READ },
};

static enum agora_err
list_notifications(struct agora_req *r)
{
	const char *vals[3], *after;
	long long limit;
	PGresult *res;
	enum agora_err rc;

	if ((rc = agora_page_params_id(r, &limit, &after)) != AGORA_OK)
		return rc;
	vals[0] = r->user;
	vals[1] = after;
	vals[2] = agora_printf(r, "%lld", limit + 1);
	if ((rc = agora_db_query(r, "notification_list", 3, vals, &res)) !=
	    AGORA_OK)
		return rc;
	return agora_page_send(r, res, limit);
}

static const struct agora_route routes[] = {
	{ "GET", "/api/v1/notifications", AGORA_BODY_NONE, list_notifications,
	    AGORA_USER },
};

static const struct agora_program program = {
	.name = "notifications",
	.routes = routes,
	.nroutes = AGORA_NELEM(routes),
	.stmts = stmts,
	.nstmts = AGORA_NELEM(stmts),
};

AGORA_MAIN(program)
