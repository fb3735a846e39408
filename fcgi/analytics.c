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
 *
 * GET /api/v1/analytics/summary (admin) reads daily rows, not the events
 * and orders themselves (sql/0021, 0022): a range of at most RANGE_DAYS
 * UTC days costs about the same whatever their number.  The figures are
 * built by analytics_summary() in SQL; summary.csv, or Accept: text/csv,
 * gives its daily rows for a spreadsheet.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "agora.h"

#define BATCH_MAX 100
#define PROPERTIES_MAX 20
#define PROPERTIES_BYTES 2048
/* The longest summary: a year and a day, as a leap year's range. */
#define RANGE_DAYS 366
#define DEFAULT_DAYS 30
#define TOP_PRODUCTS 10
#define TOP_TYPES 50

static const struct agora_stmt stmts[] = {
	{ "events_insert",
	    "INSERT INTO analytics_events (type, session_id, product_id, "
	    "properties) SELECT e->>'type', e->>'session_id', "
	    "e->>'product_id', "
	    "COALESCE(e->'properties', '{}') "
	    "FROM jsonb_array_elements($1::jsonb) AS e" },
	{ "summary",
	    "SELECT analytics_summary($1::date, $2::date, $3, "
	    "" AGORA_STR(TOP_PRODUCTS) ", " AGORA_STR(TOP_TYPES) ")",
	    AGORA_STMT_READ | AGORA_STMT_REPLICA },
	{ "summary_csv", "SELECT analytics_summary_csv($1::date, $2::date, $3)",
	    AGORA_STMT_READ | AGORA_STMT_REPLICA },
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

/* Whether the n characters at s are all ASCII digits. */
static int
digits(const char *s, int n)
{
	for (int i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

/* The n digits at s as a number; digits() has checked them. */
static long
number(const char *s, int n)
{
	long v = 0;

	for (int i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

/*
 * Days since 1970-01-01 of a strict YYYY-MM-DD date of the proleptic
 * Gregorian calendar (H. Hinnant's days_from_civil); -1 when s is not one.
 */
static int
parse_day(const char *s, long *out)
{
	static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31,
		30, 31 };
	long y, m, d, era, yoe, doy;

	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-' || !digits(s, 4) ||
	    !digits(s + 5, 2) || !digits(s + 8, 2))
		return -1;
	y = number(s, 4);
	m = number(s + 5, 2);
	d = number(s + 8, 2);
	if (y < 1970 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1] ||
	    (m == 2 && d == 29 &&
	        (y % 4 != 0 || (y % 100 == 0 && y % 400 != 0))))
		return -1;
	y -= m <= 2;
	era = y / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	*out = era * 146097 + (yoe * 365 + yoe / 4 - yoe / 100 + doy) - 719468;
	return 0;
}

/* YYYY-MM-DD of a day number, from the arena. */
static const char *
day_text(struct agora_req *r, long day)
{
	time_t t = (time_t)day * 86400;
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL)
		return NULL;
	return agora_printf(
	    r, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

enum { Q_FROM, Q_TO, Q_CURRENCY };
static const struct agora_qfield summary_fields[] = {
	[Q_FROM] = { "from", AGORA_Q_TEXT, 0, 10, NULL, "bad_date",
	    "from must be a date, YYYY-MM-DD." },
	[Q_TO] = { "to", AGORA_Q_TEXT, 0, 10, NULL, "bad_date",
	    "to must be a date, YYYY-MM-DD." },
	[Q_CURRENCY] = { "currency", AGORA_Q_TEXT, 0, 3, NULL, "bad_currency",
	    "currency must be three capital letters." },
};

/* One date parameter, or its default; 400 bad_date for a bad one. */
static enum agora_err
day_param(struct agora_req *r, const struct agora_qvalue *v, int q,
    long fallback, long *day)
{
	*day = fallback;
	if (v[q].s == NULL)
		return AGORA_OK;
	if (parse_day(v[q].s, day) != 0)
		return agora_problem(r, AGORA_E_BAD_REQUEST, "bad_date",
		    summary_fields[q].detail);
	return AGORA_OK;
}

/*
 * from, to and currency into vals: to defaults to today (UTC), from to
 * DEFAULT_DAYS days ending with to; 400 for a bad value or range.
 */
static enum agora_err
summary_params(struct agora_req *r, const char *vals[3])
{
	struct agora_qvalue v[AGORA_NELEM(summary_fields)];
	long from, to;
	enum agora_err rc;

	rc = agora_query_fields(
	    r, summary_fields, AGORA_NELEM(summary_fields), 0, v);
	if (rc != AGORA_OK ||
	    (rc = day_param(r, v, Q_TO, (long)(time(NULL) / 86400), &to)) !=
	        AGORA_OK ||
	    (rc = day_param(r, v, Q_FROM, to - (DEFAULT_DAYS - 1), &from)) !=
	        AGORA_OK)
		return rc;
	if (from > to || to - from >= RANGE_DAYS)
		return agora_problem(r, AGORA_E_BAD_REQUEST, "bad_range",
		    "from must not be after to, and the range is at "
		    "most " AGORA_STR(RANGE_DAYS) " days.");
	vals[2] = v[Q_CURRENCY].s;
	if (vals[2] != NULL &&
	    (strlen(vals[2]) != 3 ||
	        strspn(vals[2], "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != 3))
		return agora_problem(r, AGORA_E_BAD_REQUEST, "bad_currency",
		    summary_fields[Q_CURRENCY].detail);
	if ((vals[0] = day_text(r, from)) == NULL ||
	    (vals[1] = day_text(r, to)) == NULL)
		return AGORA_E_INTERNAL;
	return AGORA_OK;
}

/* The q of one media range ("text/csv;q=0.5"): 1000ths, 1000 if none. */
static int
media_q(const char *range, size_t len)
{
	const char *q = memchr(range, ';', len);
	double v;

	while (q != NULL && q < range + len) {
		q += strspn(q + 1, " \t") + 1;
		if (strncasecmp(q, "q=", 2) == 0)
			return sscanf(q + 2, "%lf", &v) == 1 && v >= 0 && v <= 1
			    ? (int)(v * 1000 + 0.5)
			    : 0;
		q = memchr(q, ';', (size_t)(range + len - q));
	}
	return 1000;
}

/*
 * Whether Accept prefers CSV: text/csv (or text/x-csv, text/star) at a
 * higher q than JSON (application/json, application/star, star/star) has;
 * a tie, or no Accept, is JSON.
 */
static int
wants_csv(const struct agora_req *r)
{
	const char *a = agora_param(r, "HTTP_ACCEPT"), *end;
	int csv = 0, json = 0, q;
	size_t n, t;

	while (a != NULL && *a != '\0') {
		a += strspn(a, " \t,");
		end = strchr(a, ',');
		n = end != NULL ? (size_t)(end - a) : strlen(a);
		t = strcspn(a, "; \t,");
		q = media_q(a, n);
		if ((t == 8 && strncasecmp(a, "text/csv", t) == 0) ||
		    (t == 10 && strncasecmp(a, "text/x-csv", t) == 0) ||
		    (t == 6 && strncasecmp(a, "text/*", t) == 0))
			csv = q > csv ? q : csv;
		else if ((t == 16 &&
		             strncasecmp(a, "application/json", t) == 0) ||
		    (t == 13 && strncasecmp(a, "application/*", t) == 0) ||
		    (t == 3 && strncmp(a, "*/*", t) == 0))
			json = q > json ? q : json;
		a += n;
	}
	return csv > json;
}

static enum agora_err
summary_answer(struct agora_req *r, int csv)
{
	const char *vals[3];
	PGresult *res;
	enum agora_err rc;

	if ((rc = summary_params(r, vals)) != AGORA_OK ||
	    (rc = agora_db_query(r, csv ? "summary_csv" : "summary", 3, vals,
	         &res)) != AGORA_OK)
		return rc;
	agora_resp_header(r, "Vary", "Accept, Authorization");
	if (!csv)
		return agora_resp_cell(r, 200, res, 0, 0);
	agora_resp_header(r, "Content-Disposition",
	    agora_printf(r, "attachment; filename=\"agora-summary-%s-%s.csv\"",
	        vals[0], vals[1]));
	return agora_resp_raw(r, 200, "text/csv; charset=utf-8; header=present",
	    PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
}

static enum agora_err
get_summary(struct agora_req *r)
{
	return summary_answer(r, wants_csv(r));
}

static enum agora_err
get_summary_csv(struct agora_req *r)
{
	return summary_answer(r, 1);
}

static const struct agora_route routes[] = {
	{ "POST", "/api/v1/analytics/events", AGORA_BODY_JSON, post_events,
	    AGORA_ANON },
	{ "GET", "/api/v1/analytics/summary", AGORA_BODY_NONE, get_summary,
	    AGORA_ADMIN },
	{ "GET", "/api/v1/analytics/summary.csv", AGORA_BODY_NONE,
	    get_summary_csv, AGORA_ADMIN },
};

static const struct agora_program program = {
	.name = "analytics",
	.routes = routes,
	.nroutes = AGORA_NELEM(routes),
	.stmts = stmts,
	.nstmts = AGORA_NELEM(stmts),
};

AGORA_MAIN(program)
