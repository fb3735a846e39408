/*
 * valid.c: field-table validation of JSON objects.
 *
 * A handler declares its fields (name, type, required, bounds) and gets
 * back typed values it can use without further checks.  json-c's getters
 * coerce ("123abc" reads as 123, 12.9 as 12) and clamp overflow silently
 *, so types are checked before any value is read, and an
 * integer at the int64 limits is treated as an overflow.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "agora.h"
#include "internal.h"

static const char *const type_names[AGORA_F__MAX] = {
	[AGORA_F_STRING] = "a string",
	[AGORA_F_INT] = "an integer",
	[AGORA_F_BOOL] = "a boolean",
	[AGORA_F_OBJECT] = "an object",
	[AGORA_F_ARRAY] = "an array",
};

static const enum json_type json_types[AGORA_F__MAX] = {
	[AGORA_F_STRING] = json_type_string,
	[AGORA_F_INT] = json_type_int,
	[AGORA_F_BOOL] = json_type_boolean,
	[AGORA_F_OBJECT] = json_type_object,
	[AGORA_F_ARRAY] = json_type_array,
};

/*
 * Add {field: prefix.name, message} to errors.  Without memory the entry
 * is left out, or a member is null: json-c asserts on a NULL object, and
 * keeps what it was given when it cannot add it.
 */
void
agora_error_add(struct json_object *errors, const char *prefix,
    const char *name, const char *message)
{
	struct json_object *e;
	char field[256];

	if (errors == NULL || (e = json_object_new_object()) == NULL)
		return;
	snprintf(field, sizeof(field), "%s%s%s", prefix,
	    *prefix != '\0' && *name != '\0' ? "." : "", name);
	agora_json_set(e, "field", json_object_new_string(field));
	agora_json_set(e, "message", json_object_new_string(message));
	agora_json_push(errors, e);
}

/* Check bounds of a value of the right type; returns a message or NULL. */
static const char *
check_value(const struct agora_field *f, struct json_object *o,
    struct agora_value *v, char *msg, size_t msglen)
{
	long long n = 0;

	v->o = o;
	switch (f->type) {
	case AGORA_F_STRING:
		v->s = json_object_get_string(o);
		v->len = (size_t)json_object_get_string_len(o);
		if (strlen(v->s) != v->len)
			return "must not contain NUL characters";
		n = (long long)agora_utf8_len(v->s, v->len);
		break;
	case AGORA_F_INT:
		v->i = n = json_object_get_int64(o);
		if (n == INT64_MAX || n == INT64_MIN)
			return "is out of range";
		break;
	case AGORA_F_BOOL:
		v->b = json_object_get_boolean(o);
		return NULL;
	case AGORA_F_ARRAY:
		n = (long long)json_object_array_length(o);
		break;
	default:
		return NULL;
	}
	if (f->min == 0 && f->max == 0)
		return NULL;
	if (n >= f->min && n <= f->max)
		return NULL;
	snprintf(msg, msglen, "must be %s %lld to %lld",
	    f->type == AGORA_F_INT         ? "from"
	        : f->type == AGORA_F_ARRAY ? "an array of"
	                                   : "a string of",
	    f->min, f->max);
	if (f->type == AGORA_F_ARRAY)
		strncat(msg, " items", msglen - strlen(msg) - 1);
	else if (f->type == AGORA_F_STRING)
		strncat(msg, " characters", msglen - strlen(msg) - 1);
	return msg;
}

static const struct agora_field *
field_find(const struct agora_field *fields, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(fields[i].name, name) == 0)
			return &fields[i];
	return NULL;
}

/*
 * Report members of obj that the table does not name, while errors holds
 * fewer than AGORA_ERRORS_MAX entries: their number is the body's to
 * choose, the other errors are bounded by the table.
 */
static int
unknown_fields(struct json_object *obj, const char *prefix,
    const struct agora_field *fields, size_t n, struct json_object *errors)
{
	int bad = 0;

	json_object_object_foreach(obj, key, val)
	{
		(void)val;
		if (field_find(fields, n, key) != NULL)
			continue;
		bad = 1;
		if (errors != NULL &&
		    json_object_array_length(errors) < AGORA_ERRORS_MAX)
			agora_error_add(
			    errors, prefix, key, "is not a known field");
	}
	return bad;
}

/*
 * Answer e (422 unless told) with an errors list naming one field.
 */
enum agora_err
agora_problem_field(struct agora_req *r, enum agora_err e, const char *field,
    const char *message)
{
	struct json_object *errors = json_object_new_array();

	if (errors == NULL)
		return AGORA_E_INTERNAL;
	agora_error_add(errors, "", field, message);
	return agora_problem_errors(r, e, "The request has errors.", errors);
}

/*
 * Validate the request's JSON body against fields into v; on failure the
 * problem (400 or 422 with errors[]) is the answer already.
 */
enum agora_err
agora_valid_body(struct agora_req *r, const struct agora_field *fields,
    size_t nfields, struct agora_value *v)
{
	struct json_object *errors = json_object_new_array();
	enum agora_err rc;

	if (errors == NULL)
		return AGORA_E_INTERNAL;
	rc = agora_valid(r->json, "", fields, nfields, v, errors);
	if (rc != AGORA_OK)
		return agora_problem_errors(
		    r, rc, "The request has errors.", errors);
	json_object_put(errors);
	return AGORA_OK;
}

/*
 * Validate obj against fields; out[i] receives the value of fields[i].
 * prefix names obj in messages ("items[0]"), "" for the top level.
 */
enum agora_err
agora_valid(struct json_object *obj, const char *prefix,
    const struct agora_field *fields, size_t nfields, struct agora_value *out,
    struct json_object *errors)
{
	struct json_object *o;
	const char *msg;
	char buf[128];
	int bad_type = 0, bad = 0;
	size_t i;

	memset(out, 0, nfields * sizeof(*out));
	if (!json_object_is_type(obj, json_type_object)) {
		agora_error_add(errors, prefix, "", "must be an object");
		return AGORA_E_BAD_TYPE;
	}
	for (i = 0; i < nfields; i++) {
		if (!json_object_object_get_ex(obj, fields[i].name, &o) ||
		    o == NULL) {
			if (fields[i].flags & AGORA_F_REQUIRED) {
				agora_error_add(errors, prefix, fields[i].name,
				    "is required");
				bad = 1;
			}
			continue;
		}
		if (!json_object_is_type(o, json_types[fields[i].type])) {
			snprintf(buf, sizeof(buf), "must be %s",
			    type_names[fields[i].type]);
			agora_error_add(errors, prefix, fields[i].name, buf);
			bad_type = 1;
			continue;
		}
		out[i].present = 1;
		msg = check_value(&fields[i], o, &out[i], buf, sizeof(buf));
		if (msg != NULL) {
			agora_error_add(errors, prefix, fields[i].name, msg);
			bad = 1;
		}
	}
	bad |= unknown_fields(obj, prefix, fields, nfields, errors);
	if (bad_type)
		return AGORA_E_BAD_TYPE;
	return bad ? AGORA_E_VALIDATION : AGORA_OK;
}

static enum agora_err
bad_query(struct agora_req *r, const char *name)
{
	return agora_problem(r, AGORA_E_BAD_REQUEST, NULL,
	    name != NULL
	        ? agora_printf(r, "Query parameter %s is badly encoded.", name)
	        : "The query string is badly encoded.");
}

enum agora_err
agora_query_get(struct agora_req *r, const char *name, const char **out)
{
	const char *pos = NULL, *key, *raw;
	size_t n;
	int got;

	*out = NULL;
	/* A key that does not decode is no name's: skipped, so that one
	 * parameter's answer does not hang on another's spelling. */
	while ((got = agora_query_pair(r, &pos, &key, &raw, &n)) != 0)
		if (got > 0 && strcmp(key, name) == 0) {
			*out = agora_url_decode(r, raw, n, 1);
			return *out != NULL ? AGORA_OK : bad_query(r, name);
		}
	return AGORA_OK;
}

enum agora_err
agora_query_next(
    struct agora_req *r, const char **pos, const char **key, const char **val)
{
	const char *raw;
	size_t n;
	int got;

	*key = *val = NULL;
	got = agora_query_pair(r, pos, key, &raw, &n);
	if (got <= 0) {
		*key = NULL;
		return got < 0 ? bad_query(r, NULL) : AGORA_OK;
	}
	if ((*val = agora_url_decode(r, raw, n, 1)) == NULL)
		return bad_query(r, *key);
	return AGORA_OK;
}

/* The field of f named k, or the prefix field ("attr.") k starts with. */
static const struct agora_qfield *
qfield_find(const struct agora_qfield *f, size_t n, const char *k)
{
	size_t i, len;

	for (i = 0; i < n; i++) {
		len = strlen(f[i].name);
		if (len > 0 && f[i].name[len - 1] == '.'
		        ? strncmp(k, f[i].name, len) == 0
		        : strcmp(k, f[i].name) == 0)
			return &f[i];
	}
	return NULL;
}

/* Whether v is a value field q takes; its number or index into *num. */
static int
qvalue_ok(const struct agora_qfield *q, const char *v, long long *num)
{
	long long i;

	switch (q->type) {
	case AGORA_Q_INT:
		return agora_parse_ll(v, q->min, q->max, num) == 0;
	case AGORA_Q_ID:
		return agora_id_ok(v);
	case AGORA_Q_ONE_OF:
		for (i = 0; q->choices[i] != NULL; i++)
			if (strcmp(v, q->choices[i]) == 0) {
				*num = i;
				return 1;
			}
		return 0;
	case AGORA_Q_TEXT:
		break;
	}
	return agora_utf8_len(v, strlen(v)) <= (size_t)q->max;
}

/* 400 for a bad value of q's, given as k. */
static enum agora_err
qvalue_bad(struct agora_req *r, const struct agora_qfield *q, const char *k)
{
	const char *why = q->detail;

	if (why == NULL && q->type == AGORA_Q_INT)
		why = agora_printf(r,
		    "Query parameter %s must be an integer from %lld to %lld.",
		    k, q->min, q->max);
	else if (why == NULL && q->type == AGORA_Q_TEXT)
		why = agora_printf(r,
		    "Query parameter %s is longer than %lld characters.", k,
		    q->max);
	else if (why == NULL)
		why = agora_printf(
		    r, "Query parameter %s is not one it takes.", k);
	return agora_problem(r, AGORA_E_BAD_REQUEST,
	    q->code != NULL ? q->code : "bad_parameter", why);
}

/* strict: every pair is a field's, with a value it takes. */
static enum agora_err
query_strict(struct agora_req *r, const struct agora_qfield *f, size_t n)
{
	const struct agora_qfield *q;
	const char *pos = NULL, *k, *v;
	long long num;
	enum agora_err rc;

	for (;;) {
		if ((rc = agora_query_next(r, &pos, &k, &v)) != AGORA_OK ||
		    k == NULL)
			return rc;
		if ((q = qfield_find(f, n, k)) == NULL)
			return agora_problem(r, AGORA_E_BAD_REQUEST,
			    "unknown_parameter",
			    agora_printf(r, "Unknown query parameter %s.", k));
		if (!qvalue_ok(q, v, &num))
			return qvalue_bad(r, q, k);
	}
}

enum agora_err
agora_query_fields(struct agora_req *r, const struct agora_qfield *f, size_t n,
    int strict, struct agora_qvalue *v)
{
	size_t i, len;
	enum agora_err rc;

	/* The first problem in the query string's order answers: a strict
	 * route's pass goes pair by pair; the others read every field before
	 * they judge one, so a bad escape answers before a bad value. */
	if (strict && (rc = query_strict(r, f, n)) != AGORA_OK)
		return rc;
	for (i = 0; i < n; i++) {
		v[i].s = NULL;
		v[i].n = 0;
		len = strlen(f[i].name);
		if ((len == 0 || f[i].name[len - 1] != '.') &&
		    (rc = agora_query_get(r, f[i].name, &v[i].s)) != AGORA_OK)
			return rc; /* a prefix's pairs are the route's to read
			            */
	}
	for (i = 0; i < n; i++)
		if (v[i].s != NULL && !qvalue_ok(&f[i], v[i].s, &v[i].n))
			return qvalue_bad(r, &f[i], f[i].name);
	return AGORA_OK;
}
