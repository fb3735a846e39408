/*
 * reviews.h: product reviews, served by the products program
 * (/api/v1/products/{id}/reviews and /api/v1/reviews/{id}).
 */
#ifndef AGORA_REVIEWS_H
#define AGORA_REVIEWS_H

#include "agora.h"

#define REVIEW_LIST_SQL                                                        \
	"SELECT r.id::text, review_doc(r)::text FROM reviews r "               \
	"WHERE r.product_id = $1::bigint "                                     \
	"AND ($2::bigint IS NULL OR r.id < $2::bigint) "                       \
	"ORDER BY r.id DESC LIMIT $3::int"
#define REVIEW_GET_SQL                                                         \
	"SELECT review_doc(r)::text FROM reviews r WHERE r.id = $1::bigint"
#define REVIEW_ADD_SQL                                                         \
	"SELECT t.r->>'error', t.r->'review', t.r->'review'->>'id' "           \
	"FROM review_add($1::bigint, $2::bigint, $3::int, $4, $5) AS t(r)"
#define REVIEW_DELETE_SQL                                                      \
	"SELECT review_delete($1::bigint, $2::bigint, $3::bool)"
#define REVIEW_LIVE_SQL                                                        \
	"SELECT 1 FROM products WHERE id = $1::bigint AND archived_at IS NULL"

/* The statements the reviews need, for the products program's table. */
#define REVIEW_STMTS                                                           \
	{ "review_list", REVIEW_LIST_SQL,                                      \
		AGORA_STMT_READ | AGORA_STMT_REPLICA_ANON },                   \
	    { "review_get", REVIEW_GET_SQL, AGORA_STMT_READ },                 \
	    { "review_add", REVIEW_ADD_SQL },                                  \
	    { "review_delete", REVIEW_DELETE_SQL },                            \
	{                                                                      \
		"review_product_live", REVIEW_LIVE_SQL, AGORA_STMT_READ        \
	}

enum agora_err review_list(struct agora_req *r);
enum agora_err review_post(struct agora_req *r);
enum agora_err review_get(struct agora_req *r);
enum agora_err review_delete(struct agora_req *r);

#endif /* AGORA_REVIEWS_H */
