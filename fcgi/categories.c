/*
 * categories.c: /api/v1/categories: the category tree.
 *
 * Anyone reads the whole tree as a flat list in which each category names
 * its parent; admins add categories.  The tree is small, so it is read
 * whole and cached under the catalog version like product lists.
 */
#include "config.h"

#include <string.h>

#include "shop.h"

#define CATEGORY_JSON                                                          \
	"json_build_object('id', id::text, 'name', name, 'slug', slug, "       \
	"'parent_id', parent_id::text, 'created_at', agora_time(created_at))"

static const struct agora_stmt stmts[] = {
	{ "category_list",
	    "SELECT COALESCE(json_agg(" CATEGORY_JSON " ORDER BY id), '[]') "
	    "FROM categories",
	    AGORA_STMT_READ | AGORA_STMT_REPLICA_ANON },
	{ "category_get",
	    "SELECT " CATEGORY_JSON " FROM categories WHERE id = $1::bigint",
	    AGORA_STMT_READ | AGORA_STMT_REPLICA_ANON },
	{ "category_insert",
	    "INSERT INTO categories (name, slug, parent_id) "
	    "VALUES ($1, $2, $3::bigint) RETURNING id::text, " CATEGORY_JSON },
};

static enum agora_err
list_categories(struct agora_req *r)
{
	struct agora_doc doc;
	const char *body;
	char ver[32];
	PGresult *res;
	enum agora_err rc;
	size_t len;
	int hit;

	agora_resp_header(r, "Cache-Control",
	    r->user == NULL ? "public, max-age=30" : "private, no-cache");
	agora_resp_header(r, "Vary", "Authorization");
	hit = agora_cached_read(r, AGORA_CATALOG_VERKEY, AGORA_CATEGORIES_KEY,
	    &doc, ver, sizeof(ver));
	if (hit == AGORA_CACHE_LIMITED)
		return AGORA_E_RATE_LIMITED;
	if (hit == 0)
		return agora_resp_raw(
		    r, 200, "application/json", doc.body, doc.len);
	rc = agora_db_query(r, "category_list", 0, NULL, &res);
	if (rc != AGORA_OK)
		return rc;
	body = agora_printf(r, "{\"data\":%s}", PQgetvalue(res, 0, 0));
	if (body == NULL)
		return AGORA_E_TOO_LARGE;
	len = strlen(body);
	agora_doc_set(&doc, body, len);
	agora_cache_vset(r, AGORA_CATEGORIES_KEY, ver, &doc, 300);
	return agora_resp_raw(r, 200, "application/json", body, len);
}

static enum agora_err
get_category(struct agora_req *r)
{
	const char *vals[1] = { r->params[0] };
	PGresult *res;
	enum agora_err rc;

	if ((rc = agora_db_query(r, "category_get", 1, vals, &res)) != AGORA_OK)
		return rc;
	if (PQntuples(res) == 0)
		return agora_not_found(r);
	return agora_resp_cell(r, 200, res, 0, 0);
}

static const struct agora_field fields[] = {
	{ "name", AGORA_F_STRING, AGORA_F_REQUIRED, 1, 100 },
	{ "slug", AGORA_F_STRING, AGORA_F_REQUIRED, 1, 100 },
	{ "parent_id", AGORA_F_STRING, 0, 1, 20 },
};

static int
slug_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || s[0] == '-' || s[n - 1] == '-')
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		        (s[i] >= '0' && s[i] <= '9') ||
		        (s[i] == '-' && s[i + 1] != '-')))
			return 0;
	return 1;
}

/* Why the database refused a parent (sql/0012 names its constraints). */
static const char *
parent_problem(const char *constraint)
{
	if (constraint != NULL && strcmp(constraint, "categories_acyclic") == 0)
		return "would make the category its own ancestor";
	if (constraint != NULL && strcmp(constraint, "categories_depth") == 0)
		return "would nest categories more than 64 levels deep";
	return "is not a category";
}

static enum agora_err
post_category(struct agora_req *r)
{
	struct agora_value v[3];
	const char *vals[3];
	PGresult *res;
	enum agora_err rc;

	if ((rc = agora_valid_body(r, fields, 3, v)) != AGORA_OK)
		return rc;
	if (!slug_ok(v[1].s))
		return agora_problem_field(r, AGORA_E_VALIDATION, "slug",
		    "must be lower-case letters and digits joined by '-'");
	if (v[2].present && !agora_id_ok(v[2].s))
		return agora_problem_field(
		    r, AGORA_E_VALIDATION, "parent_id", "is not a category");
	vals[0] = v[0].s;
	vals[1] = v[1].s;
	vals[2] = v[2].present ? v[2].s : NULL;
	rc = agora_db_write(r, "category_insert", 3, vals, &res);
	if (rc == AGORA_E_CONFLICT)
		return agora_problem(
		    r, rc, "slug_taken", "A category with this slug exists.");
	if (rc == AGORA_E_VALIDATION)
		return agora_problem_field(r, AGORA_E_VALIDATION, "parent_id",
		    parent_problem(r->constraint));
	if (rc != AGORA_OK)
		return rc;
	agora_cache_bump(r->ctx, AGORA_CATALOG_VERKEY, NULL);
	agora_resp_header(r, "Location",
	    agora_printf(r, "/api/v1/categories/%s", PQgetvalue(res, 0, 0)));
	return agora_resp_cell(r, 201, res, 0, 1);
}

static const struct agora_route routes[] = {
	{ "GET", "/api/v1/categories", AGORA_BODY_NONE, list_categories,
	    AGORA_ANON, AGORA_RL_API_READ },
	{ "POST", "/api/v1/categories", AGORA_BODY_JSON, post_category,
	    AGORA_ADMIN },
	{ "GET", "/api/v1/categories/{category_id}", AGORA_BODY_NONE,
	    get_category, AGORA_ANON },
};

static const struct agora_program program = {
	.name = "categories",
	.routes = routes,
	.nroutes = AGORA_NELEM(routes),
	.stmts = stmts,
	.nstmts = AGORA_NELEM(stmts),
};

AGORA_MAIN(program)
