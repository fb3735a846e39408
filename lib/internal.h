/*
 * internal.h: what libagora's files share and programs do not see.
 */
#ifndef AGORA_INTERNAL_H
#define AGORA_INTERNAL_H

#include "agora.h"

enum agora_err agora_parse_request(struct agora_req *r,
    const struct agora_program *prog, const struct agora_io *io,
    const struct agora_route **route);
/* The rate limit a route counts against (ratelimit.c). */
enum agora_err agora_rate_limit_route(
    struct agora_req *r, const struct agora_route *route);
/* Route parameters (route.c): what the i-th names, and the check that
 * each is a row id, before the handler runs. */
int agora_route_noun(const char *pattern, size_t i, char *out, size_t len);
enum agora_err agora_route_ids(struct agora_req *r);
/* The one query-string parser (req.c); valid.c answers for it. */
int agora_query_pair(struct agora_req *r, const char **pos, const char **key,
    const char **raw, size_t *rawlen);
int agora_emit(struct agora_req *r, const struct agora_io *io);
/* Exposed for the fuzzers and property tests (tests/fuzz, tests/prop). */
char *agora_url_decode(
    struct agora_req *r, const char *s, size_t n, int plus_space);

/* What the library itself runs, prepared on every connection (auth.c). */
extern const struct agora_stmt agora_auth_stmts[];
extern const size_t agora_auth_nstmts;

#endif /* AGORA_INTERNAL_H */
