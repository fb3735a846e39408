/*
 * reviews.c: product reviews.  Only a buyer may review (a completed
 * order holds the product), once per product; review_add() and
 * review_delete() in sql/0006_reviews.sql recount the product's rating in
 * the same transaction.  A change invalidates the product's cached
 * document and the cached lists (the rating sort).
 */
#include "config.h"

#include <string.h>

#include "shop.h"
#include "reviews.h"

/* An empty first page: is there such a product at all? */
static enum agora_err
product_check(struct agora_req *r)
{
	const char *vals[1] = { r->params[0] };
	PGresult *res;
	enum agora_err rc;

	rc = agora_db_query(r, "review_product_live", 1, vals, &res);
	if (rc != AGORA_OK)
		return rc;
	return PQntuples(res) == 1 ? AGORA_OK : agora_not_found(r);
}

enum agora_err
review_list(struct agora_req *r)
{
	const char *vals[3], *after;
	long long limit;
	PGresult *res;
	enum agora_err rc;

	if ((rc = agora_page_params_id(r, &limit, &after)) != AGORA_OK)
		return rc;
	vals[0] = r->params[0];
	vals[1] = after;
	vals[2] = agora_printf(r, "%lld", limit + 1);
	if ((rc = agora_db_query(r, "review_list", 3, vals, &res)) != AGORA_OK)
		return rc;
	if (PQntuples(res) == 0 && after == NULL &&
	    (rc = product_check(r)) != AGORA_OK)
		return rc;
	return agora_page_send(r, res, limit);
}

enum agora_err
review_get(struct agora_req *r)
{
	const char *vals[1] = { r->params[0] };
	PGresult *res;
	enum agora_err rc;

	if ((rc = agora_db_query(r, "review_get", 1, vals, &res)) != AGORA_OK)
		return rc;
	if (PQntuples(res) == 0)
		return agora_not_found(r);
	return agora_resp_doc(
	    r, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0), NULL);
}

static const struct agora_field review_fields[] = {
	{ "rating", AGORA_F_INT, AGORA_F_REQUIRED, 1, 5 },
	{ "title", AGORA_F_STRING, AGORA_F_REQUIRED, 1, 200 },
	{ "body", AGORA_F_STRING, 0, 0, 5000 },
};

static enum agora_err
review_refused(struct agora_req *r, const char *code)
{
	if (strcmp(code, "not_a_buyer") == 0)
		return agora_problem(r, AGORA_E_FORBIDDEN, code,
		    "Only a buyer of this product may review it.");
	if (strcmp(code, "already_reviewed") == 0)
		return agora_problem(r, AGORA_E_CONFLICT, code,
		    "You have reviewed this product already.");
	return agora_not_found(r);
}

enum agora_err
review_post(struct agora_req *r)
{
	struct agora_value v[3];
	const char *vals[5];
	PGresult *res;
	enum agora_err rc;

	if ((rc = agora_valid_body(r, review_fields, 3, v)) != AGORA_OK)
		return rc;
	vals[0] = r->params[0];
	vals[1] = r->user;
	vals[2] = agora_printf(r, "%lld", v[0].i);
	vals[3] = v[1].s;
	vals[4] = v[2].present ? v[2].s : NULL;
	if ((rc = agora_db_write(r, "review_add", 5, vals, &res)) != AGORA_OK)
		return rc;
	if (!PQgetisnull(res, 0, 0))
		return review_refused(r, PQgetvalue(res, 0, 0));
	agora_catalog_bump(r, r->params[0]);
	agora_resp_header(r, "Location",
	    agora_printf(r, "/api/v1/reviews/%s", PQgetvalue(res, 0, 2)));
	return agora_resp_cell(r, 201, res, 0, 1);
}

enum agora_err
review_delete(struct agora_req *r)
{
	const char *vals[3];
	PGresult *res;
	enum agora_err rc;

	vals[0] = r->params[0];
	vals[1] = r->user;
	vals[2] = strcmp(r->role, "admin") == 0 ? "true" : "false";
	rc = agora_db_write(r, "review_delete", 3, vals, &res);
	if (rc != AGORA_OK)
		return rc;
	if (PQgetisnull(res, 0, 0))
		return agora_not_found(r);
	agora_catalog_bump(r, PQgetvalue(res, 0, 0));
	return agora_resp_raw(r, 204, NULL, NULL, 0);
}
