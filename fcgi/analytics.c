/*
 * analytics.c: POST /api/v1/analytics/events.
 *
 * Anyone may post one event or an array of up to 100.  Each is validated
 * against the field table, then all of them are inserted with one
 * statement that unpacks a JSON array on the server, so a batch costs one
 * round trip.  Unknown product ids are kept as given: analytics is a log of
 * what clients saw, not a reference to the catalog.  properties are free
 * form, but bounded: PROPERTIES_MAX members and PROPERTIES_BYTES of JSON
 * per event, since anyone may post and a megabyte of them per request
 * would fill the table fast; agora-worker deletes events older than
 * analytics_retention_days.
 */
#include "config.h"

#include <stdio.h>

#include "agora.h"

#define BATCH_MAX 100
#define PROPERTIES_MAX 20
#define PROPERTIES_BYTES 2048

static const struct agora_stmt stmts[] = {
	{ "events_insert",
	    "INSERT INTO analytics_events (type, session_id, product_id, "
	    "properties) SELECT e->>'type', e->>'session_id', "
	    "e->>'product_id', "
	    "COALESCE(e->'properties', '{}') "
	    "FROM jsonb_array_elements($1::jsonb) AS e" },
};

enum { F_TYPE, F_SESSION, F_PRODUCT, F_PROPERTIES, F__MAX };

static const struct agora_field event_fields[F__MAX] = {
	[F_TYPE] = { "type", AGORA_F_STRING, AGORA_F_REQUIRED, 1, 64 },
	[F_SESSION] = { "session_id", AGORA_F_STRING, AGORA_F_REQUIRED, 1,
	    128 },
	[F_PRODUCT] = { "product_id", AGORA_F_STRING, 0, 1, 64 },
	[F_PROPERTIES] = { "properties", AGORA_F_OBJECT, 0, 0, 0 },
};

/* The bounds of one event's properties, as an error in errors. */
static enum agora_err
properties_ok(
    const struct agora_value *p, const char *prefix, struct json_object *errors)
{
	size_t len;

	if (!p->present)
		return AGORA_OK;
	if (json_object_object_length(p->o) > PROPERTIES_MAX) {
		agora_error_add(errors, prefix, "properties",
		    "has more than " AGORA_STR(PROPERTIES_MAX) " members");
		return AGORA_E_VALIDATION;
	}
	(void)json_object_to_json_string_length(
	    p->o, JSON_C_TO_STRING_PLAIN, &len);
	if (len > PROPERTIES_BYTES) {
		agora_error_add(errors, prefix, "properties",
		    "is longer than " AGORA_STR(
		        PROPERTIES_BYTES) " bytes as JSON");
		return AGORA_E_VALIDATION;
	}
	return AGORA_OK;
}

/*
 * Validate every event of batch; a type error (400) wins over other
 * violations (422).  Messages name events "[i].field" when the body was an
 * array.
 */
static enum agora_err
validate(struct json_object *batch, int single, struct json_object *errors)
{
	struct agora_value v[F__MAX];
	enum agora_err rc = AGORA_OK, e;
	char prefix[32] = "";
	size_t i, n;

	n = json_object_array_length(batch);
	for (i = 0; i < n; i++) {
		if (!single)
			snprintf(
			    prefix, sizeof(prefix), "[%lu]", (unsigned long)i);
		e = agora_valid(json_object_array_get_idx(batch, i), prefix,
		    event_fields, F__MAX, v, errors);
		if (e == AGORA_OK)
			e = properties_ok(&v[F_PROPERTIES], prefix, errors);
		if (e == AGORA_E_BAD_TYPE || rc == AGORA_OK)
			rc = e != AGORA_OK ? e : rc;
	}
	return rc;
}

struct insert_arg {
	const char *json;
};

static enum agora_err
insert(struct agora_req *r, void *arg)
{
	const struct insert_arg *a = arg;
	const char *vals[1] = { a->json };

	return agora_db_query(r, "events_insert", 1, vals, NULL);
}

static enum agora_err
post_events(struct agora_req *r)
{
	struct json_object *batch, *errors, *o;
	struct insert_arg arg;
	enum agora_err rc;
	int single;
	size_t n;

	batch = r->json;
	single = !json_object_is_type(batch, json_type_array);
	if (single) {
		batch = json_object_new_array();
		json_object_array_add(batch, json_object_get(r->json));
		if (agora_defer_json(r, batch) != 0)
			return AGORA_E_TOO_LARGE;
	}
	n = json_object_array_length(batch);
	if (n == 0 || n > BATCH_MAX)
		return agora_problem(r, AGORA_E_VALIDATION, "batch_size",
		    "Send from 1 to 100 events.");
	errors = json_object_new_array();
	rc = validate(batch, single, errors);
	if (rc != AGORA_OK)
		return agora_problem_errors(
		    r, rc, "Some events are invalid.", errors);
	json_object_put(errors);
	arg.json =
	    json_object_to_json_string_ext(batch, JSON_C_TO_STRING_PLAIN);
	rc = agora_db_tx(r, insert, &arg);
	if (rc != AGORA_OK)
		return rc;
	o = json_object_new_object();
	json_object_object_add(o, "accepted", json_object_new_int((int)n));
	return agora_resp_json(r, 202, o);
}

static const struct agora_route routes[] = {
	{ "POST", "/api/v1/analytics/events", AGORA_BODY_JSON, post_events,
	    AGORA_ANON },
};

static const struct agora_program program = {
	.name = "analytics",
	.routes = routes,
	.nroutes = AGORA_NELEM(routes),
	.stmts = stmts,
	.nstmts = AGORA_NELEM(stmts),
};

AGORA_MAIN(program)
